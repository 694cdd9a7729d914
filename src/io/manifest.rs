//! `manifest.json`: what produced a run and when. Wall-clock data lives here only, so CSVs stay
//! byte-comparable between runs.

use crate::config::Scenario;
use serde_json::json;
use std::time::SystemTime;

/// The tool's version and the git commit it was built from (when known at build time).
pub fn tool_version() -> (&'static str, Option<&'static str>) {
    (env!("CARGO_PKG_VERSION"), option_env!("LLM_MARKET_GIT_COMMIT"))
}

pub use crate::config::validate::shorten;
pub use crate::model::rng::fnv1a_hex;

/// Writes a manifest (pretty JSON and a newline) atomically.
pub fn write(path: &std::path::Path, manifest: &serde_json::Value) -> anyhow::Result<()> {
    super::sweep_out::write_atomic(path, format!("{}\n", serde_json::to_string_pretty(manifest)?))
}

/// A time as ISO-8601 UTC with milliseconds (the manifests' `start_time`, `end_time`).
pub fn iso(t: SystemTime) -> String {
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

/// The keys whose values differ between two TOML documents, as `key.path: old → new` (arrays of tables
/// are compared element by element, named by `id` where they have one).
pub fn toml_diff(old: &str, new: &str) -> Vec<String> {
    fn flatten(prefix: String, v: &toml::Value, out: &mut std::collections::BTreeMap<String, String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, x) in t {
                    flatten(if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, x, out);
                }
            }
            toml::Value::Array(a) if a.iter().all(|x| x.is_table()) && !a.is_empty() => {
                for (i, x) in a.iter().enumerate() {
                    let name = x.get("id").and_then(|v| v.as_str()).map_or(i.to_string(), str::to_string);
                    flatten(format!("{prefix}.{name}"), x, out);
                }
            }
            other => {
                out.insert(prefix, other.to_string());
            }
        }
    }
    let parse = |t: &str| {
        let mut m = std::collections::BTreeMap::new();
        if let Ok(v) = toml::from_str::<toml::Table>(t) {
            flatten(String::new(), &toml::Value::Table(v), &mut m);
        }
        m
    };
    let (a, b) = (parse(old), parse(new));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let v = |m: &std::collections::BTreeMap<String, String>| m.get(k).map_or("absent".into(), |x| shorten(x));
            format!("{k}: {} → {}", v(&a), v(&b))
        })
        .collect()
}
