//! Building the store from a results file: the first run after an upgrade
//! (a results CSV written by an earlier batchgen, journal rows and damage
//! included), or a run after the store was deleted (the report it left).
//!
//! The results file's damage rules apply unchanged
//! ([`crate::files::results`]'s module docs): every row is read in file
//! order and the latest row of each job wins, a row that names a job but
//! is damaged makes it `unknown` (remembering the line, since such a row
//! for a job no longer in the manifest stops the run: [`super::Merge::orphans`]),
//! a line that names no job stops the import (nothing is kept). Every task
//! ID any row gave a job joins its tasks, so none is dropped.

use std::path::Path;

use rusqlite::{Connection, params};

use super::sql::{INSERT_TASK, UPSERT_JOB, job_params, sql_error};
use crate::files::results::{self, ResultsError, Status};

/// Imports the results file at `results` (none: nothing) into `tx`.
///
/// # Errors
/// What reading the results file refuses (a foreign file, a line that
/// names no job), or the store cannot be written.
pub(super) fn from_results(
    tx: &Connection,
    results: &Path,
    store: &Path,
) -> Result<(), ResultsError> {
    let err = |e| sql_error(store, e);
    let mut job = tx.prepare_cached(UPSERT_JOB).map_err(err)?;
    let mut task = tx.prepare_cached(INSERT_TASK).map_err(err)?;
    let mut damaged = tx
        .prepare_cached("UPDATE jobs SET damaged_line = ?2 WHERE key = ?1")
        .map_err(err)?;
    let mut failed = None;
    results::each_row(results, |record, damaged_line, task_ids| {
        let r = record.settled();
        let done = job
            .execute(job_params(&r, &None))
            .and_then(|_| match damaged_line {
                Some(line) => damaged.execute(params![r.key, line]).map(drop),
                None => Ok(()),
            })
            .and_then(|()| {
                for earlier in task_ids.iter().filter(|t| **t != r.task_id) {
                    task.execute(params![r.key, earlier, 0, "", "", "", ""])?;
                }
                if r.task_id.is_empty() {
                    return Ok(());
                }
                let attempt = if r.status == Status::Submitted {
                    r.attempts
                } else {
                    0
                };
                task.execute(params![
                    r.key,
                    r.task_id,
                    attempt,
                    r.submitted_at,
                    "",
                    "",
                    ""
                ])
                .map(drop)
            });
        match done {
            Ok(()) => std::ops::ControlFlow::Continue(()),
            Err(e) => {
                failed = Some(e);
                std::ops::ControlFlow::Break(())
            }
        }
    })?;
    match failed {
        Some(e) => Err(err(e)),
        None => Ok(()),
    }
}
