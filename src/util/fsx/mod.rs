//! Safe file creation: the one place batchgen opens a file to write it.
//!
//! # Why
//! batchgen runs unattended, often as root from cron, in folders other
//! people can write to. Every name it writes there is predictable (the
//! results file's `.lock`, a download's `.part`, the summary JSON), so
//! anyone who can write the folder can plant a symlink under that name and
//! have batchgen's next `open(O_CREAT|O_TRUNC)` clobber the file it points
//! to (`/etc/cron.d/…`, another user's results). So, for every file
//! batchgen creates, truncates or appends to:
//!
//! - files opened in place (a lock, a `.part` download, the journal) are
//!   opened with `O_NOFOLLOW` and checked, once open, to be regular files
//!   with one name ([`open_in_place`]): a planted symlink, hard link, FIFO
//!   or device is refused;
//! - folders batchgen makes inside a folder others may write (a download
//!   template's subfolders) are made and checked one by one
//!   ([`create_dirs_inside`]): a planted symlink among them is refused;
//! - brand-new files are created with `O_CREAT|O_EXCL|O_NOFOLLOW`
//!   ([`create_new`]): never an existing file, never through a link;
//! - whole-file rewrites go to a new temporary file beside the target,
//!   fsynced and renamed over it ([`AtomicFile`]). A rename replaces the
//!   name, never writes through it. The temporary file takes the target's
//!   permission bits (and, when allowed, its owner), so a rewrite never
//!   widens or narrows who may read it.
//!
//! A file the *user* made a symlink (a results file kept on another disk)
//! is a different thing from one planted under a name batchgen invents:
//! [`resolve`] follows such a link to a regular file, so the rewrite lands
//! in the target's folder and the link stays a link; a dangling link or one
//! to anything but a regular file is refused rather than followed into a
//! file batchgen would create, and so is a link another user made in a
//! folder anyone can write (the `fs.protected_symlinks` rule), which may
//! have been planted under the name the user chose.
//!
//! # Temporary files
//! Named `.<name>.batchgen-<pid>-<n>.tmp` beside `<name>`, so they are
//! recognisably batchgen's, which file they belong to, and which process
//! made them. A `kill -9` in the middle of a rewrite leaves one behind; the
//! next [`AtomicFile::create`] for the same file removes those that are
//! provably stale: exactly that pattern, a regular file (not a link) owned
//! by this user, made by a process that no longer exists.
//!
//! # Parts
//! | module | owns |
//! |---|---|
//! | this one | what a path names: [`parent_dir`], [`resolve`] (a user's symlink followed, a planted one refused), [`same_file`] |
//! | `open` | opening safely: in place ([`open_in_place`]), brand new ([`create_new`]), a folder chain ([`create_dirs_inside`]), a size check ([`regular_len`]) |
//! | `atomic` | whole-file replacement ([`AtomicFile`]) |
//! | `stale` | removing the temporary files of killed rewrites |

mod atomic;
mod open;
mod stale;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use atomic::AtomicFile;
pub use open::{create_dirs_inside, create_new, open_in_place, regular_len, try_lock_byte};

/// The folder `path` is in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// The file `path` really names, for a file batchgen rewrites and the user
/// may have made a symlink: a link (or chain of links) to a regular file is
/// followed to it; a missing path is returned as it is (its folder
/// resolved, so two spellings of one folder give one name).
///
/// # Errors
/// A dangling link (batchgen would create the file it points to), a link to
/// something that is not a regular file, or a path that exists but is not
/// a regular file (a FIFO, a device, a folder).
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            if planted(path, &meta) {
                return Err(refused(
                    "is a symlink another user made in a folder others can write; batchgen does not follow it (make the link yourself, or give the real path)",
                ));
            }
            let target = match fs::metadata(path) {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(refused(
                        "is a symlink to a missing file; batchgen does not create files through symlinks",
                    ));
                }
                Err(e) => return Err(e),
            };
            if !target.is_file() {
                return Err(refused(
                    "is a symlink to something that is not a regular file",
                ));
            }
            fs::canonicalize(path)
        }
        Ok(meta) if meta.is_file() => Ok(absolute_dir(path)),
        Ok(_) => Err(refused(
            "exists and is not a regular file (a folder, FIFO, socket or device)",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(absolute_dir(path)),
        Err(e) => Err(e),
    }
}

/// Whether the link at `path` may have been planted: it sits in a folder
/// anyone can write (`/tmp`, a shared drop folder) and belongs neither to
/// this user nor to the folder's owner. The rule of Linux's
/// `fs.protected_symlinks`, applied whether or not the kernel has it on
/// (containers often do not): a user's own link is followed, a stranger's
/// is not, so a link to an empty or foreign file cannot make batchgen
/// rewrite it.
#[cfg(unix)]
fn planted(path: &Path, link: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(dir) = fs::metadata(parent_dir(path)) else {
        return false;
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    dir.mode() & 0o002 != 0 && link.uid() != me && link.uid() != dir.uid()
}

#[cfg(not(unix))]
fn planted(_: &Path, _: &fs::Metadata) -> bool {
    false
}

/// `path` with its folder canonicalized when possible (the name itself is
/// not followed).
fn absolute_dir(path: &Path) -> PathBuf {
    let Some(name) = path.file_name() else {
        return path.to_owned();
    };
    match fs::canonicalize(parent_dir(path)) {
        Ok(dir) => dir.join(name),
        Err(_) => path.to_owned(),
    }
}

/// Whether two paths name the same file: the same real path, or (both
/// existing) the same device and inode, so hard links count too.
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (fs::metadata(a), fs::metadata(b)) {
            return (x.dev(), x.ino()) == (y.dev(), y.ino());
        }
    }
    let real = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| absolute_dir(p));
    real(a) == real(b)
}

pub(super) fn refused(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why.to_owned())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn dangling_and_special_targets_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let dangling = dir.path().join("r.csv");
        symlink(dir.path().join("nowhere/x"), &dangling).unwrap();
        assert!(resolve(&dangling).is_err());
        assert!(AtomicFile::create(&dangling).is_err());
        let dev = dir.path().join("d.csv");
        symlink("/dev/null", &dev).unwrap();
        assert!(resolve(&dev).is_err());
        assert!(resolve(dir.path()).is_err(), "a folder");
        let missing = dir.path().join("new.csv");
        assert_eq!(
            resolve(&missing).unwrap(),
            fs::canonicalize(dir.path()).unwrap().join("new.csv")
        );
    }

    #[test]
    fn same_file_sees_through_links_and_spellings() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        fs::write(&a, "x").unwrap();
        let link = dir.path().join("b");
        symlink(&a, &link).unwrap();
        assert!(same_file(&a, &link));
        assert!(same_file(&a, &dir.path().join(".").join("a")));
        assert!(same_file(&dir.path().join("n"), &dir.path().join("./n")));
        assert!(!same_file(&a, &dir.path().join("n")));
    }
}
