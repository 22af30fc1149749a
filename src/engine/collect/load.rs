//! Feeding a collect run its tasks: the results file and the catalog
//! read side by side, one task at a time.
//!
//! Both files are in results order (the catalog sorted by the results'
//! places since it was opened: [`crate::files::catalog::scan`]), so one
//! pass over each pairs every submitted task with its catalog rows, like
//! a merge join, holding one job of each. It runs on a blocking thread
//! and hands tasks over a bounded channel: it reads ahead only as far as
//! the run takes tasks, so memory holds the channel, not the files.

use std::ops::ControlFlow;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::CollectError;
use super::state::Task;
use crate::files::catalog::{CatalogError, Job, Jobs};
use crate::files::state::Snapshot;

/// Tasks read ahead of the run.
const READ_AHEAD: usize = 256;

/// A submitted task and its rows in the catalog when the run began (none
/// if it was never collected).
#[derive(Debug)]
pub struct Loaded {
    pub task: Task,
    pub job: Job,
}

/// Starts reading; the handle says how many tasks were read, or why the
/// reading stopped. It stops early, without error, when the receiver is
/// dropped.
pub fn spawn(
    results: Arc<Snapshot>,
    catalog: Jobs,
) -> (
    mpsc::Receiver<Loaded>,
    JoinHandle<Result<u64, CollectError>>,
) {
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    let handle = tokio::task::spawn_blocking(move || pair(&results, catalog, &tx));
    (rx, handle)
}

fn pair(results: &Snapshot, catalog: Jobs, tx: &mpsc::Sender<Loaded>) -> Result<u64, CollectError> {
    let mut catalog = Aligned::new(catalog);
    let mut count = 0u64;
    let mut failed: Option<CatalogError> = None;
    results
        .each(|rank, record| {
            let Some(task) = Task::of(rank, &record) else {
                return ControlFlow::Continue(());
            };
            let job = match catalog.job_of(&task) {
                Ok(job) => job,
                Err(e) => {
                    failed = Some(e);
                    return ControlFlow::Break(());
                }
            };
            count += 1;
            match tx.blocking_send(Loaded { task, job }) {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            }
        })
        .map_err(CollectError::ResultsUnreadable)?;
    match failed {
        Some(e) => Err(CollectError::Catalog(e)),
        None => Ok(count),
    }
}

/// The catalog's jobs, taken in step with the results' tasks.
struct Aligned {
    jobs: Jobs,
    /// Jobs read but not matched yet, all of one place (usually one).
    ahead: Vec<Job>,
    done: bool,
}

impl Aligned {
    fn new(jobs: Jobs) -> Aligned {
        Aligned {
            jobs,
            ahead: Vec::new(),
            done: false,
        }
    }

    /// `task`'s job: its rows if the catalog has any, else none. Jobs
    /// placed before it (rows of jobs that are not tasks) are passed by.
    fn job_of(&mut self, task: &Task) -> Result<Job, CatalogError> {
        self.ahead.retain(|j| j.rank >= task.rank);
        while !self.done && self.ahead.iter().all(|j| j.rank <= task.rank) {
            match self.jobs.next().transpose()? {
                Some(job) if job.rank >= task.rank => self.ahead.push(job),
                Some(_) => {}
                None => self.done = true,
            }
        }
        let found = self.ahead.iter().position(|j| j.key == task.key);
        Ok(match found {
            Some(at) => self.ahead.swap_remove(at),
            None => Job {
                key: task.key.clone(),
                rank: task.rank,
                rows: Vec::new(),
            },
        })
    }
}
