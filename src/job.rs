//! One generation request: its fields, the API's rules for them, and its
//! stable identity.
//!
//! Both ends of the wire use this module: the manifest loader checks every
//! row with [`check`] before anything is sent, and the sandbox answers the
//! same [`Problem`]s with the API's 400 bodies. Keeping the rules in one place
//! is what makes "valid for batchgen" and "accepted by the sandbox" agree.
//!
//! Identity: a job's [`Job::key`] is its `id` when the manifest gives one,
//! otherwise `fp-` plus a fingerprint of the request content. The fingerprint
//! hashes only what shapes the music (not `callback_url` or `cluster`, which
//! say where and how it is delivered), with defaults applied, so reordering
//! rows, adding rows, or spelling out a default never changes a job's key.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The model the API uses when a request names none.
pub const DEFAULT_MODEL: &str = "chirp-v3.5";

/// Every model name the API documents. Older hosts know only the first two.
pub const KNOWN_MODELS: &[&str] = &[
    "chirp-v3.5",
    "chirp-v3.0",
    "chirp-v3-5",
    "chirp-v4-0",
    "chirp-v4-5",
    "chirp-v4-5-plus",
    "chirp-v5-5",
];

/// Models from chirp-v4-5 on accept longer prompts and styles.
const LONG_FORM_MODELS: &[&str] = &["chirp-v4-5", "chirp-v4-5-plus", "chirp-v5-5"];

/// Longest accepted `id`. Keys end up in file names (downloads), so they are
/// kept short and filename-safe.
pub const MAX_ID_LEN: usize = 128;

/// A job field, as named in manifests and in the API's JSON body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Id,
    Prompt,
    GptDescriptionPrompt,
    Title,
    Style,
    Tags,
    CustomMode,
    MakeInstrumental,
    Model,
    CallbackUrl,
    Cluster,
}

impl Field {
    /// All fields, in the order the results and docs list them.
    pub const ALL: [Field; 11] = [
        Field::Id,
        Field::Prompt,
        Field::GptDescriptionPrompt,
        Field::Title,
        Field::Style,
        Field::Tags,
        Field::CustomMode,
        Field::MakeInstrumental,
        Field::Model,
        Field::CallbackUrl,
        Field::Cluster,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Id => "id",
            Field::Prompt => "prompt",
            Field::GptDescriptionPrompt => "gpt_description_prompt",
            Field::Title => "title",
            Field::Style => "style",
            Field::Tags => "tags",
            Field::CustomMode => "custom_mode",
            Field::MakeInstrumental => "make_instrumental",
            Field::Model => "model",
            Field::CallbackUrl => "callback_url",
            Field::Cluster => "cluster",
        }
    }

    /// Looks a field up by its exact name.
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Whether the field holds a boolean (everything else is a string).
    pub fn is_bool(self) -> bool {
        matches!(self, Field::CustomMode | Field::MakeInstrumental)
    }

    /// Most unknown names are typos: offer the closest known name, if one is
    /// close enough to be a plausible intent.
    pub fn suggest(unknown: &str) -> Option<Field> {
        let lower = unknown.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        if let Some(f) = Field::from_name(&lower) {
            return Some(f);
        }
        if lower.len() >= 4
            && let Some(f) = Field::ALL
                .into_iter()
                .find(|f| f.name().starts_with(&lower))
        {
            return Some(f);
        }
        Field::ALL
            .into_iter()
            .map(|f| (f, strsim::damerau_levenshtein(&lower, f.name())))
            .filter(|&(f, d)| d <= 2.max(f.name().len() / 4))
            .min_by_key(|&(_, d)| d)
            .map(|(f, _)| f)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The fields of one job as written (after `[defaults]` are merged in).
/// `None` means "not set": it is left out of the request body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFields {
    #[serde(skip)]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpt_description_prompt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_mode: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub make_instrumental: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

/// A field's value before it is typed: what a manifest cell or key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Bool(bool),
}

impl JobFields {
    /// Sets a string field. For a boolean field, use [`JobFields::set_bool`].
    pub fn set_str(&mut self, field: Field, value: String) {
        *self.str_slot(field) = Some(value);
    }

    /// Unsets a string field and returns its value: a reader of many rows
    /// takes the strings of a row it is done with to hold the next row's
    /// cells, instead of allocating new ones.
    pub fn take_str(&mut self, field: Field) -> Option<String> {
        self.str_slot(field).take()
    }

    fn str_slot(&mut self, field: Field) -> &mut Option<String> {
        match field {
            Field::Id => &mut self.id,
            Field::Prompt => &mut self.prompt,
            Field::GptDescriptionPrompt => &mut self.gpt_description_prompt,
            Field::Title => &mut self.title,
            Field::Style => &mut self.style,
            Field::Tags => &mut self.tags,
            Field::Model => &mut self.model,
            Field::CallbackUrl => &mut self.callback_url,
            Field::Cluster => &mut self.cluster,
            Field::CustomMode | Field::MakeInstrumental => {
                unreachable!("{field} is a boolean field")
            }
        }
    }

    pub fn set_bool(&mut self, field: Field, value: bool) {
        match field {
            Field::CustomMode => self.custom_mode = Some(value),
            Field::MakeInstrumental => self.make_instrumental = Some(value),
            _ => unreachable!("{field} is a string field"),
        }
    }

    /// Whether the field is set.
    #[inline]
    pub fn is_set(&self, field: Field) -> bool {
        match field {
            Field::CustomMode => self.custom_mode.is_some(),
            Field::MakeInstrumental => self.make_instrumental.is_some(),
            _ => self.str(field).is_some(),
        }
    }

    /// A string field's value, `None` for unset or boolean fields.
    #[inline]
    pub fn str(&self, field: Field) -> Option<&str> {
        match field {
            Field::Id => self.id.as_deref(),
            Field::Prompt => self.prompt.as_deref(),
            Field::GptDescriptionPrompt => self.gpt_description_prompt.as_deref(),
            Field::Title => self.title.as_deref(),
            Field::Style => self.style.as_deref(),
            Field::Tags => self.tags.as_deref(),
            Field::Model => self.model.as_deref(),
            Field::CallbackUrl => self.callback_url.as_deref(),
            Field::Cluster => self.cluster.as_deref(),
            Field::CustomMode | Field::MakeInstrumental => None,
        }
    }

    /// Fills every unset field from `defaults`.
    pub fn apply_defaults(&mut self, defaults: &JobFields) {
        for field in Field::ALL {
            if self.is_set(field) || !defaults.is_set(field) {
                continue;
            }
            match field {
                Field::CustomMode => self.custom_mode = defaults.custom_mode,
                Field::MakeInstrumental => self.make_instrumental = defaults.make_instrumental,
                _ => self.set_str(field, defaults.str(field).unwrap_or_default().to_owned()),
            }
        }
    }

    /// The model the API will use for this job.
    pub fn effective_model(&self) -> &str {
        self.model.as_deref().unwrap_or(DEFAULT_MODEL)
    }

    pub fn mode(&self) -> Mode {
        Mode {
            custom: self.custom_mode.unwrap_or(false),
            instrumental: self.make_instrumental.unwrap_or(false),
        }
    }

    /// Hash of what shapes the music, with defaults applied; see the module
    /// docs for why `callback_url`, `cluster` and `id` are left out.
    pub fn fingerprint(&self) -> String {
        String::from_utf8_lossy(&self.fingerprint_hex()).into_owned()
    }

    /// [`JobFields::fingerprint`] as bytes on the stack: validation takes
    /// it for every row of a manifest, so it is kept cheap.
    pub fn fingerprint_hex(&self) -> [u8; FINGERPRINT_LEN] {
        let digest = Sha256::digest(self.content_json());
        let mut out = [0; FINGERPRINT_LEN];
        hex::encode_to_slice(&digest[..FINGERPRINT_LEN / 2], &mut out)
            .expect("8 bytes are 16 hex digits");
        out
    }

    /// What the fingerprint hashes: the content as compact JSON, keys in
    /// this order, unset texts `null`. Written by hand rather than with
    /// serde_json because serde_json escapes byte by byte, which was most of
    /// the cost of a fingerprint; the bytes are the same (tested against
    /// serde_json), and must stay so: fingerprints are kept in results
    /// files.
    fn content_json(&self) -> Vec<u8> {
        let texts = [
            ("prompt", self.prompt.as_deref()),
            (
                "gpt_description_prompt",
                self.gpt_description_prompt.as_deref(),
            ),
            ("title", self.title.as_deref()),
            ("style", self.style.as_deref()),
            ("tags", self.tags.as_deref()),
        ];
        let size: usize = texts.iter().map(|(_, t)| t.map_or(0, str::len)).sum();
        let mut json = Vec::with_capacity(size + 192);
        json.push(b'{');
        for (name, text) in texts {
            json_key(&mut json, name);
            match text {
                Some(text) => json_str(&mut json, text),
                None => json.extend_from_slice(b"null"),
            }
            json.push(b',');
        }
        let mode = self.mode();
        for (name, on) in [
            ("custom_mode", mode.custom),
            ("make_instrumental", mode.instrumental),
        ] {
            json_key(&mut json, name);
            json.extend_from_slice(if on { b"true," } else { b"false," });
        }
        json_key(&mut json, "model");
        json_str(&mut json, self.effective_model());
        json.push(b'}');
        json
    }
}

/// `"name":`, for names that need no escaping.
fn json_key(json: &mut Vec<u8>, name: &str) {
    json.push(b'"');
    json.extend_from_slice(name.as_bytes());
    json.extend_from_slice(b"\":");
}

/// A JSON string exactly as serde_json writes it: `"` and `\` escaped, a
/// line feed as `\n`, every other byte as is. Other control characters
/// (rare: validation refuses most of them) take serde_json's own path.
fn json_str(json: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    // No early exit, so the compiler can check many bytes at a time.
    let other_control = bytes
        .iter()
        .fold(false, |found, &b| found | (b < 0x20 && b != b'\n'));
    if other_control {
        serde_json::to_writer(&mut *json, text).expect("a string serializes");
        return;
    }
    json.push(b'"');
    let mut start = 0;
    for at in memchr::memchr3_iter(b'"', b'\\', b'\n', bytes) {
        json.extend_from_slice(&bytes[start..at]);
        json.extend_from_slice(match bytes[at] {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            _ => b"\\n",
        });
        start = at + 1;
    }
    json.extend_from_slice(&bytes[start..]);
    json.push(b'"');
}

/// Length of a fingerprint in hex digits (the first 8 bytes of a SHA-256).
pub const FINGERPRINT_LEN: usize = 16;

/// A digest of a sequence of jobs as a results file records them: each
/// job's key, line and fingerprint, in order. The manifest's first pass
/// builds one over its jobs; a results file whose rows give the same digest
/// holds exactly those jobs, one row each, in that order, on those lines and
/// with that content, so a rerun can plan from the results file alone
/// instead of reading the manifest a second time. SHA-256, so equal digests
/// of different sequences are not a practical concern.
#[derive(Clone, Default)]
pub struct JobsDigest {
    hasher: Sha256,
    count: u64,
}

impl JobsDigest {
    /// Adds the next job. Lengths are part of what is hashed, so no two
    /// sequences of fields run together into the same bytes.
    pub fn add(&mut self, key: &[u8], line: u64, fingerprint: &[u8]) {
        self.count += 1;
        self.hasher.update((key.len() as u64).to_le_bytes());
        self.hasher.update(key);
        self.hasher.update(line.to_le_bytes());
        self.hasher.update((fingerprint.len() as u64).to_le_bytes());
        self.hasher.update(fingerprint);
    }

    /// Jobs added so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The digest of the jobs added so far.
    pub fn finish(&self) -> [u8; 32] {
        self.hasher.clone().finalize().into()
    }
}

impl fmt::Debug for JobsDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobsDigest")
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

/// The two switches that decide which fields a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mode {
    pub custom: bool,
    pub instrumental: bool,
}

impl Mode {
    /// The API's table of required fields by mode.
    pub fn required(self) -> &'static [Field] {
        match (self.custom, self.instrumental) {
            (true, false) => &[Field::Style, Field::Prompt, Field::Title],
            (true, true) => &[Field::Style, Field::Title],
            (false, _) => &[Field::Prompt],
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.custom, self.instrumental) {
            (true, false) => "custom",
            (true, true) => "custom instrumental",
            (false, false) => "description",
            (false, true) => "description instrumental",
        })
    }
}

/// What is wrong with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: Field,
    pub kind: ProblemKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// Required in this mode but not set.
    Missing(Mode),
    /// Set, but empty or only whitespace.
    Empty,
    /// Longer than the model allows: the API's "Topic too long.".
    TooLong {
        limit: usize,
        actual: usize,
        model: String,
    },
    UnknownModel(String),
    BadUrl(String),
    BadId(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ProblemKind::Missing(mode) => write!(f, "required in {mode} mode but not set"),
            ProblemKind::Empty => f.write_str("is empty"),
            ProblemKind::TooLong {
                limit,
                actual,
                model,
            } => write!(
                f,
                "is {actual} characters, over the limit of {limit} for {model} (the API would fail it with \"Topic too long.\")"
            ),
            ProblemKind::UnknownModel(m) => write!(
                f,
                "unknown model {m:?}; known models: {}",
                KNOWN_MODELS.join(", ")
            ),
            ProblemKind::BadUrl(why) => write!(f, "not an absolute http(s) URL: {why}"),
            ProblemKind::BadId(why) => f.write_str(why),
        }
    }
}

/// The character limit of a field for a model, if the field has one.
pub fn length_limit(field: Field, model: &str) -> Option<usize> {
    let long_form = LONG_FORM_MODELS.contains(&model);
    match field {
        Field::Prompt => Some(if long_form { 5000 } else { 3000 }),
        Field::Style => Some(if long_form { 1000 } else { 200 }),
        Field::Title => Some(80),
        Field::GptDescriptionPrompt => Some(400),
        _ => None,
    }
}

/// Checks a request against every rule the API documents and returns all
/// problems found (empty when the request is valid).
pub fn check(fields: &JobFields) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut push = |field, kind| problems.push(Problem { field, kind });

    if let Some(id) = &fields.id
        && let Err(why) = check_id(id)
    {
        push(Field::Id, ProblemKind::BadId(why));
    }

    let model = fields.effective_model();
    let model_known = KNOWN_MODELS.contains(&model);
    if !model_known {
        push(Field::Model, ProblemKind::UnknownModel(model.to_owned()));
    }

    let mode = fields.mode();
    for field in Field::ALL {
        let Some(value) = fields.str(field) else {
            if mode.required().contains(&field) {
                push(field, ProblemKind::Missing(mode));
            }
            continue;
        };
        if is_blank(value) && field != Field::Tags {
            push(field, ProblemKind::Empty);
            continue;
        }
        if model_known && let Some(limit) = length_limit(field, model) {
            // A text is never more characters than bytes: count only the
            // texts that could be over (counting is per character).
            let actual = if value.len() > limit {
                value.chars().count()
            } else {
                0
            };
            if actual > limit {
                push(
                    field,
                    ProblemKind::TooLong {
                        limit,
                        actual,
                        model: model.to_owned(),
                    },
                );
            }
        }
    }

    if let Some(url) = &fields.callback_url
        && !url.trim().is_empty()
        && let Err(why) = check_callback_url(url)
    {
        push(Field::CallbackUrl, ProblemKind::BadUrl(why));
    }
    problems
}

/// Empty or only whitespace. Most values start with a visible ASCII
/// character, which settles it without a scan.
fn is_blank(value: &str) -> bool {
    !value.as_bytes().first().is_some_and(u8::is_ascii_graphic) && value.trim().is_empty()
}

fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("is empty".into());
    }
    if id.len() > MAX_ID_LEN && id.chars().count() > MAX_ID_LEN {
        return Err(format!("is longer than {MAX_ID_LEN} characters"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "contains {c:?}; ids may use only letters, digits, '-', '_' and '.' (they name files)"
        ));
    }
    if id.starts_with('.') {
        return Err("must not start with '.'".into());
    }
    if id.starts_with("fp-") {
        return Err(
            "must not start with \"fp-\", which batchgen uses for jobs without an id".into(),
        );
    }
    Ok(())
}

fn check_callback_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw.trim()).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme {:?} is not http or https", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    Ok(())
}

/// A fast 64-bit hash of a job key, for the indexes that find jobs by key
/// (the manifest's duplicate check, the results file's index). Users of it
/// confirm a match against the real key, so speed matters more than
/// strength; deterministic within a build, never persisted.
pub fn key_hash(key: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = std::hash::DefaultHasher::new();
    h.write(key);
    h.finish()
}

/// A validated job, ready to send.
#[derive(Debug, Clone)]
pub struct Job {
    /// Stable identity: the `id`, or `fp-<fingerprint>`.
    pub key: String,
    /// Content hash (see [`JobFields::fingerprint`]); lets a rerun notice a
    /// job whose content changed under the same `id`.
    pub fingerprint: String,
    /// Line in the manifest (or its CSV) where the row or table starts.
    pub line: u64,
    pub fields: JobFields,
}

impl Job {
    /// Builds a job from fields that passed [`check`].
    pub fn new(fields: JobFields, line: u64) -> Job {
        let fingerprint = fields.fingerprint();
        let key = match &fields.id {
            Some(id) => id.clone(),
            None => format!("fp-{fingerprint}"),
        };
        Job {
            key,
            fingerprint,
            line,
            fields,
        }
    }

    /// Roughly the bytes this job holds, itself and its strings: what a run
    /// counts when it keeps jobs in memory.
    pub fn footprint(&self) -> usize {
        let f = &self.fields;
        let strings = [
            &f.id,
            &f.prompt,
            &f.gpt_description_prompt,
            &f.title,
            &f.style,
            &f.tags,
            &f.model,
            &f.callback_url,
            &f.cluster,
        ];
        std::mem::size_of::<Job>()
            + self.key.len()
            + self.fingerprint.len()
            + strings
                .iter()
                .map(|s| s.as_ref().map_or(0, String::len))
                .sum::<usize>()
    }

    /// The JSON body for `POST /api/generate`: only the fields the job sets.
    pub fn body(&self) -> &JobFields {
        &self.fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(custom: bool, instrumental: bool) -> JobFields {
        JobFields {
            custom_mode: Some(custom),
            make_instrumental: Some(instrumental),
            ..JobFields::default()
        }
    }

    fn missing(problems: &[Problem]) -> Vec<Field> {
        problems
            .iter()
            .filter(|p| matches!(p.kind, ProblemKind::Missing(_)))
            .map(|p| p.field)
            .collect()
    }

    #[test]
    fn mode_table_is_the_apis() {
        assert_eq!(
            missing(&check(&fields(true, false))),
            [Field::Prompt, Field::Title, Field::Style]
        );
        assert_eq!(
            missing(&check(&fields(true, true))),
            [Field::Title, Field::Style]
        );
        assert_eq!(missing(&check(&fields(false, true))), [Field::Prompt]);
        assert_eq!(missing(&check(&JobFields::default())), [Field::Prompt]);
    }

    #[test]
    fn limits_depend_on_model() {
        let mut f = JobFields {
            prompt: Some("x".repeat(3001)),
            ..JobFields::default()
        };
        assert!(matches!(
            check(&f)[0].kind,
            ProblemKind::TooLong { limit: 3000, .. }
        ));
        f.model = Some("chirp-v4-5".into());
        assert!(check(&f).is_empty());
        f.prompt = Some("é".repeat(5000));
        assert!(check(&f).is_empty(), "limits count characters, not bytes");
        f.prompt = Some("x".repeat(5001));
        assert_eq!(check(&f).len(), 1);
    }

    #[test]
    fn unknown_model_empty_field_and_bad_url() {
        let f = JobFields {
            prompt: Some("  ".into()),
            model: Some("chirp-v9".into()),
            callback_url: Some("ftp://example.com/x".into()),
            ..JobFields::default()
        };
        let kinds: Vec<_> = check(&f).into_iter().map(|p| p.field).collect();
        assert_eq!(kinds, [Field::Model, Field::Prompt, Field::CallbackUrl]);
        let relative = JobFields {
            prompt: Some("a".into()),
            callback_url: Some("/hook".into()),
            ..JobFields::default()
        };
        assert_eq!(check(&relative)[0].field, Field::CallbackUrl);
    }

    #[test]
    fn ids_must_be_filename_safe() {
        for bad in ["", "a/b", "../x", ".hidden", "fp-0123", "a b"] {
            let f = JobFields {
                id: Some(bad.into()),
                prompt: Some("p".into()),
                ..JobFields::default()
            };
            assert_eq!(check(&f)[0].field, Field::Id, "{bad:?}");
        }
    }

    #[test]
    fn key_ignores_defaults_spelled_out_and_delivery_fields() {
        let a = JobFields {
            prompt: Some("rain on a tin roof".into()),
            ..JobFields::default()
        };
        let b = JobFields {
            custom_mode: Some(false),
            model: Some(DEFAULT_MODEL.into()),
            callback_url: Some("https://example.com/hook".into()),
            cluster: Some("default".into()),
            ..a.clone()
        };
        assert_eq!(Job::new(a.clone(), 1).key, Job::new(b, 9).key);
        let c = JobFields {
            prompt: Some("rain on a tin roof!".into()),
            ..a.clone()
        };
        assert_ne!(Job::new(a, 1).key, Job::new(c, 1).key);
    }

    /// The fingerprint's JSON as it was first defined, with serde_json.
    fn content_json_by_serde(f: &JobFields) -> Vec<u8> {
        #[derive(Serialize)]
        struct Content<'a> {
            prompt: Option<&'a str>,
            gpt_description_prompt: Option<&'a str>,
            title: Option<&'a str>,
            style: Option<&'a str>,
            tags: Option<&'a str>,
            custom_mode: bool,
            make_instrumental: bool,
            model: &'a str,
        }
        let mode = f.mode();
        serde_json::to_vec(&Content {
            prompt: f.prompt.as_deref(),
            gpt_description_prompt: f.gpt_description_prompt.as_deref(),
            title: f.title.as_deref(),
            style: f.style.as_deref(),
            tags: f.tags.as_deref(),
            custom_mode: mode.custom,
            make_instrumental: mode.instrumental,
            model: f.effective_model(),
        })
        .unwrap()
    }

    #[test]
    fn fingerprints_are_the_serde_json_ones() {
        let tricky = "a \"quoted\", back\\slash\nnew line\ttab\r\u{1}\u{7f} é 🎵 </>";
        let cases = [
            JobFields::default(),
            JobFields {
                prompt: Some(tricky.into()),
                title: Some("\"\"".into()),
                style: Some(String::new()),
                tags: Some("\n".into()),
                custom_mode: Some(true),
                model: Some("chirp-v4-5".into()),
                ..JobFields::default()
            },
            JobFields {
                gpt_description_prompt: Some("plain".into()),
                make_instrumental: Some(true),
                id: Some("ignored".into()),
                cluster: Some("ignored".into()),
                ..JobFields::default()
            },
        ];
        for f in cases {
            assert_eq!(
                String::from_utf8(f.content_json()).unwrap(),
                String::from_utf8(content_json_by_serde(&f)).unwrap()
            );
        }
        // As results files written by earlier versions hold it.
        let f = JobFields {
            prompt: Some("rain on a tin roof".into()),
            ..JobFields::default()
        };
        let old = hex::encode(&Sha256::digest(content_json_by_serde(&f))[..8]);
        assert_eq!(f.fingerprint(), old);
    }

    proptest::proptest! {
        #[test]
        fn any_text_fingerprints_as_serde_json_does(
            prompt in proptest::option::of(".*"),
            style in proptest::option::of("[\"\\\\\n\t a-z\u{0}-\u{1f}\u{7f}é]*"),
            custom in proptest::bool::ANY,
        ) {
            let f = JobFields {
                prompt,
                style,
                custom_mode: Some(custom),
                ..JobFields::default()
            };
            proptest::prop_assert_eq!(f.content_json(), content_json_by_serde(&f));
        }
    }

    #[test]
    fn body_leaves_out_unset_fields() {
        let job = Job::new(
            JobFields {
                id: Some("x".into()),
                prompt: Some("p".into()),
                make_instrumental: Some(true),
                ..JobFields::default()
            },
            3,
        );
        assert_eq!(
            serde_json::to_string(job.body()).unwrap(),
            r#"{"prompt":"p","make_instrumental":true}"#
        );
    }

    #[test]
    fn suggestions_catch_typos() {
        assert_eq!(Field::suggest("promt"), Some(Field::Prompt));
        assert_eq!(
            Field::suggest("Make-Instrumental"),
            Some(Field::MakeInstrumental)
        );
        assert_eq!(Field::suggest("callback"), Some(Field::CallbackUrl));
        assert_eq!(Field::suggest("zzzzzz"), None);
    }
}
