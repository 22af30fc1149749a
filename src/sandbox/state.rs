//! Everything the sandbox remembers: the tasks it accepted and the counters
//! behind `/sandbox/stats`.
//!
//! Tasks live in a [`TaskStore`] keyed by task id and kept in acceptance
//! order. Each [`Task`] keeps the fields as received and when it was
//! accepted, which is all a feed needs later to derive a task's lifecycle
//! (`IN_PROGRESS` → `SUCCESS`, clips `text` → `first` → `complete`) from the
//! time elapsed, without changing how tasks are recorded.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::job::JobFields;

/// One accepted generation task.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: String,
    /// The request's fields as received (`token` and unknown fields dropped).
    pub fields: JobFields,
    /// [`JobFields::fingerprint`] of `fields`: lets tests count duplicates.
    pub fingerprint: String,
    #[allow(dead_code, reason = "for the feed's lifecycle, not built yet")]
    /// On tokio's clock, so a feed can age tasks under a paused test clock.
    pub accepted_at: Instant,
    #[allow(dead_code, reason = "for the feed's created_at, not built yet")]
    /// Wall-clock time, for the `created_at` a feed reports.
    pub created_at: SystemTime,
}

/// Accepted tasks, by id, in acceptance order.
#[derive(Debug, Clone, Default)]
pub struct TaskStore {
    tasks: Vec<Task>,
    by_id: HashMap<String, usize>,
}

impl TaskStore {
    pub fn insert(&mut self, task: Task) {
        self.by_id.insert(task.id.clone(), self.tasks.len());
        self.tasks.push(task);
    }

    #[allow(
        dead_code,
        reason = "for the feed (GET /api/v2/feed?workId=), not built yet"
    )]
    pub fn get(&self, id: &str) -> Option<&Task> {
        self.by_id.get(id).map(|&i| &self.tasks[i])
    }

    pub fn iter(&self) -> impl Iterator<Item = &Task> {
        self.tasks.iter()
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }
}

/// How often each fault was actually applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Injected {
    pub fail_500: u64,
    pub fail_503: u64,
    pub fail_429: u64,
    pub slow: u64,
    pub drop_before: u64,
    pub drop_after: u64,
}

/// One accepted task as `/sandbox/stats` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSummary {
    pub task_id: String,
    pub fingerprint: String,
    /// The fields received, as a generate body.
    pub body: JobFields,
}

/// What the sandbox has seen since it started or was last reset: the body
/// of `GET /sandbox/stats` and the value of [`super::Sandbox::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Generate requests received, whatever became of them.
    pub requests: u64,
    /// Tasks created (equals `tasks.len()`).
    pub accepted: u64,
    /// Tasks created per [`JobFields::fingerprint`]: a count above 1 is a
    /// duplicate submission (billed twice by the real service).
    pub accepted_by_fingerprint: BTreeMap<String, u64>,
    pub tasks: Vec<TaskSummary>,
    /// Answers sent, by HTTP status (JSON keys are the status as a string).
    /// Dropped connections have no status and are counted in `injected`.
    pub responses: BTreeMap<u16, u64>,
    pub injected: Injected,
    /// 429s from the rate limiter (not from `fail_429`).
    pub rate_limited: u64,
}

/// Counters behind [`Stats`], next to the task store.
#[derive(Debug, Clone, Default)]
pub struct Records {
    pub tasks: TaskStore,
    pub requests: u64,
    pub responses: BTreeMap<u16, u64>,
    pub injected: Injected,
    pub rate_limited: u64,
}

impl Records {
    pub fn count_response(&mut self, status: u16) {
        *self.responses.entry(status).or_default() += 1;
    }

    pub fn stats(&self) -> Stats {
        let mut by_fp = BTreeMap::new();
        for t in self.tasks.iter() {
            *by_fp.entry(t.fingerprint.clone()).or_default() += 1;
        }
        Stats {
            requests: self.requests,
            accepted: self.tasks.len() as u64,
            accepted_by_fingerprint: by_fp,
            tasks: self
                .tasks
                .iter()
                .map(|t| TaskSummary {
                    task_id: t.id.clone(),
                    fingerprint: t.fingerprint.clone(),
                    body: t.fields.clone(),
                })
                .collect(),
            responses: self.responses.clone(),
            injected: self.injected,
            rate_limited: self.rate_limited,
        }
    }
}
