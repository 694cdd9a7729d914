//! A sweep's output files: `annual.csv`, `summary.csv`, `runs.csv` and `index.csv` are appended run by run
//! in `run_id` order and flushed after each run, so a crash loses at most the run being written. Traces of
//! sampled runs go to `traces/run-<id>/`, each written to a temporary folder and renamed into place.
//!
//! Commit order: a run's trace (if kept), its annual and summary rows, its `runs.csv` row, and last its
//! line of `index.csv` with the row counts and checksums that `--resume`, `merge` and `compare` verify
//! (see [`crate::io::sweep_check`]); a run counts as done once its index line is complete.

use super::sweep_check::{INDEX_HEADER, IndexEntry, SWEEP_FILES, TRACE_FILES, trace_crc, trace_dir};
use crate::sim::MemorySink;
use anyhow::{Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

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

/// The three header lines of a sweep: annual.csv, summary.csv, runs.csv.
pub fn headers(sweep: &crate::experiment::spec::Sweep) -> [String; 3] {
    let sample = crate::sim::rows::AnnualRow::new(0, 0, String::new(), "", crate::model::econ::Cents::ZERO);
    let (annual, _) = serde_lines(&sample);
    let summary = csv_line(&crate::sim::rows::SummaryRow::header(&sweep.base.revenue_thresholds_usd));
    [annual, summary, csv_line(&crate::experiment::runner::runs_columns(sweep))]
}

/// Appends to the four sweep files.
pub struct SweepWriter {
    /// Where the files are written (the sweep folder, or a repair staging folder inside it).
    dir: PathBuf,
    /// The sweep folder (traces always go there).
    root: PathBuf,
    files: Vec<(PathBuf, BufWriter<File>)>,
}

fn open_append(path: &Path) -> Result<BufWriter<File>> {
    let f = OpenOptions::new().append(true).open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(BufWriter::with_capacity(1 << 16, f))
}

impl SweepWriter {
    /// Starts new sweep files in `dir` (the sweep folder `root` or a staging folder inside it): each file is
    /// written with its header to a temporary name and renamed, so a file exists only with its whole header.
    pub fn create(dir: &Path, root: &Path, headers: [&str; 3]) -> Result<SweepWriter> {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut files = Vec::new();
        for (name, header) in SWEEP_FILES.iter().zip(headers.into_iter().chain([INDEX_HEADER])) {
            let path = dir.join(name);
            write_atomic(&path, header)?;
            files.push((path.clone(), open_append(&path)?));
        }
        Ok(SweepWriter { dir: dir.to_path_buf(), root: root.to_path_buf(), files })
    }

    /// Reopens verified sweep files for `--resume`, cutting each file to `keep` bytes (the end of the last
    /// committed run: what follows is the run that was being written when the process stopped).
    pub fn reopen(dir: &Path, keep: [u64; 4]) -> Result<SweepWriter> {
        let mut files = Vec::new();
        for (name, len) in SWEEP_FILES.iter().zip(keep) {
            let path = dir.join(name);
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            if f.metadata()?.len() != len {
                f.set_len(len).with_context(|| format!("cannot cut {} to its last committed run", path.display()))?;
                f.sync_all()?;
            }
            files.push((path.clone(), open_append(&path)?));
        }
        Ok(SweepWriter { dir: dir.to_path_buf(), root: dir.to_path_buf(), files })
    }

    /// Writes one run: its trace (if any), its annual and summary rows, its runs.csv row, then its index
    /// line; each file is flushed in that order.
    pub fn write_run(
        &mut self,
        run_id: u64,
        annual: &str,
        summary: &str,
        runs_line: &str,
        trace: Option<&MemorySink>,
    ) -> Result<()> {
        let crc = match trace {
            Some(t) => Some(write_trace(&self.root, run_id, t)?),
            None => None,
        };
        let index = IndexEntry::of(run_id, annual, summary, runs_line, crc).line();
        for ((path, f), text) in self.files.iter_mut().zip([annual, summary, runs_line, index.as_str()]) {
            f.write_all(text.as_bytes())
                .and_then(|_| f.flush())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }

    /// Writes a finished run (see [`SweepWriter::write_run`]), formatting its rows as CSV lines.
    pub fn write_finished(&mut self, f: &crate::experiment::runner::Finished) -> Result<()> {
        let annual: String = f.annual.iter().map(|r| serde_lines(r).1).collect();
        let summary: String = f.summary.iter().map(|s| csv_line(&s.record())).collect();
        self.write_run(f.run_id, &annual, &summary, &csv_line(&f.runs_fields), f.trace.as_ref())
    }

    /// Copies a verified run's rows (from the files being repaired): the same bytes, a new index line.
    pub fn copy_run(
        &mut self,
        run_id: u64,
        annual: &str,
        summary: &str,
        runs_line: &str,
        trace_crc: Option<u32>,
    ) -> Result<()> {
        let index = IndexEntry::of(run_id, annual, summary, runs_line, trace_crc).line();
        for ((path, f), text) in self.files.iter_mut().zip([annual, summary, runs_line, index.as_str()]) {
            f.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }

    /// Flushes and syncs every file.
    pub fn finish(self) -> Result<()> {
        for (path, mut f) in self.files {
            f.flush()
                .and_then(|_| f.get_ref().sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        super::folder::sync_dir(&self.dir);
        Ok(())
    }

    /// Moves repaired files from this writer's staging folder over the sweep's files, then removes it.
    pub fn install(self, root: &Path) -> Result<()> {
        let staging = self.dir.clone();
        self.finish()?;
        for name in SWEEP_FILES {
            let (from, to) = (staging.join(name), root.join(name));
            fs::rename(&from, &to).with_context(|| format!("cannot move {} into place", to.display()))?;
        }
        fs::remove_dir_all(&staging).ok();
        super::folder::sync_dir(root);
        Ok(())
    }
}

/// Writes a run's trace, market and decision rows into `traces/run-<id>/` atomically (temporary folder +
/// rename); returns the checksum of the three files.
pub fn write_trace(dir: &Path, run_id: u64, rows: &MemorySink) -> Result<u32> {
    let final_dir = trace_dir(dir, run_id);
    let tmp = dir.join("traces").join(format!(".tmp-run-{run_id:06}-{}", std::process::id()));
    let result = (|| -> Result<u32> {
        if tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut bytes = Vec::new();
        let files = [
            super::outputs::to_csv(&rows.trace)?,
            super::outputs::to_csv(&rows.market)?,
            super::outputs::decisions_csv(&rows.decisions)?,
        ];
        for (name, rows) in TRACE_FILES.into_iter().zip(files) {
            let path = tmp.join(name);
            let mut f = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
            f.write_all(&rows)
                .and_then(|_| f.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            bytes.push(rows);
        }
        if final_dir.exists() {
            // The trace of a run that is being done again (resumed or repaired): replaced by the same bytes.
            fs::remove_dir_all(&final_dir).with_context(|| format!("cannot replace {}", final_dir.display()))?;
        }
        fs::rename(&tmp, &final_dir).with_context(|| format!("cannot move {} into place", final_dir.display()))?;
        Ok(trace_crc(&[&bytes[0], &bytes[1], &bytes[2]]))
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

/// Writes `text` to `path` atomically (temporary file in the same folder, synced, then renamed). On any
/// error the temporary file is removed and the error names the path.
pub fn write_atomic(path: &Path, text: impl AsRef<[u8]>) -> Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let tmp = path.with_file_name(format!("{name}.tmp-{}", std::process::id()));
    let result = (|| -> Result<()> {
        let mut f = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(text.as_ref())
            .and_then(|_| f.sync_all())
            .with_context(|| format!("cannot write {}", path.display()))?;
        fs::rename(&tmp, path).with_context(|| format!("cannot move {} into place", path.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
