//! One account's share of the pool: the client that sends with its key,
//! its rate limiter, its 429 pause and its run of 429s, and how many of the
//! pool's workers send with it. A host paces and refuses an account, not
//! a process, so everything a 429 touches is an account's (the pool's
//! docs, "429 is flow control"); what a run decides as a whole (the
//! budget, the breaker on failures, the task IDs it trusts, stopping) stays
//! the pool's.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Turn, rate_limit_exhausted};
use crate::api::submit::{Client, SubmitError};
use crate::util::limit::{Limiter, is_storm};
use crate::util::units::Rate;

/// An account the pool sends with.
pub(super) struct Account {
    pub(super) client: Client,
    /// Workers sending with this account: at most this many of its
    /// requests are in flight.
    pub(super) concurrency: usize,
    limiter: Option<Limiter>,
    /// Set by a 429: none of this account's workers sends before it.
    pause_until: Mutex<Option<Instant>>,
    /// 429s in a row on this account, with no other answer between.
    rate_limited_in_a_row: AtomicU32,
    /// When the current run of 429s began; `None` after any other answer.
    rate_limited_since: Mutex<Option<Instant>>,
}

impl Account {
    pub(super) fn new(
        client: Client,
        rate: Rate,
        burst: NonZeroU32,
        concurrency: usize,
    ) -> Account {
        Account {
            client,
            concurrency: concurrency.max(1),
            limiter: Limiter::new(rate, burst),
            pause_until: Mutex::new(None),
            rate_limited_in_a_row: AtomicU32::new(0),
            rate_limited_since: Mutex::new(None),
        }
    }

    /// Waits until a worker of this account may send: no pause, a limiter
    /// slot. `None` when `stop` fired meanwhile; otherwise the [`Turn`] to
    /// send in.
    pub(super) async fn wait_turn(&self, stop: &CancellationToken) -> Option<Turn> {
        loop {
            let until = *self.pause_until.lock().expect("poisoned");
            if let Some(until) = until.filter(|u| *u > Instant::now()) {
                tokio::select! {
                    () = stop.cancelled() => return None,
                    () = tokio::time::sleep_until(until) => continue,
                }
            }
            let slot = match &self.limiter {
                Some(limiter) => tokio::select! {
                    () = stop.cancelled() => return None,
                    slot = limiter.until_ready() => Some(slot),
                },
                None => None,
            };
            // A 429 may have arrived while this worker waited for the limiter.
            let paused = self
                .pause_until
                .lock()
                .expect("poisoned")
                .is_some_and(|u| u > Instant::now());
            if !paused {
                return (!stop.is_cancelled()).then_some(Turn { slot });
            }
        }
    }

    /// The host answered the request sent in `turn`: its pace hears it
    /// (not for a 429, which [`Account::rate_limited`] takes).
    pub(super) fn answered(&self, turn: Turn, rate_limited: bool) {
        if let (Some(limiter), Some(slot), false) = (&self.limiter, turn.slot, rate_limited) {
            limiter.answered(slot);
        }
    }

    /// What a 429 costs: the host's `Retry-After` for every worker of the
    /// account; without one, a slower pace, plus `backoff` for every
    /// worker in a storm.
    pub(super) fn rate_limited(&self, error: &SubmitError, turn: Turn, backoff: Duration) {
        if let Some(wait) = error.retry_after() {
            self.pause(wait);
            return;
        }
        if let (Some(limiter), Some(slot)) = (&self.limiter, turn.slot) {
            limiter.refused(slot);
        }
        let in_a_row = self.rate_limited_in_a_row.load(Ordering::Relaxed);
        let workers = u32::try_from(self.concurrency).unwrap_or(u32::MAX);
        if self.limiter.is_none() || is_storm(in_a_row, workers) {
            self.pause(backoff);
        }
    }

    /// Counts an answer in the account's run of 429s (any other answer
    /// ends it). `Some((429s in a row, how long they lasted))` when the
    /// run of them is too long to go on (see [`rate_limit_exhausted`]).
    pub(super) fn count_rate_limit(&self, rate_limited: bool) -> Option<(u32, Duration)> {
        if !rate_limited {
            self.rate_limited_in_a_row.store(0, Ordering::Relaxed);
            *self.rate_limited_since.lock().expect("poisoned") = None;
            return None;
        }
        let in_a_row = self.rate_limited_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
        let lasted = self
            .rate_limited_since
            .lock()
            .expect("poisoned")
            .get_or_insert_with(Instant::now)
            .elapsed();
        rate_limit_exhausted(in_a_row, lasted).then_some((in_a_row, lasted))
    }

    /// Nobody of this account sends for `wait` (or longer, if a pause
    /// already reaches further).
    fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut slot = self.pause_until.lock().expect("poisoned");
        if slot.is_none_or(|u| u < until) {
            *slot = Some(until);
        }
    }
}
