//! Secrets from where a person keeps them: the API key from
//! `--api-key-file` or `BATCHGEN_API_KEY`, the callback secret from
//! `BATCHGEN_CALLBACK_SECRET` (or `receive --secret`). Each is wrapped in a
//! [`Secret`] the moment it is read, which registers it with the one
//! redaction rule, so no output shows it from then on.

use std::path::Path;

use crate::engine::collect::receive::{SECRET_ENV, weak_secret};
use crate::job::Provider;
use crate::program::exit::Error;
use crate::util::redact::Secret;

/// The environment variable holding the API key.
pub const KEY_ENV: &str = "BATCHGEN_API_KEY";

/// The API key, from `--api-key-file` or `BATCHGEN_API_KEY`.
pub fn read_key(file: Option<&Path>, provider: Provider) -> Result<Secret, Error> {
    let key = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::Config(format!(
                    "cannot read the API key file {}: {e}",
                    path.display()
                ))
            })?;
            warn_if_shared(path);
            // A BOM, as Notepad saves UTF-8, is no part of the key.
            text.trim_start_matches('\u{feff}').trim().to_owned()
        }
        None => std::env::var(KEY_ENV).unwrap_or_default().trim().to_owned(),
    };
    if key.is_empty() && !provider.needs_key() {
        // A self-hosted gcui-art/suno-api holds the Suno session itself:
        // no key, and no Authorization header goes out.
        return Ok(Secret::new(""));
    }
    if key.is_empty() {
        return Err(Error::Config(format!(
            "no API key: set {KEY_ENV} or pass --api-key-file PATH (or try --sandbox, which needs none)"
        )));
    }
    let key = Secret::new(key);
    if let Err(e) = crate::api::http::bearer(&key) {
        let from = file.map_or_else(|| KEY_ENV.to_owned(), |p| p.display().to_string());
        return Err(Error::Config(format!(
            "{e}: check {from} for a stray character (a smart quote, a non-breaking space)"
        )));
    }
    Ok(key)
}

#[cfg(unix)]
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        crate::util::term::eprint_line(&format!(
            "batchgen: warning: {} is readable by other users; chmod 600 it",
            path.display()
        ));
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_: &Path) {}

/// The callback secret the submit side puts in callback URLs, from
/// [`SECRET_ENV`]; `missing` is the message when it is not set.
///
/// # Errors
/// As [`callback_secret`].
pub fn callback_secret_from_env(missing: impl FnOnce() -> String) -> Result<Secret, Error> {
    callback_secret(&std::env::var(SECRET_ENV).unwrap_or_default(), missing)
}

/// kie.ai's webhook HMAC key, from the environment only (a flag would
/// show in `ps`): `None` when unset or empty, or for a provider that signs
/// nothing. Without it, kie's callbacks are taken on the URL's secret
/// alone, and a warning says so.
pub fn webhook_key_from_env(provider: crate::job::Provider) -> Option<Secret> {
    use crate::api::provider::signature::KEY_VAR;
    let key = std::env::var(KEY_VAR).unwrap_or_default();
    let key = key.trim();
    match provider {
        crate::job::Provider::Kie if key.is_empty() => {
            crate::util::term::eprint_line(&format!(
                "batchgen: warning: kie.ai signs its callbacks, but {KEY_VAR} is not set: they are not checked (set it to the webhook HMAC key of kie.ai's settings page)"
            ));
            None
        }
        crate::job::Provider::Kie => Some(Secret::new(key)),
        crate::job::Provider::Udioapi
        | crate::job::Provider::Sunoapi
        | crate::job::Provider::Gcui
        | crate::job::Provider::Newapi => None,
    }
}

/// A callback secret as given, trimmed: refused when empty (with the
/// `missing` message) or weak, by the one rule both `run --callback-base`
/// and `receive` apply, so `receive` never refuses a secret the run
/// already put into callback URLs.
///
/// # Errors
/// A configuration error (exit 78).
pub fn callback_secret(given: &str, missing: impl FnOnce() -> String) -> Result<Secret, Error> {
    let secret = given.trim();
    if secret.is_empty() {
        return Err(Error::Config(missing()));
    }
    if let Some(why) = weak_secret(secret) {
        return Err(Error::Config(why));
    }
    Ok(Secret::new(secret))
}
