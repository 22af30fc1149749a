//! The results file: the one place a run's outcome is recorded.
//!
//! # Why the results CSV is also the journal
//! A crash must never lose a job the API accepted (it is recorded with its
//! task ID or, if the answer came in the last milliseconds, as `unknown`),
//! and a rerun must never submit a job twice. The results file therefore
//! doubles as an append-only journal:
//!
//! 1. At start the previous file (if any) is indexed ([`Store`]), merged
//!    with the manifest, and rewritten *compacted* ([`Compactor`]): one row
//!    per job, manifest order, written to a temporary file, fsynced and
//!    renamed over the old one (never half written).
//! 2. During the run, a single recorder task appends a row each time a job's
//!    state changes: `sending` *before* each request goes out (and the worker
//!    waits until that row is on disk), then the final state after. Appends
//!    are grouped and fsynced once per batch; the final state rides with
//!    the batch that carries the worker's next `sending` row, so it is on
//!    disk before that worker sends again.
//! 3. At the end the file is compacted again.
//!
//! Readers take the *last* row for each `id`. A row left `sending` by a crash
//! or `kill -9` becomes `unknown` on the next run (the request may have been
//! accepted), so it is not resent unless the user asks. One file, readable
//! with any CSV tool at any instant, no second store to keep in step.
//!
//! Nothing here holds the whole file: the store keeps 16 bytes per row (a
//! hash of the `id` and where its row starts) and reads a row when asked,
//! so a million-row results file costs a few dozen megabytes, not its size.
//!
//! A lock on `<results>.lock` (an OS advisory lock, released by the kernel
//! when the holder dies) keeps two runs off the same file.

mod journal;
mod store;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::job::Job;

pub use journal::{GroupCommit, Journal, Recorder, spawn};
pub use store::{Compactor, RowSummary, Store};

/// A job's state in the results file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not attempted yet.
    Pending,
    /// A request is (or was, at a crash) in flight. Journal only.
    Sending,
    /// The API returned a task ID.
    Submitted,
    /// The API refused the row, or retries ran out.
    Failed,
    /// The request may or may not have been accepted.
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Sending => "sending",
            Status::Submitted => "submitted",
            Status::Failed => "failed",
            Status::Unknown => "unknown",
        }
    }
}

/// One row of the results file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The job's key: its `id` or `fp-<fingerprint>`.
    pub id: String,
    /// Line in the manifest where the job starts.
    pub line: u64,
    #[serde(default)]
    pub task_id: String,
    pub status: Status,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub http_status: Option<u16>,
    #[serde(default)]
    pub error: String,
    /// RFC 3339, when the API accepted the job.
    #[serde(default)]
    pub submitted_at: String,
    /// Content hash, to notice a job edited under the same `id`.
    #[serde(default)]
    pub fingerprint: String,
}

impl Record {
    pub fn pending(job: &Job) -> Record {
        Record {
            id: job.key.clone(),
            line: job.line,
            task_id: String::new(),
            status: Status::Pending,
            attempts: 0,
            http_status: None,
            error: String::new(),
            submitted_at: String::new(),
            fingerprint: job.fingerprint.clone(),
        }
    }
}

impl Record {
    /// The row as a rerun treats it: a request left `sending` by a crash
    /// may have been accepted, so it is `unknown`.
    pub fn settled(mut self) -> Record {
        if self.status == Status::Sending {
            self.status = Status::Unknown;
            self.error = INTERRUPTED.to_owned();
        }
        self
    }
}

/// What an interrupted request is recorded as.
pub const INTERRUPTED: &str = "the run stopped while this request was in flight; it may have been accepted (rerun with --retry-unknown to send it again)";

/// Every row of a results file as written (journal rows included), in file
/// order. A torn last row (a crash mid-append) is ignored: it was never
/// acknowledged.
///
/// # Errors
/// When the file cannot be read or is not a batchgen results file.
pub fn read(path: &Path) -> Result<Vec<Record>, Error> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(results_error(path, source)),
    };
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(file);
    let mut records = Vec::new();
    let mut iter = reader.deserialize::<Record>().peekable();
    while let Some(row) = iter.next() {
        match row {
            Ok(r) => records.push(r),
            Err(e) if iter.peek().is_none() => {
                tracing::warn!("{}: ignoring a torn last row ({e})", path.display());
            }
            Err(e) => {
                return Err(not_ours(
                    path,
                    e.position().map_or(0, csv::Position::line),
                    &e,
                ));
            }
        }
    }
    Ok(records)
}

/// The latest row of each `id`, in order of first appearance, as a rerun
/// sees them: a row left `sending` is `unknown`.
///
/// # Errors
/// As [`read`].
pub fn latest(path: &Path) -> Result<Vec<Record>, Error> {
    let mut order: Vec<String> = Vec::new();
    let mut last: std::collections::HashMap<String, Record> = std::collections::HashMap::new();
    for record in read(path)? {
        if !last.contains_key(&record.id) {
            order.push(record.id.clone());
        }
        last.insert(record.id.clone(), record.settled());
    }
    Ok(order
        .into_iter()
        .filter_map(|id| last.remove(&id))
        .collect())
}

fn results_error(path: &Path, source: io::Error) -> Error {
    Error::Results {
        path: path.to_owned(),
        source,
    }
}

fn not_ours(path: &Path, line: u64, why: &dyn std::fmt::Display) -> Error {
    Error::Config(format!(
        "{}:{line}: not a batchgen results file ({why}); move it away or choose another --out",
        path.display()
    ))
}

/// Writes `rows` as the whole results file, atomically.
///
/// # Errors
/// Any I/O error; `path` is then left as it was.
pub fn write_atomic(path: &Path, rows: &[Record]) -> Result<(), Error> {
    let mut out = Compactor::new(path)?;
    for row in rows {
        out.write(row)?;
    }
    out.finish()
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Makes a rename durable. Best effort: not every filesystem allows it.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Holds the advisory lock on `<results>.lock` for as long as it lives.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl Lock {
    /// # Errors
    /// [`Error::Locked`] when another live process holds it.
    pub fn acquire(results: &Path) -> Result<Lock, Error> {
        let mut name = results.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| results_error(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(Error::Locked {
                    path: results.to_owned(),
                    holder: text.trim().parse().ok(),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(results_error(&path, e)),
        }
        // Record the holder for the next run's message; harmless if it fails.
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = writeln!(file, "{}", std::process::id());
        Ok(Lock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobFields;

    fn job(id: &str) -> Job {
        Job::new(
            JobFields {
                id: Some(id.into()),
                prompt: Some(format!("song {id}")),
                ..JobFields::default()
            },
            2,
        )
    }

    fn record(id: &str, status: Status) -> Record {
        Record {
            status,
            task_id: if status == Status::Submitted {
                format!("t-{id}")
            } else {
                String::new()
            },
            ..Record::pending(&job(id))
        }
    }

    #[test]
    fn the_store_finds_the_last_row_and_keeps_orphans() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        write_atomic(
            &path,
            &[
                record("b", Status::Sending),
                record("gone", Status::Submitted),
                record("a", Status::Sending),
                record("a", Status::Submitted),
            ],
        )
        .unwrap();
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.len(), 4);
        assert_eq!(store.get("a").unwrap().unwrap().task_id, "t-a");
        let b = store.get("b").unwrap().unwrap();
        assert_eq!(b.status, Status::Sending);
        let b = b.settled();
        assert_eq!((b.status, b.error.as_str()), (Status::Unknown, INTERRUPTED));
        assert!(store.get("c").unwrap().is_none());
        let orphans: Vec<_> = store.orphans().unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(orphans, ["gone"]);
    }

    #[test]
    fn journal_appends_and_a_torn_last_row_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        write_atomic(
            &path,
            &[record("a", Status::Pending), record("b", Status::Pending)],
        )
        .unwrap();
        let mut journal = Journal::open(&path).unwrap();
        journal.append(&[&record("a", Status::Sending)]).unwrap();
        journal.append(&[&record("a", Status::Submitted)]).unwrap();
        drop(journal);
        // A crash in the middle of an append.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"b,2,,sen").unwrap();
        drop(f);
        assert_eq!(read(&path).unwrap().len(), 4);
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.get("a").unwrap().unwrap().status, Status::Submitted);
        assert_eq!(store.get("b").unwrap().unwrap().status, Status::Pending);
        let latest: Vec<_> = latest(&path)
            .unwrap()
            .into_iter()
            .map(|r| r.status)
            .collect();
        assert_eq!(latest, [Status::Submitted, Status::Pending]);
    }

    #[test]
    fn after_a_run_journal_rows_update_their_jobs_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        write_atomic(
            &path,
            &[record("a", Status::Pending), record("b", Status::Pending)],
        )
        .unwrap();
        let start = std::fs::metadata(&path).unwrap().len();
        let mut journal = Journal::open(&path).unwrap();
        for r in [
            record("b", Status::Sending),
            record("b", Status::Submitted),
            record("a", Status::Sending),
        ] {
            journal.append(&[&r]).unwrap();
        }
        drop(journal);
        let mut store = Store::open_after_run(&path, Some(start)).unwrap();
        assert_eq!(store.len(), 2, "one entry per job, not per row");
        assert_eq!(store.get("b").unwrap().unwrap().task_id, "t-b");
        assert_eq!(store.get("a").unwrap().unwrap().status, Status::Sending);
        assert_eq!(
            Store::open(&path).unwrap().len(),
            5,
            "without the hint, every row"
        );
    }

    #[test]
    fn a_scan_sees_what_get_reads_and_refuses_the_unusual() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let rows = [
            record("a", Status::Submitted),
            Record {
                error: "refused, \"badly\"\non two lines".into(),
                http_status: Some(400),
                ..record("b", Status::Failed)
            },
        ];
        write_atomic(&path, &rows).unwrap();
        let mut seen = Vec::new();
        assert!(Store::scan(&path, |row| {
            seen.push((
                String::from_utf8(row.id.to_vec()).unwrap(),
                row.line,
                row.status,
                String::from_utf8(row.fingerprint.to_vec()).unwrap(),
            ));
            true
        }));
        let mut store = Store::open(&path).unwrap();
        for (id, line, status, fingerprint) in seen {
            let r = store.get(&id).unwrap().unwrap();
            assert_eq!(
                (line, status, fingerprint),
                (r.line, r.status, r.fingerprint)
            );
        }
        assert!(!Store::scan(&path, |_| false), "the visitor stops it");
        assert!(!Store::scan(&dir.path().join("none.csv"), |_| true));
        let text = std::fs::read_to_string(&path).unwrap();
        for unusual in [
            text.replace(",submitted,", ",Submitted,"),
            text.replace("a,2,", "a,+2,"),
            text.replace(",400,", ",4000000,"),
            text + "c,2,,sen",
            "name,age\nann,3\n".into(),
        ] {
            std::fs::write(&path, unusual).unwrap();
            assert!(!Store::scan(&path, |_| true));
        }
    }

    #[test]
    fn a_foreign_file_is_refused_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        std::fs::write(&path, "name,age\nann,3\nbob,4\n").unwrap();
        assert!(read(&path).is_err());
        assert!(Store::open(&path).is_err());
    }

    #[test]
    fn a_second_lock_on_the_same_file_is_refused_with_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let first = Lock::acquire(&path).unwrap();
        match Lock::acquire(&path) {
            Err(Error::Locked { holder, .. }) => assert_eq!(holder, Some(std::process::id())),
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        Lock::acquire(&path).unwrap();
    }
}
