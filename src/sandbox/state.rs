//! Everything the sandbox remembers: the tasks it accepted and the counters
//! behind `/sandbox/stats`.
//!
//! Tasks live in a [`TaskStore`] keyed by task id (and by clip id, for the
//! media routes) and kept in acceptance order. Each [`Task`] keeps the
//! fields as received, what was decided at acceptance (clip ids, title and
//! style, moderation or a 531 failure, watermarked lyrics, bad final URLs,
//! the clips' takes)
//! and when it was accepted, which is all
//! `lifecycle` needs to derive its phase from the time elapsed, and the
//! account that created it (only that account's key may poll it).
//!
//! The counters are the host's, and per account ([`KeyStats`]) what a key
//! pool's tests need: each key's requests, tasks, limits and balance.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::accounts::AccountId;
use super::audio::Take;
use crate::job::{JobFields, Provider};

/// One accepted generation task.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: String,
    /// The account whose key created it: the only one that sees it.
    pub account: AccountId,
    /// The request's fields as received (`token` and unknown fields dropped).
    pub fields: JobFields,
    /// [`JobFields::fingerprint`] of `fields`: lets tests count duplicates.
    pub fingerprint: String,
    /// batchgen's name of the model the host used: the request's, else
    /// the host's default ([`crate::job::Catalogue::host_default`]).
    pub model: String,
    /// On tokio's clock, so a feed can age tasks under a paused test clock.
    pub accepted_at: Instant,
    /// Wall-clock time, for the `created_at` a feed reports.
    pub created_at: SystemTime,
    /// The ids of the task's two clips, drawn from the seeded RNG.
    pub clip_ids: [String; 2],
    /// The clips' title: the job's own in custom mode, else the one the
    /// service writes (`written`).
    pub title: String,
    /// The clips' style (`tags`): as [`Task::title`].
    pub style: String,
    /// Per clip: whether its lyrics are the captcha watermark
    /// (`--fail-captcha`).
    pub watermarked: [bool; 2],
    /// Whether the task fails after its text stage with its credits given
    /// back (`--fail-531`, sunoapi's callback code 531).
    pub refunded: bool,
    /// How content moderation fails this task, if it does (decided at
    /// acceptance).
    pub moderation: Option<Rejection>,
    /// Per clip: what its final `audio_url` answers instead of the mp3
    /// (`--bad-audio`), if anything.
    pub bad_audio: [Option<BadAudio>; 2],
    /// Per clip: the audio its final mp3 serves (`--take-length`,
    /// `--bad-take`), whose length is its `duration`.
    pub takes: [Take; 2],
    /// The generate path the task was submitted to.
    pub path: &'static str,
    /// The request body as received, compact JSON without `token`: what
    /// sunoapi's `record-info` shows as `param`.
    pub request: String,
}

impl Task {
    /// Whether the task fails after its text stage: moderation, or
    /// `--fail-531`.
    pub fn fails(&self) -> bool {
        self.moderation.is_some() || self.refunded
    }
}

/// A task stopped by content moderation: the documented message its clips
/// carry, and in which field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    pub message: &'static str,
    /// `error_message` rather than `fail_message`: the docs name both.
    pub in_error_message: bool,
}

/// What a bad final `audio_url` answers (`--bad-audio`); see
/// [`super::BadAudioKind`] for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadAudio {
    Html,
    Json,
    NotFound,
    NoneMp3,
    Forbidden,
    Streaming,
    Missing,
}

/// Accepted tasks, by id, in acceptance order.
#[derive(Debug, Clone, Default)]
pub struct TaskStore {
    tasks: Vec<Task>,
    by_id: HashMap<String, usize>,
    by_clip: HashMap<String, usize>,
}

impl TaskStore {
    pub fn insert(&mut self, task: Task) {
        let index = self.tasks.len();
        self.by_id.insert(task.id.clone(), index);
        for clip in &task.clip_ids {
            self.by_clip.insert(clip.clone(), index);
        }
        self.tasks.push(task);
    }

    pub fn get(&self, id: &str) -> Option<&Task> {
        self.by_id.get(id).map(|&i| &self.tasks[i])
    }

    /// The task a clip belongs to.
    pub fn by_clip(&self, clip_id: &str) -> Option<&Task> {
        self.by_clip.get(clip_id).map(|&i| &self.tasks[i])
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
    /// The path it was submitted to: `/api/generate` or `/api/v2/generate`
    /// (udioapi), `/api/v1/generate` (sunoapi), `/api/generate` or
    /// `/api/custom_generate` (gcui).
    #[serde(default)]
    pub path: String,
}

/// What the sandbox has seen since it started or was last reset: the body
/// of `GET /sandbox/stats` and the value of [`super::Sandbox::stats`].
/// Missing fields read as zero, so stats from an older sandbox still parse.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// The provider the sandbox imitates, by its name (`udioapi`,
    /// `sunoapi`, `gcui`); a stats body without one is udioapi's.
    #[serde(with = "provider_name")]
    pub provider: Provider,
    /// Generate requests received, whatever became of them.
    pub requests: u64,
    /// Generate requests received per path (`/api/generate`,
    /// `/api/v2/generate`, …), whatever became of them.
    pub requests_by_path: BTreeMap<String, u64>,
    /// Poll requests received (udioapi's v2 and legacy feeds, sunoapi's
    /// `record-info`, gcui's `/api/get`), whatever became of them.
    pub feed_requests: u64,
    /// Of those, requests to the legacy feed (`/api/feed`, GET or POST).
    pub legacy_feed_requests: u64,
    /// v2 feed answers that said `data.type: SUCCESS` while the clips were
    /// not finished: the docs' trap, sprung. A client that stopped polling
    /// at `SUCCESS` stopped at one of these.
    pub success_before_final: u64,
    /// Requests for streaming URLs (`/media/stream/…`), whatever they got.
    /// A client that downloads only final mp3s makes none.
    pub stream_fetches: u64,
    /// Requests for final audio URLs (`/media/….mp3`, and `/api/forbidden`
    /// under `--bad-audio`), whatever they got.
    pub audio_fetches: u64,
    /// Tasks created (equals `tasks.len()`).
    pub accepted: u64,
    /// Tasks created per [`JobFields::fingerprint`]: a count above 1 is a
    /// duplicate submission (billed twice by the real service).
    pub accepted_by_fingerprint: BTreeMap<String, u64>,
    pub tasks: Vec<TaskSummary>,
    /// Answers sent to generate requests, by HTTP status (JSON keys are the
    /// status as a string). Dropped connections have no status and are
    /// counted in `injected`.
    pub responses: BTreeMap<u16, u64>,
    /// Answers sent to generate requests, by the `code` in their JSON body
    /// where they have one (udioapi and sunoapi): on sunoapi, where errors
    /// may travel with HTTP 200, this is where they show.
    pub body_codes: BTreeMap<u16, u64>,
    pub injected: Injected,
    /// 429s from the rate limiter (not from `fail_429`).
    pub rate_limited: u64,
    /// Credits spent on accepted tasks.
    pub credits_used: u64,
    /// Credits given back: tasks that failed with sunoapi's code 531
    /// ("credits refunded"), once they failed. The balance is `--credits`
    /// less `credits_used` plus these.
    pub credits_refunded: u64,
    /// Callbacks the receiver acknowledged with a 2xx.
    pub callbacks_sent: u64,
    /// Callbacks given up after every attempt failed.
    pub callbacks_failed: u64,
    /// Callback attempts that failed and were tried again.
    pub callback_retries: u64,
    /// Per account, by its key (or gcui cookie) as configured: a test
    /// sandbox's keys are not secrets. Every configured key has an entry.
    pub by_key: BTreeMap<String, KeyStats>,
}

/// One account's share of [`Stats`]. Requests that present no known key
/// belong to none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyStats {
    /// Generate requests that presented this key, whatever became of them.
    pub requests: u64,
    /// Tasks it created.
    pub accepted: u64,
    /// 429s (sunoapi: code 430) from its rate limiter.
    pub rate_limited: u64,
    /// Submits refused because its balance could not cover them.
    pub no_credits: u64,
    /// Poll requests that presented it, whatever became of them.
    pub feed_requests: u64,
    /// Its starting balance.
    pub credits: u64,
    /// Credits spent on its tasks.
    pub credits_used: u64,
    /// Credits given back to it (`--fail-531`).
    pub credits_refunded: u64,
    /// Its balance now: `credits` less `credits_used` plus
    /// `credits_refunded`.
    pub credits_left: u64,
}

impl KeyStats {
    /// Credits spent and not given back.
    pub fn credits_spent(&self) -> u64 {
        self.credits_used.saturating_sub(self.credits_refunded)
    }
}

/// The task store and the counters behind [`Stats`].
#[derive(Debug, Clone)]
pub struct Records {
    pub tasks: TaskStore,
    /// Every counter of [`Stats`], kept in the type that reports them so a
    /// new counter cannot be added to one and forgotten in the other. The
    /// fields derived from the task store (`accepted`,
    /// `accepted_by_fingerprint`, `tasks`, `by_key`) stay empty here:
    /// [`Records::stats`] fills them in.
    pub counts: Stats,
    /// Each account's counters, by [`AccountId`]; `credits` is its
    /// starting balance.
    pub accounts: Vec<KeyStats>,
    /// When each refund still to come is due (a `--fail-531` task's
    /// failure) and to which account, earliest first;
    /// [`Records::settle_refunds`] gives them back.
    pub refunds: BinaryHeap<Reverse<(Instant, AccountId)>>,
}

impl Records {
    /// No tasks yet, and these starting balances, one per account.
    pub fn new(balances: impl IntoIterator<Item = u64>) -> Records {
        Records {
            tasks: TaskStore::default(),
            counts: Stats::default(),
            accounts: balances
                .into_iter()
                .map(|credits| KeyStats {
                    credits,
                    ..KeyStats::default()
                })
                .collect(),
            refunds: BinaryHeap::new(),
        }
    }

    /// An account's counters.
    pub fn account(&mut self, account: AccountId) -> &mut KeyStats {
        &mut self.accounts[account.0]
    }

    /// Counts a generate request that came by `path`, whatever becomes of
    /// it.
    pub fn count_request(&mut self, path: &str) {
        self.counts.requests += 1;
        *self.counts.requests_by_path.entry(path.into()).or_default() += 1;
    }

    /// Counts an answer's HTTP status and, if its body has one, its `code`.
    pub fn count_response(&mut self, status: u16, body_code: Option<u16>) {
        *self.counts.responses.entry(status).or_default() += 1;
        if let Some(code) = body_code {
            *self.counts.body_codes.entry(code).or_default() += 1;
        }
    }

    /// Gives back `credits` for every refund due by `now`, each to its
    /// account.
    pub fn settle_refunds(&mut self, now: Instant, credits: u64) {
        while let Some(&Reverse((due, account))) = self.refunds.peek()
            && due <= now
        {
            self.refunds.pop();
            self.counts.credits_refunded = self.counts.credits_refunded.saturating_add(credits);
            let refunded = &mut self.account(account).credits_refunded;
            *refunded = refunded.saturating_add(credits);
        }
    }

    /// An account's credits spent and not given back, after the refunds
    /// due by `now`.
    pub fn credits_spent(
        &mut self,
        now: Instant,
        credits_per_task: u64,
        account: AccountId,
    ) -> u64 {
        self.settle_refunds(now, credits_per_task);
        self.account(account).credits_spent()
    }

    /// Spends `credits` of an account.
    pub fn spend(&mut self, account: AccountId, credits: u64) {
        self.counts.credits_used = self.counts.credits_used.saturating_add(credits);
        let used = &mut self.account(account).credits_used;
        *used = used.saturating_add(credits);
    }

    /// The stats, each account under its key (`keys` in [`AccountId`]
    /// order). Refunds are as last settled.
    pub fn stats<'k>(&self, keys: impl IntoIterator<Item = &'k str>) -> Stats {
        let mut by_fp = BTreeMap::new();
        for t in self.tasks.iter() {
            *by_fp.entry(t.fingerprint.clone()).or_default() += 1;
        }
        Stats {
            accepted: self.tasks.len() as u64,
            accepted_by_fingerprint: by_fp,
            tasks: self
                .tasks
                .iter()
                .map(|t| TaskSummary {
                    task_id: t.id.clone(),
                    fingerprint: t.fingerprint.clone(),
                    body: t.fields.clone(),
                    path: t.path.to_owned(),
                })
                .collect(),
            by_key: keys
                .into_iter()
                .zip(&self.accounts)
                .map(|(key, counts)| {
                    let left = counts.credits.saturating_sub(counts.credits_spent());
                    let counts = KeyStats {
                        credits_left: left,
                        ..*counts
                    };
                    (key.to_owned(), counts)
                })
                .collect(),
            ..self.counts.clone()
        }
    }
}

/// [`Provider`] in JSON as its name, as users write it.
mod provider_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::job::Provider;

    pub fn serialize<S: Serializer>(p: &Provider, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(p.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Provider, D::Error> {
        let name = String::deserialize(d)?;
        Provider::parse(&name).map_err(serde::de::Error::custom)
    }
}
