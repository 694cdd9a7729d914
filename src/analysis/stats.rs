//! Statistics across replicates: means, standard deviations, Student-t confidence intervals, paired
//! differences, and Wilson intervals for probabilities. Plain functions on slices, unit-tested.

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
    fn quantiles_interpolate() {
        let x = [4.0, 1.0, 3.0, 2.0];
        close(quantile(&x, 0.5), 2.5, 1e-12);
        close(quantile(&x, 0.0), 1.0, 1e-12);
        close(quantile(&x, 1.0), 4.0, 1e-12);
        close(quantile(&x, 0.25), 1.75, 1e-12);
    }
}
