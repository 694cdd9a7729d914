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
    /// Saltelli's design for Sobol indices: for each of `samples` base points, A, AB_1…AB_p, [BA_1…BA_p,] B
    /// (SALib's order), A and B the two halves of a 2p-dimensional Sobol point.
    Saltelli,
    /// Morris's elementary-effects design: `trajectories` one-at-a-time trajectories of p + 1 points on a
    /// grid of `levels` levels, steps of Δ = L / (2(L − 1)) (SALib's order).
    Morris,
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

/// Number of points per base point of a Saltelli design over `dims` parameters: p + 2, or 2p + 2 with
/// second-order indices.
pub fn saltelli_block(dims: usize, second_order: bool) -> u64 {
    if second_order { 2 * dims as u64 + 2 } else { dims as u64 + 2 }
}

/// Point `i` of a Saltelli design in [0, 1)^`dims`: base point b = i / block, row r = i mod block of the block
/// A, AB_1…AB_p, [BA_1…BA_p,] B, where A and B are the first and last `dims` coordinates of Sobol point b
/// (2·dims ≤ 256 dimensions). AB_j is A with column j from B; BA_j is B with column j from A.
pub fn saltelli_point(i: u64, dims: usize, second_order: bool, seed: u64) -> Vec<f64> {
    let block = saltelli_block(dims, second_order);
    let (base, row) = (i / block, (i % block) as usize);
    let ab = sobol_point(base, 2 * dims, seed);
    let (a, b) = ab.split_at(dims);
    let mut x = a.to_vec();
    if row == block as usize - 1 {
        x.copy_from_slice(b);
    } else if (1..=dims).contains(&row) {
        x[row - 1] = b[row - 1];
    } else if row > dims {
        x.copy_from_slice(b);
        x[row - dims - 1] = a[row - dims - 1];
    }
    x
}

/// The step of a Morris design on `levels` levels in unit space: Δ = L / (2(L − 1)).
pub fn morris_delta(levels: u32) -> f64 {
    levels as f64 / (2.0 * (levels as f64 - 1.0))
}

/// Point `i` of a Morris design in [0, 1]^`dims` with `levels` (even, ≥ 2) levels: trajectory t = i / (p + 1),
/// step s = i mod (p + 1). Trajectory t is keyed by (seed, t): each parameter gets a base level k/(L − 1)
/// with k < L/2 (so that the level plus Δ is still on the grid), a direction (up or down, each with
/// probability ½) and a place in a random order; the trajectory starts at the base level for parameters
/// going up and at base + Δ for those going down, and step s moves the s-th parameter of the order by ±Δ.
/// Consecutive points of a trajectory differ in exactly one parameter, by exactly Δ.
pub fn morris_point(i: u64, dims: usize, levels: u32, seed: u64) -> Vec<f64> {
    let (traj, step) = (i / (dims as u64 + 1), (i % (dims as u64 + 1)) as usize);
    let mut rng = CounterRng::new(mix64(seed ^ 0x0000_4D4F_5252_4953), traj);
    let delta = morris_delta(levels);
    let grid = (levels - 1) as f64;
    let half = (levels / 2).max(1) as u64;
    let mut order: Vec<usize> = (0..dims).collect();
    let mut x = vec![0.0; dims];
    let mut up = vec![true; dims];
    for d in 0..dims {
        let k = rng.draw() % half;
        up[d] = rng.draw() & 1 == 0;
        x[d] = k as f64 / grid + if up[d] { 0.0 } else { delta };
    }
    // Fisher–Yates shuffle of the order in which parameters move.
    for d in (1..dims).rev() {
        let j = (rng.draw() % (d as u64 + 1)) as usize;
        order.swap(d, j);
    }
    for &d in &order[..step] {
        x[d] += if up[d] { delta } else { -delta };
    }
    // Grid values exactly: k/(L − 1) computed afresh, so that 1.0 is 1.0 after a step.
    x.iter().map(|v| ((v * grid).round() / grid).clamp(0.0, 1.0)).collect()
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
    fn saltelli_blocks_follow_salib_order() {
        let (p, n) = (3, 8);
        for second in [false, true] {
            let block = saltelli_block(p, second) as usize;
            assert_eq!(block, if second { 2 * p + 2 } else { p + 2 });
            for b in 0..n {
                let rows: Vec<Vec<f64>> =
                    (0..block).map(|r| saltelli_point((b * block + r) as u64, p, second, 4)).collect();
                let base = sobol_point(b as u64, 2 * p, 4);
                let (a, bb) = base.split_at(p);
                assert_eq!(rows[0], a, "A first");
                assert_eq!(rows[block - 1], bb, "B last");
                for j in 0..p {
                    let ab = &rows[1 + j];
                    for d in 0..p {
                        assert_eq!(ab[d], if d == j { bb[d] } else { a[d] }, "AB_{j}");
                    }
                    if second {
                        let ba = &rows[1 + p + j];
                        for d in 0..p {
                            assert_eq!(ba[d], if d == j { a[d] } else { bb[d] }, "BA_{j}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn morris_trajectories_move_one_parameter_by_delta() {
        let (p, levels) = (5, 4);
        let delta = morris_delta(levels);
        assert!((delta - 2.0 / 3.0).abs() < 1e-15);
        let mut ups = 0;
        for t in 0..200u64 {
            let pts: Vec<Vec<f64>> =
                (0..=p as u64).map(|s| morris_point(t * (p as u64 + 1) + s, p, levels, 9)).collect();
            let mut moved = vec![false; p];
            for w in pts.windows(2) {
                let changed: Vec<usize> = (0..p).filter(|&d| w[0][d] != w[1][d]).collect();
                assert_eq!(changed.len(), 1, "trajectory {t}: one parameter per step");
                let d = changed[0];
                assert!(!moved[d], "each parameter moves once");
                moved[d] = true;
                assert!(((w[1][d] - w[0][d]).abs() - delta).abs() < 1e-12);
                ups += (w[1][d] > w[0][d]) as u32;
            }
            for x in pts.iter().flatten() {
                let k = x * 3.0;
                assert!((k - k.round()).abs() < 1e-12 && (0.0..=1.0).contains(x), "on the grid: {x}");
            }
        }
        // Directions are up or down with probability ½: 1000 steps.
        assert!((420..=580).contains(&ups), "{ups} of 1000 steps up");
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
