//! The rows a run produces (trace, market, annual, summary): plain data the recorder fills and `io` writes.
//! Column meanings and units: docs/OUTPUTS.md.

use crate::model::econ::Cents;
use chrono::NaiveDate;
use serde::{Serialize, Serializer};

impl Serialize for Cents {
    /// Dollars with two decimals, exactly.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Rounds to a fixed number of decimals so that CSV text is short and stable.
pub fn round_to(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    let r = (x * f).round() / f;
    if r == 0.0 { 0.0 } else { r }
}

/// One row of `trace.csv`: one firm at the end of one recording interval.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TraceRow {
    pub run_id: u64,
    pub tick: u32,
    pub date: NaiveDate,
    pub firm: String,
    pub kind: &'static str,
    pub alive: bool,
    pub quality_elo: f64,
    pub price_sub_usd: f64,
    pub price_api_usd_per_mtok: f64,
    pub price_seat_usd: f64,
    pub users: u64,
    pub paying_users: u64,
    pub api_orgs: u64,
    pub seats: u64,
    pub queries: u64,
    pub tokens: u64,
    pub visits: u64,
    pub revenue_sub_usd: Cents,
    pub revenue_api_usd: Cents,
    pub revenue_seats_usd: Cents,
    pub revenue_usd: Cents,
    pub cost_inference_usd: Cents,
    pub cost_training_usd: Cents,
    pub cost_fixed_usd: Cents,
    pub cost_revenue_share_usd: Cents,
    pub cost_usd: Cents,
    pub funding_usd: Cents,
    pub profit_usd: Cents,
    pub cash_usd: Cents,
    pub runway_months: Option<f64>,
    pub gpus: u64,
    pub gpus_on_order: u64,
    pub capacity_gpu_days: f64,
    pub demanded_gpu_days: f64,
    pub served_gpu_days: f64,
    pub utilisation: f64,
    pub tokens_demanded: u64,
    pub tokens_served: u64,
    pub tokens_rationed: u64,
    pub waitlist: u64,
    pub rationed_users: u64,
    pub cost_commitment_usd: Cents,
    pub cost_spot_usd: Cents,
    pub cost_free_chat_usd: Cents,
    pub cost_paid_chat_usd: Cents,
    pub cost_seats_usd: Cents,
    pub cost_api_usd: Cents,
    pub cost_idle_usd: Cents,
    pub cost_first_tier_usd: Cents,
    pub cost_best_tier_usd: Cents,
    pub funding_in_kind_usd: Cents,
    pub compute_credits_usd: Cents,
}

/// One row of `market.csv`: the whole market at the end of one recording interval.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MarketRow {
    pub run_id: u64,
    pub tick: u32,
    pub date: NaiveDate,
    pub population: u64,
    pub aware_users: u64,
    pub active_users: u64,
    pub paying_users: u64,
    pub non_users: u64,
    pub orgs_adopted: u64,
    pub orgs_banning_chat: u64,
    pub hhi: f64,
    pub open_source_share: f64,
    pub self_hosting_spend_usd: Cents,
    /// Investor sentiment (1 = neutral), which scales valuations and the odds of a round.
    pub investor_sentiment: f64,
}

/// The columns of `decisions.csv` (written even when a run made no decision).
pub const DECISION_COLUMNS: [&str; 11] = [
    "run_id",
    "tick",
    "date",
    "firm",
    "decision",
    "old_value",
    "new_value",
    "reason",
    "runway_months",
    "cash_usd",
    "figures",
];

/// One row of `decisions.csv`: one decision of one firm (docs/OUTPUTS.md): what changed, from what to what,
/// why, and the firm's runway and cash when it decided.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DecisionRow {
    pub run_id: u64,
    pub tick: u32,
    pub date: NaiveDate,
    pub firm: String,
    pub decision: &'static str,
    pub old_value: f64,
    pub new_value: f64,
    pub reason: String,
    pub runway_months: Option<f64>,
    pub cash_usd: Cents,
    /// The figures behind the decision, `name=value` pairs separated by `; `.
    pub figures: String,
}

/// One row of `annual.csv`: one firm in one calendar year.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AnnualRow {
    pub run_id: u64,
    pub year: i32,
    pub firm: String,
    pub kind: &'static str,
    pub revenue_sub_usd: Cents,
    pub revenue_api_usd: Cents,
    pub revenue_seats_usd: Cents,
    pub revenue_usd: Cents,
    pub cost_inference_usd: Cents,
    pub cost_training_usd: Cents,
    pub cost_fixed_usd: Cents,
    pub cost_revenue_share_usd: Cents,
    pub cost_usd: Cents,
    pub profit_usd: Cents,
    pub funding_usd: Cents,
    pub end_cash_usd: Cents,
    pub avg_users: u64,
    pub end_users: u64,
    pub end_paying_users: u64,
    pub queries: u64,
    pub visits: u64,
    pub revenue_cost_ratio: f64,
    pub alive_at_year_end: bool,
}

impl AnnualRow {
    /// A row with every flow at zero (the start of a year's accumulation).
    pub fn new(run_id: u64, year: i32, firm: String, kind: &'static str, cash: Cents) -> AnnualRow {
        let z = Cents::ZERO;
        AnnualRow {
            run_id,
            year,
            firm,
            kind,
            revenue_sub_usd: z,
            revenue_api_usd: z,
            revenue_seats_usd: z,
            revenue_usd: z,
            cost_inference_usd: z,
            cost_training_usd: z,
            cost_fixed_usd: z,
            cost_revenue_share_usd: z,
            cost_usd: z,
            profit_usd: z,
            funding_usd: z,
            end_cash_usd: cash,
            avg_users: 0,
            end_users: 0,
            end_paying_users: 0,
            queries: 0,
            visits: 0,
            revenue_cost_ratio: 0.0,
            alive_at_year_end: true,
        }
    }
}

/// One row of `summary.csv`: one firm over the whole run. Threshold columns are added by `io`.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    pub run_id: u64,
    pub firm: String,
    pub kind: &'static str,
    pub bankrupt: bool,
    pub exit_date: Option<NaiveDate>,
    pub exit_reason: Option<&'static str>,
    pub break_even_date: Option<NaiveDate>,
    pub min_cash_usd: Cents,
    pub min_cash_date: NaiveDate,
    pub end_cash_usd: Cents,
    pub peak_users: u64,
    pub peak_users_date: NaiveDate,
    pub end_users: u64,
    pub total_revenue_usd: Cents,
    pub total_cost_usd: Cents,
    pub total_funding_usd: Cents,
    /// For each configured threshold: the first date trailing-12-month revenue reached it.
    pub ttm_revenue_crossed: Vec<Option<NaiveDate>>,
    /// For each configured threshold: the first calendar year whose revenue reached it.
    pub year_revenue_crossed: Vec<Option<i32>>,
}

/// Years for which "bankrupt by the end of the year" is reported (runs.csv's `<firm>_bankrupt_by_<year>`,
/// comparison.csv's `bankrupt_by_<year>`): the article's "bankrupt by 2024" and the years either side.
pub const BANKRUPTCY_YEARS: [i32; 3] = [2023, 2024, 2025];

/// Whether a firm went out of business (bankrupt or bought out of cash, as `bankrupt` in summary.csv) by the
/// end of `year`.
pub fn bankrupt_by(bankrupt: bool, exit_date: Option<NaiveDate>, year: i32) -> bool {
    use chrono::Datelike;
    bankrupt && exit_date.is_some_and(|d| d.year() <= year)
}

/// A short label for a dollar threshold: 1e8 → "100M", 1e9 → "1B", 2.5e5 → "250K".
pub fn threshold_label(usd: f64) -> String {
    let (v, unit) = if usd >= 1e9 {
        (usd / 1e9, "B")
    } else if usd >= 1e6 {
        (usd / 1e6, "M")
    } else if usd >= 1e3 {
        (usd / 1e3, "K")
    } else {
        (usd, "")
    };
    let s = format!("{}", round_to(v, 3));
    format!("{}{unit}", s.replace('.', "p"))
}

impl SummaryRow {
    /// Column names, given the thresholds.
    pub fn header(thresholds: &[f64]) -> Vec<String> {
        let mut h: Vec<String> = [
            "run_id",
            "firm",
            "kind",
            "bankrupt",
            "exit_date",
            "exit_reason",
            "break_even_date",
            "min_cash_usd",
            "min_cash_date",
            "end_cash_usd",
            "peak_users",
            "peak_users_date",
            "end_users",
            "total_revenue_usd",
            "total_cost_usd",
            "total_funding_usd",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for t in thresholds {
            h.push(format!("ttm_revenue_{}_date", threshold_label(*t)));
        }
        for t in thresholds {
            h.push(format!("year_revenue_{}_first_year", threshold_label(*t)));
        }
        h
    }

    /// Field values as text, in header order.
    pub fn record(&self) -> Vec<String> {
        let d = |x: Option<NaiveDate>| x.map(|d| d.to_string()).unwrap_or_default();
        let mut r = vec![
            self.run_id.to_string(),
            self.firm.clone(),
            self.kind.to_string(),
            self.bankrupt.to_string(),
            d(self.exit_date),
            self.exit_reason.unwrap_or("").to_string(),
            d(self.break_even_date),
            self.min_cash_usd.to_string(),
            self.min_cash_date.to_string(),
            self.end_cash_usd.to_string(),
            self.peak_users.to_string(),
            self.peak_users_date.to_string(),
            self.end_users.to_string(),
            self.total_revenue_usd.to_string(),
            self.total_cost_usd.to_string(),
            self.total_funding_usd.to_string(),
        ];
        r.extend(self.ttm_revenue_crossed.iter().map(|x| d(*x)));
        r.extend(self.year_revenue_crossed.iter().map(|x| x.map(|y| y.to_string()).unwrap_or_default()));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(threshold_label(1e8), "100M");
        assert_eq!(threshold_label(2e8), "200M");
        assert_eq!(threshold_label(1e9), "1B");
        assert_eq!(threshold_label(1.5e9), "1p5B");
        assert_eq!(round_to(-0.0001, 2).to_string(), "0");
    }
}
