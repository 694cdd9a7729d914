//! Executing a sweep's runs: in parallel (one World each), results handed over in `run_id` order whatever
//! the job count, failures recorded as a status and the sweep continued, stopped cleanly on a signal. No
//! file is touched here: `io::sweep_run` owns the output folder (resume, verification, repair, shards).

use super::spec::{RunSpec, Sweep, value_text};
use crate::api::{MemorySink, RowSink, RunOptions, SimError, Simulation};
use crate::sim::resources::{RunTables, Trace};
use crate::sim::rows::{AnnualRow, MarketRow, SummaryRow};
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

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
                let (id, n, total) = (id as u128, n.min(total) as u128, total as u128);
                // id is sampled iff some i has floor(i·total/n) == id (in 128 bits: no overflow).
                let i = (id * n).div_ceil(total.max(1));
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

/// How tables are written: CSV (always the journal of a sweep) or, in addition, Parquet (`io::parquet`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Csv,
    Parquet,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "csv" => Ok(Format::Csv),
            "parquet" => Ok(Format::Parquet),
            _ => Err(format!("unknown format {s:?}: expected csv or parquet")),
        }
    }
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }
}

/// How to run a sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    pub out: PathBuf,
    pub jobs: usize,
    pub shard: Option<Shard>,
    /// Continue the sweep in `out` (`--resume`), after verifying every committed run.
    pub resume: bool,
    /// With `resume`: do the damaged runs again and rewrite the files (`--repair`).
    pub repair: bool,
    /// Move the outputs in `out` aside into a backup folder and start afresh (`--force`).
    pub force: bool,
    pub traces: TraceMode,
    /// Parquet: Parquet copies of the tables are written once every run is committed (`io::parquet`).
    pub format: Format,
    /// The command line, for the manifest.
    pub command_line: Vec<String>,
    /// How each run uses the machine (its threads; one World per job).
    pub run: RunOptions,
    /// Set (to the signal number) when SIGINT or SIGTERM arrives: the sweep stops cleanly.
    pub stop: Arc<AtomicUsize>,
    /// Fault injection for tests: (run_id, tick) pairs; that run panics at that tick.
    pub panic_at: Vec<(u64, u32)>,
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
    /// Runs of this shard (all runs when unsharded).
    pub total: u64,
    /// Runs done now.
    pub ran: u64,
    /// Runs verified and kept from an earlier process (`--resume`).
    pub resumed: u64,
    /// Damaged runs done again (`--repair`).
    pub repaired: u64,
    /// Runs whose status is not `ok`.
    pub failed: u64,
    /// The signal that stopped the sweep (SIGINT 2, SIGTERM 15), if one did.
    pub interrupted: Option<usize>,
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
            "exit_reason",
        ] {
            cols.push(format!("{}_{m}", f.id));
        }
        for y in crate::sim::rows::BANKRUPTCY_YEARS {
            cols.push(format!("{}_bankrupt_by_{y}", f.id));
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

/// The columns of runs.csv: ids and seed, the varied parameters, `status,error`, then the metrics.
pub fn runs_columns(sweep: &Sweep) -> Vec<String> {
    let mut runs: Vec<String> = ["run_id", "point_id", "replicate", "seed"].iter().map(|s| s.to_string()).collect();
    runs.extend(sweep.parameter_paths());
    runs.extend(["status".into(), "error".into()]);
    runs.extend(metric_columns(sweep));
    runs
}

/// The result of one run: its rows of the sweep's tables (`io` formats and writes them).
pub struct Finished {
    pub run_id: u64,
    /// Its annual.csv rows (none for a run that did not finish).
    pub annual: Vec<AnnualRow>,
    /// Its summary.csv rows.
    pub summary: Vec<SummaryRow>,
    /// Its runs.csv fields, in [`runs_columns`] order.
    pub runs_fields: Vec<String>,
    /// Whether its status is not `ok`.
    pub failed: bool,
    /// Its trace and market rows, when the run keeps a trace.
    pub trace: Option<MemorySink>,
}

/// Keeps only the last market row (runs without a trace).
#[derive(Default)]
struct LastMarket(Option<MarketRow>);

impl RowSink for LastMarket {
    fn rows(&mut self, batch: &Trace) -> Result<(), String> {
        if let Some(m) = batch.market.last() {
            self.0 = Some(m.clone());
        }
        Ok(())
    }
}

/// The text of a caught panic.
pub fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// The first columns of a run's runs.csv line: ids, seed and the point's parameter values.
fn run_fields(sweep: &Sweep, run: &RunSpec) -> Vec<String> {
    let mut fields: Vec<String> =
        vec![run.run_id.to_string(), run.point_id.to_string(), run.replicate.to_string(), run.seed.to_string()];
    fields.extend(sweep.point(run.point_id).iter().map(value_text));
    fields
}

/// The runs.csv line of a run that did not finish: its status and error, no metrics.
fn failed_run(sweep: &Sweep, run: &RunSpec, status: &str, error: String) -> Finished {
    let mut fields = run_fields(sweep, run);
    fields.push(status.into());
    fields.push(error.replace(['\n', '\r'], " | "));
    fields.extend(std::iter::repeat_n(String::new(), metric_columns(sweep).len()));
    Finished {
        run_id: run.run_id,
        annual: Vec::new(),
        summary: Vec::new(),
        runs_fields: fields,
        failed: true,
        trace: None,
    }
}

/// Stops a run at its next tick once `stop` is set (a signal arrived); passes rows on otherwise.
pub struct Stoppable<'a, S: RowSink> {
    pub inner: S,
    pub stop: &'a AtomicUsize,
}

impl<S: RowSink> RowSink for Stoppable<'_, S> {
    fn rows(&mut self, batch: &Trace) -> Result<(), String> {
        self.check()?;
        self.inner.rows(batch)
    }

    /// Checked after every tick, so that a stop takes effect at the next tick, recorded or not.
    fn check(&mut self) -> Result<(), String> {
        if self.stop.load(Ordering::Relaxed) != 0 {
            return Err(INTERRUPTED.into());
        }
        self.inner.check()
    }
}

const INTERRUPTED: &str = "interrupted";

/// Runs one run and formats its rows; failures become a status. `None`: stopped by `stop`.
pub fn execute(
    sweep: &Sweep,
    run: &RunSpec,
    keep_trace: bool,
    (options, panic_at): (&RunOptions, &[(u64, u32)]),
    stop: &AtomicUsize,
) -> Option<Finished> {
    let mut fields = run_fields(sweep, run);
    let fail = |_: Vec<String>, status: &str, error: String| Some(failed_run(sweep, run, status, error));
    let scenario = match sweep.scenario(run) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            let text = e.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ");
            return fail(fields, "invalid", text);
        }
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(
        || -> Result<(RunTables, Option<MarketRow>, Option<MemorySink>), SimError> {
            let panic_tick = panic_at.iter().find(|(id, _)| *id == run.run_id).map(|(_, t)| *t);
            let options = RunOptions { panic_at_tick: panic_tick, ..options.clone() };
            let sim = Simulation::with_options(scenario.clone(), run.run_id, &options);
            if keep_trace {
                let mut sink = Stoppable { inner: MemorySink::default(), stop };
                let tables = sim.run(&mut sink, &mut |_, _| {})?;
                let last = sink.inner.market.last().cloned();
                Ok((tables, last, Some(sink.inner)))
            } else {
                let mut sink = Stoppable { inner: LastMarket::default(), stop };
                let tables = sim.run(&mut sink, &mut |_, _| {})?;
                Ok((tables, sink.inner.0, None))
            }
        },
    ));
    let (tables, market, trace) = match outcome {
        Ok(Ok(x)) => x,
        Ok(Err(SimError::Sink(e))) if e == INTERRUPTED => return None,
        Ok(Err(e)) => return fail(fields, "failed", e.to_string()),
        Err(p) => return fail(fields, "panicked", format!("panic: {}", panic_text(&*p))),
    };
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
            s.exit_reason.unwrap_or("").to_string(),
        ]);
        fields.extend(
            crate::sim::rows::BANKRUPTCY_YEARS
                .iter()
                .map(|&y| crate::sim::rows::bankrupt_by(s.bankrupt, s.exit_date, y).to_string()),
        );
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
        self_hosting_spend_usd: crate::model::econ::Cents::ZERO,
        investor_sentiment: 0.0,
    });
    fields.extend([
        m.active_users.to_string(),
        m.paying_users.to_string(),
        m.hhi.to_string(),
        m.open_source_share.to_string(),
    ]);
    Some(Finished {
        run_id: run.run_id,
        annual: tables.annual,
        summary: tables.summary,
        runs_fields: fields,
        failed: false,
        trace,
    })
}

/// Which runs an execution does: positions k of the folder's run-id sequence, in increasing order — first
/// the listed ones (runs to do again), then every k in `from..to`.
#[derive(Clone, Debug, Default)]
pub struct Tasks {
    pub listed: Vec<u64>,
    pub from: u64,
    pub to: u64,
}

impl Tasks {
    pub fn len(&self) -> u64 {
        self.listed.len() as u64 + self.to.saturating_sub(self.from)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn get(&self, i: u64) -> u64 {
        match self.listed.get(i as usize) {
            Some(&k) => k,
            None => self.from + (i - self.listed.len() as u64),
        }
    }
}

/// Executes `tasks` with `jobs` workers (one World each) and hands each result to `commit` in task order,
/// whatever order the runs finish in; `id_of(k)` is the run id at position k. Each worker panicking or not,
/// every task gets a result. Once `stop` is set, runs in progress stop at their next tick, nothing more is
/// committed, and the function returns `Ok(false)`; `Ok(true)` means every task was committed. An error of
/// `commit` stops the execution and is returned.
#[allow(clippy::too_many_arguments)]
pub fn execute_in_order(
    sweep: &Sweep,
    tasks: &Tasks,
    id_of: &(dyn Fn(u64) -> u64 + Sync),
    jobs: usize,
    keep_trace: &(dyn Fn(u64) -> bool + Sync),
    run_options: (&RunOptions, &[(u64, u32)]),
    stop: &AtomicUsize,
    commit: &mut dyn FnMut(u64, Finished) -> Result<()>,
) -> Result<bool> {
    let n = tasks.len();
    let next = AtomicU64::new(0);
    let (tx, rx) = mpsc::channel::<(u64, Option<Finished>)>();
    let jobs = (jobs.max(1) as u64).min(n.max(1));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n || stop.load(Ordering::Relaxed) != 0 {
                        break;
                    }
                    let run = sweep.run(id_of(tasks.get(i)));
                    let keep = keep_trace(run.run_id);
                    let finished = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        execute(sweep, &run, keep, run_options, stop)
                    }))
                    .unwrap_or_else(|p| {
                        Some(failed_run(sweep, &run, "panicked", format!("panic: {}", panic_text(&*p))))
                    });
                    if tx.send((i, finished)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // Commit in task order as results arrive.
        let mut pending: BTreeMap<u64, Option<Finished>> = BTreeMap::new();
        let mut next_to_commit = 0;
        for (i, finished) in rx {
            pending.insert(i, finished);
            while let Some(f) = pending.remove(&next_to_commit) {
                let Some(f) = f else { break };
                if stop.load(Ordering::Relaxed) != 0 {
                    break;
                }
                if let Err(e) = commit(tasks.get(next_to_commit), f) {
                    stop.store(usize::MAX, Ordering::Relaxed);
                    return Err(e);
                }
                next_to_commit += 1;
            }
        }
        Ok(next_to_commit == n)
    })
}

/// The first `rows` points of a sweep's design as an aligned table (point id, then each parameter's value).
pub fn design_preview(sweep: &Sweep, rows: u64) -> String {
    let d = &sweep.file.design;
    let kind = match d.kind {
        super::design::DesignKind::Saltelli => format!(
            "saltelli, {} base points of {} rows (A, AB_1…AB_p{}, B)",
            d.samples.unwrap_or(0),
            super::design::saltelli_block(sweep.file.parameters.len(), d.second_order()),
            if d.second_order() { ", BA_1…BA_p" } else { "" }
        ),
        super::design::DesignKind::Morris => format!(
            "morris, {} trajectories of {} points, {} levels, step Δ = {:.4} of each range",
            d.trajectories.unwrap_or(0),
            sweep.file.parameters.len() + 1,
            d.levels(),
            super::design::morris_delta(d.levels())
        ),
        k => format!("{k:?}").to_lowercase(),
    };
    // Posterior draws add a column per fitted parameter: the table shows the design's and the draw number.
    let mut paths: Vec<String> = sweep.file.parameters.iter().map(|p| p.path.clone()).collect();
    let k = sweep.file.draws();
    let posterior = sweep.file.posterior.as_ref().map(|d| {
        paths.push("draw".into());
        format!(
            "; each design point under {k} posterior draws of {} ({} parameters; draw fastest)",
            d.source,
            d.parameters.len()
        )
    });
    let shown = rows.min(sweep.n_points());
    let cells: Vec<Vec<String>> = (0..shown)
        .map(|p| {
            let mut row: Vec<String> =
                sweep.point(p).iter().take(sweep.file.parameters.len()).map(|v| short_value(&value_text(v))).collect();
            if posterior.is_some() {
                row.push((p % k).to_string());
            }
            row
        })
        .collect();
    let widths: Vec<usize> = paths
        .iter()
        .enumerate()
        .map(|(i, h)| cells.iter().map(|r| r[i].len()).chain([h.len()]).max().unwrap_or(0))
        .collect();
    let mut t = format!(
        "design: {kind}{}; first {shown} of {} points:\n  {:>6}",
        posterior.unwrap_or_default(),
        sweep.n_points(),
        "point"
    );
    for (h, w) in paths.iter().zip(&widths) {
        t.push_str(&format!("  {h:>w$}"));
    }
    t.push('\n');
    for (p, r) in cells.iter().enumerate() {
        t.push_str(&format!("  {p:>6}"));
        for (c, w) in r.iter().zip(&widths) {
            t.push_str(&format!("  {c:>w$}"));
        }
        t.push('\n');
    }
    t
}

/// A number with at most 6 decimals, trailing zeros dropped (the dry run's table); other text as it is.
fn short_value(s: &str) -> String {
    match s.parse::<f64>() {
        Ok(x) if s.contains('.') => format!("{x:.6}").trim_end_matches('0').trim_end_matches('.').to_string(),
        _ => s.to_string(),
    }
}

/// A dry run: the number of runs, and time and disk estimated from a short pilot of the first run.
/// Counts are arithmetic (no loop over the run ids), so a sweep of 10^8 runs is sized in well under a second.
pub fn dry_run(sweep: &Sweep, opts: &SweepOptions) -> Result<String> {
    let total = sweep.n_runs();
    // Shard K/N holds the ids K, K + N, K + 2N, … below `total`.
    let (first, mine) = match opts.shard {
        None => (0, total),
        Some(s) => (s.index, (total + s.count - 1 - s.index) / s.count),
    };
    let run = sweep.run(if first < total { first } else { 0 });
    let mut text = format!(
        "sweep {}: {} points × {} replicates = {} runs{}\n",
        sweep.file.name,
        sweep.n_points(),
        sweep.file.replicates,
        total,
        opts.shard.map(|s| format!(" ({mine} in shard {}/{})", s.index, s.count)).unwrap_or_default()
    );
    text.push_str(&design_preview(sweep, 8));
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
            let traced = match (opts.traces, opts.shard) {
                (TraceMode::None, _) => 0,
                (TraceMode::All, _) => mine,
                (TraceMode::Sample(n), None) => n.min(total),
                (TraceMode::Sample(n), Some(sh)) => super::spec::sampled_in_shard(total, n, sh.count, sh.index),
            };
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
