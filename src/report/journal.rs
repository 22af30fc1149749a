//! The recorder: the one task that appends to the results file while a run
//! goes, each batch flushed and fsynced before it is acknowledged.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{Record, Status, results_error};
use crate::error::Error;

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

    pub(super) fn append(&mut self, rows: &[&Record]) -> io::Result<()> {
        for row in rows {
            self.writer.serialize(row).map_err(io::Error::other)?;
        }
        self.writer.flush()?;
        self.writer.get_ref().sync_data()
    }
}

/// A row waiting for the recorder, with the worker's acknowledgement if one
/// waits for it.
type Pending = (Record, Option<oneshot::Sender<bool>>);

/// The queue between the workers and the recorder thread.
#[derive(Default)]
struct Queue {
    rows: Vec<Pending>,
    /// How many queued rows a worker is waiting for.
    waited_on: usize,
    /// Every [`Recorder`] is gone: write what is queued and stop.
    closed: bool,
}

/// What the recorder thread and the [`Recorder`] handles share.
#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl Shared {
    fn push(&self, row: Pending) {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let waited_on = row.1.is_some();
        // The thread needs waking for a waited-on row, a full batch, or the
        // first row of an empty queue (it may be asleep with no deadline);
        // other outcome rows join the batch that is gathering anyway, which
        // saves a wake-up (a syscall) per row.
        let wake = waited_on || q.rows.is_empty() || q.rows.len() + 1 >= MAX_BATCH;
        q.waited_on += usize::from(waited_on);
        q.rows.push(row);
        drop(q);
        if wake {
            self.wake.notify_one();
        }
    }

    /// Blocks until there is a batch to write: at once when a worker waits
    /// on a queued row, otherwise (outcome rows only) after at most
    /// [`LINGER`] so one fsync covers many. `false` once closed and drained.
    fn next_batch(&self, batch: &mut Vec<Pending>) -> bool {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let mut deadline: Option<Instant> = None;
        loop {
            if q.waited_on > 0 || q.rows.len() >= MAX_BATCH || (q.closed && !q.rows.is_empty()) {
                break;
            }
            if q.closed {
                return false;
            }
            if q.rows.is_empty() {
                q = self.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            let due = *deadline.get_or_insert_with(|| Instant::now() + LINGER);
            let now = Instant::now();
            if now >= due {
                break;
            }
            q = self
                .wake
                .wait_timeout(q, due - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        q.waited_on = 0;
        std::mem::swap(&mut q.rows, batch);
        true
    }
}

/// Tells the recorder thread to finish when the last handle is dropped.
struct Closer(Arc<Shared>);

impl Drop for Closer {
    fn drop(&mut self) {
        let mut q = self.0.queue.lock().unwrap_or_else(PoisonError::into_inner);
        q.closed = true;
        self.0.wake.notify_one();
    }
}

/// The handle workers use to record a row. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    shared: Arc<Closer>,
}

impl Recorder {
    /// Records a row and waits until it is on disk. `false` means it could
    /// not be written: the caller must not send the request.
    pub async fn record_durably(&self, record: Record) -> bool {
        let (ack, done) = oneshot::channel();
        self.shared.0.push((record, Some(ack)));
        done.await.unwrap_or(false)
    }

    /// Records a row without waiting for the disk (it is there within
    /// [`LINGER`], or sooner if a worker's `sending` row comes along).
    pub fn record(&self, record: Record) {
        self.shared.0.push((record, None));
    }
}

/// Longest an outcome row waits for company before its fsync. Nobody waits
/// on outcome rows, so a little patience lets one fsync cover many; a
/// worker's `sending` row never waits (it goes out with whatever is queued).
const LINGER: Duration = Duration::from_millis(2);

/// Most rows written (and fsynced) together before the thread stops
/// waiting for more.
const MAX_BATCH: usize = 4096;

/// What the recorder could not write, and why.
#[derive(Debug, Default)]
pub struct Unrecorded {
    /// The first write error, after which nothing was acknowledged.
    pub failure: Option<io::Error>,
    /// Accepted jobs whose row never reached the disk: the caller must show
    /// their task IDs somewhere, or they are lost.
    pub submitted: Vec<Record>,
}

/// Starts the recorder, the only writer of the results file, on a blocking
/// thread (it fsyncs). It ends when every [`Recorder`] is dropped and says
/// what it could not write.
///
/// Why a mutex and a condvar rather than a channel: the thread must wait
/// for company when only outcome rows are queued, yet be woken the moment
/// a worker's `sending` row arrives. A channel can do one or the other
/// (block, or sleep a fixed linger); the condvar does both, so a worker's
/// wait is one fsync plus the one in progress, never a linger on top.
pub fn spawn(mut journal: Journal) -> (Recorder, tokio::task::JoinHandle<Unrecorded>) {
    let shared = Arc::new(Shared::default());
    let recorder = Recorder {
        shared: Arc::new(Closer(shared.clone())),
    };
    let task = tokio::task::spawn_blocking(move || {
        let mut lost = Unrecorded::default();
        let mut batch = Vec::new();
        while shared.next_batch(&mut batch) {
            let rows: Vec<&Record> = batch.iter().map(|(r, _)| r).collect();
            let ok = lost.failure.is_none()
                && match journal.append(&rows) {
                    Ok(()) => true,
                    Err(e) => {
                        lost.failure = Some(e);
                        false
                    }
                };
            for (record, ack) in batch.drain(..) {
                if !ok && record.status == Status::Submitted {
                    lost.submitted.push(record);
                }
                if let Some(ack) = ack {
                    let _ = ack.send(ok);
                }
            }
        }
        lost
    });
    (recorder, task)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Record, Status};

    fn row(id: &str, status: Status) -> Record {
        Record {
            id: id.into(),
            line: 2,
            task_id: String::new(),
            status,
            attempts: 1,
            http_status: None,
            error: String::new(),
            submitted_at: String::new(),
            fingerprint: String::new(),
        }
    }

    #[tokio::test]
    async fn every_row_reaches_the_file_waited_on_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        crate::report::write_atomic(&path, &[]).unwrap();
        let (recorder, task) = spawn(Journal::open(&path).unwrap());
        for i in 0..100 {
            recorder.record(row(&format!("o{i}"), Status::Submitted));
        }
        assert!(recorder.record_durably(row("s", Status::Sending)).await);
        // The waited-on row went out with everything queued before it.
        let on_disk = std::fs::read_to_string(&path).unwrap();
        assert_eq!(on_disk.lines().count(), 1 + 101, "{on_disk}");
        // Outcome rows alone are written too, once the recorder is dropped
        // at the latest.
        recorder.record(row("last", Status::Failed));
        drop(recorder);
        let lost = task.await.unwrap();
        assert!(lost.failure.is_none() && lost.submitted.is_empty());
        let rows = crate::report::read(&path).unwrap();
        assert_eq!(rows.len(), 102);
        assert_eq!(rows.last().unwrap().id, "last");
    }
}
