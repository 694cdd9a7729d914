//! Checks a resolved [`ScenarioFile`] completely, collecting every problem with its key path.

use super::Problem;
use super::file::*;
use crate::model::calendar::{MonthDay, Period};
use std::collections::BTreeSet;

/// The most firms a scenario may have (awareness is a 32-bit set per user).
pub const MAX_FIRMS: usize = 32;
/// The largest amount of money a scenario may name (cash is kept in 64-bit cents).
pub const MAX_USD: f64 = 1e14;
/// The most user agents (ids are `u32`).
pub const MAX_AGENTS: u64 = 1 << 31;
/// Upper bound on organisation agents: a user stores its employer's index in 27 bits (its other traits take
/// the rest of the word, so that a user stays small; see `sim::components::User`).
pub const MAX_ORG_AGENTS: u64 = (1 << 27) - 1;

struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn fail(&mut self, path: impl Into<String>, msg: impl Into<String>) {
        self.problems.push(Problem { file: None, path: Some(path.into()), line: None, message: msg.into() });
    }
    fn finite(&mut self, path: &str, v: f64) -> bool {
        if !v.is_finite() {
            self.fail(path, format!("must be a finite number, got {v}"));
            return false;
        }
        true
    }
    fn nonneg(&mut self, path: &str, v: f64) {
        if self.finite(path, v) && v < 0.0 {
            self.fail(path, format!("must not be negative, got {v}"));
        }
    }
    fn positive(&mut self, path: &str, v: f64) {
        if self.finite(path, v) && v <= 0.0 {
            self.fail(path, format!("must be greater than zero, got {v}"));
        }
    }
    fn prob(&mut self, path: &str, v: f64) {
        if self.finite(path, v) && !(0.0..=1.0).contains(&v) {
            self.fail(path, format!("is a probability and must lie in [0, 1], got {v}"));
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
    if s.name.trim().is_empty() {
        c.fail("name", "must not be empty");
    }
    if s.end.0 <= s.start.0 {
        c.fail("end", format!("must be after start ({}), got {}", s.start.0, s.end.0));
    } else if (s.end.0 - s.start.0).num_days() > 366 * 50 {
        c.fail("end", "a run may cover at most 50 years");
    }
    if s.agents == 0 {
        c.fail("agents", "must be at least 1");
    } else if s.agents > MAX_AGENTS {
        c.fail("agents", format!("must be at most {MAX_AGENTS}"));
    }
    c.positive("population", s.population);
    c.finite("elo_reference", s.elo_reference);
    for (i, t) in s.revenue_thresholds_usd.iter().enumerate() {
        c.positive(&format!("revenue_thresholds_usd[{i}]"), *t);
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
            format!("expected a day of the year as \"MM-DD\", got {:?}", s.calendar.summer_start),
        );
    }
    if summer_end.is_none() {
        c.fail(
            "calendar.summer_end",
            format!("expected a day of the year as \"MM-DD\", got {:?}", s.calendar.summer_end),
        );
    }

    let a = &s.awareness;
    c.prob("awareness.p_base_per_month", a.p_base_per_month);
    c.prob("awareness.launch_p_per_month", a.launch_p_per_month);
    c.positive("awareness.launch_decay_months", a.launch_decay_months);
    c.nonneg("awareness.word_of_mouth_per_month", a.word_of_mouth_per_month);
    c.finite("awareness.trial_utility", a.trial_utility);

    let sub = &s.subscriptions;
    c.prob("subscriptions.conversion_per_month", sub.conversion_per_month);
    c.nonneg("subscriptions.uplift_per_100_elo", sub.uplift_per_100_elo);
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
        c.finite(&p("loyalty"), seg.loyalty);
        c.nonneg(&p("quality_weight"), seg.quality_weight);
        c.nonneg(&p("price_weight_per_usd"), seg.price_weight_per_usd);
        c.finite(&p("outside_utility"), seg.outside_utility);
        c.nonneg(&p("taste_spread"), seg.taste_spread);
        c.positive(&p("wtp_median_usd"), seg.wtp_median_usd);
        c.nonneg(&p("wtp_sigma"), seg.wtp_sigma);
        c.nonneg(&p("queries_per_active_day"), seg.queries_per_active_day);
        c.nonneg(&p("active_days_per_month"), seg.active_days_per_month);
        if seg.active_days_per_month > 31.0 {
            c.fail(
                p("active_days_per_month"),
                format!("a month has at most 31 days, got {}", seg.active_days_per_month),
            );
        }
        c.nonneg(&p("visits_per_active_day"), seg.visits_per_active_day);
        c.nonneg(&p("paid_usage_multiplier"), seg.paid_usage_multiplier);
        c.prob(&p("employed_share"), seg.employed_share);
        c.nonneg(&p("summer_activity"), seg.summer_activity);
    }
    c.sums_to_one("segments", share);

    let o = &s.orgs;
    if o.agents == 0 {
        c.fail("orgs.agents", "must be at least 1");
    } else if o.agents > MAX_ORG_AGENTS {
        c.fail("orgs.agents", format!("must be at most {MAX_ORG_AGENTS}"));
    }
    c.positive("orgs.population", o.population);
    c.prob("orgs.reconsider_per_month", o.reconsider_per_month);
    c.finite("orgs.loyalty", o.loyalty);
    c.nonneg("orgs.quality_weight", o.quality_weight);
    c.nonneg("orgs.log_price_weight", o.log_price_weight);
    c.prob("orgs.pilot_to_production_per_month", o.pilot_to_production_per_month);
    c.nonneg("orgs.tokens_per_day_pilot_m", o.tokens_per_day_pilot_m);
    c.nonneg("orgs.tokens_per_day_production_m", o.tokens_per_day_production_m);
    c.positive("orgs.token_growth_per_year", o.token_growth_per_year);
    c.prob("orgs.ban_hazard_per_month", o.ban_hazard_per_month);
    c.positive("orgs.ban_pressure_decay_months", o.ban_pressure_decay_months);
    c.prob("orgs.ban_lift_per_month", o.ban_lift_per_month);
    c.prob("orgs.shadow_use", o.shadow_use);
    c.prob("orgs.enterprise_adoption_per_month", o.enterprise_adoption_per_month);
    c.prob("orgs.seat_take_up", o.seat_take_up);
    c.nonneg("orgs.self_host_markup", o.self_host_markup);
    let vnames = ["healthcare", "finance", "education", "tech", "other"];
    let mut vshare = 0.0;
    for (name, v) in vnames.iter().zip(o.verticals.as_array()) {
        let p = |k: &str| format!("orgs.verticals.{name}.{k}");
        c.prob(&p("share"), v.share);
        vshare += v.share;
        c.prob(&p("adoption_p_per_month"), v.adoption_p_per_month);
        c.nonneg(&p("adoption_q_per_month"), v.adoption_q_per_month);
        c.nonneg(&p("seats"), v.seats);
        c.nonneg(&p("tokens_factor"), v.tokens_factor);
        c.nonneg(&p("ban_factor"), v.ban_factor);
        c.finite(&p("self_host_affinity"), v.self_host_affinity);
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
            c.fail(p("id"), format!("duplicate firm id {:?}", f.id));
        }
        if let Some(cl) = f.chat_launch
            && cl.0 < f.launch.0
        {
            c.fail(p("chat_launch"), format!("cannot be before the firm's launch ({})", f.launch.0));
        }
        c.finite(&p("quality_elo"), f.quality_elo);
        c.finite(&p("quality_growth_elo_per_year"), f.quality_growth_elo_per_year);
        if let Some(cu) = &f.catch_up {
            c.nonneg(&p("catch_up.gap0_elo"), cu.gap0_elo);
            c.positive(&p("catch_up.tau_months"), cu.tau_months);
        }
        c.nonneg(&p("sub_price_usd_per_month"), f.sub_price_usd_per_month);
        c.nonneg(&p("paid_quality_uplift_elo"), f.paid_quality_uplift_elo);
        c.nonneg(&p("api_price_usd_per_mtok"), f.api_price_usd_per_mtok);
        c.nonneg(&p("seat_price_usd_per_month"), f.seat_price_usd_per_month);
        c.finite(&p("brand"), f.brand);
        c.finite(&p("bundle_utility"), f.bundle_utility);
        c.prob(&p("reach_per_month"), f.reach_per_month);
        for (sn, v) in names.iter().zip(f.awareness_by_segment.as_array()) {
            c.nonneg(&p(&format!("awareness_by_segment.{sn}")), v);
        }
        c.nonneg(&p("launch_buzz"), f.launch_buzz);
        c.finite(&p("org_trust"), f.org_trust);
        c.nonneg(&p("cash_usd"), f.cash_usd);
        c.nonneg(&p("fixed_cost_usd_per_year"), f.fixed_cost_usd_per_year);
        c.positive(&p("fixed_cost_growth_per_year"), f.fixed_cost_growth_per_year);
        c.nonneg(&p("cost_per_query_usd"), f.cost_per_query_usd);
        c.nonneg(&p("serving_cost_usd_per_mtok"), f.serving_cost_usd_per_mtok);
        c.positive(&p("cost_decline_per_year"), f.cost_decline_per_year);
        c.prob(&p("revenue_share"), f.revenue_share);
        c.nonneg(&p("parent_budget_usd"), f.parent_budget_usd);
        for (k, v) in [("parent_budget_usd", f.parent_budget_usd), ("cash_usd", f.cash_usd)] {
            if v > MAX_USD {
                c.fail(p(k), format!("must be at most {MAX_USD:e} USD"));
            }
        }
        c.positive(&p("raise.trigger_runway_months"), f.raise.trigger_runway_months);
        c.positive(&p("raise.size_months"), f.raise.size_months);
        c.prob(&p("raise.success_base"), f.raise.success_base);
        c.nonneg(&p("raise.success_per_growth"), f.raise.success_per_growth);
        c.nonneg(&p("raise.cooldown_months"), f.raise.cooldown_months);
        c.prob(&p("raise.acquihire_probability"), f.raise.acquihire_probability);
        c.nonneg(&p("pricing.markup"), f.pricing.markup);
        c.positive(&p("pricing.lag_months"), f.pricing.lag_months);
        c.nonneg(&p("pricing.floor_usd_per_mtok"), f.pricing.floor_usd_per_mtok);
        c.prob(&p("pricing.match_undercut_per_month"), f.pricing.match_undercut_per_month);
        for (j, t) in f.training.iter().enumerate() {
            c.positive(&p(&format!("training[{j}].months")), t.months);
            c.nonneg(&p(&format!("training[{j}].cost_usd")), t.cost_usd);
        }
    }
    if !s.firms.is_empty() && s.firms.iter().all(|f| f.catch_up.is_some()) {
        c.fail("firms", "open models catch up with a frontier: at least one firm must have no `catch_up`");
    }

    let mut event_ids = BTreeSet::new();
    for (i, e) in s.events.iter().enumerate() {
        let p = |k: &str| format!("events[{i}].{k}");
        if e.id.trim().is_empty() {
            c.fail(p("id"), "every event needs a non-empty id");
        } else if !event_ids.insert(e.id.as_str()) {
            c.fail(p("id"), format!("duplicate event id {:?}", e.id));
        }
        if e.date.0 < s.start.0 {
            c.fail(p("date"), format!("{} is before the start of the run ({})", e.date.0, s.start.0));
        }
        let needs_firm = e.kind != EventKind::Leak;
        match &e.firm {
            Some(f) if !ids.contains(f.as_str()) => {
                let known: Vec<&str> = ids.iter().copied().collect();
                c.fail(p("firm"), format!("unknown firm {f:?} (known: {})", known.join(", ")));
            }
            None if needs_firm => c.fail(p("firm"), format!("a {:?} event must name a firm", e.kind)),
            _ => {}
        }
        let opt = |c: &mut Checker, k: &str, v: Option<f64>| {
            if let Some(v) = v {
                c.nonneg(&p(k), v)
            }
        };
        opt(&mut c, "amount_usd", e.amount_usd);
        if e.amount_usd.is_some_and(|a| a > MAX_USD) {
            c.fail(p("amount_usd"), format!("must be at most {MAX_USD:e} USD"));
        }
        opt(&mut c, "sub_price_usd_per_month", e.sub_price_usd_per_month);
        opt(&mut c, "api_price_usd_per_mtok", e.api_price_usd_per_mtok);
        opt(&mut c, "seat_price_usd_per_month", e.seat_price_usd_per_month);
        opt(&mut c, "strength", e.strength);
        if let Some(v) = e.quality_jump_elo {
            c.finite(&p("quality_jump_elo"), v);
        }
        if let Some(v) = e.org_trust_add {
            c.finite(&p("org_trust_add"), v);
        }
        if let Some(v) = e.api_price_factor {
            c.positive(&p("api_price_factor"), v);
        }
        match e.kind {
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
    if c.problems.is_empty() { Ok((summer_start.unwrap(), summer_end.unwrap())) } else { Err(c.problems) }
}

/// The recording interval in effect: the file's, or the tick length.
pub fn record_every(s: &ScenarioFile) -> Period {
    s.record_every.unwrap_or(s.tick)
}
