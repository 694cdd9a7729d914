//! Merging shard outputs: every run must be present exactly once; the merged CSVs are byte-identical to
//! those of the same sweep run unsharded.

use crate::io::sweep_out::{self, SWEEP_CSVS};
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

struct ShardData {
    dir: PathBuf,
    manifest: serde_json::Value,
    /// header and lines grouped by run id, per CSV.
    files: Vec<(String, BTreeMap<u64, String>)>,
}

fn read_shard(dir: &Path) -> Result<ShardData> {
    let mpath = dir.join("manifest.json");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&mpath).with_context(|| format!("cannot read {}", mpath.display()))?,
    )
    .with_context(|| format!("{} is not valid JSON", mpath.display()))?;
    if manifest["kind"] != "sweep" {
        bail!("{} is not a sweep output", dir.display());
    }
    if manifest["status"] != "complete" {
        bail!(
            "{}: the sweep there did not finish (status {}); rerun it with --resume",
            dir.display(),
            manifest["status"]
        );
    }
    let mut files = Vec::new();
    for name in SWEEP_CSVS {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut lines = text.split_inclusive('\n');
        let header = lines.next().unwrap_or("").to_string();
        let mut by_run: BTreeMap<u64, String> = BTreeMap::new();
        for line in lines {
            let id: u64 = line
                .split(',')
                .next()
                .and_then(|x| x.parse().ok())
                .with_context(|| format!("{}: malformed line {line:?}", path.display()))?;
            if name == "runs.csv" && by_run.contains_key(&id) {
                bail!("{}: run {id} is present more than once", path.display());
            }
            by_run.entry(id).or_default().push_str(line);
        }
        files.push((header, by_run));
    }
    Ok(ShardData { dir: dir.to_path_buf(), manifest, files })
}

/// Merges shard folders into `out`; returns the number of runs.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<u64> {
    if dirs.is_empty() {
        bail!("nothing to merge: name the shard output folders");
    }
    let shards: Vec<ShardData> = dirs.iter().map(|d| read_shard(d)).collect::<Result<_>>()?;
    let first = &shards[0];
    for s in &shards[1..] {
        for key in ["spec_hash", "version", "git_commit", "total_runs"] {
            if s.manifest[key] != first.manifest[key] {
                bail!(
                    "{} and {} come from different sweeps or binaries: {key} {} vs {}",
                    first.dir.display(),
                    s.dir.display(),
                    first.manifest[key],
                    s.manifest[key]
                );
            }
        }
        for (k, (h, _)) in s.files.iter().enumerate() {
            if *h != first.files[k].0 {
                bail!("{} and {}: the columns of {} differ", first.dir.display(), s.dir.display(), SWEEP_CSVS[k]);
            }
        }
    }
    let total = first.manifest["total_runs"].as_u64().context("manifest without total_runs")?;
    // Every run exactly once (runs.csv is the commit record).
    let mut owner: BTreeMap<u64, usize> = BTreeMap::new();
    let mut duplicated = Vec::new();
    for (i, s) in shards.iter().enumerate() {
        for &id in s.files[2].1.keys() {
            if id >= total {
                bail!("{}: run {id} is outside this sweep's {total} runs", s.dir.display());
            }
            if owner.insert(id, i).is_some() {
                duplicated.push(id);
            }
        }
    }
    let missing: Vec<u64> = (0..total).filter(|id| !owner.contains_key(id)).collect();
    if !duplicated.is_empty() || !missing.is_empty() {
        duplicated.sort_unstable();
        duplicated.dedup();
        let mut msg = String::from("cannot merge:");
        if !missing.is_empty() {
            msg.push_str(&format!(" missing runs {} ({} of {total});", ranges(&missing), missing.len()));
        }
        if !duplicated.is_empty() {
            msg.push_str(&format!(" runs present more than once: {};", ranges(&duplicated)));
        }
        bail!("{}", msg.trim_end_matches(';'));
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (k, name) in SWEEP_CSVS.iter().enumerate() {
        let mut text = first.files[k].0.clone();
        for (id, &i) in &owner {
            if let Some(lines) = shards[i].files[k].1.get(id) {
                text.push_str(lines);
            }
        }
        sweep_out::write_atomic(&out.join(name), &text)?;
    }
    // Traces of sampled runs.
    for s in &shards {
        let traces = s.dir.join("traces");
        if let Ok(entries) = std::fs::read_dir(&traces) {
            std::fs::create_dir_all(out.join("traces"))?;
            for e in entries.flatten() {
                let name = e.file_name();
                if name.to_string_lossy().starts_with("run-") {
                    let dest = out.join("traces").join(&name);
                    std::fs::create_dir_all(&dest)?;
                    for f in std::fs::read_dir(e.path())?.flatten() {
                        std::fs::copy(f.path(), dest.join(f.file_name()))?;
                    }
                }
            }
        }
    }
    let mut manifest = first.manifest.clone();
    manifest["shard"] = serde_json::Value::Null;
    manifest["merged_from"] = serde_json::json!(dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>());
    manifest["runs_done"] = serde_json::json!(total);
    manifest["runs_failed"] =
        serde_json::json!(shards.iter().map(|s| s.manifest["runs_failed"].as_u64().unwrap_or(0)).sum::<u64>());
    sweep_out::write_atomic(&out.join("manifest.json"), &serde_json::to_string_pretty(&manifest)?)?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ranges_are_compact() {
        assert_eq!(super::ranges(&[0, 1, 2, 3, 7, 9, 10]), "0-3, 7, 9-10");
        assert_eq!(super::ranges(&[]), "");
    }
}
