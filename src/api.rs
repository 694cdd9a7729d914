//! The library API: what a program (a test, the analysis layer, the Python package) calls to load and run
//! the model without the command line. It sits above `sim` and below `experiment`, `analysis`, `io` and
//! the faces (the command line, the Python package); it writes nothing and reads no environment (scenario
//! files are read by `config`). Errors are values: nothing here panics on bad input or exits the process.
//!
//! ```
//! use llm_market::api::{self, RunOptions, Source};
//! use llm_market::config::Overrides;
//!
//! let overrides = Overrides { agents: Some(2_000), sets: vec!["end=\"2023-01-31\"".into()], ..Default::default() };
//! let scenario = api::load(&Source::Embedded, &overrides).expect("the baseline loads");
//! let result = api::run(&scenario, &RunOptions::threads(2)).expect("the run finishes");
//! assert!(result.trace.iter().any(|r| r.firm == "openai"));
//! assert_eq!(result.summary.len(), scenario.firms().len());
//! ```

pub use crate::config::source::TextSource;
pub use crate::config::{ConfigError, Overrides, Problem, Scenario};
pub use crate::sim::resources::{RunTables, Trace};
pub use crate::sim::rows::{AnnualRow, DecisionRow, MarketRow, SummaryRow, TraceRow};
pub use crate::sim::{MemorySink, RowSink, RunOptions, SimError, Simulation, UserPass};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a scenario comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// The baseline compiled into the library (`configs/baseline.toml`).
    Embedded,
    /// A scenario file and the files it `extends`.
    File(PathBuf),
    /// TOML text: a diff over the embedded baseline unless it names `extends` (resolved against `dir`).
    Toml { text: String, name: String, dir: PathBuf },
}

impl Source {
    /// TOML text named `<string>` whose `extends`, if any, starts from the current folder.
    pub fn toml(text: impl Into<String>) -> Source {
        Source::Toml { text: text.into(), name: "<string>".into(), dir: PathBuf::from(".") }
    }

    pub fn file(path: impl AsRef<Path>) -> Source {
        Source::File(path.as_ref().to_path_buf())
    }
}

/// Loads, merges, overrides and validates a scenario: every problem, with its file, key path and line.
pub fn load(source: &Source, overrides: &Overrides) -> Result<Arc<Scenario>, ConfigError> {
    let scenario = match source {
        Source::Embedded => crate::config::load(None, overrides)?,
        Source::File(p) => crate::config::load(Some(p), overrides)?,
        Source::Toml { text, name, dir } => crate::config::load_text(
            &TextSource { text: text.clone(), name: name.clone(), dir: dir.clone() },
            overrides,
        )?,
    };
    Ok(Arc::new(scenario))
}

/// Everything one run produced, in memory: the rows of the five tables of a run folder.
#[derive(Clone, Debug, Default)]
pub struct RunResult {
    pub trace: Vec<TraceRow>,
    pub market: Vec<MarketRow>,
    pub decisions: Vec<DecisionRow>,
    pub annual: Vec<AnnualRow>,
    pub summary: Vec<SummaryRow>,
}

impl RunResult {
    /// The rows a [`MemorySink`] collected and the final tables of the same run.
    pub fn from_parts(sink: MemorySink, tables: RunTables) -> RunResult {
        RunResult {
            trace: sink.trace,
            market: sink.market,
            decisions: sink.decisions,
            annual: tables.annual,
            summary: tables.summary,
        }
    }
}

/// Runs a validated scenario (run id 0) and keeps every row in memory.
pub fn run(scenario: &Arc<Scenario>, options: &RunOptions) -> Result<RunResult, SimError> {
    let mut sink = MemorySink::default();
    let tables = run_streaming(scenario, options, &mut sink, &mut |_, _| {})?;
    Ok(RunResult::from_parts(sink, tables))
}

/// Runs a validated scenario (run id 0), handing the rows to `sink` after every tick that recorded some and
/// reporting progress as (tick, ticks in all); returns the yearly and summary tables. An error of the sink
/// (writing failed, or its [`RowSink::check`] after every tick: a stop asked for) ends the run with
/// [`SimError::Sink`].
pub fn run_streaming(
    scenario: &Arc<Scenario>,
    options: &RunOptions,
    sink: &mut dyn RowSink,
    progress: &mut dyn FnMut(u32, u32),
) -> Result<RunTables, SimError> {
    Simulation::with_options(scenario.clone(), 0, options).run(sink, progress)
}

/// Runs a validated scenario (run id 0) in memory on one thread: every trace, market and decision row, and
/// the final yearly and summary tables.
pub fn run_in_memory(scenario: Arc<Scenario>) -> Result<(MemorySink, RunTables), SimError> {
    let mut sink = MemorySink::default();
    let tables = run_streaming(&scenario, &RunOptions::default(), &mut sink, &mut |_, _| {})?;
    Ok((sink, tables))
}
