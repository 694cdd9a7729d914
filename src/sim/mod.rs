//! The simulation: a bevy_ecs `World` of firms, users and organisations, and a `Schedule` whose phases
//! run in the fixed order of docs/ODD.md §3. No IO, no clock, no environment here.

pub mod capacity;
pub mod clock;
pub mod components;
pub mod events;
pub mod firms;
pub mod floor;
pub mod memory;
pub mod org_events;
pub mod orgs;
pub mod record;
pub mod resources;
pub mod rows;
pub mod setup;
pub mod strategy;
pub mod users;

pub use memory::estimated_peak_bytes;

use crate::config::Scenario;
use bevy_ecs::prelude::*;
use bevy_ecs::schedule::{LogLevel, ScheduleBuildSettings, SingleThreadedExecutor};
use resources::{Clock, Health, RunTables, Trace};
use std::sync::Arc;

/// The phases of one tick, in order. Every system belongs to exactly one.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    ClockEvents,
    Quality,
    Awareness,
    Choice,
    Subscriptions,
    Orgs,
    Accounting,
    Strategy,
    Record,
}

impl Phase {
    /// Every phase, in the order of a tick.
    pub const ALL: [Phase; 9] = [
        Phase::ClockEvents,
        Phase::Quality,
        Phase::Awareness,
        Phase::Choice,
        Phase::Subscriptions,
        Phase::Orgs,
        Phase::Accounting,
        Phase::Strategy,
        Phase::Record,
    ];
}

/// How the user phases are carried out in a run's schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserPass {
    /// Event-driven ([`events::step_users_by_events`], in phase `Awareness`): each user holds the tick of its
    /// next candidate decision and only users with something due (or whose choice a change of the market
    /// forces) go through the kernels, in phase order. What runs use. Draws its decisions as waiting times,
    /// so its results differ from the per-tick samplers' seed by seed and agree in distribution
    /// (`tests/it/sampler.rs`).
    Events,
    /// Per-tick sampler: one parallel pass takes each user through awareness, choice, subscriptions and the
    /// tally, in that order ([`users::step_users`]): a draw per user, tick and possible decision, quiet users
    /// skipped exactly. The reference the event-driven sampler is tested against.
    Fused,
    /// The per-tick sampler with one system per phase, each a pass over all users: the reference the fused
    /// pass is tested against (same results, byte for byte).
    Phased,
}

/// Adds the systems of `phase` to `schedule` (chained within the phase).
fn add_phase(schedule: &mut Schedule, phase: Phase, pass: UserPass) {
    let fused = pass != UserPass::Phased;
    match phase {
        Phase::ClockEvents => {
            schedule.add_systems((clock::advance_clock, clock::apply_epochs, clock::apply_events).chain().in_set(phase))
        }
        Phase::Quality => schedule.add_systems((firms::update_quality, firms::publish_offers).chain().in_set(phase)),
        Phase::Awareness if pass == UserPass::Events => {
            schedule.add_systems(events::step_users_by_events.in_set(phase))
        }
        Phase::Awareness if fused => schedule.add_systems(users::step_users.in_set(phase)),
        Phase::Awareness => schedule.add_systems(users::spread_awareness.in_set(phase)),
        // In the fused and event-driven passes these phases happen inside the one user system.
        Phase::Choice | Phase::Subscriptions if fused => schedule,
        Phase::Choice => schedule.add_systems(users::choose_provider.in_set(phase)),
        Phase::Subscriptions => schedule.add_systems(users::update_subscriptions.in_set(phase)),
        Phase::Orgs if pass == UserPass::Events => schedule.add_systems(org_events::step_orgs_by_events.in_set(phase)),
        Phase::Orgs => schedule.add_systems(orgs::update_orgs.in_set(phase)),
        Phase::Accounting if fused => {
            schedule.add_systems((firms::account_firms, firms::fund_firms).chain().in_set(phase))
        }
        Phase::Accounting => {
            schedule.add_systems((users::tally_users, firms::account_firms, firms::fund_firms).chain().in_set(phase))
        }
        Phase::Strategy => {
            schedule.add_systems((firms::set_prices, strategy::decide, capacity::plan_capacity).chain().in_set(phase))
        }
        Phase::Record => schedule.add_systems(record::record_tick.in_set(phase)),
    };
}

/// A schedule with the systems of one phase only, user phases one by one (benchmarks time phases with it,
/// on a world built with [`UserPass::Phased`]).
pub fn phase_schedule(phase: Phase) -> Schedule {
    let mut schedule = Schedule::default();
    schedule.set_executor(SingleThreadedExecutor::new());
    add_phase(&mut schedule, phase, UserPass::Phased);
    schedule
}

/// A schedule with the fused user pass alone (what phases 3–5 and the user tally cost in a run).
pub fn user_pass_schedule() -> Schedule {
    let mut schedule = Schedule::default();
    schedule.set_executor(SingleThreadedExecutor::new());
    schedule.add_systems(users::step_users);
    schedule
}

/// Why a run stopped early.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SimError {
    #[error("tick {tick} ({date}): {message}")]
    NonFinite { tick: u32, date: chrono::NaiveDate, message: String },
    #[error("writing the outputs failed: {0}")]
    Sink(String),
    #[error("the run has ended: all {n_ticks} ticks are done")]
    Finished { n_ticks: u32 },
}

/// Receives rows as the run produces them (the `io` module streams them to CSV).
pub trait RowSink {
    /// Rows of `trace.csv`, `market.csv` and `decisions.csv` recorded since the last call.
    fn rows(&mut self, batch: &Trace) -> Result<(), String>;

    /// Called after every tick, recorded or not: an error ends the run (a stop asked for).
    fn check(&mut self) -> Result<(), String> {
        Ok(())
    }
}

impl<T: RowSink + ?Sized> RowSink for &mut T {
    fn rows(&mut self, batch: &Trace) -> Result<(), String> {
        (**self).rows(batch)
    }

    fn check(&mut self) -> Result<(), String> {
        (**self).check()
    }
}

/// Collects rows in memory (tests, calibration).
#[derive(Default, Debug)]
pub struct MemorySink {
    pub trace: Vec<rows::TraceRow>,
    pub market: Vec<rows::MarketRow>,
    pub decisions: Vec<rows::DecisionRow>,
}

impl RowSink for MemorySink {
    fn rows(&mut self, batch: &Trace) -> Result<(), String> {
        self.trace.extend_from_slice(&batch.rows);
        self.market.extend_from_slice(&batch.market);
        self.decisions.extend_from_slice(&batch.decisions);
        Ok(())
    }
}

/// One run of one scenario.
pub struct Simulation {
    world: World,
    schedule: Schedule,
    n_ticks: u32,
}

/// The most worker threads a run may have (the faces refuse more; [`resources::Workers`] caps there).
pub const MAX_THREADS: usize = 1024;

/// How one run uses the machine. Only `user_pass` changes the results, and only between the event-driven
/// sampler and the per-tick ones (which agree in distribution): the same scenario, run id and sampler give
/// the same rows whatever the other options (`tests/it/determinism.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOptions {
    /// Worker threads of this run's user pass: its own pool, dropped with the run (1: the calling thread
    /// alone). A process can run scenarios with different thread counts one after another or side by side.
    pub threads: usize,
    /// Find quiet users 64 at a time where the CPU has AVX-512 (false: one at a time; the command line's
    /// `LLM_MARKET_SIMD=off`, for comparing the two ways).
    pub vector_test: bool,
    /// How the user phases run: event-driven (the default), or a per-tick sampler (the references).
    pub user_pass: UserPass,
    /// Fault injection for tests: the run panics at this tick (phase 1), so that tests can check how a panic
    /// is handled. The caller decides (`app` reads `LLM_MARKET_TEST_PANIC`); the simulation reads nothing.
    pub panic_at_tick: Option<u32>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { threads: 1, vector_test: true, user_pass: UserPass::Events, panic_at_tick: None }
    }
}

impl RunOptions {
    /// The default options with `threads` worker threads.
    pub fn threads(threads: usize) -> RunOptions {
        RunOptions { threads: threads.max(1), ..RunOptions::default() }
    }
}

/// Makes sure bevy's global compute pool exists (the first call in a process fixes its thread count). Only
/// the phase-by-phase reference systems ([`UserPass::Phased`], benchmarks of single phases) run on it; a
/// run's fused pass uses its own [`resources::Workers`].
pub fn init_threads(threads: usize) {
    bevy_tasks::ComputeTaskPool::get_or_init(|| bevy_tasks::TaskPoolBuilder::new().num_threads(threads.max(1)).build());
}

impl Simulation {
    /// Builds the world for `scenario` with the default [`RunOptions`] (one thread) and records tick 0.
    pub fn new(scenario: Arc<Scenario>, run_id: u64) -> Simulation {
        Self::with_options(scenario, run_id, &RunOptions::default())
    }

    /// Builds the world for `scenario` and records tick 0 (the initial state).
    pub fn with_options(scenario: Arc<Scenario>, run_id: u64, options: &RunOptions) -> Simulation {
        let pass = options.user_pass;
        if pass == UserPass::Phased {
            init_threads(1);
        }
        let mut world = World::new();
        setup::populate(&mut world, scenario, run_id);
        world.resource_mut::<resources::RunInfo>().panic_at_tick = options.panic_at_tick;
        world.insert_resource(resources::Workers::new(options.threads, options.vector_test));
        if pass == UserPass::Phased {
            // The phase-by-phase reference keeps what users learnt between awareness and choice.
            let users: Vec<Entity> = world.query_filtered::<Entity, With<components::User>>().iter(&world).collect();
            world.insert_batch(users.into_iter().map(|e| (e, components::NewlyAware::default())));
        }
        let n_ticks = world.resource::<resources::RunInfo>().calendar.n_ticks();
        let mut schedule = Schedule::default();
        schedule.set_executor(SingleThreadedExecutor::new());
        schedule
            .set_build_settings(ScheduleBuildSettings { ambiguity_detection: LogLevel::Error, ..Default::default() });
        let [a, b, c, d, e, f, g, h, i] = Phase::ALL;
        schedule.configure_sets((a, b, c, d, e, f, g, h, i).chain());
        for phase in Phase::ALL {
            add_phase(&mut schedule, phase, pass);
        }

        // Tick 0: record the initial state.
        let mut initial = Schedule::default();
        initial.set_executor(SingleThreadedExecutor::new());
        initial.add_systems(record::record_tick);
        initial.run(&mut world);
        Simulation { world, schedule, n_ticks }
    }

    pub fn n_ticks(&self) -> u32 {
        self.n_ticks
    }

    pub fn tick(&self) -> u32 {
        self.world.resource::<Clock>().tick
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    pub fn world_mut(&mut self) -> &mut World {
        &mut self.world
    }

    /// Runs one tick; fails if a system found a non-finite value, or if every tick is already done.
    pub fn step(&mut self) -> Result<(), SimError> {
        if self.tick() >= self.n_ticks {
            return Err(SimError::Finished { n_ticks: self.n_ticks });
        }
        self.schedule.run(&mut self.world);
        if let Some(message) = self.world.resource_mut::<Health>().error.take() {
            let clock = self.world.resource::<Clock>();
            return Err(SimError::NonFinite { tick: clock.tick, date: clock.date, message });
        }
        Ok(())
    }

    /// Runs a schedule (e.g. from [`phase_schedule`]) on this run's world once.
    pub fn run_schedule(&mut self, schedule: &mut Schedule) {
        schedule.run(&mut self.world);
    }

    /// Takes the rows recorded since the last call.
    pub fn take_rows(&mut self) -> Trace {
        std::mem::take(&mut *self.world.resource_mut::<Trace>())
    }

    /// The yearly and summary tables (call after the last tick).
    pub fn finish(&mut self) -> RunTables {
        record::final_tables(&mut self.world)
    }

    /// Runs every tick, streaming rows to `sink` and reporting progress as (tick, n_ticks).
    pub fn run(mut self, sink: &mut dyn RowSink, progress: &mut dyn FnMut(u32, u32)) -> Result<RunTables, SimError> {
        let rows = self.take_rows();
        sink.rows(&rows).map_err(SimError::Sink)?;
        while self.tick() < self.n_ticks {
            self.step()?;
            let rows = self.take_rows();
            if !rows.rows.is_empty() || !rows.market.is_empty() || !rows.decisions.is_empty() {
                sink.rows(&rows).map_err(SimError::Sink)?;
            }
            sink.check().map_err(SimError::Sink)?;
            progress(self.tick(), self.n_ticks);
        }
        Ok(self.finish())
    }
}
