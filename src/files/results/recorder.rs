//! The recorder: the one thread that writes a run's rows while it goes
//! (into the state store: [`Sink`]), each batch durable before it is
//! acknowledged, so a worker never sends before its `sending` row is on
//! disk.

use std::io;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{Record, Status};

/// Where the recorder writes: each call one batch, durable when it
/// returns, or nothing of it on an error.
pub trait Sink: Send + 'static {
    /// # Errors
    /// Any write error (a full disk).
    fn append(&mut self, rows: &[&Record]) -> io::Result<()>;
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
    /// When the first of those was queued.
    first_waiter: Option<Instant>,
    /// When the last waited-on row was queued, and the running average of
    /// the gaps between them (`None` until there are two).
    last_waiter: Option<Instant>,
    gap: Option<Duration>,
    /// Every [`Recorder`] is gone: write what is queued and stop.
    closed: bool,
    /// The thread waits on the condvar and nobody has woken it yet.
    /// (`notify_one` is a futex syscall whether or not anyone waits, so it
    /// is only called when someone does.)
    asleep: bool,
}

impl Queue {
    /// Counts a waited-on row queued at `now` into the gap average (one
    /// eighth per row, so a few dozen rows set it).
    fn note_waiter(&mut self, now: Instant) {
        if let Some(last) = self.last_waiter {
            let gap = now.saturating_duration_since(last);
            self.gap = Some(self.gap.map_or(gap, |avg| (avg * 7 + gap) / 8));
        }
        self.last_waiter = Some(now);
        self.waited_on += 1;
        self.first_waiter.get_or_insert(now);
    }
}

/// When a batch that workers wait on is written: a group commit.
///
/// Every fsync costs the same whether it covers one row or fifty (on the
/// 2-core VM the overhead benchmark runs on, ~60–90 µs of CPU, most of it
/// in the hypervisor), and at thousands of requests per second those
/// fsyncs were the largest share of batchgen's own CPU time. So when
/// workers queue `sending` rows faster than one per [`GroupCommit::wait`]
/// / 8, the first to wait gives the others up to [`GroupCommit::wait`] to
/// join, or until half of the pool waits. Nothing is sent before its row is
/// on disk, so the crash guarantee (at most one `unknown` per worker) is
/// untouched; what it costs is up to `wait` of a worker's time, and with
/// half the pool still sending that is not throughput (the bare loop of the
/// benchmark reaches the same rate with 16 connections as with 64). When
/// rows come slower (a rate limit, a small pool) nobody waits for company
/// that would not come in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommit {
    /// Write as soon as this many workers wait.
    pub waiters: usize,
    /// The longest the first waiter waits for the others.
    pub wait: Duration,
}

impl GroupCommit {
    /// For a pool of `workers`: write once half of them wait, or after
    /// 2 ms.
    pub fn for_workers(workers: usize) -> GroupCommit {
        GroupCommit {
            waiters: (workers / 2).max(1),
            wait: Duration::from_millis(2),
        }
    }

    /// How long after the first waiter queued its row the batch is due:
    /// `None` when it is due now.
    fn patience(&self, q: &Queue) -> Option<Duration> {
        if q.waited_on == 0 || q.waited_on >= self.waiters {
            return None;
        }
        // Company is expected when the recent gap leaves room for several
        // rows within the wait.
        let gap = q.gap?;
        (gap * 8 <= self.wait).then_some(self.wait)
    }
}

/// What the recorder thread and the [`Recorder`] handles share.
struct Handoff {
    queue: Mutex<Queue>,
    wake: Condvar,
    commit: GroupCommit,
}

impl Handoff {
    fn push(&self, row: Pending) {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let waited_on = row.1.is_some();
        // The thread needs waking for the first row of an empty queue (it
        // may be asleep with no deadline), a full batch, the first
        // waited-on row (it sets the batch's deadline) and the one that
        // completes the group. Other rows join the batch that is gathering
        // anyway, which saves a wake-up (a syscall) per row.
        let mut wake = q.rows.is_empty() || q.rows.len() + 1 == MAX_BATCH;
        if waited_on {
            q.note_waiter(Instant::now());
            wake |= q.waited_on == 1 || q.waited_on == self.commit.waiters;
        }
        q.rows.push(row);
        let wake = wake && std::mem::take(&mut q.asleep);
        drop(q);
        if wake {
            self.wake.notify_one();
        }
    }

    /// Blocks until there is a batch to write: when workers wait on queued
    /// rows, as [`GroupCommit`] says; otherwise (outcome rows only) after
    /// at most [`LINGER`] so one fsync covers many. `false` once closed
    /// and drained.
    fn next_batch(&self, batch: &mut Vec<Pending>) -> bool {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let mut linger: Option<Instant> = None;
        loop {
            if q.rows.len() >= MAX_BATCH || (q.closed && !q.rows.is_empty()) {
                break;
            }
            if q.closed {
                return false;
            }
            if q.rows.is_empty() {
                q.asleep = true;
                q = self.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
                q.asleep = false;
                continue;
            }
            let due = match (q.first_waiter, self.commit.patience(&q)) {
                (Some(_), None) => break,
                (Some(first), Some(patience)) => first + patience,
                (None, _) => *linger.get_or_insert_with(|| Instant::now() + LINGER),
            };
            let now = Instant::now();
            if now >= due {
                break;
            }
            q.asleep = true;
            q = self
                .wake
                .wait_timeout(q, due - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            q.asleep = false;
        }
        q.waited_on = 0;
        q.first_waiter = None;
        std::mem::swap(&mut q.rows, batch);
        true
    }
}

/// Tells the recorder thread to finish when the last handle is dropped.
struct Closer(Arc<Handoff>);

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

    /// Records a row without waiting for the disk (it is there within the
    /// 2 ms linger, or sooner if a worker's `sending` row comes along).
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
/// Why a mutex and a condvar rather than a channel: the thread waits with
/// a deadline that depends on what is queued (the outcome rows' linger, a
/// group commit's wait) and must be woken early by the row that makes the
/// batch due. A channel can block or sleep a fixed time, not both; the
/// condvar does both, so a worker waits for one fsync plus the one in
/// progress, plus a group commit's wait only when others are coming.
pub fn spawn<S: Sink>(
    mut sink: S,
    commit: GroupCommit,
) -> (Recorder, tokio::task::JoinHandle<(Unrecorded, S)>) {
    let shared = Arc::new(Handoff {
        queue: Mutex::default(),
        wake: Condvar::new(),
        commit,
    });
    let recorder = Recorder {
        shared: Arc::new(Closer(shared.clone())),
    };
    let task = tokio::task::spawn_blocking(move || {
        let mut lost = Unrecorded::default();
        let mut batch = Vec::new();
        while shared.next_batch(&mut batch) {
            let rows: Vec<&Record> = batch.iter().map(|(r, _)| r).collect();
            let ok = lost.failure.is_none()
                && match sink.append(&rows) {
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
        (lost, sink)
    });
    (recorder, task)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::results::{Record, Status};

    fn row(id: &str, status: Status) -> Record {
        Record {
            key: id.into(),
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

    #[test]
    fn a_group_commit_waits_only_for_company_that_is_coming() {
        let commit = GroupCommit::for_workers(64);
        assert_eq!(commit.waiters, 32);
        let t0 = Instant::now();
        let mut q = Queue::default();
        // Nothing waited on, or the first waiter with no gap known yet
        // (the start of a run): nothing to wait for.
        assert_eq!(commit.patience(&q), None);
        q.note_waiter(t0);
        assert_eq!(commit.patience(&q), None);
        // Rows 50 µs apart: 40 would come within the wait, so the batch
        // waits for them.
        let gap = Duration::from_micros(50);
        q.note_waiter(t0 + gap);
        assert_eq!(commit.patience(&q), Some(commit.wait));
        assert_eq!(q.first_waiter, Some(t0));
        // ...until half the pool waits.
        for i in 2..32 {
            q.note_waiter(t0 + gap * i);
        }
        assert_eq!(q.waited_on, 32);
        assert_eq!(commit.patience(&q), None);

        // Rows 2 ms apart (a rate limit): nobody waits for them.
        let mut slow = Queue::default();
        for i in 0..10 {
            slow.note_waiter(t0 + Duration::from_millis(2) * i);
        }
        slow.waited_on = 1;
        assert_eq!(commit.patience(&slow), None);
        // A pool of one or two never waits at all.
        assert_eq!(GroupCommit::for_workers(1).patience(&q), None);
        assert_eq!(GroupCommit::for_workers(2).waiters, 1);
    }

    /// A sink that keeps each batch, and fails from the `fail_at`th on.
    #[derive(Clone, Default)]
    struct Batches {
        written: Arc<Mutex<Vec<Vec<String>>>>,
        fail_at: Option<usize>,
    }

    impl Sink for Batches {
        fn append(&mut self, rows: &[&Record]) -> io::Result<()> {
            let mut written = self.written.lock().unwrap();
            if self.fail_at.is_some_and(|n| written.len() >= n) {
                return Err(io::Error::from_raw_os_error(28));
            }
            written.push(rows.iter().map(|r| r.key.to_string()).collect());
            Ok(())
        }
    }

    #[tokio::test]
    async fn every_row_is_written_waited_on_or_not() {
        let sink = Batches::default();
        let (recorder, task) = spawn(sink.clone(), GroupCommit::for_workers(1));
        for i in 0..100 {
            recorder.record(row(&format!("o{i}"), Status::Submitted));
        }
        assert!(recorder.record_durably(row("s", Status::Sending)).await);
        // The waited-on row went out with everything queued before it.
        let written: usize = sink.written.lock().unwrap().iter().map(Vec::len).sum();
        assert_eq!(written, 101);
        // Outcome rows alone are written too, once the recorder is dropped
        // at the latest.
        recorder.record(row("last", Status::Failed));
        drop(recorder);
        let (lost, _) = task.await.unwrap();
        assert!(lost.failure.is_none() && lost.submitted.is_empty());
        let all: Vec<String> = sink.written.lock().unwrap().concat();
        assert_eq!(all.len(), 102);
        assert_eq!(all.last().unwrap(), "last");
    }

    #[tokio::test]
    async fn after_a_failed_write_nothing_is_acknowledged_and_accepted_jobs_are_handed_back() {
        let sink = Batches {
            fail_at: Some(1),
            ..Batches::default()
        };
        let (recorder, task) = spawn(sink.clone(), GroupCommit::for_workers(1));
        assert!(recorder.record_durably(row("a", Status::Sending)).await);
        recorder.record(row("a", Status::Submitted));
        assert!(
            !recorder.record_durably(row("b", Status::Sending)).await,
            "a worker must not send what could not be recorded"
        );
        drop(recorder);
        let (lost, _) = task.await.unwrap();
        assert_eq!(lost.failure.unwrap().raw_os_error(), Some(28));
        let ids: Vec<&str> = lost.submitted.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(
            ids,
            ["a"],
            "the accepted job the disk refused, to be printed"
        );
    }
}
