//! Compute capacity of firms: which tiers serve whom on a date, what their queries and tokens cost, and the
//! capacity plan of phase 8 (orders placed on a demand forecast, arriving after a lead time).

use super::components::*;
use super::resources::*;
use crate::config::domain::{Firm, Tier};
use crate::model::calendar::{DAYS_PER_MONTH, DAYS_PER_YEAR};
use crate::model::compute::{self, Tranche};
use crate::model::econ::Cents;
use bevy_ecs::prelude::*;
use chrono::{Days, NaiveDate};

/// The tiers of a firm in use on a date: the free tier (the first released) and the top tier (the last
/// released), with what their queries and tokens cost then.
#[derive(Clone, Copy, Debug)]
pub struct TierView<'a> {
    pub free: &'a Tier,
    pub top: &'a Tier,
    /// Serving cost of one chat query on the free and the top tier, USD.
    pub free_query_cost: f64,
    pub top_query_cost: f64,
    /// Serving cost per million API tokens (blended), free and top tier, USD.
    pub free_mtok_cost: f64,
    pub top_mtok_cost: f64,
    /// The top tier is another model than the free tier (more than one tier is released).
    pub two_models: bool,
}

impl TierView<'_> {
    /// The paid tier's quality uplift over the free tier, Elo.
    pub fn uplift_elo(&self) -> f64 {
        (self.top.elo_offset - self.free.elo_offset).max(0.0)
    }
}

/// Years from `from` to `to`.
fn years_between(from: NaiveDate, to: NaiveDate) -> f64 {
    (to - from).num_days() as f64 / DAYS_PER_YEAR
}

/// The tiers of firm `f` in use on `date`, from its `lineup` (before the first tier's release, the first
/// tier).
pub fn tiers<'a>(f: &Firm, lineup: &'a [Tier], date: NaiveDate, output_share: f64) -> TierView<'a> {
    let released = lineup.iter().take_while(|t| t.release <= date).count().max(1);
    let (free, top) = (&lineup[0], &lineup[released - 1]);
    let factor = |t: &Tier| compute::cost_factor(f.cost_decline_per_year, years_between(t.release, date));
    let query = |t: &Tier| {
        compute::tokens_cost(
            t.chat_tokens_in_per_query,
            t.chat_tokens_out_per_query,
            t.cost_in_usd_per_mtok,
            t.cost_out_usd_per_mtok,
        ) * factor(t)
    };
    let mtok = |t: &Tier| compute::blended(t.cost_in_usd_per_mtok, t.cost_out_usd_per_mtok, output_share) * factor(t);
    TierView {
        free,
        top,
        free_query_cost: query(free),
        top_query_cost: query(top),
        free_mtok_cost: mtok(free),
        top_mtok_cost: mtok(top),
        two_models: released > 1,
    }
}

/// API price per million tokens (blended) of the free and the top tier: the first tier's is the firm's
/// current price (price events and pricing rules move it); a later tier's is its list price times the
/// firm's strategy factors (`api_factor`). With one tier released both are the first tier's.
pub fn api_prices(view: &TierView, api_price: f64, api_factor: f64, output_share: f64) -> (f64, f64) {
    if !view.two_models {
        return (api_price, api_price);
    }
    let list = compute::blended(view.top.api_price_in_usd_per_mtok, view.top.api_price_out_usd_per_mtok, output_share);
    (api_price, list * api_factor)
}

/// `date` plus a number of days (rounded), saturating at the calendar's end.
pub(super) fn add_days(date: NaiveDate, days: f64) -> NaiveDate {
    date.checked_add_days(Days::new(days.round().max(0.0) as u64)).unwrap_or(NaiveDate::MAX)
}

/// The tranche of a firm's initial GPUs: serving from its launch (or the start of the run, if later) for
/// one commitment period.
pub fn initial_tranche(f: &Firm, start: NaiveDate) -> Tranche {
    let from = f.launch.max(start);
    Tranche { gpus: f.compute.initial_gpus, from, to: add_days(from, f.compute.commitment_months * DAYS_PER_MONTH) }
}

/// Phase `Strategy` (after pricing). Reads `Clock`, `RunInfo`, `EventQueue` (announced funding), each firm's
/// `Finance`, `Status` and `TickFlows`; writes its `Compute`: forgets expired tranches, and orders the GPUs
/// that the demand forecast at the end of the lead time (plus headroom) needs beyond those that will then
/// serve, as far as the firm can pay for them (docs/ODD.md §7.9).
pub fn plan_capacity(
    clock: Res<Clock>,
    info: Res<RunInfo>,
    queue: Res<EventQueue>,
    mut log: ResMut<DecisionLog>,
    mut firms: Query<(&FirmId, &Finance, &Status, &TickFlows, &mut Compute, &Decisions)>,
) {
    let date = clock.date;
    let d = &info.params().decisions;
    for (id, fin, status, flows, mut comp, dec) in firms.iter_mut() {
        let j = id.0 as usize;
        let f = &info.firms()[j];
        let c = &f.compute;
        comp.tranches.retain(|t| t.to > date);
        if !status.alive {
            comp.tranches.clear();
            continue;
        }
        let demand: f64 = flows.rates.demand.iter().sum();
        comp.demand_history.push_back((date, demand));
        while comp.demand_history.len() > 1
            && (date - comp.demand_history[1].0).num_days() as f64 >= compute::FORECAST_WINDOW_DAYS
        {
            comp.demand_history.pop_front();
        }
        if date < f.launch || c.usable_share <= 0.0 {
            continue;
        }
        // A firm that decides its capacity orders at its reviews only, for the period until the next one;
        // when it cuts capacity growth (cut level 2 and above) it orders for today's demand, no headroom.
        let decided = super::strategy::decides(d, f.strategy.capacity, date);
        if decided && dec.last_review != Some(date) {
            continue;
        }
        let cut = decided && dec.cut_level >= 2;
        let period_days = if decided { (d.period_months * DAYS_PER_MONTH).max(clock.dt_days) } else { clock.dt_days };
        let (then_date, then) = comp.demand_history.front().copied().unwrap_or((date, demand));
        // An order placed now serves from `arrival` (a lead time shorter than a tick still waits for the
        // next tick) and must cover the tick (or review period) after it too: GPUs whose commitment ends
        // before then do not count, whatever their start (an order placed for a later date still counts).
        let lead_days = (c.lead_time_months * DAYS_PER_MONTH).max(clock.dt_days);
        let arrival = add_days(date, lead_days);
        let covered = add_days(arrival, period_days - 1.0);
        let forecast = if cut {
            demand
        } else {
            compute::forecast(
                demand,
                then,
                (date - then_date).num_days() as f64,
                lead_days + period_days - clock.dt_days,
            )
        };
        let headroom = if cut { 0.0 } else { c.headroom };
        let target = forecast * (1.0 + headroom) / c.usable_share;
        let pipeline: f64 = comp.tranches.iter().filter(|t| t.to > covered).map(|t| t.gpus).sum();
        if target <= pipeline {
            continue;
        }
        let announced =
            super::strategy::announced_funding(&queue, j, add_days(date, c.commitment_months * DAYS_PER_MONTH));
        let parent_left = (Cents::from_usd(f.parent_budget_usd) - fin.parent_used).max(Cents::ZERO);
        let year_of_revenue = super::firms::ttm_revenue(fin);
        let funds = (fin.cash + comp.credits + parent_left + year_of_revenue).usd() + announced;
        let commitment_days = c.commitment_months * DAYS_PER_MONTH;
        let affordable = compute::affordable_gpus(
            funds,
            c.max_commit_share,
            compute::committed_gpu_days(&comp.tranches, date),
            c.gpu_cost_usd_per_day,
            commitment_days,
        );
        let gpus = compute::order_gpus(target, pipeline, affordable);
        if gpus > 0.0 {
            comp.tranches.push(Tranche { gpus, from: arrival, to: add_days(arrival, commitment_days) });
            if decided {
                let lg = super::strategy::Logger::new(&info, &clock, f, fin, comp.credits);
                let why = if gpus < target - pipeline {
                    "order GPUs for the forecast demand, limited by what the firm can pay"
                } else if cut {
                    "order GPUs for today's demand only (capacity growth cut)"
                } else {
                    "order GPUs for the forecast demand plus headroom"
                };
                log.0.push(lg.row(
                    "capacity_order",
                    pipeline,
                    pipeline + gpus,
                    why.into(),
                    format!(
                        "target_gpus={target:.0}; affordable_gpus={affordable:.0}; arrival={arrival}; demand_gpus={demand:.0}"
                    ),
                ));
            }
        }
    }
}
