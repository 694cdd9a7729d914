//! Statistics across replicates: means, standard deviations, Student-t confidence intervals, paired
//! differences, Wilson intervals for probabilities and Newcombe's intervals for differences of them. Plain functions on slices, unit-tested.

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// Mean of a sample (NaN when empty).
pub fn mean(x: &[f64]) -> f64 {
    if x.is_empty() { f64::NAN } else { x.iter().sum::<f64>() / x.len() as f64 }
}

/// Sample standard deviation (n − 1 in the denominator; 0 for a single value).
pub fn sd(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return 0.0;
    }
    let m = mean(x);
    (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64).sqrt()
}

/// Two-sided critical value of Student's t with `df` degrees of freedom at `level` (e.g. 0.95).
pub fn t_critical(df: f64, level: f64) -> f64 {
    let q = 1.0 - (1.0 - level) / 2.0;
    if df > 1e5 {
        // statrs' inverse t converges slowly for huge df; the normal quantile is exact to 1e-5 there.
        return Normal::new(0.0, 1.0).map(|n| n.inverse_cdf(q)).unwrap_or(f64::NAN);
    }
    match StudentsT::new(0.0, 1.0, df) {
        Ok(t) => t.inverse_cdf(q),
        Err(_) => f64::NAN,
    }
}

/// A summary of a sample with a `level` confidence interval for its mean (t-interval).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub n: usize,
    pub mean: f64,
    pub sd: f64,
    pub lo: f64,
    pub hi: f64,
}

/// Mean, sd and t-interval of a sample. With one value the interval is that value (no spread known).
pub fn estimate(x: &[f64], level: f64) -> Estimate {
    let (n, m, s) = (x.len(), mean(x), sd(x));
    if n < 2 {
        return Estimate { n, mean: m, sd: 0.0, lo: m, hi: m };
    }
    let half = t_critical((n - 1) as f64, level) * s / (n as f64).sqrt();
    Estimate { n, mean: m, sd: s, lo: m - half, hi: m + half }
}

/// Paired difference `a[i] − b[i]` (common random numbers): estimate of the mean difference.
pub fn paired_difference(a: &[f64], b: &[f64], level: f64) -> Estimate {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    estimate(&d, level)
}

/// Welch's interval for `mean(a) − mean(b)` when the samples are not paired.
pub fn welch_difference(a: &[f64], b: &[f64], level: f64) -> Estimate {
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (va, vb) = (sd(a).powi(2) / na, sd(b).powi(2) / nb);
    let m = mean(a) - mean(b);
    let se = (va + vb).sqrt();
    if a.len() < 2 || b.len() < 2 || se == 0.0 {
        return Estimate { n: a.len().min(b.len()), mean: m, sd: 0.0, lo: m, hi: m };
    }
    let df = (va + vb).powi(2) / (va.powi(2) / (na - 1.0) + vb.powi(2) / (nb - 1.0));
    let half = t_critical(df, level) * se;
    Estimate { n: a.len().min(b.len()), mean: m, sd: se, lo: m - half, hi: m + half }
}

/// Wilson score interval for a probability from `k` successes in `n` trials.
pub fn wilson(k: usize, n: usize, level: f64) -> (f64, f64, f64) {
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let z = Normal::new(0.0, 1.0).map(|d| d.inverse_cdf(1.0 - (1.0 - level) / 2.0)).unwrap_or(1.96);
    let (n, p) = (n as f64, k as f64 / n as f64);
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    (p, (centre - half).max(0.0), (centre + half).min(1.0))
}

/// Newcombe's hybrid score interval (1998, method 10) for the difference p₁ − p₂ of two independent
/// proportions `k1/n1` and `k2/n2`, from their Wilson intervals; it never leaves [−1, 1].
pub fn newcombe_difference(k1: usize, n1: usize, k2: usize, n2: usize, level: f64) -> Estimate {
    if n1 == 0 || n2 == 0 {
        return Estimate { n: 0, mean: f64::NAN, sd: f64::NAN, lo: f64::NAN, hi: f64::NAN };
    }
    let ((p1, l1, u1), (p2, l2, u2)) = (wilson(k1, n1, level), wilson(k2, n2, level));
    let d = p1 - p2;
    Estimate {
        n: n1.min(n2),
        mean: d,
        sd: f64::NAN,
        lo: (d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt()).max(-1.0),
        hi: (d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt()).min(1.0),
    }
}

/// Newcombe's interval (1998, "Improved confidence intervals for the difference between binomial proportions
/// based on paired data", method 10) for the paired difference P(a) − P(b) of yes/no outcomes `a[i]`, `b[i]`
/// (replicate i of two scenarios, same seed): the Wilson intervals of the two proportions combined with the
/// correlation φ of the 2×2 table (0 when a margin is empty). It never leaves [−1, 1], unlike a t-interval on
/// the 0/1 differences.
pub fn newcombe_paired(a: &[bool], b: &[bool], level: f64) -> Estimate {
    let n = a.len().min(b.len());
    if n == 0 {
        return Estimate { n: 0, mean: f64::NAN, sd: f64::NAN, lo: f64::NAN, hi: f64::NAN };
    }
    let count = |x: bool, y: bool| a.iter().zip(b).filter(|(p, q)| **p == x && **q == y).count() as f64;
    let (e, f, g, h) = (count(true, true), count(true, false), count(false, true), count(false, false));
    let ((p1, l1, u1), (p2, l2, u2)) = (wilson((e + f) as usize, n, level), wilson((e + g) as usize, n, level));
    let denom = ((e + f) * (g + h) * (e + g) * (f + h)).sqrt();
    let phi = if denom > 0.0 { (e * h - f * g) / denom } else { 0.0 };
    let d = p1 - p2;
    let (dl1, du1, dl2, du2) = (p1 - l1, u1 - p1, p2 - l2, u2 - p2);
    let lo = d - (dl1 * dl1 - 2.0 * phi * dl1 * du2 + du2 * du2).max(0.0).sqrt();
    let hi = d + (du1 * du1 - 2.0 * phi * du1 * dl2 + dl2 * dl2).max(0.0).sqrt();
    Estimate { n, mean: d, sd: f64::NAN, lo: lo.max(-1.0), hi: hi.min(1.0) }
}

/// The q-quantile (0 ≤ q ≤ 1) of a sample by linear interpolation (type 7, as R and numpy).
pub fn quantile(x: &[f64], q: f64) -> f64 {
    if x.is_empty() {
        return f64::NAN;
    }
    let mut v = x.to_vec();
    v.sort_by(f64::total_cmp);
    let h = (v.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    v[lo] + (h - lo as f64) * (v[hi] - v[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} vs {b}");
    }

    #[test]
    fn mean_sd_and_t_interval_match_known_values() {
        let x = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        close(mean(&x), 5.0, 1e-12);
        close(sd(&x), 2.138_089_935, 1e-9);
        // t(0.975, 7) = 2.364624; half-width = 2.364624 · 2.13809 / √8.
        close(t_critical(7.0, 0.95), 2.364_624_252, 1e-6);
        let e = estimate(&x, 0.95);
        close(e.lo, 5.0 - 1.787_485, 1e-5);
        close(e.hi, 5.0 + 1.787_485, 1e-5);
        close(t_critical(1e9, 0.95), 1.959_964, 1e-5);
    }

    #[test]
    fn a_sample_against_itself_has_zero_difference_and_zero_width() {
        let x = [1.0, 3.0, 2.5, 8.0];
        let d = paired_difference(&x, &x, 0.95);
        assert_eq!((d.mean, d.lo, d.hi, d.sd), (0.0, 0.0, 0.0, 0.0));
    }

    #[test]
    fn paired_and_welch_differences() {
        let a = [10.0, 12.0, 14.0, 16.0];
        let b = [9.0, 11.0, 13.0, 15.0];
        let d = paired_difference(&a, &b, 0.95);
        assert_eq!((d.mean, d.lo, d.hi), (1.0, 1.0, 1.0));
        let w = welch_difference(&a, &b, 0.95);
        close(w.mean, 1.0, 1e-12);
        assert!(w.lo < 0.0 && w.hi > 2.0, "unpaired: the spread between replicates counts");
    }

    #[test]
    fn wilson_interval_known_values() {
        // 8 of 10, 95%: (0.4902, 0.9433) (Wilson 1927; Newcombe 1998 table).
        let (p, lo, hi) = wilson(8, 10, 0.95);
        close(p, 0.8, 1e-12);
        close(lo, 0.4902, 1e-4);
        close(hi, 0.9433, 1e-4);
        let (_, lo0, hi0) = wilson(0, 20, 0.95);
        close(lo0, 0.0, 1e-12);
        close(hi0, 0.1611, 1e-4);
    }

    #[test]
    fn newcombe_intervals_match_the_paper_and_stay_in_bounds() {
        // Newcombe (1998, independent proportions), example 56/70 − 48/80: method 10 gives 0.0524 to 0.3339.
        let d = newcombe_difference(56, 70, 48, 80, 0.95);
        close(d.mean, 0.2, 1e-12);
        close(d.lo, 0.0524, 1e-4);
        close(d.hi, 0.3339, 1e-4);
        // The case: 3 of 4 replicates bankrupt in one scenario, none in the other, same seeds. A
        // t-interval on the 0/1 differences gave −75% [−155%, 5%]; Newcombe's stays within [−100%, 100%].
        let (a, b) = ([false; 4], [true, true, true, false]);
        let t = paired_difference(&a.map(|x| x as u8 as f64), &b.map(|x| x as u8 as f64), 0.95);
        assert!(t.lo < -1.0, "the t-interval leaves the range: {t:?}");
        let n = newcombe_paired(&a, &b, 0.95);
        close(n.mean, -0.75, 1e-12);
        assert!(n.lo >= -1.0 && n.hi <= 1.0 && n.lo < -0.75 && n.hi > -0.75, "{n:?}");
        // Identical outcomes (φ = 1): a difference of exactly 0; the width is that of the two Wilson intervals'
        // asymmetry, so 0 at p = ½ and small elsewhere (3 of 8: about ±0.08).
        let same = [true, false, true, true, false, false, true, false];
        let z = newcombe_paired(&same, &same, 0.95);
        assert_eq!((z.mean, z.lo, z.hi), (0.0, 0.0, 0.0));
        let three = [true, false, true, false, false, false, true, false];
        let t3 = newcombe_paired(&three, &three, 0.95);
        assert_eq!(t3.mean, 0.0);
        assert!(t3.lo < 0.0 && t3.hi > 0.0 && t3.hi - t3.lo < 0.25, "{t3:?}");
        // No pairs: no estimate, not the whole range.
        let none = newcombe_paired(&[], &[], 0.95);
        assert!(none.mean.is_nan() && none.lo.is_nan() && none.hi.is_nan());
        assert!(newcombe_difference(0, 0, 1, 2, 0.95).lo.is_nan());
        // Discordant pairs widen it.
        let other = [true, true, true, true, false, false, true, false];
        let w = newcombe_paired(&other, &same, 0.95);
        assert!(w.lo < w.mean && w.mean < w.hi && w.hi <= 1.0, "{w:?}");
    }

    #[test]
    fn newcombe_paired_interval_covers_about_95_percent() {
        // Correlated pairs: P(a) = 0.5, P(b) = 0.3, 30 pairs, 2,000 simulated studies.
        let mut covered = 0;
        let trials = 2000u64;
        for t in 0..trials {
            let mut rng = crate::model::rng::CounterRng::new(77, t);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for _ in 0..30 {
                let u = rng.uniform();
                // Joint law: (1,1) 0.25, (1,0) 0.25, (0,1) 0.05, (0,0) 0.45.
                let (x, y) = if u < 0.25 {
                    (true, true)
                } else if u < 0.5 {
                    (true, false)
                } else if u < 0.55 {
                    (false, true)
                } else {
                    (false, false)
                };
                a.push(x);
                b.push(y);
            }
            let e = newcombe_paired(&a, &b, 0.95);
            covered += (e.lo <= 0.2 && 0.2 <= e.hi) as u32;
        }
        let rate = covered as f64 / trials as f64;
        assert!((0.925..=0.98).contains(&rate), "coverage {rate}");
    }

    #[test]
    fn quantiles_interpolate() {
        let x = [4.0, 1.0, 3.0, 2.0];
        close(quantile(&x, 0.5), 2.5, 1e-12);
        close(quantile(&x, 0.0), 1.0, 1e-12);
        close(quantile(&x, 1.0), 4.0, 1e-12);
        close(quantile(&x, 0.25), 1.75, 1e-12);
    }
}
