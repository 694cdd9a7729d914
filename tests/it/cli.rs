//! Command-line behaviour: every kind of bad input gives exit code 2, one message per problem naming the
//! file, key path and line, no panic, and no output; good runs replace outputs atomically.

use super::support::*;
use std::fs;

/// Writes `text` as a scenario that extends the tiny one, validates it, and returns stderr.
fn bad(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let body = format!("extends = {:?}\n{text}", tiny().to_str().unwrap());
    fs::write(&path, body).unwrap();
    let out = dir.path().join("out");
    let o = llm(&["run", path.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "expected exit 2, got {:?}: {err}", o.status.code());
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.exists(), "bad input must not create the output directory");
    let v = llm(&["validate", path.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(2));
    assert_eq!(stderr(&v), err, "validate and run report the same problems");
    err
}

#[test]
fn unknown_keys_are_all_reported_with_lines() {
    let err = bad("colour = 1\n[awareness]\nspeed = 2\n");
    assert!(err.contains("bad.toml:2: colour: unknown key"), "{err}");
    assert!(err.contains("bad.toml:4: awareness.speed: unknown key"), "{err}");
    assert!(err.contains("2 problems"), "{err}");
}

#[test]
fn wrong_types_name_the_key() {
    let err = bad("[awareness]\np_base_per_month = \"high\"\n");
    assert!(err.contains("bad.toml:3: awareness.p_base_per_month: invalid type"), "{err}");
}

#[test]
fn malformed_toml_names_the_line() {
    let err = bad("seed = [1,\n");
    assert!(err.contains("bad.toml:2: malformed TOML"), "{err}");
}

#[test]
fn negative_prices_and_costs_and_bad_probabilities_are_all_listed() {
    let err = bad(
        "[awareness]\np_base_per_month = 1.5\n[[firms]]\nid = \"lab\"\napi_price_usd_per_mtok = -2.0\nfixed_cost_usd_per_year = -1.0\n[orgs]\nshadow_use = -0.1\n",
    );
    assert!(err.contains("bad.toml:3: awareness.p_base_per_month: is a probability"), "{err}");
    assert!(err.contains("bad.toml:6: firms[0].api_price_usd_per_mtok: must not be negative"), "{err}");
    assert!(err.contains("bad.toml:7: firms[0].fixed_cost_usd_per_year: must not be negative"), "{err}");
    assert!(err.contains("bad.toml:9: orgs.shadow_use: is a probability"), "{err}");
    assert!(err.contains("4 problems"), "{err}");
}

#[test]
fn inverted_and_impossible_dates() {
    let err = bad("end = 2020-01-01\n[[events]]\nid = \"early\"\ndate = 2021-01-01\nkind = \"leak\"\n");
    assert!(err.contains("bad.toml:2: end: must be after start"), "{err}");
    assert!(err.contains("events[7].date: 2021-01-01 is before the start"), "{err}");
    let err = bad("start = 2023-02-30\n");
    assert!(err.contains("bad.toml:2: malformed TOML"), "{err}");
    let err = bad("[[firms]]\nid = \"giant\"\nchat_launch = 2023-01-01\n");
    assert!(err.contains("firms[1].chat_launch: cannot be before the firm's launch"), "{err}");
}

#[test]
fn events_naming_unknown_firms() {
    let err =
        bad("[[events]]\nid = \"x\"\ndate = 2023-05-01\nkind = \"funding\"\nfirm = \"nobody\"\namount_usd = 1.0\n");
    assert!(err.contains("bad.toml:6: events[7].firm: unknown firm \"nobody\" (known: giant, lab, open)"), "{err}");
}

#[test]
fn zero_agents() {
    let err = bad("agents = 0\n");
    assert!(err.contains("bad.toml:2: agents: must be at least 1"), "{err}");
    let o = llm(&["run", tiny().to_str().unwrap(), "--agents", "0", "--out", "/nonexistent/never"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("agents: must be at least 1"));
    let err = bad("[orgs]\nagents = 200_000_000\n");
    assert!(err.contains("bad.toml:3: orgs.agents: must be at most 134217727"), "{err}");
}

#[test]
fn set_paths_that_do_not_exist_and_bad_set_values() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let o = llm(&[
        "run",
        tiny().to_str().unwrap(),
        "--set",
        "firms.nobody.brand=1",
        "--set",
        "awareness.nope=2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("--set: firms.nobody.brand: no such key"), "{err}");
    assert!(err.contains("--set: awareness.nope: no such key"), "{err}");
    let o = llm(&[
        "run",
        tiny().to_str().unwrap(),
        "--set",
        "awareness.p_base_per_month=lots",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--set: awareness.p_base_per_month: invalid type"));
    let o =
        llm(&["run", tiny().to_str().unwrap(), "--set", "firms.lab.revenue_share=2", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    // The value came from the command line: the flag is blamed, with the key as written.
    assert!(stderr(&o).contains("--set: firms.lab.revenue_share: is a probability"), "{}", stderr(&o));
    assert!(!out.exists());
}

#[test]
fn unreadable_files() {
    let o = llm(&["validate", "no/such/file.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no/such/file.toml: cannot read the file"), "{}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.toml");
    fs::write(&p, "extends = \"missing.toml\"\n").unwrap();
    let o = llm(&["validate", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("x.toml:1: extends: `extends` names"), "{}", stderr(&o));
}

#[test]
fn validate_prints_the_resolved_scenario() {
    let o = llm(&["validate", "configs/scenarios/no_microsoft_funding.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("name = \"no_microsoft_funding\""));
    assert!(text.contains("id = \"msft_2023_tranche_1\""));
    // The resolved form is itself a valid scenario with every key present.
    let resolved: llm_market::config::file::ScenarioFile = toml::from_str(&text).unwrap();
    assert!(resolved.events.iter().filter(|e| e.id.starts_with("msft")).all(|e| !e.enabled));
}

#[test]
fn every_shipped_scenario_validates() {
    for f in fs::read_dir(root().join("configs/scenarios")).unwrap() {
        let p = f.unwrap().path();
        let o = llm(&["validate", p.to_str().unwrap()]);
        assert!(o.status.success(), "{}: {}", p.display(), stderr(&o));
    }
    let o = llm(&["validate", "configs/baseline.toml"]);
    assert!(o.status.success());
}

#[test]
fn the_embedded_baseline_is_the_config_file() {
    assert_eq!(
        llm_market::config::source::EMBEDDED_BASELINE,
        fs::read_to_string(root().join("configs/baseline.toml")).unwrap()
    );
}

#[test]
fn outputs_replace_previous_results_only_with_force_and_keep_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("notes.txt"), "mine").unwrap();
    fs::write(out.join("trace.csv"), "old").unwrap();
    // A file named like an output, without a manifest saying what wrote it: refused, nothing touched.
    let o = llm(&["run", tiny().to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no readable manifest.json") && stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(out.join("trace.csv")).unwrap(), "old");
    // --force moves it into a backup folder and writes the run.
    let o = run_tiny(&out, &["--set", "end=2023-03-31", "--force"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    for f in ["trace.csv", "market.csv", "annual.csv", "summary.csv", "manifest.json"] {
        assert!(out.join(f).exists(), "{f} missing");
        assert!(stdout.contains(f));
    }
    assert_eq!(fs::read_to_string(out.join("notes.txt")).unwrap(), "mine");
    assert!(fs::read_to_string(out.join("trace.csv")).unwrap().starts_with("run_id,tick,date,firm"));
    let names: Vec<String> =
        fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    let leftovers: Vec<_> = names.iter().filter(|n| n.starts_with('.') && *n != ".llm-market.lock").collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");
    let backup = names.iter().find(|n| n.starts_with("backup-")).expect("a backup folder");
    assert_eq!(fs::read_to_string(out.join(backup).join("trace.csv")).unwrap(), "old");
    let manifest: serde_json::Value = serde_json::from_slice(&read(&out, "manifest.json")).unwrap();
    assert_eq!(manifest["scenario"], "tiny");
    assert_eq!(manifest["seed"], 7);
    assert!(manifest["resolved_scenario"].as_str().unwrap().contains("end = 2023-03-31"));
    // A run that fails on bad input leaves the previous results alone.
    let before = read(&out, "trace.csv");
    let o = llm(&["run", tiny().to_str().unwrap(), "--set", "agents=0", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(read(&out, "trace.csv"), before);
}

#[test]
fn trace_columns_and_cash_identity() {
    let dir = tempfile::tempdir().unwrap();
    run_tiny(dir.path(), &["--record-every", "week"]);
    let mut r = csv::Reader::from_path(dir.path().join("trace.csv")).unwrap();
    let header = r.headers().unwrap().clone();
    for col in [
        "run_id",
        "tick",
        "date",
        "firm",
        "kind",
        "alive",
        "quality_elo",
        "price_sub_usd",
        "price_api_usd_per_mtok",
        "users",
        "paying_users",
        "api_orgs",
        "queries",
        "tokens",
        "revenue_sub_usd",
        "revenue_api_usd",
        "revenue_seats_usd",
        "cost_inference_usd",
        "cost_training_usd",
        "cost_fixed_usd",
        "funding_usd",
        "profit_usd",
        "cash_usd",
        "runway_months",
        "visits",
    ] {
        assert!(header.iter().any(|h| h == col), "missing column {col}");
    }
    let idx = |name: &str| header.iter().position(|h| h == name).unwrap();
    let cents = |s: &str| -> i64 {
        let neg = s.starts_with('-');
        let (a, b) = s.trim_start_matches('-').split_once('.').unwrap();
        let v = a.parse::<i64>().unwrap() * 100 + b.parse::<i64>().unwrap();
        if neg { -v } else { v }
    };
    let mut last: std::collections::BTreeMap<String, i64> = Default::default();
    let mut rows = 0;
    for rec in r.records() {
        let rec = rec.unwrap();
        let firm = rec[idx("firm")].to_string();
        let cash = cents(&rec[idx("cash_usd")]);
        let flows = cents(&rec[idx("profit_usd")]) + cents(&rec[idx("funding_usd")]);
        assert_eq!(cents(&rec[idx("revenue_usd")]) - cents(&rec[idx("cost_usd")]), cents(&rec[idx("profit_usd")]));
        if let Some(prev) = last.insert(firm.clone(), cash) {
            assert_eq!(cash - prev, flows, "cash identity broken for {firm} at tick {}", &rec[idx("tick")]);
        }
        rows += 1;
    }
    assert!(rows > 100);
}

#[test]
fn bench_prints_one_json_line() {
    let o = llm(&["bench", "--agents", "3000", "--ticks", "3", "--repeats", "2", "--threads", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(stdout.lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["agents"], 3000);
    assert_eq!(v["ticks"], 3);
    assert_eq!(v["repeats"], 2);
    assert!(v["ns_per_user_tick"].as_f64().unwrap() > 0.0);
    assert_eq!(v["outputs"], false);
    assert!(v["output_share"].is_null());
    assert!(stderr(&o).contains("ns per user-tick"));
    // With --outputs the rows are streamed to CSV in that folder and discarded afterwards.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench-out");
    let o = llm(&["bench", "--agents", "3000", "--ticks", "3", "--repeats", "1", "--outputs", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    assert_eq!(v["outputs"], true);
    let share = v["output_share"].as_f64().unwrap();
    assert!((0.0..1.0).contains(&share), "the share of time spent writing is a fraction: {share}");
    let left: Vec<String> =
        fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    assert_eq!(left, [".llm-market.lock"], "nothing but the lock file is left in the outputs folder");
}
