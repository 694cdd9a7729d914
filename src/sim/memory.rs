//! A run's peak memory, estimated from its scenario before anything is allocated (pure: no IO).
//!
//! Measured peak resident memory (README "Performance"): 95–96 bytes per user agent at 10M–100M users with the
//! event-driven sampler (its due ticks and staff index add about 6 to the components' and bevy's 89), about
//! 13 MB for a 1,000-user run. An organisation is a 12-byte `Org` component plus the same per-entity bevy
//! bookkeeping as a user (≈ 68 bytes), one byte of `BanList` and the event-driven pass's 2-byte due tick. The constants below round these up, so the
//! estimate errs on the side of refusing a run that would have just fitted.

use crate::config::Scenario;

/// Bytes per user agent (measured 95–96 resident; 20 bytes of components plus bevy's per-entity storage, 2 of
/// due tick and about 4 of the staff index).
pub const BYTES_PER_USER: u64 = 100;
/// Bytes per organisation agent (12 bytes of `Org`, bevy's per-entity storage, the ban list, the due tick).
pub const BYTES_PER_ORG: u64 = 100;
/// Fixed cost of a run: the binary, thread stacks, firms, schedules, row buffers (measured ≈ 10 MB).
pub const FIXED_BYTES: u64 = 32_000_000;

/// Estimated peak memory of one run with `users` user agents and `orgs` organisation agents.
pub fn peak_bytes(users: u64, orgs: u64) -> u64 {
    FIXED_BYTES.saturating_add(users.saturating_mul(BYTES_PER_USER)).saturating_add(orgs.saturating_mul(BYTES_PER_ORG))
}

/// Estimated peak memory of one run of `scenario`.
pub fn estimated_peak_bytes(scenario: &Scenario) -> u64 {
    let p = scenario.params();
    peak_bytes(p.agents, p.orgs.agents)
}

/// The most user agents whose run fits in `budget` bytes next to `orgs` organisations (0 if none fits).
pub fn max_users_within(budget: u64, orgs: u64) -> u64 {
    budget.saturating_sub(peak_bytes(0, orgs)) / BYTES_PER_USER
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_grows_with_agents_and_inverts() {
        assert_eq!(peak_bytes(0, 0), FIXED_BYTES);
        assert_eq!(peak_bytes(1_000_000, 20_000), 32_000_000 + 100_000_000 + 2_000_000);
        // 2^31 users: about 215 GB, as a 100M-user run measured 8.6 GB.
        assert!((214e9..216e9).contains(&(peak_bytes(1 << 31, 20_000) as f64)));
        let n = max_users_within(1_000_000_000, 20_000);
        assert!(peak_bytes(n, 20_000) <= 1_000_000_000 && peak_bytes(n + 1, 20_000) > 1_000_000_000);
        assert_eq!(max_users_within(1_000, 20_000), 0);
        assert_eq!(peak_bytes(u64::MAX, 1), u64::MAX);
    }

    #[test]
    fn the_baseline_needs_about_134_mb() {
        let baseline = crate::config::load(None, &Default::default()).unwrap();
        assert_eq!(estimated_peak_bytes(&baseline), 134_000_000);
    }
}
