//! The sandbox: a local imitation of the generation API (see `API.md`).
//!
//! It is both a product feature (`batchgen sandbox`: rehearse a manifest
//! without spending credits) and the server every integration test runs
//! against, so it answers like the real service, shapes and messages
//! included, and also does what the real service does on a bad day: rate
//! limits, 5xx errors, non-JSON error pages, slow answers and dropped
//! connections, each with a seeded, repeatable probability.
//!
//! After a submit it imitates the rest of a task's life as the provider's
//! docs describe it, quirks included: each task yields two clips that go
//! through the text, first-audio and final stages over `--stage-time` (or
//! fail moderation with one of the documented messages), visible through
//! the v2 and legacy feeds and pushed to the job's `callback_url`. By
//! default (`--stage-style documented`) `data.type` says `SUCCESS` from the
//! text stage on and the final stage is status `first` with "All generated
//! successfully."; streaming URLs answer a short partial body and are
//! counted, so a client that fetches one is caught. `--stage-style
//! complete` gives the older hosts' style. Every submit spends credits; the
//! final audio and cover URLs point at real MP3s of music-like takes
//! (under `--bad-take`, some with the defects a release gate rejects) and
//! PNGs served here (or, under `--bad-audio`, at what bad final URLs
//! answer).
//!
//! `--provider` picks which host it imitates: udioapi.pro (the default,
//! described above), sunoapi.org and its clones, or a self-hosted
//! gcui-art/suno-api. One engine (faults, limits, credits, lifecycle,
//! media, callback delivery, stats) under several wire faces: see `face`.
//!
//! One host serves several accounts, one per `--key` (see `accounts`):
//! each has its own balance, rate limiter and tasks, and its own share of
//! the stats. A key polling another account's task is told what its
//! provider tells of a task that does not exist.
//!
//! # What it may use, and why not the client's code
//! The sandbox sits in layer 3 ("imitation", see the crate's layout table)
//! and uses only the two layers below it: `util` (units such as
//! [`Rate`] and durations) and `job` (the job's fields and typed values,
//! and the API's validation rules, so it refuses exactly what batchgen
//! checks before sending). It never uses batchgen's wire code (`api`) or
//! anything above it: it is the independent imitation the client is
//! tested against, and an imitation that parsed requests or built answers
//! with the client's own code would agree with a client bug by
//! construction. Where it does the same job as client code (a GCRA rate
//! limiter, an HTTP client for callbacks, an accept loop), it keeps its own
//! on purpose, and says why at the spot.
//!
//! # Layout
//! Lowest first; each module uses only those above it in this list:
//! - `faults`: the seeded fault rolls, task and clip ids, and the faults
//!   drawn from an id;
//! - `limit`: the no-burst GCRA rate limiter;
//! - `accounts`: the `--key` specs and the accounts they make;
//! - `reply`: the API's error answer, shared by all routes;
//! - `request`: reading a generate body into the API's fields;
//! - `audio`: a clip's take (the MP3 its final URL serves), joined from
//!   phrases encoded once and shipped, and the bad takes of `--bad-take`;
//! - `state`: accepted tasks and the counters behind [`Stats`];
//! - `config`: [`SandboxConfig`], also the `batchgen sandbox` flags;
//! - `written`: what the service writes itself: a non-custom job's title
//!   and style, the captcha watermark in lyrics;
//! - `poll`: the read side every face shares (a task or clip and its
//!   phase now, the balance, the latency);
//! - `lifecycle`: a task's phase over time and how each style reports it;
//! - `assets`: the PNG of a clip, and which final URLs are bad;
//! - `clips`: the clip JSON of a phase (v2 feed, callback, legacy feed);
//! - `auth`: which account a request presents (its key, or gcui's
//!   cookie);
//! - `callbacks`: POSTing clips to `callback_url` at each stage, with retries;
//! - `feed`: udioapi's v2 and legacy feeds and its credit balance;
//! - `media`: the Range-aware routes that serve a clip's files;
//! - `decide`: the decision a generate request gets, phase by phase (auth,
//!   faults, limits, validation, credits, the task);
//! - `face`: each provider's wire face (udioapi, sunoapi, gcui, newapi): its
//!   routes, how it reads a submit body, and how it words answers, phases,
//!   callbacks and credits;
//! - `api`: the router, and the generate handler every face shares;
//! - this file: [`Sandbox`] (start, stop, inspect), the state every handler
//!   shares, and the accept loop.
//!
//! # Why a hand-written accept loop
//! `axum::serve` owns each connection, so a handler cannot make it vanish.
//! But "the server took the request and then the connection died" is the one
//! failure that makes resubmitting dangerous (the task may exist), and the
//! client must be tested against it for real. So each connection is served by
//! hyper-util's auto (HTTP/1 + HTTP/2) builder in its own task, and every
//! request carries a `ConnControl` in its extensions: a handler that cancels
//! it makes the connection task drop the connection, and the client sees the
//! socket close with no response at all. On HTTP/2 this drops every stream of
//! that connection, as a crashed server would.

mod accounts;
mod api;
mod assets;
mod audio;
mod auth;
mod callbacks;
mod clips;
mod config;
mod decide;
mod face;
mod faults;
mod feed;
mod lifecycle;
pub mod limit;
mod media;
mod poll;
mod reply;
mod request;
mod state;
mod written;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use axum::Router;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rand::RngExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::{CancellationToken, DropGuard};
use tower::ServiceExt;

use crate::util::units::Rate;
use accounts::{Account, AccountId};
pub use accounts::{KeySpec, KeySpecError};
pub use audio::{BadTakeKind, TakeLength};
pub use config::{BadAudioKind, ErrorStatus, RecordShape, SandboxConfig, StageStyle};
use face::Face;
use faults::{Dice, FaultSettings};
use lifecycle::Lifecycle;
pub use lifecycle::MODERATION_MESSAGES;
use limit::HostLimit;
use state::Records;
pub use state::{Injected, KeyStats, Stats, TaskSummary};

/// A running sandbox server. Dropping it stops the server too; call
/// [`Sandbox::shutdown`] to wait until the port is closed.
#[derive(Debug)]
pub struct Sandbox {
    addr: SocketAddr,
    shared: Arc<Host>,
    task: JoinHandle<()>,
    _stop_on_drop: DropGuard,
}

impl Sandbox {
    /// Binds `listen` (port 0 picks a free port) and serves in a background
    /// task on the current tokio runtime.
    ///
    /// # Errors
    /// When the address cannot be bound, or (`InvalidInput`) a key is
    /// given twice.
    pub async fn start(listen: SocketAddr, config: SandboxConfig) -> io::Result<Sandbox> {
        if let Some(key) = accounts::repeated_key(&config.keys) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("--key {key:?} is given twice: each key is one account"),
            ));
        }
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let shared = Arc::new(Host::new(config, base_url(addr), stop.child_token()));
        let task = tokio::spawn(accept_loop(
            listener,
            api::router(Arc::clone(&shared)),
            stop.clone(),
        ));
        tracing::info!(%addr, provider = %shared.face.provider(), "sandbox listening");
        Ok(Sandbox {
            addr,
            shared,
            task,
            _stop_on_drop: stop.drop_guard(),
        })
    }

    /// The address bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL clients use, e.g. `http://127.0.0.1:41234`. A wildcard
    /// address (`0.0.0.0`, `::`) is given as loopback.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The provider the sandbox imitates (`--provider`).
    pub fn provider(&self) -> crate::job::Provider {
        self.shared.face.provider()
    }

    /// The API key of the first account (the first `--key`, or the one
    /// made up): the key a single-key client uses.
    pub fn key(&self) -> &str {
        &self.shared.accounts[0].key
    }

    /// Every account's key, in the order given.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.shared.accounts.iter().map(|a| a.key.as_str())
    }

    /// What the sandbox has seen so far: the same data as `GET /sandbox/stats`.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// When the first and the last task held were accepted (on tokio's
    /// clock; their requests' arrival times): a client's submission phase,
    /// for benchmarks. `None` before any task.
    pub fn accepted_span(&self) -> Option<(tokio::time::Instant, tokio::time::Instant)> {
        let state = self.shared.lock();
        let mut times = state.records.tasks.iter().map(|t| t.accepted_at);
        let first = times.next()?;
        Some(times.fold((first, first), |(lo, hi), t| (lo.min(t), hi.max(t))))
    }

    /// Forgets all tasks and counters, aborts pending callbacks, restores
    /// every account's balance and restarts the rate limiters and the
    /// seeded sequences, as `POST /sandbox/reset` does. The keys stay.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops accepting, closes open connections, cancels pending callbacks
    /// and waits for the server task and the callback tasks to end.
    pub async fn shutdown(self) {
        let Sandbox {
            task,
            shared,
            _stop_on_drop,
            ..
        } = self;
        drop(_stop_on_drop);
        if let Err(e) = task.await {
            tracing::warn!("sandbox server task failed: {e}");
        }
        let mut callbacks = std::mem::take(&mut shared.lock().callbacks);
        while let Some(result) = callbacks.join_next().await {
            if let Err(e) = result {
                tracing::warn!("sandbox callback task failed: {e}");
            }
        }
    }
}

/// The URL clients use for a bound address; see [`Sandbox::base_url`].
fn base_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// What the handlers share: fixed settings plus the one lock over all state.
#[derive(Debug)]
struct Host {
    /// One per key, the first the default; never empty.
    accounts: Vec<Account>,
    /// The provider imitated: its routes and shapes (see `face`).
    face: Face,
    faults: FaultSettings,
    latency: Duration,
    seed: u64,
    lifecycle: Lifecycle,
    credits_per_task: u64,
    /// `Retry-After` of an injected 429.
    fail_429_retry_after: u64,
    /// Post callbacks to non-loopback hosts too (`--callback-any-host`).
    callback_any_host: bool,
    /// kie's webhook HMAC key (`--webhook-hmac-key`): callbacks are signed.
    webhook_hmac_key: Option<String>,
    /// The provider's rules, with the models `--extra-model` adds: the
    /// same checks the client ran before sending to that provider.
    rules: crate::job::Rules,
    /// `--take-length`, `--bad-take` and `--bad-take-kind`.
    takes: audio::TakeSettings,
    /// `--bad-audio` and `--bad-audio-kind`.
    bad_audio: f64,
    bad_audio_kind: BadAudioKind,
    /// `--fail-captcha` and `--fail-531`.
    fail_captcha: f64,
    fail_531: f64,
    /// Prefix of the media URLs in clips.
    base_url: String,
    /// Cancelled when the sandbox stops: ends pending callbacks.
    stop: CancellationToken,
    /// The callbacks' HTTP client, built on first use.
    http: OnceLock<reqwest::Client>,
    state: Mutex<State>,
}

/// Everything that changes, behind one lock that is never held across an
/// await.
#[derive(Debug)]
struct State {
    records: Records,
    /// Each account's rate limiter, by [`AccountId`]; `None` for none.
    limiters: Vec<Option<HostLimit>>,
    dice: Dice,
    /// One callback task per task with a `callback_url`. Replacing the state
    /// (a reset) drops the set, which aborts them.
    callbacks: JoinSet<()>,
}

impl Host {
    fn new(config: SandboxConfig, base_url: String, stop: CancellationToken) -> Host {
        let specs = if config.keys.is_empty() {
            vec![KeySpec::new(random_key())]
        } else {
            config.keys.clone()
        };
        let accounts = Account::resolve(&specs, config.credits, config.rate);
        Host {
            state: Mutex::new(State::new(&accounts, config.seed)),
            accounts,
            face: Face::new(config.provider, config.error_status, config.record_shape),
            faults: config.faults(),
            latency: config.latency,
            seed: config.seed,
            lifecycle: Lifecycle::new(
                config.stage_time,
                config.stage_style,
                &config.moderation_word,
                config.callback_complete_only,
            ),
            credits_per_task: config.credits_per_task,
            fail_429_retry_after: config.fail_429_retry_after,
            callback_any_host: config.callback_any_host,
            webhook_hmac_key: config
                .webhook_hmac_key
                .clone()
                .filter(|_| config.provider == crate::job::Provider::Kie),
            // Each name passed `parse_model_name` as clap (or the caller's
            // own rules) read it; a name that would not is left out.
            rules: {
                let mut rules = crate::job::Rules::default();
                for name in &config.extra_models {
                    let _ = rules.add_model(name);
                }
                if let Some(catalogue) = &config.catalogue {
                    rules = rules.with_catalogue(catalogue.clone());
                }
                rules.for_provider(config.provider)
            },
            takes: config.takes(),
            bad_audio: config.bad_audio,
            bad_audio_kind: config.bad_audio_kind,
            fail_captcha: config.fail_captcha,
            fail_531: config.fail_531,
            base_url,
            stop,
            http: OnceLock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves only counters half-updated;
        // keep serving rather than poisoning every later request.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reset(&self) {
        *self.lock() = State::new(&self.accounts, self.seed);
    }

    /// An account's settings.
    fn account(&self, account: AccountId) -> &Account {
        &self.accounts[account.0]
    }

    /// The stats, with the provider's name and the refunds due by now
    /// given back.
    fn stats(&self) -> Stats {
        let mut state = self.lock();
        let records = &mut state.records;
        records.settle_refunds(tokio::time::Instant::now(), self.credits_per_task);
        Stats {
            provider: self.face.provider(),
            ..records.stats(self.accounts.iter().map(|a| a.key.as_str()))
        }
    }
}

impl State {
    fn new(accounts: &[Account], seed: u64) -> State {
        State {
            records: Records::new(accounts.iter().map(|a| a.credits)),
            limiters: accounts
                .iter()
                .map(|a| a.rate.and_then(Rate::interval).map(HostLimit::new))
                .collect(),
            dice: Dice::new(seed),
            callbacks: JoinSet::new(),
        }
    }
}

fn random_key() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    format!("sk-sandbox-{}", hex::encode(bytes))
}

/// Lets a handler drop the connection its request came on; see the module
/// docs.
#[derive(Debug, Clone)]
struct ConnControl(CancellationToken);

impl ConnControl {
    /// Makes the connection task drop the connection. The handler's future is
    /// dropped with it, so this never returns.
    async fn drop_connection<T>(&self) -> T {
        self.0.cancel();
        std::future::pending().await
    }
}

/// Accepts connections until `stop`, each served in a task of its own.
///
/// The callback receiver (`engine::collect::receive`) has a loop of the same
/// shape; they are deliberately not one. The sandbox may not use the engine
/// layer, and the two differ where it matters: the receiver caps its open
/// connections and waits for them at shutdown, while the sandbox takes any
/// number (a load test's connections) and drops them all at once when it
/// stops, as a crashed server would.
async fn accept_loop(listener: TcpListener, router: Router, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                tokio::spawn(serve_connection(stream, router.clone(), stop.clone()));
            }
            Err(e) => {
                // Usually running out of file descriptors: back off briefly
                // instead of spinning.
                tracing::warn!("sandbox accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_connection(stream: TcpStream, router: Router, stop: CancellationToken) {
    // Best effort: small JSON answers should not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let kill = CancellationToken::new();
    let control = ConnControl(kill.clone());
    let service = router.map_request(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(control.clone());
        // The moment hyper has read the request's head, before routing and
        // extractors: the closest to when it reached the socket that the
        // sandbox sees (see `api::ArrivedAt`).
        req.extensions_mut()
            .insert(api::ArrivedAt(tokio::time::Instant::now()));
        req
    });
    let builder = Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!("sandbox connection ended: {e}");
            }
        }
        () = kill.cancelled() => tracing::debug!("sandbox dropping a connection (injected fault)"),
        () = stop.cancelled() => {}
    }
    // Returning drops `conn` and with it the socket: no response is written.
}

#[cfg(test)]
mod tests;
