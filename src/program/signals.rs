//! Signals, as a command that must not lose a record sees them: the first
//! SIGINT, SIGTERM or SIGHUP asks the command to stop (it lets requests in
//! flight finish and records them); a second exits at once. SIGHUP's
//! terminal is gone, so writes to it are pointed at /dev/null. SIGXFSZ is
//! caught so a file-size limit is a write error (exit 73), not a kill.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio_util::sync::CancellationToken;

use crate::program::exit::ExitCode;

/// Signal handling for one command, from the moment it is made until it is
/// dropped: the token a command stops on, and which signal stopped it.
pub struct Signals {
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
/// ones finish. Second: exit at once; the state store is consistent at
/// every commit.
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
                crate::util::term::eprint_line(
                    "batchgen: stopping now; requests in flight will be `unknown` on the next run",
                );
                std::process::exit(128 + i32::from(number));
            }
            if !quiet {
                crate::util::term::eprint_line(
                    "batchgen: stopping: waiting for requests in flight (press Ctrl-C again to quit at once)",
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
pub fn ignore_file_size_signal() {
    #[cfg(target_os = "linux")]
    {
        const SIGXFSZ: i32 = 25;
        // Tokio keeps the handler for the life of the process.
        let _ = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(SIGXFSZ));
    }
}

/// Resolves on the first SIGINT, SIGTERM or SIGHUP.
pub async fn first_signal() {
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
