//! Why a setting cannot be used. One type for every setting a flag, the
//! environment or `[run]` gives: the message names the setting and what it
//! takes, and the exit code is chosen once, where the error leaves the
//! program (78, a configuration error; inside a manifest, its line and 65).

use std::time::Duration;

use crate::job::Provider;

/// A setting's value that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A base URL that does not parse, or is not `http(s)://host[:port]`
    /// (`shown` without its user info and query values).
    #[error("invalid base URL {shown:?}: {why}")]
    BaseUrl { shown: String, why: String },
    /// A base URL carrying a user name or password.
    #[error(
        "the base URL {0:?} holds a user name or password: the API key goes in BATCHGEN_API_KEY or --api-key-file, and the URL must not carry one"
    )]
    Credentials(String),
    /// A base URL with a query, which no endpoint would keep.
    #[error("the base URL {0:?} has a query, which no endpoint would keep: remove it")]
    Query(String),
    /// A base URL on a host known to speak another provider's schema.
    #[error(
        "{host} speaks provider {owner} ({}), not {provider}: add --provider {owner} (or [run] provider = \"{owner}\", or BATCHGEN_PROVIDER={owner})",
        owner.describe()
    )]
    OtherProvidersHost {
        host: String,
        owner: Provider,
        provider: Provider,
    },
    /// Plain HTTP to another machine without `--allow-insecure-http`.
    #[error(
        "the base URL {0} is plain http to another machine: the API key would cross the network unencrypted; use https://, or pass --allow-insecure-http if this network is trusted"
    )]
    Insecure(String),
    /// A generate path that is not a plain URL path.
    #[error("invalid API path {path:?}: {why}")]
    ApiPath { path: String, why: String },
    /// A generate path for a provider with one endpoint.
    #[error(
        "generate_path and callback_generate_path choose between udioapi's two generate endpoints; provider {0} has its own (set the base URL, with a path prefix if its host needs one)"
    )]
    GeneratePath(Provider),
    /// A duration that does not parse.
    #[error("{0}")]
    Duration(String),
    /// A timeout no answer could arrive within (`what`: the setting and
    /// value as given).
    #[error(
        "{what} is too short for any answer to arrive (every row would end unknown): use at least {}",
        humantime::format_duration(*least)
    )]
    TooShort { what: String, least: Duration },
    /// A count outside what batchgen takes.
    #[error("{setting} must be between {min} and {max}, not {value}")]
    OutOfRange {
        setting: &'static str,
        min: u64,
        max: u64,
        value: u64,
    },
}
