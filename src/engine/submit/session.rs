//! A run that holds the results file, from the lock to the last compaction:
//! it opens (lock, merge, rewrite, so the file is known to be writable
//! before a single request, and credit, is spent), then sends its plan
//! through the feeder and the pool and folds the journal back into one row
//! per job. The module docs of [`super`] draw the moving parts.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::counters::Counters;
use super::error::RunError;
use super::feeder::{self, JobSource};
use super::plan::{Plan, merge};
use super::pool::{self, PoolConfig, StopReason};
use super::progress::Progress;
use super::report::RunReport;
use crate::api::submit::Client;
use crate::files::manifest::Manifest;
use crate::files::results::{self, Compactor, Journal, Lock, Record, ResultsError, Status, Store};
use crate::job::Job;
use crate::settings::Config;

/// A run that holds the results file: locked, merged and rewritten, so it is
/// known to be writable before a single request (and credit) is spent.
pub struct Session {
    _lock: Lock,
    pub(super) plan: Plan,
    started: Instant,
}

impl Session {
    /// # Errors
    /// [`ResultsError::Locked`] when another run holds the file;
    /// [`ResultsError::Io`] when it cannot be written.
    pub fn open(manifest: &Manifest, config: &Config) -> Result<Session, RunError> {
        let started = Instant::now();
        let dir = crate::util::fsx::parent_dir(&config.results);
        std::fs::create_dir_all(dir).map_err(|source| ResultsError::Io {
            path: config.results.clone(),
            source,
        })?;
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
            plan = rewrite(manifest, config)?;
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

    /// Sends the planned rows until done or `shutdown`: the feeder, the
    /// recorder thread, the pool's workers and the progress ticker, drawn
    /// in [`super`]'s docs.
    ///
    /// # Errors
    /// Only what prevents recording results or building the client, or a
    /// manifest that changed under the run. Failed rows are in the report.
    pub async fn send_planned(
        self,
        manifest: &Manifest,
        config: &Config,
        shutdown: CancellationToken,
    ) -> Result<RunReport, RunError> {
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
        let (totals, counters, stop) = if todo.is_empty() {
            (totals, Arc::default(), None)
        } else {
            send(manifest, config, shutdown, todo, held).await?
        };
        Ok(RunReport::new(
            &totals,
            &counters,
            skipped,
            started,
            stop,
            warnings,
            config.results.clone(),
        ))
    }
}

/// What [`send`] leaves: the results file's totals after the run, this
/// run's counts, and why the pool stopped early, if it did.
type Sent = (
    BTreeMap<&'static str, u64>,
    Arc<Counters>,
    Option<StopReason>,
);

/// Sends the jobs at the manifest positions `todo` (`held`, when the plan
/// kept them) and folds the journal into the results file: the parts of
/// [`super`]'s diagram, started in order and awaited in order.
async fn send(
    manifest: &Manifest,
    config: &Config,
    shutdown: CancellationToken,
    todo: Vec<u32>,
    held: Option<Vec<Job>>,
) -> Result<Sent, RunError> {
    let client = Client::new(&config.base_url, config.api_key.clone(), config.timeout)?
        .with_provider(config.provider, &config.base_url)
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
    let (queue, chunks) = feeder::chunk_channel();
    let source = match held {
        Some(held) => JobSource::Held(held),
        None => JobSource::Manifest(manifest.jobs()?),
    };
    let feeder = feeder::spawn(source, todo, queue, config.callback.clone(), stop.clone());
    let pool_config = pool_config(config);
    let pool_stop = pool::submit_all(
        pool_config,
        client,
        chunks,
        recorder,
        counters.clone(),
        stop,
    )
    .await;
    progress.finish();
    let fed = feeder
        .await
        .map_err(|e| anyhow::anyhow!("the manifest reader failed: {e}"))?;
    let lost = recorder_task
        .await
        .map_err(|e| anyhow::anyhow!("the results writer failed: {e}"))?;

    let totals = fold_journal(
        manifest,
        config,
        journal_start,
        lost.failure,
        &lost.submitted,
    )?;
    fed?;
    Ok((totals, counters, pool_stop))
}

/// The merge that rewrites the results file before a run: every job's row
/// (a new one `pending`), in manifest order, the jobs to send kept while
/// they fit.
fn rewrite(manifest: &Manifest, config: &Config) -> Result<Plan, RunError> {
    let mut store = Store::open(&config.results)?;
    let mut out = Compactor::new(&config.results)?;
    let mut plan = Plan {
        held: Some((Vec::new(), 0)),
        ..Plan::default()
    };
    merge(manifest, &mut store, Some(&mut out), |i, job, record| {
        plan.consider(i, job, record, config)
    })?;
    drop(store);
    out.finish()?;
    Ok(plan)
}

/// The pool's slice of the settings, and the task IDs the results file
/// already holds.
fn pool_config(config: &Config) -> PoolConfig {
    PoolConfig {
        concurrency: config.concurrency,
        rate: config.rate,
        burst: config.burst,
        max_attempts: config.max_attempts,
        retry_ambiguous: config.retry.ambiguous,
        give_up_after: config.give_up_after,
        earlier_task_ids: earlier_task_ids(&config.results),
    }
}

/// Compacts again after the run: the journal's rows (from `journal_start`)
/// folded into one row per job. Returns the file's totals by status. When
/// the recorder could not write (`failure`) or the compaction fails, the
/// accepted jobs it could not record (`unrecorded`) are printed first.
fn fold_journal(
    manifest: &Manifest,
    config: &Config,
    journal_start: Option<u64>,
    failure: Option<std::io::Error>,
    unrecorded: &[Record],
) -> Result<BTreeMap<&'static str, u64>, RunError> {
    let mut totals = BTreeMap::new();
    let compacted = Store::open_after_run(&config.results, journal_start)
        .map_err(RunError::from)
        .and_then(|mut store| {
            let mut out = Compactor::new(&config.results)?;
            merge(manifest, &mut store, Some(&mut out), |_, _, record| {
                *totals.entry(record.status.as_str()).or_default() += 1;
            })?;
            drop(store);
            Ok(out.finish()?)
        });
    if compacted.is_err() || failure.is_some() {
        print_unrecorded(unrecorded);
    }
    if let Some(source) = failure {
        return Err(ResultsError::Io {
            path: config.results.clone(),
            source,
        }
        .into());
    }
    compacted?;
    Ok(totals)
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
fn earlier_task_ids(path: &Path) -> Vec<u64> {
    let mut hashes = Vec::new();
    Store::scan(path, |row| {
        if row.status == Status::Submitted && !row.task_id.is_empty() {
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
