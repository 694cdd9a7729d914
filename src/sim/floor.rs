//! The hardware floor of a pass over users: a plain struct-of-arrays loop that touches every user once per
//! tick with one hash, one comparison and one write — what a simulator that decides nothing costs.
//!
//! `llm-market bench` times it next to the model on the same number of users, ticks and threads, so that a
//! run's speed is reported as a ratio to what this machine can do at all (README "Performance"), and
//! `benches/model.rs` times it with criterion.

use super::resources::Workers;
use crate::model::rng::mix64;

/// `n` users as two columns: ids and a counter each.
pub struct PlainLoop {
    ids: Vec<u32>,
    hits: Vec<u32>,
    workers: Workers,
}

impl PlainLoop {
    /// `n` users on `threads` threads (batches of at least 4,096 users, 32 per thread); `vector`: compiled for
    /// AVX2 where the CPU has it (as the model's pass is, with the same switch).
    pub fn new(n: usize, threads: usize, vector: bool) -> PlainLoop {
        PlainLoop { ids: (0..n as u32).collect(), hits: vec![0; n], workers: Workers::new(threads, vector) }
    }

    /// One tick: each user hashes (tick key, id), compares with a threshold of 1% and adds the outcome to its
    /// counter. Compiled for AVX2 where the CPU has it and vector code is allowed, as the model's pass is, so
    /// that the two compare fairly.
    pub fn tick(&mut self, tick: u32) {
        let key = mix64(0x5EED ^ (tick as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        #[cfg(target_arch = "x86_64")]
        let avx2 = self.workers.vector_test && std::arch::is_x86_feature_detected!("avx2");
        self.workers.map_batches(&self.ids, &mut self.hits, |ids, hits| {
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: the CPU has AVX2 (just detected).
                unsafe { batch_avx2(key, ids, hits) };
                return;
            }
            batch(key, ids, hits);
        });
    }

    /// The sum of the counters (so that the work cannot be optimised away).
    pub fn checksum(&self) -> u64 {
        self.hits.iter().map(|&h| h as u64).sum()
    }
}

/// The loop over one batch.
#[inline(always)]
fn batch(key: u64, ids: &[u32], hits: &mut [u32]) {
    let thr = u64::MAX / 100;
    for (id, hit) in ids.iter().zip(hits) {
        *hit += (mix64(key ^ (*id as u64).wrapping_mul(0x8CB9_2BA7_2F3D_8DD7)) < thr) as u32;
    }
}

/// [`batch`] compiled for AVX2: call only where the CPU has it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn batch_avx2(key: u64, ids: &[u32], hits: &mut [u32]) {
    batch(key, ids, hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// About 1% of user-ticks hit, whatever the thread count.
    #[test]
    fn plain_loop_counts_about_one_percent() {
        let (mut a, mut b) = (PlainLoop::new(50_000, 1, false), PlainLoop::new(50_000, 3, true));
        for t in 0..20 {
            a.tick(t);
            b.tick(t);
        }
        assert_eq!(a.checksum(), b.checksum());
        let share = a.checksum() as f64 / 1e6;
        assert!((0.009..0.011).contains(&share), "{share}");
    }
}
