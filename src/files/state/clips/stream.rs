//! Every job with its clips, in report order, a page at a time.

use std::path::Path;

use rusqlite::{Connection, params};

use super::brief::{finished_ids, in_set};
use super::*;
use crate::files::catalog::{CatalogError, Row};
use crate::files::results::Status;
use crate::job::JobKey;

/// Whether the store has any clip.
pub(in crate::files::state) fn any(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("SELECT EXISTS (SELECT 1 FROM clips)", [], |r| r.get(0))
}

/// One job as the catalog sees it: its place, its latest status and task,
/// and its current rows.
#[derive(Debug, Clone)]
pub struct JobClips {
    pub key: JobKey,
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

/// Which jobs a reader of the store reads ([`crate::files::state::each_job_in`]).
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
    pub(in crate::files::state) fn new(
        conn: &'c Connection,
        store: &'c Path,
        which: Which,
    ) -> JobsWithClips<'c> {
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
        status: crate::files::state::sql::status(row.get_ref(3)?.as_str()?),
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
