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

use super::sql::{RECORD_COLUMNS, read_record, sql_error};
use crate::files::results::{Ranks, Record, ResultsError, Status};
use crate::job::key_hash;

/// A results file's jobs in their places, read from its store.
pub struct Snapshot {
    conn: Mutex<Connection>,
    store: PathBuf,
    ranks: Ranks,
    /// Jobs when it was opened (the ranks may be taken).
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
        let ranks = ranks(&conn, &store)?;
        Ok(Snapshot {
            conn: Mutex::new(conn),
            store,
            jobs: ranks.len(),
            ranks,
        })
    }

    /// Where each job sorts: its place in the results report.
    pub fn ranks(&self) -> &Ranks {
        &self.ranks
    }

    /// Takes the ranks (for a catalog that outlives this reader).
    pub fn take_ranks(&mut self) -> Ranks {
        std::mem::take(&mut self.ranks)
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

/// The places of the store's jobs, from their keys' hashes.
fn ranks(conn: &Connection, store: &Path) -> Result<Ranks, ResultsError> {
    let err = |e| sql_error(store, e);
    let mut stmt = conn
        .prepare("SELECT key FROM jobs ORDER BY position, id")
        .map_err(err)?;
    // Sized once: a vector grown by doubling holds twice a million jobs'
    // pairs at its last step, which is most of a collect run's peak.
    let jobs: usize = conn
        .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
        .map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    let mut pairs = Vec::with_capacity(jobs);
    while let Some(row) = rows.next().map_err(err)? {
        let key = row
            .get_ref(0)
            .map_err(err)?
            .as_bytes()
            .map_err(|e| err(e.into()))?;
        let place = u32::try_from(pairs.len()).unwrap_or(u32::MAX - 1);
        pairs.push((key_hash(key), place));
    }
    Ok(Ranks::from_pairs(&mut pairs))
}
