//! What every part of the store shares: the statements on jobs and tasks,
//! the connection recipe, and how SQLite's errors become this layer's.

use std::fs::File;
use std::io;
use std::path::Path;

use rusqlite::types::ToSqlOutput;
use rusqlite::{Connection, OpenFlags, OptionalExtension, ToSql};

use super::schema;
use crate::files::results::{Record, ResultsError, Status};

impl ToSql for crate::job::JobKey {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        self.as_str().to_sql()
    }
}

impl rusqlite::types::FromSql for crate::job::JobKey {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        String::column_result(value).map(crate::job::JobKey::from)
    }
}

/// The columns [`read_record`] reads, in its order.
pub(super) const RECORD_COLUMNS: &str =
    "key, line, task_id, status, attempts, http_status, error, submitted_at, fingerprint";

/// Inserts a job or updates every field but its place (`?2`, used only for
/// a new job: a job the merge has not placed goes last). A row without a
/// task ID keeps the job's last one.
pub(super) const UPSERT_JOB: &str = "INSERT INTO jobs (key, position, line, fingerprint, status, attempts, http_status, error, submitted_at, task_id)
     VALUES (?1, coalesce(?2, (SELECT coalesce(max(position), -1) + 1 FROM jobs)), ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
     ON CONFLICT (key) DO UPDATE SET
         position = coalesce(?2, position),
         line = excluded.line,
         fingerprint = excluded.fingerprint,
         status = excluded.status,
         attempts = excluded.attempts,
         http_status = excluded.http_status,
         error = excluded.error,
         submitted_at = excluded.submitted_at,
         task_id = CASE WHEN excluded.task_id <> '' THEN excluded.task_id ELSE jobs.task_id END,
         damaged_line = NULL";

/// Updates a job the merge placed, every field but its place: the
/// recorder's statement (the parameters of [`UPSERT_JOB`], `?2` unused).
/// A row without a task ID keeps the job's last one. A `submitted` job
/// going back to `sending` is being regenerated (no other run sends a
/// submitted job again): counted.
pub(super) const RECORD_JOB: &str = "UPDATE jobs SET
         regenerations = regenerations + (status = 'submitted' AND ?5 = 'sending'),
         line = ?3,
         fingerprint = ?4,
         status = ?5,
         attempts = ?6,
         http_status = ?7,
         error = ?8,
         submitted_at = ?9,
         task_id = CASE WHEN ?10 <> '' THEN ?10 ELSE task_id END,
         damaged_line = NULL
     WHERE key = ?1 AND ?2 IS NULL";

/// Adds a task ID to the tasks of the job with key `?1`, after its
/// others, unless the job has it already.
pub(super) const INSERT_TASK: &str = "INSERT INTO tasks (job_id, seq, task_id, attempt, issued_at, provider, base_url, account)
     SELECT j.id, coalesce((SELECT max(seq) FROM tasks WHERE job_id = j.id), 0) + 1, ?2, ?3, ?4, ?5, ?6, ?7
     FROM jobs j
     WHERE j.key = ?1 AND NOT EXISTS (SELECT 1 FROM tasks WHERE job_id = j.id AND task_id = ?2)";

/// A record as the ten parameters of [`UPSERT_JOB`] and [`RECORD_JOB`],
/// its place `position` (`None`: keep the job's, or last for a new one).
pub(super) fn job_params<'a>(r: &'a Record, position: &'a Option<i64>) -> [&'a dyn ToSql; 10] {
    [
        &r.key,
        position,
        &r.line,
        &r.fingerprint,
        &r.status,
        &r.attempts,
        &r.http_status,
        &r.error,
        &r.submitted_at,
        &r.task_id,
    ]
}

/// A status is stored as its name (the table's CHECK admits only these).
impl ToSql for Status {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

/// A row of [`RECORD_COLUMNS`] as a record.
pub(super) fn read_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    Ok(Record {
        key: row.get(0)?,
        line: row.get(1)?,
        task_id: row.get(2)?,
        status: status(&row.get::<_, String>(3)?),
        attempts: row.get(4)?,
        http_status: row.get(5)?,
        error: row.get(6)?,
        submitted_at: row.get(7)?,
        fingerprint: row.get(8)?,
    })
}

/// A status as stored (the table's CHECK admits only these).
pub(super) fn status(text: &str) -> Status {
    match text {
        "pending" => Status::Pending,
        "sending" => Status::Sending,
        "submitted" => Status::Submitted,
        "failed" => Status::Failed,
        _ => Status::Unknown,
    }
}

/// The store changed: its report is out of date.
pub(super) fn bump(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE name = 'generation'",
        [],
    )
    .map(drop)
}

/// The store's clips changed: the catalog report is out of date.
pub(super) fn bump_catalog(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE name = 'catalog_generation'",
        [],
    )
    .map(drop)
}

/// A value of the `meta` table.
pub(super) fn meta(conn: &Connection, name: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .optional()
}

/// Opens a connection to the store at `path`: WAL, every commit fsynced,
/// waiting up to 30 s for another connection's write.
pub(super) fn connect(path: &Path, read_only: bool) -> Result<Connection, ResultsError> {
    // Never through a symlink at the store's name (see `State::open`).
    let base = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let flags = if read_only {
        base | OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        base | OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
    };
    let conn = Connection::open_with_flags(path, flags).map_err(|e| sql_error(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(|e| sql_error(path, e))?;
    if read_only {
        // Readers scan (a snapshot streamed in order, a job looked up by
        // key): 512 KiB of pages serve them as well as the default 2 MiB,
        // in a collect that must fit a million jobs in 64 MB.
        conn.pragma_update(None, "cache_size", -512)
            .map_err(|e| sql_error(path, e))?;
    } else {
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
            .map_err(|e| sql_error(path, e))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| sql_error(path, e))?;
    }
    Ok(conn)
}

/// A store written by a newer batchgen: left as it is.
pub(super) fn newer(store: &Path, found: u32) -> ResultsError {
    ResultsError::Refused(format!(
        "{}: this state file is at version {found}, written by a newer batchgen; this batchgen ({}) reads versions up to {}. \
         It is left untouched and nothing was sent: run the newer batchgen",
        store.display(),
        env!("CARGO_PKG_VERSION"),
        schema::VERSION
    ))
}

/// Takes the OS lock on `file` (a store or a results file), for `results`.
pub(super) fn try_lock(file: &File, results: &Path) -> Result<(), ResultsError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(ResultsError::Locked {
            path: results.to_owned(),
            holder: None,
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(io_error(results, e)),
    }
}

pub(super) fn io_error(path: &Path, source: io::Error) -> ResultsError {
    ResultsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// An SQLite error about the store at `path`: a file that is not a
/// database is refused (never overwritten); anything else is I/O.
pub(super) fn sql_error(path: &Path, e: rusqlite::Error) -> ResultsError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e
        && matches!(
            f.code,
            rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt
        )
    {
        return ResultsError::Refused(format!(
            "{}: not a batchgen state file, or a damaged one ({e}); batchgen leaves it untouched and sends nothing. \
             If you restored it from a backup, restore it again; keep the file",
            path.display()
        ));
    }
    io_error(path, to_io(e))
}

/// An SQLite error as I/O: a full disk, a read-only file or folder keep
/// their kinds, so the messages name the real cause.
pub(super) fn to_io(e: rusqlite::Error) -> io::Error {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        let errno = match f.code {
            rusqlite::ErrorCode::DiskFull => Some(libc::ENOSPC),
            rusqlite::ErrorCode::ReadOnly => Some(libc::EROFS),
            rusqlite::ErrorCode::PermissionDenied | rusqlite::ErrorCode::CannotOpen => {
                Some(libc::EACCES)
            }
            _ => None,
        };
        if let Some(errno) = errno {
            let os = io::Error::from_raw_os_error(errno);
            return io::Error::new(os.kind(), format!("{os} ({e})"));
        }
    }
    io::Error::other(e)
}
