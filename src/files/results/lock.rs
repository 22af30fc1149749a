//! The advisory lock that keeps two runs off one results file (or catalog),
//! named after the file's real path so two names for one file are one lock.

use std::fs::{self, File};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::ResultsError;
use super::results_error;
use crate::util::fsx;

/// Holds the advisory lock on `<results>.lock` for as long as it lives.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Locks the file `results` really names (a symlink followed, see
    /// [`fsx::resolve`]): two names for one file are one lock.
    ///
    /// # Errors
    /// [`ResultsError::Locked`] when another live process holds it;
    /// [`ResultsError::Io`] when the lock cannot be made (a planted symlink
    /// under the lock's name is refused, not followed).
    pub fn acquire(results: &Path) -> Result<Lock, ResultsError> {
        let target = fsx::resolve(results).map_err(|e| results_error(results, e))?;
        let path = lock_file(&target);
        let mut file = fsx::open_in_place(
            &path,
            fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
        )
        .map_err(|e| results_error(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(ResultsError::Locked {
                    path: results.to_owned(),
                    holder: text.trim().parse().ok(),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(results_error(&path, e)),
        }
        // Record the holder for the next run's message; harmless if it fails.
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = writeln!(file, "{}", std::process::id());
        Ok(Lock { _file: file })
    }

    /// The lock file [`Lock::acquire`] uses for `results`, for a caller that
    /// must not write over it (`--summary-json`'s path check). When
    /// `results` cannot be resolved (a dangling link), named after `results`
    /// itself.
    pub fn path_for(results: &Path) -> PathBuf {
        lock_file(&fsx::resolve(results).unwrap_or_else(|_| results.to_owned()))
    }
}

/// `<target>.lock`: the lock of the file at its real path `target`.
fn lock_file(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_file_is_refused_with_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let first = Lock::acquire(&path).unwrap();
        match Lock::acquire(&path) {
            Err(ResultsError::Locked { holder, .. }) => {
                assert_eq!(holder, Some(std::process::id()))
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        Lock::acquire(&path).unwrap();
    }
}
