//! Firms that decide (docs/ODD.md §7.13): no decision before `decisions.start` (the calibration period is the
//! scripted history), every price and training-budget change in trace.csv has its row in decisions.csv and
//! back, cash still moves by profit plus funding exactly, and outcomes move when a mechanism's input moves:
//! Microsoft's money changes what OpenAI trains and so its quality, users and revenue (and does not when
//! firms follow scripts); a rival's price cut starts a price war only when organisations are price-elastic;
//! the stress scenario makes firms cut, raise and fail.

use super::support::*;
use llm_market::api::run_in_memory;
use llm_market::sim::MemorySink;
use llm_market::sim::rows::{DecisionRow, TraceRow};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn scenario(name: &str) -> PathBuf {
    if name == "baseline" {
        root().join("configs/baseline.toml")
    } else {
        root().join(format!("configs/scenarios/{name}.toml"))
    }
}

/// Runs a scenario at 20,000 agents with `--set`-style overrides.
fn run(name: &str, sets: &[&str]) -> MemorySink {
    let mut all = vec!["agents=20000"];
    all.extend_from_slice(sets);
    run_in_memory(load(&scenario(name), &all)).unwrap_or_else(|e| panic!("{name}: {e}")).0
}

fn date(s: &str) -> chrono::NaiveDate {
    s.parse().unwrap()
}

fn firm_rows<'a>(trace: &'a [TraceRow], firm: &str) -> Vec<&'a TraceRow> {
    trace.iter().filter(|r| r.firm == firm).collect()
}

fn decided<'a>(rows: &'a [DecisionRow], firm: &str, kinds: &[&str]) -> Vec<&'a DecisionRow> {
    rows.iter().filter(|d| d.firm == firm && kinds.contains(&d.decision)).collect()
}

#[test]
fn no_decision_before_the_start_and_the_calibration_period_is_the_scripted_history() {
    let decided_run = run("baseline", &["end=2024-03-31"]);
    let scripted = run("baseline", &["end=2024-03-31", "decisions.start=2030-01-01"]);
    let start = date("2023-09-01");
    assert!(!decided_run.decisions.is_empty(), "firms decide from 2023-09-01");
    assert!(decided_run.decisions.iter().all(|d| d.date >= start), "a decision before 2023-09-01");
    assert!(scripted.decisions.is_empty(), "no firm decides before decisions.start");
    let before = |s: &MemorySink| s.trace.iter().filter(|r| r.date < start).cloned().collect::<Vec<_>>();
    let market = |s: &MemorySink| s.market.iter().filter(|r| r.date < start).cloned().collect::<Vec<_>>();
    assert_eq!(before(&decided_run), before(&scripted), "the trace up to 2023-08-31 changed");
    // The history is the record: before the start OpenAI and Claude are funded by the dated events only (no
    // raise by the scripted rule; the decided rule's earlier trigger does not reach back).
    let scenario = load(&scenario("baseline"), &[]);
    for firm in ["openai", "claude"] {
        for r in firm_rows(&decided_run.trace, firm).into_iter().filter(|r| r.date < start && r.tick > 0) {
            let events: f64 = scenario
                .params()
                .events
                .iter()
                .filter(|e| e.firm.as_deref() == Some(firm) && e.date.0 == r.date && e.amount_usd.is_some())
                .map(|e| e.amount_usd.unwrap() * (1.0 - e.compute_share.unwrap_or(0.0)))
                .sum();
            let cash_funding = (r.funding_usd - r.funding_in_kind_usd).usd();
            assert!(
                (cash_funding - events).abs() < 0.02,
                "{firm} {}: funding {cash_funding} vs events {events}",
                r.date
            );
        }
    }
    assert_eq!(market(&decided_run), market(&scripted), "the market up to 2023-08-31 changed");
    let openai =
        |s: &MemorySink| firm_rows(&s.trace, "openai").last().map(|r| (r.quality_elo, r.price_api_usd_per_mtok));
    assert_ne!(openai(&decided_run), openai(&scripted), "deciding changes nothing after the start");
}

#[test]
fn every_price_and_training_budget_change_has_its_decision_and_back() {
    let s = run("baseline", &["end=2025-06-30"]);
    let start = date("2023-09-01");
    let scenario = load(&scenario("baseline"), &[]);
    let mut checked = (0, 0);
    for f in scenario.firms() {
        let rows = firm_rows(&s.trace, &f.id);
        // Prices: a change between two daily rows is a decision of the later tick, and every price decision
        // shows in the trace.
        for (what, price) in [
            ("api_price", (|r: &TraceRow| r.price_api_usd_per_mtok) as fn(&TraceRow) -> f64),
            ("sub_price", |r: &TraceRow| r.price_sub_usd),
        ] {
            let logged: BTreeSet<u32> = decided(&s.decisions, &f.id, &[what]).iter().map(|d| d.tick).collect();
            let changed: BTreeSet<u32> = rows
                .windows(2)
                .filter(|w| w[1].date >= start && price(w[1]) != price(w[0]))
                .map(|w| w[1].tick)
                .collect();
            assert_eq!(changed, logged, "{} {what}: ticks of trace changes vs decisions.csv", f.id);
            checked.0 += logged.len();
        }
        // Training budgets: a run started, cancelled or finished at tick t changes the training cost from
        // tick t+1 (a scripted programme's own start and end are its script, not a decision).
        let logged: BTreeSet<u32> =
            decided(&s.decisions, &f.id, &["training_run", "release"]).iter().map(|d| d.tick + 1).collect();
        let script_ends: Vec<chrono::NaiveDate> =
            f.training.iter().map(|t| t.start + chrono::Days::new((t.months * 30.436875).ceil() as u64)).collect();
        let near_script = |d: chrono::NaiveDate| script_ends.iter().any(|e| (d - *e).num_days().abs() <= 2);
        let changed: BTreeSet<u32> = rows
            .windows(2)
            .filter(|w| w[1].date > start && w[1].cost_training_usd != w[0].cost_training_usd)
            .filter(|w| !near_script(w[1].date))
            .map(|w| w[1].tick)
            .collect();
        let logged: BTreeSet<u32> = logged
            .into_iter()
            .filter(|t| rows.iter().any(|r| r.tick == *t) && !rows.iter().any(|r| r.tick == *t && near_script(r.date)))
            .collect();
        assert_eq!(changed, logged, "{}: training cost changes vs training decisions", f.id);
        checked.1 += logged.len();
    }
    assert!(checked.0 > 10 && checked.1 > 5, "too few decisions to check: {checked:?}");
}

#[test]
fn cash_moves_by_profit_and_funding_exactly_when_firms_decide() {
    for name in ["baseline", "stress"] {
        let s = run(name, &[]);
        for f in load(&scenario(name), &[]).firms() {
            let rows = firm_rows(&s.trace, &f.id);
            for w in rows.windows(2) {
                assert_eq!(
                    w[1].cash_usd,
                    w[0].cash_usd + w[1].profit_usd + w[1].funding_usd,
                    "{name} {} {}: cash identity",
                    f.id,
                    w[1].date
                );
                assert_eq!(w[1].profit_usd, w[1].revenue_usd - w[1].cost_usd, "{name} {} {}", f.id, w[1].date);
            }
        }
        // Rounds that closed brought what decisions.csv says: cash now, the compute share as credits later.
        let firms = load(&scenario(name), &[]).firms().to_vec();
        for d in s.decisions.iter().filter(|d| d.decision == "funding_round" && d.new_value > 0.0) {
            let row = s.trace.iter().find(|r| r.firm == d.firm && r.tick == d.tick).expect("a trace row");
            let cash_share = 1.0 - firms.iter().find(|f| f.id == d.firm).unwrap().raise.compute_share;
            assert!(
                row.funding_usd.usd() >= d.new_value * cash_share - 0.01,
                "{name} {}: round not in funding",
                d.firm
            );
        }
    }
}

#[test]
fn without_microsofts_money_openai_trains_less_and_its_quality_users_and_revenue_move() {
    let year = |s: &MemorySink, y: i32, f: fn(&TraceRow) -> f64| -> f64 {
        s.trace.iter().filter(|r| r.firm == "openai" && chrono::Datelike::year(&r.date) == y).map(f).sum()
    };
    let last_quality = |s: &MemorySink| firm_rows(&s.trace, "openai").last().unwrap().quality_elo;
    let base = run("baseline", &[]);
    let nomsft = run("no_microsoft_funding", &[]);
    // What OpenAI decided to spend on the runs it started (cancellations left out).
    let spent = |s: &MemorySink| -> f64 {
        decided(&s.decisions, "openai", &["training_run"])
            .iter()
            .filter(|d| d.old_value == 0.0)
            .map(|d| d.new_value)
            .sum()
    };
    assert!(spent(&nomsft) < spent(&base), "OpenAI commits less to training without Microsoft");
    assert!(last_quality(&nomsft) < last_quality(&base) - 10.0, "{} vs {}", last_quality(&nomsft), last_quality(&base));
    let users = |r: &TraceRow| r.users as f64;
    let revenue = |r: &TraceRow| r.revenue_usd.usd();
    assert_ne!(year(&nomsft, 2025, users), year(&base, 2025, users), "users");
    assert_ne!(year(&nomsft, 2025, revenue), year(&base, 2025, revenue), "revenue");
    // Control: when no firm decides, Microsoft's money changes OpenAI's cash and nothing its users see.
    let off = ["decisions.start=2030-01-01"];
    let (base, nomsft) = (run("baseline", &off), run("no_microsoft_funding", &off));
    assert_eq!(year(&nomsft, 2025, users), year(&base, 2025, users), "users without decisions");
    assert_eq!(year(&nomsft, 2025, revenue), year(&base, 2025, revenue), "revenue without decisions");
    assert_eq!(last_quality(&nomsft), last_quality(&base), "quality without decisions");
}

#[test]
fn a_rivals_price_cut_starts_a_price_war_only_when_organisations_are_price_elastic() {
    // bigtech_price_war with and without Google's cut of its API price on 2023-09-01, at the calibrated
    // log-price weight (0.8) and at 3 (both from 2023-09-01, the scenario's set event).
    let openai_api = |s: &MemorySink| firm_rows(&s.trace, "openai").last().unwrap().price_api_usd_per_mtok;
    let pair = |weight: &str| {
        let w = format!("events.org_price_sensitivity.value={weight}");
        let war = run("bigtech_price_war", &[&w, "end=2024-06-30"]);
        let calm = run("bigtech_price_war", &[&w, "end=2024-06-30", "events.bard_api_price_cut.enabled=false"]);
        (calm, war)
    };
    let (calm, war) = pair("3.0");
    assert!(openai_api(&war) < openai_api(&calm) * 0.9, "{} vs {}", openai_api(&war), openai_api(&calm));
    assert!(
        decided(&war.decisions, "openai", &["api_price"]).iter().any(|d| d.reason.starts_with("best response")),
        "OpenAI's cuts are best responses"
    );
    // With the calibrated, inelastic organisations matching a cut loses money: OpenAI keeps its price path
    // whatever Google does.
    let (calm, war) = pair("0.8");
    assert_eq!(openai_api(&war), openai_api(&calm));
    assert!(!war.decisions.iter().any(|d| d.reason.contains("best response")), "no best-response cut at 0.8");
}

#[test]
fn a_decision_switched_to_scripted_follows_the_script() {
    let s = run("baseline", &["firms.openai.strategy.training=\"scripted\"", "end=2025-06-30"]);
    assert!(decided(&s.decisions, "openai", &["training_run", "release"]).is_empty());
    assert!(!decided(&s.decisions, "openai", &["api_price"]).is_empty(), "other decisions stay decided");
    // Quality: 1100 + 60 Elo a year + GPT-4's 70, as scripted.
    let last = firm_rows(&s.trace, "openai").last().copied().unwrap();
    let years = (last.date - date("2022-11-30")).num_days() as f64 / 365.2425;
    assert!((last.quality_elo - (1100.0 + 60.0 * years + 70.0)).abs() < 0.5, "{}", last.quality_elo);
}

#[test]
fn under_stress_firms_cut_raise_and_fail_by_the_rules() {
    let s = run("stress", &[]);
    let kinds: BTreeSet<&str> = s.decisions.iter().map(|d| d.decision).collect();
    for k in ["cuts", "funding_round", "training_run", "release"] {
        assert!(kinds.contains(k), "no {k} decision under stress: {kinds:?}");
    }
    let cut_max = s.decisions.iter().filter(|d| d.decision == "cuts").map(|d| d.new_value as u8).max().unwrap();
    assert!(cut_max >= 3, "cuts reach the free tier under stress (level {cut_max})");
    let failed = s.decisions.iter().any(|d| d.decision == "exit" || d.reason.ends_with("round failed"));
    assert!(failed, "some firm's round fails or some firm exits under stress");
    // The baseline is calmer: fewer cuts.
    let base = run("baseline", &[]);
    let cuts = |s: &MemorySink| s.decisions.iter().filter(|d| d.decision == "cuts").count();
    assert!(cuts(&s) > cuts(&base), "{} cuts under stress vs {} in the baseline", cuts(&s), cuts(&base));
}
