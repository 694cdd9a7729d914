//! Experimental designs: which parameter values each point of a sweep gets.
//!
//! Grid and zip take listed values. Random, Latin hypercube and Sobol draw points in the unit cube and map
//! them onto each parameter's [min, max] (linearly or on a log scale). Randomness is counter-based and
//! keyed by the sweep seed, so a design is a pure function of its spec.

use crate::model::rng::{CounterRng, mix64};

/// A design kind, as written in `design.kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DesignKind {
    /// Every combination of the listed values (the first parameter varies slowest).
    Grid,
    /// The i-th values of every list together (all lists of equal length).
    Zip,
    /// Independent uniform draws.
    Random,
    /// Latin hypercube: each parameter's range is cut into `samples` strata, each stratum used once.
    Lhs,
    /// An Owen-scrambled Sobol sequence (low discrepancy; use a power of two samples).
    Sobol,
}

/// Points of a grid over lists of lengths `lens`: index tuples, the last index varying fastest.
pub fn grid_indices(lens: &[usize]) -> Vec<Vec<usize>> {
    let total: usize = lens.iter().product();
    (0..total)
        .map(|mut k| {
            let mut idx = vec![0; lens.len()];
            for d in (0..lens.len()).rev() {
                idx[d] = k % lens[d];
                k /= lens[d];
            }
            idx
        })
        .collect()
}

/// `n` points in [0, 1)^`dims` drawn uniformly.
pub fn random_unit(n: usize, dims: usize, seed: u64) -> Vec<Vec<f64>> {
    (0..n)
        .map(|i| {
            let mut rng = CounterRng::new(mix64(seed ^ 0x5241_4E44), i as u64);
            (0..dims).map(|_| rng.uniform()).collect()
        })
        .collect()
}

/// `n` points of a Latin hypercube in [0, 1)^`dims`: in every dimension each of the `n` strata
/// [k/n, (k+1)/n) holds exactly one point, placed uniformly inside it.
pub fn latin_hypercube(n: usize, dims: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut points = vec![vec![0.0; dims]; n];
    for d in 0..dims {
        // Fisher–Yates shuffle of the strata, keyed by (seed, dimension).
        let mut rng = CounterRng::new(mix64(seed ^ 0x004C_4853), d as u64);
        let mut strata: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = (rng.uniform() * (i + 1) as f64) as usize;
            strata.swap(i, j.min(i));
        }
        for (i, p) in points.iter_mut().enumerate() {
            p[d] = (strata[i] as f64 + rng.uniform()) / n as f64;
        }
    }
    points
}

/// The first `n` points of an Owen-scrambled Sobol sequence in [0, 1)^`dims` (`dims` ≤ 256).
pub fn sobol(n: usize, dims: usize, seed: u64) -> Vec<Vec<f64>> {
    let s = (mix64(seed ^ 0x0053_4F42_4F4C) >> 32) as u32;
    (0..n).map(|i| (0..dims).map(|d| sobol_burley::sample(i as u32, d as u32, s) as f64).collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strata_filled_once(points: &[Vec<f64>], d: usize) -> bool {
        let n = points.len();
        let mut seen = vec![false; n];
        for p in points {
            let k = (p[d] * n as f64) as usize;
            if k >= n || seen[k] {
                return false;
            }
            seen[k] = true;
        }
        true
    }

    #[test]
    fn grid_enumerates_every_combination_in_order() {
        assert_eq!(grid_indices(&[2, 3]), vec![vec![0, 0], vec![0, 1], vec![0, 2], vec![1, 0], vec![1, 1], vec![1, 2]]);
        assert_eq!(grid_indices(&[]).len(), 1);
    }

    #[test]
    fn latin_hypercube_stratifies_every_dimension() {
        let pts = latin_hypercube(50, 3, 9);
        for d in 0..3 {
            assert!(strata_filled_once(&pts, d));
        }
        assert_eq!(pts, latin_hypercube(50, 3, 9), "a design is a pure function of its seed");
        assert_ne!(pts, latin_hypercube(50, 3, 10));
    }

    #[test]
    fn sobol_prefixes_of_powers_of_two_are_stratified() {
        let pts = sobol(64, 4, 3);
        for d in 0..4 {
            assert!(strata_filled_once(&pts, d), "dimension {d}");
            assert!(strata_filled_once(&pts[..16], d), "first 16 points, dimension {d}");
        }
        // Pairs of dimensions: each of the 8×8 cells holds exactly one of the 64 points.
        let mut cells = vec![0; 64];
        for p in &pts {
            cells[(p[0] * 8.0) as usize * 8 + (p[1] * 8.0) as usize] += 1;
        }
        assert!(cells.iter().all(|&c| c == 1), "{cells:?}");
    }

    #[test]
    fn random_points_are_uniform_and_reproducible() {
        let pts = random_unit(4000, 2, 1);
        let mean: f64 = pts.iter().map(|p| p[1]).sum::<f64>() / 4000.0;
        assert!((mean - 0.5).abs() < 0.02);
        assert_eq!(pts, random_unit(4000, 2, 1));
        assert!(pts.iter().flatten().all(|x| (0.0..1.0).contains(x)));
    }
}
