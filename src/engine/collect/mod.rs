//! After submit: turning the results file's task IDs into a music catalog.
//!
//! ```text
//! results.csv ──▶ tasks not finished ──▶ poll (feed) ──▶ Store ──▶ catalog.csv
//!   (read only)    (catalog says which)        │  (one writer, ≤ 1 write/s)
//!                                              └─▶ download (complete clips) ──▶ DIR/*.mp3
//!                                                  (audio checked before the rename)
//! ```
//!
//! [`run`] is `batchgen collect`: it reads the results file, reads the
//! catalog back (it is the state: finished tasks are not polled again,
//! downloaded files not fetched again), polls the rest until they finish,
//! the `deadline` passes or `shutdown` is cancelled, and downloads complete
//! clips meanwhile. The callback receiver ([`crate::engine::collect::receive`]) feeds the
//! same catalog through the same parser and writer.
//!
//! # Layout
//! - [`feed`]: the one parser (v2 feed, legacy feed, callback bodies) and
//!   the one completion rule;
//! - [`catalog`]: the catalog rows, their merge, and the one writer;
//! - [`poll`]: the feed client and the polling schedule;
//! - [`download`], [`names`]: resumable, tagged downloads and file names;
//! - [`audio`]: what a download must be to be kept (the URL, the
//!   `Content-Type`, the first bytes).

pub mod audio;
pub mod download;
pub mod names;
pub mod poll;
pub mod receive;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use url::Url;

use crate::util::units::Rate;

use crate::api::feed::ClipStatus;
use crate::files::catalog::{self, Catalog, Store};
use crate::files::manifest::ManifestError;
use crate::files::results::{self, Status};
use crate::program::exit::{Error, ExitCode};
use crate::util::redact::Secret;
use download::{DownloadConfig, DownloadSummary, Job};
use poll::{FeedClient, PollSettings, PollSummary, Task};

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

/// What a collect run ended with.
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

impl CollectReport {
    /// 0 when every clip is final (and downloaded, if asked), else 1.
    pub fn exit_code(&self) -> ExitCode {
        if self.tasks_finished == self.tasks
            && self.files_missing == 0
            && self.downloads.failed == 0
        {
            ExitCode::Success
        } else {
            ExitCode::RowsFailed
        }
    }
}

/// Polls and downloads until every submitted task is finished, the deadline
/// passes or `shutdown` is cancelled; see the module docs.
///
/// # Errors
/// The results file missing (exit 66); the catalog or download directory
/// unwritable (73), locked (75) or not a catalog (78); the key refused (77);
/// the API unreachable (69).
pub async fn run(
    config: CollectConfig,
    shutdown: CancellationToken,
) -> Result<CollectReport, Error> {
    if let Err(source) = std::fs::metadata(&config.results) {
        return Err(ManifestError::Unreadable {
            path: config.results.clone(),
            source,
        }
        .into());
    }
    let records = results::latest(&config.results)?;
    let keys: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    let tasks: Vec<Task> = records
        .iter()
        .filter(|r| r.status == Status::Submitted && !r.task_id.is_empty())
        .map(|r| Task {
            key: r.id.clone(),
            task_id: r.task_id.clone(),
        })
        .collect();

    let _lock = results::Lock::acquire(&config.catalog)?;
    let store = Store::new(
        config.catalog.clone(),
        Catalog::load(&config.catalog, &keys)?,
    );
    store.flush()?;
    if let Some(d) = &config.download {
        std::fs::create_dir_all(&d.dir).map_err(|source| Error::Results {
            path: d.dir.clone(),
            source,
        })?;
        tempfile::tempfile_in(&d.dir).map_err(|source| Error::Results {
            path: d.dir.clone(),
            source,
        })?;
    }
    let to_poll: Vec<Task> = {
        let catalog = store.lock();
        tasks
            .iter()
            .filter(|t| !catalog.task_finished(&t.key, &t.task_id))
            .cloned()
            .collect()
    };
    tracing::info!(
        tasks = tasks.len(),
        to_poll = to_poll.len(),
        "collecting into {}",
        config.catalog.display()
    );

    let work = shutdown.child_token();
    let deadline_hit = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let timer = {
        let (work, hit, deadline) = (work.clone(), Arc::clone(&deadline_hit), config.deadline);
        tokio::spawn(async move {
            tokio::select! {
                () = work.cancelled() => {}
                () = tokio::time::sleep(deadline) => {
                    hit.store(true, std::sync::atomic::Ordering::SeqCst);
                    work.cancel();
                }
            }
        })
    };
    let flush_stop = CancellationToken::new();
    let flusher = catalog::flusher(Arc::clone(&store), flush_stop.clone());

    let downloads = match &config.download {
        Some(d) => Some(download::spawn(
            d.clone(),
            Arc::clone(&store),
            work.clone(),
        )?),
        None => None,
    };
    let queued: Mutex<HashSet<(String, u32)>> = Mutex::default();
    let task_ids: std::collections::HashMap<&str, &str> = tasks
        .iter()
        .map(|t| (t.key.as_str(), t.task_id.as_str()))
        .collect();
    let enqueue = |key: &str| {
        let Some((tx, _)) = &downloads else { return };
        let Some(&task_id) = task_ids.get(key) else {
            return;
        };
        let catalog = store.lock();
        let mut queued = queued.lock().unwrap_or_else(|e| e.into_inner());
        for row in catalog.task_rows(key) {
            // A complete clip without a usable `audio_url` is sent too: the
            // downloader fails its row with the reason, and it is counted.
            if row.task_id != task_id
                || row.status() != ClipStatus::Complete
                || !queued.insert((row.key.clone(), row.clip_index))
            {
                continue;
            }
            let _ = tx.send(Job {
                key: row.key.clone(),
                task_id: row.task_id.clone(),
                clip_index: row.clip_index,
                clip_id: row.clip_id.clone(),
                title: row.title.clone(),
                style: row.style.clone(),
                audio_url: row.audio_url.clone(),
                image_url: row.image_url.clone(),
                file: row.file.clone(),
                file_bytes: row.file_bytes,
                image_file: row.image_file.clone(),
            });
        }
    };
    for task in &tasks {
        enqueue(&task.key);
    }

    let client = FeedClient::new(&config.base_url, config.api_key.clone(), config.timeout)?;
    let settings = PollSettings {
        interval: config.poll_interval,
        rate: config.poll_rate,
        concurrency: config.poll_concurrency,
    };
    let polled = poll::run(
        client,
        settings,
        to_poll,
        Arc::clone(&store),
        enqueue,
        work.clone(),
    )
    .await;
    if polled.is_err() {
        work.cancel();
    }
    let mut downloaded = DownloadSummary::default();
    if let Some((tx, handle)) = downloads {
        drop(tx);
        downloaded = handle.await.unwrap_or_default();
    }
    work.cancel();
    let _ = timer.await;
    flush_stop.cancel();
    let flushed = flusher
        .await
        .map_err(|e| Error::Other(anyhow::anyhow!("catalog writer failed: {e}")))?;
    let polls = polled?;
    flushed?;

    let mut report = CollectReport {
        tasks: tasks.len(),
        polls,
        downloads: downloaded,
        deadline_hit: deadline_hit.load(std::sync::atomic::Ordering::SeqCst),
        catalog: config.catalog.clone(),
        ..CollectReport::default()
    };
    let catalog = store.lock();
    for task in &tasks {
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
                if config.download.is_some() && row.file.is_empty() {
                    report.files_missing += 1;
                }
            }
            ClipStatus::Failed => report.clips_failed += 1,
            _ => report.clips_pending += 1,
        }
    }
    Ok(report)
}
