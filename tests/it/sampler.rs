//! The event-driven sampler (what runs use) and the per-tick sampler (the reference) agree in distribution on
//! whole runs of the baseline: 30 seeds each with `LLM_MARKET_SLOW_TESTS=1` (CI), 12 otherwise.
//!
//! The kernel-level test (`sim::events::tests`) compares event times of independent users in a fixed market;
//! this one compares what a researcher reads, with the market's feedback (word of mouth, capacity, prices,
//! bans, firms' decisions) switched on: each firm's users, API organisations and seats at three dates, the
//! organisations adopting and banning at those dates, paying users, revenue, cost and end cash. Organisations
//! are event-driven too (`sim::org_events`), so both passes are compared here. Each metric's 30 values under one sampler and 30 under the other are compared with Welch's test at
//! the 0.1% level. A test that cannot fail would be worthless, so the same comparison must tell the baseline
//! from the baseline with 30% more word of mouth.

use crate::support::{load, root};
use llm_market::analysis::stats::welch_difference;
use llm_market::api;
use llm_market::sim::{RunOptions, UserPass};
use std::collections::BTreeMap;

fn seeds() -> u64 {
    if std::env::var("LLM_MARKET_SLOW_TESTS").is_ok_and(|v| v == "1") { 30 } else { 12 }
}

/// The dates at which users, organisations and seats are compared.
const DATES: [&str; 3] = ["2023-02-28", "2023-08-31", "2024-06-30"];

/// The metrics of one run of the baseline (50,000 agents, to mid-2024) with `seed`, `sets` and `pass`.
fn metrics(seed: u64, sets: &[&str], pass: UserPass) -> BTreeMap<String, f64> {
    let seed = format!("seed={seed}");
    let mut all = vec!["agents=50000", "end=2024-06-30", seed.as_str()];
    all.extend_from_slice(sets);
    let s = load(&root().join("configs/baseline.toml"), &all);
    let r = api::run(&s, &RunOptions { user_pass: pass, ..RunOptions::default() }).expect("the run completes");
    let mut m = BTreeMap::new();
    for row in &r.trace {
        let date = row.date.to_string();
        if DATES.contains(&date.as_str()) {
            m.insert(format!("{} users {date}", row.firm), row.users as f64);
            m.insert(format!("{} API organisations {date}", row.firm), row.api_orgs as f64);
            m.insert(format!("{} seats {date}", row.firm), row.seats as f64);
        }
    }
    for row in &r.market {
        let date = row.date.to_string();
        if DATES.contains(&date.as_str()) {
            m.insert(format!("organisations adopted {date}"), row.orgs_adopted as f64);
            m.insert(format!("organisations banning {date}"), row.orgs_banning_chat as f64);
        }
    }
    for row in &r.summary {
        m.insert(format!("{} total revenue", row.firm), row.total_revenue_usd.usd());
        m.insert(format!("{} total cost", row.firm), row.total_cost_usd.usd());
        m.insert(format!("{} end cash", row.firm), row.end_cash_usd.usd());
    }
    if let Some(last) = r.trace.iter().rev().find(|row| row.firm == "openai") {
        m.insert("openai paying users at the end".into(), last.paying_users as f64);
    }
    m
}

/// The metrics of `n` seeds from `first`, run two at a time; per metric, the values in seed order. Samples
/// to be compared take disjoint seeds: the same seed would share the population, the organisations' and the
/// firms' draws, correlate the two samples and make Welch's test blunter than it says.
fn sample(first: u64, n: u64, sets: &[&str], pass: UserPass) -> BTreeMap<String, Vec<f64>> {
    let runs: Vec<BTreeMap<String, f64>> = std::thread::scope(|s| {
        let halves: Vec<_> = (0..2u64)
            .map(|h| {
                s.spawn(move || {
                    (h..n).step_by(2).map(|seed| (seed, metrics(first + seed, sets, pass))).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<_> = halves.into_iter().flat_map(|h| h.join().expect("no panic")).collect();
        all.sort_by_key(|(seed, _)| *seed);
        all.into_iter().map(|(_, m)| m).collect()
    });
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for run in runs {
        for (k, v) in run {
            out.entry(k).or_default().push(v);
        }
    }
    out
}

/// The metrics whose means differ at the 0.1% level (Welch), with the difference and its interval.
fn differing(a: &BTreeMap<String, Vec<f64>>, b: &BTreeMap<String, Vec<f64>>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, x) in a {
        let y = &b[k];
        let d = welch_difference(x, y, 0.999);
        let (ma, mb) = (llm_market::analysis::stats::mean(x), llm_market::analysis::stats::mean(y));
        eprintln!("{k}: {ma:.4e} vs {mb:.4e}: {:.4e} [{:.4e}, {:.4e}]", d.mean, d.lo, d.hi);
        if d.lo > 0.0 || d.hi < 0.0 {
            out.push(format!("{k}: difference {:.4e} [{:.4e}, {:.4e}]", d.mean, d.lo, d.hi));
        }
    }
    out
}

#[test]
fn event_driven_and_per_tick_samplers_agree_on_whole_runs() {
    let n = seeds();
    eprintln!("{n} seeds per sampler (30 with LLM_MARKET_SLOW_TESTS=1)");
    let events = sample(1000, n, &[], UserPass::Events);
    let per_tick = sample(2000, n, &[], UserPass::Fused);
    assert!(events.len() >= 20, "only {} metrics", events.len());
    let differ = differing(&events, &per_tick);
    assert!(differ.is_empty(), "the samplers differ on:\n{}", differ.join("\n"));
    // Power: 30% more word of mouth is told apart by the same comparison.
    let louder = sample(3000, n, &["awareness.word_of_mouth_per_month=3.9"], UserPass::Events);
    let moved = differing(&events, &louder);
    eprintln!("30% more word of mouth moves {} metrics", moved.len());
    assert!(moved.len() >= 3, "30% more word of mouth went unnoticed: {moved:?}");
}
