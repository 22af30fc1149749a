//! The API's rules for a request: required fields by mode, length limits by
//! provider and model, the models a provider takes, and what an `id` and a
//! `callback_url` may be.
//!
//! The models and their limits are data ([`Catalogue`], `super::models`):
//! providers add models without notice, and a user adds one with a models
//! file or `--extra-model` without waiting for a release. Every check that
//! a manifest's rows pass (both passes over a CSV) takes the same [`Rules`],
//! so the first pass and the second cannot disagree.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::models::{Catalogue, Counting, ModelsError, NotSendable};
use super::{Field, JobFields, Limit, Mode, Provider};

/// The model name a job without a `model` is fingerprinted with. Its key
/// hashes this name, so changing it would change the key of every such
/// job and a rerun would bill them again: it stays `chirp-v3.5`, whatever
/// is sent for such a job (see [`Catalogue::choose`]).
pub const KEY_MODEL: &str = "chirp-v3.5";

/// Longest accepted `id`. Keys end up in file names (downloads), so they are
/// kept short and filename-safe.
pub const MAX_ID_LEN: usize = 128;

/// Longest model name a user may add: the documented ones are under 20.
pub const MAX_MODEL_NAME_LEN: usize = 64;

/// What a user-added model gets, for help texts and messages.
pub const EXTRA_MODEL_LIMITS: &str =
    "the short-form limits: prompt 3000, style 200, title 80 characters";

/// The rules a request is checked against: the model catalogue, and which
/// provider's fields, model names and limits apply ([`Provider`]).
/// `Rules::default()` is the built-in catalogue, for udioapi.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    catalogue: Arc<Catalogue>,
    /// Names added by `--extra-model` / `[run] extra_models`, in the order
    /// given, without repeats or names the catalogue had.
    extra_models: Vec<String>,
    /// `--models` / `BATCHGEN_MODELS` files, over `manifest_models`.
    models_files: Vec<PathBuf>,
    /// A manifest's `[run] models` file.
    manifest_models: Option<PathBuf>,
    provider: Provider,
    /// The provider was chosen by a flag or the environment, which a
    /// manifest's `[run] provider` does not override.
    provider_fixed: bool,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            catalogue: Catalogue::built_in(),
            extra_models: Vec::new(),
            models_files: Vec::new(),
            manifest_models: None,
            provider: Provider::default(),
            provider_fixed: false,
        }
    }
}

impl Rules {
    /// The built-in catalogue plus `names`.
    ///
    /// # Errors
    /// The first name that is not a plausible model name (see
    /// [`parse_model_name`]).
    pub fn with_extra_models<S: AsRef<str>>(
        names: impl IntoIterator<Item = S>,
    ) -> Result<Rules, String> {
        let mut rules = Rules::default();
        for name in names {
            rules.add_model(name.as_ref())?;
        }
        Ok(rules)
    }

    /// These rules with the models file `path` over the catalogue
    /// (`--models`, `BATCHGEN_MODELS`): it wins over the built-in entries
    /// and a manifest's `[run] models`.
    ///
    /// # Errors
    /// The file cannot be read or is malformed (`FILE:LINE`).
    pub fn with_models_file(mut self, path: &Path) -> Result<Rules, ModelsError> {
        self.models_files.push(path.to_owned());
        self.rebuild()?;
        Ok(self)
    }

    /// A manifest's `[run] models` file: under the files given by a flag
    /// or the environment, over the built-in entries.
    ///
    /// # Errors
    /// As [`Rules::with_models_file`].
    pub fn manifest_models_file(&mut self, path: &Path) -> Result<(), ModelsError> {
        self.manifest_models = Some(path.to_owned());
        self.rebuild()
    }

    /// The catalogue again from its layers: built-in, `[run] models`, the
    /// flag's files, the names added.
    fn rebuild(&mut self) -> Result<(), ModelsError> {
        let mut catalogue = (*Catalogue::built_in()).clone();
        for path in self.manifest_models.iter().chain(&self.models_files) {
            catalogue = catalogue.with_file(path)?;
        }
        for name in &self.extra_models {
            catalogue = catalogue
                .with_extra_model(name)
                .expect("names were checked when added");
        }
        self.catalogue = Arc::new(catalogue);
        Ok(())
    }

    /// Adds one model name; a name already known is not added twice.
    ///
    /// # Errors
    /// As [`parse_model_name`].
    pub fn add_model(&mut self, name: &str) -> Result<(), String> {
        let name = parse_model_name(name)?;
        if !self.knows(&name) {
            let catalogue = (*self.catalogue).clone().with_extra_model(&name)?;
            self.catalogue = Arc::new(catalogue);
            self.extra_models.push(name);
        }
        Ok(())
    }

    /// These rules for `provider`, chosen by a flag or the environment,
    /// which a manifest's `[run] provider` does not override.
    pub fn for_provider(mut self, provider: Provider) -> Rules {
        self.provider = provider;
        self.provider_fixed = true;
        self
    }

    /// A manifest's `[run] provider`: taken unless a flag or the
    /// environment chose one ([`Rules::for_provider`]).
    pub fn provider_from_manifest(&mut self, provider: Provider) {
        if !self.provider_fixed {
            self.provider = provider;
        }
    }

    /// These rules over `catalogue` as it is (a sandbox started for a
    /// run: the run's own catalogue, files and added names included).
    pub fn with_catalogue(mut self, catalogue: Arc<Catalogue>) -> Rules {
        self.catalogue = catalogue;
        self
    }

    /// The provider the jobs are checked for.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The names added by `--extra-model` / `[run] extra_models`.
    pub fn extra_models(&self) -> &[String] {
        &self.extra_models
    }

    /// The model catalogue the rules check with.
    pub fn catalogue(&self) -> &Arc<Catalogue> {
        &self.catalogue
    }

    /// Whether a job may name `model` (on some provider).
    pub fn knows(&self, model: &str) -> bool {
        self.catalogue.find(model).is_some()
    }

    /// What a job naming `model` is sent as on the rules' provider, for
    /// messages: `None` when the host chooses.
    pub fn sent_model(&self, model: Option<&str>) -> Option<&str> {
        self.catalogue
            .choose(self.provider, model)
            .ok()
            .and_then(|c| c.model.map(|m| m.name.as_str()))
    }

    /// Whether the rules' provider takes `model` but no longer lists it (a
    /// warning at validation, not a refusal).
    pub fn unlisted(&self, model: Option<&str>) -> bool {
        self.catalogue
            .choose(self.provider, model)
            .is_ok_and(|c| !c.listed)
    }

    /// Checks a request against every rule the API documents and returns all
    /// problems found (empty when the request is valid).
    pub fn check(&self, fields: &JobFields) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut push = |field, kind| problems.push(Problem { field, kind });

        if let Some(id) = &fields.id
            && let Err(why) = check_id(id)
        {
            push(Field::Id, ProblemKind::BadId(why));
        }

        let provider = self.provider;
        let choice = match self.catalogue.choose(provider, fields.model.as_deref()) {
            Ok(choice) => Some(choice),
            Err(why) => {
                let model = fields.model.clone().unwrap_or_default();
                push(
                    Field::Model,
                    match why {
                        NotSendable::Unknown => ProblemKind::UnknownModel {
                            model,
                            known: self.catalogue.listed(provider).join(", "),
                        },
                        NotSendable::NotOffered => ProblemKind::NotOffered {
                            provider,
                            model,
                            offered: self.catalogue.listed(provider).join(", "),
                        },
                    },
                );
                None
            }
        };

        let mode = fields.mode();
        for field in Field::ALL {
            let Some(value) = fields.str(field) else {
                if let Some(either) = mode.requirement(field)
                    && !either.iter().any(|&f| fields.is_set(f))
                {
                    push(field, missing(mode, either));
                }
                continue;
            };
            if is_blank(value) && field != Field::Tags {
                push(field, ProblemKind::Empty);
                continue;
            }
            if let Some(choice) = &choice
                && let Some(limit) = choice.limits.of(field, mode)
                && let Some(actual) = choice.counts.over(value, limit)
            {
                push(
                    field,
                    ProblemKind::TooLong {
                        limit,
                        actual,
                        counts: choice.counts,
                        model: choice.model.map(|m| m.name.clone()),
                        provider,
                    },
                );
            }
        }

        if let (Some(min), Some(max)) = (
            fields.min_duration.and_then(Limit::get),
            fields.max_duration.and_then(Limit::get),
        ) && min > max
        {
            push(Field::MinDuration, ProblemKind::DurationWindow { min, max });
        }
        if let Some(url) = &fields.callback_url
            && !url.trim().is_empty()
            && let Err(why) = check_callback_url(url)
        {
            push(Field::CallbackUrl, ProblemKind::BadUrl(why));
        }
        if provider != Provider::Udioapi {
            for field in Field::ALL {
                if field != Field::Id
                    && fields.is_set(field)
                    && let Some(why) = provider.unsupported(field, fields)
                {
                    push(field, ProblemKind::Unsupported { provider, why });
                }
            }
        }
        problems
    }
}

/// The problem for an unmet requirement of `mode`: a lone field is
/// [`ProblemKind::Missing`]; a choice ("prompt or gpt_description_prompt")
/// is [`ProblemKind::MissingEither`] with the other choice.
fn missing(mode: Mode, either: &'static [Field]) -> ProblemKind {
    match either {
        [_, other, ..] => ProblemKind::MissingEither {
            mode,
            other: *other,
        },
        _ => ProblemKind::Missing(mode),
    }
}

/// [`Rules::check`] with the documented models only.
pub fn check(fields: &JobFields) -> Vec<Problem> {
    Rules::default().check(fields)
}

/// Checks a model name a user adds (`--extra-model`, `[run] extra_models`):
/// 1 to [`MAX_MODEL_NAME_LEN`] letters, digits, `-`, `.` or `_`, like the
/// documented ones. Returns it trimmed.
///
/// # Errors
/// A message saying what is wrong with the name.
pub fn parse_model_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("a model name is empty".into());
    }
    if name.len() > MAX_MODEL_NAME_LEN {
        return Err(format!(
            "a model name is at most {MAX_MODEL_NAME_LEN} characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(format!(
            "model name {name:?} contains {c:?}; use letters, digits, '-', '.' and '_' (like chirp-v5)"
        ));
    }
    Ok(name.to_owned())
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
    /// Neither this field nor `other` is set, and the mode needs one of
    /// them (`prompt` or `gpt_description_prompt` in description mode).
    MissingEither {
        mode: Mode,
        other: Field,
    },
    /// Set, but empty or only whitespace.
    Empty,
    /// Longer than the provider allows with this model (`None`: the one
    /// the host chooses): the API's "Topic too long.".
    TooLong {
        limit: usize,
        actual: usize,
        counts: Counting,
        model: Option<String>,
        provider: Provider,
    },
    /// Not in the catalogue; `known` lists what the provider takes.
    UnknownModel {
        model: String,
        known: String,
    },
    /// In the catalogue, but the run's provider does not take it.
    NotOffered {
        provider: Provider,
        model: String,
        offered: String,
    },
    /// The run's provider has no place for this field as the job sets it.
    Unsupported {
        provider: Provider,
        why: &'static str,
    },
    BadUrl(String),
    BadId(String),
    /// `min_duration` above `max_duration`: every take would be rejected.
    DurationWindow {
        min: std::time::Duration,
        max: std::time::Duration,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ProblemKind::Missing(mode) => write!(f, "required in {mode} mode but not set"),
            ProblemKind::MissingEither { mode, other } => write!(
                f,
                "not set: in {mode} mode a job needs {} or {other} (either is enough)",
                self.field
            ),
            ProblemKind::Empty => f.write_str("is empty"),
            ProblemKind::TooLong {
                limit,
                actual,
                counts,
                model,
                provider,
            } => {
                let model = match model {
                    Some(model) => format!("{model} on {provider}"),
                    None => format!("{provider}'s own choice of model"),
                };
                write!(
                    f,
                    "is {actual} {}, over the limit of {limit} for {model} (the API would fail it with \"Topic too long.\")",
                    counts.unit()
                )
            }
            ProblemKind::UnknownModel { model, known } => {
                // The name is the manifest's text: quoted and cut, as every
                // diagnostic shows cell text, so a huge cell stays one line.
                let mut name: String = model.chars().take(MAX_MODEL_NAME_LEN).collect();
                if model.chars().nth(MAX_MODEL_NAME_LEN).is_some() {
                    name.push('…');
                }
                write!(f, "unknown model {name:?}; the provider lists: {known}")
            }
            ProblemKind::NotOffered {
                provider,
                model,
                offered,
            } => write!(
                f,
                "model {model:?} is not offered by provider {provider} ({}); it lists: {offered} (add another with --extra-model or a models file, see `batchgen models`)",
                provider.describe(),
            ),
            ProblemKind::Unsupported { provider, why } => write!(
                f,
                "is not supported by provider {provider} ({}): {why}",
                provider.describe()
            ),
            ProblemKind::BadUrl(why) => write!(f, "not an absolute http(s) URL: {why}"),
            ProblemKind::BadId(why) => f.write_str(why),
            ProblemKind::DurationWindow { min, max } => write!(
                f,
                "{} is longer than max_duration {}: every take would be rejected",
                humantime::format_duration(*min),
                humantime::format_duration(*max)
            ),
        }
    }
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

#[cfg(test)]
mod tests;
