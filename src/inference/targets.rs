//! Calibration targets: the rows of `data/calibration_2023.csv` that name a model quantity (`model` column),
//! each with its value, relative uncertainty and period, and how a run's outputs give that quantity.
//!
//! Quantities are `FIRM.METRIC`: `visits` and `users` (a month of the monthly trace), `chat_serving_usd_per_day`
//! (what the firm's free and paid chat took of its compute bill, per day of the month) and `result_usd` (the
//! firm's result over a calendar year the run starts in: the run's part plus the year's earlier fixed and
//! training costs, e.g. OpenAI's 2022). The distance compares them on a log scale (`ln model − ln data`),
//! except the result, which can change sign and is compared as `model / |data|`.

use crate::api::RunResult;
use crate::config::Scenario;
use crate::model::econ;
use chrono::{Datelike, NaiveDate};

/// The public figures up to 2023-08-31 (compiled into the binary).
pub const DATA: &str = include_str!("../../data/calibration_2023.csv");

/// The metrics a target can name (as `FIRM.METRIC`).
pub const METRICS: &[&str] = &["visits", "users", "chat_serving_usd_per_day", "result_usd"];

/// One target.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// `quantity@period`, e.g. `openai.visits@2023-03`.
    pub id: String,
    /// `FIRM.METRIC`.
    pub quantity: String,
    pub firm: String,
    pub metric: String,
    /// `YYYY-MM` or `YYYY`.
    pub period: String,
    /// Year and month of the period's end (a year ends in December).
    pub month: (i32, u32),
    pub value: f64,
    /// Relative standard error of the figure (0.15 = ±15%), graded as the figure's own reliability.
    pub uncertainty: f64,
    pub unit: String,
    pub source: String,
    /// Line of the CSV (for messages).
    pub line: usize,
}

impl Target {
    /// Whether the target is compared on a log scale.
    pub fn log_scale(&self) -> bool {
        self.metric != "result_usd"
    }
    /// The summary statistic of a model value (NaN when it has none).
    pub fn summary(&self, model: f64) -> f64 {
        if self.log_scale() { if model > 0.0 { model.ln() } else { f64::NAN } } else { model / self.value.abs() }
    }
    /// The summary of the data.
    pub fn observed(&self) -> f64 {
        self.summary(self.value)
    }
    /// The data's standard error on the summary's scale.
    pub fn summary_se(&self) -> f64 {
        self.uncertainty
    }
    /// The model value of a summary (inverse of [`Target::summary`]).
    pub fn model_value(&self, s: f64) -> f64 {
        if self.log_scale() { s.exp() } else { s * self.value.abs() }
    }
}

/// Reads the targets of a calibration CSV (`data/calibration_2023.csv`'s columns: date, metric, entity,
/// value, unit, source, reliability, uncertainty, model). `name` is the file for messages.
pub fn parse(text: &str, name: &str) -> Result<Vec<Target>, String> {
    let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let header = r.headers().map_err(|e| format!("{name}: {e}"))?.clone();
    let col = |k: &str| {
        header.iter().position(|h| h == k).ok_or_else(|| {
            format!("{name}: no column `{k}` (columns: {})", header.iter().collect::<Vec<_>>().join(", "))
        })
    };
    let (cd, cv, cu, cs, cunc, cm) =
        (col("date")?, col("value")?, col("unit")?, col("source")?, col("uncertainty")?, col("model")?);
    let mut out: Vec<Target> = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| format!("{name}: line {line}: {e}"))?;
        let quantity = rec.get(cm).unwrap_or("").trim();
        if quantity.is_empty() {
            continue;
        }
        let at = |what: String| format!("{name}: line {line}, column `{what}`");
        let (firm, metric) = quantity.rsplit_once('.').unwrap_or(("", quantity));
        if firm.is_empty() || !METRICS.contains(&metric) {
            return Err(format!(
                "{}: unknown model quantity {quantity:?}; expected FIRM.METRIC with METRIC one of {}",
                at("model".into()),
                METRICS.join(", ")
            ));
        }
        let period = rec.get(cd).unwrap_or("").trim().to_string();
        let month =
            parse_period(&period).ok_or_else(|| format!("{}: {period:?} is not YYYY-MM or YYYY", at("date".into())))?;
        let value: f64 = rec
            .get(cv)
            .unwrap_or("")
            .trim()
            .parse()
            .map_err(|_| format!("{}: {:?} is not a number", at("value".into()), rec.get(cv).unwrap_or("")))?;
        let uncertainty: f64 = rec.get(cunc).unwrap_or("").trim().parse().map_err(|_| {
            format!("{}: a target needs its relative uncertainty (a number such as 0.15)", at("uncertainty".into()))
        })?;
        if !(uncertainty > 0.0 && uncertainty.is_finite()) {
            return Err(format!("{}: must be positive", at("uncertainty".into())));
        }
        let t = Target {
            id: format!("{quantity}@{period}"),
            quantity: quantity.to_string(),
            firm: firm.to_string(),
            metric: metric.to_string(),
            period,
            month,
            value,
            uncertainty,
            unit: rec.get(cu).unwrap_or("").to_string(),
            source: rec.get(cs).unwrap_or("").to_string(),
            line,
        };
        if !value.is_finite() || (!t.log_scale() && value == 0.0) {
            return Err(format!("{}: must be a finite, non-zero number", at("value".into())));
        }
        if t.log_scale() && value <= 0.0 {
            return Err(format!(
                "{}: {quantity} is compared on a log scale and needs a positive value",
                at("value".into())
            ));
        }
        if t.metric == "result_usd" && t.period.len() != 4 {
            return Err(format!("{}: {quantity} is a whole year (YYYY)", at("date".into())));
        }
        if let Some(other) = out.iter().find(|o| o.id == t.id) {
            return Err(format!("{name}: line {line}: {} is also the target of line {}", t.id, other.line));
        }
        out.push(t);
    }
    if out.is_empty() {
        return Err(format!("{name}: no row names a model quantity (column `model`)"));
    }
    Ok(out)
}

/// The built-in targets.
pub fn builtin() -> Vec<Target> {
    parse(DATA, "data/calibration_2023.csv").expect("the built-in targets parse")
}

/// `YYYY-MM-DD` as a date (`--end`).
pub fn parse_day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// `YYYY-MM` as (year, month) (`--fit-until`).
pub fn parse_month(s: &str) -> Option<(i32, u32)> {
    parse_period(s).filter(|_| s.len() == 7)
}

fn parse_period(p: &str) -> Option<(i32, u32)> {
    let y: i32 = p.get(..4)?.parse().ok()?;
    match p.len() {
        4 => Some((y, 12)),
        7 if p.get(4..5) == Some("-") => p.get(5..7)?.parse().ok().filter(|m| (1..=12).contains(m)).map(|m| (y, m)),
        _ => None,
    }
}

/// The last day of the latest target's period (the end of a calibration run).
pub fn last_day(targets: &[Target]) -> NaiveDate {
    let (y, m) = targets.iter().map(|t| t.month).max().unwrap_or((2023, 8));
    let next = if m == 12 { NaiveDate::from_ymd_opt(y + 1, 1, 1) } else { NaiveDate::from_ymd_opt(y, m + 1, 1) };
    next.and_then(|d| d.pred_opt()).expect("a date")
}

/// OpenAI's result over a calendar year that starts before the run: the run's part of the year plus the
/// fixed cost (on its growth trend) and training programmes of the days before the run, from the same
/// parameters. Revenue before the run (the GPT-3 API, about 28M in 2022) is not modelled and counts as zero.
/// `None` when the run does not start in `year` or has no such firm.
pub fn result_of_year(scenario: &Scenario, run: &RunResult, firm: &str, year: i32) -> Option<f64> {
    let p = scenario.params();
    let f = scenario.firms().iter().find(|f| f.id == firm)?;
    if p.start.0.year() != year {
        return None;
    }
    let jan1 = NaiveDate::from_ymd_opt(year, 1, 1)?;
    let before_days = (p.start.0 - jan1).num_days();
    let fixed: f64 = (0..before_days)
        .map(|k| {
            let years = (k - before_days) as f64 / 365.2425;
            f.fixed_cost_usd_per_year * econ::trend(1.0, f.fixed_cost_growth_per_year, years) / 365.2425
        })
        .sum();
    let training = crate::sim::firms::training_cost(f, None, p.decisions.start.0, jan1, p.start.0);
    let in_run =
        run.annual.iter().find(|r| r.firm == firm && r.year == year).map(|r| r.profit_usd.usd()).unwrap_or(0.0);
    Some(in_run - fixed - training)
}

/// Each target's model value in a run (recorded monthly); NaN where the run has none.
pub fn model_values(targets: &[Target], scenario: &Scenario, run: &RunResult) -> Vec<f64> {
    let month = |firm: &str, y: i32, m: u32| {
        run.trace.iter().find(|r| r.firm == firm && r.tick > 0 && r.date.year() == y && r.date.month() == m)
    };
    targets
        .iter()
        .map(|t| {
            let (y, m) = t.month;
            match t.metric.as_str() {
                "visits" => month(&t.firm, y, m).map_or(f64::NAN, |r| r.visits as f64),
                "users" => month(&t.firm, y, m).map_or(f64::NAN, |r| r.users as f64),
                "chat_serving_usd_per_day" => month(&t.firm, y, m)
                    .map_or(f64::NAN, |r| (r.cost_free_chat_usd + r.cost_paid_chat_usd).usd() / r.date.day() as f64),
                "result_usd" => result_of_year(scenario, run, &t.firm, y).unwrap_or(f64::NAN),
                _ => f64::NAN,
            }
        })
        .collect()
}

/// Writes a targets CSV (the columns `parse` reads) of `values` for `targets`' quantities and periods: a
/// synthetic data set, e.g. a run at known parameter values for simulation-based calibration.
pub fn to_csv(targets: &[Target], values: &[f64]) -> String {
    let mut s = String::from("date,metric,entity,value,unit,source,reliability,uncertainty,model\n");
    for (t, v) in targets.iter().zip(values) {
        s.push_str(&format!(
            "{},{},{},{v},{},synthetic,synthetic,{},{}\n",
            t.period, t.metric, t.firm, t.unit, t.uncertainty, t.quantity
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_targets_are_numbers_with_uncertainties() {
        let t = builtin();
        assert!(t.len() >= 10, "{t:?}");
        assert!(t.iter().all(|t| t.value.is_finite() && t.uncertainty > 0.0));
        let v = t.iter().find(|t| t.id == "openai.visits@2023-03").expect("March visits");
        assert_eq!(v.value, 1.6e9);
        assert_eq!(last_day(&t), NaiveDate::from_ymd_opt(2023, 8, 31).unwrap());
        let r = t.iter().find(|t| t.quantity == "openai.result_usd").expect("the 2022 result");
        assert!(r.value < 0.0 && !r.log_scale() && (r.observed() + 1.0).abs() < 1e-12);
    }

    #[test]
    fn bad_targets_name_the_line_and_column() {
        let head = "date,metric,entity,value,unit,source,reliability,uncertainty,model\n";
        let e = parse(&format!("{head}2023-01,x,y,12,u,s,r,,openai.visits\n"), "t.csv").unwrap_err();
        assert!(e.contains("t.csv: line 2, column `uncertainty`"), "{e}");
        let e = parse(&format!("{head}2023-13,x,y,12,u,s,r,0.1,openai.visits\n"), "t.csv").unwrap_err();
        assert!(e.contains("column `date`"), "{e}");
        let e = parse(&format!("{head}2023-01,x,y,12,u,s,r,0.1,openai.nothing\n"), "t.csv").unwrap_err();
        assert!(e.contains("unknown model quantity"), "{e}");
        let e = parse(&format!("{head}2023-01,x,y,12,u,s,r,0.1,visits\n"), "t.csv").unwrap_err();
        assert!(e.contains("FIRM.METRIC"), "{e}");
        let e = parse(&format!("{head}2023-01,x,y,-3,u,s,r,0.1,openai.visits\n"), "t.csv").unwrap_err();
        assert!(e.contains("log scale"), "{e}");
        let e = parse("date,value\n", "t.csv").unwrap_err();
        assert!(e.contains("no column `unit`"), "{e}");
    }
}
