//! Manifest loading (stub: to be written).
use std::path::PathBuf;

use crate::config::RunSettings;
use crate::error::ExitCode;
use crate::job::Job;

/// A loaded, fully validated manifest.
#[derive(Debug)]
pub struct Manifest {
    /// The manifest file given on the command line.
    pub path: PathBuf,
    /// The file the rows come from: `path`, or the CSV a TOML manifest names.
    pub rows_path: PathBuf,
    /// The `[run]` table (all unset for CSV manifests).
    pub settings: RunSettings,
    pub jobs: Vec<Job>,
}

/// One problem in a manifest, printed as `FILE:LINE: field: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: u64,
    pub field: Option<String>,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid manifest")]
    Invalid { diagnostics: Vec<Diagnostic> },
}

impl ManifestError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            ManifestError::Unreadable { .. } => ExitCode::NoInput,
            ManifestError::Invalid { .. } => ExitCode::InvalidManifest,
        }
    }
}

/// Loads and validates a manifest.
pub fn load(path: &std::path::Path) -> Result<Manifest, ManifestError> {
    let _ = path;
    todo!()
}
