//! The catalog CSV: one row per clip, and the one writer of it.
//!
//! The catalog is both the product (what was made, where the files are) and
//! the state of `collect`: a rerun reads it back and polls only tasks whose
//! clips are not all final, and downloads only complete clips whose file is
//! not on disk. Polling (`collect`) and callbacks (`receive`) both feed it
//! through [`SharedCatalog::apply`], with clips from the one parser
//! ([`crate::api::feed`]), so the two paths cannot disagree.
//!
//! # The file, and memory
//! Rows are in results order (= manifest order), then clip index: the
//! **body**. A run appends the rows it changes after it, at most once a
//! second and fsynced (the **tail**: a later row of a job and clip
//! supersedes an earlier one), and at its end (or when the tail outgrows a
//! quarter of the body) rewrites the file as one sorted body, through a
//! temporary file renamed over it. A kill leaves the last compaction plus
//! the appends since, which the next run reads as such; a last row cut
//! short is dropped ([`scan`]). So no run holds the catalog: only the
//! jobs it is working on are in memory ([`store`]), and the file is read
//! as a stream ([`scan::Jobs`]) or one job at a time.
//!
//! - [`job`]: one job's rows and the merge rule (what an answer may change);
//! - [`Ranks`] (the results file's): where each key sorts, 16 bytes a job;
//! - [`scan`]: the file's body and tail, every job's current rows in order;
//! - [`store`]: the jobs in memory, the appends, the compaction, the writer.
//!
//! An advisory lock on `<catalog>.lock` keeps two writers off one file.

pub mod job;
pub mod scan;
pub mod store;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::api::feed::ClipStatus;
pub use crate::files::results::Ranks;
use crate::files::results::ResultsError;
pub use job::JobRows;
pub use scan::{Job, Jobs, Layout};
pub use store::{Applied, SharedCatalog, flusher};

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

/// One row of the catalog: one clip of one job. Server-supplied text is
/// written defused against spreadsheet formulas and read back exactly
/// ([`crate::files::results::cell`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// The clip's lyrics ([`crate::api::feed::Clip::lyrics`]), for the MP3's tag.
    #[serde(default, with = "crate::files::results::cell")]
    pub lyrics: String,
}

impl Row {
    pub fn status(&self) -> ClipStatus {
        ClipStatus::parse(&self.status)
    }
}

/// Every job's current rows of the catalog at `path`, in order of
/// `ranks` (a missing catalog has none). For readers that take no lock
/// (`status`, the page): the file as it is now, tail included.
///
/// # Errors
/// The file unreadable, or not a catalog.
pub fn read_jobs(path: &Path, ranks: Arc<Ranks>) -> Result<Option<Jobs>, CatalogError> {
    match Layout::read(path, &ranks)? {
        Some(layout) => Jobs::new(path, layout, ranks).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests;
