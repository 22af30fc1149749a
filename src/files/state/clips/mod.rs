//! The catalog's tables (`clips`, `files`, `takes`): how a job's rows are
//! read, written and streamed in report order, and how an earlier
//! release's catalog CSV is imported into them.
//!
//! A job's rows ([`Row`]) are its clips, each with the files downloaded
//! for that very clip (same task, same clip ID) and what measuring its
//! take found: a later task's clip at the same place never shows an
//! earlier task's file or take.
//!
//! Here: one job's rows, read and written. The one pass that counts every
//! job for `status` and collect's summary is `brief`'s; the stream of jobs
//! in report order, `stream`'s; importing an earlier release's catalog CSV,
//! `import`'s.

mod brief;
mod import;
mod stream;

pub use brief::{AccountTasks, JobBrief, TakeCounts, TaskCounts, Unfetched};
pub(super) use brief::{each_job_brief, task_counts};
pub(super) use import::{catalog_error, import_once};
pub(super) use stream::any;
pub use stream::{JobClips, JobsWithClips, Which};

use rusqlite::types::ToSqlOutput;
use rusqlite::{Connection, OptionalExtension, ToSql, params, params_from_iter};

use crate::api::feed::ClipStatus;
use crate::files::catalog::{Measured, Row, Verdict};

/// The columns [`read_row`] reads (after the job's own, in [`JobsWithClips`]).
const ROW_COLUMNS: &str = "c.task_id, c.clip_index, c.clip_id, c.title, c.style, c.model, c.status, \
     c.duration, c.created_at, c.audio_url, c.image_url, fa.path, fa.bytes, fi.path, c.error, c.lyrics, \
     t.method, t.measurement, t.error, t.verdict, t.reasons, t.picked";

/// A clip's files and its take, joined by task and clip ID.
const FILES_OF_CLIP: &str = "LEFT JOIN files fa ON fa.job_id = c.job_id AND fa.task_id = c.task_id AND fa.clip_id = c.clip_id AND fa.kind = 'audio' \
     LEFT JOIN files fi ON fi.job_id = c.job_id AND fi.task_id = c.task_id AND fi.clip_id = c.clip_id AND fi.kind = 'image' \
     LEFT JOIN takes t ON t.job_id = c.job_id AND t.task_id = c.task_id AND t.clip_id = c.clip_id";

/// A clip row read with [`ROW_COLUMNS`] from column `at`, for job `key`.
fn read_row(key: &str, row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Row> {
    let mut clip = read_clip(key, row, at)?;
    read_take(&mut clip, row, at + 16)?;
    Ok(clip)
}

/// A take's columns (`method, measurement, error, verdict, reasons,
/// picked`, from column `at`; all NULL for a take not measured) into
/// `clip`. A take measured by another method than this release's, or
/// whose measurement does not read, is not measured: the next download
/// pass measures it again.
fn read_take(clip: &mut Row, row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<()> {
    let Some(method) = row.get::<_, Option<u32>>(at)? else {
        return Ok(());
    };
    if method != crate::audio::VERSION {
        return Ok(());
    }
    let measured = match row.get::<_, Option<String>>(at + 1)? {
        Some(json) => match serde_json::from_str(&json) {
            Ok(m) => Measured::Audio(m),
            Err(_) => return Ok(()),
        },
        None => Measured::Unreadable(row.get(at + 2)?),
    };
    clip.set_measured(measured);
    clip.verdict = row.get(at + 3)?;
    clip.reasons = row.get(at + 4)?;
    clip.pick = row.get(at + 5)?;
    Ok(())
}

/// A clip row's own columns and files ([`ROW_COLUMNS`]' first sixteen).
fn read_clip(key: &str, row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Row> {
    Ok(Row {
        key: key.into(),
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
        ..Row::default()
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
        .query_map([job_id], |r| read_clip(key, r, 0))?
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
    let mut takes = conn.prepare_cached(
        "SELECT task_id, clip_id, method, measurement, error, verdict, reasons, picked FROM takes WHERE job_id = ?1",
    )?;
    let mut found = takes.query([job_id])?;
    while let Some(t) = found.next()? {
        let (task_id, clip_id) = (t.get_ref(0)?.as_str()?, t.get_ref(1)?.as_str()?);
        if let Some(row) = rows
            .iter_mut()
            .find(|r| r.task_id == task_id && r.clip_id == clip_id)
        {
            read_take(row, t, 2)?;
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
        record_take(tx, job_id, r)?;
    }
    Ok(true)
}

/// The clip's take as measured and judged, if it was. A row without a
/// measurement leaves the stored take alone: a take is measured again
/// only when its file changed, and that replaces it.
fn record_take(tx: &Connection, job_id: i64, r: &Row) -> rusqlite::Result<()> {
    let Some(measured) = r.measured.as_deref() else {
        return Ok(());
    };
    let (json, error) = match measured {
        Measured::Audio(m) => (
            Some(
                serde_json::to_string(m)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?,
            ),
            "",
        ),
        Measured::Unreadable(why) => (None, why.as_str()),
    };
    let verdict = r.verdict().unwrap_or(Verdict::Rejected).as_str();
    tx.prepare_cached(
        "INSERT INTO takes (job_id, task_id, clip_id, method, measurement, error, duration, loudness, true_peak, verdict, reasons, picked)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (job_id, task_id, clip_id) DO UPDATE SET method = excluded.method, measurement = excluded.measurement,
           error = excluded.error, duration = excluded.duration, loudness = excluded.loudness, true_peak = excluded.true_peak,
           verdict = excluded.verdict, reasons = excluded.reasons, picked = excluded.picked",
    )?
    .execute(params![
        job_id,
        r.task_id,
        r.clip_id,
        crate::audio::VERSION,
        json,
        error,
        r.measured_duration,
        r.loudness,
        r.true_peak,
        verdict,
        r.reasons,
        r.pick,
    ])?;
    Ok(())
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
