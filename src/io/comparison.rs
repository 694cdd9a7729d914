//! A comparison from start to finish (`llm-market compare`, the Python package's `lm.compare`): scenario
//! files validated and run as replicate sweeps with common random numbers into `OUT/runs/<name>/`, finished
//! run and sweep folders read and verified, every metric compared with the baseline scenario, and
//! `comparison.csv`, the charts, `report.html` and the manifest written into the locked folder. The faces
//! draw progress, check memory and turn a stop into an exit code or an exception.

use super::folder::{Kind, Mode};
use crate::analysis::compare::{Comparison, ScenarioData};
use crate::api::{Overrides, RunOptions, Scenario};
use crate::experiment::runner::{Format, Progress, SweepOptions, TraceMode};
use crate::experiment::spec::{PosteriorDraws, Sweep};
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
    /// `--posterior`: a calibration's posterior.csv; each scenario file then runs under the same `draws`
    /// parameter draws from its last generation (weighted resampling) × `replicates` seeds.
    pub posterior: Option<PathBuf>,
    pub draws: u64,
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
    let posterior = match &opts.posterior {
        None => None,
        Some(p) => {
            if let Some(i) = opts.inputs.iter().find(|i| !i.is_file()) {
                bail!("--posterior runs scenario files; {} is a folder of finished runs", i.display());
            }
            if opts.draws == 0 {
                bail!("--draws must be at least 1");
            }
            Some(Draws::new(p, opts.draws, opts.seed)?)
        }
    };
    // Validate every scenario file before running anything, keeping each one's name.
    let mut names: BTreeMap<PathBuf, String> = BTreeMap::new();
    for i in opts.inputs.iter().filter(|p| p.is_file()) {
        let o = Overrides { sets: opts.sets.clone(), agents: opts.agents, ..Default::default() };
        let s = crate::config::load(Some(i), &o)?;
        check(&s, i, (opts.jobs as u64).min(opts.replicates * posterior.as_ref().map_or(1, |d| d.rows.len() as u64)))?;
        if let Some(d) = &posterior {
            d.check(i, &o)?;
        }
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
            if let Some(signal) = run_replicates(opts, input, &dir, posterior.as_ref(), progress, &mut warnings)? {
                return Ok(CompareOutcome::Interrupted { signal, warnings });
            }
            let points = super::results::load_folder(&dir, false)?;
            match &posterior {
                None => scenarios.extend(points),
                Some(d) => scenarios.push(pool(points, name, d)),
            }
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
        "posterior": opts.posterior.as_ref().map(|p| p.display().to_string()),
        "draws": posterior.as_ref().map(|d| d.rows.len()),
        "draw_rows": posterior.as_ref().map(|d| d.picked.clone()),
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
    posterior: Option<&Draws>,
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
            kind: if posterior.is_some() {
                crate::experiment::design::DesignKind::Zip
            } else {
                crate::experiment::design::DesignKind::Grid
            },
            samples: None,
            second_order: None,
            trajectories: None,
            levels: None,
        },
        parameters: posterior.map(|d| d.parameters(&p)).unwrap_or_default(),
        posterior: None,
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

/// Parameter draws from a posterior: `draws` rows of its last generation, resampled by weight.
struct Draws {
    source: PathBuf,
    paths: Vec<String>,
    rows: Vec<Vec<f64>>,
    /// The posterior rows (particles of the last generation) drawn, in draw order.
    picked: Vec<usize>,
}

impl Draws {
    fn new(path: &Path, draws: u64, seed: u64) -> Result<Draws> {
        let (paths, x, w) = super::calibrate::read_posterior(path)?;
        let picked = crate::inference::abc::resample_weights(&w, draws as usize, seed);
        let rows = picked.iter().map(|i| x[*i].clone()).collect();
        Ok(Draws { source: path.to_path_buf(), paths, rows, picked })
    }

    /// The sweep parameters of the draws over scenario `base` (integers where the scenario has integers).
    fn parameters(&self, base: &crate::config::file::ScenarioFile) -> Vec<crate::experiment::spec::ParameterFile> {
        let full = toml::Value::try_from(base).unwrap_or(toml::Value::Boolean(false));
        self.paths
            .iter()
            .enumerate()
            .map(|(k, path)| {
                let integer = matches!(crate::config::source::lookup(&full, path), Some(toml::Value::Integer(_)));
                let values = self
                    .rows
                    .iter()
                    .map(|r| if integer { toml::Value::Integer(r[k].round() as i64) } else { toml::Value::Float(r[k]) })
                    .collect();
                crate::experiment::spec::ParameterFile {
                    path: path.clone(),
                    values: Some(values),
                    min: None,
                    max: None,
                    scale: Default::default(),
                    integer,
                    until_events: true,
                }
            })
            .collect()
    }

    /// Refuses a scenario file that the draws do not fit (a column that is not one of its keys, a value its
    /// validator refuses), naming the posterior's column.
    fn check(&self, scenario: &Path, o: &Overrides) -> Result<()> {
        let base = crate::config::load(Some(scenario), o)?.params().clone();
        self.check_base(&base, &scenario.display().to_string())
    }

    /// [`Self::check`] for a resolved scenario `base` (called `name` in messages).
    fn check_base(&self, base: &crate::config::file::ScenarioFile, name: &str) -> Result<()> {
        for (k, p) in self.parameters(base).iter().enumerate() {
            for v in p.values.iter().flatten() {
                let sets = vec![format!("{}={v}", p.path)];
                let o = Overrides { sets, until_events: vec![p.path.clone()], ..Default::default() };
                let checked =
                    crate::config::apply_overrides(base.clone(), &o).and_then(|f| Scenario::from_file(f, name));
                if let Err(e) = checked {
                    bail!(
                        "--posterior {}: column {} ({}) does not fit {}: {}",
                        self.source.display(),
                        k + 1,
                        p.path,
                        name,
                        e.problems.iter().map(|q| q.message.clone()).collect::<Vec<_>>().join("; ")
                    );
                }
            }
        }
        Ok(())
    }
}

/// `draws` parameter sets from the last generation of a calibration's `posterior` (resampled by weight with
/// `seed`) for `sweep --posterior`: the sweep crossed with them, the design's own parameters keeping their
/// values (the posterior's columns of the same keys are left out). Every drawn value is checked against the
/// sweep's base scenario first.
pub fn sweep_posterior(sweep: Sweep, posterior: &Path, draws: u64, seed: u64) -> Result<Sweep> {
    if draws == 0 {
        bail!("--draws must be at least 1");
    }
    let mut d = Draws::new(posterior, draws, seed)?;
    let design: Vec<String> = sweep.parameter_paths();
    let keep: Vec<usize> = (0..d.paths.len()).filter(|k| !design.contains(&d.paths[*k])).collect();
    d.paths = keep.iter().map(|k| d.paths[*k].clone()).collect();
    d.rows = d.rows.iter().map(|r| keep.iter().map(|k| r[*k]).collect()).collect();
    d.check_base(&sweep.base, &sweep.source)?;
    // The absolute path, so that resuming from another folder is the same sweep.
    let source = std::path::absolute(posterior).unwrap_or_else(|_| posterior.to_path_buf());
    let draws = PosteriorDraws {
        source: source.display().to_string(),
        rows: d.picked.clone(),
        parameters: d.parameters(&sweep.base),
    };
    let sweep = sweep.with_posterior(Some(draws));
    if sweep.n_runs() > crate::experiment::spec::MAX_RUNS {
        bail!("the sweep crossed with {} draws has more than {} runs", d.rows.len(), crate::experiment::spec::MAX_RUNS);
    }
    Ok(sweep)
}

/// One scenario's posterior runs, loaded as one sweep point per draw, pooled draw-major into one scenario.
fn pool(points: Vec<ScenarioData>, name: &str, d: &Draws) -> ScenarioData {
    let mut out = ScenarioData { name: name.to_string(), ..Default::default() };
    for (k, p) in points.into_iter().enumerate() {
        let draw = p.point.as_ref().map_or(k as u64, |x| x.0);
        if out.source.is_empty() {
            out.description = format!(
                "{} draws of {} × seeds",
                d.rows.len(),
                d.source.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default()
            );
            out.source = p.source.clone();
            out.version = p.version.clone();
            out.spec = p.spec.clone();
            out.agents = p.agents;
        }
        out.failed += p.failed;
        out.draws.extend(std::iter::repeat_n(draw, p.replicates.len()));
        out.replicates.extend(p.replicates);
    }
    out
}
