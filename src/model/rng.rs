//! Counter-based random numbers: every draw is a pure function of (run seed, stream, tick, id, counter).
//!
//! Nothing in the model holds a sequential generator shared across agents, so results do not depend on
//! thread count or iteration order (ARCHITECTURE.md, "Determinism"). The generator is SplitMix64 run as a
//! keyed counter (Steele, Lea & Flood 2014): the key is a hash of the decision's coordinates and each
//! further draw of the same decision advances the counter. It implements `rand_core::TryRng`, so
//! `rand`/`rand_distr` distributions can sample from it.

use core::convert::Infallible;

/// Independent random streams: one per kind of decision. Adding a stream never changes existing ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Stream {
    /// User attributes drawn once at set-up (segment, taste, willingness to pay, employer).
    UserSetup = 1,
    /// Organisation attributes drawn at set-up.
    OrgSetup = 2,
    /// Awareness diffusion draws.
    Awareness = 3,
    /// Whether a user reconsiders its provider this tick, and the logit draw.
    Choice = 4,
    /// Free-to-paid conversion and churn.
    Subscription = 5,
    /// Organisation adoption, stage, provider choice, bans and seats.
    Org = 6,
    /// Firm-level draws: fund-raising, acqui-hire, price matching.
    Firm = 7,
    /// Persistent per-user trait: does this user keep using a banned chatbot (shadow use)?
    Shadow = 8,
    /// Capacity rationing: whether a sign-up to a chatbot at capacity gets in (the waitlist), and whether a
    /// paying user meeting message caps churns.
    Capacity = 9,
    /// The outcome of a training run (its Elo gain around the scaling relation).
    Training = 10,
    /// Whether a valuation-based funding round closes.
    Funding = 11,
    /// The event-driven user sampler (`sim::events`): a user's waiting time to its next candidate tick, and at
    /// that tick which of its decisions are candidates and which candidates are accepted.
    Due = 12,
    /// The event-driven organisation pass (`sim::org_events`): an organisation's waiting time to its next
    /// candidate tick, and at that tick which of its decisions are candidates and which are accepted.
    OrgDue = 13,
}

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function (a strong 64-bit mixer).
#[inline(always)]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The key shared by every draw of one stream in one tick; computed once per system run.
#[inline]
pub fn tick_key(seed: u64, stream: Stream, tick: u32) -> u64 {
    mix64(mix64(seed ^ (stream as u64).wrapping_mul(GAMMA)) ^ (tick as u64).wrapping_mul(0xD1B5_4A32_D192_ED03))
}

/// A counter-based generator for one decision of one agent.
#[derive(Debug)]
pub struct CounterRng {
    key: u64,
    ctr: u64,
}

impl CounterRng {
    /// The generator for agent `id` under a tick key from [`tick_key`].
    #[inline(always)]
    pub fn new(tick_key: u64, id: u64) -> Self {
        CounterRng { key: agent_key(tick_key, id), ctr: 0 }
    }

    /// Convenience: the generator for (seed, stream, tick, id).
    pub fn for_decision(seed: u64, stream: Stream, tick: u32, id: u64) -> Self {
        Self::new(tick_key(seed, stream, tick), id)
    }

    /// The next raw 64-bit draw.
    #[inline(always)]
    pub fn draw(&mut self) -> u64 {
        self.ctr = self.ctr.wrapping_add(1);
        counter_draw(self.key, self.ctr)
    }

    /// A uniform draw in [0, 1) with 53 bits of precision.
    #[inline(always)]
    pub fn uniform(&mut self) -> f64 {
        (self.draw() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A standard normal draw (Box–Muller on two uniform draws).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// True with probability `threshold / 2^64` (see [`prob_threshold`]).
    #[inline(always)]
    pub fn hit(&mut self, threshold: u64) -> bool {
        self.draw() < threshold
    }
}

/// The key of agent `id`'s generator under a tick key from [`tick_key`] (what [`CounterRng::new`] holds).
#[inline(always)]
pub fn agent_key(tick_key: u64, id: u64) -> u64 {
    mix64(tick_key ^ id.wrapping_mul(0x8CB9_2BA7_2F3D_8DD7))
}

/// Draw number `ctr` (from 1) of the generator with key `key`: `CounterRng::new(k, id)`'s first draw is
/// `counter_draw(agent_key(k, id), 1)`, without building the generator.
#[inline(always)]
pub fn counter_draw(key: u64, ctr: u64) -> u64 {
    mix64(key.wrapping_add(ctr.wrapping_mul(GAMMA)))
}

/// Converts a probability into an integer threshold for [`CounterRng::hit`]; exact at 0 and 1.
#[inline]
pub fn prob_threshold(p: f64) -> u64 {
    if p.is_nan() || p <= 0.0 {
        0
    } else if p >= 1.0 {
        u64::MAX
    } else {
        (p * 18_446_744_073_709_551_616.0) as u64
    }
}

impl rand_core::TryRng for CounterRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.draw() >> 32) as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.draw())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.draw().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

/// A stable 64-bit FNV-1a hash of text, as 16 hex digits: the identity of a configuration in manifests
/// (not a random stream).
pub fn fnv1a_hex(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {

    #[test]
    fn normal_draws_have_mean_zero_and_unit_variance() {
        let n = 200_000;
        let xs: Vec<f64> =
            (0..n).map(|i| CounterRng::for_decision(7, Stream::Training, i as u32, 3).normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01 && (var - 1.0).abs() < 0.02, "{mean} {var}");
        let tail = xs.iter().filter(|x| x.abs() > 1.96).count() as f64 / n as f64;
        assert!((tail - 0.05).abs() < 0.003, "{tail}");
    }

    use super::*;

    #[test]
    fn same_coordinates_same_draws() {
        let mut a = CounterRng::for_decision(7, Stream::Choice, 3, 11);
        let mut b = CounterRng::for_decision(7, Stream::Choice, 3, 11);
        for _ in 0..5 {
            assert_eq!(a.draw(), b.draw());
        }
        let mut c = CounterRng::for_decision(7, Stream::Choice, 3, 12);
        assert_ne!(a.draw(), c.draw());
        let key = agent_key(tick_key(7, Stream::Choice, 3), 11);
        let mut d = CounterRng::for_decision(7, Stream::Choice, 3, 11);
        assert_eq!(d.draw(), counter_draw(key, 1));
        assert_eq!(d.draw(), counter_draw(key, 2));
    }

    #[test]
    fn uniform_mean_and_thresholds() {
        let key = tick_key(1, Stream::Awareness, 0);
        let n = 200_000;
        let (mut sum, mut hits) = (0.0, 0);
        let thr = prob_threshold(0.3);
        for id in 0..n {
            let mut r = CounterRng::new(key, id);
            sum += r.uniform();
            hits += r.hit(thr) as u32;
        }
        assert!((sum / n as f64 - 0.5).abs() < 0.005);
        assert!((hits as f64 / n as f64 - 0.3).abs() < 0.005);
        assert_eq!(prob_threshold(0.0), 0);
        assert_eq!(prob_threshold(1.0), u64::MAX);
    }
}
