//! Command dispatch: load inputs, run, write outputs, report. Progress bars live here only.

use crate::cli::{Cli, Command, ScenarioArgs, SweepArgs};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use llm_market::config::{self, Overrides, Scenario};
use llm_market::experiment::{
    self,
    runner::{Format, Progress, Shard, SweepOptions, TraceMode},
};
use llm_market::io::comparison::{CompareOptions, CompareOutcome};
use llm_market::io::{manifest, outputs::RunOutput};
use llm_market::memcheck;
use llm_market::model::calendar::Period;
use llm_market::sim::{self, RowSink, RunOptions, Simulation};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

/// Runs a parsed command line; `Err` means bad input or a fatal error (exit code 2).
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run { scenario, scenario_args, out, threads, record_every, force, format } => {
            cmd_run(scenario.as_deref(), &scenario_args, out, threads, record_every, (force, format))
        }
        Command::Validate { file, scenario_args } => {
            if experiment::spec::is_sweep_file(&file) {
                let o =
                    Overrides { sets: scenario_args.sets.clone(), agents: scenario_args.agents, ..Default::default() };
                let sweep = experiment::spec::load(&file, &o)?;
                print!("{}", toml::to_string(&sweep.file)?);
                eprintln!(
                    "{}: ok ({} points × {} replicates = {} runs)",
                    file.display(),
                    sweep.n_points(),
                    sweep.file.replicates,
                    sweep.n_runs()
                );
                return Ok(ExitCode::SUCCESS);
            }
            if llm_market::inference::prior::is_priors_file(&file) {
                let o =
                    Overrides { sets: scenario_args.sets.clone(), agents: scenario_args.agents, ..Default::default() };
                let p = llm_market::inference::prior::load(&file, &o)?;
                println!("{} priors over scenario {:?}:", p.priors.len(), p.file.scenario);
                for x in &p.priors {
                    let (a, b) = x.dist.interval(0.9);
                    println!("  {:<52} {:?} 90% [{}, {}]", x.path, x.dist, fmt_num(a), fmt_num(b));
                }
                eprintln!("{}: ok (every prior's support is accepted by the scenario validator)", file.display());
                return Ok(ExitCode::SUCCESS);
            }
            let s = load_scenario(Some(&file), &scenario_args, None)?;
            print!("{}", s.to_toml());
            eprintln!("{}: ok", file.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Sweep {
            sweep,
            scenario_args,
            out,
            jobs,
            threads,
            shard,
            resume,
            repair,
            force,
            dry_run,
            traces,
            format,
            posterior,
            draws,
        } => cmd_sweep(
            &sweep,
            &scenario_args,
            out,
            (jobs, threads),
            shard,
            (resume, repair, force),
            dry_run,
            (traces, format),
            posterior.map(|p| (p, draws)),
        ),
        Command::Compare {
            inputs,
            baseline,
            out,
            replicates,
            seed,
            jobs,
            focus,
            metrics,
            partial,
            force,
            dpi,
            posterior,
            draws,
            scenario_args,
        } => cmd_compare(
            &inputs,
            baseline,
            out,
            (replicates, seed, jobs),
            (focus, metrics),
            (partial, force, dpi),
            (posterior, draws),
            &scenario_args,
        ),
        Command::Analyze {
            sweep,
            outcomes,
            methods,
            prim,
            out,
            resamples,
            bootstrap_seed,
            peel_alpha,
            min_mass,
            threshold,
            half_width,
            force,
            dpi,
        } => {
            use llm_market::io::analyze::{AnalyzeOptions, Method};
            let mut opts = AnalyzeOptions::new(sweep);
            opts.outcomes = outcomes;
            opts.methods = methods
                .iter()
                .map(|m| m.parse::<Method>().map_err(|e| anyhow::anyhow!("--method: {e}")))
                .collect::<Result<_>>()?;
            opts.prim = prim;
            opts.out = out;
            opts.bootstrap.resamples = resamples as usize;
            opts.bootstrap.seed = bootstrap_seed;
            for (flag, v, lo, hi) in [
                ("--peel-alpha", peel_alpha, 0.0, 0.5),
                ("--min-mass", min_mass, 0.0, 1.0),
                ("--threshold", threshold, 0.0, 1.0),
            ] {
                if !(v > lo && v <= hi) {
                    anyhow::bail!("{flag} {v}: must be in ({lo}, {hi}]");
                }
            }
            if half_width.is_some_and(|w| !(w > 0.0 && w.is_finite())) {
                anyhow::bail!("--half-width must be a positive number");
            }
            opts.prim_options.peel_alpha = peel_alpha;
            opts.prim_options.paste_alpha = peel_alpha;
            opts.prim_options.min_mass = min_mass;
            opts.prim_options.threshold = threshold;
            opts.half_width = half_width;
            opts.force = force;
            opts.dpi = dpi;
            opts.command_line = std::env::args().collect();
            let r = llm_market::io::analyze::analyze(&opts)?;
            print!("{}", r.summary);
            for n in &r.notes {
                eprintln!("note: {n}");
            }
            println!("wrote {} (sensitivity.csv, prim_boxes.csv, charts/, report.html)", r.out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { agents, ticks, threads, scenario, repeats, outputs } => {
            cmd_bench(agents, ticks, threads, scenario.as_deref(), repeats, outputs.as_deref())
        }
        Command::Merge { dirs, out, force, format } => {
            let stop = stop_on_signals()?;
            let Some(n) = llm_market::io::merge::merge(&dirs, &out, force, format, &stop)? else {
                let sig = stop.load(Ordering::Relaxed);
                eprintln!("interrupted by {}: nothing was merged into {}", signal_name(sig), out.display());
                return Ok(ExitCode::from(128 + sig as u8));
            };
            println!("merged {n} runs from {} folders into {}", dirs.len(), out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Slurm {
            sweep,
            shards,
            out,
            submit,
            partition,
            time,
            cpus_per_task,
            scenario_args,
            posterior,
            draws,
            calibrate_args,
        } => {
            let job =
                SlurmJob { shards, out: &out, submit, partition, time, cpus: cpus_per_task, args: &scenario_args };
            if llm_market::inference::prior::is_priors_file(&sweep) {
                if posterior.is_some() {
                    anyhow::bail!("--posterior is for a sweep; {} is a priors file (a calibration)", sweep.display());
                }
                cmd_slurm_calibrate(&sweep, &job, &calibrate_args)
            } else if !calibrate_args.is_empty() {
                anyhow::bail!(
                    "options after `--` are calibrate's, and {} is not a priors file (no [[prior]] entries)",
                    sweep.display()
                )
            } else {
                cmd_slurm(&sweep, &job, posterior.map(|p| (p, draws)))
            }
        }
        Command::Calibrate {
            priors,
            targets,
            particles,
            sampler,
            generations,
            min_acceptance,
            seeds_per_particle,
            end,
            fit_until,
            seed,
            jobs,
            out,
            resume,
            force,
            shard,
            gather,
            dpi,
            scenario_args,
        } => {
            use llm_market::io::calibrate::{CalibrateOptions, CalibrateOutcome};
            let out = out.unwrap_or_else(|| PathBuf::from("outputs/calibrate"));
            let mut opts = CalibrateOptions::new(priors, out.clone());
            opts.targets = targets;
            opts.particles = particles;
            opts.sampler = sampler;
            opts.generations = generations as usize;
            opts.min_acceptance = checked_min_acceptance(min_acceptance)?;
            opts.seeds_per_particle = seeds_per_particle;
            opts.end = end;
            opts.fit_until = fit_until_month(fit_until)?;
            opts.seed = seed;
            opts.jobs = jobs.unwrap_or_else(default_threads).max(1);
            opts.run = run_options(1)?;
            opts.resume = resume;
            opts.force = force;
            opts.shard = shard;
            opts.gather = gather;
            opts.dpi = dpi;
            opts.sets = scenario_args.sets.clone();
            opts.agents = scenario_args.agents;
            opts.command_line = std::env::args().collect();
            opts.stop = stop_on_signals()?;
            // Memory: `--jobs` runs of the base scenario at once, checked before anything is written.
            let su = llm_market::io::calibrate::setup(&opts)?;
            let base = config::Scenario::from_file(su.priors.base.clone(), &opts.priors.display().to_string())?;
            memcheck::ensure(&memcheck::scenario_demand(
                &base,
                None,
                scenario_args.agents,
                &scenario_args.sets,
                opts.jobs as u64,
            ))?;
            let pb = progress_bar(1);
            pb.set_style(
                ProgressStyle::with_template("generation {msg} [{bar:40}] {pos}/{len} runs")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            let outcome = llm_market::io::calibrate::calibrate(&opts, &|g, done, total| {
                pb.set_message(g.to_string());
                pb.set_length(total);
                pb.set_position(done);
            });
            pb.finish_and_clear();
            match outcome? {
                CalibrateOutcome::Interrupted { signal } => {
                    eprintln!(
                        "interrupted by {}: the finished runs are in {}; continue with --resume",
                        signal_name(signal),
                        out.join("simulations.csv").display()
                    );
                    Ok(ExitCode::from(128 + signal as u8))
                }
                CalibrateOutcome::Waiting { generation, missing, ran } => {
                    let what = match opts.shard {
                        Some(s) => format!("shard {}/{} ran {ran} runs", s.index, s.count),
                        None => "gathered the shards' runs".to_string(),
                    };
                    match generation {
                        Some(g) => println!(
                            "{what}; generation {g} still needs {missing} runs of {}: run the shards again, then \
                             `calibrate --gather` in {}",
                            if opts.gather { "the shards" } else { "other shards" },
                            out.display()
                        ),
                        None => println!(
                            "{what}; every run the calibration needs is done: `calibrate --gather` in {} writes \
                             its outputs",
                            out.display()
                        ),
                    }
                    Ok(ExitCode::SUCCESS)
                }
                CalibrateOutcome::Complete { runs } => {
                    println!("the calibration in {} is complete ({runs} runs): nothing to do", out.display());
                    Ok(ExitCode::SUCCESS)
                }
                CalibrateOutcome::Done { summary, files, .. } => {
                    println!("{summary}");
                    println!(
                        "wrote {} files to {} (posterior.csv, generations.csv, predictive.csv, identification.csv, report.html)",
                        files.len(),
                        out.display()
                    );
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        Command::Calibration { scenario, scenario_args, threads, format } => {
            let s = load_scenario(scenario.as_deref(), &scenario_args, Some(Period::Month))?;
            memcheck::ensure(&memcheck::scenario_demand(
                &s,
                scenario.as_deref(),
                scenario_args.agents,
                &scenario_args.sets,
                1,
            ))?;
            let options = run_options(threads.unwrap_or_else(default_threads))?;
            let report = llm_market::analysis::calibration::calibrate(Arc::new(s), &options, &AtomicUsize::new(0))
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

/// A number for people: `1.23B`, `0.05`.
fn fmt_num(x: f64) -> String {
    llm_market::analysis::fmt_big(x)
}

/// How a run uses the machine: `threads` worker threads; the environment is read here, never in the
/// simulation: `LLM_MARKET_SIMD=off` compares the user-by-user quiet test with the vector one (same results).
fn run_options(threads: usize) -> Result<RunOptions> {
    if !(1..=sim::MAX_THREADS).contains(&threads) {
        anyhow::bail!("--threads: must be between 1 and {}, got {threads}", sim::MAX_THREADS);
    }
    let vector_test = std::env::var_os("LLM_MARKET_SIMD").is_none_or(|v| v != "off");
    Ok(RunOptions { vector_test, ..RunOptions::threads(threads) })
}

/// All cores of this machine.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn load_scenario(path: Option<&Path>, args: &ScenarioArgs, record_every: Option<Period>) -> Result<Scenario> {
    let overrides =
        Overrides { sets: args.sets.clone(), seed: args.seed, agents: args.agents, record_every, ..Default::default() };
    Ok(config::load(path, &overrides)?)
}

fn progress_bar(len: u64) -> ProgressBar {
    let target =
        if std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
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
    (force, format): (bool, Format),
) -> Result<ExitCode> {
    let scenario = Arc::new(load_scenario(path, args, record_every)?);
    memcheck::ensure(&memcheck::scenario_demand(&scenario, path, args.agents, &args.sets, 1))?;
    let threads = threads.unwrap_or_else(default_threads);
    let dir = out.unwrap_or_else(|| PathBuf::from("outputs").join(&scenario.params().name));
    let started = SystemTime::now();
    let panic_at = test_panic_ticks()?.into_iter().find(|(id, _)| *id == 0).map(|(_, t)| t);
    let sim =
        Simulation::with_options(scenario.clone(), 0, &RunOptions { panic_at_tick: panic_at, ..run_options(threads)? });
    let pb = progress_bar(sim.n_ticks() as u64);
    pb.set_message(scenario.params().name.clone());
    let mut output = RunOutput::create(&dir, force)?.with_format(format);
    let stop = stop_on_signals()?;
    // A panic inside the simulation is a bug: it becomes exit code 1 with nothing written, never a crash.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut sink = experiment::runner::Stoppable { inner: &mut output, stop: &stop };
        sim.run(&mut sink, &mut |t, _| pb.set_position(t as u64))
    }));
    pb.finish_and_clear();
    let result = match result {
        Ok(r) => r,
        Err(p) => {
            output.abort();
            eprintln!(
                "error: the run failed: internal error (panic: {}); this is a bug",
                experiment::runner::panic_text(&*p)
            );
            return Ok(ExitCode::from(1));
        }
    };
    match result {
        Ok(tables) => {
            let manifest = manifest::run_manifest(&scenario, threads, started, SystemTime::now());
            let files = output
                .finish(&tables, &scenario.params().revenue_thresholds_usd, &manifest)
                .with_context(|| format!("writing the outputs to {}", dir.display()))?;
            for f in files {
                println!("wrote {}", f.display());
            }
            print_run_summary(&tables);
            Ok(ExitCode::SUCCESS)
        }
        Err(_) if stop.load(Ordering::Relaxed) != 0 => {
            output.abort();
            let sig = stop.load(Ordering::Relaxed);
            eprintln!("interrupted by {}: nothing was written", signal_name(sig));
            Ok(ExitCode::from(128 + sig as u8))
        }
        Err(sim::SimError::Sink(e)) => {
            // Writing the outputs failed (a full disk): a fatal error, exit 2, nothing left behind.
            output.abort();
            Err(anyhow::anyhow!("{e}; nothing was written to {}", dir.display()))
        }
        Err(e) => {
            output.abort();
            eprintln!("error: the run failed: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// SIGINT and SIGTERM set the returned flag (to the signal's number) instead of killing the process, so
/// that a command can finish its current write, leave its outputs consistent and exit with 128 + signal.
fn stop_on_signals() -> Result<Arc<AtomicUsize>> {
    let stop = Arc::new(AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_usize(sig, stop.clone(), sig as usize)
            .context("cannot install the signal handlers")?;
    }
    Ok(stop)
}

fn signal_name(sig: usize) -> &'static str {
    if sig == signal_hook::consts::SIGINT as usize { "SIGINT" } else { "SIGTERM" }
}

fn print_run_summary(tables: &sim::resources::RunTables) {
    println!("{:<16} {:>14} {:>10} {:>12} {:>16}", "firm", "peak users", "bankrupt", "break-even", "end cash (USD)");
    for s in &tables.summary {
        println!(
            "{:<16} {:>14} {:>10} {:>12} {:>16}",
            s.firm,
            s.peak_users,
            s.bankrupt,
            s.break_even_date.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
            s.end_cash_usd
        );
    }
}

/// The environment variable that injects faults for tests: `RUN_ID@TICK,RUN_ID@TICK` makes run RUN_ID
/// panic at tick TICK (`run` is run 0). Read here only; the simulation gets plain data.
pub const TEST_PANIC_VAR: &str = "LLM_MARKET_TEST_PANIC";

/// Parses [`TEST_PANIC_VAR`]; unset or empty means no fault.
fn test_panic_ticks() -> Result<Vec<(u64, u32)>> {
    let Ok(raw) = std::env::var(TEST_PANIC_VAR) else { return Ok(Vec::new()) };
    parse_panic_ticks(&raw).map_err(|e| anyhow::anyhow!("{TEST_PANIC_VAR}: {e}"))
}

fn parse_panic_ticks(raw: &str) -> Result<Vec<(u64, u32)>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (id, tick) = item.split_once('@').ok_or_else(|| format!("expected RUN_ID@TICK, got {item:?}"))?;
            let id = id.trim().parse::<u64>().map_err(|_| format!("bad run id in {item:?}"))?;
            let tick = tick.trim().parse::<u32>().map_err(|_| format!("bad tick in {item:?}"))?;
            Ok((id, tick))
        })
        .collect()
}

/// The shard from `--shard`, else from Slurm's array variables when both are set.
fn shard_from_env(cli: Option<Shard>) -> Result<Option<Shard>> {
    if cli.is_some() {
        return Ok(cli);
    }
    match (std::env::var("SLURM_ARRAY_TASK_ID"), std::env::var("SLURM_ARRAY_TASK_COUNT")) {
        (Ok(k), Ok(n)) => Ok(Some(
            format!("{k}/{n}").parse::<Shard>().map_err(|e| anyhow::anyhow!("SLURM_ARRAY_TASK_ID/COUNT: {e}"))?,
        )),
        _ => Ok(None),
    }
}

#[allow(clippy::too_many_arguments)]
fn cmd_sweep(
    path: &Path,
    args: &SweepArgs,
    out: Option<PathBuf>,
    (jobs, threads): (Option<usize>, Option<usize>),
    shard: Option<Shard>,
    (resume, repair, force): (bool, bool, bool),
    dry_run: bool,
    (traces, format): (TraceMode, Format),
    posterior: Option<(PathBuf, u64)>,
) -> Result<ExitCode> {
    let o = Overrides { sets: args.sets.clone(), agents: args.agents, ..Default::default() };
    let mut sweep = experiment::spec::load(path, &o)?;
    if let Some((p, draws)) = posterior {
        let seed = sweep.file.seed;
        sweep = llm_market::io::comparison::sweep_posterior(sweep, &p, draws, seed)?;
    }
    let jobs = jobs.unwrap_or_else(default_threads).max(1);
    // One World per job; jobs × threads stays within the cores unless asked otherwise.
    let run = run_options(threads.unwrap_or((default_threads() / jobs).max(1)))?;
    let shard = shard_from_env(shard)?;
    // Memory: the largest run × the runs held at once (the jobs, at most this shard's runs), before any output.
    let in_shard = shard.map_or(sweep.n_runs(), |s| (sweep.n_runs() + s.count - 1 - s.index) / s.count);
    let at_once = (jobs as u64).min(in_shard);
    let memory =
        memcheck::check_sweep(&memcheck::sweep_demand(&sweep, path, args.agents, &args.sets, at_once), dry_run)?;
    let out = out.unwrap_or_else(|| PathBuf::from("outputs/sweeps").join(&sweep.file.name));
    let opts = SweepOptions {
        out: out.clone(),
        jobs,
        shard,
        resume,
        repair,
        force,
        traces,
        format,
        command_line: std::env::args().collect(),
        run,
        panic_at: test_panic_ticks()?,
        stop: Arc::new(AtomicUsize::new(0)),
    };
    if dry_run {
        print!("{}", experiment::runner::dry_run(&sweep, &opts)?);
        print!("{memory}");
        return Ok(ExitCode::SUCCESS);
    }
    let pb = progress_bar(0);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} runs, ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(sweep.file.name.clone());
    let on_progress = |p: Progress| {
        pb.set_length(p.total);
        pb.set_position(p.done);
        if p.failed > 0 {
            pb.set_message(format!("{} ({} failed)", sweep.file.name, p.failed));
        }
    };
    let opts = SweepOptions { stop: stop_on_signals()?, ..opts };
    let report = llm_market::io::sweep_run::run_sweep(&sweep, &opts, &on_progress)?;
    pb.finish_and_clear();
    let repaired =
        if report.repaired > 0 { format!(", {} damaged run(s) done again", report.repaired) } else { String::new() };
    if let Some(sig) = report.interrupted {
        let done = report.ran + report.resumed + report.repaired;
        println!(
            "{}: interrupted by {} after {done} of {} runs ({} run now{repaired}); the folder is consistent: continue with --resume. Outputs in {}",
            sweep.file.name,
            signal_name(sig),
            report.total,
            report.ran,
            out.display()
        );
        return Ok(ExitCode::from(128 + sig as u8));
    }
    println!(
        "{}: {} runs ({} run now, {} done before{repaired}), {} failed; outputs in {}",
        sweep.file.name,
        report.total,
        report.ran,
        report.resumed,
        report.failed,
        out.display()
    );
    Ok(if report.failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Quotes a path or argument for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// What `llm-market slurm` writes scripts for, whatever the work.
struct SlurmJob<'a> {
    shards: u64,
    out: &'a Path,
    submit: bool,
    partition: Option<String>,
    time: Option<String>,
    cpus: u32,
    args: &'a SweepArgs,
}

impl SlurmJob<'_> {
    /// `#SBATCH` lines of every script: partition and time limit.
    fn common(&self) -> Result<String> {
        let mut common = String::new();
        if let Some(p) = &self.partition {
            common.push_str(&format!("#SBATCH --partition={}\n", sbatch_value("--partition", p)?));
        }
        if let Some(t) = &self.time {
            common.push_str(&format!("#SBATCH --time={}\n", sbatch_value("--time", t)?));
        }
        Ok(common)
    }

    /// The lines an array job's script starts with: the shebang, `# Array job: {what}`, the job name, the
    /// array, the cores, the log files in `logs`, partition and time limit, and `set -euo pipefail`.
    fn array_header(&self, what: &str, name: &str, logs: &Path) -> Result<String> {
        Ok(format!(
            "#!/bin/bash\n# Array job: {what}\n#SBATCH --job-name=llm-{name}\n#SBATCH --array=0-{last}\n\
             #SBATCH --cpus-per-task={cpus}\n#SBATCH --output={logs}\n{common}set -euo pipefail\n",
            name = job_name(name),
            last = self.shards - 1,
            cpus = self.cpus,
            logs = sbatch_value("--out", &format!("{}/%x-%A_%a.out", logs.display()))?,
            common = self.common()?,
        ))
    }

    /// The lines the job after an array job (merge, gathering) starts with: the shebang, `comment` (its own
    /// `# ` lines), the job name `llm-{name}-{label}`, one core, its log file in `logs`, partition and time
    /// limit, and `set -euo pipefail`.
    fn after_header(&self, comment: &str, name: &str, label: &str, logs: &Path) -> Result<String> {
        Ok(format!(
            "#!/bin/bash\n{comment}#SBATCH --job-name=llm-{name}-{label}\n#SBATCH --cpus-per-task=1\n\
             #SBATCH --output={logs}\n{common}set -euo pipefail\n",
            name = job_name(name),
            logs = sbatch_value("--out", &format!("{}/%x-%j.out", logs.display()))?,
            common = self.common()?,
        ))
    }

    /// `--set` and `--agents` for the command line of every task, quoted.
    fn scenario_flags(&self) -> String {
        let mut extra = String::new();
        for s in &self.args.sets {
            extra.push_str(&format!(" --set {}", shell_quote(s)));
        }
        if let Some(a) = self.args.agents {
            extra.push_str(&format!(" --agents {a}"));
        }
        extra
    }

    /// Writes the array job's script and the one that runs after it (`label`: `merge`, `gather`) and, with
    /// `--submit`, submits both (the second after the first succeeded), printing the job ids.
    fn write_and_submit(
        &self,
        (array_path, array): (&Path, &str),
        (after, text, label): (&Path, &str, &str),
    ) -> Result<ExitCode> {
        llm_market::io::sweep_out::write_atomic(array_path, array)?;
        llm_market::io::sweep_out::write_atomic(after, text)?;
        println!("wrote {}", array_path.display());
        println!("wrote {}", after.display());
        if self.submit {
            let array_id = sbatch(array_path, None)?;
            let after_id = sbatch(after, Some(&array_id))?;
            println!("array job {array_id}");
            println!("{label} job {after_id}");
        }
        Ok(ExitCode::SUCCESS)
    }

    /// The scripts' folder (`OUT/slurm/`), created, and the absolute paths of the executable and `OUT`.
    fn paths(&self) -> Result<(PathBuf, PathBuf, PathBuf)> {
        if self.shards == 0 {
            anyhow::bail!("--shards must be at least 1");
        }
        let out = abs(self.out);
        // The #SBATCH lines are checked before anything is created.
        self.common()?;
        sbatch_value("--out", &out.display().to_string())?;
        let dir = out.join("slurm");
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok((dir, abs(&std::env::current_exe()?), out))
    }
}

/// A value for an `#SBATCH` line, in double quotes: sbatch splits those lines at white space (a path with a
/// space would end the directive there) and has no escape for a double quote, which is refused, naming `flag`.
fn sbatch_value(flag: &str, value: &str) -> Result<String> {
    if value.contains('"') || value.chars().any(char::is_control) {
        anyhow::bail!(
            "{flag} {value:?}: a Slurm #SBATCH line cannot hold a double quote or a control character; \
             nothing was written"
        );
    }
    Ok(format!("\"{value}\""))
}

/// A Slurm job name from a sweep's or priors file's name: characters other than ASCII letters, digits, `.`,
/// `_` and `-` become `_` (a name is only a label in the queue).
fn job_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || ".-_".contains(c) { c } else { '_' }).collect()
}

fn abs(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn quoted(p: &Path) -> String {
    shell_quote(&p.display().to_string())
}

/// Submits a batch script (after job `after` succeeded, if given) and returns the job id.
fn sbatch(script: &Path, after: Option<&str>) -> Result<String> {
    let mut args = vec!["--parsable".to_string()];
    if let Some(a) = after {
        args.push(format!("--dependency=afterok:{a}"));
    }
    args.push(script.display().to_string());
    let o = std::process::Command::new("sbatch")
        .args(&args)
        .output()
        .context("cannot run sbatch (is Slurm installed and on PATH?)")?;
    if !o.status.success() {
        anyhow::bail!("sbatch {} failed: {}", args.join(" "), String::from_utf8_lossy(&o.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&o.stdout).trim().split(';').next().unwrap_or("").to_string())
}

fn cmd_slurm(path: &Path, job: &SlurmJob, posterior: Option<(PathBuf, u64)>) -> Result<ExitCode> {
    let o = Overrides { sets: job.args.sets.clone(), agents: job.args.agents, ..Default::default() };
    let sweep = experiment::spec::load(path, &o)?;
    let mut extra = job.scenario_flags();
    if let Some((p, draws)) = posterior {
        // Checked as each task will build it (the posterior's parameters, the draws), before anything is written.
        llm_market::io::comparison::sweep_posterior(sweep.clone(), &p, draws, sweep.file.seed)?;
        extra.push_str(&format!(" --posterior {} --draws {draws}", quoted(&abs(&p))));
    }
    let (dir, exe, out) = job.paths()?;
    let shards = job.shards;
    let name = &sweep.file.name;
    let array = format!(
        "{header}exec {exe} sweep {sweep} --shard \"$SLURM_ARRAY_TASK_ID/{shards}\" --jobs \"${{SLURM_CPUS_PER_TASK:-1}}\" --resume \\\n  \
         --out {out}/shards/\"$SLURM_ARRAY_TASK_ID\"{extra}\n",
        header = job.array_header(
            &format!("one shard of sweep {name} per task (written by `llm-market slurm`)."),
            name,
            &dir
        )?,
        exe = quoted(&exe),
        sweep = quoted(&abs(path)),
        out = quoted(&out),
    );
    let shard_dirs: Vec<String> = (0..shards).map(|k| quoted(&out.join("shards").join(k.to_string()))).collect();
    let merge = format!(
        "{header}exec {exe} merge {dirs} --out {out}\n",
        header = job.after_header(
            "# Merge job: runs after every array task succeeded (written by `llm-market slurm`).\n",
            name,
            "merge",
            &dir
        )?,
        exe = quoted(&exe),
        dirs = shard_dirs.join(" "),
        out = quoted(&out),
    );
    job.write_and_submit((&dir.join("array.sbatch"), &array), (&dir.join("merge.sbatch"), &merge, "merge"))
}

/// `calibrate --min-acceptance R`, checked: R in [0, 1).
fn checked_min_acceptance(r: f64) -> Result<f64> {
    if !(0.0..1.0).contains(&r) {
        anyhow::bail!("--min-acceptance {r}: must be in [0, 1)");
    }
    Ok(r)
}

/// `calibrate --fit-until YYYY-MM` as (year, month).
fn fit_until_month(t: Option<String>) -> Result<Option<(i32, u32)>> {
    t.map(|t| {
        llm_market::inference::targets::parse_month(&t)
            .ok_or_else(|| anyhow::anyhow!("--fit-until {t:?}: expected YYYY-MM"))
    })
    .transpose()
}

/// `llm-market slurm PRIORS.toml -- OPTIONS`: a calibration in rounds. Each round is an array job (every
/// task runs `calibrate --shard K/N`, its share of the runs the calibration needs next) and a gathering
/// job after it (`calibrate --gather`), which submits the next round until the calibration is complete.
fn cmd_slurm_calibrate(priors: &Path, job: &SlurmJob, calibrate_args: &[String]) -> Result<ExitCode> {
    // The options are calibrate's: checked here as its command line would be, before anything is written.
    for a in calibrate_args {
        let flag = a.split('=').next().unwrap_or(a);
        if ["--out", "--shard", "--gather", "--resume", "--force", "--jobs", "--set", "--agents"].contains(&flag) {
            anyhow::bail!(
                "{flag} after `--`: the Slurm scripts set it (--set and --agents go before `--`, --out and \
                 --shards are slurm's own)"
            );
        }
    }
    let mut check = vec!["llm-market".to_string(), "calibrate".to_string(), priors.display().to_string()];
    check.extend(calibrate_args.iter().cloned());
    let parsed = <Cli as clap::Parser>::try_parse_from(&check).map_err(|e| {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or("").trim_start_matches("error: ").to_string();
        anyhow::anyhow!("the calibrate options after `--`: {first}")
    })?;
    // The priors, targets, end date and the scenario's overrides checked as the calibration will check them,
    // and the folder: nothing is submitted that every task would refuse.
    if let Command::Calibrate { targets, particles, end, fit_until, min_acceptance, .. } = parsed.command {
        use llm_market::io::calibrate::{CalibrateOptions, setup};
        if particles < 2 {
            anyhow::bail!("--particles must be at least 2");
        }
        checked_min_acceptance(min_acceptance)?;
        let mut opts = CalibrateOptions::new(priors, job.out);
        opts.targets = targets;
        opts.end = end;
        opts.fit_until = fit_until_month(fit_until)?;
        opts.sets = job.args.sets.clone();
        opts.agents = job.args.agents;
        setup(&opts)?;
    }
    if let Some(m) = llm_market::io::folder::read_manifest(&job.out.join("manifest.json"))
        && m["kind"] == "calibration"
        && m["complete"].as_bool() == Some(true)
    {
        anyhow::bail!("{} holds a finished calibration; nothing was written: use another --out", job.out.display());
    }
    let (dir, exe, out) = job.paths()?;
    let shards = job.shards;
    let mut extra = job.scenario_flags();
    for a in calibrate_args {
        extra.push(' ');
        extra.push_str(&shell_quote(a));
    }
    let name = priors.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "calibrate".into());
    let (array_path, gather_path) = (dir.join("calibrate-shards.sbatch"), dir.join("calibrate-gather.sbatch"));
    let calibrate = format!("{} calibrate {} --out {}", quoted(&exe), quoted(&abs(priors)), quoted(&out));
    let array = format!(
        "{header}exec {calibrate} --shard \"$SLURM_ARRAY_TASK_ID/{shards}\" --jobs \"${{SLURM_CPUS_PER_TASK:-1}}\"{extra}\n",
        header = job.array_header(
            &format!(
                "one shard's share of the runs calibration {name} needs next, per task (written by\n\
                 # `llm-market slurm`; the gathering job submits it again until the calibration is complete)."
            ),
            &name,
            &dir
        )?,
    );
    let gather = format!(
        "{header}{calibrate} --gather --jobs 1{extra}\n\
         if ! grep -q '\"complete\": true' {manifest}; then\n  \
         round=$(sbatch --parsable {array_q})\n  \
         sbatch --parsable --dependency=afterok:\"${{round%%;*}}\" {gather_q}\n\
         fi\n",
        header = job.after_header(
            "# Gathering job: runs after every task of a round succeeded; goes as far as the shards' runs allow,\n\
             # and submits the next round until the calibration is complete (written by `llm-market slurm`).\n",
            &name,
            "gather",
            &dir
        )?,
        manifest = quoted(&out.join("manifest.json")),
        array_q = quoted(&array_path),
        gather_q = quoted(&gather_path),
    );
    job.write_and_submit((&array_path, &array), (&gather_path, &gather, "gather"))
}

#[allow(clippy::too_many_arguments)]
fn cmd_compare(
    inputs: &[PathBuf],
    baseline: Option<String>,
    out: Option<PathBuf>,
    (replicates, seed, jobs): (u64, u64, Option<usize>),
    (focus, metrics): (Option<String>, Vec<String>),
    (partial, force, dpi): (bool, bool, Option<u32>),
    (posterior, draws): (Option<PathBuf>, u64),
    args: &SweepArgs,
) -> Result<ExitCode> {
    let out = out.unwrap_or_else(|| PathBuf::from("outputs/compare"));
    let jobs = jobs.unwrap_or_else(default_threads).max(1);
    let opts = CompareOptions {
        inputs: inputs.to_vec(),
        baseline,
        out: out.clone(),
        replicates,
        seed,
        jobs,
        run: run_options((default_threads() / jobs).max(1))?,
        focus,
        partial,
        force,
        dpi,
        sets: args.sets.clone(),
        agents: args.agents,
        command_line: std::env::args().collect(),
        panic_at: test_panic_ticks()?,
        stop: stop_on_signals()?,
        posterior,
        draws,
    };
    let check = |s: &config::Scenario, file: &Path, at_once: u64| {
        memcheck::ensure(&memcheck::scenario_demand(s, Some(file), args.agents, &args.sets, at_once))
    };
    let pb = progress_bar(replicates);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} runs, ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let outcome = llm_market::io::comparison::compare(&opts, &check, &|name: &str, p: Progress| {
        pb.set_message(name.to_string());
        pb.set_length(p.total);
        pb.set_position(p.done);
    });
    pb.finish_and_clear();
    match outcome? {
        CompareOutcome::Interrupted { signal: sig, warnings } => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
            eprintln!(
                "interrupted by {}: the comparison was not written (the finished runs are in {})",
                signal_name(sig),
                out.join("runs").display()
            );
            Ok(ExitCode::from(128 + sig as u8))
        }
        CompareOutcome::Done { comparison, focus, files, warnings } => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
            print!("{}", comparison.table(&focus, &metrics));
            println!();
            println!("wrote {} files to {} (comparison.csv, report.html, charts/)", files.len(), out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Peak resident memory of this process (VmHWM), in bytes, where /proc is available.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 =
        status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

fn cmd_bench(
    agents: u64,
    ticks: u32,
    threads: Option<usize>,
    scenario: Option<&Path>,
    repeats: u32,
    outputs: Option<&Path>,
) -> Result<ExitCode> {
    let threads = threads.unwrap_or_else(default_threads).max(1);
    let s = Arc::new(config::load(scenario, &Overrides { agents: Some(agents), ..Default::default() })?);
    memcheck::ensure(&memcheck::scenario_demand(&s, scenario, Some(agents), &[], 1))?;
    let mut per_user_tick = Vec::new();
    let mut setups = Vec::new();
    let mut writing_share = Vec::new();
    let mut measured_ticks = 0;
    let mut event_stats = (0, 0, 0, 0, 0, 0);
    let mut floor = Vec::new();
    let mut rss = None;
    for _ in 0..repeats.max(1) {
        let t0 = std::time::Instant::now();
        let options = run_options(threads)?;
        let mut sim = Simulation::with_options(s.clone(), 0, &options);
        setups.push(t0.elapsed().as_secs_f64());
        measured_ticks = ticks.min(sim.n_ticks());
        let mut sink = outputs.map(|d| RunOutput::create(d, false)).transpose()?;
        let mut writing = std::time::Duration::ZERO;
        let t1 = std::time::Instant::now();
        let mut stream = |sim: &mut Simulation| -> Result<()> {
            let rows = sim.take_rows();
            if let Some(sink) = sink.as_mut() {
                let t = std::time::Instant::now();
                sink.rows(&rows).map_err(|e| anyhow::anyhow!("writing the rows failed: {e}"))?;
                writing += t.elapsed();
            }
            Ok(())
        };
        stream(&mut sim)?;
        for _ in 0..measured_ticks {
            sim.step().map_err(|e| anyhow::anyhow!("the benchmark run failed: {e}"))?;
            stream(&mut sim)?;
        }
        let elapsed = t1.elapsed().as_secs_f64();
        let events = sim.world().resource::<llm_market::sim::events::EventState>();
        let org_events = sim.world().resource::<llm_market::sim::org_events::OrgEvents>();
        event_stats = (
            events.touched,
            events.rebuilds,
            events.forced_ticks,
            events.full_ticks,
            org_events.touched,
            org_events.rebuilds,
        );
        drop(sim);
        // The model's peak memory, read before the floor's columns are allocated.
        rss = peak_rss_bytes();
        // The hardware floor on as many users, ticks and threads, right after (alternating with the model).
        let mut plain = llm_market::sim::floor::PlainLoop::new(agents as usize, threads, options.vector_test);
        let t2 = std::time::Instant::now();
        for t in 0..measured_ticks {
            plain.tick(t);
        }
        floor.push(t2.elapsed().as_secs_f64() * 1e9 / (agents as f64 * measured_ticks.max(1) as f64));
        std::hint::black_box(plain.checksum());
        per_user_tick.push(elapsed * 1e9 / (agents as f64 * measured_ticks.max(1) as f64));
        writing_share.push(writing.as_secs_f64() / elapsed.max(1e-12));
        if let Some(sink) = sink {
            sink.abort();
        }
    }
    let median = llm_market::analysis::stats::quantile(&per_user_tick, 0.5);
    let floor_median = llm_market::analysis::stats::quantile(&floor, 0.5);
    let ratios: Vec<f64> = per_user_tick.iter().zip(&floor).map(|(m, f)| m / f.max(1e-12)).collect();
    let ratio = llm_market::analysis::stats::quantile(&ratios, 0.5);
    let setup = llm_market::analysis::stats::quantile(&setups, 0.5);
    let line = serde_json::json!({
        "agents": agents,
        "ticks": measured_ticks,
        "threads": threads,
        "repeats": per_user_tick.len(),
        "ns_per_user_tick": (median * 100.0).round() / 100.0,
        "ns_per_user_tick_each": per_user_tick.iter().map(|x| (x * 100.0).round() / 100.0).collect::<Vec<_>>(),
        "run_s": (median * agents as f64 * measured_ticks as f64 / 1e6).round() / 1e3,
        "floor_ns_per_user_tick": (floor_median * 100.0).round() / 100.0,
        "ratio_to_floor": (ratio * 1000.0).round() / 1000.0,
        "setup_s": (setup * 1000.0).round() / 1000.0,
        "peak_rss_bytes": rss,
        "bytes_per_user": rss.map(|r| r / agents.max(1)),
        "scenario": s.params().name,
        "touched_per_user_tick": event_stats.0 as f64 / (agents.max(1) as f64 * measured_ticks.max(1) as f64),
        "rebuilds": event_stats.1,
        "forced_ticks": event_stats.2,
        "full_ticks": event_stats.3,
        "org_touched_per_tick": event_stats.4 as f64 / measured_ticks.max(1) as f64,
        "org_rebuilds": event_stats.5,
        "outputs": outputs.is_some(),
        "output_share": outputs.map(|_| (llm_market::analysis::stats::quantile(&writing_share, 0.5) * 1e4).round() / 1e4),
    });
    println!("{line}");
    eprintln!(
        "{agents} users × {measured_ticks} ticks on {threads} threads: {median:.2} ns per user-tick (median of {}), {ratio:.2}× the plain loop's {floor_median:.2}, set-up {setup:.2} s, peak RSS {} MB",
        per_user_tick.len(),
        rss.map(|r| r / 1_000_000).unwrap_or(0)
    );
    Ok(ExitCode::SUCCESS)
}
