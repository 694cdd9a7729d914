//! Pure economics and diffusion maths: Elo utilities, Bass curves, cost trends, money in cents, runway.

/// The logit utility of one Elo point (Bradley–Terry): `ln 10 / 400`.
pub const LOGIT_PER_ELO: f64 = std::f64::consts::LN_10 / 400.0;

/// Probability that a model `delta_elo` points stronger wins a head-to-head comparison.
pub fn elo_win_probability(delta_elo: f64) -> f64 {
    1.0 / (1.0 + (-delta_elo * LOGIT_PER_ELO).exp())
}

/// Closed-form Bass adoption share `F(t)` for innovation `p` and imitation `q` (rates per unit time).
pub fn bass_share(p: f64, q: f64, t: f64) -> f64 {
    let e = (-(p + q) * t).exp();
    (1.0 - e) / (1.0 + (q / p) * e)
}

/// A quantity that changes by a constant factor per year, `x0 · factor^years`.
pub fn trend(x0: f64, factor_per_year: f64, years: f64) -> f64 {
    x0 * factor_per_year.powf(years)
}

/// Open-model quality closing the gap to the frontier: `Q_frontier − gap0 · exp(−t/τ)` (t, τ in months).
pub fn catch_up_quality(frontier_elo: f64, gap0_elo: f64, months_since_start: f64, tau_months: f64) -> f64 {
    frontier_elo - gap0_elo * (-months_since_start.max(0.0) / tau_months).exp()
}

/// Upper-tail probability of a log-normal with median `median` and log-sd `sigma`: `P(X ≥ x)`.
pub fn lognormal_tail(median: f64, sigma: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let z = (x / median).ln() / sigma;
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes `erfcc`, |error| < 1.2e-7): enough for reporting.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Money as integer US cents, so that cash identities hold exactly in every output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cents(pub i64);

impl Cents {
    pub const ZERO: Cents = Cents(0);

    /// Rounds a dollar amount to the nearest cent (saturating; NaN maps to zero and is caught upstream).
    pub fn from_usd(usd: f64) -> Cents {
        Cents((usd * 100.0).round() as i64)
    }
    pub fn usd(self) -> f64 {
        self.0 as f64 / 100.0
    }
}

// Saturating: amounts are bounded far below i64 by the accounts' plausibility check, so saturation
// never happens in a valid run; it only keeps a broken one from panicking before the check reports it.
impl std::ops::Add for Cents {
    type Output = Cents;
    fn add(self, o: Cents) -> Cents {
        Cents(self.0.saturating_add(o.0))
    }
}
impl std::ops::Sub for Cents {
    type Output = Cents;
    fn sub(self, o: Cents) -> Cents {
        Cents(self.0.saturating_sub(o.0))
    }
}
impl std::ops::AddAssign for Cents {
    fn add_assign(&mut self, o: Cents) {
        self.0 = self.0.saturating_add(o.0)
    }
}
impl std::ops::Neg for Cents {
    type Output = Cents;
    fn neg(self) -> Cents {
        Cents(self.0.saturating_neg())
    }
}
impl std::iter::Sum for Cents {
    fn sum<I: Iterator<Item = Cents>>(iter: I) -> Cents {
        iter.fold(Cents::ZERO, |a, b| a + b)
    }
}

impl std::fmt::Display for Cents {
    /// Dollars with exactly two decimals, e.g. `-1234.05`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", a / 100, a % 100)
    }
}

/// Months of runway: cash divided by the monthly net burn; `None` when the firm is not burning cash.
pub fn runway_months(cash: Cents, monthly_burn_usd: f64) -> Option<f64> {
    if monthly_burn_usd <= 0.0 { None } else { Some((cash.usd() / monthly_burn_usd).max(0.0)) }
}

/// Probability that a runway-triggered raise succeeds: a base rate plus a bonus for revenue growth
/// (year-on-year growth of trailing revenue, capped at +100%), clamped to [0, 1].
pub fn raise_success_probability(base: f64, per_growth: f64, revenue_growth: f64) -> f64 {
    (base + per_growth * revenue_growth.clamp(-1.0, 1.0)).clamp(0.0, 1.0)
}

/// Herfindahl–Hirschman index (0–10 000) of a list of quantities.
pub fn hhi(quantities: &[f64]) -> f64 {
    let total: f64 = quantities.iter().sum();
    if total <= 0.0 {
        return 0.0;
    }
    quantities.iter().map(|q| (100.0 * q / total).powi(2)).sum()
}

/// Churn hazard per month of a paying user with `tenure_days` on the plan.
pub fn churn_by_tenure(tenure_days: u32, month1: f64, months_2_6: f64, after: f64) -> f64 {
    if tenure_days < 31 {
        month1
    } else if tenure_days < 183 {
        months_2_6
    } else {
        after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(actual: f64, expected: f64, tol: f64) {
        assert!((actual - expected).abs() <= tol, "{actual} vs {expected}");
    }

    #[test]
    fn elo_maps_to_head_to_head_odds() {
        check(elo_win_probability(30.0), 0.543, 0.001);
        check(elo_win_probability(100.0), 0.640, 0.001);
        check(elo_win_probability(250.0), 0.808, 0.001);
    }

    #[test]
    fn bass_curve_limits() {
        check(bass_share(0.01, 0.3, 0.0), 0.0, 1e-12);
        check(bass_share(0.01, 0.3, 1000.0), 1.0, 1e-9);
        // With q = 0 the curve is the exponential 1 − e^{−pt}.
        check(bass_share(0.05, 1e-12, 10.0), 1.0 - (-0.5f64).exp(), 1e-9);
    }

    #[test]
    fn trends_and_catch_up() {
        check(trend(1.0, 0.1, 1.0), 0.1, 1e-12);
        check(trend(4.6e6, 2.4, 2.0), 4.6e6 * 5.76, 1e-3);
        check(catch_up_quality(1200.0, 200.0, 0.0, 15.0), 1000.0, 1e-9);
        check(catch_up_quality(1200.0, 200.0, 15.0, 15.0), 1200.0 - 200.0 / std::f64::consts::E, 1e-9);
    }

    #[test]
    fn willingness_to_pay_tails_match_the_sources() {
        // LogNormal(median 5, σ 0.85): about 20% above $10 and 5% above $20.
        check(lognormal_tail(5.0, 0.85, 10.0), 0.207, 0.005);
        check(lognormal_tail(5.0, 0.85, 20.0), 0.052, 0.003);
        check(lognormal_tail(5.0, 0.85, 5.0), 0.5, 1e-6);
    }

    #[test]
    fn cents_are_exact_and_print_two_decimals() {
        assert_eq!(Cents::from_usd(1.006).0, 101);
        assert_eq!(Cents::from_usd(-0.004).0, 0);
        assert_eq!(Cents::from_usd(-2.5).0, -250);
        assert_eq!(Cents(-123405).to_string(), "-1234.05");
        assert_eq!(Cents(7).to_string(), "0.07");
        assert_eq!((Cents(5) - Cents(12)).to_string(), "-0.07");
    }

    #[test]
    fn runway_and_raises() {
        assert_eq!(runway_months(Cents::from_usd(900.0), 100.0), Some(9.0));
        assert_eq!(runway_months(Cents::from_usd(900.0), -5.0), None);
        check(raise_success_probability(0.5, 0.5, 0.4), 0.7, 1e-12);
        check(raise_success_probability(0.5, 0.5, 9.0), 1.0, 1e-12);
    }

    #[test]
    fn hhi_of_monopoly_and_duopoly() {
        check(hhi(&[5.0]), 10_000.0, 1e-9);
        check(hhi(&[1.0, 1.0]), 5_000.0, 1e-9);
        check(hhi(&[0.0, 0.0]), 0.0, 1e-9);
    }

    #[test]
    fn churn_steps_with_tenure() {
        check(churn_by_tenure(0, 0.15, 0.06, 0.03), 0.15, 0.0);
        check(churn_by_tenure(40, 0.15, 0.06, 0.03), 0.06, 0.0);
        check(churn_by_tenure(400, 0.15, 0.06, 0.03), 0.03, 0.0);
    }
}
