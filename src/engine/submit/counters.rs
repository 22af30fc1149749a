//! The live counts of a run: written by the pool's workers, read by the
//! progress display while the run goes and by the report at its end. A
//! module of its own because all three use it and none of them owns it.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counts, read by the progress display and the summary.
#[derive(Debug, Default)]
pub struct Counters {
    pub submitted: AtomicU64,
    pub failed: AtomicU64,
    pub unknown: AtomicU64,
    /// Requests sent (attempts), retries included.
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub rate_limited: AtomicU64,
    /// Thousandths of a credit the jobs sent so far cost, by the
    /// catalogue's prices ([`super::budget`]).
    pub credits: AtomicU64,
}

impl Counters {
    /// Rows this run settled so far.
    pub fn done(&self) -> u64 {
        self.submitted.load(Ordering::Relaxed)
            + self.failed.load(Ordering::Relaxed)
            + self.unknown.load(Ordering::Relaxed)
    }
}
