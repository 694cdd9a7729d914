//! Daily and weekly ticks describe the same market: rates are converted per tick, so aggregates agree.

use super::support::*;
use llm_market::app::run_in_memory;

#[test]
fn day_and_week_ticks_agree_in_aggregate() {
    let run = |tick: &str| {
        let s = load(
            &tiny(),
            &[
                "agents=20000",
                &format!("tick={tick}"),
                "record_every=month",
            ],
        );
        run_in_memory(s).unwrap()
    };
    let (day_rows, day) = run("day");
    let (week_rows, week) = run("week");
    let rel = |a: f64, b: f64| (a - b).abs() / a.abs().max(b.abs()).max(1.0);
    // Yearly revenue and cost of every firm in 2023.
    for (d, w) in day
        .annual
        .iter()
        .zip(&week.annual)
        .filter(|(d, _)| d.year == 2023)
    {
        assert_eq!(d.firm, w.firm);
        assert!(
            rel(d.revenue_usd.usd(), w.revenue_usd.usd()) < 0.15,
            "{} revenue: {} vs {}",
            d.firm,
            d.revenue_usd,
            w.revenue_usd
        );
        assert!(
            rel(d.cost_usd.usd(), w.cost_usd.usd()) < 0.15,
            "{} cost: {} vs {}",
            d.firm,
            d.cost_usd,
            w.cost_usd
        );
        assert!(
            rel(d.avg_users as f64, w.avg_users as f64) < 0.08,
            "{} users: {} vs {}",
            d.firm,
            d.avg_users,
            w.avg_users
        );
    }
    let (d_end, w_end) = (
        day_rows.market.last().unwrap(),
        week_rows.market.last().unwrap(),
    );
    assert!(rel(d_end.aware_users as f64, w_end.aware_users as f64) < 0.05);
    assert!(
        rel(d_end.active_users as f64, w_end.active_users as f64) < 0.10,
        "{} vs {}",
        d_end.active_users,
        w_end.active_users
    );
}
