//! A real Slurm cluster: `llm-market slurm --submit` runs a sweep as an array job plus a dependent merge
//! job, and the merged CSVs equal a local sweep's byte for byte; a calibration runs in rounds of an array
//! job and a gathering job (which submits the next round) to the bytes of a local calibration. Runs only when `LLM_MARKET_SLURM_TESTS`
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
    // A folder with spaces: the scripts' #SBATCH lines must quote it.
    let (cluster, local) = (dir.path().join("on the cluster"), dir.path().join("local"));
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

#[test]
fn a_calibration_runs_in_rounds_of_slurm_array_jobs_to_the_local_bytes() {
    if std::env::var_os("LLM_MARKET_SLURM_TESTS").is_none() {
        eprintln!("skipped: set LLM_MARKET_SLURM_TESTS=1 with a running cluster (scripts/slurm-local.sh up)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cluster, local) = (dir.path().join("cluster"), dir.path().join("local"));
    let priors = root().join("tests/data/priors_tiny.toml").display().to_string();
    let targets = root().join("tests/data/targets_tiny.csv").display().to_string();
    let opts = ["--targets", &targets, "--particles", "16", "--generations", "3", "--sampler", "mcmc"];
    let mut a = vec!["calibrate", &priors, "--out", local.to_str().unwrap()];
    a.extend(opts);
    let o = llm(&a);
    assert!(o.status.success(), "{}", stderr(&o));

    let mut a = vec!["slurm", &priors, "--shards", "2", "--out", cluster.to_str().unwrap(), "--submit", "--"];
    a.extend(opts);
    let o = llm(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(stdout.contains("array job ") && stdout.contains("gather job "), "{stdout}");
    let slurm = cluster.join("slurm");
    assert!(slurm.join("calibrate-shards.sbatch").exists() && slurm.join("calibrate-gather.sbatch").exists());

    // Bounded poll: the last gathering job writes the outputs and submits nothing more.
    let deadline = Instant::now() + Duration::from_secs(600);
    let complete = || {
        std::fs::read(cluster.join("manifest.json"))
            .is_ok_and(|m| serde_json::from_slice::<serde_json::Value>(&m).is_ok_and(|m| m["complete"] == true))
    };
    loop {
        let q = Command::new("squeue").args(["-h", "-n", "llm-priors_tiny,llm-priors_tiny-gather"]).output().unwrap();
        if complete() && String::from_utf8_lossy(&q.stdout).trim().is_empty() {
            break;
        }
        let logs: Vec<String> = std::fs::read_dir(&slurm)
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "out"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect();
        assert!(
            Instant::now() < deadline && !logs.iter().any(|l| l.contains("error")),
            "the calibration did not finish on Slurm in 10 minutes, or a job failed: {logs:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let rounds = std::fs::read_dir(&slurm)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("llm-priors_tiny-gather"))
        .count();
    assert!(rounds > 2, "{rounds} gathering jobs: a calibration takes several rounds");
    for f in ["posterior.csv", "generations.csv", "predictive.csv", "identification.csv", "simulations.csv"] {
        assert_eq!(read(&cluster, f), read(&local, f), "{f}: the calibration on Slurm and the local one differ");
    }
}
