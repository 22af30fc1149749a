//! The feeder: the blocking thread that hands the planned jobs to the pool,
//! in chunks over a bounded channel, from the jobs the plan kept or from
//! the manifest read again. A module of its own because it is the run's
//! one reader of the manifest while the pool sends, and the channel is
//! its whole contract with the pool: the feeder stops when the pool drops
//! the receiving end, and stops the run (cancelling its token) when the
//! manifest cannot be read.

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::files::manifest::{self, ManifestError};
use crate::job::Job;
use crate::settings::CallbackBase;

/// How many jobs the feeder hands over at a time.
///
/// Why chunks: the feeder is a thread reading the manifest. Handing jobs over
/// one at a time wakes it (a context switch) for every job, which profiling
/// showed was a large share of the pool's own CPU time at thousands of
/// requests per second. A chunk is shared by all workers (see the pool's
/// `Backlog`), so it never leaves one worker with a backlog while others
/// idle.
pub const CHUNK: usize = 64;

/// The feeder's end of the chunk channel.
pub type ChunkSender = mpsc::Sender<Vec<Job>>;
/// The pool's end of the chunk channel.
pub type ChunkReceiver = mpsc::Receiver<Vec<Job>>;

/// The channel from the feeder to the pool: two chunks waiting at most.
pub fn chunk_channel() -> (ChunkSender, ChunkReceiver) {
    mpsc::channel(2)
}

/// Where the feeder takes the jobs to send from.
pub enum JobSource {
    /// The jobs the merge kept (`Plan::take_held`), `todo` exactly.
    Held(Vec<Job>),
    /// The manifest, read again; `todo` picks the jobs.
    Manifest(manifest::Jobs),
}

/// Starts the feeder on a blocking thread: it sends the jobs at the
/// manifest positions `todo` (with `callback` applied) down `queue`. When
/// the manifest cannot be read it cancels `stop`, so the pool stops too,
/// and returns the error.
pub fn spawn(
    source: JobSource,
    todo: Vec<u32>,
    queue: ChunkSender,
    callback: Option<CallbackBase>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<Result<(), ManifestError>> {
    tokio::task::spawn_blocking(move || {
        let fed = feed_jobs(source, &todo, &queue, callback.as_ref());
        if fed.is_err() {
            stop.cancel();
        }
        fed
    })
}

/// Sends the planned jobs down the queue: the kept ones all at once, or,
/// reading the manifest again, in chunks of [`CHUNK`]. Ends early when
/// the pool stops (the queue is closed).
fn feed_jobs(
    source: JobSource,
    todo: &[u32],
    queue: &ChunkSender,
    callback: Option<&CallbackBase>,
) -> Result<(), ManifestError> {
    let jobs = match source {
        JobSource::Manifest(jobs) => jobs,
        JobSource::Held(mut held) => {
            if let Some(callback) = callback {
                held.iter_mut().for_each(|job| callback.apply(job));
            }
            // All at once: the pool takes from one queue, and nothing
            // wakes this thread again.
            let _ = queue.blocking_send(held);
            return Ok(());
        }
    };
    let mut want = todo.iter().copied().peekable();
    let mut chunk = Vec::with_capacity(CHUNK);
    for (i, job) in jobs.enumerate() {
        let mut job = job?;
        let Some(&next) = want.peek() else { break };
        if i as u64 != u64::from(next) {
            continue;
        }
        want.next();
        if let Some(callback) = callback {
            callback.apply(&mut job);
        }
        chunk.push(job);
        if chunk.len() == CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            if queue.blocking_send(full).is_err() {
                return Ok(());
            }
        }
    }
    if !chunk.is_empty() {
        // An error means the pool stopped: these stay `pending`.
        let _ = queue.blocking_send(chunk);
    }
    Ok(())
}
