//! Global sensitivity analysis of a sweep's outcomes: Sobol indices on a Saltelli design, Morris elementary
//! effects, partial rank correlation and standardised regression coefficients, and the split of an
//! outcome's variance between the parameters and the replicates' seeds.
//!
//! Pure functions on slices. The point estimates follow SALib's estimators exactly (Sobol: the outcome
//! standardised by its mean and population standard deviation, first order after Saltelli et al. 2010,
//! total after Jansen 1999, second order after Saltelli 2002; Morris: elementary effects in unit space
//! divided by Δ = L/(2(L − 1)), σ with n − 1), so that SALib on the same design and outcomes gives the same
//! numbers (`python/tests/test_salib_crosscheck.py`). The intervals are bootstrap percentile intervals
//! (resampling base points or trajectories with a counter-based generator, so they are reproducible),
//! where SALib reports a normal half-width from the same resamples.

use crate::model::rng::{CounterRng, mix64};
use nalgebra::{DMatrix, DVector};
use statrs::distribution::{ContinuousCDF, Normal};

/// An index and its confidence interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub value: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    fn nan() -> Interval {
        Interval { value: f64::NAN, lo: f64::NAN, hi: f64::NAN }
    }
}

/// Bootstrap settings: how many resamples, the interval's level and the generator's key.
#[derive(Clone, Copy, Debug)]
pub struct Bootstrap {
    pub resamples: usize,
    pub level: f64,
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Bootstrap {
        Bootstrap { resamples: 1000, level: 0.95, seed: 1 }
    }
}

impl Bootstrap {
    /// Index lists of `n` draws with replacement from 0..n, one per resample (resample b keyed by (seed, b)).
    fn samples(&self, n: usize) -> Vec<Vec<usize>> {
        (0..self.resamples as u64)
            .map(|b| {
                let mut rng = CounterRng::new(mix64(self.seed ^ 0x0000_424F_4F54), b);
                (0..n).map(|_| (rng.draw() % n as u64) as usize).collect()
            })
            .collect()
    }

    /// `value` with the percentile interval of its bootstrap replicates (NaN replicates ignored).
    fn interval(&self, value: f64, mut reps: Vec<f64>) -> Interval {
        reps.retain(|x| x.is_finite());
        if reps.is_empty() || !value.is_finite() {
            return Interval { value, lo: f64::NAN, hi: f64::NAN };
        }
        let tail = (1.0 - self.level) / 2.0;
        Interval { value, lo: super::stats::quantile(&reps, tail), hi: super::stats::quantile(&reps, 1.0 - tail) }
    }
}

/// Population variance (n in the denominator, as numpy's `var`).
fn pvar(x: impl Iterator<Item = f64> + Clone) -> f64 {
    let (n, s) = x.clone().fold((0.0, 0.0), |(n, s), v| (n + 1.0, s + v));
    let m = s / n;
    x.map(|v| (v - m).powi(2)).sum::<f64>() / n
}

fn mean_of(x: impl Iterator<Item = f64>) -> f64 {
    let (n, s) = x.fold((0.0, 0.0), |(n, s), v| (n + 1.0, s + v));
    s / n
}

/// Sobol indices of each parameter (and of each pair with a second-order design).
#[derive(Clone, Debug)]
pub struct SobolIndices {
    pub s1: Vec<Interval>,
    pub st: Vec<Interval>,
    /// (j, k, S_jk) for j < k; empty without the BA_j rows.
    pub s2: Vec<(usize, usize, Interval)>,
    /// Number of base points N.
    pub base_points: usize,
}

/// The blocks of a Saltelli design's outcomes: A, AB_j, BA_j, B per base point.
struct Blocks<'a> {
    y: &'a [f64],
    p: usize,
    step: usize,
}

impl Blocks<'_> {
    fn a(&self, i: usize) -> f64 {
        self.y[i * self.step]
    }
    fn b(&self, i: usize) -> f64 {
        self.y[i * self.step + self.step - 1]
    }
    fn ab(&self, i: usize, j: usize) -> f64 {
        self.y[i * self.step + 1 + j]
    }
    fn ba(&self, i: usize, j: usize) -> f64 {
        self.y[i * self.step + 1 + self.p + j]
    }
    /// Variance of A and B together over the base points `rows`.
    fn var(&self, rows: &[usize]) -> f64 {
        pvar(rows.iter().map(|&i| self.a(i)).chain(rows.iter().map(|&i| self.b(i))))
    }
    fn first(&self, rows: &[usize], j: usize, var: f64) -> f64 {
        if var == 0.0 {
            return 0.0;
        }
        mean_of(rows.iter().map(|&i| self.b(i) * (self.ab(i, j) - self.a(i)))) / var
    }
    fn total(&self, rows: &[usize], j: usize, var: f64) -> f64 {
        if var == 0.0 {
            return 0.0;
        }
        0.5 * mean_of(rows.iter().map(|&i| (self.a(i) - self.ab(i, j)).powi(2))) / var
    }
    fn second(&self, rows: &[usize], j: usize, k: usize, var: f64) -> f64 {
        if var == 0.0 {
            return 0.0;
        }
        let vjk = mean_of(rows.iter().map(|&i| self.ba(i, j) * self.ab(i, k) - self.a(i) * self.b(i))) / var;
        vjk - self.first(rows, j, var) - self.first(rows, k, var)
    }
}

/// Sobol indices from the outcomes `y` of a Saltelli design over `p` parameters, in the design's order
/// (per base point A, AB_1…AB_p, [BA_1…BA_p,] B). The outcomes are first standardised (mean 0, population
/// sd 1), as SALib does; an outcome that never varies gives indices of 0.
pub fn sobol(y: &[f64], p: usize, second_order: bool, boot: &Bootstrap) -> Result<SobolIndices, String> {
    let step = if second_order { 2 * p + 2 } else { p + 2 };
    if p == 0 || y.is_empty() || !y.len().is_multiple_of(step) {
        return Err(format!(
            "{} outcomes are not a whole number of Saltelli blocks of {step} rows ({p} parameters{})",
            y.len(),
            if second_order { ", second order" } else { "" }
        ));
    }
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(format!("outcome {i} of the design is not a number"));
    }
    let n = y.len() / step;
    let (m, sd) = (mean_of(y.iter().copied()), pvar(y.iter().copied()).sqrt());
    let z: Vec<f64> = if sd > 0.0 { y.iter().map(|v| (v - m) / sd).collect() } else { vec![0.0; y.len()] };
    let blocks = Blocks { y: &z, p, step };
    let all: Vec<usize> = (0..n).collect();
    let var = blocks.var(&all);
    let resamples = boot.samples(n);
    let vars: Vec<f64> = resamples.iter().map(|r| blocks.var(r)).collect();
    let index = |f: &dyn Fn(&[usize], f64) -> f64| {
        let reps = resamples.iter().zip(&vars).map(|(r, &v)| f(r, v)).collect();
        boot.interval(f(&all, var), reps)
    };
    let s1 = (0..p).map(|j| index(&|r, v| blocks.first(r, j, v))).collect();
    let st = (0..p).map(|j| index(&|r, v| blocks.total(r, j, v))).collect();
    let mut s2 = Vec::new();
    if second_order {
        for j in 0..p {
            for k in j + 1..p {
                s2.push((j, k, index(&|r, v| blocks.second(r, j, k, v))));
            }
        }
    }
    Ok(SobolIndices { s1, st, s2, base_points: n })
}

/// Morris's screening measures of each parameter.
#[derive(Clone, Debug)]
pub struct MorrisIndices {
    /// Mean elementary effect.
    pub mu: Vec<Interval>,
    /// Mean absolute elementary effect.
    pub mu_star: Vec<Interval>,
    /// Standard deviation of the elementary effects (n − 1; NaN with one trajectory).
    pub sigma: Vec<Interval>,
    pub trajectories: usize,
}

/// Elementary effects of a Morris design: `x` the points (any monotone scale of each parameter: only the
/// direction of a step is read), `y` their outcomes, trajectory after trajectory of p + 1 points. The
/// effect of parameter j in a trajectory is (y after − y before)/Δ for the step that raises j and
/// (y before − y after)/Δ for one that lowers it, 0 when no step moves it (as SALib).
pub fn elementary_effects(x: &[Vec<f64>], y: &[f64], levels: u32) -> Result<Vec<Vec<f64>>, String> {
    let p = x.first().map_or(0, Vec::len);
    if p == 0 || x.len() != y.len() || !y.len().is_multiple_of(p + 1) {
        return Err(format!(
            "{} outcomes of {} points are not a whole number of Morris trajectories of {} points",
            y.len(),
            x.len(),
            p + 1
        ));
    }
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(format!("outcome {i} of the design is not a number"));
    }
    let delta = crate::experiment::design::morris_delta(levels);
    Ok((0..y.len() / (p + 1))
        .map(|t| {
            let mut ee = vec![0.0; p];
            for s in t * (p + 1)..(t + 1) * (p + 1) - 1 {
                let dy = y[s + 1] - y[s];
                for (j, e) in ee.iter_mut().enumerate() {
                    if x[s + 1][j] > x[s][j] {
                        *e += dy;
                    } else if x[s + 1][j] < x[s][j] {
                        *e -= dy;
                    }
                }
            }
            ee.iter().map(|e| e / delta).collect()
        })
        .collect())
}

/// μ, μ* and σ of each parameter's elementary effects (`ee[trajectory][parameter]`), with bootstrap
/// intervals over trajectories.
pub fn morris(ee: &[Vec<f64>], boot: &Bootstrap) -> MorrisIndices {
    let p = ee.first().map_or(0, Vec::len);
    let r = ee.len();
    let resamples = boot.samples(r);
    let stat = |j: usize, rows: &[usize], f: &dyn Fn(&[f64]) -> f64| {
        let v: Vec<f64> = rows.iter().map(|&t| ee[t][j]).collect();
        f(&v)
    };
    let all: Vec<usize> = (0..r).collect();
    let measure = |f: &dyn Fn(&[f64]) -> f64| -> Vec<Interval> {
        (0..p)
            .map(|j| boot.interval(stat(j, &all, f), resamples.iter().map(|rows| stat(j, rows, f)).collect()))
            .collect()
    };
    let sigma = |v: &[f64]| if v.len() < 2 { f64::NAN } else { super::stats::sd(v) };
    MorrisIndices {
        mu: measure(&|v| super::stats::mean(v)),
        mu_star: measure(&|v| mean_of(v.iter().map(|e| e.abs()))),
        sigma: measure(&sigma),
        trajectories: r,
    }
}

/// Partial rank correlation and standardised regression coefficients of each parameter, and the linear
/// fits' R².
#[derive(Clone, Debug)]
pub struct Regression {
    /// Partial rank correlation coefficients, with Fisher-z intervals (NaN for a parameter that never varies).
    pub prcc: Vec<Interval>,
    /// Standardised regression coefficients β_j·sd(x_j)/sd(y), with t intervals from the fit.
    pub src: Vec<Interval>,
    /// R² of the linear fit of y on the parameters (how far the SRCs describe the outcome).
    pub r2: f64,
    /// R² of the linear fit of the ranks (how far the PRCCs do).
    pub rank_r2: f64,
    pub n: usize,
}

/// Ranks 1..n, ties given their average rank.
pub fn ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Least squares of `y` on the columns `cols` of `x` plus an intercept: (coefficients without the
/// intercept, residuals, (XᵀX)⁻¹'s diagonal for those coefficients).
///
/// Each column is centred and scaled to unit sd first, so that parameters of very different magnitudes (4e10
/// and 0.1 in the baseline's screening) give a well-conditioned XᵀX; coefficients and the diagonal are mapped
/// back to the columns' own units. A (numerically) singular fit is None.
fn ols(x: &[Vec<f64>], cols: &[usize], y: &[f64]) -> Option<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let n = y.len();
    let stats: Vec<(f64, f64)> = cols
        .iter()
        .map(|&j| {
            let v: Vec<f64> = x.iter().map(|r| r[j]).collect();
            (super::stats::mean(&v), super::stats::sd(&v))
        })
        .collect();
    if stats.iter().any(|(_, s)| s.is_nan() || *s <= 0.0) {
        return None;
    }
    let design = DMatrix::from_fn(n, cols.len() + 1, |i, c| {
        if c == 0 { 1.0 } else { (x[i][cols[c - 1]] - stats[c - 1].0) / stats[c - 1].1 }
    });
    let target = DVector::from_column_slice(y);
    let xtx = design.transpose() * &design;
    let inv = xtx.try_inverse()?;
    if inv.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let beta = &inv * design.transpose() * &target;
    let resid = target - &design * &beta;
    Some((
        beta.iter().skip(1).zip(&stats).map(|(b, (_, s))| b / s).collect(),
        resid.iter().copied().collect(),
        (1..=cols.len()).map(|c| inv[(c, c)] / (stats[c - 1].1 * stats[c - 1].1)).collect(),
    ))
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let (ma, mb) = (super::stats::mean(a), super::stats::mean(b));
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

fn r_squared(y: &[f64], resid: &[f64]) -> f64 {
    let m = super::stats::mean(y);
    let sst: f64 = y.iter().map(|v| (v - m).powi(2)).sum();
    1.0 - resid.iter().map(|e| e * e).sum::<f64>() / sst
}

/// PRCC and SRC of each parameter (`x[case][parameter]`) for the outcome `y`, with `level` intervals:
/// Fisher's z for the PRCCs (standard error 1/√(n − 3 − (k − 1)), k the number of varying parameters) and
/// Student's t with n − k − 1 degrees of freedom for the SRCs.
pub fn regression(x: &[Vec<f64>], y: &[f64], level: f64) -> Result<Regression, String> {
    let n = y.len();
    let p = x.first().map_or(0, Vec::len);
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(format!("outcome {i} is not a number"));
    }
    let sd_of = |j: usize| super::stats::sd(&x.iter().map(|r| r[j]).collect::<Vec<_>>());
    let varying: Vec<usize> = (0..p).filter(|&j| sd_of(j) > 0.0).collect();
    let k = varying.len();
    if n < k + 3 {
        return Err(format!("{n} points are too few to fit {k} parameters (need at least {})", k + 3));
    }
    let sd_y = super::stats::sd(y);
    let z = Normal::new(0.0, 1.0).map(|d| d.inverse_cdf(1.0 - (1.0 - level) / 2.0)).unwrap_or(1.96);
    let t = super::stats::t_critical((n - k - 1) as f64, level);
    let mut prcc = vec![Interval::nan(); p];
    let mut src = vec![Interval::nan(); p];
    if sd_y == 0.0 {
        return Ok(Regression { prcc, src, r2: f64::NAN, rank_r2: f64::NAN, n });
    }
    // Standardised regression coefficients.
    let fit = ols(x, &varying, y).ok_or("the parameters are collinear: no linear fit")?;
    let s2 = fit.1.iter().map(|e| e * e).sum::<f64>() / (n - k - 1) as f64;
    for (c, &j) in varying.iter().enumerate() {
        let scale = sd_of(j) / sd_y;
        let (b, se) = (fit.0[c] * scale, (s2 * fit.2[c]).sqrt() * scale);
        src[j] = Interval { value: b, lo: b - t * se, hi: b + t * se };
    }
    let r2 = r_squared(y, &fit.1);
    // Partial rank correlations: the residuals of rank(x_j) and rank(y), each regressed on the other ranks.
    let rx: Vec<Vec<f64>> = {
        let cols: Vec<Vec<f64>> = (0..p).map(|j| ranks(&x.iter().map(|r| r[j]).collect::<Vec<_>>())).collect();
        (0..n).map(|i| (0..p).map(|j| cols[j][i]).collect()).collect()
    };
    let ry = ranks(y);
    let rank_fit = ols(&rx, &varying, &ry).ok_or("the parameters' ranks are collinear")?;
    let rank_r2 = r_squared(&ry, &rank_fit.1);
    let se = 1.0 / ((n as f64) - 3.0 - (k as f64 - 1.0)).max(1.0).sqrt();
    for &j in &varying {
        let others: Vec<usize> = varying.iter().copied().filter(|&o| o != j).collect();
        let xj: Vec<f64> = rx.iter().map(|r| r[j]).collect();
        let (Some(fx), Some(fy)) = (ols(&rx, &others, &xj), ols(&rx, &others, &ry)) else { continue };
        let r = pearson(&fx.1, &fy.1);
        let zr = r.clamp(-1.0 + 1e-15, 1.0 - 1e-15).atanh();
        prcc[j] = Interval { value: r, lo: (zr - z * se).tanh(), hi: (zr + z * se).tanh() };
    }
    Ok(Regression { prcc, src, r2, rank_r2, n })
}

/// An outcome's variance split between the parameters (differences between design points) and the seeds
/// (differences between replicates of a point).
///
/// A sweep's replicate r has the same seed at every point (common random numbers), so the replicate is a
/// crossed factor: y_ir = m + a_i (point) + b_r (seed, shared by all points) + e_ir (seed × point). With
/// every point complete this is the two-way random-effects analysis of variance without replication;
/// otherwise (failed runs) the one-way analysis by point, which folds b_r into the seeds' part too.
#[derive(Clone, Debug, PartialEq)]
pub struct NoiseSplit {
    pub points: usize,
    pub runs: usize,
    /// Variance of the runs' outcomes (n − 1).
    pub var_total: f64,
    /// Variance component of the points: what the parameters explain.
    pub var_parameters: f64,
    /// Variance from the seeds: σ²_b + σ²_e (two-way) or the within-point variance (one-way).
    pub var_seeds: f64,
    /// The part of `var_seeds` shared by every point (σ²_b): it moves all points alike, so it cancels in
    /// comparisons between points. NaN for the one-way analysis.
    pub var_seeds_shared: f64,
    /// var_seeds / (var_seeds + var_parameters).
    pub seed_share: f64,
    /// The half-width aimed at (by default a tenth of the parameters' standard deviation).
    pub target_half_width: f64,
    /// Replicates per point for a `level` interval of that half-width on a point's mean, from all of the
    /// seeds' variance: ⌈(z·sd_seeds/w)²⌉.
    pub replicates_needed: f64,
}

/// The variance split of `table[point][replicate]` (None: a run without a value). `half_width`: the target
/// half-width of a point mean's interval (default: 10% of the parameters' standard deviation).
pub fn noise(table: &[Vec<Option<f64>>], half_width: Option<f64>, level: f64) -> NoiseSplit {
    let groups: Vec<Vec<f64>> =
        table.iter().map(|r| r.iter().flatten().copied().collect::<Vec<f64>>()).filter(|g| !g.is_empty()).collect();
    let k = groups.len();
    let n: usize = groups.iter().map(Vec::len).sum();
    let all: Vec<f64> = groups.iter().flatten().copied().collect();
    let grand = super::stats::mean(&all);
    let reps = table.iter().map(Vec::len).max().unwrap_or(0);
    let complete =
        k == table.len() && reps > 1 && table.iter().all(|r| r.len() == reps && r.iter().all(Option::is_some));
    let (var_parameters, var_seeds, var_shared) = if complete {
        let y = |i: usize, r: usize| table[i][r].unwrap_or(f64::NAN);
        let point: Vec<f64> = (0..k).map(|i| (0..reps).map(|r| y(i, r)).sum::<f64>() / reps as f64).collect();
        let rep: Vec<f64> = (0..reps).map(|r| (0..k).map(|i| y(i, r)).sum::<f64>() / k as f64).collect();
        let ms_point = reps as f64 * point.iter().map(|m| (m - grand).powi(2)).sum::<f64>() / (k - 1).max(1) as f64;
        let ms_rep = k as f64 * rep.iter().map(|m| (m - grand).powi(2)).sum::<f64>() / (reps - 1) as f64;
        let ss_res: f64 = (0..k)
            .flat_map(|i| (0..reps).map(move |r| (i, r)))
            .map(|(i, r)| (y(i, r) - point[i] - rep[r] + grand).powi(2))
            .sum();
        let ms_res = ss_res / ((k - 1).max(1) * (reps - 1)) as f64;
        let shared = ((ms_rep - ms_res) / k as f64).max(0.0);
        (((ms_point - ms_res) / reps as f64).max(0.0), shared + ms_res, shared)
    } else {
        let ssw: f64 = groups
            .iter()
            .map(|g| {
                let m = super::stats::mean(g);
                g.iter().map(|v| (v - m).powi(2)).sum::<f64>()
            })
            .sum();
        let ssb: f64 = groups.iter().map(|g| g.len() as f64 * (super::stats::mean(g) - grand).powi(2)).sum();
        let (dfw, dfb) = (n.saturating_sub(k), k.saturating_sub(1));
        let msw = if dfw > 0 { ssw / dfw as f64 } else { f64::NAN };
        let msb = if dfb > 0 { ssb / dfb as f64 } else { f64::NAN };
        let n0 = if dfb > 0 {
            (n as f64 - groups.iter().map(|g| (g.len() as f64).powi(2)).sum::<f64>() / n as f64) / dfb as f64
        } else {
            f64::NAN
        };
        let component = (msb - msw) / n0;
        (if component.is_nan() { f64::NAN } else { component.max(0.0) }, msw, f64::NAN)
    };
    let z = Normal::new(0.0, 1.0).map(|d| d.inverse_cdf(1.0 - (1.0 - level) / 2.0)).unwrap_or(1.96);
    let target = half_width.unwrap_or(0.1 * var_parameters.sqrt());
    let needed = if target > 0.0 { (z * var_seeds.sqrt() / target).powi(2).ceil().max(1.0) } else { f64::NAN };
    NoiseSplit {
        points: k,
        runs: n,
        var_total: if n > 1 { super::stats::sd(&all).powi(2) } else { f64::NAN },
        var_parameters,
        var_seeds,
        var_seeds_shared: var_shared,
        seed_share: var_seeds / (var_seeds + var_parameters),
        target_half_width: target,
        replicates_needed: needed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::design::{morris_point, saltelli_block, saltelli_point};
    use std::f64::consts::PI;

    fn ishigami(x: &[f64]) -> f64 {
        let v: Vec<f64> = x.iter().map(|u| -PI + 2.0 * PI * u).collect();
        v[0].sin() + 7.0 * v[1].sin().powi(2) + 0.1 * v[2].powi(4) * v[0].sin()
    }

    fn saltelli_outcomes(n: u64, p: usize, second: bool, f: &dyn Fn(&[f64]) -> f64) -> Vec<f64> {
        (0..n * saltelli_block(p, second)).map(|i| f(&saltelli_point(i, p, second, 7))).collect()
    }

    fn close(a: f64, b: f64, tol: f64, what: &str) {
        assert!((a - b).abs() <= tol, "{what}: {a} vs {b} (tolerance {tol})");
    }

    #[test]
    fn sobol_indices_of_ishigami_match_the_analytic_values() {
        // a = 7, b = 0.1: S1 = (0.3139, 0.4424, 0), ST = (0.5576, 0.4424, 0.2437), S13 = 0.2437.
        let y = saltelli_outcomes(4096, 3, true, &ishigami);
        let s = sobol(&y, 3, true, &Bootstrap { resamples: 200, ..Bootstrap::default() }).unwrap();
        for (j, want) in [0.3139, 0.4424, 0.0].iter().enumerate() {
            close(s.s1[j].value, *want, 0.03, &format!("S1[{j}]"));
            assert!(s.s1[j].lo <= s.s1[j].value && s.s1[j].value <= s.s1[j].hi);
        }
        for (j, want) in [0.5576, 0.4424, 0.2437].iter().enumerate() {
            close(s.st[j].value, *want, 0.03, &format!("ST[{j}]"));
        }
        let s13 = s.s2.iter().find(|(j, k, _)| (*j, *k) == (0, 2)).unwrap().2;
        close(s13.value, 0.2437, 0.06, "S13");
        let s12 = s.s2.iter().find(|(j, k, _)| (*j, *k) == (0, 1)).unwrap().2;
        close(s12.value, 0.0, 0.06, "S12");
        // The interval narrows with more base points.
        let small = sobol(&saltelli_outcomes(256, 3, false, &ishigami), 3, false, &Bootstrap::default()).unwrap();
        let big = sobol(&saltelli_outcomes(4096, 3, false, &ishigami), 3, false, &Bootstrap::default()).unwrap();
        assert!(big.st[0].hi - big.st[0].lo < (small.st[0].hi - small.st[0].lo) / 2.0);
    }

    #[test]
    fn sobol_indices_of_the_g_function_match_the_analytic_values() {
        // Sobol's G-function with a = (0, 1, 4.5, 9, 99): V_j = 1/(3(1 + a_j)²), S_j = V_j/V with
        // V = Π(1 + V_j) − 1, S_Tj = V_j Π_{k≠j}(1 + V_k)/V.
        let a = [0.0, 1.0, 4.5, 9.0, 99.0];
        let g = |x: &[f64]| x.iter().zip(&a).map(|(u, a)| ((4.0 * u - 2.0).abs() + a) / (1.0 + a)).product::<f64>();
        let vj: Vec<f64> = a.iter().map(|a| 1.0 / (3.0 * (1.0 + a) * (1.0 + a))).collect();
        let v = vj.iter().map(|v| 1.0 + v).product::<f64>() - 1.0;
        let y = saltelli_outcomes(8192, 5, false, &g);
        let s = sobol(&y, 5, false, &Bootstrap { resamples: 100, ..Bootstrap::default() }).unwrap();
        for j in 0..5 {
            let total =
                vj[j] * vj.iter().enumerate().filter(|(k, _)| *k != j).map(|(_, v)| 1.0 + v).product::<f64>() / v;
            close(s.s1[j].value, vj[j] / v, 0.03, &format!("G S1[{j}]"));
            close(s.st[j].value, total, 0.03, &format!("G ST[{j}]"));
        }
    }

    #[test]
    fn a_design_of_the_wrong_size_is_refused() {
        let e = sobol(&[1.0; 11], 3, false, &Bootstrap::default()).unwrap_err();
        assert!(e.contains("Saltelli blocks of 5 rows"), "{e}");
        let s = sobol(&[2.0; 10], 3, false, &Bootstrap::default()).unwrap();
        assert_eq!(s.s1[0].value, 0.0, "a constant outcome has no sensitivity");
    }

    #[test]
    fn morris_on_a_linear_function_gives_its_coefficients() {
        // y = 3 x0 − 2 x1 + 0 x2 + x3² (unit space): μ* = |coefficient| for the linear terms; for x3 the effect
        // of a step Δ from x is (2x + Δ)Δ/Δ, which varies with x, so σ > 0.
        let (p, levels, r) = (4, 4, 50u64);
        let f = |x: &[f64]| 3.0 * x[0] - 2.0 * x[1] + x[3] * x[3];
        let x: Vec<Vec<f64>> = (0..r * (p as u64 + 1)).map(|i| morris_point(i, p, levels, 3)).collect();
        let y: Vec<f64> = x.iter().map(|v| f(v)).collect();
        let ee = elementary_effects(&x, &y, levels).unwrap();
        assert_eq!(ee.len(), r as usize);
        let m = morris(&ee, &Bootstrap::default());
        close(m.mu[0].value, 3.0, 1e-9, "μ0");
        close(m.mu_star[0].value, 3.0, 1e-9, "μ*0");
        close(m.sigma[0].value, 0.0, 1e-9, "σ0");
        close(m.mu[1].value, -2.0, 1e-9, "μ1");
        close(m.mu_star[1].value, 2.0, 1e-9, "μ*1");
        close(m.mu_star[2].value, 0.0, 1e-12, "μ*2");
        assert!(m.sigma[3].value > 0.1, "a non-linear parameter has σ > 0");
        assert!(m.mu_star[3].lo <= m.mu_star[3].value && m.mu_star[3].value <= m.mu_star[3].hi);
        assert!(elementary_effects(&x[..7], &y[..7], levels).is_err());
    }

    #[test]
    fn prcc_and_src_recover_a_linear_model() {
        // y = 2 x0 − x1 + noise on an LHS design; x2 does nothing.
        let n = 400;
        let pts = crate::experiment::design::latin_hypercube(n, 3, 5);
        let y: Vec<f64> = pts
            .iter()
            .enumerate()
            .map(|(i, x)| 2.0 * x[0] - x[1] + 0.05 * CounterRng::new(9, i as u64).normal())
            .collect();
        let r = regression(&pts, &y, 0.95).unwrap();
        // sd(x) = 1/√12 each: SRC_0 = 2/√(4 + 1 + 12·0.0025) ≈ 0.891, SRC_1 ≈ −0.446.
        let sd_y = (5.0 / 12.0 + 0.0025f64).sqrt();
        close(r.src[0].value, 2.0 / 12f64.sqrt() / sd_y, 0.02, "SRC0");
        close(r.src[1].value, -1.0 / 12f64.sqrt() / sd_y, 0.02, "SRC1");
        assert!(r.src[2].lo < 0.0 && r.src[2].hi > 0.0, "x2's interval covers 0: {:?}", r.src[2]);
        assert!(r.prcc[0].value > 0.95 && r.prcc[1].value < -0.9, "{:?}", r.prcc);
        assert!(r.prcc[2].lo < 0.0 && r.prcc[2].hi > 0.0, "{:?}", r.prcc[2]);
        assert!(r.r2 > 0.98, "R² {}", r.r2);
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn noise_split_recovers_known_variance_components() {
        // 200 points with sd 2 between them; 10 replicates: a seed effect shared by every point (sd 1.5) and a
        // seed × point effect (sd 1).
        let shared: Vec<f64> = (0..10u64).map(|r| 1.5 * CounterRng::new(3, r).normal()).collect();
        let table: Vec<Vec<Option<f64>>> = (0..200u64)
            .map(|i| {
                let mu = 2.0 * CounterRng::new(1, i).normal();
                (0..10).map(|r| Some(mu + shared[r as usize] + CounterRng::new(2, i * 10 + r).normal())).collect()
            })
            .collect();
        let s = noise(&table, None, 0.95);
        close(s.var_parameters, 4.0, 1.0, "var parameters");
        let want_shared = crate::analysis::stats::sd(&shared).powi(2);
        close(s.var_seeds_shared, want_shared, 0.05, "shared seed variance (the 10 draws' own)");
        close(s.var_seeds, want_shared + 1.0, 0.15, "var seeds");
        // One-way (a run missing): the seeds' part still holds both seed terms.
        let mut holed = table.clone();
        holed[0][0] = None;
        let o = noise(&holed, None, 0.95);
        assert!(o.var_seeds_shared.is_nan());
        close(o.var_seeds, want_shared + 1.0, 0.4, "one-way var seeds");
        close(o.var_parameters, s.var_parameters, 0.3, "one-way var parameters");
        // A half-width of 0.2 on a mean of replicates with sd √(σ²_b + 1) needs (1.96·sd/0.2)² of them.
        let t = noise(&table, Some(0.2), 0.95);
        let want = (1.96 * s.var_seeds.sqrt() / 0.2).powi(2).ceil();
        assert_eq!(t.replicates_needed, want);
    }
}
