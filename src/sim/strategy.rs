//! Firms that decide (phase `Strategy`, docs/ODD.md §7.13): from `decisions.start`, each firm reviews its
//! cuts, training and prices every decision period, and releases the model of a finished training run.
//! The rules are the pure functions of `model::strategy`; every change is logged to `decisions.csv`.

use super::capacity;
use super::capacity::add_days;
use super::components::*;
use super::firms::monthly_burn;
use super::resources::*;
use super::rows::DecisionRow;
use crate::config::domain::{Firm, Tier};
use crate::config::file::{DecisionsFile, EventKind, FirmKind, Mode};
use crate::model::calendar::{DAYS_PER_MONTH, DAYS_PER_YEAR};
use crate::model::econ::Cents;
use crate::model::rng::{CounterRng, Stream};
use crate::model::strategy::{self as rule, Scaling};
use bevy_ecs::prelude::*;
use chrono::NaiveDate;

/// The scaling relation of the scenario's decisions.
pub fn scaling(d: &DecisionsFile) -> Scaling {
    Scaling {
        elo_per_decade: d.elo_per_decade,
        efficiency_halving_months: d.efficiency_halving_months,
        flop_per_usd: d.flop_per_usd,
        flop_per_usd_doubling_years: d.flop_per_usd_doubling_years,
    }
}

/// Years from the decisions' start to `date` (negative before it): the clock of training-compute prices.
fn years_from_start(d: &DecisionsFile, date: NaiveDate) -> f64 {
    (date - d.start.0).num_days() as f64 / DAYS_PER_YEAR
}

/// Whether firm `f` makes decision `mode` itself on `date`.
pub fn decides(d: &DecisionsFile, mode: Mode, date: NaiveDate) -> bool {
    mode == Mode::Decided && date >= d.start.0
}

/// The tiers a firm starts with: for a firm whose training is decided, those released before
/// `decisions.start` (later ones are the script its own runs replace).
pub fn initial_lineup(f: &Firm, d: &DecisionsFile) -> Lineup {
    let decided = f.strategy.training == Mode::Decided;
    let mut tiers: Vec<Tier> = f.tiers.iter().filter(|t| !decided || t.release < d.start.0).cloned().collect();
    if tiers.is_empty() {
        tiers.push(f.tiers[0].clone());
    }
    Lineup(tiers)
}

/// The scripted training programme of a firm whose training is decided that runs on `decisions.start`
/// (validation allows at most one): it becomes the firm's first run, paid by the day from the start on (its
/// script pays the days before) and released at its end.
pub fn inherited_run(f: &Firm, d: &DecisionsFile) -> Option<Run> {
    if f.strategy.training != Mode::Decided {
        return None;
    }
    let scale = scaling(d);
    f.training.iter().find(|t| t.start < d.start.0 && add_days(t.start, t.months * DAYS_PER_MONTH) > d.start.0).map(
        |t| {
            let flop = t.cost_usd * scale.flop_per_usd_at(years_from_start(d, t.start));
            Run {
                start: d.start.0,
                end: add_days(t.start, t.months * DAYS_PER_MONTH),
                usd_per_day: t.cost_usd / (t.months * DAYS_PER_MONTH),
                log10_flop: flop.max(1.0).log10(),
            }
        },
    )
}

/// The decisions' state a firm starts with.
pub fn initial_decisions(f: &Firm, d: &DecisionsFile) -> Decisions {
    let run = inherited_run(f, d);
    Decisions {
        last_review: None,
        review_number: None,
        rounds: 0,
        below_share_since: None,
        cut_level: 0,
        free_limit: 0.0,
        frozen_years: 0.0,
        frozen_since: None,
        model_log10_flop: f.model.log10_flop,
        model_date: f.model.trained.0,
        runs: run.is_some() as u32,
        run,
        released: 0,
    }
}

/// Years of fixed-cost growth the firm has had by `years` (staff growth stops while it is frozen).
pub fn staff_years(dec: &Decisions, years: f64) -> f64 {
    let current = dec.frozen_since.map_or(0.0, |since| (years - since).max(0.0));
    (years - dec.frozen_years - current).max(0.0)
}

/// Funding a firm can count on: cash, unspent compute credits, what is left of a parent's budget and
/// funding announced (dated events) within `months` from `date`.
pub fn funds(
    fin: &Finance,
    f: &Firm,
    credits: Cents,
    queue: &EventQueue,
    j: usize,
    date: NaiveDate,
    months: f64,
) -> f64 {
    let announced = announced_funding(queue, j, add_days(date, months * DAYS_PER_MONTH));
    let parent_left = (Cents::from_usd(f.parent_budget_usd) - fin.parent_used).max(Cents::ZERO);
    (fin.cash + credits + parent_left).usd() + announced
}

/// The amounts of firm `j`'s funding events not yet applied, dated up to `until` (announced money).
pub fn announced_funding(queue: &EventQueue, j: usize, until: NaiveDate) -> f64 {
    queue.events[queue.next..]
        .iter()
        .filter(|(e, firm)| *firm == Some(j) && e.kind == EventKind::Funding && e.date.0 <= until)
        .filter_map(|(e, _)| e.amount_usd)
        .sum()
}

/// Builds decision rows for one firm on one tick.
pub struct Logger<'a> {
    pub run_id: u64,
    pub tick: u32,
    pub date: NaiveDate,
    pub firm: &'a str,
    pub runway: Option<f64>,
    pub cash: Cents,
}

impl<'a> Logger<'a> {
    /// The logger of firm `f` this tick, with its runway and cash as they stand.
    pub fn new(info: &RunInfo, clock: &Clock, f: &'a Firm, fin: &Finance, credits: Cents) -> Logger<'a> {
        Logger {
            run_id: info.run_id,
            tick: clock.tick,
            date: clock.date,
            firm: &f.id,
            runway: super::firms::runway(fin, f, credits),
            cash: fin.cash,
        }
    }

    pub fn row(&self, decision: &'static str, old: f64, new: f64, reason: String, figures: String) -> DecisionRow {
        DecisionRow {
            run_id: self.run_id,
            tick: self.tick,
            date: self.date,
            firm: self.firm.to_string(),
            decision,
            old_value: crate::sim::rows::round_to(old, 6),
            new_value: crate::sim::rows::round_to(new, 6),
            reason,
            runway_months: self.runway.map(|r| crate::sim::rows::round_to(r, 2)),
            cash_usd: self.cash,
            figures,
        }
    }
}

/// What each cut level stops, in order.
const CUTS: [&str; 4] = ["training", "capacity growth", "free-tier generosity", "staff growth"];

/// Phase `Strategy` (after `set_prices`, before `plan_capacity`). Reads `Clock`, `RunInfo`, `EventQueue`, the
/// firms' `Finance`, `Status` and `TickFlows`; writes their `Quality` (release jumps), `Offer` (prices),
/// `Lineup`, `Decisions` and the `DecisionLog`: releases the model of a finished run, then, at a review,
/// sets the cut level, starts a training run and responds to rivals' prices (docs/ODD.md §7.13).
#[allow(clippy::type_complexity)]
pub fn decide(
    clock: Res<Clock>,
    info: Res<RunInfo>,
    queue: Res<EventQueue>,
    orgs: Res<OrgTally>,
    mut log: ResMut<DecisionLog>,
    mut firms: Query<(
        &FirmId,
        &mut Quality,
        &mut Offer,
        &mut Finance,
        &Status,
        &Compute,
        &TickFlows,
        &mut Decisions,
        &mut Lineup,
    )>,
) {
    let p = info.params();
    let d = &p.decisions;
    let date = clock.date;
    let out_share = p.orgs.output_token_share;
    let scale = scaling(d);
    // What rivals offer at the start of the review (a snapshot, so that the firms' order does not matter).
    struct Rival {
        j: usize,
        quality: f64,
        api: Option<f64>,
        sub: Option<f64>,
        open: bool,
        users: f64,
    }
    let rivals: Vec<Rival> = firms
        .iter()
        .map(|(id, q, offer, _, status, _, flows, ..)| {
            let f = &info.firms()[id.0 as usize];
            let open = status.alive && date >= f.launch;
            Rival {
                j: id.0 as usize,
                quality: q.current,
                api: (open && f.api).then_some(offer.api_price),
                sub: (open && f.chat_app && date >= f.chat_launch && offer.sub_price > 0.0).then_some(offer.sub_price),
                open: open && f.catch_up.is_none(),
                users: flows.users,
            }
        })
        .collect();
    let total_users: f64 = rivals.iter().map(|r| r.users).sum();
    // Each firm's share of the API tokens organisations bought at the last tick.
    let total_tokens: f64 = orgs.tokens_m_per_day.iter().sum();
    let api_share: Vec<f64> =
        orgs.tokens_m_per_day.iter().map(|t| if total_tokens > 0.0 { t / total_tokens } else { 0.0 }).collect();
    let frontier = rivals.iter().filter(|r| r.open).map(|r| r.quality).fold(f64::NEG_INFINITY, f64::max);
    for (id, mut q, mut offer, mut fin, status, comp, flows, mut dec, mut lineup) in firms.iter_mut() {
        let j = id.0 as usize;
        let f = &info.firms()[j];
        if !status.alive || date < f.launch || !f.strategy.any() {
            continue;
        }
        let lg = Logger::new(&info, &clock, f, &fin, comp.credits);
        let burn = monthly_burn(&fin);
        // The firm's own quality as it will be next tick (a release this tick counts at once).
        let mut own_q = q.current;

        // A finished run releases its model (a new tier) when it is better than the current one.
        let finished = dec.run.is_some_and(|r| date >= r.end);
        if let Some(run) = dec.run.filter(|r| date >= r.end) {
            dec.run = None;
            let months = (run.end - dec.model_date).num_days() as f64 / DAYS_PER_MONTH;
            let expected = scale.elo_gain(dec.model_log10_flop, run.log10_flop, months);
            let z = CounterRng::for_decision(info.seed, Stream::Training, dec.runs, j as u64).normal();
            let gain = expected + d.gain_sd_elo * z;
            let figures = format!(
                "log10_flop={:.2}; previous_log10_flop={:.2}; months_since_previous={months:.1}; expected_gain_elo={expected:.1}",
                run.log10_flop, dec.model_log10_flop
            );
            if gain > 0.0 {
                dec.released += 1;
                // The best closed model, and the quality the firm will have: an open model that follows the
                // frontier (catch_up) never passes it.
                // With no closed rival (none launched and alive) nothing caps it.
                let best_closed = rivals
                    .iter()
                    .filter(|r| r.j != j && r.open)
                    .map(|r| r.quality)
                    .fold(f64::INFINITY, |m, x| if m == f64::INFINITY { x } else { m.max(x) });
                let new_q = if f.catch_up.is_some() { (q.current + gain).min(best_closed) } else { q.current + gain };
                let top = lineup.0.last().expect("a lineup has a tier").clone();
                lineup.0.push(Tier {
                    name: format!("{} model {}", f.id, dec.released),
                    release: date,
                    elo_offset: top.elo_offset + gain,
                    ..top
                });
                q.jumps += gain;
                // An open model's jumps above the frontier it is capped at would be spent on nothing.
                if let Some(anchor) = q.anchor
                    && best_closed.is_finite()
                {
                    q.jumps = q.jumps.min((best_closed - anchor).max(q.jumps - gain));
                }
                own_q = new_q;
                dec.model_log10_flop = run.log10_flop;
                dec.model_date = run.end;
                log.0.push(lg.row(
                    "release",
                    q.current,
                    new_q,
                    format!("training run done: +{gain:.1} Elo (new tier)"),
                    figures,
                ));
                // An open-weight firm publishes the weights while it is not ahead of the best closed model.
                if f.kind == FirmKind::OpenSource {
                    let open = rule::release_weights(new_q, best_closed);
                    if open != offer.self_hostable {
                        log.0.push(
                            lg.row(
                                "weights",
                                offer.self_hostable as u8 as f64,
                                open as u8 as f64,
                                if open {
                                    "behind the best closed model: publish the weights"
                                } else {
                                    "ahead of the best closed model: keep the weights"
                                }
                                .into(),
                                format!("quality_elo={new_q:.1}; best_closed_elo={best_closed:.1}"),
                            ),
                        );
                        offer.self_hostable = open;
                    }
                }
            } else {
                log.0.push(lg.row(
                    "release",
                    q.current,
                    q.current,
                    format!("training run done but {gain:.1} Elo: not released"),
                    figures,
                ));
            }
        }

        if date < d.start.0 {
            continue;
        }
        let number = ((date - d.start.0).num_days() as f64 / (d.period_months * DAYS_PER_MONTH)).floor() as u32;
        let review = dec.review_number != Some(number);
        // A finished run prompts a training decision at once (the next run need not wait for the review).
        if !review && !finished {
            continue;
        }
        if review {
            dec.last_review = Some(date);
            dec.review_number = Some(number);
        }

        // A parent funds a firm with too few users only for so long (funding decided).
        if review && f.strategy.funding == Mode::Decided && f.parent_budget_usd > 0.0 {
            let share = if total_users > 0.0 { flows.users / total_users } else { 0.0 };
            if share < d.parent_min_user_share {
                let since = *dec.below_share_since.get_or_insert(date);
                let months = (date - since).num_days() as f64 / DAYS_PER_MONTH;
                let left = (Cents::from_usd(f.parent_budget_usd) - fin.parent_used).max(Cents::ZERO);
                if rule::parent_withdraws(Some(months), f.parent_patience_months) && left > Cents::ZERO {
                    fin.parent_used = Cents::from_usd(f.parent_budget_usd);
                    log.0.push(lg.row(
                        "parent_budget",
                        left.usd(),
                        0.0,
                        format!("parent withdraws: user share below the minimum for {months:.0} months"),
                        format!(
                            "user_share={share:.4}; parent_min_user_share={}; patience_months={}",
                            d.parent_min_user_share, f.parent_patience_months
                        ),
                    ));
                }
            } else {
                dec.below_share_since = None;
            }
        }
        let funds = funds(&fin, f, comp.credits, &queue, j, date, 12.0);

        // Cuts, in the stated order, when the runway is short.
        if review && f.strategy.cuts == Mode::Decided {
            let runway = rule_runway(funds, burn);
            let level = rule::cut_level(dec.cut_level, runway, &d.cut_runway_months, d.cut_recover);
            if level != dec.cut_level {
                let what = if level > dec.cut_level {
                    format!("runway short: cut {}", CUTS[dec.cut_level as usize..level as usize].join(", "))
                } else {
                    format!("runway recovered: restore {}", CUTS[level as usize..dec.cut_level as usize].join(", "))
                };
                log.0.push(lg.row(
                    "cuts",
                    dec.cut_level as f64,
                    level as f64,
                    what,
                    format!(
                        "runway_with_funding_months={}; funds_usd={funds:.0}; burn_usd_per_month={burn:.0}",
                        runway.map_or("none".into(), |r| format!("{r:.1}"))
                    ),
                ));
                dec.cut_level = level;
            }
            dec.free_limit = if level >= 3 { d.free_limit_share } else { 0.0 };
            let years = clock.years;
            match (level >= 4, dec.frozen_since) {
                (true, None) => dec.frozen_since = Some(years),
                (false, Some(since)) => {
                    dec.frozen_years += years - since;
                    dec.frozen_since = None;
                }
                _ => {}
            }
            if level >= 1
                && let Some(run) = dec.run.filter(|r| r.usd_per_day > 0.0)
            {
                dec.run = None;
                let days_left = (run.end - date).num_days() as f64;
                log.0.push(lg.row(
                    "training_run",
                    run.usd_per_day * (run.end - run.start).num_days() as f64,
                    0.0,
                    "cancelled: runway short (cut training)".into(),
                    format!("saved_usd={:.0}", run.usd_per_day * days_left),
                ));
            }
        } else if review && (dec.cut_level > 0 || dec.frozen_since.is_some()) {
            // Cuts switched back to scripted (a dated set event): what the rule had cut is restored.
            log.0.push(lg.row(
                "cuts",
                dec.cut_level as f64,
                0.0,
                "strategy.cuts is scripted from now on: every cut undone".into(),
                String::new(),
            ));
            dec.cut_level = 0;
            dec.free_limit = 0.0;
            if let Some(since) = dec.frozen_since.take() {
                dec.frozen_years += clock.years - since;
            }
        }

        // Training: keep level with the frontier expected when a new run would finish, within a budget.
        if f.strategy.training == Mode::Decided && dec.run.is_none() && dec.cut_level == 0 {
            let end = add_days(date, d.run_months * DAYS_PER_MONTH);
            let expected_frontier = frontier.max(own_q) + d.frontier_growth_elo_per_year * d.run_months / 12.0;
            let gain = expected_frontier + d.lead_elo - own_q;
            if gain > 0.0 {
                let months = (end - dec.model_date).num_days() as f64 / DAYS_PER_MONTH;
                let flop = scale.flop_for_gain(dec.model_log10_flop, gain, months);
                let per_usd = scale.flop_per_usd_at(years_from_start(d, date));
                let wanted = 10f64.powf(flop) / per_usd;
                let budget = rule::training_budget(funds, burn, d.runway_floor_months, d.max_training_share);
                let mut spend = rule::training_spend(wanted, budget, d.min_run_usd);
                // A run the budget allows is started only if it is expected to gain enough.
                let log10_flop = (spend.max(1.0) * per_usd).log10();
                if scale.elo_gain(dec.model_log10_flop, log10_flop, months) < d.min_gain_elo.min(gain) {
                    spend = 0.0;
                }
                if spend > 0.0 {
                    let days = (end - date).num_days().max(1) as f64;
                    dec.run = Some(Run { start: date, end, usd_per_day: spend / days, log10_flop });
                    dec.runs += 1;
                    let reason = if spend < wanted {
                        "budget-limited run: funds allow less than the compute that keeps level with the frontier"
                    } else {
                        "keep level with the frontier expected at the run's end"
                    };
                    log.0.push(lg.row(
                        "training_run",
                        0.0,
                        spend,
                        reason.into(),
                        format!(
                            "wanted_usd={wanted:.0}; budget_usd={budget:.0}; target_gain_elo={gain:.1}; log10_flop={log10_flop:.2}; expected_frontier_elo={expected_frontier:.1}; end={end}"
                        ),
                    ));
                }
            }
        }

        // Prices: a best response to the rivals' prices, or costs down when margins are excessive.
        if review && f.strategy.prices == Mode::Decided {
            // The lowest price of comparable rivals (quality at least the firm's minus the band).
            let lowest = |price: fn(&Rival) -> Option<f64>| {
                rivals
                    .iter()
                    .filter(|r| r.j != j && r.quality >= own_q - d.match_band_elo)
                    .filter_map(price)
                    .fold(None, |m: Option<f64>, p| Some(m.map_or(p, |m| m.min(p))))
            };
            // A firm that gives its API away (price 0) has no price to respond with.
            if f.api && offer.api_price > 0.0 {
                let view = capacity::tiers(f, &lineup.0, date, out_share);
                let cost = view.free_mtok_cost;
                let rival_low = lowest(|r| r.api);
                let old = offer.api_price;
                // A myopic best response on the organisations' logit (log-price weight) among holding,
                // matching the comparable rival's lower price and cuts of 10% and 20%; prices never rise
                // above the current list price, never fall below cost × min_markup, and follow serving cost
                // down once the margin passes max_markup.
                let share = api_share.get(j).copied().unwrap_or(0.0);
                let alpha = p.orgs.log_price_weight;
                let mut candidates = vec![old * 0.9, old * 0.8];
                candidates.extend(rival_low);
                let floor = cost * d.min_markup;
                let (best, expected_share) = rule::best_response(old, share, alpha, cost, &candidates, floor, old);
                let target = rule::target_price(best, None, cost, d.max_markup);
                let new = rule::adjust_price(old, target, d.price_adjust, floor, f64::INFINITY);
                // A list price is not changed by less than 0.1%.
                if (new - old).abs() >= 1e-3 * old.abs() {
                    offer.api_price = new;
                    if old > 0.0 {
                        offer.api_factor *= new / old;
                    }
                    let why = if new > old {
                        "raise to the cost floor"
                    } else if target < best {
                        "follow serving cost down (margin above the maximum markup)"
                    } else if rival_low.is_some_and(|r| (best - r.max(floor)).abs() < 1e-12) {
                        "best response: match a comparable rival's lower price"
                    } else {
                        "best response: a cut wins more share than it costs"
                    };
                    log.0.push(lg.row(
                        "api_price",
                        old,
                        new,
                        why.into(),
                        format!(
                            "rival_low_usd_per_mtok={}; unit_cost_usd_per_mtok={cost:.4}; token_share={share:.4}; expected_share={expected_share:.4}; log_price_weight={alpha}; target={target:.4}",
                            rival_low.map_or("none".into(), |r| format!("{r:.4}"))
                        ),
                    ));
                }
            }
            if offer.sub_price > 0.0 {
                let rival_low = lowest(|r| r.sub);
                let old = offer.sub_price;
                let target = rule::target_price(old, rival_low, 0.0, d.max_markup);
                let new = rule::adjust_price(old, target, d.price_adjust, d.sub_price_min_usd, d.sub_price_max_usd);
                // Subscription prices move in whole cents.
                let new = (new * 100.0).round() / 100.0;
                if (new - old).abs() >= 0.005 {
                    offer.sub_price = new;
                    log.0.push(
                        lg.row(
                            "sub_price",
                            old,
                            new,
                            if rival_low.is_some_and(|r| r < old && new < old) {
                                "match a comparable rival's lower price"
                            } else {
                                "keep within the subscription price bounds"
                            }
                            .into(),
                            format!("rival_low_usd={}", rival_low.map_or("none".into(), |r| format!("{r:.2}"))),
                        ),
                    );
                }
            }
        }
    }
}

/// Runway counting everything the firm can count on (`funds`), months; `None` when not burning cash.
fn rule_runway(funds: f64, burn: f64) -> Option<f64> {
    crate::model::econ::runway_months(Cents::from_usd(funds), burn)
}
