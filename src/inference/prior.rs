//! Priors of a calibration (`configs/priors.toml`): one distribution per scenario key path, with bounds, a
//! justification and a source; loading validates the file like a scenario (every problem, with file, key
//! path and line) and checks that each prior's support stays inside what the scenario validator accepts.
//!
//! The sampler works in the prior's Gaussian copula space: parameter k is `θ_k = F_k⁻¹(Φ(z_k))`, so every
//! prior becomes a standard normal in `z`, proposals are never out of bounds, and importance weights
//! (prior over proposal) are the same in `z` as in `θ` because both densities carry the same Jacobian.

use crate::config::file::ScenarioFile;
use crate::config::source::{self, Sources, format_path};
use crate::config::{self, ConfigError, Overrides, Problem, Scenario};
use serde::{Deserialize, Serialize};
use statrs::distribution::{Beta, Continuous, ContinuousCDF, Normal};
use std::path::{Path, PathBuf};

/// The kinds of prior.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistKind {
    Uniform,
    LogUniform,
    Normal,
    TruncatedNormal,
    /// A beta distribution on [min, max] (default [0, 1]).
    Beta,
}

/// One `[[prior]]` entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorEntry {
    /// A scenario key path, as for `--set`.
    pub path: String,
    pub dist: DistKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    /// Round values to whole numbers (counts such as `orgs.population`).
    #[serde(default)]
    pub integer: bool,
    /// One line: why this range.
    pub why: String,
    /// Where the central value comes from (the baseline's grade and source).
    pub source: String,
}

/// A priors file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorsFile {
    #[serde(default)]
    pub description: String,
    /// The scenario the priors are about, relative to the file; `"embedded:baseline"` for the built-in one.
    #[serde(default = "embedded")]
    pub scenario: String,
    /// Fixed overrides applied to every run, as `key.path=value` strings.
    #[serde(default)]
    pub set: Vec<String>,
    pub prior: Vec<PriorEntry>,
}

fn embedded() -> String {
    "embedded:baseline".into()
}

/// A validated prior of one parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum Dist {
    Uniform { min: f64, max: f64 },
    LogUniform { min: f64, max: f64 },
    Normal { mean: f64, sd: f64 },
    TruncatedNormal { mean: f64, sd: f64, min: f64, max: f64 },
    Beta { alpha: f64, beta: f64, min: f64, max: f64 },
}

/// Probabilities are kept this far from 0 and 1 when mapping between `z` and `θ`.
const EDGE: f64 = 1e-12;

fn std_normal() -> Normal {
    Normal::new(0.0, 1.0).expect("the standard normal")
}

impl Dist {
    /// The cumulative distribution function.
    pub fn cdf(&self, x: f64) -> f64 {
        let n = std_normal();
        match *self {
            Dist::Uniform { min, max } => ((x - min) / (max - min)).clamp(0.0, 1.0),
            Dist::LogUniform { min, max } => {
                if x <= min {
                    0.0
                } else {
                    ((x.ln() - min.ln()) / (max.ln() - min.ln())).clamp(0.0, 1.0)
                }
            }
            Dist::Normal { mean, sd } => n.cdf((x - mean) / sd),
            Dist::TruncatedNormal { mean, sd, min, max } => {
                let (a, b) = (n.cdf((min - mean) / sd), n.cdf((max - mean) / sd));
                ((n.cdf((x.clamp(min, max) - mean) / sd) - a) / (b - a)).clamp(0.0, 1.0)
            }
            Dist::Beta { alpha, beta, min, max } => {
                Beta::new(alpha, beta).map(|b| b.cdf(((x - min) / (max - min)).clamp(0.0, 1.0))).unwrap_or(f64::NAN)
            }
        }
    }
    /// The quantile function (inverse of [`Dist::cdf`]).
    pub fn quantile(&self, u: f64) -> f64 {
        let u = u.clamp(EDGE, 1.0 - EDGE);
        let n = std_normal();
        match *self {
            Dist::Uniform { min, max } => min + u * (max - min),
            Dist::LogUniform { min, max } => (min.ln() + u * (max.ln() - min.ln())).exp(),
            Dist::Normal { mean, sd } => mean + sd * n.inverse_cdf(u),
            Dist::TruncatedNormal { mean, sd, min, max } => {
                let (a, b) = (n.cdf((min - mean) / sd), n.cdf((max - mean) / sd));
                (mean + sd * n.inverse_cdf((a + u * (b - a)).clamp(EDGE, 1.0 - EDGE))).clamp(min, max)
            }
            Dist::Beta { alpha, beta, min, max } => {
                Beta::new(alpha, beta).map(|b| min + (max - min) * b.inverse_cdf(u)).unwrap_or(f64::NAN)
            }
        }
    }
    /// The density (for charts of prior against posterior).
    pub fn pdf(&self, x: f64) -> f64 {
        match *self {
            Dist::Uniform { min, max } => {
                if (min..=max).contains(&x) {
                    1.0 / (max - min)
                } else {
                    0.0
                }
            }
            Dist::LogUniform { min, max } => {
                if (min..=max).contains(&x) {
                    1.0 / (x * (max.ln() - min.ln()))
                } else {
                    0.0
                }
            }
            Dist::Normal { mean, sd } => std_normal().pdf((x - mean) / sd) / sd,
            Dist::TruncatedNormal { mean, sd, min, max } => {
                if !(min..=max).contains(&x) {
                    return 0.0;
                }
                let n = std_normal();
                let mass = n.cdf((max - mean) / sd) - n.cdf((min - mean) / sd);
                n.pdf((x - mean) / sd) / sd / mass
            }
            Dist::Beta { alpha, beta, min, max } => {
                if !(min..=max).contains(&x) {
                    return 0.0;
                }
                Beta::new(alpha, beta).map(|b| b.pdf((x - min) / (max - min)) / (max - min)).unwrap_or(0.0)
            }
        }
    }
    /// The interval holding the central `level` of the prior's mass.
    pub fn interval(&self, level: f64) -> (f64, f64) {
        (self.quantile((1.0 - level) / 2.0), self.quantile((1.0 + level) / 2.0))
    }
    /// The smallest and largest value a run can receive (normal priors: ±8 sd, beyond the copula's edge).
    pub fn support(&self) -> (f64, f64) {
        match *self {
            Dist::Uniform { min, max }
            | Dist::LogUniform { min, max }
            | Dist::TruncatedNormal { min, max, .. }
            | Dist::Beta { min, max, .. } => (min, max),
            Dist::Normal { mean, sd } => (mean - 8.0 * sd, mean + 8.0 * sd),
        }
    }
}

/// Maps a standard-normal coordinate to a parameter value.
pub fn from_z(dist: &Dist, z: f64) -> f64 {
    dist.quantile(std_normal().cdf(z))
}

/// Maps a parameter value to its standard-normal coordinate.
pub fn to_z(dist: &Dist, x: f64) -> f64 {
    std_normal().inverse_cdf(dist.cdf(x).clamp(EDGE, 1.0 - EDGE))
}

/// One validated prior.
#[derive(Clone, Debug)]
pub struct Prior {
    /// The key path as the priors file writes it.
    pub path: String,
    pub dist: Dist,
    pub integer: bool,
    pub why: String,
    pub source: String,
}

impl Prior {
    /// The parameter value of standard-normal coordinate `z` (rounded for integer parameters).
    pub fn value(&self, z: f64) -> f64 {
        let x = from_z(&self.dist, z);
        if self.integer { x.round() } else { x }
    }
    /// The value as a TOML literal for `--set`.
    pub fn literal(&self, x: f64) -> String {
        if self.integer { format!("{}", x.round() as i64) } else { toml::Value::Float(x).to_string() }
    }
}

/// A validated priors file: the base scenario (with the file's `set` and the command line's overrides) and
/// its priors.
#[derive(Clone, Debug)]
pub struct Priors {
    pub file: PriorsFile,
    /// The file as given (for messages and manifests).
    pub source: String,
    pub base: ScenarioFile,
    pub priors: Vec<Prior>,
}

impl Priors {
    /// The `--set` strings of parameter values `x` (one per prior).
    pub fn sets(&self, x: &[f64]) -> Vec<String> {
        self.priors.iter().zip(x).map(|(p, v)| format!("{}={}", p.path, p.literal(*v))).collect()
    }
    /// The validated scenario of parameter values `x`, seed `seed`.
    pub fn scenario(&self, x: &[f64], seed: u64) -> Result<Scenario, ConfigError> {
        let file = config::apply_overrides(
            self.base.clone(),
            &Overrides { sets: self.sets(x), seed: Some(seed), ..Default::default() },
        )?;
        Scenario::from_file(file, &self.source)
    }
    /// Parameter paths in file order.
    pub fn paths(&self) -> Vec<String> {
        self.priors.iter().map(|p| p.path.clone()).collect()
    }
    /// Each parameter's value in the base scenario (NaN where it is not a number).
    pub fn base_values(&self) -> Vec<f64> {
        let full = toml::Value::try_from(&self.base).unwrap_or(toml::Value::Boolean(false));
        self.priors
            .iter()
            .map(|p| match source::lookup(&full, &p.path) {
                Some(toml::Value::Float(x)) => *x,
                Some(toml::Value::Integer(i)) => *i as f64,
                _ => f64::NAN,
            })
            .collect()
    }
}

/// Whether a TOML file is a priors file (it has `[[prior]]` entries).
pub fn is_priors_file(path: &Path) -> bool {
    crate::config::source::read_input_file(path)
        .ok()
        .and_then(|t| toml::from_str::<toml::Table>(&t).ok())
        .is_some_and(|t| t.contains_key("prior"))
}

/// Loads and validates a priors file; `overrides` (`--set`, `--agents`) apply to the base scenario.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Priors, ConfigError> {
    let sources = Sources::load(Some(path)).map_err(|problems| ConfigError { problems })?;
    let display = path.display().to_string();
    let fail = |mut problems: Vec<Problem>| {
        sources.annotate(&mut problems);
        ConfigError { problems }
    };
    let file: PriorsFile =
        serde_path_to_error::deserialize(toml::Value::Table(sources.merged.clone())).map_err(|e| {
            let segs = source::serde_path_segments(e.path());
            let msg = e.into_inner().message().trim().to_string();
            fail(vec![Problem { file: None, path: Some(format_path(&segs)), line: None, message: msg }])
        })?;
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
            if e.problems.iter().any(|p| p.message.starts_with("cannot read")) {
                let mut pr = Problem::in_file(&display, format!("`scenario` {:?} cannot be read", file.scenario));
                pr.path = Some("scenario".into());
                return Err(fail(vec![pr]));
            }
            return Err(e);
        }
    };
    let full = toml::Value::try_from(&base).expect("a scenario serialises");
    let mut problems = Vec::new();
    let mut priors = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, e) in file.prior.iter().enumerate() {
        let at = |k: &str| format!("prior[{i}].{k}");
        let mut problem = |key: &str, message: String| {
            problems.push(Problem { file: None, path: Some(at(key)), line: None, message })
        };
        let Some(segs) = source::resolve_set_path(&full, &e.path) else {
            problem("path", format!("no such key in the scenario: {:?}", e.path));
            continue;
        };
        let canonical = format_path(&segs);
        if canonical.starts_with("revenue_thresholds_usd") || canonical == "name" || canonical == "seed" {
            problem("path", format!("{canonical} cannot be calibrated"));
            continue;
        }
        if !seen.insert(canonical.clone()) {
            problem("path", format!("{canonical} has two priors"));
            continue;
        }
        if let Some((id, date)) = config::dated::shadowing_event(&base, &segs) {
            problem(
                "path",
                format!(
                    "the set event `{id}` changes {canonical} from {date}; give `events.{id}.value` the prior instead"
                ),
            );
            continue;
        }
        if e.why.trim().is_empty() {
            problem("why", "say in one line why this range".into());
        }
        if e.source.trim().is_empty() {
            problem("source", "name the source of the central value".into());
        }
        let finite = |v: Option<f64>| v.filter(|x| x.is_finite());
        let need = |k: &str, v: Option<f64>, problems: &mut dyn FnMut(&str, String)| {
            if finite(v).is_none() {
                problems(k, format!("a {:?} prior needs a finite `{k}`", e.dist));
            }
            finite(v).unwrap_or(f64::NAN)
        };
        let allowed: &[&str] = match e.dist {
            DistKind::Uniform | DistKind::LogUniform => &["min", "max"],
            DistKind::Normal => &["mean", "sd"],
            DistKind::TruncatedNormal => &["mean", "sd", "min", "max"],
            DistKind::Beta => &["alpha", "beta", "min", "max"],
        };
        for (k, v) in
            [("min", e.min), ("max", e.max), ("mean", e.mean), ("sd", e.sd), ("alpha", e.alpha), ("beta", e.beta)]
        {
            if v.is_some() && !allowed.contains(&k) {
                problem(k, format!("a {:?} prior takes {}, not `{k}`", e.dist, allowed.join(", ")));
            }
        }
        let dist = match e.dist {
            DistKind::Uniform | DistKind::LogUniform => {
                let (lo, hi) = (need("min", e.min, &mut problem), need("max", e.max, &mut problem));
                if lo >= hi {
                    problem("max", format!("needs min < max, got [{lo}, {hi}]"));
                }
                if e.dist == DistKind::LogUniform && lo <= 0.0 {
                    problem("min", "a log-uniform prior needs min > 0".into());
                }
                if e.dist == DistKind::Uniform {
                    Dist::Uniform { min: lo, max: hi }
                } else {
                    Dist::LogUniform { min: lo, max: hi }
                }
            }
            DistKind::Normal | DistKind::TruncatedNormal => {
                let (mean, sd) = (need("mean", e.mean, &mut problem), need("sd", e.sd, &mut problem));
                if sd <= 0.0 {
                    problem("sd", "must be positive".into());
                }
                if e.dist == DistKind::Normal {
                    Dist::Normal { mean, sd }
                } else {
                    let (lo, hi) = (need("min", e.min, &mut problem), need("max", e.max, &mut problem));
                    if lo >= hi {
                        problem("max", format!("needs min < max, got [{lo}, {hi}]"));
                    }
                    Dist::TruncatedNormal { mean, sd, min: lo, max: hi }
                }
            }
            DistKind::Beta => {
                let (a, b) = (need("alpha", e.alpha, &mut problem), need("beta", e.beta, &mut problem));
                if a <= 0.0 || b <= 0.0 {
                    problem("alpha", "alpha and beta must be positive".into());
                }
                let (lo, hi) = (finite(e.min).unwrap_or(0.0), finite(e.max).unwrap_or(1.0));
                if lo >= hi {
                    problem("max", format!("needs min < max, got [{lo}, {hi}]"));
                }
                Dist::Beta { alpha: a, beta: b, min: lo, max: hi }
            }
        };
        // The path as written (`firms.openai.brand` stays readable in posterior.csv); `--set` takes it as is.
        let prior = Prior {
            path: e.path.trim().to_string(),
            dist,
            integer: e.integer,
            why: e.why.clone(),
            source: e.source.clone(),
        };
        priors.push(prior);
    }
    if file.prior.is_empty() {
        problems.push(Problem::in_file(&display, "a priors file needs at least one [[prior]]"));
    }
    if !problems.is_empty() {
        return Err(fail(problems));
    }
    // Each prior's support must be inside what the validator accepts: both ends, one parameter at a time.
    for (i, p) in priors.iter().enumerate() {
        let (lo, hi) = p.dist.support();
        for (end, x) in [("min", lo), ("max", hi)] {
            let sets = vec![format!("{}={}", p.path, p.literal(x))];
            let checked = config::apply_overrides(base.clone(), &Overrides { sets, ..Default::default() })
                .and_then(|f| Scenario::from_file(f, &display));
            if let Err(e) = checked {
                let why = e.problems.iter().map(|q| q.message.clone()).collect::<Vec<_>>().join("; ");
                let key = if matches!(p.dist, Dist::Normal { .. }) { "sd" } else { end };
                problems.push(Problem {
                    file: None,
                    path: Some(format!("prior[{i}].{key}")),
                    line: None,
                    message: format!("{} = {} is refused by the scenario validator: {why}", p.path, p.literal(x)),
                });
            }
        }
    }
    if !problems.is_empty() {
        return Err(fail(problems));
    }
    Ok(Priors { file, source: display, base, priors })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copula_maps_round_trip_and_quantiles_match_the_distributions() {
        let dists = [
            Dist::Uniform { min: 2.0, max: 5.0 },
            Dist::LogUniform { min: 0.5, max: 2.0 },
            Dist::Normal { mean: 1.0, sd: 0.3 },
            Dist::TruncatedNormal { mean: 1.0, sd: 0.5, min: 0.5, max: 3.0 },
            Dist::Beta { alpha: 2.0, beta: 5.0, min: 0.0, max: 0.5 },
        ];
        for d in &dists {
            for z in [-2.5, -1.0, 0.0, 0.3, 1.7] {
                let x = from_z(d, z);
                assert!((to_z(d, x) - z).abs() < 1e-6, "{d:?} z={z}");
                let (lo, hi) = d.support();
                assert!(x >= lo && x <= hi);
            }
            // The density integrates to the CDF's increments.
            let (a, b) = d.interval(0.9);
            let n = 4000;
            let h = (b - a) / n as f64;
            let mass: f64 = (0..n).map(|k| d.pdf(a + (k as f64 + 0.5) * h) * h).sum();
            assert!((mass - 0.9).abs() < 2e-3, "{d:?}: {mass}");
        }
        assert!((Dist::LogUniform { min: 1.0, max: 4.0 }.quantile(0.5) - 2.0).abs() < 1e-12);
        assert!((Dist::Uniform { min: 0.0, max: 10.0 }.cdf(2.5) - 0.25).abs() < 1e-12);
    }
}
