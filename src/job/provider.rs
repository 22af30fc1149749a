//! Which host schema a run speaks, and what that changes about a job
//! before anything is sent: the fields the host takes. Which models each
//! host takes, under which names and with which limits, is data: the
//! model catalogue (`super::models`, `batchgen models`).
//!
//! A manifest always uses batchgen's field and model names; each
//! [`Provider`] says which of them it can carry. A field a provider has no
//! place for is a validation problem that names the provider
//! ([`ProblemKind::Unsupported`](super::ProblemKind)), not a field silently
//! dropped from the request: a user who set `gender` expects the song to
//! have it. How a job becomes that host's JSON, and how its answers are
//! read, is the wire layer's (`crate::api::provider`); the sandbox reads
//! the same names back with its own code.
//!
//! The hosts each provider speaks to, with their endpoints and limits,
//! are in the README's "Providers" table; what this module decides is
//! only what each cannot carry:
//!
//! | provider | fields it has no place for |
//! |---|---|
//! | `udioapi` | none |
//! | `sunoapi` | `cluster`; `gpt_description_prompt` in custom mode, or beside a `prompt` |
//! | `kie` | as sunoapi |
//! | `gcui` | `gender`, the weights, `callback_url`, `cluster`; `tags` outside custom mode; `gpt_description_prompt` in custom mode or beside a `prompt` |
//! | `newapi` | `gender`, the weights, `tags`, `callback_url`, `cluster`; `gpt_description_prompt` in custom mode or beside a `prompt` |

use std::fmt;

use super::{Field, JobFields};

/// A host schema. The default is the reference provider, udioapi.pro.
///
/// The list of providers is the enum itself ([`Provider::ALL`] is derived
/// by `strum`), and every `match` on it names each variant: a provider
/// added here does not compile until every place that differs by provider
/// says what it does (the recipe is in `crate::api::provider`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    PartialOrd,
    Ord,
    strum::VariantArray,
    strum::IntoStaticStr,
    serde::Serialize,
)]
#[strum(serialize_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    #[default]
    Udioapi,
    Sunoapi,
    Kie,
    Gcui,
    Newapi,
}

impl Provider {
    /// Every provider, in the enum's order.
    pub const ALL: &'static [Provider] = <Provider as strum::VariantArray>::VARIANTS;

    /// The name a user writes: `--provider`, `[run] provider`.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// Who the name stands for, for messages and help.
    pub fn describe(self) -> &'static str {
        match self {
            Provider::Udioapi => "udioapi.pro and the hosts of its backend",
            Provider::Sunoapi => "sunoapi.org and its clones: api.box",
            Provider::Kie => "kie.ai: sunoapi's requests, its own codes and signed callbacks",
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
            "sunoapi" | "sunoapi.org" | "apibox" | "api.box" => Ok(Provider::Sunoapi),
            "kie" | "kie.ai" => Ok(Provider::Kie),
            "gcui" | "gcui-art" | "suno-api" => Ok(Provider::Gcui),
            "newapi" | "new-api" | "one-api" | "oneapi" => Ok(Provider::Newapi),
            _ => Err(format!(
                "unknown provider {:?}; use one of: {}",
                s.chars().take(40).collect::<String>(),
                Provider::ALL
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", ")
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
            Provider::Kie => "https://api.kie.ai",
            Provider::Gcui | Provider::Newapi => "http://localhost:3000",
        }
    }

    /// Hosts known to speak this schema (a host equal to one of these or
    /// under it: `giftasong.udioapi.pro`).
    fn known_hosts(self) -> &'static [&'static str] {
        match self {
            Provider::Udioapi => &["udioapi.pro"],
            Provider::Sunoapi => &["sunoapi.org", "api.box", "apibox.erweima.ai"],
            Provider::Kie => &["kie.ai"],
            Provider::Gcui | Provider::Newapi => &[],
        }
    }

    /// The provider whose known host `host` is, if any: a base URL on
    /// another provider's host gets a hint instead of failing row by row.
    pub fn owner_of_host(host: &str) -> Option<Provider> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        Provider::ALL.iter().copied().find(|p| {
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
            Provider::Udioapi | Provider::Sunoapi | Provider::Kie => true,
            Provider::Gcui | Provider::Newapi => false,
        }
    }

    /// Whether requests need an API key. A self-hosted gcui-art/suno-api
    /// holds the Suno cookie itself and takes none.
    pub fn needs_key(self) -> bool {
        match self {
            Provider::Udioapi | Provider::Sunoapi | Provider::Kie | Provider::Newapi => true,
            Provider::Gcui => false,
        }
    }

    /// Why this provider cannot carry `field` as the job sets it, if it
    /// cannot. Only called for fields that are set.
    pub fn unsupported(self, field: Field, fields: &JobFields) -> Option<&'static str> {
        let mode = fields.mode();
        let description_twice =
            field == Field::GptDescriptionPrompt && (mode.custom || fields.prompt.is_some());
        // What every provider but udioapi lacks; then each provider's own
        // (a new provider must say what it lacks: no arm guesses for it).
        let common = match field {
            Field::Cluster => Some("it has no cluster setting"),
            Field::GptDescriptionPrompt if description_twice => Some(
                "its request has one description field: outside custom mode set prompt or gpt_description_prompt, not both; in custom mode prompt holds the lyrics",
            ),
            _ => None,
        };
        let no_weights = "it has no weight settings";
        let weights = [
            Field::StyleWeight,
            Field::WeirdnessConstraint,
            Field::AudioWeight,
        ];
        match self {
            Provider::Udioapi => None,
            Provider::Sunoapi | Provider::Kie => common,
            Provider::Gcui => common.or(match field {
                Field::Gender => Some("it has no vocal gender setting"),
                f if weights.contains(&f) => Some(no_weights),
                Field::CallbackUrl => Some("it sends no callbacks (poll with `batchgen collect`)"),
                Field::Tags if !mode.custom => {
                    Some("negative tags go only with custom mode (its /api/custom_generate)")
                }
                _ => None,
            }),
            Provider::Newapi => common.or(match field {
                Field::Gender => Some("it has no vocal gender setting"),
                f if weights.contains(&f) => Some(no_weights),
                Field::Tags => Some("it has no negative tags (its `tags` field is the style)"),
                Field::CallbackUrl => {
                    Some("it documents no callbacks to its clients (poll with `batchgen collect`)")
                }
                _ => None,
            }),
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
        for &p in Provider::ALL {
            assert_eq!(Provider::parse(p.name()), Ok(p));
            assert_eq!(Provider::parse(&p.name().to_uppercase()), Ok(p));
        }
        assert_eq!(Provider::parse(" kie.ai "), Ok(Provider::Kie));
        assert_eq!(Provider::parse("api.box"), Ok(Provider::Sunoapi));
        assert_eq!(Provider::parse("suno-api"), Ok(Provider::Gcui));
        let e = Provider::parse("suno").unwrap_err();
        for alias in ["new-api", "one-api", "OneAPI"] {
            assert_eq!(Provider::parse(alias), Ok(Provider::Newapi), "{alias}");
        }
        assert!(e.contains("udioapi, sunoapi, kie, gcui, newapi"), "{e}");
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
        assert_eq!(Provider::owner_of_host("API.KIE.AI"), Some(Provider::Kie));
        assert_eq!(
            Provider::owner_of_host("api.sunoapi.org."),
            Some(Provider::Sunoapi)
        );
        assert_eq!(Provider::owner_of_host("notsunoapi.org"), None);
        assert_eq!(Provider::owner_of_host("127.0.0.1"), None);
    }
}
