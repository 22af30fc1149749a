//! The poll loop's pace: what a 429 does to the limiter and to every poll.

use super::*;
use crate::api::answer::HostError;
use crate::util::limit::STORM_AFTER;

fn status(status: u16, retry_after: Option<Duration>) -> PollError {
    PollError::Host(HostError::Status {
        status,
        message: String::new(),
        retry_after,
    })
}

#[tokio::test(start_paused = true)]
async fn a_429_naming_no_wait_slows_the_polls_pace_and_nothing_else_does() {
    let limiter = Limiter::new("2/s".parse().unwrap(), NonZeroU32::MIN).unwrap();
    let start = limiter.interval();
    // Answers, a 5xx, and a 429 that names its wait: the pace holds.
    for answers in [
        Ok(vec![Ok(TaskClips::default())]),
        Err(status(503, None)),
        Err(status(429, Some(Duration::from_secs(3)))),
    ] {
        let slot = limiter.until_ready().await;
        pace(&limiter, slot, &answers);
        assert_eq!(limiter.interval(), start);
    }
    // A bare 429 for one task of a batch slows it.
    let slot = limiter.until_ready().await;
    let answers = Ok(vec![Ok(TaskClips::default()), Err(status(429, None))]);
    pace(&limiter, slot, &answers);
    assert!(limiter.interval() > start);
}

#[tokio::test(start_paused = true)]
async fn a_bare_429_pauses_every_poll_only_in_a_storm_when_paced() {
    let bare = status(429, None);
    let mut paced = Poller::<()>::new(Duration::from_secs(5));
    paced.paced_in_flight = Some(4);
    for _ in 0..4 + STORM_AFTER {
        assert_eq!(
            paced.request_failed(&bare).unwrap(),
            None,
            "the pace gives way"
        );
    }
    assert!(
        paced.request_failed(&bare).unwrap().is_some(),
        "a storm backs off"
    );
    // A named wait is honoured at once, storm or not.
    let named = status(429, Some(Duration::from_secs(7)));
    let mut fresh = Poller::<()>::new(Duration::from_secs(5));
    fresh.paced_in_flight = Some(4);
    assert_eq!(
        fresh.request_failed(&named).unwrap(),
        Some(Duration::from_secs(7))
    );
    // Unpaced (an unlimited --poll-rate), every bare 429 backs off.
    let mut unpaced = Poller::<()>::new(Duration::from_secs(5));
    assert!(unpaced.request_failed(&bare).unwrap().is_some());
}
