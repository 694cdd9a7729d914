//! Determinism: the same scenario and seed give byte-identical CSVs whatever the thread count; another
//! seed gives other results; the fused user pass equals the phase-by-phase reference.

use super::support::*;
use llm_market::sim::components::{User, UserState};
use llm_market::sim::resources::UserTally;
use llm_market::sim::{RunOptions, Simulation, UserPass};

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

/// One process runs the same scenario with different thread counts, one after another and side by side (each
/// run has its own worker pool): every table is the same. 20,000 users are cut into 5 batches on 4 threads.
#[test]
fn runs_with_different_thread_counts_in_one_process_agree() {
    use llm_market::api::{self, Overrides, Source};
    let overrides = Overrides {
        agents: Some(20_000),
        sets: vec!["end=\"2023-06-30\"".into(), "record_every=\"week\"".into()],
        ..Default::default()
    };
    let scenario = api::load(&Source::Embedded, &overrides).unwrap();
    let run = |threads: usize| api::run(&scenario, &RunOptions::threads(threads)).unwrap();
    let one = run(1);
    let side_by_side: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = [4, 2, 3].iter().map(|&t| s.spawn(move || (t, run(t)))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let after = run(4);
    assert!(one.trace.iter().any(|r| r.users > 0), "the run has users");
    for (threads, other) in side_by_side.iter().chain([(4, after)].iter()) {
        assert!(one.trace == other.trace, "trace rows differ between 1 and {threads} threads");
        assert!(one.market == other.market, "market rows differ between 1 and {threads} threads");
        assert!(one.decisions == other.decisions, "decision rows differ between 1 and {threads} threads");
        assert!(one.annual == other.annual, "annual rows differ between 1 and {threads} threads");
        assert!(one.summary == other.summary, "summary rows differ between 1 and {threads} threads");
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
        let mut fused =
            Simulation::with_options(s.clone(), 0, &RunOptions { user_pass: UserPass::Fused, ..RunOptions::default() });
        let mut phased =
            Simulation::with_options(s, 0, &RunOptions { user_pass: UserPass::Phased, ..RunOptions::default() });
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
