//! Executing a sweep: runs in parallel (one World each), results written in `run_id` order whatever the
//! job count, failures recorded and the sweep continued, `--resume` after a crash, `--shard K/N`.

use super::spec::{RunSpec, Sweep, value_text};
use crate::io::sweep_out::{self, SweepWriter, csv_line, serde_lines};
use crate::sim::resources::RunTables;
use crate::sim::rows::{AnnualRow, MarketRow, SummaryRow, TraceRow};
use crate::sim::{MemorySink, RowSink, SimError, Simulation};
use anyhow::{Context, Result, bail};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Instant, SystemTime};

/// Which runs keep their full trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceMode {
    None,
    All,
    /// `n` runs spread evenly over the run ids: `floor(i · runs / n)` for i in 0..n.
    Sample(u64),
}

impl std::str::FromStr for TraceMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(TraceMode::None),
            "all" => Ok(TraceMode::All),
            _ => match s.strip_prefix("sample:").and_then(|n| n.parse::<u64>().ok()) {
                Some(n) if n > 0 => Ok(TraceMode::Sample(n)),
                _ => Err(format!("expected none, all or sample:N (N ≥ 1), got {s:?}")),
            },
        }
    }
}

impl TraceMode {
    pub fn label(&self) -> String {
        match self {
            TraceMode::None => "none".into(),
            TraceMode::All => "all".into(),
            TraceMode::Sample(n) => format!("sample:{n}"),
        }
    }
    /// Whether run `id` of `total` keeps its trace.
    pub fn keeps(&self, id: u64, total: u64) -> bool {
        match *self {
            TraceMode::None => false,
            TraceMode::All => true,
            TraceMode::Sample(n) => {
                let n = n.min(total);
                // id is sampled iff some i has floor(i·total/n) == id.
                let i = (id * n).div_ceil(total);
                i < n && i * total / n == id
            }
        }
    }
}

/// This process's share of the runs: those with `run_id % count == index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (k, n) = s.split_once('/').ok_or_else(|| format!("expected K/N, got {s:?}"))?;
        let (index, count): (u64, u64) = (
            k.trim().parse().map_err(|_| format!("bad shard index {k:?}"))?,
            n.trim().parse().map_err(|_| format!("bad shard count {n:?}"))?,
        );
        if count == 0 || index >= count {
            return Err(format!("a shard K/N needs 0 ≤ K < N, got {s}"));
        }
        Ok(Shard { index, count })
    }
}

/// How to run a sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    pub out: PathBuf,
    pub jobs: usize,
    pub shard: Option<Shard>,
    pub resume: bool,
    pub traces: TraceMode,
    /// The command line, for the manifest.
    pub command_line: Vec<String>,
}

/// Progress as runs finish.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    pub done: u64,
    pub failed: u64,
    pub total: u64,
}

/// What a finished sweep reports.
#[derive(Clone, Debug, Default)]
pub struct SweepReport {
    pub total: u64,
    pub ran: u64,
    pub resumed: u64,
    pub failed: u64,
}

/// Columns of runs.csv after the varied parameters and `status,error`: per firm, then the market.
pub fn metric_columns(sweep: &Sweep) -> Vec<String> {
    let mut cols = Vec::new();
    for f in &sweep.base.firms {
        for m in [
            "bankrupt",
            "exit_date",
            "break_even_date",
            "total_revenue_usd",
            "total_cost_usd",
            "end_cash_usd",
            "min_cash_usd",
            "peak_users",
            "end_users",
        ] {
            cols.push(format!("{}_{m}", f.id));
        }
    }
    cols.extend([
        "end_active_users".into(),
        "end_paying_users".into(),
        "end_hhi".into(),
        "end_open_source_share".into(),
    ]);
    cols
}

/// The three headers: annual.csv, summary.csv, runs.csv.
pub fn headers(sweep: &Sweep) -> [String; 3] {
    let (annual, _) = serde_lines(&sample_annual());
    let summary = csv_line(&SummaryRow::header(&sweep.base.revenue_thresholds_usd));
    let mut runs: Vec<String> = ["run_id", "point_id", "replicate", "seed"].iter().map(|s| s.to_string()).collect();
    runs.extend(sweep.parameter_paths());
    runs.extend(["status".into(), "error".into()]);
    runs.extend(metric_columns(sweep));
    [annual, summary, csv_line(&runs)]
}

fn sample_annual() -> AnnualRow {
    AnnualRow::new(0, 0, String::new(), "", crate::model::econ::Cents::ZERO)
}

/// The result of one run, ready to be written.
struct Finished {
    annual: String,
    summary: String,
    runs_line: String,
    failed: bool,
}

/// Keeps only the last market row (runs without a trace).
#[derive(Default)]
struct LastMarket(Option<MarketRow>);

impl RowSink for LastMarket {
    fn rows(&mut self, _: &[TraceRow], market: &[MarketRow]) -> Result<(), String> {
        if let Some(m) = market.last() {
            self.0 = Some(m.clone());
        }
        Ok(())
    }
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// The first columns of a run's runs.csv line: ids, seed and the point's parameter values.
fn run_fields(sweep: &Sweep, run: &RunSpec) -> Vec<String> {
    let mut fields: Vec<String> =
        vec![run.run_id.to_string(), run.point_id.to_string(), run.replicate.to_string(), run.seed.to_string()];
    fields.extend(sweep.points[run.point_id as usize].iter().map(value_text));
    fields
}

/// The runs.csv line of a run that did not finish: its status and error, no metrics.
fn failed_run(sweep: &Sweep, run: &RunSpec, status: &str, error: String) -> Finished {
    let mut fields = run_fields(sweep, run);
    fields.push(status.into());
    fields.push(error.replace(['\n', '\r'], " | "));
    fields.extend(std::iter::repeat_n(String::new(), metric_columns(sweep).len()));
    Finished { annual: String::new(), summary: String::new(), runs_line: csv_line(&fields), failed: true }
}

/// Runs one run and formats its rows; failures become a status.
fn execute(sweep: &Sweep, run: &RunSpec, trace_to: Option<&Path>) -> Finished {
    let mut fields = run_fields(sweep, run);
    let fail = |_: Vec<String>, status: &str, error: String| failed_run(sweep, run, status, error);
    let scenario = match sweep.scenario(run) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            let text = e.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ");
            return fail(fields, "invalid", text);
        }
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(
        || -> Result<(RunTables, Option<MarketRow>), SimError> {
            let sim = Simulation::new(scenario.clone(), run.run_id);
            match trace_to {
                Some(dir) => {
                    let mut sink = MemorySink::default();
                    let tables = sim.run(&mut sink, &mut |_, _| {})?;
                    sweep_out::write_trace(dir, run.run_id, &sink.trace, &sink.market)
                        .map_err(|e| SimError::Sink(format!("{e:#}")))?;
                    Ok((tables, sink.market.last().cloned()))
                }
                None => {
                    let mut sink = LastMarket::default();
                    let tables = sim.run(&mut sink, &mut |_, _| {})?;
                    Ok((tables, sink.0))
                }
            }
        },
    ));
    let (tables, market) = match outcome {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return fail(fields, "failed", e.to_string()),
        Err(p) => return fail(fields, "panicked", format!("panic: {}", panic_text(p))),
    };
    let mut annual = String::new();
    for r in &tables.annual {
        annual.push_str(&serde_lines(r).1);
    }
    let mut summary = String::new();
    for s in &tables.summary {
        summary.push_str(&csv_line(&s.record()));
    }
    fields.push("ok".into());
    fields.push(String::new());
    let d = |x: Option<chrono::NaiveDate>| x.map(|d| d.to_string()).unwrap_or_default();
    for s in &tables.summary {
        fields.extend([
            s.bankrupt.to_string(),
            d(s.exit_date),
            d(s.break_even_date),
            s.total_revenue_usd.to_string(),
            s.total_cost_usd.to_string(),
            s.end_cash_usd.to_string(),
            s.min_cash_usd.to_string(),
            s.peak_users.to_string(),
            s.end_users.to_string(),
        ]);
    }
    let m = market.unwrap_or(MarketRow {
        run_id: run.run_id,
        tick: 0,
        date: scenario.params().start.0,
        population: 0,
        aware_users: 0,
        active_users: 0,
        paying_users: 0,
        non_users: 0,
        orgs_adopted: 0,
        orgs_banning_chat: 0,
        hhi: 0.0,
        open_source_share: 0.0,
    });
    fields.extend([
        m.active_users.to_string(),
        m.paying_users.to_string(),
        m.hhi.to_string(),
        m.open_source_share.to_string(),
    ]);
    Finished { annual, summary, runs_line: csv_line(&fields), failed: false }
}

/// The manifest of a sweep (rewritten at the end with timings).
fn manifest(
    sweep: &Sweep,
    opts: &SweepOptions,
    started: SystemTime,
    end: Option<(SystemTime, &SweepReport)>,
) -> serde_json::Value {
    let (version, commit) = crate::io::manifest::tool_version();
    let iso =
        |t: SystemTime| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({
        "tool": "llm-market",
        "kind": "sweep",
        "version": version,
        "git_commit": commit,
        "command_line": opts.command_line,
        "sweep": sweep.file.name,
        "sweep_source": sweep.source,
        "spec_hash": sweep.spec_hash(),
        "sweep_spec": serde_json::to_value(&sweep.file).unwrap_or_default(),
        "base_scenario_hash": crate::io::manifest::fnv1a_hex(&toml::to_string(&sweep.base).unwrap_or_default()),
        "seed_rule": "run seed = splitmix64(sweep seed XOR splitmix64(replicate + 1)); replicate r of every point shares its seed (common random numbers)",
        "run_id_rule": "run_id = point_id × replicates + replicate",
        "points": sweep.n_points(),
        "replicates": sweep.file.replicates,
        "total_runs": sweep.n_runs(),
        "shard": opts.shard.map(|s| json!({"index": s.index, "count": s.count})),
        "traces": opts.traces.label(),
        "jobs": opts.jobs,
        "start_time": iso(started),
        "end_time": end.map(|(t, _)| iso(t)),
        "duration_s": end.map(|(t, _)| t.duration_since(started).map(|d| d.as_secs_f64()).unwrap_or(0.0)),
        "status": if end.is_some() { "complete" } else { "running" },
        "runs_done": end.map(|(_, r)| r.ran + r.resumed),
        "runs_failed": end.map(|(_, r)| r.failed),
    })
}

/// Refuses to resume a sweep written by another spec or binary, saying what changed.
fn check_resumable(dir: &Path, current: &serde_json::Value) -> Result<()> {
    let path = dir.join("manifest.json");
    let old: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("cannot read {} to resume", path.display()))?,
    )
    .with_context(|| format!("{} is not valid JSON", path.display()))?;
    let mut changes = Vec::new();
    if old["version"] != current["version"] || old["git_commit"] != current["git_commit"] {
        changes.push(format!(
            "the binary changed (version {} commit {} → version {} commit {})",
            old["version"], old["git_commit"], current["version"], current["git_commit"]
        ));
    }
    if old["spec_hash"] != current["spec_hash"] {
        let (a, b) = (&old["sweep_spec"], &current["sweep_spec"]);
        let mut keys: Vec<String> = Vec::new();
        if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
            for k in a.keys().chain(b.keys()) {
                if a.get(k) != b.get(k) && !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
        if old["base_scenario_hash"] != current["base_scenario_hash"] {
            keys.push("the base scenario (or --set/--agents)".into());
        }
        changes.push(format!(
            "the sweep spec changed: {}",
            if keys.is_empty() { "unknown".into() } else { keys.join(", ") }
        ));
    }
    if old["shard"] != current["shard"] {
        changes.push(format!("the shard changed ({} → {})", old["shard"], current["shard"]));
    }
    if old["traces"] != current["traces"] {
        changes.push(format!("--traces changed ({} → {})", old["traces"], current["traces"]));
    }
    if !changes.is_empty() {
        bail!("cannot resume the sweep in {}: {}", dir.display(), changes.join("; "));
    }
    Ok(())
}

/// Runs (this shard of) a sweep into `opts.out`.
pub fn run_sweep(sweep: &Sweep, opts: &SweepOptions, progress: &(dyn Fn(Progress) + Sync)) -> Result<SweepReport> {
    let started = SystemTime::now();
    let total = sweep.n_runs();
    // This shard's runs are run_id = k × stride + offset for k in 0..n_mine; nothing is materialised, so
    // memory does not grow with the number of runs.
    let (offset, stride) = opts.shard.map_or((0, 1), |s| (s.index, s.count));
    let n_mine = if total > offset { (total - offset).div_ceil(stride) } else { 0 };
    let id_of = |k: u64| k * stride + offset;
    let headers = headers(sweep);
    let header_refs = [headers[0].as_str(), headers[1].as_str(), headers[2].as_str()];
    let start_manifest = manifest(sweep, opts, started, None);
    // A sweep that crashed before its first header was complete has nothing to keep: start it afresh.
    let resuming = opts.resume
        && std::fs::read_to_string(opts.out.join("runs.csv")).is_ok_and(|t| t.starts_with(header_refs[2]))
        && opts.out.join("manifest.json").exists();
    let (mut writer, done, failed_before) = if resuming {
        check_resumable(&opts.out, &start_manifest)?;
        let (w, done) = SweepWriter::resume(&opts.out, header_refs)?;
        let text = std::fs::read_to_string(opts.out.join("runs.csv"))?;
        let status_col = 4 + sweep.file.parameters.len();
        let failed = csv::Reader::from_reader(text.as_bytes())
            .records()
            .filter_map(|r| r.ok())
            .filter(|r| r.get(status_col) != Some("ok"))
            .count() as u64;
        (w, done, failed)
    } else {
        std::fs::create_dir_all(&opts.out).with_context(|| format!("cannot create {}", opts.out.display()))?;
        // The manifest first (status "running"), so a crash at any later instant leaves a resumable folder.
        sweep_out::write_atomic(&opts.out.join("manifest.json"), &serde_json::to_string_pretty(&start_manifest)?)?;
        (SweepWriter::create(&opts.out, header_refs)?, Default::default(), 0)
    };
    sweep_out::write_atomic(&opts.out.join("manifest.json"), &serde_json::to_string_pretty(&start_manifest)?)?;
    sweep_out::remove_stale_trace_temps(&opts.out);
    if opts.traces != TraceMode::None {
        std::fs::create_dir_all(opts.out.join("traces"))?;
    }
    // Runs are committed in order, so the runs already done are the first ones of this shard.
    let start = done.len() as u64;
    if done.iter().enumerate().any(|(k, id)| *id != id_of(k as u64)) {
        bail!("{}: runs.csv does not hold this shard's first runs in order; not resuming", opts.out.display());
    }
    let mut report = SweepReport { total: n_mine, resumed: start, ..Default::default() };
    report.failed = failed_before;
    progress(Progress { done: report.resumed, failed: report.failed, total: report.total });

    let next = AtomicU64::new(start);
    let (tx, rx) = mpsc::channel::<(u64, Finished)>();
    let jobs = (opts.jobs.max(1) as u64).min((n_mine - start).max(1));
    let result: Result<()> = std::thread::scope(|scope| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let (next, id_of) = (&next, &id_of);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n_mine {
                        break;
                    }
                    let run = sweep.run(id_of(i));
                    let trace_to = opts.traces.keeps(run.run_id, total).then_some(opts.out.as_path());
                    let finished =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| execute(sweep, &run, trace_to)))
                            .unwrap_or_else(|p| {
                                failed_run(sweep, &run, "panicked", format!("panic: {}", panic_text(p)))
                            });
                    if tx.send((i, finished)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // Write in run_id order as results arrive.
        let mut pending: BTreeMap<u64, Finished> = BTreeMap::new();
        let mut next_to_write = start;
        for (i, finished) in rx {
            pending.insert(i, finished);
            while let Some(f) = pending.remove(&next_to_write) {
                writer.write_run(&f.annual, &f.summary, &f.runs_line)?;
                report.ran += 1;
                report.failed += f.failed as u64;
                next_to_write += 1;
                progress(Progress { done: report.ran + report.resumed, failed: report.failed, total: report.total });
            }
        }
        Ok(())
    });
    result?;
    writer.finish()?;
    let end = manifest(sweep, opts, started, Some((SystemTime::now(), &report)));
    sweep_out::write_atomic(&opts.out.join("manifest.json"), &serde_json::to_string_pretty(&end)?)?;
    Ok(report)
}

/// A dry run: the number of runs, and time and disk estimated from a short pilot of the first run.
pub fn dry_run(sweep: &Sweep, opts: &SweepOptions) -> Result<String> {
    let total = sweep.n_runs();
    let mine = (0..total).filter(|id| opts.shard.is_none_or(|s| id % s.count == s.index)).count() as u64;
    let run = sweep.run((0..total).find(|id| opts.shard.is_none_or(|s| id % s.count == s.index)).unwrap_or(0));
    let mut text = format!(
        "sweep {}: {} points × {} replicates = {} runs{}\n",
        sweep.file.name,
        sweep.n_points(),
        sweep.file.replicates,
        total,
        opts.shard.map(|s| format!(" ({mine} in shard {}/{})", s.index, s.count)).unwrap_or_default()
    );
    match sweep.scenario(&run) {
        Err(e) => text.push_str(&format!("the first run's point is invalid, no pilot: {e}")),
        Ok(s) => {
            let ticks =
                crate::model::calendar::TickCalendar::new(s.params().start.0, s.params().end.0, s.params().tick)
                    .n_ticks();
            let pilot_ticks = ticks.clamp(1, 30);
            let t0 = Instant::now();
            let mut sim = Simulation::new(Arc::new(s.clone()), 0);
            let setup = t0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            for _ in 0..pilot_ticks {
                sim.step().map_err(|e| anyhow::anyhow!("the pilot failed: {e}"))?;
            }
            let per_tick = t1.elapsed().as_secs_f64() / pilot_ticks as f64;
            let per_run = setup + per_tick * ticks as f64;
            let jobs = opts.jobs.max(1) as f64;
            let seconds = per_run * mine as f64 / jobs.min(mine.max(1) as f64);
            let firms = s.params().firms.len() as u64;
            let years = (s.params().end.0 - s.params().start.0).num_days() as u64 / 365 + 2;
            let per_run_bytes = 600 + firms * 120 + firms * years * 330 + firms * 260;
            let traced = (0..total)
                .filter(|id| opts.shard.is_none_or(|sh| id % sh.count == sh.index) && opts.traces.keeps(*id, total))
                .count() as u64;
            let cal = crate::model::calendar::TickCalendar::new(s.params().start.0, s.params().end.0, s.params().tick);
            let recorded = (0..=ticks).filter(|&k| cal.is_recorded(k, s.record_every())).count() as u64;
            let trace_bytes = traced * recorded * (firms * 330 + 120);
            text.push_str(&format!(
                "pilot: {pilot_ticks} ticks of run {} at {} agents: {:.1} ms per tick, {:.2} s set-up\n",
                run.run_id,
                s.params().agents,
                per_tick * 1e3,
                setup
            ));
            text.push_str(&format!(
                "estimated time: {:.0} s with {} jobs ({:.1} s per run)\n",
                seconds, opts.jobs, per_run
            ));
            text.push_str(&format!(
                "estimated disk: {:.1} MB ({:.1} MB of traces for {traced} runs)\n",
                (per_run_bytes * mine + trace_bytes) as f64 / 1e6,
                trace_bytes as f64 / 1e6
            ));
        }
    }
    Ok(text)
}
