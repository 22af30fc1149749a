//! TOML manifests: `[run]` settings, `[quality]` rules, `[defaults]`, and `[[job]]` tables or a
//! `csv = "..."` file of rows.
//!
//! The document is parsed by the `toml` crate into its spanned tree
//! ([`DeTable`]) and walked by hand rather than deserialized with serde: serde
//! stops at the first unknown key or wrong type, and a manifest must report
//! all of them, each with its line.

use std::num::NonZeroU32;
use std::path::{Component, Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::toml_values::{Value, describe, integer_in, model_names, string, timeout, typed};
use super::{LineIndex, ManifestError, Rows, closest, did_you_mean, suggest_field};
use crate::job::{Field, JobFields, Provider};
use crate::settings::quality::{self, QualitySettings, Written};
use crate::settings::{self, RunSettings};
use crate::util::units::Rate;

const TOP_LEVEL: &[&str] = &["csv", "run", "quality", "defaults", "job"];
const RUN_KEYS: &[&str] = &[
    "base_url",
    "rate",
    "burst",
    "concurrency",
    "max_attempts",
    "timeout",
    "results",
    "generate_path",
    "callback_generate_path",
    "extra_models",
    "models",
    "provider",
    "artist",
    "album",
    "budget",
    "credits_per_job",
    "regenerate",
];

/// Reads the manifest `path` (contents `bytes`) into `rows`; returns its
/// `[run]` settings and the file its rows come from.
///
/// # Errors
/// [`ManifestError::Unreadable`] when the CSV it names cannot be read.
pub(super) fn read(
    path: &Path,
    bytes: &[u8],
    rows: &mut Rows,
) -> Result<(RunSettings, PathBuf), ManifestError> {
    let nothing = || (RunSettings::default(), path.to_path_buf());
    let lines = LineIndex::new(bytes);
    let Some(text) = utf8(path, bytes, &lines, rows) else {
        return Ok(nothing());
    };
    // A BOM has no newline in it, so byte offsets past it keep their lines.
    let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let doc = match DeTable::parse(&text[bom..]) {
        Ok(doc) => doc,
        Err(e) => {
            let line = lines.line(e.span().map_or(0, |s| s.start + bom));
            let message: Vec<_> = e.message().lines().map(str::trim).collect();
            let msg = format!("invalid TOML: {}", message.join(" "));
            rows.problem(path, line, None, msg);
            return Ok(nothing());
        }
    };
    let toml = Toml { path, lines, bom };
    // Joined as it is, so a name the user gave stays spelt their way in
    // every message (`prompts.csv`, not `./prompts.csv`); the folder check
    // resolves it on its own ([`super::open::inside_folder`]).
    let dir = path.parent().unwrap_or(Path::new(""));

    let (mut csv, mut run, mut defaults, mut jobs) = (None, None, None, None);
    let mut quality = None;
    for (key, value) in doc.get_ref() {
        match key.get_ref().as_ref() {
            "csv" => csv = Some((key, value)),
            "run" => run = Some((key, value)),
            "quality" => quality = Some((key, value)),
            "defaults" => defaults = Some((key, value)),
            "job" => jobs = Some((key, value)),
            other => toml.unknown_top_level(other, key, rows),
        }
    }

    let mut settings = match run {
        Some((key, value)) => toml.run_table(key, value, dir, rows),
        None => RunSettings::default(),
    };
    if let Some((key, value)) = quality {
        settings.quality = toml.quality_table(key, value, rows);
    }
    if let Some((key, value)) = defaults {
        toml.defaults(key, value, rows);
    }
    if let Some((key, value)) = jobs {
        toml.jobs(key, value, rows);
    }
    let rows_path = match csv {
        Some((key, value)) => toml.csv_rows(key, value, jobs.is_some(), dir, rows)?,
        None => None,
    };
    Ok((settings, rows_path.unwrap_or_else(|| path.to_path_buf())))
}

/// The manifest's text, when it is UTF-8; otherwise the diagnostic naming
/// the first bad byte.
fn utf8<'a>(path: &Path, bytes: &'a [u8], lines: &LineIndex, rows: &mut Rows) -> Option<&'a str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Some(text),
        Err(e) => {
            let at = e.valid_up_to();
            let msg = format!(
                "not valid UTF-8 (byte 0x{:02x}); save the file as UTF-8",
                bytes[at]
            );
            rows.problem(path, lines.line(at), None, msg);
            None
        }
    }
}

/// `csv = "..."` must name a file inside the manifest's folder, so a
/// manifest shared with others cannot read files elsewhere on their machine.
fn csv_path(raw: &str) -> Result<&Path, String> {
    let path = Path::new(raw);
    if raw.trim().is_empty() {
        return Err("is empty; name the CSV file, relative to this manifest's folder".into());
    }
    if path.is_absolute() || path.has_root() {
        return Err(format!(
            "{raw:?} is an absolute path; give a path relative to this manifest's folder"
        ));
    }
    if path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)))
    {
        return Err(format!(
            "{raw:?} leaves this manifest's folder; the CSV must be in it or below it"
        ));
    }
    // Reading a TOML file (this one, say) as CSV would only produce puzzling
    // "unknown column" errors about its first line.
    if !path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    {
        return Err(format!("{raw:?} is not a .csv file; name the CSV of rows"));
    }
    Ok(path)
}

/// The manifest being walked: what every diagnostic needs.
struct Toml<'a> {
    path: &'a Path,
    lines: LineIndex,
    /// Bytes stripped from the front before parsing (a BOM).
    bom: usize,
}

impl Toml<'_> {
    fn line<T>(&self, spanned: &Spanned<T>) -> u64 {
        self.lines.line(spanned.span().start + self.bom)
    }

    fn unknown_top_level(&self, name: &str, key: &Spanned<impl Sized>, rows: &mut Rows) {
        let msg = if Field::from_name(name).is_some() {
            "is a job field: put it in a [[job]] table, or in [defaults] for every job".into()
        } else {
            format!("unknown key{}", did_you_mean(closest(name, TOP_LEVEL)))
        };
        rows.problem(self.path, self.line(key), Some(name), msg);
    }

    /// The rows of `csv = "..."`, read and validated into `rows`: the CSV's
    /// path, or `None` (with the problem in `rows`) when the key is wrong,
    /// comes with `[[job]]` tables, or names a file outside the folder.
    ///
    /// # Errors
    /// [`ManifestError::Unreadable`] when the CSV cannot be read.
    fn csv_rows(
        &self,
        key: &Spanned<impl Sized>,
        value: &Value<'_>,
        with_jobs: bool,
        dir: &Path,
        rows: &mut Rows,
    ) -> Result<Option<PathBuf>, ManifestError> {
        let line = self.line(key);
        let relative = match value.get_ref() {
            DeValue::String(s) => csv_path(s),
            other => Err(format!("expected a string, found {}", describe(other))),
        };
        let relative = match relative {
            Ok(relative) if !with_jobs => relative,
            Ok(_) => {
                let msg = "cannot be used with [[job]] tables: rows come from one or the other";
                rows.problem(self.path, line, Some("csv"), msg);
                return Ok(None);
            }
            Err(msg) => {
                rows.problem(self.path, line, Some("csv"), msg);
                return Ok(None);
            }
        };
        let rows_path = dir.join(relative);
        if let Err(msg) = super::open::inside_folder(self.path, relative) {
            rows.problem(self.path, line, Some("csv"), msg);
            return Ok(None);
        }
        rows.keep_jobs = false;
        super::first_pass::read_csv(rows, &rows_path)?;
        Ok(Some(rows_path))
    }

    /// Reads the `[run]` table into settings (its `extra_models` into the
    /// rules the rows are checked with).
    fn run_table(
        &self,
        key: &Spanned<impl Sized>,
        value: &Value<'_>,
        dir: &Path,
        rows: &mut Rows,
    ) -> RunSettings {
        let mut settings = RunSettings::default();
        let DeValue::Table(table) = value.get_ref() else {
            let msg = format!(
                "expected a [run] table, found {}",
                describe(value.get_ref())
            );
            rows.problem(self.path, self.line(key), Some("run"), msg);
            return settings;
        };
        for (key, value) in table {
            let name = key.get_ref().as_ref();
            let result = match name {
                "base_url" => string(value).and_then(|s| {
                    settings::parse_base_url(s).map_err(|e| e.to_string())?;
                    settings.base_url = Some(s.to_owned());
                    Ok(())
                }),
                "rate" => string(value).and_then(|s| {
                    settings.rate = Some(s.parse::<Rate>()?);
                    Ok(())
                }),
                "burst" => integer_in(value, 1, i64::from(u32::MAX)).map(|n| {
                    settings.burst = u32::try_from(n).ok().and_then(NonZeroU32::new);
                }),
                "concurrency" => integer_in(value, 1, 1024).map(|n| {
                    settings.concurrency = usize::try_from(n).ok();
                }),
                "max_attempts" => integer_in(value, 1, 100).map(|n| {
                    settings.max_attempts = u32::try_from(n).ok();
                }),
                "timeout" => timeout(value).map(|t| settings.timeout = Some(t)),
                "results" => string(value).and_then(|s| {
                    if s.trim().is_empty() {
                        return Err("is empty; name the results file".into());
                    }
                    settings.results = Some(dir.join(s));
                    Ok(())
                }),
                "generate_path" => string(value).and_then(|s| {
                    settings.generate_path =
                        Some(settings::parse_api_path(s).map_err(|e| e.to_string())?);
                    Ok(())
                }),
                "callback_generate_path" => string(value).and_then(|s| {
                    settings.callback_generate_path =
                        Some(settings::parse_api_path(s).map_err(|e| e.to_string())?);
                    Ok(())
                }),
                // Into the rules the rows below are checked with: [run]
                // comes before [defaults] and the jobs (see `read`).
                "extra_models" => model_names(value)
                    .and_then(|names| names.iter().try_for_each(|name| rows.rules.add_model(name))),
                // A models file, relative to the manifest, under any
                // --models / BATCHGEN_MODELS.
                "models" => string(value).and_then(|s| {
                    let path = self.path.parent().unwrap_or(Path::new("")).join(s);
                    rows.rules
                        .manifest_models_file(&path)
                        .map_err(|e| format!("cannot use the models file: {e}"))
                }),
                // Into the rules too (unless --provider or BATCHGEN_PROVIDER
                // chose one), and into the settings for the wire.
                "provider" => string(value).and_then(|s| {
                    let provider = Provider::parse(s)?;
                    rows.rules.provider_from_manifest(provider);
                    settings.provider = Some(provider);
                    Ok(())
                }),
                // The MP3 tags' artist and album (`--wait --download`).
                "budget" => credits(value).map(|c| settings.budget = Some(c)),
                "regenerate" => {
                    integer_in(value, 0, i64::from(settings::MAX_REGENERATE)).map(|n| {
                        settings.regenerate = u32::try_from(n).ok();
                    })
                }
                "credits_per_job" => credits(value).map(|c| settings.credits_per_job = Some(c)),
                "artist" => tag_label(value).map(|s| settings.artist = Some(s)),
                "album" => tag_label(value).map(|s| settings.album = Some(s)),
                _ => Err(match closest(name, RUN_KEYS) {
                    Some(meant) => format!("unknown setting{}", did_you_mean(Some(meant))),
                    None => format!("unknown setting; [run] takes {}", RUN_KEYS.join(", ")),
                }),
            };
            if let Err(msg) = result {
                rows.problem(self.path, self.line(key), Some(name), msg);
            }
        }
        settings
    }

    /// Reads the `[quality]` table: the gate's rules, each checked here so
    /// a bad one is a problem on its line before anything is sent.
    fn quality_table(
        &self,
        key: &Spanned<impl Sized>,
        value: &Value<'_>,
        rows: &mut Rows,
    ) -> QualitySettings {
        let mut quality = QualitySettings::default();
        let DeValue::Table(table) = value.get_ref() else {
            let found = describe(value.get_ref());
            let msg = format!("expected a [quality] table, found {found}");
            rows.problem(self.path, self.line(key), Some("quality"), msg);
            return quality;
        };
        for (key, value) in table {
            let name = key.get_ref().as_ref();
            let written = match value.get_ref() {
                DeValue::String(s) => Ok(Written::Text(s.as_ref())),
                DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
                    .map(|n| Written::Number(n as f64))
                    .map_err(|_| format!("{i} is out of range")),
                DeValue::Float(f) => f
                    .as_str()
                    .replace('_', "")
                    .parse::<f64>()
                    .map(Written::Number)
                    .map_err(|_| format!("{f} is not a number")),
                other => Err(format!(
                    "expected a string or a number, found {}",
                    describe(other)
                )),
            };
            let result = written.and_then(|w| match quality.set(name, w) {
                Err(_) if !quality::KEYS.contains(&name) => {
                    Err(match closest(name, quality::KEYS) {
                        Some(meant) => format!("unknown rule{}", did_you_mean(Some(meant))),
                        None => {
                            format!("unknown rule; [quality] takes {}", quality::KEYS.join(", "))
                        }
                    })
                }
                other => other,
            });
            if let Err(msg) = result {
                rows.problem(self.path, self.line(key), Some(name), msg);
            }
        }
        quality
    }

    /// Reads `[defaults]` into `rows`, which applies them to every row.
    fn defaults(&self, key: &Spanned<impl Sized>, value: &Value<'_>, rows: &mut Rows) {
        let DeValue::Table(table) = value.get_ref() else {
            let found = describe(value.get_ref());
            let msg = format!("expected a [defaults] table, found {found}");
            rows.problem(self.path, self.line(key), Some("defaults"), msg);
            rows.defaults_unread = Field::ALL.to_vec();
            return;
        };
        (rows.defaults, rows.defaults_unread) = self.fields(table, None, rows);
    }

    fn jobs(&self, key: &Spanned<impl Sized>, value: &Value<'_>, rows: &mut Rows) {
        let array = match value.get_ref() {
            DeValue::Array(array) => array,
            DeValue::Table(_) => {
                let msg =
                    "found a single [job] table: write [[job]], with two brackets, above each job";
                rows.problem(self.path, self.line(value), Some("job"), msg);
                return;
            }
            other => {
                let msg = format!(
                    "expected [[job]] tables, found {}; write each job under a [[job]] header",
                    describe(other)
                );
                rows.problem(self.path, self.line(key), Some("job"), msg);
                return;
            }
        };
        for element in array.iter() {
            let line = self.line(element);
            let DeValue::Table(table) = element.get_ref() else {
                let msg = format!(
                    "each job must be a table, found {}",
                    describe(element.get_ref())
                );
                rows.problem(self.path, line, Some("job"), msg);
                continue;
            };
            let (fields, unread) = self.fields(table, Some(line), rows);
            rows.row(self.path, line, fields, unread);
        }
    }

    /// Reads a job table (`header` = the line of its `[[job]]`, where its
    /// problems are reported) or `[defaults]` (`None`: problems at the key).
    /// Also returns the fields that may be meant but could not be read: one
    /// with the wrong type, or the one an unknown key looks like a typo of
    /// (all of them when there is no telling).
    fn fields(
        &self,
        table: &DeTable<'_>,
        header: Option<u64>,
        rows: &mut Rows,
    ) -> (JobFields, Vec<Field>) {
        let mut fields = JobFields::default();
        let mut unread = Vec::new();
        for (key, value) in table {
            let name = key.get_ref().as_ref();
            let line = header.unwrap_or_else(|| self.line(key));
            let problem = match (Field::from_name(name), value.get_ref()) {
                (None, _) => Some(format!(
                    "unknown field{}",
                    did_you_mean(suggest_field(name).map(Field::name))
                )),
                (Some(Field::Id), _) if header.is_none() => {
                    Some("cannot have a default: every job's id must be its own".into())
                }
                (Some(Field::MinDuration | Field::MaxDuration), _) if header.is_none() => {
                    Some(format!(
                        "a rule for every job goes in [quality] ({name} = ...); a job sets its own in its [[job]] table or CSV row"
                    ))
                }
                (Some(field), value) => match typed(field, value) {
                    Ok(value) => {
                        fields.set(field, value);
                        None
                    }
                    Err(msg) => Some(msg),
                },
            };
            if let Some(msg) = problem {
                rows.problem(self.path, line, Some(name), msg);
                match Field::from_name(name).or_else(|| suggest_field(name)) {
                    Some(field) => unread.push(field),
                    None => unread.extend(Field::ALL),
                }
            }
        }
        (fields, unread)
    }
}

/// `[run] budget` / `credits_per_job`: a number of credits, zero or more.
fn credits(value: &Value<'_>) -> Result<f64, String> {
    let n = match value.get_ref() {
        DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
            .map(|n| n as f64)
            .map_err(|_| format!("{i} is out of range"))?,
        DeValue::Float(f) => f
            .as_str()
            .replace('_', "")
            .parse::<f64>()
            .map_err(|_| format!("{f} is not a number"))?,
        other => {
            return Err(format!(
                "expected a number of credits, found {}",
                describe(other)
            ));
        }
    };
    if !n.is_finite() || n < 0.0 {
        return Err(format!(
            "expected a number of credits, zero or more, not {n}"
        ));
    }
    Ok(n)
}

/// `[run] artist` / `album`: one line of at most 200 characters (`""`
/// writes none).
fn tag_label(value: &Value<'_>) -> Result<String, String> {
    let s = string(value)?;
    if s.chars().count() > 200 || s.chars().any(char::is_control) {
        return Err("must be one line of at most 200 characters".into());
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_paths_stay_inside() {
        assert!(csv_path("prompts.csv").is_ok());
        assert!(csv_path("data/prompts.csv").is_ok());
        assert!(csv_path("./prompts.csv").is_ok());
        for bad in ["", "/etc/passwd", "../x.csv", "data/../../x.csv"] {
            assert!(csv_path(bad).is_err(), "{bad:?}");
        }
    }
}
