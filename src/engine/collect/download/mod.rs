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
mod measure;
mod tags;

pub use measure::MeasureConfig;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::names::NameTemplate;
use super::state::Hold;
use crate::api::feed::ClipStatus;
use crate::files::catalog::{CatalogError, JobRows, Row};
use crate::files::state::Catalog;
use crate::job::key_hash;
use crate::settings::quality::Gate;
use crate::util::units::Rate;
use fetch::{Fetched, Fetcher};
use measure::Measurer;

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
    /// Measure each take and judge it (`None`: `--no-measure`).
    pub measure: Option<MeasureConfig>,
}

/// What the downloader did.
#[derive(Debug, Clone, Default)]
pub struct DownloadSummary {
    pub downloaded: u64,
    pub skipped: u64,
    pub failed: u64,
}

/// A complete clip to download: its catalog row as it was when sent (the
/// worker records into the live row), and what keeps its job in memory
/// until the download is done.
pub struct Item {
    pub row: Row,
    /// The job's place in the manifest, counted from 1 (the tag's track).
    pub track: Option<u32>,
    pub hold: Option<Arc<Hold>>,
}

/// The sending end of the download queue.
pub type Queue = mpsc::UnboundedSender<Item>;

/// Which file names are taken, so two clips never share a file: the
/// hashes of the files the catalog records (read once, 8 bytes a file)
/// and of those claimed this run. A clip may take a name whose hash is
/// there only if its own row records that very file. Names are compared
/// case-folded: on a case-insensitive file system (macOS, Windows, an
/// exFAT drive) `Rain-1.mp3` and `rain-1.mp3` are one file, and two clips
/// must not share it there either.
#[derive(Debug, Default)]
pub struct Claims {
    recorded: Vec<u64>,
    this_run: HashSet<u64>,
}

impl Claims {
    /// The files the store records, of every task (one pass over them).
    ///
    /// # Errors
    /// The catalog unreadable.
    pub fn recorded(store: &Catalog) -> Result<Claims, CatalogError> {
        let mut recorded = Vec::new();
        store.audio_paths(|path| recorded.push(path_hash(Path::new(path))))?;
        recorded.sort_unstable();
        recorded.dedup();
        recorded.shrink_to_fit();
        Ok(Claims {
            recorded,
            this_run: HashSet::new(),
        })
    }

    /// Takes `path` for `clip`, unless another clip has it.
    fn claim(&mut self, clip: &Row, path: &Path) -> bool {
        if clip.file == path.to_string_lossy() {
            return true;
        }
        let h = path_hash(path);
        self.recorded.binary_search(&h).is_err() && self.this_run.insert(h)
    }
}

fn path_hash(path: &Path) -> u64 {
    key_hash(path.to_string_lossy().to_lowercase().as_bytes())
}

/// Whether the file at `audio` leaves the name to `clip`: nothing there
/// (or a symlink, which the download replaces, never writes through), or
/// a regular file batchgen tagged as this very clip's (a run killed after
/// its rename, before its record). Anything else there is someone's: a
/// song of another task reached through another name (a hard link, a
/// bind mount, another spelling of the folder, a case-insensitive file
/// system), or a file batchgen did not write. It is neither adopted nor
/// replaced.
async fn leaves_name_to(clip: &Row, audio: &Path) -> bool {
    match tokio::fs::symlink_metadata(audio).await {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(_) => false,
        Ok(meta) if meta.file_type().is_symlink() => true,
        Ok(meta) if !meta.is_file() => false,
        Ok(_) => {
            let path = audio.to_owned();
            let owner = tokio::task::spawn_blocking(move || tags::owner(&path))
                .await
                .ok()
                .flatten();
            owner.is_some_and(|(task, id)| task == clip.task_id && id == clip.clip_id)
        }
    }
}

struct DownloadState {
    config: DownloadConfig,
    fetcher: Fetcher,
    measurer: Option<Measurer>,
    store: Arc<Catalog>,
    stop: CancellationToken,
    claims: Mutex<Claims>,
    summary: Mutex<DownloadSummary>,
}

/// Starts the download workers. Send complete clips' rows; drop the
/// sender when there are no more, then await the handle. Workers stop
/// early when `stop` is cancelled (a partial `.part` file stays for the
/// next run to resume). Takes are judged by `gate` when the config
/// measures ([`rules_in_force`]).
///
/// # Errors
/// When the HTTP client cannot be built.
pub fn spawn(
    config: DownloadConfig,
    store: Arc<Catalog>,
    claims: Claims,
    gate: Gate,
    stop: CancellationToken,
) -> anyhow::Result<(Queue, JoinHandle<DownloadSummary>)> {
    let fetcher = Fetcher::new(&config, stop.clone())?;
    let workers = config.concurrency.max(1);
    let measurer = config.measure.as_ref().map(|m| Measurer::new(m, gate));
    let shared = Arc::new(DownloadState {
        config,
        fetcher,
        measurer,
        store,
        stop,
        claims: Mutex::new(claims),
        summary: Mutex::default(),
    });
    let (tx, rx) = mpsc::unbounded_channel::<Item>();
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
async fn worker(
    shared: Arc<DownloadState>,
    rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Item>>>,
) {
    loop {
        let clip = {
            let mut rx = rx.lock().await;
            tokio::select! {
                biased;
                () = shared.stop.cancelled() => None,
                clip = rx.recv() => clip,
            }
        };
        let Some(Item { row, track, hold }) = clip else {
            break;
        };
        shared.clip(row, track).await;
        drop(hold);
    }
}

impl DownloadState {
    fn count(&self, f: impl FnOnce(&mut DownloadSummary)) {
        f(&mut self.summary.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Fetches one clip's audio (and image), recording the outcome.
    async fn clip(&self, clip: Row, track: Option<u32>) {
        let (stem, audio) = match self.claim(&clip).await {
            Ok(named) => named,
            Err(message) => {
                self.count(|s| s.failed += 1);
                self.record(&clip, |row| row.error = message);
                return;
            }
        };
        if !self.audio(&clip, &audio, track).await {
            return;
        }
        if self.config.images && !clip.image_url.is_empty() {
            self.image(&clip, &stem).await;
        }
    }

    /// The clip's file: the template's name, or when another clip holds
    /// that (an earlier task of the job, a template without `{index}`, a
    /// file on disk that is not this clip's: [`leaves_name_to`]) the same
    /// with the clip's own suffix ([`NameTemplate::render_distinct`]); its
    /// stem and path.
    async fn claim(&self, clip: &Row) -> Result<(String, PathBuf), String> {
        let stems = [
            self.config.name.render(clip),
            self.config.name.render_distinct(clip),
        ];
        let mut tried = Vec::new();
        for stem in stems {
            let audio = self.config.dir.join(format!("{stem}.mp3"));
            let free = self
                .claims
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .claim(clip, &audio);
            if free && (clip.file == audio.to_string_lossy() || leaves_name_to(clip, &audio).await)
            {
                return Ok((stem, audio));
            }
            tried.push(audio);
        }
        Err(format!(
            "file names {} and {} are both taken, by other clips of this catalog or by files batchgen did not write for this clip (left as they are); a --name with {{clip_id}} gives each clip a name of its own (songs already downloaded are then fetched again under their new names)",
            tried[0].display(),
            tried[1].display(),
        ))
    }

    /// The clip's MP3 into `audio`, and its row updated; false when it
    /// failed (or the run stopped), so no image is fetched.
    async fn audio(&self, clip: &Row, audio: &Path, track: Option<u32>) -> bool {
        let recorded = (clip.file == audio.to_string_lossy()).then_some(clip.file_bytes);
        let tag = tags::TagInfo::new(clip, &self.config, audio, track);
        let result = match super::audio::usable_url(&clip.audio_url) {
            Ok(()) => {
                self.fetcher
                    .file(
                        &clip.audio_url,
                        audio,
                        recorded.flatten(),
                        Some(tag),
                        self.measurer.as_ref(),
                    )
                    .await
            }
            Err(why) => Err(why),
        };
        match result {
            Ok(mut got) => {
                // A song in place that was never measured (an earlier
                // release's, or measuring was off): measured there.
                if let Some(measurer) = &self.measurer
                    && got.measured.is_none()
                    && !clip.is_measured()
                {
                    let (measured, size) = measurer.measure_in_place(audio).await;
                    if self.stop.is_cancelled() {
                        return false;
                    }
                    got.measured = Some(measured);
                    got.size = size.unwrap_or(got.size);
                }
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
        let rules = self.measurer.as_ref().map(|m| m.gate.rules(&clip.key));
        let measured = got.measured;
        self.record_job(clip, |job| {
            let Some(row) = job.row_mut(clip.clip_index) else {
                return;
            };
            if let Some(m) = measured {
                row.set_measured(m);
            }
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
            if let Some(rules) = rules {
                job.judge(&clip.task_id, rules);
            }
        });
    }

    /// The cover image beside the MP3 (`<stem>.png`), checked for being an
    /// image ([`Fetcher::image`]): a body that is not one is neither kept
    /// nor recorded, and the next run fetches it again.
    async fn image(&self, clip: &Row, stem: &str) {
        let image = self.config.dir.join(format!("{stem}.png"));
        let present = clip.image_file == image.to_string_lossy();
        match self.fetcher.image(&clip.image_url, &image).await {
            Ok(fetched) => {
                if fetched || !present {
                    let file = image.to_string_lossy().into_owned();
                    self.record(clip, |row| row.image_file = file);
                }
            }
            Err(message) if !self.stop.is_cancelled() => {
                self.count(|s| s.failed += 1);
                self.record(clip, |row| {
                    row.image_file.clear();
                    row.error = format!("image download failed: {message}");
                });
            }
            Err(_) => {}
        }
    }

    /// Changes the clip's job's live rows, if the clip is still of the
    /// same task.
    fn record_job(&self, clip: &Row, change: impl FnOnce(&mut JobRows)) {
        let updated = self
            .store
            .update_job(&clip.key, clip.clip_index, &clip.task_id, change);
        if let Err(e) = updated {
            tracing::warn!(key = %clip.key, "cannot record the download: {e}");
        }
    }

    /// Changes the clip's live row, if it is still of the same task.
    fn record(&self, clip: &Row, change: impl FnOnce(&mut Row)) {
        self.record_job(clip, |job| {
            if let Some(row) = job.row_mut(clip.clip_index) {
                change(row);
            }
        });
    }
}

/// The quality rules a collect that measures judges by: `config`'s
/// (flags, or a manifest's table), then those the last run kept in the
/// store, then the defaults; and over them, for the jobs that set their
/// own, those the last run kept ([`Gate`]). Every take already measured is
/// judged again when these are not the rules it was judged by
/// ([`Catalog::judge_all`]). Blocking.
///
/// # Errors
/// The store unreadable or unwritable, or rules in it this batchgen does
/// not read.
pub fn rules_in_force(config: &MeasureConfig, store: &Catalog) -> Result<Gate, CatalogError> {
    let run = config.quality.clone().or(store.quality()?);
    let gate = Gate::new(&run, &store.job_quality()?);
    store.judge_all(&gate)?;
    Ok(gate)
}

/// `DIR/sub/name.png` → `DIR/sub/.name.png.part`: where a file written
/// whole (a cover) is made before its rename. An earlier release also
/// downloaded songs there.
pub fn part_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.part"))
}

/// `DIR/sub/name.mp3` → `DIR/sub/.name.mp3.1a2b3c4d.part`: where the song
/// of clip `clip_id` of task `task_id` is downloaded, and resumed after an
/// interruption. The suffix comes from the clip, so a `.part` another clip
/// left under the same name (a job's earlier task, another catalog in the
/// same folder) is never resumed with this clip's bytes.
pub fn resumable_part(path: &Path, task_id: &str, clip_id: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let owner = key_hash(format!("{task_id}/{clip_id}").as_bytes()) as u32;
    path.with_file_name(format!(".{name}.{owner:08x}.part"))
}

#[cfg(test)]
mod tests {
    use id3::TagLike;

    use super::*;

    fn clip(task: &str, id: &str, file: &str) -> Row {
        Row {
            task_id: task.into(),
            clip_id: id.into(),
            file: file.into(),
            ..Row::default()
        }
    }

    /// Names that differ only in case are one file on a case-insensitive
    /// file system: the second clip does not get the first one's.
    #[test]
    fn names_are_claimed_case_folded() {
        let mut claims = Claims::default();
        let (a, b) = (clip("t", "a", ""), clip("t", "b", ""));
        assert!(claims.claim(&a, Path::new("songs/Rain-1.mp3")));
        assert!(!claims.claim(&b, Path::new("songs/rain-1.mp3")));
        assert!(!claims.claim(&b, Path::new("songs/RAIN-1.MP3")));
        assert!(claims.claim(&b, Path::new("songs/rain-2.mp3")));
        // A clip's own recorded file is its own, whoever else asks.
        let own = clip("t", "c", "songs/Own-1.mp3");
        let mut recorded = Claims {
            recorded: vec![path_hash(Path::new("songs/Own-1.mp3"))],
            this_run: HashSet::new(),
        };
        assert!(recorded.claim(&own, Path::new("songs/Own-1.mp3")));
        assert!(!recorded.claim(&a, Path::new("songs/own-1.mp3")));
    }

    /// A file under a clip's name is the clip's only when batchgen tagged
    /// it as that very clip's.
    #[tokio::test]
    async fn a_file_is_left_to_a_clip_only_when_tagged_as_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.mp3");
        let a = clip("t1", "c1", "");
        assert!(leaves_name_to(&a, &path).await, "nothing there");
        std::fs::write(&path, "not audio").unwrap();
        assert!(!leaves_name_to(&a, &path).await, "someone's file");
        let mut tag = id3::Tag::new();
        for (name, value) in [("batchgen:task_id", "t1"), ("batchgen:clip_id", "c1")] {
            tag.add_frame(id3::frame::ExtendedText {
                description: name.into(),
                value: value.into(),
            });
        }
        std::fs::write(&path, [0xff, 0xfb, 0x90, 0x00]).unwrap();
        tag.write_to_path(&path, id3::Version::Id3v24).unwrap();
        assert!(leaves_name_to(&a, &path).await, "its own, unrecorded");
        assert!(
            !leaves_name_to(&clip("t2", "c1", ""), &path).await,
            "another task's"
        );
        assert!(
            !leaves_name_to(&clip("t1", "c2", ""), &path).await,
            "another clip's"
        );
    }
}
