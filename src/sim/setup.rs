//! Building the world of a run: resources, firm entities, user and organisation agents with their traits.

use super::components::*;
use super::resources::*;
use crate::config::Scenario;
use crate::model::calendar::TickCalendar;
use crate::model::choice::NONE;
use crate::model::econ::Cents;
use crate::model::rng::{CounterRng, Stream, prob_threshold};
use bevy_ecs::prelude::*;
use rand_distr::{Distribution, LogNormal};
use std::sync::Arc;

/// Picks an index from cumulative shares with a uniform draw.
fn pick(shares: &[f64], u: f64) -> usize {
    let mut acc = 0.0;
    for (i, s) in shares.iter().enumerate() {
        acc += s;
        if u < acc {
            return i;
        }
    }
    shares.len() - 1
}

/// Inserts every resource and spawns firms, users and organisations for `scenario`.
pub fn populate(world: &mut World, scenario: Arc<Scenario>, run_id: u64) {
    let p = scenario.params();
    let calendar = TickCalendar::new(p.start.0, p.end.0, p.tick);
    let n_users = p.agents as u32;
    let n_orgs = p.orgs.agents as u32;
    let info = RunInfo {
        run_id,
        seed: p.seed,
        weight: p.population / n_users as f64,
        org_weight: p.orgs.population / n_orgs as f64,
        record_every: scenario.record_every(),
        summer: scenario.summer(),
        n_users,
        n_orgs,
        calendar: calendar.clone(),
        scenario: scenario.clone(),
        panic_at_tick: None,
        epoch: 0,
    };
    let mut events: Vec<_> = p
        .events
        .iter()
        .filter(|e| e.enabled)
        .map(|e| (e.clone(), e.firm.as_ref().and_then(|id| p.firms.iter().position(|f| &f.id == id))))
        .collect();
    events.sort_by_key(|(e, _)| e.date);
    world.insert_resource(EventQueue { events, next: 0, leaks: Vec::new() });
    world.insert_resource(Clock {
        tick: 0,
        date: p.start.0,
        prev_date: p.start.0,
        dt_days: 0.0,
        dt_months: 0.0,
        years: 0.0,
        summer: false,
    });
    world.insert_resource(Offers::default());
    world.insert_resource(UserTally::default());
    world.insert_resource(OrgTally {
        api_orgs: vec![0; p.firms.len()],
        tokens_m_per_day: vec![0.0; p.firms.len()],
        seats: vec![0.0; p.firms.len()],
        top_tokens_m_per_day: vec![0.0; p.firms.len()],
        ..Default::default()
    });
    world.insert_resource(BanList::new(n_orgs as usize));
    world.insert_resource(super::events::EventState::new(n_orgs as usize));
    world.insert_resource(super::org_events::OrgEvents::default());
    world.insert_resource(WaitlistTally(vec![0; p.firms.len()]));
    world.insert_resource(Trace::default());
    world.insert_resource(DecisionLog::default());
    world.insert_resource(Sector { sentiment: p.decisions.sentiment_initial, growth: 0.0 });
    world.insert_resource(Books::default());
    world.insert_resource(Health::default());
    // Every resource goes in before the agents: a resource is an entity with sparse-set components here,
    // and one inserted after ten million users would allocate a sparse array as long as the entity index.
    world.insert_resource(info);
    reserve_entity_metadata(world, n_users as usize + n_orgs as usize + p.firms.len());

    for (j, f) in scenario.firms().iter().enumerate() {
        world.spawn((
            FirmId(j as u16),
            Quality { current: f.quality_elo, jumps: 0.0, anchor: None },
            Offer {
                free_tier: f.free_tier,
                sub_price: f.sub_price_usd_per_month,
                api_price: f.api_price_usd_per_mtok,
                seat_price: f.seat_price_usd_per_month,
                self_hostable: f.self_hostable,
                org_trust_add: 0.0,
                api_factor: 1.0,
            },
            Finance { cash: Cents::from_usd(f.cash_usd), ..Default::default() },
            Status { alive: true, exit_date: None, exit_reason: None },
            TickFlows::default(),
            IntervalFlows::default(),
            Compute { tranches: vec![super::capacity::initial_tranche(f, p.start.0)], ..Default::default() },
            super::strategy::initial_lineup(f, &p.decisions),
            super::strategy::initial_decisions(f, &p.decisions),
        ));
    }

    let segs = p.segments.as_array();
    let seg_shares: Vec<f64> = segs.iter().map(|s| s.share).collect();
    let wtp: Vec<LogNormal<f64>> =
        segs.iter().map(|s| LogNormal::new(s.wtp_median_usd.ln(), s.wtp_sigma).expect("validated")).collect();
    let shadow_thr = prob_threshold(p.orgs.shadow_use);
    let seed = p.seed;
    world.spawn_batch((0..n_users).map(move |i| {
        let mut rng = CounterRng::for_decision(seed, Stream::UserSetup, 0, i as u64);
        let segment = pick(&seg_shares, rng.uniform());
        let taste = (rng.uniform() * TASTE_CLASSES as f64) as u8;
        let employer = if rng.uniform() < segs[segment].employed_share {
            Some((rng.uniform() * n_orgs as f64) as u32)
        } else {
            None
        };
        let wtp = wtp[segment].sample(&mut rng) as f32;
        let shadow = CounterRng::for_decision(seed, Stream::Shadow, 0, i as u64).hit(shadow_thr);
        (
            User::new(UserId(i), segment as u8, taste, shadow, employer, wtp),
            UserState { provider: NONE, ..Default::default() },
        )
    }));

    let vert_shares: Vec<f64> = p.orgs.verticals.as_array().iter().map(|v| v.share).collect();
    world.spawn_batch((0..n_orgs).map(move |i| {
        let mut rng = CounterRng::for_decision(seed, Stream::OrgSetup, 0, i as u64);
        Org {
            id: OrgId(i),
            vertical: pick(&vert_shares, rng.uniform()) as u8,
            stage: 0,
            provider: NONE,
            enterprise: NONE,
            bans_chat: false,
        }
    }));
}

/// Entity indices reserved beyond the agents for entities spawned later (resources, tests).
const SPARE_ENTITY_INDICES: usize = 1 << 16;

/// Sizes bevy's per-entity metadata once for `agents` entities plus a margin. Without this its vector grows
/// by doubling while the users are spawned and bevy initialises the whole doubled capacity, so up to 16 of
/// the ~90 bytes a user costs would be slack. An empty entity is spawned at the last reserved index (an index
/// the allocator hands out only after every index before it, i.e. never: runs spawn nothing after set-up); it
/// matches no query of the model.
fn reserve_entity_metadata(world: &mut World, agents: usize) {
    let last = world.entities().len() as usize + agents + SPARE_ENTITY_INDICES;
    let Some(entity) = u32::try_from(last).ok().and_then(Entity::from_raw_u32) else { return };
    // An error (not possible in a fresh world) would only lose the memory saving.
    let _ = world.spawn_empty_at(entity);
}
