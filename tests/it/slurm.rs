//! A real Slurm cluster: `llm-market slurm --submit` runs a sweep as an array job plus a dependent merge
//! job, and the merged CSVs equal a local sweep's byte for byte. Runs only when `LLM_MARKET_SLURM_TESTS`
//! is set and `SLURM_CONF` points at a running cluster (`scripts/slurm-local.sh up`; `.ci/run` does both).

use super::support::*;
use std::process::Command;
use std::time::{Duration, Instant};

fn job_states(id: &str) -> Vec<String> {
    let o = Command::new("scontrol").args(["-o", "show", "job", id]).output().expect("scontrol runs");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().find_map(|f| f.strip_prefix("JobState=")).map(str::to_string))
        .collect()
}

#[test]
fn a_sweep_runs_as_a_slurm_array_and_merges_to_the_local_bytes() {
    if std::env::var_os("LLM_MARKET_SLURM_TESTS").is_none() {
        eprintln!("skipped: set LLM_MARKET_SLURM_TESTS=1 with a running cluster (scripts/slurm-local.sh up)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cluster, local) = (dir.path().join("cluster"), dir.path().join("local"));
    let sweep = root().join("configs/sweeps/smoke.toml").display().to_string();
    let short = "end=2023-04-30";
    let o = llm(&["sweep", &sweep, "--set", short, "--out", local.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = llm(&["slurm", &sweep, "--shards", "3", "--out", cluster.to_str().unwrap(), "--submit", "--set", short]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    let id =
        |label: &str| stdout.lines().find_map(|l| l.strip_prefix(label)).map(|s| s.trim().to_string()).expect(label);
    let (array, merge) = (id("array job "), id("merge job "));
    assert!(cluster.join("slurm/array.sbatch").exists() && cluster.join("slurm/merge.sbatch").exists());

    // Bounded poll: both jobs leave the queue.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let q = Command::new("squeue").args(["-h", "-j", &format!("{array},{merge}")]).output().unwrap();
        if String::from_utf8_lossy(&q.stdout).trim().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the Slurm jobs did not finish in 10 minutes");
        std::thread::sleep(Duration::from_millis(300));
    }
    let array_states = job_states(&array);
    assert_eq!(array_states.len(), 3, "three array tasks: {array_states:?}");
    assert!(array_states.iter().all(|s| s == "COMPLETED"), "array tasks: {array_states:?}");
    assert_eq!(job_states(&merge), ["COMPLETED"]);
    for f in ["runs.csv", "annual.csv", "summary.csv"] {
        assert_eq!(read(&cluster, f), read(&local, f), "{f}: cluster and local sweeps differ");
    }
}
