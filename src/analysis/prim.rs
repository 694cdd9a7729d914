//! Scenario discovery with PRIM (Friedman and Fisher 1999, as the EMA Workbench uses it): which box of
//! parameter values holds most of the runs where a yes/no outcome is true (say, a firm bankrupt by 2025).
//!
//! Peeling: from the box around all cases, repeatedly cut an `alpha` share of the remaining cases off the
//! bottom or the top of one parameter — the cut that leaves the highest density (share of cases of interest
//! in the box) — until the box would hold less than `min_mass` of all cases. Each step is one box of the
//! trajectory, with its coverage (share of all cases of interest inside it), density and mass (share of all
//! cases inside it). The chosen box is the most covering box whose density reaches `threshold` (the most
//! covering of the densest ones when none does); it is then pasted: a limit is widened by an `alpha` share of the box's cases while
//! that raises the density. Each restricted parameter gets a quasi-p-value: the one-sided binomial
//! probability of at least the box's cases of interest among its cases, at the density of the box with that
//! restriction removed (small: the restriction matters).

use statrs::distribution::{Binomial, DiscreteCDF};

/// PRIM's settings (the EMA Workbench's defaults).
#[derive(Clone, Copy, Debug)]
pub struct PrimOptions {
    pub peel_alpha: f64,
    pub paste_alpha: f64,
    pub min_mass: f64,
    pub threshold: f64,
}

impl Default for PrimOptions {
    fn default() -> PrimOptions {
        PrimOptions { peel_alpha: 0.05, paste_alpha: 0.05, min_mass: 0.05, threshold: 0.8 }
    }
}

/// A box: inclusive limits per parameter and what it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct PrimBox {
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
    pub coverage: f64,
    pub density: f64,
    pub mass: f64,
    pub cases: usize,
    pub of_interest: usize,
}

/// A restricted parameter of the chosen box.
#[derive(Clone, Debug, PartialEq)]
pub struct Restriction {
    pub parameter: usize,
    pub lo: f64,
    pub hi: f64,
    pub quasi_p: f64,
}

/// The peeling trajectory, the chosen (pasted) box and its restrictions.
#[derive(Clone, Debug)]
pub struct PrimResult {
    pub trajectory: Vec<PrimBox>,
    /// Index into the trajectory of the box that was pasted.
    pub chosen_step: usize,
    pub chosen: PrimBox,
    pub restrictions: Vec<Restriction>,
}

struct Data<'a> {
    x: &'a [Vec<f64>],
    y: &'a [bool],
    total_interest: usize,
}

impl Data<'_> {
    fn inside(&self, i: usize, lo: &[f64], hi: &[f64]) -> bool {
        self.x[i].iter().zip(lo.iter().zip(hi)).all(|(v, (l, h))| l <= v && v <= h)
    }
    fn make(&self, lo: Vec<f64>, hi: Vec<f64>) -> PrimBox {
        let idx: Vec<usize> = (0..self.y.len()).filter(|&i| self.inside(i, &lo, &hi)).collect();
        let k = idx.iter().filter(|&&i| self.y[i]).count();
        PrimBox {
            coverage: if self.total_interest > 0 { k as f64 / self.total_interest as f64 } else { f64::NAN },
            density: if idx.is_empty() { 0.0 } else { k as f64 / idx.len() as f64 },
            mass: idx.len() as f64 / self.y.len() as f64,
            cases: idx.len(),
            of_interest: k,
            lo,
            hi,
        }
    }
}

/// Candidate peels of `b`: for each parameter, the box without the lowest and without the highest `alpha`
/// share of its cases (at least the cases at the extreme value, so that a tie does not stall the peel).
fn peels(d: &Data, b: &PrimBox, alpha: f64) -> Vec<PrimBox> {
    let idx: Vec<usize> = (0..d.y.len()).filter(|&i| d.inside(i, &b.lo, &b.hi)).collect();
    let mut out = Vec::new();
    for j in 0..b.lo.len() {
        let mut v: Vec<f64> = idx.iter().map(|&i| d.x[i][j]).collect();
        v.sort_by(f64::total_cmp);
        let (Some(&min), Some(&max)) = (v.first(), v.last()) else { continue };
        if min == max {
            continue;
        }
        let cut = ((alpha * v.len() as f64).floor() as usize).min(v.len() - 1);
        let lo_cut = if v[cut] > min { v[cut] } else { *v.iter().find(|&&x| x > min).unwrap_or(&max) };
        let hi_cut = if v[v.len() - 1 - cut] < max {
            v[v.len() - 1 - cut]
        } else {
            *v.iter().rev().find(|&&x| x < max).unwrap_or(&min)
        };
        let mut lo = b.lo.clone();
        lo[j] = lo_cut;
        out.push(d.make(lo, b.hi.clone()));
        let mut hi = b.hi.clone();
        hi[j] = hi_cut;
        out.push(d.make(b.lo.clone(), hi));
    }
    out
}

/// Widens one limit of `b` at a time by an `alpha` share of its cases (the nearest cases outside that limit
/// and inside the others) while the density rises; the widening that raises it most goes first.
fn paste(d: &Data, mut b: PrimBox, alpha: f64, full_lo: &[f64], full_hi: &[f64]) -> PrimBox {
    loop {
        let step = ((alpha * b.cases as f64).ceil() as usize).max(1);
        let mut best: Option<PrimBox> = None;
        for j in 0..b.lo.len() {
            for lower in [true, false] {
                // Cases inside every other limit and beyond this one.
                let mut out: Vec<f64> = (0..d.y.len())
                    .filter(|&i| {
                        let v = d.x[i][j];
                        (if lower { v < b.lo[j] } else { v > b.hi[j] })
                            && d.x[i].iter().enumerate().all(|(k, x)| k == j || (b.lo[k] <= *x && *x <= b.hi[k]))
                    })
                    .map(|i| d.x[i][j])
                    .collect();
                if out.is_empty() {
                    continue;
                }
                out.sort_by(f64::total_cmp);
                let (mut lo, mut hi) = (b.lo.clone(), b.hi.clone());
                if lower {
                    lo[j] = out[out.len().saturating_sub(step)].max(full_lo[j]);
                } else {
                    hi[j] = out[step.min(out.len()) - 1].min(full_hi[j]);
                }
                let c = d.make(lo, hi);
                if c.density > b.density && best.as_ref().is_none_or(|x| c.density > x.density) {
                    best = Some(c);
                }
            }
        }
        match best {
            Some(c) => b = c,
            None => return b,
        }
    }
}

/// PRIM on the cases `x[case][parameter]` with the yes/no outcome `y`.
pub fn prim(x: &[Vec<f64>], y: &[bool], opts: &PrimOptions) -> Result<PrimResult, String> {
    let p = x.first().map_or(0, Vec::len);
    if x.len() != y.len() || y.is_empty() || p == 0 {
        return Err(format!(
            "PRIM needs cases with parameters and an outcome each ({} cases, {} outcomes)",
            x.len(),
            y.len()
        ));
    }
    if x.iter().flatten().any(|v| !v.is_finite()) {
        return Err("a parameter value is not a number".into());
    }
    let total_interest = y.iter().filter(|&&v| v).count();
    if total_interest == 0 {
        return Err(format!("the condition holds in none of the {} runs: there is nothing to find a box for", y.len()));
    }
    let d = Data { x, y, total_interest };
    let full_lo: Vec<f64> = (0..p).map(|j| x.iter().map(|r| r[j]).fold(f64::INFINITY, f64::min)).collect();
    let full_hi: Vec<f64> = (0..p).map(|j| x.iter().map(|r| r[j]).fold(f64::NEG_INFINITY, f64::max)).collect();
    let mut trajectory = vec![d.make(full_lo.clone(), full_hi.clone())];
    let min_cases = opts.min_mass * y.len() as f64;
    loop {
        let cur = trajectory.last().expect("the first box");
        let next = peels(&d, cur, opts.peel_alpha)
            .into_iter()
            .filter(|c| c.cases as f64 >= min_cases && c.cases < cur.cases)
            .max_by(|a, b| a.density.total_cmp(&b.density).then(a.cases.cmp(&b.cases)));
        match next {
            Some(b) => trajectory.push(b),
            None => break,
        }
    }
    // The most covering box that reaches the threshold; when none does, the most covering of the densest.
    let densest = trajectory.iter().map(|b| b.density).fold(0.0, f64::max);
    let floor = if densest >= opts.threshold { opts.threshold } else { densest };
    let chosen_step = trajectory
        .iter()
        .enumerate()
        .filter(|(_, b)| b.density >= floor)
        .min_by(|(_, a), (_, b)| b.coverage.total_cmp(&a.coverage))
        .map(|(i, _)| i)
        .unwrap_or(0);
    let chosen = paste(&d, trajectory[chosen_step].clone(), opts.paste_alpha, &full_lo, &full_hi);
    let restrictions = (0..p)
        .filter(|&j| chosen.lo[j] > full_lo[j] || chosen.hi[j] < full_hi[j])
        .map(|j| {
            let (mut lo, mut hi) = (chosen.lo.clone(), chosen.hi.clone());
            lo[j] = full_lo[j];
            hi[j] = full_hi[j];
            let without = d.make(lo, hi);
            let base = without.of_interest as f64 / without.cases.max(1) as f64;
            let quasi_p = match (chosen.of_interest, Binomial::new(base.clamp(0.0, 1.0), chosen.cases as u64)) {
                (0, _) => 1.0,
                (k, Ok(b)) => b.sf(k as u64 - 1),
                (_, Err(_)) => f64::NAN,
            };
            Restriction { parameter: j, lo: chosen.lo[j], hi: chosen.hi[j], quasi_p }
        })
        .collect();
    Ok(PrimResult { trajectory, chosen_step, chosen, restrictions })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rng::CounterRng;

    #[test]
    fn prim_finds_a_known_box() {
        // Cases uniform in [0, 1]³; of interest inside x0 ≥ 0.6 and x1 ≤ 0.3 (with 5% of labels flipped).
        let x: Vec<Vec<f64>> = (0..2000u64)
            .map(|i| {
                let mut r = CounterRng::new(11, i);
                (0..3).map(|_| r.uniform()).collect()
            })
            .collect();
        let y: Vec<bool> = x
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let inside = v[0] >= 0.6 && v[1] <= 0.3;
                inside ^ (CounterRng::new(12, i as u64).uniform() < 0.05)
            })
            .collect();
        let r = prim(&x, &y, &PrimOptions::default()).unwrap();
        // The trajectory starts with everything and ends above the minimum mass, densities rising overall.
        assert_eq!(r.trajectory[0].mass, 1.0);
        assert!(r.trajectory.iter().all(|b| b.mass >= 0.05));
        assert!(r.trajectory.last().unwrap().density > 0.8);
        let c = &r.chosen;
        assert!(c.density >= 0.8, "density {}", c.density);
        assert!(c.coverage > 0.7, "coverage {}", c.coverage);
        let lim: Vec<usize> = r.restrictions.iter().map(|x| x.parameter).collect();
        assert!(lim.contains(&0) && lim.contains(&1), "restricted: {lim:?}");
        let x0 = r.restrictions.iter().find(|x| x.parameter == 0).unwrap();
        let x1 = r.restrictions.iter().find(|x| x.parameter == 1).unwrap();
        assert!((x0.lo - 0.6).abs() < 0.05 && x0.hi > 0.99, "{x0:?}");
        assert!((x1.hi - 0.3).abs() < 0.05 && x1.lo < 0.01, "{x1:?}");
        assert!(x0.quasi_p < 1e-6 && x1.quasi_p < 1e-6, "{x0:?} {x1:?}");
        // x2 is noise: unrestricted, or restricted with a large quasi-p-value.
        if let Some(x2) = r.restrictions.iter().find(|x| x.parameter == 2) {
            assert!(x2.quasi_p > 0.01 || x2.hi - x2.lo > 0.8, "{x2:?}");
        }
    }

    #[test]
    fn prim_refuses_an_outcome_that_never_holds() {
        let x = vec![vec![0.0], vec![1.0]];
        assert!(prim(&x, &[false, false], &PrimOptions::default()).unwrap_err().contains("none of the 2 runs"));
    }
}
