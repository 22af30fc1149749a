//! What `collect` and `receive` both start from: the results file's
//! submitted tasks, and the catalog opened for one collector (its locks,
//! the store brought up to date, an earlier release's catalog imported)
//! with its writer task.
//!
//! It is its own module so that the receiver uses this small surface, not
//! the collect run's internals, and so the opening sequence (lock, import,
//! writer) exists once.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::files::catalog::CatalogError;
use crate::files::results::{Record, Status};
use crate::files::state::{self, AccountTasks, Catalog, JobClips, TakeCounts};
use crate::files::status::Expiring;
use crate::job::JobKey;

/// A task to collect: the job key, the task ID and the submission time
/// from the results file.
#[derive(Debug, Clone)]
pub struct Task {
    pub key: JobKey,
    pub task_id: String,
    /// `submitted_at`, when it reads as RFC 3339; the poll schedule places
    /// the task by it.
    pub submitted_at: Option<DateTime<Utc>>,
    /// The job's place in the reports (0, 1, …).
    pub rank: u32,
}

impl Task {
    /// A task with no known submission time.
    pub fn new(key: impl Into<JobKey>, task_id: impl Into<String>) -> Task {
        Task {
            key: key.into(),
            task_id: task_id.into(),
            submitted_at: None,
            rank: 0,
        }
    }

    /// The task of a results row, if it is a submitted one.
    pub fn of(rank: u32, record: &Record) -> Option<Task> {
        (record.status == Status::Submitted && !record.task_id.is_empty()).then(|| Task {
            key: record.key.clone(),
            task_id: record.task_id.clone(),
            submitted_at: submission_time(&record.submitted_at),
            rank,
        })
    }

    /// The task of a job of the store, if it is a submitted one.
    pub fn of_job(job: &JobClips) -> Option<Task> {
        (job.status == Status::Submitted && !job.task_id.is_empty()).then(|| Task {
            key: job.key.clone(),
            task_id: job.task_id.clone(),
            submitted_at: submission_time(&job.submitted_at),
            rank: job.place,
        })
    }

    /// Time since submission at `now`: zero when unknown or in the future
    /// (a clock that moved back must not make a task look old).
    pub fn age(&self, now: DateTime<Utc>) -> Duration {
        self.submitted_at
            .and_then(|at| (now - at).to_std().ok())
            .unwrap_or(Duration::ZERO)
    }
}

/// `submitted_at` as written (RFC 3339); `None` when empty or unreadable.
fn submission_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The catalog held by this process (its locks go when it drops).
pub struct OpenCatalog {
    pub store: Arc<Catalog>,
}

impl OpenCatalog {
    /// Opens the catalog of the results file at `results`, reported at
    /// `catalog`, for this collector ([`Catalog::open`]): a store or report
    /// that cannot be written is found before any request.
    ///
    /// # Errors
    /// The catalog held by another collector, unreadable, not a catalog,
    /// or unwritable.
    pub fn open(results: &Path, catalog: &Path) -> Result<OpenCatalog, CatalogError> {
        Ok(OpenCatalog {
            store: Catalog::open(results, catalog)?,
        })
    }

    /// Starts the one writer of the clips and the report
    /// ([`state::flusher`]); it commits a last time, writes the report and
    /// ends when `stop` is cancelled, and cancels `failed` if it cannot
    /// write.
    pub fn start_writer(&self, stop: CancellationToken, failed: CancellationToken) -> Writer {
        Writer {
            handle: state::flusher(Arc::clone(&self.store), stop.clone(), failed),
            stop,
        }
    }
}

/// The running catalog writer.
pub struct Writer {
    stop: CancellationToken,
    handle: JoinHandle<Result<(), CatalogError>>,
}

impl Writer {
    /// Cancels its `stop` (if not already) and waits for the last write.
    ///
    /// # Errors
    /// The last write's error, or [`CatalogError::Writer`] if the task
    /// itself failed.
    pub async fn finish(self) -> Result<(), CatalogError> {
        self.stop.cancel();
        self.handle
            .await
            .map_err(|e| CatalogError::Writer(e.to_string()))?
    }
}

/// What a collect run ends with, counted from the store after its last
/// commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Submitted tasks.
    pub tasks: usize,
    /// Tasks whose clips are all complete or failed.
    pub tasks_finished: usize,
    pub clips_complete: usize,
    pub clips_failed: usize,
    pub clips_pending: usize,
    /// Complete clips without a downloaded file (with `--download`).
    pub files_missing: usize,
    /// Pending clips by the reason they wait, when batchgen knows one
    /// (most first); the rest of `clips_pending` are still being made.
    pub pending_reasons: Vec<(String, usize)>,
    /// Jobs whose songs the provider may delete before they are fetched.
    pub expiring: Expiring,
    /// The measured takes, by verdict.
    pub takes: TakeCounts,
    /// The submitted jobs' latest tasks by the account that made them.
    pub accounts: Vec<AccountTasks>,
}

impl Counts {
    /// The store's counts ([`Catalog::task_counts`]), taken in one pass;
    /// files missing only when `downloading`.
    ///
    /// # Errors
    /// The store unreadable.
    pub fn of(store: &Catalog, downloading: bool) -> Result<Counts, CatalogError> {
        let cutoff = Expiring::cutoff(chrono::Utc::now());
        let n = store.task_counts(downloading, &cutoff)?;
        let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        Ok(Counts {
            tasks: size(n.tasks),
            tasks_finished: size(n.finished),
            clips_complete: size(n.complete),
            clips_failed: size(n.failed),
            clips_pending: size(n.pending),
            files_missing: if downloading { size(n.unfiled) } else { 0 },
            pending_reasons: n
                .pending_reasons
                .into_iter()
                .map(|(why, count)| (why, size(count)))
                .collect(),
            expiring: Expiring::from(n.unfetched),
            takes: n.takes,
            accounts: n.accounts,
        })
    }
}

/// A job a collect run works on (the poller, its downloads): shared by
/// them, and when the last lets go, its place in the window is free.
pub struct Hold {
    pub store: Arc<Catalog>,
    pub key: JobKey,
    pub task_id: String,
    /// The job's place in the manifest, from 1 (the reports list one row a
    /// job, in manifest order: its place is its row).
    pub track: u32,
    /// Clip indexes sent to the downloader (each clip once per run).
    queued: std::sync::Mutex<u64>,
    _place: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Hold {
    pub fn new(
        store: Arc<Catalog>,
        task: &Task,
        place: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Hold {
        Hold {
            store,
            key: task.key.clone(),
            task_id: task.task_id.clone(),
            track: task.rank.saturating_add(1),
            queued: std::sync::Mutex::new(0),
            _place: place,
        }
    }

    /// Marks clip `index` queued; false if it already was.
    pub fn queue(&self, index: u32) -> bool {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        let bit = 1u64 << index.min(63);
        let fresh = *queued & bit == 0;
        *queued |= bit;
        fresh
    }
}
