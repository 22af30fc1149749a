//! What a downloaded MP3's ID3v2.4 tag says, so a music library shows the
//! song and a file found alone can be traced back to its job.
//!
//! | frame | from |
//! |---|---|
//! | `TIT2` title | the clip's title |
//! | `TPE1` artist, `TPE2` album artist | `--artist` / `[run] artist` (the command layer picks the default) |
//! | `TALB` album | `--album` / `[run] album`, else the run's name (the results file's stem) |
//! | `TCON` genre | the style tags, split at commas (at most [`MAX_GENRES`]), without the tempo |
//! | `TBPM` | a style tag `N bpm` |
//! | `TRCK` track | the job's place in the manifest, when the caller knows it |
//! | `TDRC` recorded | the clip's `created_at` (UTC) |
//! | `TLEN` length | the clip's duration |
//! | `USLT` lyrics | the clip's lyrics ([`crate::api::feed::Clip::lyrics`]), when it has any |
//! | `APIC` front cover | the clip's image, when it is a PNG, JPEG or WebP of at most [`MAX_COVER`] bytes |
//! | `TXXX` `REPLAYGAIN_TRACK_GAIN`, `REPLAYGAIN_TRACK_PEAK` | the take as measured ([`crate::audio::ReplayGain`]), when it was and is not silent |
//! | `TXXX` `batchgen:key`, `batchgen:task_id`, `batchgen:clip_id`, `batchgen:model`; `COMM` | where the file came from |
//!
//! Every text here came from a server or a manifest, so each is cleaned
//! ([`label`]): control characters (NUL included: in ID3v2.4 it separates
//! values) dropped, trimmed, capped in characters; an empty value writes
//! no frame. A cover is judged by its first bytes ([`image_mime`]), never
//! by its URL or `Content-Type`, and its MIME type is the one those bytes
//! say. [`build`] is pure, so the whole tag is unit-tested without files;
//! `fetch` writes it into the `.part` through the no-symlink open of
//! [`crate::util::fsx`], and gets the cover's bytes: from the `.png`
//! `--images` keeps ([`read_kept`]), else fetched into memory (and then
//! kept there, [`keep`], so it is not fetched twice).

use std::path::{Path, PathBuf};

use id3::TagLike;
use id3::frame::{Comment, ExtendedText, Lyrics, Picture, PictureType};

use tokio::io::AsyncWriteExt;

use super::{DownloadConfig, part_path};
use crate::api::feed::MAX_LYRICS;
use crate::files::catalog::Row;
use crate::job::JobKey;

/// How the catalog's `error` starts when the song was tagged without its
/// cover (a failed or hostile image never costs the song).
pub(super) const NO_COVER: &str = "tagged without cover: ";
/// Largest cover embedded: Suno's covers are a few hundred KiB, and a tag
/// is read whole by players.
pub(super) const MAX_COVER: usize = 2 * 1024 * 1024;
/// Longest title, artist, album, genre or trace value, in characters.
const MAX_LABEL: usize = 200;
/// Most genres taken from one clip's style tags.
const MAX_GENRES: usize = 5;

/// Everything one MP3's tag is built from.
#[derive(Debug, Clone, Default)]
pub(super) struct TagInfo {
    pub title: String,
    pub artist: String,
    pub album: String,
    /// The style tags, comma-separated.
    pub style: String,
    pub lyrics: String,
    /// The job's place in the manifest (1, 2, …).
    pub track: Option<u32>,
    /// RFC 3339, as the catalog writes it.
    pub created_at: String,
    /// Seconds.
    pub duration: Option<f64>,
    pub key: JobKey,
    pub task_id: String,
    pub clip_id: String,
    pub clip_index: u32,
    pub model: String,
    /// Where the cover comes from; `None` when the clip has no image.
    pub cover_source: Option<CoverSource>,
    /// The cover's bytes, once `fetch` has them.
    pub cover: Option<Cover>,
    /// The take's ReplayGain 2.0 track gain and peak, once it is measured.
    pub replaygain: Option<crate::audio::ReplayGain>,
}

/// Where a clip's cover is found.
#[derive(Debug, Clone)]
pub(super) struct CoverSource {
    pub url: String,
    /// The `.png` beside the MP3 when `--images` keeps one: read from
    /// there if present, written there when fetched.
    pub keep: Option<PathBuf>,
}

/// An image fit to embed: its bytes and the MIME type they say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cover {
    pub mime: &'static str,
    pub data: Vec<u8>,
}

impl Cover {
    /// `data` as a cover, or why not.
    pub(super) fn check(data: Vec<u8>) -> Result<Cover, String> {
        if data.len() > MAX_COVER {
            return Err(format!("the image is larger than {MAX_COVER} bytes"));
        }
        match image_mime(&data) {
            Some(mime) => Ok(Cover { mime, data }),
            None if data.is_empty() => Err("the image is empty".into()),
            None => Err("the image is not a PNG, JPEG or WebP".into()),
        }
    }
}

impl TagInfo {
    /// The tag of `row`'s clip saved at `audio`, with the run's artist and
    /// album and the job's `track`.
    pub(super) fn new(
        row: &Row,
        config: &DownloadConfig,
        audio: &Path,
        track: Option<u32>,
    ) -> TagInfo {
        let cover_source = (!row.image_url.is_empty()).then(|| CoverSource {
            url: row.image_url.clone(),
            keep: config.images.then(|| audio.with_extension("png")),
        });
        TagInfo {
            title: row.title.clone(),
            artist: config.artist.clone(),
            album: config.album.clone(),
            style: row.style.clone(),
            lyrics: row.lyrics.clone(),
            track,
            created_at: row.created_at.clone(),
            duration: row.duration,
            key: row.key.clone(),
            task_id: row.task_id.clone(),
            clip_id: row.clip_id.clone(),
            clip_index: row.clip_index,
            model: row.model.clone(),
            cover_source,
            cover: None,
            replaygain: None,
        }
    }
}

/// The MIME type of an image by its first bytes: PNG, JPEG or WebP.
pub(super) fn image_mime(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Server or manifest text fit for a tag: control characters dropped,
/// trimmed, at most `max` characters.
fn label(text: &str, max: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Lyrics keep their lines: other control characters go, and the length
/// is capped again (the catalog is hand-editable).
fn lyrics(text: &str) -> String {
    text.chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .take(MAX_LYRICS)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The style tags as genres, and a tempo tag (`80 bpm`) as beats per minute.
fn genres(style: &str) -> (Vec<String>, Option<u32>) {
    let mut bpm = None;
    let mut genres = Vec::new();
    for tag in style.split(',').map(|t| label(t, MAX_LABEL)) {
        let tempo = tag
            .to_ascii_lowercase()
            .strip_suffix("bpm")
            .and_then(|n| n.trim().parse::<u32>().ok())
            .filter(|n| (20..=400).contains(n));
        match tempo {
            Some(n) => bpm = bpm.or(Some(n)),
            None if !tag.is_empty() && genres.len() < MAX_GENRES && !genres.contains(&tag) => {
                genres.push(tag);
            }
            None => {}
        }
    }
    (genres, bpm)
}

/// `created_at` (RFC 3339) as an ID3 time stamp, in UTC.
fn recorded(created_at: &str) -> Option<id3::Timestamp> {
    use chrono::{Datelike, Timelike};
    let at = chrono::DateTime::parse_from_rfc3339(created_at.trim())
        .ok()?
        .with_timezone(&chrono::Utc);
    let byte = |n: u32| u8::try_from(n).ok();
    Some(id3::Timestamp {
        year: at.year(),
        month: byte(at.month()),
        day: byte(at.day()),
        hour: byte(at.hour()),
        minute: byte(at.minute()),
        second: byte(at.second()),
    })
}

/// The whole tag for `info` (see the module docs for the frames).
pub(super) fn build(info: &TagInfo) -> id3::Tag {
    let mut tag = id3::Tag::new();
    let text = |s: &str| label(s, MAX_LABEL);
    let title = text(&info.title);
    if !title.is_empty() {
        tag.set_title(title);
    }
    let artist = text(&info.artist);
    if !artist.is_empty() {
        tag.set_artist(artist.clone());
        tag.set_album_artist(artist);
    }
    let album = text(&info.album);
    if !album.is_empty() {
        tag.set_album(album);
    }
    let (genres, bpm) = genres(&info.style);
    if !genres.is_empty() {
        tag.set_text_values("TCON", genres);
    }
    if let Some(bpm) = bpm {
        tag.set_text("TBPM", bpm.to_string());
    }
    if let Some(track) = info.track.filter(|t| *t > 0) {
        tag.set_track(track);
    }
    if let Some(at) = recorded(&info.created_at) {
        tag.set_date_recorded(at);
    }
    if let Some(secs) = info.duration.filter(|d| d.is_finite() && *d > 0.0) {
        // TLEN is milliseconds; a day is far beyond any song.
        tag.set_duration((secs.min(86_400.0) * 1000.0).round() as u32);
    }
    let words = lyrics(&info.lyrics);
    if !words.is_empty() {
        tag.add_frame(Lyrics {
            lang: "eng".into(),
            description: String::new(),
            text: words,
        });
    }
    if let Some(cover) = &info.cover {
        tag.add_frame(Picture {
            mime_type: cover.mime.into(),
            picture_type: PictureType::CoverFront,
            description: String::new(),
            data: cover.data.clone(),
        });
    }
    if let Some(rg) = &info.replaygain {
        rg.set_in(&mut tag);
    }
    trace(&mut tag, info);
    tag
}

/// The frames that say where the file came from.
fn trace(tag: &mut id3::Tag, info: &TagInfo) {
    let key = label(&info.key, MAX_LABEL);
    for (name, value) in [
        ("batchgen:key", &key),
        ("batchgen:task_id", &label(&info.task_id, MAX_LABEL)),
        ("batchgen:clip_id", &label(&info.clip_id, MAX_LABEL)),
        ("batchgen:model", &label(&info.model, MAX_LABEL)),
    ] {
        if !value.is_empty() {
            tag.add_frame(ExtendedText {
                description: name.into(),
                value: value.clone(),
            });
        }
    }
    tag.add_frame(Comment {
        lang: "eng".into(),
        description: String::new(),
        text: format!("batchgen job {key}, clip {}", info.clip_index),
    });
}

/// Whose song the regular file at `path` is, by batchgen's tag: the
/// `batchgen:task_id` and `batchgen:clip_id` it carries; `None` for a file
/// without that tag (another tool's, a user's, an HTML page) or that
/// cannot be read. Blocking: call it off the async threads.
pub(super) fn owner(path: &Path) -> Option<(String, String)> {
    let file = std::fs::File::open(path).ok()?;
    let tag = id3::Tag::read_from2(std::io::BufReader::new(file)).ok()?;
    let text = |name: &str| {
        tag.extended_texts()
            .find(|t| t.description == name)
            .map(|t| t.value.clone())
    };
    Some((text("batchgen:task_id")?, text("batchgen:clip_id")?))
}

/// A kept image's bytes, read without following a link, at most one more
/// than [`MAX_COVER`] (so a larger one is refused, not read whole).
pub(super) async fn read_kept(path: &Path) -> Result<Vec<u8>, String> {
    use tokio::io::AsyncReadExt;
    let file = crate::util::fsx::open_in_place(path, std::fs::OpenOptions::new().read(true))
        .map(tokio::fs::File::from_std)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut data = Vec::new();
    file.take(MAX_COVER as u64 + 1)
        .read_to_end(&mut data)
        .await
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(data)
}

/// Writes a fetched cover to `path` as a download is: a `.part` (never
/// through a link) synced and renamed.
pub(super) async fn keep(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let part = part_path(path);
    let mut options = std::fs::OpenOptions::new();
    options.create(true).write(true).truncate(true);
    let mut file =
        crate::util::fsx::open_in_place(&part, &mut options).map(tokio::fs::File::from_std)?;
    file.write_all(data).await?;
    file.sync_all().await?;
    tokio::fs::rename(&part, path).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> TagInfo {
        TagInfo {
            title: "Rainy\0 Window\u{7}".into(),
            artist: "The Batch".into(),
            album: "jobs".into(),
            style: "lofi, chill, 80 bpm, soft piano, lofi".into(),
            lyrics: "[Verse]\r\nDrops\0 on the glass\n".into(),
            track: Some(3),
            created_at: "2025-01-01T22:10:31.665Z".into(),
            duration: Some(98.4),
            key: "rainy-window".into(),
            task_id: "t-1".into(),
            clip_id: "c-1".into(),
            clip_index: 2,
            model: "chirp-v4-5".into(),
            cover_source: None,
            cover: Some(Cover::check(b"\x89PNG\r\n\x1a\nrest".to_vec()).unwrap()),
            replaygain: Some(crate::audio::ReplayGain {
                track_gain_db: -3.214,
                track_peak: 0.891,
            }),
        }
    }

    fn extended<'a>(tag: &'a id3::Tag, name: &str) -> Option<&'a str> {
        tag.extended_texts()
            .find(|t| t.description == name)
            .map(|t| t.value.as_str())
    }

    #[test]
    fn every_frame_a_library_shows() {
        let tag = build(&info());
        assert_eq!(tag.title(), Some("Rainy Window"));
        assert_eq!(tag.artist(), Some("The Batch"));
        assert_eq!(tag.album_artist(), Some("The Batch"));
        assert_eq!(tag.album(), Some("jobs"));
        assert_eq!(tag.genres(), Some(vec!["lofi", "chill", "soft piano"]));
        assert_eq!(tag.get("TBPM").and_then(|f| f.content().text()), Some("80"));
        assert_eq!(tag.track(), Some(3));
        assert_eq!(tag.duration(), Some(98_400));
        let at = tag.date_recorded().unwrap();
        assert_eq!(
            (at.year, at.month, at.day, at.hour),
            (2025, Some(1), Some(1), Some(22))
        );
        let words: Vec<&str> = tag.lyrics().map(|l| l.text.as_str()).collect();
        assert_eq!(words, ["[Verse]\nDrops on the glass"]);
        let pictures: Vec<&Picture> = tag.pictures().collect();
        assert_eq!(pictures.len(), 1);
        assert_eq!(pictures[0].mime_type, "image/png");
        assert_eq!(pictures[0].picture_type, PictureType::CoverFront);
        assert_eq!(extended(&tag, "batchgen:key"), Some("rainy-window"));
        assert_eq!(extended(&tag, "batchgen:task_id"), Some("t-1"));
        assert_eq!(extended(&tag, "batchgen:clip_id"), Some("c-1"));
        assert_eq!(extended(&tag, "batchgen:model"), Some("chirp-v4-5"));
        assert_eq!(extended(&tag, "REPLAYGAIN_TRACK_GAIN"), Some("-3.21 dB"));
        assert_eq!(extended(&tag, "REPLAYGAIN_TRACK_PEAK"), Some("0.891000"));
        let comments: Vec<&str> = tag.comments().map(|c| c.text.as_str()).collect();
        assert_eq!(comments, ["batchgen job rainy-window, clip 2"]);
    }

    #[test]
    fn empty_values_write_no_frame() {
        let tag = build(&TagInfo {
            clip_index: 1,
            key: "k".into(),
            created_at: "not a time".into(),
            duration: Some(f64::NAN),
            track: Some(0),
            ..TagInfo::default()
        });
        assert_eq!(tag.title(), None);
        assert_eq!(tag.artist(), None);
        assert_eq!(tag.album(), None);
        assert_eq!(tag.genre(), None);
        assert_eq!(tag.track(), None);
        assert_eq!(tag.date_recorded(), None);
        assert_eq!(tag.duration(), None);
        assert_eq!(tag.lyrics().count(), 0);
        assert_eq!(tag.pictures().count(), 0);
        assert_eq!(tag.extended_texts().count(), 1, "the key only");
    }

    #[test]
    fn hostile_text_is_cleaned_and_capped() {
        let huge = "x\0".repeat(1 << 20);
        let tag = build(&TagInfo {
            title: huge.clone(),
            style: huge.clone(),
            lyrics: huge.clone(),
            key: huge.into(),
            ..TagInfo::default()
        });
        assert_eq!(tag.title().map(|t| t.chars().count()), Some(MAX_LABEL));
        assert!(!tag.title().unwrap().contains('\0'));
        let words = &tag.lyrics().next().unwrap().text;
        assert_eq!(words.chars().count(), MAX_LYRICS);
        assert!(!words.contains('\0'));
        assert_eq!(tag.genres().map(|g| g.len()), Some(1));
    }

    #[test]
    fn covers_are_judged_by_their_bytes() {
        assert_eq!(image_mime(b"\xFF\xD8\xFF\xE0rest"), Some("image/jpeg"));
        assert_eq!(image_mime(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(image_mime(b"<!doctype html>"), None);
        assert_eq!(image_mime(b"RIFF\0\0\0\0WAVE"), None);
        assert!(
            Cover::check(b"<html>".to_vec())
                .unwrap_err()
                .contains("not a PNG")
        );
        assert!(Cover::check(Vec::new()).unwrap_err().contains("empty"));
        let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
        big.resize(MAX_COVER + 1, 0);
        assert!(Cover::check(big).unwrap_err().contains("larger"));
    }
}
