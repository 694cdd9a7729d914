//! Checks a resolved [`ScenarioFile`] completely, collecting every problem with its key path.

use super::Problem;
use super::file::*;
use crate::model::calendar::{MonthDay, Period};
use std::collections::BTreeSet;

/// The most firms a scenario may have (awareness is a 32-bit set per user).
pub const MAX_FIRMS: usize = 32;
/// The most user agents (ids are `u32`).
pub const MAX_AGENTS: u64 = 1 << 31;
/// Upper bound on organisation agents: a user stores its employer's index in 27 bits (its other traits take
/// the rest of the word, so that a user stays small; see `sim::components::User`).
pub const MAX_ORG_AGENTS: u64 = (1 << 27) - 1;

// Domains of the parameters. Each is far beyond any plausible value and exists so that an absurd number
// (a typo, a fuzzer's 1e308) is an error naming its range rather than a run with 0 or all users.

/// The largest amount of money a scenario may name (cash, budgets, funding, training, fixed costs), USD.
pub const MAX_USD: f64 = 1e14;
/// Elo values (quality, reference, jumps, uplifts, gaps, growth per year): |Elo| ≤ 10 000.
pub const MAX_ELO: f64 = 1e4;
/// Prices and willingness to pay: USD per month (subscriptions, seats), USD per million tokens, USD per query.
pub const MAX_PRICE_USD: f64 = 1e6;
/// People who could use a chatbot.
pub const MAX_POPULATION: f64 = 1e11;
/// Organisations that could buy generative-AI services.
pub const MAX_ORG_POPULATION: f64 = 1e10;
/// Utilities, brands, loyalties, trust and utility weights: |x| ≤ 1000 (a logit of 1000 is certainty).
pub const MAX_UTILITY: f64 = 1e3;
/// Multipliers and rates without a natural bound (word of mouth, buzz, markups, factors): at most 1000.
pub const MAX_FACTOR: f64 = 1e3;
/// Growth (or decline) factors per year (`*_growth_per_year`, `cost_decline_per_year`): in (0, 100].
pub const MAX_GROWTH_PER_YEAR: f64 = 100.0;
/// Durations in months (decays, lags, runways, training programmes): at most 100 years.
pub const MAX_MONTHS: f64 = 1200.0;
/// Usage per user or organisation per day (queries, visits, million tokens) and seats per organisation.
pub const MAX_USAGE: f64 = 1e6;
/// The most tiers (models) one firm may serve.
pub const MAX_TIERS: usize = 16;
/// The most GPUs a firm may start with.
pub const MAX_GPUS: f64 = 1e9;
/// The longest run, in days (50 years).
pub const MAX_RUN_DAYS: i64 = 366 * 50;

/// The largest money flow of one tick the accounts accept, USD: a flow is computed in `f64` and rounded
/// to cents once, and `f64` holds every whole number of cents exactly only up to 2^53 cents ≈ 9.0e13 USD.
pub const FLOW_LIMIT_USD: f64 = 9.0e13;
/// The largest cash (a stock) the accounts accept, USD: cash is kept in `i64` cents, which hold at most
/// 9.22e16 USD; the limit leaves a margin of 9× for the flows of the tick that would cross it.
pub const STOCK_LIMIT_USD: f64 = 1e16;
/// The largest count of queries or visits of one tick (they are recorded as `u64` and summed over a year of
/// at most 366 ticks: 366 × 1e16 < 1.8e19 = `u64::MAX`).
pub const COUNT_LIMIT: f64 = 1e16;

/// At most this many characters of a value are echoed in a message.
pub const ECHO_CHARS: usize = 200;
/// The longest scenario or sweep name.
pub const MAX_NAME_CHARS: usize = 100;

/// Shortens a value echoed in a message to [`ECHO_CHARS`] characters, saying how long it was.
pub fn shorten(s: &str) -> String {
    let n = s.chars().count();
    if n <= ECHO_CHARS {
        return s.to_string();
    }
    let head: String = s.chars().take(ECHO_CHARS).collect();
    format!("{head}… ({n} characters)")
}

/// Checks that `name` (of a scenario or a sweep) can be used as one folder name under `outputs/`: not
/// empty, at most [`MAX_NAME_CHARS`] characters, no `/` or `\`, no leading `.` (so neither `.` nor `..`),
/// no NUL or other control character. `Err` says what is wrong.
pub fn check_name(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    let bad = if name.trim().is_empty() {
        "must not be empty"
    } else if n > MAX_NAME_CHARS {
        return Err(format!("must be at most {MAX_NAME_CHARS} characters (it names a folder), got {n}"));
    } else if name.contains('/') || name.contains('\\') {
        "must be a single folder name: no `/` or `\\`"
    } else if name.starts_with('.') {
        "must not start with `.` (it names a folder; `..` would leave the output folder)"
    } else if name.chars().any(char::is_control) {
        "must not contain control characters (NUL, newline, tab, …)"
    } else {
        return Ok(());
    };
    Err(format!("{bad}, got {:?}", shorten(name)))
}

/// Formats a bound for a message: `1e6` rather than `1000000`.
fn num_text(x: f64) -> String {
    if x != 0.0 && (x.abs() >= 1e5 || x.abs() < 1e-3) {
        // Three significant digits, trailing zeros dropped: 1e6, 2.42e22.
        let t = format!("{x:.2e}");
        let (m, e) = t.split_once('e').unwrap_or((&t, "0"));
        let m = if m.contains('.') { m.trim_end_matches('0').trim_end_matches('.') } else { m };
        format!("{m}e{e}")
    } else {
        format!("{x}")
    }
}

/// The domain of a number: `[lo, hi]`, or `(lo, hi]` when `open_lo`.
#[derive(Clone, Copy)]
struct Dom {
    lo: f64,
    open_lo: bool,
    hi: f64,
    unit: &'static str,
}

const fn closed(lo: f64, hi: f64, unit: &'static str) -> Dom {
    Dom { lo, open_lo: false, hi, unit }
}
const fn above(lo: f64, hi: f64, unit: &'static str) -> Dom {
    Dom { lo, open_lo: true, hi, unit }
}
const ELO: Dom = closed(-MAX_ELO, MAX_ELO, " Elo");
const ELO_NONNEG: Dom = closed(0.0, MAX_ELO, " Elo");
const UTILITY: Dom = closed(-MAX_UTILITY, MAX_UTILITY, "");
const WEIGHT: Dom = closed(0.0, MAX_UTILITY, "");
const FACTOR: Dom = closed(0.0, MAX_FACTOR, "");
const PRICE: Dom = closed(0.0, MAX_PRICE_USD, " USD");
const MONEY: Dom = closed(0.0, MAX_USD, " USD");
const GROWTH: Dom = above(0.0, MAX_GROWTH_PER_YEAR, " per year");
const MONTHS: Dom = above(0.0, MAX_MONTHS, " months");
const MONTHS_NONNEG: Dom = closed(0.0, MAX_MONTHS, " months");
const USAGE: Dom = closed(0.0, MAX_USAGE, "");
const TOKENS: Dom = closed(0.0, MAX_USAGE, " tokens");
const GPUS: Dom = closed(0.0, MAX_GPUS, " GPUs");

impl Dom {
    fn text(&self) -> String {
        format!("{}{}, {}]{}", if self.open_lo { "(" } else { "[" }, num_text(self.lo), num_text(self.hi), self.unit)
    }
}

struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn fail(&mut self, path: impl Into<String>, msg: impl Into<String>) {
        self.problems.push(Problem { file: None, path: Some(path.into()), line: None, message: msg.into() });
    }
    /// Checks `v` against its domain; one message per problem, naming the range.
    fn num(&mut self, path: &str, v: f64, d: Dom) {
        let got = num_text(v);
        if !v.is_finite() {
            self.fail(path, format!("must be a finite number in {}, got {v}", d.text()));
        } else if d.open_lo && v <= d.lo {
            let what = if d.lo == 0.0 { "greater than zero".to_string() } else { format!("greater than {}", d.lo) };
            self.fail(path, format!("must be {what} (range {}), got {got}", d.text()));
        } else if !d.open_lo && v < d.lo {
            let what =
                if d.lo == 0.0 { "must not be negative".to_string() } else { format!("must lie in {}", d.text()) };
            self.fail(path, format!("{what}, got {got}"));
        } else if v > d.hi {
            self.fail(path, format!("must be at most {}{} (range {}), got {got}", num_text(d.hi), d.unit, d.text()));
        }
    }
    fn prob(&mut self, path: &str, v: f64) {
        if !(0.0..=1.0).contains(&v) {
            self.fail(path, format!("is a probability and must lie in [0, 1], got {v}"));
        }
    }
    /// The upper bound of a range is at least its lower bound.
    fn ordered(&mut self, (lo_path, lo): (&str, f64), (hi_path, hi): (&str, f64)) {
        if hi < lo {
            self.fail(hi_path, format!("must be at least {lo_path} ({lo})"));
        }
    }

    fn sums_to_one(&mut self, path: &str, total: f64) {
        if (total - 1.0).abs() > 1e-6 {
            self.fail(path, format!("shares must sum to 1, they sum to {total}"));
        }
    }
}

/// Validates the scenario; `Ok` carries the academic-summer window.
pub fn validate(s: &ScenarioFile) -> Result<(MonthDay, MonthDay), Vec<Problem>> {
    let mut c = Checker { problems: Vec::new() };
    if let Err(e) = check_name(&s.name) {
        c.fail("name", e);
    }
    let run_days = (s.end.0 - s.start.0).num_days();
    if s.end.0 <= s.start.0 {
        c.fail("end", format!("must be after start ({}), got {}", s.start.0, s.end.0));
    } else if run_days > MAX_RUN_DAYS {
        c.fail("end", format!("a run may cover at most 50 years ({MAX_RUN_DAYS} days), got {run_days} days"));
    }
    if s.agents == 0 {
        c.fail("agents", "must be at least 1, got 0");
    } else if s.agents > MAX_AGENTS {
        c.fail("agents", format!("must be at most {MAX_AGENTS}, got {}", s.agents));
    }
    c.num("population", s.population, above(0.0, MAX_POPULATION, " people"));
    c.num("elo_reference", s.elo_reference, ELO);
    for (i, t) in s.revenue_thresholds_usd.iter().enumerate() {
        c.num(&format!("revenue_thresholds_usd[{i}]"), *t, above(0.0, MAX_USD, " USD"));
    }
    if let Some(r) = s.record_every
        && r < s.tick
    {
        c.fail("record_every", format!("cannot be shorter than the tick ({} < {})", r.as_str(), s.tick.as_str()));
    }
    let summer_start = MonthDay::parse(&s.calendar.summer_start);
    let summer_end = MonthDay::parse(&s.calendar.summer_end);
    if summer_start.is_none() {
        c.fail(
            "calendar.summer_start",
            format!("expected a day of the year as \"MM-DD\", got {:?}", shorten(&s.calendar.summer_start)),
        );
    }
    if summer_end.is_none() {
        c.fail(
            "calendar.summer_end",
            format!("expected a day of the year as \"MM-DD\", got {:?}", shorten(&s.calendar.summer_end)),
        );
    }

    let a = &s.awareness;
    c.prob("awareness.p_base_per_month", a.p_base_per_month);
    c.prob("awareness.launch_p_per_month", a.launch_p_per_month);
    c.num("awareness.launch_decay_months", a.launch_decay_months, MONTHS);
    c.num("awareness.word_of_mouth_per_month", a.word_of_mouth_per_month, FACTOR);
    c.num("awareness.trial_utility", a.trial_utility, UTILITY);

    let sub = &s.subscriptions;
    c.prob("subscriptions.conversion_per_month", sub.conversion_per_month);
    c.num("subscriptions.uplift_per_100_elo", sub.uplift_per_100_elo, FACTOR);
    c.prob("subscriptions.churn_month1", sub.churn_month1);
    c.prob("subscriptions.churn_months_2_6", sub.churn_months_2_6);
    c.prob("subscriptions.churn_after", sub.churn_after);

    let names = ["consumer", "student", "professional", "developer"];
    let mut share = 0.0;
    for (name, seg) in names.iter().zip(s.segments.as_array()) {
        let p = |k: &str| format!("segments.{name}.{k}");
        c.prob(&p("share"), seg.share);
        share += seg.share;
        c.prob(&p("reconsider_per_month"), seg.reconsider_per_month);
        c.num(&p("loyalty"), seg.loyalty, UTILITY);
        c.num(&p("quality_weight"), seg.quality_weight, WEIGHT);
        c.num(&p("price_weight_per_usd"), seg.price_weight_per_usd, WEIGHT);
        c.num(&p("outside_utility"), seg.outside_utility, UTILITY);
        c.num(&p("taste_spread"), seg.taste_spread, WEIGHT);
        c.num(&p("wtp_median_usd"), seg.wtp_median_usd, above(0.0, MAX_PRICE_USD, " USD per month"));
        c.num(&p("wtp_sigma"), seg.wtp_sigma, closed(0.0, 10.0, ""));
        c.num(&p("queries_per_active_day"), seg.queries_per_active_day, USAGE);
        c.num(&p("active_days_per_month"), seg.active_days_per_month, closed(0.0, 31.0, " days"));
        c.num(&p("visits_per_active_day"), seg.visits_per_active_day, USAGE);
        c.num(&p("paid_usage_multiplier"), seg.paid_usage_multiplier, FACTOR);
        c.prob(&p("employed_share"), seg.employed_share);
        c.num(&p("summer_activity"), seg.summer_activity, FACTOR);
    }
    c.sums_to_one("segments", share);

    let o = &s.orgs;
    if o.agents == 0 {
        c.fail("orgs.agents", "must be at least 1, got 0");
    } else if o.agents > MAX_ORG_AGENTS {
        c.fail("orgs.agents", format!("must be at most {MAX_ORG_AGENTS}, got {}", o.agents));
    }
    c.num("orgs.population", o.population, above(0.0, MAX_ORG_POPULATION, " organisations"));
    c.prob("orgs.reconsider_per_month", o.reconsider_per_month);
    c.num("orgs.loyalty", o.loyalty, UTILITY);
    c.num("orgs.quality_weight", o.quality_weight, WEIGHT);
    c.num("orgs.log_price_weight", o.log_price_weight, WEIGHT);
    c.prob("orgs.pilot_to_production_per_month", o.pilot_to_production_per_month);
    c.num("orgs.tokens_per_day_pilot_m", o.tokens_per_day_pilot_m, USAGE);
    c.num("orgs.tokens_per_day_production_m", o.tokens_per_day_production_m, USAGE);
    c.num("orgs.token_growth_per_year", o.token_growth_per_year, GROWTH);
    c.prob("orgs.ban_hazard_per_month", o.ban_hazard_per_month);
    c.num("orgs.ban_pressure_decay_months", o.ban_pressure_decay_months, MONTHS);
    c.prob("orgs.ban_lift_per_month", o.ban_lift_per_month);
    c.prob("orgs.shadow_use", o.shadow_use);
    c.prob("orgs.enterprise_adoption_per_month", o.enterprise_adoption_per_month);
    c.prob("orgs.seat_take_up", o.seat_take_up);
    c.num("orgs.self_host_markup", o.self_host_markup, FACTOR);
    c.prob("orgs.output_token_share", o.output_token_share);
    c.num("orgs.seat_queries_per_day", o.seat_queries_per_day, USAGE);
    c.num("orgs.ban_contract_factor", o.ban_contract_factor, FACTOR);
    let vnames = ["healthcare", "finance", "education", "tech", "other"];
    let mut vshare = 0.0;
    for (name, v) in vnames.iter().zip(o.verticals.as_array()) {
        let p = |k: &str| format!("orgs.verticals.{name}.{k}");
        c.prob(&p("share"), v.share);
        vshare += v.share;
        c.prob(&p("adoption_p_per_month"), v.adoption_p_per_month);
        c.num(&p("adoption_q_per_month"), v.adoption_q_per_month, FACTOR);
        c.num(&p("seats"), v.seats, USAGE);
        c.num(&p("tokens_factor"), v.tokens_factor, FACTOR);
        c.num(&p("ban_factor"), v.ban_factor, FACTOR);
        c.num(&p("self_host_affinity"), v.self_host_affinity, UTILITY);
        c.prob(&p("top_tier_share"), v.top_tier_share);
    }
    c.sums_to_one("orgs.verticals", vshare);

    if s.firms.is_empty() {
        c.fail("firms", "a scenario needs at least one firm");
    } else if s.firms.len() > MAX_FIRMS {
        c.fail("firms", format!("at most {MAX_FIRMS} firms, got {}", s.firms.len()));
    }
    let mut ids = BTreeSet::new();
    for (i, f) in s.firms.iter().enumerate() {
        let p = |k: &str| format!("firms[{i}].{k}");
        if f.id.trim().is_empty() {
            c.fail(p("id"), "every firm needs a non-empty id");
        } else if !ids.insert(f.id.as_str()) {
            c.fail(p("id"), format!("duplicate firm id {:?}", shorten(&f.id)));
        }
        if let Some(cl) = f.chat_launch
            && cl.0 < f.launch.0
        {
            c.fail(p("chat_launch"), format!("cannot be before the firm's launch ({})", f.launch.0));
        }
        c.num(&p("quality_elo"), f.quality_elo, ELO);
        c.num(&p("quality_growth_elo_per_year"), f.quality_growth_elo_per_year, ELO);
        if let Some(cu) = &f.catch_up {
            c.num(&p("catch_up.gap0_elo"), cu.gap0_elo, ELO_NONNEG);
            c.num(&p("catch_up.tau_months"), cu.tau_months, MONTHS);
        }
        c.num(&p("sub_price_usd_per_month"), f.sub_price_usd_per_month, PRICE);
        c.num(&p("api_price_usd_per_mtok"), f.api_price_usd_per_mtok, PRICE);
        c.num(&p("seat_price_usd_per_month"), f.seat_price_usd_per_month, PRICE);
        c.num(&p("brand"), f.brand, UTILITY);
        c.num(&p("bundle_utility"), f.bundle_utility, UTILITY);
        c.prob(&p("reach_per_month"), f.reach_per_month);
        for (sn, v) in names.iter().zip(f.awareness_by_segment.as_array()) {
            c.num(&p(&format!("awareness_by_segment.{sn}")), v, FACTOR);
        }
        c.num(&p("launch_buzz"), f.launch_buzz, FACTOR);
        c.num(&p("org_trust"), f.org_trust, UTILITY);
        c.num(&p("cash_usd"), f.cash_usd, MONEY);
        c.num(&p("fixed_cost_usd_per_year"), f.fixed_cost_usd_per_year, MONEY);
        c.num(&p("fixed_cost_growth_per_year"), f.fixed_cost_growth_per_year, GROWTH);
        c.num(&p("cost_decline_per_year"), f.cost_decline_per_year, GROWTH);
        if f.tiers.is_empty() {
            c.fail(p("tiers"), "every firm needs at least one tier (the model it serves)");
        } else if f.tiers.len() > MAX_TIERS {
            c.fail(p("tiers"), format!("at most {MAX_TIERS} tiers, got {}", f.tiers.len()));
        }
        for (j, t) in f.tiers.iter().enumerate() {
            let q = |k: &str| p(&format!("tiers[{j}].{k}"));
            if j == 0 && t.release.0 > f.launch.0 {
                c.fail(q("release"), format!("the first tier must be released by the firm's launch ({})", f.launch.0));
            }
            if j > 0 && t.release.0 < f.tiers[j - 1].release.0 {
                c.fail(q("release"), format!("tiers are listed in release order; tier {} is released later", j - 1));
            }
            c.num(&q("elo_offset"), t.elo_offset, ELO);
            c.num(&q("cost_in_usd_per_mtok"), t.cost_in_usd_per_mtok, PRICE);
            c.num(&q("cost_out_usd_per_mtok"), t.cost_out_usd_per_mtok, PRICE);
            c.num(&q("chat_tokens_in_per_query"), t.chat_tokens_in_per_query, TOKENS);
            c.num(&q("chat_tokens_out_per_query"), t.chat_tokens_out_per_query, TOKENS);
            c.num(&q("api_price_in_usd_per_mtok"), t.api_price_in_usd_per_mtok, PRICE);
            c.num(&q("api_price_out_usd_per_mtok"), t.api_price_out_usd_per_mtok, PRICE);
            c.num(&q("message_cap_per_active_day"), t.message_cap_per_active_day, USAGE);
        }
        let k = &f.compute;
        c.num(&p("compute.initial_gpus"), k.initial_gpus, GPUS);
        c.num(&p("compute.gpu_cost_usd_per_day"), k.gpu_cost_usd_per_day, closed(0.01, MAX_PRICE_USD, " USD per day"));
        c.prob(&p("compute.usable_share"), k.usable_share);
        c.num(&p("compute.lead_time_months"), k.lead_time_months, MONTHS_NONNEG);
        c.num(&p("compute.commitment_months"), k.commitment_months, MONTHS);
        c.num(&p("compute.headroom"), k.headroom, closed(0.0, 10.0, ""));
        c.num(&p("compute.max_commit_share"), k.max_commit_share, closed(0.0, 10.0, ""));
        c.num(&p("compute.spot_max_share"), k.spot_max_share, closed(0.0, 10.0, ""));
        c.num(&p("compute.spot_premium"), k.spot_premium, closed(1.0, MAX_FACTOR, ""));
        c.num(&p("compute.at_capacity_utility"), k.at_capacity_utility, UTILITY);
        c.prob(&p("compute.capped_churn_per_month"), k.capped_churn_per_month);
        c.prob(&p("revenue_share"), f.revenue_share);
        c.num(&p("parent_budget_usd"), f.parent_budget_usd, MONEY);
        c.num(&p("raise.trigger_runway_months"), f.raise.trigger_runway_months, MONTHS);
        c.num(&p("raise.size_months"), f.raise.size_months, MONTHS);
        c.prob(&p("raise.success_base"), f.raise.success_base);
        c.num(&p("raise.success_per_growth"), f.raise.success_per_growth, FACTOR);
        c.num(&p("raise.cooldown_months"), f.raise.cooldown_months, MONTHS_NONNEG);
        c.prob(&p("raise.acquihire_probability"), f.raise.acquihire_probability);
        c.prob(&p("raise.compute_share"), f.raise.compute_share);
        c.num(&p("parent_patience_months"), f.parent_patience_months, MONTHS_NONNEG);
        c.num(&p("pricing.markup"), f.pricing.markup, FACTOR);
        c.num(&p("pricing.lag_months"), f.pricing.lag_months, MONTHS);
        c.num(&p("pricing.floor_usd_per_mtok"), f.pricing.floor_usd_per_mtok, PRICE);
        c.prob(&p("pricing.match_undercut_per_month"), f.pricing.match_undercut_per_month);
        for (j, t) in f.training.iter().enumerate() {
            c.num(&p(&format!("training[{j}].months")), t.months, MONTHS);
            c.num(&p(&format!("training[{j}].cost_usd")), t.cost_usd, MONEY);
        }
        c.num(&p("model.log10_flop"), f.model.log10_flop, closed(15.0, 35.0, " (log10 FLOP)"));
        if f.strategy.training == crate::config::file::Mode::Decided {
            // A programme running on decisions.start becomes the firm's first run: one at most.
            let running: Vec<usize> = (0..f.training.len())
                .filter(|&j| {
                    let t = &f.training[j];
                    let end = t.start.0 + chrono::Duration::days((t.months * 30.436875).round() as i64);
                    t.start.0 < s.decisions.start.0 && end > s.decisions.start.0
                })
                .collect();
            if running.len() > 1 {
                c.fail(
                    p(&format!("training[{}]", running[1])),
                    format!(
                        "a firm whose training is decided may have one scripted programme running on decisions.start ({}), which becomes its first run; training[{}] runs then too",
                        s.decisions.start.0, running[0]
                    ),
                );
            }
        }
        if f.model.trained.0 > s.decisions.start.0 && f.strategy.training == crate::config::file::Mode::Decided {
            c.fail(
                p("model.trained"),
                format!(
                    "the last model before the firm decides must be trained by decisions.start ({})",
                    s.decisions.start.0
                ),
            );
        }
    }
    let d = &s.decisions;
    if d.start.0 < s.start.0 && s.firms.iter().any(|f| f.strategy.any()) {
        c.fail(
            "decisions.start",
            format!("must not be before the start of the run ({}), got {}", s.start.0, d.start.0),
        );
    }
    c.num("decisions.period_months", d.period_months, MONTHS);
    c.num("decisions.elo_per_decade", d.elo_per_decade, above(0.0, MAX_ELO, " Elo"));
    c.num("decisions.efficiency_halving_months", d.efficiency_halving_months, MONTHS);
    c.num("decisions.flop_per_usd", d.flop_per_usd, above(0.0, 1e30, " FLOP per USD"));
    c.num("decisions.flop_per_usd_doubling_years", d.flop_per_usd_doubling_years, above(0.0, 100.0, " years"));
    c.num("decisions.frontier_growth_elo_per_year", d.frontier_growth_elo_per_year, ELO_NONNEG);
    c.num("decisions.lead_elo", d.lead_elo, ELO);
    c.num("decisions.run_months", d.run_months, closed(0.1, MAX_MONTHS, " months"));
    c.num("decisions.gain_sd_elo", d.gain_sd_elo, ELO_NONNEG);
    c.prob("decisions.max_training_share", d.max_training_share);
    c.num("decisions.runway_floor_months", d.runway_floor_months, MONTHS_NONNEG);
    c.num("decisions.min_run_usd", d.min_run_usd, MONEY);
    c.num("decisions.min_gain_elo", d.min_gain_elo, ELO_NONNEG);
    for (k, m) in d.cut_runway_months.iter().enumerate() {
        c.num(&format!("decisions.cut_runway_months[{k}]"), *m, MONTHS_NONNEG);
        if k > 0 && *m > d.cut_runway_months[k - 1] {
            c.fail(
                format!("decisions.cut_runway_months[{k}]"),
                "cuts come in order (training, capacity growth, free tier, staff growth): thresholds must not increase",
            );
        }
    }
    c.num("decisions.cut_recover", d.cut_recover, closed(1.0, 10.0, ""));
    c.prob("decisions.free_limit_share", d.free_limit_share);
    c.prob("decisions.price_adjust", d.price_adjust);
    c.num("decisions.match_band_elo", d.match_band_elo, ELO_NONNEG);
    c.num("decisions.min_markup", d.min_markup, FACTOR);
    c.num("decisions.max_markup", d.max_markup, FACTOR);
    c.ordered(("decisions.min_markup", d.min_markup), ("decisions.max_markup", d.max_markup));
    c.num("decisions.sub_price_min_usd", d.sub_price_min_usd, PRICE);
    c.num("decisions.sub_price_max_usd", d.sub_price_max_usd, PRICE);
    c.ordered(
        ("decisions.sub_price_min_usd", d.sub_price_min_usd),
        ("decisions.sub_price_max_usd", d.sub_price_max_usd),
    );
    c.num("decisions.revenue_multiple", d.revenue_multiple, FACTOR);
    c.prob("decisions.dilution_cap", d.dilution_cap);
    c.num("decisions.sentiment_min", d.sentiment_min, FACTOR);
    c.num("decisions.sentiment_max", d.sentiment_max, FACTOR);
    // The initial sentiment may lie outside later bounds (a set event may narrow them): it relaxes into them.
    c.num("decisions.sentiment_initial", d.sentiment_initial, FACTOR);
    c.ordered(("decisions.sentiment_min", d.sentiment_min), ("decisions.sentiment_max", d.sentiment_max));
    c.num("decisions.sentiment_tau_months", d.sentiment_tau_months, MONTHS);
    c.num(
        "decisions.sentiment_neutral_growth",
        d.sentiment_neutral_growth,
        closed(-1.0, MAX_GROWTH_PER_YEAR, " per year"),
    );
    c.num("decisions.sentiment_per_growth", d.sentiment_per_growth, FACTOR);
    c.num("decisions.acquisition_min_users", d.acquisition_min_users, closed(0.0, MAX_POPULATION, " users"));
    c.prob("decisions.parent_min_user_share", d.parent_min_user_share);
    c.num("decisions.raise_runway_months", d.raise_runway_months, MONTHS);
    if !s.firms.is_empty() && s.firms.iter().all(|f| f.catch_up.is_some()) {
        c.fail("firms", "open models catch up with a frontier: at least one firm must have no `catch_up`");
    }

    let mut event_ids = BTreeSet::new();
    for (i, e) in s.events.iter().enumerate() {
        let p = |k: &str| format!("events[{i}].{k}");
        if e.id.trim().is_empty() {
            c.fail(p("id"), "every event needs a non-empty id");
        } else if !event_ids.insert(e.id.as_str()) {
            c.fail(p("id"), format!("duplicate event id {:?}", shorten(&e.id)));
        }
        if e.date.0 < s.start.0 {
            c.fail(p("date"), format!("{} is before the start of the run ({})", e.date.0, s.start.0));
        }
        // A leak hits every firm; a set event names its firm, if any, in its key path.
        let needs_firm = !matches!(e.kind, EventKind::Leak | EventKind::Set);
        match &e.firm {
            Some(_) if e.kind == EventKind::Set => c.fail(
                p("firm"),
                "a set event names its firm in `key` (e.g. key = \"firms.openai.brand\"); remove `firm`",
            ),
            Some(f) if !ids.contains(f.as_str()) => {
                let known: Vec<&str> = ids.iter().copied().collect();
                c.fail(p("firm"), format!("unknown firm {:?} (known: {})", shorten(f), shorten(&known.join(", "))));
            }
            None if needs_firm => c.fail(p("firm"), format!("a {:?} event must name a firm", e.kind)),
            _ => {}
        }
        let opt = |c: &mut Checker, k: &str, v: Option<f64>, d: Dom| {
            if let Some(v) = v {
                c.num(&p(k), v, d)
            }
        };
        opt(&mut c, "amount_usd", e.amount_usd, MONEY);
        opt(&mut c, "compute_share", e.compute_share, closed(0.0, 1.0, ""));
        opt(&mut c, "sub_price_usd_per_month", e.sub_price_usd_per_month, PRICE);
        opt(&mut c, "api_price_usd_per_mtok", e.api_price_usd_per_mtok, PRICE);
        opt(&mut c, "seat_price_usd_per_month", e.seat_price_usd_per_month, PRICE);
        opt(&mut c, "strength", e.strength, FACTOR);
        opt(&mut c, "quality_jump_elo", e.quality_jump_elo, ELO);
        opt(&mut c, "org_trust_add", e.org_trust_add, UTILITY);
        opt(&mut c, "api_price_factor", e.api_price_factor, above(0.0, MAX_FACTOR, ""));
        if e.kind != EventKind::Set {
            for (k, given) in [("key", e.key.is_some()), ("value", e.value.is_some())] {
                if given {
                    c.fail(p(k), format!("only a set event takes {k} (this is a {:?} event)", e.kind));
                }
            }
        }
        match e.kind {
            EventKind::Set => {
                if e.key.is_none() {
                    c.fail(p("key"), "a set event needs key (a key path as for `--set`, e.g. \"awareness.p_base_per_month\")")
                }
                if e.value.is_none() {
                    c.fail(p("value"), "a set event needs value (the parameter's new value)")
                }
            }
            EventKind::Funding if e.amount_usd.is_none() => c.fail(p("amount_usd"), "a funding event needs amount_usd"),
            EventKind::Release if e.quality_jump_elo.is_none() && e.self_hostable.is_none() => {
                c.fail(p("quality_jump_elo"), "a release event needs quality_jump_elo (or self_hostable)")
            }
            EventKind::Price
                if e.sub_price_usd_per_month.is_none()
                    && e.api_price_usd_per_mtok.is_none()
                    && e.seat_price_usd_per_month.is_none()
                    && e.free_tier.is_none() =>
            {
                c.fail(p("kind"), "a price event needs at least one of sub_price_usd_per_month, api_price_usd_per_mtok, seat_price_usd_per_month, free_tier")
            }
            _ => {}
        }
    }
    // The whole-run bound needs every value in its domain; otherwise the problems above say what to fix.
    if c.problems.is_empty() {
        for msg in count_problems(s) {
            c.fail("population", msg);
        }
        for (i, f) in s.firms.iter().enumerate() {
            for (key, msg) in money_bound_problems(s, f) {
                c.fail(format!("firms[{i}].{key}"), msg);
            }
        }
    }
    if c.problems.is_empty() { Ok((summer_start.unwrap(), summer_end.unwrap())) } else { Err(c.problems) }
}

/// Upper bounds on a firm's accounts over the whole run, and the problems when they exceed what the
/// accounts hold ([`FLOW_LIMIT_USD`] per tick, [`STOCK_LIMIT_USD`] of cash, [`COUNT_LIMIT`] queries or
/// visits per tick). Each problem is keyed by the parameter that contributes most.
///
/// The bound arithmetic, with `Y` the run's length in years, `M` in months, `m` the longest
/// tick in months (31 days for monthly ticks), `P` the population, `O` the organisations, and
/// `G(x) = max(1, x^Y)` the largest value of a trend with factor `x` per year over the run:
///
/// - users and paying users of a firm are at most `P`, seats at most `O × max(seats) × seat_take_up`,
///   tokens per day at most `O × max(pilot, production) × max(tokens_factor) × G(token_growth)`;
///   queries per day at most `P × max over segments of queries × max(1, paid multiplier) × active days / 30.44
///   × max(1, summer activity)`;
/// - a price is at most the largest one it is given (the firm's or an event's), times every strategy
///   factor above 1; a price that tracks cost is at most `max(serving × G(cost_decline) × (1 + markup), floor)`;
/// - monthly revenue ≤ `P × sub price + seats × seat price + tokens × 30.44 × API price`; monthly cost ≤
///   `(queries × cost per query + tokens × serving cost) × 30.44 × G(cost_decline) + fixed × G(growth) / 12`
///   plus training and the revenue share (≤ revenue);
/// - a flow of one tick is at most its monthly bound × `m` (training: all of a programme in one tick at most);
/// - a raise happens only while the runway is below `trigger_runway_months` (or cash is negative) and
///   brings `size_months` of burn (≤ monthly cost), so just after one cash is below `(trigger + size) ×
///   monthly cost`; cash then grows only by revenue, funding events and the parent's budget: cash stays
///   within `max(cash, (trigger + size) × cost) + events + parent budget + revenue × M`, and a firm whose
///   cash turns negative exits, so cash never falls below minus one tick's cost.
///
/// With every parameter in its domain the bounds are finite; they are far above what a run reaches, so a
/// scenario that passes cannot meet the run-time check (`sim::resources::Health`).
fn money_bound_problems(s: &ScenarioFile, f: &FirmFile) -> Vec<(String, String)> {
    use crate::model::calendar::DAYS_PER_MONTH;
    let days = (s.end.0 - s.start.0).num_days().max(1) as f64;
    let years = days / crate::model::calendar::DAYS_PER_YEAR;
    let months = days / DAYS_PER_MONTH;
    let tick_days = match s.tick {
        Period::Day => 1.0,
        Period::Week => 7.0,
        Period::Month => 31.0,
    };
    let tick_months = tick_days / DAYS_PER_MONTH;
    let g = |x: f64| x.powf(years).max(1.0);
    let (p, o) = (s.population, s.orgs.population);
    let verts = s.orgs.verticals.as_array();
    let max_of = |it: &mut dyn Iterator<Item = f64>| it.fold(0.0, f64::max);
    let seats = o * max_of(&mut verts.iter().map(|v| v.seats)) * s.orgs.seat_take_up;
    let tokens_day = o
        * s.orgs.tokens_per_day_pilot_m.max(s.orgs.tokens_per_day_production_m)
        * max_of(&mut verts.iter().map(|v| v.tokens_factor))
        * g(s.orgs.token_growth_per_year);
    let queries_day = p * max_of(&mut s.segments.as_array().iter().map(|seg| {
        seg.queries_per_active_day * seg.paid_usage_multiplier.max(1.0) * seg.active_days_per_month / DAYS_PER_MONTH
            * seg.summer_activity.max(1.0)
    }));
    let mine: Vec<&EventFile> = s.events.iter().filter(|e| e.firm.as_deref() == Some(&f.id)).collect();
    let max_price =
        |base: f64, ev: &dyn Fn(&EventFile) -> Option<f64>| mine.iter().filter_map(|e| ev(e)).fold(base, f64::max);
    let sub_price = max_price(f.sub_price_usd_per_month, &|e| e.sub_price_usd_per_month);
    let seat_price = max_price(f.seat_price_usd_per_month, &|e| e.seat_price_usd_per_month);
    let factors: f64 = mine.iter().filter_map(|e| e.api_price_factor).map(|x| x.max(1.0)).product();
    // A tier's cost moves by cost_decline_per_year from its release, which may be before the run starts:
    // `cf` is the largest factor any tier reaches by the end of the run.
    let earliest = f.tiers.iter().map(|t| t.release.0).min().unwrap_or(s.start.0).min(s.start.0);
    let cf = f
        .cost_decline_per_year
        .powf((s.end.0 - earliest).num_days() as f64 / crate::model::calendar::DAYS_PER_YEAR)
        .max(1.0);
    // The dearest tier's chat query and API token, at their release cost (costs only fall after release
    // when cost_decline_per_year ≤ 1; `cf` covers a rise).
    let out_share = s.orgs.output_token_share;
    let query_cost = max_of(&mut f.tiers.iter().map(|t| {
        crate::model::compute::tokens_cost(
            t.chat_tokens_in_per_query,
            t.chat_tokens_out_per_query,
            t.cost_in_usd_per_mtok,
            t.cost_out_usd_per_mtok,
        )
    })) * cf;
    let mtok_cost = max_of(
        &mut f
            .tiers
            .iter()
            .map(|t| crate::model::compute::blended(t.cost_in_usd_per_mtok, t.cost_out_usd_per_mtok, out_share)),
    ) * cf;
    let top_list_price =
        max_of(&mut f.tiers.iter().map(|t| {
            crate::model::compute::blended(t.api_price_in_usd_per_mtok, t.api_price_out_usd_per_mtok, out_share)
        }));
    let mut api_price = max_price(f.api_price_usd_per_mtok, &|e| e.api_price_usd_per_mtok) * factors;
    // Matching a rival may lift a price to the floor; tracking cost moves it towards its target.
    api_price = api_price.max(f.pricing.floor_usd_per_mtok * factors);
    if f.pricing.api_tracks_cost {
        api_price = api_price.max(mtok_cost * (1.0 + f.pricing.markup) * factors);
    }
    // The top tier is at its list price times the strategy factors.
    let api_price = api_price.max(top_list_price * factors);
    let rev_sub = p * sub_price;
    let rev_seats = seats * seat_price;
    let rev_api = tokens_day * DAYS_PER_MONTH * api_price;
    let revenue = rev_sub + rev_seats + rev_api;
    // Compute: the planner orders for forecast demand (growth at most doubling a month over the lead time,
    // plus headroom, over the usable share); GPUs serving at once are at most the initial ones plus two
    // such targets (one expiring while its renewal serves), and spot adds its share at its premium.
    let k = &f.compute;
    let demand_usd_day =
        queries_day * query_cost + seats * s.orgs.seat_queries_per_day * query_cost + tokens_day * mtok_cost;
    let growth = 2f64.powf(k.lead_time_months).max(1.0);
    // A firm with no usable GPUs orders none.
    let planned_usd_day =
        if k.usable_share > 0.0 { demand_usd_day * growth * (1.0 + k.headroom) / k.usable_share } else { 0.0 };
    let inference = (k.initial_gpus * k.gpu_cost_usd_per_day + 2.0 * planned_usd_day)
        * (1.0 + k.spot_max_share * k.spot_premium)
        * DAYS_PER_MONTH;
    let fixed = f.fixed_cost_usd_per_year * g(f.fixed_cost_growth_per_year) / 12.0;
    let training: f64 = f.training.iter().map(|t| t.cost_usd).sum();
    let cost_month = inference + fixed + training + revenue;
    let funding_events: f64 = mine.iter().filter(|e| e.kind == EventKind::Funding).filter_map(|e| e.amount_usd).sum();
    // A raise happens only while the runway is below its trigger (or cash is negative), so just after one,
    // cash is below (trigger + size) months of burn, and burn is below the monthly cost.
    let raises = if f.raise.enabled { (f.raise.trigger_runway_months + f.raise.size_months) * cost_month } else { 0.0 };
    let cash = f.cash_usd.max(raises)
        + funding_events
        + f.parent_budget_usd
        + revenue * months
        + cost_month * tick_months.max(1.0);

    let mut out = Vec::new();
    let flow = |name: &str, key: &str, monthly: f64, out: &mut Vec<(String, String)>| {
        let per_tick = monthly * tick_months;
        if per_tick.is_nan() || per_tick > FLOW_LIMIT_USD {
            out.push((
                key.to_string(),
                format!(
                    "the firm's {name} could reach {} USD in one tick over this run (to {}), more than the {} USD \
                     a tick's flow may hold (cents exact in f64); lower this value{}",
                    num_text(per_tick),
                    s.end.0,
                    num_text(FLOW_LIMIT_USD),
                    if years > 1.0 { " or shorten `end`" } else { "" }
                ),
            ));
        }
    };
    flow("subscription revenue", "sub_price_usd_per_month", rev_sub, &mut out);
    flow("seat revenue", "seat_price_usd_per_month", rev_seats, &mut out);
    let grows = tokens_day > 0.0 && g(s.orgs.token_growth_per_year) > 1e3;
    let (api_name, inf_tokens) = if grows {
        ("API revenue (tokens grow with orgs.token_growth_per_year)", " (tokens grow with orgs.token_growth_per_year)")
    } else {
        ("API revenue", "")
    };
    flow(api_name, "api_price_usd_per_mtok", rev_api, &mut out);
    let inf_key = if cf > 1e3 {
        "cost_decline_per_year"
    } else if growth > 1e3 {
        "compute.lead_time_months"
    } else if k.initial_gpus * k.gpu_cost_usd_per_day >= 2.0 * planned_usd_day {
        "compute.initial_gpus"
    } else {
        "tiers"
    };
    flow(&format!("inference cost{inf_tokens}"), inf_key, inference, &mut out);
    let fixed_key =
        if g(f.fixed_cost_growth_per_year) > 1e3 { "fixed_cost_growth_per_year" } else { "fixed_cost_usd_per_year" };
    flow("fixed cost", fixed_key, fixed, &mut out);
    flow("training cost", "training", training / tick_months, &mut out);
    if out.is_empty() && (cash.is_nan() || cash > STOCK_LIMIT_USD) {
        let terms = [
            ("cash_usd", f.cash_usd),
            ("parent_budget_usd", f.parent_budget_usd),
            ("raise.size_months", raises),
            ("sub_price_usd_per_month", rev_sub * months),
            ("seat_price_usd_per_month", rev_seats * months),
            ("api_price_usd_per_mtok", rev_api * months),
            (inf_key, inference * months),
            (fixed_key, fixed * months),
            ("training", training),
        ];
        let key = terms.iter().fold(("cash_usd", 0.0), |a, &(k, v)| if v > a.1 { (k, v) } else { a }).0;
        out.push((
            key.to_string(),
            format!(
                "the firm's cash could reach {} USD over this run (to {}), more than the {} USD the accounts hold \
             (cash is kept in 64-bit cents); this value contributes most: lower it{}",
                num_text(cash),
                s.end.0,
                num_text(STOCK_LIMIT_USD),
                if years > 1.0 { " or shorten `end`" } else { "" }
            ),
        ));
    }
    out
}

/// Queries and visits of one tick, at most (see [`money_bound_problems`]); recorded as `u64`.
fn count_problems(s: &ScenarioFile) -> Vec<String> {
    use crate::model::calendar::DAYS_PER_MONTH;
    let tick_days = match s.tick {
        Period::Day => 1.0,
        Period::Week => 7.0,
        Period::Month => 31.0,
    };
    let segs = s.segments.as_array();
    let per_day = |f: &dyn Fn(&SegmentFile) -> f64| {
        segs.iter()
            .map(|seg| f(seg) * seg.active_days_per_month / DAYS_PER_MONTH * seg.summer_activity.max(1.0))
            .fold(0.0, f64::max)
            * s.population
    };
    let queries = per_day(&|seg| seg.queries_per_active_day * seg.paid_usage_multiplier.max(1.0));
    let visits = per_day(&|seg| seg.visits_per_active_day);
    let mut out = Vec::new();
    for (what, per_day) in [("queries", queries), ("visits", visits)] {
        if (per_day * tick_days).is_nan() || per_day * tick_days > COUNT_LIMIT {
            out.push(format!(
                "{what} of one tick could reach {}, more than {} (counts are 64-bit integers summed over a year); \
                 lower the population or the segments' usage",
                num_text(per_day * tick_days),
                num_text(COUNT_LIMIT)
            ));
        }
    }
    out
}

/// The recording interval in effect: the file's, or the tick length.
pub fn record_every(s: &ScenarioFile) -> Period {
    s.record_every.unwrap_or(s.tick)
}
