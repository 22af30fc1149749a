//! The names of a job's fields, as manifests and the API's JSON body spell
//! them, and the kind of value each holds. Every reader (TOML, CSV, the
//! sandbox's JSON) goes through this one table, so a field is spelled and
//! typed the same everywhere. Three are batchgen's own and never sent:
//! `id` (the job's key) and the duration limits of the quality gate
//! ([`Field::is_sent`]).

use std::fmt;

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
    MinDuration,
    MaxDuration,
}

/// What a field holds, which decides how manifests read it and how the
/// request body carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Bool,
    /// A [`Weight`](super::Weight): a JSON number from 0 to 1, two decimals at most.
    Weight,
    /// A [`Gender`](super::Gender): `"male"` or `"female"`.
    Gender,
    /// A [`Limit`](super::Limit) of a duration: `"30s"`, `"2m"` or `"off"`.
    Duration,
}

impl Field {
    /// All fields, in the order the results and docs list them.
    pub const ALL: [Field; 17] = [
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
        Field::MinDuration,
        Field::MaxDuration,
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
            Field::MinDuration => "min_duration",
            Field::MaxDuration => "max_duration",
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
            Field::MinDuration | Field::MaxDuration => Kind::Duration,
            _ => Kind::Text,
        }
    }

    /// Whether the field goes to the host: all but the job's `id` and
    /// the quality gate's duration limits, which are batchgen's own.
    pub fn is_sent(self) -> bool {
        !matches!(self, Field::Id | Field::MinDuration | Field::MaxDuration)
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
