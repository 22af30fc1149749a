//! One run, start to finish: lock the results file, merge what earlier runs
//! recorded, pick the rows to send, drive the pool, write the results, and
//! say what happened.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::config::Config;
use crate::error::{Error, ExitCode};
use crate::job::Job;
use crate::manifest::Manifest;
use crate::output::Progress;
use crate::pool::{self, Counters, PoolConfig, StopReason};
use crate::report::{self, Journal, Lock, Status, Table};

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

/// What a run would do, computed from the manifest and the results file
/// without writing anything (`--dry-run` prints it).
#[derive(Debug)]
pub struct Plan {
    pub table: Table,
    /// Indexes into the manifest's jobs, in order.
    pub todo: Vec<usize>,
    /// Rows an earlier run settled that this one leaves alone.
    pub skipped: u64,
    pub warnings: Vec<String>,
}

impl Plan {
    /// # Errors
    /// When the results file exists but cannot be read or is not ours.
    pub fn read(manifest: &Manifest, config: &Config) -> Result<Plan, Error> {
        let previous = report::read(&config.results)?;
        let table = Table::merge(&manifest.jobs, previous);
        let warnings = content_changes(&manifest.jobs, &table);
        let (todo, skipped) = select(&manifest.jobs, &table, config);
        Ok(Plan {
            table,
            todo,
            skipped,
            warnings,
        })
    }
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
        let plan = Plan::read(manifest, config)?;
        report::write_atomic(&config.results, &plan.table.rows)?;
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
    /// Only what prevents recording results or building the client. Failed
    /// rows are in the report, not errors.
    pub async fn run(
        self,
        manifest: &Manifest,
        config: &Config,
        shutdown: CancellationToken,
    ) -> Result<RunReport, Error> {
        let Session {
            _lock,
            plan,
            started,
        } = self;
        let Plan {
            table,
            todo,
            skipped,
            warnings,
        } = plan;
        if todo.is_empty() {
            let counters = Counters::default();
            return Ok(build_report(
                manifest, &table, &counters, skipped, started, None, warnings,
            ));
        }

        let client = Client::new(&config.base_url, config.api_key.clone(), config.timeout)?;
        let journal = Journal::open(&config.results)?;
        let (recorder, recorder_task) = report::spawn(journal, table);
        let counters = Arc::new(Counters::default());
        let progress = Progress::start(todo.len() as u64, counters.clone(), config.progress);
        let jobs: Arc<[Job]> = Arc::clone(&manifest.jobs);
        let pool_config = PoolConfig {
            concurrency: config.concurrency,
            rate: config.rate,
            burst: config.burst,
            max_attempts: config.max_attempts,
            retry_ambiguous: config.retry.ambiguous,
            give_up_after: config.give_up_after,
        };
        let stop = pool::run(
            pool_config,
            client,
            jobs,
            todo,
            recorder,
            counters.clone(),
            shutdown,
        )
        .await;
        progress.finish();

        let (table, failure) = recorder_task
            .await
            .map_err(|e| anyhow::anyhow!("the results writer failed: {e}"))?;
        // The compaction is a second chance for rows the journal could not take.
        let compacted = report::write_atomic(&config.results, &table.rows);
        if compacted.is_err() {
            print_unrecorded(&table);
        }
        if let Some(source) = failure {
            return Err(Error::Results {
                path: config.results.clone(),
                source,
            });
        }
        compacted?;
        Ok(build_report(
            manifest, &table, &counters, skipped, started, stop, warnings,
        ))
    }
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

/// Rows to send this run, in manifest order, and how many rows earlier
/// runs settled that this one leaves alone.
fn select(jobs: &[Job], table: &Table, config: &Config) -> (Vec<usize>, u64) {
    let mut todo = Vec::new();
    let mut skipped = 0;
    let limit = config.max_jobs.unwrap_or(usize::MAX);
    for (i, job) in jobs.iter().enumerate() {
        let status = table.get(&job.key).map_or(Status::Pending, |r| r.status);
        let wanted = match status {
            Status::Pending | Status::Sending => true,
            Status::Failed => config.retry.failed,
            Status::Unknown => config.retry.unknown,
            Status::Submitted => false,
        };
        if !wanted {
            skipped += 1;
        } else if todo.len() < limit {
            todo.push(i);
        }
    }
    (todo, skipped)
}

fn count(jobs: &[Job], table: &Table, status: Status) -> u64 {
    jobs.iter()
        .filter(|j| table.get(&j.key).is_some_and(|r| r.status == status))
        .count() as u64
}

/// A job whose `id` stayed but whose content changed since an earlier run
/// settled it: the earlier result is kept (its task exists and was paid
/// for) and the user is told how to get the new version.
fn content_changes(jobs: &[Job], table: &Table) -> Vec<String> {
    jobs.iter()
        .filter_map(|job| {
            let r = table.get(&job.key)?;
            let settled = matches!(r.status, Status::Submitted | Status::Unknown | Status::Failed);
            (settled && !r.fingerprint.is_empty() && r.fingerprint != job.fingerprint).then(|| {
                format!(
                    "line {}: job {:?} changed since it was {} (task {}); keeping the earlier result — give it a new id to generate the new version",
                    job.line,
                    job.key,
                    r.status.as_str(),
                    if r.task_id.is_empty() { "none" } else { &r.task_id },
                )
            })
        })
        .collect()
}

fn build_report(
    manifest: &Manifest,
    table: &Table,
    counters: &Counters,
    skipped: u64,
    started: Instant,
    stop: Option<StopReason>,
    warnings: Vec<String>,
) -> RunReport {
    let mut totals = BTreeMap::new();
    for status in [
        Status::Pending,
        Status::Submitted,
        Status::Failed,
        Status::Unknown,
    ] {
        totals.insert(status.as_str(), count(&manifest.jobs, table, status));
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
        totals,
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
fn print_unrecorded(table: &Table) {
    let submitted: Vec<_> = table
        .rows
        .iter()
        .filter(|r| r.status == Status::Submitted && !r.task_id.is_empty())
        .collect();
    if submitted.is_empty() {
        return;
    }
    eprintln!("batchgen: the results file could not be written; task IDs so far (id,task_id):");
    for r in submitted {
        eprintln!("{},{}", r.id, r.task_id);
    }
}
