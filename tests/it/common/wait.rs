//! Waiting for events, never for time: a change in a folder (inotify), a
//! line the binary prints, a child's exit. Each wait is bounded by
//! [`WAIT`], and its failure names what never happened: hanging is the
//! failure, not slowness, so the bound is generous and nothing asserts a
//! wall-clock time. The one wait that still polls is in [`super::poll`].

use std::ffi::CString;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// The bound of every wait: far beyond what any event takes on a loaded
/// machine, so reaching it means the event never comes.
pub const WAIT: Duration = Duration::from_secs(120);

/// Changes in folders, as inotify reports them: a file created, written,
/// closed, renamed in or out, or removed. Not recursive: [`DirWatch::add`]
/// each folder of interest.
pub struct DirWatch {
    fd: AsyncFd<OwnedFd>,
}

impl DirWatch {
    /// Watches `dir` (which must exist) from now on.
    pub fn new(dir: &Path) -> DirWatch {
        // SAFETY: inotify_init1 takes flags only.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(raw >= 0, "inotify_init1: {}", io::Error::last_os_error());
        // SAFETY: a descriptor just made, owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: an `OwnedFd` is open and keeps its one descriptor until
        // it is dropped, with the `AsyncFd`.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .unwrap_or_else(|e| panic!("inotify on the reactor: {e}"));
        let watch = DirWatch { fd };
        watch.add(dir);
        watch
    }

    /// Watches `dir` too, from now on.
    pub fn add(&self, dir: &Path) {
        let path = CString::new(dir.as_os_str().as_bytes()).unwrap();
        let mask = libc::IN_CREATE
            | libc::IN_MODIFY
            | libc::IN_CLOSE_WRITE
            | libc::IN_MOVED_TO
            | libc::IN_MOVED_FROM
            | libc::IN_DELETE;
        // SAFETY: a valid inotify descriptor and a NUL-terminated path.
        let wd = unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), path.as_ptr(), mask) };
        assert!(
            wd >= 0,
            "inotify_add_watch {dir:?}: {}",
            io::Error::last_os_error()
        );
    }

    /// Returns once something changed in a watched folder since the last
    /// call (or since the watch began).
    pub async fn changed(&self) {
        let mut buf = [0u8; 4096];
        loop {
            let mut ready = self.fd.readable().await.expect("inotify readiness");
            let mut any = false;
            loop {
                let read = ready.try_io(|fd| {
                    // SAFETY: reads into a buffer of the length given.
                    let n =
                        unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                    if n < 0 {
                        Err(io::Error::last_os_error())
                    } else {
                        Ok(())
                    }
                });
                match read {
                    Ok(Ok(())) => any = true,
                    Ok(Err(e)) => panic!("reading inotify events: {e}"),
                    // Drained: nothing more until the next change.
                    Err(_would_block) => break,
                }
            }
            if any {
                return;
            }
        }
    }

    /// Checks `done` now and after each change, until it gives a value;
    /// fails, naming `what` and the state `done` last saw (its `Err`), if
    /// none comes within [`WAIT`].
    pub async fn until<T, S: std::fmt::Debug>(
        &self,
        what: &str,
        mut done: impl FnMut() -> Result<T, S>,
    ) -> T {
        let mut last = None;
        let wait = async {
            loop {
                match done() {
                    Ok(value) => return value,
                    Err(state) => last = Some(state),
                }
                self.changed().await;
            }
        };
        match tokio::time::timeout(WAIT, wait).await {
            Ok(value) => value,
            // Looked at once more: the last change may be long past, and
            // what `done` sees now says more about what never happened.
            Err(_) => match done() {
                Ok(value) => value,
                Err(now) => {
                    panic!("gave up waiting for {what}; at the last change: {last:?}; now: {now:?}")
                }
            },
        }
    }
}

/// Waits for `child` to exit, off the async runtime.
pub async fn exit(mut child: Child) -> ExitStatus {
    tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap()
}

/// A child process whose stderr is read as it comes, line by line, so a
/// test can wait for what the binary says (it printed its address, it
/// began stopping) and still get its whole output at the end.
pub struct Watched {
    child: Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: std::thread::JoinHandle<()>,
    stdout_reader: std::thread::JoinHandle<Vec<u8>>,
}

impl Watched {
    /// Spawns `cmd` with stdout and stderr piped (stdin as `cmd` says).
    pub fn spawn(cmd: &mut Command) -> Watched {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().unwrap();
        let all = Arc::clone(&stderr);
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).split(b'\n') {
                let Ok(line) = line else { break };
                {
                    let mut all = all.lock().unwrap();
                    all.extend_from_slice(&line);
                    all.push(b'\n');
                }
                // The test may have stopped listening; the output is kept.
                let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
            }
        });
        let mut pipe = child.stdout.take().unwrap();
        let stdout_reader = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        });
        Watched {
            child,
            lines,
            stderr,
            stderr_reader,
            stdout_reader,
        }
    }

    /// The child's process ID.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the next stderr line that `wanted` accepts, and returns
    /// it; fails, naming `what`, if stderr ends first or within [`WAIT`]
    /// no such line comes.
    pub async fn line(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let lines = &mut self.lines;
        let wait = async {
            while let Some(line) = lines.recv().await {
                if wanted(&line) {
                    return Some(line);
                }
            }
            None
        };
        let found = tokio::time::timeout(WAIT, wait).await;
        let said = || String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned();
        match found {
            Ok(Some(line)) => line,
            Ok(None) => panic!("stderr ended without {what}: {}", said()),
            Err(_) => panic!("gave up waiting for {what}: {}", said()),
        }
    }

    /// Waits for the child to exit; its status and everything it printed.
    pub async fn output(self) -> Output {
        let Watched {
            mut child,
            stderr,
            stderr_reader,
            stdout_reader,
            ..
        } = self;
        tokio::task::spawn_blocking(move || {
            let status = child.wait().unwrap();
            let stdout = stdout_reader.join().unwrap();
            stderr_reader.join().unwrap();
            let stderr = std::mem::take(&mut *stderr.lock().unwrap());
            Output {
                status,
                stdout,
                stderr,
            }
        })
        .await
        .unwrap()
    }
}
