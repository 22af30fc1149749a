//! The recorder: the one task that appends to the results file while a run
//! goes, each batch flushed and fsynced before it is acknowledged.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

use tokio::sync::{mpsc, oneshot};

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

/// Longest an outcome row waits for company before its fsync.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

/// Most rows written (and fsynced) together.
const MAX_BATCH: usize = 4096;

/// Takes whatever is queued, up to a full batch.
fn drain(rx: &mut mpsc::Receiver<Message>, batch: &mut Vec<Message>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(m) => batch.push(m),
            Err(_) => break,
        }
    }
}

/// What the recorder could not write, and why.
#[derive(Debug, Default)]
pub struct Unrecorded {
    /// The first write error, after which nothing was acknowledged.
    pub failure: Option<io::Error>,
    /// Accepted jobs whose row never reached the disk: the caller must show
    /// their task IDs somewhere, or they are lost.
    pub submitted: Vec<Record>,
}

/// Starts the recorder task, the only writer of the results file. It ends
/// when every [`Recorder`] is dropped and says what it could not write.
pub fn spawn(mut journal: Journal) -> (Recorder, tokio::task::JoinHandle<Unrecorded>) {
    let (tx, mut rx) = mpsc::channel::<Message>(1024);
    let task = tokio::task::spawn_blocking(move || {
        let mut lost = Unrecorded::default();
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            drain(&mut rx, &mut batch);
            // Nobody waits on outcome rows: give them a moment to gather,
            // so one fsync covers many (they are on disk within LINGER).
            // A `sending` row is written at once: its worker waits for it.
            if batch.iter().all(|Message::Record(_, ack)| ack.is_none()) {
                std::thread::sleep(LINGER);
                drain(&mut rx, &mut batch);
            }
            let rows: Vec<&Record> = batch.iter().map(|Message::Record(r, _)| r).collect();
            let ok = lost.failure.is_none()
                && match journal.append(&rows) {
                    Ok(()) => true,
                    Err(e) => {
                        lost.failure = Some(e);
                        false
                    }
                };
            for Message::Record(record, ack) in batch {
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
    (Recorder { tx }, task)
}
