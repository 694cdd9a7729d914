//! A sweep's output folder from start to finish: the folder claimed (lock, what it holds), a `--resume`
//! verified run by run before anything is trusted, `--repair` doing exactly the damaged runs again, the
//! manifest, and the runs executed (by `experiment::runner`) and committed in `run_id` order.

use super::folder::{self, Kind, Mode};
use super::sweep_check::{self, IdSeq, Layout, RowReader, SWEEP_FILES, trace_dir};
use super::sweep_out::SweepWriter;
use crate::experiment::runner::{self, Finished, Progress, SweepOptions, SweepReport, Tasks};
use crate::experiment::spec::Sweep;
use crate::io::merge::ranges;
use anyhow::{Context, Result, bail};
use serde_json::json;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

/// The kind of folder a sweep with these options writes.
pub fn kind(opts: &SweepOptions) -> Kind {
    if opts.shard.is_some() { Kind::Shard } else { Kind::Sweep }
}

/// The run ids of this shard (all runs when unsharded).
pub fn id_seq(sweep: &Sweep, opts: &SweepOptions) -> IdSeq {
    IdSeq::of(sweep.n_runs(), opts.shard.map(|s| (s.index, s.count)))
}

/// The manifest of a sweep (rewritten at the end with timings and the status).
fn manifest(
    sweep: &Sweep,
    opts: &SweepOptions,
    started: SystemTime,
    status: &str,
    end: Option<(SystemTime, &SweepReport)>,
) -> serde_json::Value {
    let (version, commit) = super::manifest::tool_version();
    let base = toml::to_string(&sweep.base).unwrap_or_default();
    json!({
        "tool": "llm-market",
        "kind": kind(opts).as_str(),
        "version": version,
        "git_commit": commit,
        "command_line": opts.command_line,
        "sweep": sweep.file.name,
        "sweep_source": sweep.source,
        "spec_hash": sweep.spec_hash(),
        "sweep_spec": serde_json::to_value(&sweep.file).unwrap_or_default(),
        "base_scenario_hash": super::manifest::fnv1a_hex(&base),
        "base_scenario": base,
        "agents": sweep.base.agents,
        "seed_rule": "run seed = splitmix64(sweep seed XOR splitmix64(replicate + 1)); replicate r of every point shares its seed (common random numbers)",
        "run_id_rule": "run_id = point_id × replicates + replicate",
        "points": sweep.n_points(),
        "replicates": sweep.file.replicates,
        "total_runs": sweep.n_runs(),
        "shard": opts.shard.map(|s| json!({"index": s.index, "count": s.count})),
        "traces": opts.traces.label(),
        "format": opts.format.as_str(),
        "jobs": opts.jobs,
        "files": SWEEP_FILES,
        "start_time": super::manifest::iso(started),
        "end_time": end.map(|(t, _)| super::manifest::iso(t)),
        "duration_s": end.map(|(t, _)| t.duration_since(started).map(|d| d.as_secs_f64()).unwrap_or(0.0)),
        "status": status,
        "runs_done": end.map(|(_, r)| r.ran + r.resumed),
        "runs_failed": end.map(|(_, r)| r.failed),
    })
}

/// What differs between two manifests' sweeps, in words (empty: the same sweep, shard, traces, binary).
pub fn differences(old: &serde_json::Value, new: &serde_json::Value) -> Vec<String> {
    let mut changes = Vec::new();
    if old["version"] != new["version"] || old["git_commit"] != new["git_commit"] {
        changes.push(format!(
            "the binary (version {} commit {} → version {} commit {})",
            old["version"], old["git_commit"], new["version"], new["git_commit"]
        ));
    }
    if old["spec_hash"] != new["spec_hash"] {
        let (a, b) = (&old["sweep_spec"], &new["sweep_spec"]);
        if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).filter(|k| a.get(*k) != b.get(*k)).collect();
            keys.dedup();
            for k in keys {
                changes.push(format!(
                    "the sweep file's `{k}` ({} → {})",
                    super::manifest::shorten(&a.get(k).map(|v| v.to_string()).unwrap_or("absent".into())),
                    super::manifest::shorten(&b.get(k).map(|v| v.to_string()).unwrap_or("absent".into()))
                ));
            }
        }
        if old["base_scenario_hash"] != new["base_scenario_hash"] {
            let diff = super::manifest::toml_diff(
                old["base_scenario"].as_str().unwrap_or(""),
                new["base_scenario"].as_str().unwrap_or(""),
            );
            if diff.is_empty() {
                changes.push("the base scenario (or --set/--agents)".into());
            }
            for d in diff.iter().take(8) {
                changes.push(format!("the base scenario's {d}"));
            }
            if diff.len() > 8 {
                changes.push(format!("{} more keys of the base scenario", diff.len() - 8));
            }
        }
    }
    if old["shard"] != new["shard"] {
        changes.push(format!("the shard ({} → {})", old["shard"], new["shard"]));
    }
    if old["traces"] != new["traces"] {
        changes.push(format!("--traces ({} → {})", old["traces"], new["traces"]));
    }
    // A folder of an earlier version records no format: it wrote CSV only.
    let format = |m: &serde_json::Value| m["format"].as_str().unwrap_or("csv").to_string();
    if format(old) != format(new) {
        changes.push(format!("--format ({} → {})", format(old), format(new)));
    }
    changes
}

/// Runs (this shard of) a sweep into `opts.out`; see the module doc.
pub fn run_sweep(sweep: &Sweep, opts: &SweepOptions, progress: &(dyn Fn(Progress) + Sync)) -> Result<SweepReport> {
    let started = SystemTime::now();
    let total = sweep.n_runs();
    let ids = id_seq(sweep, opts);
    let kind = kind(opts);
    let mode = Mode::from_flags(opts.force, opts.resume);
    let _lock = folder::claim(&opts.out, kind, mode)?;
    let headers = super::sweep_out::headers(sweep);
    let header_refs = [headers[0].as_str(), headers[1].as_str(), headers[2].as_str()];
    let traced = |id: u64| opts.traces.keeps(id, total);
    let layout = Layout { headers: Some(header_refs), ids, traced: &traced };
    let there = folder::inspect(&opts.out);
    let running = manifest(sweep, opts, started, "running", None);
    let mut report = SweepReport { total: ids.count, ..Default::default() };

    let resuming = opts.resume && there.kind == Some(kind);
    let mut writer = if resuming {
        let old = there.manifest.clone().unwrap_or_default();
        let changes = differences(&old, &running);
        if !changes.is_empty() {
            bail!(
                "cannot resume the sweep in {}: it changed: {}; nothing was written",
                opts.out.display(),
                changes.join("; ")
            );
        }
        let c = sweep_check::check(&opts.out, &layout)?;
        if !c.rows_seen {
            // Stopped before its first row: nothing to keep.
            None
        } else if c.problems.is_empty() {
            report.resumed = c.committed;
            report.failed = c.failed;
            super::manifest::write(&opts.out.join("manifest.json"), &running)?;
            Some(SweepWriter::reopen(&opts.out, c.keep)?)
        } else if !opts.repair {
            let damaged: Vec<u64> = c.damaged.iter().map(|&k| ids.id(k)).collect();
            bail!(
                "{}\ncannot resume: nothing was changed. `--resume --repair` does {} again and rewrites the files to the bytes of an uninterrupted sweep",
                c.describe(&opts.out, 12),
                match damaged.len() {
                    0 => "no run".to_string(),
                    1 => format!("run {}", damaged[0]),
                    _ => format!("runs {}", ranges(&damaged)),
                }
            );
        } else {
            super::manifest::write(&opts.out.join("manifest.json"), &running)?;
            let Some(done) = repair(sweep, opts, &layout, &c, &header_refs, &mut report, progress)? else {
                return interrupted(sweep, opts, started, report);
            };
            report.resumed = done - report.repaired;
            Some(SweepWriter::reopen(&opts.out, file_lengths(&opts.out)?)?)
        }
    } else {
        None
    };
    if writer.is_none() {
        // The manifest first (status "running"), so that a crash at any later instant leaves a resumable folder.
        super::manifest::write(&opts.out.join("manifest.json"), &running)?;
        writer = Some(SweepWriter::create(&opts.out, &opts.out, header_refs)?);
    }
    let mut writer = writer.expect("opened above");
    if opts.traces != runner::TraceMode::None {
        std::fs::create_dir_all(opts.out.join("traces"))?;
    }
    let done_before = report.resumed + report.repaired;
    progress(Progress { done: done_before, failed: report.failed, total: report.total });
    let tasks = Tasks { listed: vec![], from: done_before, to: ids.count };
    let complete = execute(sweep, opts, &layout, &tasks, &mut |_, f: Finished| {
        writer.write_finished(&f)?;
        report.ran += 1;
        report.failed += f.failed as u64;
        progress(Progress { done: report.ran + done_before, failed: report.failed, total: report.total });
        Ok(())
    })?;
    writer.finish()?;
    if !complete {
        return interrupted(sweep, opts, started, report);
    }
    if opts.format == runner::Format::Parquet {
        super::parquet::convert_sweep_folder(&opts.out)?;
    }
    let end = manifest(sweep, opts, started, "complete", Some((SystemTime::now(), &report)));
    super::manifest::write(&opts.out.join("manifest.json"), &end)?;
    Ok(report)
}

/// Executes `tasks` (positions in the folder's run ids) with the sweep's jobs, trace choice, faults and stop
/// flag, handing each result to `commit` in order; `Ok(false)`: stopped by a signal.
fn execute(
    sweep: &Sweep,
    opts: &SweepOptions,
    layout: &Layout,
    tasks: &Tasks,
    commit: &mut dyn FnMut(u64, Finished) -> Result<()>,
) -> Result<bool> {
    let ids = layout.ids;
    let id_of = |k: u64| ids.id(k);
    runner::execute_in_order(
        sweep,
        tasks,
        &id_of,
        opts.jobs,
        layout.traced,
        (&opts.run, &opts.panic_at),
        &opts.stop,
        commit,
    )
}

/// Records an interrupted sweep (resumable) and reports the signal.
fn interrupted(
    sweep: &Sweep,
    opts: &SweepOptions,
    started: SystemTime,
    mut report: SweepReport,
) -> Result<SweepReport> {
    let m = manifest(sweep, opts, started, "interrupted", Some((SystemTime::now(), &report)));
    super::manifest::write(&opts.out.join("manifest.json"), &m)?;
    report.interrupted = Some(opts.stop.load(Ordering::Relaxed));
    Ok(report)
}

fn file_lengths(dir: &Path) -> Result<[u64; 4]> {
    let mut keep = [0; 4];
    for (k, name) in SWEEP_FILES.iter().enumerate() {
        keep[k] = std::fs::metadata(dir.join(name))?.len();
    }
    Ok(keep)
}

/// Rewrites the files of a damaged sweep into a staging folder — the verified runs copied byte for byte,
/// the damaged ones done again — and moves them into place. Returns the number of runs the files then
/// hold (`None`: interrupted, the old files untouched).
fn repair(
    sweep: &Sweep,
    opts: &SweepOptions,
    layout: &Layout,
    c: &sweep_check::Check,
    headers: &[&str; 3],
    report: &mut SweepReport,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Option<u64>> {
    let staging = opts.out.join(format!("{}{}", folder::REPAIR_PREFIX, std::process::id()));
    let ids = layout.ids;
    let fields: Vec<usize> = headers.iter().map(|h| h.trim_end().split(',').count()).collect();
    let open = |f: usize| RowReader::open(&opts.out.join(SWEEP_FILES[f]), ids, Some(fields[f])).ok();
    let mut rep = Copier {
        readers: [open(0), open(1), open(2)],
        w: SweepWriter::create(&staging, &opts.out, *headers)?,
        damaged: c.damaged.iter().copied().collect(),
        next: 0,
        status_col: 4 + sweep.parameter_paths().len(),
    };
    // Trace folders of runs that keep none were not written by this sweep's runs.
    for d in &c.stray_traces {
        std::fs::remove_dir_all(d).with_context(|| format!("cannot remove {}", d.display()))?;
    }
    let tasks = Tasks { listed: c.damaged.clone(), from: 0, to: 0 };
    let complete = execute(sweep, opts, layout, &tasks, &mut |k, f: Finished| {
        rep.copy_until(k, &opts.out, layout, report)?;
        rep.w.write_finished(&f)?;
        rep.next = k + 1;
        report.repaired += 1;
        report.failed += f.failed as u64;
        progress(Progress { done: rep.next, failed: report.failed, total: report.total });
        Ok(())
    });
    let complete = match complete {
        Ok(x) => x,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    if !complete {
        let _ = std::fs::remove_dir_all(&staging);
        return Ok(None);
    }
    rep.copy_until(c.extent, &opts.out, layout, report)?;
    rep.w.install(&opts.out)?;
    Ok(Some(c.extent))
}

/// The state of a repair: readers over the old files, the new files, and the next position to fill.
struct Copier {
    readers: [Option<RowReader>; 3],
    w: SweepWriter,
    damaged: std::collections::BTreeSet<u64>,
    next: u64,
    status_col: usize,
}

impl Copier {
    /// Copies the verified runs at positions `next..end` (skipping damaged ones, done again elsewhere).
    fn copy_until(&mut self, end: u64, dir: &Path, layout: &Layout, report: &mut SweepReport) -> Result<()> {
        while self.next < end {
            let k = self.next;
            self.next += 1;
            if self.damaged.contains(&k) {
                continue;
            }
            let id = layout.ids.id(k);
            let mut text = [String::new(), String::new(), String::new()];
            for (r, t) in self.readers.iter_mut().zip(text.iter_mut()) {
                if let Some(r) = r {
                    r.take(id, t)?;
                }
            }
            let ok = sweep_check::field(&text[2], self.status_col).as_deref() == Some("ok");
            // A run that did not finish has no trace.
            let crc = if (layout.traced)(id) && ok {
                let d = trace_dir(dir, id);
                Some(sweep_check::trace_files_crc(&sweep_check::read_trace_files(&d)?))
            } else {
                None
            };
            self.w.copy_run(id, &text[0], &text[1], &text[2], crc)?;
            report.failed += u64::from(!ok);
        }
        Ok(())
    }
}
