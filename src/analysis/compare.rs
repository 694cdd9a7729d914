//! Scenario comparison: per scenario and metric, the mean, standard deviation and 95% confidence interval
//! across replicates, and the difference from the baseline scenario with its interval — paired replicate
//! by replicate when both scenarios used the same seeds (common random numbers), Welch otherwise.
//! Probabilities (bankruptcy by a year's end, crossing a revenue threshold) get Wilson intervals.

use super::stats::{self, Estimate};
use chrono::{Datelike, NaiveDate};
use std::collections::{BTreeMap, BTreeSet};

/// One point of a firm's trace.
#[derive(Clone, Debug, PartialEq)]
pub struct TracePoint {
    pub date: NaiveDate,
    pub firm: String,
    pub cash: f64,
    pub users: f64,
    pub quality: f64,
}

/// One decision of a firm (a row of decisions.csv), as the report marks it.
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionMark {
    pub date: NaiveDate,
    pub firm: String,
    pub decision: String,
}

/// The decisions a report marks on the fan charts (prices and capacity orders are too frequent to mark).
pub const MARKED_DECISIONS: [&str; 5] = ["training_run", "release", "cuts", "funding_round", "exit"];

/// One replicate's results (rows of annual.csv and summary.csv as column → text maps).
#[derive(Clone, Debug, Default)]
pub struct Replicate {
    pub replicate: u64,
    pub seed: u64,
    pub annual: Vec<BTreeMap<String, String>>,
    pub summary: Vec<BTreeMap<String, String>>,
    pub hhi_end: f64,
    pub trace: Option<Vec<TracePoint>>,
    /// Its marked decisions (from decisions.csv beside the trace; empty without a trace).
    pub decisions: Vec<DecisionMark>,
}

/// A scenario: its replicates and where they came from.
#[derive(Clone, Debug, Default)]
pub struct ScenarioData {
    pub name: String,
    pub description: String,
    pub source: String,
    /// Tool version and commit that produced it.
    pub version: String,
    pub spec: String,
    pub replicates: Vec<Replicate>,
    /// Runs that failed and are left out.
    pub failed: usize,
    /// User agents per run (from the manifest).
    pub agents: Option<u64>,
    /// A sweep point's id and its parameter values (`path=value; …`); None for a single scenario.
    pub point: Option<(u64, String)>,
    /// Under `--posterior`: each replicate's parameter draw (replicates are draw-major, the same seeds in
    /// every draw); empty otherwise.
    pub draws: Vec<u64>,
}

/// One row of comparison.csv.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Row {
    pub scenario: String,
    pub metric: String,
    pub firm: String,
    /// `value` (mean and t-interval) or `probability` (share of replicates, Wilson interval).
    pub kind: &'static str,
    pub n: usize,
    pub mean: f64,
    pub sd: f64,
    pub ci_lo: f64,
    pub ci_hi: f64,
    pub diff_vs_baseline: f64,
    pub diff_ci_lo: f64,
    pub diff_ci_hi: f64,
    /// `paired` (same seeds as the baseline, replicate by replicate), `welch` or `baseline`.
    pub pairing: &'static str,
    /// A sweep point's id (empty for a scenario), so that the table joins runs.csv on `point_id`.
    pub point_id: Option<u64>,
    /// A sweep point's parameter values, `path=value; …` (empty for a scenario).
    pub parameters: String,
    /// Under `--posterior`: the posterior predictive interval (5% and 95% of the runs over parameter draws
    /// and seeds), and the shares of the runs' variance from the parameter draws and from the seeds (a
    /// two-way split, draws × seeds); empty otherwise.
    pub predictive_lo: Option<f64>,
    pub predictive_hi: Option<f64>,
    pub share_parameters: Option<f64>,
    pub share_seeds: Option<f64>,
}

/// The result of a comparison.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub baseline: String,
    pub level: f64,
    pub rows: Vec<Row>,
    pub firms: Vec<String>,
}

/// One replicate's values: (metric, firm, kind) → value.
type Metrics = BTreeMap<(String, String, &'static str), f64>;

pub use crate::sim::rows::BANKRUPTCY_YEARS;

fn num(m: &BTreeMap<String, String>, k: &str) -> f64 {
    m.get(k).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
}

fn decimal_year(d: NaiveDate) -> f64 {
    let start = NaiveDate::from_ymd_opt(d.year(), 1, 1).expect("valid");
    let days = if NaiveDate::from_ymd_opt(d.year(), 2, 29).is_some() { 366.0 } else { 365.0 };
    d.year() as f64 + (d - start).num_days() as f64 / days
}

/// Values of one replicate: (metric, firm) → value; indicators are 0/1 and marked as probabilities.
fn replicate_metrics(r: &Replicate) -> Metrics {
    let mut m = BTreeMap::new();
    for a in &r.annual {
        let (firm, year) = (a.get("firm").cloned().unwrap_or_default(), a.get("year").cloned().unwrap_or_default());
        for k in ["revenue", "cost", "profit"] {
            m.insert((format!("{k}_{year}_usd"), firm.clone(), "value"), num(a, &format!("{k}_usd")));
        }
    }
    let total_users: f64 = r.summary.iter().map(|s| num(s, "end_users")).filter(|v| v.is_finite()).sum();
    for s in &r.summary {
        let firm = s.get("firm").cloned().unwrap_or_default();
        m.insert(("end_cash_usd".into(), firm.clone(), "value"), num(s, "end_cash_usd"));
        m.insert(("peak_users".into(), firm.clone(), "value"), num(s, "peak_users"));
        if total_users > 0.0 {
            m.insert(("final_user_share".into(), firm.clone(), "value"), num(s, "end_users") / total_users);
        }
        let be = s.get("break_even_date").and_then(|d| d.parse::<NaiveDate>().ok());
        if let Some(d) = be {
            m.insert(("break_even_year".into(), firm.clone(), "value"), decimal_year(d));
        }
        m.insert(("break_even".into(), firm.clone(), "probability"), be.is_some() as u8 as f64);
        let bankrupt = s.get("bankrupt").map(|b| b == "true").unwrap_or(false);
        let exit = s.get("exit_date").and_then(|d| d.parse::<NaiveDate>().ok());
        for y in BANKRUPTCY_YEARS {
            let by = crate::sim::rows::bankrupt_by(bankrupt, exit, y);
            m.insert((format!("bankrupt_by_{y}"), firm.clone(), "probability"), by as u8 as f64);
        }
        for (k, v) in s {
            if let Some(label) = k.strip_prefix("year_revenue_").and_then(|x| x.strip_suffix("_first_year")) {
                m.insert(
                    (format!("revenue_reaches_{label}"), firm.clone(), "probability"),
                    (!v.is_empty()) as u8 as f64,
                );
            }
        }
    }
    // From the trace, when the replicate kept one: each firm's quality at the end of the run.
    for p in r.trace.iter().flatten() {
        m.insert(("end_quality_elo".into(), p.firm.clone(), "value"), p.quality);
    }
    m.insert(("hhi_end".into(), String::new(), "value"), r.hhi_end);
    m
}

/// Compares scenarios; `baseline` names one of them (default: the first). Refuses inputs produced by
/// different tool versions or with different firms.
pub fn compare(scenarios: &[ScenarioData], baseline: Option<&str>, level: f64) -> Result<Comparison, String> {
    let first = scenarios.first().ok_or("nothing to compare")?;
    for s in scenarios {
        if s.replicates.is_empty() {
            return Err(format!("scenario {} ({}) has no successful run to compare", s.name, s.source));
        }
        if s.version != first.version {
            return Err(format!(
                "{} was produced by llm-market {} but {} by {}: results of different binary versions are not comparable; rerun them with one binary",
                s.source, s.version, first.source, first.version
            ));
        }
    }
    let firms_of = |s: &ScenarioData| -> Vec<String> {
        s.replicates[0].summary.iter().filter_map(|r| r.get("firm").cloned()).collect()
    };
    let firms = firms_of(first);
    for s in scenarios {
        if firms_of(s) != firms {
            return Err(format!(
                "incompatible specs: {} has firms [{}] but {} has [{}]",
                s.name,
                firms_of(s).join(", "),
                first.name,
                firms.join(", ")
            ));
        }
    }
    let mut names = BTreeSet::new();
    for s in scenarios {
        if !names.insert(s.name.as_str()) {
            return Err(format!("two inputs are both called {:?}; rename one scenario", s.name));
        }
    }
    let base_name = baseline.unwrap_or(&first.name);
    let base = scenarios.iter().find(|s| s.name == base_name).ok_or_else(|| {
        format!(
            "--baseline {base_name:?} is none of the scenarios ({})",
            scenarios.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
        )
    })?;
    // Runs pair on (parameter draw, seed): the seed alone outside `--posterior`.
    let per_rep = |s: &ScenarioData| -> Vec<((u64, u64), Metrics)> {
        s.replicates
            .iter()
            .enumerate()
            .map(|(i, r)| ((s.draws.get(i).copied().unwrap_or(0), r.seed), replicate_metrics(r)))
            .collect()
    };
    let base_reps = per_rep(base);
    let mut rows = Vec::new();
    for s in scenarios {
        let reps = per_rep(s);
        let keys: BTreeSet<(String, String, &'static str)> = reps.iter().flat_map(|(_, m)| m.keys().cloned()).collect();
        let is_base = s.name == base.name;
        // Pair replicate i with the baseline's replicate of the same seed.
        let base_by_seed: BTreeMap<(u64, u64), &Metrics> = base_reps.iter().map(|(seed, m)| (*seed, m)).collect();
        let paired = reps.iter().all(|(seed, _)| base_by_seed.contains_key(seed));
        for key in keys {
            let vals: Vec<f64> =
                reps.iter().filter_map(|(_, m)| m.get(&key).copied()).filter(|v| v.is_finite()).collect();
            if vals.is_empty() {
                continue;
            }
            let (mean, sd, lo, hi) = if key.2 == "probability" {
                let k = vals.iter().filter(|v| **v > 0.5).count();
                let (p, lo, hi) = stats::wilson(k, vals.len(), level);
                (p, stats::sd(&vals), lo, hi)
            } else {
                let e = stats::estimate(&vals, level);
                (e.mean, e.sd, e.lo, e.hi)
            };
            let yes = |v: &[f64]| v.iter().map(|x| *x > 0.5).collect::<Vec<bool>>();
            let diff: Estimate = if is_base {
                Estimate { n: vals.len(), mean: 0.0, sd: 0.0, lo: 0.0, hi: 0.0 }
            } else if key.2 == "probability" {
                // Yes/no outcomes: Newcombe's intervals, which stay within [−1, 1].
                if paired {
                    let (a, b): (Vec<f64>, Vec<f64>) = reps
                        .iter()
                        .filter_map(|(seed, m)| Some((*m.get(&key)?, *base_by_seed.get(seed)?.get(&key)?)))
                        .unzip();
                    stats::newcombe_paired(&yes(&a), &yes(&b), level)
                } else {
                    let b: Vec<bool> =
                        yes(&base_reps.iter().filter_map(|(_, m)| m.get(&key).copied()).collect::<Vec<_>>());
                    let k = |v: &[bool]| v.iter().filter(|x| **x).count();
                    stats::newcombe_difference(k(&yes(&vals)), vals.len(), k(&b), b.len(), level)
                }
            } else if paired {
                let (a, b): (Vec<f64>, Vec<f64>) = reps
                    .iter()
                    .filter_map(|(seed, m)| Some((*m.get(&key)?, *base_by_seed.get(seed)?.get(&key)?)))
                    .filter(|(a, b)| a.is_finite() && b.is_finite())
                    .unzip();
                stats::paired_difference(&a, &b, level)
            } else {
                let b: Vec<f64> =
                    base_reps.iter().filter_map(|(_, m)| m.get(&key).copied()).filter(|v| v.is_finite()).collect();
                stats::welch_difference(&vals, &b, level)
            };
            rows.push(Row {
                scenario: s.name.clone(),
                metric: key.0.clone(),
                firm: key.1.clone(),
                kind: key.2,
                n: vals.len(),
                mean,
                sd,
                ci_lo: lo,
                ci_hi: hi,
                diff_vs_baseline: diff.mean,
                diff_ci_lo: diff.lo,
                diff_ci_hi: diff.hi,
                pairing: if is_base {
                    "baseline"
                } else if paired {
                    "paired"
                } else {
                    "welch"
                },
                point_id: s.point.as_ref().map(|p| p.0),
                parameters: s.point.as_ref().map(|p| p.1.clone()).unwrap_or_default(),
                predictive_lo: None,
                predictive_hi: None,
                share_parameters: None,
                share_seeds: None,
            });
            if !s.draws.is_empty() && s.draws.len() == reps.len() {
                let row = rows.last_mut().expect("a row");
                row.predictive_lo = Some(stats::quantile(&vals, 0.05));
                row.predictive_hi = Some(stats::quantile(&vals, 0.95));
                // Draw × seed tables (replicates are draw-major with the same seeds in every draw): of the
                // values, and of the paired differences from the baseline.
                let mut table: BTreeMap<u64, Vec<Option<f64>>> = BTreeMap::new();
                let mut diffs: BTreeMap<u64, Vec<Option<f64>>> = BTreeMap::new();
                for (d, (k, m)) in s.draws.iter().zip(&reps) {
                    let v = m.get(&key).copied().filter(|v| v.is_finite());
                    table.entry(*d).or_default().push(v);
                    let b = base_by_seed.get(k).and_then(|b| b.get(&key)).copied().filter(|v| v.is_finite());
                    diffs.entry(*d).or_default().push(v.zip(b).map(|(v, b)| v - b));
                }
                let t: Vec<Vec<Option<f64>>> = table.into_values().collect();
                let split = super::sensitivity::noise(&t, None, level);
                let total = split.var_parameters + split.var_seeds;
                if total > 0.0 {
                    row.share_parameters = Some(split.var_parameters / total);
                    row.share_seeds = Some(split.var_seeds / total);
                }
                // Intervals for a crossed design: the mean of K draws × R shared seeds has variance
                // σ²_draws/K + σ²_shared seeds/R + σ²_residual/(K·R), not σ²/(K·R).
                // The reported interval is the union of that and the runs-as-independent one (Wilson,
                // Newcombe or t), so that no outcome without variation gets a zero-width interval.
                let (lo, hi) = crossed_interval(&t, row.mean, level);
                let bounds = if key.2 == "probability" { (0.0, 1.0) } else { (f64::NEG_INFINITY, f64::INFINITY) };
                if lo.is_finite() && hi.is_finite() {
                    row.ci_lo = lo.max(bounds.0).min(row.ci_lo);
                    row.ci_hi = hi.min(bounds.1).max(row.ci_hi);
                }
                if !is_base && paired {
                    let dt: Vec<Vec<Option<f64>>> = diffs.into_values().collect();
                    let (lo, hi) = crossed_interval(&dt, row.diff_vs_baseline, level);
                    let b = if key.2 == "probability" { 1.0 } else { f64::INFINITY };
                    if lo.is_finite() && hi.is_finite() {
                        row.diff_ci_lo = lo.max(-b).min(row.diff_ci_lo);
                        row.diff_ci_hi = hi.min(b).max(row.diff_ci_hi);
                    }
                }
            }
        }
    }
    Ok(Comparison { baseline: base.name.clone(), level, rows, firms })
}

/// The `level` interval of the mean of a draws × seeds table (row k: draw k; column r: seed r, shared by
/// every draw) around `mean`, from its variance components (`sensitivity::noise`): Var = σ²_draws/K +
/// σ²_shared/R + σ²_residual/(K·R), with Student's t on min(K, R) − 1 degrees of freedom. When a run is
/// missing (no shared part), σ²_draws/K + σ²_seeds/R.
pub fn crossed_interval(table: &[Vec<Option<f64>>], mean: f64, level: f64) -> (f64, f64) {
    let split = super::sensitivity::noise(table, None, level);
    let k = table.len().max(1) as f64;
    let r = table.iter().map(Vec::len).max().unwrap_or(1).max(1) as f64;
    let var = if split.var_seeds_shared.is_finite() {
        split.var_parameters / k + split.var_seeds_shared / r + (split.var_seeds - split.var_seeds_shared) / (k * r)
    } else {
        split.var_parameters / k + split.var_seeds / r
    };
    if !(var.is_finite() && var >= 0.0) {
        return (f64::NAN, f64::NAN);
    }
    let df = (k.min(r) - 1.0).max(1.0);
    let half = stats::t_critical(df, level) * var.sqrt();
    (mean - half, mean + half)
}

/// Formats a value of a metric for people (no "-0").
pub fn fmt_value(metric: &str, x: f64) -> String {
    let s = fmt_raw(metric, x);
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| matches!(c, '0' | '.' | '%')) => rest.to_string(),
        _ => s,
    }
}

fn fmt_raw(metric: &str, x: f64) -> String {
    if metric.ends_with("_usd") || metric == "peak_users" {
        super::fmt_big(x)
    } else if metric.starts_with("bankrupt")
        || metric.starts_with("revenue_reaches")
        || metric == "break_even"
        || metric == "final_user_share"
    {
        format!("{:.0}%", 100.0 * x)
    } else {
        format!("{x:.2}")
    }
}

impl Comparison {
    /// The headline rows: the focus firm's yearly revenue and profit, end cash, bankruptcy and revenue
    /// probabilities, user share, and the market's HHI.
    pub fn headline(&self, focus: &str) -> Vec<&Row> {
        let wanted = |r: &Row| {
            (r.firm == focus
                && (r.metric.starts_with("revenue_20")
                    || r.metric.starts_with("profit_20")
                    || r.metric == "end_cash_usd"
                    || r.metric.starts_with("bankrupt_by")
                    || r.metric.starts_with("revenue_reaches")
                    || r.metric == "final_user_share"
                    || r.metric == "break_even"))
                || r.metric == "hhi_end"
        };
        self.rows.iter().filter(|r| wanted(r)).collect()
    }

    /// A readable table of the headline rows, or of the rows of `metrics` (for the focus firm and the
    /// market) when given.
    pub fn table(&self, focus: &str, metrics: &[String]) -> String {
        let mut s = format!(
            "Comparison against baseline `{}` ({}% intervals; firm: {focus}, hhi: market)\n\n",
            self.baseline,
            (self.level * 100.0).round()
        );
        s.push_str(&format!(
            "{:<28} {:<24} {:>4} {:>28} {:>34}\n",
            "metric", "scenario", "n", "mean [interval]", "difference vs baseline [interval]"
        ));
        let mut rows = if metrics.is_empty() {
            self.headline(focus)
        } else {
            self.rows.iter().filter(|r| metrics.contains(&r.metric) && (r.firm == focus || r.firm.is_empty())).collect()
        };
        rows.sort_by_key(|r| (metrics.iter().position(|m| *m == r.metric), r.metric.clone(), r.firm.clone()));
        let predictive: Vec<&Row> = rows.iter().copied().filter(|r| r.predictive_lo.is_some()).collect();
        for r in rows {
            let m = &r.metric;
            let est = format!("{} [{}, {}]", fmt_value(m, r.mean), fmt_value(m, r.ci_lo), fmt_value(m, r.ci_hi));
            let diff = if r.pairing == "baseline" {
                "(baseline)".to_string()
            } else {
                format!(
                    "{} [{}, {}] {}",
                    fmt_value(m, r.diff_vs_baseline),
                    fmt_value(m, r.diff_ci_lo),
                    fmt_value(m, r.diff_ci_hi),
                    r.pairing
                )
            };
            s.push_str(&format!("{:<28} {:<24} {:>4} {:>28} {:>34}\n", m, r.scenario, r.n, est, diff));
        }
        if !predictive.is_empty() {
            s.push_str(&format!(
                "\nunder the posterior (runs over parameter draws × seeds): 90% predictive interval and variance split\n\n{:<28} {:<24} {:>28} {:>11} {:>7}\n",
                "metric", "scenario", "predictive 90%", "parameters", "seeds"
            ));
            for r in predictive {
                let m = &r.metric;
                let pct = |x: Option<f64>| x.map_or("-".into(), |v| format!("{:.0}%", 100.0 * v));
                s.push_str(&format!(
                    "{:<28} {:<24} {:>28} {:>11} {:>7}\n",
                    m,
                    r.scenario,
                    format!(
                        "[{}, {}]",
                        fmt_value(m, r.predictive_lo.unwrap_or(f64::NAN)),
                        fmt_value(m, r.predictive_hi.unwrap_or(f64::NAN))
                    ),
                    pct(r.share_parameters),
                    pct(r.share_seeds)
                ));
            }
        }
        // A sweep folder's points: what each `<sweep>#<point>` stands for.
        let mut points: Vec<(&str, &str)> = self
            .rows
            .iter()
            .filter(|r| r.point_id.is_some())
            .map(|r| (r.scenario.as_str(), r.parameters.as_str()))
            .collect();
        points.dedup();
        if !points.is_empty() {
            s.push_str("\npoints:\n");
            for (name, params) in points {
                s.push_str(&format!("  {name:<24} {params}\n"));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossed_intervals_count_draws_and_shared_seeds_once() {
        // y = a_k + b_r: 8 draws (variance 6), 4 seeds shared by every draw (variance 20/3), no residual.
        let b = [-3.0, -1.0, 1.0, 3.0];
        let table: Vec<Vec<Option<f64>>> = (0..8).map(|k| b.iter().map(|x| Some(k as f64 + x)).collect()).collect();
        let (lo, hi) = crossed_interval(&table, 3.5, 0.95);
        let var = 6.0 / 8.0 + (20.0 / 3.0) / 4.0;
        let half = stats::t_critical(3.0, 0.95) * f64::sqrt(var);
        assert!((hi - lo - 2.0 * half).abs() < 1e-9, "{lo} {hi} against ±{half}");
        // Treating the 32 runs as independent would give a much narrower interval.
        let all: Vec<f64> = table.iter().flatten().flatten().copied().collect();
        let naive = stats::estimate(&all, 0.95);
        assert!(naive.hi - naive.lo < 0.6 * (hi - lo));
    }
}
