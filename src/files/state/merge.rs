//! The merge: the one pass that pairs each manifest job with its row in
//! the store, in one transaction (see [`Merge`]).

use std::path::PathBuf;

use rusqlite::{OptionalExtension, params};

use super::sql::{RECORD_COLUMNS, UPSERT_JOB, bump, job_params, read_record, sql_error};
use crate::files::results::{Record, ResultsError};
use crate::job::JobsDigest;

/// The pass that pairs each manifest job with its row, in manifest order
/// ([`Merge::put`]), then finds the rows of jobs no longer in the manifest
/// ([`Merge::orphans`]). One transaction: kept by [`Merge::finish`] in a
/// writing state, dropped otherwise.
pub struct Merge<'a> {
    tx: rusqlite::Transaction<'a>,
    write: bool,
    store: PathBuf,
    results: PathBuf,
    position: i64,
    digest: JobsDigest,
    /// The row [`Merge::get`] last read, with its place, when it came from
    /// an undamaged line: a job put back unchanged at the same place is
    /// not written again (the hourly rerun of a manifest with one new job
    /// writes one row, not a million).
    last: Option<(i64, Record)>,
}

impl<'a> Merge<'a> {
    /// Starts a merge in a transaction of `conn`; `write` keeps it.
    pub(super) fn begin(
        conn: &'a mut rusqlite::Connection,
        write: bool,
        store: &std::path::Path,
        results: &std::path::Path,
    ) -> Result<Merge<'a>, ResultsError> {
        // A merge that writes takes the write lock before it reads (see
        // `Catalog::flush`).
        let behavior = if write {
            rusqlite::TransactionBehavior::Immediate
        } else {
            rusqlite::TransactionBehavior::Deferred
        };
        let tx = conn
            .transaction_with_behavior(behavior)
            .map_err(|e| sql_error(store, e))?;
        tx.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY) STRICT; DELETE FROM temp.seen;",
        )
        .map_err(|e| sql_error(store, e))?;
        Ok(Merge {
            tx,
            write,
            store: store.to_owned(),
            results: results.to_owned(),
            position: 0,
            digest: JobsDigest::default(),
            last: None,
        })
    }

    /// The stored row of `key`, if any (a `sending` row as found).
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn get(&mut self, key: &str) -> Result<Option<Record>, ResultsError> {
        let mut stmt = self
            .tx
            .prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS}, position, damaged_line IS NULL FROM jobs WHERE key = ?1"
            ))
            .map_err(|e| sql_error(&self.store, e))?;
        let found = stmt
            .query_row([key], |row| {
                Ok((
                    read_record(row)?,
                    row.get::<_, i64>(9)?,
                    row.get::<_, bool>(10)?,
                ))
            })
            .optional()
            .map_err(|e| sql_error(&self.store, e))?;
        self.last = None;
        Ok(found.map(|(record, position, clean)| {
            if clean {
                self.last = Some((position, record.clone()));
            }
            record
        }))
    }

    /// `record` is the next manifest job's row.
    ///
    /// # Errors
    /// When the store cannot be written.
    pub fn put(&mut self, record: &Record) -> Result<(), ResultsError> {
        let err = |e| sql_error(&self.store, e);
        self.digest.add(
            record.key.as_bytes(),
            record.line,
            record.fingerprint.as_bytes(),
        );
        self.tx
            .prepare_cached("INSERT OR IGNORE INTO temp.seen (key) VALUES (?1)")
            .and_then(|mut s| s.execute([&record.key]))
            .map_err(err)?;
        let unchanged = self
            .last
            .take()
            .is_some_and(|(position, stored)| position == self.position && stored == *record);
        if self.write && !unchanged {
            let r = record;
            self.tx
                .prepare_cached(UPSERT_JOB)
                .and_then(|mut s| s.execute(job_params(r, &Some(self.position))))
                .map_err(err)?;
        }
        self.position += 1;
        Ok(())
    }

    /// The rows of jobs that are not in the manifest (the merge has seen
    /// every job), in their earlier order, placed after the manifest's.
    ///
    /// # Errors
    /// When the store cannot be read, or such a row was imported from a
    /// damaged line: no telling which job it held, so the run stops.
    pub fn orphans(&mut self) -> Result<Vec<Record>, ResultsError> {
        let err = |e| sql_error(&self.store, e);
        let mut orphans = Vec::new();
        {
            let mut stmt = self
                .tx
                .prepare(&format!(
                    "SELECT {RECORD_COLUMNS}, damaged_line FROM jobs \
                     WHERE key NOT IN (SELECT key FROM temp.seen) ORDER BY position, id"
                ))
                .map_err(err)?;
            let mut rows = stmt.query([]).map_err(err)?;
            while let Some(row) = rows.next().map_err(err)? {
                let record = read_record(row).map_err(err)?;
                if let Some(line) = row.get::<_, Option<u64>>(9).map_err(err)? {
                    return Err(crate::files::results::damaged_orphan(
                        &self.results,
                        line,
                        &record.key,
                    ));
                }
                orphans.push(record);
            }
        }
        if self.write {
            let mut place = self
                .tx
                .prepare_cached("UPDATE jobs SET position = ?2 WHERE key = ?1")
                .map_err(err)?;
            for orphan in &orphans {
                place
                    .execute(params![orphan.key, self.position])
                    .map_err(err)?;
                self.position += 1;
            }
        }
        Ok(orphans)
    }

    /// Keeps what the merge wrote (in a writing state), with the digest of
    /// the manifest's rows for [`super::State::statuses_if_unchanged`]: recorded
    /// only when the store holds those rows and nothing else.
    ///
    /// # Errors
    /// When the store cannot be written.
    pub fn finish(self, orphans: usize) -> Result<(), ResultsError> {
        let err = |e| sql_error(&self.store, e);
        if !self.write {
            return Ok(());
        }
        let digest = (orphans == 0).then(|| {
            format!(
                "{}:{}",
                hex::encode(self.digest.finish()),
                self.digest.count()
            )
        });
        self.tx
            .execute("DELETE FROM meta WHERE name = 'digest'", [])
            .map_err(err)?;
        if let Some(digest) = digest {
            self.tx
                .execute(
                    "INSERT INTO meta (name, value) VALUES ('digest', ?1)",
                    [digest],
                )
                .map_err(err)?;
        }
        // The jobs may have moved even when no row changed: the report is
        // written again.
        bump(&self.tx).map_err(err)?;
        self.tx.commit().map_err(err)
    }
}
