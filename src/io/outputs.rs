//! A run's output directory, written atomically: the folder is claimed (locked; a folder holding other
//! outputs is refused unless `--force` moves them aside), files are streamed into a private staging folder
//! inside it and renamed into place only when the run succeeded. A failed or interrupted run leaves no
//! output; nothing the tool did not write is deleted. The manifest records each CSV's rows and checksum, so
//! that a damaged file is found before it is read back (`compare`).

use super::folder::{Kind, Mode, STAGING_PREFIX};
use super::parquet::Format;
use crate::sim::RowSink;
use crate::sim::resources::RunTables;
use crate::sim::resources::Trace;
use crate::sim::rows::{DECISION_COLUMNS, DecisionRow, SummaryRow};
use anyhow::{Context, Result};
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// The files of a run, in the order they are moved into place.
pub const RUN_FILES: [&str; 6] =
    ["trace.csv", "market.csv", "decisions.csv", "annual.csv", "summary.csv", "manifest.json"];

type CsvOut = csv::Writer<BufWriter<File>>;

/// A run's table files in `format`, then the manifest, in the order they are moved into place.
pub fn run_files(format: Format) -> Vec<String> {
    RUN_FILES
        .iter()
        .map(|f| match (format, f.strip_suffix(".csv")) {
            (Format::Parquet, Some(stem)) => format!("{stem}.parquet"),
            _ => f.to_string(),
        })
        .collect()
}

/// An open run output: the trace and market CSVs are streamed as the run goes (with `--format parquet`
/// they are turned into Parquet files in the staging folder before anything is moved into place).
pub struct RunOutput {
    _lock: super::folder::FolderLock,
    format: Format,
    dir: PathBuf,
    staging: PathBuf,
    trace: CsvOut,
    market: CsvOut,
    decisions: CsvOut,
}

fn csv_writer(path: &Path) -> Result<CsvOut> {
    let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(csv::WriterBuilder::new().has_headers(true).from_writer(BufWriter::with_capacity(1 << 20, f)))
}

/// A `decisions.csv` writer with its header written (a run without decisions still has the header).
fn decisions_writer(path: &Path) -> Result<CsvOut> {
    let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(BufWriter::with_capacity(1 << 16, f));
    w.write_record(DECISION_COLUMNS)?;
    Ok(w)
}

/// The bytes of a `decisions.csv` holding `rows` (sweeps write traces from memory).
pub fn decisions_csv(rows: &[DecisionRow]) -> Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    w.write_record(DECISION_COLUMNS)?;
    for r in rows {
        w.serialize(r)?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
}

/// Rows as CSV bytes with their header (serde field names).
pub fn to_csv<T: serde::Serialize>(rows: &[T]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
}

/// The five tables of a run held in memory (the library API's [`crate::api::RunResult`]) as the bytes of
/// the CSV files a run folder holds: (table name, bytes), in [`RUN_FILES`] order.
pub fn run_csvs(result: &crate::api::RunResult, thresholds: &[f64]) -> Result<Vec<(&'static str, Vec<u8>)>> {
    Ok(vec![
        ("trace", to_csv(&result.trace)?),
        ("market", to_csv(&result.market)?),
        ("decisions", decisions_csv(&result.decisions)?),
        ("annual", to_csv(&result.annual)?),
        ("summary", summary_csv(&result.summary, thresholds)?),
    ])
}

impl RunOutput {
    /// Claims `dir` for a run (see [`super::folder::claim`]; `force` moves earlier outputs aside) and
    /// opens a fresh staging folder inside it.
    pub fn create(dir: &Path, force: bool) -> Result<RunOutput> {
        let mode = if force { Mode::Force } else { Mode::Fresh };
        let lock = super::folder::claim(dir, Kind::Run, mode)?;
        let staging = dir.join(format!("{STAGING_PREFIX}{}", std::process::id()));
        fs::create_dir(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
        let trace = csv_writer(&staging.join("trace.csv"))?;
        let market = csv_writer(&staging.join("market.csv"))?;
        let decisions = decisions_writer(&staging.join("decisions.csv"))?;
        Ok(RunOutput { _lock: lock, format: Format::Csv, dir: dir.to_path_buf(), staging, trace, market, decisions })
    }

    /// Writes the tables in `format` (CSV by default).
    pub fn with_format(mut self, format: Format) -> RunOutput {
        self.format = format;
        self
    }

    /// Writes the final tables and the manifest, then moves every file into place.
    /// On error (a full disk) the staging folder is removed and the folder holds no output.
    pub fn finish(
        mut self,
        tables: &RunTables,
        thresholds: &[f64],
        manifest: &serde_json::Value,
    ) -> Result<Vec<PathBuf>> {
        let result = self.finish_files(tables, thresholds, manifest);
        if result.is_err() {
            let _ = fs::remove_dir_all(&self.staging);
        }
        result
    }

    fn finish_files(
        &mut self,
        tables: &RunTables,
        thresholds: &[f64],
        manifest: &serde_json::Value,
    ) -> Result<Vec<PathBuf>> {
        let staging = self.staging.clone();
        let staged = |name: &str| staging.join(name);
        self.trace.flush().with_context(|| format!("cannot write {}", staged("trace.csv").display()))?;
        self.market.flush().with_context(|| format!("cannot write {}", staged("market.csv").display()))?;
        self.decisions.flush().with_context(|| format!("cannot write {}", staged("decisions.csv").display()))?;
        let mut annual = csv_writer(&staged("annual.csv"))?;
        for r in &tables.annual {
            annual.serialize(r)?;
        }
        annual.flush().with_context(|| format!("cannot write {}", staged("annual.csv").display()))?;
        write_summary(&staged("summary.csv"), &tables.summary, thresholds)?;
        let mut manifest = manifest.clone();
        manifest["kind"] = serde_json::json!(Kind::Run.as_str());
        manifest["format"] = serde_json::json!(self.format.as_str());
        manifest["files"] = serde_json::json!(run_files(self.format));
        let mut sums = serde_json::Map::new();
        for name in &RUN_FILES[..5] {
            match self.format {
                Format::Csv => sums.insert(name.to_string(), checksum(&staged(name))?),
                Format::Parquet => {
                    let (path, rows) = super::parquet::convert_file(&staged(name))?;
                    fs::remove_file(staged(name))
                        .with_context(|| format!("cannot remove {}", staged(name).display()))?;
                    let file = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                    sums.insert(file, bytes_checksum(&path, Some(rows))?)
                }
            };
        }
        manifest["checksums"] = serde_json::Value::Object(sums);
        super::manifest::write(&staged("manifest.json"), &manifest)?;
        let mut done = Vec::new();
        for name in run_files(self.format) {
            let from = self.staging.join(&name);
            File::open(&from).and_then(|f| f.sync_all()).with_context(|| format!("cannot write {}", from.display()))?;
            let to = self.dir.join(&name);
            fs::rename(&from, &to).with_context(|| format!("cannot move {} into place", to.display()))?;
            done.push(to);
        }
        fs::remove_dir(&self.staging).ok();
        super::folder::sync_dir(&self.dir);
        Ok(done)
    }

    /// Discards everything written so far (the previous results stay as they were).
    pub fn abort(self) {
        let staging = self.staging.clone();
        drop(self);
        let _ = fs::remove_dir_all(staging);
    }
}

impl RowSink for RunOutput {
    fn rows(&mut self, batch: &Trace) -> Result<(), String> {
        let fail = |name: &str, e: csv::Error| format!("cannot write {}: {e}", self.staging.join(name).display());
        for r in &batch.rows {
            self.trace.serialize(r).map_err(|e| fail("trace.csv", e))?;
        }
        for r in &batch.market {
            self.market.serialize(r).map_err(|e| fail("market.csv", e))?;
        }
        for r in &batch.decisions {
            self.decisions.serialize(r).map_err(|e| fail("decisions.csv", e))?;
        }
        Ok(())
    }
}

/// The rows (lines after the header) and CRC-32 of a written CSV file, as the run manifest records them.
pub fn checksum(path: &Path) -> Result<serde_json::Value> {
    bytes_checksum(path, None)
}

/// The rows (`rows`, or a CSV file's lines after the header), bytes and CRC-32 of a written file.
pub fn bytes_checksum(path: &Path, rows: Option<u64>) -> Result<serde_json::Value> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let rows = rows.unwrap_or_else(|| bytes.iter().filter(|&&b| b == b'\n').count().saturating_sub(1) as u64);
    Ok(serde_json::json!({"rows": rows, "bytes": bytes.len(), "crc32": format!("{:08x}", crc32fast::hash(&bytes))}))
}

/// Writes `summary.csv` (its threshold columns depend on the scenario).
pub fn write_summary(path: &Path, rows: &[SummaryRow], thresholds: &[f64]) -> Result<()> {
    fs::write(path, summary_csv(rows, thresholds)?).with_context(|| format!("cannot write {}", path.display()))
}

/// The bytes of a `summary.csv` holding `rows` (its threshold columns depend on the scenario).
fn summary_csv(rows: &[SummaryRow], thresholds: &[f64]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(SummaryRow::header(thresholds))?;
    for r in rows {
        w.write_record(r.record())?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
}
