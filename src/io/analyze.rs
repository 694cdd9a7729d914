//! `llm-market analyze` (and the Python package's `lm.analyze`): a finished sweep folder read and verified,
//! its outcomes computed per run (runs.csv's per-firm columns, annual.csv's `<column>_<year>`), and the
//! sensitivity analyses its design allows — Sobol indices on a Saltelli design, Morris measures on a Morris
//! design, PRCC/SRC and the variance split on any — plus PRIM on yes/no conditions; `sensitivity.csv`,
//! `prim_boxes.csv`, charts, `report.html` and a manifest are written into a locked folder
//! (default `SWEEP/analysis/`). The analyses themselves are `analysis::sensitivity` and `analysis::prim`.

use super::folder::{Kind, Mode};
use crate::analysis::prim::{PrimOptions, PrimResult};
use crate::analysis::sensitivity::{self, Bootstrap, Interval};
use crate::experiment::design::DesignKind;
use crate::experiment::spec::SweepFile;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// An analysis method (`--method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Method {
    Sobol,
    Morris,
    Prcc,
    Prim,
    /// Every method the design allows (PRIM when a condition is given).
    All,
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Method, String> {
        match s {
            "sobol" => Ok(Method::Sobol),
            "morris" => Ok(Method::Morris),
            "prcc" => Ok(Method::Prcc),
            "prim" => Ok(Method::Prim),
            "all" => Ok(Method::All),
            _ => Err(format!("unknown method {s:?}: use sobol, morris, prcc, prim or all")),
        }
    }
}

/// What to analyse and how.
#[derive(Clone, Debug)]
pub struct AnalyzeOptions {
    pub sweep: PathBuf,
    /// `FIRM.METRIC` or `market.METRIC` (default: the focus firm's end cash, last year's profit and
    /// bankruptcy by the last reported year).
    pub outcomes: Vec<String>,
    pub methods: Vec<Method>,
    /// Conditions for PRIM, `OUTCOME OP VALUE` (`openai.bankrupt_by_2024 == 1`, `openai.exit_reason == acquired`).
    pub prim: Vec<String>,
    /// Output folder (default: `SWEEP/analysis/`).
    pub out: Option<PathBuf>,
    pub bootstrap: Bootstrap,
    pub prim_options: PrimOptions,
    /// Target half-width of a point mean's interval for the replicates-needed figure (default: a tenth of
    /// the parameters' standard deviation of the outcome).
    pub half_width: Option<f64>,
    pub force: bool,
    /// Draw the PNG charts at this resolution (default: 96 dpi, the SVGs' pixel size).
    pub dpi: Option<u32>,
    /// The command line (or the Python call), for the manifest and the report.
    pub command_line: Vec<String>,
}

impl AnalyzeOptions {
    pub fn new(sweep: PathBuf) -> AnalyzeOptions {
        AnalyzeOptions {
            sweep,
            outcomes: Vec::new(),
            methods: vec![Method::All],
            prim: Vec::new(),
            out: None,
            bootstrap: Bootstrap::default(),
            prim_options: PrimOptions::default(),
            half_width: None,
            force: false,
            dpi: None,
            command_line: Vec::new(),
        }
    }
}

/// A number for the CSVs: NaN (no value) as an empty field.
fn nan_empty<S: serde::Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    if x.is_finite() { s.serialize_f64(*x) } else { s.serialize_none() }
}

/// One row of sensitivity.csv.
#[derive(Clone, Debug, serde::Serialize, PartialEq)]
pub struct SensitivityRow {
    pub outcome: String,
    /// `sobol`, `morris`, `prcc`, `src`, `fit` or `noise`.
    pub method: String,
    /// A parameter's key path, `a × b` for a second-order index, empty for the fit and the noise rows.
    pub parameter: String,
    /// `S1`, `ST`, `S2`; `mu`, `mu_star`, `sigma`; `prcc`; `src`; `r2`, `rank_r2`; `var_total`,
    /// `var_parameters`, `var_seeds`, `seed_share`, `target_half_width`, `replicates_needed`.
    pub index: String,
    #[serde(serialize_with = "nan_empty")]
    pub value: f64,
    #[serde(serialize_with = "nan_empty")]
    pub ci_lo: f64,
    #[serde(serialize_with = "nan_empty")]
    pub ci_hi: f64,
    /// Runs whose outcome entered the analysis.
    pub n_runs: usize,
}

/// One row of prim_boxes.csv: a box of the peeling trajectory (`row = trajectory`) or a limit of the
/// chosen box (`row = limit`).
#[derive(Clone, Debug, serde::Serialize, PartialEq)]
pub struct PrimRow {
    pub condition: String,
    pub row: String,
    /// The peeling step (0: every case); the chosen box's step for its limits.
    pub step: usize,
    pub chosen: bool,
    #[serde(serialize_with = "nan_empty")]
    pub coverage: f64,
    #[serde(serialize_with = "nan_empty")]
    pub density: f64,
    #[serde(serialize_with = "nan_empty")]
    pub mass: f64,
    pub n_cases: usize,
    pub n_of_interest: usize,
    pub parameter: String,
    #[serde(serialize_with = "nan_empty")]
    pub lo: f64,
    #[serde(serialize_with = "nan_empty")]
    pub hi: f64,
    #[serde(serialize_with = "nan_empty")]
    pub quasi_p: f64,
}

/// A finished analysis.
pub struct AnalyzeOutcome {
    pub out: PathBuf,
    pub rows: Vec<SensitivityRow>,
    pub prim: Vec<PrimRow>,
    pub files: Vec<PathBuf>,
    /// What was skipped and why (a method the design does not allow, a condition that never holds).
    pub notes: Vec<String>,
    /// A short text for the terminal.
    pub summary: String,
}

/// Where an outcome's value comes from.
#[derive(Clone, Debug, PartialEq)]
enum Source {
    /// A runs.csv column (bools as 0/1).
    Runs(String),
    /// An annual.csv column of one firm in one year.
    Annual { firm: String, column: String, year: i32 },
}

/// A resolved outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// As the user wrote it: `openai.end_cash_usd`.
    pub name: String,
    source: Source,
    /// Whether the values are yes/no.
    pub binary: bool,
}

/// A run of the sweep as read from runs.csv.
pub struct Run {
    pub run_id: u64,
    pub point_id: u64,
    pub ok: bool,
    fields: BTreeMap<String, String>,
}

/// A verified sweep ready to analyse.
pub struct SweepData {
    pub dir: PathBuf,
    pub spec: SweepFile,
    pub manifest: serde_json::Value,
    pub firms: Vec<String>,
    pub parameters: Vec<String>,
    /// Each point's parameter values (as numbers; bools as 0/1), in point-id order.
    pub points: Vec<Vec<f64>>,
    pub runs: Vec<Run>,
    annual: BTreeMap<u64, Vec<BTreeMap<String, String>>>,
    runs_columns: Vec<String>,
}

fn number(s: &str) -> Option<f64> {
    match s {
        "true" => Some(1.0),
        "false" => Some(0.0),
        _ => s.parse::<f64>().ok().filter(|x| x.is_finite()),
    }
}

/// Reads and verifies a sweep folder for analysis.
pub fn read_sweep(dir: &Path) -> Result<SweepData> {
    let t = super::results::sweep_tables(dir)?;
    if t.manifest["kind"] == "shard" {
        bail!(
            "{} is one shard of a sweep: merge the shards first (`llm-market merge`), then analyse the merge",
            dir.display()
        );
    }
    let spec: SweepFile = serde_json::from_value(t.manifest["sweep_spec"].clone())
        .with_context(|| format!("{}: its manifest's sweep_spec cannot be read", dir.display()))?;
    if let Some(d) = &spec.posterior {
        bail!(
            "{} crosses its design with {} posterior draws (`sweep --posterior`): its points are not the design's, \
             so the design's indices cannot be computed from them. Compare it instead (`llm-market compare {}`: \
             predictive intervals and the variance split per design point), or analyse a sweep without --posterior",
            dir.display(),
            d.rows.len(),
            dir.display()
        );
    }
    let header: Vec<String> = t.runs_header.iter().map(str::to_string).collect();
    let parameters = spec.parameters.iter().map(|p| p.path.clone()).collect::<Vec<_>>();
    let firms: Vec<String> =
        header.iter().filter_map(|h| h.strip_suffix("_total_revenue_usd").map(str::to_string)).collect();
    let n_points = t.manifest["points"].as_u64().unwrap_or(0) as usize;
    let mut points: Vec<Option<Vec<f64>>> = vec![None; n_points];
    let mut runs = Vec::with_capacity(t.runs.len());
    for r in &t.runs {
        let fields: BTreeMap<String, String> = header.iter().cloned().zip(r.iter().map(str::to_string)).collect();
        let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
        let run_id: u64 = get("run_id").parse().context("runs.csv: bad run_id")?;
        let point_id: u64 = get("point_id").parse().context("runs.csv: bad point_id")?;
        if let Some(slot) = points.get_mut(point_id as usize)
            && slot.is_none()
        {
            *slot = Some(parameters.iter().map(|p| number(&get(p)).unwrap_or(f64::NAN)).collect());
        }
        runs.push(Run { run_id, point_id, ok: get("status") == "ok", fields });
    }
    let points = points.into_iter().map(|p| p.unwrap_or_else(|| vec![f64::NAN; parameters.len()])).collect();
    Ok(SweepData {
        dir: dir.to_path_buf(),
        spec,
        manifest: t.manifest,
        firms,
        parameters,
        points,
        runs,
        annual: t.annual,
        runs_columns: header,
    })
}

/// Per-firm metrics of runs.csv (what follows `<firm>_`).
fn firm_metrics(data: &SweepData, firm: &str) -> Vec<String> {
    data.runs_columns.iter().filter_map(|c| c.strip_prefix(&format!("{firm}_")).map(str::to_string)).collect()
}

/// Resolves `FIRM.METRIC` / `market.METRIC` against the sweep's columns.
pub fn resolve_outcome(data: &SweepData, name: &str) -> Result<Outcome, String> {
    let Some((firm, metric)) = name.split_once('.') else {
        return Err(format!("--outcome {name:?}: write FIRM.METRIC (e.g. openai.end_cash_usd) or market.METRIC"));
    };
    let market = ["end_active_users", "end_paying_users", "end_hhi", "end_open_source_share"];
    if firm == "market" {
        if market.contains(&metric) {
            return Ok(Outcome { name: name.into(), source: Source::Runs(metric.into()), binary: false });
        }
        return Err(format!("--outcome {name:?}: the market's outcomes are {}", market.join(", ")));
    }
    if !data.firms.iter().any(|f| f == firm) {
        return Err(format!("--outcome {name:?}: no firm {firm:?} in this sweep (firms: {})", data.firms.join(", ")));
    }
    let column = format!("{firm}_{metric}");
    if data.runs_columns.contains(&column) {
        if metric == "exit_reason" || metric.ends_with("_date") {
            return Err(format!(
                "--outcome {name:?} is a {} , not a number: analyse {firm}.bankrupt_by_<year> or {firm}.bankrupt, or \
                 give PRIM a condition (--prim '{firm}.exit_reason == bankrupt')",
                if metric == "exit_reason" { "category" } else { "date" }
            ));
        }
        let binary = metric == "bankrupt" || metric.starts_with("bankrupt_by_");
        return Ok(Outcome { name: name.into(), source: Source::Runs(column), binary });
    }
    // `<annual column>_<year>`: revenue_2024_usd is revenue_usd in 2024.
    let annual_cols: Vec<&String> =
        data.annual.values().flat_map(|rows| rows.first()).flat_map(|r| r.keys()).collect::<Vec<_>>();
    let parsed = metric.rsplit_once('_').and_then(|(head, tail)| {
        let (head, tail, usd) = if tail == "usd" {
            let (h, y) = head.rsplit_once('_')?;
            (h, y, "_usd")
        } else {
            (head, tail, "")
        };
        Some((format!("{head}{usd}"), tail.parse::<i32>().ok()?))
    });
    if let Some((col, year)) = parsed
        && annual_cols.iter().any(|c| **c == col)
        && !["run_id", "year", "firm", "kind"].contains(&col.as_str())
    {
        let has_year =
            data.annual.values().flatten().any(|r| r.get("year").map(String::as_str) == Some(&year.to_string()));
        if !has_year {
            return Err(format!("--outcome {name:?}: annual.csv has no year {year}"));
        }
        return Ok(Outcome {
            name: name.into(),
            source: Source::Annual { firm: firm.into(), column: col.clone(), year },
            binary: col == "alive_at_year_end",
        });
    }
    Err(format!(
        "--outcome {name:?}: {firm} has no metric {metric:?}; runs.csv gives {}, and annual.csv's columns give \
         <column>_<year> (revenue_2024_usd, profit_2025_usd, …)",
        firm_metrics(data, firm).join(", ")
    ))
}

impl SweepData {
    /// The outcome of one run (None for a run that did not finish or has no value).
    pub fn value(&self, run: &Run, o: &Outcome) -> Option<f64> {
        if !run.ok {
            return None;
        }
        match &o.source {
            Source::Runs(c) => run.fields.get(c).and_then(|v| number(v)),
            Source::Annual { firm, column, year } => self
                .annual
                .get(&run.run_id)?
                .iter()
                .find(|r| r.get("firm") == Some(firm) && r.get("year").map(String::as_str) == Some(&year.to_string()))
                .and_then(|r| r.get(column))
                .and_then(|v| number(v)),
        }
    }

    /// Each point's replicate outcomes, in point order.
    pub fn groups(&self, o: &Outcome) -> Vec<Vec<f64>> {
        let mut g = vec![Vec::new(); self.points.len()];
        for r in &self.runs {
            if let (Some(v), Some(slot)) = (self.value(r, o), g.get_mut(r.point_id as usize)) {
                slot.push(v);
            }
        }
        g
    }

    /// The outcomes as a table point × replicate (None: a run without a value).
    pub fn table(&self, o: &Outcome) -> Vec<Vec<Option<f64>>> {
        let reps = self.spec.replicates as usize;
        let mut t = vec![vec![None; reps]; self.points.len()];
        for r in &self.runs {
            let replicate = r.fields.get("replicate").and_then(|v| v.parse::<usize>().ok());
            if let (Some(v), Some(rep)) = (self.value(r, o), replicate)
                && let Some(cell) = t.get_mut(r.point_id as usize).and_then(|row| row.get_mut(rep))
            {
                *cell = Some(v);
            }
        }
        t
    }

    fn design_kind(&self) -> DesignKind {
        self.spec.design.kind
    }
}

/// A PRIM condition: `OUTCOME OP VALUE`.
#[derive(Clone, Debug)]
pub struct Condition {
    pub text: String,
    column: Source,
    op: String,
    value: String,
}

/// Parses a `--prim` condition against the sweep's columns.
pub fn parse_condition(data: &SweepData, text: &str) -> Result<Condition, String> {
    let ops = ["==", "!=", "<=", ">=", "<", ">"];
    let Some((lhs, op, rhs)) =
        ops.iter().find_map(|op| text.split_once(op).map(|(l, r)| (l.trim(), *op, r.trim().trim_matches('\''))))
    else {
        return Err(format!(
            "--prim {text:?}: write OUTCOME OP VALUE, e.g. 'openai.bankrupt_by_2024 == 1' (OP one of ==, !=, <, <=, >, >=)"
        ));
    };
    let column = if let Some((firm, "exit_reason")) = lhs.split_once('.') {
        if !data.firms.iter().any(|f| f == firm) {
            return Err(format!("--prim {text:?}: no firm {firm:?} in this sweep"));
        }
        if !matches!(op, "==" | "!=") {
            return Err(format!("--prim {text:?}: exit_reason is a category: use == or !="));
        }
        Source::Runs(format!("{firm}_exit_reason"))
    } else {
        let o = resolve_outcome(data, lhs)
            .map_err(|e| format!("--prim {text:?}: {}", e.trim_start_matches("--outcome ")))?;
        if rhs.parse::<f64>().is_err() && !matches!(rhs, "true" | "false") {
            return Err(format!("--prim {text:?}: {rhs:?} is not a number"));
        }
        o.source
    };
    Ok(Condition { text: text.into(), column, op: op.into(), value: rhs.into() })
}

impl Condition {
    /// Whether the condition holds for a run (None for a run without the value).
    fn holds(&self, data: &SweepData, run: &Run) -> Option<bool> {
        if !run.ok {
            return None;
        }
        if let Source::Runs(c) = &self.column
            && c.ends_with("_exit_reason")
        {
            let v = run.fields.get(c)?;
            return Some((v == &self.value) == (self.op == "=="));
        }
        let o = Outcome { name: String::new(), source: self.column.clone(), binary: false };
        let x = data.value(run, &o)?;
        let y = number(&self.value)?;
        Some(match self.op.as_str() {
            "==" => x == y,
            "!=" => x != y,
            "<" => x < y,
            "<=" => x <= y,
            ">" => x > y,
            _ => x >= y,
        })
    }
}

fn row(outcome: &str, method: &str, parameter: &str, index: &str, i: Interval, n: usize) -> SensitivityRow {
    SensitivityRow {
        outcome: outcome.into(),
        method: method.into(),
        parameter: parameter.into(),
        index: index.into(),
        value: i.value,
        ci_lo: i.lo,
        ci_hi: i.hi,
        n_runs: n,
    }
}

fn plain(x: f64) -> Interval {
    Interval { value: x, lo: f64::NAN, hi: f64::NAN }
}

/// Each point's mean outcome, or an error naming the first point without a finished run.
/// Each point's mean outcome (None for a point without a finished run with a value) and the runs counted.
fn point_means(data: &SweepData, o: &Outcome) -> (Vec<Option<f64>>, usize) {
    let groups = data.groups(o);
    let n: usize = groups.iter().map(Vec::len).sum();
    (groups.iter().map(|g| (!g.is_empty()).then(|| crate::analysis::stats::mean(g))).collect(), n)
}

/// The default outcomes: the focus firm's (openai, else the first) end cash, last year's profit and
/// bankruptcy by the last reported year.
fn default_outcomes(data: &SweepData) -> Vec<String> {
    let firm = if data.firms.iter().any(|f| f == "openai") { "openai".to_string() } else { data.firms[0].clone() };
    let year = data.annual.values().flatten().filter_map(|r| r.get("year")?.parse::<i32>().ok()).max();
    let by = crate::sim::rows::BANKRUPTCY_YEARS.iter().rev().find(|y| Some(**y) <= year).copied();
    let mut v = vec![format!("{firm}.end_cash_usd")];
    if let Some(y) = year {
        v.push(format!("{firm}.profit_{y}_usd"));
    }
    if let Some(y) = by {
        v.push(format!("{firm}.bankrupt_by_{y}"));
    }
    v
}

/// Runs an analysis: reads and verifies the sweep, computes, writes the folder.
pub fn analyze(opts: &AnalyzeOptions) -> Result<AnalyzeOutcome> {
    let started = SystemTime::now();
    let data = read_sweep(&opts.sweep)?;
    if data.firms.is_empty() {
        bail!("{}: runs.csv has no firm columns", opts.sweep.display());
    }
    let names = if opts.outcomes.is_empty() { default_outcomes(&data) } else { opts.outcomes.clone() };
    let outcomes: Vec<Outcome> =
        names.iter().map(|n| resolve_outcome(&data, n)).collect::<Result<_, _>>().map_err(anyhow::Error::msg)?;
    let conditions: Vec<Condition> =
        opts.prim.iter().map(|c| parse_condition(&data, c)).collect::<Result<_, _>>().map_err(anyhow::Error::msg)?;
    let kind = data.design_kind();
    let all = opts.methods.contains(&Method::All);
    let wants = |m: Method| all || opts.methods.contains(&m);
    let mut notes = Vec::new();
    if opts.methods.contains(&Method::Sobol) && kind != DesignKind::Saltelli {
        bail!(
            "--method sobol: {} has a {kind:?} design; Sobol indices need a Saltelli design: in the sweep file set \
             [design] kind = \"saltelli\", samples = N (a power of two, e.g. 256), and second_order = true for \
             pairwise indices",
            opts.sweep.display()
        );
    }
    if opts.methods.contains(&Method::Morris) && kind != DesignKind::Morris {
        bail!(
            "--method morris: {} has a {kind:?} design; Morris measures need a Morris design: in the sweep file set \
             [design] kind = \"morris\", trajectories = r (10–50), levels = 4",
            opts.sweep.display()
        );
    }
    if opts.methods.contains(&Method::Prim) && conditions.is_empty() {
        bail!("--method prim needs a condition: --prim 'openai.bankrupt_by_2024 == 1'");
    }
    let p = data.parameters.len();
    let numeric = data.points.iter().all(|x| x.iter().all(|v| v.is_finite()));
    let mut rows = Vec::new();
    for o in &outcomes {
        let groups = data.groups(o);
        let n: usize = groups.iter().map(Vec::len).sum();
        if n == 0 {
            notes.push(format!("{}: no finished run has a value; skipped", o.name));
            continue;
        }
        let first = groups.iter().flatten().next().copied().unwrap_or(0.0);
        if groups.iter().flatten().all(|v| *v == first) {
            notes.push(format!(
                "{}: the same in every run ({}): nothing to attribute; skipped",
                o.name,
                fmt_index(first)
            ));
            continue;
        }
        if wants(Method::Sobol) && kind == DesignKind::Saltelli {
            let (means, n) = point_means(&data, o);
            let missing: Vec<usize> = means.iter().enumerate().filter(|(_, m)| m.is_none()).map(|(i, _)| i).collect();
            if let Some(first) = missing.first() {
                notes.push(format!(
                    "{}: Sobol indices skipped: {} of {} points have no finished run with a value (first: point {first}; \
                     see runs.csv's status and error) and the estimators need every point of a Saltelli block",
                    o.name,
                    missing.len(),
                    means.len(),
                ));
            } else {
                let y: Vec<f64> = means.into_iter().flatten().collect();
                let s = sensitivity::sobol(&y, p, data.spec.design.second_order(), &opts.bootstrap)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", o.name))?;
                for (j, name) in data.parameters.iter().enumerate() {
                    rows.push(row(&o.name, "sobol", name, "S1", s.s1[j], n));
                    rows.push(row(&o.name, "sobol", name, "ST", s.st[j], n));
                }
                for (j, k, i) in &s.s2 {
                    let pair = format!("{} × {}", data.parameters[*j], data.parameters[*k]);
                    rows.push(row(&o.name, "sobol", &pair, "S2", *i, n));
                }
            }
        }
        if wants(Method::Morris) && kind == DesignKind::Morris {
            // Trajectories are independent: one with a point without a value is left out, and a note says so.
            let (means, n) = point_means(&data, o);
            let size = p + 1;
            let (mut x, mut y, mut dropped) = (Vec::new(), Vec::new(), 0);
            for (t, chunk) in means.chunks(size).enumerate() {
                if chunk.len() == size && chunk.iter().all(Option::is_some) {
                    x.extend(data.points[t * size..(t + 1) * size].iter().cloned());
                    y.extend(chunk.iter().flatten());
                } else {
                    dropped += 1;
                }
            }
            if dropped > 0 {
                notes.push(format!(
                    "{}: Morris: {dropped} of {} trajectories left out: a point of each has no finished run with a value",
                    o.name,
                    means.len().div_ceil(size)
                ));
            }
            if !y.is_empty() {
                let ee = sensitivity::elementary_effects(&x, &y, data.spec.design.levels())
                    .map_err(|e| anyhow::anyhow!("{}: {e}", o.name))?;
                let m = sensitivity::morris(&ee, &opts.bootstrap);
                for (j, name) in data.parameters.iter().enumerate() {
                    rows.push(row(&o.name, "morris", name, "mu", m.mu[j], n));
                    rows.push(row(&o.name, "morris", name, "mu_star", m.mu_star[j], n));
                    rows.push(row(&o.name, "morris", name, "sigma", m.sigma[j], n));
                }
            }
        }
        if wants(Method::Prcc) {
            let cases: Vec<(Vec<f64>, f64)> = data
                .points
                .iter()
                .zip(&groups)
                .filter(|(_, g)| !g.is_empty())
                .map(|(x, g)| (x.clone(), crate::analysis::stats::mean(g)))
                .collect();
            let x: Vec<Vec<f64>> = cases.iter().map(|c| c.0.clone()).collect();
            let y: Vec<f64> = cases.iter().map(|c| c.1).collect();
            if !numeric {
                notes.push(format!("{}: PRCC/SRC skipped: a parameter's values are not numbers", o.name));
            } else {
                match sensitivity::regression(&x, &y, opts.bootstrap.level) {
                    Ok(r) => {
                        for (j, name) in data.parameters.iter().enumerate() {
                            rows.push(row(&o.name, "prcc", name, "prcc", r.prcc[j], n));
                            rows.push(row(&o.name, "src", name, "src", r.src[j], n));
                        }
                        rows.push(row(&o.name, "fit", "", "r2", plain(r.r2), n));
                        rows.push(row(&o.name, "fit", "", "rank_r2", plain(r.rank_r2), n));
                    }
                    Err(e) => notes.push(format!("{}: PRCC/SRC skipped: {e}", o.name)),
                }
            }
        }
        let replicated = groups.iter().any(|g| g.len() > 1);
        if replicated {
            let s = sensitivity::noise(&data.table(o), opts.half_width, opts.bootstrap.level);
            for (index, v) in [
                ("var_total", s.var_total),
                ("var_parameters", s.var_parameters),
                ("var_seeds", s.var_seeds),
                ("var_seeds_shared", s.var_seeds_shared),
                ("seed_share", s.seed_share),
                ("target_half_width", s.target_half_width),
                ("replicates_needed", s.replicates_needed),
            ] {
                rows.push(row(&o.name, "noise", "", index, plain(v), n));
            }
        } else {
            notes.push(format!("{}: one replicate per point: the seeds' share of the variance is unknown", o.name));
        }
    }
    if all && kind != DesignKind::Saltelli && kind != DesignKind::Morris {
        notes.push(format!(
            "a {kind:?} design: Sobol indices need kind = \"saltelli\" and Morris measures kind = \"morris\"; \
             PRCC/SRC and the variance split are given"
        ));
    }
    // PRIM on each condition, over the runs (each run one case).
    let mut prim_rows = Vec::new();
    let mut prim_results: Vec<(Condition, PrimResult)> = Vec::new();
    if wants(Method::Prim) {
        for c in &conditions {
            let cases: Vec<(Vec<f64>, bool)> = data
                .runs
                .iter()
                .filter_map(|r| Some((data.points.get(r.point_id as usize)?.clone(), c.holds(&data, r)?)))
                .collect();
            let x: Vec<Vec<f64>> = cases.iter().map(|c| c.0.clone()).collect();
            let y: Vec<bool> = cases.iter().map(|c| c.1).collect();
            match crate::analysis::prim::prim(&x, &y, &opts.prim_options) {
                Ok(r) => {
                    for (step, b) in r.trajectory.iter().enumerate() {
                        prim_rows.push(PrimRow {
                            condition: c.text.clone(),
                            row: "trajectory".into(),
                            step,
                            chosen: step == r.chosen_step,
                            coverage: b.coverage,
                            density: b.density,
                            mass: b.mass,
                            n_cases: b.cases,
                            n_of_interest: b.of_interest,
                            parameter: String::new(),
                            lo: f64::NAN,
                            hi: f64::NAN,
                            quasi_p: f64::NAN,
                        });
                    }
                    let b = &r.chosen;
                    for l in &r.restrictions {
                        prim_rows.push(PrimRow {
                            condition: c.text.clone(),
                            row: "limit".into(),
                            step: r.chosen_step,
                            chosen: true,
                            coverage: b.coverage,
                            density: b.density,
                            mass: b.mass,
                            n_cases: b.cases,
                            n_of_interest: b.of_interest,
                            parameter: data.parameters[l.parameter].clone(),
                            lo: l.lo,
                            hi: l.hi,
                            quasi_p: l.quasi_p,
                        });
                    }
                    prim_results.push((c.clone(), r));
                }
                Err(e) => notes.push(format!("PRIM on {}: {e}", c.text)),
            }
        }
    } else if !conditions.is_empty() {
        notes.push("--prim conditions given but --method excludes prim: no PRIM".into());
    }

    let out = opts.out.clone().unwrap_or_else(|| opts.sweep.join("analysis"));
    let _lock = super::folder::claim(&out, Kind::Analysis, if opts.force { Mode::Force } else { Mode::Fresh })?;
    let mut files = Vec::new();
    let spath = out.join("sensitivity.csv");
    super::sweep_out::write_atomic(&spath, csv_bytes(SENSITIVITY_COLUMNS, &rows)?)?;
    files.push(spath);
    let ppath = out.join("prim_boxes.csv");
    super::sweep_out::write_atomic(&ppath, csv_bytes(PRIM_COLUMNS, &prim_rows)?)?;
    files.push(ppath);
    let ctx = super::analysis_report::Context {
        data: &data,
        outcomes: &outcomes,
        rows: &rows,
        prim: &prim_results,
        notes: &notes,
        command_line: &opts.command_line,
        level: opts.bootstrap.level,
        dpi: opts.dpi,
    };
    files.extend(super::analysis_report::write(&out, &ctx)?);
    let (version, commit) = super::manifest::tool_version();
    let m = serde_json::json!({
        "tool": "llm-market",
        "kind": "analysis",
        "version": version,
        "git_commit": commit,
        "command_line": opts.command_line,
        "sweep": opts.sweep.display().to_string(),
        "sweep_spec_hash": data.manifest["spec_hash"],
        "design": format!("{:?}", kind).to_lowercase(),
        "outcomes": names,
        "prim": opts.prim,
        "resamples": opts.bootstrap.resamples,
        "level": opts.bootstrap.level,
        "bootstrap_seed": opts.bootstrap.seed,
        "notes": notes,
        "start_time": super::manifest::iso(started),
        "end_time": super::manifest::iso(SystemTime::now()),
    });
    super::manifest::write(&out.join("manifest.json"), &m)?;
    let summary = summary_text(&data, &rows, &prim_rows);
    Ok(AnalyzeOutcome { out, rows, prim: prim_rows, files, notes, summary })
}

/// The columns of sensitivity.csv and prim_boxes.csv (written even when there is no row).
const SENSITIVITY_COLUMNS: &str = "outcome,method,parameter,index,value,ci_lo,ci_hi,n_runs";
const PRIM_COLUMNS: &str =
    "condition,row,step,chosen,coverage,density,mass,n_cases,n_of_interest,parameter,lo,hi,quasi_p";

/// A CSV of serialisable rows under `header` (the rows' own field names, checked by a unit test).
fn csv_bytes<T: serde::Serialize>(header: &str, rows: &[T]) -> Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    let body = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = format!("{header}\n").into_bytes();
    out.extend(body);
    Ok(out)
}

/// The terminal summary: per outcome, the parameters ranked by their main index.
fn summary_text(data: &SweepData, rows: &[SensitivityRow], prim: &[PrimRow]) -> String {
    let mut t = format!(
        "sweep {} ({} design, {} points, {} runs)\n",
        data.spec.name,
        format!("{:?}", data.design_kind()).to_lowercase(),
        data.points.len(),
        data.runs.len()
    );
    let outcomes: Vec<&String> = {
        let mut v: Vec<&String> = rows.iter().map(|r| &r.outcome).collect();
        v.dedup();
        v
    };
    for o in outcomes {
        let of = |m: &'static str, i: &'static str| {
            rows.iter().filter(move |r| &r.outcome == o && r.method == m && r.index == i)
        };
        let (method, index) = if of("sobol", "ST").next().is_some() {
            ("sobol", "ST")
        } else if of("morris", "mu_star").next().is_some() {
            ("morris", "mu_star")
        } else {
            ("prcc", "prcc")
        };
        let mut ranked: Vec<&SensitivityRow> = of(method, index).collect();
        ranked.sort_by(|a, b| b.value.abs().total_cmp(&a.value.abs()));
        t.push_str(&format!("{o}: parameters by {index}\n"));
        for r in ranked.iter().take(6) {
            let extra = if method == "sobol" {
                of("sobol", "S1")
                    .find(|s| s.parameter == r.parameter)
                    .map(|s| format!("  S1 {:.3}", s.value))
                    .unwrap_or_default()
            } else {
                String::new()
            };
            t.push_str(&format!(
                "  {:<48} {index} {:>10} [{}, {}]{extra}\n",
                r.parameter,
                fmt_index(r.value),
                fmt_index(r.ci_lo),
                fmt_index(r.ci_hi)
            ));
        }
        if let Some(s) = of("noise", "seed_share").next() {
            let v = |i: &'static str| of("noise", i).next().map_or(f64::NAN, |r| r.value);
            let pct = |x: f64| if x.is_finite() { format!("{:.0}%", x * 100.0) } else { "-".into() };
            t.push_str(&format!(
                "  seeds' share of the variance {} (shared by all points: {}); replicates per point for a \
                 95% interval of ±{} on a point's mean: {}\n",
                pct(s.value),
                pct(v("var_seeds_shared") / (v("var_seeds") + v("var_parameters"))),
                fmt_index(v("target_half_width")),
                if v("replicates_needed").is_finite() { format!("{:.0}", v("replicates_needed")) } else { "-".into() }
            ));
        }
    }
    for r in prim.iter().filter(|r| r.row == "trajectory" && r.chosen) {
        t.push_str(&format!(
            "PRIM {}: box with coverage {:.0}%, density {:.0}%, mass {:.0}%\n",
            r.condition,
            r.coverage * 100.0,
            r.density * 100.0,
            r.mass * 100.0
        ));
        for l in prim.iter().filter(|l| l.row == "limit" && l.condition == r.condition) {
            t.push_str(&format!(
                "  {} in [{}, {}] (quasi-p {:.2e})\n",
                l.parameter,
                fmt_index(l.lo),
                fmt_index(l.hi),
                l.quasi_p
            ));
        }
    }
    t
}

/// An index or a limit for people: 3 decimals, or money style for big numbers.
pub fn fmt_index(x: f64) -> String {
    if !x.is_finite() {
        "-".into()
    } else if x.abs() >= 1e4 {
        crate::analysis::fmt_big(x)
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_headers_name_the_rows_fields() {
        let r = SensitivityRow {
            outcome: "o".into(),
            method: "sobol".into(),
            parameter: "p".into(),
            index: "S1".into(),
            value: 0.5,
            ci_lo: f64::NAN,
            ci_hi: 1.0,
            n_runs: 3,
        };
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(&r).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(text, format!("{SENSITIVITY_COLUMNS}\no,sobol,p,S1,0.5,,1.0,3\n"), "NaN is an empty field");
        let p = PrimRow {
            condition: "c".into(),
            row: "trajectory".into(),
            step: 0,
            chosen: false,
            coverage: 1.0,
            density: 0.5,
            mass: 1.0,
            n_cases: 4,
            n_of_interest: 2,
            parameter: String::new(),
            lo: f64::NAN,
            hi: f64::NAN,
            quasi_p: f64::NAN,
        };
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(&p).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(text.lines().next().unwrap(), PRIM_COLUMNS);
        assert_eq!(
            String::from_utf8(csv_bytes(PRIM_COLUMNS, &[] as &[PrimRow]).unwrap()).unwrap(),
            format!("{PRIM_COLUMNS}\n")
        );
    }
}
