//! Phase 1, "clock & events": advance the date and apply the dated events that fall in this tick.

use super::components::{Compute, Finance, FirmId, Offer, Quality};
use super::resources::{Clock, EventQueue, RunInfo};
use crate::config::file::EventKind;
use crate::model::calendar::{DAYS_PER_MONTH, DAYS_PER_YEAR, in_window};
use crate::model::econ::Cents;
use bevy_ecs::prelude::*;

/// Phase `ClockEvents`. Reads `RunInfo`; writes `Clock` (tick, date, Δt, academic summer).
pub fn advance_clock(mut clock: ResMut<Clock>, info: Res<RunInfo>) {
    let k = clock.tick + 1;
    let dates = &info.calendar.dates;
    clock.tick = k;
    clock.prev_date = dates[k as usize - 1];
    clock.date = dates[k as usize];
    clock.dt_days = info.calendar.dt_days(k);
    clock.dt_months = clock.dt_days / DAYS_PER_MONTH;
    clock.years = (clock.date - info.calendar.start).num_days() as f64 / DAYS_PER_YEAR;
    clock.summer = in_window(clock.date, info.summer.0, info.summer.1);
    if info.panic_at_tick == Some(k) {
        panic!("fault injected at tick {k} (a test of failure handling)");
    }
}

/// Phase `ClockEvents` (after `advance_clock`). Reads `Clock`; writes `RunInfo::epoch`: the parameters of
/// the last epoch (dated `set` events) whose date is on or before today are in force from this tick on.
pub fn apply_epochs(clock: Res<Clock>, mut info: ResMut<RunInfo>) {
    let epochs = info.scenario.epochs();
    let current = epochs.iter().rposition(|e| e.from <= clock.date).unwrap_or(0);
    if current != info.epoch {
        info.epoch = current;
    }
}

/// Phase `ClockEvents`. Reads `Clock`; writes `EventQueue` and the firms' `Quality`, `Offer`, `Finance`:
/// funding arrives, releases lift quality, prices change, leaks start ban waves, strategies switch.
pub fn apply_events(
    clock: Res<Clock>,
    info: Res<RunInfo>,
    mut queue: ResMut<EventQueue>,
    mut firms: Query<(&FirmId, &mut Quality, &mut Offer, &mut Finance, &mut Compute)>,
) {
    while queue.next < queue.events.len() && queue.events[queue.next].0.date.0 <= clock.date {
        let (e, firm) = queue.events[queue.next].clone();
        queue.next += 1;
        if e.kind == EventKind::Leak {
            queue.leaks.push((e.date.0, e.strength.unwrap_or(1.0)));
            continue;
        }
        let Some(firm) = firm else { continue };
        let Some((_, mut q, mut offer, mut fin, mut comp)) = firms.iter_mut().find(|(id, ..)| id.0 as usize == firm)
        else {
            continue;
        };
        match e.kind {
            EventKind::Funding => {
                // Part of an investment may come as compute credits (e.g. Azure compute).
                let amount = Cents::from_usd(e.amount_usd.unwrap_or(0.0));
                let credits = Cents::from_usd(amount.usd() * e.compute_share.unwrap_or(0.0));
                comp.credits += credits;
                fin.pending_funding += amount - credits;
            }
            EventKind::Release => {
                // A firm whose training is decided releases what its own runs produce from the start on.
                let f = &info.firms()[firm];
                if !super::strategy::decides(&info.params().decisions, f.strategy.training, e.date.0) {
                    q.jumps += e.quality_jump_elo.unwrap_or(0.0);
                }
                if let Some(sh) = e.self_hostable {
                    offer.self_hostable = sh;
                }
            }
            EventKind::Price => {
                if let Some(p) = e.sub_price_usd_per_month {
                    offer.sub_price = p;
                }
                if let Some(p) = e.api_price_usd_per_mtok {
                    offer.api_price = p;
                }
                if let Some(p) = e.seat_price_usd_per_month {
                    offer.seat_price = p;
                }
                if let Some(f) = e.free_tier {
                    offer.free_tier = f;
                }
            }
            EventKind::Strategy => {
                if let Some(f) = e.api_price_factor {
                    offer.api_price *= f;
                    offer.api_factor *= f;
                }
                if let Some(t) = e.org_trust_add {
                    offer.org_trust_add += t;
                }
                if let Some(sh) = e.self_hostable {
                    offer.self_hostable = sh;
                }
            }
            EventKind::Leak => unreachable!("handled above"),
            // Parameter changes take effect through the scenario's epochs (`RunInfo::params`).
            EventKind::Set => {}
        }
    }
}
