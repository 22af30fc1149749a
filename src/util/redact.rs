//! One redaction rule for everything batchgen prints or writes.
//!
//! Secrets reach text by many roads: an error chain that quotes a request
//! URL, a server that echoes the key back in its error message, the
//! sandbox's warning about a callback URL, a `--dry-run` body. Rather than
//! guard each road, every output path (the log writer, the final error, the
//! warnings, the results file's `error` column, `--summary-json`, the dry
//! run) passes its text through [`text`], which applies the same two rules:
//!
//! 1. **Known secrets.** Every [`crate::util::redact::Secret`] registers its value
//!    here when it is made (the API key, the callback secret, the sandbox's
//!    key), raw and percent-encoded; each occurrence becomes [`MASK`].
//!    Values shorter than [`MIN_SECRET_LEN`] are not registered: masking
//!    every `k` in a message would garble it, and such a value is no secret
//!    worth the name (the callback secret must be longer anyway, see
//!    [`crate::engine::collect::receive::MIN_SECRET_LEN`]).
//! 2. **URLs.** Any `http(s)://` URL in the text is shown by [`url()`]: no
//!    user name or password, every query value masked (signed links carry
//!    tokens there), no fragment, and in batchgen's own callback shape
//!    `/callback/<secret>/<key>` the secret segment masked, so a URL built
//!    by another process (a standalone sandbox, a receiver) is safe too.
//!
//! Server text that batchgen keeps as data rather than shows (a clip's
//! title, style, IDs and URLs, which become catalog cells, file names and
//! ID3 tags) gets rule 1 only, through [`secrets`], when it is read
//! ([`crate::api::feed::TaskClips::mask_secrets`]): a server that echoes the key
//! into a title must not get it onto the disk, and rule 2 would break a URL
//! that is still to be fetched.
//!
//! The registry is process-wide on purpose: a secret known anywhere is
//! masked everywhere, including in log lines written by code that never saw
//! it.

use std::borrow::Cow;
use std::fmt;
use std::sync::RwLock;

use url::Url;

/// What a secret is replaced with.
pub const MASK: &str = "<redacted>";

/// Shortest value [`register`] accepts (see the module docs).
pub const MIN_SECRET_LEN: usize = 8;

/// Registered secret texts, longest first (so a secret that contains
/// another is masked whole).
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Masks `secret` in every text passed through [`text`] from now on, in the
/// forms it takes in output: as is, and percent-encoded as a URL path
/// segment or query value.
pub fn register(secret: &str) {
    if secret.chars().count() < MIN_SECRET_LEN {
        return;
    }
    let mut forms = vec![secret.to_owned()];
    if let Ok(mut u) = Url::parse("http://x/") {
        if let Ok(mut segments) = u.path_segments_mut() {
            segments.push(secret);
        }
        forms.push(u.path()[1..].to_owned());
    }
    forms.push(url::form_urlencoded::byte_serialize(secret.as_bytes()).collect());
    let mut all = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    for form in forms {
        if !all.contains(&form) {
            all.push(form);
        }
    }
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Whether `s` holds a registered secret.
pub fn holds_secret(s: &str) -> bool {
    let all = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    all.iter().any(|secret| s.contains(secret.as_str()))
}

/// `s` with every URL shown by [`url()`] and every registered secret masked.
pub fn text(s: &str) -> Cow<'_, str> {
    if s.contains("://") {
        return Cow::Owned(secrets(&urls(s)).into_owned());
    }
    secrets(s)
}

/// `s` with every registered secret masked, and nothing else changed: for
/// server text that is kept as data rather than shown (a clip's title, its
/// URLs), where rule 2 would break a URL that is still to be fetched.
pub fn secrets(s: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(s);
    let all = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    for secret in all.iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), MASK));
        }
    }
    out
}

/// Masks registered secrets in `s` in place (see [`secrets`]).
pub fn mask_in_place(s: &mut String) {
    if let Cow::Owned(masked) = secrets(s) {
        *s = masked;
    }
}

/// A URL for display: no user info, query values masked, no fragment, the
/// secret segment of `/callback/<secret>/<key>` masked.
pub fn url(u: &Url) -> String {
    let mut shown = String::new();
    shown.push_str(u.scheme());
    shown.push_str("://");
    if let Some(host) = u.host_str() {
        shown.push_str(host);
    }
    if let Some(port) = u.port() {
        shown.push_str(&format!(":{port}"));
    }
    let segments: Vec<&str> = u.path().split('/').collect();
    let mut path = Vec::with_capacity(segments.len());
    for (i, segment) in segments.iter().enumerate() {
        // `/callback/<secret>/<key>`: the segment after `callback`, when a
        // key follows it.
        let is_secret = i >= 1 && segments[i - 1] == "callback" && i + 1 < segments.len();
        path.push(if is_secret { MASK } else { segment });
    }
    shown.push_str(&path.join("/"));
    if let Some(query) = u.query() {
        // An empty value stays empty: nothing to hide, and text already
        // redacted (`?token=<redacted>`) comes out the same.
        let names: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(name, value)| match value.is_empty() {
                true => format!("{name}="),
                false => format!("{name}={MASK}"),
            })
            .collect();
        shown.push('?');
        shown.push_str(&names.join("&"));
    }
    shown
}

/// Replaces each `http://` / `https://` URL in `s` by its [`url()`] form.
fn urls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = find_scheme(rest) {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || "\"'<>()[]{}`".contains(c))
            .unwrap_or(tail.len());
        let mut candidate = &tail[..end];
        // A sentence's full stop or comma is not part of the URL.
        while let Some(stripped) = candidate.strip_suffix(['.', ',', ';', ':']) {
            candidate = stripped;
        }
        match Url::parse(candidate) {
            Ok(u) => out.push_str(&url(&u)),
            Err(_) => out.push_str(candidate),
        }
        // Never empty (it starts with the scheme), so the loop moves on.
        rest = &tail[candidate.len()..];
    }
    out.push_str(rest);
    out
}

fn find_scheme(s: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    match (lower.find("http://"), lower.find("https://")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A secret string (the API key). Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `s`, and registers it with [the rule above](self) so that it is
    /// masked in every output from now on, whoever prints it.
    pub fn new(s: impl Into<String>) -> Secret {
        let s = s.into();
        register(&s);
        Secret(s)
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A short name for the key that never reveals it: `key-` and the
    /// first 8 hex digits of a SHA-256 over a fixed prefix and the key.
    /// What logs, reports and the state file call an account with no label
    /// of its own; two keys share one with odds of 1 in 4 billion, and 32
    /// bits of a hash say nothing usable about a key of API-key entropy.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(b"batchgen account\0")
            .chain_update(self.0.as_bytes())
            .finalize();
        format!("key-{}", hex::encode(&digest[..4]))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_formats() {
        let s = Secret::new("sk-very-secret");
        assert!(!format!("{s:?} {s}").contains("very"));
    }

    #[test]
    fn registered_secrets_are_masked_raw_and_encoded() {
        register("sk-redact-test-0123456789");
        register("cb/secret with space!");
        let masked = text("HTTP 401: bad key sk-redact-test-0123456789 (again)");
        assert_eq!(masked, "HTTP 401: bad key <redacted> (again)");
        let masked = text("posting to http://h/callback/cb%2Fsecret%20with%20space!/k1 failed");
        assert!(!masked.contains("secret"), "{masked}");
        let masked = text("token=cb%2Fsecret+with+space%21");
        assert!(!masked.contains("secret"), "{masked}");
        assert!(holds_secret("xx sk-redact-test-0123456789"));
        assert!(!holds_secret("nothing here"));
    }

    #[test]
    fn short_values_are_not_registered() {
        register("k");
        assert_eq!(text("a key k"), "a key k");
    }

    #[test]
    fn urls_lose_user_info_query_values_and_callback_secrets() {
        let u = |s: &str| url(&Url::parse(s).unwrap());
        assert_eq!(
            u("https://user:pw@api.example.com:8443/api/generate"),
            "https://api.example.com:8443/api/generate"
        );
        assert_eq!(
            u("https://cdn.example/a.mp3?sig=abc&exp=1#frag"),
            "https://cdn.example/a.mp3?sig=<redacted>&exp=<redacted>"
        );
        assert_eq!(
            u("http://127.0.0.1:9/hooks/callback/s3cr3t-value/job-1"),
            "http://127.0.0.1:9/hooks/callback/<redacted>/job-1"
        );
        // Not the callback shape: a path ending in `callback` stays.
        assert_eq!(u("https://h/api/callback"), "https://h/api/callback");
    }

    #[test]
    fn urls_inside_text_are_rewritten_and_the_rest_kept() {
        let t = text(
            "error sending request for url (http://u:p@h/callback/abc/k?x=1). Next: HTTPS://h2/?t=9.",
        );
        assert_eq!(
            t,
            "error sending request for url (http://h/callback/<redacted>/k?x=<redacted>). Next: https://h2/?t=<redacted>."
        );
        assert_eq!(text("no url here"), "no url here");
        // Redacting twice changes nothing.
        for once in [
            "HTTP 301 to https://e.example/api?token=<redacted>: fix --base-url",
            "to http://h/callback/<redacted>/k failed",
        ] {
            assert_eq!(text(once), once);
        }
        assert_eq!(text("http:// broken"), "http:// broken");
    }

    #[test]
    fn a_fingerprint_names_a_key_without_revealing_it() {
        let key = Secret::new("sk-fingerprint-test-0123456789");
        let print = key.fingerprint();
        assert_eq!(print, key.clone().fingerprint(), "stable");
        assert!(print.starts_with("key-") && print.len() == 12, "{print}");
        assert!(print[4..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!print.contains("0123"), "{print}");
        assert_ne!(
            print,
            Secret::new("sk-fingerprint-test-0123456788").fingerprint()
        );
    }
}
