//! The model catalogue: which models each provider takes, under which name,
//! with which limits, as data.
//!
//! Providers add and retire models monthly, so what batchgen knows of them
//! is a TOML file built into the binary (`built_in.toml`, beside this
//! module: its header documents the format), which a user file in the same format
//! extends or overrides (`--models FILE`, `BATCHGEN_MODELS`, `[run]
//! models`), and `--extra-model NAME` is the shortcut for one model offered
//! everywhere under its own name. Validation, the wire and the sandbox all
//! read one [`Catalogue`], so what batchgen refuses, what it sends and what
//! its imitation of a host accepts cannot drift apart.
//!
//! A job that names no model sends none where the provider has a default of
//! its own (its default is current by definition), and the catalogue's
//! `default` where the provider requires one or its own default is stale;
//! the job's key never depends on either (it hashes [`super::KEY_MODEL`]
//! for a job naming no model).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use super::{Field, Mode, Provider, parse_model_name};

/// The built-in catalogue's text.
pub const BUILT_IN: &str = include_str!("built_in.toml");

/// The catalogue format this release reads (`format = 1`).
pub const FORMAT: u32 = 1;

/// The limits of a model nobody gave limits for: an `--extra-model`, or a
/// user entry without `limits`. The short-form ones, the strictest any
/// documented model has, so a row is refused by batchgen rather than
/// failed by the host after it was billed.
pub const SHORT_FORM: Limits = Limits {
    prompt: Some(3000),
    style: Some(200),
    title: Some(80),
    description: Some(400),
    non_custom_prompt: None,
};

/// Length limits; `None` where this layer does not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<u32>,
    /// `gpt_description_prompt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<u32>,
    /// A description outside custom mode: a `prompt` or a
    /// `gpt_description_prompt` (sunoapi sends either as its `prompt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub non_custom_prompt: Option<u32>,
}

impl Limits {
    /// Each limit of `self`, else `under`'s.
    fn over(self, under: Limits) -> Limits {
        Limits {
            prompt: self.prompt.or(under.prompt),
            style: self.style.or(under.style),
            title: self.title.or(under.title),
            description: self.description.or(under.description),
            non_custom_prompt: self.non_custom_prompt.or(under.non_custom_prompt),
        }
    }

    /// The limits of an offer on a provider of a model: each of the
    /// offer's, else the provider's, else the model's.
    pub fn over_all(self, provider: Limits, model: Limits) -> Limits {
        self.over(provider).over(model)
    }

    /// The smaller of each limit, for a job whose model the host chooses.
    fn min(self, other: Limits) -> Limits {
        let min = |a: Option<u32>, b: Option<u32>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Limits {
            prompt: min(self.prompt, other.prompt),
            style: min(self.style, other.style),
            title: min(self.title, other.title),
            description: min(self.description, other.description),
            non_custom_prompt: min(self.non_custom_prompt, other.non_custom_prompt),
        }
    }

    /// The limit of `field` in `mode`.
    pub fn of(&self, field: Field, mode: Mode) -> Option<usize> {
        let description = matches!(field, Field::Prompt | Field::GptDescriptionPrompt);
        let limit = match field {
            _ if description && !mode.custom && self.non_custom_prompt.is_some() => {
                self.non_custom_prompt
            }
            Field::Prompt => self.prompt,
            Field::Style => self.style,
            Field::Title => self.title,
            Field::GptDescriptionPrompt => self.description,
            _ => None,
        };
        limit.map(|n| n as usize)
    }

    fn check(&self) -> Result<(), String> {
        let all = [
            self.prompt,
            self.style,
            self.title,
            self.description,
            self.non_custom_prompt,
        ];
        match all.into_iter().flatten().any(|n| n == 0) {
            true => Err("a limit is at least 1".into()),
            false => Ok(()),
        }
    }
}

/// How a provider counts a text's length.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum Counting {
    /// Unicode characters, as the provider's docs say.
    #[default]
    #[serde(rename = "characters")]
    Characters,
    /// UTF-16 code units, as Suno counts: an emoji is two.
    #[serde(rename = "utf16")]
    Utf16,
}

impl Counting {
    /// The length of `text`, when it could be over `limit`; 0 when it
    /// cannot (neither count is ever more than the bytes).
    pub fn over(self, text: &str, limit: usize) -> Option<usize> {
        if text.len() <= limit {
            return None;
        }
        let n = match self {
            Counting::Characters => text.chars().count(),
            Counting::Utf16 => text.encode_utf16().count(),
        };
        (n > limit).then_some(n)
    }

    /// The unit, for messages.
    pub fn unit(self) -> &'static str {
        match self {
            Counting::Characters => "characters",
            Counting::Utf16 => "UTF-16 units (as Suno counts them)",
        }
    }
}

/// Where an entry's values came from, for `batchgen models`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Origin {
    BuiltIn,
    File {
        path: PathBuf,
        line: usize,
    },
    /// `--extra-model` or `[run] extra_models`.
    ExtraModel,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::BuiltIn => f.write_str("built-in"),
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::ExtraModel => f.write_str("--extra-model"),
        }
    }
}

/// A model as one provider takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Offer {
    /// The provider's name for it.
    pub wire: String,
    /// Whether the provider's pages list it now.
    pub listed: bool,
    pub limits: Limits,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credits: Option<u32>,
    pub origin: Origin,
}

/// One model, by batchgen's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Model {
    pub name: String,
    pub aliases: Vec<String>,
    pub limits: Limits,
    pub offers: BTreeMap<Provider, Offer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub origin: Origin,
}

/// What is a provider's rather than a model's.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ProviderModels {
    /// batchgen's name of the model sent for a job that names none; `None`:
    /// send none, the host applies its own.
    pub default: Option<String>,
    pub counts: Counting,
    pub limits: Limits,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credits: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// What a job's `model` comes to on one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice<'a> {
    /// The model sent: the job's, or the provider's default; `None` when
    /// the job names none and the host chooses.
    pub model: Option<&'a Model>,
    /// The name on the wire; `None`: leave the field out.
    pub wire: Option<&'a str>,
    pub limits: Limits,
    pub counts: Counting,
    /// Whether the provider lists the model now (true when the host
    /// chooses).
    pub listed: bool,
}

/// Why a job's `model` cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotSendable {
    /// No model of that name or alias.
    Unknown,
    /// Known, but this provider takes it under no name.
    NotOffered,
}

/// The catalogue: the built-in file, the user's files over it, and the
/// models added by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    models: Vec<Model>,
    providers: BTreeMap<Provider, ProviderModels>,
    /// Every name and alias, to its model's index.
    index: HashMap<String, usize>,
    /// Per provider, the limits of a job whose model the host chooses
    /// (see [`Catalogue::choose`]), kept because every such row asks.
    host_chooses: BTreeMap<Provider, Limits>,
}

/// A models file that cannot be read: `FILE:LINE: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ModelsError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl Catalogue {
    /// The built-in catalogue, read once.
    pub fn built_in() -> Arc<Catalogue> {
        static BUILT: OnceLock<Arc<Catalogue>> = OnceLock::new();
        BUILT
            .get_or_init(|| {
                let empty = Catalogue {
                    models: Vec::new(),
                    providers: Provider::ALL
                        .iter()
                        .map(|p| (*p, ProviderModels::default()))
                        .collect(),
                    index: HashMap::new(),
                    host_chooses: BTreeMap::new(),
                };
                let built = empty
                    .with_text(BUILT_IN, Path::new("models.toml"), true)
                    .expect("the built-in catalogue is valid (tested)");
                Arc::new(built)
            })
            .clone()
    }

    /// This catalogue with the models file at `path` over it.
    ///
    /// # Errors
    /// The file cannot be read, or a line of it is wrong (named).
    pub fn with_file(&self, path: &Path) -> Result<Catalogue, ModelsError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelsError {
            path: path.to_owned(),
            line: None,
            message: format!("cannot read the models file: {e}"),
        })?;
        self.with_text(&text, path, false)
    }

    /// This catalogue with `name` added, offered by every provider under
    /// that name with the short-form limits; a known name changes nothing.
    ///
    /// # Errors
    /// As [`parse_model_name`].
    pub fn with_extra_model(mut self, name: &str) -> Result<Catalogue, String> {
        let name = parse_model_name(name)?;
        if self.find(&name).is_none() {
            let offers = everywhere(&name, &Origin::ExtraModel);
            self.push(Model {
                name,
                aliases: Vec::new(),
                limits: SHORT_FORM,
                offers,
                source: None,
                origin: Origin::ExtraModel,
            });
        }
        self.settle();
        Ok(self)
    }

    /// Every model, in the order they were added (built-in first).
    pub fn models(&self) -> &[Model] {
        &self.models
    }

    /// What is `provider`'s.
    pub fn provider(&self, provider: Provider) -> &ProviderModels {
        &self.providers[&provider]
    }

    /// The model named `name` (its name or an alias).
    /// The credits one request costs on `provider` for a job naming
    /// `model` (none: the provider's default model), where the catalogue
    /// knows: the model's offer there, else the provider's price.
    pub fn price(&self, provider: Provider, model: Option<&str>) -> Option<u32> {
        let own = self.provider(provider);
        let name = model.or(own.default.as_deref());
        name.and_then(|n| self.find(n))
            .and_then(|m| m.offers.get(&provider))
            .and_then(|offer| offer.credits)
            .or(own.credits)
    }

    pub fn find(&self, name: &str) -> Option<&Model> {
        self.index.get(name).map(|&i| &self.models[i])
    }

    /// The names `provider` takes and lists now, for messages.
    pub fn listed(&self, provider: Provider) -> Vec<&str> {
        self.models
            .iter()
            .filter(|m| m.offers.get(&provider).is_some_and(|o| o.listed))
            .map(|m| m.name.as_str())
            .collect()
    }

    /// What a job naming `model` (or none) sends to `provider`, and the
    /// limits it is checked with.
    ///
    /// # Errors
    /// A model the catalogue does not know, or `provider` does not take.
    pub fn choose(
        &self,
        provider: Provider,
        model: Option<&str>,
    ) -> Result<Choice<'_>, NotSendable> {
        let host = self.provider(provider);
        let Some(name) = model.or(host.default.as_deref()) else {
            return Ok(Choice {
                model: None,
                wire: None,
                limits: self
                    .host_chooses
                    .get(&provider)
                    .copied()
                    .unwrap_or(SHORT_FORM),
                counts: host.counts,
                listed: true,
            });
        };
        let found = self.find(name).ok_or(NotSendable::Unknown)?;
        let offer = found.offers.get(&provider).ok_or(NotSendable::NotOffered)?;
        Ok(Choice {
            model: Some(found),
            wire: Some(&offer.wire),
            limits: offer.limits.over(host.limits).over(found.limits),
            counts: host.counts,
            listed: offer.listed,
        })
    }

    /// The `model` to send to `provider` for a job naming `model`: `None`
    /// to leave the field out. A name the catalogue does not know (a
    /// request validation never saw) is sent as written.
    pub fn wire_model(&self, provider: Provider, model: Option<&str>) -> Option<String> {
        match self.choose(provider, model) {
            Ok(choice) => choice.wire.map(str::to_owned),
            Err(_) => model.map(str::to_owned),
        }
    }

    /// batchgen's name of a model `provider` calls `wire`, for the sandbox
    /// reading a request back: the first model offered under that name.
    pub fn from_wire(&self, provider: Provider, wire: &str) -> Option<&Model> {
        self.models
            .iter()
            .find(|m| m.offers.get(&provider).is_some_and(|o| o.wire == wire))
    }

    /// The model a host uses for a request naming none: its `default`,
    /// else the newest model it lists (the sandbox's answer).
    pub fn host_default(&self, provider: Provider) -> Option<&Model> {
        match &self.provider(provider).default {
            Some(name) => self.find(name),
            None => self
                .models
                .iter()
                .rev()
                .find(|m| m.offers.get(&provider).is_some_and(|o| o.listed)),
        }
    }

    /// Works out what every later question asks of a changed catalogue:
    /// the limits of a job whose model the host chooses. Any model the
    /// provider lists may be the one, so the smallest of their limits
    /// applies.
    fn settle(&mut self) {
        self.host_chooses = Provider::ALL
            .iter()
            .map(|&provider| {
                let host = self.provider(provider);
                let limits = self
                    .models
                    .iter()
                    .filter_map(|m| Some((m, m.offers.get(&provider).filter(|o| o.listed)?)))
                    .map(|(m, o)| o.limits.over_all(host.limits, m.limits))
                    .reduce(Limits::min)
                    .unwrap_or(SHORT_FORM)
                    .over(host.limits);
                (provider, limits)
            })
            .collect();
    }

    fn push(&mut self, model: Model) {
        let at = self.models.len();
        self.index.insert(model.name.clone(), at);
        for alias in &model.aliases {
            self.index.insert(alias.clone(), at);
        }
        self.models.push(model);
    }
}

/// Offers of `name` under its own name by every provider, with the model's
/// own limits.
fn everywhere(name: &str, origin: &Origin) -> BTreeMap<Provider, Offer> {
    Provider::ALL
        .iter()
        .map(|p| {
            let offer = Offer {
                wire: name.to_owned(),
                listed: true,
                limits: Limits::default(),
                credits: None,
                origin: origin.clone(),
            };
            (*p, offer)
        })
        .collect()
}

mod file;
#[cfg(test)]
mod tests;
