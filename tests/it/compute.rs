//! Compute economics: capacity bounds what is served, a capacity cut from a date brings waitlists, rationing
//! and fewer users after (and only after) it, scenario stories told with dated events leave the calibration
//! period as it was, and enterprise seats come from adopters, not from bans.

use super::support::*;
use llm_market::api::run_in_memory;
use llm_market::sim::rows::{MarketRow, TraceRow};
use std::path::Path;

/// Runs a scenario file (with `--set`-style overrides) and returns its trace and market rows.
fn rows(path: &Path, sets: &[&str]) -> (Vec<TraceRow>, Vec<MarketRow>) {
    let (sink, _) = run_in_memory(load(path, sets)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (sink.trace, sink.market)
}

fn baseline() -> std::path::PathBuf {
    root().join("configs/baseline.toml")
}

fn date(s: &str) -> chrono::NaiveDate {
    s.parse().unwrap()
}

/// The baseline's trace: per firm and recorded day, served GPU-days never exceed capacity, and served plus
/// rationed tokens are the tokens demanded; the compute bill splits exactly into commitments and spot, and
/// into its uses plus idle capacity.
#[test]
fn served_never_exceeds_capacity_and_rationed_plus_served_is_demanded() {
    let (trace, _) = rows(&baseline(), &["agents=20000", "end=2024-06-30"]);
    let mut saw_rationing = false;
    for r in &trace {
        let at = format!("{} {}", r.firm, r.date);
        assert!(
            r.served_gpu_days <= r.capacity_gpu_days,
            "{at}: served {} > capacity {}",
            r.served_gpu_days,
            r.capacity_gpu_days
        );
        assert!(r.served_gpu_days <= r.demanded_gpu_days, "{at}: served more than demanded");
        // tokens_rationed is recorded as demanded − served, so the identity needs served ≤ demanded.
        assert!(r.tokens_served <= r.tokens_demanded, "{at}: served more tokens than demanded");
        assert_eq!(r.tokens_served + r.tokens_rationed, r.tokens_demanded, "{at}: token identity");
        assert_eq!(r.cost_inference_usd, r.cost_commitment_usd + r.cost_spot_usd, "{at}: compute bill");
        let uses = r.cost_free_chat_usd + r.cost_paid_chat_usd + r.cost_seats_usd + r.cost_api_usd + r.cost_idle_usd;
        assert_eq!(uses, r.cost_inference_usd, "{at}: compute bill by use");
        assert!(r.cost_idle_usd.0 >= -5, "{at}: idle cost below zero beyond rounding");
        let by_tier = r.cost_first_tier_usd + r.cost_best_tier_usd + r.cost_idle_usd;
        assert!((by_tier - r.cost_inference_usd).0.abs() <= 5, "{at}: compute bill by tier");
        assert!(r.funding_in_kind_usd <= r.funding_usd, "{at}: credits are part of funding");
        assert!(r.utilisation <= 1.0, "{at}: utilisation {}", r.utilisation);
        saw_rationing |= r.firm == "openai" && r.tokens_rationed > 0;
    }
    assert!(saw_rationing, "ChatGPT should be at capacity early in 2023");
    // A paid query costs the seller more than a free one: paid chat costs more per paying user than free chat
    // per free user, in spring 2023.
    let spring: Vec<&TraceRow> = trace
        .iter()
        .filter(|r| r.firm == "openai" && r.date >= date("2023-04-01") && r.date < date("2023-06-01"))
        .collect();
    let per = |cost: i64, users: u64| cost as f64 / users.max(1) as f64;
    let paid: f64 = spring.iter().map(|r| per(r.cost_paid_chat_usd.0, r.paying_users)).sum();
    let free: f64 = spring.iter().map(|r| per(r.cost_free_chat_usd.0, r.users - r.paying_users)).sum();
    assert!(paid > 3.0 * free, "a paying user costs {paid} vs a free one {free} (cents summed over days)");
}

/// OpenAI's usable compute halved from 2024-01-01 (a dated `set` event): identical rows before the date; a
/// waitlist, rationed users and fewer OpenAI users than the baseline after it.
#[test]
fn halving_capacity_from_a_date_rations_users_after_that_date_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("half.toml");
    std::fs::write(
        &file,
        format!(
            "extends = {:?}\nname = \"half_capacity\"\n\n[[events]]\nid = \"outage\"\ndate = 2024-01-01\nkind = \"set\"\n\
             key = \"firms.openai.compute.usable_share\"\nvalue = 0.5\n",
            baseline().display().to_string()
        ),
    )
    .unwrap();
    let sets = ["agents=20000", "end=2024-04-30"];
    let (base, _) = rows(&baseline(), &sets);
    let (half, _) = rows(&file, &sets);
    let cut = date("2024-01-01");
    let openai = |t: &[TraceRow], before: bool| -> Vec<TraceRow> {
        t.iter().filter(|r| r.firm == "openai" && (r.date < cut) == before).cloned().collect()
    };
    assert_eq!(openai(&base, true), openai(&half, true), "rows before the cut must be the baseline's");
    let (b, h) = (openai(&base, false), openai(&half, false));
    let sum = |rows: &[TraceRow], f: fn(&TraceRow) -> u64| rows.iter().map(f).sum::<u64>();
    assert!(sum(&h, |r| r.waitlist) > sum(&b, |r| r.waitlist), "a waitlist after the cut");
    assert!(sum(&h, |r| r.rationed_users) > sum(&b, |r| r.rationed_users), "rationed users after the cut");
    assert!(sum(&h, |r| r.tokens_rationed) > 0, "rationed tokens after the cut");
    let users = |rows: &[TraceRow]| rows.iter().filter(|r| r.date >= date("2024-02-01")).map(|r| r.users).sum::<u64>();
    assert!(users(&h) < users(&b), "fewer OpenAI users: {} vs the baseline's {}", users(&h), users(&b));
}

/// Every library scenario whose story begins after 2023-08-31 tells it with dated events, so its trace and
/// market rows up to 2023-08-31 are the baseline's (same seed); the two counterfactuals of the past
/// (`no_microsoft_funding`, `open_source_2x`) are the only library scenarios allowed to differ.
#[test]
fn stories_after_the_calibration_period_leave_it_unchanged() {
    let sets = ["agents=20000", "end=2023-09-30"];
    let (base_t, base_m) = rows(&baseline(), &sets);
    let until = date("2023-08-31");
    let early_t = |t: &[TraceRow]| t.iter().filter(|r| r.date <= until).cloned().collect::<Vec<_>>();
    let early_m = |m: &[MarketRow]| m.iter().filter(|r| r.date <= until).cloned().collect::<Vec<_>>();
    let mut names: Vec<String> = std::fs::read_dir(root().join("configs/scenarios"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().trim_end_matches(".toml").to_string())
        .collect();
    names.sort();
    let past = ["no_microsoft_funding", "open_source_2x"];
    let later: Vec<&String> = names.iter().filter(|n| !past.contains(&n.as_str())).collect();
    assert!(later.len() >= 4, "library: {names:?}");
    for name in later {
        let (t, m) = rows(&root().join(format!("configs/scenarios/{name}.toml")), &sets);
        assert!(early_t(&t) == early_t(&base_t), "{name}: trace rows up to {until} differ from the baseline's");
        assert!(early_m(&m) == early_m(&base_m), "{name}: market rows up to {until} differ from the baseline's");
        assert!(t != base_t, "{name}: the story must change something after {until}");
    }
}

/// Seats come from organisations that adopted: with no bans at all (ban hazard 0) enterprise seat revenue
/// stays within a factor of two of the baseline's, and OpenAI's revenue is higher without bans (banned
/// employees stop using and paying for the consumer app), so data leaks do not by themselves make its revenue.
#[test]
fn seat_revenue_does_not_come_from_bans() {
    let sets = ["agents=20000", "end=2024-12-31"];
    let revenue = |extra: &[&str]| -> (f64, f64) {
        let s: Vec<&str> = sets.iter().chain(extra).copied().collect();
        let (t, _) = rows(&baseline(), &s);
        let openai: Vec<&TraceRow> = t.iter().filter(|r| r.firm == "openai").collect();
        (openai.iter().map(|r| r.revenue_seats_usd.usd()).sum(), openai.iter().map(|r| r.revenue_usd.usd()).sum())
    };
    let ((seats, total), (seats_0, total_0)) = (revenue(&[]), revenue(&["orgs.ban_hazard_per_month=0"]));
    assert!(seats > 0.0 && seats_0 > 0.0, "seats sold: {seats} with bans, {seats_0} without");
    assert!(seats_0 > 0.5 * seats, "seat revenue without bans {seats_0} vs {seats} with them");
    assert!(total_0 > total, "OpenAI's revenue without bans {total_0} vs {total} with them");
}

/// A value given on the command line (or by a sweep) for a key that a dated `set` event changes would hold
/// only until the event's date: refused with exit 2, naming the event and what to set instead.
#[test]
fn a_set_flag_shadowed_by_a_dated_event_is_refused() {
    let boom = root().join("configs/scenarios/enterprise_api_boom.toml");
    let o = llm(&["validate", boom.to_str().unwrap(), "--set", "orgs.ban_hazard_per_month=0.2"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(
            "--set: orgs.ban_hazard_per_month: the set event `boom_ban_hazard` changes this key from 2023-09-01"
        ),
        "{err}"
    );
    assert!(err.contains("events.boom_ban_hazard.value"), "{err}");
    let o = llm(&["validate", boom.to_str().unwrap(), "--set", "events.boom_ban_hazard.value=0.2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // An event dated after the end of the run never fires, so it overrides nothing.
    let o =
        llm(&["validate", boom.to_str().unwrap(), "--set", "end=2023-06-30", "--set", "orgs.ban_hazard_per_month=0.2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The same key varied by a sweep is refused when the sweep is read, naming the sweep file's line.
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("shadow.toml");
    std::fs::write(
        &sweep,
        format!(
            "name = \"shadow\"\nscenario = {:?}\nseed = 1\nreplicates = 1\n[design]\nkind = \"grid\"\n\
             [[parameters]]\npath = \"orgs.ban_hazard_per_month\"\nvalues = [0.1, 0.2]\n",
            boom.display().to_string()
        ),
    )
    .unwrap();
    let o = llm(&["sweep", sweep.to_str().unwrap(), "--dry-run"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("shadow.toml:8: parameters[0].path: the set event `boom_ban_hazard`"),
        "{}",
        stderr(&o)
    );
}

/// Money limits compute: a lab that may commit almost none of its funds to GPUs orders fewer of them, turns
/// more sign-ups away and ends with fewer users than the same lab with the default limit.
#[test]
fn a_firm_that_cannot_pay_for_compute_orders_less_and_rations_more() {
    let lab = |extra: &[&str]| -> Vec<TraceRow> {
        let sets: Vec<&str> = ["agents=3000"].iter().chain(extra).copied().collect();
        let (t, _) = rows(&tiny(), &sets);
        t.into_iter().filter(|r| r.firm == "lab").collect()
    };
    let (rich, poor) = (lab(&[]), lab(&["firms.lab.compute.max_commit_share=0.0001"]));
    let max = |t: &[TraceRow], f: fn(&TraceRow) -> u64| t.iter().map(f).max().unwrap_or(0);
    let sum = |t: &[TraceRow], f: fn(&TraceRow) -> u64| t.iter().map(f).sum::<u64>();
    assert!(
        max(&poor, |r| r.gpus) < max(&rich, |r| r.gpus),
        "GPUs: {} vs {}",
        max(&poor, |r| r.gpus),
        max(&rich, |r| r.gpus)
    );
    assert!(sum(&poor, |r| r.waitlist) > sum(&rich, |r| r.waitlist), "waitlist");
    assert!(
        sum(&poor, |r| r.users) < sum(&rich, |r| r.users),
        "users: {} vs {}",
        sum(&poor, |r| r.users),
        sum(&rich, |r| r.users)
    );
}
