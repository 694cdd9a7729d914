//! A run's output directory, written atomically: files are streamed into a private staging folder inside
//! the target directory and renamed over their final names only when the run succeeded. A failed or
//! interrupted run leaves the previous results untouched; nothing the tool did not write is deleted.

use crate::sim::RowSink;
use crate::sim::resources::RunTables;
use crate::sim::rows::{MarketRow, SummaryRow, TraceRow};
use anyhow::{Context, Result};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The files of a run, in the order they are moved into place.
pub const RUN_FILES: [&str; 5] = ["trace.csv", "market.csv", "annual.csv", "summary.csv", "manifest.json"];
const STAGING_PREFIX: &str = ".llm-market-staging-";

type CsvOut = csv::Writer<BufWriter<File>>;

/// An open run output: the trace and market CSVs are streamed as the run goes.
pub struct RunOutput {
    dir: PathBuf,
    staging: PathBuf,
    trace: CsvOut,
    market: CsvOut,
}

fn csv_writer(path: &Path) -> Result<CsvOut> {
    let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(csv::WriterBuilder::new().has_headers(true).from_writer(BufWriter::with_capacity(1 << 20, f)))
}

/// Removes staging folders left by processes that no longer run (a crash or kill -9).
fn remove_stale_staging(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(pid) = name.strip_prefix(STAGING_PREFIX).and_then(|p| p.parse::<u32>().ok()) {
            let alive = Path::new(&format!("/proc/{pid}")).exists() && pid != std::process::id();
            if !alive {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}

impl RunOutput {
    /// Creates `dir` if needed and a fresh staging folder inside it.
    pub fn create(dir: &Path) -> Result<RunOutput> {
        fs::create_dir_all(dir).with_context(|| format!("cannot create the output directory {}", dir.display()))?;
        remove_stale_staging(dir);
        let staging = dir.join(format!("{STAGING_PREFIX}{}", std::process::id()));
        if staging.exists() {
            fs::remove_dir_all(&staging).with_context(|| format!("cannot clear {}", staging.display()))?;
        }
        fs::create_dir(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
        let trace = csv_writer(&staging.join("trace.csv"))?;
        let market = csv_writer(&staging.join("market.csv"))?;
        Ok(RunOutput { dir: dir.to_path_buf(), staging, trace, market })
    }

    /// Writes the final tables and the manifest, then moves every file into place.
    pub fn finish(
        mut self,
        tables: &RunTables,
        thresholds: &[f64],
        manifest: &serde_json::Value,
    ) -> Result<Vec<PathBuf>> {
        self.trace.flush()?;
        self.market.flush()?;
        let mut annual = csv_writer(&self.staging.join("annual.csv"))?;
        for r in &tables.annual {
            annual.serialize(r)?;
        }
        annual.flush()?;
        write_summary(&self.staging.join("summary.csv"), &tables.summary, thresholds)?;
        let mut m = File::create(self.staging.join("manifest.json"))?;
        m.write_all(serde_json::to_string_pretty(manifest)?.as_bytes())?;
        m.write_all(b"\n")?;
        m.sync_all()?;
        let mut done = Vec::new();
        for name in RUN_FILES {
            let from = self.staging.join(name);
            File::open(&from)?.sync_all()?;
            let to = self.dir.join(name);
            fs::rename(&from, &to).with_context(|| format!("cannot move {} into place", to.display()))?;
            done.push(to);
        }
        fs::remove_dir(&self.staging).ok();
        if let Ok(d) = File::open(&self.dir) {
            d.sync_all().ok();
        }
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
    fn rows(&mut self, trace: &[TraceRow], market: &[MarketRow]) -> Result<(), String> {
        for r in trace {
            self.trace.serialize(r).map_err(|e| e.to_string())?;
        }
        for r in market {
            self.market.serialize(r).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Writes `summary.csv` (its threshold columns depend on the scenario).
pub fn write_summary(path: &Path, rows: &[SummaryRow], thresholds: &[f64]) -> Result<()> {
    let mut w = csv_writer(path)?;
    w.write_record(SummaryRow::header(thresholds))?;
    for r in rows {
        w.write_record(r.record())?;
    }
    w.flush()?;
    Ok(())
}
