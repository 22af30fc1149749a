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
//! The field names and kinds live in `field`, the rules in `rules`, the
//! fingerprint and digests in `identity`, the typed values of the newer
//! fields in `values`; all re-exported here, so the rest of the crate
//! names `crate::job::X` without knowing the split.

mod field;
mod identity;
pub mod models;
mod provider;
mod rules;
mod values;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use field::{Field, Kind};
pub use identity::{FINGERPRINT_LEN, JobKey, JobsDigest, key_hash};
pub use models::Catalogue;
pub use provider::Provider;
pub use rules::{
    EXTRA_MODEL_LIMITS, KEY_MODEL, MAX_ID_LEN, MAX_MODEL_NAME_LEN, Problem, ProblemKind, Rules,
    check, parse_model_name,
};
pub use values::{
    DURATION_RULE, Gender, GenderError, Limit, WEIGHT_RULE, Weight, WeightError,
    parse_duration_limit,
};

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
    /// The shortest take this job keeps, over `[quality]`'s (never sent).
    #[serde(skip)]
    pub min_duration: Option<Limit<Duration>>,
    /// The longest take this job keeps, over `[quality]`'s (never sent).
    #[serde(skip)]
    pub max_duration: Option<Limit<Duration>>,
}

/// A field's value, typed: what a manifest cell or key is read into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Bool(bool),
    Weight(Weight),
    Gender(Gender),
    Duration(Limit<Duration>),
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
            Value::Duration(d) => *self.duration_slot(field) = Some(d),
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

    /// A duration limit's value; `None` for unset or other fields.
    pub fn duration(&self, field: Field) -> Option<Limit<Duration>> {
        match field {
            Field::MinDuration => self.min_duration,
            Field::MaxDuration => self.max_duration,
            _ => None,
        }
    }

    fn duration_slot(&mut self, field: Field) -> &mut Option<Limit<Duration>> {
        match field {
            Field::MinDuration => &mut self.min_duration,
            Field::MaxDuration => &mut self.max_duration,
            _ => unreachable!("{field} is not a duration field"),
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
            Kind::Duration => self.duration(field).is_some(),
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
                Kind::Duration => *self.duration_slot(field) = defaults.duration(field),
            }
        }
    }

    /// The model name the job's fingerprint hashes: its own, else
    /// [`KEY_MODEL`]. Not what is sent: that is the catalogue's
    /// ([`Catalogue::choose`]).
    pub fn key_model(&self) -> &str {
        self.model.as_deref().unwrap_or(KEY_MODEL)
    }

    pub fn mode(&self) -> Mode {
        let custom = self.custom_mode.unwrap_or(false);
        Mode {
            custom,
            instrumental: self.make_instrumental.unwrap_or(false),
            inspiration: !custom && self.prompt.is_none() && self.gpt_description_prompt.is_some(),
        }
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

/// A validated job, ready to send.
#[derive(Debug, Clone)]
pub struct Job {
    /// Stable identity: the `id`, or `fp-` and the fingerprint.
    pub key: JobKey,
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
        let key = JobKey::of(&fields, &fingerprint);
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
            min_duration: Some(Limit::At(Duration::from_secs(20))),
            max_duration: Some(Limit::Off),
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
