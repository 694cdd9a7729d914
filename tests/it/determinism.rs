//! Determinism: the same scenario and seed give byte-identical CSVs whatever the thread count; another
//! seed gives other results; the fused user pass equals the phase-by-phase reference.

use super::support::*;
use llm_market::sim::components::{User, UserState};
use llm_market::sim::resources::UserTally;
use llm_market::sim::{Simulation, UserPass};

#[test]
fn same_seed_same_bytes_for_one_and_two_threads() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    run_tiny(a.path(), &["--threads", "1"]);
    run_tiny(b.path(), &["--threads", "2"]);
    run_tiny(c.path(), &["--threads", "2"]);
    for f in CSVS {
        assert_eq!(read(a.path(), f), read(b.path(), f), "{f} differs between 1 and 2 threads");
        assert_eq!(read(b.path(), f), read(c.path(), f), "{f} differs between two identical runs");
    }
}

#[test]
fn another_seed_gives_other_results() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    run_tiny(a.path(), &[]);
    run_tiny(b.path(), &["--seed", "8"]);
    assert_ne!(read(a.path(), "trace.csv"), read(b.path(), "trace.csv"));
    assert_ne!(read(a.path(), "summary.csv"), read(b.path(), "summary.csv"));
}

/// Every user's state, in id order.
fn user_states(sim: &mut Simulation) -> Vec<(u32, UserState)> {
    let world = sim.world_mut();
    let mut q = world.query::<(&User, &UserState)>();
    let mut v: Vec<_> = q.iter(world).map(|(u, st)| (u.id.0, *st)).collect();
    v.sort_unstable_by_key(|(id, _)| *id);
    v
}

/// The fused user pass (what runs use) and the user phases one system at a time (the reference) give the same
/// user states, tallies and rows at every tick — including with bans, paid-only plans and exits.
#[test]
fn fused_user_pass_equals_phase_by_phase() {
    let root = root();
    let cases = [
        load(&tiny(), &[]),
        load(&root.join("configs/baseline.toml"), &["agents=4000", "end=2024-06-30"]),
        load(&root.join("configs/scenarios/enterprise_api_boom.toml"), &["agents=4000", "end=2024-06-30"]),
        load(
            &root.join("configs/scenarios/no_microsoft_funding.toml"),
            &["agents=3000", "tick=week", "record_every=week"],
        ),
    ];
    for s in cases {
        let name = s.params().name.clone();
        let mut fused = Simulation::with_user_pass(s.clone(), 0, UserPass::Fused);
        let mut phased = Simulation::with_user_pass(s, 0, UserPass::Phased);
        let (mut switched, mut paying) = (false, false);
        while fused.tick() < fused.n_ticks() {
            fused.step().unwrap();
            phased.step().unwrap();
            let tick = fused.tick();
            let (a, b) = (user_states(&mut fused), user_states(&mut phased));
            assert!(a == b, "{name}, tick {tick}: user states differ");
            switched |= a.iter().any(|(_, st)| st.switched);
            paying |= a.iter().any(|(_, st)| st.paid_days > 0);
            assert_eq!(
                fused.world().resource::<UserTally>(),
                phased.world().resource::<UserTally>(),
                "{name}, tick {tick}"
            );
            let (ra, rb) = (fused.take_rows(), phased.take_rows());
            assert_eq!(ra.rows, rb.rows, "{name}, tick {tick}: trace rows differ");
            assert_eq!(ra.market, rb.market, "{name}, tick {tick}: market rows differ");
        }
        assert!(switched && paying, "{name}: the run must exercise switches and subscriptions");
        let (ta, tb) = (fused.finish(), phased.finish());
        assert_eq!(ta.annual, tb.annual, "{name}");
        assert_eq!(ta.summary, tb.summary, "{name}");
    }
}
