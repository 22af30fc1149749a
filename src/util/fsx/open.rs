//! Opening a file safely: in place without following a planted link
//! (`O_NOFOLLOW`, then checked to be a regular file with one name), brand
//! new (`O_EXCL`), or below a folder others may write, one folder at a
//! time. Separate from [`super::atomic`]: these write the file itself,
//! that one never does.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::refused;

/// Opens `path` as `options` say, refusing a symlink at `path` itself
/// (`O_NOFOLLOW`) and anything that turns out not to be a regular file. For
/// files written in place: a lock, a `.part` download, the journal.
///
/// # Errors
/// The open's error; a symlink at `path` is reported as such.
pub fn open_in_place(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    nofollow(options);
    let file = options.open(path).map_err(|e| explain_link(path, e))?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(refused("is not a regular file"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // A hard link planted under a name batchgen writes in place is
        // another file's inode: truncating or appending would change that
        // file too (O_NOFOLLOW does not see hard links).
        if meta.nlink() > 1 {
            return Err(refused(
                "is a hard link to another file; batchgen does not write through it",
            ));
        }
    }
    Ok(file)
}

/// Whether `path` is absent (`Ok(None)`) or a regular file, not followed
/// through a symlink (`Ok(Some(len))`). For a name batchgen invents (a
/// `.part` download) before it is read or measured.
///
/// # Errors
/// A symlink, FIFO, folder or device at `path`, or a `stat` failure.
pub fn regular_len(path: &Path) -> io::Result<Option<u64>> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(refused(
            "is a symlink; batchgen does not read or write through symlinks it did not make",
        )),
        Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
        Ok(_) => Err(refused(
            "exists and is not a regular file (a folder, FIFO, socket or device)",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Makes the folders `relative` (a file's path inside `root`) needs below
/// `root`, and returns the folder the file goes in. Each folder below
/// `root` must be a real folder: a symlink planted there by someone who can
/// write `root` (a shared download folder) would take batchgen's files
/// anywhere, so it is refused, never followed. `root` itself may be a
/// symlink the user made.
///
/// # Errors
/// A component of `relative` that is a symlink or not a folder, one that is
/// not a plain name (`..`, absolute), or a `mkdir` failure.
pub fn create_dirs_inside(root: &Path, relative: &Path) -> io::Result<PathBuf> {
    use std::path::Component;
    let mut dir = root.to_owned();
    let Some(parent) = relative.parent() else {
        return Ok(dir);
    };
    for part in parent.components() {
        match part {
            Component::Normal(name) => dir.push(name),
            Component::CurDir => continue,
            _ => return Err(refused("names a folder outside the download folder")),
        }
        if fs::symlink_metadata(&dir).is_err() {
            match fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        let meta = fs::symlink_metadata(&dir)?;
        if meta.file_type().is_symlink() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is a symlink; batchgen does not follow a link inside the download folder",
                    dir.display()
                ),
            ));
        }
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} exists and is not a folder", dir.display()),
            ));
        }
    }
    Ok(dir)
}

/// Creates `path`, which must not exist: `O_CREAT|O_EXCL|O_NOFOLLOW`, so
/// neither an existing file nor a planted link is ever written.
///
/// # Errors
/// [`io::ErrorKind::AlreadyExists`] when anything (a link included) is
/// there.
pub fn create_new(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    nofollow(&mut options);
    options.open(path)
}

fn nofollow(options: &mut OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    }
    #[cfg(not(unix))]
    let _ = options;
}

/// `O_NOFOLLOW` fails with `ELOOP` on a link: say so in words.
fn explain_link(path: &Path, e: io::Error) -> io::Error {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::ELOOP)
        && fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
    {
        return refused("is a symlink; batchgen does not write through symlinks it did not make");
    }
    let _ = path;
    e
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn in_place_opens_refuse_planted_links_and_special_files() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let planted = dir.path().join("r.csv.lock");
        symlink(&victim, &planted).unwrap();
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        let err = open_in_place(&planted, &mut options).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        assert!(create_new(&planted).is_err());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        let err = open_in_place(Path::new("/dev/null"), OpenOptions::new().write(true));
        assert!(err.is_err(), "a device is not a file to write");
    }
}

/// Takes an exclusive lock on one byte (`at`) of `file`, for as long as
/// this descriptor is open; `false` when another descriptor holds it.
///
/// An open-file-description lock (`F_OFD_SETLK`): it belongs to this
/// descriptor like an `flock`, so closing another descriptor of the file
/// does not drop it (as it would a POSIX lock), and it lives on the inode,
/// so every name of the file leads to it. Unlike an `flock`, one file can
/// carry several such locks, one per byte: the state store carries the
/// run's `flock` and the collector's lock on one byte, so a run and a
/// `collect` may share the store while two of either may not. SQLite's
/// own locks are POSIX locks on bytes from 2^30 on; any byte below is free.
///
/// # Errors
/// Any other error of `fcntl`.
pub fn try_lock_byte(file: &File, at: i64) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: `flock` is plain data; zeroed is a valid value, and every
    // field `fcntl` reads is set below.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = at;
    lock.l_len = 1;
    lock.l_pid = 0;
    // SAFETY: a valid descriptor and a pointer to a valid `flock`.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &raw const lock) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN | libc::EACCES) => Ok(false),
        _ => Err(e),
    }
}
