//! What `collect` and `receive` both start from: the results file's
//! submitted tasks, and the catalog opened for one writer (its lock, the
//! rows read back, a first write, and the writer task).
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

use crate::files::catalog::{self, Catalog, CatalogError, SharedCatalog};
use crate::files::results::{Lock, Record, Status};

/// A task to collect: the job key, the task ID and the submission time
/// from the results file.
#[derive(Debug, Clone)]
pub struct Task {
    pub key: String,
    pub task_id: String,
    /// `submitted_at`, when it reads as RFC 3339; the poll schedule places
    /// the task by it.
    pub submitted_at: Option<DateTime<Utc>>,
}

impl Task {
    /// A task with no known submission time.
    pub fn new(key: impl Into<String>, task_id: impl Into<String>) -> Task {
        Task {
            key: key.into(),
            task_id: task_id.into(),
            submitted_at: None,
        }
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

/// The submitted rows of the results file (latest row per id) as tasks,
/// in results order; rows without a task ID are not tasks.
pub fn submitted(records: &[Record]) -> Vec<Task> {
    records
        .iter()
        .filter(|r| r.status == Status::Submitted && !r.task_id.is_empty())
        .map(|r| Task {
            key: r.id.clone(),
            task_id: r.task_id.clone(),
            submitted_at: submission_time(&r.submitted_at),
        })
        .collect()
}

/// The catalog held by this process: its lock (released on drop) and the
/// shared rows.
pub struct OpenCatalog {
    pub store: Arc<SharedCatalog>,
    _lock: Lock,
}

impl OpenCatalog {
    /// Locks the catalog at `path`, reads it back in the order of `keys()`
    /// (the results file's job keys), and writes it once, so a catalog
    /// that cannot be written is found before any request. `keys` is
    /// called once the lock is held: the receiver reads the results file
    /// only then, as it always did.
    ///
    /// # Errors
    /// The catalog locked by another process, unreadable, not a catalog,
    /// or unwritable.
    pub fn open(
        path: &Path,
        keys: impl FnOnce() -> Vec<String>,
    ) -> Result<OpenCatalog, CatalogError> {
        let lock = Lock::acquire(path)?;
        let keys = keys();
        let store = SharedCatalog::new(path.to_owned(), Catalog::load(path, &keys)?);
        store.flush()?;
        Ok(OpenCatalog { store, _lock: lock })
    }

    /// Starts the one writer of the file ([`catalog::flusher`]); it writes
    /// a last time and ends when `stop` is cancelled.
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
