//! The errors that end a run, and the exit code each one maps to: the one
//! place in the crate where exit codes and hints are chosen.
//!
//! Each lower layer returns its own error ([`ManifestError`],
//! `ResultsError`, `CatalogError`, the engines' `RunError`,
//! `CollectError`, `ReceiveError`) and knows nothing of processes; the
//! `From` impls below turn each into this module's [`Error`], and
//! [`ExitStatus`] gives the code of an error or of a finished run's report.
//! So the README's exit-code table has one source.
//!
//! A failed *row* is not an error: it is a line in the results file. Only
//! what stops the whole run lives here, so `main` can print it once and exit
//! with a code a cron wrapper can branch on. The codes follow BSD
//! `sysexits.h` where one fits.
//!
//! Every message names the real thing and the real flag: the catalog and
//! the download folder have their own variants (not "the results file"),
//! a locked catalog points at `--catalog` (not `--out`), `credits` against
//! a host without the endpoint does not talk about rows, and a refusal
//! says its `HTTP <status>` once however the message was built.

use std::path::PathBuf;

use crate::api::answer::Halt;
use crate::files::manifest::ManifestError;

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
    /// The manifest (or `collect`'s results file) is missing or unreadable
    /// (EX_NOINPUT).
    NoInput = 66,
    /// The API could not be reached; the run gave up (EX_UNAVAILABLE).
    Unavailable = 69,
    /// The results file cannot be created or written (EX_CANTCREAT).
    CantCreate = 73,
    /// Another run holds the results file (EX_TEMPFAIL).
    Locked = 75,
    /// The API refused the key: 401, 402 or 403 (EX_NOPERM).
    Refused = 77,
    /// A bug in batchgen: an error no input or environment explains (a
    /// task that panicked, a value it cannot encode) (EX_SOFTWARE). Kept
    /// apart from 1, so a cron wrapper can tell a bug from a bad row.
    Internal = 70,
    /// Configuration error, e.g. no API key (EX_CONFIG).
    Config = 78,
    /// Stopped by SIGHUP (the terminal closed, the ssh session dropped).
    HangUp = 129,
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

/// The exit code a value that ends a command stands for. Implemented
/// here, in the one place codes are chosen, for the program's [`Error`]
/// and for the lower layers' errors and reports that a command returns
/// as they are.
pub trait ExitStatus {
    fn exit_code(&self) -> ExitCode;
}

impl ExitStatus for ManifestError {
    fn exit_code(&self) -> ExitCode {
        match self {
            ManifestError::Unreadable { .. } => ExitCode::NoInput,
            ManifestError::Invalid { .. } => ExitCode::InvalidManifest,
        }
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

    /// A setting's value that cannot be used (exit 78).
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),

    #[error("cannot write the results file {}: {source}", path.display())]
    Results {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{} is in use by another batchgen run{}", path.display(), holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked { path: PathBuf, holder: Option<u32> },

    /// The catalog of `collect` / `receive` cannot be written.
    #[error("cannot write the catalog {}: {source}", path.display())]
    Catalog {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `--download DIR` cannot be created or written into.
    #[error("cannot write into the download folder {}: {source}", path.display())]
    DownloadDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `measure --wav DIR` cannot be created.
    #[error("cannot make the WAV folder {}: {source}", path.display())]
    WavDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The catalog page or playlist cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Page {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Another `collect` or `receive` holds the catalog.
    #[error("the catalog {} is in use by another batchgen collect or receive{}", path.display(), holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    CatalogLocked { path: PathBuf, holder: Option<u32> },

    /// The host's answers stop the run: refused (77), misdirected (78) or
    /// unavailable (69).
    #[error(transparent)]
    Host(#[from] Halt),

    /// `batchgen credits` got no balance (not about rows: it sends none).
    #[error("no balance from {url}: {message}")]
    Credits { url: String, message: String },

    /// Standard output cannot be written (not a closed pipe: a full disk
    /// it was redirected to, a file it cannot grow).
    #[error("cannot write to standard output: {0}")]
    Output(std::io::Error),

    /// What no input or environment explains: a bug (exit 70).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl ExitStatus for Error {
    fn exit_code(&self) -> ExitCode {
        match self {
            Error::Manifest(e) => e.exit_code(),
            Error::Usage(_) => ExitCode::Usage,
            Error::Config(_) | Error::Settings(_) => ExitCode::Config,
            Error::Results { .. }
            | Error::Catalog { .. }
            | Error::DownloadDir { .. }
            | Error::WavDir { .. }
            | Error::Page { .. }
            | Error::Output(_) => ExitCode::CantCreate,
            Error::Locked { .. } | Error::CatalogLocked { .. } => ExitCode::Locked,
            Error::Credits { .. } => ExitCode::Unavailable,
            Error::Host(Halt::Refused { .. }) => ExitCode::Refused,
            Error::Host(Halt::Misdirected(_)) => ExitCode::Config,
            Error::Host(Halt::Unavailable(_)) => ExitCode::Unavailable,
            Error::Other(_) => ExitCode::Internal,
        }
    }
}

impl Error {
    /// A one-line suggestion of what to do, when there is a useful one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Error::Host(Halt::Refused { status: 401, .. }) => {
                Some("the API refused the key: check BATCHGEN_API_KEY or --api-key-file")
            }
            Error::Host(Halt::Refused { status: 402, .. }) => {
                Some("the account is out of credits: top up, then rerun (finished rows are kept)")
            }
            Error::Host(Halt::Refused { .. }) => {
                Some("the key is not allowed to do this: check the account and the base URL")
            }
            Error::Host(Halt::Unavailable(_)) => {
                Some("check --base-url and the network; rerun later: rows not sent stay pending")
            }
            Error::Locked { .. } => {
                Some("wait for the other run to finish, or use a different --out")
            }
            Error::Results { .. } => {
                Some("free disk space or fix permissions, or choose another file with --out")
            }
            Error::Catalog { .. } => {
                Some("free disk space or fix permissions, or choose another file with --catalog")
            }
            Error::DownloadDir { .. } => Some(
                "fix the folder's permissions or free disk space, or choose another folder with --download",
            ),
            Error::WavDir { .. } => Some(
                "fix the folder's permissions or free disk space, or choose another folder with --wav",
            ),
            Error::CatalogLocked { .. } => Some(
                "wait for the other collect or receive to finish, or use a different --catalog",
            ),
            Error::Credits { .. } => Some(
                "check --base-url and the network; a host without GET /api/v2/credits cannot show a balance (runs do not need it)",
            ),
            Error::Other(_) => Some(
                "this is a bug in batchgen (exit 70): the results file and state file keep what was done; please report the command and this message",
            ),
            Error::Output(_) => {
                Some("free disk space where standard output goes, or fix its permissions")
            }
            Error::Manifest(_)
            | Error::Usage(_)
            | Error::Host(Halt::Misdirected(_))
            | Error::Config(_)
            | Error::Settings(_)
            | Error::Page { .. } => None,
        }
    }
}

/// Prints a run-ending error once, with a hint when there is one.
/// Every line goes through the one redaction rule ([`crate::util::redact`]):
/// an error chain can quote a URL or a server's echo of the key.
pub fn print(err: &Error) {
    use crate::util::term::eprint_line;
    match err {
        // Diagnostics are already `FILE:LINE: field: message` lines.
        Error::Manifest(e @ ManifestError::Invalid { .. }) => eprint_line(&e.to_string()),
        _ => eprint_line(&format!(
            "batchgen: error: {}",
            crate::util::chain::chain(err)
        )),
    }
    if let Some(hint) = err.hint() {
        eprint_line(&format!("batchgen: hint: {hint}"));
    }
    if err.exit_code() == ExitCode::Usage {
        eprint_line("Usage: batchgen [OPTIONS] MANIFEST | batchgen <COMMAND>; see batchgen --help");
    }
}

/// The results file's errors: a file that is not ours or is damaged is a
/// configuration error (78), nothing is sent.
impl From<crate::files::results::ResultsError> for Error {
    fn from(e: crate::files::results::ResultsError) -> Error {
        use crate::files::results::ResultsError;
        match e {
            ResultsError::Io { path, source } => Error::Results { path, source },
            ResultsError::Locked { path, holder } => Error::Locked { path, holder },
            ResultsError::Refused(message) => Error::Config(message),
        }
    }
}

/// The page's errors: a file in its place that batchgen did not write is a
/// configuration error (78); one it cannot write, 73; a bug, 70.
impl From<crate::files::page::PageError> for Error {
    fn from(e: crate::files::page::PageError) -> Error {
        use crate::files::page::PageError;
        match e {
            PageError::Write { path, source } => Error::Page { path, source },
            PageError::Catalog(e) => Error::from(e),
            e @ PageError::NotOurs { .. } => Error::Config(e.to_string()),
            e @ PageError::Encode(_) => Error::Other(anyhow::Error::new(e)),
        }
    }
}

impl From<crate::files::catalog::CatalogError> for Error {
    fn from(e: crate::files::catalog::CatalogError) -> Error {
        use crate::files::catalog::CatalogError;
        match e {
            CatalogError::Io { path, source } => Error::Catalog { path, source },
            CatalogError::Locked { path, holder } => Error::CatalogLocked { path, holder },
            CatalogError::Refused(message) => Error::Config(message),
            writer @ CatalogError::Writer(_) => Error::Other(anyhow::anyhow!("{writer}")),
        }
    }
}

// The collect engine and the receiver: their reports and errors.

/// 0 when every clip is final (and downloaded, if asked), else 1.
impl ExitStatus for crate::engine::collect::CollectReport {
    fn exit_code(&self) -> ExitCode {
        if self.counts.tasks_finished == self.counts.tasks
            && self.counts.files_missing == 0
            && self.downloads.failed == 0
        {
            ExitCode::Success
        } else {
            ExitCode::RowsFailed
        }
    }
}

/// A collect run's errors, as the variants it always ended with: a missing
/// results file is a missing input (66, the manifest's message); the
/// catalog's through [`CatalogError`](crate::files::catalog::CatalogError);
/// the download folder's its own.
///
/// A results file that exists but cannot be read is an input that cannot
/// be read, like a missing one (66); one that is not a results file is a
/// configuration error (78). Each file's error keeps its own name, so an
/// unwritable results file is never reported as the catalog.
impl From<crate::engine::collect::CollectError> for Error {
    fn from(e: crate::engine::collect::CollectError) -> Error {
        use crate::engine::collect::CollectError;
        use crate::files::results::ResultsError;
        match e {
            CollectError::NoResults { path, source } => {
                Error::Manifest(ManifestError::Unreadable { path, source })
            }
            CollectError::ResultsUnreadable(ResultsError::Io { path, source }) => {
                Error::Manifest(ManifestError::Unreadable { path, source })
            }
            CollectError::ResultsUnreadable(e) => Error::from(e),
            CollectError::Catalog(e) => Error::from(e),
            CollectError::DownloadDir { path, source } => Error::DownloadDir { path, source },
            CollectError::Host(halt) => Error::Host(halt),
            CollectError::WrongProvider(message) => Error::Config(message),
            CollectError::Other(e) => Error::Other(e),
        }
    }
}

/// `status`'s errors, as collect's: a results file missing or unreadable is
/// an input that cannot be read (66); one that is not a results file, or a
/// catalog that is not a catalog, a configuration error (78).
impl From<crate::files::status::StatusError> for Error {
    fn from(e: crate::files::status::StatusError) -> Error {
        use crate::files::results::ResultsError;
        use crate::files::status::StatusError;
        match e {
            StatusError::NoResults(path) => Error::Manifest(ManifestError::Unreadable {
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such file (no run has written it)",
                ),
            }),
            StatusError::Results(ResultsError::Io { path, source }) => {
                Error::Manifest(ManifestError::Unreadable { path, source })
            }
            StatusError::Results(e) => Error::from(e),
            StatusError::Catalog(e) => Error::from(e),
        }
    }
}

/// The receiver's errors: the catalog's, or an address it cannot listen on.
impl From<crate::engine::collect::receive::ReceiveError> for Error {
    fn from(e: crate::engine::collect::receive::ReceiveError) -> Error {
        use crate::engine::collect::receive::ReceiveError;
        match e {
            ReceiveError::Catalog(e) => Error::from(e),
            e @ ReceiveError::Listen { .. } => Error::Config(e.to_string()),
        }
    }
}

// The submit engine: its errors, and how a run's report ends the command.

/// The submit engine's errors.
impl From<crate::engine::submit::error::RunError> for Error {
    fn from(e: crate::engine::submit::error::RunError) -> Error {
        use crate::engine::submit::error::RunError;
        match e {
            RunError::Manifest(e) => Error::Manifest(e),
            RunError::Results(e) => e.into(),
            RunError::Other(e) => Error::Other(e),
        }
    }
}

/// How a run ends its command: the one place a
/// [`crate::engine::submit::pool::StopReason`] is mapped. A stop that is an
/// error ends the command as that error (its message, exit code and hint);
/// a signal's stop, or none, with a code: 130 (the command swaps in the
/// signal's own), 1 when rows failed or are unknown, else 0.
pub fn run_outcome(report: &crate::engine::submit::report::RunReport) -> Result<ExitCode, Error> {
    use crate::engine::submit::pool::StopReason;
    use crate::files::results::Status;
    match &report.stop {
        Some(StopReason::Host(halt)) => Err(Error::Host(halt.clone())),
        Some(StopReason::Unrecorded) => Err(Error::Results {
            path: report.results.clone(),
            source: std::io::Error::other(
                "a write to its state file failed (is the disk full?); every accepted task is in the state file or printed above",
            ),
        }),
        Some(StopReason::Cancelled) => Ok(ExitCode::Interrupted),
        // The cap did its job: the run ends as one that sent what it could.
        Some(StopReason::BudgetSpent) | None
            if report.total(Status::Failed) + report.total(Status::Unknown) > 0 =>
        {
            Ok(ExitCode::RowsFailed)
        }
        Some(StopReason::BudgetSpent) | None => Ok(ExitCode::Success),
    }
}

/// A run's exit code: its stop's error's code, or the code it ends with
/// (see the mapping above).
impl ExitStatus for crate::engine::submit::report::RunReport {
    fn exit_code(&self) -> ExitCode {
        match run_outcome(self) {
            Ok(code) => code,
            Err(e) => e.exit_code(),
        }
    }
}

#[cfg(test)]
mod tests;
