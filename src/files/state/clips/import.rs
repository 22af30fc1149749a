//! An earlier release's catalog CSV (or a report the store was deleted
//! beside) imported into the store, once.

use std::path::Path;

use rusqlite::{Connection, ToSql, params_from_iter};

use super::*;
use crate::files::catalog::{self, CatalogError};
use crate::files::state::sql::sql_error;

/// Within `tx`: builds the clips and files of the store from the catalog
/// CSV at `csv` (an earlier release's, or a report the store was deleted
/// beside): each job's rows are those of the task of its latest row, the
/// latest row of each clip (the rule the earlier release read its
/// appended rows by); every file any row recorded is kept under its task
/// and clip. A job only the catalog has is kept (see the statement); a
/// catalog none of whose jobs the store has is another results file's: it
/// is refused, and nothing is imported.
fn import(tx: &Connection, csv: &Path, store: &Path, results: &Path) -> Result<(), CatalogError> {
    let err = |e| catalog_error(store, e);
    tx.execute_batch(
        "CREATE TEMP TABLE imported (
             seq INTEGER PRIMARY KEY, key TEXT NOT NULL, clip_index INTEGER NOT NULL,
             task_id TEXT NOT NULL, clip_id TEXT NOT NULL, status TEXT NOT NULL,
             title TEXT, style TEXT, model TEXT, duration REAL, created_at TEXT,
             audio_url TEXT, image_url TEXT, file TEXT, file_bytes INTEGER,
             image_file TEXT, error TEXT, lyrics TEXT);",
    )
    .map_err(err)?;
    let imported = fill(tx, csv, store).and_then(|()| merge_imported(tx, csv, store, results));
    tx.execute_batch(
        "DROP TABLE IF EXISTS temp.strays; DROP TABLE IF EXISTS temp.latest; DROP TABLE temp.imported;",
    )
        .map_err(err)?;
    imported
}

/// The rows of the catalog CSV at `csv` into `temp.imported`, in order.
fn fill(tx: &Connection, csv: &Path, store: &Path) -> Result<(), CatalogError> {
    let err = |e| catalog_error(store, e);
    let mut failed: Option<rusqlite::Error> = None;
    let mut insert = tx
        .prepare(&format!(
            "INSERT INTO temp.imported (key, file, file_bytes, image_file, {CLIP_FIELDS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
        ))
        .map_err(err)?;
    catalog::each_row(csv, |_, r| {
        if failed.is_some() {
            return;
        }
        let status = r.status();
        let files: [&dyn ToSql; 4] = [&r.key, &r.file, &r.file_bytes, &r.image_file];
        if let Err(e) = insert.execute(params_from_iter(
            files.into_iter().chain(clip_fields(&r, &status)),
        )) {
            failed = Some(e);
        }
    })?;
    failed.map_or(Ok(()), |e| Err(err(e)))
}

/// `temp.imported` into `clips` and `files` (see [`import()`]).
fn merge_imported(
    tx: &Connection,
    csv: &Path,
    store: &Path,
    results: &Path,
) -> Result<(), CatalogError> {
    let err = |e| catalog_error(store, e);
    let (known, unknown): (u64, u64) = tx
        .query_row(
            "SELECT count(*) FILTER (WHERE j.id IS NOT NULL), count(*) FILTER (WHERE j.id IS NULL)
             FROM (SELECT DISTINCT key FROM imported) i LEFT JOIN jobs j ON j.key = i.key",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(err)?;
    if unknown > 0 && known == 0 {
        let key: String = tx
            .query_row("SELECT key FROM imported ORDER BY seq LIMIT 1", [], |r| {
                r.get(0)
            })
            .map_err(err)?;
        return Err(CatalogError::Refused(format!(
            "{}: none of its jobs is in {} (its first: {key:?}): it is the catalog of another results file. \
             batchgen leaves both untouched: collect with the results file this catalog belongs to, or choose another --catalog",
            csv.display(),
            results.display(),
        )));
    }
    tx.execute_batch(
        "CREATE INDEX temp.imported_by_key ON imported (key, seq);
         -- Each job's current task: the task of its latest row.
         CREATE TEMP TABLE latest AS
             SELECT i.key, i.task_id FROM imported i
             WHERE i.seq = (SELECT max(seq) FROM imported x WHERE x.key = i.key);
         -- A job the catalog has and the results file no longer lists
         -- (an earlier release's results file edited by hand) is kept, after
         -- the others, with the task its catalog rows name: its songs stay
         -- in the catalog, and it is never sent (it is in no manifest).
         CREATE TEMP TABLE strays AS
             SELECT l.key, l.task_id, min(i.seq) AS first
             FROM latest l JOIN imported i ON i.key = l.key
             WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.key = l.key)
             GROUP BY l.key;
         INSERT INTO jobs (key, position, line, status, task_id, error)
             SELECT key, (SELECT coalesce(max(position), -1) FROM jobs) + row_number() OVER (ORDER BY first),
                    0, 'submitted', task_id, 'kept from the catalog: the results file no longer listed this job'
             FROM strays ORDER BY first;
         INSERT INTO tasks (job_id, seq, task_id, attempt, issued_at, provider, base_url)
             SELECT j.id, 1, s.task_id, 0, '', '', '' FROM strays s JOIN jobs j ON j.key = s.key;
         INSERT OR REPLACE INTO clips (job_id, clip_index, task_id, clip_id, status, title, style, model, duration, created_at, audio_url, image_url, error, lyrics)
             SELECT j.id, i.clip_index, i.task_id, i.clip_id, i.status, i.title, i.style, i.model, i.duration, i.created_at, i.audio_url, i.image_url, i.error, i.lyrics
             FROM imported i
             JOIN latest l ON l.key = i.key AND l.task_id = i.task_id
             JOIN jobs j ON j.key = i.key
             ORDER BY i.seq;
         INSERT OR REPLACE INTO files (job_id, task_id, clip_id, kind, path, bytes)
             SELECT j.id, i.task_id, i.clip_id, 'audio', i.file, i.file_bytes
             FROM imported i JOIN jobs j ON j.key = i.key
             WHERE i.file <> '' ORDER BY i.seq;
         INSERT OR REPLACE INTO files (job_id, task_id, clip_id, kind, path, bytes)
             SELECT j.id, i.task_id, i.clip_id, 'image', i.image_file, NULL
             FROM imported i JOIN jobs j ON j.key = i.key
             WHERE i.image_file <> '' ORDER BY i.seq;",
    )
    .map_err(err)
}

/// Within `tx`: imports the catalog CSV at `csv` (see [`import()`]) unless
/// the store's clips were built already (from this or another catalog
/// path), and records that they were.
pub(in crate::files::state) fn import_once(
    tx: &Connection,
    csv: &Path,
    store: &Path,
    results: &Path,
) -> Result<(), CatalogError> {
    let err = |e| catalog_error(store, e);
    if crate::files::state::sql::meta(tx, "catalog_imported")
        .map_err(err)?
        .is_some()
    {
        return Ok(());
    }
    import(tx, csv, store, results)?;
    tx.execute(
        "INSERT INTO meta (name, value) VALUES ('catalog_imported', ?1)",
        [crate::util::clock::now_rfc3339()],
    )
    .map_err(err)?;
    crate::files::state::sql::bump_catalog(tx).map_err(err)
}

/// An error reading the store as a [`CatalogError`].
pub(in crate::files::state) fn catalog_error(store: &Path, e: rusqlite::Error) -> CatalogError {
    CatalogError::from(sql_error(store, e))
}
