//! Downloading complete clips: names, resumable transfers, ID3 tags.
//!
//! A file only ever appears under its final name whole, and only if it is
//! audio: bytes go to `DIR/.<name>.part`, which is resumed with `Range:
//! bytes=N-` when an earlier run left it, checked against the server's
//! length, checked to be an MP3 ([`super::audio`]: the URL before the
//! request, the `Content-Type` before the body, the first bytes before the
//! rename), tagged (`tags`: title, artist, album, genres, date, lyrics,
//! cover and where it came from, with the `id3` crate) and then renamed.
//! So a present final file needs no second download: it is skipped when its
//! size is the one the catalog recorded (or nothing was recorded yet, as
//! after a kill between the rename and the next catalog write).
//!
//! A clip whose answer is not audio (an HTML or JSON body, a 404, a
//! `…/None.mp3` or streaming URL) fails in its catalog row with the URL's
//! host and path and the reason, and its `.part` is removed, so no later run
//! resumes it as audio. A tag that cannot be written (the file already
//! carries an ID3 header the `id3` crate cannot read) does not cost the
//! song: the untagged audio is kept and the `error` column says
//! [`TAG_FAILED`]…, and a rerun leaves that note in place; so does a cover
//! that could not be had (the song is tagged without it: "tagged without
//! cover: …").
//!
//! Names come from a template ([`NameTemplate`], default `{key}-{index}`);
//! every value put into it is sanitised to one path component, so nothing a
//! manifest or the API says can escape `DIR`. Transfers have their own
//! worker count and rate limiter, separate from polling; a failed one is
//! retried with the pool's backoff, then recorded in the catalog's `error`.
//!
//! A media request carries no `Authorization` (the key goes to the API
//! only) and follows at most five redirects, http(s) only, without a
//! `Referer`: a signed URL's token stays with the host that issued it.
//!
//! This module owns the workers and what a clip's outcome does to its
//! catalog row (which file is whose, what the `error` column says);
//! `fetch` owns getting one URL's bytes into place, knowing nothing of
//! the catalog.

mod fetch;
mod tags;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::names::NameTemplate;
use crate::api::feed::ClipStatus;
use crate::files::catalog::{Row, SharedCatalog};
use crate::util::units::Rate;
use fetch::{Fetched, Fetcher};

/// The default of `--download-concurrency` (and of `--wait --download`).
pub const DEFAULT_CONCURRENCY: usize = 4;
/// The default of `--download-rate` (and of `--wait --download`): media
/// hosts ask for no pacing.
pub const DEFAULT_RATE: Rate = Rate::Unlimited;

/// How the catalog's `error` starts when the audio was kept untagged.
pub const TAG_FAILED: &str = "kept without tags: ";

/// How downloads behave.
#[derive(Debug, Clone)]
pub struct DownloadConfig {
    pub dir: PathBuf,
    pub name: NameTemplate,
    pub concurrency: usize,
    pub rate: Rate,
    /// Also fetch each clip's cover image (`.png` beside the MP3).
    pub images: bool,
    /// Longest wait for the server (connect, or between two reads).
    pub timeout: Duration,
    /// The tags' artist and album (`TPE1`/`TPE2`, `TALB`); empty writes
    /// none. The command layer fills in the defaults.
    pub artist: String,
    pub album: String,
}

/// What the downloader did.
#[derive(Debug, Clone, Default)]
pub struct DownloadSummary {
    pub downloaded: u64,
    pub skipped: u64,
    pub failed: u64,
}

/// The sending end of the download queue: complete clips' catalog rows,
/// as they were when sent (the worker records into the live row).
pub type Queue = mpsc::UnboundedSender<Row>;

struct Shared {
    config: DownloadConfig,
    fetcher: Fetcher,
    store: Arc<SharedCatalog>,
    stop: CancellationToken,
    /// Final paths taken this run, so two clips never share a file.
    claimed: Mutex<HashMap<PathBuf, (String, u32)>>,
    summary: Mutex<DownloadSummary>,
}

/// Starts the download workers. Send complete clips' rows; drop the
/// sender when there are no more, then await the handle. Workers stop
/// early when `stop` is cancelled (a partial `.part` file stays for the
/// next run to resume).
///
/// # Errors
/// When the HTTP client cannot be built.
pub fn spawn(
    config: DownloadConfig,
    store: Arc<SharedCatalog>,
    stop: CancellationToken,
) -> anyhow::Result<(Queue, JoinHandle<DownloadSummary>)> {
    let fetcher = Fetcher::new(&config, stop.clone())?;
    let workers = config.concurrency.max(1);
    // A file an earlier run recorded for a clip stays that clip's: another
    // clip whose name renders the same (`{title_slug}` and two clips of
    // one title) must not take it for its own download, whichever of the
    // two a worker reaches first.
    let claimed: HashMap<PathBuf, (String, u32)> = store
        .lock()
        .rows()
        .iter()
        .filter(|row| !row.file.is_empty())
        .map(|row| (PathBuf::from(&row.file), (row.key.clone(), row.clip_index)))
        .collect();
    let shared = Arc::new(Shared {
        config,
        fetcher,
        store,
        stop,
        claimed: Mutex::new(claimed),
        summary: Mutex::default(),
    });
    let (tx, rx) = mpsc::unbounded_channel::<Row>();
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let handle = tokio::spawn(async move {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..workers {
            set.spawn(worker(Arc::clone(&shared), Arc::clone(&rx)));
        }
        while set.join_next().await.is_some() {}
        let summary = shared.summary.lock().unwrap_or_else(|e| e.into_inner());
        summary.clone()
    });
    Ok((tx, handle))
}

/// Takes clips off the queue until it closes or `stop` is cancelled.
async fn worker(shared: Arc<Shared>, rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Row>>>) {
    loop {
        let clip = {
            let mut rx = rx.lock().await;
            tokio::select! {
                biased;
                () = shared.stop.cancelled() => None,
                clip = rx.recv() => clip,
            }
        };
        let Some(clip) = clip else { break };
        shared.clip(clip).await;
    }
}

impl Shared {
    fn count(&self, f: impl FnOnce(&mut DownloadSummary)) {
        f(&mut self.summary.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Fetches one clip's audio (and image), recording the outcome.
    async fn clip(&self, clip: Row) {
        let stem = self.config.name.render(&clip);
        let audio = self.config.dir.join(format!("{stem}.mp3"));
        if let Err(message) = self.claim(&clip, &audio) {
            self.count(|s| s.failed += 1);
            self.record(&clip, |row| row.error = message);
            return;
        }
        if !self.audio(&clip, &audio).await {
            return;
        }
        if self.config.images && !clip.image_url.is_empty() {
            self.image(&clip, &stem).await;
        }
    }

    /// Takes `audio` for `clip`, unless another clip has it.
    fn claim(&self, clip: &Row, audio: &Path) -> Result<(), String> {
        let claim = (clip.key.clone(), clip.clip_index);
        let mut claimed = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        match claimed.get(audio) {
            Some(owner) if *owner != claim => Err(format!(
                "file name {} is already used by {}-{}; put {{index}} or {{clip_id}} in --name",
                audio.display(),
                owner.0,
                owner.1
            )),
            _ => {
                claimed.insert(audio.to_owned(), claim);
                Ok(())
            }
        }
    }

    /// The clip's MP3 into `audio`, and its row updated; false when it
    /// failed (or the run stopped), so no image is fetched.
    async fn audio(&self, clip: &Row, audio: &Path) -> bool {
        let recorded = (clip.file == audio.to_string_lossy()).then_some(clip.file_bytes);
        let tag = tags::TagInfo::new(clip, &self.config, audio, None);
        let result = match super::audio::usable_url(&clip.audio_url) {
            Ok(()) => {
                self.fetcher
                    .file(&clip.audio_url, audio, recorded.flatten(), Some(tag))
                    .await
            }
            Err(why) => Err(why),
        };
        match result {
            Ok(got) => {
                self.audio_kept(clip, audio, got);
                true
            }
            Err(message) => {
                if self.stop.is_cancelled() {
                    return false;
                }
                self.count(|s| s.failed += 1);
                tracing::warn!(key = %clip.key, index = clip.clip_index, "download failed: {message}");
                self.record(clip, |row| {
                    row.error = format!("download failed: {message}")
                });
                false
            }
        }
    }

    /// Counts a kept MP3 and records its file, size and tag note.
    fn audio_kept(&self, clip: &Row, audio: &Path, got: Fetched) {
        self.count(|s| {
            if got.fetched {
                s.downloaded += 1;
            } else {
                s.skipped += 1;
            }
        });
        let file = audio.to_string_lossy().into_owned();
        self.record(clip, |row| {
            row.file = file;
            row.file_bytes = Some(got.size);
            if let Some(why) = got.tag_error {
                row.error = format!("{TAG_FAILED}{why}");
            } else if let Some(why) = got.cover_error {
                row.error = format!("{}{why}", tags::NO_COVER);
            } else if row.status() != ClipStatus::Failed
                && (got.fetched
                    || !(row.error.starts_with(TAG_FAILED)
                        || row.error.starts_with(tags::NO_COVER)))
            {
                row.error.clear();
            }
        });
    }

    /// The cover image beside the MP3 (`<stem>.png`).
    async fn image(&self, clip: &Row, stem: &str) {
        let image = self.config.dir.join(format!("{stem}.png"));
        let present = clip.image_file == image.to_string_lossy();
        match self.fetcher.file(&clip.image_url, &image, None, None).await {
            Ok(got) => {
                if got.fetched || !present {
                    let file = image.to_string_lossy().into_owned();
                    self.record(clip, |row| row.image_file = file);
                }
            }
            Err(message) if !self.stop.is_cancelled() => {
                self.count(|s| s.failed += 1);
                self.record(clip, |row| {
                    row.error = format!("image download failed: {message}");
                });
            }
            Err(_) => {}
        }
    }

    /// Changes the clip's live row, if it is still of the same task.
    fn record(&self, clip: &Row, change: impl FnOnce(&mut Row)) {
        let mut catalog = self.store.lock();
        if let Some(row) = catalog.row_mut(&clip.key, clip.clip_index)
            && row.task_id == clip.task_id
        {
            change(row);
        }
        drop(catalog);
        self.store.changed();
    }
}

/// `DIR/sub/name.mp3` → `DIR/sub/.name.mp3.part`.
pub fn part_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.part"))
}
