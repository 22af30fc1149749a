//! The one place the tests poll. Everything else waits for an event: a
//! channel from a test server, a line the binary prints, an inotify event
//! in a folder, a child's exit (see [`super::wait`]). What is left here has
//! no event to wait for: the in-process sandbox's counters
//! ([`Sandbox::stats`]) change without telling anyone, so they are read
//! again every few milliseconds until they say what the test waits for.
//!
//! A `Sandbox` that announced its changes (a `tokio::sync::watch` of its
//! stats, say) would replace this file. Until then, `hygiene.rs` allows a
//! sleep in this file only, and every caller names what it waits for.

use std::time::Duration;

use batchgen::sandbox::{Sandbox, Stats};

use super::wait::WAIT;

/// How often the counters are read again.
const EVERY: Duration = Duration::from_millis(5);

/// Waits until `sb`'s stats satisfy `done`, and returns them; fails,
/// naming `what`, after [`WAIT`] (a hang, not slowness).
pub async fn stats_until(sb: &Sandbox, what: &str, done: impl Fn(&Stats) -> bool) -> Stats {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let stats = sb.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}: {stats:?}"
        );
        tokio::time::sleep(EVERY).await;
    }
}
