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
//! Fields added later (`gender` and the weights) are hashed only when set,
//! so a job that does not set them keeps the key it always had.
//!
//! The rules live in `rules` (re-exported here), the typed values of the
//! newer fields in `values`.

mod rules;
mod values;

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use rules::{
    DEFAULT_MODEL, EXTRA_MODEL_LIMITS, KNOWN_MODELS, MAX_ID_LEN, MAX_MODEL_NAME_LEN, Problem,
    ProblemKind, Rules, check, length_limit, parse_model_name,
};
pub use values::{Gender, GenderError, WEIGHT_RULE, Weight, WeightError};

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
    Gender,
    StyleWeight,
    WeirdnessConstraint,
    AudioWeight,
    CallbackUrl,
    Cluster,
}

/// What a field holds, which decides how manifests read it and how the
/// request body carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Bool,
    /// A [`Weight`]: a JSON number from 0 to 1, two decimals at most.
    Weight,
    /// A [`Gender`]: `"male"` or `"female"`.
    Gender,
}

impl Field {
    /// All fields, in the order the results and docs list them.
    pub const ALL: [Field; 15] = [
        Field::Id,
        Field::Prompt,
        Field::GptDescriptionPrompt,
        Field::Title,
        Field::Style,
        Field::Tags,
        Field::CustomMode,
        Field::MakeInstrumental,
        Field::Model,
        Field::Gender,
        Field::StyleWeight,
        Field::WeirdnessConstraint,
        Field::AudioWeight,
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
            Field::Gender => "gender",
            Field::StyleWeight => "style_weight",
            Field::WeirdnessConstraint => "weirdness_constraint",
            Field::AudioWeight => "audio_weight",
            Field::CallbackUrl => "callback_url",
            Field::Cluster => "cluster",
        }
    }

    /// Looks a field up by its exact name.
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn kind(self) -> Kind {
        match self {
            Field::CustomMode | Field::MakeInstrumental => Kind::Bool,
            Field::StyleWeight | Field::WeirdnessConstraint | Field::AudioWeight => Kind::Weight,
            Field::Gender => Kind::Gender,
            _ => Kind::Text,
        }
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
    pub gender: Option<Gender>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style_weight: Option<Weight>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weirdness_constraint: Option<Weight>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_weight: Option<Weight>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

/// A field's value, typed: what a manifest cell or key is read into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Bool(bool),
    Weight(Weight),
    Gender(Gender),
}

impl JobFields {
    /// Sets a field of any kind.
    ///
    /// # Panics
    /// When the value is not of the field's [`Kind`]: a reader's bug.
    pub fn set(&mut self, field: Field, value: Value) {
        match value {
            Value::Str(s) => self.set_str(field, s),
            Value::Bool(b) => self.set_bool(field, b),
            Value::Weight(w) => *self.weight_slot(field) = Some(w),
            Value::Gender(g) => match field {
                Field::Gender => self.gender = Some(g),
                _ => unreachable!("{field} is not the gender field"),
            },
        }
    }

    /// A weight field's value; `None` for unset or other fields.
    pub fn weight(&self, field: Field) -> Option<Weight> {
        match field {
            Field::StyleWeight => self.style_weight,
            Field::WeirdnessConstraint => self.weirdness_constraint,
            Field::AudioWeight => self.audio_weight,
            _ => None,
        }
    }

    fn weight_slot(&mut self, field: Field) -> &mut Option<Weight> {
        match field {
            Field::StyleWeight => &mut self.style_weight,
            Field::WeirdnessConstraint => &mut self.weirdness_constraint,
            Field::AudioWeight => &mut self.audio_weight,
            _ => unreachable!("{field} is not a weight field"),
        }
    }

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
            _ => unreachable!("{field} is not a string field"),
        }
    }

    pub fn set_bool(&mut self, field: Field, value: bool) {
        match field {
            Field::CustomMode => self.custom_mode = Some(value),
            Field::MakeInstrumental => self.make_instrumental = Some(value),
            _ => unreachable!("{field} is not a boolean field"),
        }
    }

    /// Whether the field is set.
    #[inline]
    pub fn is_set(&self, field: Field) -> bool {
        match field.kind() {
            Kind::Text => self.str(field).is_some(),
            Kind::Bool => match field {
                Field::CustomMode => self.custom_mode.is_some(),
                _ => self.make_instrumental.is_some(),
            },
            Kind::Weight => self.weight(field).is_some(),
            Kind::Gender => self.gender.is_some(),
        }
    }

    /// A string field's value, `None` for unset or other fields.
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
            _ => None,
        }
    }

    /// Fills every unset field from `defaults`.
    pub fn apply_defaults(&mut self, defaults: &JobFields) {
        for field in Field::ALL {
            if self.is_set(field) || !defaults.is_set(field) {
                continue;
            }
            match field.kind() {
                Kind::Text => {
                    self.set_str(field, defaults.str(field).unwrap_or_default().to_owned());
                }
                Kind::Bool if field == Field::CustomMode => self.custom_mode = defaults.custom_mode,
                Kind::Bool => self.make_instrumental = defaults.make_instrumental,
                Kind::Weight => *self.weight_slot(field) = defaults.weight(field),
                Kind::Gender => self.gender = defaults.gender,
            }
        }
    }

    /// The model the API will use for this job.
    pub fn effective_model(&self) -> &str {
        self.model.as_deref().unwrap_or(DEFAULT_MODEL)
    }

    pub fn mode(&self) -> Mode {
        let custom = self.custom_mode.unwrap_or(false);
        Mode {
            custom,
            instrumental: self.make_instrumental.unwrap_or(false),
            inspiration: !custom && self.prompt.is_none() && self.gpt_description_prompt.is_some(),
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
    /// this order, unset texts `null`, then each of the newer fields only
    /// when set (so the bytes of a job without them are what they were
    /// before those fields existed). Written by hand rather than with
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
        if let Some(gender) = self.gender {
            json.push(b',');
            json_key(&mut json, "gender");
            json_str(&mut json, gender.name());
        }
        for field in [
            Field::StyleWeight,
            Field::WeirdnessConstraint,
            Field::AudioWeight,
        ] {
            if let Some(weight) = self.weight(field) {
                json.push(b',');
                json_key(&mut json, field.name());
                serde_json::to_writer(&mut json, &weight).expect("a number serializes");
            }
        }
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

/// The two switches that decide which fields a request needs, and whether
/// a description-mode job is an inspiration one (a `gpt_description_prompt`
/// and no `prompt`), which summaries count apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mode {
    pub custom: bool,
    pub instrumental: bool,
    pub inspiration: bool,
}

impl Mode {
    /// The API's table of required fields by mode: every group needs one
    /// of its fields set.
    pub fn required(self) -> &'static [&'static [Field]] {
        match (self.custom, self.instrumental) {
            (true, false) => &[&[Field::Style], &[Field::Prompt], &[Field::Title]],
            (true, true) => &[&[Field::Style], &[Field::Title]],
            (false, _) => &[&[Field::Prompt, Field::GptDescriptionPrompt]],
        }
    }

    /// The group of [`Mode::required`] that `field` heads, if any: an unmet
    /// group is reported once, on its first field.
    pub fn requirement(self, field: Field) -> Option<&'static [Field]> {
        self.required()
            .iter()
            .copied()
            .find(|group| group.first() == Some(&field))
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.custom, self.instrumental, self.inspiration) {
            (true, false, _) => "custom",
            (true, true, _) => "custom instrumental",
            (false, false, false) => "description",
            (false, true, false) => "description instrumental",
            (false, false, true) => "inspiration",
            (false, true, true) => "inspiration instrumental",
        })
    }
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

    /// The JSON body for the generate endpoints: only the fields the job
    /// sets, the weights as JSON numbers.
    pub fn body(&self) -> &JobFields {
        &self.fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            #[serde(skip_serializing_if = "Option::is_none")]
            gender: Option<Gender>,
            #[serde(skip_serializing_if = "Option::is_none")]
            style_weight: Option<Weight>,
            #[serde(skip_serializing_if = "Option::is_none")]
            weirdness_constraint: Option<Weight>,
            #[serde(skip_serializing_if = "Option::is_none")]
            audio_weight: Option<Weight>,
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
            gender: f.gender,
            style_weight: f.style_weight,
            weirdness_constraint: f.weirdness_constraint,
            audio_weight: f.audio_weight,
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
            JobFields {
                prompt: Some("p".into()),
                gender: Some(Gender::Female),
                style_weight: Weight::from_hundredths(65),
                audio_weight: Some(Weight::ONE),
                ..JobFields::default()
            },
            JobFields {
                gpt_description_prompt: Some("g".into()),
                weirdness_constraint: Some(Weight::ZERO),
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

    #[test]
    fn newer_fields_are_hashed_only_when_set() {
        let plain = JobFields {
            prompt: Some("rain on a tin roof".into()),
            ..JobFields::default()
        };
        assert_eq!(
            String::from_utf8(plain.content_json()).unwrap(),
            r#"{"prompt":"rain on a tin roof","gpt_description_prompt":null,"title":null,"style":null,"tags":null,"custom_mode":false,"make_instrumental":false,"model":"chirp-v3.5"}"#,
            "the bytes every results file before issue 12 was keyed by"
        );
        let weighted = JobFields {
            gender: Some(Gender::Male),
            style_weight: Weight::from_hundredths(65),
            ..plain.clone()
        };
        assert!(
            String::from_utf8(weighted.content_json())
                .unwrap()
                .ends_with(r#""model":"chirp-v3.5","gender":"male","style_weight":0.65}"#)
        );
        let mut keys = std::collections::HashSet::new();
        for f in [
            plain.clone(),
            weighted,
            JobFields {
                style_weight: Some(Weight::ZERO),
                ..plain.clone()
            },
            JobFields {
                weirdness_constraint: Some(Weight::ZERO),
                ..plain.clone()
            },
            JobFields {
                audio_weight: Some(Weight::ZERO),
                ..plain.clone()
            },
            JobFields {
                gender: Some(Gender::Female),
                ..plain
            },
        ] {
            assert!(keys.insert(Job::new(f, 1).key), "each field counts");
        }
    }

    #[test]
    fn inspiration_is_a_mode_of_its_own() {
        let gpt = JobFields {
            gpt_description_prompt: Some("g".into()),
            ..JobFields::default()
        };
        assert_eq!(gpt.mode().to_string(), "inspiration");
        let with_prompt = JobFields {
            prompt: Some("p".into()),
            ..gpt.clone()
        };
        assert_eq!(with_prompt.mode().to_string(), "description");
        let instrumental = JobFields {
            make_instrumental: Some(true),
            ..gpt.clone()
        };
        assert_eq!(instrumental.mode().to_string(), "inspiration instrumental");
        let custom = JobFields {
            custom_mode: Some(true),
            ..gpt
        };
        assert_eq!(custom.mode().to_string(), "custom");
    }

    #[test]
    fn defaults_fill_every_kind_of_field() {
        let defaults = JobFields {
            model: Some("chirp-v5".into()),
            custom_mode: Some(false),
            gender: Some(Gender::Female),
            style_weight: Weight::from_hundredths(50),
            weirdness_constraint: Weight::from_hundredths(10),
            audio_weight: Weight::from_hundredths(90),
            ..JobFields::default()
        };
        let mut f = JobFields {
            prompt: Some("p".into()),
            style_weight: Weight::from_hundredths(20),
            ..JobFields::default()
        };
        f.apply_defaults(&defaults);
        assert_eq!(
            f,
            JobFields {
                prompt: Some("p".into()),
                style_weight: Weight::from_hundredths(20),
                ..defaults
            },
            "the job's own value wins"
        );
        for field in Field::ALL {
            assert_eq!(
                f.is_set(field),
                !matches!(
                    field,
                    Field::Id
                        | Field::GptDescriptionPrompt
                        | Field::Title
                        | Field::Style
                        | Field::Tags
                        | Field::MakeInstrumental
                        | Field::CallbackUrl
                        | Field::Cluster
                ),
                "{field}"
            );
        }
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
        let mut fields = job.fields.clone();
        fields.set(Field::Gender, Value::Gender(Gender::Female));
        fields.set(
            Field::AudioWeight,
            Value::Weight(Weight::from_hundredths(7).unwrap()),
        );
        fields.set(Field::StyleWeight, Value::Weight(Weight::ONE));
        assert_eq!(
            serde_json::to_string(&fields).unwrap(),
            r#"{"prompt":"p","make_instrumental":true,"gender":"female","style_weight":1.0,"audio_weight":0.07}"#,
            "numbers as numbers, in the API's order"
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
        assert_eq!(Field::suggest("style_wieght"), Some(Field::StyleWeight));
        assert_eq!(
            Field::suggest("weirdness"),
            Some(Field::WeirdnessConstraint)
        );
        assert_eq!(Field::suggest("audio-weight"), Some(Field::AudioWeight));
        assert_eq!(Field::suggest("gendre"), Some(Field::Gender));
        assert_eq!(Field::suggest("zzzzzz"), None);
    }
}
