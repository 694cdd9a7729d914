//! Shared helpers for the integration tests.

use llm_market::config::{self, Overrides, Scenario};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn tiny() -> PathBuf {
    root().join("tests/data/tiny.toml")
}

/// Runs the `llm-market` binary with `args`.
pub fn llm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llm-market")).args(args).current_dir(root()).output().expect("the binary runs")
}

/// Runs the `llm-market` binary with `args` and extra environment variables.
pub fn llm_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_llm-market"));
    c.args(args).current_dir(root());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("the binary runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Loads a scenario with `--set`-style overrides.
pub fn load(path: &Path, sets: &[&str]) -> Arc<Scenario> {
    let o = Overrides { sets: sets.iter().map(|s| s.to_string()).collect(), ..Default::default() };
    Arc::new(config::load(Some(path), &o).unwrap_or_else(|e| panic!("{e}")))
}

/// Runs the tiny scenario through the CLI into `dir` with extra arguments.
pub fn run_tiny(dir: &Path, extra: &[&str]) -> Output {
    let scenario = tiny();
    let mut args = vec!["run", scenario.to_str().unwrap(), "--out", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = llm(&args);
    assert!(o.status.success(), "run failed: {}", stderr(&o));
    o
}

pub const CSVS: [&str; 5] = ["trace.csv", "market.csv", "decisions.csv", "annual.csv", "summary.csv"];

pub fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()))
}
