//! The page's data: the catalog's rows grouped into jobs, as JSON the
//! page's script renders, written in chunks so neither batchgen nor the
//! browser holds more than it must.
//!
//! # Chunks
//! Jobs go out [`JOBS_PER_CHUNK`] at a time. A catalog that fits in one
//! chunk is embedded in the page; a larger one is written beside it as
//! `<stem>.catalog-data/<generation>-0000.js`, … each calling
//! `batchgenChunk(n, [...])`, which a `<script src>` loads from `file://`
//! as well as from a web server (a `fetch` of a local file is refused by
//! browsers). The generation (time and process) is new on every write, so
//! a page never mixes its chunks with an older page's; once the new page
//! is in place the older generations are removed.
//!
//! # Escaping
//! Every string here is the server's or the manifest's. The JSON is made
//! safe to sit inside a `<script>` element ([`js_safe`]): `<`, `>` and `&`
//! become `\u003c`, `\u003e`, `\u0026` (no `</script>`, no `<!--`), and
//! U+2028/U+2029 are escaped too (line terminators to older JavaScript).
//! Those characters occur in JSON only inside strings, so the rewrite is a
//! plain byte substitution that keeps the value.
//!
//! # Measured takes
//! A clip whose take was measured carries its numbers (`measured`,
//! `lufs`, `dbtp`), its verdict (`kept` or `rejected`) with the reasons,
//! and `pick` on the take its job's playlist entry is made of. A clip not
//! measured carries none of these keys, so an unmeasured catalog's data
//! is what it would be without them.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::PageError;
use super::paths::{Locator, href, remote};
use crate::api::feed::ClipStatus;
use crate::files::catalog::{Row, Verdict};
use crate::job::JobKey;
use crate::util::fsx;

/// Jobs in one chunk (the page shows 50 at a time: one chunk holds ten
/// pages, about 400 KB).
pub const JOBS_PER_CHUNK: usize = 500;

/// Clips shown under one job entry; a catalog listing more under one key
/// (hand-edited, hostile) continues in the next entry, so no entry grows
/// without bound.
const MAX_CLIPS_PER_ENTRY: usize = 16;

/// One job as the page shows it.
#[derive(Debug, Serialize)]
pub struct Entry {
    pub key: JobKey,
    /// 1, 2, … in catalog (= manifest) order: the "line" sort.
    pub n: u64,
    pub task: String,
    pub clips: Vec<Clip>,
}

/// One clip as the page shows it.
#[derive(Debug, Serialize)]
pub struct Clip {
    pub i: u32,
    pub id: String,
    pub title: String,
    pub style: String,
    pub model: String,
    pub status: String,
    pub dur: Option<f64>,
    /// The downloaded file relative to the page, percent-encoded, or the
    /// server's `http(s)` URL, or nothing.
    pub audio: Option<String>,
    /// Whether `audio` is the downloaded file.
    pub local: bool,
    pub image: Option<String>,
    pub error: String,
    /// The take's length as decoded, seconds; absent until measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured: Option<f64>,
    /// Integrated loudness, LUFS; absent for a silent or unmeasured take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lufs: Option<f64>,
    /// True peak, dBTP; absent for a silent or unmeasured take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dbtp: Option<f64>,
    /// `kept` or `rejected`; absent for a take not judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<&'static str>,
    /// Every rule the take breaks, `; `-separated; absent when none.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reasons: String,
    /// The take picked for its job (one per job, among judged takes);
    /// absent when not.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pick: bool,
}

/// What the counts at the top say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PageCounts {
    pub jobs: u64,
    pub clips: u64,
    pub new: u64,
    pub text: u64,
    pub first: u64,
    pub complete: u64,
    pub failed: u64,
    /// Clips whose MP3 is on disk.
    pub downloaded: u64,
    /// Takes measured and judged `kept`.
    pub kept: u64,
    /// Takes measured and judged `rejected`.
    pub rejected: u64,
    /// Jobs with at least one rejected take: what the `review` filter
    /// shows.
    pub review: u64,
}

/// A row made into a clip, and its downloaded file (relative to the page)
/// when there is one.
pub fn clip(row: &Row, locator: &Locator) -> (Clip, Option<PathBuf>) {
    let file = locator.find(&row.file);
    let image = locator
        .find(&row.image_file)
        .map(|p| href(&p))
        .or_else(|| remote(&row.image_url));
    let status = row.status();
    let verdict = row.verdict();
    let audio = match &file {
        Some(p) => Some(href(p)),
        None if status == ClipStatus::Complete => remote(&row.audio_url),
        None => None,
    };
    let clip = Clip {
        i: row.clip_index,
        id: row.clip_id.clone(),
        title: row.title.clone(),
        style: row.style.clone(),
        model: row.model.clone(),
        status: status.as_str().to_owned(),
        dur: row.duration.filter(|d| d.is_finite() && *d >= 0.0),
        local: file.is_some(),
        audio,
        image,
        error: row.error.clone(),
        measured: row.measured_duration.filter(|d| d.is_finite() && *d >= 0.0),
        lufs: row.loudness.filter(|l| l.is_finite()),
        dbtp: row.true_peak.filter(|p| p.is_finite()),
        verdict: verdict.map(Verdict::as_str),
        reasons: if verdict.is_some() {
            row.reasons.clone()
        } else {
            String::new()
        },
        pick: row.pick && verdict.is_some(),
    };
    (clip, file)
}

impl PageCounts {
    /// Counts one clip (`local`: its MP3 is on disk) of a job, the first
    /// of it when `new_job`.
    pub fn add(&mut self, status: ClipStatus, local: bool, new_job: bool) {
        self.jobs += u64::from(new_job);
        self.clips += 1;
        self.downloaded += u64::from(local);
        match status {
            ClipStatus::New => self.new += 1,
            ClipStatus::Text => self.text += 1,
            ClipStatus::First => self.first += 1,
            ClipStatus::Complete => self.complete += 1,
            ClipStatus::Failed => self.failed += 1,
        }
    }

    /// Counts one take's verdict; `job_in_review`: whether its job is
    /// counted as needing review already. Returns whether it is now.
    pub fn add_verdict(&mut self, verdict: Option<Verdict>, job_in_review: bool) -> bool {
        match verdict {
            Some(Verdict::Kept) => self.kept += 1,
            Some(Verdict::Rejected) => {
                self.rejected += 1;
                self.review += u64::from(!job_in_review);
                return true;
            }
            None => {}
        }
        job_in_review
    }

    /// Whether any take is judged: only then do the page's quality counts
    /// and filters mean anything.
    pub fn judged(&self) -> bool {
        self.kept + self.rejected > 0
    }
}

/// Groups clips into [`Entry`]s (consecutive rows of one key) and hands
/// each finished one to [`Chunks`].
#[derive(Debug, Default)]
pub struct Grouper {
    current: Option<Entry>,
    entries: u64,
}

impl Grouper {
    /// Adds one clip of job `key`; returns whether it starts a new job.
    ///
    /// # Errors
    /// Writing a full chunk failed.
    pub fn add(
        &mut self,
        key: &str,
        task: &str,
        clip: Clip,
        chunks: &mut Chunks,
    ) -> Result<bool, PageError> {
        let same_job = self.current.as_ref().is_some_and(|e| e.key == key);
        let full = self
            .current
            .as_ref()
            .is_some_and(|e| e.clips.len() >= MAX_CLIPS_PER_ENTRY);
        if !same_job || full {
            if let Some(done) = self.current.take() {
                chunks.push(&done)?;
            }
            self.entries += 1;
            self.current = Some(Entry {
                key: key.into(),
                n: self.entries,
                task: task.to_owned(),
                clips: Vec::new(),
            });
        }
        if let Some(entry) = self.current.as_mut() {
            entry.clips.push(clip);
        }
        Ok(!same_job)
    }

    /// Hands over the last entry; returns how many there were.
    ///
    /// # Errors
    /// Writing a full chunk failed.
    pub fn finish(mut self, chunks: &mut Chunks) -> Result<u64, PageError> {
        if let Some(done) = self.current.take() {
            chunks.push(&done)?;
        }
        Ok(self.entries)
    }
}

/// Where the data ended up.
#[derive(Debug)]
pub enum Data {
    /// One chunk: the JSON array, to embed in the page.
    Embedded(Vec<u8>),
    /// This many chunk files of this generation in the data folder.
    Files { generation: String, count: usize },
}

/// The chunk being filled, and the files written so far.
#[derive(Debug)]
pub struct Chunks {
    /// The page's folder and the data folder's name in it.
    home: PathBuf,
    dir_name: String,
    generation: String,
    /// The JSON array being filled (without its brackets).
    current: Vec<u8>,
    in_current: usize,
    written: usize,
}

impl Chunks {
    pub fn new(home: &Path, dir_name: &str) -> Chunks {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Chunks {
            home: home.to_owned(),
            dir_name: dir_name.to_owned(),
            generation: format!("{nanos:x}{:x}", std::process::id()),
            current: Vec::new(),
            in_current: 0,
            written: 0,
        }
    }

    fn push(&mut self, entry: &Entry) -> Result<(), PageError> {
        if self.in_current == JOBS_PER_CHUNK {
            self.spill()?;
        }
        if self.in_current > 0 {
            self.current.push(b',');
        }
        let json = serde_json::to_vec(entry).map_err(|e| PageError::Encode(e.to_string()))?;
        js_safe(&json, &mut self.current);
        self.in_current += 1;
        Ok(())
    }

    /// Writes the chunk being filled as the next file, new (never through a
    /// planted link), in a data folder that must be a real folder.
    fn spill(&mut self) -> Result<(), PageError> {
        let name = chunk_name(&self.generation, self.written);
        let relative = Path::new(&self.dir_name).join(&name);
        let path = self.home.join(&relative);
        let write_error = |source| PageError::Write {
            path: path.clone(),
            source,
        };
        fsx::create_dirs_inside(&self.home, &relative).map_err(write_error)?;
        let mut file = fsx::create_new(&path).map_err(write_error)?;
        let mut text = format!("batchgenChunk({}, [", self.written).into_bytes();
        text.extend_from_slice(&self.current);
        text.extend_from_slice(b"]);\n");
        file.write_all(&text).map_err(write_error)?;
        self.written += 1;
        self.current.clear();
        self.in_current = 0;
        Ok(())
    }

    /// The last chunk: embedded when it is the only one, else written.
    ///
    /// # Errors
    /// Writing it failed.
    pub fn finish(mut self) -> Result<Data, PageError> {
        if self.written == 0 {
            let mut array = b"[".to_vec();
            array.extend_from_slice(&self.current);
            array.push(b']');
            return Ok(Data::Embedded(array));
        }
        if self.in_current > 0 {
            self.spill()?;
        }
        Ok(Data::Files {
            generation: self.generation,
            count: self.written,
        })
    }
}

/// A chunk file's name; the page's script builds the same.
pub fn chunk_name(generation: &str, index: usize) -> String {
    format!("{generation}-{index:04}.js")
}

/// Removes the chunk files of other generations from the data folder
/// (`keep` is the one the page now names, if any); best effort: a file
/// left behind is removed by the next write.
pub fn remove_old_chunks(dir: &Path, keep: Option<&str>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((generation, rest)) = name.split_once('-') else {
            continue;
        };
        let ours = generation.bytes().all(|b| b.is_ascii_hexdigit())
            && rest
                .strip_suffix(".js")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        let regular = entry.file_type().is_ok_and(|t| t.is_file());
        if ours && regular && Some(generation) != keep {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Appends `json` to `out` with `<`, `>`, `&`, U+2028 and U+2029 escaped
/// (see the module docs): safe inside a `<script>` element.
pub fn js_safe(json: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'<' => out.extend_from_slice(b"\\u003c"),
            b'>' => out.extend_from_slice(b"\\u003e"),
            b'&' => out.extend_from_slice(b"\\u0026"),
            0xE2 if json.get(i + 1) == Some(&0x80)
                && matches!(json.get(i + 2), Some(0xA8 | 0xA9)) =>
            {
                out.extend_from_slice(if json[i + 2] == 0xA8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn safe(value: &serde_json::Value) -> String {
        let mut out = Vec::new();
        js_safe(&serde_json::to_vec(value).unwrap(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_in_a_script_cannot_close_it_and_keeps_its_value() {
        let hostile = "</script><script>alert(1)</script><!-- a & b \u{2028}\u{2029} ü";
        let value = serde_json::json!({ "title": hostile, "k": ["<", ">"] });
        let text = safe(&value);
        for bad in ["<", ">", "&", "\u{2028}", "\u{2029}"] {
            assert!(!text.contains(bad), "{bad:?} in {text}");
        }
        assert!(text.contains("\\u003c/script\\u003e"), "{text}");
        assert!(text.contains("\\u2028\\u2029 ü"), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }

    fn locator() -> (tempfile::TempDir, Locator) {
        let dir = tempfile::tempdir().unwrap();
        let home = std::fs::canonicalize(dir.path()).unwrap();
        (dir, Locator::new(home))
    }

    fn take(index: u32, verdict: &str, reasons: &str, pick: bool) -> Row {
        Row {
            key: "k".into(),
            task_id: "t".into(),
            clip_index: index,
            clip_id: format!("c{index}"),
            status: "complete".into(),
            duration: Some(61.0),
            measured_duration: Some(12.04),
            loudness: Some(-14.25),
            true_peak: Some(-1.0),
            verdict: verdict.into(),
            reasons: reasons.into(),
            pick,
            ..Row::default()
        }
    }

    #[test]
    fn a_judged_clip_carries_its_numbers_verdict_reasons_and_pick() {
        let (_dir, locator) = locator();
        let why = "too short: 12.0 s (at least 30.0 s); <b>14.2 s</b> of silence at the end";
        let (rejected, _) = clip(&take(1, "rejected", why, false), &locator);
        let json: serde_json::Value = serde_json::to_value(&rejected).unwrap();
        assert_eq!(json["measured"], 12.04);
        assert_eq!(json["lufs"], -14.25);
        assert_eq!(json["dbtp"], -1.0);
        assert_eq!(json["verdict"], "rejected");
        assert_eq!(json["reasons"], why);
        assert!(json.get("pick").is_none(), "not the pick: no key");
        // The reasons are server-rule text in the page: made script-safe.
        let text = safe(&json);
        assert!(
            text.contains(r"\u003cb\u003e14.2 s\u003c/b\u003e"),
            "{text}"
        );

        let (kept, _) = clip(&take(2, "kept", "", true), &locator);
        let json = serde_json::to_value(&kept).unwrap();
        assert_eq!(
            (&json["verdict"], &json["pick"]),
            (&"kept".into(), &true.into())
        );
        assert!(json.get("reasons").is_none(), "a kept take breaks no rule");
    }

    #[test]
    fn an_unmeasured_clip_has_no_quality_keys_and_a_pick_needs_a_verdict() {
        let (_dir, locator) = locator();
        let plain = Row {
            measured_duration: None,
            loudness: None,
            true_peak: None,
            ..take(1, "", "stale words", true)
        };
        let (c, _) = clip(&plain, &locator);
        let json = serde_json::to_value(&c).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for absent in ["measured", "lufs", "dbtp", "verdict", "reasons", "pick"] {
            assert!(!keys.contains(&absent), "{absent} in {keys:?}");
        }
        let mut expected = [
            "i", "id", "title", "style", "model", "status", "dur", "audio", "local", "image",
            "error",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected, "the keys of a clip before measuring");
        // Non-finite numbers are not numbers to show.
        let odd = Row {
            loudness: Some(f64::NEG_INFINITY),
            measured_duration: Some(f64::NAN),
            ..take(1, "kept", "", false)
        };
        let (c, _) = clip(&odd, &locator);
        assert_eq!((c.lufs, c.measured, c.dbtp), (None, None, Some(-1.0)));
    }

    #[test]
    fn counts_add_kept_rejected_and_each_job_to_review_once() {
        let mut counts = PageCounts::default();
        assert!(!counts.judged());
        let jobs: [&[Option<Verdict>]; 4] = [
            &[Some(Verdict::Rejected), Some(Verdict::Rejected)],
            &[Some(Verdict::Kept), Some(Verdict::Rejected)],
            &[Some(Verdict::Kept), Some(Verdict::Kept)],
            &[None, None],
        ];
        for takes in jobs {
            let mut in_review = false;
            for &verdict in takes {
                in_review = counts.add_verdict(verdict, in_review);
            }
        }
        assert_eq!((counts.kept, counts.rejected, counts.review), (3, 3, 2));
        assert!(counts.judged());
    }

    #[test]
    fn only_our_chunk_files_of_other_generations_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "abc1-0000.js",
            "abc1-0001.js",
            "ff-0000.js",
            "notes.txt",
            "my-file.js",
            "ff-x.js",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        remove_old_chunks(dir.path(), Some("ff"));
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["ff-0000.js", "ff-x.js", "my-file.js", "notes.txt"]);
    }
}
