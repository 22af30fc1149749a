//! What `collect` and `receive` both start from: the results file's
//! submitted tasks, and the catalog opened for one writer (its lock, its
//! layout read back or compacted, a first write, and the writer task).
//!
//! It is its own module so that the receiver uses this small surface, not
//! the collect run's internals, and so the opening sequence (lock, load,
//! store, write, flusher) exists once.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::files::catalog::{self, CatalogError, SharedCatalog};
use crate::files::results::{Lock, Ranks, Record, Status};

/// A task to collect: the job key, the task ID and the submission time
/// from the results file.
#[derive(Debug, Clone)]
pub struct Task {
    pub key: String,
    pub task_id: String,
    /// `submitted_at`, when it reads as RFC 3339; the poll schedule places
    /// the task by it.
    pub submitted_at: Option<DateTime<Utc>>,
    /// Where the job sorts (its first row in the results file).
    pub rank: u32,
}

impl Task {
    /// A task with no known submission time.
    pub fn new(key: impl Into<String>, task_id: impl Into<String>) -> Task {
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
            key: record.id.clone(),
            task_id: record.task_id.clone(),
            submitted_at: submission_time(&record.submitted_at),
            rank,
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

/// The catalog held by this process: its lock (released on drop) and the
/// shared rows.
pub struct OpenCatalog {
    pub store: Arc<SharedCatalog>,
    _lock: Lock,
}

impl OpenCatalog {
    /// Locks the catalog at `path` and opens it with the places of
    /// `ranks()` (the results file's), which is called once the lock is
    /// held: the receiver reads the results file only then, as it always
    /// did. Opening reads the file's layout, compacts it if needed and
    /// proves it writable, so a catalog that cannot be written is found
    /// before any request ([`SharedCatalog::open`]).
    ///
    /// # Errors
    /// The catalog locked by another process, unreadable, not a catalog,
    /// or unwritable.
    pub fn open(path: &Path, ranks: impl FnOnce() -> Ranks) -> Result<OpenCatalog, CatalogError> {
        let lock = Lock::acquire(path)?;
        let store = SharedCatalog::open(path, Arc::new(ranks()))?;
        Ok(OpenCatalog { store, _lock: lock })
    }

    /// Starts the one writer of the file ([`catalog::flusher`]); it
    /// appends a last time, compacts the file and ends when `stop` is
    /// cancelled.
    pub fn start_writer(&self, stop: CancellationToken) -> Writer {
        Writer {
            handle: catalog::flusher(Arc::clone(&self.store), stop.clone()),
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

/// What a collect run counts of each task as it lets go of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Submitted tasks in the results file.
    pub tasks: usize,
    /// Tasks whose clips are all complete or failed.
    pub tasks_finished: usize,
    pub clips_complete: usize,
    pub clips_failed: usize,
    pub clips_pending: usize,
    /// Complete clips without a downloaded file (with `--download`).
    pub files_missing: usize,
}

impl Counts {
    /// Counts one task from its current rows.
    pub fn add(&mut self, task_id: &str, rows: &[crate::files::catalog::Row], downloading: bool) {
        use crate::api::feed::ClipStatus;
        self.tasks += 1;
        let job = crate::files::catalog::JobRows::new(rows.to_vec());
        if !rows.is_empty() && job.finished(task_id) {
            self.tasks_finished += 1;
        }
        for row in job.of_task(task_id) {
            match row.status() {
                ClipStatus::Complete => {
                    self.clips_complete += 1;
                    if downloading && row.file.is_empty() {
                        self.files_missing += 1;
                    }
                }
                ClipStatus::Failed => self.clips_failed += 1,
                _ => self.clips_pending += 1,
            }
        }
    }
}

/// A job kept in memory for a collect run while anyone works on it (the
/// poller, its downloads): shared by them, and when the last lets go, the
/// task is counted and the job leaves memory (and its window place).
pub struct Hold {
    pub store: Arc<SharedCatalog>,
    pub key: String,
    pub task_id: String,
    /// The job's place in the manifest, from 1 (a compacted results file
    /// lists one row a job, in manifest order: its place is its row).
    pub track: u32,
    counts: Arc<std::sync::Mutex<Counts>>,
    downloading: bool,
    /// Clip indexes sent to the downloader (each clip once per run).
    queued: std::sync::Mutex<u64>,
    _place: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Hold {
    pub fn new(
        store: Arc<SharedCatalog>,
        task: &Task,
        counts: Arc<std::sync::Mutex<Counts>>,
        downloading: bool,
        place: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Hold {
        Hold {
            store,
            key: task.key.clone(),
            task_id: task.task_id.clone(),
            track: task.rank.saturating_add(1),
            counts,
            downloading,
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

impl Drop for Hold {
    fn drop(&mut self) {
        let rows = self.store.rows_of(&self.key).unwrap_or_default();
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).add(
            &self.task_id,
            &rows,
            self.downloading,
        );
        self.store.release(&self.key);
    }
}
