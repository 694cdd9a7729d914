//! `manifest.json`: what produced a run and when. Wall-clock data lives here only, so CSVs stay
//! byte-comparable between runs.

use crate::config::Scenario;
use serde_json::json;
use std::time::SystemTime;

/// The tool's version and the git commit it was built from (when known at build time).
pub fn tool_version() -> (&'static str, Option<&'static str>) {
    (env!("CARGO_PKG_VERSION"), option_env!("LLM_MARKET_GIT_COMMIT"))
}

/// A stable 64-bit FNV-1a hash of text, as 16 hex digits (config hashes).
pub fn fnv1a_hex(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn iso(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The manifest of one run.
pub fn run_manifest(
    scenario: &Scenario,
    threads: usize,
    started: SystemTime,
    finished: SystemTime,
) -> serde_json::Value {
    let (version, commit) = tool_version();
    let resolved = scenario.to_toml();
    let p = scenario.params();
    json!({
        "tool": "llm-market",
        "version": version,
        "git_commit": commit,
        "command_line": std::env::args().collect::<Vec<_>>(),
        "scenario": p.name,
        "scenario_source": scenario.source,
        "config_hash": fnv1a_hex(&resolved),
        "seed": p.seed,
        "agents": p.agents,
        "tick": p.tick.as_str(),
        "record_every": scenario.record_every().as_str(),
        "threads": threads,
        "start_time": iso(started),
        "end_time": iso(finished),
        "duration_s": finished.duration_since(started).map(|d| d.as_secs_f64()).unwrap_or(0.0),
        "files": crate::io::outputs::RUN_FILES,
        "resolved_scenario": resolved,
    })
}
