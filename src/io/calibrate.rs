//! A calibration from start to finish (`llm-market calibrate`, `lm.calibrate`): the priors file and targets
//! validated, ABC-SMC (`inference::abc`) run with every candidate's K runs executed in parallel, each finished
//! run appended to `simulations.csv` (the checkpoint: `--resume` after a kill reuses every run it holds, so
//! the result is the same bytes), and at the end `posterior.csv`, `generations.csv`, `predictive.csv`,
//! `identification.csv`, the sorted `simulations.csv`, the charts, `report.html` and the manifest written
//! into the locked folder.

use super::folder::{Kind, Mode};
use super::sweep_out::write_atomic;
use crate::api::{self, Overrides, RunOptions};
use crate::experiment::runner::{Shard, Stoppable, panic_text};
use crate::inference::abc::{self, AbcOptions, Candidate, Ending, Observed, Population, Sampler};
use crate::inference::prior::{self, Priors};
use crate::inference::targets::{self, Target};
use crate::model::rng::mix64;
use anyhow::{Context, Result, bail};
use chrono::Datelike;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

/// What to calibrate and how.
#[derive(Clone, Debug)]
pub struct CalibrateOptions {
    pub priors: PathBuf,
    /// A targets CSV (default: the built-in `data/calibration_2023.csv`).
    pub targets: Option<PathBuf>,
    pub particles: usize,
    /// PMC or MCMC moves (default: PMC when particles are at least 5 × parameters, else MCMC).
    pub sampler: Option<Sampler>,
    /// The most generations, counting generation 0 (the prior).
    pub generations: usize,
    /// Stop after a generation whose acceptance rate is below this.
    pub min_acceptance: f64,
    /// Runs (seeds) per candidate; its summaries are their means.
    pub seeds_per_particle: u64,
    pub agents: Option<u64>,
    /// Last simulated day (default: the last day of the latest target's period).
    pub end: Option<chrono::NaiveDate>,
    /// Fit only the targets up to this month (`YYYY-MM`); later ones are predicted (the hold-out check).
    pub fit_until: Option<(i32, u32)>,
    /// Calibration seed: candidates and run seeds derive from it.
    pub seed: u64,
    pub jobs: usize,
    pub out: PathBuf,
    pub resume: bool,
    pub force: bool,
    /// Run only this shard's share of the runs (`--shard K/N`), in `out/shards/K/`: see [`calibrate`].
    pub shard: Option<Shard>,
    /// Gather the shards' runs and go as far as they allow, running nothing (`--gather`; implies resume).
    pub gather: bool,
    pub sets: Vec<String>,
    pub run: RunOptions,
    pub dpi: Option<u32>,
    pub command_line: Vec<String>,
    /// Set (to a signal number) to stop: runs in progress stop at their next tick.
    pub stop: Arc<AtomicUsize>,
}

impl CalibrateOptions {
    pub fn new(priors: impl Into<PathBuf>, out: impl Into<PathBuf>) -> CalibrateOptions {
        CalibrateOptions {
            priors: priors.into(),
            targets: None,
            particles: 100,
            sampler: None,
            generations: 5,
            min_acceptance: 0.0,
            seeds_per_particle: 1,
            agents: None,
            end: None,
            fit_until: None,
            seed: 1,
            jobs: 1,
            out: out.into(),
            resume: false,
            force: false,
            shard: None,
            gather: false,
            sets: Vec::new(),
            run: RunOptions::default(),
            dpi: None,
            command_line: Vec::new(),
            stop: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// How a calibration ended.
pub enum CalibrateOutcome {
    Done {
        /// The finished generations.
        populations: Vec<Population>,
        /// Why it stopped (generations done, low acceptance, a generation that reached its candidate cap).
        ending: Ending,
        files: Vec<PathBuf>,
        /// The terminal summary.
        summary: String,
    },
    /// Stopped by `stop` (its value): the finished runs are in simulations.csv; `--resume` continues.
    Interrupted { signal: usize },
    /// A shard ran its share of the runs the calibration needs next, or `--gather` found runs missing: the
    /// next round of shards continues. `generation` is where runs are missing (`None`: none are, and
    /// `--gather` in the calibration's folder writes the outputs); `missing` counts them, `ran` is this
    /// process's runs.
    Waiting { generation: Option<u32>, missing: u64, ran: u64 },
    /// A shard or `--gather` found the calibration in `out` complete (with these settings): nothing to do.
    Complete { runs: u64 },
}

/// Everything a calibration's runs and outputs need.
pub struct Setup {
    pub priors: Priors,
    pub targets: Vec<Target>,
    pub observed: Observed,
    pub end: chrono::NaiveDate,
}

/// Validates the priors (with `--set`, `--agents`, monthly recording and the end date) and the targets.
pub fn setup(opts: &CalibrateOptions) -> Result<Setup> {
    let targets = match &opts.targets {
        None => targets::builtin(),
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            targets::parse(&text, &p.display().to_string()).map_err(|e| anyhow::anyhow!("{e}"))?
        }
    };
    let end = opts.end.unwrap_or_else(|| targets::last_day(&targets));
    let mut sets = vec!["record_every=month".to_string(), format!("end={end}")];
    sets.extend(opts.sets.iter().cloned());
    let priors = prior::load(&opts.priors, &Overrides { sets, agents: opts.agents, ..Default::default() })?;
    if let Some(t) = targets.iter().find(|t| t.metric == "result_usd" && t.month.0 != priors.base.start.0.year()) {
        bail!(
            "target {} (line {}): a year's result can only be computed for the year the run starts in ({})",
            t.id,
            t.line,
            priors.base.start.0.year()
        );
    }
    if let Some(t) = targets.iter().find(|t| !priors.base.firms.iter().any(|f| f.id == t.firm)) {
        bail!(
            "target {} (line {}) is about firm {:?}, which the scenario of {} does not have",
            t.id,
            t.line,
            t.firm,
            opts.priors.display()
        );
    }
    let start = priors.base.start.0;
    if let Some(t) = targets.iter().find(|t| targets_day(t) > end || targets_day(t) < start) {
        bail!(
            "target {} (line {}) is outside the simulated period {start}..{end}; change --end or the targets",
            t.id,
            t.line
        );
    }
    let fit: Vec<bool> = targets.iter().map(|t| opts.fit_until.is_none_or(|m| t.month <= m)).collect();
    if !fit.iter().any(|f| *f) {
        bail!("--fit-until leaves no target to fit");
    }
    let observed = Observed {
        values: targets.iter().map(Target::observed).collect(),
        se: targets.iter().map(Target::summary_se).collect(),
        fit,
    };
    Ok(Setup { priors, targets, observed, end })
}

fn targets_day(t: &Target) -> chrono::NaiveDate {
    targets::last_day(std::slice::from_ref(t))
}

/// The seed of run `k` of candidate `index` of generation `generation`: fresh for every candidate (ABC needs
/// independent simulations), 63 bits.
pub fn run_seed(seed: u64, generation: u32, index: u64, k: u64) -> u64 {
    mix64(mix64(mix64(seed ^ 0x5345_4544) ^ generation as u64) ^ index.wrapping_mul(1 << 20).wrapping_add(k)) >> 1
}

/// One finished run: its key and each target's model value (None: it failed).
type RunKey = (u32, u64, u64);

/// The runs already done (from the checkpoint) and the file new ones are appended to.
struct Journal {
    done: BTreeMap<RunKey, Option<Vec<f64>>>,
    file: std::fs::File,
    /// The first failures of this process's runs: (generation, candidate, run) and why.
    failures: Vec<String>,
}

fn journal_header(targets: &[Target]) -> String {
    let mut h = "generation,candidate,run,seed,status".to_string();
    for t in targets {
        h.push(',');
        h.push_str(&t.id);
    }
    h
}

fn journal_line(key: RunKey, seed: u64, values: &Option<Vec<f64>>, n: usize) -> String {
    let mut s = format!("{},{},{},{seed},{}", key.0, key.1, key.2, if values.is_some() { "ok" } else { "failed" });
    for i in 0..n {
        s.push(',');
        if let Some(v) = values {
            s.push_str(&format!("{}", v[i]));
        }
    }
    s
}

/// The whole journal, sorted by run key: what a resume rewrites and what the finished calibration keeps.
fn journal_text(header: &str, done: &BTreeMap<RunKey, Option<Vec<f64>>>, seed: u64, n: usize) -> String {
    let mut text = format!("{header}\n");
    for (k, v) in done {
        text.push_str(&journal_line(*k, run_seed(seed, k.0, k.1, k.2), v, n));
        text.push('\n');
    }
    text
}

/// Reads the checkpoint; a torn last line (a kill during a write) is dropped, any other damage refused.
fn read_journal(path: &Path, header: &str, n: usize) -> Result<BTreeMap<RunKey, Option<Vec<f64>>>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines: Vec<&str> = text.split('\n').collect();
    let torn = !text.ends_with('\n');
    if torn {
        lines.pop();
    } else {
        lines.pop(); // the empty string after the last newline
    }
    if lines.first() != Some(&header) {
        bail!(
            "{}: its header is not this calibration's (targets changed?); use --force to start afresh",
            path.display()
        );
    }
    let mut done = BTreeMap::new();
    for (i, l) in lines.iter().enumerate().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        let parsed = (|| -> Option<(RunKey, Option<Vec<f64>>)> {
            if f.len() != 5 + n {
                return None;
            }
            let key = (f[0].parse().ok()?, f[1].parse().ok()?, f[2].parse().ok()?);
            let values = match f[4] {
                "ok" => Some(f[5..].iter().map(|x| x.parse::<f64>().ok()).collect::<Option<Vec<f64>>>()?),
                "failed" => None,
                _ => return None,
            };
            Some((key, values))
        })();
        match parsed {
            Some((k, v)) => {
                done.insert(k, v);
            }
            None => bail!("{} line {} is damaged: {l:?}; use --force to start afresh", path.display(), i + 1),
        }
    }
    Ok(done)
}

/// Runs a calibration. `progress(generation, runs done in this batch, runs in the batch)` as runs finish.
pub fn calibrate(opts: &CalibrateOptions, progress: &(dyn Fn(u32, u64, u64) + Sync)) -> Result<CalibrateOutcome> {
    let started = SystemTime::now();
    if opts.particles < 2 {
        bail!("--particles must be at least 2");
    }
    if opts.seeds_per_particle == 0 {
        bail!("--seeds-per-particle must be at least 1");
    }
    if opts.generations == 0 {
        bail!("--generations must be at least 1");
    }
    let su = setup(opts)?;
    let n_t = su.targets.len();
    let dims = su.priors.priors.len();
    let abc_opts = AbcOptions {
        sampler: opts.sampler.unwrap_or(if opts.particles >= 5 * dims { Sampler::Pmc } else { Sampler::Mcmc }),
        particles: opts.particles,
        generations: opts.generations,
        min_acceptance: opts.min_acceptance,
        alpha: 0.5,
        seed: opts.seed,
        max_candidates: 0,
    };
    let spec_hash = spec_hash(opts, &su, &abc_opts);
    let out = &opts.out;
    // A shard keeps its own runs in its own folder (always resumed: it is scratch for the calibration in
    // `out`), and reads the calibration's journal for the runs gathered so far.
    let dir = match opts.shard {
        Some(s) => out.join("shards").join(s.index.to_string()),
        None => out.clone(),
    };
    let mode =
        if opts.shard.is_some() { Mode::Resume } else { Mode::from_flags(opts.force, opts.resume || opts.gather) };
    let _lock = super::folder::claim(&dir, Kind::Calibration, mode)?;
    if mode == Mode::Force && opts.shard.is_none() && out.join("shards").exists() {
        // The shards' runs belong to the calibration moved aside: they go with it.
        let backup = super::folder::move_aside(out, &["shards".to_string()])?;
        eprintln!("moved the earlier shards of {} to {}", out.display(), backup.display());
    }
    let mpath = dir.join("manifest.json");
    let jpath = dir.join("simulations.csv");
    let header = journal_header(&su.targets);
    let (version, commit) = super::manifest::tool_version();
    let mut manifest = serde_json::json!({
        "tool": "llm-market",
        "kind": "calibration",
        "complete": false,
        "version": version,
        "git_commit": commit,
        "command_line": opts.command_line,
        "priors": opts.priors.display().to_string(),
        "targets": opts.targets.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "data/calibration_2023.csv (built in)".into()),
        "spec_hash": spec_hash,
        "particles": opts.particles,
        "generations": opts.generations,
        "min_acceptance": opts.min_acceptance,
        "seeds_per_particle": opts.seeds_per_particle,
        "agents": su.priors.base.agents,
        "end": su.end.to_string(),
        "fit_until": opts.fit_until.map(|(y, m)| format!("{y}-{m:02}")),
        "seed": opts.seed,
        "parameters": su.priors.paths(),
        "start_time": super::manifest::iso(started),
    });
    if let Some(s) = opts.shard {
        manifest["shard"] = serde_json::json!(format!("{}/{}", s.index, s.count));
    }
    let resuming = opts.resume || opts.gather || opts.shard.is_some();
    // A shard or a gathering of a calibration that is complete has nothing to do.
    if opts.shard.is_some() || opts.gather {
        let main = super::folder::read_manifest(&out.join("manifest.json"));
        if let Some(m) =
            main.filter(|m| m["complete"].as_bool() == Some(true) && m["spec_hash"] == manifest["spec_hash"])
        {
            return Ok(CalibrateOutcome::Complete { runs: m["runs"].as_u64().unwrap_or(0) });
        }
    }
    // This folder's own runs (what its journal holds). A shard's runs do not depend on the shard count, so
    // a shard folder resumes under another count.
    let own = match super::folder::read_manifest(&mpath) {
        Some(old) if resuming => {
            if old["spec_hash"] != manifest["spec_hash"] {
                let how = if opts.shard.is_some() {
                    format!("remove {} (a shard's scratch: what was gathered is kept)", dir.display())
                } else {
                    "use the same command to resume, or --force to start afresh".to_string()
                };
                bail!(
                    "{} holds a calibration with other settings (priors, targets, particles, seeds or agents); \
                     nothing was written: {how}",
                    dir.display()
                );
            }
            if old["complete"].as_bool() == Some(true) {
                bail!("{} holds a finished calibration; nothing to resume (--force starts afresh)", dir.display());
            }
            manifest["start_time"] = old["start_time"].clone();
            // A journal without one complete line (a kill while its header was written) holds nothing.
            let complete = std::fs::read(&jpath).is_ok_and(|b| b.contains(&b'\n'));
            if complete { read_journal(&jpath, &header, n_t)? } else { BTreeMap::new() }
        }
        _ => BTreeMap::new(),
    };
    // Every run known: this folder's, and a shard's calibration journal or the calibration's shards.
    let mut done = own.clone();
    if opts.shard.is_some() {
        for (k, v) in gathered_runs(out, &manifest, &header, n_t)? {
            done.entry(k).or_insert(v);
        }
    } else if resuming {
        for shard in shard_folders(out) {
            for (k, v) in gathered_runs(&shard, &manifest, &header, n_t)? {
                done.entry(k).or_insert(v);
            }
        }
    }
    super::manifest::write(&mpath, &manifest)?;
    // The journal holds this folder's runs: a shard's own, or all the calibration has (those gathered from
    // shards included).
    let written = if opts.shard.is_some() { &own } else { &done };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&jpath)
        .with_context(|| format!("cannot open {}", jpath.display()))?;
    if written.is_empty() {
        file.set_len(0)?;
        writeln!(file, "{header}")?;
    } else {
        // Drop a torn last line by rewriting what was read (and add what was gathered).
        write_atomic(&jpath, journal_text(&header, written, opts.seed, n_t))?;
        file = std::fs::OpenOptions::new().append(true).open(&jpath)?;
    }
    let journal = Mutex::new(Journal { done, file, failures: Vec::new() });
    let ran = Mutex::new(0u64);
    let k_runs = opts.seeds_per_particle;
    let mut timing: Vec<f64> = Vec::new();
    let mut gen_started = Instant::now();
    let mut evaluate = |batch: &[Candidate]| -> Result<Vec<Option<Vec<f64>>>, Stop> {
        let generation = batch.first().map_or(0, |c| c.generation);
        let todo: Vec<(usize, RunKey)> = {
            let j = journal.lock().expect("journal");
            batch
                .iter()
                .enumerate()
                .flat_map(|(i, c)| (0..k_runs).map(move |k| (i, (c.generation, c.index, k))))
                .filter(|(_, key)| !j.done.contains_key(key))
                .collect()
        };
        // A shard runs its share of what is missing; `--gather` runs nothing.
        let mine: Vec<(usize, RunKey)> = match opts.shard {
            _ if opts.gather => Vec::new(),
            Some(s) => todo.iter().copied().filter(|(_, key)| in_shard(*key, k_runs, s)).collect(),
            None => todo.clone(),
        };
        run_batch(opts, &su, batch, &mine, &journal, progress, generation)?;
        *ran.lock().expect("ran") += mine.len() as u64;
        let missing = (todo.len() - mine.len()) as u64;
        if missing > 0 {
            return Err(Stop::Waiting { generation, missing });
        }
        let j = journal.lock().expect("journal");
        Ok(batch
            .iter()
            .map(|c| {
                let runs: Option<Vec<&Vec<f64>>> =
                    (0..k_runs).map(|k| j.done.get(&(c.generation, c.index, k)).and_then(|v| v.as_ref())).collect();
                let runs = runs?;
                let s: Vec<f64> = (0..n_t)
                    .map(|i| runs.iter().map(|r| su.targets[i].summary(r[i])).sum::<f64>() / k_runs as f64)
                    .collect();
                Some(s)
            })
            .collect())
    };
    let mut on_generation = |p: &Population| -> Result<(), Stop> {
        timing.push(gen_started.elapsed().as_secs_f64());
        gen_started = Instant::now();
        eprintln!(
            "generation {}: tolerance {:.3}, acceptance {:.1}% ({} of {} candidates), ESS {:.0}",
            p.generation,
            p.tolerance,
            100.0 * p.acceptance,
            p.particles.len(),
            p.proposed,
            p.ess
        );
        Ok(())
    };
    let result = abc::run(&abc_opts, dims, &su.observed, &mut evaluate, &mut on_generation);
    let (pops, ending) = match result {
        Ok(x) => x,
        Err(Stop::Signal(signal)) => return Ok(CalibrateOutcome::Interrupted { signal }),
        Err(Stop::Error(e)) => return Err(e),
        Err(Stop::Waiting { generation, missing }) => {
            let ran = *ran.lock().expect("ran");
            return Ok(CalibrateOutcome::Waiting { generation: Some(generation), missing, ran });
        }
    };
    if opts.shard.is_some() {
        // Every run is there: the calibration's folder writes the outputs (`--gather`).
        return Ok(CalibrateOutcome::Waiting { generation: None, missing: 0, ran: *ran.lock().expect("ran") });
    }
    if pops.is_empty() {
        bail!(
            "generation 0 found no candidate whose runs all succeeded in {} tries; see {}",
            50 * opts.particles,
            jpath.display()
        );
    }
    // The outputs, then the sorted journal and the finished manifest.
    let j = journal.into_inner().expect("journal");
    let mut files = super::calibration_report::write(
        out,
        &super::calibration_report::Context { su: &su, pops: &pops, runs: &j.done, k_runs, opts },
    )?;
    drop(j.file);
    write_atomic(&jpath, journal_text(&header, &j.done, opts.seed, n_t))?;
    files.push(jpath);
    let runs: usize = j.done.len();
    manifest["complete"] = serde_json::json!(true);
    manifest["ending"] = serde_json::json!(match &ending {
        Ending::Generations => "generations".to_string(),
        Ending::MinAcceptance => "min_acceptance".to_string(),
        Ending::CandidateCap(t) => format!("generation {t} reached its candidate cap; it is not kept"),
    });
    manifest["runs"] = serde_json::json!(runs);
    let failed = j.done.values().filter(|v| v.is_none()).count();
    manifest["failed_runs"] = serde_json::json!(failed);
    manifest["first_failures"] = serde_json::json!(j.failures);
    manifest["seconds_per_generation"] = serde_json::json!(timing);
    manifest["end_time"] = serde_json::json!(super::manifest::iso(SystemTime::now()));
    super::manifest::write(&mpath, &manifest)?;
    let mut summary = super::calibration_report::summary_text(&su, &pops, &ending, runs);
    if failed > 0 {
        summary.push_str(&format!(
            "\nwarning: {failed} runs failed (their candidates were rejected); the first: {}",
            j.failures.first().cloned().unwrap_or_else(|| "in an earlier process".into())
        ));
    }
    Ok(CalibrateOutcome::Done { populations: pops, ending, files, summary })
}

/// Why the evaluator stopped.
enum Stop {
    Signal(usize),
    Error(anyhow::Error),
    /// Runs of generation `generation` are missing: other shards' share, or (`--gather`) any.
    Waiting {
        generation: u32,
        missing: u64,
    },
}

/// Whether run `key` (generation, candidate, run) is in shard `s`'s share: candidates' runs dealt out in
/// turn, so that each batch is shared evenly.
fn in_shard(key: RunKey, k_runs: u64, s: Shard) -> bool {
    (key.1.wrapping_mul(k_runs).wrapping_add(key.2)) % s.count == s.index
}

/// The shard folders of the calibration in `out` (`out/shards/K/`), in order of K.
fn shard_folders(out: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<(u64, PathBuf)> = std::fs::read_dir(out.join("shards"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
        .filter(|(_, p): &(u64, PathBuf)| p.join("manifest.json").is_file())
        .collect();
    dirs.sort();
    dirs.into_iter().map(|(_, p)| p).collect()
}

/// The runs in the journal of another folder of the same calibration (the calibration's own, read by a
/// shard; or a shard's, read by the calibration): none where it has no manifest yet; refused where its
/// manifest is of a calibration with other settings.
fn gathered_runs(
    dir: &Path,
    manifest: &serde_json::Value,
    header: &str,
    n: usize,
) -> Result<BTreeMap<RunKey, Option<Vec<f64>>>> {
    let Some(other) = super::folder::read_manifest(&dir.join("manifest.json")) else { return Ok(BTreeMap::new()) };
    if other["kind"] != "calibration" || other["spec_hash"] != manifest["spec_hash"] {
        bail!(
            "{} holds runs of a calibration with other settings (priors, targets, particles, seeds or agents); \
             nothing was written: give every shard and the gathering the same options, or remove {} if it is \
             left from an earlier calibration",
            dir.display(),
            dir.display()
        );
    }
    let path = dir.join("simulations.csv");
    if std::fs::read(&path).is_ok_and(|b| b.contains(&b'\n')) {
        read_journal(&path, header, n)
    } else {
        Ok(BTreeMap::new())
    }
}

impl From<anyhow::Error> for Stop {
    fn from(e: anyhow::Error) -> Stop {
        Stop::Error(e)
    }
}

/// Runs `todo` (index into `batch`, run key) on `opts.jobs` threads, appending each finished run to the journal.
fn run_batch(
    opts: &CalibrateOptions,
    su: &Setup,
    batch: &[Candidate],
    todo: &[(usize, RunKey)],
    journal: &Mutex<Journal>,
    progress: &(dyn Fn(u32, u64, u64) + Sync),
    generation: u32,
) -> Result<(), Stop> {
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let n_t = su.targets.len();
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.max(1).min(todo.len().max(1)) {
            scope.spawn(|| {
                loop {
                    if opts.stop.load(Ordering::Relaxed) != 0 || failure.lock().expect("failure").is_some() {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(c, key)) = todo.get(i) else { return };
                    let seed = run_seed(opts.seed, key.0, key.1, key.2);
                    let x: Vec<f64> = su.priors.priors.iter().zip(&batch[c].z).map(|(p, z)| p.value(*z)).collect();
                    let (values, why) = match one_run(opts, su, &x, seed) {
                        Ok(v) => (Some(v), None),
                        Err(RunFail::Stopped) => return,
                        Err(RunFail::Failed(why)) => (None, Some(why)),
                    };
                    let line = journal_line(key, seed, &values, n_t);
                    let mut j = journal.lock().expect("journal");
                    if let Some(why) = why
                        && j.failures.len() < 5
                    {
                        j.failures.push(format!("generation {} candidate {} run {}: {why}", key.0, key.1, key.2));
                    }
                    if let Err(e) = writeln!(j.file, "{line}").and_then(|_| j.file.flush()) {
                        *failure.lock().expect("failure") =
                            Some(anyhow::anyhow!("cannot append to simulations.csv: {e}"));
                        return;
                    }
                    j.done.insert(key, values);
                    drop(j);
                    let f = finished.fetch_add(1, Ordering::Relaxed) + 1;
                    progress(generation, f as u64, todo.len() as u64);
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().expect("failure") {
        return Err(Stop::Error(e));
    }
    match opts.stop.load(Ordering::Relaxed) {
        0 => {
            let j = journal.lock().expect("journal");
            let _ = j.file.sync_data();
            Ok(())
        }
        s => Err(Stop::Signal(s)),
    }
}

enum RunFail {
    Stopped,
    Failed(String),
}

/// One run of parameter values `x`: each target's model value.
fn one_run(opts: &CalibrateOptions, su: &Setup, x: &[f64], seed: u64) -> Result<Vec<f64>, RunFail> {
    let scenario = su.priors.scenario(x, seed).map_err(|e| RunFail::Failed(e.to_string()))?;
    let scenario = Arc::new(scenario);
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut sink = Stoppable { inner: api::MemorySink::default(), stop: &opts.stop };
        let tables = api::run_streaming(&scenario, &opts.run, &mut sink, &mut |_, _| {});
        tables.map(|t| api::RunResult::from_parts(sink.inner, t))
    }));
    match run {
        Ok(Ok(r)) => Ok(targets::model_values(&su.targets, &scenario, &r)),
        Ok(Err(_)) if opts.stop.load(Ordering::Relaxed) != 0 => Err(RunFail::Stopped),
        Ok(Err(e)) => Err(RunFail::Failed(e.to_string())),
        Err(p) => Err(RunFail::Failed(panic_text(&*p))),
    }
}

/// A hash of everything that determines the calibration's result.
fn spec_hash(opts: &CalibrateOptions, su: &Setup, abc: &AbcOptions) -> String {
    let text = format!(
        "{}\n{}\n{:?}\n{} {} {} {} {} {:?} {:?} {} {}",
        toml::to_string(&su.priors.file).unwrap_or_default(),
        toml::to_string(&su.priors.base).unwrap_or_default(),
        su.targets,
        opts.particles,
        opts.generations,
        opts.min_acceptance,
        opts.seeds_per_particle,
        opts.seed,
        opts.fit_until,
        abc.sampler,
        abc.alpha,
        abc.max_candidates
    );
    crate::model::rng::fnv1a_hex(&text)
}

/// The last generation of a posterior.csv: parameter paths, each particle's values, the weights.
pub type PosteriorRows = (Vec<String>, Vec<Vec<f64>>, Vec<f64>);

/// Reads a posterior.csv: the last generation's parameter columns and weights.
pub fn read_posterior(path: &Path) -> Result<PosteriorRows> {
    let mut r = csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let h: Vec<String> = r.headers()?.iter().map(str::to_string).collect();
    let col = |k: &str| h.iter().position(|x| x == k).with_context(|| format!("{}: no column `{k}`", path.display()));
    let (cg, cw, cd) = (col("generation")?, col("weight")?, col("distance")?);
    let params: Vec<usize> = (cd + 1..h.len()).collect();
    if params.is_empty() {
        bail!("{}: no parameter columns after `distance`", path.display());
    }
    let mut rows: Vec<(u32, Vec<f64>, f64)> = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("{} line {}", path.display(), i + 2))?;
        let num = |c: usize| -> Result<f64> {
            rec.get(c)
                .unwrap_or("")
                .parse()
                .with_context(|| format!("{} line {}, column `{}`: not a number", path.display(), i + 2, h[c]))
        };
        let g = num(cg)? as u32;
        let x: Vec<f64> = params.iter().map(|c| num(*c)).collect::<Result<_>>()?;
        if let Some(k) = x.iter().position(|v| !v.is_finite()) {
            bail!("{} line {}, column `{}`: not a finite number", path.display(), i + 2, h[params[k]]);
        }
        let w = num(cw)?;
        if !(w.is_finite() && w >= 0.0) {
            bail!("{} line {}, column `weight`: must be a finite number ≥ 0", path.display(), i + 2);
        }
        rows.push((g, x, w));
    }
    let last = rows.iter().map(|r| r.0).max().with_context(|| format!("{}: no particles", path.display()))?;
    let (x, w): (Vec<Vec<f64>>, Vec<f64>) = rows.into_iter().filter(|r| r.0 == last).map(|r| (r.1, r.2)).unzip();
    if w.iter().sum::<f64>() <= 0.0 {
        bail!("{}: the weights of generation {last} sum to 0", path.display());
    }
    Ok((params.iter().map(|c| h[*c].clone()).collect(), x, w))
}
