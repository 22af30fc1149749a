//! One run, start to finish: lock the results file, merge what earlier runs
//! recorded, pick the rows to send, drive the pool, write the results, and
//! say what happened.
//!
//! Every step streams: the manifest's jobs and the results file's rows are
//! read one at a time ([`crate::files::manifest::Jobs`], [`Store`]), and what a run
//! keeps per row is the index of the rows it will send, plus, while they fit
//! in `Config::hold_budget` (8 MiB), those jobs themselves, so that sending
//! them does not read the manifest again. Merging is one pass
//! over the manifest that looks each job up in the store and writes the
//! compacted file as it goes; the same pass ends the run. A rerun whose
//! results file already says everything skips it: one read of the results
//! file, checked against the digest validation took ([`Plan::read`]).

pub mod pool;
pub mod progress;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::api::submit::Client;
use crate::engine::submit::progress::Progress;
use crate::files::manifest::Manifest;
use crate::files::results::{self, Compactor, Journal, Lock, Record, Status, Store};
use crate::job::{Job, JobsDigest};
use crate::program::exit::{Error, ExitCode};
use crate::settings::Config;
use pool::{Counters, PoolConfig, StopReason};

/// What a run did, for the summary line and the exit code.
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
    pub elapsed: Duration,
    pub stop: Option<StopReason>,
    /// Warnings worth a line each (e.g. a job edited under the same id).
    pub warnings: Vec<String>,
}

impl RunReport {
    pub fn exit_code(&self) -> ExitCode {
        match &self.stop {
            Some(StopReason::Refused { .. }) => ExitCode::Refused,
            Some(StopReason::Unavailable(_)) => ExitCode::Unavailable,
            Some(StopReason::Journal) => ExitCode::CantCreate,
            Some(StopReason::Cancelled) => ExitCode::Interrupted,
            Some(StopReason::Misdirected(_)) => ExitCode::Config,
            None if self.total(Status::Failed) + self.total(Status::Unknown) > 0 => {
                ExitCode::RowsFailed
            }
            None => ExitCode::Success,
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
    pub fn nothing_to_do(&self) -> bool {
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
        format!(
            "{} submitted, {} failed, {} unknown, {} skipped, {} pending · {} requests ({} retries, {} × 429) in {:.1}s, {:.2} req/s",
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

/// Warnings listed one by one before the rest are only counted.
const MAX_WARNINGS: usize = 20;

/// What a run would do, computed from the manifest and the results file.
#[derive(Debug, Default)]
pub struct Plan {
    /// Manifest positions of the jobs to send, in order.
    pub todo: Vec<u32>,
    /// Rows an earlier run settled that this one leaves alone.
    pub skipped: u64,
    pub warnings: Vec<String>,
    /// Status of every manifest row before this run, by status.
    pub totals: BTreeMap<&'static str, u64>,
    /// Whether the results file needs rewriting to match the manifest.
    pub changed: bool,
    /// The jobs to send, in `todo` order, and the bytes they take: kept
    /// from the pass that chose them while they fit in
    /// `Config::hold_budget` (see [`crate::settings::DEFAULT_HOLD_BUDGET`] for
    /// why); `None` when not being kept.
    held: Option<(Vec<Job>, usize)>,
}

impl Plan {
    /// The plan without writing anything (`--dry-run`).
    ///
    /// # Errors
    /// When the results file exists but cannot be read or is not ours.
    pub fn read(manifest: &Manifest, config: &Config) -> Result<Plan, Error> {
        if let Some(plan) = Plan::from_results(manifest, config) {
            return Ok(plan);
        }
        let mut store = Store::open(&config.results)?;
        let mut plan = Plan::default();
        plan.changed = merge(manifest, &mut store, None, |i, job, record| {
            plan.consider(i, job, record, config)
        })?;
        Ok(plan)
    }

    /// The plan from the results file alone, when its rows are exactly the
    /// manifest's jobs: one row per job, in manifest order, each with the
    /// job's key, line and fingerprint (the manifest's digest says so), none
    /// left `sending`. [`merge`] would then pair job `i` with row `i` and
    /// change nothing, so the manifest need not be read a second time: the
    /// hourly rerun of a finished manifest costs its validation and one
    /// read of the results file. `None` for anything else (a new, edited or
    /// moved row, a crash's `sending` row, journal rows, a foreign file):
    /// the full merge decides, and reports.
    fn from_results(manifest: &Manifest, config: &Config) -> Option<Plan> {
        let mut plan = Plan::default();
        let mut digest = JobsDigest::default();
        let complete = Store::scan(&config.results, |row| {
            if row.status == Status::Sending || digest.count() == manifest.summary.jobs {
                return false;
            }
            let i = usize::try_from(digest.count()).unwrap_or(usize::MAX);
            digest.add(row.id, row.line, row.fingerprint);
            plan.count(i, row.status, config);
            true
        });
        let same = complete
            && digest.count() == manifest.summary.jobs
            && digest.finish() == *manifest.digest();
        same.then_some(plan)
    }

    fn consider(&mut self, i: usize, job: &Job, record: &Record, config: &Config) {
        let todo = self.todo.len();
        if let Some(warning) = content_change(job, record) {
            if self.warnings.len() < MAX_WARNINGS {
                self.warnings.push(warning);
            } else if self.warnings.len() == MAX_WARNINGS {
                self.warnings
                    .push("… more jobs changed under the same id".into());
            }
        }
        self.count(i, record.status, config);
        if self.todo.len() > todo {
            self.hold(job, config.hold_budget);
        }
    }

    /// Keeps a job to send, while the jobs kept fit in `budget` bytes;
    /// past it, lets them all go.
    fn hold(&mut self, job: &Job, budget: usize) {
        let Some((jobs, bytes)) = self.held.as_mut() else {
            return;
        };
        *bytes += job.footprint();
        if *bytes > budget {
            self.held = None;
        } else {
            jobs.push(job.clone());
        }
    }

    /// The jobs to send, if all of them were kept.
    fn take_held(&mut self) -> Option<Vec<Job>> {
        let (jobs, _) = self.held.take()?;
        (jobs.len() == self.todo.len()).then_some(jobs)
    }

    /// Counts job `i`, whose row before this run has `status` (settled),
    /// and decides whether this run sends it.
    fn count(&mut self, i: usize, status: Status, config: &Config) {
        *self.totals.entry(status.as_str()).or_default() += 1;
        let wanted = match status {
            Status::Pending | Status::Sending => true,
            Status::Failed => config.retry.failed,
            Status::Unknown => config.retry.unknown,
            Status::Submitted => false,
        };
        if !wanted {
            self.skipped += 1;
        } else if self.todo.len() < config.max_jobs.unwrap_or(usize::MAX) {
            self.todo
                .push(u32::try_from(i).expect("fewer than 4 billion jobs"));
        }
    }
}

/// One pass over the manifest: each job with its row from `store` (or a
/// new `pending` row), written to `out` when given, then the rows of jobs
/// that left the manifest. `visit` sees every job and its row. Returns
/// whether the rows written differ from the file's: when they do not, the
/// file is already what a rewrite would produce.
fn merge(
    manifest: &Manifest,
    store: &mut Store,
    mut out: Option<&mut Compactor>,
    mut visit: impl FnMut(usize, &Job, &Record),
) -> Result<bool, Error> {
    // One row per job and nothing else: no journal rows, no orphans.
    let mut changed = store.len() != manifest.len();
    for (i, job) in manifest.jobs()?.enumerate() {
        let job = job?;
        let record = match store.get(&job.key)? {
            Some(stored) => {
                let mut r = stored.clone().settled();
                r.line = job.line;
                // An unsent job takes its current content; a sent one keeps
                // what was sent, so an edit can be noticed.
                if r.fingerprint.is_empty() || r.status == Status::Pending {
                    r.fingerprint.clone_from(&job.fingerprint);
                }
                changed |= r != stored;
                r
            }
            None => {
                changed = true;
                Record::pending(&job)
            }
        };
        visit(i, &job, &record);
        if let Some(out) = out.as_deref_mut() {
            out.write(&record)?;
        }
    }
    // Read even when nothing is written: a damaged row of a job no longer
    // in the manifest stops a dry run as it would stop the run.
    let orphans = store.orphans()?;
    if let Some(out) = out {
        for orphan in &orphans {
            out.write(orphan)?;
        }
    }
    Ok(changed)
}

/// A job whose `id` stayed but whose content changed since an earlier run
/// settled it: the earlier result is kept (its task exists and was paid
/// for) and the user is told how to get the new version.
fn content_change(job: &Job, r: &Record) -> Option<String> {
    let settled = matches!(
        r.status,
        Status::Submitted | Status::Unknown | Status::Failed
    );
    (settled && !r.fingerprint.is_empty() && r.fingerprint != job.fingerprint).then(|| {
        format!(
            "line {}: job {:?} changed since it was {} (task {}); keeping the earlier result — give it a new id to generate the new version",
            job.line,
            job.key,
            r.status.as_str(),
            if r.task_id.is_empty() { "none" } else { &r.task_id },
        )
    })
}

/// A run that holds the results file: locked, merged and rewritten, so it is
/// known to be writable before a single request (and credit) is spent.
pub struct Session {
    _lock: Lock,
    plan: Plan,
    started: Instant,
}

impl Session {
    /// # Errors
    /// [`Error::Locked`] when another run holds the file; [`Error::Results`]
    /// when it cannot be written.
    pub fn open(manifest: &Manifest, config: &Config) -> Result<Session, Error> {
        let started = Instant::now();
        if let Some(dir) = config
            .results
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|source| Error::Results {
                path: config.results.clone(),
                source,
            })?;
        }
        let lock = Lock::acquire(&config.results)?;
        // Read first: the hourly rerun with nothing new finds a file that
        // already says everything, and leaves it alone.
        let mut plan = if config.results.exists() {
            Plan::read(manifest, config)?
        } else {
            Plan {
                changed: true,
                ..Plan::default()
            }
        };
        if plan.changed || !plan.todo.is_empty() {
            let mut store = Store::open(&config.results)?;
            let mut out = Compactor::new(&config.results)?;
            plan = Plan {
                held: Some((Vec::new(), 0)),
                ..Plan::default()
            };
            merge(manifest, &mut store, Some(&mut out), |i, job, record| {
                plan.consider(i, job, record, config)
            })?;
            drop(store);
            out.finish()?;
        }
        Ok(Session {
            _lock: lock,
            plan,
            started,
        })
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Sends the planned rows until done or `shutdown`.
    ///
    /// # Errors
    /// Only what prevents recording results or building the client, or a
    /// manifest that changed under the run. Failed rows are in the report.
    pub async fn run(
        self,
        manifest: &Manifest,
        config: &Config,
        shutdown: CancellationToken,
    ) -> Result<RunReport, Error> {
        let Session {
            _lock,
            mut plan,
            started,
        } = self;
        let held = plan.take_held();
        let Plan {
            todo,
            skipped,
            warnings,
            totals,
            ..
        } = plan;
        if todo.is_empty() {
            let counters = Counters::default();
            return Ok(build_report(
                totals, &counters, skipped, started, None, warnings,
            ));
        }

        let client = Client::new(&config.base_url, config.api_key.clone(), config.timeout)?
            .with_generate_paths(&config.base_url, &config.generate);
        // Where this run's journal rows begin: the end of the compacted file.
        let journal_start = std::fs::metadata(&config.results).ok().map(|m| m.len());
        let journal = Journal::open(&config.results)?;
        let workers = config.concurrency.clamp(1, todo.len());
        let (recorder, recorder_task) =
            results::spawn(journal, results::GroupCommit::for_workers(workers));
        let counters = Arc::new(Counters::default());
        let progress = Progress::start(todo.len() as u64, counters.clone(), config.progress);
        // The feeder stops the pool if the manifest turns out to have
        // changed; the pool stops the feeder by dropping the queue.
        let stop = shutdown.child_token();
        let (queue, feed) = tokio::sync::mpsc::channel::<Vec<Job>>(2);
        let jobs = match held {
            Some(held) => Feed::Held(held),
            None => Feed::Manifest(manifest.jobs()?),
        };
        let callback = config.callback.clone();
        let feeder = {
            let stop = stop.clone();
            tokio::task::spawn_blocking(move || {
                let fed = feed_jobs(jobs, &todo, &queue, callback.as_ref());
                if fed.is_err() {
                    stop.cancel();
                }
                fed
            })
        };
        let pool_config = PoolConfig {
            concurrency: config.concurrency,
            rate: config.rate,
            burst: config.burst,
            max_attempts: config.max_attempts,
            retry_ambiguous: config.retry.ambiguous,
            give_up_after: config.give_up_after,
            earlier_task_ids: earlier_task_ids(&config.results),
        };
        let pool_stop =
            pool::run(pool_config, client, feed, recorder, counters.clone(), stop).await;
        progress.finish();
        let fed = feeder
            .await
            .map_err(|e| anyhow::anyhow!("the manifest reader failed: {e}"))?;
        let lost = recorder_task
            .await
            .map_err(|e| anyhow::anyhow!("the results writer failed: {e}"))?;

        // Compact again: the journal's rows folded into one row per job.
        let mut totals = BTreeMap::new();
        let compacted = Store::open_after_run(&config.results, journal_start)
            .map_err(Error::from)
            .and_then(|mut store| {
                let mut out = Compactor::new(&config.results)?;
                merge(manifest, &mut store, Some(&mut out), |_, _, record| {
                    *totals.entry(record.status.as_str()).or_default() += 1;
                })?;
                drop(store);
                Ok(out.finish()?)
            });
        if compacted.is_err() || lost.failure.is_some() {
            print_unrecorded(&lost.submitted);
        }
        if let Some(source) = lost.failure {
            return Err(Error::Results {
                path: config.results.clone(),
                source,
            });
        }
        compacted?;
        fed?;
        Ok(build_report(
            totals, &counters, skipped, started, pool_stop, warnings,
        ))
    }
}

/// Sends the planned jobs down the queue: the kept ones all at once, or,
/// reading the manifest again, in chunks of [`pool::CHUNK`]. Ends early
/// when the pool stops (the queue is closed).
fn feed_jobs(
    jobs: Feed,
    todo: &[u32],
    queue: &tokio::sync::mpsc::Sender<Vec<Job>>,
    callback: Option<&crate::settings::CallbackBase>,
) -> Result<(), crate::files::manifest::ManifestError> {
    let jobs = match jobs {
        Feed::Manifest(jobs) => jobs,
        Feed::Held(mut held) => {
            if let Some(callback) = callback {
                held.iter_mut().for_each(|job| callback.apply(job));
            }
            // All at once: the pool takes from one queue, and nothing
            // wakes this thread again.
            let _ = queue.blocking_send(held);
            return Ok(());
        }
    };
    let mut want = todo.iter().copied().peekable();
    let mut chunk = Vec::with_capacity(pool::CHUNK);
    for (i, job) in jobs.enumerate() {
        let mut job = job?;
        let Some(&next) = want.peek() else { break };
        if i as u64 != u64::from(next) {
            continue;
        }
        want.next();
        if let Some(callback) = callback {
            callback.apply(&mut job);
        }
        chunk.push(job);
        if chunk.len() == pool::CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(pool::CHUNK));
            if queue.blocking_send(full).is_err() {
                return Ok(());
            }
        }
    }
    if !chunk.is_empty() {
        // An error means the pool stopped: these stay `pending`.
        let _ = queue.blocking_send(chunk);
    }
    Ok(())
}

/// Where the feeder takes the jobs to send from.
enum Feed {
    /// The jobs the merge kept ([`Plan::take_held`]), `todo` exactly.
    Held(Vec<Job>),
    /// The manifest, read again; `todo` picks the jobs.
    Manifest(crate::files::manifest::Jobs),
}

/// Runs a validated manifest under `config` until done or `shutdown`.
///
/// # Errors
/// See [`Session::open`] and [`Session::run`].
pub async fn run(
    manifest: &Manifest,
    config: &Config,
    shutdown: CancellationToken,
) -> Result<RunReport, Error> {
    Session::open(manifest, config)?
        .run(manifest, config, shutdown)
        .await
}

fn build_report(
    totals: BTreeMap<&'static str, u64>,
    counters: &Counters,
    skipped: u64,
    started: Instant,
    stop: Option<StopReason>,
    warnings: Vec<String>,
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
        elapsed: started.elapsed(),
        stop,
        warnings,
    }
}

/// Last resort when the disk refused: put task IDs where the user will see
/// them, so no accepted job is lost.
fn print_unrecorded(submitted: &[Record]) {
    if submitted.is_empty() {
        return;
    }
    eprintln!("batchgen: these accepted jobs could not be recorded (id,task_id):");
    for r in submitted {
        eprintln!("{},{}", r.id, r.task_id);
    }
}

/// The [`crate::job::key_hash`] of every task ID the results file holds as
/// `submitted`, sorted, so the pool can refuse an answer that repeats one
/// (a server, or a proxy in front of it, that hands out a task ID twice
/// would otherwise tie two jobs to one song). 8 bytes a submitted row,
/// read only when there is something to send. A file the scan cannot read
/// whole gives what it read up to there: the check is a guard, not the
/// plan.
fn earlier_task_ids(path: &std::path::Path) -> Vec<u64> {
    let mut hashes = Vec::new();
    results::Store::scan(path, |row| {
        if row.status == results::Status::Submitted && !row.task_id.is_empty() {
            // Checked as UTF-8 by the scan; the hash is of the server's text.
            let text = std::str::from_utf8(row.task_id).unwrap_or_default();
            let task_id = results::cell::unescape(text);
            hashes.push(crate::job::key_hash(task_id.as_bytes()));
        }
        true
    });
    hashes.sort_unstable();
    hashes.dedup();
    hashes
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
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

    /// The plan the full merge makes: what the fast path must agree with.
    fn merged(m: &Manifest, config: &Config) -> Plan {
        let mut store = Store::open(&config.results).unwrap();
        let mut plan = Plan::default();
        plan.changed = merge(m, &mut store, None, |i, job, record| {
            plan.consider(i, job, record, config)
        })
        .unwrap();
        plan
    }

    fn same(a: &Plan, b: &Plan) -> bool {
        (&a.todo, a.skipped, &a.totals, a.changed, &a.warnings)
            == (&b.todo, b.skipped, &b.totals, b.changed, &b.warnings)
    }

    #[test]
    fn a_results_file_that_matches_is_planned_without_the_manifest() {
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
            results::write_atomic(&config.results, &rows(&m, &statuses)).unwrap();
            let fast = Plan::from_results(&m, &config).expect("the file matches");
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
        let fall_back = |rows: &[Record], why: &str| {
            results::write_atomic(&config.results, rows).unwrap();
            assert!(Plan::from_results(&m, &config).is_none(), "{why}");
        };
        let mut sending = done.clone();
        sending[1].status = Sending;
        fall_back(&sending, "a crash's sending row is settled by a rewrite");
        let mut moved = done.clone();
        moved[2].line = 7;
        fall_back(&moved, "a row that moved in the manifest");
        let mut swapped = done.clone();
        swapped.swap(0, 1);
        fall_back(&swapped, "rows in another order");
        fall_back(&done[..2], "a job without a row");
        let mut orphan = done.clone();
        orphan.push(Record {
            id: "gone".into(),
            ..done[0].clone()
        });
        fall_back(&orphan, "a row of a job that left the manifest");
        let mut journal = done.clone();
        journal.push(done[2].clone());
        fall_back(&journal, "journal rows");

        // An edit under the same id: warned about, as by the full merge.
        results::write_atomic(&config.results, &done).unwrap();
        let edited = manifest(dir.path(), &ids, " (remix)");
        assert!(Plan::from_results(&edited, &config).is_none());
        let plan = Plan::read(&edited, &config).unwrap();
        assert_eq!(plan.warnings.len(), 3, "{:?}", plan.warnings);
        assert!(plan.todo.is_empty());

        // A torn last row (a crash mid-append).
        results::write_atomic(&config.results, &done).unwrap();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&config.results)
            .unwrap();
        std::io::Write::write_all(&mut file, b"a,2,,sen").unwrap();
        assert!(Plan::from_results(&m, &config).is_none());
    }
}
