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

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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

fn refused(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why.to_owned())
}

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

/// A whole-file replacement: written to a new temporary file beside the
/// target, then [`AtomicFile::commit`]ted (fsync, rename, fsync of the
/// folder). Dropped uncommitted, it removes its temporary file and leaves
/// the target as it was.
#[derive(Debug)]
pub struct AtomicFile {
    /// The file replaced: the target of a user's symlink, see [`resolve`].
    target: PathBuf,
    tmp: PathBuf,
    file: Option<File>,
}

impl AtomicFile {
    /// Starts replacing `path` (following a symlink the user made to a
    /// regular file, see [`resolve`]), after removing stale temporary files
    /// of earlier, killed rewrites of it.
    ///
    /// # Errors
    /// What [`resolve`] refuses, or the temporary file cannot be created.
    pub fn create(path: &Path) -> io::Result<AtomicFile> {
        let target = resolve(path)?;
        let dir = parent_dir(&target);
        let name = temp_stem(&target);
        remove_stale(&dir, &name);
        let existing = fs::metadata(&target).ok();
        let (tmp, file) = loop {
            let tmp = dir.join(format!(
                "{}{}-{}.tmp",
                name.to_string_lossy(),
                std::process::id(),
                unique()
            ));
            match create_new(&tmp) {
                Ok(file) => break (tmp, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        };
        let mut this = AtomicFile {
            target,
            tmp,
            file: Some(file),
        };
        if let Some(meta) = existing {
            this.keep_permissions(&meta)?;
        }
        Ok(this)
    }

    /// The temporary file takes the old file's permission bits, and its
    /// owner and group where the OS allows (root rewriting a user's file).
    fn keep_permissions(&mut self, meta: &fs::Metadata) -> io::Result<()> {
        let file = self.file.as_ref().expect("open until committed");
        file.set_permissions(meta.permissions())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let mine = file.metadata()?;
            if (mine.uid(), mine.gid()) != (meta.uid(), meta.gid()) {
                // Best effort: only root may give a file away.
                let _ = std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid()));
            }
        }
        Ok(())
    }

    /// [`AtomicFile::create`] for a file batchgen cannot tell is its own
    /// (a summary, `init`'s starter files): a symlink at `path` is refused,
    /// not followed, since nothing would show it points at someone's file.
    ///
    /// # Errors
    /// A symlink or anything but a regular file at `path`, or as
    /// [`AtomicFile::create`].
    pub fn create_unlinked(path: &Path) -> io::Result<AtomicFile> {
        if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(refused(
                "is a symlink; batchgen does not replace a symlink with a file it cannot tell is its own",
            ));
        }
        AtomicFile::create(path)
    }

    /// The file being replaced (a user's symlink resolved).
    pub fn target(&self) -> &Path {
        &self.target
    }

    pub fn file_mut(&mut self) -> &mut File {
        self.file.as_mut().expect("open until committed")
    }

    /// Makes the new content durable and puts it in place.
    ///
    /// # Errors
    /// Any I/O error; the target is then left as it was.
    pub fn commit(mut self) -> io::Result<()> {
        let file = self.file.take().expect("open until committed");
        file.sync_all()?;
        drop(file);
        fs::rename(&self.tmp, &self.target)?;
        // Renamed: nothing for Drop to remove.
        self.tmp = PathBuf::new();
        if let Ok(d) = File::open(parent_dir(&self.target)) {
            // Makes the rename durable; best effort, not every filesystem
            // allows it.
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file_mut().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file_mut().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Longest part of the target's name kept in a temporary name, so the
/// temporary name fits in a file name (255 bytes) whatever the target's.
const MAX_STEM: usize = 120;

/// `.<name>.batchgen-`: the start of every temporary name for `target`.
fn temp_stem(target: &Path) -> OsString {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut cut = name.len().min(MAX_STEM);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(".{}.batchgen-", &name[..cut]).into()
}

fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (u64::from(nanos) << 20) ^ NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Removes `dir/<stem><pid>-<n>.tmp` files left by dead processes (see the
/// module docs for what proves one stale). Returns how many went.
pub fn remove_stale(dir: &Path, stem: &std::ffi::OsStr) -> usize {
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

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

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

    #[test]
    fn a_rewrite_keeps_the_link_and_the_mode_and_cleans_up_after_the_dead() {
        let dir = tempfile::tempdir().unwrap();
        let real_dir = dir.path().join("disk");
        fs::create_dir(&real_dir).unwrap();
        let real = real_dir.join("r.csv");
        fs::write(&real, "old").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("r.csv");
        symlink(&real, &link).unwrap();
        // A temporary file of a killed run (pid 2^22 + 1 is above Linux's
        // default pid_max), one of a live process, and a lookalike link.
        let dead = real_dir.join(".r.csv.batchgen-4194305-7.tmp");
        let live = real_dir.join(format!(".r.csv.batchgen-{}-7.tmp", std::process::id()));
        fs::write(&dead, "half").unwrap();
        fs::write(&live, "mine").unwrap();
        let lookalike = real_dir.join(".r.csv.batchgen-4194306-7.tmp");
        symlink(&real, &lookalike).unwrap();

        let mut out = AtomicFile::create(&link).unwrap();
        assert_eq!(out.target(), fs::canonicalize(&real).unwrap());
        out.write_all(b"new").unwrap();
        out.commit().unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&link).unwrap(), "new");
        assert_eq!(
            fs::metadata(&real).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert!(!dead.exists(), "a dead run's temporary file is removed");
        assert!(live.exists() && fs::symlink_metadata(&lookalike).is_ok());

        // Dropped uncommitted: the old file stays, no temporary is left.
        let mut out = AtomicFile::create(&link).unwrap();
        out.write_all(b"never").unwrap();
        drop(out);
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
        let left: Vec<_> = fs::read_dir(&real_dir).unwrap().flatten().collect();
        assert_eq!(left.len(), 3, "{left:?}");
    }

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
