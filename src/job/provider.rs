//! Which host schema a run speaks, and what that changes about a job
//! before anything is sent: the fields the host takes, the models it
//! offers (under which names), and its length limits.
//!
//! A manifest always uses batchgen's field and model names; each
//! [`Provider`] says which of them it can carry and what it calls them.
//! A field a provider has no place for is a validation problem that names
//! the provider ([`ProblemKind::Unsupported`](super::ProblemKind)), not a
//! field silently dropped from the request: a user who set `gender` expects
//! the song to have it. How a job becomes that host's JSON, and how its
//! answers are read, is the wire layer's (`crate::api::provider`); the
//! sandbox reads the same names back with its own code.
//!
//! | provider | hosts | fields it has no place for | models |
//! |---|---|---|---|
//! | `udioapi` | udioapi.pro and the hosts of its backend | none | every batchgen model |
//! | `sunoapi` | sunoapi.org and its clones (kie.ai, api.box) | `cluster`; `gpt_description_prompt` in custom mode, or beside a `prompt` | chirp-v3.5/chirp-v3-5 → `V3_5`, chirp-v4-0 → `V4`, chirp-v4-5 → `V4_5`, chirp-v4-5-plus → `V4_5PLUS`, chirp-v5 → `V5` |
//! | `gcui` | gcui-art/suno-api, self-hosted | `gender`, the weights, `callback_url`, `cluster`; `tags` outside custom mode; `gpt_description_prompt` in custom mode or beside a `prompt` | chirp-v3.5/chirp-v3-5 → `chirp-v3-5`, chirp-v3.0 → `chirp-v3-0`, chirp-v4-0 → `chirp-v4` |
//! | `newapi` | a new-api / one-api relay's Suno task API (self-hosted, or a reseller's) | `gender`, the weights, `tags`, `callback_url`, `cluster`; `gpt_description_prompt` in custom mode or beside a `prompt` | Suno's internal names: chirp-v3.5/chirp-v3-5 → `chirp-v3-5`, chirp-v4-0 → `chirp-v4`, chirp-v4-5 → `chirp-auk`, chirp-v4-5-plus → `chirp-bluejay`, chirp-v5 → `chirp-crow`, chirp-v5-5 → `chirp-fenix`; a job without a model is sent [`NEWAPI_UNSET_MODEL`] |
//!
//! A model added with `--extra-model` is sent under its own name to every
//! provider: the user named it as the host spells it.

use std::fmt;

use super::{Field, JobFields, Mode};

/// A host schema. The default is the reference provider, udioapi.pro.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum Provider {
    #[default]
    Udioapi,
    Sunoapi,
    Gcui,
    Newapi,
}

/// sunoapi.org's model names, by batchgen's.
const SUNOAPI_MODELS: &[(&str, &str)] = &[
    ("chirp-v3.5", "V3_5"),
    ("chirp-v3-5", "V3_5"),
    ("chirp-v4-0", "V4"),
    ("chirp-v4-5", "V4_5"),
    ("chirp-v4-5-plus", "V4_5PLUS"),
    ("chirp-v5", "V5"),
];

/// gcui-art/suno-api's model names (its `ModelType`), by batchgen's.
const GCUI_MODELS: &[(&str, &str)] = &[
    ("chirp-v3.5", "chirp-v3-5"),
    ("chirp-v3-5", "chirp-v3-5"),
    ("chirp-v3.0", "chirp-v3-0"),
    ("chirp-v4-0", "chirp-v4"),
];

/// A new-api relay's `mv` names (Suno's internal ones), by batchgen's.
/// The relay passes `mv` to Suno unchanged; chirp-v3.0 is not offered
/// (retired by Suno, API.md "What moved in 2026").
const NEWAPI_MODELS: &[(&str, &str)] = &[
    ("chirp-v3.5", "chirp-v3-5"),
    ("chirp-v3-5", "chirp-v3-5"),
    ("chirp-v4-0", "chirp-v4"),
    ("chirp-v4-5", "chirp-auk"),
    ("chirp-v4-5-plus", "chirp-bluejay"),
    ("chirp-v5", "chirp-crow"),
    ("chirp-v5-5", "chirp-fenix"),
];

/// The `mv` a new-api relay is sent for a job that names no model.
///
/// Leaving `mv` out is not "the provider's current default" here: the
/// relay fills an empty `mv` with `chirp-v3-0` itself (QuantumNous/new-api,
/// `relay/channel/task/suno/adaptor.go`, `actionValidate`), a model Suno
/// has retired, so every such job would fail. `chirp-crow` is Suno's name
/// for v5, the newest model every relay's upstream lists (chirp-fenix,
/// v5.5, is not on all of them yet). The job's length limits stay those of
/// batchgen's default model, the stricter ones.
pub const NEWAPI_UNSET_MODEL: &str = "chirp-crow";

impl Provider {
    pub const ALL: [Provider; 4] = [
        Provider::Udioapi,
        Provider::Sunoapi,
        Provider::Gcui,
        Provider::Newapi,
    ];

    /// The name a user writes: `--provider`, `[run] provider`.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Udioapi => "udioapi",
            Provider::Sunoapi => "sunoapi",
            Provider::Gcui => "gcui",
            Provider::Newapi => "newapi",
        }
    }

    /// Who the name stands for, for messages and help.
    pub fn describe(self) -> &'static str {
        match self {
            Provider::Udioapi => "udioapi.pro and the hosts of its backend",
            Provider::Sunoapi => "sunoapi.org and its clones: kie.ai, api.box",
            Provider::Gcui => "a self-hosted gcui-art/suno-api",
            Provider::Newapi => {
                "a new-api / one-api relay (self-hosted or a reseller's), its Suno task API"
            }
        }
    }

    /// Reads a provider's name, case-insensitively; a few spellings people
    /// use for the same host are accepted.
    ///
    /// # Errors
    /// A message listing the names, when `s` is none of them.
    pub fn parse(s: &str) -> Result<Provider, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "udioapi" | "udioapi.pro" | "udio" => Ok(Provider::Udioapi),
            "sunoapi" | "sunoapi.org" | "kie" | "kie.ai" | "apibox" | "api.box" => {
                Ok(Provider::Sunoapi)
            }
            "gcui" | "gcui-art" | "suno-api" => Ok(Provider::Gcui),
            "newapi" | "new-api" | "one-api" | "oneapi" => Ok(Provider::Newapi),
            _ => Err(format!(
                "unknown provider {:?}; use one of: {}",
                s.chars().take(40).collect::<String>(),
                Provider::ALL.map(Provider::name).join(", ")
            )),
        }
    }

    /// The base URL a run uses when none is set. gcui-art/suno-api has no
    /// public host; this is where its README runs it. A new-api relay is
    /// self-hosted or a reseller's; a self-hosted new-api listens on port
    /// 3000 (its docs' Docker setup).
    pub fn default_base_url(self) -> &'static str {
        match self {
            Provider::Udioapi => "https://udioapi.pro",
            Provider::Sunoapi => "https://api.sunoapi.org",
            Provider::Gcui => "http://localhost:3000",
            Provider::Newapi => "http://localhost:3000",
        }
    }

    /// Hosts known to speak this schema (a host equal to one of these or
    /// under it: `giftasong.udioapi.pro`).
    fn known_hosts(self) -> &'static [&'static str] {
        match self {
            Provider::Udioapi => &["udioapi.pro"],
            Provider::Sunoapi => &["sunoapi.org", "kie.ai", "api.box", "apibox.erweima.ai"],
            Provider::Gcui | Provider::Newapi => &[],
        }
    }

    /// The provider whose known host `host` is, if any: a base URL on
    /// another provider's host gets a hint instead of failing row by row.
    pub fn owner_of_host(host: &str) -> Option<Provider> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        Provider::ALL.into_iter().find(|p| {
            p.known_hosts()
                .iter()
                .any(|known| host == *known || host.ends_with(&format!(".{known}")))
        })
    }

    /// Whether the host POSTs results to a job's callback URL. A new-api
    /// relay keeps its upstream's callbacks for itself (it sets its own
    /// `callBackUrl`) and documents none to its clients.
    pub fn sends_callbacks(self) -> bool {
        match self {
            Provider::Udioapi | Provider::Sunoapi => true,
            Provider::Gcui | Provider::Newapi => false,
        }
    }

    /// Whether requests need an API key. A self-hosted gcui-art/suno-api
    /// holds the Suno cookie itself and takes none.
    pub fn needs_key(self) -> bool {
        match self {
            Provider::Udioapi | Provider::Sunoapi | Provider::Newapi => true,
            Provider::Gcui => false,
        }
    }

    /// What this provider calls a model batchgen knows, `None` when it
    /// does not offer it. Models the user added are not looked up here.
    pub fn model_name(self, model: &str) -> Option<&'static str> {
        let table = match self {
            Provider::Udioapi => {
                return super::KNOWN_MODELS.iter().copied().find(|m| *m == model);
            }
            Provider::Sunoapi => SUNOAPI_MODELS,
            Provider::Gcui => GCUI_MODELS,
            Provider::Newapi => NEWAPI_MODELS,
        };
        table
            .iter()
            .find(|(ours, _)| *ours == model)
            .map(|(_, theirs)| *theirs)
    }

    /// The batchgen models this provider offers, for messages.
    pub fn offered_models(self) -> Vec<&'static str> {
        super::KNOWN_MODELS
            .iter()
            .copied()
            .filter(|m| self.model_name(m).is_some())
            .collect()
    }

    /// Why this provider cannot carry `field` as the job sets it, if it
    /// cannot. Only called for fields that are set.
    pub fn unsupported(self, field: Field, fields: &JobFields) -> Option<&'static str> {
        let mode = fields.mode();
        let description_twice =
            field == Field::GptDescriptionPrompt && (mode.custom || fields.prompt.is_some());
        match (self, field) {
            (Provider::Udioapi, _) => None,
            (_, Field::Cluster) => Some("it has no cluster setting"),
            (_, Field::GptDescriptionPrompt) if description_twice => Some(
                "its request has one description field: outside custom mode set prompt or gpt_description_prompt, not both; in custom mode prompt holds the lyrics",
            ),
            (Provider::Gcui, Field::Gender) => Some("it has no vocal gender setting"),
            (
                Provider::Gcui,
                Field::StyleWeight | Field::WeirdnessConstraint | Field::AudioWeight,
            ) => Some("it has no weight settings"),
            (Provider::Gcui, Field::CallbackUrl) => {
                Some("it sends no callbacks (poll with `batchgen collect`)")
            }
            (Provider::Gcui, Field::Tags) if !mode.custom => {
                Some("negative tags go only with custom mode (its /api/custom_generate)")
            }
            (Provider::Newapi, Field::Gender) => Some("it has no vocal gender setting"),
            (
                Provider::Newapi,
                Field::StyleWeight | Field::WeirdnessConstraint | Field::AudioWeight,
            ) => Some("it has no weight settings"),
            (Provider::Newapi, Field::Tags) => {
                Some("it has no negative tags (its `tags` field is the style)")
            }
            (Provider::Newapi, Field::CallbackUrl) => {
                Some("it documents no callbacks to its clients (poll with `batchgen collect`)")
            }
            _ => None,
        }
    }

    /// The character limit of `field` for `model` in `mode`: the API's
    /// ([`super::length_limit`]), except where this provider documents
    /// another. sunoapi.org takes at most 500 characters of description
    /// outside custom mode. A new-api relay sends a description (`prompt`
    /// outside custom mode too) as Suno's `gpt_description_prompt`, whose
    /// limit is that field's, 400.
    pub fn length_limit(self, field: Field, model: &str, mode: Mode) -> Option<usize> {
        match (self, field) {
            (Provider::Sunoapi, Field::Prompt | Field::GptDescriptionPrompt) if !mode.custom => {
                Some(500)
            }
            (Provider::Newapi, Field::Prompt) if !mode.custom => {
                super::length_limit(Field::GptDescriptionPrompt, model)
            }
            _ => super::length_limit(field, model),
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Provider {
    type Err = String;

    fn from_str(s: &str) -> Result<Provider, String> {
        Provider::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_aliases_are_read() {
        for p in Provider::ALL {
            assert_eq!(Provider::parse(p.name()), Ok(p));
            assert_eq!(Provider::parse(&p.name().to_uppercase()), Ok(p));
        }
        assert_eq!(Provider::parse(" kie.ai "), Ok(Provider::Sunoapi));
        assert_eq!(Provider::parse("suno-api"), Ok(Provider::Gcui));
        for alias in ["new-api", "one-api", "OneAPI"] {
            assert_eq!(Provider::parse(alias), Ok(Provider::Newapi), "{alias}");
        }
        let e = Provider::parse("suno").unwrap_err();
        assert!(e.contains("udioapi, sunoapi, gcui, newapi"), "{e}");
    }

    #[test]
    fn known_hosts_name_their_provider() {
        assert_eq!(
            Provider::owner_of_host("udioapi.pro"),
            Some(Provider::Udioapi)
        );
        assert_eq!(
            Provider::owner_of_host("giftasong.udioapi.pro"),
            Some(Provider::Udioapi)
        );
        assert_eq!(
            Provider::owner_of_host("API.KIE.AI"),
            Some(Provider::Sunoapi)
        );
        assert_eq!(
            Provider::owner_of_host("api.sunoapi.org."),
            Some(Provider::Sunoapi)
        );
        assert_eq!(Provider::owner_of_host("notsunoapi.org"), None);
        assert_eq!(Provider::owner_of_host("127.0.0.1"), None);
    }

    #[test]
    fn models_map_to_each_providers_names() {
        assert_eq!(
            Provider::Sunoapi.model_name("chirp-v4-5-plus"),
            Some("V4_5PLUS")
        );
        assert_eq!(Provider::Sunoapi.model_name("chirp-v3.5"), Some("V3_5"));
        assert_eq!(Provider::Sunoapi.model_name("chirp-v5-5"), None);
        assert_eq!(Provider::Gcui.model_name("chirp-v4-0"), Some("chirp-v4"));
        assert_eq!(Provider::Gcui.model_name("chirp-v5"), None);
        assert_eq!(Provider::Newapi.model_name("chirp-v5"), Some("chirp-crow"));
        assert_eq!(
            Provider::Newapi.model_name("chirp-v4-5-plus"),
            Some("chirp-bluejay")
        );
        assert_eq!(Provider::Newapi.model_name("chirp-v3.0"), None);
        for m in crate::job::KNOWN_MODELS {
            assert_eq!(Provider::Udioapi.model_name(m), Some(*m));
        }
        // The default model is offered everywhere, so a manifest without
        // a model runs unchanged against every provider.
        for p in Provider::ALL {
            assert!(p.model_name(crate::job::DEFAULT_MODEL).is_some(), "{p}");
        }
    }
}
