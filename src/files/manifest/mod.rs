//! Manifests: reading a TOML or CSV file into validated [`Job`]s, with every
//! problem reported as `FILE:LINE: field: message`.
//!
//! This module owns the file formats and the line numbers; the rules a job
//! must pass live in [`crate::job`] and are only applied here. Loading is
//! all-or-nothing: one bad row fails the whole manifest (exit 65) so a run
//! never sends half a batch, and the error lists every problem at once so a
//! user fixes the file in one pass rather than one error per attempt.
//!
//! Line numbers point at where a row starts: the CSV record's first line, or
//! the `[[job]]` header of a TOML table. Problems with a key outside the job
//! tables (`[run]`, `[defaults]`, top-level keys) point at the key itself.
//!
//! A row with a value that could not be read (wrong TOML type, bad boolean,
//! unknown key) is still checked against the API's rules, minus the problems
//! that could only be echoes of the unread value (see `Rows::row`). A ragged
//! CSV record is reported and skipped: its cells cannot be matched to columns.

mod first_pass;
mod from_csv;
mod from_toml;
mod jobs;
mod open;
mod rows;
mod toml_values;
mod tracker;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::job::{Field, Job, Mode, Rules};
use crate::settings::RunSettings;

pub use jobs::Jobs;
use jobs::Source;
use open::read;
use rows::{Counts, Rows};

/// A loaded, fully validated manifest. CSV rows are not held in memory:
/// [`Manifest::jobs`] reads them again, so the size of a manifest costs
/// disk, not memory.
#[derive(Debug)]
pub struct Manifest {
    /// The manifest file given on the command line.
    pub path: PathBuf,
    /// The file the rows come from: `path`, or the CSV a TOML manifest names.
    pub rows_path: PathBuf,
    /// The `[run]` table (all unset for CSV manifests).
    pub settings: RunSettings,
    /// Counts by mode and model, gathered while validating.
    pub summary: Summary,
    /// The rules every row passed: the models the caller's rules know plus
    /// those `[run] extra_models` adds.
    pub rules: Rules,
    /// The quality rules of the jobs that set their own (`min_duration`,
    /// `max_duration`), by key; over the run's `[quality]` for those jobs.
    pub job_quality: BTreeMap<String, crate::settings::quality::QualitySettings>,
    /// Every job's key, line and fingerprint, in order (see
    /// [`JobsDigest`](crate::job::JobsDigest)).
    digest: [u8; 32],
    source: Source,
}

/// What a manifest holds, counted during validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub jobs: u64,
    pub modes: Counts<Mode>,
    /// Jobs by the model they name; `""` for those naming none.
    pub models: Counts<String>,
    /// The line of the first job naming each model.
    pub first_lines: BTreeMap<String, u64>,
}

impl Manifest {
    /// Number of jobs.
    pub fn len(&self) -> usize {
        usize::try_from(self.summary.jobs).unwrap_or(usize::MAX)
    }

    pub fn is_empty(&self) -> bool {
        self.summary.jobs == 0
    }

    /// The jobs in manifest order, one at a time. CSV rows are read from
    /// disk again and checked again: an error means the file changed since
    /// it was validated.
    ///
    /// # Errors
    /// When the rows' file can no longer be opened.
    pub fn jobs(&self) -> Result<Jobs, ManifestError> {
        Jobs::new(&self.source)
    }

    /// The [`JobsDigest`](crate::job::JobsDigest) of the jobs, taken while validating: a results
    /// file whose rows give the same digest is one row per job, in order,
    /// with the content validated.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// Warnings about the jobs that validation does not refuse: a model
    /// the provider takes but no longer lists (it is sent; the host may
    /// refuse it). One line per model, at its first job.
    pub fn warnings(&self) -> Vec<String> {
        let provider = self.rules.provider();
        self.summary
            .models
            .iter()
            .filter(|(model, _)| !model.is_empty() && self.rules.unlisted(Some(model)))
            .map(|(model, n)| {
                let line = self.summary.first_lines.get(model).copied().unwrap_or(0);
                let jobs = if *n == 1 { "1 job" } else { &format!("{n} jobs") };
                format!(
                    "{}:{line}: model: {model:?} ({jobs}) is not listed by {provider} now: it is sent, and the host may refuse it (`batchgen models --provider {provider}` shows what it lists)",
                    self.rows_path.display()
                )
            })
            .collect()
    }

    /// What a job naming no model is sent as, for summaries: the
    /// provider's default, or `None` when the host chooses.
    pub fn unset_model(&self) -> Option<&str> {
        self.rules.sent_model(None)
    }

    /// Every job in memory: for small manifests and tests (`tests/it/manifest/`,
    /// `tests/it/operator.rs`, the bench).
    ///
    /// # Errors
    /// As [`Manifest::jobs`].
    pub fn collect_jobs(&self) -> Result<Vec<Job>, ManifestError> {
        self.jobs()?.collect()
    }
}

/// One problem in a manifest, printed as `FILE:LINE: field: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line; 0 when the problem is with the file as a whole (e.g. its
    /// extension), which prints as `FILE: message`.
    pub line: u64,
    /// The job field, column, or setting the problem is about, if any.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file.display())?;
        if self.line > 0 {
            write!(f, "{}:", self.line)?;
        }
        if let Some(field) = &self.field {
            write!(f, " {}:", printable(field))?;
        }
        // A message may quote the file's text (an unknown model, a bad
        // boolean): bounded here whatever it quotes.
        match self.message.char_indices().nth(MAX_MESSAGE_SHOWN) {
            Some((cut, _)) => write!(f, " {}…", &self.message[..cut]),
            None => write!(f, " {}", self.message),
        }
    }
}

/// Longest message shown in full: every message batchgen writes is
/// shorter; one quoting a huge cell is cut.
const MAX_MESSAGE_SHOWN: usize = 500;

/// Longest piece of a file's text a diagnostic shows ([`quoted`]).
pub const MAX_TEXT_SHOWN: usize = 60;

/// Text from a file as a diagnostic shows it: in double quotes, with
/// control characters, quotes and backslashes escaped, and at most
/// [`MAX_TEXT_SHOWN`] characters, then `…`. A cell can hold anything (a
/// file named as a manifest by mistake, a secret, megabytes), and a
/// diagnostic is one short line that must not repeat it.
pub fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars().take(MAX_TEXT_SHOWN) {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    if text.chars().nth(MAX_TEXT_SHOWN).is_some() {
        out.push('…');
    }
    out.push('"');
    out
}

/// A field or column name as one short line: a plain name (letters,
/// digits, `_`, `-`, `.`) as it is, anything else [`quoted`]: a hostile
/// header cell can hold a quoted newline or megabytes of text, and a
/// diagnostic is one line.
fn printable(name: &str) -> String {
    let plain = !name.is_empty()
        && name.len() <= MAX_TEXT_SHOWN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if plain { name.to_owned() } else { quoted(name) }
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Never empty. Displays every diagnostic, one per line, then a summary.
    #[error("{}", summarize(diagnostics))]
    Invalid { diagnostics: Vec<Diagnostic> },
}

/// Most diagnostics printed; the rest are counted. A file of 100,000 copies
/// of one row would otherwise print 100,000 lines nobody reads. Public for
/// `tests/it/hostile/manifests.rs`, which checks the cut.
pub const MAX_SHOWN: usize = 1000;

/// The first [`MAX_SHOWN`] diagnostics, then `... and N more`, then
/// `FILE: 3 problems in 2 rows; nothing was sent`, so the last line of a long
/// list still says what happened.
fn summarize(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics.iter().take(MAX_SHOWN) {
        out.push_str(&d.to_string());
        out.push('\n');
    }
    if let Some(more) = diagnostics.len().checked_sub(MAX_SHOWN).filter(|&n| n > 0) {
        out.push_str(&format!("... and {more} more\n"));
    }
    let Some(first) = diagnostics.first() else {
        return "invalid manifest; nothing was sent".into();
    };
    let rows: BTreeSet<_> = diagnostics
        .iter()
        .filter(|d| d.line > 0)
        .map(|d| (&d.file, d.line))
        .collect();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    out.push_str(&format!(
        "{}: {}",
        first.file.display(),
        plural(diagnostics.len(), "problem")
    ));
    if !rows.is_empty() {
        out.push_str(&format!(" in {}", plural(rows.len(), "row")));
    }
    out.push_str("; nothing was sent");
    out
}

/// Loads and validates a manifest with the documented models only; see
/// [`load_with`].
///
/// # Errors
/// As [`load_with`].
pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
    load_with(path, &Rules::default())
}

/// Loads and validates a manifest; the format follows the extension. Rows
/// may name the models `rules` knows (those `--extra-model` adds) and those
/// the manifest's own `[run] extra_models` adds.
///
/// # Errors
/// [`ManifestError::Unreadable`] when the file (or the CSV a TOML manifest
/// names) cannot be read; [`ManifestError::Invalid`] with every problem found
/// otherwise.
pub fn load_with(path: &Path, rules: &Rules) -> Result<Manifest, ManifestError> {
    let mut rows = Rows::default();
    rows.rules = rules.clone();
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let (settings, rows_path) = match extension.as_deref() {
        Some("toml") => {
            rows.keep_jobs = true;
            from_toml::read(path, &read(path)?, &mut rows)?
        }
        Some("csv") => {
            first_pass::read_csv(&mut rows, path)?;
            (RunSettings::default(), path.to_path_buf())
        }
        _ => {
            read(path)?;
            rows.problem(
                path,
                0,
                None,
                "unknown manifest type: batchgen reads .toml and .csv files",
            );
            (RunSettings::default(), path.to_path_buf())
        }
    };
    finish(rows, path, rows_path, settings)
}

fn finish(
    mut rows: Rows,
    path: &Path,
    rows_path: PathBuf,
    settings: RunSettings,
) -> Result<Manifest, ManifestError> {
    if rows.diagnostics.is_empty() {
        let source = if rows.keep_jobs && rows_path == path {
            Source::Inline(std::mem::take(&mut rows.jobs).into())
        } else {
            Source::Csv {
                path: rows_path.clone(),
                defaults: Box::new(rows.defaults),
                rules: rows.rules.clone(),
            }
        };
        return Ok(Manifest {
            path: path.to_path_buf(),
            rows_path,
            settings,
            summary: rows.summary,
            rules: rows.rules,
            job_quality: rows.job_quality,
            digest: rows.digest.finish(),
            source,
        });
    }
    // The manifest's own problems first, then its CSV's; by line within a
    // file. Stable, so problems on one line keep the order found.
    rows.diagnostics
        .sort_by_key(|d| (d.file.as_path() != path, d.line));
    Err(ManifestError::Invalid {
        diagnostics: rows.diagnostics,
    })
}

/// Line of a byte offset, for formats whose parser reports byte spans.
struct LineIndex {
    /// Byte offsets of every `\n`.
    newlines: Vec<usize>,
}

impl LineIndex {
    fn new(text: &[u8]) -> LineIndex {
        let newlines = text
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'\n')
            .map(|(i, _)| i)
            .collect();
        LineIndex { newlines }
    }

    /// 1-based line holding byte `offset`.
    fn line(&self, offset: usize) -> u64 {
        self.newlines.partition_point(|&nl| nl < offset) as u64 + 1
    }
}

/// Longest name worth checking for a typo. Every known name is under 30
/// characters and a typo is at most a quarter of it off, so a longer name
/// cannot match; the edit distance is O(length), and a hostile megabyte-long
/// header cell would otherwise take minutes.
const MAX_TYPO_LEN: usize = 64;

/// The closest of `known` to `unknown`, if close enough to be a typo.
fn closest<'a>(unknown: &str, known: &[&'a str]) -> Option<&'a str> {
    if unknown.len() > MAX_TYPO_LEN {
        return None;
    }
    let lower = unknown.trim().to_ascii_lowercase().replace(['-', ' '], "_");
    known
        .iter()
        .map(|k| (*k, strsim::damerau_levenshtein(&lower, k)))
        .filter(|&(k, d)| d <= 2.max(k.len() / 4))
        .min_by_key(|&(_, d)| d)
        .map(|(k, _)| k)
}

/// [`Field::suggest`], skipping names too long to be a typo (see
/// [`MAX_TYPO_LEN`]).
fn suggest_field(unknown: &str) -> Option<Field> {
    (unknown.len() <= MAX_TYPO_LEN)
        .then(|| Field::suggest(unknown))
        .flatten()
}

/// `; did you mean "x"?`, or nothing when no name is close.
fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion
        .map(|s| format!("; did you mean {s:?}?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based() {
        let idx = LineIndex::new(b"a\nbb\n\nc");
        assert_eq!(idx.line(0), 1);
        assert_eq!(idx.line(1), 1, "the newline belongs to its line");
        assert_eq!(idx.line(2), 2);
        assert_eq!(idx.line(6), 4);
    }

    #[test]
    fn diagnostics_display() {
        let d = Diagnostic {
            file: "jobs.toml".into(),
            line: 12,
            field: Some("promt".into()),
            message: "unknown field".into(),
        };
        assert_eq!(d.to_string(), "jobs.toml:12: promt: unknown field");
        let whole = Diagnostic {
            line: 0,
            field: None,
            ..d
        };
        assert_eq!(whole.to_string(), "jobs.toml: unknown field");
    }

    #[test]
    fn typo_suggestions() {
        assert_eq!(
            closest("concurency", &["rate", "concurrency"]),
            Some("concurrency")
        );
        assert_eq!(closest("zzzz", &["rate"]), None);
    }
}
