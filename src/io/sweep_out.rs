//! A sweep's output directory: `runs.csv`, `annual.csv` and `summary.csv` are appended run by run in
//! `run_id` order and flushed after each run, so a crash loses at most the runs in flight; `--resume`
//! repairs a torn last row and continues. Traces of sampled runs go to `traces/run-<id>/`, each written
//! to a temporary folder and renamed into place.
//!
//! Commit order: a run's annual and summary rows are written and flushed first, its `runs.csv` row
//! last; a run counts as done once its `runs.csv` row is complete.

use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The CSV files of a sweep, in commit order (runs.csv last).
pub const SWEEP_CSVS: [&str; 3] = ["annual.csv", "summary.csv", "runs.csv"];

/// Formats one CSV record (RFC 4180 quoting) ending in `\n`.
pub fn csv_line(fields: &[String]) -> String {
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    w.write_record(fields).expect("writing to memory");
    String::from_utf8(w.into_inner().expect("writing to memory")).expect("fields are text")
}

/// Serialises a row type as CSV lines: (header line, record line).
pub fn serde_lines<T: serde::Serialize>(row: &T) -> (String, String) {
    let mut w = csv::WriterBuilder::new().has_headers(true).from_writer(Vec::new());
    w.serialize(row).expect("writing to memory");
    let text = String::from_utf8(w.into_inner().expect("writing to memory")).expect("text");
    let mut lines = text.splitn(2, '\n');
    let header = format!("{}\n", lines.next().unwrap_or(""));
    (header, lines.next().unwrap_or("").to_string())
}

/// The run id at the start of a CSV line, if the line is complete and well formed.
fn line_run_id(line: &str) -> Option<u64> {
    line.split(',').next()?.parse().ok()
}

/// Appends to the three sweep CSVs.
pub struct SweepWriter {
    dir: PathBuf,
    files: Vec<BufWriter<File>>,
}

impl SweepWriter {
    /// Starts a new sweep in `dir`: writes the headers (replacing earlier sweep CSVs there).
    pub fn create(dir: &Path, headers: [&str; 3]) -> Result<SweepWriter> {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut files = Vec::new();
        for (name, header) in SWEEP_CSVS.iter().zip(headers) {
            let path = dir.join(name);
            let mut f =
                BufWriter::new(File::create(&path).with_context(|| format!("cannot create {}", path.display()))?);
            f.write_all(header.as_bytes())?;
            f.flush()?;
            files.push(f);
        }
        Ok(SweepWriter { dir: dir.to_path_buf(), files })
    }

    /// Reopens a sweep for `--resume`: checks the headers, drops a torn last line and any annual or summary
    /// rows of runs without a complete `runs.csv` row, and returns the runs already done.
    pub fn resume(dir: &Path, headers: [&str; 3]) -> Result<(SweepWriter, BTreeSet<u64>)> {
        let runs_path = dir.join("runs.csv");
        let text =
            fs::read_to_string(&runs_path).with_context(|| format!("cannot read {} to resume", runs_path.display()))?;
        if !text.starts_with(headers[2]) {
            bail!("{}: its columns differ from this sweep's; not resuming", runs_path.display());
        }
        let mut done = BTreeSet::new();
        for line in text[headers[2].len()..].split_inclusive('\n') {
            if !line.ends_with('\n') {
                break;
            }
            match line_run_id(line) {
                Some(id) if done.last().is_none_or(|last| id > *last) => {
                    done.insert(id);
                }
                _ => break,
            }
        }
        let last_done = done.last().copied();
        let mut files = Vec::new();
        for (name, header) in SWEEP_CSVS.iter().zip(headers) {
            let path = dir.join(name);
            let text =
                fs::read_to_string(&path).with_context(|| format!("cannot read {} to resume", path.display()))?;
            if !text.starts_with(header) {
                bail!("{}: its columns differ from this sweep's; not resuming", path.display());
            }
            let mut len = header.len();
            for line in text[len..].split_inclusive('\n') {
                let complete = line.ends_with('\n');
                let id = line_run_id(line);
                if !complete || id.is_none() || last_done.is_none_or(|last| id.unwrap() > last) {
                    break;
                }
                len += line.len();
            }
            let f = OpenOptions::new().write(true).open(&path)?;
            f.set_len(len as u64)?;
            let mut f = BufWriter::new(OpenOptions::new().append(true).open(&path)?);
            f.flush()?;
            files.push(f);
        }
        Ok((SweepWriter { dir: dir.to_path_buf(), files }, done))
    }

    /// Writes one run: its annual and summary lines, then its runs.csv line; each file is flushed.
    pub fn write_run(&mut self, annual: &str, summary: &str, runs_line: &str) -> Result<()> {
        for (f, text) in self.files.iter_mut().zip([annual, summary, runs_line]) {
            f.write_all(text.as_bytes())?;
            f.flush()?;
        }
        Ok(())
    }

    /// Flushes and syncs every file.
    pub fn finish(mut self) -> Result<()> {
        for f in self.files.iter_mut() {
            f.flush()?;
            f.get_ref().sync_all()?;
        }
        if let Ok(d) = File::open(&self.dir) {
            d.sync_all().ok();
        }
        Ok(())
    }
}

/// Where the trace of run `run_id` goes.
pub fn trace_dir(dir: &Path, run_id: u64) -> PathBuf {
    dir.join("traces").join(format!("run-{run_id:06}"))
}

/// Writes a run's trace and market rows into `traces/run-<id>/` atomically (temporary folder + rename).
pub fn write_trace(
    dir: &Path,
    run_id: u64,
    trace: &[crate::sim::rows::TraceRow],
    market: &[crate::sim::rows::MarketRow],
) -> Result<()> {
    let final_dir = trace_dir(dir, run_id);
    let tmp = dir.join("traces").join(format!(".tmp-run-{run_id:06}-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    fs::create_dir_all(&tmp)?;
    let mut w = csv::Writer::from_path(tmp.join("trace.csv"))?;
    for r in trace {
        w.serialize(r)?;
    }
    w.flush()?;
    let mut w = csv::Writer::from_path(tmp.join("market.csv"))?;
    for r in market {
        w.serialize(r)?;
    }
    w.flush()?;
    if final_dir.exists() {
        fs::remove_dir_all(&final_dir)?;
    }
    fs::rename(&tmp, &final_dir)?;
    Ok(())
}

/// Removes temporary trace folders left by a crashed process (`traces/.tmp-run-*`).
pub fn remove_stale_trace_temps(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir.join("traces")) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp-run-") {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Writes `text` to `path` atomically (temporary file in the same folder, then rename).
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    {
        let mut f = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path).with_context(|| format!("cannot move {} into place", path.display()))?;
    Ok(())
}
