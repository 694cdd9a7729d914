//! Experimental designs: which parameter values each point of a sweep gets.
//!
//! Grid and zip take listed values. Random, Latin hypercube and Sobol draw points in the unit cube and map
//! them onto each parameter's [min, max] (linearly or on a log scale). Randomness is counter-based and
//! keyed by the sweep seed, so a design is a pure function of its spec, and every point is computed from its
//! index alone (`grid_index`, `random_point`, `lhs_point`, `sobol_point`): no design is listed in memory.

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
    /// An Owen-scrambled Sobol sequence (low discrepancy; use a power of two samples, at most 2^16).
    Sobol,
}

/// Index tuple of point `k` of a grid over lists of lengths `lens` (mixed radix, the last index varying
/// fastest): O(number of lists), so a grid of 10^8 points is never listed.
pub fn grid_index(lens: &[usize], mut k: u64) -> Vec<usize> {
    let mut idx = vec![0; lens.len()];
    for d in (0..lens.len()).rev() {
        let len = lens[d].max(1) as u64;
        idx[d] = (k % len) as usize;
        k /= len;
    }
    idx
}

/// Points of a grid over lists of lengths `lens`: index tuples, the last index varying fastest.
pub fn grid_indices(lens: &[usize]) -> Vec<Vec<usize>> {
    let total: usize = lens.iter().product();
    (0..total as u64).map(|k| grid_index(lens, k)).collect()
}

/// Point `i` of a random design in [0, 1)^`dims`: uniform draws from a counter-based generator keyed by
/// (seed, i), so any point is computed without the others.
pub fn random_point(i: u64, dims: usize, seed: u64) -> Vec<f64> {
    let mut rng = CounterRng::new(mix64(seed ^ 0x5241_4E44), i);
    (0..dims).map(|_| rng.uniform()).collect()
}

/// `n` points in [0, 1)^`dims` drawn uniformly.
pub fn random_unit(n: usize, dims: usize, seed: u64) -> Vec<Vec<f64>> {
    (0..n as u64).map(|i| random_point(i, dims, seed)).collect()
}

/// Key of dimension `d` of a Latin hypercube: one for the permutation of the strata, one for the offsets.
fn lhs_keys(seed: u64, d: usize) -> (u64, u64) {
    let base = mix64(seed ^ 0x004C_4853);
    (mix64(base ^ mix64(2 * d as u64 + 1)), mix64(base ^ mix64(2 * d as u64 + 2)))
}

/// A keyed bijection of [0, n): a balanced Feistel network (6 rounds, round function [`mix64`]) over the
/// smallest even number of bits covering n, with cycle walking (apply again until the value is below n;
/// it ends because the cycle through a value below n returns to it). The domain is less than 4n, so
/// on average fewer than 4 applications are needed. O(1) memory: no permutation is stored.
pub fn permute(x: u64, n: u64, key: u64) -> u64 {
    debug_assert!(x < n);
    if n <= 1 {
        return 0;
    }
    let bits = 64 - (n - 1).leading_zeros();
    let half = bits.div_ceil(2).max(1);
    let mask = (1u64 << half) - 1;
    let round = |v: u64| -> u64 {
        let (mut l, mut r) = (v >> half, v & mask);
        for k in 0..6u64 {
            let f = mix64(key ^ r ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15)) & mask;
            (l, r) = (r, l ^ f);
        }
        (l << half) | r
    };
    let mut y = round(x);
    while y >= n {
        y = round(y);
    }
    y
}

/// Point `i` of an `n`-point Latin hypercube in [0, 1)^`dims`: in dimension d the point lies in stratum
/// `permute(i, n, key(seed, d))` of the `n` strata [k/n, (k+1)/n), at a uniform offset keyed by
/// (seed, d, i). Every stratum of every dimension holds exactly one of the `n` points, and any point is
/// computed in O(dims) without the others.
pub fn lhs_point(i: u64, n: u64, dims: usize, seed: u64) -> Vec<f64> {
    (0..dims)
        .map(|d| {
            let (perm_key, offset_key) = lhs_keys(seed, d);
            let stratum = permute(i, n, perm_key);
            let u = CounterRng::new(offset_key, i).uniform();
            ((stratum as f64 + u) / n as f64).min(1.0 - f64::EPSILON / 2.0)
        })
        .collect()
}

/// `n` points of a Latin hypercube in [0, 1)^`dims` (see [`lhs_point`]).
pub fn latin_hypercube(n: usize, dims: usize, seed: u64) -> Vec<Vec<f64>> {
    (0..n as u64).map(|i| lhs_point(i, n as u64, dims, seed)).collect()
}

/// The most points of a Sobol design: `sobol_burley` uses 16-bit direction numbers, so point i + 2^16 would
/// equal point i (and its debug build asserts i < 2^16).
pub const SOBOL_MAX_POINTS: u64 = 1 << 16;

/// Point `i` of an Owen-scrambled Sobol sequence in [0, 1)^`dims` (`dims` ≤ 256, `i` < [`SOBOL_MAX_POINTS`]).
pub fn sobol_point(i: u64, dims: usize, seed: u64) -> Vec<f64> {
    let s = (mix64(seed ^ 0x0053_4F42_4F4C) >> 32) as u32;
    (0..dims).map(|d| sobol_burley::sample(i as u32, d as u32, s) as f64).collect()
}

/// The first `n` points of an Owen-scrambled Sobol sequence in [0, 1)^`dims` (`dims` ≤ 256).
pub fn sobol(n: usize, dims: usize, seed: u64) -> Vec<Vec<f64>> {
    (0..n as u64).map(|i| sobol_point(i, dims, seed)).collect()
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
    fn grid_index_is_mixed_radix_first_list_slowest() {
        assert_eq!(grid_index(&[100, 100, 100, 100], 12_345_678), vec![12, 34, 56, 78]);
        assert_eq!(grid_index(&[100, 100, 100, 100], 99_999_999), vec![99, 99, 99, 99]);
        let lens = [3, 1, 4, 2];
        let all = grid_indices(&lens);
        assert_eq!(all.len(), 24);
        for (k, idx) in all.iter().enumerate() {
            assert_eq!(&grid_index(&lens, k as u64), idx);
        }
    }

    #[test]
    fn permute_is_a_bijection_for_any_size() {
        for n in (1..=300).chain([1000, 1023, 1024, 1025, 4097]) {
            for key in [0, 1, 0xDEAD_BEEF] {
                let mut seen = vec![false; n as usize];
                for x in 0..n {
                    let y = permute(x, n, key);
                    assert!(y < n && !seen[y as usize], "n {n} key {key}: {x} -> {y}");
                    seen[y as usize] = true;
                }
            }
        }
        // Different keys give different permutations; the identity is not one of them.
        let p = |key| (0..64).map(|x| permute(x, 64, key)).collect::<Vec<_>>();
        assert_ne!(p(1), p(2));
        assert_ne!(p(1), (0..64).collect::<Vec<_>>());
    }

    #[test]
    fn lazy_latin_hypercube_points_match_the_design_at_any_size() {
        for n in [1usize, 2, 7, 64, 1000] {
            let pts = latin_hypercube(n, 3, 4);
            for d in 0..3 {
                assert!(strata_filled_once(&pts, d), "n {n}, dimension {d}");
            }
            assert!(pts.iter().flatten().all(|x| (0.0..1.0).contains(x)));
            assert_eq!(lhs_point(n as u64 - 1, n as u64, 3, 4), pts[n - 1]);
        }
        // A point of a 10^8-point design is computed on its own.
        let p = lhs_point(99_999_999, 100_000_000, 2, 1);
        assert!(p.iter().all(|x| (0.0..1.0).contains(x)));
        assert_eq!(random_point(7, 3, 2), random_unit(8, 3, 2)[7]);
        assert_eq!(sobol_point(5, 3, 2), sobol(8, 3, 2)[5]);
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
