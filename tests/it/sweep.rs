//! Sweeps: byte-identical outputs for any job count, after SIGKILL and `--resume`, and across shards
//! and `merge`; failures recorded without stopping the sweep; bad sweep files rejected like scenarios.

use super::support::*;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const FILES: [&str; 3] = ["runs.csv", "annual.csv", "summary.csv"];

fn sweep_file() -> String {
    root().join("tests/data/sweep_tiny.toml").display().to_string()
}

fn sweep(out: &Path, extra: &[&str]) -> std::process::Output {
    let f = sweep_file();
    let mut args = vec!["sweep", f.as_str(), "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    llm(&args)
}

fn assert_same(a: &Path, b: &Path) {
    for f in FILES {
        assert_eq!(read(a, f), read(b, f), "{f} differs between {} and {}", a.display(), b.display());
    }
}

#[test]
fn outputs_do_not_depend_on_the_job_count() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert!(sweep(a.path(), &["--jobs", "1"]).status.success());
    let o = sweep(b.path(), &["--jobs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same(a.path(), b.path());
    let runs = String::from_utf8(read(a.path(), "runs.csv")).unwrap();
    assert_eq!(runs.lines().count(), 9);
    assert!(
        runs.starts_with(
            "run_id,point_id,replicate,seed,awareness.word_of_mouth_per_month,firms.lab.brand,status,error,"
        )
    );
    // Common random numbers: replicate r has the same seed at every point.
    let seeds: Vec<(String, String)> = runs
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[2].to_string(), f[3].to_string())
        })
        .collect();
    for (rep, seed) in &seeds {
        assert!(seeds.iter().filter(|(r, _)| r == rep).all(|(_, s)| s == seed));
    }
    assert_ne!(seeds[0].1, seeds[1].1);
    let manifest: serde_json::Value = serde_json::from_slice(&read(a.path(), "manifest.json")).unwrap();
    assert_eq!(manifest["status"], "complete");
    assert_eq!(manifest["total_runs"], 8);
}

#[test]
fn sigkill_at_any_point_then_resume_gives_the_same_bytes() {
    let reference = tempfile::tempdir().unwrap();
    assert!(sweep(reference.path(), &["--jobs", "2"]).status.success());
    for delay_ms in [30u64, 150, 400, 900] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_llm-market"))
            .args(["sweep", &sweep_file(), "--out", dir.path().to_str().unwrap(), "--jobs", "2"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let o = sweep(dir.path(), &["--jobs", "2", "--resume"]);
        assert!(o.status.success(), "resume after {delay_ms} ms: {}", stderr(&o));
        assert_same(reference.path(), dir.path());
    }
}

#[test]
fn a_torn_last_row_is_repaired_and_done_runs_are_not_redone() {
    let reference = tempfile::tempdir().unwrap();
    assert!(sweep(reference.path(), &[]).status.success());
    let dir = tempfile::tempdir().unwrap();
    assert!(sweep(dir.path(), &[]).status.success());
    // Simulate a crash in the middle of committing run 5: its annual rows are written, its summary rows
    // half, its runs.csv row is cut short and it has no index line yet.
    let cut_after = |name: &str, marker: &str, extra: usize| {
        let text = String::from_utf8(read(dir.path(), name)).unwrap();
        let cut = text.find(marker).unwrap() + extra;
        fs::write(dir.path().join(name), &text[..cut]).unwrap();
    };
    cut_after("index.csv", "\n5,", 1);
    cut_after("runs.csv", "\n5,", 10);
    cut_after("summary.csv", "\n5,", 30);
    cut_after("annual.csv", "\n6,", 1);
    let o = sweep(dir.path(), &["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("3 run now, 5 done before"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_same(reference.path(), dir.path());
}

#[test]
fn resuming_a_changed_sweep_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(sweep(dir.path(), &[]).status.success());
    let o = sweep(dir.path(), &["--resume", "--set", "end=2023-05-31"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot resume") && stderr(&o).contains("the base scenario's end: 2023-08-15 → 2023-05-31"),
        "{}",
        stderr(&o)
    );
    let o = sweep(dir.path(), &["--resume", "--traces", "all"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--traces (\"none\" → \"all\")"), "{}", stderr(&o));
}

#[test]
fn shards_merge_into_the_unsharded_bytes_and_merge_checks_completeness() {
    let whole = tempfile::tempdir().unwrap();
    assert!(sweep(whole.path(), &[]).status.success());
    let base = tempfile::tempdir().unwrap();
    let shard = |k: u32| base.path().join(format!("s{k}"));
    for k in 0..3 {
        let o = sweep(&shard(k), &["--shard", &format!("{k}/3"), "--jobs", "1"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    // Also through Slurm's environment variables.
    let f = sweep_file();
    let o = Command::new(env!("CARGO_BIN_EXE_llm-market"))
        .args(["sweep", &f, "--out", base.path().join("env1").to_str().unwrap()])
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "3")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(read(&shard(1), "runs.csv"), read(&base.path().join("env1"), "runs.csv"));

    let merged = base.path().join("merged");
    let dirs: Vec<String> = (0..3).map(|k| shard(k).display().to_string()).collect();
    let o = llm(&["merge", &dirs[0], &dirs[1], &dirs[2], "--out", merged.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same(whole.path(), &merged);

    let o = llm(&["merge", &dirs[0], &dirs[2], "--out", base.path().join("m2").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing runs 1, 4, 7 (3 of 8)"), "{}", stderr(&o));
    let o = llm(&["merge", &dirs[0], &dirs[1], &dirs[1], &dirs[2], "--out", base.path().join("m3").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("runs present more than once: 1, 4, 7"), "{}", stderr(&o));
}

/// `slurm` writes scripts whose `#SBATCH` values are in double quotes (sbatch splits those lines at spaces),
/// so an output folder with spaces works (the gated Slurm test submits to one), the job name is a plain label,
/// and a folder or partition that no `#SBATCH` line can hold is refused with exit 2 before anything is written.
#[test]
fn slurm_scripts_quote_their_directives_and_refuse_what_sbatch_cannot_read() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("on the cluster");
    let o = llm(&["slurm", &sweep_file(), "--shards", "2", "--out", out.to_str().unwrap(), "--partition", "long q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let array = std::fs::read_to_string(out.join("slurm/array.sbatch")).unwrap();
    let merge = std::fs::read_to_string(out.join("slurm/merge.sbatch")).unwrap();
    let logs = out.join("slurm").display().to_string();
    assert!(array.contains(&format!("#SBATCH --output=\"{logs}/%x-%A_%a.out\"\n")), "{array}");
    assert!(merge.contains(&format!("#SBATCH --output=\"{logs}/%x-%j.out\"\n")), "{merge}");
    assert!(array.contains("#SBATCH --partition=\"long q\"\n") && merge.contains("#SBATCH --partition=\"long q\"\n"));
    let directives = |t: &str| t.lines().filter(|l| l.starts_with("#SBATCH")).map(str::to_string).collect::<Vec<_>>();
    for line in directives(&array).iter().chain(&directives(&merge)) {
        // A value is one word or one double-quoted string: nothing after it for sbatch to misread.
        let value = line.split_once('=').map_or("", |(_, v)| v);
        assert!(!value.contains(' ') || (value.starts_with('"') && value.ends_with('"')), "{line}");
    }

    let quote = d.path().join("a\"b");
    let o = llm(&["slurm", &sweep_file(), "--shards", "2", "--out", quote.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--out") && stderr(&o).contains("double quote"), "{}", stderr(&o));
    assert!(!quote.exists(), "nothing is created for a refused folder");
    let fresh = d.path().join("fresh");
    let o = llm(&["slurm", &sweep_file(), "--shards", "2", "--out", fresh.to_str().unwrap(), "--time", "1:00\"x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--time") && !fresh.exists(), "{}", stderr(&o));
}

#[test]
fn failing_runs_are_recorded_and_the_sweep_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let f = root().join("tests/data/sweep_faults.toml");
    let args = ["sweep", f.to_str().unwrap(), "--out", dir.path().to_str().unwrap(), "--jobs", "2"];
    let o = llm_env(&args, &[("LLM_MARKET_TEST_PANIC", "2@10")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let bytes = read(dir.path(), "runs.csv");
    let mut r = csv::Reader::from_reader(&bytes[..]);
    let h = r.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|x| x == name).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    let status: Vec<&str> = rows.iter().map(|x| x.get(col("status")).unwrap()).collect();
    // Run 3's absurd cost trend is refused by validation, which bounds the accounts over the whole run.
    assert_eq!(status, ["ok", "invalid", "panicked", "invalid", "ok"]);
    assert!(rows[1][col("error")].contains("firms[0].revenue_share: is a probability"));
    assert!(rows[2][col("error")].contains("fault injected"));
    assert!(rows[3][col("error")].contains("cost_decline_per_year: must be at most 100"), "{}", &rows[3][col("error")]);
    assert!(!rows[4][col("lab_end_cash_usd")].is_empty());
    assert!(rows[1][col("lab_end_cash_usd")].is_empty());
    let annual = String::from_utf8(read(dir.path(), "annual.csv")).unwrap();
    assert!(annual.lines().skip(1).all(|l| l.starts_with("0,") || l.starts_with("4,")));
}

#[test]
fn traces_are_kept_for_a_deterministic_sample() {
    let dir = tempfile::tempdir().unwrap();
    assert!(sweep(dir.path(), &["--traces", "sample:3"]).status.success());
    let mut runs: Vec<String> = fs::read_dir(dir.path().join("traces"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    runs.sort();
    assert_eq!(runs, ["run-000000", "run-000002", "run-000005"]);
    let trace = String::from_utf8(read(&dir.path().join("traces/run-000005"), "trace.csv")).unwrap();
    assert!(trace.lines().nth(1).unwrap().starts_with("5,0,2022-11-30,lab,"));
}

#[test]
fn dry_run_counts_and_estimates_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let o = sweep(&out, &["--dry-run", "--traces", "all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("4 points × 2 replicates = 8 runs"), "{text}");
    assert!(text.contains("estimated time") && text.contains("estimated disk"), "{text}");
    assert!(!out.exists());
}

#[test]
fn bad_sweep_files_are_rejected_with_key_paths_and_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    let base = root().join("tests/data/tiny.toml");
    fs::write(
        &p,
        format!(
            "name = \"bad\"\nscenario = {:?}\nreplicates = 0\ncolour = 2\n[design]\nkind = \"lhs\"\n[[parameters]]\npath = \"awareness.nope\"\nmin = 1.0\nmax = 0.5\n",
            base.display().to_string()
        ),
    )
    .unwrap();
    let o = llm(&["validate", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.toml:4: colour"), "{}", stderr(&o));
    fs::write(
        &p,
        format!(
            "name = \"bad\"\nscenario = {:?}\nreplicates = 0\n[design]\nkind = \"lhs\"\n[[parameters]]\npath = \"awareness.nope\"\nmin = 1.0\nmax = 0.5\n",
            base.display().to_string()
        ),
    )
    .unwrap();
    let o = llm(&["sweep", p.to_str().unwrap(), "--out", dir.path().join("o").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("bad.toml:3: replicates: must be at least 1"), "{err}");
    assert!(err.contains("bad.toml:7: parameters[0].path: no such key"), "{err}");
    assert!(err.contains("bad.toml:9: parameters[0].max: needs finite min < max"), "{err}");
    assert!(err.contains("design.samples: must be at least 1"), "{err}");
    assert!(!dir.path().join("o").exists());
}

#[test]
fn every_shipped_sweep_validates() {
    for f in fs::read_dir(root().join("configs/sweeps")).unwrap() {
        let p = f.unwrap().path();
        let o = llm(&["validate", p.to_str().unwrap()]);
        assert!(o.status.success(), "{}: {}", p.display(), stderr(&o));
        assert!(stderr(&o).contains("runs)"));
    }
}

#[test]
fn huge_designs_are_refused_before_they_are_expanded() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge.toml");
    let base = root().join("tests/data/tiny.toml").display().to_string();
    fs::write(
        &p,
        format!("name = \"huge\"\nscenario = {base:?}\nreplicates = 4611686018427387904\n[design]\nkind = \"lhs\"\nsamples = 4\n[[parameters]]\npath = \"firms.lab.brand\"\nmin = 0.0\nmax = 1.0\n"),
    )
    .unwrap();
    let o = llm(&["validate", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("more than 100000000 runs"), "{}", stderr(&o));
    fs::write(
        &p,
        format!("name = \"huge\"\nscenario = {base:?}\n[design]\nkind = \"random\"\nsamples = 1000000000000\n[[parameters]]\npath = \"firms.lab.brand\"\nmin = 0.0\nmax = 1.0\n"),
    )
    .unwrap();
    let o = llm(&["validate", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is more than 100000000"), "{}", stderr(&o));
}
