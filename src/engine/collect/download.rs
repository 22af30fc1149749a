//! Downloading complete clips: names, resumable transfers, ID3 tags.
//!
//! A file only ever appears under its final name whole, and only if it is
//! audio: bytes go to `DIR/.<name>.part`, which is resumed with `Range:
//! bytes=N-` when an earlier run left it, checked against the server's
//! length, checked to be an MP3 ([`super::audio`]: the URL before the
//! request, the `Content-Type` before the body, the first bytes before the
//! rename), tagged (title and style, with the `id3` crate) and then renamed.
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
//! [`TAG_FAILED`]…, and a rerun leaves that note in place.
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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE, RANGE};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::audio;
use super::names::NameTemplate;
use super::poll::without_url;
use crate::api::feed::ClipStatus;
use crate::files::catalog::Store;
use crate::util::retry::full_jitter;
use crate::util::units::Rate;

/// Largest file accepted: far above any song, far below a full disk.
pub const MAX_FILE: u64 = 512 * 1024 * 1024;
/// Tries per file, the first included.
pub const ATTEMPTS: u32 = 5;
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
}

/// One complete clip to fetch.
#[derive(Debug, Clone)]
pub struct Job {
    pub key: String,
    pub task_id: String,
    pub clip_index: u32,
    pub clip_id: String,
    pub title: String,
    pub style: String,
    pub audio_url: String,
    pub image_url: String,
    /// What the catalog recorded: the file and its size.
    pub file: String,
    pub file_bytes: Option<u64>,
    pub image_file: String,
}

/// What the downloader did.
#[derive(Debug, Clone, Default)]
pub struct DownloadSummary {
    pub downloaded: u64,
    pub skipped: u64,
    pub failed: u64,
    pub bytes: u64,
}

struct Shared {
    config: DownloadConfig,
    http: reqwest::Client,
    limiter: Option<DefaultDirectRateLimiter>,
    store: Arc<Store>,
    stop: CancellationToken,
    /// Final paths taken this run, so two clips never share a file.
    claimed: Mutex<HashMap<PathBuf, (String, u32)>>,
    summary: Mutex<DownloadSummary>,
}

/// Starts the download workers. Send [`Job`]s; drop the sender when there
/// are no more, then await the handle. Workers stop early when `stop` is
/// cancelled (a partial `.part` file stays for the next run to resume).
///
/// # Errors
/// When the HTTP client cannot be built.
pub fn spawn(
    config: DownloadConfig,
    store: Arc<Store>,
    stop: CancellationToken,
) -> anyhow::Result<(
    mpsc::UnboundedSender<Job>,
    tokio::task::JoinHandle<DownloadSummary>,
)> {
    let http = crate::api::http::builder(config.timeout)
        .read_timeout(config.timeout)
        // Media may sit behind a CDN redirect; a few hops, never a loop.
        .redirect(reqwest::redirect::Policy::limited(5))
        // A redirect must not hand the URL it answered (a signed link's
        // token is in its query) to the host it points to.
        .referer(false)
        .build()?;
    let limiter = config.rate.interval().map(|every| {
        RateLimiter::direct(Quota::with_period(every).expect("rate interval is never zero"))
    });
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
        http,
        limiter,
        store,
        stop,
        claimed: Mutex::new(claimed),
        summary: Mutex::default(),
    });
    let (tx, rx) = mpsc::unbounded_channel::<Job>();
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let handle = tokio::spawn(async move {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..workers {
            let (shared, rx) = (Arc::clone(&shared), Arc::clone(&rx));
            set.spawn(async move {
                loop {
                    let job = {
                        let mut rx = rx.lock().await;
                        tokio::select! {
                            biased;
                            () = shared.stop.cancelled() => None,
                            job = rx.recv() => job,
                        }
                    };
                    let Some(job) = job else { break };
                    shared.clip(job).await;
                }
            });
        }
        while set.join_next().await.is_some() {}
        let summary = shared.summary.lock().unwrap_or_else(|e| e.into_inner());
        summary.clone()
    });
    Ok((tx, handle))
}

/// Why one transfer attempt failed, and whether another may succeed.
struct Failure {
    message: String,
    retry: bool,
}

impl Failure {
    fn retry(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            retry: true,
        }
    }
    fn fatal(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            retry: false,
        }
    }
}

impl Shared {
    fn count(&self, f: impl FnOnce(&mut DownloadSummary)) {
        f(&mut self.summary.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Fetches one clip's audio (and image), recording the outcome.
    async fn clip(&self, job: Job) {
        let stem = self.config.name.render(&job);
        let audio = self.config.dir.join(format!("{stem}.mp3"));
        let claim = (job.key.clone(), job.clip_index);
        {
            let mut claimed = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
            match claimed.get(&audio) {
                Some(owner) if *owner != claim => {
                    let message = format!(
                        "file name {} is already used by {}-{}; put {{index}} or {{clip_id}} in --name",
                        audio.display(),
                        owner.0,
                        owner.1
                    );
                    drop(claimed);
                    self.count(|s| s.failed += 1);
                    self.record(&job, |row| row.error = message);
                    return;
                }
                _ => {
                    claimed.insert(audio.clone(), claim);
                }
            }
        }
        let recorded = (job.file == audio.to_string_lossy()).then_some(job.file_bytes);
        let result = match audio::usable_url(&job.audio_url) {
            Ok(()) => {
                self.file(&job.audio_url, &audio, recorded.flatten(), Some(&job))
                    .await
            }
            Err(why) => Err(why),
        };
        match result {
            Ok(got) => {
                self.count(|s| {
                    if got.fetched {
                        s.downloaded += 1;
                        s.bytes += got.size;
                    } else {
                        s.skipped += 1;
                    }
                });
                let file = audio.to_string_lossy().into_owned();
                self.record(&job, |row| {
                    row.file = file;
                    row.file_bytes = Some(got.size);
                    if let Some(why) = got.tag_error {
                        row.error = format!("{TAG_FAILED}{why}");
                    } else if row.status() != ClipStatus::Failed
                        && (got.fetched || !row.error.starts_with(TAG_FAILED))
                    {
                        row.error.clear();
                    }
                });
            }
            Err(message) => {
                if self.stop.is_cancelled() {
                    return;
                }
                self.count(|s| s.failed += 1);
                tracing::warn!(key = %job.key, index = job.clip_index, "download failed: {message}");
                self.record(&job, |row| {
                    row.error = format!("download failed: {message}")
                });
                return;
            }
        }
        if self.config.images && !job.image_url.is_empty() {
            let image = self.config.dir.join(format!("{stem}.png"));
            let present = job.image_file == image.to_string_lossy();
            match self.file(&job.image_url, &image, None, None).await {
                Ok(got) => {
                    if got.fetched || !present {
                        let file = image.to_string_lossy().into_owned();
                        self.record(&job, |row| row.image_file = file);
                    }
                }
                Err(message) if !self.stop.is_cancelled() => {
                    self.count(|s| s.failed += 1);
                    self.record(&job, |row| {
                        row.error = format!("image download failed: {message}");
                    });
                }
                Err(_) => {}
            }
        }
    }

    fn record(&self, job: &Job, change: impl FnOnce(&mut crate::files::catalog::Row)) {
        let mut catalog = self.store.lock();
        if let Some(row) = catalog.row_mut(&job.key, job.clip_index)
            && row.task_id == job.task_id
        {
            change(row);
        }
        drop(catalog);
        self.store.changed();
    }

    /// Makes `path` hold `url`'s content; with `tag` (the clip's audio)
    /// the content must be an MP3 and is tagged. The message of an `Err`
    /// names the URL's host and path.
    async fn file(
        &self,
        url: &str,
        path: &Path,
        recorded: Option<u64>,
        tag: Option<&Job>,
    ) -> Result<Fetched, String> {
        // The template's folders, each a real folder: a link planted among
        // them (the download folder may be shared) would take the file
        // elsewhere.
        let relative = path.strip_prefix(&self.config.dir).unwrap_or(path);
        crate::util::fsx::create_dirs_inside(&self.config.dir, relative)
            .map_err(|e| format!("cannot create the folder for {}: {e}", path.display()))?;
        // `symlink_metadata`: a link planted under the final name is not
        // a downloaded file (the rename below replaces the link itself).
        // A file the catalog has no size for (a kill before the catalog
        // write, or one someone else put there) must at least start like
        // audio to count as the song.
        if let Ok(meta) = tokio::fs::symlink_metadata(path).await
            && meta.is_file()
            && recorded.is_none_or(|size| size == meta.len())
            && (recorded.is_some() || tag.is_none() || check_head(path).await.is_ok())
        {
            return Ok(Fetched {
                size: meta.len(),
                fetched: false,
                tag_error: None,
            });
        }
        let part = part_path(path);
        // A `.part` from an earlier run (or an older batchgen) was not
        // checked as it was written: if it is not audio, start over once.
        // Anything but a regular file there (a planted link) is never
        // measured, read, resumed or renamed into place.
        let mut leftover = crate::util::fsx::regular_len(&part)
            .map_err(|e| format!("cannot write {}: {e}", part.display()))?
            .is_some_and(|len| len > 0);
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(limiter) = &self.limiter {
                tokio::select! {
                    () = self.stop.cancelled() => return Err("stopped".into()),
                    () = limiter.until_ready() => {}
                }
            }
            let outcome = tokio::select! {
                () = self.stop.cancelled() => return Err("stopped".into()),
                outcome = self.transfer(url, &part, tag.is_some()) => outcome,
            };
            let outcome = match outcome {
                // Resumed or not, the whole file must start like audio.
                Ok(()) if tag.is_some() => match check_head(&part).await {
                    Err(f) if leftover => {
                        let _ = tokio::fs::remove_file(&part).await;
                        Err(Failure::retry(format!(
                            "an earlier run's partial file was {}",
                            f.message
                        )))
                    }
                    checked => checked,
                },
                other => other,
            };
            leftover = false;
            match outcome {
                Ok(()) => break,
                Err(f) if f.retry && attempt < ATTEMPTS => {
                    tracing::debug!(
                        place = audio::place(url),
                        attempt,
                        "download retry: {}",
                        f.message
                    );
                    tokio::select! {
                        () = self.stop.cancelled() => return Err("stopped".into()),
                        () = tokio::time::sleep(full_jitter(attempt)) => {}
                    }
                }
                Err(f) => {
                    if !f.retry {
                        // Not something a later run should resume.
                        let _ = tokio::fs::remove_file(&part).await;
                    }
                    return Err(format!("{}: {}", audio::place(url), f.message));
                }
            }
        }
        let mut tag_error = None;
        if let Some(job) = tag {
            let (p, title, style) = (part.clone(), job.title.clone(), job.style.clone());
            let tagged = tokio::task::spawn_blocking(move || write_tag(&p, &title, &style))
                .await
                .map_err(|e| e.to_string())?;
            if let Err(why) = tagged {
                tracing::warn!(place = audio::place(url), "{TAG_FAILED}{why}");
                tag_error = Some(why);
            }
        }
        let file = crate::util::fsx::open_in_place(&part, std::fs::OpenOptions::new().read(true))
            .map(tokio::fs::File::from_std)
            .map_err(|e| format!("cannot read {}: {e}", part.display()))?;
        file.sync_all().await.map_err(|e| e.to_string())?;
        let size = file.metadata().await.map_err(|e| e.to_string())?.len();
        tokio::fs::rename(&part, path)
            .await
            .map_err(|e| format!("cannot rename to {}: {e}", path.display()))?;
        Ok(Fetched {
            size,
            fetched: true,
            tag_error,
        })
    }

    /// One GET into `part`, resuming what is there. `Ok` when `part` holds
    /// the whole file. With `audio`, a `Content-Type` that is not audio
    /// ends it before the body, and so do first bytes that are not.
    async fn transfer(&self, url: &str, part: &Path, audio: bool) -> Result<(), Failure> {
        let have = crate::util::fsx::regular_len(part)
            .map_err(|e| Failure::fatal(format!("cannot write {}: {e}", part.display())))?
            .unwrap_or(0);
        let mut request = self.http.get(url);
        if have > 0 {
            request = request.header(RANGE, format!("bytes={have}-"));
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| Failure::retry(without_url(e)))?;
        let status = response.status();
        if audio && (status == StatusCode::OK || status == StatusCode::PARTIAL_CONTENT) {
            let kind = response.headers().get(CONTENT_TYPE).map(|v| {
                v.to_str()
                    .map_or_else(|_| "(not text)".to_owned(), str::to_owned)
            });
            audio::content_type(kind.as_deref()).map_err(Failure::fatal)?;
        }
        let total = match status {
            StatusCode::PARTIAL_CONTENT => {
                let range = response
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(content_range);
                match range {
                    Some((Some(start), total)) if start == have => total,
                    _ => {
                        // Not the part asked for: start over.
                        let _ = tokio::fs::remove_file(part).await;
                        return Err(Failure::retry("the server sent another range"));
                    }
                }
            }
            StatusCode::OK => response.content_length(),
            StatusCode::RANGE_NOT_SATISFIABLE => {
                let total = response
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(content_range)
                    .and_then(|(_, total)| total);
                if total == Some(have) {
                    return Ok(());
                }
                let _ = tokio::fs::remove_file(part).await;
                return Err(Failure::retry("the partial file is longer than the file"));
            }
            s if s == StatusCode::TOO_MANY_REQUESTS
                || s == StatusCode::REQUEST_TIMEOUT
                || s.is_server_error() =>
            {
                return Err(Failure::retry(format!("HTTP {s}")));
            }
            s => return Err(Failure::fatal(format!("HTTP {s}"))),
        };
        if total.is_some_and(|t| t > MAX_FILE) {
            return Err(Failure::fatal(format!("larger than {MAX_FILE} bytes")));
        }
        // Never through a symlink planted under the `.part` name.
        let mut options = std::fs::OpenOptions::new();
        options
            .create(true)
            .write(true)
            .append(status == StatusCode::PARTIAL_CONTENT)
            .truncate(status == StatusCode::OK);
        let mut file = crate::util::fsx::open_in_place(part, &mut options)
            .map(tokio::fs::File::from_std)
            .map_err(|e| Failure::fatal(format!("cannot write {}: {e}", part.display())))?;
        let mut size = if status == StatusCode::OK { 0 } else { have };
        // From the start of the file: its first bytes, checked once there
        // are enough, so an HTML page is not read to the end.
        let mut head = (audio && size == 0).then(Vec::new);
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    let _ = file.flush().await;
                    return Err(Failure::retry(without_url(e)));
                }
            };
            if let Some(bytes) = &mut head {
                bytes.extend_from_slice(&chunk[..chunk.len().min(HEAD - bytes.len())]);
                if bytes.len() == HEAD {
                    if !audio::looks_like_audio(bytes) {
                        return Err(Failure::fatal(audio::not_audio(bytes)));
                    }
                    head = None;
                }
            }
            size += chunk.len() as u64;
            if size > MAX_FILE {
                let _ = tokio::fs::remove_file(part).await;
                return Err(Failure::fatal(format!("larger than {MAX_FILE} bytes")));
            }
            file.write_all(&chunk)
                .await
                .map_err(|e| Failure::fatal(format!("cannot write {}: {e}", part.display())))?;
        }
        file.flush()
            .await
            .map_err(|e| Failure::fatal(e.to_string()))?;
        match total {
            Some(total) if total != size => {
                Err(Failure::retry(format!("got {size} of {total} bytes")))
            }
            _ if size == 0 => Err(Failure::retry("empty file")),
            _ => Ok(()),
        }
    }
}

/// How many first bytes [`audio::looks_like_audio`] is shown.
const HEAD: usize = 32;

/// What [`Shared::file`] made.
struct Fetched {
    size: u64,
    /// False when a whole file was already there.
    fetched: bool,
    /// Why the tag could not be written (the audio was kept).
    tag_error: Option<String>,
}

/// `part`'s first bytes must be audio: also what an earlier run left.
async fn check_head(part: &Path) -> Result<(), Failure> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::with_capacity(HEAD);
    let file = crate::util::fsx::open_in_place(part, std::fs::OpenOptions::new().read(true))
        .map(tokio::fs::File::from_std)
        .map_err(|e| Failure::fatal(format!("cannot read {}: {e}", part.display())))?;
    file.take(HEAD as u64)
        .read_to_end(&mut head)
        .await
        .map_err(|e| Failure::fatal(format!("cannot read {}: {e}", part.display())))?;
    if audio::looks_like_audio(&head) {
        Ok(())
    } else {
        Err(Failure::fatal(audio::not_audio(&head)))
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

/// `bytes START-END/TOTAL` or `bytes */TOTAL` → (start, total).
fn content_range(value: &str) -> Option<(Option<u64>, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let total = total.trim().parse().ok();
    let start = match range.trim() {
        "*" => None,
        r => Some(r.split_once('-')?.0.trim().parse().ok()?),
    };
    Some((start, total))
}

/// Writes the title and style (as genre) into the MP3's ID3v2.4 tag.
fn write_tag(path: &Path, title: &str, style: &str) -> Result<(), String> {
    use id3::TagLike;
    let mut tag = id3::Tag::new();
    if !title.is_empty() {
        tag.set_title(title);
    }
    if !style.is_empty() {
        tag.set_genre(style);
    }
    // Through a file opened without following a link, not `write_to_path`:
    // a link planted at the `.part` name after the transfer must not make
    // the tag writer rewrite another file.
    let file =
        crate::util::fsx::open_in_place(path, std::fs::OpenOptions::new().read(true).write(true))
            .map_err(|e| format!("cannot tag {}: {e}", path.display()))?;
    tag.write_to_file(file, id3::Version::Id3v24)
        .map_err(|e| format!("cannot tag {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_parse() {
        assert_eq!(
            content_range("bytes 10-99/100"),
            Some((Some(10), Some(100)))
        );
        assert_eq!(content_range("bytes */100"), Some((None, Some(100))));
        assert_eq!(content_range("bytes 0-9/*"), Some((Some(0), None)));
        assert_eq!(content_range("items 0-9/10"), None);
        assert_eq!(
            part_path(Path::new("d/a-1.mp3")),
            PathBuf::from("d/.a-1.mp3.part")
        );
    }
}
