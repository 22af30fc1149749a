//! One URL's bytes into place: the file present already, or fetched to
//! the clip's own `.<name>.<clip>.part` (resumed with `Range`), checked (length, `Content-Type`,
//! first bytes for audio), tagged ([`super::tags`], with the cover fetched
//! into memory here), synced and renamed. Retried with the pool's backoff
//! through the downloads' own rate limiter. Separate from [`super`]
//! because none of this knows the catalog: it gets a URL and a path and
//! says what it made or why not.

use std::num::NonZeroU32;
use std::path::Path;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE, RANGE};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::measure::Measurer;
use super::tags::{self, Cover, CoverSource, MAX_COVER, TagInfo};
use super::{DownloadConfig, TAG_FAILED, part_path, resumable_part};
use crate::api::poll::without_url;
use crate::engine::collect::audio;
use crate::files::catalog::Measured;
use crate::util::limit::Limiter;
use crate::util::retry::full_jitter;

/// Largest file accepted: far above any song, far below a full disk.
const MAX_FILE: u64 = 512 * 1024 * 1024;
/// Tries per file, the first included.
const ATTEMPTS: u32 = 5;

/// What fetching needs: the media client, the downloads' limiter, the
/// stop signal and the folder files must stay in.
pub(super) struct Fetcher {
    http: reqwest::Client,
    limiter: Option<Limiter>,
    stop: CancellationToken,
    dir: std::path::PathBuf,
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

impl Fetcher {
    /// The media client (see the module docs of [`super`]) and limiter.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub(super) fn new(config: &DownloadConfig, stop: CancellationToken) -> anyhow::Result<Fetcher> {
        let http = crate::api::http::builder(config.timeout)
            .read_timeout(config.timeout)
            // Media may sit behind a CDN redirect; a few hops, never a loop.
            .redirect(reqwest::redirect::Policy::limited(5))
            // A redirect must not hand the URL it answered (a signed link's
            // token is in its query) to the host it points to.
            .referer(false)
            .build()?;
        Ok(Fetcher {
            http,
            limiter: Limiter::new(config.rate, NonZeroU32::MIN),
            stop,
            dir: config.dir.clone(),
        })
    }

    /// Makes `path` hold `url`'s content; with `tag` (the clip's audio)
    /// the content must be an MP3 and is tagged, with its cover when one
    /// can be had. The message of an `Err` names the URL's host and path.
    ///
    /// With `measure`, a song fetched now is measured once whole, before
    /// it is tagged, and its ReplayGain values go into its tag
    /// ([`super::measure`]).
    pub(super) async fn file(
        &self,
        url: &str,
        path: &Path,
        recorded: Option<u64>,
        tag: Option<TagInfo>,
        measure: Option<&Measurer>,
    ) -> Result<Fetched, String> {
        // The template's folders, each a real folder: a link planted among
        // them (the download folder may be shared) would take the file
        // elsewhere.
        let relative = path.strip_prefix(&self.dir).unwrap_or(path);
        crate::util::fsx::create_dirs_inside(&self.dir, relative)
            .map_err(|e| format!("cannot create the folder for {}: {e}", path.display()))?;
        if let Some(present) = present(path, recorded, tag.is_some()).await {
            return Ok(present);
        }
        // A song's `.part` is its clip's own; a file is written whole
        // under the plain one.
        let part = match &tag {
            Some(info) => {
                // An earlier release's `.part` under the plain name may be
                // another clip's: its name is removed (a link's target is
                // untouched), never resumed.
                let old = part_path(path);
                if tokio::fs::symlink_metadata(&old)
                    .await
                    .is_ok_and(|m| m.is_file() || m.file_type().is_symlink())
                {
                    let _ = tokio::fs::remove_file(&old).await;
                }
                resumable_part(path, &info.task_id, &info.clip_id)
            }
            None => part_path(path),
        };
        self.fetch_part(url, &part, tag.is_some()).await?;
        let mut tag = tag;
        let mut cover_error = None;
        if let Some(info) = &mut tag
            && let Some(source) = info.cover_source.clone()
        {
            match self.cover(&source).await {
                Ok(cover) => info.cover = Some(cover),
                // The whole `.part` stays for the next run to tag.
                Err(_) if self.stop.is_cancelled() => return Err("stopped".into()),
                Err(why) => {
                    tracing::warn!(place = audio::place(url), "{}{why}", tags::NO_COVER);
                    cover_error = Some(why);
                }
            }
        }
        let mut measured = None;
        if let (Some(measurer), Some(info)) = (measure, &mut tag) {
            let m = measurer.measure(&part, path).await;
            if self.stop.is_cancelled() {
                // The whole `.part` stays for the next run to measure.
                return Err("stopped".into());
            }
            info.replaygain = m.audio().and_then(crate::audio::ReplayGain::of);
            measured = Some(m);
        }
        let mut fetched = put_in_place(url, &part, path, tag).await?;
        fetched.cover_error = cover_error;
        fetched.measured = measured;
        Ok(fetched)
    }

    /// The clip's cover: the kept `.png` when there is one, else fetched
    /// into memory (one try, at most [`MAX_COVER`] bytes) and, when
    /// `--images` keeps it, written there too, so it is not fetched twice.
    async fn cover(&self, source: &CoverSource) -> Result<Cover, String> {
        // A kept file that is not an image (an earlier batchgen kept error
        // pages) is fetched again and replaced.
        if let Some(keep) = &source.keep
            && let Some(cover) = kept_cover(keep).await
        {
            return Ok(cover);
        }
        let cover = Cover::check(self.bytes(&source.url, MAX_COVER).await?)
            .map_err(|why| format!("{}: {why}", audio::place(&source.url)))?;
        if let Some(keep) = &source.keep
            && let Err(e) = tags::keep(keep, &cover.data).await
        {
            tracing::debug!("cover not kept at {}: {e}", keep.display());
        }
        Ok(cover)
    }

    /// Makes `path` hold the clip's cover image at `url` (`--images`): a
    /// PNG, JPEG or WebP by its first bytes, whatever its `Content-Type`
    /// says ([`Cover::check`], the tag's rule). A file already there counts
    /// only if it is one; a body that is not is neither kept nor counted,
    /// so a later run fetches it again. Whether it was fetched.
    pub(super) async fn image(&self, url: &str, path: &Path) -> Result<bool, String> {
        let relative = path.strip_prefix(&self.dir).unwrap_or(path);
        crate::util::fsx::create_dirs_inside(&self.dir, relative)
            .map_err(|e| format!("cannot create the folder for {}: {e}", path.display()))?;
        if kept_cover(path).await.is_some() {
            return Ok(false);
        }
        let cover = Cover::check(self.bytes(url, MAX_COVER).await?)
            .map_err(|why| format!("{}: {why}", audio::place(url)))?;
        tags::keep(path, &cover.data)
            .await
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(true)
    }

    /// One GET of a small file into memory: a 200 of at most `max` bytes.
    async fn bytes(&self, url: &str, max: usize) -> Result<Vec<u8>, String> {
        if let Some(limiter) = &self.limiter {
            tokio::select! {
                () = self.stop.cancelled() => return Err("stopped".into()),
                _ = limiter.until_ready() => {}
            }
        }
        let get = async {
            let mut response = self.http.get(url).send().await.map_err(without_url)?;
            if response.status() != StatusCode::OK {
                return Err(format!("HTTP {}", response.status()));
            }
            let too_large = || format!("larger than {max} bytes");
            if response.content_length().is_some_and(|n| n > max as u64) {
                return Err(too_large());
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(without_url)? {
                if body.len() + chunk.len() > max {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        tokio::select! {
            () = self.stop.cancelled() => Err("stopped".into()),
            got = get => got.map_err(|why| format!("{}: {why}", audio::place(url))),
        }
    }

    /// Fills `part` with the whole file, retrying with backoff: `Ok` when
    /// it is all there (and, for `audio`, starts like audio).
    async fn fetch_part(&self, url: &str, part: &Path, audio: bool) -> Result<(), String> {
        // A `.part` from an earlier run (or an older batchgen) was not
        // checked as it was written: if it is not audio, start over once.
        // Anything but a regular file there (a planted link) is never
        // measured, read, resumed or renamed into place.
        let mut leftover = crate::util::fsx::regular_len(part)
            .map_err(|e| format!("cannot write {}: {e}", part.display()))?
            .is_some_and(|len| len > 0);
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(limiter) = &self.limiter {
                tokio::select! {
                    () = self.stop.cancelled() => return Err("stopped".into()),
                    _ = limiter.until_ready() => {}
                }
            }
            let outcome = tokio::select! {
                () = self.stop.cancelled() => return Err("stopped".into()),
                outcome = self.transfer(url, part, audio) => outcome,
            };
            let outcome = match outcome {
                // Resumed or not, the whole file must start like audio.
                Ok(()) if audio => match check_head(part).await {
                    Err(f) if leftover => {
                        let _ = tokio::fs::remove_file(part).await;
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
                Ok(()) => return Ok(()),
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
                        let _ = tokio::fs::remove_file(part).await;
                    }
                    return Err(format!("{}: {}", audio::place(url), f.message));
                }
            }
        }
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
        let response = request
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
        let total = match expected_total(&response, have, part).await? {
            Expected::Body(total) => total,
            Expected::AlreadyWhole => return Ok(()),
        };
        if total.is_some_and(|t| t > MAX_FILE) {
            return Err(Failure::fatal(format!("larger than {MAX_FILE} bytes")));
        }
        write_body(response, part, have, audio, total).await
    }
}

/// What an answer's status and headers say the body will be.
enum Expected {
    /// A body to write, of this total length when known.
    Body(Option<u64>),
    /// A 416 for a `.part` that is already the whole file.
    AlreadyWhole,
}

/// The whole file's length from a 200 or a 206 for the range asked for;
/// a failure (retryable or not) for any other answer.
async fn expected_total(
    response: &reqwest::Response,
    have: u64,
    part: &Path,
) -> Result<Expected, Failure> {
    let range = || {
        response
            .headers()
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(content_range)
    };
    match response.status() {
        StatusCode::PARTIAL_CONTENT => match range() {
            Some((Some(start), total)) if start == have => Ok(Expected::Body(total)),
            _ => {
                // Not the part asked for: start over.
                let _ = tokio::fs::remove_file(part).await;
                Err(Failure::retry("the server sent another range"))
            }
        },
        StatusCode::OK => Ok(Expected::Body(response.content_length())),
        StatusCode::RANGE_NOT_SATISFIABLE => {
            if range().and_then(|(_, total)| total) == Some(have) {
                return Ok(Expected::AlreadyWhole);
            }
            let _ = tokio::fs::remove_file(part).await;
            Err(Failure::retry("the partial file is longer than the file"))
        }
        s if s == StatusCode::TOO_MANY_REQUESTS
            || s == StatusCode::REQUEST_TIMEOUT
            || s.is_server_error() =>
        {
            Err(Failure::retry(format!("HTTP {s}")))
        }
        s => Err(Failure::fatal(format!("HTTP {s}"))),
    }
}

/// Writes a 200's body over `part` or appends a 206's to it, checking the
/// first bytes (for `audio`), the size cap and the length.
async fn write_body(
    mut response: reqwest::Response,
    part: &Path,
    have: u64,
    audio: bool,
    total: Option<u64>,
) -> Result<(), Failure> {
    let status = response.status();
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
        Some(total) if total != size => Err(Failure::retry(format!("got {size} of {total} bytes"))),
        _ if size == 0 => Err(Failure::retry("empty file")),
        _ => Ok(()),
    }
}

/// The cover kept at `path`, when a regular file is there and is an image.
async fn kept_cover(path: &Path) -> Option<Cover> {
    if !crate::util::fsx::regular_len(path).is_ok_and(|len| len.is_some()) {
        return None;
    }
    Cover::check(tags::read_kept(path).await.ok()?).ok()
}

/// The file already at `path`, if it counts as the one wanted: a regular
/// file of the recorded size, or (nothing recorded) one that starts like
/// audio when `audio`.
async fn present(path: &Path, recorded: Option<u64>, audio: bool) -> Option<Fetched> {
    // `symlink_metadata`: a link planted under the final name is not
    // a downloaded file (the rename below replaces the link itself).
    // A file the catalog has no size for (a kill before the catalog
    // write, or one someone else put there) must at least start like
    // audio to count as the song.
    let meta = tokio::fs::symlink_metadata(path).await.ok()?;
    let whole = meta.is_file()
        && recorded.is_none_or(|size| size == meta.len())
        && (recorded.is_some() || !audio || check_head(path).await.is_ok());
    whole.then_some(Fetched {
        size: meta.len(),
        fetched: false,
        tag_error: None,
        cover_error: None,
        measured: None,
    })
}

/// Tags a whole `part` (with `tag`), syncs it and renames it to `path`.
async fn put_in_place(
    url: &str,
    part: &Path,
    path: &Path,
    tag: Option<TagInfo>,
) -> Result<Fetched, String> {
    let mut tag_error = None;
    if let Some(info) = tag {
        let p = part.to_owned();
        let tagged = tokio::task::spawn_blocking(move || write_tag(&p, &tags::build(&info)))
            .await
            .map_err(|e| e.to_string())?;
        if let Err(why) = tagged {
            tracing::warn!(place = audio::place(url), "{TAG_FAILED}{why}");
            tag_error = Some(why);
        }
    }
    let file = crate::util::fsx::open_in_place(part, std::fs::OpenOptions::new().read(true))
        .map(tokio::fs::File::from_std)
        .map_err(|e| format!("cannot read {}: {e}", part.display()))?;
    file.sync_all().await.map_err(|e| e.to_string())?;
    let size = file.metadata().await.map_err(|e| e.to_string())?.len();
    tokio::fs::rename(part, path)
        .await
        .map_err(|e| format!("cannot rename to {}: {e}", path.display()))?;
    Ok(Fetched {
        size,
        fetched: true,
        tag_error,
        cover_error: None,
        measured: None,
    })
}

/// How many first bytes [`audio::looks_like_audio`] is shown.
const HEAD: usize = 32;

/// What [`Fetcher::file`] made.
pub(super) struct Fetched {
    pub size: u64,
    /// False when a whole file was already there.
    pub fetched: bool,
    /// Why the tag could not be written (the audio was kept).
    pub tag_error: Option<String>,
    /// Why the tag has no cover (the song was tagged without it).
    pub cover_error: Option<String>,
    /// The song as measured before it was tagged, when it was fetched now
    /// and measuring is on.
    pub measured: Option<Measured>,
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

/// Writes `tag` into the MP3 at `path` (replacing a tag it has).
fn write_tag(path: &Path, tag: &id3::Tag) -> Result<(), String> {
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
            part_path(Path::new("d/a-1.png")),
            std::path::PathBuf::from("d/.a-1.png.part")
        );
        let a = resumable_part(Path::new("d/a-1.mp3"), "t1", "c1");
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with(".a-1.mp3.") && name.ends_with(".part") && name.len() == 22,
            "{name}"
        );
        assert_eq!(a, resumable_part(Path::new("d/a-1.mp3"), "t1", "c1"));
        assert_ne!(a, resumable_part(Path::new("d/a-1.mp3"), "t2", "c1"));
        assert_ne!(a, resumable_part(Path::new("d/a-1.mp3"), "t1", "c2"));
    }
}
