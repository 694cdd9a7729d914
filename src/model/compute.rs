//! Compute economics as pure functions: what a query and a token cost on a tier, how committed capacity is
//! rationed among customers in priority order, how a firm forecasts demand and how many GPUs it may order.
//!
//! Units: GPUs are A100-equivalents; a GPU's day of serving costs the firm's committed price per GPU-day;
//! a tier's serving cost per token is what it costs on committed GPUs at full utilisation. So a tier's
//! tokens need `cost per token / price per GPU-day` GPU-days, and as serving gets cheaper (hardware and
//! efficiency, `cost_decline_per_year`) the same GPUs serve more tokens (docs/ODD.md §7.9).

use super::econ::trend;
use chrono::NaiveDate;

/// Demand classes in the order capacity serves them: contracts (API and enterprise seats), then paid chat,
/// then free chat.
pub const CONTRACT: usize = 0;
/// Paying subscribers' chat.
pub const PAID: usize = 1;
/// Free chat.
pub const FREE: usize = 2;
/// The number of demand classes.
pub const CLASSES: usize = 3;

/// Fastest demand growth a forecast extrapolates: doubling every month (ChatGPT's visits grew about ×2.3
/// from December 2022 to January 2023, the fastest month on record).
pub const MAX_GROWTH_PER_DAY: f64 = std::f64::consts::LN_2 / 30.436_875;

/// How far back the demand forecast looks, days.
pub const FORECAST_WINDOW_DAYS: f64 = 30.0;

/// Serving-cost factor of a tier `years_since_release` after its release (1 at release and before).
pub fn cost_factor(decline_per_year: f64, years_since_release: f64) -> f64 {
    trend(1.0, decline_per_year, years_since_release.max(0.0))
}

/// Cost of `tokens_in` input and `tokens_out` output tokens at per-million prices `usd_in`, `usd_out`.
pub fn tokens_cost(tokens_in: f64, tokens_out: f64, usd_in: f64, usd_out: f64) -> f64 {
    (tokens_in * usd_in + tokens_out * usd_out) / 1e6
}

/// A per-million-token price blended over a mix with `output_share` output tokens.
pub fn blended(usd_in: f64, usd_out: f64, output_share: f64) -> f64 {
    usd_in * (1.0 - output_share) + usd_out * output_share
}

/// A paid user's queries per active day split between the top tier and the free tier under a message cap
/// (`cap` ≤ 0: no cap): `(top, overflow)`.
pub fn split_by_cap(queries: f64, cap: f64) -> (f64, f64) {
    if cap > 0.0 && queries > cap { (cap, queries - cap) } else { (queries, 0.0) }
}

/// Serves `demand` (per class, in [`CONTRACT`], [`PAID`], [`FREE`] order) from `capacity` in that priority:
/// each class gets what is left, up to its demand. Served ≤ demand per class and Σ served ≤ capacity.
pub fn ration(capacity: f64, demand: [f64; CLASSES]) -> [f64; CLASSES] {
    let mut left = capacity.max(0.0);
    demand.map(|d| {
        let s = d.max(0.0).min(left);
        left -= s;
        s
    })
}

/// Share of a demand that was not served (0 when there was no demand).
pub fn rationed_share(demand: f64, served: f64) -> f64 {
    if demand > 0.0 { ((demand - served) / demand).clamp(0.0, 1.0) } else { 0.0 }
}

/// Demand `horizon_days` ahead, extrapolating the growth from `then` (`days` ago) to `now`, with growth
/// clamped to [0, [`MAX_GROWTH_PER_DAY`]]: a firm plans for growth but never for a decline.
pub fn forecast(now: f64, then: f64, days: f64, horizon_days: f64) -> f64 {
    if now <= 0.0 {
        return 0.0;
    }
    let g = if then > 0.0 && days > 0.0 { ((now / then).ln() / days).clamp(0.0, MAX_GROWTH_PER_DAY) } else { 0.0 };
    now * (g * horizon_days.max(0.0)).exp()
}

/// A block of committed GPUs: serving (and paid for) from `from` until the day before `to`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tranche {
    pub gpus: f64,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// GPUs of the tranches serving on `date`.
pub fn active_gpus(tranches: &[Tranche], date: NaiveDate) -> f64 {
    tranches.iter().filter(|t| t.from <= date && date < t.to).map(|t| t.gpus).sum()
}

/// GPUs still to pay for on `date` or later, times the days left to pay: the outstanding commitment in
/// GPU-days (ordered tranches not yet serving count in full).
pub fn committed_gpu_days(tranches: &[Tranche], date: NaiveDate) -> f64 {
    tranches.iter().map(|t| t.gpus * (t.to - t.from.max(date)).num_days().max(0) as f64).sum()
}

/// GPUs the firm may still order: outstanding commitments may take at most `max_share` of `funds`; a new
/// order commits `price_per_gpu_day × commitment_days` per GPU.
pub fn affordable_gpus(
    funds: f64,
    max_share: f64,
    committed_gpu_days: f64,
    price_per_gpu_day: f64,
    commitment_days: f64,
) -> f64 {
    let per_gpu = price_per_gpu_day * commitment_days;
    if per_gpu <= 0.0 {
        return 0.0;
    }
    ((max_share * funds.max(0.0) - committed_gpu_days * price_per_gpu_day) / per_gpu).max(0.0)
}

/// GPUs to order now: what the target lacks beyond the pipeline, at most what the firm can afford.
pub fn order_gpus(target: f64, pipeline: f64, affordable: f64) -> f64 {
    (target - pipeline).max(0.0).min(affordable.max(0.0))
}

/// Allocates a cost to parts in proportion to their weights, in cents, exactly: the parts sum to
/// `total_cents` minus what the last slot (`weights.len()`, the unallocated rest, e.g. idle capacity) keeps.
/// `capacity` is the total weight the cost pays for (≥ the sum of the weights).
pub fn allocate_cents<const N: usize>(total_cents: i64, weights: [f64; N], capacity: f64) -> ([i64; N], i64) {
    let mut parts = [0i64; N];
    if capacity > 0.0 {
        for (p, w) in parts.iter_mut().zip(weights) {
            *p = (total_cents as f64 * (w / capacity).clamp(0.0, 1.0)).round() as i64;
        }
    }
    let used: i64 = parts.iter().sum();
    // Each part is rounded on its own, so the rest can go below zero by at most half a cent per part.
    (parts, total_cents - used)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_chat_query_costs_what_the_semianalysis_estimate_says() {
        // 4,200 input and 1,300 output tokens at $0.6 / $0.8 per million: ≈ $0.0036 a query.
        let c = tokens_cost(4200.0, 1300.0, 0.6, 0.8);
        assert!((c - 0.00356).abs() < 1e-9, "{c}");
        assert_eq!(cost_factor(0.5, 1.0), 0.5);
        assert_eq!(cost_factor(0.5, -2.0), 1.0, "a tier costs its release cost before release");
        assert!((blended(1.5, 2.0, 0.25) - 1.625).abs() < 1e-12);
    }

    #[test]
    fn rationing_serves_contracts_then_paid_then_free() {
        assert_eq!(ration(100.0, [30.0, 50.0, 70.0]), [30.0, 50.0, 20.0]);
        assert_eq!(ration(20.0, [30.0, 50.0, 70.0]), [20.0, 0.0, 0.0]);
        assert_eq!(ration(1e9, [30.0, 50.0, 70.0]), [30.0, 50.0, 70.0]);
        assert_eq!(ration(-5.0, [1.0, 1.0, 1.0]), [0.0, 0.0, 0.0]);
        assert_eq!(rationed_share(70.0, 20.0), 50.0 / 70.0);
        assert_eq!(rationed_share(0.0, 0.0), 0.0);
    }

    #[test]
    fn message_caps_move_queries_to_the_free_tier() {
        assert_eq!(split_by_cap(21.0, 25.0), (21.0, 0.0));
        assert_eq!(split_by_cap(30.0, 25.0), (25.0, 5.0));
        assert_eq!(split_by_cap(30.0, 0.0), (30.0, 0.0));
    }

    #[test]
    fn forecasts_extrapolate_growth_but_never_a_decline() {
        assert!((forecast(200.0, 100.0, 60.0, 60.0) - 400.0).abs() < 1e-9);
        assert_eq!(forecast(50.0, 100.0, 30.0, 90.0), 50.0);
        // Growth faster than doubling a month is clamped.
        let f = forecast(1000.0, 1.0, 30.0, 30.436_875);
        assert!((f - 2000.0).abs() < 1e-6, "{f}");
        assert_eq!(forecast(0.0, 10.0, 30.0, 90.0), 0.0);
    }

    #[test]
    fn tranches_serve_and_commit_for_their_period() {
        let t = [
            Tranche { gpus: 100.0, from: d("2023-01-01"), to: d("2023-02-01") },
            Tranche { gpus: 50.0, from: d("2023-03-01"), to: d("2023-03-11") },
        ];
        assert_eq!(active_gpus(&t, d("2022-12-31")), 0.0);
        assert_eq!(active_gpus(&t, d("2023-01-31")), 100.0);
        assert_eq!(active_gpus(&t, d("2023-02-01")), 0.0);
        assert_eq!(active_gpus(&t, d("2023-03-05")), 50.0);
        // On 2023-01-22: 10 more days of the first, all 10 of the second.
        assert_eq!(committed_gpu_days(&t, d("2023-01-22")), 100.0 * 10.0 + 50.0 * 10.0);
        assert_eq!(committed_gpu_days(&t, d("2024-01-01")), 0.0);
    }

    #[test]
    fn orders_are_bounded_by_what_the_firm_can_pay() {
        // $1M of funds, at most half committed, $100k already committed: $400k left = 400 GPUs at $1000 each.
        let a = affordable_gpus(1e6, 0.5, 1000.0, 100.0, 10.0);
        assert!((a - 400.0).abs() < 1e-9);
        assert_eq!(order_gpus(1000.0, 300.0, a), a);
        assert_eq!(order_gpus(500.0, 300.0, a), 200.0);
        assert_eq!(order_gpus(200.0, 300.0, a), 0.0);
        assert_eq!(affordable_gpus(-5.0, 0.5, 0.0, 100.0, 10.0), 0.0);
    }

    #[test]
    fn allocation_in_cents_is_exact() {
        let (parts, rest) = allocate_cents(1000, [1.0, 2.0, 3.0], 10.0);
        assert_eq!(parts, [100, 200, 300]);
        assert_eq!(rest, 400);
        let (parts, rest) = allocate_cents(100, [1.0, 1.0, 1.0], 3.0);
        assert_eq!(parts.iter().sum::<i64>() + rest, 100);
        assert_eq!(allocate_cents(100, [1.0], 0.0), ([0], 100));
    }
}
