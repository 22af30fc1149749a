//! The playlist: an extended M3U (`<stem>.m3u8`, UTF-8) of the downloaded
//! clips in manifest order, beside the catalog, that any player opens.
//!
//! ```text
//! #EXTM3U
//! # written by batchgen: the downloaded songs of its catalog, rewritten by every collect
//! #EXTINF:187,Neon Highway
//! songs/calm-1.mp3
//! ```
//!
//! Each entry is two lines, so a title or path that carried a line break
//! would write lines of its own (a `#EXT…` directive, a path to another
//! file): titles, which are the server's, have every control character
//! (CR and LF among them) made a space, and a path with one is left out.
//! A path that would start with `#` (read as a comment) is written as
//! `./#…`. Paths are relative to the playlist's folder, as the caller
//! computes them ([`crate::files::page`]), written as they are on disk
//! (not URL-encoded: players read them as file names).
//!
//! The file is written whole to a temporary file and renamed over the old
//! one ([`crate::util::fsx::AtomicFile`]): a player never sees half a
//! playlist, and a planted symlink is replaced, not written through.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::util::fsx::AtomicFile;

/// The comment on a playlist's second line that says batchgen wrote it
/// (players skip `#` lines that are not directives): a playlist is
/// replaced only when it carries it ([`is_ours`]).
pub const MARK: &str =
    "# written by batchgen: the downloaded songs of its catalog, rewritten by every collect";

/// Whether `head` (a file's first bytes) is a playlist batchgen wrote:
/// `#EXTM3U`, then [`MARK`].
pub fn is_ours(head: &[u8]) -> bool {
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let Some(rest) = head.strip_prefix(b"#EXTM3U") else {
        return false;
    };
    let rest = rest.strip_prefix(b"\r").unwrap_or(rest);
    rest.strip_prefix(b"\n")
        .is_some_and(|rest| rest.starts_with(MARK.as_bytes()))
}

/// A playlist being written; [`Playlist::commit`] puts it in place.
#[derive(Debug)]
pub struct Playlist {
    out: BufWriter<AtomicFile>,
    entries: u64,
}

impl Playlist {
    /// Starts replacing the playlist at `path`.
    ///
    /// # Errors
    /// The temporary file cannot be created (or `path` is not a regular
    /// file: see [`AtomicFile::create_unlinked`]).
    pub fn create(path: &Path) -> io::Result<Playlist> {
        let mut out = BufWriter::new(AtomicFile::create_unlinked(path)?);
        out.write_all(b"#EXTM3U\n")?;
        out.write_all(MARK.as_bytes())?;
        out.write_all(b"\n")?;
        Ok(Playlist { out, entries: 0 })
    }

    /// Adds one file (`relative` to the playlist's folder). Returns whether
    /// it was written: a path that is not UTF-8 or holds a line break
    /// cannot be one line of an M3U8, and is left out.
    ///
    /// # Errors
    /// Writing failed.
    pub fn add(&mut self, relative: &Path, title: &str, duration: Option<f64>) -> io::Result<bool> {
        let Some(path) = relative.to_str() else {
            return Ok(false);
        };
        if path.is_empty() || path.chars().any(char::is_control) {
            return Ok(false);
        }
        let prefix = if path.starts_with('#') { "./" } else { "" };
        writeln!(self.out, "{}", extinf(title, duration))?;
        writeln!(self.out, "{prefix}{path}")?;
        self.entries += 1;
        Ok(true)
    }

    /// Entries written so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Makes the playlist durable and puts it in place.
    ///
    /// # Errors
    /// Writing or renaming failed; the old playlist is then left as it was.
    pub fn commit(self) -> io::Result<()> {
        self.out.into_inner().map_err(|e| e.into_error())?.commit()
    }
}

/// `#EXTINF:<seconds>,<title>`: whole seconds rounded (`-1` when not
/// known, as the format says), the title on one line.
pub fn extinf(title: &str, duration: Option<f64>) -> String {
    let secs = duration
        .filter(|d| d.is_finite() && *d >= 0.0)
        .map_or(-1, |d| d.round().min(i64::MAX as f64) as i64);
    let title: String = title
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("#EXTINF:{secs},{title}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_playlist_lists_its_entries_one_per_pair_of_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.m3u8");
        let mut list = Playlist::create(&path).unwrap();
        assert!(
            list.add(Path::new("songs/a-1.mp3"), "Neon Highway", Some(187.4))
                .unwrap()
        );
        assert!(
            list.add(Path::new("#odd.mp3"), "Rain, again", None)
                .unwrap()
        );
        assert_eq!(list.entries(), 2);
        list.commit().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!(
                "#EXTM3U\n{MARK}\n#EXTINF:187,Neon Highway\nsongs/a-1.mp3\n#EXTINF:-1,Rain, again\n./#odd.mp3\n"
            )
        );
        assert!(is_ours(&std::fs::read(&path).unwrap()));
        assert!(!is_ours(b"#EXTM3U\n#EXTINF:187,Mine\nmine.mp3\n"));
        assert!(!is_ours(b""));
    }

    #[test]
    fn a_server_title_or_a_path_cannot_add_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.m3u8");
        let mut list = Playlist::create(&path).unwrap();
        let title = "Hit\r\n#EXTINF:1,fake\n/etc/passwd";
        assert!(list.add(Path::new("a.mp3"), title, Some(3.0)).unwrap());
        assert!(
            !list
                .add(Path::new("b\n/etc/passwd"), "B", Some(3.0))
                .unwrap()
        );
        list.commit().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "#EXTM3U",
                MARK,
                "#EXTINF:3,Hit  #EXTINF:1,fake /etc/passwd",
                "a.mp3"
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let path = dir.path().join("jobs.m3u8");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        assert!(Playlist::create(&path).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    }
}
