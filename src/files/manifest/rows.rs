//! Rows on their way to jobs: defaults, the rules, duplicate keys, and the
//! second pass that hands valid jobs to a run.
//!
//! Validation is the first pass over a manifest. Rows from `[[job]]` tables
//! are few and kept as jobs; rows from a CSV are not kept at all: only a
//! 16-byte mark per row (a hash of its key and its line) stays, so a
//! million-row manifest validates in a few dozen megabytes. The rare hash
//! match is confirmed by re-reading just those rows, which also recovers
//! the keys for the message. A CSV is read on one thread and checked on
//! another (see [`super::first_pass`]). The pass also takes every job's
//! fingerprint into one [`JobsDigest`]: a rerun whose results file matches
//! it needs nothing else from the manifest. A run with rows to send reads
//! the CSV a second time ([`super::Jobs`]), checking each row again in case the
//! file changed meanwhile.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::{Diagnostic, Summary};
use crate::job::{self, Field, Job, JobFields, JobsDigest, ProblemKind, Rules};
use crate::settings::quality::QualitySettings;

/// What the readers produce: jobs (or marks) that passed, and diagnostics
/// for the rest. Both formats feed rows through here so defaults, the rules
/// and the duplicate check are applied the same way.
#[derive(Debug, Default)]
pub(super) struct Rows {
    /// Keep whole jobs (TOML tables), or only key marks (CSV rows).
    pub(super) keep_jobs: bool,
    pub(super) jobs: Vec<Job>,
    pub(super) diagnostics: Vec<Diagnostic>,
    /// Job key → line of the row that first used it (kept jobs only).
    seen: HashMap<crate::job::JobKey, u64>,
    /// (key hash, line) of every valid CSV row.
    pub(super) marks: Vec<(u64, u64)>,
    /// Every valid job's key, line and fingerprint, in order: what lets a
    /// rerun trust a results file that matches it (see [`JobsDigest`]).
    pub(super) digest: JobsDigest,
    pub(super) summary: Summary,
    /// `[defaults]`, applied to every row.
    pub(super) defaults: JobFields,
    /// The models rows may name: the documented ones, those the flags add,
    /// and those the manifest's `[run] extra_models` adds.
    pub(super) rules: Rules,
    /// Fields `[defaults]` may have meant to set but could not be read for;
    /// see [`Rows::build`].
    pub(super) defaults_unread: Vec<Field>,
    /// The quality rules of the valid jobs that set their own (their
    /// duration limits), by key: only those jobs, so a manifest that sets
    /// none keeps nothing here whatever its size.
    pub(super) job_quality: BTreeMap<String, QualitySettings>,
}

impl Rows {
    /// No rows yet, checking as a manifest with these `[defaults]` and
    /// rules does: for a pass that reads the rows again.
    pub(super) fn checking(defaults: JobFields, defaults_unread: Vec<Field>, rules: Rules) -> Rows {
        Rows {
            defaults,
            defaults_unread,
            rules,
            ..Rows::default()
        }
    }

    pub(super) fn problem(
        &mut self,
        file: &Path,
        line: u64,
        field: Option<&str>,
        message: impl Into<String>,
    ) {
        self.diagnostics.push(Diagnostic {
            file: file.to_path_buf(),
            line,
            field: field.map(str::to_owned),
            message: message.into(),
        });
    }

    /// Checks one row and, if it passes and its key is new, keeps it (as a
    /// job or a mark). Returns the fields when only a mark was kept, for the
    /// reader to fill with a later row (see [`JobFields::take_str`]).
    pub(super) fn row(
        &mut self,
        file: &Path,
        line: u64,
        fields: JobFields,
        unread: Vec<Field>,
    ) -> Option<JobFields> {
        let fields = self.check(file, line, fields, unread)?;
        self.summary.add(&fields, line);
        let own_rules = fields.min_duration.is_some() || fields.max_duration.is_some();
        if !self.keep_jobs {
            let fingerprint = fields.fingerprint_hex();
            let mut fp_key = [0; 3 + job::FINGERPRINT_LEN];
            let key = match &fields.id {
                Some(id) => id.as_bytes(),
                None => {
                    fp_key[..3].copy_from_slice(b"fp-");
                    fp_key[3..].copy_from_slice(&fingerprint);
                    &fp_key
                }
            };
            self.marks.push((job::key_hash(key), line));
            self.digest.add(key, line, &fingerprint);
            if own_rules {
                let key = String::from_utf8_lossy(key).into_owned();
                self.job_quality.insert(key, job_quality(&fields));
            }
            return Some(fields);
        }
        let job = Job::new(fields, line);
        if let Some(&first) = self.seen.get(&job.key) {
            self.duplicate(file, line, &job, first);
            return None;
        }
        self.seen.insert(job.key.clone(), line);
        self.digest
            .add(job.key.as_bytes(), line, job.fingerprint.as_bytes());
        if own_rules {
            self.job_quality
                .insert(job.key.to_string(), job_quality(&job.fields));
        }
        self.jobs.push(job);
        None
    }

    pub(super) fn duplicate(&mut self, file: &Path, line: u64, job: &Job, first: u64) {
        if job.fields.id.is_some() {
            let msg = format!("duplicate key {:?} (first at line {first})", job.key);
            self.problem(file, line, Some("id"), msg);
        } else {
            let msg = format!(
                "exact duplicate of line {first}; give one of them an `id` to generate both"
            );
            self.problem(file, line, None, msg);
        }
    }

    /// Applies the defaults to one row and checks it: the job, or `None`
    /// with the problems in `self.diagnostics`.
    ///
    /// `unread` lists fields the row may set but whose value could not be
    /// read (already reported). Such a row is still checked, so that its
    /// other problems show up in this pass, but problems that could be echoes
    /// of the unread value are left out: a field "missing" when it, or the
    /// mode, was unread; a length over the limit when the model was unread.
    pub(super) fn build(
        &mut self,
        file: &Path,
        line: u64,
        fields: JobFields,
        unread: Vec<Field>,
    ) -> Option<Job> {
        self.check(file, line, fields, unread)
            .map(|fields| Job::new(fields, line))
    }

    /// [`Rows::build`] without making the job: the fields with defaults
    /// applied, if they pass.
    fn check(
        &mut self,
        file: &Path,
        line: u64,
        mut fields: JobFields,
        mut unread: Vec<Field>,
    ) -> Option<JobFields> {
        for &field in &self.defaults_unread {
            if !fields.is_set(field) {
                unread.push(field);
            }
        }
        fields.apply_defaults(&self.defaults);
        let is_unread = |f: &Field| unread.contains(f);
        let problems: Vec<_> = self
            .rules
            .check(&fields)
            .into_iter()
            .filter(|p| match p.kind {
                ProblemKind::Missing(_) => ![p.field, Field::CustomMode, Field::MakeInstrumental]
                    .iter()
                    .any(is_unread),
                ProblemKind::MissingEither { other, .. } => {
                    ![p.field, other, Field::CustomMode, Field::MakeInstrumental]
                        .iter()
                        .any(is_unread)
                }
                ProblemKind::TooLong { .. } => !is_unread(&Field::Model),
                _ => true,
            })
            .collect();
        for p in &problems {
            let mut message = p.to_string();
            if let ProblemKind::UnknownModel { model, .. } = &p.kind {
                message.push_str(&add_model_hint(model));
            }
            self.problem(file, line, Some(p.field.name()), message);
        }
        let controls = self.control_characters(file, line, &fields);
        if !problems.is_empty() || !unread.is_empty() || controls {
            return None;
        }
        Some(fields)
    }

    /// Reports string fields holding a control character other than tab, CR
    /// or LF (a NUL from a corrupt export, an escape sequence pasted from a
    /// terminal): never meant as lyrics or a title, and the API's behaviour
    /// with them is undefined. `id` is left out: its own rule already names
    /// the character. Returns whether any was found.
    fn control_characters(&mut self, file: &Path, line: u64, fields: &JobFields) -> bool {
        let mut found = false;
        for field in Field::ALL.into_iter().filter(|&f| f != Field::Id) {
            let Some(value) = fields.str(field) else {
                continue;
            };
            // Fast path: control characters are C0 bytes, DEL, or C1 (which
            // UTF-8 writes after a 0xC2 byte); most text has none of these.
            // A fold, not `any`: without an early exit the compiler checks
            // many bytes at a time, and this runs over every cell.
            let suspect = value.bytes().fold(false, |found, b| {
                found
                    | (b < 0x20 && b != b'\t' && b != b'\n' && b != b'\r')
                    | (b == 0x7f)
                    | (b == 0xc2)
            });
            if !suspect {
                continue;
            }
            let bad = value
                .chars()
                .enumerate()
                .find(|&(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'));
            if let Some((at, c)) = bad {
                let msg = format!(
                    "contains the control character {c:?} (character {}); remove it",
                    at + 1
                );
                self.problem(file, line, Some(field.name()), msg);
                found = true;
            }
        }
        found
    }
}

/// How to use a model batchgen does not know yet, for the message about
/// an unknown one: only a name that could be added gets the hint.
fn add_model_hint(model: &str) -> String {
    if job::parse_model_name(model).is_err() {
        return String::new();
    }
    format!(
        "; if the provider has added {model:?}, name it with --extra-model {model} or [run] extra_models = [{model:?}] (it gets {}), or give its limits in a models file (--models FILE, see `batchgen models`)",
        job::EXTRA_MODEL_LIMITS
    )
}

impl Summary {
    fn add(&mut self, fields: &JobFields, line: u64) {
        self.jobs += 1;
        *self.modes.entry(fields.mode()).or_default() += 1;
        // "" stands for a job that names no model.
        let model = fields.model.as_deref().unwrap_or_default();
        match self.models.get_mut(model) {
            Some(n) => *n += 1,
            None => {
                self.models.insert(model.to_owned(), 1);
                self.first_lines.insert(model.to_owned(), line);
            }
        }
    }
}

/// Counts by mode and model are kept in a sorted map for stable output.
pub(super) type Counts<K> = BTreeMap<K, u64>;

/// The quality rules a job sets for itself: its duration limits.
fn job_quality(fields: &JobFields) -> QualitySettings {
    QualitySettings {
        min_duration: fields.min_duration,
        max_duration: fields.max_duration,
        ..QualitySettings::default()
    }
}
