//! Invariants checked after every tick of a small scenario: one provider at most per user, users plus
//! non-users equal the population, cash changes by profit + funding exactly, nothing is NaN or infinite,
//! compute serves at most its capacity and each class at most its demand, the compute bill splits exactly,
//! and only organisations in production buy enterprise seats.

use super::support::*;
use llm_market::model::choice::NONE;
use llm_market::model::econ::Cents;
use llm_market::sim::Simulation;
use llm_market::sim::components::*;
use llm_market::sim::resources::UserTally;

#[test]
fn invariants_hold_every_tick() {
    let s = load(&tiny(), &["agents=2000", "end=2023-09-30"]);
    let n_firms = s.params().firms.len();
    let mut sim = Simulation::new(s.clone(), 0);
    let mut prev_cash: Vec<i64> = s.params().firms.iter().map(|f| (f.cash_usd * 100.0).round() as i64).collect();
    let mut saw_users = false;
    let mut saw_paying = false;
    let (mut saw_waitlist, mut saw_spot) = (false, false);
    while sim.tick() < sim.n_ticks() {
        sim.step().unwrap();
        let tick = sim.tick();
        let world = sim.world_mut();
        let mut per_firm = vec![0u64; n_firms];
        let mut none = 0u64;
        let mut q = world.query::<(&User, &UserState)>();
        for (u, st) in q.iter(world) {
            if st.provider == NONE {
                none += 1;
                assert_eq!(st.paid_days, 0, "user {:?} pays without a provider", u.id);
            } else {
                let j = st.provider as usize;
                assert!(j < n_firms);
                assert_eq!((st.aware >> j) & 1, 1, "user {:?} uses a chatbot it never heard of", u.id);
                per_firm[j] += 1;
                saw_paying |= st.paid_days > 0;
            }
        }
        saw_users |= none < 2000;
        assert_eq!(per_firm.iter().sum::<u64>() + none, 2000, "tick {tick}: users + non-users ≠ population");
        let tally = world.resource::<UserTally>().clone();
        for (j, n) in per_firm.iter().enumerate() {
            assert_eq!(tally.users[j].iter().sum::<u64>(), *n, "tick {tick}: tally of firm {j}");
        }
        let mut fq = world.query::<(&FirmId, &Finance, &TickFlows, &Quality)>();
        for (id, fin, flows, quality) in fq.iter(world) {
            let j = id.0 as usize;
            assert_eq!(
                fin.cash.0 - prev_cash[j],
                flows.profit().0 + flows.funding.0,
                "tick {tick}: cash identity of firm {j}"
            );
            prev_cash[j] = fin.cash.0;
            for v in [
                flows.users,
                flows.paying_users,
                flows.api_orgs,
                flows.seats,
                flows.queries,
                flows.tokens,
                flows.visits,
                quality.current,
            ] {
                assert!(v.is_finite() && v >= -1e9, "tick {tick}: firm {j} has a non-finite value");
            }
            assert!(flows.paying_users <= flows.users);
            // Compute: each class is served at most its demand, all of them at most the capacity; the bill
            // splits exactly into commitments and spot, and into uses plus idle capacity.
            let r = flows.rates;
            for k in 0..3 {
                assert!(r.served[k] <= r.demand[k], "tick {tick}: firm {j} served class {k} beyond its demand");
            }
            let served: f64 = r.served.iter().sum();
            assert!(served <= r.capacity * (1.0 + 1e-12), "tick {tick}: firm {j} served {served} > {}", r.capacity);
            assert!(flows.served_gpu_days <= flows.capacity_gpu_days * (1.0 + 1e-12) + 1e-9);
            assert!(flows.tokens_served <= flows.tokens_demanded * (1.0 + 1e-12) + 1e-9);
            assert_eq!(flows.cost_inference, flows.cost_commitment + flows.cost_spot, "tick {tick}: firm {j}");
            let uses: Cents = flows.cost_by_use.iter().copied().sum::<Cents>() + flows.cost_idle;
            assert_eq!(uses, flows.cost_inference, "tick {tick}: firm {j}: compute bill by use");
            assert!(flows.funding_in_kind <= flows.funding, "tick {tick}: firm {j}: credits are funding");
            saw_waitlist |= flows.waitlisted > 0.0;
            saw_spot |= r.spot > 0.0;
        }
        // Enterprise seats only in organisations that adopted and use generative AI in production.
        let mut oq = world.query::<&Org>();
        for org in oq.iter(world) {
            assert!(
                org.enterprise == NONE || org.stage == 2,
                "tick {tick}: org {:?} bought seats at stage {}",
                org.id,
                org.stage
            );
        }
    }
    assert!(saw_users && saw_paying, "the scenario should exercise users and subscriptions");
    assert!(
        saw_waitlist && saw_spot,
        "the tiny scenario is at capacity early on: waitlist {saw_waitlist}, spot {saw_spot}"
    );
}
