//! A comparison from start to finish (`llm-market compare`, the Python package's `lm.compare`): scenario
//! files validated and run as replicate sweeps with common random numbers into `OUT/runs/<name>/`, finished
//! run and sweep folders read and verified, every metric compared with the baseline scenario, and
//! `comparison.csv`, the charts, `report.html` and the manifest written into the locked folder. The faces
//! draw progress, check memory and turn a stop into an exit code or an exception.

use super::folder::{Kind, Mode};
use crate::analysis::compare::{Comparison, ScenarioData};
use crate::api::{Overrides, RunOptions, Scenario};
use crate::experiment::runner::{Format, Progress, SweepOptions, TraceMode};
use anyhow::{Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::SystemTime;

/// What to compare and how.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    /// Scenario files (run here) and finished run or sweep folders (read and verified).
    pub inputs: Vec<PathBuf>,
    /// The scenario the others are compared with (default: the first input's).
    pub baseline: Option<String>,
    pub out: PathBuf,
    pub replicates: u64,
    pub seed: u64,
    /// Runs at once; each run uses `run.threads` worker threads.
    pub jobs: usize,
    pub run: RunOptions,
    /// The firm of the headline rows and charts (default: openai, else the first firm).
    pub focus: Option<String>,
    /// Compare the committed runs of an unfinished sweep folder.
    pub partial: bool,
    /// Move earlier outputs of `out` aside first.
    pub force: bool,
    /// Draw the PNG charts at this resolution (default: 96 dpi, the SVGs' pixel size).
    pub dpi: Option<u32>,
    /// `--set` overrides and `--agents` for every scenario file.
    pub sets: Vec<String>,
    pub agents: Option<u64>,
    /// The command line (or the Python call), for the manifests.
    pub command_line: Vec<String>,
    /// Fault injection for tests: (run_id, tick) pairs.
    pub panic_at: Vec<(u64, u32)>,
    /// Set (to a signal number) to stop: runs in progress stop at their next tick.
    pub stop: Arc<AtomicUsize>,
}

/// How a comparison ended.
pub enum CompareOutcome {
    Done {
        comparison: Comparison,
        /// The firm of the headline rows.
        focus: String,
        /// The files written (comparison.csv, charts, report.html).
        files: Vec<PathBuf>,
        /// Warnings for the face to show (failed runs, partial sweeps).
        warnings: Vec<String>,
    },
    /// Stopped by `stop` (its value): the finished runs are in `OUT/runs/`, nothing else was written; the
    /// warnings of the scenarios run before.
    Interrupted { signal: usize, warnings: Vec<String> },
}

/// Runs a comparison. `check(scenario, file, runs at once)` is called for every scenario file before anything
/// runs (the command line checks memory there); `progress(name, p)` as each scenario's runs finish.
pub fn compare(
    opts: &CompareOptions,
    check: &dyn Fn(&Scenario, &Path, u64) -> Result<()>,
    progress: &(dyn Fn(&str, Progress) + Sync),
) -> Result<CompareOutcome> {
    let started = SystemTime::now();
    let out = &opts.out;
    // Validate every scenario file before running anything, keeping each one's name.
    let mut names: BTreeMap<PathBuf, String> = BTreeMap::new();
    for i in opts.inputs.iter().filter(|p| p.is_file()) {
        let o = Overrides { sets: opts.sets.clone(), agents: opts.agents, ..Default::default() };
        let s = crate::config::load(Some(i), &o)?;
        check(&s, i, (opts.jobs as u64).min(opts.replicates))?;
        let name = s.params().name.clone();
        if let Some((other, _)) = names.iter().find(|(_, n)| **n == name) {
            bail!(
                "{} and {} are both named {name:?}: their runs would go to the same folder {}; give them different `name`s",
                other.display(),
                i.display(),
                out.join("runs").join(&name).display()
            );
        }
        names.insert(i.clone(), name);
    }
    // A stop before anything is written leaves nothing, not even the folder.
    let stopped = || match opts.stop.load(std::sync::atomic::Ordering::Relaxed) {
        0 => None,
        signal => Some(signal),
    };
    // Finished folders are read and verified before anything is run or written.
    let mut loaded = BTreeMap::new();
    for input in opts.inputs.iter().filter(|p| !names.contains_key(*p)) {
        if let Some(signal) = stopped() {
            return Ok(CompareOutcome::Interrupted { signal, warnings: Vec::new() });
        }
        loaded.insert(input.clone(), super::results::load_folder(input, opts.partial)?);
    }
    if let Some(signal) = stopped() {
        return Ok(CompareOutcome::Interrupted { signal, warnings: Vec::new() });
    }
    let _lock = super::folder::claim(out, Kind::Comparison, if opts.force { Mode::Force } else { Mode::Fresh })?;
    let mut scenarios: Vec<ScenarioData> = Vec::new();
    let mut warnings = Vec::new();
    for input in &opts.inputs {
        if let Some(name) = names.get(input) {
            let dir = out.join("runs").join(name);
            if let Some(signal) = run_replicates(opts, input, &dir, progress, &mut warnings)? {
                return Ok(CompareOutcome::Interrupted { signal, warnings });
            }
            scenarios.extend(super::results::load_folder(&dir, false)?);
        } else {
            scenarios.extend(loaded.remove(input).unwrap_or_default());
        }
    }
    if let Some(signal) = stopped() {
        return Ok(CompareOutcome::Interrupted { signal, warnings });
    }
    let comparison = crate::analysis::compare::compare(&scenarios, opts.baseline.as_deref(), 0.95)
        .map_err(|e| anyhow::anyhow!("cannot compare: {e}"))?;
    let focus = opts.focus.clone().unwrap_or_else(|| {
        if comparison.firms.iter().any(|f| f == "openai") {
            "openai".into()
        } else {
            comparison.firms.first().cloned().unwrap_or_default()
        }
    });
    let files = super::report::write_comparison(out, &comparison, &scenarios, &focus, (&opts.command_line, opts.dpi))?;
    let (version, commit) = super::manifest::tool_version();
    let m = serde_json::json!({
        "tool": "llm-market",
        "kind": "comparison",
        "version": version,
        "git_commit": commit,
        "command_line": opts.command_line,
        "inputs": opts.inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "scenarios": scenarios.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
        "partial": opts.partial,
        "start_time": super::manifest::iso(started),
        "end_time": super::manifest::iso(SystemTime::now()),
    });
    super::manifest::write(&out.join("manifest.json"), &m)?;
    Ok(CompareOutcome::Done { comparison, focus, files, warnings })
}

/// Runs a scenario file `replicates` times (common random numbers) into `dir` as a one-point sweep.
/// Returns the signal that interrupted it, if one did.
fn run_replicates(
    opts: &CompareOptions,
    path: &Path,
    dir: &Path,
    progress: &(dyn Fn(&str, Progress) + Sync),
    warnings: &mut Vec<String>,
) -> Result<Option<usize>> {
    let mut sets = vec!["record_every=month".to_string()];
    sets.extend(opts.sets.iter().cloned());
    let o = Overrides { sets: sets.clone(), agents: opts.agents, ..Default::default() };
    let base = crate::config::load(Some(path), &o)?;
    let p = base.params().clone();
    let file = crate::experiment::spec::SweepFile {
        name: p.name.clone(),
        description: p.description.clone(),
        scenario: path.display().to_string(),
        seed: opts.seed,
        replicates: opts.replicates,
        set: sets,
        design: crate::experiment::spec::DesignFile {
            kind: crate::experiment::design::DesignKind::Grid,
            samples: None,
            second_order: None,
            trajectories: None,
            levels: None,
        },
        parameters: vec![],
    };
    let sweep = crate::experiment::spec::Sweep::new(file, path.display().to_string(), p);
    let sweep_opts = SweepOptions {
        out: dir.to_path_buf(),
        jobs: opts.jobs,
        shard: None,
        resume: false,
        repair: false,
        force: false,
        traces: TraceMode::All,
        format: Format::Csv,
        command_line: opts.command_line.clone(),
        run: opts.run.clone(),
        panic_at: opts.panic_at.clone(),
        stop: opts.stop.clone(),
    };
    let name = sweep.file.name.clone();
    let report = super::sweep_run::run_sweep(&sweep, &sweep_opts, &|p: Progress| progress(&name, p))?;
    if report.interrupted.is_some() {
        return Ok(report.interrupted);
    }
    if report.failed > 0 {
        warnings.push(format!(
            "{} of {} runs of {} failed; see {}",
            report.failed,
            report.total,
            path.display(),
            dir.join("runs.csv").display()
        ));
    }
    Ok(None)
}
