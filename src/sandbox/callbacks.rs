//! Callbacks: POSTing a task's clips to its `callback_url` as it moves
//! through its stages, as the service does.
//!
//! Each accepted task with a `callback_url` gets one background task (in the
//! sandbox's `JoinSet`) that sleeps until each phase begins and then POSTs
//! the face's body for it (`face`): on udioapi the bare clip array, the v2
//! feed's `response_data` for that phase plus `createTime`, so each clip
//! carries both time stamps as the callback docs show; on sunoapi its
//! `{code, msg, data: {callbackType, task_id, data}}` envelope. The stages: the text stage (with clip ids), first audio, the final stage (or,
//! for a moderated task, the text stage and the failure). The final stage
//! is reported in the sandbox's stage style: status `first` with "All
//! generated successfully." by default. With `--callback-complete-only`
//! only the last is sent, which the API allows ("may skip straight to the
//! final stage"). The phases are delivered in order, each exactly once,
//! even when a slow receiver makes one late.
//!
//! A delivery is tried [`ATTEMPTS`] times, [`FIRST_BACKOFF`] apart and
//! doubling, when the receiver is unreachable, times out or answers
//! anything but 2xx; the stats count acknowledged deliveries, retries and
//! deliveries given up.
//!
//! Unlike the real provider, which refuses localhost and private addresses,
//! the sandbox delivers to loopback on purpose: the receiver in a rehearsal
//! or a test runs on the same machine. Other hosts only with
//! `--callback-any-host`, so a rehearsal never feeds a real receiver fake
//! clips. It also
//! ignores proxy environment variables, so a loopback receiver is never sent
//! through a proxy. Shutting the sandbox down (or dropping it) cancels
//! pending deliveries; a reset aborts them.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinSet;

use super::Host;
use super::lifecycle::Phase;
use super::state::Task;

/// Tries per delivery, the first included.
const ATTEMPTS: u32 = 4;
/// Wait before the first retry; each further retry waits twice as long.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait for a receiver's answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Whether `url` names this machine: `localhost`, 127.0.0.0/8 or `::1`.
pub(super) fn is_loopback(url: &str) -> bool {
    let Ok(url) = url::Url::parse(url) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether `url`'s host is under `.invalid` (RFC 6761): a name that never
/// resolves, the placeholder a client that polls sends where a callback URL
/// is required. Nothing is ever posted to one.
pub(super) fn is_reserved_invalid(url: &str) -> bool {
    let Ok(url) = url::Url::parse(url) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "invalid" || d.ends_with(".invalid")
        }
        _ => false,
    }
}

/// Starts delivering `task`'s callbacks to `url` in the background.
pub(super) fn spawn(shared: &Arc<Host>, set: &mut JoinSet<()>, task: Task, url: String) {
    // Reap finished deliveries so a long-running sandbox does not keep them.
    while set.try_join_next().is_some() {}
    let shared = Arc::clone(shared);
    set.spawn(async move {
        let stop = shared.stop.clone();
        stop.run_until_cancelled(deliver_all(&shared, &task, &url))
            .await;
    });
}

async fn deliver_all(shared: &Host, task: &Task, url: &str) {
    let lifecycle = &shared.lifecycle;
    for &phase in lifecycle.callbacks(task.fails()) {
        tokio::time::sleep_until(task.accepted_at + lifecycle.starts_at(phase)).await;
        let Some(body) = shared.face.callback(shared, task, phase) else {
            return;
        };
        deliver(shared, url, &task.id, &body, phase).await;
    }
}

/// kie.ai's signature headers for a callback about `task_id` sent now:
/// base64(HMAC-SHA256(`<task_id>.<unix seconds>`, key)).
fn signature(key: &str, task_id: &str) -> [(&'static str, String); 2] {
    use base64::Engine as _;
    use hmac::{KeyInit as _, Mac as _};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .to_string();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(format!("{task_id}.{now}").as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    [
        ("X-Webhook-Timestamp", now),
        ("X-Webhook-Signature", signature),
    ]
}

async fn deliver(shared: &Host, url: &str, task_id: &str, body: &Value, phase: Phase) {
    let client = client(&shared.http);
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let mut request = client.post(url).json(body);
        if let Some(key) = &shared.webhook_hmac_key {
            for (name, value) in signature(key, task_id) {
                request = request.header(name, value);
            }
        }
        let why = match request.send().await {
            Ok(resp) if resp.status().is_success() => {
                shared.lock().records.counts.callbacks_sent += 1;
                tracing::debug!(url, ?phase, "sandbox callback delivered");
                return;
            }
            Ok(resp) => format!("HTTP {}", resp.status()),
            Err(e) => e.to_string(),
        };
        if attempt == ATTEMPTS {
            shared.lock().records.counts.callbacks_failed += 1;
            tracing::warn!(
                url,
                ?phase,
                "sandbox callback given up after {attempt} tries: {why}"
            );
            return;
        }
        shared.lock().records.counts.callback_retries += 1;
        tracing::debug!(url, ?phase, "sandbox callback failed ({why}); retrying");
        tokio::time::sleep(backoff).await;
        backoff *= 2;
    }
}

/// The HTTP client for callbacks, built on first use: building one loads
/// TLS roots, which most sandboxes never need.
///
/// batchgen builds its own clients in its wire and engine layers; this one
/// is deliberately separate: the sandbox may not use those layers (it is the
/// provider's imitation, not the client), and it differs on purpose: no
/// proxy (see the module docs), a short [`TIMEOUT`], and its own user agent,
/// so a receiver's log tells the sandbox's callbacks from batchgen's
/// requests.
fn client(cell: &OnceLock<reqwest::Client>) -> &reqwest::Client {
    cell.get_or_init(|| {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(TIMEOUT)
            .user_agent(concat!("batchgen-sandbox/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|e| {
                tracing::warn!("sandbox callback client: {e}; using defaults");
                reqwest::Client::new()
            })
    })
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn invalid_hosts_are_reserved() {
        use super::is_reserved_invalid;
        assert!(is_reserved_invalid("https://batchgen.invalid/callback"));
        assert!(is_reserved_invalid("http://INVALID./x"));
        assert!(!is_reserved_invalid("http://127.0.0.1:9/x"));
        assert!(!is_reserved_invalid("http://invalid.example.com/"));
    }

    #[test]
    fn only_this_machine_is_loopback() {
        for yes in [
            "http://localhost:9/x",
            "http://127.0.0.1/",
            "http://127.8.0.1/",
            "http://[::1]:80/",
        ] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in [
            "https://example.com/hook",
            "http://10.0.0.1/",
            "http://localhost.evil.com/",
            "nonsense",
        ] {
            assert!(!is_loopback(no), "{no}");
        }
    }
}
