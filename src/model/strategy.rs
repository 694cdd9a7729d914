//! Pure rules of the firms' decisions (docs/ODD.md §7.13): the R&D race (quality from effective training
//! compute), the training budget, cost cutting in a stated order, price responses to rivals, valuation-based
//! fund-raising and investor sentiment. The systems in `sim::strategy` call them; nothing here reads the world.

use super::calendar::DAYS_PER_MONTH;

/// log10(2): the decades of effective compute one halving of the compute a capability needs is worth.
const LOG10_2: f64 = std::f64::consts::LOG10_2;

/// The scaling relation of the R&D race and the price of training compute.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scaling {
    /// Elo gained per tenfold effective training compute (`b` in Elo = a + b·log10 C_eff).
    pub elo_per_decade: f64,
    /// Months in which algorithmic progress halves the compute a given capability needs.
    pub efficiency_halving_months: f64,
    /// Training FLOP one US dollar buys at `flop_per_usd_date`, and the years in which that doubles.
    pub flop_per_usd: f64,
    pub flop_per_usd_doubling_years: f64,
}

impl Scaling {
    /// Elo gained by a model of `log10_flop` trained `months_later` months after a model of `log10_flop0`:
    /// `b · (log10 C − log10 C0 + log10 2 · months / halving)`. Negative when the new model is too small.
    pub fn elo_gain(&self, log10_flop0: f64, log10_flop: f64, months_later: f64) -> f64 {
        self.elo_per_decade * (log10_flop - log10_flop0 + LOG10_2 * months_later / self.efficiency_halving_months)
    }

    /// The log10 training FLOP that gains `gain_elo` over a model of `log10_flop0` trained `months_later`
    /// months before the new one (the inverse of [`Scaling::elo_gain`]).
    pub fn flop_for_gain(&self, log10_flop0: f64, gain_elo: f64, months_later: f64) -> f64 {
        log10_flop0 + gain_elo / self.elo_per_decade - LOG10_2 * months_later / self.efficiency_halving_months
    }

    /// Training FLOP per US dollar `years` after the reference date (GPU price-performance).
    pub fn flop_per_usd_at(&self, years: f64) -> f64 {
        self.flop_per_usd * 2f64.powf(years / self.flop_per_usd_doubling_years)
    }
}

/// Whether an open-weight firm publishes the weights of a new model of `quality`: while it is not ahead of
/// the best closed model (`best_closed`), openness wins adoption; ahead of it, the weights are worth keeping.
pub fn release_weights(quality: f64, best_closed: f64) -> bool {
    quality <= best_closed
}

/// Whether a parent withdraws its remaining budget: the firm's user share has been below the minimum for
/// `months_below` months (`None`: it is not below), at least the parent's `patience` (0: never withdraws).
pub fn parent_withdraws(months_below: Option<f64>, patience: f64) -> bool {
    patience > 0.0 && months_below.is_some_and(|m| m >= patience)
}

/// What a firm can spend on a new training run: a share of its funds above a runway floor (months of
/// its current net burn), never negative.
pub fn training_budget(funds_usd: f64, monthly_burn_usd: f64, floor_months: f64, max_share: f64) -> f64 {
    (max_share * (funds_usd - floor_months * monthly_burn_usd.max(0.0))).max(0.0)
}

/// The training run a firm starts: the cost of the compute that keeps it level with the frontier it
/// expects (`wanted_usd`) when its budget allows, otherwise its whole budget; none (0) below `min_usd`.
pub fn training_spend(wanted_usd: f64, budget_usd: f64, min_usd: f64) -> f64 {
    let spend = wanted_usd.min(budget_usd);
    if spend >= min_usd && wanted_usd > 0.0 { spend } else { 0.0 }
}

/// The cost-cutting level (0 none … n = every cut) for a runway of `runway` months (`None`: not burning
/// cash). Cuts go in the order of `thresholds` (descending runway months: training, capacity growth,
/// free-tier generosity, staff growth): a cut is made when the runway falls below its threshold and
/// undone only when the runway is back above the threshold × `recover` (hysteresis, so that a firm does
/// not cut and restore at every review).
pub fn cut_level(previous: u8, runway: Option<f64>, thresholds: &[f64], recover: f64) -> u8 {
    let Some(r) = runway else { return 0 };
    let mut level = thresholds.iter().take_while(|t| r < **t).count() as u8;
    // Keep earlier cuts until the runway clears their threshold with margin.
    for (k, t) in thresholds.iter().enumerate().take(previous as usize) {
        if r < t * recover {
            level = level.max(k as u8 + 1);
        }
    }
    level
}

/// A price moved toward a target: the share `adjust` of the gap closed this review, then kept within
/// `[floor, ceiling]` (a floor above the ceiling wins: a firm never prices below its cost floor).
pub fn adjust_price(current: f64, target: f64, adjust: f64, floor: f64, ceiling: f64) -> f64 {
    let moved = current + adjust.clamp(0.0, 1.0) * (target - current);
    moved.min(ceiling).max(floor)
}

/// The price a firm aims for: a comparable rival's lower price (matching), or, when its own price is more
/// than `max_markup` times its unit cost, that markup (prices follow costs down once margins are
/// excessive); otherwise its own price.
pub fn target_price(own: f64, rival_low: Option<f64>, unit_cost: f64, max_markup: f64) -> f64 {
    let mut target = own;
    if let Some(r) = rival_low {
        target = target.min(r);
    }
    if unit_cost > 0.0 {
        target = target.min(unit_cost * max_markup);
    }
    target
}

/// Whether a firm seeks a round: its runway (`None`: not burning cash) is below `trigger` months and the
/// last attempt was at least `cooldown` months ago (`None`: never).
pub fn raise_due(runway: Option<f64>, trigger: f64, months_since_last: Option<f64>, cooldown: f64) -> bool {
    runway.is_some_and(|r| r < trigger) && months_since_last.is_none_or(|m| m >= cooldown)
}

/// A firm's share of a logit market after it moves its price from `p0` to `p`, when buyers weigh the log
/// of price by `alpha` and its share at `p0` is `share0` (the rivals' offers held fixed).
pub fn logit_share(share0: f64, alpha: f64, p0: f64, p: f64) -> f64 {
    if share0 <= 0.0 || p <= 0.0 {
        return 0.0;
    }
    if share0 >= 1.0 {
        return 1.0;
    }
    let odds = share0 / (1.0 - share0) * (p0 / p).powf(alpha);
    odds / (1.0 + odds)
}

/// A myopic best response on a logit demand with log-price weight `alpha`: of the `candidates` (kept
/// within `[floor, ceiling]`), the price with the highest margin × share, the rivals' prices held fixed.
/// Ties keep the current price `p0` (listed first). Returns the price and the share it expects.
pub fn best_response(
    p0: f64,
    share0: f64,
    alpha: f64,
    unit_cost: f64,
    candidates: &[f64],
    floor: f64,
    ceiling: f64,
) -> (f64, f64) {
    let clamp = |p: f64| p.min(ceiling).max(floor);
    let mut best = (clamp(p0), logit_share(share0, alpha, p0, clamp(p0)));
    let mut best_profit = best.1 * (best.0 - unit_cost);
    for &c in candidates {
        let p = clamp(c);
        if p <= 0.0 || !p.is_finite() {
            continue;
        }
        let s = logit_share(share0, alpha, p0, p);
        let profit = s * (p - unit_cost);
        if profit > best_profit * (1.0 + 1e-9) + 1e-12 {
            best = (p, s);
            best_profit = profit;
        }
    }
    best
}

/// A firm's valuation for a round: trailing-year revenue × the revenue multiple × investor sentiment ×
/// a growth factor `(1 + growth) / 2` kept within [0.25, 3] (a firm growing 100% a year gets the multiple).
pub fn valuation(ttm_revenue_usd: f64, multiple: f64, sentiment: f64, growth: f64) -> f64 {
    ttm_revenue_usd.max(0.0) * multiple * sentiment.max(0.0) * ((1.0 + growth) / 2.0).clamp(0.25, 3.0)
}

/// A round's size: the months of burn the firm asks for, at most the dilution cap of its valuation.
pub fn round_size(monthly_burn_usd: f64, months: f64, valuation_usd: f64, dilution_cap: f64) -> f64 {
    (months * monthly_burn_usd.max(0.0)).min(dilution_cap * valuation_usd).max(0.0)
}

/// Probability that a round closes: the growth rule of the raise (base + per-growth bonus, growth capped
/// at ±100%) scaled by investor sentiment (at most 1), in [0, 1].
pub fn round_success(base: f64, per_growth: f64, growth: f64, sentiment: f64) -> f64 {
    ((base + per_growth * growth.clamp(-1.0, 1.0)) * sentiment.clamp(0.0, 1.0)).clamp(0.0, 1.0)
}

/// Investor sentiment after `dt_months`: it relaxes toward `1 + sensitivity · (growth − neutral)` (kept in
/// `[min, max]`) with time constant `tau_months`, where `growth` is the sector's annualised revenue growth.
pub fn sentiment_step(
    sentiment: f64,
    growth: f64,
    neutral_growth: f64,
    sensitivity: f64,
    bounds: (f64, f64),
    tau_months: f64,
    dt_months: f64,
) -> f64 {
    let target = (1.0 + sensitivity * (growth - neutral_growth)).clamp(bounds.0, bounds.1);
    sentiment + (target - sentiment) * (1.0 - (-dt_months / tau_months.max(1e-9)).exp())
}

/// Months between two dates given as days apart.
pub fn months(days: f64) -> f64 {
    days / DAYS_PER_MONTH
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Scaling = Scaling {
        elo_per_decade: 75.0,
        efficiency_halving_months: 16.0,
        flop_per_usd: 2e17,
        flop_per_usd_doubling_years: 2.5,
    };

    #[test]
    fn tenfold_compute_buys_the_slope_and_time_buys_efficiency() {
        assert!((S.elo_gain(25.0, 26.0, 0.0) - 75.0).abs() < 1e-9);
        // 16 months of algorithmic progress halve the compute: log10 2 decades.
        assert!((S.elo_gain(25.0, 25.0, 16.0) - 75.0 * LOG10_2).abs() < 1e-9);
        // A smaller model than the last one is worse unless enough time has passed.
        assert!(S.elo_gain(25.0, 24.5, 6.0) < 0.0);
        // flop_for_gain inverts elo_gain.
        let f = S.flop_for_gain(25.3, 50.0, 12.0);
        assert!((S.elo_gain(25.3, f, 12.0) - 50.0).abs() < 1e-9);
        assert!((S.flop_per_usd_at(2.5) - 4e17).abs() < 1.0);
    }

    #[test]
    fn open_weights_while_behind_and_parents_lose_patience() {
        assert!(release_weights(1200.0, 1250.0));
        assert!(release_weights(1250.0, 1250.0));
        assert!(!release_weights(1260.0, 1250.0));
        assert!(!parent_withdraws(None, 12.0));
        assert!(!parent_withdraws(Some(11.9), 12.0));
        assert!(parent_withdraws(Some(12.0), 12.0));
        assert!(!parent_withdraws(Some(100.0), 0.0));
    }

    #[test]
    fn a_training_budget_never_exceeds_its_rule() {
        // 25% of what is above 12 months of burn.
        assert_eq!(training_budget(1_000.0, 50.0, 12.0, 0.25), 100.0);
        assert_eq!(training_budget(500.0, 50.0, 12.0, 0.25), 0.0);
        // A firm not burning cash keeps no floor.
        assert_eq!(training_budget(1_000.0, -5.0, 12.0, 0.25), 250.0);
        for (wanted, budget) in [(10.0, 100.0), (300.0, 100.0), (0.0, 100.0), (50.0, 0.0)] {
            let s = training_spend(wanted, budget, 1.0);
            assert!(s <= budget && s <= wanted, "{wanted} {budget} -> {s}");
        }
        assert_eq!(training_spend(300.0, 100.0, 1.0), 100.0);
        assert_eq!(training_spend(300.0, 0.5, 1.0), 0.0);
    }

    #[test]
    fn cuts_come_in_the_stated_order_and_are_undone_with_margin() {
        let t = [18.0, 12.0, 9.0, 6.0];
        // As the runway shortens the level rises one cut at a time, in order.
        let mut last = 0;
        for r in (0..40).rev().map(|m| m as f64 * 0.5) {
            let l = cut_level(last, Some(r), &t, 1.25);
            assert!(l >= last && l <= last + 1, "runway {r}: {last} -> {l}");
            last = l;
        }
        assert_eq!(last, 4);
        assert_eq!(cut_level(0, None, &t, 1.25), 0);
        assert_eq!(cut_level(0, Some(20.0), &t, 1.25), 0);
        assert_eq!(cut_level(0, Some(10.0), &t, 1.25), 2);
        // Back at 13 months: the capacity cut (12) stays until 15 months, training's (18) until 22.5.
        assert_eq!(cut_level(2, Some(13.0), &t, 1.25), 2);
        assert_eq!(cut_level(2, Some(16.0), &t, 1.25), 1);
        assert_eq!(cut_level(2, Some(23.0), &t, 1.25), 0);
    }

    #[test]
    fn a_price_response_moves_toward_a_rivals_cut_and_stays_within_bounds() {
        // A rival cuts to 1.0: the target is the rival's price; half the gap is closed per review.
        let target = target_price(2.0, Some(1.0), 0.5, 10.0);
        assert_eq!(target, 1.0);
        let p = adjust_price(2.0, target, 0.5, 0.6, 5.0);
        assert!(p < 2.0 && p > 1.0, "{p}");
        // Never below the cost floor, whatever the rival does.
        assert_eq!(adjust_price(2.0, 0.1, 1.0, 0.6, 5.0), 0.6);
        assert_eq!(adjust_price(2.0, 9.0, 1.0, 0.6, 5.0), 5.0);
        // No cheaper rival and a sane margin: the price holds.
        assert_eq!(target_price(2.0, None, 0.5, 10.0), 2.0);
        assert_eq!(target_price(2.0, Some(3.0), 0.5, 10.0), 2.0);
        // An excessive margin: prices follow costs down.
        assert_eq!(target_price(2.0, None, 0.1, 10.0), 1.0);
    }

    #[test]
    fn a_best_response_cuts_only_when_buyers_are_price_elastic_enough() {
        // Buyers that weigh log price by 0.8: demand is inelastic, matching a rival's cut loses profit.
        let (p, _) = best_response(2.0, 0.3, 0.8, 0.5, &[1.0, 1.6], 0.6, 2.0);
        assert_eq!(p, 2.0);
        // Weight 3: the cut to the rival's price wins share enough to pay.
        let (p, s) = best_response(2.0, 0.3, 3.0, 0.5, &[1.0, 1.6], 0.6, 2.0);
        assert!(p < 2.0 && s > 0.3, "{p} {s}");
        // Whatever the candidates, the answer stays within the bounds.
        for alpha in [0.5, 1.0, 3.0, 10.0] {
            let (p, _) = best_response(2.0, 0.3, alpha, 0.5, &[0.01, 0.3, 50.0], 0.6, 2.0);
            assert!((0.6..=2.0).contains(&p), "{alpha}: {p}");
        }
        // The logit share rises as the price falls and is unchanged at the same price.
        assert!((logit_share(0.3, 1.5, 2.0, 2.0) - 0.3).abs() < 1e-12);
        assert!(logit_share(0.3, 1.5, 2.0, 1.0) > 0.3);
    }

    #[test]
    fn a_firm_raises_only_when_its_runway_is_short_and_not_too_often() {
        assert!(raise_due(Some(10.0), 18.0, None, 6.0));
        assert!(!raise_due(Some(20.0), 18.0, None, 6.0));
        assert!(!raise_due(None, 18.0, None, 6.0));
        assert!(!raise_due(Some(10.0), 18.0, Some(3.0), 6.0));
        assert!(raise_due(Some(10.0), 18.0, Some(6.0), 6.0));
    }

    #[test]
    fn rounds_follow_valuation_growth_and_sentiment() {
        let v = valuation(1e9, 25.0, 1.0, 1.0);
        assert!((v - 25e9).abs() < 1.0);
        assert!(valuation(1e9, 25.0, 0.5, 1.0) < v);
        assert!(valuation(1e9, 25.0, 1.0, 0.0) < v);
        assert_eq!(valuation(0.0, 25.0, 1.0, 1.0), 0.0);
        // Size: 18 months of burn, capped at 25% of the valuation.
        assert_eq!(round_size(100.0, 18.0, 1e6, 0.25), 1800.0);
        assert_eq!(round_size(100.0, 18.0, 4000.0, 0.25), 1000.0);
        assert_eq!(round_size(-100.0, 18.0, 1e6, 0.25), 0.0);
        assert!(round_success(0.5, 0.5, 1.0, 0.5) < round_success(0.5, 0.5, 1.0, 1.0));
        assert_eq!(round_success(0.5, 0.5, 9.0, 2.0), 1.0);
    }

    #[test]
    fn sentiment_follows_the_sectors_growth() {
        let mut s = 1.0;
        for _ in 0..60 {
            s = sentiment_step(s, 3.0, 1.0, 0.25, (0.3, 1.5), 6.0, 1.0);
        }
        assert!((s - 1.5).abs() < 1e-3, "{s}");
        for _ in 0..60 {
            s = sentiment_step(s, -1.0, 1.0, 0.25, (0.3, 1.5), 6.0, 1.0);
        }
        assert!((s - 0.5).abs() < 1e-3, "{s}");
    }
}
