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
