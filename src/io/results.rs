//! Reading finished outputs back for comparison: a run folder (`llm-market run`) or a sweep folder
//! (`llm-market sweep`) becomes one or more [`ScenarioData`], one per parameter point.

use crate::analysis::compare::{Replicate, ScenarioData, TracePoint};
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::Path;

fn read_csv(path: &Path) -> Result<(csv::StringRecord, Vec<csv::StringRecord>)> {
    let mut r = csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
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
fn grouped(path: &Path) -> Result<BTreeMap<u64, Vec<BTreeMap<String, String>>>> {
    let (h, rows) = read_csv(path)?;
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
    rows.iter()
        .map(|r| {
            Ok(TracePoint {
                date: r[d].parse().with_context(|| format!("{}: bad date {}", path.display(), &r[d]))?,
                firm: r[f].to_string(),
                cash: num(&r[c]),
                users: num(&r[u]),
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

/// Loads a run or sweep output folder.
pub fn load_folder(dir: &Path) -> Result<Vec<ScenarioData>> {
    let mpath = dir.join("manifest.json");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&mpath)
            .with_context(|| format!("{} is not a run or sweep output folder (no manifest.json)", dir.display()))?,
    )
    .with_context(|| format!("{} is not valid JSON", mpath.display()))?;
    let version =
        format!("{} {}", manifest["version"].as_str().unwrap_or("?"), manifest["git_commit"].as_str().unwrap_or(""));
    let annual = grouped(&dir.join("annual.csv"))?;
    let summary = grouped(&dir.join("summary.csv"))?;
    if manifest["kind"] == "sweep" {
        if manifest["status"] != "complete" {
            bail!("{}: the sweep did not finish (status {}); resume it first", dir.display(), manifest["status"]);
        }
        let rpath = dir.join("runs.csv");
        let (h, rows) = read_csv(&rpath)?;
        let (ci, cp, cr, cs, cst, hhi) = (
            col(&h, "run_id", &rpath)?,
            col(&h, "point_id", &rpath)?,
            col(&h, "replicate", &rpath)?,
            col(&h, "seed", &rpath)?,
            col(&h, "status", &rpath)?,
            col(&h, "end_hhi", &rpath)?,
        );
        let params: Vec<(usize, String)> = (cs + 1..cst).map(|i| (i, h[i].to_string())).collect();
        let name = manifest["sweep"].as_str().unwrap_or("sweep").to_string();
        let mut points: BTreeMap<u64, ScenarioData> = BTreeMap::new();
        let n_points = manifest["points"].as_u64().unwrap_or(1);
        for r in &rows {
            let (id, point): (u64, u64) = (r[ci].parse()?, r[cp].parse()?);
            let label = params.iter().map(|(i, p)| format!("{p}={}", &r[*i])).collect::<Vec<_>>().join(", ");
            let sc = points.entry(point).or_insert_with(|| ScenarioData {
                name: if n_points > 1 { format!("{name}#{point}") } else { name.clone() },
                description: if label.is_empty() {
                    manifest["sweep_spec"]["description"].as_str().unwrap_or("").to_string()
                } else {
                    label
                },
                source: dir.display().to_string(),
                version: version.clone(),
                spec: manifest["base_scenario_hash"].as_str().unwrap_or("").to_string(),
                replicates: Vec::new(),
                failed: 0,
            });
            if &r[cst] != "ok" {
                sc.failed += 1;
                continue;
            }
            let tpath = crate::io::sweep_out::trace_dir(dir, id).join("trace.csv");
            sc.replicates.push(Replicate {
                replicate: r[cr].parse()?,
                seed: r[cs].parse()?,
                annual: annual.get(&id).cloned().unwrap_or_default(),
                summary: summary.get(&id).cloned().unwrap_or_default(),
                hhi_end: num(&r[hhi]),
                trace: if tpath.exists() { Some(read_trace(&tpath)?) } else { None },
            });
        }
        Ok(points.into_values().collect())
    } else {
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
            }],
            failed: 0,
        }])
    }
}
