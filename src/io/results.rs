//! Reading finished outputs back for comparison: a run folder (`llm-market run`) or a sweep folder
//! (`llm-market sweep`, a shard or a merge) becomes one or more [`ScenarioData`], one per parameter point.
//! Nothing is read before it is verified: a run's files against the checksums of its manifest, a sweep's
//! rows against its index (as `--resume` does); an unfinished sweep is refused, or with `partial` only
//! its committed runs are used.

use crate::analysis::compare::{DecisionMark, MARKED_DECISIONS, Replicate, ScenarioData, TracePoint};
use crate::experiment::runner::TraceMode;
use crate::io::sweep_check;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::Path;

fn read_csv(path: &Path) -> Result<(csv::StringRecord, Vec<csv::StringRecord>)> {
    read_csv_prefix(path, None)
}

/// Reads a CSV file, or only its first `len` bytes (the committed runs of an unfinished sweep).
fn read_csv_prefix(path: &Path, len: Option<u64>) -> Result<(csv::StringRecord, Vec<csv::StringRecord>)> {
    let mut bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if let Some(len) = len {
        bytes.truncate(len as usize);
    }
    let mut r = csv::Reader::from_reader(std::io::Cursor::new(bytes));
    let h = r.headers()?.clone();
    let rows =
        r.records().collect::<Result<Vec<_>, _>>().with_context(|| format!("{} is malformed", path.display()))?;
    Ok((h, rows))
}

fn col(h: &csv::StringRecord, name: &str, path: &Path) -> Result<usize> {
    h.iter().position(|x| x == name).with_context(|| format!("{}: no column {name}", path.display()))
}

fn num(s: &str) -> f64 {
    s.parse().unwrap_or(f64::NAN)
}

/// Annual and summary rows of one file, grouped by run id: (run_id → rows as maps column → text).
fn grouped(path: &Path, len: Option<u64>) -> Result<BTreeMap<u64, Vec<BTreeMap<String, String>>>> {
    let (h, rows) = read_csv_prefix(path, len)?;
    let mut out: BTreeMap<u64, Vec<BTreeMap<String, String>>> = BTreeMap::new();
    for r in rows {
        let id: u64 =
            r.get(0).and_then(|x| x.parse().ok()).with_context(|| format!("{}: bad run_id", path.display()))?;
        out.entry(id).or_default().push(h.iter().zip(r.iter()).map(|(k, v)| (k.to_string(), v.to_string())).collect());
    }
    Ok(out)
}

fn read_trace(path: &Path) -> Result<Vec<TracePoint>> {
    let (h, rows) = read_csv(path)?;
    let (d, f, c, u) =
        (col(&h, "date", path)?, col(&h, "firm", path)?, col(&h, "cash_usd", path)?, col(&h, "users", path)?);
    let q = col(&h, "quality_elo", path)?;
    rows.iter()
        .map(|r| {
            Ok(TracePoint {
                date: r[d].parse().with_context(|| format!("{}: bad date {}", path.display(), &r[d]))?,
                firm: r[f].to_string(),
                cash: num(&r[c]),
                users: num(&r[u]),
                quality: num(&r[q]),
            })
        })
        .collect()
}

/// The marked decisions of a decisions.csv (none when the file is absent: a folder written before it existed).
fn read_decisions(path: &Path) -> Result<Vec<DecisionMark>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let (h, rows) = read_csv(path)?;
    let (d, f, k) = (col(&h, "date", path)?, col(&h, "firm", path)?, col(&h, "decision", path)?);
    rows.iter()
        .filter(|r| MARKED_DECISIONS.contains(&&r[k]))
        .map(|r| {
            Ok(DecisionMark {
                date: r[d].parse().with_context(|| format!("{}: bad date {}", path.display(), &r[d]))?,
                firm: r[f].to_string(),
                decision: r[k].to_string(),
            })
        })
        .collect()
}

fn last_hhi(market: &Path) -> f64 {
    read_csv(market)
        .ok()
        .and_then(|(h, rows)| Some(num(&rows.last()?[h.iter().position(|x| x == "hhi")?])))
        .unwrap_or(f64::NAN)
}

/// Checks a run folder's CSVs against the rows and checksums its manifest recorded.
fn verify_run(dir: &Path, manifest: &serde_json::Value) -> Result<()> {
    let Some(sums) = manifest["checksums"].as_object() else {
        bail!("{}: its manifest records no checksums (an earlier version wrote it): run it again", dir.display());
    };
    if manifest["format"] == "parquet" {
        bail!(
            "{}: its tables are Parquet files (--format parquet); compare reads CSV run folders: run it again without --format parquet",
            dir.display()
        );
    }
    for name in &crate::io::outputs::RUN_FILES[..4] {
        let path = dir.join(name);
        if !path.is_file() {
            bail!("{}: missing", path.display());
        }
        let got = crate::io::outputs::checksum(&path)?;
        let want = sums.get(*name).cloned().unwrap_or_default();
        if got != want {
            bail!(
                "{}: the file changed after the run wrote it ({} rows, {} bytes, CRC-32 {}; the manifest records {} rows, {} bytes, CRC-32 {})",
                path.display(),
                got["rows"],
                got["bytes"],
                got["crc32"],
                want["rows"],
                want["bytes"],
                want["crc32"]
            );
        }
    }
    Ok(())
}

/// Verifies a sweep folder; returns the byte lengths to read of annual, summary and runs (the committed
/// runs) and a note for a partial sweep.
/// What a verified sweep folder may be read for.
struct Verified {
    /// Bytes of annual.csv, summary.csv and runs.csv that hold committed runs.
    len: [u64; 3],
    /// Set for an unfinished sweep compared with `--partial`.
    note: Option<String>,
    /// Which runs keep a trace (only those traces are read: they are the ones verified).
    traces: TraceMode,
    total: u64,
}

fn verify_sweep(dir: &Path, manifest: &serde_json::Value, partial: bool) -> Result<Verified> {
    let complete = manifest["status"] == "complete";
    if !complete && !partial {
        bail!(
            "{}: the sweep did not finish (status {}): continue it with `llm-market sweep … --resume`, or compare its committed runs with --partial",
            dir.display(),
            manifest["status"].as_str().unwrap_or("unknown")
        );
    }
    let sweep_check::Recorded { ids, total, traces, headers } = sweep_check::recorded(dir, manifest)?;
    let count = ids.count;
    let traced = |id: u64| traces.keeps(id, total);
    let header_refs = [headers[0].as_str(), headers[1].as_str(), headers[2].as_str()];
    let c = sweep_check::check(dir, &sweep_check::Layout { headers: Some(header_refs), ids, traced: &traced })?;
    if !c.problems.is_empty() {
        bail!(
            "{}
cannot compare it: repair it first (`llm-market sweep … --resume --repair`)",
            c.describe(dir, 12)
        );
    }
    if complete && (c.torn_tail || c.committed != count) {
        bail!("{}: its manifest says complete but {} of {count} runs are committed", dir.display(), c.committed);
    }
    let note = (!complete).then(|| format!("partial: {} of {count} runs committed", c.committed));
    Ok(Verified { len: [c.keep[0], c.keep[1], c.keep[2]], note, traces, total })
}

/// A verified sweep folder's runs.csv and annual.csv (`llm-market analyze`).
pub struct SweepTables {
    pub manifest: serde_json::Value,
    pub runs_header: csv::StringRecord,
    /// runs.csv's rows in run-id order.
    pub runs: Vec<csv::StringRecord>,
    /// annual.csv's rows by run id (column → text).
    pub annual: BTreeMap<u64, Vec<BTreeMap<String, String>>>,
}

/// Reads a complete sweep, shard or merged folder's runs and annual tables after verifying every committed
/// run against the index, as `compare` does.
pub fn sweep_tables(dir: &Path) -> Result<SweepTables> {
    let mpath = dir.join("manifest.json");
    if !mpath.is_file() {
        bail!("{} is not a sweep output folder (no manifest.json)", dir.display());
    }
    let _lock = crate::io::folder::lock_for_reading(dir)?;
    let manifest = crate::io::folder::read_manifest(&mpath)
        .with_context(|| format!("{} is not a valid manifest", mpath.display()))?;
    let kind = manifest["kind"].as_str().unwrap_or("run");
    if !matches!(kind, "sweep" | "shard" | "merge") {
        bail!("{} holds a {kind}, not a sweep: `analyze` reads the folder of `llm-market sweep`", dir.display());
    }
    let Verified { len, .. } = verify_sweep(dir, &manifest, false)?;
    let annual = grouped(&dir.join("annual.csv"), Some(len[0]))?;
    let (runs_header, runs) = read_csv_prefix(&dir.join("runs.csv"), Some(len[2]))?;
    Ok(SweepTables { manifest, runs_header, runs, annual })
}

/// The tables of a verified output folder, as Parquet bytes (the Python package's `lm.load`).
pub struct FolderTables {
    /// `run`, `sweep`, `shard` or `merge`.
    pub kind: String,
    pub manifest: serde_json::Value,
    /// (table name — `trace`, `runs`, … —, its Parquet bytes), in the folder's file order.
    pub tables: Vec<(String, Vec<u8>)>,
}

/// Reads the tables of a finished run folder (CSV or Parquet) or sweep folder (a complete sweep, shard or
/// merge) after verifying every file as `compare` does: a run's files against its manifest's checksums, a
/// sweep's rows against its index. CSV tables are turned into Parquet bytes ([`super::parquet`]).
pub fn folder_tables(dir: &Path) -> Result<FolderTables> {
    let mpath = dir.join("manifest.json");
    if !mpath.is_file() {
        bail!("{} is not a run or sweep output folder (no manifest.json)", dir.display());
    }
    let kind = {
        let _lock = crate::io::folder::lock_for_reading(dir)?;
        let manifest = crate::io::folder::read_manifest(&mpath)
            .with_context(|| format!("{} is not a valid manifest", mpath.display()))?;
        manifest["kind"].as_str().unwrap_or("run").to_string()
    };
    if kind == "comparison" {
        bail!(
            "{} is a comparison folder: read its comparison.csv (lm.compare returns it as a DataFrame)",
            dir.display()
        );
    }
    let files: Vec<String> = if matches!(kind.as_str(), "sweep" | "shard" | "merge") {
        load_folder(dir, false)?;
        ["runs.csv", "annual.csv", "summary.csv"].iter().map(|s| s.to_string()).collect()
    } else {
        Vec::new()
    };
    let _lock = crate::io::folder::lock_for_reading(dir)?;
    let manifest = crate::io::folder::read_manifest(&mpath)
        .with_context(|| format!("{} is not a valid manifest", mpath.display()))?;
    let files = if files.is_empty() {
        let Some(sums) = manifest["checksums"].as_object() else {
            bail!("{}: its manifest records no checksums (an earlier version wrote it): run it again", dir.display());
        };
        for (name, want) in sums {
            let path = dir.join(name);
            if !path.is_file() {
                bail!("{}: missing", path.display());
            }
            let got = crate::io::outputs::bytes_checksum(
                &path,
                name.ends_with(".parquet").then(|| want["rows"].as_u64().unwrap_or(0)),
            )?;
            if got != *want {
                bail!(
                    "{}: the file changed after the run wrote it (the manifest records {want}, the file has {got})",
                    path.display()
                );
            }
        }
        crate::io::outputs::run_files(if manifest["format"] == "parquet" {
            super::parquet::Format::Parquet
        } else {
            super::parquet::Format::Csv
        })
        .into_iter()
        .filter(|f| f != "manifest.json")
        .collect()
    } else {
        files
    };
    let mut tables = Vec::new();
    for f in files {
        let path = dir.join(&f);
        let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let (stem, parquet) = match f.strip_suffix(".csv") {
            Some(stem) => {
                (stem.to_string(), super::parquet::csv_bytes_to_parquet(&path.display().to_string(), &bytes)?)
            }
            None => (f.trim_end_matches(".parquet").to_string(), bytes),
        };
        tables.push((stem, parquet));
    }
    Ok(FolderTables { kind, manifest, tables })
}

/// Loads a run or sweep output folder, after verifying it (see the module doc).
pub fn load_folder(dir: &Path, partial: bool) -> Result<Vec<ScenarioData>> {
    let mpath = dir.join("manifest.json");
    if !mpath.is_file() {
        bail!("{} is not a run or sweep output folder (no manifest.json)", dir.display());
    }
    let _lock = crate::io::folder::lock_for_reading(dir)?;
    let manifest = crate::io::folder::read_manifest(&mpath)
        .with_context(|| format!("{} is not a valid manifest", mpath.display()))?;
    let version =
        format!("{} {}", manifest["version"].as_str().unwrap_or("?"), manifest["git_commit"].as_str().unwrap_or(""));
    let kind = manifest["kind"].as_str().unwrap_or("run");
    if matches!(kind, "sweep" | "shard" | "merge") {
        let Verified { len, note, traces, total } = verify_sweep(dir, &manifest, partial)?;
        if let Some(n) = &note {
            eprintln!("warning: {}: {n}; only those are compared", dir.display());
        }
        let annual = grouped(&dir.join("annual.csv"), Some(len[0]))?;
        let summary = grouped(&dir.join("summary.csv"), Some(len[1]))?;
        let rpath = dir.join("runs.csv");
        let (h, rows) = read_csv_prefix(&rpath, Some(len[2]))?;
        let (ci, cp, cr, cs, cst, hhi) = (
            col(&h, "run_id", &rpath)?,
            col(&h, "point_id", &rpath)?,
            col(&h, "replicate", &rpath)?,
            col(&h, "seed", &rpath)?,
            col(&h, "status", &rpath)?,
            col(&h, "end_hhi", &rpath)?,
        );
        let mut params: Vec<(usize, String)> = (cs + 1..cst).map(|i| (i, h[i].to_string())).collect();
        let name = manifest["sweep"].as_str().unwrap_or("sweep").to_string();
        let mut points: BTreeMap<u64, ScenarioData> = BTreeMap::new();
        // A sweep crossed with posterior draws (`sweep --posterior`): a design point's draws pooled into one
        // scenario (draw fastest in the point ids), labelled by the design's parameters only.
        let spec: Option<crate::experiment::spec::SweepFile> =
            serde_json::from_value(manifest["sweep_spec"].clone()).ok();
        let draws = spec.as_ref().map_or(1, |f| f.draws());
        let drawn = spec.as_ref().and_then(|f| f.posterior.as_ref()).map_or(0, |d| d.parameters.len());
        params.truncate(params.len().saturating_sub(drawn));
        let n_points = manifest["points"].as_u64().unwrap_or(1) / draws;
        for r in &rows {
            let (id, point): (u64, u64) = (r[ci].parse()?, r[cp].parse()?);
            let (point, draw) = (point / draws, point % draws);
            let label = params.iter().map(|(i, p)| format!("{p}={}", &r[*i])).collect::<Vec<_>>().join(", ");
            let sc = points.entry(point).or_insert_with(|| ScenarioData {
                name: if n_points > 1 { format!("{name}#{point}") } else { name.clone() },
                description: {
                    let d = if label.is_empty() {
                        manifest["sweep_spec"]["description"].as_str().unwrap_or("").to_string()
                    } else {
                        label
                    };
                    match &note {
                        Some(n) => format!("{d} [{n}]"),
                        None => d,
                    }
                },
                source: dir.display().to_string(),
                version: version.clone(),
                spec: manifest["base_scenario_hash"].as_str().unwrap_or("").to_string(),
                replicates: Vec::new(),
                failed: 0,
                agents: manifest["agents"].as_u64(),
                point: (!params.is_empty()).then(|| {
                    (point, params.iter().map(|(i, p)| format!("{p}={}", &r[*i])).collect::<Vec<_>>().join("; "))
                }),
                draws: Vec::new(),
            });
            if &r[cst] != "ok" {
                sc.failed += 1;
                continue;
            }
            if draws > 1 {
                sc.draws.push(draw);
            }
            let tdir = crate::io::sweep_check::trace_dir(dir, id);
            let traced = traces.keeps(id, total);
            sc.replicates.push(Replicate {
                replicate: r[cr].parse()?,
                seed: r[cs].parse()?,
                annual: annual.get(&id).cloned().unwrap_or_default(),
                summary: summary.get(&id).cloned().unwrap_or_default(),
                hhi_end: num(&r[hhi]),
                trace: if traced { Some(read_trace(&tdir.join("trace.csv"))?) } else { None },
                decisions: if traced { read_decisions(&tdir.join("decisions.csv"))? } else { Vec::new() },
            });
        }
        Ok(points.into_values().collect())
    } else if kind == "run" {
        verify_run(dir, &manifest)?;
        let annual = grouped(&dir.join("annual.csv"), None)?;
        let summary = grouped(&dir.join("summary.csv"), None)?;
        let resolved: toml::Table =
            toml::from_str(manifest["resolved_scenario"].as_str().unwrap_or("")).unwrap_or_default();
        Ok(vec![ScenarioData {
            name: manifest["scenario"].as_str().unwrap_or("run").to_string(),
            description: resolved.get("description").and_then(|v| v.as_str()).unwrap_or("").to_string(),
            source: dir.display().to_string(),
            version,
            spec: String::new(),
            replicates: vec![Replicate {
                replicate: 0,
                seed: manifest["seed"].as_u64().unwrap_or(0),
                annual: annual.get(&0).cloned().unwrap_or_default(),
                summary: summary.get(&0).cloned().unwrap_or_default(),
                hhi_end: last_hhi(&dir.join("market.csv")),
                trace: Some(read_trace(&dir.join("trace.csv"))?),
                decisions: read_decisions(&dir.join("decisions.csv"))?,
            }],
            failed: 0,
            agents: manifest["agents"].as_u64(),
            point: None,
            draws: Vec::new(),
        }])
    } else {
        bail!("{} holds a {kind}, not a run or a sweep: nothing to compare there", dir.display())
    }
}
