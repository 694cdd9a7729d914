//! The library API: what a program (a test, the analysis layer, later the Python package) calls to run the
//! model, without the command line. It sits above `sim` and below `experiment`, `analysis`, `io` and the
//! command-line face (`app`, `cli`); it reads no file and no environment, and writes nothing.

use crate::config::Scenario;
use crate::sim::resources::RunTables;
use crate::sim::{MemorySink, SimError, Simulation};
use std::sync::Arc;

/// Runs a validated scenario (run id 0) in memory: every trace, market and decision row, and the final
/// yearly and summary tables.
pub fn run_in_memory(scenario: Arc<Scenario>) -> Result<(MemorySink, RunTables), SimError> {
    let mut sink = MemorySink::default();
    let tables = Simulation::new(scenario, 0).run(&mut sink, &mut |_, _| {})?;
    Ok((sink, tables))
}
