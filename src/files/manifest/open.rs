//! Opening a manifest file: regular files only, never a kernel
//! pseudo-file, and a TOML manifest's CSV only inside its folder.
//!
//! A manifest path comes from the command line or from another manifest,
//! and a wrong one must be a diagnostic, not a hang (a FIFO), an endless
//! read (a device) or an echo of the process's environment (a file under
//! `/proc`). Separate from the formats because these checks are about the
//! file, whatever it holds.

use std::fs::File;
use std::path::Path;

use super::{ManifestError, quoted};
use crate::util::fsx;

/// Reads a whole file up front, so that every I/O failure (missing file,
/// directory, symlink loop, permissions) is an [`ManifestError::Unreadable`]
/// and parsing never sees a half-read file.
///
/// Only regular files are opened: opening a FIFO blocks until something writes to it, and a
/// device such as `/dev/zero` never ends, so either would hang the run or
/// fill memory instead of reporting a problem.
pub(super) fn read(path: &Path) -> Result<Vec<u8>, ManifestError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    open(path)?
        .read_to_end(&mut bytes)
        .map_err(|source| ManifestError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(bytes)
}

/// Opens a manifest file for reading, with the checks [`read`] describes,
/// and one more: a kernel pseudo-file (`/proc/self/environ`, anything under
/// `/proc` or `/sys`) passes for a regular file, and would be read as a
/// header of unknown columns and echoed: the process's environment, API
/// key included. Those are refused too (see [`is_pseudo_file`]).
pub(super) fn open(path: &Path) -> Result<File, ManifestError> {
    let unreadable = |source| ManifestError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let kind = std::fs::metadata(path).map_err(unreadable)?.file_type();
    if kind.is_dir() {
        let why = "is a directory; give a manifest file";
        return Err(unreadable(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            why,
        )));
    }
    let special = || {
        let why =
            "not a regular file (a FIFO, socket, device or kernel file); give a manifest file";
        unreadable(std::io::Error::new(std::io::ErrorKind::InvalidInput, why))
    };
    if !kind.is_file() {
        return Err(special());
    }
    let file = File::open(path).map_err(unreadable)?;
    if is_pseudo_file(&file, path) {
        return Err(special());
    }
    Ok(file)
}

/// Whether an open "regular" file is one the kernel makes up as it is
/// read: on a `/proc`-like filesystem (Linux: by its magic number), or
/// sized 0 yet not empty (how such files look on any Unix).
fn is_pseudo_file(file: &File, path: &Path) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        /// proc, sysfs, debugfs, tracefs, securityfs, cgroup, cgroup2,
        /// configfs, efivarfs, bpf.
        const PSEUDO: [i64; 10] = [
            0x9fa0,
            0x6265_6572,
            0x6462_6720,
            0x7472_6163,
            0x7363_6673,
            0x0027_e0eb,
            0x6367_7270,
            0x6265_6570,
            0xde5e_81e4,
            0xcafe_4a11,
        ];
        // SAFETY: an all-zero statfs is a valid value to be overwritten.
        let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: a valid descriptor and a pointer to a statfs that lives
        // across the call.
        if unsafe { libc::fstatfs(file.as_raw_fd(), &raw mut fs) } == 0 {
            #[allow(clippy::unnecessary_cast, clippy::cast_lossless)]
            let magic = fs.f_type as i64;
            if PSEUDO.contains(&(magic & 0xffff_ffff)) {
                return true;
            }
        }
    }
    if file.metadata().is_ok_and(|m| m.len() == 0) {
        use std::io::Read;
        let mut byte = [0u8; 1];
        return File::open(path)
            .and_then(|mut f| f.read(&mut byte))
            .is_ok_and(|n| n > 0);
    }
    false
}

/// The check behind `csv = "..."` staying inside the folder of the
/// manifest at `manifest` ([`fsx::parent_dir`]), made on real paths:
/// `prompts.csv` may be a symlink (to `/proc/self/environ`, to a key file)
/// that the spelling of the name does not show. A file that does not exist
/// passes: reading it says so.
///
/// # Errors
/// The message for the diagnostic, when the file resolves outside that
/// folder.
pub(super) fn inside_folder(manifest: &Path, relative: &Path) -> Result<(), String> {
    let dir = fsx::parent_dir(manifest);
    let file = dir.join(relative);
    let (Ok(real_dir), Ok(real)) = (std::fs::canonicalize(&dir), std::fs::canonicalize(&file))
    else {
        return Ok(());
    };
    if real.starts_with(&real_dir) {
        Ok(())
    } else {
        Err(format!(
            "{} resolves to {}, outside this manifest's folder (a symlink); the CSV must be in the folder or below it",
            quoted(&relative.to_string_lossy()),
            real.display()
        ))
    }
}
