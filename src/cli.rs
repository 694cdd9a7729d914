//! The command line (clap derive). Parsing only: `app` does the work.

use crate::model::calendar::Period;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "llm-market",
    version,
    about = "Agent-based simulator of competition in the 2023 generative-AI market"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by commands that load a scenario.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ScenarioArgs {
    /// Override any scenario key, e.g. `--set firms.openai.sub_price_usd_per_month=25` (repeatable).
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub sets: Vec<String>,
    /// Random seed of the run (default: the scenario's `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Number of user agents (default: the scenario's `agents`).
    #[arg(long)]
    pub agents: Option<u64>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run one scenario (the embedded baseline when no file is given) and write its outputs.
    Run {
        /// Scenario file (TOML). Default: the embedded `configs/baseline.toml`.
        scenario: Option<PathBuf>,
        #[command(flatten)]
        scenario_args: ScenarioArgs,
        /// Output directory (default: `outputs/<scenario name>/`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Worker threads for the user phases (default: all cores). Results do not depend on it.
        #[arg(long)]
        threads: Option<usize>,
        /// Recording interval of trace.csv and market.csv.
        #[arg(long, value_name = "day|week|month")]
        record_every: Option<Period>,
    },
    /// Check a scenario file; print its resolved form (every default filled in) or every problem.
    Validate {
        file: PathBuf,
        #[command(flatten)]
        scenario_args: ScenarioArgs,
    },
    /// Run the baseline and print the table "model vs 2023 data" (DESIGN.md §1.4).
    Calibration {
        /// Scenario to check (default: the embedded baseline).
        scenario: Option<PathBuf>,
        #[command(flatten)]
        scenario_args: ScenarioArgs,
        #[arg(long)]
        threads: Option<usize>,
        /// Output format.
        #[arg(long, default_value = "markdown", value_parser = ["markdown", "csv"])]
        format: String,
    },
}
