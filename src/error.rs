//! The errors that end a run, and the exit code each one maps to.
//!
//! A failed *row* is not an error: it is a line in the results file. Only
//! what stops the whole run lives here, so `main` can print it once and exit
//! with a code a cron wrapper can branch on. The codes follow BSD
//! `sysexits.h` where one fits.

use std::path::PathBuf;

use crate::manifest::ManifestError;

/// Process exit codes; the README's table lists the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Every row submitted (or nothing left to do).
    Success = 0,
    /// The run finished but some rows failed or are unknown.
    RowsFailed = 1,
    /// Bad flags or arguments.
    Usage = 2,
    /// The manifest is invalid (EX_DATAERR).
    InvalidManifest = 65,
    /// The manifest is missing or unreadable (EX_NOINPUT).
    NoInput = 66,
    /// The API could not be reached; the run gave up (EX_UNAVAILABLE).
    Unavailable = 69,
    /// The results file cannot be created or written (EX_CANTCREAT).
    CantCreate = 73,
    /// Another run holds the results file (EX_TEMPFAIL).
    Locked = 75,
    /// The API refused the key: 401, 402 or 403 (EX_NOPERM).
    Refused = 77,
    /// Configuration error, e.g. no API key (EX_CONFIG).
    Config = 78,
    /// Stopped by SIGINT.
    Interrupted = 130,
    /// Stopped by SIGTERM.
    Terminated = 143,
}

impl ExitCode {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// An error that ends the run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Manifest(#[from] ManifestError),

    #[error("{0}")]
    Usage(String),

    #[error("{0}")]
    Config(String),

    #[error("cannot write the results file {}: {source}", path.display())]
    Results {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{} is in use by another batchgen run{}", path.display(), holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked { path: PathBuf, holder: Option<u32> },

    #[error("the API refused the request with HTTP {status}: {message}")]
    Refused { status: u16, message: String },

    #[error("the API is unreachable: {0}")]
    Unavailable(String),

    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Manifest(e) => e.exit_code(),
            Error::Usage(_) => ExitCode::Usage,
            Error::Config(_) => ExitCode::Config,
            Error::Results { .. } => ExitCode::CantCreate,
            Error::Locked { .. } => ExitCode::Locked,
            Error::Refused { .. } => ExitCode::Refused,
            Error::Unavailable(_) => ExitCode::Unavailable,
            Error::Other(_) => ExitCode::RowsFailed,
        }
    }

    /// A one-line suggestion of what to do, when there is a useful one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Error::Refused { status: 401, .. } => {
                Some("the API refused the key: check BATCHGEN_API_KEY or --api-key-file")
            }
            Error::Refused { status: 402, .. } => {
                Some("the account is out of credits: top up, then rerun (finished rows are kept)")
            }
            Error::Refused { .. } => {
                Some("the key is not allowed to do this: check the account and the base URL")
            }
            Error::Unavailable(_) => {
                Some("check --base-url and the network; rerun later: rows not sent stay pending")
            }
            Error::Locked { .. } => {
                Some("wait for the other run to finish, or use a different --out")
            }
            Error::Results { .. } => {
                Some("free disk space or fix permissions, or choose another file with --out")
            }
            _ => None,
        }
    }
}
