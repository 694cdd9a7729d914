//! Sweep files: a base scenario, fixed overrides, the parameters to vary and a design, replicates and a
//! sweep seed. Loading validates everything (same error contract as scenarios); a point's parameter values
//! are computed on demand from its id (`Sweep::point`), so a design of 10^8 points takes no memory.

use super::design::{self, DesignKind};
use crate::config::file::ScenarioFile;
use crate::config::source::{self, Sources, format_path};
use crate::config::{self, ConfigError, Overrides, Problem, Scenario};
use crate::model::rng::mix64;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How a sampled parameter maps the unit interval onto [min, max].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    #[default]
    Linear,
    Log,
}

/// `[design]` of a sweep file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesignFile {
    pub kind: DesignKind,
    /// Number of points for random, lhs and sobol designs; number of base points for a saltelli design.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
    /// Saltelli design: also the BA_j rows, for second-order indices ((2p + 2)·N points instead of (p + 2)·N).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_order: Option<bool>,
    /// Morris design: number of trajectories r (r·(p + 1) points).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trajectories: Option<u64>,
    /// Morris design: number of grid levels L (even; default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels: Option<u32>,
}

impl DesignFile {
    /// Whether a Saltelli design has the BA_j rows.
    pub fn second_order(&self) -> bool {
        self.second_order.unwrap_or(false)
    }
    /// A Morris design's number of levels.
    pub fn levels(&self) -> u32 {
        self.levels.unwrap_or(4)
    }
}

/// One `[[parameters]]` entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParameterFile {
    /// A scenario key path, as for `--set` (`firms.openai.brand`, `segments.student.summer_activity`).
    pub path: String,
    /// Listed values (grid and zip designs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<toml::Value>>,
    /// Range (random, lhs and sobol designs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default)]
    pub scale: Scale,
    /// Round sampled values to whole numbers.
    #[serde(default)]
    pub integer: bool,
    /// The value holds until a dated `set` event of the scenario changes the key (posterior draws under
    /// `compare --posterior`); otherwise a varied key that such an event changes is refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub until_events: bool,
}

fn one() -> u64 {
    1
}

/// A sweep file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Base scenario, relative to the sweep file; `"embedded:baseline"` for the built-in baseline.
    pub scenario: String,
    /// Sweep seed: run seeds derive from it and the replicate number.
    #[serde(default = "one")]
    pub seed: u64,
    #[serde(default = "one")]
    pub replicates: u64,
    /// Fixed overrides applied to every run, as `key.path=value` strings.
    #[serde(default)]
    pub set: Vec<String>,
    pub design: DesignFile,
    #[serde(default)]
    pub parameters: Vec<ParameterFile>,
    /// Posterior draws crossed with the design (`sweep --posterior`): every design point runs under each
    /// draw, so that points stay paired in parameter draws as in seeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posterior: Option<PosteriorDraws>,
}

/// Parameter draws from a calibration's posterior, crossed with a sweep's design.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PosteriorDraws {
    /// The posterior.csv the draws come from.
    pub source: String,
    /// The rows (particles of its last generation) drawn by weight, in draw order.
    pub rows: Vec<usize>,
    /// A listed parameter per posterior column that the design does not vary, with its value in each draw
    /// (`until_events`: a scenario's dated change of the key takes over from its date).
    pub parameters: Vec<ParameterFile>,
}

impl SweepFile {
    /// Draws per design point (1 without a posterior).
    pub fn draws(&self) -> u64 {
        self.posterior.as_ref().map_or(1, |d| d.rows.len().max(1) as u64)
    }

    /// The design's parameters, then the posterior's: the varied columns of runs.csv.
    pub fn all_parameters(&self) -> impl Iterator<Item = &ParameterFile> {
        self.parameters.iter().chain(self.posterior.iter().flat_map(|d| d.parameters.iter()))
    }
}

/// One run of a sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpec {
    pub run_id: u64,
    pub point_id: u64,
    pub replicate: u64,
    pub seed: u64,
}

/// A validated sweep: the resolved base scenario and its design (points are computed by [`Sweep::point`]).
#[derive(Clone, Debug)]
pub struct Sweep {
    pub file: SweepFile,
    pub source: String,
    /// The base scenario with the sweep's `set` and the command line's overrides applied.
    pub base: ScenarioFile,
    /// Number of points: design points × posterior draws (saturating).
    n_points: u64,
    /// Number of design points (saturating).
    n_design: u64,
}

/// The maximum number of runs in one sweep.
pub const MAX_RUNS: u64 = 100_000_000;

/// Seed of replicate `r`: the same for every point (common random numbers), so differences between
/// points are paired. `seed = splitmix64(sweep_seed XOR splitmix64(r + 1)) >> 1` (63 bits, so that it is
/// a valid TOML integer in the run's resolved scenario).
pub fn replicate_seed(sweep_seed: u64, replicate: u64) -> u64 {
    mix64(sweep_seed ^ mix64(replicate + 1)) >> 1
}

impl Sweep {
    /// A sweep of `file`'s design over `base` (checked by [`load`]; this only counts the points).
    pub fn new(file: SweepFile, source: String, base: ScenarioFile) -> Sweep {
        let n_design = count_points(&file).unwrap_or(u64::MAX);
        let n_points = n_design.saturating_mul(file.draws());
        Sweep { file, source, base, n_points, n_design }
    }
    /// This sweep crossed with posterior draws (replacing any it had).
    pub fn with_posterior(self, draws: Option<PosteriorDraws>) -> Sweep {
        let mut file = self.file;
        file.posterior = draws;
        Sweep::new(file, self.source, self.base)
    }
    pub fn n_points(&self) -> u64 {
        self.n_points
    }
    /// The parameter values of point `point_id` (< `n_points`), in parameter order: computed from the id
    /// alone — grid by mixed-radix digits (first parameter slowest), zip by index, random, Latin hypercube
    /// and Sobol by their per-point generators — so no design is ever listed in memory.
    /// With posterior draws, point `point_id` is design point `point_id / draws` under draw
    /// `point_id % draws`, whose values follow the design's.
    pub fn point(&self, point_id: u64) -> Vec<toml::Value> {
        let k = self.file.draws();
        let mut values = self.design_point(point_id / k);
        if let Some(d) = &self.file.posterior {
            let draw = (point_id % k) as usize;
            values.extend(d.parameters.iter().filter_map(|p| p.values.as_ref().and_then(|v| v.get(draw)).cloned()));
        }
        values
    }
    /// The design's values at design point `point_id`.
    fn design_point(&self, point_id: u64) -> Vec<toml::Value> {
        let params = &self.file.parameters;
        let listed = |k: usize, i: usize| params[k].values.as_ref().and_then(|v| v.get(i)).cloned();
        match self.file.design.kind {
            DesignKind::Grid => {
                let lens: Vec<usize> = params.iter().map(|p| p.values.as_ref().map_or(0, Vec::len)).collect();
                design::grid_index(&lens, point_id).into_iter().enumerate().filter_map(|(k, i)| listed(k, i)).collect()
            }
            DesignKind::Zip => (0..params.len()).filter_map(|k| listed(k, point_id as usize)).collect(),
            kind => {
                let (dims, seed) = (params.len(), self.file.seed);
                let d = &self.file.design;
                let unit = match kind {
                    DesignKind::Random => design::random_point(point_id, dims, seed),
                    DesignKind::Lhs => design::lhs_point(point_id, self.n_design, dims, seed),
                    DesignKind::Saltelli => design::saltelli_point(point_id, dims, d.second_order(), seed),
                    DesignKind::Morris => design::morris_point(point_id, dims, d.levels(), seed),
                    _ => design::sobol_point(point_id, dims, seed),
                };
                unit.iter().zip(params).map(|(x, p)| scale_value(p, *x)).collect()
            }
        }
    }
    pub fn n_runs(&self) -> u64 {
        self.n_points().saturating_mul(self.file.replicates)
    }
    /// Run `run_id` = point × replicates + replicate.
    pub fn run(&self, run_id: u64) -> RunSpec {
        let r = self.file.replicates;
        RunSpec {
            run_id,
            point_id: run_id / r,
            replicate: run_id % r,
            seed: replicate_seed(self.file.seed, run_id % r),
        }
    }
    /// Parameter paths, in file order (the varied columns of runs.csv).
    pub fn parameter_paths(&self) -> Vec<String> {
        self.file.all_parameters().map(|p| p.path.clone()).collect()
    }
    /// The validated scenario of one run, or the problems of its point.
    pub fn scenario(&self, run: &RunSpec) -> Result<Scenario, ConfigError> {
        let sets = self
            .file
            .all_parameters()
            .zip(&self.point(run.point_id))
            .map(|(p, v)| format!("{}={}", p.path, v))
            .collect();
        let until_events = self.file.all_parameters().filter(|p| p.until_events).map(|p| p.path.clone()).collect();
        let file = config::apply_overrides(
            self.base.clone(),
            &Overrides { sets, seed: Some(run.seed), until_events, ..Default::default() },
        )?;
        Scenario::from_file(file, &self.source)
    }
    /// A stable hash of everything that determines the sweep's results.
    pub fn spec_hash(&self) -> String {
        let text = format!(
            "{}\n{}",
            toml::to_string(&self.file).unwrap_or_default(),
            toml::to_string(&self.base).unwrap_or_default()
        );
        crate::model::rng::fnv1a_hex(&text)
    }
}

/// How many of the run ids `floor(i · total / n)`, i < n (the runs `--traces sample:n` keeps, n ≤ total),
/// are ≡ `index` (mod `count`): a shard's share of the sampled traces, in O(log) time rather than a loop over
/// the ids. x ≡ K (mod N) iff ⌊(x + N − K)/N⌋ − ⌊(x + N − K − 1)/N⌋ = 1, and ⌊(⌊iT/n⌋ + c)/N⌋ = ⌊(iT + cn)/(nN)⌋,
/// so the count is a difference of two floor sums.
pub fn sampled_in_shard(total: u64, n: u64, count: u64, index: u64) -> u64 {
    let n = n.min(total);
    if n == 0 || count == 0 || index >= count {
        return 0;
    }
    let (t, n128, c, k) = (total as u128, n as u128, count as u128, index as u128);
    let m = n128 * c;
    (floor_sum(n128, m, t, (c - k) * n128) - floor_sum(n128, m, t, (c - k - 1) * n128)) as u64
}

/// Σ_{i<n} ⌊(a·i + b)/m⌋ (the Euclid-like floor-sum algorithm; m > 0).
fn floor_sum(mut n: u128, mut m: u128, mut a: u128, mut b: u128) -> u128 {
    let mut sum = 0;
    loop {
        if a >= m {
            sum += n * (n - 1) / 2 * (a / m);
            a %= m;
        }
        if b >= m {
            sum += n * (b / m);
            b %= m;
        }
        let y_max = a * n + b;
        if y_max < m {
            return sum;
        }
        (n, b) = (y_max / m, y_max % m);
        std::mem::swap(&mut m, &mut a);
    }
}

/// Text of a value for runs.csv (strings without quotes).
pub fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether a TOML file is a sweep (it has a `[design]` table) rather than a scenario.
pub fn is_sweep_file(path: &Path) -> bool {
    crate::config::source::read_input_file(path)
        .ok()
        .and_then(|t| toml::from_str::<toml::Table>(&t).ok())
        .is_some_and(|t| t.contains_key("design"))
}

/// Loads and validates a sweep file; `overrides` (command-line `--set`, `--agents`) apply to every run.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Sweep, ConfigError> {
    let sources = Sources::load(Some(path)).map_err(|problems| ConfigError { problems })?;
    let display = path.display().to_string();
    let fail = |problems: Vec<Problem>| {
        let mut problems = problems;
        sources.annotate(&mut problems);
        ConfigError { problems }
    };
    let file: SweepFile =
        serde_path_to_error::deserialize(toml::Value::Table(sources.merged.clone())).map_err(|e| {
            let segs = source::serde_path_segments(e.path());
            let msg = e.into_inner().message().trim().to_string();
            fail(vec![Problem { file: None, path: Some(format_path(&segs)), line: None, message: msg }])
        })?;
    let mut problems = Vec::new();
    let mut problem =
        |path: String, message: String| problems.push(Problem { file: None, path: Some(path), line: None, message });
    if let Err(e) = config::validate::check_name(&file.name) {
        problem("name".into(), e);
    }
    if file.replicates == 0 {
        problem("replicates".into(), "must be at least 1".into());
    }
    if file.posterior.is_some() {
        problem("posterior".into(), "is set by `llm-market sweep --posterior`, not in a sweep file".into());
    }

    // The base scenario, with the sweep's fixed overrides and then the command line's.
    let scenario_path: Option<PathBuf> = if file.scenario == "embedded:baseline" {
        None
    } else {
        Some(path.parent().unwrap_or(Path::new(".")).join(&file.scenario))
    };
    let mut sets = file.set.clone();
    sets.extend(overrides.sets.iter().cloned());
    let base_overrides =
        Overrides { sets, agents: overrides.agents, record_every: overrides.record_every, ..Default::default() };
    let base = match config::load(scenario_path.as_deref(), &base_overrides) {
        Ok(s) => s.params().clone(),
        Err(e) => {
            let mut ps = e.problems;
            for p in ps.iter_mut() {
                if p.file.as_deref() == Some("--set")
                    && file.set.iter().any(|s| s.split('=').next().map(str::trim) == p.path.as_deref())
                {
                    p.file = Some(display.clone());
                    p.message = format!("in `set`: {}", p.message);
                }
            }
            if !file.scenario.is_empty() && ps.iter().any(|p| p.message.starts_with("cannot read")) {
                let mut pr = Problem::in_file(&display, format!("`scenario` {:?} cannot be read", file.scenario));
                pr.path = Some("scenario".into());
                let mut v = vec![pr];
                sources.annotate(&mut v);
                return Err(ConfigError { problems: v });
            }
            return Err(ConfigError { problems: ps });
        }
    };
    let full = toml::Value::try_from(&base).expect("a scenario serialises");

    let kind = file.design.kind;
    let listed = matches!(kind, DesignKind::Grid | DesignKind::Zip);
    let mut seen = std::collections::BTreeSet::new();
    for (i, p) in file.parameters.iter().enumerate() {
        let at = |k: &str| format!("parameters[{i}].{k}");
        match source::resolve_set_path(&full, &p.path) {
            None => problem(at("path"), format!("no such key in the scenario: {:?}", p.path)),
            Some(segs) => {
                let canonical = format_path(&segs);
                if canonical.starts_with("revenue_thresholds_usd") || canonical == "name" || canonical == "seed" {
                    problem(at("path"), format!("{canonical} cannot be varied in a sweep"));
                }
                if !seen.insert(canonical.clone()) {
                    problem(at("path"), format!("{canonical} is varied twice"));
                }
                if let Some((id, date)) = config::dated::shadowing_event(&base, &segs).filter(|_| !p.until_events) {
                    problem(
                        at("path"),
                        format!(
                            "the set event `{id}` changes {canonical} from {date}, so a value varied here would hold \
                             only until then; vary `events.{id}.value` instead"
                        ),
                    );
                }
            }
        }
        if listed {
            match &p.values {
                None => problem(at("values"), format!("a {kind:?} design needs a list of values")),
                Some(v) if v.is_empty() => problem(at("values"), "must not be empty".into()),
                _ => {}
            }
            if p.min.is_some() || p.max.is_some() {
                problem(at("min"), format!("a {kind:?} design takes `values`, not a range"));
            }
        } else {
            if p.values.is_some() {
                problem(at("values"), format!("a {kind:?} design samples a range: give `min` and `max`, not `values`"));
            }
            match (p.min, p.max) {
                (Some(lo), Some(hi)) if lo.is_finite() && hi.is_finite() && lo < hi => {
                    if p.scale == Scale::Log && lo <= 0.0 {
                        problem(at("min"), "a log scale needs min > 0".into());
                    }
                }
                (Some(lo), Some(hi)) => problem(at("max"), format!("needs finite min < max, got [{lo}, {hi}]")),
                _ => problem(at("min"), format!("a {kind:?} design needs `min` and `max`")),
            }
        }
    }
    if file.parameters.is_empty() {
        problem("parameters".into(), "a sweep varies at least one parameter".into());
    }
    if kind == DesignKind::Zip {
        let lens: Vec<usize> = file.parameters.iter().filter_map(|p| p.values.as_ref().map(Vec::len)).collect();
        if lens.windows(2).any(|w| w[0] != w[1]) {
            problem("parameters".into(), format!("a zip design needs lists of equal length, got {lens:?}"));
        }
    }
    let morris = kind == DesignKind::Morris;
    match (listed || morris, file.design.samples) {
        (true, Some(_)) if morris => problem(
            "design.samples".into(),
            "a Morris design's size is `trajectories` (r·(p + 1) points); remove `samples`".into(),
        ),
        (true, Some(_)) => problem(
            "design.samples".into(),
            format!("a {kind:?} design takes its points from the lists; remove `samples`"),
        ),
        (false, None) | (false, Some(0)) => problem("design.samples".into(), "must be at least 1".into()),
        _ => {}
    }
    let d = &file.design;
    if kind != DesignKind::Saltelli && d.second_order.is_some() {
        problem("design.second_order".into(), format!("only a saltelli design takes `second_order`, not {kind:?}"));
    }
    if morris {
        match d.trajectories {
            None | Some(0) => problem("design.trajectories".into(), "a Morris design needs trajectories ≥ 1".into()),
            Some(_) => {}
        }
        let levels = d.levels();
        if levels < 2 || levels % 2 == 1 {
            problem(
                "design.levels".into(),
                format!("must be an even number ≥ 2 (so that a step of L/(2(L−1)) stays on the grid), got {levels}"),
            );
        }
    } else {
        for (key, set) in [("trajectories", d.trajectories.is_some()), ("levels", d.levels.is_some())] {
            if set {
                problem(format!("design.{key}"), format!("only a morris design takes `{key}`, not {kind:?}"));
            }
        }
    }
    if kind == DesignKind::Sobol && file.parameters.len() > 256 {
        problem("parameters".into(), "a Sobol design supports at most 256 parameters".into());
    }
    if kind == DesignKind::Saltelli && file.parameters.len() > 128 {
        problem("parameters".into(), "a Saltelli design supports at most 128 parameters (2p Sobol dimensions)".into());
    }
    if !problems.is_empty() {
        return Err(fail(problems));
    }

    // Count with checked arithmetic: a huge design is an error, not an abort.
    let n_points = count_points(&file);
    let n_runs = n_points.and_then(|p| p.checked_mul(file.replicates)).unwrap_or(u64::MAX);
    if kind == DesignKind::Saltelli && file.design.samples.is_some_and(|n| n > design::SOBOL_MAX_POINTS) {
        return Err(fail(vec![Problem {
            file: None,
            path: Some("design.samples".into()),
            line: None,
            message: format!(
                "a Saltelli design has at most {} base points (its A and B matrices come from a Sobol sequence)",
                design::SOBOL_MAX_POINTS
            ),
        }]));
    }
    if kind == DesignKind::Sobol && n_points.is_some_and(|p| p > design::SOBOL_MAX_POINTS) {
        return Err(fail(vec![Problem {
            file: None,
            path: Some("design.samples".into()),
            line: None,
            message: format!(
                "a Sobol design has at most {} points (2^16: the sequence's direction numbers have 16 bits, \
                 so later points would repeat earlier ones); use lhs or random for more",
                design::SOBOL_MAX_POINTS
            ),
        }]));
    }
    if n_runs > MAX_RUNS {
        return Err(fail(vec![Problem {
            file: None,
            path: Some("design".into()),
            line: None,
            message: if n_runs == u64::MAX {
                format!("more than {MAX_RUNS} runs")
            } else {
                format!("{n_runs} runs is more than {MAX_RUNS}")
            },
        }]));
    }
    Ok(Sweep::new(file, display, base))
}

/// Number of points of a design, `None` when it overflows `u64` (grid: the product of the list lengths;
/// zip: the common length; saltelli: samples × (p + 2) or × (2p + 2); morris: trajectories × (p + 1); other
/// sampled designs: `samples`).
fn count_points(file: &SweepFile) -> Option<u64> {
    match file.design.kind {
        DesignKind::Grid => file
            .parameters
            .iter()
            .try_fold(1u64, |acc, p| acc.checked_mul(p.values.as_ref().map_or(0, Vec::len) as u64)),
        DesignKind::Zip => Some(file.parameters.first().and_then(|p| p.values.as_ref()).map_or(0, Vec::len) as u64),
        DesignKind::Saltelli => file
            .design
            .samples
            .and_then(|n| n.checked_mul(design::saltelli_block(file.parameters.len(), file.design.second_order()))),
        DesignKind::Morris => file.design.trajectories.and_then(|r| r.checked_mul(file.parameters.len() as u64 + 1)),
        _ => file.design.samples,
    }
}

/// Maps a unit-interval draw onto a parameter's range.
pub fn scale_value(p: &ParameterFile, u: f64) -> toml::Value {
    let (lo, hi) = (p.min.unwrap_or(0.0), p.max.unwrap_or(1.0));
    let x = match p.scale {
        Scale::Linear => lo + u * (hi - lo),
        Scale::Log => (lo.ln() + u * (hi.ln() - lo.ln())).exp(),
    };
    if p.integer { toml::Value::Integer(x.round() as i64) } else { toml::Value::Float(x) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(path: &str, values: Option<Vec<f64>>, range: Option<(f64, f64)>, scale: Scale) -> ParameterFile {
        ParameterFile {
            path: path.into(),
            values: values.map(|v| v.into_iter().map(toml::Value::Float).collect()),
            min: range.map(|r| r.0),
            max: range.map(|r| r.1),
            scale,
            integer: false,
            until_events: false,
        }
    }

    fn sweep(kind: DesignKind, samples: Option<u64>, parameters: Vec<ParameterFile>) -> SweepFile {
        SweepFile {
            name: "t".into(),
            description: String::new(),
            scenario: "embedded:baseline".into(),
            seed: 3,
            replicates: 2,
            set: vec![],
            design: DesignFile { kind, samples, second_order: None, trajectories: None, levels: None },
            parameters,
            posterior: None,
        }
    }

    fn floats(points: &[Vec<toml::Value>]) -> Vec<Vec<f64>> {
        points.iter().map(|p| p.iter().map(|v| v.as_float().unwrap()).collect()).collect()
    }

    /// Every point of a (small) design, computed one by one.
    fn expand(file: &SweepFile) -> Vec<Vec<toml::Value>> {
        let s = Sweep::new(file.clone(), String::new(), ScenarioFile::default());
        (0..s.n_points()).map(|p| s.point(p)).collect()
    }

    #[test]
    fn grid_and_zip_expand_as_documented() {
        let a = param("a", Some(vec![1.0, 2.0]), None, Scale::Linear);
        let b = param("b", Some(vec![10.0, 20.0, 30.0]), None, Scale::Linear);
        let g = expand(&sweep(DesignKind::Grid, None, vec![a.clone(), b.clone()]));
        assert_eq!(
            floats(&g),
            vec![vec![1.0, 10.0], vec![1.0, 20.0], vec![1.0, 30.0], vec![2.0, 10.0], vec![2.0, 20.0], vec![2.0, 30.0]]
        );
        let c = param("c", Some(vec![5.0, 6.0]), None, Scale::Linear);
        let z = expand(&sweep(DesignKind::Zip, None, vec![a, c]));
        assert_eq!(floats(&z), vec![vec![1.0, 5.0], vec![2.0, 6.0]]);
    }

    #[test]
    fn sampled_designs_respect_ranges_and_scales() {
        for kind in [DesignKind::Random, DesignKind::Lhs, DesignKind::Sobol] {
            let lin = param("x", None, Some((2.0, 4.0)), Scale::Linear);
            let log = param("y", None, Some((0.01, 100.0)), Scale::Log);
            let pts = floats(&expand(&sweep(kind, Some(64), vec![lin, log])));
            assert_eq!(pts.len(), 64);
            assert!(pts.iter().all(|p| (2.0..=4.0).contains(&p[0]) && (0.01..=100.0).contains(&p[1])));
            // On a log scale half of the points fall below the geometric midpoint (1.0).
            let below = pts.iter().filter(|p| p[1] < 1.0).count();
            assert!((24..=40).contains(&below), "{kind:?}: {below} of 64 below 1.0");
        }
        let mut int = param("n", None, Some((1.0, 5.0)), Scale::Linear);
        int.integer = true;
        assert!(matches!(scale_value(&int, 0.5), toml::Value::Integer(3)));
    }

    #[test]
    fn replicates_share_seeds_across_points() {
        let a = param("a", Some(vec![1.0, 2.0, 3.0]), None, Scale::Linear);
        let s = Sweep::new(sweep(DesignKind::Grid, None, vec![a]), String::new(), ScenarioFile::default());
        assert_eq!(s.n_runs(), 6);
        let r: Vec<RunSpec> = (0..6).map(|i| s.run(i)).collect();
        assert_eq!((r[3].point_id, r[3].replicate), (1, 1));
        assert_eq!(r[0].seed, r[2].seed);
        assert_eq!(r[1].seed, r[5].seed);
        assert_ne!(r[0].seed, r[1].seed);
        assert!(r.iter().all(|x| x.seed <= i64::MAX as u64));
    }

    #[test]
    fn sampled_traces_per_shard_are_counted_exactly() {
        for total in [1u64, 2, 7, 10, 64, 1000] {
            for n in [1u64, 2, 3, 9, 10, 64, 999, 1000, 5000] {
                let nn = n.min(total);
                let ids: Vec<u64> = (0..nn).map(|i| i * total / nn).collect();
                for count in [1u64, 2, 3, 7, 11] {
                    for index in 0..count {
                        let brute = ids.iter().filter(|&&id| id % count == index).count() as u64;
                        assert_eq!(sampled_in_shard(total, n, count, index), brute, "{total} {n} {count} {index}");
                    }
                }
            }
        }
        assert_eq!(sampled_in_shard(100_000_000, 100_000_000, 7, 3), 14_285_714);
    }

    #[test]
    fn huge_designs_are_computed_point_by_point() {
        let hundred = || Some((0..100).map(f64::from).collect::<Vec<_>>());
        let grid: Vec<ParameterFile> =
            ["a", "b", "c", "d"].iter().map(|p| param(p, hundred(), None, Scale::Linear)).collect();
        let s = Sweep::new(sweep(DesignKind::Grid, None, grid), String::new(), ScenarioFile::default());
        assert_eq!(s.n_points(), 100_000_000);
        assert_eq!(floats(&[s.point(12_345_678)]), vec![vec![12.0, 34.0, 56.0, 78.0]]);
        assert_eq!(floats(&[s.point(99_999_999)]), vec![vec![99.0; 4]]);
        for (kind, n) in [
            (DesignKind::Random, 100_000_000),
            (DesignKind::Lhs, 100_000_000),
            (DesignKind::Sobol, design::SOBOL_MAX_POINTS),
        ] {
            let x = param("x", None, Some((2.0, 4.0)), Scale::Linear);
            let s = Sweep::new(sweep(kind, Some(n), vec![x]), String::new(), ScenarioFile::default());
            let last = floats(&[s.point(n - 1)])[0][0];
            assert!((2.0..=4.0).contains(&last), "{kind:?}: {last}");
            assert_eq!(s.point(5), s.point(5), "{kind:?}: a point is a pure function of its id");
        }
    }

    #[test]
    fn lazy_lhs_sweep_uses_every_stratum_once() {
        let x = param("x", None, Some((0.0, 1.0)), Scale::Linear);
        let y = param("y", None, Some((0.0, 8.0)), Scale::Linear);
        let pts = floats(&expand(&sweep(DesignKind::Lhs, Some(200), vec![x, y])));
        for (d, width) in [(0, 1.0), (1, 8.0)] {
            let mut strata: Vec<usize> = pts.iter().map(|p| (p[d] / width * 200.0) as usize).collect();
            strata.sort_unstable();
            assert_eq!(strata, (0..200).collect::<Vec<_>>(), "dimension {d}");
        }
    }
}
