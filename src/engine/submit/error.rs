//! What ends a run before it can say how its rows went: the engine's own
//! error type, so that no code of the engine chooses an exit code (the
//! program maps it, in `crate::program::exit`). A failed row is never one
//! of these: it is a row of the results file and a count in the report.

use crate::files::manifest::ManifestError;
use crate::files::results::ResultsError;

/// Why a run could not record its results, read its jobs, or start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The manifest could not be read again, or changed under the run.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The results file is locked, not batchgen's, or cannot be written.
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// The HTTP client could not be built, or a thread of the run failed.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}
