//! Merging the folders of a sharded sweep: each shard is locked and verified like a resume (every run's
//! rows against its index line), every run must be present exactly once, and the merged files are
//! streamed in `run_id` order, byte-identical to those of the same sweep run unsharded.

use super::folder::{self, Kind, Mode};
use super::sweep_check::{self, IdSeq, Layout, RowReader, SWEEP_FILES, trace_dir};
use super::sweep_out::SweepWriter;
use crate::experiment::runner::Format;
use crate::experiment::runner::TraceMode;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Describes run ids compactly: `0-3, 7, 9-12`.
pub fn ranges(ids: &[u64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        out.push(if i == j { ids[i].to_string() } else { format!("{}-{}", ids[i], ids[j]) });
        i = j + 1;
    }
    out.join(", ")
}

struct Shard {
    dir: PathBuf,
    manifest: serde_json::Value,
    ids: IdSeq,
    headers: [String; 3],
    _lock: Option<folder::FolderLock>,
}

/// Reads, locks and verifies one shard folder.
fn open_shard(dir: &Path) -> Result<Shard> {
    let mpath = dir.join("manifest.json");
    if !mpath.is_file() {
        bail!("{} is not a sweep output folder (no manifest.json)", dir.display());
    }
    let lock = folder::lock(dir)?;
    let manifest =
        folder::read_manifest(&mpath).with_context(|| format!("{} is not a valid manifest", mpath.display()))?;
    if !matches!(manifest["kind"].as_str(), Some("shard" | "sweep")) {
        bail!(
            "{} is not the output of a sweep or a shard (its manifest says kind {})",
            dir.display(),
            manifest["kind"]
        );
    }
    if manifest["status"] != "complete" {
        bail!(
            "{}: the sweep there did not finish (status {}); continue it with `llm-market sweep … --shard … --resume`",
            dir.display(),
            manifest["status"].as_str().unwrap_or("unknown")
        );
    }
    let sweep_check::Recorded { ids, total, traces, headers } = sweep_check::recorded(dir, &manifest)?;
    let count = ids.count;
    let traced = |id: u64| traces.keeps(id, total);
    let header_refs = [headers[0].as_str(), headers[1].as_str(), headers[2].as_str()];
    let c = sweep_check::check(dir, &Layout { headers: Some(header_refs), ids, traced: &traced })?;
    if !c.problems.is_empty() || c.torn_tail {
        let mut msg = c.describe(dir, 12);
        if c.problems.is_empty() {
            msg = format!("{}: the files end with an unfinished run", dir.display());
        }
        bail!("{msg}\ncannot merge: repair the shard first (`llm-market sweep … --shard … --resume --repair`)");
    }
    if c.committed != count {
        bail!("{}: {} of its {count} runs are committed, but its manifest says complete", dir.display(), c.committed);
    }
    Ok(Shard { dir: dir.to_path_buf(), manifest, ids, headers, _lock: Some(lock) })
}

/// Merges shard folders into `out`; returns the number of runs, or `None` when `stop` was set (a signal)
/// before the end: the merged files are written in a staging folder and moved into `out` only complete.
pub fn merge(dirs: &[PathBuf], out: &Path, force: bool, format: Format, stop: &AtomicUsize) -> Result<Option<u64>> {
    if dirs.is_empty() {
        bail!("nothing to merge: name the shard output folders");
    }
    if dirs.iter().any(|d| same_dir(d, out)) {
        bail!("--out {} is one of the folders to merge; write the merged sweep to another folder", out.display());
    }
    let mut shards: Vec<Shard> = Vec::new();
    for d in dirs {
        if shards.iter().any(|s| same_dir(&s.dir, d)) {
            // The same folder twice: its runs are duplicated (reported below); it cannot be locked twice.
            let i = shards.iter().position(|s| same_dir(&s.dir, d)).unwrap();
            let (ids, manifest, headers) = (shards[i].ids, shards[i].manifest.clone(), shards[i].headers.clone());
            shards.push(Shard { dir: d.clone(), manifest, ids, headers, _lock: None });
            continue;
        }
        shards.push(open_shard(d)?);
    }
    let first = &shards[0];
    for s in &shards[1..] {
        let diff: Vec<String> = super::sweep_run::differences(&first.manifest, &s.manifest)
            .into_iter()
            .filter(|d| !d.starts_with("the shard ("))
            .collect();
        if !diff.is_empty() {
            bail!(
                "{} and {} come from different sweeps or binaries: {}",
                first.dir.display(),
                s.dir.display(),
                diff.join("; ")
            );
        }
        if s.manifest["total_runs"] != first.manifest["total_runs"] {
            bail!(
                "{} and {}: total_runs {} vs {}",
                first.dir.display(),
                s.dir.display(),
                first.manifest["total_runs"],
                s.manifest["total_runs"]
            );
        }
        for ((a, b), name) in s.headers.iter().zip(&first.headers).zip(SWEEP_FILES) {
            if a != b {
                bail!("{} and {}: the columns of {name} differ", first.dir.display(), s.dir.display());
            }
        }
    }
    let total = first.manifest["total_runs"].as_u64().unwrap_or(0);
    // Every run exactly once.
    // The shard folder that holds each run (u32::MAX: none yet); 4 bytes a run.
    let mut owner: Vec<u32> = vec![u32::MAX; total as usize];
    let mut duplicated = Vec::new();
    for (i, s) in shards.iter().enumerate() {
        for k in 0..s.ids.count {
            let id = s.ids.id(k) as usize;
            if std::mem::replace(&mut owner[id], i as u32) != u32::MAX {
                duplicated.push(id as u64);
            }
        }
    }
    let missing: Vec<u64> = (0..total).filter(|&id| owner[id as usize] == u32::MAX).collect();
    if !duplicated.is_empty() || !missing.is_empty() {
        duplicated.sort_unstable();
        duplicated.dedup();
        let mut msg = String::from("cannot merge:");
        if !missing.is_empty() {
            msg.push_str(&format!(
                " missing runs {} ({} of {total});",
                super::manifest::shorten(&ranges(&missing)),
                missing.len()
            ));
        }
        if !duplicated.is_empty() {
            msg.push_str(&format!(" runs present more than once: {};", super::manifest::shorten(&ranges(&duplicated))));
        }
        bail!("{}", msg.trim_end_matches(';'));
    }
    let _lock = folder::claim(out, Kind::Merge, if force { Mode::Force } else { Mode::Fresh })?;
    let staging = out.join(format!("{}{}", folder::STAGING_PREFIX, std::process::id()));
    let result = write_merged(&shards, &owner, &staging, stop).and_then(|failed| {
        let parquet = match (failed, format) {
            (Some(_), Format::Parquet) => super::parquet::convert_sweep_folder(&staging)?,
            _ => Vec::new(),
        };
        Ok(failed.map(|f| (f, parquet)))
    });
    let (failed, parquet) = match result {
        Ok(Some(done)) => done,
        other => {
            let _ = std::fs::remove_dir_all(&staging);
            return other.map(|_| None);
        }
    };
    let mut manifest = first.manifest.clone();
    manifest["kind"] = serde_json::json!(Kind::Merge.as_str());
    manifest["shard"] = serde_json::Value::Null;
    manifest["format"] = serde_json::json!(format.as_str());
    manifest["merged_from"] = serde_json::json!(dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>());
    manifest["runs_done"] = serde_json::json!(total);
    manifest["runs_failed"] = serde_json::json!(failed);
    manifest["command_line"] = serde_json::json!(std::env::args().collect::<Vec<_>>());
    super::manifest::write(&staging.join("manifest.json"), &manifest)?;
    // Into place: the data files and traces first, the manifest (what says the folder is a merge) last.
    let mut names: Vec<&str> = SWEEP_FILES.to_vec();
    // Parquet copies of the tables (those of the traces are inside `traces/`).
    names.extend(parquet.iter().filter(|p| p.parent() == Some(Path::new(""))).filter_map(|p| p.to_str()));
    if staging.join("traces").exists() {
        names.push("traces");
    }
    names.push("manifest.json");
    for name in names {
        let to = out.join(name);
        std::fs::rename(staging.join(name), &to).with_context(|| format!("cannot move {} into place", to.display()))?;
    }
    let _ = std::fs::remove_dir_all(&staging);
    folder::sync_dir(out);
    Ok(Some(total))
}

/// Writes the merged files into `staging`, run by run in id order; returns the number of failed runs
/// (`None`: stopped by a signal).
fn write_merged(shards: &[Shard], owner: &[u32], staging: &Path, stop: &AtomicUsize) -> Result<Option<u64>> {
    let first = &shards[0];
    let total = owner.len() as u64;
    let headers = [first.headers[0].as_str(), first.headers[1].as_str(), first.headers[2].as_str()];
    let mut writer = SweepWriter::create(staging, staging, headers)?;
    let mut readers: Vec<Vec<RowReader>> = Vec::new();
    for s in shards {
        readers.push((0..3).map(|k| RowReader::open(&s.dir.join(SWEEP_FILES[k]), s.ids, None)).collect::<Result<_>>()?);
    }
    let traces: TraceMode = first.manifest["traces"].as_str().unwrap_or("none").parse().unwrap_or(TraceMode::None);
    let status_col = first.headers[2].trim_end().split(',').position(|c| c == "status");
    let mut failed = 0u64;
    for id in 0..total {
        if stop.load(Ordering::Relaxed) != 0 {
            return Ok(None);
        }
        let i = owner[id as usize] as usize;
        let mut text = [String::new(), String::new(), String::new()];
        for (r, t) in readers[i].iter_mut().zip(text.iter_mut()) {
            r.take(id, t)?;
        }
        let ok = status_col.and_then(|c| sweep_check::field(&text[2], c)).as_deref() == Some("ok");
        failed += u64::from(!ok);
        // A run that did not finish has no trace.
        let crc = if traces.keeps(id, total) && ok {
            let (from, to) = (trace_dir(&shards[i].dir, id), trace_dir(staging, id));
            let files =
                sweep_check::read_trace_files(&from).with_context(|| format!("cannot read {}", from.display()))?;
            std::fs::create_dir_all(&to).with_context(|| format!("cannot create {}", to.display()))?;
            for (name, bytes) in sweep_check::TRACE_FILES.iter().zip(&files) {
                let path = to.join(name);
                std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
            }
            Some(sweep_check::trace_files_crc(&files))
        } else {
            None
        };
        writer.copy_run(id, &text[0], &text[1], &text[2], crc)?;
    }
    writer.finish()?;
    Ok(Some(failed))
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ranges_are_compact() {
        assert_eq!(super::ranges(&[0, 1, 2, 3, 7, 9, 10]), "0-3, 7, 9-10");
        assert_eq!(super::ranges(&[]), "");
    }
}
