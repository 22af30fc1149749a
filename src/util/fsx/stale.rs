//! Removing the temporary files a killed rewrite left behind
//! (`.<name>.batchgen-<pid>-<n>.tmp`), only those provably stale: that
//! pattern exactly, a regular file (not a link) owned by this user, made by
//! a process that no longer exists. Separate from [`super::atomic`]: it
//! deletes files, and what proves one stale deserves to be read alone.

use std::fs;
use std::io;
use std::path::Path;

/// Removes `dir/<stem><pid>-<n>.tmp` files left by dead processes (see the
/// module docs for what proves one stale). Returns how many went.
pub(super) fn remove_stale(dir: &Path, stem: &std::ffi::OsStr) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let stem = stem.to_string_lossy();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&*stem))
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .and_then(|rest| rest.split_once('-'))
            .filter(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let path = entry.path();
        if is_stale(&path, pid) && fs::remove_file(&path).is_ok() {
            tracing::info!("removed {}, left by a run that was killed", path.display());
            removed += 1;
        }
    }
    removed
}

#[cfg(unix)]
fn is_stale(path: &Path, pid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    meta.file_type().is_file() && meta.uid() == me && pid != std::process::id() && !alive(pid)
}

#[cfg(not(unix))]
fn is_stale(_: &Path, _: u32) -> bool {
    false
}

/// Whether a process with this id exists (signal 0 checks without
/// sending; `EPERM` means it exists under another user).
#[cfg(unix)]
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return true;
    }
    // SAFETY: kill with signal 0 only checks for the process.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}
