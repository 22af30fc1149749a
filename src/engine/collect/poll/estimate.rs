//! The running estimate of how long a task takes, submission to finish.
//!
//! A robust estimate: the median of the last [`WINDOW`] observations, so a
//! few stragglers (a task the host sat on, a poll made late by the rate
//! limit) move it little, and a change of regime (the host got faster)
//! replaces it within a window. Kept per model (the clips name it) and
//! overall; a model with fewer than [`MIN_PER_MODEL`] observations uses
//! the overall figure.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// Observations the median is taken over, per model and overall.
pub const WINDOW: usize = 15;
/// Observations a model needs before its own median is used.
pub const MIN_PER_MODEL: usize = 3;
/// Models tracked at most (a hostile host could name a new one per clip).
const MAX_MODELS: usize = 32;

/// The last observations, newest at the back.
#[derive(Debug, Clone, Default)]
struct Window(VecDeque<Duration>);

impl Window {
    fn push(&mut self, d: Duration) {
        if self.0.len() == WINDOW {
            self.0.pop_front();
        }
        self.0.push_back(d);
    }

    /// The median (the upper one of an even count: erring late costs a
    /// little latency, erring early costs a poll).
    fn median(&self) -> Option<Duration> {
        let mut v: Vec<Duration> = self.0.iter().copied().collect();
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    }
}

/// Durations observed, overall and per model.
#[derive(Debug, Clone, Default)]
pub struct Estimates {
    overall: Window,
    by_model: HashMap<String, Window>,
}

impl Estimates {
    /// Records one task's duration (`model` empty when the clips named none).
    pub fn observe(&mut self, model: &str, d: Duration) {
        self.overall.push(d);
        if model.is_empty() {
            return;
        }
        if !self.by_model.contains_key(model) && self.by_model.len() >= MAX_MODELS {
            return;
        }
        self.by_model.entry(model.to_owned()).or_default().push(d);
    }

    /// The estimate for a task of `model` (empty: unknown yet); `None`
    /// before any task finished with a usable observation.
    pub fn get(&self, model: &str) -> Option<Duration> {
        self.by_model
            .get(model)
            .filter(|w| w.0.len() >= MIN_PER_MODEL)
            .and_then(Window::median)
            .or_else(|| self.overall.median())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn the_median_ignores_stragglers_and_follows_a_new_regime() {
        let mut e = Estimates::default();
        assert_eq!(e.get(""), None);
        for d in [40, 41, 300, 40, 39] {
            e.observe("", s(d));
        }
        assert_eq!(e.get(""), Some(s(40)));
        for _ in 0..WINDOW {
            e.observe("", s(10));
        }
        assert_eq!(e.get(""), Some(s(10)));
    }

    #[test]
    fn a_model_with_enough_observations_has_its_own_estimate() {
        let mut e = Estimates::default();
        for _ in 0..5 {
            e.observe("fast", s(10));
        }
        e.observe("slow", s(60));
        e.observe("slow", s(60));
        assert_eq!(e.get("fast"), Some(s(10)));
        // Two observations are not enough: the overall median (of 7) is used.
        assert_eq!(e.get("slow"), Some(s(10)));
        e.observe("slow", s(60));
        assert_eq!(e.get("slow"), Some(s(60)));
        assert_eq!(e.get("unknown"), Some(s(10)));
    }
}
