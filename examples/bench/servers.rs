//! The bench's own instruments: a counting server and the bare reqwest loop.
//!
//! # Why a counting server next to the sandbox
//! Rate fidelity needs the arrival time of every request, and the sandbox
//! does not expose them (its stats list tasks, not times). So the rate
//! targets run against [`Counter`]: a minimal axum server that timestamps
//! each generate `POST` when its handler runs, answers the documented
//! success JSON, and applies one of two limiters ([`Limit`]): the sandbox's
//! own no-burst GCRA (`batchgen::sandbox::limit::HostLimit`: tolerance
//! `T/2` within `[5 ms, 50 ms]`, `TAT = max(TAT, now) + T`, a refusal does not move the
//! schedule), whose 429 count is therefore the count the sandbox would
//! answer; or a zero-tolerance one judged after a random network delay,
//! what nginx's `limit_req` without `burst` does behind a real network.
//! With no limit it is also a cheap sink that keeps nothing but timestamps,
//! used for the 10^6-row runs where the sandbox would hold every task in
//! the bench's memory.
//!
//! # Why the bare loop runs on its own runtime
//! batchgen is a separate process with its own tokio runtime; the loop gets
//! its own 2-worker runtime too, so it does not share the sandbox's
//! scheduler and the comparison is client against client.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use batchgen::job::Job;
use batchgen::sandbox::limit::HostLimit;
use rand::RngExt;
use reqwest::header::AUTHORIZATION;

/// The limit a [`Counter`] enforces.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// None: every request is accepted.
    Unlimited,
    /// The sandbox's GCRA at one request per interval, answering 429 with
    /// `Retry-After: 1`.
    Sandbox(Duration),
    /// Zero tolerance at one request per interval, each request judged
    /// after a uniform random delay of up to `jitter` (the network between
    /// client and limiter), answering a bare 429 with no `Retry-After`.
    Strict {
        interval: Duration,
        jitter: Duration,
    },
}

/// Counting server state.
#[derive(Default)]
struct Log {
    arrivals: Mutex<Vec<Instant>>,
    /// The limiter, when a rate is enforced.
    gcra: Mutex<Option<HostLimit>>,
    /// The strict limit's network delay.
    jitter: Option<Duration>,
    rate_limited: AtomicU64,
    /// Anything but a generate request (the balance check, for one).
    other: AtomicU64,
}

/// A running counting server; stops when dropped.
pub struct Counter {
    pub base_url: String,
    log: Arc<Log>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Counter {
    /// Starts on 127.0.0.1:0, enforcing `limit`.
    pub async fn start(limit: Limit) -> Counter {
        let (gcra, jitter) = match limit {
            Limit::Unlimited => (None, None),
            Limit::Sandbox(interval) => (Some(HostLimit::new(interval)), None),
            Limit::Strict { interval, jitter } => (Some(HostLimit::strict(interval)), Some(jitter)),
        };
        let log = Arc::new(Log {
            gcra: Mutex::new(gcra),
            jitter,
            ..Log::default()
        });
        let app = Router::new()
            .route("/api/generate", post(generate))
            .route("/api/v2/generate", post(generate))
            .route("/api/v2/feed", axum::routing::get(feed))
            .fallback(other)
            .with_state(log.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Counter {
            base_url,
            log,
            task,
        }
    }

    /// Generate requests in arrival order.
    pub fn arrivals(&self) -> Vec<Instant> {
        let mut a = self.log.arrivals.lock().unwrap().clone();
        a.sort();
        a
    }

    pub fn rate_limited(&self) -> u64 {
        self.log.rate_limited.load(Ordering::Relaxed)
    }

    /// Every request received, generate or not.
    pub fn all_requests(&self) -> u64 {
        self.log.arrivals.lock().unwrap().len() as u64 + self.log.other.load(Ordering::Relaxed)
    }
}

async fn generate(State(log): State<Arc<Log>>) -> Response {
    let arrived = tokio::time::Instant::now();
    let now = arrived.into_std();
    let n = {
        let mut a = log.arrivals.lock().unwrap();
        a.push(now);
        a.len()
    };
    if let Some(jitter) = log.jitter {
        // The network between client and limiter: each request reaches the
        // limiter a random moment later, judged on that moment.
        let delay = rand::rng().random_range(Duration::ZERO..=jitter);
        let judged = arrived + delay;
        tokio::time::sleep_until(judged).await;
        if let Some(limiter) = log.gcra.lock().unwrap().as_mut()
            && limiter.check(judged).is_err()
        {
            log.rate_limited.fetch_add(1, Ordering::Relaxed);
            return (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(serde_json::json!({"code": 429, "message": "rate limit exceeded"})),
            )
                .into_response();
        }
    } else if let Some(limiter) = log.gcra.lock().unwrap().as_mut()
        && limiter.check(arrived).is_err()
    {
        log.rate_limited.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            axum::Json(serde_json::json!({"code": 429, "message": "rate limit exceeded"})),
        )
            .into_response();
    }
    let id = format!("bench-{n}");
    axum::Json(serde_json::json!({
        "code": 200, "message": "success", "workId": id, "data": {"task_id": id},
    }))
    .into_response()
}

/// The v2 feed of any task: finished, two clips, as the docs show the
/// final stage. It keeps nothing per task (a million polls cost the bench
/// a counter), which is what the collect-memory target needs.
async fn feed(
    State(log): State<Arc<Log>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    log.other.fetch_add(1, Ordering::Relaxed);
    let task = query
        .as_deref()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("workId=")))
        .unwrap_or("unknown")
        .to_owned();
    let clip = |n: u32| {
        serde_json::json!({
            "id": format!("{task}-{n}"), "status": "first",
            "extra_message": "All generated successfully.",
            "title": "Bench", "tags": "lofi, 90 bpm", "model_name": "chirp-v3-5",
            "audio_url": format!("https://cdn.example/{task}-{n}.mp3"),
            "image_url": format!("https://cdn.example/{task}-{n}.png"),
            "duration": 61.2, "created_at": "2025-01-01T00:00:00Z",
        })
    };
    axum::Json(serde_json::json!({
        "code": 200, "message": "success",
        "data": {"type": "SUCCESS", "request_body": {}, "response_data": [clip(1), clip(2)]},
    }))
    .into_response()
}

async fn other(State(log): State<Arc<Log>>) -> StatusCode {
    log.other.fetch_add(1, Ordering::Relaxed);
    StatusCode::NOT_FOUND
}

/// What the bare loop achieved.
pub struct LoopResult {
    pub per_second: f64,
    pub errors: u64,
}

/// Posts `n` requests (cycling over `jobs`' bodies) to `base_url` from
/// `concurrency` tasks, with the client built as `batchgen::api::submit::Client` builds it
/// (from [`batchgen::api::http::builder`]) and the same Bearer header and JSON body per request. Blocks:
/// call it from `spawn_blocking`.
pub fn bare_loop(
    base_url: &str,
    key: &str,
    jobs: Arc<[Job]>,
    concurrency: usize,
    n: usize,
) -> LoopResult {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let timeout = Duration::from_secs(60);
    let http = batchgen::api::http::builder(timeout)
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = reqwest::Url::parse(&format!("{base_url}/api/generate")).unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (http, url, key) = (http.clone(), url.clone(), key.to_owned());
            let (jobs, next, errors) = (jobs.clone(), next.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let sent = http
                        .post(url.clone())
                        .header(AUTHORIZATION, format!("Bearer {key}"))
                        .json(jobs[i % jobs.len()].body())
                        .send()
                        .await;
                    let ok = match sent {
                        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    if !ok {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    LoopResult {
        per_second: n as f64 / start.elapsed().as_secs_f64(),
        errors: errors.load(Ordering::Relaxed),
    }
}
