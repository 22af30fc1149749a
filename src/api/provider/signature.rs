//! kie.ai's signed callbacks (docs.kie.ai/common-api/webhook-verification):
//! with the account's webhook HMAC key enabled, each callback carries
//! `X-Webhook-Timestamp` (Unix seconds) and `X-Webhook-Signature` =
//! base64(HMAC-SHA256(`<data.task_id>.<timestamp>`, key)).
//!
//! A receiver given the key (`BATCHGEN_WEBHOOK_HMAC_KEY`) refuses a
//! callback whose signature is missing, does not match, or was made more
//! than [`MAX_SKEW`] away from its own clock (a replay), before anything
//! is recorded. The comparison is constant-time (`hmac`'s `verify_slice`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

/// The header holding the time of signing, in Unix seconds.
pub const TIMESTAMP_HEADER: &str = "x-webhook-timestamp";
/// The header holding the base64 signature.
pub const SIGNATURE_HEADER: &str = "x-webhook-signature";
/// The environment variable holding the account's webhook HMAC key.
pub const KEY_VAR: &str = "BATCHGEN_WEBHOOK_HMAC_KEY";
/// How far a signature's time may be from this machine's, in seconds.
pub const MAX_SKEW: i64 = 300;

/// Why a callback's signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("unsigned: no X-Webhook-Timestamp or X-Webhook-Signature header")]
    Missing,
    #[error("X-Webhook-Timestamp is not a Unix time in seconds")]
    BadTimestamp,
    #[error("signed {0} s away from this machine's clock (at most {MAX_SKEW}): stale or replayed")]
    Stale(i64),
    #[error("the body names no task (data.task_id), which the signature covers")]
    NoTask,
    #[error("the signature does not match (forged, or another HMAC key)")]
    Forged,
}

fn mac(key: &[u8], task_id: &str, timestamp: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(task_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac
}

/// The signature of a callback about `task_id` sent at `timestamp`, as the
/// host computes it (the sandbox signs with this).
pub fn sign(key: &[u8], task_id: &str, timestamp: &str) -> String {
    STANDARD.encode(mac(key, task_id, timestamp).finalize().into_bytes())
}

/// Checks a callback's signature headers against `task_id` (the body's
/// `data.task_id`) and the clock `now` (Unix seconds).
///
/// # Errors
/// Why the callback is refused.
pub fn verify(
    key: &[u8],
    task_id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    now: i64,
) -> Result<(), SignatureError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(SignatureError::Missing);
    };
    let timestamp = timestamp.trim();
    let at: i64 = timestamp
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    let skew = now.saturating_sub(at);
    if skew.abs() > MAX_SKEW {
        return Err(SignatureError::Stale(skew));
    }
    let task_id = task_id.ok_or(SignatureError::NoTask)?;
    let tag = STANDARD
        .decode(signature.trim())
        .map_err(|_| SignatureError::Forged)?;
    mac(key, task_id, timestamp)
        .verify_slice(&tag)
        .map_err(|_| SignatureError::Forged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_checked_for_its_task_key_and_time() {
        let key = b"whk-test-key";
        let now = 1_765_000_000;
        let ts = now.to_string();
        let sig = sign(key, "task-1", &ts);
        assert_eq!(
            verify(key, Some("task-1"), Some(&ts), Some(&sig), now),
            Ok(())
        );
        // The docs' recipe, spelled out: base64(HMAC-SHA256("task-1.<ts>")).
        let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
        m.update(format!("task-1.{ts}").as_bytes());
        assert_eq!(sig, STANDARD.encode(m.finalize().into_bytes()));

        let refused = |task: Option<&str>, ts: Option<&str>, sig: Option<&str>, now| {
            verify(key, task, ts, sig, now).unwrap_err()
        };
        assert_eq!(
            refused(Some("task-2"), Some(&ts), Some(&sig), now),
            SignatureError::Forged
        );
        assert_eq!(
            verify(b"other", Some("task-1"), Some(&ts), Some(&sig), now),
            Err(SignatureError::Forged)
        );
        assert_eq!(
            refused(Some("task-1"), None, Some(&sig), now),
            SignatureError::Missing
        );
        assert_eq!(
            refused(Some("task-1"), Some(&ts), None, now),
            SignatureError::Missing
        );
        assert_eq!(
            refused(None, Some(&ts), Some(&sig), now),
            SignatureError::NoTask
        );
        assert_eq!(
            refused(Some("task-1"), Some(&ts), Some(&sig), now + 301),
            SignatureError::Stale(301)
        );
        assert_eq!(
            refused(Some("task-1"), Some("soon"), Some(&sig), now),
            SignatureError::BadTimestamp
        );
        assert_eq!(
            refused(Some("task-1"), Some(&ts), Some("not base64!"), now),
            SignatureError::Forged
        );
    }
}
