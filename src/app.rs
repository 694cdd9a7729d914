//! Command dispatch: load inputs, run, write outputs, report. Progress bars live here only.

use crate::cli::{Cli, Command, ScenarioArgs};
use crate::config::{self, Overrides, Scenario};
use crate::io::{manifest, outputs::RunOutput};
use crate::model::calendar::Period;
use crate::sim::{self, MemorySink, Simulation};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

/// Runs a parsed command line; `Err` means bad input or a fatal error (exit code 2).
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run {
            scenario,
            scenario_args,
            out,
            threads,
            record_every,
        } => cmd_run(
            scenario.as_deref(),
            &scenario_args,
            out,
            threads,
            record_every,
        ),
        Command::Validate {
            file,
            scenario_args,
        } => {
            let s = load_scenario(Some(&file), &scenario_args, None)?;
            print!("{}", s.to_toml());
            eprintln!("{}: ok", file.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Calibration {
            scenario,
            scenario_args,
            threads,
            format,
        } => {
            let s = load_scenario(scenario.as_deref(), &scenario_args, Some(Period::Month))?;
            sim::init_threads(threads.unwrap_or_else(default_threads));
            let report = crate::analysis::calibration::calibrate(Arc::new(s))
                .map_err(|e| anyhow::anyhow!("the calibration run failed: {e}"))?;
            if format == "csv" {
                print!("{}", report.to_csv());
            } else {
                print!("{}", report.to_markdown());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// All cores of this machine.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn load_scenario(
    path: Option<&Path>,
    args: &ScenarioArgs,
    record_every: Option<Period>,
) -> Result<Scenario> {
    let overrides = Overrides {
        sets: args.sets.clone(),
        seed: args.seed,
        agents: args.agents,
        record_every,
    };
    Ok(config::load(path, &overrides)?)
}

fn progress_bar(len: u64) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let pb = ProgressBar::with_draw_target(Some(len), target);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ticks, ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb
}

fn cmd_run(
    path: Option<&Path>,
    args: &ScenarioArgs,
    out: Option<PathBuf>,
    threads: Option<usize>,
    record_every: Option<Period>,
) -> Result<ExitCode> {
    let scenario = Arc::new(load_scenario(path, args, record_every)?);
    let threads = threads.unwrap_or_else(default_threads);
    sim::init_threads(threads);
    let dir = out.unwrap_or_else(|| PathBuf::from("outputs").join(&scenario.params().name));
    let started = SystemTime::now();
    let sim = Simulation::new(scenario.clone(), 0);
    let pb = progress_bar(sim.n_ticks() as u64);
    pb.set_message(scenario.params().name.clone());
    let mut output = RunOutput::create(&dir)?;
    let result = sim.run(&mut output, &mut |t, _| pb.set_position(t as u64));
    pb.finish_and_clear();
    match result {
        Ok(tables) => {
            let manifest = manifest::run_manifest(&scenario, threads, started, SystemTime::now());
            let files = output
                .finish(
                    &tables,
                    &scenario.params().revenue_thresholds_usd,
                    &manifest,
                )
                .with_context(|| format!("writing the outputs to {}", dir.display()))?;
            for f in files {
                println!("wrote {}", f.display());
            }
            print_run_summary(&tables);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            output.abort();
            eprintln!("error: the run failed: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn print_run_summary(tables: &sim::resources::RunTables) {
    println!(
        "{:<16} {:>14} {:>10} {:>12} {:>16}",
        "firm", "peak users", "bankrupt", "break-even", "end cash (USD)"
    );
    for s in &tables.summary {
        println!(
            "{:<16} {:>14} {:>10} {:>12} {:>16}",
            s.firm,
            s.peak_users,
            s.bankrupt,
            s.break_even_date
                .map(|d| d.to_string())
                .unwrap_or_else(|| "-".into()),
            s.end_cash_usd
        );
    }
}

/// Runs a scenario in memory (tests, calibration).
pub fn run_in_memory(
    scenario: Arc<Scenario>,
) -> Result<(MemorySink, sim::resources::RunTables), sim::SimError> {
    let mut sink = MemorySink::default();
    let tables = Simulation::new(scenario, 0).run(&mut sink, &mut |_, _| {})?;
    Ok((sink, tables))
}
