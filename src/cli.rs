//! The command line (clap derive). Parsing only: `app` does the work.

use clap::{Parser, Subcommand};
use llm_market::model::calendar::Period;
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

/// Options of commands that run a sweep: applied to every run.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SweepArgs {
    /// Override a key of the base scenario for every run (repeatable).
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub sets: Vec<String>,
    /// Number of user agents of every run.
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
        /// Write even if the output folder holds earlier outputs: they are moved into a backup-<time>/
        /// folder inside it first (never deleted).
        #[arg(long)]
        force: bool,
        /// Table format: csv, or parquet (typed columns, the same values; docs/OUTPUTS.md).
        #[arg(long, default_value = "csv", value_name = "csv|parquet")]
        format: llm_market::experiment::runner::Format,
    },
    /// Check a scenario file; print its resolved form (every default filled in) or every problem.
    Validate {
        file: PathBuf,
        #[command(flatten)]
        scenario_args: ScenarioArgs,
    },
    /// Run a sweep: a design of parameter points × replicates, in parallel, resumable, shardable.
    Sweep {
        /// Sweep file (TOML with a `[design]` table), e.g. configs/sweeps/smoke.toml.
        sweep: PathBuf,
        #[command(flatten)]
        scenario_args: SweepArgs,
        /// Output directory (default: `outputs/sweeps/<sweep name>/`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Runs executed at once, one World each (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Threads for the user loops of each run (default: cores ÷ jobs, at least 1).
        #[arg(long)]
        threads: Option<usize>,
        /// Run only the runs with run_id % N == K (also taken from SLURM_ARRAY_TASK_ID/COUNT when set).
        #[arg(long, value_name = "K/N")]
        shard: Option<llm_market::experiment::runner::Shard>,
        /// Continue an interrupted sweep in the same output directory; every committed run is verified
        /// first (row counts and checksums), and damage is refused naming the file and line.
        #[arg(long, conflicts_with = "force")]
        resume: bool,
        /// With --resume: do the damaged runs again and rewrite the files to the bytes of an uninterrupted
        /// sweep.
        #[arg(long, requires = "resume")]
        repair: bool,
        /// Start afresh even if the output folder holds earlier outputs: they are moved into a
        /// backup-<time>/ folder inside it first (never deleted).
        #[arg(long)]
        force: bool,
        /// Print the number of runs and estimates of time and disk, run nothing.
        #[arg(long)]
        dry_run: bool,
        /// Keep full traces of no run, all runs, or N runs spread evenly (under traces/).
        #[arg(long, default_value = "none", value_name = "none|all|sample:N")]
        traces: llm_market::experiment::runner::TraceMode,
        /// Table format: csv, or parquet (typed columns, the same values; docs/OUTPUTS.md).
        /// With parquet the CSV files stay (the sweep's journal) and Parquet copies are added when it completes.
        #[arg(long, default_value = "csv", value_name = "csv|parquet")]
        format: llm_market::experiment::runner::Format,
        /// A calibration's posterior.csv: every design point runs under the same `--draws` parameter draws
        /// (resampled by weight from its last generation with the sweep's seed) × the replicates; the design's
        /// own parameters keep the design's values.
        #[arg(long, value_name = "POSTERIOR.csv")]
        posterior: Option<PathBuf>,
        /// Parameter draws under --posterior.
        #[arg(long, default_value_t = 16, requires = "posterior", value_parser = clap::value_parser!(u64).range(1..=100_000))]
        draws: u64,
    },
    /// Merge the output folders of a sharded sweep; refuses missing or duplicated runs.
    Merge {
        /// Shard output folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where the merged sweep goes.
        #[arg(long)]
        out: PathBuf,
        /// Write even if the output folder holds earlier outputs (moved into backup-<time>/ first).
        #[arg(long)]
        force: bool,
        /// Table format: csv, or parquet (typed columns, the same values; docs/OUTPUTS.md).
        /// With parquet the merged CSV files stay and Parquet copies are added.
        #[arg(long, default_value = "csv", value_name = "csv|parquet")]
        format: llm_market::experiment::runner::Format,
    },
    /// Write Slurm batch scripts for a sweep (an array job over shards and a merge job after it) or for a
    /// calibration (rounds of an array job over shards and a gathering job, which submits the next round).
    Slurm {
        /// A sweep file, or a priors file (`[[prior]]` entries) for a calibration.
        sweep: PathBuf,
        /// Number of array tasks (shards).
        #[arg(long)]
        shards: u64,
        /// Output directory of the sweep (the scripts go to DIR/slurm/).
        #[arg(long)]
        out: PathBuf,
        /// Submit both scripts with sbatch and print the job ids.
        #[arg(long)]
        submit: bool,
        #[arg(long)]
        partition: Option<String>,
        /// Time limit per task (Slurm format, e.g. 02:00:00).
        #[arg(long)]
        time: Option<String>,
        #[arg(long, default_value_t = 1)]
        cpus_per_task: u32,
        #[command(flatten)]
        scenario_args: SweepArgs,
        /// For a sweep: run it under a calibration's posterior.csv, as `sweep --posterior` does (every task
        /// gets the same draws).
        #[arg(long, value_name = "POSTERIOR.csv")]
        posterior: Option<PathBuf>,
        /// Parameter draws under --posterior.
        #[arg(long, default_value_t = 16, requires = "posterior", value_parser = clap::value_parser!(u64).range(1..=100_000))]
        draws: u64,
        /// For a calibration: `calibrate`'s options after `--` (e.g. `-- --particles 200 --generations 8`).
        #[arg(last = true, value_name = "CALIBRATE OPTIONS")]
        calibrate_args: Vec<String>,
    },
    /// Compare scenarios: statistics across replicates, paired differences, charts, an HTML report.
    Compare {
        /// Run or sweep output folders, or scenario files (run `--replicates` times each under common
        /// random numbers).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// The scenario the others are compared with (default: the first input).
        #[arg(long)]
        baseline: Option<String>,
        /// Output folder (default: outputs/compare/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replicates per scenario file (at least 1).
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..))]
        replicates: u64,
        /// Seed from which replicate seeds derive (common random numbers across scenarios).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Runs executed at once (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// The firm of the headline table (default: openai, else the first firm).
        #[arg(long)]
        focus: Option<String>,
        /// Metrics of the printed table, comma-separated (default: the headline metrics).
        #[arg(long, value_delimiter = ',')]
        metrics: Vec<String>,
        /// Compare the committed, verified runs of unfinished sweeps instead of refusing them (the report
        /// says so).
        #[arg(long)]
        partial: bool,
        /// Write even if the output folder holds earlier outputs (moved into backup-<time>/ first).
        #[arg(long)]
        force: bool,
        /// Draw the PNG charts at this resolution, e.g. 300 for print (default: 96, the SVGs' pixel size).
        #[arg(long, value_parser = clap::value_parser!(u32).range(72..=1200))]
        dpi: Option<u32>,
        /// A calibration's posterior.csv: every scenario file runs under the same `--draws` parameter draws
        /// (resampled by weight from its last generation) × `--replicates` seeds, and the table adds the
        /// posterior predictive interval and the variance split between parameters and seeds.
        #[arg(long, value_name = "POSTERIOR.csv")]
        posterior: Option<PathBuf>,
        /// Parameter draws under --posterior.
        #[arg(long, default_value_t = 16, requires = "posterior", value_parser = clap::value_parser!(u64).range(1..=100_000))]
        draws: u64,
        #[command(flatten)]
        scenario_args: SweepArgs,
    },
    /// Which parameters matter: Sobol indices (Saltelli design), Morris screening (Morris design), PRCC and
    /// standardised regression coefficients, each outcome's variance split between parameters and seeds, and
    /// PRIM scenario discovery, from a finished sweep folder; sensitivity.csv, prim_boxes.csv, charts and a
    /// report (docs/OUTPUTS.md).
    Analyze {
        /// A finished sweep (or merged) output folder.
        sweep: PathBuf,
        /// An outcome, FIRM.METRIC or market.METRIC: a per-firm column of runs.csv (end_cash_usd, bankrupt_by_2024,
        /// …) or an annual one by year (revenue_2024_usd, profit_2025_usd); repeat for more (default: openai's
        /// end cash, last year's profit and bankruptcy by 2025).
        #[arg(long = "outcome")]
        outcomes: Vec<String>,
        /// Methods: sobol, morris, prcc, prim or all (every method the design allows); repeat or comma-separate.
        #[arg(long = "method", value_delimiter = ',', default_value = "all")]
        methods: Vec<String>,
        /// A yes/no condition for PRIM, OUTCOME OP VALUE (e.g. 'openai.bankrupt_by_2024 == 1' or
        /// 'openai.exit_reason == acquired'); repeat for more.
        #[arg(long = "prim")]
        prim: Vec<String>,
        /// Output folder (default: SWEEP/analysis/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Bootstrap resamples for the Sobol and Morris intervals.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=100_000))]
        resamples: u64,
        /// Seed of the bootstrap resamples.
        #[arg(long, default_value_t = 1)]
        bootstrap_seed: u64,
        /// PRIM: share of the box's runs peeled per step.
        #[arg(long, default_value_t = 0.05)]
        peel_alpha: f64,
        /// PRIM: the smallest box, as a share of all runs.
        #[arg(long, default_value_t = 0.05)]
        min_mass: f64,
        /// PRIM: the density the chosen box should reach (the most covering box that does is chosen).
        #[arg(long, default_value_t = 0.8)]
        threshold: f64,
        /// Target half-width of a point mean's 95% interval, in the outcome's units, for the "replicates
        /// needed" figure (default: a tenth of the parameters' standard deviation of the outcome).
        #[arg(long)]
        half_width: Option<f64>,
        /// Write even if the output folder holds earlier outputs (moved into backup-<time>/ first).
        #[arg(long)]
        force: bool,
        /// Draw the PNG charts at this resolution, e.g. 300 for print (default: 96, the SVGs' pixel size).
        #[arg(long, value_parser = clap::value_parser!(u32).range(72..=1200))]
        dpi: Option<u32>,
    },
    /// Measure throughput: the full model (all phases) for some ticks, repeated, next to the hardware floor
    /// (a plain loop over as many users); one JSON line on stdout.
    Bench {
        /// User agents.
        #[arg(long, default_value_t = 1_000_000)]
        agents: u64,
        /// Ticks per measurement from the scenario's start: a number, or `all` (the whole calendar).
        #[arg(long, default_value = "30", value_parser = parse_ticks)]
        ticks: u32,
        /// Threads for the user phases (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Scenario (default: the embedded baseline).
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Repeated measurements; the median is reported.
        #[arg(long, default_value_t = 5)]
        repeats: u32,
        /// Also stream the trace and market rows to CSV files in this folder, as `run` does (they are
        /// discarded after each measurement): compare with a run without it to see what writing costs.
        #[arg(long, value_name = "DIR")]
        outputs: Option<PathBuf>,
    },
    /// Fit the uncertain parameters to the 2023 targets by ABC-SMC: posterior.csv, generations.csv,
    /// predictive.csv, identification.csv, charts and a report (docs/OUTPUTS.md); resumable.
    Calibrate {
        /// Priors file (TOML with `[[prior]]` entries), e.g. configs/priors.toml.
        priors: PathBuf,
        /// Targets CSV (columns date, value, unit, source, uncertainty, model; default: the built-in
        /// data/calibration_2023.csv).
        #[arg(long)]
        targets: Option<PathBuf>,
        /// Accepted particles per generation (at least 2).
        #[arg(long, default_value_t = 100)]
        particles: usize,
        /// How generations after the prior are made: pmc (importance weights, Beaumont et al. 2009) or mcmc
        /// (Metropolis–Hastings moves, equal weights; for many parameters). Default: pmc when particles are
        /// at least 5 × parameters, else mcmc.
        #[arg(long, value_name = "pmc|mcmc")]
        sampler: Option<llm_market::inference::abc::Sampler>,
        /// The most generations, counting generation 0 (the prior).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=100))]
        generations: u64,
        /// Stop after a generation whose acceptance rate is below R (e.g. 0.05).
        #[arg(long, default_value_t = 0.0, value_name = "R")]
        min_acceptance: f64,
        /// Runs (seeds) per candidate; its summaries are their means.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
        seeds_per_particle: u64,
        /// Last simulated day (default: the end of the latest target's month).
        #[arg(long, value_name = "YYYY-MM-DD")]
        end: Option<chrono::NaiveDate>,
        /// Fit only the targets up to this month; later ones are predicted (the hold-out check).
        #[arg(long, value_name = "YYYY-MM")]
        fit_until: Option<String>,
        /// Calibration seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Runs executed at once (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Output folder (default: outputs/calibrate/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Continue an interrupted calibration in the same folder (its finished runs are reused).
        #[arg(long, conflicts_with = "force")]
        resume: bool,
        /// Write even if the output folder holds earlier outputs (moved into backup-<time>/ first).
        #[arg(long)]
        force: bool,
        /// Run only this shard's share of the runs the calibration needs next (candidates dealt out in turn),
        /// keeping them in OUT/shards/K/, then stop; `--gather` continues (`llm-market slurm` runs the rounds).
        #[arg(long, value_name = "K/N", conflicts_with_all = ["force", "gather"])]
        shard: Option<llm_market::experiment::runner::Shard>,
        /// Gather the runs of OUT/shards/*/ and go as far as they allow, running nothing; writes the outputs
        /// once every run is done (implies --resume).
        #[arg(long, conflicts_with = "force")]
        gather: bool,
        /// Draw the PNG charts at this resolution (default: 96).
        #[arg(long, value_parser = clap::value_parser!(u32).range(72..=1200))]
        dpi: Option<u32>,
        #[command(flatten)]
        scenario_args: SweepArgs,
    },
    /// Run the baseline and print the table "model vs 2023 data" (README "Calibration").
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

/// `--ticks`: a number of ticks, or `all` (every tick of the scenario: `u32::MAX`, capped by the run).
fn parse_ticks(s: &str) -> Result<u32, String> {
    if s == "all" {
        return Ok(u32::MAX);
    }
    s.parse().map_err(|_| format!("expected a number of ticks or `all`, got `{s}`"))
}
