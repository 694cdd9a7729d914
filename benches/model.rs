//! Criterion benchmarks of the model: one full tick at 100k and 1M users (the event-driven sampler runs use,
//! and the per-tick fused pass), the fused user pass, each user phase alone (on the phase-by-phase reference
//! schedule), and the hardware floor: a plain struct-of-arrays loop over as many users (`sim::floor`).
//! Worlds are warmed up for 120 daily ticks of the baseline (awareness spread, users choosing), so the
//! measured ticks are representative. Run: `cargo bench`; CI only builds them (`cargo bench --no-run`).

use criterion::{Criterion, criterion_group, criterion_main};
use llm_market::config::{self, Overrides};
use llm_market::sim::floor::PlainLoop;
use llm_market::sim::{Phase, RunOptions, Simulation, UserPass, init_threads, phase_schedule, user_pass_schedule};
use std::sync::Arc;

fn warmed(agents: u64) -> Simulation {
    warmed_with(agents, UserPass::Fused)
}

fn warmed_with(agents: u64, pass: UserPass) -> Simulation {
    let s = config::load(None, &Overrides { agents: Some(agents), ..Default::default() }).expect("the baseline loads");
    let mut sim =
        Simulation::with_options(Arc::new(s), 0, &RunOptions { user_pass: pass, ..RunOptions::threads(threads()) });
    for _ in 0..120 {
        sim.step().expect("the baseline runs");
        sim.take_rows();
    }
    sim
}

fn threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn full_tick(c: &mut Criterion) {
    let mut g = c.benchmark_group("tick");
    g.sample_size(10);
    for (label, agents, pass) in [
        ("100k", 100_000u64, UserPass::Events),
        ("1M", 1_000_000, UserPass::Events),
        ("1M per-tick", 1_000_000, UserPass::Fused),
    ] {
        let mut sim = warmed_with(agents, pass);
        g.bench_function(label, |b| {
            b.iter(|| {
                // Successive ticks of one warmed run; start a new one before the calendar ends.
                if sim.tick() + 1 >= sim.n_ticks() {
                    sim = warmed_with(agents, pass);
                }
                sim.step().expect("a tick runs");
                sim.take_rows();
            })
        });
    }
    g.finish();
}

fn user_phases(c: &mut Criterion) {
    init_threads(threads());
    let mut g = c.benchmark_group("phase_100k");
    g.sample_size(20);
    // The user phases read this tick's offers and clock, which the warm-up left in place.
    let mut sim = warmed(100_000);
    let mut schedule = user_pass_schedule();
    g.bench_function("FusedUserPass", |b| b.iter(|| sim.run_schedule(&mut schedule)));
    let mut sim = warmed_with(100_000, UserPass::Phased);
    for phase in [Phase::Awareness, Phase::Choice, Phase::Subscriptions, Phase::Accounting] {
        let mut schedule = phase_schedule(phase);
        g.bench_function(format!("{phase:?}"), |b| b.iter(|| sim.run_schedule(&mut schedule)));
    }
    g.finish();
}

/// The hardware floor: one tick of a plain loop (a hash, a comparison and a write per user) over as many users
/// as `tick` measures, on as many threads.
fn floor(c: &mut Criterion) {
    let mut g = c.benchmark_group("floor");
    g.sample_size(20);
    for (label, agents) in [("100k", 100_000usize), ("1M", 1_000_000)] {
        let mut plain = PlainLoop::new(agents, threads(), true);
        let mut t = 0;
        g.bench_function(label, |b| {
            b.iter(|| {
                t += 1;
                plain.tick(t);
            })
        });
        std::hint::black_box(plain.checksum());
    }
    g.finish();
}

criterion_group!(benches, full_tick, user_phases, floor);
criterion_main!(benches);
