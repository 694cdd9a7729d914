//! Multinomial logit choice with inertia and an outside option, on precomputed weights.
//!
//! Utilities are computed once per tick per (segment, taste class, firm) and exponentiated there; a user's
//! choice then costs one pass over the firms it knows: no `exp` per user (docs/ODD.md §7.5).

/// Sentinel for "no provider" (the outside option).
pub const NONE: u8 = u8::MAX;

/// Picks an option by inverse-CDF sampling over `weights` (already `exp(V)`), the outside option
/// weighted `outside`; `current` (if any) is multiplied by `loyalty_factor = exp(γ)`.
/// `allowed` is the bitset of options this chooser may pick; options in `boosted` (chatbots just heard
/// of) are multiplied by `boost = exp(trial utility)`; `u` is a uniform draw in [0, 1).
/// Returns the chosen index or [`NONE`].
#[inline]
#[allow(clippy::too_many_arguments)]
pub fn choose(
    weights: &[f32],
    allowed: u32,
    current: u8,
    loyalty_factor: f32,
    outside: f32,
    boosted: u32,
    boost: f32,
    u: f64,
) -> u8 {
    let weight = |j: usize| -> f32 {
        // Factors of 1 where they do not apply (exact), so that the compiler can select instead of branch.
        let loyal = if j as u8 == current { loyalty_factor } else { 1.0 };
        let boosted = if (boosted >> j) & 1 == 1 { boost } else { 1.0 };
        weights[j] * loyal * boosted
    };
    let mut total = outside as f64;
    let mut bits = allowed;
    while bits != 0 {
        let j = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        total += weight(j) as f64;
    }
    let mut target = u * total - outside as f64;
    if target < 0.0 {
        return NONE;
    }
    let mut bits = allowed;
    let mut last = NONE;
    while bits != 0 {
        let j = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        target -= weight(j) as f64;
        last = j as u8;
        if target < 0.0 {
            return last;
        }
    }
    last
}

/// Logit choice probabilities (for tests and reports): `exp(V_j) / (exp(u0) + Σ exp(V_k))`.
pub fn logit_probabilities(utilities: &[f64], outside: f64) -> (Vec<f64>, f64) {
    let m = utilities.iter().copied().fold(outside, f64::max);
    let e: Vec<f64> = utilities.iter().map(|v| (v - m).exp()).collect();
    let e0 = (outside - m).exp();
    let total = e0 + e.iter().sum::<f64>();
    (e.iter().map(|x| x / total).collect(), e0 / total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rng::{CounterRng, Stream, tick_key};

    #[test]
    fn sampled_shares_match_logit_probabilities() {
        let v = [0.5f64, -0.2, 1.0];
        let (p, p0) = logit_probabilities(&v, 0.0);
        let w: Vec<f32> = v.iter().map(|x| x.exp() as f32).collect();
        let key = tick_key(3, Stream::Choice, 1);
        let n = 200_000;
        let mut counts = [0u32; 4];
        for id in 0..n {
            let c = choose(&w, 0b111, NONE, 1.0, 1.0, 0, 1.0, CounterRng::new(key, id).uniform());
            counts[if c == NONE { 3 } else { c as usize }] += 1;
        }
        for j in 0..3 {
            assert!((counts[j] as f64 / n as f64 - p[j]).abs() < 0.005);
        }
        assert!((counts[3] as f64 / n as f64 - p0).abs() < 0.005);
    }

    #[test]
    fn disallowed_options_are_never_chosen_and_loyalty_helps() {
        let w = [1.0f32, 1.0, 1.0];
        for i in 0..1000 {
            let u = i as f64 / 1000.0;
            let c = choose(&w, 0b101, NONE, 1.0, 1.0, 0, 1.0, u);
            assert!(c != 1);
        }
        // With the outside option at zero weight and a huge loyalty bonus the current provider wins.
        assert_eq!(choose(&w, 0b111, 2, 1e9, 0.0, 0, 1.0, 0.5), 2);
        // A huge trial boost makes the boosted option win.
        assert_eq!(choose(&w, 0b111, NONE, 1.0, 1.0, 0b010, 1e9, 0.5), 1);
        // Nothing allowed: always the outside option.
        assert_eq!(choose(&w, 0, NONE, 1.0, 1.0, 0, 1.0, 0.99), NONE);
    }
}
