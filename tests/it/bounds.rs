//! Memory and size bounds checked before work starts: designs of 10^8 points dry-run without listing their
//! points, and runs, sweeps and comparisons that would not fit in memory are refused (exit 2, nothing
//! written) with the estimate, the limit and the largest agent count that fits.

use super::support::*;
use llm_market::memcheck::TEST_MEMORY_VAR;
use std::fs;
use std::path::Path;

/// Writes a sweep over the tiny scenario with `design` and `parameters` (TOML text) into `dir`.
fn write_sweep(dir: &Path, name: &str, design: &str, parameters: &str) -> String {
    let p = dir.join(format!("{name}.toml"));
    fs::write(
        &p,
        format!(
            "name = {name:?}\nscenario = {:?}\nreplicates = 1\nset = [\"end=2023-01-31\"]\n[design]\n{design}\n{parameters}",
            tiny().display().to_string()
        ),
    )
    .unwrap();
    p.display().to_string()
}

const RANGES: &str = "[[parameters]]\npath = \"awareness.word_of_mouth_per_month\"\nmin = 1.0\nmax = 5.0\nscale = \"log\"\n\
                      [[parameters]]\npath = \"firms.lab.brand\"\nmin = 0.0\nmax = 1.0\n";

#[test]
fn designs_of_a_hundred_million_points_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let hundred = (0..100).map(|v| format!("{}.0", v % 10)).collect::<Vec<_>>().join(", ");
    let grid_params: String =
        ["awareness.word_of_mouth_per_month", "awareness.trial_utility", "firms.lab.brand", "firms.lab.cash_usd"]
            .iter()
            .map(|p| format!("[[parameters]]\npath = {p:?}\nvalues = [{hundred}]\n"))
            .collect();
    let mut files: Vec<(String, String)> = ["random", "lhs"]
        .iter()
        .map(|k| (k.to_string(), write_sweep(dir.path(), k, &format!("kind = {k:?}\nsamples = 100000000"), RANGES)))
        .collect();
    files.push(("grid".into(), write_sweep(dir.path(), "grid", "kind = \"grid\"", &grid_params)));
    for (kind, file) in &files {
        let out = dir.path().join(format!("out-{kind}"));
        let o = llm(&["sweep", file, "--dry-run", "--out", out.to_str().unwrap(), "--traces", "sample:1000"]);
        assert!(o.status.success(), "{kind}: {}", stderr(&o));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("100000000 points × 1 replicates = 100000000 runs"), "{kind}: {text}");
        assert!(text.contains("estimated memory"), "{kind}: {text}");
        assert!(!out.exists(), "{kind}: a dry run writes nothing");
        // A shard's share and its sampled traces are counted without visiting every run id.
        let o = llm(&[
            "sweep",
            file,
            "--dry-run",
            "--out",
            out.to_str().unwrap(),
            "--shard",
            "3/7",
            "--traces",
            "sample:100000000",
        ]);
        assert!(o.status.success(), "{kind}: {}", stderr(&o));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("100000000 runs (14285714 in shard 3/7)"), "{kind}: {text}");
        assert!(text.contains("traces for 14285714 runs"), "{kind}: {text}");
        // Sampled ids i · 10^5 (i < 1000) in shard 3/7: 5i ≡ 3 (mod 7), i.e. i ≡ 2 (mod 7): 143 of them.
        let o = llm(&[
            "sweep",
            file,
            "--dry-run",
            "--out",
            out.to_str().unwrap(),
            "--shard",
            "3/7",
            "--traces",
            "sample:1000",
        ]);
        assert!(String::from_utf8_lossy(&o.stdout).contains("traces for 143 runs"), "{kind}: {}", stderr(&o));
    }
}

#[test]
fn sobol_designs_stop_where_the_sequence_would_repeat() {
    // sobol_burley's direction numbers have 16 bits: point i + 2^16 would equal point i.
    let dir = tempfile::tempdir().unwrap();
    let big = write_sweep(dir.path(), "sobol", "kind = \"sobol\"\nsamples = 100000000", RANGES);
    let o = llm(&["validate", &big]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("design.samples") && stderr(&o).contains("at most 65536 points"), "{}", stderr(&o));
    let most = write_sweep(dir.path(), "sobol_max", "kind = \"sobol\"\nsamples = 65536", RANGES);
    let out = dir.path().join("o");
    let o = llm(&["sweep", &most, "--dry-run", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("65536 points × 1 replicates = 65536 runs"));
}

/// MemAvailable of this machine, where it can be read.
fn machine_available() -> Option<u64> {
    let t = fs::read_to_string("/proc/meminfo").ok()?;
    let kb = t
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kb * 1024)
}

#[test]
fn a_run_too_large_for_memory_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let args = ["run", "--agents", "2147483648", "--out", out.to_str().unwrap()];
    let o = llm_env(&args, &[(TEST_MEMORY_VAR, "21300000000")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.starts_with("error: --agents 2147483648 needs about 215 GB of memory (100 bytes per user agent"), "{e}");
    assert!(e.contains("may use 21.3 GB (LLM_MARKET_TEST_MEMORY_BYTES): use at most --agents 210000000"), "{e}");
    assert!(!out.exists());
    // The same on this machine's real memory (unless it has more than 215 GB free).
    if machine_available().is_some_and(|m| m < 200_000_000_000) {
        let o = llm(&args);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("this machine has") && stderr(&o).contains("use at most --agents"),
            "{}",
            stderr(&o)
        );
        assert!(!out.exists());
    }
    // bench and calibration are checked too.
    let o = llm_env(&["bench", "--agents", "2147483648", "--ticks", "1"], &[(TEST_MEMORY_VAR, "21300000000")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("use at most --agents 210000000"), "{}", stderr(&o));
    let o = llm_env(&["calibration", "--agents", "1000000"], &[(TEST_MEMORY_VAR, "50000000")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--agents 1000000 needs about 134 MB"), "{}", stderr(&o));
}

#[test]
fn a_memory_limit_refuses_a_million_agents_and_runs_ten_thousand() {
    let dir = tempfile::tempdir().unwrap();
    let limit = [(TEST_MEMORY_VAR, "50000000")];
    let t = tiny().display().to_string();
    let big = dir.path().join("big");
    let o = llm_env(&["run", &t, "--agents", "1000000", "--out", big.to_str().unwrap()], &limit);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("may use 50 MB"), "{}", stderr(&o));
    assert!(!big.exists());
    let small = dir.path().join("small");
    let o =
        llm_env(&["run", &t, "--agents", "10000", "--set", "end=2023-01-31", "--out", small.to_str().unwrap()], &limit);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(small.join("summary.csv").exists());
    // Without --agents the scenario file's key is named: tiny.toml has 3,000 agents (about 32.3 MB).
    let o = llm_env(&["run", &t, "--out", big.to_str().unwrap()], &[(TEST_MEMORY_VAR, "32200000")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains(&format!("`agents = 3000` in {t} needs about 32 MB")), "{e}");
    assert!(e.contains(&format!("use at most `agents = 1700` in {t} (or --agents 1700)")), "{e}");
    assert!(!big.exists());
    // A bad override is bad input, not a panic.
    let o = llm_env(&["run", &t, "--out", big.to_str().unwrap()], &[(TEST_MEMORY_VAR, "lots")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("LLM_MARKET_TEST_MEMORY_BYTES: expected a number of bytes"), "{}", stderr(&o));
}

#[test]
fn a_sweep_whose_jobs_do_not_fit_together_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let f = root().join("tests/data/sweep_tiny.toml").display().to_string();
    // 500k agents: about 82 MB a run; 4 jobs need 328 MB of the 200 MB allowed.
    let limit = [(TEST_MEMORY_VAR, "200000000")];
    let args = ["sweep", &f, "--agents", "500000", "--jobs", "4", "--out", out.to_str().unwrap()];
    let o = llm_env(&args, &limit);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("4 jobs at once of --agents 500000 need about 328 MB"), "{e}");
    assert!(e.contains("lower --jobs to at most 2, or lower the agents to at most --agents 170000 with 4 jobs"), "{e}");
    assert!(!out.exists());
    // A dry run still prints its estimates, with the memory line and a warning.
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let o = llm_env(&dry, &limit);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("estimated memory: about 328 MB (4 jobs × 82 MB per run); 200 MB available"), "{text}");
    assert!(text.contains("warning: the sweep would be refused"), "{text}");
    assert!(!out.exists());
    // A varied `agents` is checked at its largest value.
    let p = write_sweep(
        dir.path(),
        "agents",
        "kind = \"grid\"",
        "[[parameters]]\npath = \"agents\"\nvalues = [1000, 2000000]\n",
    );
    let o = llm_env(&["sweep", &p, "--jobs", "1", "--out", out.to_str().unwrap()], &limit);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("the varied parameter `agents` of {p} (up to 2000000)")), "{}", stderr(&o));
    assert!(!out.exists());
    // compare: replicates × jobs of each scenario.
    let t = tiny().display().to_string();
    let cmp = dir.path().join("cmp");
    let o = llm_env(
        &["compare", &t, "--agents", "500000", "--replicates", "4", "--jobs", "4", "--out", cmp.to_str().unwrap()],
        &limit,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("lower --jobs to at most 2"), "{}", stderr(&o));
    assert!(!cmp.exists());
}
