//! Invariants checked after every tick of a small scenario: one provider at most per user, users plus
//! non-users equal the population, cash changes by profit + funding exactly, nothing is NaN or infinite.

use super::support::*;
use llm_market::model::choice::NONE;
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
        }
    }
    assert!(saw_users && saw_paying, "the scenario should exercise users and subscriptions");
}
