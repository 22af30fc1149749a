//! The catalog CSV: one row per clip, and the one writer of it.
//!
//! The catalog is both the product (what was made, where the files are) and
//! the state of `collect`: a rerun reads it back and polls only tasks whose
//! clips are not all final, and downloads only complete clips whose file is
//! not on disk. Polling (`collect`) and callbacks (`receive`) both feed it
//! through [`SharedCatalog::apply`], with clips from the one parser
//! ([`crate::api::feed`]), so the two paths cannot disagree.
//!
//! Rows are kept in results order (= manifest order), then clip index. The
//! file is rewritten whole, through the `csv` crate, to a temp file that is
//! fsynced and renamed over the old one (the results file's recipe,
//! `results::AtomicCsv`), by one [`flusher`] task at most once a second
//! (`FLUSH_EVERY`) and once more at the end: a kill leaves the previous
//! whole file, never half of one.
//! An advisory lock on `<catalog>.lock` keeps two writers off one file.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::api::feed::{self, ClipStatus, TaskClips};
use crate::files::results::{AtomicCsv, Bounded, ResultsError};

/// What goes wrong with the catalog file; the results file's mechanics
/// ([`ResultsError`]) under the catalog's own names, so a message points
/// at `--catalog`, not `--out`.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The catalog cannot be created, read or written.
    #[error("cannot write the catalog {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Another `collect` or `receive` holds the catalog.
    #[error("the catalog {} is in use by another batchgen collect or receive{}", path.display(), holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked { path: PathBuf, holder: Option<u32> },
    /// The file is not a catalog: left untouched.
    #[error("{0}")]
    Refused(String),
    /// The writer task itself failed (it panicked): a bug, not the disk.
    #[error("catalog writer failed: {0}")]
    Writer(String),
}

impl From<ResultsError> for CatalogError {
    fn from(e: ResultsError) -> CatalogError {
        match e {
            ResultsError::Io { path, source } => CatalogError::Io { path, source },
            ResultsError::Locked { path, holder } => CatalogError::Locked { path, holder },
            ResultsError::Refused(message) => CatalogError::Refused(message),
        }
    }
}

/// Most frequent rewrite of the catalog file while clips keep changing.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// One row of the catalog: one clip of one job. Server-supplied text is
/// written defused against spreadsheet formulas and read back exactly
/// ([`crate::files::results::cell`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The job's key: the results file's `id`.
    pub key: String,
    #[serde(with = "crate::files::results::cell")]
    pub task_id: String,
    /// 1, 2, … in the order the API lists the clips; 0 for a task that
    /// failed before it had any clip.
    pub clip_index: u32,
    #[serde(with = "crate::files::results::cell")]
    pub clip_id: String,
    #[serde(default, with = "crate::files::results::cell")]
    pub title: String,
    /// The clip's style tags.
    #[serde(default, with = "crate::files::results::cell")]
    pub style: String,
    #[serde(default, with = "crate::files::results::cell")]
    pub model: String,
    /// `new`, `text`, `first`, `complete` or `failed`.
    pub status: String,
    /// Seconds.
    #[serde(default)]
    pub duration: Option<f64>,
    #[serde(default, with = "crate::files::results::cell")]
    pub created_at: String,
    #[serde(default, with = "crate::files::results::cell")]
    pub audio_url: String,
    #[serde(default, with = "crate::files::results::cell")]
    pub image_url: String,
    /// The downloaded MP3, as given (relative to where collect ran if
    /// `--download` was relative); empty until downloaded.
    #[serde(default, with = "crate::files::results::cell")]
    pub file: String,
    /// Size of `file` on disk after tagging: a file of another size is not
    /// ours (or was cut short) and is downloaded again.
    #[serde(default)]
    pub file_bytes: Option<u64>,
    #[serde(default, with = "crate::files::results::cell")]
    pub image_file: String,
    /// Why the clip failed, or why its download did.
    #[serde(default, with = "crate::files::results::cell")]
    pub error: String,
    /// The clip's lyrics ([`feed::Clip::lyrics`]), for the MP3's tag.
    #[serde(default, with = "crate::files::results::cell")]
    pub lyrics: String,
}

impl Row {
    pub fn status(&self) -> ClipStatus {
        ClipStatus::parse(&self.status)
    }
}

/// Where a row sorts: the job's place in the results (keys not in the
/// results after all of them, by key), then its clip index.
type Place = (usize, String, u32);

/// All rows, in results order, indexed by where they sort.
///
/// A map, not a list, because every question collect asks is about one
/// job (its rows, whether it is finished, merging one answer): in a list
/// each was a scan of every row, so a rerun over 10^5 finished tasks spent
/// minutes of CPU (tasks × rows) before its first poll, and each answer
/// re-sorted everything. Here each is a range lookup.
#[derive(Debug, Default)]
pub struct Catalog {
    rows: BTreeMap<Place, Row>,
    /// Results order of each key; keys not in the results sort last.
    order: HashMap<String, usize>,
}

impl Catalog {
    /// # Errors
    /// When the file exists but cannot be read or is not a catalog.
    pub fn load(path: &Path, keys: &[String]) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::default();
        catalog.set_order(keys);
        match File::open(path) {
            Ok(file) => {
                // Bounded: one unclosed quote must not make the rest of a
                // damaged catalog one record held in memory.
                let mut reader = csv::Reader::from_reader(Bounded::new(file));
                for row in reader.deserialize::<Row>() {
                    let row = row.map_err(|e| {
                        CatalogError::Refused(format!(
                            "{}: not a batchgen catalog ({e}); move it away or choose another --catalog",
                            path.display()
                        ))
                    })?;
                    catalog.insert(row);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(CatalogError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        }
        Ok(catalog)
    }

    /// Sets the results order (rerun with new keys appended to the results).
    pub fn set_order(&mut self, keys: &[String]) {
        self.order = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i))
            .collect();
        let rows = std::mem::take(&mut self.rows);
        for row in rows.into_values() {
            self.insert(row);
        }
    }

    fn rank(&self, key: &str) -> usize {
        self.order.get(key).copied().unwrap_or(usize::MAX)
    }

    /// Adds a row where it sorts; a row of the same job and clip index
    /// replaces it (a hand-edited catalog listing a clip twice keeps the
    /// later line).
    fn insert(&mut self, row: Row) {
        let place = (self.rank(&row.key), row.key.clone(), row.clip_index);
        self.rows.insert(place, row);
    }

    /// The places of one job's rows.
    fn places(&self, key: &str) -> std::collections::btree_map::Range<'_, Place, Row> {
        let rank = self.rank(key);
        self.rows
            .range((rank, key.to_owned(), 0)..=(rank, key.to_owned(), u32::MAX))
    }

    /// Every row, in results order, then clip index.
    pub fn rows(&self) -> Vec<&Row> {
        self.rows.values().collect()
    }

    /// The rows of one job.
    pub fn task_rows(&self, key: &str) -> Vec<&Row> {
        self.places(key).map(|(_, row)| row).collect()
    }

    /// Whether polling this task can stop: its rows are all of this task
    /// and pass the task rule ([`feed::task_finished`]: all final, and both
    /// clips or a failure).
    pub fn task_finished(&self, key: &str, task_id: &str) -> bool {
        let rows = self.task_rows(key);
        rows.iter().all(|r| r.task_id == task_id)
            && feed::task_finished(rows.iter().map(|r| r.status()))
    }

    /// Merges what a feed or callback said about job `key`'s task. Clips are
    /// matched by id; a new clip takes the next index. A final clip is never
    /// moved back (a late callback of an earlier stage changes nothing).
    /// `audio_url` is recorded for complete clips only: before that it is a
    /// streaming URL, and the catalog's `audio_url` is the song's file.
    /// Returns whether anything changed.
    pub fn apply(&mut self, key: &str, task_id: &str, feed: &TaskClips) -> bool {
        // A job submitted again has a new task: its old clips go.
        let stale: Vec<Place> = self
            .places(key)
            .filter(|(_, r)| r.task_id != task_id)
            .map(|(place, _)| place.clone())
            .collect();
        let mut changed = !stale.is_empty();
        for place in stale {
            self.rows.remove(&place);
        }
        if feed.clips.is_empty() && feed.is_finished() && self.places(key).next().is_none() {
            // Failed before any clip existed: keep the reason in a row.
            self.insert(Row {
                status: ClipStatus::Failed.as_str().to_owned(),
                error: feed
                    .failure
                    .clone()
                    .unwrap_or_else(|| "the task failed before any clip was made".to_owned()),
                ..blank(key, task_id, 0, "")
            });
            changed = true;
        }
        for clip in &feed.clips {
            let existing = self
                .places(key)
                .find(|(_, r)| r.clip_id == clip.id)
                .map(|(place, _)| place.clone());
            let place = match existing {
                Some(place) => place,
                None => {
                    let next = self.places(key).map(|(p, _)| p.2).max().unwrap_or(0) + 1;
                    let row = blank(key, task_id, next, &clip.id);
                    let place = (self.rank(key), key.to_owned(), next);
                    self.rows.insert(place.clone(), row);
                    changed = true;
                    place
                }
            };
            let row = self.rows.get_mut(&place).expect("just found or made");
            changed |= merge(row, clip);
        }
        changed
    }

    /// Finds a row by job key and clip index.
    pub fn row_mut(&mut self, key: &str, clip_index: u32) -> Option<&mut Row> {
        let place = (self.rank(key), key.to_owned(), clip_index);
        self.rows.get_mut(&place)
    }
}

/// One clip's news into its row; whether the row changed. A final row is
/// never moved back to a stage before it.
fn merge(row: &mut Row, clip: &feed::Clip) -> bool {
    if row.status().is_final() && !clip.status.is_final() {
        return false;
    }
    let mut updated = row.clone();
    updated.status = clip.status.as_str().to_owned();
    updated.title.clone_from(&clip.title);
    updated.style.clone_from(&clip.tags);
    updated.model.clone_from(&clip.model_name);
    updated.duration = clip.duration;
    updated.created_at = clip.created_at_text();
    if clip.status == ClipStatus::Complete {
        updated.audio_url.clone_from(&clip.audio_url);
    } else {
        updated.audio_url.clear();
    }
    updated.image_url.clone_from(&clip.image_url);
    if !clip.lyrics.is_empty() {
        updated.lyrics.clone_from(&clip.lyrics);
    }
    // The API's message replaces what was there, but a complete clip said
    // again (a repeated final callback) keeps the downloader's note about
    // its file.
    let keep_note = clip.error.is_empty()
        && clip.status == ClipStatus::Complete
        && row.status() == ClipStatus::Complete;
    if !keep_note {
        updated.error.clone_from(&clip.error);
    }
    if updated == *row {
        return false;
    }
    *row = updated;
    true
}

fn blank(key: &str, task_id: &str, clip_index: u32, clip_id: &str) -> Row {
    Row {
        key: key.to_owned(),
        task_id: task_id.to_owned(),
        clip_index,
        clip_id: clip_id.to_owned(),
        title: String::new(),
        style: String::new(),
        model: String::new(),
        status: ClipStatus::New.as_str().to_owned(),
        duration: None,
        created_at: String::new(),
        audio_url: String::new(),
        image_url: String::new(),
        file: String::new(),
        file_bytes: None,
        image_file: String::new(),
        error: String::new(),
        lyrics: String::new(),
    }
}

/// Writes the whole catalog through [`AtomicCsv`], the results file's
/// recipe: a temporary file beside it (the real file's folder, for a
/// catalog the user made a symlink), with its permission bits, renamed
/// over it. The header comes from [`Row`]'s field names with the first
/// row, so a catalog of no rows is an empty file.
fn write_rows(path: &Path, rows: &[Row]) -> Result<(), CatalogError> {
    let error = |source: io::Error| CatalogError::Io {
        path: path.to_owned(),
        source,
    };
    let mut out = AtomicCsv::create(path).map_err(error)?;
    for row in rows {
        // The `error` column quotes servers and download failures: it
        // passes the one redaction rule, like every other output.
        let written = match crate::util::redact::text(&row.error) {
            std::borrow::Cow::Borrowed(_) => out.serialize(row),
            std::borrow::Cow::Owned(masked) => out.serialize(Row {
                error: masked,
                ..row.clone()
            }),
        };
        written.map_err(error)?;
    }
    out.commit().map_err(error)
}

/// The catalog shared by the tasks that change it, and its file.
#[derive(Debug)]
pub struct SharedCatalog {
    path: PathBuf,
    catalog: Mutex<Catalog>,
    dirty: Notify,
}

impl SharedCatalog {
    pub fn new(path: PathBuf, catalog: Catalog) -> Arc<SharedCatalog> {
        Arc::new(SharedCatalog {
            path,
            catalog: Mutex::new(catalog),
            dirty: Notify::new(),
        })
    }

    /// The catalog, for reading or a change followed by [`SharedCatalog::changed`].
    pub fn lock(&self) -> MutexGuard<'_, Catalog> {
        self.catalog.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells the flusher the catalog changed.
    pub fn changed(&self) {
        self.dirty.notify_one();
    }

    /// [`Catalog::apply`], then schedules a write if anything changed.
    pub fn apply(&self, key: &str, task_id: &str, feed: &TaskClips) -> bool {
        let changed = self.lock().apply(key, task_id, feed);
        if changed {
            self.changed();
        }
        changed
    }

    /// Writes the catalog now, whole and atomically (`write_rows`).
    ///
    /// # Errors
    /// Any I/O error; the file is then left as it was.
    pub fn flush(&self) -> Result<(), CatalogError> {
        let rows: Vec<Row> = self.lock().rows.values().cloned().collect();
        write_rows(&self.path, &rows)
    }
}

/// The only writer of the catalog file: writes it after changes, at most
/// once per `FLUSH_EVERY`, and a last time when `stop` is cancelled. Ends
/// with the first write error (the caller stops the run: exit 73).
pub fn flusher(
    store: Arc<SharedCatalog>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<Result<(), CatalogError>> {
    tokio::spawn(async move {
        loop {
            let stopping = tokio::select! {
                biased;
                () = stop.cancelled() => true,
                () = store.dirty.notified() => false,
            };
            let s = Arc::clone(&store);
            tokio::task::spawn_blocking(move || s.flush())
                .await
                .map_err(|e| CatalogError::Writer(e.to_string()))??;
            if stopping {
                return Ok(());
            }
            tokio::select! {
                () = tokio::time::sleep(FLUSH_EVERY) => {}
                () = stop.cancelled() => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(body: &str) -> TaskClips {
        feed::parse(body.as_bytes()).unwrap()
    }

    const FINAL: &str = r#"[{"id":"a","status":"first","extra_message":"All generated successfully.","audio_url":"https://cdn.example/a.mp3"},
                           {"id":"b","status":"complete","audio_url":"https://cdn.example/b.mp3"}]"#;

    #[test]
    fn the_task_rule_and_what_a_later_body_may_change() {
        let mut catalog = Catalog::default();
        let streaming =
            r#"[{"id":"a","status":"first","audio_url":"https://audiopipe.suno.ai/?item_id=a"}]"#;
        assert!(catalog.apply("k", "t", &feed(streaming)));
        assert!(!catalog.task_finished("k", "t"));
        assert_eq!(
            catalog.rows()[0].audio_url,
            "",
            "a streaming URL is not recorded"
        );

        catalog.apply("k", "t", &feed(FINAL));
        assert!(catalog.task_finished("k", "t"));
        assert!(!catalog.task_finished("k", "other task"));
        let statuses: Vec<&str> = catalog.rows().iter().map(|r| r.status.as_str()).collect();
        assert_eq!(statuses, ["complete", "complete"]);

        // The downloader's note survives the final stage said again, and a
        // late earlier stage changes nothing.
        catalog.row_mut("k", 1).unwrap().error = "kept without tags: x".into();
        assert!(!catalog.apply("k", "t", &feed(FINAL)));
        assert!(!catalog.apply("k", "t", &feed(streaming)));
        assert_eq!(catalog.rows()[0].error, "kept without tags: x");
        assert_eq!(catalog.rows()[0].audio_url, "https://cdn.example/a.mp3");

        // One complete clip of two is not a finished task; a failure is.
        let mut one = Catalog::default();
        one.apply(
            "k",
            "t",
            &feed(r#"[{"id":"a","status":"complete","audio_url":"https://cdn.example/a.mp3"}]"#),
        );
        assert!(!one.task_finished("k", "t"));
        one.apply(
            "k",
            "t",
            &feed(r#"[{"id":"b","fail_message":"Topic too long."}]"#),
        );
        assert!(one.task_finished("k", "t"));
    }

    #[test]
    fn a_task_that_failed_before_any_clip_keeps_the_reason() {
        let mut catalog = Catalog::default();
        catalog.apply(
            "k",
            "t",
            &feed(r#"[{"id":"","fail_message":"Does Not Meet Guidelines"}]"#),
        );
        let row = &catalog.rows()[0];
        assert_eq!(
            (row.clip_index, row.status.as_str(), row.error.as_str()),
            (0, "failed", "Does Not Meet Guidelines")
        );
        assert!(catalog.task_finished("k", "t"));
    }
}
