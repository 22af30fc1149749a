//! Backoff between attempts, shared by every retrying loop (submits,
//! polls, downloads) so they spread the same way.

use std::time::Duration;

use rand::RngExt;

/// First retry waits up to this long (full jitter), doubling per attempt.
pub const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// No single backoff waits longer than this.
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// Exponential backoff with full jitter: uniform in
/// `[0, min(cap, base · 2^(attempt-1))]`. Jitter spreads workers that failed
/// together so they do not retry together.
pub fn full_jitter(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(BACKOFF_CAP);
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::rng().random_range(0..=millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for _ in 0..200 {
            assert!(full_jitter(1) <= BACKOFF_BASE);
            assert!(full_jitter(3) <= BACKOFF_BASE * 4);
            assert!(full_jitter(40) <= BACKOFF_CAP);
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| full_jitter(5)).collect();
        assert!(spread.len() > 10, "jitter should spread retries");
    }
}
