//! Firm phases: quality (2), the per-tick market view (end of 2), accounting and funding (7), pricing (8).

use super::capacity;
use super::components::*;
use super::resources::*;
use crate::config::domain::{Firm, Tier};
use crate::config::file::{FirmKind, Mode, WordOfMouth};
use crate::model::calendar::{DAYS_PER_MONTH, DAYS_PER_YEAR, hazard, hazard_from_monthly_prob};
use crate::model::choice::NONE;
use crate::model::compute;
use crate::model::econ::{self, Cents, LOGIT_PER_ELO};
use crate::model::rng::{CounterRng, Stream, prob_threshold, tick_key};
use crate::model::strategy as strategy_rule;
use bevy_ecs::prelude::*;
use chrono::NaiveDate;

/// Conditional means of the quartiles of a standard normal: the taste classes' positions.
const TASTE_Z: [f64; TASTE_CLASSES] = [-1.2711, -0.3247, 0.3247, 1.2711];

/// Phase `Quality`. Reads `Clock`, `RunInfo`; writes each firm's `Quality`: own trend plus release
/// jumps; open models with `catch_up` close the gap to the best frontier firm (and never pass it).
pub fn update_quality(clock: Res<Clock>, info: Res<RunInfo>, mut firms: Query<(&FirmId, &mut Quality, &Status)>) {
    let specs = info.firms();
    let p = info.params();
    // A firm whose training is decided gains quality from its runs only once it decides: its trend stops.
    let years_at_start = (p.decisions.start.0 - p.start.0).num_days() as f64 / DAYS_PER_YEAR;
    let mut frontier = f64::NEG_INFINITY;
    let mut frontier_any = f64::NEG_INFINITY;
    for (id, mut q, status) in firms.iter_mut() {
        let f = &specs[id.0 as usize];
        if f.catch_up.is_none() {
            let years =
                if f.strategy.training == Mode::Decided { clock.years.min(years_at_start) } else { clock.years };
            q.current = f.quality_elo + f.quality_growth_elo_per_year * years + q.jumps;
            frontier_any = frontier_any.max(q.current);
            if status.alive && clock.date >= f.launch {
                frontier = frontier.max(q.current);
            }
        }
    }
    if frontier == f64::NEG_INFINITY {
        frontier = frontier_any;
    }
    let decided_from = p.decisions.start.0;
    for (id, mut q, _) in firms.iter_mut() {
        let f = &specs[id.0 as usize];
        if let Some(cu) = &f.catch_up {
            let months = clock.years * DAYS_PER_YEAR / DAYS_PER_MONTH;
            let caught_up = econ::catch_up_quality(frontier, cu.gap0_elo, months, cu.tau_months);
            // An open model whose training is decided stops following the frontier on the start: from then
            // on it moves only by its own runs' releases.
            let base = if f.strategy.training == Mode::Decided && clock.date >= decided_from {
                *q.anchor.get_or_insert(caught_up)
            } else {
                caught_up
            };
            // Release jumps narrow the gap, but an open model never passes the frontier it follows.
            q.current = (base + q.jumps).min(frontier);
        }
    }
}

/// Phase `Quality` (after `update_quality`). Reads `Clock`, `RunInfo`, last tick's `UserTally` and the
/// firms; writes `Offers`, the per-segment tables every user phase reads this tick.
pub fn publish_offers(
    clock: Res<Clock>,
    info: Res<RunInfo>,
    tally: Res<UserTally>,
    mut offers: ResMut<Offers>,
    firms: Query<(&FirmId, &Quality, &Offer, &Status, &Compute, &Lineup, &Decisions)>,
) {
    let p = info.params();
    let segs = p.segments.as_array();
    let aw = &p.awareness;
    let dt = clock.dt_months;
    let mut o = Offers {
        n_firms: info.firms().len(),
        reconsider_on_awareness: aw.reconsider_on_awareness,
        ..Offers::default()
    };
    for (s, seg) in segs.iter().enumerate() {
        o.outside[s] = seg.outside_utility.exp() as f32;
        o.loyalty[s] = seg.loyalty.exp() as f32;
        o.trial[s] = aw.trial_utility.exp() as f32;
        o.reconsider_thr[s] = prob_threshold(hazard_from_monthly_prob(seg.reconsider_per_month, dt));
    }
    let sub = &p.subscriptions;
    o.churn_thr = [sub.churn_month1, sub.churn_months_2_6, sub.churn_after]
        .map(|c| prob_threshold(hazard_from_monthly_prob(c, dt)));
    o.tick_days = clock.dt_days.round().clamp(0.0, u16::MAX as f64) as u16;
    let n_users = info.n_users.max(1) as f64;
    for (id, q, offer, status, comp, lineup, dec) in firms.iter() {
        let j = id.0 as usize;
        let f = &info.firms()[j];
        let open = status.alive && f.chat_app && clock.date >= f.chat_launch;
        if !open {
            continue;
        }
        o.chat_open |= 1 << j;
        if f.kind != FirmKind::OpenSource {
            o.ban_subject |= 1 << j;
        }
        let paid_only = !offer.free_tier && offer.sub_price > 0.0;
        if paid_only {
            o.paid_only |= 1 << j;
        }
        // Awareness: external influence (base + decaying launch shock + distribution reach) plus word of mouth.
        let months_open = (clock.date - f.chat_launch).num_days() as f64 / DAYS_PER_MONTH;
        let external = aw.p_base_per_month
            + aw.launch_p_per_month * f.launch_buzz * (-months_open / aw.launch_decay_months).exp()
            + f.reach_per_month;
        let talkers = match aw.word_of_mouth_from {
            WordOfMouth::Users => tally.users[j].iter().sum::<u64>(),
            WordOfMouth::Aware => tally.aware[j],
        } as f64;
        o.talkers[j] = talkers;
        // The tally is from the end of the last tick; extrapolate it to the middle of this one
        // (second-order Adams–Bashforth), so that long ticks do not slow word of mouth down.
        let mid = (talkers + 0.5 * (talkers - offers.talkers[j])).max(0.0);
        let wom = aw.word_of_mouth_per_month * mid / n_users;
        for (s, factor) in f.awareness_by_segment.iter().enumerate() {
            o.aware_thr[s][j] = prob_threshold(hazard(factor * (external + wom), dt));
        }
        // Utilities per segment and taste class.
        let price = if paid_only { offer.sub_price } else { 0.0 };
        let bundle = if f.bundled { f.bundle_utility } else { 0.0 };
        let quality = (q.current - p.elo_reference) * LOGIT_PER_ELO;
        // At capacity: users meet rate limits (a utility penalty) and new sign-ups a waitlist, in proportion
        // to the share of free demand rationed at the last tick; paying users meet message caps (churn).
        // A firm that limits its free tier (a cost cut) rations free users on purpose: the same penalty.
        let limited = comp.ration_free + dec.free_limit * (1.0 - comp.ration_free);
        let at_capacity = f.compute.at_capacity_utility * limited;
        o.admit_thr[j] = prob_threshold(1.0 - comp.ration_free);
        o.capped_churn_thr[j] =
            prob_threshold(hazard_from_monthly_prob(f.compute.capped_churn_per_month * comp.ration_paid, dt));
        for (s, seg) in segs.iter().enumerate() {
            for (k, z) in TASTE_Z.iter().enumerate() {
                let beta = seg.quality_weight * (seg.taste_spread * z).exp();
                let v = beta * quality - seg.price_weight_per_usd * price + bundle + f.brand + at_capacity;
                o.weight[s][k][j] = v.exp() as f32;
            }
        }
        if offer.sub_price > 0.0 {
            o.sub_price[j] = offer.sub_price as f32;
            let uplift = capacity::tiers(f, &lineup.0, clock.date, p.orgs.output_token_share).uplift_elo();
            let conv = (sub.conversion_per_month * (1.0 + sub.uplift_per_100_elo * uplift / 100.0)).min(1.0);
            o.convert_thr[j] = prob_threshold(hazard_from_monthly_prob(conv, dt));
            o.convert_half_thr[j] = prob_threshold(hazard_from_monthly_prob(conv, dt / 2.0));
        }
    }
    *offers = o;
}

/// Training spend of firm `f` in the interval (from, to]: each scripted programme spreads its cost evenly
/// over its duration (for a firm whose training is decided, only the days before `decided_from`: a programme
/// running then is the firm's first run and paid as one), and the firm's own run is paid by the day while it
/// runs.
pub fn training_cost(f: &Firm, run: Option<&Run>, decided_from: NaiveDate, from: NaiveDate, to: NaiveDate) -> f64 {
    let own = run.map_or(0.0, |r| {
        let a = from.max(r.start);
        let b = to.min(r.end);
        if b > a { (b - a).num_days() as f64 * r.usd_per_day } else { 0.0 }
    });
    let decided = f.strategy.training == Mode::Decided;
    own + f
        .training
        .iter()
        .map(|t| {
            let days = t.months * DAYS_PER_MONTH;
            let start = t.start;
            let until = if decided { ((decided_from - start).num_days() as f64).clamp(0.0, days) } else { days };
            let a = ((from - start).num_days() as f64).clamp(0.0, until);
            let b = ((to - start).num_days() as f64).clamp(0.0, until);
            t.cost_usd * (b - a) / days
        })
        .sum::<f64>()
}

/// Phase `Accounting`. Reads `Clock`, `RunInfo`, `UserTally`, `OrgTally`; writes each firm's `TickFlows`
/// (usage, demand on its compute and what was served, revenue by stream, costs by kind), its `Compute`
/// (the shares rationed, which users meet next tick) and `Health` when a value is not finite.
#[allow(clippy::type_complexity)]
pub fn account_firms(
    clock: Res<Clock>,
    info: Res<RunInfo>,
    tally: Res<UserTally>,
    orgs: Res<OrgTally>,
    mut health: ResMut<Health>,
    mut firms: Query<(&FirmId, &Offer, &Status, &mut TickFlows, &mut Compute, &Lineup, &Decisions)>,
) {
    let p = info.params();
    let segs = p.segments.as_array();
    let w = info.weight;
    let dt_days = clock.dt_days;
    let out_share = p.orgs.output_token_share;
    for (id, offer, status, mut flows, mut comp, lineup, dec) in firms.iter_mut() {
        let j = id.0 as usize;
        let f = &info.firms()[j];
        let prev = *flows;
        *flows = TickFlows::default();
        if !status.alive {
            comp.ration_free = 0.0;
            comp.ration_paid = 0.0;
            continue;
        }
        let tiers = capacity::tiers(f, &lineup.0, clock.date, out_share);
        let cap = tiers.top.message_cap_per_active_day;
        // Queries per day: free users on the free tier; paying users on the top tier up to its message cap,
        // the rest on the free tier.
        let (mut users, mut paying, mut queries, mut visits) = (0.0, 0.0, 0.0, 0.0);
        let (mut free_q, mut paid_top_q, mut paid_free_q, mut free_users) = (0.0, 0.0, 0.0, 0.0);
        for (s, seg) in segs.iter().enumerate() {
            let n = tally.users[j][s] as f64;
            let paid = tally.paying[j][s] as f64;
            let activity = if clock.summer { seg.summer_activity } else { 1.0 };
            let per_day = seg.active_days_per_month / DAYS_PER_MONTH * activity;
            users += n;
            paying += paid;
            free_users += n - paid;
            let paid_per_active_day = seg.queries_per_active_day * seg.paid_usage_multiplier;
            let (top, overflow) = compute::split_by_cap(paid_per_active_day, cap);
            free_q += (n - paid) * seg.queries_per_active_day * per_day;
            paid_top_q += paid * top * per_day;
            paid_free_q += paid * overflow * per_day;
            queries += ((n - paid) + paid * seg.paid_usage_multiplier) * seg.queries_per_active_day * per_day;
            visits += n * seg.visits_per_active_day * per_day;
        }
        // Free-tier limits (a cost cut) turn part of the free queries away.
        let (free_q, paid_top_q, paid_free_q) = (free_q * w * (1.0 - dec.free_limit), paid_top_q * w, paid_free_q * w);
        flows.users = users * w;
        flows.paying_users = paying * w;
        flows.queries_per_day = queries * w;
        flows.visits_per_day = visits * w;
        flows.mtok_per_day = orgs.tokens_m_per_day.get(j).copied().unwrap_or(0.0) * info.org_weight;
        flows.queries = 0.5 * (prev.queries_per_day + flows.queries_per_day) * dt_days;
        flows.visits = 0.5 * (prev.visits_per_day + flows.visits_per_day) * dt_days;
        let mtok = 0.5 * (prev.mtok_per_day + flows.mtok_per_day) * dt_days;
        flows.tokens = mtok * 1e6;
        flows.api_orgs = orgs.api_orgs.get(j).copied().unwrap_or(0) as f64 * info.org_weight;
        flows.seats = orgs.seats.get(j).copied().unwrap_or(0.0) * info.org_weight;

        // Demand on the firm's compute, in GPUs (a tier's cost per token over the price of a GPU-day).
        let c = &f.compute;
        let gpu_day = c.gpu_cost_usd_per_day;
        let chat_tokens = |t: &Tier| t.chat_tokens_in_per_query + t.chat_tokens_out_per_query;
        let seat_q = flows.seats * p.orgs.seat_queries_per_day;
        let (api_free_mtok, api_top_mtok) = if f.api {
            let top = orgs.top_tokens_m_per_day.get(j).copied().unwrap_or(0.0) * info.org_weight;
            (flows.mtok_per_day - top, top)
        } else {
            (0.0, 0.0)
        };
        let usd = [
            seat_q * tiers.top_query_cost + api_free_mtok * tiers.free_mtok_cost + api_top_mtok * tiers.top_mtok_cost,
            paid_top_q * tiers.top_query_cost + paid_free_q * tiers.free_query_cost,
            free_q * tiers.free_query_cost,
        ];
        let demand = usd.map(|x| x / gpu_day);
        let tokens = [
            seat_q * chat_tokens(tiers.top) + (api_free_mtok + api_top_mtok) * 1e6,
            paid_top_q * chat_tokens(tiers.top) + paid_free_q * chat_tokens(tiers.free),
            free_q * chat_tokens(tiers.free),
        ];
        let installed = compute::active_gpus(&comp.tranches, clock.date);
        let usable = installed * c.usable_share;
        let capacity = usable * (1.0 + c.spot_max_share);
        let served = compute::ration(capacity, demand);
        let share = |k: usize| if demand[k] > 0.0 { served[k] / demand[k] } else { 1.0 };
        // API tokens are billed as served: a rationed contract token earns nothing.
        let (price_free, price_top) = capacity::api_prices(&tiers, offer.api_price, offer.api_factor, out_share);
        let api_demand = api_free_mtok * tiers.free_mtok_cost / gpu_day + api_top_mtok * tiers.top_mtok_cost / gpu_day;
        let api_served = api_demand * share(compute::CONTRACT);
        let best_usd = if tiers.two_models {
            [seat_q * tiers.top_query_cost + api_top_mtok * tiers.top_mtok_cost, paid_top_q * tiers.top_query_cost, 0.0]
        } else {
            [0.0; 3]
        };
        let r = ComputeRates {
            best_served: (0..3).map(|k| best_usd[k] / gpu_day * share(k)).sum(),
            api_served,
            api_revenue: (api_free_mtok * price_free + api_top_mtok * price_top) * share(compute::CONTRACT),
            installed,
            capacity,
            spot: (served.iter().sum::<f64>() - usable).max(0.0),
            demand,
            served,
            tokens_demand: tokens.iter().sum(),
            tokens_served: (0..3).map(|k| tokens[k] * share(k)).sum(),
        };
        comp.ration_free = compute::rationed_share(demand[compute::FREE], served[compute::FREE]);
        comp.ration_paid = compute::rationed_share(demand[compute::PAID], served[compute::PAID]);
        let trap = |a: f64, b: f64| 0.5 * (a + b) * dt_days;
        let pr = prev.rates;
        flows.rates = r;
        flows.capacity_gpu_days = trap(pr.capacity, r.capacity);
        flows.demanded_gpu_days = trap(pr.demand.iter().sum(), r.demand.iter().sum());
        flows.served_gpu_days = trap(pr.served.iter().sum(), r.served.iter().sum());
        flows.tokens_demanded = trap(pr.tokens_demand, r.tokens_demand);
        flows.tokens_served = trap(pr.tokens_served, r.tokens_served);
        flows.waitlisted = tally.waitlisted[j] as f64 * w;
        flows.rationed_users = free_users * w * comp.ration_free + flows.paying_users * comp.ration_paid;

        let dt_months = clock.dt_months;
        let revenue_sub = 0.5 * (prev.paying_users + flows.paying_users) * offer.sub_price * dt_months;
        let revenue_api = trap(pr.api_revenue, r.api_revenue);
        let revenue_seats = 0.5 * (prev.seats + flows.seats) * offer.seat_price * dt_months;
        let commitment = trap(pr.installed, r.installed) * gpu_day;
        let spot = trap(pr.spot, r.spot) * gpu_day * c.spot_premium;
        let staff_years = super::strategy::staff_years(dec, clock.years);
        let fixed = f.fixed_cost_usd_per_year * econ::trend(1.0, f.fixed_cost_growth_per_year, staff_years) * dt_days
            / DAYS_PER_YEAR;
        let training = training_cost(f, dec.run.as_ref(), p.decisions.start.0, clock.prev_date, clock.date);
        for (what, v) in [
            ("subscription revenue", revenue_sub),
            ("API revenue", revenue_api),
            ("seat revenue", revenue_seats),
            ("inference cost", commitment + spot),
            ("fixed cost", fixed),
            ("training cost", training),
            ("queries", flows.queries),
            ("visits", flows.visits),
        ] {
            health.check(what, &f.id, v);
        }
        flows.revenue_sub = Cents::from_usd(revenue_sub);
        flows.revenue_api = Cents::from_usd(revenue_api);
        flows.revenue_seats = Cents::from_usd(revenue_seats);
        flows.cost_commitment = Cents::from_usd(commitment);
        flows.cost_spot = Cents::from_usd(spot);
        flows.cost_inference = flows.cost_commitment + flows.cost_spot;
        // The compute cost by use, in proportion to the GPU-days each use took of those paid for.
        let paid_for = trap(pr.installed + pr.spot, r.installed + r.spot);
        let served_by = |k: usize| trap(pr.served[k], r.served[k]);
        let api_gpu_days = trap(pr.api_served, r.api_served);
        let (parts, idle) = compute::allocate_cents(
            flows.cost_inference.0,
            [
                served_by(compute::FREE),
                served_by(compute::PAID),
                (served_by(compute::CONTRACT) - api_gpu_days).max(0.0),
                api_gpu_days,
            ],
            paid_for,
        );
        flows.cost_by_use = parts.map(Cents);
        flows.cost_idle = Cents(idle);
        let best = trap(pr.best_served, r.best_served);
        let served_all = flows.served_gpu_days;
        let (tier_parts, _) =
            compute::allocate_cents(flows.cost_inference.0, [(served_all - best).max(0.0), best], paid_for);
        flows.cost_by_tier = tier_parts.map(Cents);
        flows.cost_fixed = Cents::from_usd(fixed);
        flows.cost_training = Cents::from_usd(training);
        flows.cost_revenue_share = Cents::from_usd(flows.revenue().usd() * f.revenue_share);
    }
}

/// Trailing monthly net burn (cost − revenue) over the burn window, USD per month.
pub fn monthly_burn(fin: &Finance) -> f64 {
    let days: f64 = fin.burn_window.iter().map(|(d, _)| d).sum();
    if days <= 0.0 {
        return 0.0;
    }
    let burn: i64 = fin.burn_window.iter().map(|(_, c)| c.0).sum();
    burn as f64 / 100.0 / days * DAYS_PER_MONTH
}

/// Trailing-12-month revenue.
pub fn ttm_revenue(fin: &Finance) -> Cents {
    fin.revenue_window.iter().map(|(_, c)| *c).sum()
}

/// Runway in months at the current burn, counting what is left of a parent's budget and
/// unspent compute credits; `None` when not
/// burning cash.
pub fn runway(fin: &Finance, f: &Firm, credits: Cents) -> Option<f64> {
    let parent_left = (Cents::from_usd(f.parent_budget_usd) - fin.parent_used).max(Cents::ZERO);
    econ::runway_months(fin.cash + parent_left + credits, monthly_burn(fin))
}

/// Phase `Accounting` (after `account_firms`). Reads `Clock`, `RunInfo`; writes each firm's `Finance`,
/// `Status` and `TickFlows::funding`: dated funding, runway-triggered raises, parent backing, and exit
/// when cash runs out (its users and organisations re-choose from the next tick).
pub fn fund_firms(
    clock: Res<Clock>,
    info: Res<RunInfo>,
    mut health: ResMut<Health>,
    mut sector: ResMut<Sector>,
    mut log: ResMut<DecisionLog>,
    mut firms: Query<(&FirmId, &mut Finance, &mut Status, &mut TickFlows, &mut Compute, &mut Decisions)>,
) {
    let key = tick_key(info.seed, Stream::Firm, clock.tick);
    let d = &info.params().decisions;
    let (mut sector_recent, mut sector_ttm) = (0.0, 0.0);
    for (id, mut fin, mut status, mut flows, mut comp, mut dec) in firms.iter_mut() {
        let f = &info.firms()[id.0 as usize];
        let mut funding = std::mem::take(&mut fin.pending_funding);
        if !status.alive {
            // Funding (cash or compute credits) that reaches a firm after its exit is lost with it.
            flows.funding = Cents::ZERO;
            comp.credits = Cents::ZERO;
            continue;
        }
        // Compute credits pay the compute bill first: funding received in kind.
        let in_kind = comp.credits.min(flows.cost_inference).max(Cents::ZERO);
        comp.credits = comp.credits - in_kind;
        flows.funding_in_kind = in_kind;
        funding += in_kind;
        let profit = flows.profit();
        fin.burn_window.push_back((clock.dt_days, flows.cost() - flows.revenue()));
        while fin.burn_window.len() > 1 && fin.burn_window.iter().skip(1).map(|(d, _)| d).sum::<f64>() >= 90.0 {
            fin.burn_window.pop_front();
        }
        fin.revenue_window.push_back((clock.date, flows.revenue()));
        while fin.revenue_window.front().is_some_and(|(d, _)| (clock.date - *d).num_days() >= 365) {
            fin.revenue_window.pop_front();
        }
        let burn = monthly_burn(&fin);
        let mut rng = CounterRng::new(key, id.0 as u64);
        let ttm = ttm_revenue(&fin).usd();
        // The window is in date order: the last 91 days are its tail (summed in the same order as ever).
        let tail = fin.revenue_window.partition_point(|(d, _)| (clock.date - *d).num_days() >= 91);
        let recent: f64 = fin.revenue_window.range(tail..).map(|(_, c)| c.usd()).sum();
        sector_recent += recent;
        sector_ttm += ttm;
        let growth = if ttm > 0.0 { recent * 365.0 / 91.0 / ttm - 1.0 } else { 0.0 };
        // From `decisions.start` a firm whose funding is decided raises valuation-based rounds.
        let decided = super::strategy::decides(d, f.strategy.funding, clock.date);
        let lg = super::strategy::Logger::new(&info, &clock, f, &fin, comp.credits);
        let mut try_raise = |fin: &mut Finance, rng: &mut CounterRng, why: &str| -> Cents {
            fin.last_raise_tick = Some(clock.tick);
            if !decided {
                let pr = econ::raise_success_probability(f.raise.success_base, f.raise.success_per_growth, growth);
                return if rng.uniform() < pr {
                    Cents::from_usd(f.raise.size_months * burn.max(0.0))
                } else {
                    Cents::ZERO
                };
            }
            let value = strategy_rule::valuation(ttm, d.revenue_multiple, sector.sentiment, growth);
            let size = strategy_rule::round_size(burn, f.raise.size_months, value, d.dilution_cap);
            let pr = strategy_rule::round_success(
                f.raise.success_base,
                f.raise.success_per_growth,
                growth,
                sector.sentiment,
            );
            // The n-th round of a firm draws the same number in every scenario (common random numbers).
            dec.rounds += 1;
            let draw = CounterRng::for_decision(info.seed, Stream::Funding, dec.rounds, id.0 as u64).uniform();
            let closed = size > 0.0 && draw < pr;
            let raised = if closed { Cents::from_usd(size) } else { Cents::ZERO };
            // A strategic investor pays part of the round as compute credits (spent on the compute bill).
            let credits = Cents::from_usd(raised.usd() * f.raise.compute_share);
            comp.credits += credits;
            let reason = if size <= 0.0 {
                format!("{why}: no round possible (no revenue to value)")
            } else if closed {
                format!("{why}: round closed, {:.1}% sold", 100.0 * size / (value + size))
            } else {
                format!("{why}: round failed")
            };
            log.0.push(lg.row(
                "funding_round",
                0.0,
                raised.usd(),
                if credits > Cents::ZERO { format!("{reason}; {credits} USD of it as compute credits") } else { reason },
                format!(
                    "valuation_usd={value:.0}; asked_usd={size:.0}; success_probability={pr:.3}; sentiment={:.3}; growth={growth:.3}; ttm_revenue_usd={ttm:.0}",
                    sector.sentiment
                ),
            ));
            raised - credits
        };
        let provisional = fin.cash + profit + funding;
        if f.raise.enabled {
            let since = fin
                .last_raise_tick
                .map(|t| (clock.date - info.calendar.dates[t as usize]).num_days() as f64 / DAYS_PER_MONTH);
            let runway_now = econ::runway_months(provisional, burn);
            let trigger = if decided { d.raise_runway_months } else { f.raise.trigger_runway_months };
            if strategy_rule::raise_due(runway_now, trigger, since, f.raise.cooldown_months) {
                funding += try_raise(&mut fin, &mut rng, "runway short");
            }
        }
        if f.parent_budget_usd > 0.0 && fin.cash + profit + funding < Cents::ZERO {
            let need = -(fin.cash + profit + funding);
            let left = Cents::from_usd(f.parent_budget_usd) - fin.parent_used;
            let give = need.min(left.max(Cents::ZERO));
            fin.parent_used += give;
            funding += give;
        }
        if fin.cash + profit + funding < Cents::ZERO && f.raise.enabled && fin.last_raise_tick != Some(clock.tick) {
            // A rescue raise brings what it raised; if that does not cover the hole, the firm exits below.
            funding += try_raise(&mut fin, &mut rng, "out of cash");
        }
        health.check("funding", &f.id, funding.usd());
        health.check("cash", &f.id, (fin.cash + profit + funding).usd());
        fin.cash = fin.cash + profit + funding;
        flows.funding = funding;
        if fin.cash < Cents::ZERO {
            status.alive = false;
            status.exit_date = Some(clock.date);
            status.exit_reason = Some(if f.parent_budget_usd > 0.0 {
                "parent_withdrew"
            } else if decided {
                // A firm with users is worth buying; one without is wound up.
                if flows.users >= d.acquisition_min_users { "acquired" } else { "bankrupt" }
            } else if rng.uniform() < f.raise.acquihire_probability {
                "acquired"
            } else {
                "bankrupt"
            });
            if decided {
                log.0.push(lg.row(
                    "exit",
                    1.0,
                    0.0,
                    format!("out of cash: {}", status.exit_reason.unwrap_or("")),
                    format!("users={:.0}; acquisition_min_users={:.0}", flows.users, d.acquisition_min_users),
                ));
            }
        }
    }
    // Investor sentiment follows the sector's revenue growth (last quarter annualised against the trailing
    // year), for the next tick's rounds.
    // Both windows are as long as the run so far at most, so that a young sector is not read as growing.
    let elapsed = ((clock.date - info.calendar.dates[0]).num_days() as f64).max(1.0);
    let (recent_days, year_days) = (elapsed.min(91.0), elapsed.min(365.0));
    let growth = if sector_ttm > 0.0 { (sector_recent / recent_days) / (sector_ttm / year_days) - 1.0 } else { 0.0 };
    sector.growth = growth;
    sector.sentiment = strategy_rule::sentiment_step(
        sector.sentiment,
        growth,
        d.sentiment_neutral_growth,
        d.sentiment_per_growth,
        (d.sentiment_min, d.sentiment_max),
        d.sentiment_tau_months,
        clock.dt_months,
    );
}

/// Phase `Strategy`. Reads `Clock`, `RunInfo`, `Quality`; writes each firm's `Offer`: API prices that
/// track serving cost with a lag, and matching of a cheaper rival of similar quality.
pub fn set_prices(
    clock: Res<Clock>,
    info: Res<RunInfo>,
    mut firms: Query<(&FirmId, &Quality, &mut Offer, &Status, &Lineup)>,
) {
    let key = tick_key(info.seed, Stream::Firm, clock.tick);
    let d = &info.params().decisions;
    let snapshot: Vec<(usize, f64, f64, bool)> = firms
        .iter()
        .map(|(id, q, o, s, _)| {
            let f = &info.firms()[id.0 as usize];
            (id.0 as usize, q.current, o.api_price, s.alive && f.api && clock.date >= f.launch)
        })
        .collect();
    for (id, q, mut offer, status, lineup) in firms.iter_mut() {
        let f = &info.firms()[id.0 as usize];
        // A firm that sets its own prices (from `decisions.start`) does so in `strategy::decide`.
        if !status.alive || !f.api || super::strategy::decides(d, f.strategy.prices, clock.date) {
            continue;
        }
        let pr = &f.pricing;
        if pr.api_tracks_cost {
            let cost = capacity::tiers(f, &lineup.0, clock.date, info.params().orgs.output_token_share).free_mtok_cost;
            let target = (cost * (1.0 + pr.markup)).max(pr.floor_usd_per_mtok);
            offer.api_price += (target - offer.api_price) * (1.0 - (-clock.dt_months / pr.lag_months).exp());
        }
        if pr.match_undercut_per_month > 0.0 {
            let cheapest = snapshot
                .iter()
                .filter(|(k, quality, _, open)| *k != id.0 as usize && *open && *quality >= q.current - 50.0)
                .map(|(_, _, price, _)| *price)
                .fold(f64::INFINITY, f64::min);
            let mut rng = CounterRng::new(key, 1_000_000 + id.0 as u64);
            if cheapest < offer.api_price
                && rng.hit(prob_threshold(hazard_from_monthly_prob(pr.match_undercut_per_month, clock.dt_months)))
            {
                offer.api_price = cheapest.max(pr.floor_usd_per_mtok);
            }
        }
    }
}

/// Whether firm `f` can be picked by organisations now, and at what price per million tokens (blended): its
/// API price, or for open weights the cost of hosting them oneself (serving cost × `markup`).
pub fn api_option(
    f: &Firm,
    lineup: &[Tier],
    offer: &Offer,
    status: &Status,
    date: NaiveDate,
    output_share: f64,
    markup: f64,
) -> Option<(f64, bool)> {
    if !status.alive || date < f.launch {
        return None;
    }
    if f.api {
        Some((offer.api_price, false))
    } else if offer.self_hostable {
        Some((capacity::tiers(f, lineup, date, output_share).free_mtok_cost * markup, true))
    } else {
        None
    }
}

/// Firm index as the `u8` stored in agents' state.
pub fn firm_u8(j: usize) -> u8 {
    debug_assert!(j < NONE as usize);
    j as u8
}
