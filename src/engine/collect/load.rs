//! Feeding a collect run its tasks: the store's jobs with their clips, in
//! report order, one page at a time.
//!
//! It runs on a blocking thread and hands tasks over a bounded channel: it
//! reads ahead only as far as the run takes tasks, so memory holds the
//! channel and one page, not the store. Each page is a short read of its
//! own (a run that lasts hours holds no snapshot open); a job this run
//! changes after its page was read is read again when it is taken
//! ([`crate::files::state::Catalog::unless_changed`]).

use std::path::PathBuf;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::CollectError;
use super::state::Task;
use crate::files::catalog::{CatalogError, Row};
use crate::files::state::Which;

/// Tasks read ahead of the run.
const READ_AHEAD: usize = 256;

/// A submitted task and its rows in the store when they were read (none
/// if it was never collected).
#[derive(Debug)]
pub struct Loaded {
    pub task: Task,
    pub rows: Vec<Row>,
}

/// Starts reading the submitted tasks of the store at `store` (those of
/// `which`: a run that downloads nothing skips finished tasks in the
/// store); the handle says how many tasks were read, or why the reading
/// stopped. It stops early, without error,
/// when the receiver is dropped.
pub fn spawn(
    store: PathBuf,
    which: Which,
) -> (
    mpsc::Receiver<Loaded>,
    JoinHandle<Result<u64, CollectError>>,
) {
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    let handle = tokio::task::spawn_blocking(move || {
        let mut count = 0u64;
        let read = crate::files::state::each_job_in(&store, which, |job| {
            let Some(task) = Task::of_job(&job) else {
                return Ok(());
            };
            count += 1;
            tx.blocking_send(Loaded {
                task,
                rows: job.rows,
            })
            .map_err(|_| Stop::Taken)
        });
        match read {
            Ok(()) | Err(Stop::Taken) => Ok(count),
            Err(Stop::Failed(e)) => Err(CollectError::Catalog(e)),
        }
    });
    (rx, handle)
}

/// Why the reading stopped early.
enum Stop {
    /// The run takes no more.
    Taken,
    Failed(CatalogError),
}

impl From<CatalogError> for Stop {
    fn from(e: CatalogError) -> Stop {
        Stop::Failed(e)
    }
}
