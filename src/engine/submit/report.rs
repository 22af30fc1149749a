//! What a run did, in numbers and words: the totals of the results file
//! after it, what this run settled, requests and retries, and why it
//! stopped early if it did. The summary line and the hint are worded here;
//! the exit code is the program's to choose.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::counters::Counters;
use super::pool::StopReason;
use crate::files::results::Status;

/// What a run did, for the summary line and the exit code (chosen from it
/// by the program: `ExitStatus for RunReport` in `crate::program::exit`).
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Final status of every manifest row.
    pub totals: BTreeMap<&'static str, u64>,
    /// Rows this run finished, by status.
    pub this_run: BTreeMap<&'static str, u64>,
    /// Rows an earlier run had already settled, left alone.
    pub skipped: u64,
    /// Requests sent, retries included.
    pub requests: u64,
    pub retries: u64,
    pub rate_limited: u64,
    /// Credits this run's jobs cost, by the catalogue's prices (an
    /// estimate: [`super::budget`]).
    pub credits: f64,
    /// The run's cap (`--budget`), if it had one.
    pub budget: Option<f64>,
    /// The host's balance before the first request and after the last,
    /// where it reports one: what the run was charged, measured.
    pub balance: Balances,
    pub elapsed: Duration,
    pub stop: Option<StopReason>,
    /// Warnings worth a line each (e.g. a job edited under the same id).
    pub warnings: Vec<String>,
    /// The results file the run wrote (named when a write to it failed).
    pub results: PathBuf,
}

/// The host's balance around a run (`None` where it reports none).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Balances {
    pub before: Option<f64>,
    pub after: Option<f64>,
}

impl Balances {
    /// Credits the balance went down by (never negative: a refund or a
    /// top-up in between reads as 0).
    pub fn spent(&self) -> Option<f64> {
        Some((self.before? - self.after?).max(0.0))
    }
}

impl RunReport {
    /// This report followed by `later`'s, a later round of the same
    /// command (`--wait --regenerate`): the totals as `later` left them,
    /// what each round did added up, the first round's budget and skipped
    /// rows, and the last reason to stop.
    pub fn and_then(mut self, later: RunReport) -> RunReport {
        for (status, n) in later.this_run {
            *self.this_run.entry(status).or_default() += n;
        }
        self.totals = later.totals;
        self.requests += later.requests;
        self.retries += later.retries;
        self.rate_limited += later.rate_limited;
        self.credits += later.credits;
        self.balance = Balances {
            before: self.balance.before.or(later.balance.before),
            after: later.balance.after.or(self.balance.after),
        };
        self.elapsed += later.elapsed;
        self.stop = later.stop.or(self.stop);
        self.warnings.extend(later.warnings);
        self
    }

    /// The report of a run that began at `started`: `totals` are the
    /// results file's after it, `counters` what this run did.
    pub(super) fn new(
        totals: &BTreeMap<&'static str, u64>,
        counters: &Counters,
        skipped: u64,
        started: Instant,
        stop: Option<StopReason>,
        warnings: Vec<String>,
        results: PathBuf,
    ) -> RunReport {
        let mut all = BTreeMap::new();
        for status in [
            Status::Pending,
            Status::Submitted,
            Status::Failed,
            Status::Unknown,
        ] {
            all.insert(
                status.as_str(),
                totals.get(status.as_str()).copied().unwrap_or(0),
            );
        }
        let mut this_run = BTreeMap::new();
        this_run.insert(
            Status::Submitted.as_str(),
            counters.submitted.load(Ordering::Relaxed),
        );
        this_run.insert(
            Status::Failed.as_str(),
            counters.failed.load(Ordering::Relaxed),
        );
        this_run.insert(
            Status::Unknown.as_str(),
            counters.unknown.load(Ordering::Relaxed),
        );
        RunReport {
            totals: all,
            this_run,
            skipped,
            requests: counters.requests.load(Ordering::Relaxed),
            retries: counters.retries.load(Ordering::Relaxed),
            rate_limited: counters.rate_limited.load(Ordering::Relaxed),
            credits: super::budget::credits(counters.credits.load(Ordering::Relaxed)),
            budget: None,
            balance: Balances::default(),
            elapsed: started.elapsed(),
            stop,
            warnings,
            results,
        }
    }

    pub fn total(&self, status: Status) -> u64 {
        self.totals.get(status.as_str()).copied().unwrap_or(0)
    }

    fn this_run(&self, status: Status) -> u64 {
        self.this_run.get(status.as_str()).copied().unwrap_or(0)
    }

    /// What to do about how the run went, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        if self.stop == Some(StopReason::BudgetSpent) {
            return Some(format!(
                "the budget of {} credits is spent: {} jobs stay pending for the next run (raise --budget, or rerun)",
                self.budget.unwrap_or_default(),
                self.total(Status::Pending)
            ));
        }
        if self.requests >= 10 && self.rate_limited * 10 >= self.requests {
            return Some(format!(
                "{} of {} requests were rate limited (429): consider a lower --rate",
                self.rate_limited, self.requests
            ));
        }
        let failed = self.total(Status::Failed);
        let unknown = self.total(Status::Unknown);
        if self.stop.is_none() && failed + unknown > 0 {
            return Some(format!(
                "see the error column of the results file; fix and rerun with --retry-failed ({failed} failed), or check the provider's dashboard before --retry-unknown ({unknown} unknown, may have been billed)"
            ));
        }
        None
    }

    /// Whether this run had nothing to send.
    fn nothing_to_do(&self) -> bool {
        self.requests == 0 && self.stop.is_none()
    }

    /// The one-line summary printed at the end.
    pub fn summary(&self) -> String {
        if self.nothing_to_do() {
            return format!(
                "nothing to do: {} rows already settled ({} submitted, {} failed, {} unknown)",
                self.skipped,
                self.total(Status::Submitted),
                self.total(Status::Failed),
                self.total(Status::Unknown),
            );
        }
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            self.requests as f64 / secs
        } else {
            0.0
        };
        let budget = match self.budget {
            Some(budget) => format!(" · ~{} of {budget} credits", self.credits),
            None => String::new(),
        };
        format!(
            "{} submitted, {} failed, {} unknown, {} skipped, {} pending · {} requests ({} retries, {} × 429) in {:.1}s, {:.2} req/s{budget}",
            self.this_run(Status::Submitted),
            self.this_run(Status::Failed),
            self.this_run(Status::Unknown),
            self.skipped,
            self.total(Status::Pending),
            self.requests,
            self.retries,
            self.rate_limited,
            secs,
            rate,
        )
    }
}
