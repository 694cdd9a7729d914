//! A seeded fuzz test of the configuration loader: mutants of the tiny scenario and the baseline (lines
//! deleted or duplicated, values replaced by numbers, strings, arrays and dates of every kind, bytes
//! flipped, files truncated) must give a scenario or problems that name the file, never a panic or a hang.
//! `LLM_MARKET_FUZZ_CASES` sets the number of in-process cases (default 300); a few dozen go through the
//! binary, and a few valid mutants (`LLM_MARKET_FUZZ_RUNS`, default 3) are run for two months.

use super::support::*;
use llm_market::config::{self, ConfigError, Overrides};
use llm_market::model::rng::CounterRng;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A random replacement value of one of many kinds.
fn random_value(rng: &mut CounterRng) -> String {
    let kinds: &[&dyn Fn(&mut CounterRng) -> String] = &[
        &|_| "1e308".into(),
        &|_| "-1e308".into(),
        &|_| "5e-324".into(),
        &|_| "nan".into(),
        &|_| "inf".into(),
        &|_| "-inf".into(),
        &|_| "0".into(),
        &|_| "-1".into(),
        &|_| "0.0".into(),
        &|_| "9223372036854775807".into(),
        &|_| "-9223372036854775808".into(),
        &|r| format!("{}", r.draw() as i64),
        &|r| format!("{:e}", (r.uniform() - 0.5) * 10f64.powi((r.draw() % 40) as i32 - 10)),
        &|_| "\"x\"".into(),
        &|_| "\"\"".into(),
        &|_| "\"../../escape\"".into(),
        &|_| "\"06-15\"".into(),
        &|r| format!("\"{}\"", "y".repeat(1 + (r.draw() % 200_000) as usize)),
        &|_| "[1, 2]".into(),
        &|_| "[]".into(),
        &|_| "[{ id = \"a\" }]".into(),
        &|_| "{ a = 1 }".into(),
        &|_| "2023-01-01".into(),
        &|_| "9999-12-31".into(),
        &|_| "0001-01-01".into(),
        &|_| "1979-05-27T07:32:00Z".into(),
        &|_| "true".into(),
        &|_| "\"day\"".into(),
        &|_| "\"month\"".into(),
    ];
    let k = (rng.draw() % kinds.len() as u64) as usize;
    kinds[k](rng)
}

/// Applies 1–3 random mutations to `text`.
fn mutate(text: &[u8], rng: &mut CounterRng) -> Vec<u8> {
    let mut bytes = text.to_vec();
    for _ in 0..1 + rng.draw() % 3 {
        let s = String::from_utf8_lossy(&bytes).to_string();
        let mut lines: Vec<String> = s.lines().map(String::from).collect();
        if lines.is_empty() {
            break;
        }
        let i = (rng.draw() % lines.len() as u64) as usize;
        match rng.draw() % 10 {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2..=6 => {
                // Replace the value of a `key = value` line (the first such line from i on).
                if let Some(j) = (i..lines.len()).chain(0..i).find(|&j| {
                    let t = lines[j].trim_start();
                    !t.starts_with('#') && !t.starts_with('[') && t.contains('=')
                }) {
                    let key = lines[j].split('=').next().unwrap().to_string();
                    lines[j] = format!("{key}= {}", random_value(rng));
                }
            }
            7 => {
                let mut b = lines.join("\n").into_bytes();
                if !b.is_empty() {
                    let p = (rng.draw() % b.len() as u64) as usize;
                    b[p] ^= 1 << (rng.draw() % 8);
                }
                bytes = b;
                continue;
            }
            8 => {
                let b = lines.join("\n").into_bytes();
                let p = (rng.draw() % (b.len() as u64 + 1)) as usize;
                bytes = b[..p].to_vec();
                continue;
            }
            _ => {
                // A key of the schema with a random value, at a random place.
                let keys = ["cash_usd", "launch", "name", "extends", "end", "tick", "agents", "population", "id"];
                let k = keys[(rng.draw() % keys.len() as u64) as usize];
                lines.insert(i, format!("{k} = {}", random_value(rng)));
            }
        }
        bytes = lines.join("\n").into_bytes();
        bytes.push(b'\n');
    }
    bytes
}

fn cases() -> u64 {
    std::env::var("LLM_MARKET_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
}

/// Checks that every problem names the file, and a key path or a line when it is about a key.
fn check_problems(e: &ConfigError, path: &Path, mutant: &[u8]) {
    let name = path.display().to_string();
    for p in &e.problems {
        let shown = p.to_string();
        // A mutant that extends another file may have its problem in that file (named then).
        let extends = String::from_utf8_lossy(mutant).contains("extends");
        assert!(
            p.file.as_deref() == Some(name.as_str()) || (extends && p.file.as_deref().is_some_and(|f| !f.is_empty())),
            "a problem must name the file {name}: {shown}\n--- mutant ---\n{}",
            String::from_utf8_lossy(mutant)
        );
        let whole_file = p.message.starts_with("malformed TOML")
            || p.message.starts_with("cannot read")
            || p.message.starts_with("is ")
            || p.message.starts_with("`extends`");
        assert!(
            p.path.is_some() || p.line.is_some() || whole_file,
            "a problem about a key must name it or its line: {shown}\n--- mutant ---\n{}",
            String::from_utf8_lossy(mutant)
        );
        assert!(shown.chars().count() < 2000, "messages are cut: {} characters", shown.chars().count());
    }
}

#[test]
fn mutated_scenarios_never_panic_or_hang() {
    let dir = tempfile::tempdir().unwrap();
    let bases = [std::fs::read(tiny()).unwrap(), std::fs::read(root().join("configs/baseline.toml")).unwrap()];
    let n = cases();
    // Watchdog: a case that takes more than 10 s is a hang.
    static STARTED: AtomicU64 = AtomicU64::new(u64::MAX);
    let t0 = Instant::now();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let s = STARTED.load(Ordering::Relaxed);
            if s != u64::MAX && t0.elapsed().as_millis() as u64 > s + 10_000 {
                eprintln!("config fuzz: a case hung for more than 10 s");
                std::process::exit(3);
            }
        }
    });
    let (mut ok, mut refused, mut panics) = (0u64, 0u64, Vec::new());
    let mut valid_mutants = Vec::new();
    let path = dir.path().join("m.toml");
    for case in 0..n {
        let mut rng = CounterRng::new(0x5eed_c0f1 ^ case.wrapping_mul(0x9e37_79b9_7f4a_7c15), case);
        let mutant = mutate(&bases[(case % 2) as usize], &mut rng);
        std::fs::write(&path, &mutant).unwrap();
        STARTED.store(t0.elapsed().as_millis() as u64, Ordering::Relaxed);
        let r = std::panic::catch_unwind(|| config::load(Some(&path), &Overrides::default()));
        STARTED.store(u64::MAX, Ordering::Relaxed);
        match r {
            Ok(Ok(s)) => {
                ok += 1;
                if valid_mutants.len() < 40 && mutant != bases[(case % 2) as usize] {
                    valid_mutants.push((mutant, s.params().start.0));
                }
            }
            Ok(Err(e)) => {
                refused += 1;
                check_problems(&e, &path, &mutant);
            }
            Err(_) => panics.push(String::from_utf8_lossy(&mutant).to_string()),
        }
    }
    eprintln!("config fuzz: {n} cases in process: {ok} valid, {refused} refused, {} panics", panics.len());
    assert!(panics.is_empty(), "{} mutants panicked; the first:\n{}", panics.len(), panics[0]);

    // A few dozen through the binary, killed after 10 s.
    let binary_cases = (n / 10).clamp(10, 40);
    for case in 0..binary_cases {
        let mut rng = CounterRng::new(0xb1_7a5e ^ case, case);
        let mutant = mutate(&bases[(case % 2) as usize], &mut rng);
        let f = dir.path().join(format!("b{case}.toml"));
        std::fs::write(&f, &mutant).unwrap();
        let (code, err) = run_with_timeout(&["validate", f.to_str().unwrap()], Duration::from_secs(10));
        assert!(
            code == Some(0) || code == Some(2),
            "exit {code:?}: {err}\n--- mutant ---\n{}",
            String::from_utf8_lossy(&mutant)
        );
        if code == Some(2) {
            assert!(err.contains(&format!("b{case}.toml")), "the message names the file: {err}");
        }
    }

    // A few valid mutants run for two months.
    let runs = std::env::var("LLM_MARKET_FUZZ_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    for (k, (mutant, start)) in valid_mutants.iter().take(runs).enumerate() {
        let f = dir.path().join(format!("v{k}.toml"));
        std::fs::write(&f, mutant).unwrap();
        let end = format!("end={}", *start + chrono::Days::new(60));
        let out = dir.path().join(format!("out{k}"));
        let args = ["run", f.to_str().unwrap(), "--agents", "500", "--set", &end, "--out", out.to_str().unwrap()];
        let (code, err) = run_with_timeout(&args, Duration::from_secs(120));
        assert!(
            code == Some(0) || code == Some(1),
            "exit {code:?}: {err}\n--- mutant ---\n{}",
            String::from_utf8_lossy(mutant)
        );
    }
}

/// Runs the binary; `None` as the code means killed by a signal. Fails the test on a hang.
fn run_with_timeout(args: &[&str], limit: Duration) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_llm-market"))
        .args(args)
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > limit {
            child.kill().unwrap();
            panic!("llm-market {args:?} hung for more than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let o = child.wait_with_output().unwrap();
    (o.status.code(), stderr(&o))
}
