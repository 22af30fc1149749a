//! The catalog's tables (`clips`, `files`): how a job's rows are read,
//! written and streamed in report order, and how an earlier release's
//! catalog CSV is imported into them.
//!
//! A job's rows ([`Row`]) are its clips, each with the files downloaded
//! for that very clip (same task, same clip ID): a later task's clip at the
//! same place never shows an earlier task's file.

use std::path::Path;

use rusqlite::types::ToSqlOutput;
use rusqlite::{Connection, OptionalExtension, ToSql, params, params_from_iter};

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
    // Simple statements, in the table's order (the caller sorts): SQLite
    // compiles a join on a bound key, or an `ORDER BY` after an equality
    // on the key's prefix, again at every run, which cost most of a
    // collect's time.
    let Some(job_id) = conn
        .prepare_cached("SELECT id FROM jobs WHERE key = ?1")?
        .query_row([key], |r| r.get::<_, i64>(0))
        .optional()?
    else {
        return Ok(Vec::new());
    };
    let mut rows: Vec<Row> = conn
        .prepare_cached(
            "SELECT task_id, clip_index, clip_id, title, style, model, status, duration, created_at, audio_url, image_url, NULL, NULL, NULL, error, lyrics
             FROM clips WHERE job_id = ?1",
        )?
        .query_map([job_id], |r| read_row(key, r, 0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut files = conn.prepare_cached(
        "SELECT task_id, clip_id, kind, path, bytes FROM files WHERE job_id = ?1",
    )?;
    let mut found = files.query([job_id])?;
    while let Some(f) = found.next()? {
        let (task_id, clip_id) = (f.get_ref(0)?.as_str()?, f.get_ref(1)?.as_str()?);
        let Some(row) = rows
            .iter_mut()
            .find(|r| r.task_id == task_id && r.clip_id == clip_id)
        else {
            continue;
        };
        if f.get_ref(2)?.as_str()? == "audio" {
            row.file = f.get(3)?;
            row.file_bytes = f.get(4)?;
        } else {
            row.image_file = f.get(3)?;
        }
    }
    Ok(rows)
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
    let mut insert = tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO clips (job_id, {CLIP_FIELDS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    ))?;
    for r in rows {
        let status = r.status();
        let job: [&dyn ToSql; 1] = [&job_id];
        insert.execute(params_from_iter(
            job.into_iter().chain(clip_fields(r, &status)),
        ))?;
        record_file(tx, job_id, r, "audio", &r.file, r.file_bytes)?;
        record_file(tx, job_id, r, "image", &r.image_file, None)?;
    }
    Ok(true)
}

/// A clip's own columns, in the order of [`clip_fields`].
const CLIP_FIELDS: &str = "clip_index, task_id, clip_id, status, title, style, model, duration, created_at, audio_url, image_url, error, lyrics";

/// The values of [`CLIP_FIELDS`] for `r`, its status as `status` (one of
/// the names the table admits).
fn clip_fields<'a>(r: &'a Row, status: &'a ClipStatus) -> [&'a dyn ToSql; 13] {
    [
        &r.clip_index,
        &r.task_id,
        &r.clip_id,
        status,
        &r.title,
        &r.style,
        &r.model,
        &r.duration,
        &r.created_at,
        &r.audio_url,
        &r.image_url,
        &r.error,
        &r.lyrics,
    ]
}

/// A clip's status is stored as its name.
impl ToSql for ClipStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
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

/// What a collect run reports of the store's submitted tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskCounts {
    /// Submitted jobs with a task ID.
    pub tasks: u64,
    /// Tasks finished by the task rule ([`crate::files::catalog::job::finished`]).
    pub finished: u64,
    /// The clips of each job's latest task, by status.
    pub complete: u64,
    pub failed: u64,
    pub pending: u64,
    /// Complete clips with no audio file recorded.
    pub unfiled: u64,
    /// The pending clips (of each job's latest task) that carry a message:
    /// why they wait, when batchgen knows ([`crate::api::feed::NO_FINAL_URL`]),
    /// most first.
    pub pending_reasons: Vec<(String, u64)>,
    /// The jobs sent before the cutoff that still have a song to fetch.
    pub unfetched: Unfetched,
}

/// One job as the counting passes see it (`each_job_brief`: one pass over
/// the jobs, their clips and their files, side by side).
#[derive(Debug)]
pub struct JobBrief<'a> {
    pub id: i64,
    pub status: Status,
    pub submitted_at: &'a str,
    /// Its clips' statuses, each with whether it is of the job's latest
    /// task.
    pub clips: &'a [(ClipStatus, bool)],
    /// Submitted before the cutoff, and a song still to fetch: never
    /// collected, or a clip that is not failed and has no audio file of
    /// its task. The provider deletes its files 14–15 days after a task
    /// (API.md): these are the songs a late collect would lose. (A failed
    /// clip that has a file, a rare leftover, may hide one that lacks it.)
    /// False when no cutoff was asked.
    pub unfetched: bool,
}

/// Hands `visit` every job (only the submitted ones with a task ID, when
/// `submitted`) with its clips, in id order; with a `cutoff` (RFC 3339,
/// as `submitted_at` is stored), also whether it is
/// [`JobBrief::unfetched`]. Ordered scans side by side, never a look-up
/// per job: the jobs by id, the clips' narrow index, and (with a cutoff)
/// the audio files by job, in their key's order.
pub(super) fn each_job_brief(
    conn: &Connection,
    submitted: bool,
    cutoff: Option<&str>,
    mut visit: impl FnMut(&JobBrief<'_>),
) -> rusqlite::Result<()> {
    let mut jobs = conn.prepare_cached(if submitted {
        "SELECT id, status, task_id, submitted_at FROM jobs
         WHERE status = 'submitted' AND task_id <> '' ORDER BY id"
    } else {
        "SELECT id, status, task_id, submitted_at FROM jobs ORDER BY id"
    })?;
    let mut clips =
        conn.prepare_cached("SELECT job_id, status, task_id FROM clips ORDER BY job_id")?;
    let mut files = conn.prepare_cached(
        "SELECT job_id, task_id FROM files WHERE kind = 'audio' AND ?1 ORDER BY job_id",
    )?;
    let mut jobs = jobs.query([])?;
    let mut clips = clips.query([])?;
    let mut files = files.query([cutoff.is_some()])?;
    let (mut clip, mut file) = (clips.next()?, files.next()?);
    let mut of_job: Vec<(ClipStatus, bool)> = Vec::new();
    let mut clip_task = String::new();
    while let Some(job) = jobs.next()? {
        let id: i64 = job.get(0)?;
        let status = super::sql::status(job.get_ref(1)?.as_str()?);
        let task = job.get_ref(2)?.as_str()?;
        let submitted_at = job.get_ref(3)?.as_str()?;
        of_job.clear();
        clip_task.clear();
        while let Some(c) = clip {
            let job_id: i64 = c.get(0)?;
            if job_id > id {
                break;
            }
            if job_id == id {
                let status = ClipStatus::parse(c.get_ref(1)?.as_str()?);
                let of_task = c.get_ref(2)?.as_str()?;
                of_job.push((status, of_task == task));
                clip_task.clear();
                clip_task.push_str(of_task);
            }
            clip = clips.next()?;
        }
        let mut filed = 0u64;
        while let Some(f) = file {
            let job_id: i64 = f.get(0)?;
            if job_id > id {
                break;
            }
            if job_id == id && f.get_ref(1)?.as_str()? == clip_task {
                filed += 1;
            }
            file = files.next()?;
        }
        let unfetched = cutoff.is_some_and(|cutoff| {
            let wanted = of_job
                .iter()
                .filter(|(s, _)| *s != ClipStatus::Failed)
                .count() as u64;
            status == Status::Submitted
                && !submitted_at.is_empty()
                && submitted_at < cutoff
                && (of_job.is_empty() || filed < wanted)
        });
        visit(&JobBrief {
            id,
            status,
            submitted_at,
            clips: &of_job,
            unfetched,
        });
    }
    Ok(())
}

/// The task rule of [`crate::files::catalog::job::finished`] over a
/// [`JobBrief`]'s clips.
fn brief_finished(clips: &[(ClipStatus, bool)]) -> bool {
    clips.iter().all(|&(_, current)| current)
        && crate::api::feed::task_finished(clips.iter().map(|&(status, _)| status))
}

/// The [`JobBrief::unfetched`] jobs of one pass: their count and the
/// oldest one's time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unfetched {
    pub count: u64,
    pub oldest: Option<String>,
}

impl Unfetched {
    pub fn add(&mut self, brief: &JobBrief<'_>) {
        if !brief.unfetched {
            return;
        }
        self.count += 1;
        if self
            .oldest
            .as_deref()
            .is_none_or(|o| brief.submitted_at < o)
        {
            self.oldest = Some(brief.submitted_at.to_owned());
        }
    }
}

/// [`TaskCounts`] of the store, in one pass ([`each_job_brief`]);
/// `unfiled` only when `files` is asked; the unfetched jobs sent before
/// `cutoff`.
pub(super) fn task_counts(
    conn: &Connection,
    files: bool,
    cutoff: &str,
) -> rusqlite::Result<TaskCounts> {
    let mut n = TaskCounts::default();
    each_job_brief(conn, true, Some(cutoff), |brief| {
        n.tasks += 1;
        n.unfetched.add(brief);
        if brief_finished(brief.clips) {
            n.finished += 1;
        }
        for &(status, current) in brief.clips {
            match (current, status) {
                (false, _) => {}
                (true, ClipStatus::Complete) => n.complete += 1,
                (true, ClipStatus::Failed) => n.failed += 1,
                (true, _) => n.pending += 1,
            }
        }
    })?;
    if files {
        let filed: u64 = conn.query_row(
            "SELECT count(*) FROM files f CROSS JOIN clips c
                 ON c.job_id = f.job_id AND c.task_id = f.task_id AND c.clip_id = f.clip_id
             JOIN jobs j ON j.id = f.job_id
             WHERE f.kind = 'audio' AND c.status = 'complete'
                 AND j.status = 'submitted' AND j.task_id = c.task_id",
            [],
            |r| r.get(0),
        )?;
        n.unfiled = n.complete.saturating_sub(filed);
    }
    // From the index of the clips that carry a message: few rows.
    let mut reasons = conn.prepare_cached(
        "SELECT c.error, count(*) FROM clips c JOIN jobs j ON j.id = c.job_id
         WHERE c.error <> '' AND c.status IN ('new', 'text', 'first')
             AND j.status = 'submitted' AND j.task_id = c.task_id
         GROUP BY c.error ORDER BY count(*) DESC, c.error",
    )?;
    n.pending_reasons = reasons
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(n)
}

/// The ids of the submitted jobs whose task is finished by the task rule,
/// as a bit set indexed by job id.
fn finished_ids(conn: &Connection) -> rusqlite::Result<Vec<u64>> {
    let mut bits = Vec::new();
    each_job_brief(conn, true, None, |brief| {
        if brief_finished(brief.clips) {
            let id = usize::try_from(brief.id).unwrap_or(0);
            if bits.len() <= id / 64 {
                bits.resize(id / 64 + 1, 0u64);
            }
            bits[id / 64] |= 1 << (id % 64);
        }
    })?;
    Ok(bits)
}

fn in_set(bits: &[u64], id: i64) -> bool {
    usize::try_from(id).is_ok_and(|id| bits.get(id / 64).is_some_and(|w| w & (1 << (id % 64)) != 0))
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
    pub rows: Vec<Row>,
}

/// Jobs read per query.
const PAGE: u32 = 512;

/// Which jobs a reader of the store reads ([`super::each_job_in`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Every,
    /// Submitted jobs whose task is not finished by the task rule (what a
    /// collect that downloads nothing has to poll).
    Unfinished,
}

/// Every job (or those of [`Which`]) with its rows in report order, a page
/// of [`PAGE`] jobs per query, each query a short read (a `collect`
/// reading ahead of its work holds no snapshot open for hours). An
/// [`Iterator`] of `Result<JobClips, CatalogError>`; it ends after the
/// first error.
pub struct JobsWithClips<'c> {
    conn: &'c Connection,
    store: &'c Path,
    which: Which,
    /// With [`Which::Unfinished`]: the finished jobs, read at the start.
    finished: Option<Vec<u64>>,
    /// The last job read: (position, id).
    after: Option<(i64, i64)>,
    page: std::vec::IntoIter<JobClips>,
    done: bool,
}

impl<'c> JobsWithClips<'c> {
    pub(super) fn new(conn: &'c Connection, store: &'c Path, which: Which) -> JobsWithClips<'c> {
        JobsWithClips {
            conn,
            store,
            which,
            finished: None,
            after: None,
            page: Vec::new().into_iter(),
            done: false,
        }
    }

    fn next_page(&mut self) -> rusqlite::Result<Vec<JobClips>> {
        match self.which {
            Which::Every => self.page_of_every(),
            Which::Unfinished => self.page_of_unfinished(),
        }
    }

    /// The next jobs, their clips joined.
    fn page_of_every(&mut self) -> rusqlite::Result<Vec<JobClips>> {
        let (position, id) = self.after.unwrap_or((i64::MIN, i64::MIN));
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT j.position, j.id, j.key, j.status, j.task_id, j.submitted_at, {ROW_COLUMNS}
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
                page.push(job_of(row, at.0)?);
            }
            let job = page.last_mut().expect("pushed above");
            if row.get_ref(7)?.data_type() != rusqlite::types::Type::Null {
                let clip = read_row(&job.key, row, 6)?;
                job.rows.push(clip);
            }
        }
        Ok(page)
    }

    /// The next submitted jobs whose task is not finished (at least one,
    /// unless there are none left), then their clips: a rerun over a
    /// finished catalog reads no clip's text.
    fn page_of_unfinished(&mut self) -> rusqlite::Result<Vec<JobClips>> {
        if self.finished.is_none() {
            self.finished = Some(finished_ids(self.conn)?);
        }
        let finished = self.finished.as_deref().unwrap_or_default();
        let mut page: Vec<(i64, JobClips)> = Vec::new();
        let mut stmt = self.conn.prepare_cached(
            "SELECT position, id, key, status, task_id, submitted_at FROM jobs
             WHERE (position, id) > (?1, ?2) ORDER BY position, id LIMIT ?3",
        )?;
        while page.is_empty() {
            let (position, id) = self.after.unwrap_or((i64::MIN, i64::MIN));
            let mut rows = stmt.query(params![position, id, PAGE])?;
            let mut read = 0;
            while let Some(row) = rows.next()? {
                read += 1;
                let at: (i64, i64) = (row.get(0)?, row.get(1)?);
                self.after = Some(at);
                let job = job_of(row, at.0)?;
                if job.status == Status::Submitted
                    && !job.task_id.is_empty()
                    && !in_set(finished, at.1)
                {
                    page.push((at.1, job));
                }
            }
            if read == 0 {
                break;
            }
        }
        if page.is_empty() {
            return Ok(Vec::new());
        }
        // Their clips: the ids are numbers the store gave, written in.
        let ids: Vec<String> = page.iter().map(|(id, _)| id.to_string()).collect();
        let mut clips = self.conn.prepare(&format!(
            "SELECT c.job_id, {ROW_COLUMNS} FROM clips c {FILES_OF_CLIP}
             WHERE c.job_id IN ({}) ORDER BY c.job_id, c.clip_index",
            ids.join(",")
        ))?;
        let at: std::collections::HashMap<i64, usize> = page
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (*id, i))
            .collect();
        let mut rows = clips.query([])?;
        while let Some(row) = rows.next()? {
            if let Some(&i) = at.get(&row.get::<_, i64>(0)?) {
                let job = &mut page[i].1;
                let clip = read_row(&job.key, row, 1)?;
                job.rows.push(clip);
            }
        }
        Ok(page.into_iter().map(|(_, job)| job).collect())
    }
}

/// A job's columns (position, id, key, status, task_id, submitted_at) as
/// a [`JobClips`] without rows, at place `position`.
fn job_of(row: &rusqlite::Row<'_>, position: i64) -> rusqlite::Result<JobClips> {
    Ok(JobClips {
        key: row.get(2)?,
        place: u32::try_from(position).unwrap_or(u32::MAX),
        status: super::sql::status(row.get_ref(3)?.as_str()?),
        task_id: row.get(4)?,
        submitted_at: row.get(5)?,
        rows: Vec::new(),
    })
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
