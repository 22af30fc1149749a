//! Whole-file replacement: a new temporary file beside the target,
//! fsynced and renamed over it, with the target's permission bits. The
//! one way batchgen rewrites a file (the results file, the catalog, a
//! summary); the temporary files' names are what [`super::stale`] knows
//! how to clean up after a kill.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::open::create_new;
use super::stale::remove_stale;
use super::{parent_dir, refused, resolve};

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

    /// The file being replaced (a user's symlink resolved): what the tests
    /// check a rewrite through a link lands on.
    #[cfg(test)]
    fn target(&self) -> &Path {
        &self.target
    }

    /// The temporary file (a descriptor of it can be duplicated and
    /// locked before it is put in place).
    pub fn file(&self) -> &File {
        self.file.as_ref().expect("open until committed")
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

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

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
}
