//! Daily and weekly ticks describe the same market: rates are converted per tick and flows use the
//! trapezoid rule, so yearly aggregates of the baseline agree: market costs and users within 5%, revenue
//! (mostly subscriptions, a few hundred paying agents at 100k agents) within 10%, the leading firm within 12%. Small, fast-growing firms differ more (word of mouth acts with a one-tick lag and a user
//! switches at most once per tick); see docs/ODD.md, "Numerical and timing effects". Stepping past the last
//! tick is an error.

use llm_market::api::run_in_memory;
use llm_market::config::{self, Overrides};
use llm_market::sim::rows::AnnualRow;
use std::sync::Arc;

#[test]
fn day_and_week_ticks_agree_in_aggregate() {
    let run = |tick: &str| {
        let sets = vec![format!("tick={tick}"), "record_every=month".into(), "end=2024-12-31".into()];
        let o = Overrides { sets, agents: Some(100_000), ..Default::default() };
        run_in_memory(Arc::new(config::load(None, &o).unwrap())).unwrap()
    };
    let (day_rows, day) = run("day");
    let (week_rows, week) = run("week");
    let rel = |a: f64, b: f64| (a - b).abs() / a.abs().max(b.abs()).max(1.0);
    for year in [2023, 2024] {
        let rows = |t: &llm_market::sim::resources::RunTables| {
            t.annual.iter().filter(|r| r.year == year).cloned().collect::<Vec<_>>()
        };
        let (d_rows, w_rows) = (rows(&day), rows(&week));
        let total = |rows: &[AnnualRow], f: &dyn Fn(&AnnualRow) -> f64| rows.iter().map(f).sum::<f64>();
        // The market as a whole.
        type Metric = dyn Fn(&AnnualRow) -> f64;
        let metrics: [(&str, f64, &Metric); 3] = [
            ("revenue", 0.10, &|r| r.revenue_usd.usd()),
            ("cost", 0.05, &|r| r.cost_usd.usd()),
            ("average users", 0.05, &|r| r.avg_users as f64),
        ];
        for (what, tolerance, f) in metrics {
            let (a, b) = (total(&d_rows, f), total(&w_rows, f));
            assert!(rel(a, b) < tolerance, "{year} market {what}: {a} (day) vs {b} (week)");
        }
        // The leading firm.
        let (d, w) = (&d_rows[0], &w_rows[0]);
        assert_eq!((d.firm.as_str(), w.firm.as_str()), ("openai", "openai"));
        assert!(
            rel(d.revenue_usd.usd(), w.revenue_usd.usd()) < 0.12,
            "{year} openai revenue: {} vs {}",
            d.revenue_usd,
            w.revenue_usd
        );
        assert!(rel(d.cost_usd.usd(), w.cost_usd.usd()) < 0.05, "{year} openai cost: {} vs {}", d.cost_usd, w.cost_usd);
        assert!(
            rel(d.avg_users as f64, w.avg_users as f64) < 0.05,
            "{year} openai users: {} vs {}",
            d.avg_users,
            w.avg_users
        );
    }
    let (d_end, w_end) = (day_rows.market.last().unwrap(), week_rows.market.last().unwrap());
    assert!(rel(d_end.aware_users as f64, w_end.aware_users as f64) < 0.03);
    assert!(
        rel(d_end.active_users as f64, w_end.active_users as f64) < 0.05,
        "{} vs {}",
        d_end.active_users,
        w_end.active_users
    );
    assert!(rel(d_end.orgs_adopted as f64, w_end.orgs_adopted as f64) < 0.05);
}

/// A run's last tick is the end: stepping once more is an error, not a panic or a tick past `end`.
#[test]
fn stepping_past_the_end_is_an_error() {
    let o = Overrides { sets: vec!["end=2022-12-05".into()], agents: Some(1000), ..Default::default() };
    let mut sim = llm_market::sim::Simulation::new(Arc::new(config::load(None, &o).unwrap()), 0);
    while sim.tick() < sim.n_ticks() {
        sim.step().unwrap();
    }
    let err = sim.step().unwrap_err();
    assert!(matches!(err, llm_market::sim::SimError::Finished { n_ticks: 5 }), "{err}");
    assert_eq!(sim.tick(), 5);
}
