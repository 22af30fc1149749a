//! The catalog as a person looks at it: a static HTML page beside the
//! catalog CSV (`<stem>.catalog.html`), and the playlist of its songs
//! ([`crate::files::playlist`], `<stem>.m3u8`).
//!
//! # The page
//! One self-contained file: no CDN, no font, no request but the clips' own
//! files, so it works opened from the folder (`file://`) and from any
//! static file server. Each job shows its clips side by side (cover,
//! title, style, model, duration, status, a player, a failed clip's
//! message), under counts of the whole catalog; a status filter, a text
//! search and a sort (manifest order or title) live in the URL fragment
//! (`#status=failed&q=rain`), so a view can be bookmarked.
//!
//! # Measured takes
//! A take `collect` measured shows its numbers (length as decoded,
//! loudness in LUFS, true peak in dBTP) and a `kept` or `rejected` badge,
//! a rejected one with every rule it breaks written under it; the take
//! picked for its job has a `pick` badge. Two more filters join the view
//! in the fragment: `review=1` shows only the jobs with a rejected take
//! among the clips the other filters leave (with `picks=1`: the jobs whose
//! pick is rejected, which have no song in the playlist), and `picks=1`
//! shows only each job's picked take (a job with no pick, because none of
//! its takes is judged, keeps all its clips, so the option never hides an
//! unmeasured catalog). The counts at the top add takes kept, takes
//! rejected and jobs to review once any take is judged. A take not
//! measured has no badge, no numbers, and no key for them in the data, so
//! a catalog without measurements shows none of this.
//!
//! The playlist is the picks ([`crate::files::playlist`]): a job with a
//! judged take lists its pick when kept, and nothing when its takes are
//! all rejected (they need review first); a job without one lists every
//! downloaded take.
//!
//! # At 10^5 clips
//! The page is a shell (a template rendered through `minijinja`, every
//! value HTML-escaped) and a script that renders one page of 50 jobs at a
//! time from JSON data, so the DOM never holds more than one page of
//! players. The data is embedded for a small catalog and written in chunk
//! files beside the page for a large one ([`data`]); the browser loads
//! only the chunks the view needs (all of them for a filter or a search;
//! `picks` alone moves no job, so it pages as the plain view does).
//! Writing streams the rows: batchgen holds one chunk, the counts and one
//! job's takes (for the playlist), never the catalog.
//!
//! # Files
//! Every file is written through [`crate::util::fsx`]: the page and the
//! playlist whole, to a temporary file renamed over the old one (a planted
//! symlink is refused, never written through); the chunk files brand new,
//! in a data folder that must be a real folder.
//!
//! | module | owns |
//! |---|---|
//! | [`paths`] | where a clip's files are, relative to the page; which server URLs may be links |
//! | [`data`] | the JSON of each job, its escaping, the chunks |
//! | [`render`] | the template, its styles and its script |

pub mod data;
pub mod paths;
pub mod render;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::files::catalog::{CatalogError, Row};
use crate::files::playlist::{Playlist, Take};
use crate::files::state::JobClips;
use crate::util::fsx;
use data::{Chunks, Data, Grouper, PageCounts};
use paths::Locator;

/// What goes wrong writing the page or the playlist.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The catalog's store cannot be read, or is not one.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The page, a chunk of its data, the data folder or the playlist
    /// cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The data or the template could not be encoded: a bug, not the disk.
    #[error("cannot encode the catalog page: {0}")]
    Encode(String),
    /// A file is where the page or the playlist goes and batchgen did not
    /// write it: it is left as it is, and nothing is written.
    #[error(
        "{} is not a {what} batchgen wrote ({why}), so it is left as it is and neither the page nor the playlist was written; name the catalog (--catalog) after another stem to have them written beside it",
        path.display()
    )]
    NotOurs {
        path: PathBuf,
        what: &'static str,
        why: &'static str,
    },
}

/// What the page's `<head>` says of who made it (`catalog.html`).
const PAGE_MARK: &str = "<meta name=\"generator\" content=\"batchgen\">";

/// Refuses to replace a page or a playlist batchgen did not write (a
/// user's own `jobs.m3u8`, a page of another tool): every name the page
/// and the playlist take is derived from the catalog's, so none was
/// chosen by the user for this. An empty or missing file is anyone's.
/// Whatever name reaches the file (a hard link, a bind mount), its
/// content says whose it is.
fn check_ours(page: &Path, playlist: &Path) -> Result<(), PageError> {
    let head = |path: &Path| -> Result<Option<Vec<u8>>, PageError> {
        use std::io::Read;
        // A link or anything but a regular file is the writer's to refuse
        // (`AtomicFile::create_unlinked`); nothing is read through it.
        if !std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
            return Ok(None);
        }
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(PageError::Write {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let mut head = Vec::new();
        file.take(4096)
            .read_to_end(&mut head)
            .map_err(|source| PageError::Write {
                path: path.to_owned(),
                source,
            })?;
        Ok((!head.is_empty()).then_some(head))
    };
    let page_ours = match head(page)? {
        None => false,
        Some(bytes) if memchr::memmem::find(&bytes, PAGE_MARK.as_bytes()).is_some() => true,
        Some(_) => {
            return Err(PageError::NotOurs {
                path: page.to_owned(),
                what: "catalog page",
                why: "its head has no generator batchgen",
            });
        }
    };
    match head(playlist)? {
        None => Ok(()),
        Some(bytes) if crate::files::playlist::is_ours(&bytes) => Ok(()),
        // An earlier release wrote its playlist unmarked, always beside its
        // page: one beside batchgen's page is taken for that one.
        Some(bytes) if page_ours && bytes.starts_with(b"#EXTM3U") => Ok(()),
        Some(_) => Err(PageError::NotOurs {
            path: playlist.to_owned(),
            what: "playlist",
            why: "it does not start with batchgen's mark, and no batchgen page is beside it",
        }),
    }
}

/// The files written, and what they hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs {
    pub page: PathBuf,
    /// The data folder, when the catalog was too large to embed.
    pub data_dir: Option<PathBuf>,
    pub playlist: PathBuf,
    pub counts: PageCounts,
    /// Entries in the playlist: each judged job's kept pick, every
    /// downloaded take of a job not judged, found on disk.
    pub playlist_entries: u64,
}

/// Where the outputs of the catalog at `catalog_csv` go: beside it,
/// named for its stem (`jobs.catalog.csv` → `jobs.catalog.html`,
/// `jobs.catalog-data/`, `jobs.m3u8`).
pub fn output_paths(catalog_csv: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let name = catalog_csv
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name
        .strip_suffix(".catalog.csv")
        .or_else(|| name.strip_suffix(".csv"))
        .unwrap_or(&name);
    let stem = if stem.is_empty() { "batchgen" } else { stem };
    (
        catalog_csv.with_file_name(format!("{stem}.catalog.html")),
        catalog_csv.with_file_name(format!("{stem}.catalog-data")),
        catalog_csv.with_file_name(format!("{stem}.m3u8")),
    )
}

/// Writes the page and the playlist for the catalog at `catalog_csv`
/// from its `rows` (latest per clip, in manifest order), beside it.
///
/// # Errors
/// A file cannot be written (the old page and playlist are then left as
/// they were).
pub fn write_outputs(
    catalog_csv: &Path,
    rows: impl Iterator<Item = Row>,
) -> Result<Outputs, PageError> {
    write_from(catalog_csv, |push| rows.into_iter().try_for_each(push))
}

/// [`write_outputs`] from the store: `each_job` hands every job with its
/// rows, in order, to the function it is given (one consistent read of
/// the store, streamed: `batchgen status --html` and the end of a
/// `collect`).
///
/// # Errors
/// The store cannot be read or is not one, or as [`write_outputs`].
pub fn write_outputs_from_store(
    catalog_csv: &Path,
    each_job: impl FnOnce(&mut dyn FnMut(JobClips) -> Result<(), PageError>) -> Result<(), PageError>,
) -> Result<Outputs, PageError> {
    write_from(catalog_csv, |push| {
        each_job(&mut |job: JobClips| job.rows.into_iter().try_for_each(&mut *push))
    })
}

/// Writes the outputs from the rows `feed` hands the function it is given.
fn write_from(
    catalog_csv: &Path,
    feed: impl FnOnce(&mut dyn FnMut(Row) -> Result<(), PageError>) -> Result<(), PageError>,
) -> Result<Outputs, PageError> {
    let (page, data_dir, playlist_path) = output_paths(catalog_csv);
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |source| PageError::Write { path, source }
    };
    // One writer at a time (a `status --html` beside a collect, two of
    // them): a writer removes the chunks of every generation but its own,
    // which must not be another writer's still to be put in place. Held
    // until the set is complete; a second writer waits, then writes a set
    // of its own.
    let lock_path = {
        let mut name = page.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    };
    let lock = fsx::open_in_place(
        &lock_path,
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
    )
    .map_err(write_error(&lock_path))?;
    lock.lock().map_err(write_error(&lock_path))?;
    check_ours(&page, &playlist_path)?;
    let home = std::fs::canonicalize(fsx::parent_dir(catalog_csv))
        .map_err(write_error(&fsx::parent_dir(catalog_csv)))?;
    let locator = Locator::new(home.clone());
    let dir_name = file_name(&data_dir);
    let mut playlist = Playlist::create(&playlist_path).map_err(write_error(&playlist_path))?;
    let mut chunks = Chunks::new(&home, &dir_name);
    let mut grouper = Grouper::default();
    let mut counts = PageCounts::default();
    let mut in_review = false;
    feed(&mut |row: Row| {
        let (clip, file) = data::clip(&row, &locator);
        let title = match &file {
            Some(_) if row.title.trim().is_empty() => format!("{} {}", row.key, row.clip_index),
            Some(_) => row.title.clone(),
            None => String::new(),
        };
        let take = Take {
            file,
            title,
            duration: clip.dur,
            verdict: row.verdict(),
            pick: row.pick,
        };
        playlist
            .offer(&row.key, take)
            .map_err(write_error(&playlist_path))?;
        let local = clip.local;
        let new_job = grouper.add(&row.key, &row.task_id, clip, &mut chunks)?;
        counts.add(row.status(), local, new_job);
        in_review = counts.add_verdict(row.verdict(), in_review && !new_job);
        Ok(())
    })?;
    playlist.end_job().map_err(write_error(&playlist_path))?;
    let entries = grouper.finish(&mut chunks)?;
    let data = chunks.finish()?;
    let html = render::page(&render::Shell {
        name: &file_name(catalog_csv),
        counts: &counts,
        entries,
        data: &data,
        data_href: &paths::href(Path::new(&dir_name)),
    })?;
    let playlist_entries = playlist.entries();
    playlist.commit().map_err(write_error(&playlist_path))?;
    let mut out = fsx::AtomicFile::create_unlinked(&page).map_err(write_error(&page))?;
    out.write_all(html.as_bytes()).map_err(write_error(&page))?;
    out.commit().map_err(write_error(&page))?;
    let keep = match &data {
        Data::Files { generation, .. } => Some(generation.as_str()),
        Data::Embedded(_) => None,
    };
    data::remove_old_chunks(&home.join(&dir_name), keep);
    Ok(Outputs {
        page,
        data_dir: keep.map(|_| data_dir),
        playlist: playlist_path,
        counts,
        playlist_entries,
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, index: u32, status: &str, file: &str) -> Row {
        Row {
            key: key.into(),
            task_id: format!("t-{key}"),
            clip_index: index,
            clip_id: format!("c-{key}-{index}"),
            title: format!("Song {key}"),
            style: String::new(),
            model: "m".into(),
            status: status.into(),
            duration: Some(61.0),
            created_at: String::new(),
            audio_url: "https://cdn.example/a.mp3".into(),
            image_url: String::new(),
            file: file.into(),
            file_bytes: None,
            image_file: String::new(),
            ..Row::default()
        }
    }

    fn jobs(n: usize) -> impl Iterator<Item = Row> {
        (0..n).flat_map(|j| [1, 2].map(|i| row(&format!("k{j}"), i, "complete", "")))
    }

    #[test]
    fn a_small_catalog_is_embedded_and_a_large_one_chunked_then_cleaned_up() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("jobs.catalog.csv");
        let small = write_outputs(&csv, jobs(3)).unwrap();
        assert_eq!(small.page, dir.path().join("jobs.catalog.html"));
        assert_eq!(small.playlist, dir.path().join("jobs.m3u8"));
        assert_eq!((small.counts.jobs, small.counts.clips), (3, 6));
        assert_eq!(small.data_dir, None);
        let html = std::fs::read_to_string(&small.page).unwrap();
        assert!(
            html.contains(r#"id="batchgen-data">[{"key":"k0""#),
            "embedded"
        );

        let large = write_outputs(&csv, jobs(data::JOBS_PER_CHUNK + 1)).unwrap();
        let data_dir = large.data_dir.clone().unwrap();
        let names = |d: &Path| -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        let first = names(&data_dir);
        assert_eq!(first.len(), 2, "{first:?}");
        let chunk = std::fs::read_to_string(data_dir.join(&first[0])).unwrap();
        assert!(chunk.starts_with("batchgenChunk(0, [{"), "{chunk:.40}");
        assert!(
            !std::fs::read_to_string(&large.page)
                .unwrap()
                .contains(r#"id="batchgen-data""#)
        );

        // A rewrite makes a new generation and removes the old one.
        write_outputs(&csv, jobs(data::JOBS_PER_CHUNK + 1)).unwrap();
        let second = names(&data_dir);
        assert_eq!(second.len(), 2, "{second:?}");
        assert!(second.iter().all(|n| !first.contains(n)));
        // Back to small: embedded, the chunks gone.
        write_outputs(&csv, jobs(1)).unwrap();
        assert!(names(&data_dir).is_empty());
    }

    #[test]
    fn two_writers_at_once_leave_a_complete_set() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("jobs.catalog.csv");
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..3 {
                        write_outputs(&csv, jobs(data::JOBS_PER_CHUNK + 1)).unwrap();
                    }
                });
            }
        });
        // Whoever wrote last, the page names chunks that are there, and
        // only those are.
        let html = std::fs::read_to_string(dir.path().join("jobs.catalog.html")).unwrap();
        let data_dir = dir.path().join("jobs.catalog-data");
        let mut names: Vec<String> = std::fs::read_dir(&data_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        let generation = names[0].split_once('-').unwrap().0;
        assert!(
            html.contains(generation),
            "the page loads the chunks that exist"
        );
    }

    #[test]
    fn the_playlist_lists_downloaded_files_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let home = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(home.join("songs")).unwrap();
        std::fs::write(home.join("songs/a 1.mp3"), b"ID3").unwrap();
        let absolute = home.join("songs/a 1.mp3");
        let rows = [
            row("a", 1, "complete", absolute.to_str().unwrap()),
            row("a", 2, "complete", "songs/missing.mp3"),
            row("b", 0, "failed", ""),
        ];
        let out = write_outputs(&home.join("jobs.catalog.csv"), rows.into_iter()).unwrap();
        assert_eq!(out.playlist_entries, 1);
        assert_eq!(out.counts.downloaded, 1);
        assert_eq!(
            std::fs::read_to_string(&out.playlist).unwrap(),
            format!(
                "#EXTM3U\n{}\n#EXTINF:61,Song a\nsongs/a 1.mp3\n",
                crate::files::playlist::MARK
            )
        );
        let html = std::fs::read_to_string(&out.page).unwrap();
        assert!(
            html.contains(r#""audio":"songs/a%201.mp3","local":true"#),
            "relative, encoded"
        );
        assert!(
            html.contains(r#""audio":"https://cdn.example/a.mp3","local":false"#),
            "the fallback"
        );
    }

    #[test]
    fn judged_takes_show_their_verdicts_counts_and_only_kept_picks_are_played() {
        let dir = tempfile::tempdir().unwrap();
        let home = std::fs::canonicalize(dir.path()).unwrap();
        let mut rows = Vec::new();
        // (job, take, verdict, pick, reasons)
        let takes = [
            ("a", 1, "kept", false, ""),
            ("a", 2, "kept", true, ""),
            (
                "b",
                1,
                "rejected",
                true,
                "too short: 12.0 s (at least 30.0 s)",
            ),
            (
                "b",
                2,
                "rejected",
                false,
                "too short: 9.0 s (at least 30.0 s)",
            ),
            ("c", 1, "", false, ""),
            ("c", 2, "", false, ""),
        ];
        for (key, index, verdict, pick, reasons) in takes {
            let name = format!("{key}-{index}.mp3");
            std::fs::write(home.join(&name), b"ID3").unwrap();
            let judged = !verdict.is_empty();
            rows.push(Row {
                measured_duration: judged.then_some(60.0 + f64::from(index)),
                loudness: judged.then_some(-14.0),
                true_peak: judged.then_some(-1.5),
                verdict: verdict.into(),
                reasons: reasons.into(),
                pick,
                ..row(key, index, "complete", &name)
            });
        }
        let out = write_outputs(&home.join("jobs.catalog.csv"), rows.into_iter()).unwrap();
        assert_eq!(
            (out.counts.kept, out.counts.rejected, out.counts.review),
            (2, 2, 1)
        );
        assert_eq!(out.counts.downloaded, 6);
        assert_eq!(out.playlist_entries, 3, "a's pick and c's two takes");
        let playlist = std::fs::read_to_string(&out.playlist).unwrap();
        let paths: Vec<&str> = playlist.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(paths, ["a-2.mp3", "c-1.mp3", "c-2.mp3"]);

        let html = std::fs::read_to_string(&out.page).unwrap();
        assert!(
            html.contains(r#""error":"","measured":62.0,"lufs":-14.0,"dbtp":-1.5,"verdict":"kept","pick":true}"#),
            "{html}"
        );
        assert!(html.contains(
            r#""verdict":"rejected","reasons":"too short: 12.0 s (at least 30.0 s)","pick":true}"#
        ));
        assert!(
            html.contains(r#""local":true,"image":null,"error":""}"#),
            "c is unmeasured"
        );
        assert!(
            html.contains(r##"data-count="review"><a href="#review=1"><b>1</b> to review</a>"##)
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_at_the_page_or_the_data_folder_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("jobs.catalog.csv");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("jobs.catalog.html")).unwrap();
        assert!(matches!(
            write_outputs(&csv, jobs(1)),
            Err(PageError::Write { .. })
        ));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        std::fs::remove_file(dir.path().join("jobs.catalog.html")).unwrap();

        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("jobs.catalog-data")).unwrap();
        let err = write_outputs(&csv, jobs(data::JOBS_PER_CHUNK + 1)).unwrap_err();
        assert!(matches!(err, PageError::Write { .. }), "{err}");
        assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    }
}
