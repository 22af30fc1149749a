//! The catalog's tables (`clips`, `files`): how a job's rows are read,
//! written and streamed in report order, and how an earlier release's
//! catalog CSV is imported into them.
//!
//! A job's rows ([`Row`]) are its clips, each with the files downloaded
//! for that very clip (same task, same clip ID): a later task's clip at the
//! same place never shows an earlier task's file.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::sql::sql_error;
use crate::api::feed::ClipStatus;
use crate::files::catalog::{self, CatalogError, Row};
use crate::files::results::Status;

/// The columns [`read_row`] reads (after the job's own, in [`JobsWithClips`]).
const ROW_COLUMNS: &str = "c.task_id, c.clip_index, c.clip_id, c.title, c.style, c.model, c.status, \
     c.duration, c.created_at, c.audio_url, c.image_url, fa.path, fa.bytes, fi.path, c.error, c.lyrics";

/// A clip's files, joined by task and clip ID.
const FILES_OF_CLIP: &str = "LEFT JOIN files fa ON fa.job_id = c.job_id AND fa.task_id = c.task_id AND fa.clip_id = c.clip_id AND fa.kind = 'audio' \
     LEFT JOIN files fi ON fi.job_id = c.job_id AND fi.task_id = c.task_id AND fi.clip_id = c.clip_id AND fi.kind = 'image'";

/// A clip row read with [`ROW_COLUMNS`] from column `at`, for job `key`.
fn read_row(key: &str, row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Row> {
    Ok(Row {
        key: key.to_owned(),
        task_id: row.get(at)?,
        clip_index: row.get(at + 1)?,
        clip_id: row.get(at + 2)?,
        title: row.get(at + 3)?,
        style: row.get(at + 4)?,
        model: row.get(at + 5)?,
        status: row.get(at + 6)?,
        duration: row.get(at + 7)?,
        created_at: row.get(at + 8)?,
        audio_url: row.get(at + 9)?,
        image_url: row.get(at + 10)?,
        file: row.get::<_, Option<String>>(at + 11)?.unwrap_or_default(),
        file_bytes: row.get(at + 12)?,
        image_file: row.get::<_, Option<String>>(at + 13)?.unwrap_or_default(),
        error: row.get(at + 14)?,
        lyrics: row.get(at + 15)?,
    })
}

/// The current rows of job `key`, in clip order (none for a job the store
/// does not know).
pub(super) fn rows_of(conn: &Connection, key: &str) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM jobs j JOIN clips c ON c.job_id = j.id {FILES_OF_CLIP} \
         WHERE j.key = ?1 ORDER BY c.clip_index"
    ))?;
    let rows = stmt.query_map([key], |r| read_row(key, r, 0))?;
    rows.collect()
}

/// Replaces the rows of job `key` with `rows` (all of its current rows),
/// and records each row's files under its task and clip. `false` when the
/// store has no such job.
pub(super) fn write_job(tx: &Connection, key: &str, rows: &[Row]) -> rusqlite::Result<bool> {
    let Some(job_id) = tx
        .prepare_cached("SELECT id FROM jobs WHERE key = ?1")?
        .query_row([key], |r| r.get::<_, i64>(0))
        .optional()?
    else {
        return Ok(false);
    };
    tx.prepare_cached("DELETE FROM clips WHERE job_id = ?1")?
        .execute([job_id])?;
    let mut insert = tx.prepare_cached(
        "INSERT OR REPLACE INTO clips (job_id, clip_index, task_id, clip_id, status, title, style, model, duration, created_at, audio_url, image_url, error, lyrics)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    for r in rows {
        insert.execute(params![
            job_id,
            r.clip_index,
            r.task_id,
            r.clip_id,
            r.status().as_str(),
            r.title,
            r.style,
            r.model,
            r.duration,
            r.created_at,
            r.audio_url,
            r.image_url,
            r.error,
            r.lyrics
        ])?;
        record_file(tx, job_id, r, "audio", &r.file, r.file_bytes)?;
        record_file(tx, job_id, r, "image", &r.image_file, None)?;
    }
    Ok(true)
}

/// The clip's file of `kind` is `path` (none when empty).
fn record_file(
    tx: &Connection,
    job_id: i64,
    r: &Row,
    kind: &str,
    path: &str,
    bytes: Option<u64>,
) -> rusqlite::Result<()> {
    if path.is_empty() {
        tx.prepare_cached(
            "DELETE FROM files WHERE job_id = ?1 AND task_id = ?2 AND clip_id = ?3 AND kind = ?4",
        )?
        .execute(params![job_id, r.task_id, r.clip_id, kind])?;
    } else {
        tx.prepare_cached(
            "INSERT INTO files (job_id, task_id, clip_id, kind, path, bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (job_id, task_id, clip_id, kind) DO UPDATE SET path = excluded.path, bytes = excluded.bytes",
        )?
        .execute(params![job_id, r.task_id, r.clip_id, kind, path, bytes])?;
    }
    Ok(())
}

/// Every audio file the store records, of any task (their names are taken).
pub(super) fn audio_paths(conn: &Connection, mut visit: impl FnMut(&str)) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("SELECT path FROM files WHERE kind = 'audio'")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        visit(row.get_ref(0)?.as_str()?);
    }
    Ok(())
}

/// Whether the store has any clip.
pub(super) fn any(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("SELECT EXISTS (SELECT 1 FROM clips)", [], |r| r.get(0))
}

/// One job as the catalog sees it: its place, its latest status and task,
/// and its current rows.
#[derive(Debug, Clone)]
pub struct JobClips {
    pub key: String,
    /// Its place in the reports (0, 1, …: manifest order, then jobs no
    /// longer in the manifest).
    pub place: u32,
    pub status: Status,
    /// The job's latest task ID (empty if none).
    pub task_id: String,
    pub submitted_at: String,
    /// Why the job failed or is unknown (its results `error`).
    pub error: String,
    pub rows: Vec<Row>,
}

/// Jobs read per query.
const PAGE: u32 = 512;

/// Every job with its rows in report order, a page of [`PAGE`] jobs per
/// query, each query a short read (a `collect` reading ahead of its work
/// holds no snapshot open for hours). An [`Iterator`] of
/// `Result<JobClips, CatalogError>`; it ends after the first error.
pub struct JobsWithClips<'c> {
    conn: &'c Connection,
    store: &'c Path,
    /// The last job read: (position, id).
    after: Option<(i64, i64)>,
    place: u32,
    page: std::vec::IntoIter<JobClips>,
    done: bool,
}

impl<'c> JobsWithClips<'c> {
    pub(super) fn new(conn: &'c Connection, store: &'c Path) -> JobsWithClips<'c> {
        JobsWithClips {
            conn,
            store,
            after: None,
            place: 0,
            page: Vec::new().into_iter(),
            done: false,
        }
    }

    fn next_page(&mut self) -> rusqlite::Result<Vec<JobClips>> {
        let (position, id) = self.after.unwrap_or((i64::MIN, i64::MIN));
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT j.position, j.id, j.key, j.status, j.task_id, j.submitted_at, j.error, {ROW_COLUMNS}
             FROM (SELECT * FROM jobs WHERE (position, id) > (?1, ?2) ORDER BY position, id LIMIT ?3) j
             LEFT JOIN clips c ON c.job_id = j.id {FILES_OF_CLIP}
             ORDER BY j.position, j.id, c.clip_index"
        ))?;
        let mut rows = stmt.query(params![position, id, PAGE])?;
        let mut page: Vec<JobClips> = Vec::new();
        while let Some(row) = rows.next()? {
            let at: (i64, i64) = (row.get(0)?, row.get(1)?);
            if self.after != Some(at) {
                self.after = Some(at);
                page.push(JobClips {
                    key: row.get(2)?,
                    place: self.place,
                    status: super::sql::status(row.get_ref(3)?.as_str()?),
                    task_id: row.get(4)?,
                    submitted_at: row.get(5)?,
                    error: row.get(6)?,
                    rows: Vec::new(),
                });
                self.place = self.place.saturating_add(1);
            }
            let job = page.last_mut().expect("pushed above");
            if row.get_ref(8)?.data_type() != rusqlite::types::Type::Null {
                let clip = read_row(&job.key, row, 7)?;
                job.rows.push(clip);
            }
        }
        Ok(page)
    }
}

impl Iterator for JobsWithClips<'_> {
    type Item = Result<JobClips, CatalogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(job) = self.page.next() {
            return Some(Ok(job));
        }
        if self.done {
            return None;
        }
        match self.next_page() {
            Ok(page) if page.is_empty() => {
                self.done = true;
                None
            }
            Ok(page) => {
                self.page = page.into_iter();
                self.page.next().map(Ok)
            }
            Err(e) => {
                self.done = true;
                Some(Err(catalog_error(self.store, e)))
            }
        }
    }
}

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
        .prepare(
            "INSERT INTO temp.imported (key, clip_index, task_id, clip_id, status, title, style, model, duration, created_at, audio_url, image_url, file, file_bytes, image_file, error, lyrics)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        )
        .map_err(err)?;
    catalog::each_row(csv, |_, r| {
        if failed.is_some() {
            return;
        }
        let status: &str = ClipStatus::parse(&r.status).as_str();
        if let Err(e) = insert.execute(params![
            r.key,
            r.clip_index,
            r.task_id,
            r.clip_id,
            status,
            r.title,
            r.style,
            r.model,
            r.duration,
            r.created_at,
            r.audio_url,
            r.image_url,
            r.file,
            r.file_bytes,
            r.image_file,
            r.error,
            r.lyrics
        ]) {
            failed = Some(e);
        }
    })?;
    failed.map_or(Ok(()), |e| Err(err(e)))
}

/// `temp.imported` into `clips` and `files` (see [`import`]).
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

/// Within `tx`: imports the catalog CSV at `csv` (see [`import`]) unless
/// the store's clips were built already (from this or another catalog
/// path), and records that they were.
pub(super) fn import_once(
    tx: &Connection,
    csv: &Path,
    store: &Path,
    results: &Path,
) -> Result<(), CatalogError> {
    let err = |e| catalog_error(store, e);
    if super::sql::meta(tx, "catalog_imported")
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
    super::sql::bump_catalog(tx).map_err(err)
}

/// An error reading the store as a [`CatalogError`].
pub(super) fn catalog_error(store: &Path, e: rusqlite::Error) -> CatalogError {
    CatalogError::from(sql_error(store, e))
}
