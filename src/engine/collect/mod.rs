//! After submit: turning the results file's task IDs into a music catalog.
//!
//! ```text
//! state store ── load (a page of jobs    intake ──▶ poll (feed, schedule) ──▶ Catalog ──▶ state store
//! (jobs, clips)   at a time) ──▶ ≤ WINDOW held jobs   ▲ callbacks (--listen)   │ commits ≤ 1/s ──▶ catalog.csv (report)
//!                                          └──▶ download (complete clips) ──▶ DIR/*.mp3 (tagged)
//!                                                          at the end: catalog.html, .m3u8
//! ```
//!
//! [`collect`] is `batchgen collect`: it reads the store's submitted tasks
//! with their clips (the state: finished tasks are not polled again,
//! downloaded files not fetched again) a page at a time ([`load`]), polls
//! the unfinished ones until they finish, the `deadline` passes or
//! `shutdown` is cancelled, and downloads complete clips meanwhile. The
//! callback receiver ([`crate::engine::collect::receive`]) feeds the same
//! catalog through the same parser and writer, on its own (`batchgen
//! receive`) or inside the run (`--listen`), where a callback that
//! finishes a task takes it out of the poll schedule.
//!
//! # Memory
//! A run holds at most [`WINDOW`] jobs (each a [`state::Hold`], shared by
//! the poller and the job's downloads), the jobs changed since the last
//! commit, and a page of the reader: what it keeps does not grow with the
//! catalog, which stays in the store (which also counts the tasks at the
//! end: [`state::Counts::of`]). A run that downloads nothing reads only
//! the tasks that are not finished. The bench's `collect-memory` target measures it at 10^6
//! tasks.
//!
//! # Layout
//! Below this engine: the one parser and completion rule
//! ([`crate::api::feed`]), one feed request ([`crate::api::poll`]), the
//! catalog's rows and their merge ([`crate::files::catalog`]), the store
//! and its one writer of clips ([`crate::files::state::Catalog`]), the page
//! ([`crate::files::page`]). Here:
//! - [`state`]: the submitted tasks, the catalog opened for one collector
//!   (shared with the receiver), the held jobs and the counts;
//! - [`load`]: the store's tasks, a page at a time;
//! - [`poll`]: the polling loop and its schedule;
//! - [`download`], [`names`]: resumable, tagged downloads and file names;
//! - [`audio`]: what a download must be to be kept (the URL, the
//!   `Content-Type`, the first bytes);
//! - [`receive`]: the callback receiver, the other way clips arrive.
//!
//! The run itself is named phases, in this order: read the results' store,
//! open the catalog (importing an earlier release's catalog CSV the first
//! time), check the download folder, start the deadline, the catalog
//! writer, the downloads, the receiver (with `--listen`) and the reader,
//! poll what comes in, then wind down (the intake, downloads, deadline,
//! receiver, writer: its last commit and the report), tally, and write
//! the page.

pub mod audio;
pub mod download;
pub mod load;
pub mod names;
pub mod poll;
pub mod receive;
pub mod state;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::job::Provider;

use crate::api::answer::Halt;
use crate::api::feed::ClipStatus;
use crate::api::poll::FeedClient;
use crate::files::catalog::job::finished;
use crate::files::catalog::{CatalogError, Row};
use crate::files::results::ResultsError;
use crate::files::state::{Catalog, Snapshot, Which};
use crate::util::redact::Secret;
use crate::util::units::Rate;
use download::{DownloadConfig, DownloadSummary};
use poll::{Held, PollSettings, PollSummary};
use state::{Hold, OpenCatalog, Task};

/// The default of `--poll-interval`: the provider asks for no faster.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// The default of `--poll-rate`.
pub const DEFAULT_POLL_RATE: Rate = Rate::new(
    std::num::NonZeroU32::new(2).expect("nonzero"),
    Duration::from_secs(1),
);
/// The default of `--deadline`.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30 * 60);
/// Polls in flight at most.
pub const POLL_CONCURRENCY: usize = 4;
/// Jobs a collect run holds at once (polled, or downloading): its memory
/// is this window, whatever the size of the results file. At the default
/// `--poll-rate` it is over eight minutes of polls, and the tasks beyond
/// it were submitted later (results order is submission order), so the
/// window is not what keeps a due task waiting.
pub const WINDOW: usize = 1024;

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
    /// Jobs held in memory at most ([`WINDOW`] by default).
    pub window: usize,
    /// After this, unfinished tasks are left for the next run.
    pub deadline: Duration,
    /// Per request.
    pub timeout: Duration,
    pub download: Option<DownloadConfig>,
    /// Also take the provider's callbacks while polling (`--listen`): a
    /// task a callback finished is not polled.
    pub callbacks: Option<receive::Embedded>,
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
    /// Tasks and clips by how they ended.
    pub counts: state::Counts,
    pub polls: PollSummary,
    pub downloads: DownloadSummary,
    /// The deadline passed with work left.
    pub deadline_hit: bool,
    pub catalog: PathBuf,
    /// Most jobs in memory at once: held (bounded by the window) and
    /// waiting for a commit (bounded by [`crate::files::state::URGENT`]).
    pub peak_jobs_in_memory: usize,
    /// The catalog page written beside the catalog, or why it was not.
    pub page: Option<Result<PathBuf, String>>,
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
    /// The host's answers stop the run: the key refused (401, 402, 403), a
    /// redirect (`--base-url` is wrong), or too many polls in a row failed.
    #[error(transparent)]
    Host(#[from] Halt),
    /// The results file holds task IDs another provider issued.
    #[error("{0}")]
    WrongProvider(String),
    /// An HTTP client could not be built.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
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
    let results = read_results(&config.results).await?;
    let results = check_provider(&config, results).await?;
    let catalog = {
        let (results, path) = (config.results.clone(), config.catalog.clone());
        blocking(move || OpenCatalog::open(&results, &path).map_err(CollectError::from)).await?
    };
    if let Some(d) = &config.download {
        check_download_dir(&d.dir)?;
    }
    tracing::info!(
        jobs = results.jobs(),
        "collecting into {}",
        config.catalog.display()
    );

    let work = shutdown.child_token();
    let deadline = Deadline::start(&work, config.deadline);
    // A store that cannot be written stops the run (exit 73): answers it
    // could not keep would only be polled again.
    let writer = catalog.start_writer(CancellationToken::new(), work.clone());
    let store = Arc::clone(&catalog.store);
    let (queue, downloading) = start_downloads(&config, &store, &work).await?.unzip();
    let intake = Intake {
        store: Arc::clone(&store),
        queue,
        window: Arc::new(Semaphore::new(config.window.max(1))),
        window_size: config.window.max(1),
        peak: Arc::default(),
    };
    let peak = Arc::clone(&intake.peak);
    let (receiver, changed_rx) = start_receiver(&config, &store).await?.unzip();
    drop(results);
    let which = match config.download {
        Some(_) => Which::Every,
        None => Which::Unfinished,
    };
    let (loaded, reading) = load::spawn(store.store().to_owned(), which);
    let (to_poll, incoming) = mpsc::channel(POLL_CONCURRENCY * 4);
    let admitting = tokio::spawn(intake.clone().admit_all(loaded, to_poll, work.clone()));

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
        incoming,
        changed_rx,
        Arc::clone(&store),
        |held, applied| intake.complete_clips(&held.hold, &applied.rows),
        work.clone(),
    )
    .await;

    // Winding down, in this order: the intake (what was never taken is
    // counted as it is), downloads, the deadline, the writer.
    if polled.is_err() {
        work.cancel();
    }
    let admitted = admitting.await.map_err(|e| CollectError::Other(e.into()))?;
    let read = reading.await.map_err(|e| CollectError::Other(e.into()));
    drop(intake);
    let mut downloaded = DownloadSummary::default();
    if let Some(handle) = downloading {
        downloaded = handle.await.unwrap_or_default();
    }
    work.cancel();
    let deadline_hit = deadline.finish().await;
    if let Some(receiver) = receiver {
        // Before the last write: a callback answered 200 reaches the file.
        let _ = receiver.shutdown().await;
    }
    let flushed = writer.finish().await;
    let polls = polled?;
    admitted?;
    read??;
    flushed?;

    let page = write_page(&store).await;
    let counts = {
        let (s, downloading) = (Arc::clone(&store), config.download.is_some());
        blocking(move || state::Counts::of(&s, downloading).map_err(CollectError::from)).await?
    };
    Ok(CollectReport {
        counts,
        polls,
        downloads: downloaded,
        deadline_hit,
        catalog: config.catalog.clone(),
        peak_jobs_in_memory: peak.load(Ordering::Relaxed) + store.peak_pending(),
        page,
    })
}

/// With `--download`: the downloaders, started with the files already
/// claimed, and the queue that feeds them.
async fn start_downloads(
    config: &CollectConfig,
    store: &Arc<Catalog>,
    work: &CancellationToken,
) -> Result<Option<(download::Queue, JoinHandle<DownloadSummary>)>, CollectError> {
    let Some(d) = &config.download else {
        return Ok(None);
    };
    let (s, measure) = (Arc::clone(store), d.measure.clone());
    let (claims, gate) = blocking(move || {
        let gate = match &measure {
            Some(m) => download::rules_in_force(m, &s)?,
            None => Default::default(),
        };
        Ok((download::Claims::recorded(&s)?, gate))
    })
    .await?;
    Ok(Some(download::spawn(
        d.clone(),
        Arc::clone(store),
        claims,
        gate,
        work.clone(),
    )?))
}

/// With `--listen`: the embedded callback receiver, and the channel on
/// which it names each job a callback changed (so polling can stop early).
async fn start_receiver(
    config: &CollectConfig,
    store: &Arc<Catalog>,
) -> Result<Option<(receive::Receiver, mpsc::UnboundedReceiver<String>)>, CollectError> {
    let Some(mut embedded) = config.callbacks.clone() else {
        return Ok(None);
    };
    let (changed_tx, changed_rx) = mpsc::unbounded_channel();
    embedded.changed = Some(changed_tx);
    let r = receive::Receiver::start_in(embedded, config.results.clone(), Arc::clone(store))
        .await
        .map_err(|e| CollectError::Other(anyhow::anyhow!("{e}")))?;
    tracing::info!("taking callbacks at http://{}", r.addr());
    crate::util::term::eprint_line(&format!(
        "batchgen: taking callbacks at http://{}",
        r.addr()
    ));
    Ok(Some((r, changed_rx)))
}

/// Largest catalog (in jobs) whose page a run writes by itself: the page
/// is for a person reviewing songs (usable to 10^5 clips); beyond, a run
/// would spend more writing it than collecting. `status --html` writes
/// one anyway.
pub const PAGE_MAX_JOBS: u64 = 100_000;

/// Writes the catalog page and the playlist beside the catalog report,
/// from the store's jobs as the run left them ([`crate::files::page`]),
/// when the run changed the catalog (or there is no page yet) and its
/// jobs are not too many for one ([`PAGE_MAX_JOBS`]). A page that cannot
/// be written costs nothing collected: it is said, and `batchgen status
/// --html` writes it again. `None`: no page was due.
pub async fn write_page(store: &Arc<Catalog>) -> Option<Result<PathBuf, String>> {
    let (page, _, _) = crate::files::page::output_paths(store.path());
    if store.rows_written() == 0 && page.exists() {
        return None;
    }
    let jobs = match store.jobs() {
        Ok(jobs) => jobs,
        Err(e) => return Some(Err(e.to_string())),
    };
    if jobs > PAGE_MAX_JOBS {
        tracing::info!(
            "no catalog page: {jobs} jobs are more than a page is for ({PAGE_MAX_JOBS}); `batchgen status --html` writes one anyway"
        );
        return None;
    }
    let store = Arc::clone(store);
    let written = tokio::task::spawn_blocking(move || {
        crate::files::page::write_outputs_from_store(store.path(), |emit| store.each_job(emit))
            .map(|out| out.page)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string());
    Some(written.and_then(|r| r))
}

/// Runs file work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CollectError> + Send + 'static,
) -> Result<T, CollectError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CollectError::Other(e.into()))?
}

/// The results file's jobs, read from its store ([`Snapshot`]).
async fn read_results(path: &Path) -> Result<Snapshot, CollectError> {
    if let Err(source) = std::fs::metadata(path)
        && !crate::files::state::State::exists(path)
    {
        return Err(CollectError::NoResults {
            path: path.to_owned(),
            source,
        });
    }
    let path = path.to_owned();
    blocking(move || Snapshot::open(&path).map_err(CollectError::ResultsUnreadable)).await
}

/// Refuses a results file none of whose task IDs looks like one the
/// configured provider issues (see
/// [`crate::api::provider::Wire::owns_task_id`]): it was written with
/// another `--provider`, and every task would be polled at the wrong
/// feed until each is given up. One odd row (a hand edit, a hostile
/// host's ID) does not decide it: only a file with no task of this
/// provider's shape. (It reads until the first task of the right shape:
/// one row, as a rule.)
async fn check_provider(
    config: &CollectConfig,
    results: Snapshot,
) -> Result<Snapshot, CollectError> {
    let (provider, path) = (config.provider, config.results.clone());
    blocking(move || {
        let wire = crate::api::provider::wire(provider);
        let (mut tasks, mut first, mut owned) = (0usize, None, false);
        results
            .each(|rank, record| {
                let Some(task) = Task::of(rank, &record) else {
                    return ControlFlow::Continue(());
                };
                tasks += 1;
                owned = wire.owns_task_id(&task.task_id);
                first.get_or_insert(task);
                if owned { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
            })
            .map_err(CollectError::ResultsUnreadable)?;
        match first {
            Some(task) if !owned => Err(CollectError::WrongProvider(format!(
                "none of the {tasks} task IDs in {} looks like one provider {provider} ({}) issues (the first: {:?} of job {}): collect with the --provider the run used (or set BATCHGEN_PROVIDER)",
                path.display(),
                provider.describe(),
                task.task_id,
                task.key,
            ))),
            _ => Ok(results),
        }
    })
    .await
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

/// Takes tasks from the reader into the run: a finished one only has its
/// complete clips downloaded (or is counted at once), an unfinished one
/// joins the poll window. At most [`WINDOW`] jobs are held at once.
#[derive(Clone)]
struct Intake {
    store: Arc<Catalog>,
    queue: Option<download::Queue>,
    window: Arc<Semaphore>,
    window_size: usize,
    /// Most jobs held at once.
    peak: Arc<std::sync::atomic::AtomicUsize>,
}

impl Intake {
    /// Until the reader ends or `stop` is cancelled; then counts the tasks
    /// never taken, as they are.
    async fn admit_all(
        self,
        mut loaded: mpsc::Receiver<load::Loaded>,
        to_poll: mpsc::Sender<Held<Arc<Hold>>>,
        stop: CancellationToken,
    ) -> Result<(), CollectError> {
        loop {
            let place = tokio::select! {
                () = stop.cancelled() => break,
                place = Arc::clone(&self.window).acquire_owned() => place.ok(),
            };
            let held = self.window_size - self.window.available_permits();
            self.peak.fetch_max(held, Ordering::Relaxed);
            let next = tokio::select! {
                () = stop.cancelled() => break,
                next = loaded.recv() => next,
            };
            let Some(load::Loaded { task, rows }) = next else {
                return Ok(());
            };
            let rows = self.store.unless_changed(&task.key, rows)?;
            let finished = finished(&rows, &task.task_id);
            if finished && self.queue.is_none() {
                // Nothing to poll nor fetch (a callback finished it since
                // it was read).
                continue;
            }
            let hold = Arc::new(Hold::new(Arc::clone(&self.store), &task, place));
            self.complete_clips(&hold, &rows);
            if !finished && to_poll.send(Held { task, hold }).await.is_err() {
                break;
            }
        }
        // What the run did not get to is counted from the store at its end.
        drop(to_poll);
        Ok(())
    }

    /// Queues the job's complete clips not queued yet (none without
    /// `--download`). A complete clip without a usable `audio_url` is sent
    /// too: the downloader fails its row with the reason, and it is counted.
    fn complete_clips(&self, hold: &Arc<Hold>, rows: &[Row]) {
        let Some(tx) = &self.queue else { return };
        for row in rows {
            if row.task_id == hold.task_id
                && row.status() == ClipStatus::Complete
                && hold.queue(row.clip_index)
            {
                let _ = tx.send(download::Item {
                    row: row.clone(),
                    track: Some(hold.track),
                    hold: Some(Arc::clone(hold)),
                });
            }
        }
    }
}
