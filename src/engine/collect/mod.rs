//! After submit: turning the results file's task IDs into a music catalog.
//!
//! ```text
//! results.csv ──▶ tasks not finished ──▶ poll (feed) ──▶ SharedCatalog ──▶ catalog.csv
//!   (read only)    (catalog says which)        │  (one writer, ≤ 1 write/s)
//!                                              └─▶ download (complete clips) ──▶ DIR/*.mp3
//!                                                  (audio checked before the rename)
//! ```
//!
//! [`collect`] is `batchgen collect`: it reads the results file, reads the
//! catalog back (it is the state: finished tasks are not polled again,
//! downloaded files not fetched again), polls the rest until they finish,
//! the `deadline` passes or `shutdown` is cancelled, and downloads complete
//! clips meanwhile. The callback receiver ([`crate::engine::collect::receive`]) feeds the
//! same catalog through the same parser and writer.
//!
//! # Layout
//! Below this engine: the one parser and completion rule
//! ([`crate::api::feed`]), one feed request ([`crate::api::poll`]), the
//! catalog rows, their merge and the one writer ([`crate::files::catalog`]).
//! Here:
//! - [`state`]: the submitted tasks and the catalog opened for one writer,
//!   shared with the receiver;
//! - [`poll`]: the polling schedule;
//! - [`download`], [`names`]: resumable, tagged downloads and file names;
//! - [`audio`]: what a download must be to be kept (the URL, the
//!   `Content-Type`, the first bytes);
//! - [`receive`]: the callback receiver, the other way clips arrive.
//!
//! The run itself is named phases, in this order: read the tasks, open
//! the catalog, check the download folder, start the deadline, the
//! catalog writer and the downloads, queue what is already complete,
//! poll, then wind down (downloads, deadline, writer) and tally.

pub mod audio;
pub mod download;
pub mod names;
pub mod poll;
pub mod receive;
pub mod state;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::job::Provider;

use crate::api::feed::ClipStatus;
use crate::api::poll::FeedClient;
use crate::files::catalog::{CatalogError, SharedCatalog};
use crate::files::results::{self, ResultsError};
use crate::util::redact::Secret;
use crate::util::units::Rate;
use download::{DownloadConfig, DownloadSummary};
use poll::{PollSettings, PollSummary};
use state::{OpenCatalog, Task};

/// The default of `--poll-interval`: the provider asks for no faster.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// The default of `--poll-rate`.
pub const DEFAULT_POLL_RATE: Rate = Rate::Limited {
    count: std::num::NonZeroU32::new(2).expect("nonzero"),
    per: Duration::from_secs(1),
};
/// The default of `--deadline`.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30 * 60);
/// Polls in flight at most.
pub const POLL_CONCURRENCY: usize = 4;

/// Everything `collect` needs, merged and checked by the caller.
#[derive(Debug, Clone)]
pub struct CollectConfig {
    pub results: PathBuf,
    pub catalog: PathBuf,
    /// Whose feed is polled (the run's provider).
    pub provider: Provider,
    pub base_url: Url,
    pub api_key: Secret,
    /// Per task: at most one poll this often.
    pub poll_interval: Duration,
    /// All polls together.
    pub poll_rate: Rate,
    pub poll_concurrency: usize,
    /// After this, unfinished tasks are left for the next run.
    pub deadline: Duration,
    /// Per request.
    pub timeout: Duration,
    pub download: Option<DownloadConfig>,
}

/// `jobs.results.csv` → `jobs.catalog.csv` (any other name: `<stem>.catalog.csv`).
pub fn default_catalog_path(results: &Path) -> PathBuf {
    let name = results
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name
        .strip_suffix(".results.csv")
        .or_else(|| name.strip_suffix(".csv"))
        .unwrap_or(&name);
    let stem = if stem.is_empty() { "batchgen" } else { stem };
    results.with_file_name(format!("{stem}.catalog.csv"))
}

/// What a collect run ended with. Its exit code is the program's choice
/// (`crate::program::exit`): 0 when every clip is final (and downloaded,
/// if asked), else 1.
#[derive(Debug, Clone, Default)]
pub struct CollectReport {
    /// Submitted tasks in the results file.
    pub tasks: usize,
    /// Tasks whose clips are all complete or failed.
    pub tasks_finished: usize,
    pub clips_complete: usize,
    pub clips_failed: usize,
    pub clips_pending: usize,
    /// Complete clips without a downloaded file (with `--download`).
    pub files_missing: usize,
    pub polls: PollSummary,
    pub downloads: DownloadSummary,
    /// The deadline passed with work left.
    pub deadline_hit: bool,
    pub catalog: PathBuf,
}

/// Why a collect run stopped before its end. Each names what failed; the
/// program picks the exit code and the hint.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The results file is missing (or its metadata unreadable).
    #[error("cannot read {}: {source}", path.display())]
    NoResults {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The results file is there but cannot be read, or is not batchgen's.
    #[error("{0}")]
    ResultsUnreadable(ResultsError),
    /// The catalog is locked, unreadable, not a catalog, or unwritable.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// `--download DIR` cannot be created or written into.
    #[error("cannot write into the download folder {}: {source}", path.display())]
    DownloadDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The API refused the key (401, 402, 403); `message` is the poll's
    /// error, `HTTP <status>: …` included.
    #[error("{message}")]
    Refused { status: u16, message: String },
    /// The results file holds task IDs another provider issued.
    #[error("{0}")]
    WrongProvider(String),
    /// The host redirected a poll: `--base-url` is wrong.
    #[error("{0}")]
    Misdirected(String),
    /// Too many polls in a row failed.
    #[error("{0}")]
    Unavailable(String),
    /// An HTTP client could not be built.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The one limiter constructor for polls and downloads: no burst, one
/// cell per `rate`'s interval; `None` when unlimited. (The submit pacer
/// and the sandbox pace differently, on purpose, in their own modules.)
fn rate_limiter(rate: Rate) -> Option<DefaultDirectRateLimiter> {
    rate.interval().map(|every| {
        RateLimiter::direct(Quota::with_period(every).expect("rate interval is never zero"))
    })
}

/// Polls and downloads until every submitted task is finished, the deadline
/// passes or `shutdown` is cancelled; see the module docs.
///
/// # Errors
/// The results file missing or unreadable; the catalog or download
/// directory unwritable, locked or not a catalog; the key refused; a
/// redirect; the API unreachable ([`CollectError`]).
pub async fn collect(
    config: CollectConfig,
    shutdown: CancellationToken,
) -> Result<CollectReport, CollectError> {
    let (keys, tasks) = read_tasks(&config.results)?;
    check_provider(&config, &tasks)?;
    let catalog = OpenCatalog::open(&config.catalog, || keys)?;
    if let Some(d) = &config.download {
        check_download_dir(&d.dir)?;
    }
    let to_poll = unfinished(&catalog.store, &tasks);
    tracing::info!(
        tasks = tasks.len(),
        to_poll = to_poll.len(),
        "collecting into {}",
        config.catalog.display()
    );

    let work = shutdown.child_token();
    let deadline = Deadline::start(&work, config.deadline);
    let writer = catalog.start_writer(CancellationToken::new());
    let (queue, downloading) = (config.download.as_ref())
        .map(|d| download::spawn(d.clone(), Arc::clone(&catalog.store), work.clone()))
        .transpose()?
        .unzip();
    let queue = Queue::new(queue, &tasks, &catalog.store);
    for task in &tasks {
        queue.complete_clips_of(&task.key);
    }

    let client = FeedClient::new(&config.base_url, config.api_key.clone(), config.timeout)?
        .with_provider(config.provider, &config.base_url);
    let settings = PollSettings {
        interval: config.poll_interval,
        rate: config.poll_rate,
        concurrency: config.poll_concurrency,
    };
    let polled = poll::poll_until_finished(
        client,
        settings,
        to_poll,
        Arc::clone(&catalog.store),
        |key| queue.complete_clips_of(key),
        work.clone(),
    )
    .await;

    // Winding down, in this order: downloads, the deadline, the writer.
    if polled.is_err() {
        work.cancel();
    }
    drop(queue);
    let mut downloaded = DownloadSummary::default();
    if let Some(handle) = downloading {
        downloaded = handle.await.unwrap_or_default();
    }
    work.cancel();
    let deadline_hit = deadline.finish().await;
    let flushed = writer.finish().await;
    let polls = polled?;
    flushed?;

    let report = CollectReport {
        tasks: tasks.len(),
        polls,
        downloads: downloaded,
        deadline_hit,
        catalog: config.catalog.clone(),
        ..CollectReport::default()
    };
    Ok(tally(
        report,
        &catalog.store,
        &tasks,
        config.download.is_some(),
    ))
}

/// The results file's job keys (results order) and submitted tasks.
fn read_tasks(path: &Path) -> Result<(Vec<String>, Vec<Task>), CollectError> {
    if let Err(source) = std::fs::metadata(path) {
        return Err(CollectError::NoResults {
            path: path.to_owned(),
            source,
        });
    }
    let records = results::latest(path).map_err(CollectError::ResultsUnreadable)?;
    let keys = records.iter().map(|r| r.id.clone()).collect();
    Ok((keys, state::submitted(&records)))
}

/// Refuses a results file none of whose task IDs looks like one the
/// configured provider issues (see
/// [`crate::api::provider::Wire::owns_task_id`]): it was written with
/// another `--provider`, and every task would be polled at the wrong
/// feed until each is given up. One odd row (a hand edit, a hostile
/// host's ID) does not decide it: only a file with no task of this
/// provider's shape.
fn check_provider(config: &CollectConfig, tasks: &[Task]) -> Result<(), CollectError> {
    let wire = crate::api::provider::wire(config.provider);
    if tasks.iter().any(|t| wire.owns_task_id(&t.task_id)) {
        return Ok(());
    }
    match tasks.first() {
        None => Ok(()),
        Some(task) => Err(CollectError::WrongProvider(format!(
            "none of the {} task IDs in {} looks like one provider {} ({}) issues (the first: {:?} of job {}): collect with the --provider the run used (or set BATCHGEN_PROVIDER)",
            tasks.len(),
            config.results.display(),
            config.provider,
            config.provider.describe(),
            task.task_id,
            task.key,
        ))),
    }
}

/// Creates `dir` and proves a file can be made in it, before any request.
fn check_download_dir(dir: &Path) -> Result<(), CollectError> {
    let error = |source| CollectError::DownloadDir {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(error)?;
    tempfile::tempfile_in(dir).map_err(error)?;
    Ok(())
}

/// The tasks the catalog does not call finished: those are polled.
fn unfinished(store: &SharedCatalog, tasks: &[Task]) -> Vec<Task> {
    let catalog = store.lock();
    tasks
        .iter()
        .filter(|t| !catalog.task_finished(&t.key, &t.task_id))
        .cloned()
        .collect()
}

/// Cancels `work` when the deadline passes, and remembers that it did.
struct Deadline {
    hit: Arc<AtomicBool>,
    timer: JoinHandle<()>,
}

impl Deadline {
    fn start(work: &CancellationToken, after: Duration) -> Deadline {
        let hit = Arc::new(AtomicBool::new(false));
        let timer = {
            let (work, hit) = (work.clone(), Arc::clone(&hit));
            tokio::spawn(async move {
                tokio::select! {
                    () = work.cancelled() => {}
                    () = tokio::time::sleep(after) => {
                        hit.store(true, Ordering::SeqCst);
                        work.cancel();
                    }
                }
            })
        };
        Deadline { hit, timer }
    }

    /// Waits for the timer (`work` must be cancelled by now); whether the
    /// deadline passed.
    async fn finish(self) -> bool {
        let _ = self.timer.await;
        self.hit.load(Ordering::SeqCst)
    }
}

/// Sends complete clips to the downloaders, each clip once per run.
struct Queue<'a> {
    tx: Option<download::Queue>,
    /// The task ID of each job key: rows of an older task are not sent.
    task_ids: HashMap<&'a str, &'a str>,
    store: &'a SharedCatalog,
    queued: Mutex<HashSet<(String, u32)>>,
}

impl<'a> Queue<'a> {
    fn new(tx: Option<download::Queue>, tasks: &'a [Task], store: &'a SharedCatalog) -> Queue<'a> {
        Queue {
            tx,
            task_ids: task_ids(tasks),
            store,
            queued: Mutex::default(),
        }
    }

    /// Queues job `key`'s complete clips not queued yet (none without
    /// `--download`).
    fn complete_clips_of(&self, key: &str) {
        let Some(tx) = &self.tx else { return };
        let Some(&task_id) = self.task_ids.get(key) else {
            return;
        };
        let catalog = self.store.lock();
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        for row in catalog.task_rows(key) {
            // A complete clip without a usable `audio_url` is sent too: the
            // downloader fails its row with the reason, and it is counted.
            if row.task_id != task_id
                || row.status() != ClipStatus::Complete
                || !queued.insert((row.key.clone(), row.clip_index))
            {
                continue;
            }
            let _ = tx.send(row.clone());
        }
    }
}

fn task_ids(tasks: &[Task]) -> HashMap<&str, &str> {
    tasks
        .iter()
        .map(|t| (t.key.as_str(), t.task_id.as_str()))
        .collect()
}

/// Counts the catalog's rows of this run's tasks into `report`.
fn tally(
    mut report: CollectReport,
    store: &SharedCatalog,
    tasks: &[Task],
    downloading: bool,
) -> CollectReport {
    let task_ids = task_ids(tasks);
    let catalog = store.lock();
    for task in tasks {
        if catalog.task_finished(&task.key, &task.task_id) {
            report.tasks_finished += 1;
        }
    }
    for row in catalog.rows() {
        if task_ids.get(row.key.as_str()) != Some(&row.task_id.as_str()) {
            continue;
        }
        match row.status() {
            ClipStatus::Complete => {
                report.clips_complete += 1;
                if downloading && row.file.is_empty() {
                    report.files_missing += 1;
                }
            }
            ClipStatus::Failed => report.clips_failed += 1,
            _ => report.clips_pending += 1,
        }
    }
    report
}
