//! The results file: the one place a run's outcome is recorded.
//!
//! # Why the results CSV is also the journal
//! A crash must never lose a task ID the API returned, and a rerun must never
//! submit a job twice. The results file therefore doubles as an append-only
//! journal:
//!
//! 1. At start the previous file (if any) is read, merged with the manifest,
//!    and rewritten *compacted*: one row per job, manifest order, written to a
//!    temporary file, fsynced and renamed over the old one (never half
//!    written).
//! 2. During the run, a single recorder task appends a row each time a job's
//!    state changes: `sending` *before* each request goes out (and the worker
//!    waits until that row is on disk), then the final state after. Appends
//!    are grouped and fsynced once per batch.
//! 3. At the end the file is compacted again.
//!
//! Readers take the *last* row for each `id`. A row left `sending` by a crash
//! or `kill -9` becomes `unknown` on the next run (the request may have been
//! accepted), so it is not resent unless the user asks. One file, readable
//! with any CSV tool at any instant, no second store to keep in step.
//!
//! A lock on `<results>.lock` (an OS advisory lock, released by the kernel
//! when the holder dies) keeps two runs off the same file.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::error::Error;
use crate::job::Job;

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

/// What an interrupted request is recorded as.
pub const INTERRUPTED: &str = "the run stopped while this request was in flight; it may have been accepted (rerun with --retry-unknown to send it again)";

/// Every row of a results file: the manifest's jobs in order, then rows of
/// earlier runs whose job is no longer in the manifest (kept, never dropped:
/// they hold task IDs).
#[derive(Debug, Default)]
pub struct Table {
    pub rows: Vec<Record>,
    index: HashMap<String, usize>,
}

impl Table {
    /// Merges the manifest's jobs with what an earlier run recorded.
    pub fn merge(jobs: &[Job], previous: Vec<Record>) -> Table {
        let mut earlier: HashMap<String, Record> = HashMap::with_capacity(previous.len());
        let mut order = Vec::new();
        for mut record in previous {
            if record.status == Status::Sending {
                record.status = Status::Unknown;
                record.error = INTERRUPTED.to_owned();
            }
            if !earlier.contains_key(&record.id) {
                order.push(record.id.clone());
            }
            earlier.insert(record.id.clone(), record);
        }
        let mut table = Table::default();
        for job in jobs {
            let record = match earlier.remove(&job.key) {
                Some(mut r) => {
                    r.line = job.line;
                    // An unsent job takes its current content; a sent one
                    // keeps what was sent, so an edit can be noticed.
                    if r.fingerprint.is_empty() || r.status == Status::Pending {
                        r.fingerprint = job.fingerprint.clone();
                    }
                    r
                }
                None => Record::pending(job),
            };
            table.push(record);
        }
        for id in order {
            if let Some(record) = earlier.remove(&id) {
                table.push(record);
            }
        }
        table
    }

    fn push(&mut self, record: Record) {
        self.index.insert(record.id.clone(), self.rows.len());
        self.rows.push(record);
    }

    pub fn get(&self, key: &str) -> Option<&Record> {
        self.index.get(key).map(|&i| &self.rows[i])
    }

    /// Replaces the row with the same `id`.
    pub fn update(&mut self, record: Record) {
        match self.index.get(&record.id) {
            Some(&i) => self.rows[i] = record,
            None => self.push(record),
        }
    }
}

/// Reads a results file; a missing file is an empty one. A torn last row
/// (a crash mid-append) is ignored: it was never acknowledged.
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
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                return Err(Error::Config(format!(
                    "{}:{line}: not a batchgen results file ({e}); move it away or choose another --out",
                    path.display()
                )));
            }
        }
    }
    Ok(records)
}

fn results_error(path: &Path, source: io::Error) -> Error {
    Error::Results {
        path: path.to_owned(),
        source,
    }
}

/// Writes the whole table to `path` atomically: temp file, fsync, rename,
/// fsync of the folder.
///
/// # Errors
/// Any I/O error; `path` is then left as it was.
pub fn write_atomic(path: &Path, rows: &[Record]) -> Result<(), Error> {
    let dir = parent_dir(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".batchgen-results")
        .tempfile_in(&dir)
        .map_err(|e| results_error(path, e))?;
    {
        let mut writer = csv::Writer::from_writer(io::BufWriter::new(tmp.as_file_mut()));
        for row in rows {
            writer
                .serialize(row)
                .map_err(|e| results_error(path, e.into()))?;
        }
        writer.flush().map_err(|e| results_error(path, e))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| results_error(path, e))?;
    tmp.persist(path)
        .map_err(|e| results_error(path, e.error))?;
    sync_dir(&dir);
    Ok(())
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

/// Appends rows to the results file, each batch flushed and fsynced.
pub struct Journal {
    writer: csv::Writer<File>,
}

impl Journal {
    /// Opens the results file (already written by [`write_atomic`]) for
    /// appending.
    pub fn open(path: &Path) -> Result<Journal, Error> {
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| results_error(path, e))?;
        let writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(file);
        Ok(Journal { writer })
    }

    fn append(&mut self, rows: &[&Record]) -> io::Result<()> {
        for row in rows {
            self.writer.serialize(row).map_err(io::Error::other)?;
        }
        self.writer.flush()?;
        self.writer.get_ref().sync_data()
    }
}

enum Message {
    Record(Record, Option<oneshot::Sender<bool>>),
}

/// The handle workers use to record a row. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Message>,
}

impl Recorder {
    /// Records a row and waits until it is on disk. `false` means it could
    /// not be written: the caller must not send the request.
    pub async fn record_durably(&self, record: Record) -> bool {
        let (ack, done) = oneshot::channel();
        if self
            .tx
            .send(Message::Record(record, Some(ack)))
            .await
            .is_err()
        {
            return false;
        }
        done.await.unwrap_or(false)
    }

    /// Records a row without waiting for the disk.
    pub async fn record(&self, record: Record) {
        let _ = self.tx.send(Message::Record(record, None)).await;
    }
}

/// Starts the recorder task, the only writer of the results file. It ends
/// when every [`Recorder`] is dropped and returns the final table, or the
/// first write error (after which it acknowledges nothing).
pub fn spawn(
    mut journal: Journal,
    mut table: Table,
) -> (
    Recorder,
    tokio::task::JoinHandle<(Table, Option<io::Error>)>,
) {
    let (tx, mut rx) = mpsc::channel::<Message>(1024);
    let task = tokio::task::spawn_blocking(move || {
        let mut failure: Option<io::Error> = None;
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < 4096 {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            let rows: Vec<&Record> = batch.iter().map(|Message::Record(r, _)| r).collect();
            let ok = failure.is_none()
                && match journal.append(&rows) {
                    Ok(()) => true,
                    Err(e) => {
                        failure = Some(e);
                        false
                    }
                };
            for Message::Record(record, ack) in batch {
                // Kept in memory even when the disk failed: the final
                // compaction gets another chance to save it.
                table.update(record);
                if let Some(ack) = ack {
                    let _ = ack.send(ok);
                }
            }
        }
        (table, failure)
    });
    (Recorder { tx }, task)
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
    fn merge_keeps_manifest_order_last_row_wins_and_orphans() {
        let previous = vec![
            record("b", Status::Sending),
            record("gone", Status::Submitted),
            record("a", Status::Sending),
            record("a", Status::Submitted),
        ];
        let table = Table::merge(&[job("a"), job("b"), job("c")], previous);
        let ids: Vec<_> = table
            .rows
            .iter()
            .map(|r| (r.id.as_str(), r.status))
            .collect();
        assert_eq!(
            ids,
            [
                ("a", Status::Submitted),
                ("b", Status::Unknown),
                ("c", Status::Pending),
                ("gone", Status::Submitted),
            ]
        );
        assert_eq!(table.get("b").unwrap().error, INTERRUPTED);
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
        let rows = read(&path).unwrap();
        assert_eq!(rows.len(), 4);
        let table = Table::merge(&[job("a"), job("b")], rows);
        assert_eq!(table.get("a").unwrap().status, Status::Submitted);
        assert_eq!(table.get("a").unwrap().task_id, "t-a");
        assert_eq!(table.get("b").unwrap().status, Status::Pending);
    }

    #[test]
    fn a_foreign_file_is_refused_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        std::fs::write(&path, "name,age\nann,3\nbob,4\n").unwrap();
        assert!(read(&path).is_err());
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
