//! The results report: the results CSV written whole from the store, from
//! a connection of its own, so it can run on any thread while a run
//! records.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;

use super::ReportLocks;
use super::sql::{RECORD_COLUMNS, connect, meta, read_record, sql_error};
use crate::files::results::{ReportWriter, ResultsError};

/// Writes the results report of one store (see the module docs of
/// [`super`]). Cheap to clone; each write opens its own connection.
#[derive(Clone)]
pub struct Reporter {
    store: PathBuf,
    results: PathBuf,
    locks: Arc<Mutex<ReportLocks>>,
    /// The state's count of its commits, and that count when the last
    /// report while recording was written.
    changes: Arc<AtomicU64>,
    reported: Arc<AtomicU64>,
}

impl Reporter {
    pub(super) fn new(
        store: PathBuf,
        results: PathBuf,
        locks: Arc<Mutex<ReportLocks>>,
        changes: Arc<AtomicU64>,
    ) -> Reporter {
        Reporter {
            store,
            results,
            locks,
            changes,
            reported: Arc::default(),
        }
    }

    /// While a run records: writes the report if the run committed
    /// anything since the last one (counted in memory, so the run's
    /// commits write nothing but their rows). The store stays marked out
    /// of date (by the run's first commit: [`super::State::record`]) until
    /// the run's last report ([`Reporter::write_if_stale`]).
    ///
    /// # Errors
    /// As [`Reporter::write_if_stale`].
    pub fn write_if_changed(&self) -> Result<(), ResultsError> {
        let now = self.changes.load(Ordering::Relaxed);
        if now == self.reported.load(Ordering::Relaxed) {
            return Ok(());
        }
        let err = |e| sql_error(&self.store, e);
        let mut conn = connect(&self.store, false)?;
        let snapshot = conn.transaction().map_err(err)?;
        self.write(&snapshot)?;
        self.reported.store(now, Ordering::Relaxed);
        Ok(())
    }

    /// Writes the report if the store changed since the last one was
    /// written: every job in its place, from one consistent snapshot,
    /// through a temporary file renamed over the old report.
    ///
    /// # Errors
    /// When the store cannot be read or the report written; the old
    /// report is then left as it was.
    pub fn write_if_stale(&self) -> Result<(), ResultsError> {
        let err = |e| sql_error(&self.store, e);
        let mut conn = connect(&self.store, false)?;
        let generation = {
            let snapshot = conn.transaction().map_err(err)?;
            let generation = meta(&snapshot, "generation").map_err(err)?;
            let reported = meta(&snapshot, "reported").map_err(err)?;
            if generation == reported && crate::files::results::is_current(&self.results) {
                return Ok(());
            }
            self.write(&snapshot)?;
            generation
        };
        // Only ever forward: a slower writer of an older snapshot must not
        // mark a newer one written.
        conn.execute(
            "UPDATE meta SET value = ?1 WHERE name = 'reported' AND CAST(value AS INTEGER) < CAST(?1 AS INTEGER)",
            [generation.unwrap_or_default()],
        )
        .map_err(err)?;
        Ok(())
    }

    /// Writes the report from `snapshot`, and holds the new file's inode
    /// (see the module docs of [`super`], "One owner").
    fn write(&self, snapshot: &Connection) -> Result<(), ResultsError> {
        let err = |e| sql_error(&self.store, e);
        let mut out = ReportWriter::new(&self.results)?;
        let mut stmt = snapshot
            .prepare(&format!(
                "SELECT {RECORD_COLUMNS}, \
                 (SELECT group_concat(task_id, ' ' ORDER BY seq) FROM tasks WHERE job_id = jobs.id) \
                 FROM jobs ORDER BY position, id"
            ))
            .map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            let record = read_record(row).map_err(err)?;
            let tasks: Option<String> = row.get(9).map_err(err)?;
            out.write_with_tasks(&record, tasks.as_deref().unwrap_or_default())?;
        }
        let held = out.hold()?;
        out.finish()?;
        self.locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .written = Some(held);
        Ok(())
    }
}
