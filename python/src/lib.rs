//! `llm_market._native`: the Python package's native module, a thin face over the library (`api` to load
//! and run scenarios, `io` for sweeps, Parquet bytes and verified folders). Tables cross into Python as
//! Parquet bytes (the same bytes `--format parquet` writes), read there by pyarrow. Runs release the GIL:
//! the work goes on a worker thread while the calling thread polls every 50 ms for Ctrl-C (which stops the
//! work at its next tick and raises `KeyboardInterrupt`) and reports progress to an optional callback.

use llm_market::api::{self, Overrides, RunOptions, Source};
use llm_market::config::ConfigError;
use llm_market::experiment::runner::{Format, Progress, Stoppable, SweepOptions, TraceMode};
use pyo3::create_exception;
use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

create_exception!(
    _native,
    ScenarioError,
    PyValueError,
    "A scenario or sweep file with problems: args are (message, problems)."
);

/// One problem as Python receives it: (file, key path, line, message).
type ProblemTuple = (Option<String>, Option<String>, Option<usize>, String);

/// A configuration error as `ScenarioError(message, [(file, key path, line, message), …])`.
fn scenario_error(e: ConfigError) -> PyErr {
    let problems: Vec<ProblemTuple> =
        e.problems.iter().map(|p| (p.file.clone(), p.path.clone(), p.line, p.message.clone())).collect();
    ScenarioError::new_err((e.to_string(), problems))
}

fn runtime(e: impl std::fmt::Display) -> PyErr {
    PyRuntimeError::new_err(e.to_string())
}

/// The scenario source: `kind` is "embedded", "file" (a path), "toml" (text) or "json" (a dict, as JSON).
fn source(kind: &str, scenario: Option<String>) -> PyResult<Source> {
    let text = || scenario.clone().ok_or_else(|| PyValueError::new_err(format!("a {kind} scenario needs its text")));
    Ok(match kind {
        "embedded" => Source::Embedded,
        "file" => Source::File(PathBuf::from(text()?)),
        "toml" => Source::Toml { text: text()?, name: "<string>".into(), dir: PathBuf::from(".") },
        "json" => {
            let value: serde_json::Value = serde_json::from_str(&text()?).map_err(runtime)?;
            let toml_value = toml::Value::try_from(value)
                .map_err(|e| PyValueError::new_err(format!("the scenario dict cannot be written as TOML: {e}")))?;
            let text = toml::to_string(&toml_value)
                .map_err(|e| PyValueError::new_err(format!("the scenario dict cannot be written as TOML: {e}")))?;
            Source::Toml { text, name: "<dict>".into(), dir: PathBuf::from(".") }
        }
        _ => return Err(PyValueError::new_err(format!("unknown scenario kind {kind:?}"))),
    })
}

fn overrides(
    sets: Vec<String>,
    seed: Option<u64>,
    agents: Option<u64>,
    record_every: Option<&str>,
) -> PyResult<Overrides> {
    let record_every = record_every
        .map(|r| r.parse().map_err(|e: String| PyValueError::new_err(format!("record_every: {e}"))))
        .transpose()?;
    Ok(Overrides { sets, seed, agents, record_every, ..Default::default() })
}

/// Loads and validates a scenario and checks that one run of it fits in memory.
fn load_checked(
    kind: &str,
    scenario: Option<String>,
    sets: Vec<String>,
    (seed, agents): (Option<u64>, Option<u64>),
    record_every: Option<&str>,
    until_events: Vec<String>,
) -> PyResult<Arc<api::Scenario>> {
    let scenario_text = scenario.clone();
    let o = Overrides { until_events, ..overrides(sets.clone(), seed, agents, record_every)? };
    let scenario = api::load(&source(kind, scenario)?, &o).map_err(scenario_error)?;
    let file = (kind == "file").then(|| PathBuf::from(scenario_text.unwrap_or_default()));
    let demand = llm_market::memcheck::scenario_demand(&scenario, file.as_deref(), agents, &sets, 1);
    llm_market::memcheck::ensure(&demand).map_err(|e| PyValueError::new_err(format!("{e:#}")))?;
    Ok(scenario)
}

/// The cores of this machine (the default thread and job count, as on the command line).
fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A thread count from Python: the cores by default, else 1 to `MAX_THREADS`.
fn thread_count(threads: Option<usize>, default: usize) -> PyResult<usize> {
    match threads.unwrap_or(default) {
        t @ 1..=llm_market::sim::MAX_THREADS => Ok(t),
        t => Err(PyValueError::new_err(format!(
            "threads must be between 1 and {}, got {t}",
            llm_market::sim::MAX_THREADS
        ))),
    }
}

/// Runs `work` on a worker thread with the GIL released; every 50 ms the calling thread checks for Ctrl-C
/// (then sets `stop` to SIGINT and waits for the work to stop) and calls `progress(done, total)`.
fn supervised<T: Send>(
    py: Python<'_>,
    stop: &AtomicUsize,
    counts: &(AtomicU64, AtomicU64),
    progress: Option<&Py<PyAny>>,
    work: impl FnOnce() -> T + Send,
) -> PyResult<T> {
    py.detach(|| {
        std::thread::scope(|s| {
            let handle = s.spawn(work);
            let mut last = (u64::MAX, u64::MAX);
            let mut failure = None;
            while !handle.is_finished() {
                std::thread::sleep(Duration::from_millis(50));
                if failure.is_some() {
                    continue;
                }
                let now = (counts.0.load(Ordering::Relaxed), counts.1.load(Ordering::Relaxed));
                let checked = Python::attach(|py| -> PyResult<()> {
                    py.check_signals()?;
                    if let Some(cb) = progress
                        && now != last
                    {
                        cb.bind(py).call1(now)?;
                    }
                    Ok(())
                });
                last = now;
                if let Err(e) = checked {
                    stop.store(2, Ordering::Relaxed);
                    failure = Some(e);
                }
            }
            let result = handle.join().map_err(|_| PyRuntimeError::new_err("the run panicked (a bug)"))?;
            if let Some(e) = failure {
                return Err(e);
            }
            // The final state (the loop may have missed it) and a Ctrl-C that came in the last moments.
            let now = (counts.0.load(Ordering::Relaxed), counts.1.load(Ordering::Relaxed));
            Python::attach(|py| -> PyResult<()> {
                if let Some(cb) = progress
                    && now != last
                {
                    cb.bind(py).call1(now)?;
                }
                py.check_signals()
            })?;
            Ok(result)
        })
    })
}

/// Loads and validates a scenario; returns its resolved TOML (every default filled in).
#[pyfunction]
#[pyo3(signature = (kind, scenario=None, sets=vec![], seed=None, agents=None))]
fn validate(
    kind: &str,
    scenario: Option<String>,
    sets: Vec<String>,
    seed: Option<u64>,
    agents: Option<u64>,
) -> PyResult<String> {
    let s = api::load(&source(kind, scenario)?, &overrides(sets, seed, agents, None)?).map_err(scenario_error)?;
    Ok(s.to_toml())
}

/// Runs a scenario in memory: returns ([(table, Parquet bytes)], manifest JSON).
#[pyfunction]
#[pyo3(signature = (kind, scenario=None, sets=vec![], seed=None, agents=None, threads=None, record_every=None, progress=None, until_events=vec![]))]
#[allow(clippy::too_many_arguments)]
fn run<'py>(
    py: Python<'py>,
    kind: &str,
    scenario: Option<String>,
    sets: Vec<String>,
    seed: Option<u64>,
    agents: Option<u64>,
    threads: Option<usize>,
    record_every: Option<&str>,
    progress: Option<Py<PyAny>>,
    until_events: Vec<String>,
) -> PyResult<(Bound<'py, PyList>, String)> {
    let scenario = load_checked(kind, scenario, sets, (seed, agents), record_every, until_events)?;
    let threads = thread_count(threads, all_cores())?;
    let started = SystemTime::now();
    let stop = AtomicUsize::new(0);
    let counts = (AtomicU64::new(0), AtomicU64::new(0));
    let result = supervised(py, &stop, &counts, progress.as_ref(), || {
        let mut sink = Stoppable { inner: api::MemorySink::default(), stop: &stop };
        let mut on_tick = |tick: u32, n: u32| {
            counts.0.store(tick as u64, Ordering::Relaxed);
            counts.1.store(n as u64, Ordering::Relaxed);
        };
        let tables = api::run_streaming(&scenario, &RunOptions::threads(threads), &mut sink, &mut on_tick)?;
        Ok::<_, api::SimError>(api::RunResult::from_parts(sink.inner, tables))
    })?;
    let result = result.map_err(|e| PyRuntimeError::new_err(format!("the run failed: {e}")))?;
    let thresholds = &scenario.params().revenue_thresholds_usd;
    let tables = py
        .detach(|| -> anyhow::Result<Vec<(&'static str, Vec<u8>)>> {
            llm_market::io::outputs::run_csvs(&result, thresholds)?
                .into_iter()
                .map(|(name, csv)| Ok((name, llm_market::io::parquet::csv_bytes_to_parquet(name, &csv)?)))
                .collect()
        })
        .map_err(runtime)?;
    let mut manifest = llm_market::io::manifest::run_manifest(&scenario, threads, started, SystemTime::now());
    manifest["kind"] = serde_json::json!("run");
    manifest["format"] = serde_json::json!("in memory");
    manifest["files"] = serde_json::Value::Null;
    let list = PyList::empty(py);
    for (name, bytes) in tables {
        list.append((name, PyBytes::new(py, &bytes)))?;
    }
    Ok((list, manifest.to_string()))
}

/// Runs (or resumes) a sweep file into `out`; returns the report as a dict.
#[pyfunction]
#[pyo3(signature = (path, out, sets=vec![], agents=None, jobs=None, threads=None, traces="none", format="csv", resume=false, repair=false, force=false, progress=None))]
#[allow(clippy::too_many_arguments)]
fn sweep<'py>(
    py: Python<'py>,
    path: PathBuf,
    out: PathBuf,
    sets: Vec<String>,
    agents: Option<u64>,
    jobs: Option<usize>,
    threads: Option<usize>,
    traces: &str,
    format: &str,
    resume: bool,
    repair: bool,
    force: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let o = Overrides { sets: sets.clone(), agents, ..Default::default() };
    let sweep = llm_market::experiment::spec::load(&path, &o).map_err(scenario_error)?;
    let cores = all_cores();
    let jobs = jobs.unwrap_or(cores).max(1);
    let at_once = (jobs as u64).min(sweep.n_runs());
    let demand = llm_market::memcheck::sweep_demand(&sweep, &path, agents, &sets, at_once);
    llm_market::memcheck::check_sweep(&demand, false).map_err(|e| PyValueError::new_err(format!("{e:#}")))?;
    let traces: TraceMode = traces.parse().map_err(|e: String| PyValueError::new_err(format!("traces: {e}")))?;
    let format: Format = format.parse().map_err(|e: String| PyValueError::new_err(format!("format: {e}")))?;
    let stop = Arc::new(AtomicUsize::new(0));
    let opts = SweepOptions {
        out,
        jobs,
        shard: None,
        resume,
        repair,
        force,
        traces,
        format,
        command_line: vec!["python".into(), "llm_market.sweep".into(), path.display().to_string()],
        run: RunOptions::threads(thread_count(threads, (cores / jobs).max(1))?),
        panic_at: vec![],
        stop: stop.clone(),
    };
    let counts = (AtomicU64::new(0), AtomicU64::new(0));
    let report = supervised(py, &stop, &counts, progress.as_ref(), || {
        llm_market::io::sweep_run::run_sweep(&sweep, &opts, &|p: Progress| {
            counts.0.store(p.done, Ordering::Relaxed);
            counts.1.store(p.total, Ordering::Relaxed);
        })
    })?
    .map_err(|e| PyRuntimeError::new_err(format!("{e:#}")))?;
    if report.interrupted.is_some() {
        return Err(PyKeyboardInterrupt::new_err("the sweep was interrupted; resume it with resume=True"));
    }
    let d = PyDict::new(py);
    d.set_item("total", report.total)?;
    d.set_item("ran", report.ran)?;
    d.set_item("resumed", report.resumed)?;
    d.set_item("repaired", report.repaired)?;
    d.set_item("failed", report.failed)?;
    Ok(d)
}

/// Compares scenario files (run here as replicates with common random numbers) and finished folders into
/// `out`, as `llm-market compare` does; returns the warnings (failed runs).
#[pyfunction]
#[pyo3(signature = (inputs, out, baseline=None, replicates=8, seed=1, jobs=None, threads=None, focus=None, partial=false, force=false, sets=vec![], agents=None, progress=None, dpi=None, posterior=None, draws=16))]
#[allow(clippy::too_many_arguments)]
fn compare(
    py: Python<'_>,
    inputs: Vec<PathBuf>,
    out: PathBuf,
    baseline: Option<String>,
    replicates: u64,
    seed: u64,
    jobs: Option<usize>,
    threads: Option<usize>,
    focus: Option<String>,
    partial: bool,
    force: bool,
    sets: Vec<String>,
    agents: Option<u64>,
    progress: Option<Py<PyAny>>,
    dpi: Option<u32>,
    posterior: Option<PathBuf>,
    draws: u64,
) -> PyResult<Vec<String>> {
    use llm_market::io::comparison::{CompareOptions, CompareOutcome};
    if replicates == 0 {
        return Err(PyValueError::new_err("replicates must be at least 1"));
    }
    let cores = all_cores();
    let jobs = jobs.unwrap_or(cores).max(1);
    let stop = Arc::new(AtomicUsize::new(0));
    let opts = CompareOptions {
        inputs,
        baseline,
        out,
        replicates,
        seed,
        jobs,
        run: RunOptions::threads(thread_count(threads, (cores / jobs).max(1))?),
        focus,
        partial,
        force,
        dpi: check_dpi(dpi)?,
        sets: sets.clone(),
        agents,
        command_line: vec!["python".into(), "llm_market.compare".into()],
        panic_at: vec![],
        stop: stop.clone(),
        posterior,
        draws,
    };
    let check = |s: &api::Scenario, file: &std::path::Path, at_once: u64| {
        llm_market::memcheck::ensure(&llm_market::memcheck::scenario_demand(s, Some(file), agents, &sets, at_once))
    };
    let counts = (AtomicU64::new(0), AtomicU64::new(0));
    let outcome = supervised(py, &stop, &counts, progress.as_ref(), || {
        llm_market::io::comparison::compare(&opts, &check, &|_: &str, p: Progress| {
            counts.0.store(p.done, Ordering::Relaxed);
            counts.1.store(p.total, Ordering::Relaxed);
        })
    })?;
    match outcome {
        Err(e) => match e.downcast::<ConfigError>() {
            Ok(c) => Err(scenario_error(c)),
            Err(e) => Err(PyRuntimeError::new_err(format!("{e:#}"))),
        },
        Ok(CompareOutcome::Interrupted { .. }) => Err(PyKeyboardInterrupt::new_err("the comparison was interrupted")),
        Ok(CompareOutcome::Done { warnings, .. }) => Ok(warnings),
    }
}

/// The calibration table (model against the 2023 data) of a scenario, as CSV text.
#[pyfunction]
#[pyo3(signature = (kind, scenario=None, sets=vec![], seed=None, agents=None, threads=None))]
fn calibration(
    py: Python<'_>,
    kind: &str,
    scenario: Option<String>,
    sets: Vec<String>,
    seed: Option<u64>,
    agents: Option<u64>,
    threads: Option<usize>,
) -> PyResult<String> {
    let scenario = load_checked(kind, scenario, sets, (seed, agents), Some("month"), vec![])?;
    let threads = thread_count(threads, all_cores())?;
    let stop = AtomicUsize::new(0);
    let counts = (AtomicU64::new(0), AtomicU64::new(0));
    let report = supervised(py, &stop, &counts, None, || {
        llm_market::analysis::calibration::calibrate(scenario, &RunOptions::threads(threads), &stop)
    })?
    .map_err(|e| PyRuntimeError::new_err(format!("the calibration run failed: {e}")))?;
    Ok(report.to_csv())
}

/// Reads a verified run or sweep folder: returns (kind, [(table, Parquet bytes)], manifest JSON).
#[pyfunction]
fn load<'py>(py: Python<'py>, path: PathBuf) -> PyResult<(String, Bound<'py, PyList>, String)> {
    let t = py
        .detach(|| llm_market::io::results::folder_tables(&path))
        .map_err(|e| PyValueError::new_err(format!("{e:#}")))?;
    let list = PyList::empty(py);
    for (name, bytes) in &t.tables {
        list.append((name, PyBytes::new(py, bytes)))?;
    }
    Ok((t.kind, list, t.manifest.to_string()))
}

/// A chart resolution as the command line accepts it (`--dpi`, 72–1200).
fn check_dpi(dpi: Option<u32>) -> PyResult<Option<u32>> {
    match dpi {
        Some(d) if !(72..=1200).contains(&d) => {
            Err(PyValueError::new_err(format!("dpi must be in 72..=1200, got {d}")))
        }
        d => Ok(d),
    }
}

/// Analyses a finished sweep folder as `llm-market analyze` does; returns (output folder, notes).
#[pyfunction]
#[pyo3(signature = (sweep, outcomes=vec![], methods=vec![], prim=vec![], out=None, resamples=1000, bootstrap_seed=1, force=false, dpi=None))]
#[allow(clippy::too_many_arguments)]
fn analyze(
    py: Python<'_>,
    sweep: PathBuf,
    outcomes: Vec<String>,
    methods: Vec<String>,
    prim: Vec<String>,
    out: Option<PathBuf>,
    resamples: usize,
    bootstrap_seed: u64,
    force: bool,
    dpi: Option<u32>,
) -> PyResult<(String, Vec<String>)> {
    use llm_market::io::analyze::{AnalyzeOptions, Method};
    let mut opts = AnalyzeOptions::new(sweep);
    opts.outcomes = outcomes;
    if !methods.is_empty() {
        opts.methods =
            methods.iter().map(|m| m.parse::<Method>()).collect::<Result<_, _>>().map_err(PyValueError::new_err)?;
    }
    if resamples < 10 {
        return Err(PyValueError::new_err("resamples must be at least 10"));
    }
    opts.prim = prim;
    opts.out = out;
    opts.bootstrap.resamples = resamples;
    opts.bootstrap.seed = bootstrap_seed;
    opts.force = force;
    opts.dpi = check_dpi(dpi)?;
    opts.command_line = vec!["python".into(), "llm_market.analyze".into()];
    let r =
        py.detach(|| llm_market::io::analyze::analyze(&opts)).map_err(|e| PyValueError::new_err(format!("{e:#}")))?;
    Ok((r.out.display().to_string(), r.notes))
}

/// Calibrates a priors file as `llm-market calibrate` does; returns (output folder, summary).
#[pyfunction]
#[pyo3(signature = (priors, out, targets=None, particles=100, generations=5, sampler=None, min_acceptance=0.0, seeds_per_particle=1, agents=None, end=None, fit_until=None, seed=1, jobs=None, sets=vec![], resume=false, force=false, progress=None, dpi=None))]
#[allow(clippy::too_many_arguments)]
fn calibrate(
    py: Python<'_>,
    priors: PathBuf,
    out: PathBuf,
    targets: Option<PathBuf>,
    particles: usize,
    generations: usize,
    sampler: Option<String>,
    min_acceptance: f64,
    seeds_per_particle: u64,
    agents: Option<u64>,
    end: Option<String>,
    fit_until: Option<String>,
    seed: u64,
    jobs: Option<usize>,
    sets: Vec<String>,
    resume: bool,
    force: bool,
    progress: Option<Py<PyAny>>,
    dpi: Option<u32>,
) -> PyResult<(String, String)> {
    use llm_market::io::calibrate::{CalibrateOptions, CalibrateOutcome};
    let bad = |m: String| PyValueError::new_err(m);
    if !(0.0..1.0).contains(&min_acceptance) {
        return Err(bad(format!("min_acceptance must be in [0, 1), got {min_acceptance}")));
    }
    if generations == 0 || seeds_per_particle == 0 {
        return Err(bad("generations and seeds_per_particle must be at least 1".into()));
    }
    let mut opts = CalibrateOptions::new(priors, out.clone());
    opts.targets = targets;
    opts.particles = particles;
    opts.generations = generations;
    opts.sampler = sampler.map(|s| s.parse()).transpose().map_err(|e: String| bad(format!("sampler: {e}")))?;
    opts.min_acceptance = min_acceptance;
    opts.seeds_per_particle = seeds_per_particle;
    opts.agents = agents;
    opts.end = end
        .map(|d| {
            llm_market::inference::targets::parse_day(&d).ok_or_else(|| bad(format!("end {d:?}: expected YYYY-MM-DD")))
        })
        .transpose()?;
    opts.fit_until = fit_until
        .map(|m| {
            llm_market::inference::targets::parse_month(&m)
                .ok_or_else(|| bad(format!("fit_until {m:?}: expected YYYY-MM")))
        })
        .transpose()?;
    opts.seed = seed;
    opts.jobs = jobs.unwrap_or_else(all_cores).max(1);
    opts.sets = sets;
    opts.resume = resume;
    opts.force = force;
    opts.dpi = check_dpi(dpi)?;
    opts.command_line = vec!["python".into(), "llm_market.calibrate".into()];
    let stop = Arc::new(AtomicUsize::new(0));
    opts.stop = stop.clone();
    let counts = (AtomicU64::new(0), AtomicU64::new(0));
    let outcome = supervised(py, &stop, &counts, progress.as_ref(), || {
        llm_market::io::calibrate::calibrate(&opts, &|_, done, total| {
            counts.0.store(done, Ordering::Relaxed);
            counts.1.store(total, Ordering::Relaxed);
        })
    })?;
    match outcome {
        Ok(CalibrateOutcome::Done { summary, .. }) => Ok((out.display().to_string(), summary)),
        Ok(CalibrateOutcome::Interrupted { .. }) => {
            Err(PyKeyboardInterrupt::new_err("the calibration was interrupted; resume it with resume=True"))
        }
        // Only a shard or a gathering waits, and this function runs neither.
        Ok(CalibrateOutcome::Waiting { .. } | CalibrateOutcome::Complete { .. }) => {
            Err(bad("the calibration is waiting for shards' runs".into()))
        }
        Err(e) => match e.downcast::<ConfigError>() {
            Ok(ce) => Err(scenario_error(ce)),
            Err(e) => Err(bad(format!("{e:#}"))),
        },
    }
}

/// The version of the simulator this module was built from.
#[pyfunction]
fn version() -> String {
    let (v, commit) = llm_market::io::manifest::tool_version();
    match commit {
        Some(c) => format!("{v} ({c})"),
        None => v.to_string(),
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ScenarioError", m.py().get_type::<ScenarioError>())?;
    m.add_function(wrap_pyfunction!(validate, m)?)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(sweep, m)?)?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(compare, m)?)?;
    m.add_function(wrap_pyfunction!(calibration, m)?)?;
    m.add_function(wrap_pyfunction!(analyze, m)?)?;
    m.add_function(wrap_pyfunction!(calibrate, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    Ok(())
}
