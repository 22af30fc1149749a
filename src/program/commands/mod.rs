//! What each command does: the glue between the parsed command line and the
//! library's stages. `main` calls [`execute`] and maps its result to an exit
//! code; everything here returns typed errors and prints only summaries.

mod collect;
mod submit;
mod tools;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio_util::sync::CancellationToken;

use crate::program::cli::{Cli, Command};
use crate::program::exit::{Error, ExitCode};
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::util::redact::Secret;

pub use submit::DEFAULT_CREDITS_PER_JOB;
pub use tools::{STARTER_CSV, STARTER_TOML};

/// The environment variable holding the API key.
pub const KEY_ENV: &str = "BATCHGEN_API_KEY";

/// Runs the parsed command line.
///
/// # Errors
/// Whatever ends the run early; see [`crate::program::exit::ExitStatus`].
pub async fn execute(cli: Cli) -> Result<ExitCode, Error> {
    ignore_file_size_signal();
    match cli.command {
        Some(Command::Run(args)) => submit::submit(args, &cli.output).await,
        Some(Command::Validate(args)) => tools::validate(&args, &cli.output),
        Some(Command::Sandbox(args)) => tools::serve_sandbox(args).await,
        Some(Command::Init(args)) => tools::init(&args, &cli.output),
        Some(Command::Credits(args)) => tools::credits(&args).await,
        Some(Command::Completions { shell }) => tools::completions(shell),
        Some(Command::Man) => tools::man(),
        Some(Command::Collect(args)) => collect::collect(args, &cli.output).await,
        Some(Command::Receive(args)) => collect::receive(args, &cli.output).await,
        None if cli.run.manifest.is_some() => submit::submit(cli.run, &cli.output).await,
        None => Err(Error::Usage(
            "a manifest is required: batchgen MANIFEST (see --help)".into(),
        )),
    }
}

/// Starts a sandbox in-process on a free loopback port, with a throwaway key,
/// knowing the models the run was told to accept (`--extra-model`, `[run]
/// extra_models`), as the real host knows models batchgen doesn't.
async fn start_sandbox(rules: &crate::job::Rules) -> Result<Sandbox, Error> {
    let config = SandboxConfig {
        extra_models: rules.extra_models().to_vec(),
        ..SandboxConfig::default()
    };
    Sandbox::start(([127, 0, 0, 1], 0).into(), config)
        .await
        .map_err(|e| Error::Other(anyhow::anyhow!("cannot start the sandbox: {e}")))
}

/// The API key, from `--api-key-file` or `BATCHGEN_API_KEY`.
fn read_key(file: Option<&Path>) -> Result<Secret, Error> {
    let key = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::Config(format!(
                    "cannot read the API key file {}: {e}",
                    path.display()
                ))
            })?;
            warn_if_shared(path);
            // A BOM, as Notepad saves UTF-8, is no part of the key.
            text.trim_start_matches('\u{feff}').trim().to_owned()
        }
        None => std::env::var(KEY_ENV).unwrap_or_default().trim().to_owned(),
    };
    if key.is_empty() {
        return Err(Error::Config(format!(
            "no API key: set {KEY_ENV} or pass --api-key-file PATH (or try --sandbox, which needs none)"
        )));
    }
    let key = Secret::new(key);
    if let Err(e) = crate::api::http::bearer(&key) {
        let from = file.map_or_else(|| KEY_ENV.to_owned(), |p| p.display().to_string());
        return Err(Error::Config(format!(
            "{e}: check {from} for a stray character (a smart quote, a non-breaking space)"
        )));
    }
    Ok(key)
}

#[cfg(unix)]
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "batchgen: warning: {} is readable by other users; chmod 600 it",
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_: &Path) {}

/// Signal handling for one command, from the moment it is made until it is
/// dropped: the token a command stops on, and which signal stopped it.
pub(super) struct Signals {
    pub shutdown: CancellationToken,
    seen: Arc<AtomicU8>,
    watcher: tokio::task::JoinHandle<()>,
}

impl Signals {
    pub fn watch(quiet: bool) -> Signals {
        let shutdown = CancellationToken::new();
        let seen = Arc::new(AtomicU8::new(0));
        let watcher = tokio::spawn(watch_signals(shutdown.clone(), seen.clone(), quiet));
        Signals {
            shutdown,
            seen,
            watcher,
        }
    }

    /// `code`, or 129 / 130 / 143 when SIGHUP / SIGINT / SIGTERM stopped
    /// the command.
    pub fn exit_code(&self, code: ExitCode) -> ExitCode {
        match self.seen.load(Ordering::SeqCst) {
            1 => ExitCode::HangUp,
            2 => ExitCode::Interrupted,
            15 => ExitCode::Terminated,
            _ => code,
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

/// First SIGINT/SIGTERM/SIGHUP: stop starting requests and let in-flight
/// ones finish. Second: exit at once; the journal keeps the results
/// consistent.
///
/// SIGHUP (a closed terminal, a dropped ssh session) is a stop like
/// SIGTERM, not the default kill that would leave every request in flight
/// `unknown`. The terminal it announces is gone, and a write to it fails
/// (`eprintln!` would panic), so stdout and stderr that are terminals are
/// pointed at /dev/null first; pipes and files are kept.
async fn watch_signals(shutdown: CancellationToken, seen: Arc<AtomicU8>, quiet: bool) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            return;
        };
        loop {
            let number = tokio::select! {
                _ = int.recv() => 2,
                _ = term.recv() => 15,
                _ = hup.recv() => 1,
            };
            if number == 1 {
                detach_from_terminal();
            }
            if seen.swap(number, Ordering::SeqCst) != 0 {
                eprintln!(
                    "batchgen: stopping now; requests in flight will be `unknown` on the next run"
                );
                std::process::exit(128 + i32::from(number));
            }
            if !quiet {
                eprintln!(
                    "batchgen: stopping: waiting for requests in flight (press Ctrl-C again to quit at once)"
                );
            }
            shutdown.cancel();
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_ok() {
            seen.store(2, Ordering::SeqCst);
            shutdown.cancel();
        }
    }
}

/// Points stdout and stderr at /dev/null where they are a terminal (see
/// [`watch_signals`]).
#[cfg(unix)]
fn detach_from_terminal() {
    use std::io::IsTerminal;
    use std::os::fd::AsRawFd;
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else {
        return;
    };
    let streams = [
        (
            std::io::stdout().is_terminal(),
            std::io::stdout().as_raw_fd(),
        ),
        (
            std::io::stderr().is_terminal(),
            std::io::stderr().as_raw_fd(),
        ),
    ];
    for (is_terminal, fd) in streams {
        if is_terminal {
            // SAFETY: dup2 onto a standard descriptor this process owns;
            // both descriptors are valid for the call.
            unsafe {
                libc::dup2(null.as_raw_fd(), fd);
            }
        }
    }
}

/// A write past RLIMIT_FSIZE raises SIGXFSZ, whose default action kills the
/// process before it can record what it knows. With a handler installed the
/// write fails with EFBIG instead, and the run stops cleanly (exit 73) like
/// on any full disk.
fn ignore_file_size_signal() {
    #[cfg(target_os = "linux")]
    {
        const SIGXFSZ: i32 = 25;
        // Tokio keeps the handler for the life of the process.
        let _ = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(SIGXFSZ));
    }
}

/// Resolves on the first SIGINT, SIGTERM or SIGHUP.
async fn first_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
                _ = hup.recv() => detach_from_terminal(),
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
