//! Reading the store while a run may be writing it: what `collect`,
//! `receive` and `status` read a results file's jobs through.
//!
//! A [`Snapshot`] reads the store through a read-only connection (WAL lets
//! it read while a run writes; each read is one consistent snapshot, and a
//! later read sees what the run committed since). Without a store (a
//! results file of an earlier batchgen that no run has upgraded yet), the
//! store is built from the results file first, by the rules a run imports
//! it with, or in memory when that cannot be written (see
//! `open_for_reading`).

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension};

use super::JobClips;
use super::sql::{RECORD_COLUMNS, meta, read_record, sql_error};
use crate::files::catalog::CatalogError;
use crate::files::results::{Record, ResultsError, Status};

/// A results file's jobs (and, when opened with its catalog, their clips),
/// read from its store.
pub struct Snapshot {
    conn: Mutex<Connection>,
    store: PathBuf,
    /// Jobs when it was opened.
    jobs: usize,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("store", &self.store)
            .field("jobs", &self.jobs)
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    /// Opens the store of `results` for reading (see the module docs); a
    /// results file with neither a store nor a report has no jobs.
    ///
    /// # Errors
    /// A store from a newer batchgen or not a store; a results file that
    /// cannot be imported (as a run would refuse it).
    pub fn open(results: &Path) -> Result<Snapshot, ResultsError> {
        let (conn, store) = super::open_for_reading(results, true)?;
        Snapshot::on(conn, store)
    }

    /// [`Snapshot::open`], with the clips of the catalog whose report is
    /// `catalog`: when the store has none yet and that file is an earlier
    /// release's catalog, it is imported first, as `collect` would import
    /// it (on disk when no collector holds it; else in memory, and nothing
    /// is written).
    ///
    /// # Errors
    /// As [`Snapshot::open`]; a catalog that is not one, or from a newer
    /// batchgen.
    pub fn open_with_catalog(results: &Path, catalog: &Path) -> Result<Snapshot, CatalogError> {
        let (conn, store) = super::open_for_reading(results, true)?;
        let imported = |conn: &Connection| {
            meta(conn, "catalog_imported")
                .map(|m| m.is_some())
                .map_err(|e| sql_error(&store, e))
        };
        if imported(&conn)? || !catalog.is_file() {
            return Ok(Snapshot::on(conn, store)?);
        }
        drop(conn);
        match super::Catalog::open(results, catalog) {
            Ok(opened) => drop(opened),
            Err(e @ CatalogError::Refused(_)) => return Err(e),
            Err(_) => {}
        }
        let (conn, store) = super::open_for_reading(results, true)?;
        if imported(&conn)? {
            return Ok(Snapshot::on(conn, store)?);
        }
        // Held by an earlier release's collector, or a folder that cannot
        // be written: the import is made in a copy, in memory.
        let err = |e| super::clips::catalog_error(&store, e);
        let mut copy = Connection::open_in_memory().map_err(err)?;
        rusqlite::backup::Backup::new(&conn, &mut copy)
            .and_then(|b| b.run_to_completion(256, std::time::Duration::ZERO, None))
            .map_err(err)?;
        drop(conn);
        let tx = copy.transaction().map_err(err)?;
        super::clips::import_once(&tx, catalog, &store, results)?;
        tx.commit().map_err(err)?;
        Ok(Snapshot::on(copy, store)?)
    }

    fn on(conn: Connection, store: PathBuf) -> Result<Snapshot, ResultsError> {
        let jobs = conn
            .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
            .map_err(|e| sql_error(&store, e))?;
        Ok(Snapshot {
            conn: Mutex::new(conn),
            store,
            jobs,
        })
    }

    /// Jobs when the snapshot was opened.
    pub fn jobs(&self) -> usize {
        self.jobs
    }

    /// Hands `visit` each job's row (as a rerun sees it:
    /// [`Record::settled`]) with its place, in the report's order, until
    /// `visit` breaks. One consistent read of the store as it is now.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn each(
        &self,
        mut visit: impl FnMut(u32, Record) -> ControlFlow<()>,
    ) -> Result<(), ResultsError> {
        let err = |e| sql_error(&self.store, e);
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {RECORD_COLUMNS} FROM jobs ORDER BY position, id"
            ))
            .map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        let mut place = 0u32;
        while let Some(row) = rows.next().map_err(err)? {
            let record = read_record(row).map_err(err)?.settled();
            if visit(place, record).is_break() {
                break;
            }
            place = place.saturating_add(1);
        }
        Ok(())
    }

    /// Hands `visit` every job with its clips, in the report's order, from
    /// one consistent read.
    ///
    /// # Errors
    /// The store unreadable, or what `visit` returns.
    pub fn each_job<E: From<CatalogError>>(
        &self,
        visit: impl FnMut(JobClips) -> Result<(), E>,
    ) -> Result<(), E> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        super::each_job_on(&conn, &self.store, visit)
    }

    /// Hands `visit` the jobs that did not end well (failed, unknown, or
    /// left `sending`) grouped by status and error: `(status, error,
    /// count)`, in no set order. The others are counted by
    /// [`Snapshot::job_briefs`].
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn job_failures(
        &self,
        mut visit: impl FnMut(Status, &str, u64),
    ) -> Result<(), CatalogError> {
        // Grouped here, not by SQL (which would sort every such job).
        let mut groups: HashMap<(String, String), u64> = HashMap::new();
        self.each_row(
            "SELECT status, error FROM jobs WHERE status IN ('failed', 'unknown', 'sending')",
            |row| {
                let status = row.get_ref(0)?.as_str()?;
                let error = row.get_ref(1)?.as_str()?;
                *groups
                    .entry((status.to_owned(), error.to_owned()))
                    .or_default() += 1;
                Ok(())
            },
        )?;
        for ((status, error), n) in &groups {
            visit(super::sql::status(status), error, *n);
        }
        Ok(())
    }

    /// Hands `visit` every job with its clips' statuses, in id order, and
    /// whether it is [`super::JobBrief::unfetched`] by `cutoff`: one pass
    /// over the jobs, the clips' narrow index and the audio files, side
    /// by side.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn job_briefs(
        &self,
        cutoff: &str,
        visit: impl FnMut(&super::JobBrief<'_>),
    ) -> Result<(), CatalogError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        super::clips::each_job_brief(&conn, false, Some(cutoff), visit)
            .map_err(|e| super::clips::catalog_error(&self.store, e))
    }

    /// The measured takes of each submitted job's latest task, by verdict.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn take_counts(&self) -> Result<super::TakeCounts, CatalogError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        super::TakeCounts::of(&conn).map_err(|e| super::clips::catalog_error(&self.store, e))
    }

    /// The submitted jobs' latest tasks by the account that made them.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn account_tasks(&self) -> Result<Vec<super::AccountTasks>, CatalogError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        super::AccountTasks::of(&conn).map_err(|e| super::clips::catalog_error(&self.store, e))
    }

    /// What the store's runs spent.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn spending(&self) -> Result<super::Spending, CatalogError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        super::Spending::of(&conn).map_err(|e| super::clips::catalog_error(&self.store, e))
    }

    /// Hands `visit` each clip that carries a message: `(status, error,
    /// whether an audio file is recorded for it)`.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn clip_messages(
        &self,
        mut visit: impl FnMut(&str, &str, bool),
    ) -> Result<(), CatalogError> {
        self.each_row(
            "SELECT c.status, c.error, EXISTS (SELECT 1 FROM files f WHERE f.job_id = c.job_id
                 AND f.task_id = c.task_id AND f.clip_id = c.clip_id AND f.kind = 'audio')
             FROM clips c WHERE c.error <> ''",
            |row| {
                visit(
                    row.get_ref(0)?.as_str()?,
                    row.get_ref(1)?.as_str()?,
                    row.get(2)?,
                );
                Ok(())
            },
        )
    }

    /// Hands `visit` each complete clip's recorded audio file: `(path,
    /// bytes, error)`.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn filed(
        &self,
        mut visit: impl FnMut(&str, Option<u64>, &str),
    ) -> Result<(), CatalogError> {
        // The files first: a catalog downloads fewer files than it has clips.
        self.each_row(
            "SELECT f.path, f.bytes, c.error FROM files f CROSS JOIN clips c
                 ON c.job_id = f.job_id AND c.task_id = f.task_id AND c.clip_id = f.clip_id
             WHERE f.kind = 'audio' AND c.status = 'complete'",
            |row| {
                visit(
                    row.get_ref(0)?.as_str()?,
                    row.get(1)?,
                    row.get_ref(2)?.as_str()?,
                );
                Ok(())
            },
        )
    }

    /// Runs `sql` and hands each row to `visit`.
    fn each_row(
        &self,
        sql: &str,
        mut visit: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<()>,
    ) -> Result<(), CatalogError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let err = |e| super::clips::catalog_error(&self.store, e);
        let mut stmt = conn.prepare(sql).map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            visit(row).map_err(err)?;
        }
        Ok(())
    }

    /// Whether the store holds any clip.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn has_clips(&self) -> Result<bool, CatalogError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        super::clips::any(&conn).map_err(|e| super::clips::catalog_error(&self.store, e))
    }

    /// The task ID of `key`, when its job is `submitted` now.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn task_of(&self, key: &str) -> Result<Option<String>, ResultsError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        conn.prepare_cached(
            "SELECT task_id FROM jobs WHERE key = ?1 AND status = ?2 AND task_id <> ''",
        )
        .and_then(|mut s| {
            s.query_row([key, Status::Submitted.as_str()], |r| r.get(0))
                .optional()
        })
        .map_err(|e| sql_error(&self.store, e))
    }
}
