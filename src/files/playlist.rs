//! The playlist: an extended M3U (`<stem>.m3u8`, UTF-8) of the catalog's
//! songs in manifest order, beside the catalog, that any player opens.
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
//!
//! # Which takes
//! The playlist is the release: one song per job where the quality rules
//! could choose ([`Playlist::offer`]).
//!
//! - A job with at least one judged take (a `verdict` in the catalog)
//!   lists only its picked take, and only when that take is `kept` and
//!   on disk. A job whose takes are all rejected is left out: its pick is
//!   rejected too, and it needs review (the page's `review` filter), not
//!   a place among the songs.
//! - A job with no judged take (measuring off, or an earlier release's
//!   catalog) lists every downloaded take: nothing says which is better.
//!
//! A job's takes are held until its last row, so which rule applies is
//! known; rows of one job are consecutive, and at most
//! [`MAX_CLIPS`] of them are held (a catalog listing more under one key,
//! hand-edited, is taken [`MAX_CLIPS`] rows at a time).

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::files::catalog::Verdict;
use crate::files::catalog::job::MAX_CLIPS;
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
    job: Job,
}

/// One take of a job, as offered to the playlist ([`Playlist::offer`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Take {
    /// Its downloaded file relative to the playlist's folder, when on disk.
    pub file: Option<PathBuf>,
    pub title: String,
    /// Seconds.
    pub duration: Option<f64>,
    /// What the quality rules made of it; `None` when not judged.
    pub verdict: Option<Verdict>,
    /// Whether it is its job's pick.
    pub pick: bool,
}

/// The takes of the job being offered, until its last one.
#[derive(Debug, Default)]
struct Job {
    key: String,
    /// Rows offered (at most [`MAX_CLIPS`] before the job is written).
    rows: usize,
    /// Whether any take of it is judged.
    judged: bool,
    /// Its pick, when kept and on disk.
    pick: Option<Take>,
    /// Its downloaded takes, while none is judged.
    downloaded: Vec<Take>,
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
        Ok(Playlist {
            out,
            entries: 0,
            job: Job::default(),
        })
    }

    /// Offers one take (downloaded or not) of job `key`, in catalog order;
    /// what is listed of a job (see the module docs) is written when its
    /// last row has been offered: at the next job's first, or
    /// [`Playlist::end_job`].
    ///
    /// # Errors
    /// Writing the previous job's entries failed.
    pub fn offer(&mut self, key: &str, take: Take) -> io::Result<()> {
        if self.job.rows > 0 && (self.job.key != key || self.job.rows >= MAX_CLIPS) {
            self.end_job()?;
        }
        let job = &mut self.job;
        if job.rows == 0 {
            key.clone_into(&mut job.key);
        }
        job.rows += 1;
        if take.verdict.is_some() && !job.judged {
            job.judged = true;
            job.downloaded = Vec::new();
        }
        if take.file.is_none() {
            return Ok(());
        }
        if take.pick && take.verdict == Some(Verdict::Kept) {
            job.pick = Some(take);
        } else if !job.judged {
            job.downloaded.push(take);
        }
        Ok(())
    }

    /// Writes what is listed of the job being offered.
    ///
    /// # Errors
    /// Writing failed.
    pub fn end_job(&mut self) -> io::Result<()> {
        let job = std::mem::take(&mut self.job);
        let listed = if job.judged {
            job.pick.into_iter().collect()
        } else {
            job.downloaded
        };
        for take in listed {
            if let Some(file) = &take.file {
                self.add(file, &take.title, take.duration)?;
            }
        }
        Ok(())
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

    /// Entries written so far (a job offered is written when it ends).
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Writes the last job offered, makes the playlist durable and puts it
    /// in place.
    ///
    /// # Errors
    /// Writing or renaming failed; the old playlist is then left as it was.
    pub fn commit(mut self) -> io::Result<()> {
        self.end_job()?;
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

    fn offered(file: Option<&str>, title: &str, verdict: Option<Verdict>, pick: bool) -> Take {
        Take {
            file: file.map(PathBuf::from),
            title: title.into(),
            duration: Some(120.0),
            verdict,
            pick,
        }
    }

    /// The paths a playlist lists, in order.
    fn listed(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_judged_job_lists_its_kept_pick_and_an_unjudged_one_every_download() {
        use Verdict::{Kept, Rejected};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.m3u8");
        let mut list = Playlist::create(&path).unwrap();
        let jobs: [(&str, Vec<Take>); 6] = [
            // Kept pick: only it, whatever else was downloaded.
            (
                "a",
                vec![
                    offered(Some("a-1.mp3"), "A1", Some(Kept), false),
                    offered(Some("a-2.mp3"), "A2", Some(Kept), true),
                ],
            ),
            // Every take rejected: nothing (it needs review).
            (
                "b",
                vec![
                    offered(Some("b-1.mp3"), "B1", Some(Rejected), true),
                    offered(Some("b-2.mp3"), "B2", Some(Rejected), false),
                ],
            ),
            // Nothing judged: every downloaded take, as before measuring.
            (
                "c",
                vec![
                    offered(Some("c-1.mp3"), "C1", None, false),
                    offered(None, "C2", None, false),
                    offered(Some("c-3.mp3"), "C3", None, false),
                ],
            ),
            // An unjudged download before a judged take: the pick rules.
            (
                "d",
                vec![
                    offered(Some("d-1.mp3"), "D1", None, false),
                    offered(Some("d-2.mp3"), "D2", Some(Kept), true),
                ],
            ),
            // The kept pick is not on disk: nothing stands in for it.
            (
                "e",
                vec![
                    offered(None, "E1", Some(Kept), true),
                    offered(Some("e-2.mp3"), "E2", Some(Rejected), false),
                ],
            ),
            // A pick that is not judged (a hand-edited row) picks nothing.
            ("f", vec![offered(Some("f-1.mp3"), "F1", None, true)]),
        ];
        for (key, takes) in jobs {
            for take in takes {
                list.offer(key, take).unwrap();
            }
        }
        assert_eq!(list.entries(), 4, "f is written when the playlist ends");
        list.commit().unwrap();
        assert_eq!(
            listed(&path),
            ["a-2.mp3", "c-1.mp3", "c-3.mp3", "d-2.mp3", "f-1.mp3"]
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("#EXTINF:120,A2\na-2.mp3\n"), "{text}");
        assert!(!text.contains("B1") && !text.contains("E2"), "{text}");
    }

    #[test]
    fn one_key_listing_more_rows_than_a_job_has_is_held_a_job_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.m3u8");
        let mut list = Playlist::create(&path).unwrap();
        for i in 0..(MAX_CLIPS * 3 + 1) {
            let name = format!("k-{i}.mp3");
            list.offer("k", offered(Some(&name), "K", None, false))
                .unwrap();
            assert!(
                list.job.downloaded.len() <= MAX_CLIPS,
                "held rows are bounded"
            );
        }
        list.commit().unwrap();
        assert_eq!(listed(&path).len(), MAX_CLIPS * 3 + 1);
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
