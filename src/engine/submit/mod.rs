//! One run, start to finish: lock and open the state store, merge what
//! earlier runs recorded, pick the rows to send, drive the pool, write the
//! results report, and say what happened.
//!
//! Every step streams: the manifest's jobs are read one at a time
//! ([`crate::files::manifest::Jobs`]) and looked up in the store
//! ([`crate::files::state`]), and what a run keeps per row is the index
//! of the rows it will send (see [`plan`]). Merging is one pass over the
//! manifest, one transaction in the store.
//!
//! | module | owns |
//! |---|---|
//! | [`plan`] | which rows to send, and the merge of manifest and results file |
//! | [`session`] | the run that holds the state store: open, send, report |
//! | [`feeder`] | the thread that hands the jobs to the pool, and the channel |
//! | [`pool`] | the workers, the rate limit, the retry policy, why a run stops |
//! | [`counters`], [`progress`] | the live counts, and the bar or lines showing them |
//! | [`report`] | what the run did, for the summary line, the hint and the exit code |
//! | [`error`] | what ends a run before it can report |
//!
//! # A run's moving parts
//! ```text
//!  SIGINT / SIGTERM / SIGHUP
//!         │
//!  signal watcher (task; program::signals::Signals)
//!         │ 1st signal: cancels ①; 2nd: exits the process at once
//!         ▼
//!  ① shutdown ──child──▶ ② stop ─────────child─────────▶ ③ the pool's token
//!     the command's         Session::send_planned;          pool::submit_all;
//!                           also cancelled by the feeder    also cancelled by a worker's
//!                           when the manifest fails         StopReason; every wait watches it
//!
//!  feeder (blocking thread)
//!    held jobs, or the manifest read again
//!    │ chunks of ≤ CHUNK jobs
//!    ▼
//!  chunk channel (2 chunks) ──▶ Backlog ──▶ workers × concurrency (tasks)
//!                                            │ 1. `sending` row ──record_durably──┐
//!                                            │ 2. wait: 429 pause, rate limiter   │
//!                                            │ 3. client.submit ──▶ API           ├─▶ Recorder queue
//!                                            │ 4. outcome row ──record────────────┘        │
//!                                            │                                             ▼
//!                                            ▼ counts                      recorder thread (blocking):
//!                                         Counters ──read──▶ ticker        the state store's only
//!                                         (atomics)          (task: bar    writer; a batch, one
//!                                                             or lines)    transaction, then the acks
//!
//!  reporter (task; Reporter on a blocking thread): the results CSV
//!  from its own read of the store, every few seconds, and once at the end
//! ```
//!
//! - **① `shutdown`**, made by the command's `Signals` and cancelled only
//!   by the signal watcher, on the first signal (the second exits the
//!   process at once; the state store is consistent at every commit).
//! - **② `stop`** = ①'s child, made by [`Session::send_planned`]: also
//!   cancelled by the feeder when the manifest cannot be read again (it
//!   changed under the run), so the pool stops; the run then returns the
//!   feeder's error.
//! - **③ the pool's token** = ②'s child: also cancelled by a worker that
//!   finds the run cannot go on ([`pool::StopReason`]: a refused key, an
//!   unavailable API, a state write that failed, a redirect). Once it is
//!   cancelled no request starts, in-flight ones finish, and every wait (a
//!   429 pause, the limiter, a backoff, the Backlog) ends at once. When the
//!   pool ends after ② was cancelled, its stop is `Cancelled` unless a
//!   worker's reason came first.
//!
//! No token reaches the feeder or the recorder: the feeder stops when the
//! pool drops the Backlog (the channel's receiving end) and its next send
//! fails; the recorder thread ends when the last `Recorder` (held by the
//! pool) is dropped, and says what it could not write. The ticker is
//! aborted when the pool has returned (`Progress::finish`), and the signal
//! watcher when the command drops its `Signals`.

pub mod budget;
pub mod counters;
pub mod error;
pub mod feeder;
pub mod plan;
pub mod pool;
pub mod progress;
pub mod report;
pub mod session;

use tokio_util::sync::CancellationToken;

use crate::files::manifest::Manifest;
use crate::settings::Config;
use error::RunError;
use report::RunReport;
use session::Session;

/// Runs a validated manifest under `config` until done or `shutdown`,
/// with no balance check (the command's is in `crate::program`).
///
/// # Errors
/// See [`Session::open`] and [`Session::send_planned`].
pub async fn submit_manifest(
    manifest: &Manifest,
    config: &Config,
    shutdown: CancellationToken,
) -> Result<RunReport, RunError> {
    Session::open(manifest, config)?
        .send_planned(manifest, config, shutdown, None)
        .await
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::plan::{Plan, merge};
    use super::session::Session;
    use super::*;
    use crate::files::results::{self, Record, Status};
    use crate::files::state::{self, State};
    use crate::settings::{RetryPolicy, RunSettings};
    use crate::util::redact::Secret;

    /// A CSV manifest of `ids`, each with a prompt naming it (and `edit`).
    fn manifest(dir: &Path, ids: &[&str], edit: &str) -> Manifest {
        let mut text = String::from("id,prompt\n");
        for id in ids {
            text.push_str(&format!("{id},\"a song called {id}{edit}, with rain\"\n"));
        }
        let path = dir.join("jobs.csv");
        std::fs::write(&path, text).unwrap();
        crate::files::manifest::load(&path).unwrap()
    }

    fn config(m: &Manifest, retry: RetryPolicy, max_jobs: Option<usize>) -> Config {
        Config::new(RunSettings::default(), Secret::new("k"), &m.path, retry)
            .unwrap()
            .max_jobs(max_jobs)
            .build()
    }

    /// Results rows for the manifest's jobs with these statuses, in order.
    fn rows(m: &Manifest, statuses: &[Status]) -> Vec<Record> {
        m.collect_jobs()
            .unwrap()
            .iter()
            .zip(statuses)
            .map(|(job, &status)| Record {
                status,
                task_id: format!("t-{}", job.key),
                ..Record::pending(job)
            })
            .collect()
    }

    /// A store built from `rows` as a results file of the previous
    /// release, then merged with `m`, as a run leaves it.
    fn stored(m: &Manifest, config: &Config, rows: &[Record]) {
        let _ = std::fs::remove_file(state::path_for(&config.results));
        results::write_atomic(&config.results, rows).unwrap();
        let mut state = State::open(&config.results).unwrap();
        merge(m, &mut state, |_, _, _| ()).unwrap();
    }

    /// The plan the full merge makes (read-only): what the fast path must
    /// agree with.
    fn merged(m: &Manifest, config: &Config) -> Plan {
        let mut state = State::open_read_only(&config.results).unwrap();
        let mut plan = Plan::default();
        plan.changed = merge(m, &mut state, |i, job, record| {
            plan.consider(i, job, record, config, false)
        })
        .unwrap();
        plan
    }

    fn fast(m: &Manifest, config: &Config) -> Option<Plan> {
        let state = State::open_read_only(&config.results).unwrap();
        Plan::from_state(m, &state, config).unwrap()
    }

    fn same(a: &Plan, b: &Plan) -> bool {
        (&a.todo, a.skipped, &a.totals, &a.warnings) == (&b.todo, b.skipped, &b.totals, &b.warnings)
    }

    #[test]
    fn a_store_that_matches_is_planned_without_the_manifest() {
        use Status::*;
        let dir = tempfile::tempdir().unwrap();
        let m = manifest(dir.path(), &["a", "b", "c", "d", "e", "f"], "");
        let statuses = [Submitted, Pending, Failed, Unknown, Submitted, Pending];
        for (retry, max_jobs) in [
            (RetryPolicy::default(), None),
            (
                RetryPolicy {
                    failed: true,
                    unknown: true,
                    ..RetryPolicy::default()
                },
                Some(2),
            ),
        ] {
            let config = config(&m, retry, max_jobs);
            stored(&m, &config, &rows(&m, &statuses));
            let fast = fast(&m, &config).expect("the store matches");
            assert!(same(&fast, &merged(&m, &config)), "{fast:?}");
            assert!(!fast.changed);
        }
    }

    #[test]
    fn the_jobs_to_send_are_kept_from_the_merge_while_they_fit() {
        use Status::*;
        let dir = tempfile::tempdir().unwrap();
        let m = manifest(dir.path(), &["a", "b", "c", "d"], "");
        let config = config(&m, RetryPolicy::default(), Some(2));
        results::write_atomic(
            &config.results,
            &rows(&m, &[Submitted, Pending, Pending, Pending]),
        )
        .unwrap();
        let mut session = Session::open(&m, &config).unwrap();
        let held = session.plan.take_held().expect("four small jobs fit");
        let keys: Vec<&str> = held.iter().map(|j| j.key.as_str()).collect();
        assert_eq!(keys, ["b", "c"], "the todo list's jobs, max_jobs applied");
        drop(session);

        // One job over the budget: none are kept, the run reads them again.
        // (A fresh store, so the merge runs again.)
        std::fs::remove_file(state::path_for(&config.results)).unwrap();
        let first = m.collect_jobs().unwrap()[1].footprint();
        let tight = Config {
            hold_budget: first,
            ..config.clone()
        };
        let mut session = Session::open(&m, &tight).unwrap();
        assert_eq!(session.plan.todo.len(), 2);
        assert!(session.plan.take_held().is_none());
        assert!(session.plan.held.is_none(), "the kept jobs were let go");
    }

    #[test]
    fn anything_but_an_exact_match_takes_the_full_merge() {
        use Status::*;
        let dir = tempfile::tempdir().unwrap();
        let ids = ["a", "b", "c"];
        let m = manifest(dir.path(), &ids, "");
        let config = config(&m, RetryPolicy::default(), None);
        let done = rows(&m, &[Submitted; 3]);
        stored(&m, &config, &done);
        assert!(fast(&m, &config).is_some());
        let other = |ids: &[&str], edit: &str, why: &str| {
            let sub = tempfile::tempdir().unwrap();
            let edited = manifest(sub.path(), ids, edit);
            assert!(fast(&edited, &config).is_none(), "{why}");
        };
        other(&["a", "b"], "", "a job without a manifest row (an orphan)");
        other(&["a", "b", "c", "d"], "", "a job without a row");
        other(&["b", "a", "c"], "", "rows in another order");

        // An edit under the same id: warned about, as by the full merge.
        let edited = manifest(dir.path(), &ids, " (remix)");
        assert!(fast(&edited, &config).is_none());
        let plan = Plan::read(&edited, &config).unwrap();
        assert_eq!(plan.warnings.len(), 3, "{:?}", plan.warnings);
        assert!(plan.todo.is_empty());

        // A job a killed run left `sending`: the full merge settles it.
        let mut sending = done.clone();
        sending[1].status = Sending;
        stored(&m, &config, &done);
        let mut state = State::open(&config.results).unwrap();
        state.record(&[&sending[1]]).unwrap();
        assert!(
            Plan::from_state(&m, &state, &config).unwrap().is_none(),
            "a crash's sending row is settled by the merge"
        );
    }
}
