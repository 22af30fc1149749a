//! `batchgen receive`: the HTTP receiver for the provider's callbacks.
//!
//! The service POSTs a task's clips to the job's `callback_url` at each
//! stage, in its provider's shape (udioapi: the bare clip array; sunoapi:
//! `{code, msg, data: {callbackType, task_id, data: [clips]}}`; gcui sends
//! none, and `receive` refuses it before listening). This receiver records
//! those clips into the same catalog (the store) that `batchgen collect` writes,
//! through the provider's reader ([`crate::api::provider::Wire::read_callback`],
//! which ends in the one clip parser, [`crate::api::feed`]) and the same writer
//! ([`crate::files::catalog`]), so a catalog built from callbacks equals one
//! built by polling. Whether a clip is finished is the parser's verdict
//! alone (failed, `complete`, or `first` with "All generated
//! successfully."; see [`crate::api::feed`]): a callback's stage word or
//! the order callbacks arrive in decide nothing, and a late callback of an
//! earlier stage never moves a finished clip back. It records; it does not
//! download: run `batchgen collect --download DIR` afterwards (finished
//! tasks are not polled again, it only fetches the files).
//!
//! # URLs and the secret
//! No signature is documented, so the URL carries a shared secret:
//! `POST /callback/<secret>/<job-key>`, or `POST /callback/<job-key>?secret=
//! <secret>`. Build them with [`crate::settings::callback_url`]. A wrong secret gets the same
//! 404 as an unknown path (nothing is revealed); a job key that is not in the
//! results file gets 404 too (after one re-read of the file, since a
//! callback can overtake the row that records its task). Bodies over
//! [`MAX_BODY`] get 413, bodies that are not clips 400, everything else a
//! quick 200 `{"ok":true}`. The secret is never logged: the handlers log
//! only job keys, and every log line passes [`crate::util::redact`] anyway. Clip
//! text that holds a known secret (a sender echoing the key or the secret
//! into a title) is masked before it is recorded
//! ([`crate::api::feed::TaskClips::mask_secrets`]).
//!
//! The secret must be at least [`MIN_SECRET_LEN`] characters (`batchgen
//! receive` and `--callback-base` refuse a shorter one): it is all that
//! stands between the internet and the catalog.
//!
//! # Connections from strangers
//! The receiver listens where anyone can connect, so no client can hold it:
//! a connection has [`HEADER_TIMEOUT`] to send its request head and
//! [`BODY_TIMEOUT`] its body (else 408), serves one request (no
//! keep-alive), and at most [`MAX_CONNECTIONS`] are served at once; more
//! wait in the kernel's backlog. So connections that never finish their
//! headers cannot starve a real callback: below the cap it is served at
//! once beside them, and above it waits at most [`HEADER_TIMEOUT`] for a
//! slot.
//!
//! # Behind a reverse proxy with TLS
//! The provider only calls public `https://` URLs. Listen on loopback and let
//! a proxy terminate TLS; keep its access log off for this path, since the
//! secret is in the URL. Caddy:
//!
//! ```text
//! hooks.example.com {
//!     log { output discard }
//!     reverse_proxy /callback/* 127.0.0.1:8787
//! }
//! ```
//!
//! nginx:
//!
//! ```text
//! server {
//!     listen 443 ssl;
//!     server_name hooks.example.com;
//!     ssl_certificate     /etc/letsencrypt/live/hooks.example.com/fullchain.pem;
//!     ssl_certificate_key /etc/letsencrypt/live/hooks.example.com/privkey.pem;
//!     location /callback/ {
//!         access_log off;
//!         client_max_body_size 1m;
//!         proxy_pass http://127.0.0.1:8787;
//!     }
//! }
//! ```
//!
//! with `batchgen receive --listen 127.0.0.1:8787 --results jobs.results.csv`
//! and callback base `https://hooks.example.com`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::state::{OpenCatalog, Writer};
use crate::api::feed;
use crate::api::provider::{Wire, signature};
use crate::files::catalog::CatalogError;
use crate::files::state::Catalog;
use crate::files::state::Snapshot;
use crate::job::Provider;
use crate::util::redact::Secret;

/// Largest callback body accepted (a task's clips are a few KiB).
pub const MAX_BODY: usize = feed::MAX_FEED_BODY;
/// Least time between two re-reads of the results file for unknown keys.
const REREAD_EVERY: Duration = Duration::from_millis(200);
/// The environment variable holding the secret.
pub const SECRET_ENV: &str = "BATCHGEN_CALLBACK_SECRET";
/// Shortest callback secret accepted (16 characters: `openssl rand -hex
/// 16` makes 32).
pub const MIN_SECRET_LEN: usize = 16;
/// Time a connection has to send its request head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a request has to send its body, once its head arrived.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(15);
/// Connections served at once (see the module docs); well under the usual
/// limit of 1024 open files.
pub const MAX_CONNECTIONS: usize = 512;

/// Why `secret` is too weak to guard the callback URLs, if it is.
pub fn weak_secret(secret: &str) -> Option<String> {
    let length = secret.chars().count();
    (length < MIN_SECRET_LEN).then(|| {
        format!(
            "{SECRET_ENV} is {length} characters long: use at least {MIN_SECRET_LEN} random ones (e.g. `openssl rand -hex 16`), since it is all that guards the callback URLs"
        )
    })
}

/// What `batchgen receive` needs.
#[derive(Debug, Clone)]
pub struct ReceiveConfig {
    pub listen: SocketAddr,
    /// Whose callback bodies arrive: each provider words them its own way.
    pub provider: Provider,
    pub secret: Secret,
    /// kie.ai's webhook HMAC key: with it, every callback must carry a
    /// valid, fresh signature ([`crate::api::provider::signature`]).
    pub webhook_key: Option<Secret>,
    /// Maps a job key to its task ID.
    pub results: PathBuf,
    pub catalog: PathBuf,
}

/// Task IDs by job key, looked up in the results file's store (a query,
/// nothing held: [`Snapshot`]), opened again when a key is missing (a
/// callback can overtake the run that records its task, or the first run
/// that makes the store).
struct TaskIndex {
    path: PathBuf,
    store: Option<Snapshot>,
    read_at: Option<Instant>,
}

impl TaskIndex {
    fn open(&mut self) {
        self.store = Snapshot::open(&self.path).ok();
        self.read_at = Some(Instant::now());
    }

    /// The task of `key`'s job, if it is submitted.
    fn task_of(&mut self, key: &str) -> Option<String> {
        self.store.as_ref()?.task_of(key).ok().flatten()
    }
}

struct ReceiverState {
    /// Reads the provider's callback bodies.
    wire: &'static dyn Wire,
    secret: Secret,
    /// See [`ReceiveConfig::webhook_key`].
    webhook_key: Option<Secret>,
    store: Arc<Catalog>,
    jobs: Mutex<TaskIndex>,
    /// Inside a collect run: where changed jobs are told.
    changed: Option<tokio::sync::mpsc::UnboundedSender<String>>,
}

impl ReceiverState {
    /// The task ID of `key`, re-reading the results file (not too often)
    /// when the key is unknown.
    fn task_id(&self, key: &str) -> Option<String> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = jobs.task_of(key) {
            return Some(id);
        }
        if jobs.read_at.is_none_or(|at| at.elapsed() >= REREAD_EVERY) {
            jobs.open();
        }
        jobs.task_of(key)
    }
}

/// Why the receiver could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// The catalog is locked, unreadable, not a catalog, or unwritable.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The address cannot be listened on (in use, not permitted, not an
    /// address of this machine): the user's to change.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A running receiver. Call [`Receiver::shutdown`] to stop it and write the
/// catalog a last time.
pub struct Receiver {
    addr: SocketAddr,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The catalog's writer and lock, when the receiver opened the
    /// catalog itself (not inside a collect run, whose they are).
    own: Option<(Writer, OpenCatalog)>,
    /// Cancelled when its own writer cannot write the catalog.
    failed: CancellationToken,
}

/// What a receiver inside a collect run needs: the run has the catalog.
#[derive(Debug, Clone)]
pub struct Embedded {
    pub listen: SocketAddr,
    pub provider: Provider,
    pub secret: Secret,
    /// As [`ReceiveConfig::webhook_key`].
    pub webhook_key: Option<Secret>,
    /// Told the key of every job a callback changed (the poll loop takes
    /// a finished task out of its schedule at once).
    pub changed: Option<tokio::sync::mpsc::UnboundedSender<String>>,
}

impl Receiver {
    /// Binds `config.listen` (port 0 picks one), locks and loads the catalog
    /// and starts serving on the current runtime.
    ///
    /// # Errors
    /// The catalog locked or unwritable, or the address in use.
    pub async fn start(config: ReceiveConfig) -> Result<Receiver, ReceiveError> {
        let mut jobs = TaskIndex {
            path: config.results.clone(),
            store: None,
            read_at: None,
        };
        let catalog = OpenCatalog::open(&config.results, &config.catalog)?;
        jobs.open();
        let embedded = Embedded {
            listen: config.listen,
            provider: config.provider,
            secret: config.secret,
            webhook_key: config.webhook_key,
            changed: None,
        };
        // The writer has a token of its own, cancelled only once the server
        // has stopped: a callback still being read when shutdown begins is
        // answered 200 and must reach the file, so the last write comes
        // after the last connection, never beside it.
        let failed = CancellationToken::new();
        let writer = catalog.start_writer(CancellationToken::new(), failed.clone());
        let mut receiver = Receiver::serve_into(embedded, jobs, Arc::clone(&catalog.store)).await?;
        receiver.own = Some((writer, catalog));
        receiver.failed = failed;
        Ok(receiver)
    }

    /// Starts serving callbacks into `store`, a catalog a collect run has
    /// open (and writes): so callbacks and polls fill one catalog, and a
    /// task a callback finished is not polled again.
    ///
    /// # Errors
    /// The address in use.
    pub async fn start_in(
        config: Embedded,
        results: PathBuf,
        store: Arc<Catalog>,
    ) -> Result<Receiver, ReceiveError> {
        let mut jobs = TaskIndex {
            path: results,
            store: None,
            read_at: None,
        };
        jobs.open();
        Receiver::serve_into(config, jobs, store).await
    }

    async fn serve_into(
        config: Embedded,
        jobs: TaskIndex,
        store: Arc<Catalog>,
    ) -> Result<Receiver, ReceiveError> {
        let listen = |source| ReceiveError::Listen {
            addr: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(listen)?;
        let addr = listener.local_addr().map_err(listen)?;
        let stop = CancellationToken::new();
        let shared = Arc::new(ReceiverState {
            wire: crate::api::provider::wire(config.provider),
            secret: config.secret,
            // Only kie.ai signs its callbacks.
            webhook_key: match config.provider {
                Provider::Kie => config.webhook_key,
                Provider::Udioapi | Provider::Sunoapi | Provider::Gcui | Provider::Newapi => None,
            },
            store,
            jobs: Mutex::new(jobs),
            changed: config.changed,
        });
        let app = router(shared);
        let server = tokio::spawn(accept_loop(listener, app, stop.clone()));
        Ok(Receiver {
            addr,
            stop,
            server,
            own: None,
            failed: CancellationToken::new(),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving (connections in progress finish), then writes the
    /// catalog a last time, with every callback answered so far in it.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    pub async fn shutdown(self) -> Result<(), ReceiveError> {
        self.stop.cancel();
        let _ = self.server.await;
        if let Some((writer, catalog)) = self.own {
            writer.finish().await?;
            if let Some(Err(why)) = super::write_page(&catalog.store).await {
                tracing::warn!("the catalog page was not written: {why}");
            }
        }
        Ok(())
    }
}

/// Serves until `shutdown` is cancelled; prints the address first.
///
/// # Errors
/// As [`Receiver::start`] and [`Receiver::shutdown`].
pub async fn serve(config: ReceiveConfig, shutdown: CancellationToken) -> Result<(), ReceiveError> {
    let receiver = Receiver::start(config).await?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "BATCHGEN_CALLBACK_LISTEN=http://{}", receiver.addr());
        let _ = out.flush();
    }
    // Until asked to stop, or until the catalog cannot be written: then
    // every callback would be answered 200 and lost.
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = receiver.failed.cancelled() => {}
    }
    receiver.shutdown().await
}

/// Accepts connections until `stop`, at most [`MAX_CONNECTIONS`] at once,
/// then lets the ones still open finish (idle ones close at once).
async fn accept_loop(
    listener: TcpListener,
    app: Router,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            () = stop.cancelled() => break,
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("never closed"),
        };
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                connections.spawn(serve_connection(stream, app.clone(), stop.clone(), slot));
            }
            Err(e) => {
                // Usually out of file descriptors: back off, don't spin.
                tracing::warn!("receive: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// One connection, one request, within the timeouts; `slot` is given back
/// when it ends.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    app: Router,
    stop: CancellationToken,
    slot: tokio::sync::OwnedSemaphorePermit,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(false);
    let service = hyper_util::service::TowerToHyperService::new(app);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    // A last bound, whatever a client does between the two timeouts.
    let limit = tokio::time::sleep(HEADER_TIMEOUT + BODY_TIMEOUT + Duration::from_secs(5));
    tokio::pin!(limit);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!("receive: connection ended: {e}");
            }
        }
        () = &mut limit => tracing::debug!("receive: closing a connection that took too long"),
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(BODY_TIMEOUT, conn).await;
        }
    }
    drop(slot);
}

fn router(shared: Arc<ReceiverState>) -> Router {
    Router::new()
        .route("/callback/{secret}/{key}", post(with_path_secret))
        .route("/callback/{key}", post(with_query_secret))
        .fallback(|| async { not_found() })
        .with_state(shared)
}

async fn with_path_secret(
    State(shared): State<Arc<ReceiverState>>,
    Path((secret, key)): Path<(String, String)>,
    request: Request<Body>,
) -> Response {
    record(&shared, &secret, &key, request).await
}

async fn with_query_secret(
    State(shared): State<Arc<ReceiverState>>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    request: Request<Body>,
) -> Response {
    let secret = query
        .and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(name, _)| name == "secret")
                .map(|(_, value)| value.into_owned())
        })
        .unwrap_or_default();
    record(&shared, &secret, &key, request).await
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"ok": false, "error": "not found"})),
    )
        .into_response()
}

fn refuse(status: StatusCode, error: &str) -> Response {
    (status, axum::Json(json!({"ok": false, "error": error}))).into_response()
}

/// Checks the secret before reading a byte of the body, then parses and
/// records.
async fn record(
    shared: &ReceiverState,
    secret: &str,
    key: &str,
    request: Request<Body>,
) -> Response {
    if !same(secret.as_bytes(), shared.secret.expose().as_bytes()) {
        return not_found();
    }
    let Some(task_id) = shared.task_id(key) else {
        tracing::warn!(key, "callback for a job not in the results file");
        return not_found();
    };
    let (parts, body) = request.into_parts();
    let header = |name: &str| Some(parts.headers.get(name)?.to_str().ok()?.to_owned());
    let signed = (
        header(signature::TIMESTAMP_HEADER),
        header(signature::SIGNATURE_HEADER),
    );
    drop(parts);
    let body = axum::body::to_bytes(body, MAX_BODY);
    let body = match tokio::time::timeout(BODY_TIMEOUT, body).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => return refuse(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
        Err(_) => {
            tracing::warn!(key, "callback body not received within {BODY_TIMEOUT:?}");
            return refuse(StatusCode::REQUEST_TIMEOUT, "body too slow");
        }
    };
    let mut feed = match shared.wire.read_callback(&body) {
        Ok(feed) => feed,
        Err(e) => {
            tracing::warn!(key, "callback rejected: {e}");
            return refuse(StatusCode::BAD_REQUEST, &e.to_string());
        }
    };
    if let Some(hmac_key) = &shared.webhook_key {
        let now = chrono::Utc::now().timestamp();
        let (timestamp, sig) = (signed.0.as_deref(), signed.1.as_deref());
        let task = feed.task_id.as_deref();
        if let Err(e) = signature::verify(hmac_key.expose().as_bytes(), task, timestamp, sig, now) {
            tracing::warn!(key, "callback refused, nothing recorded: {e}");
            return refuse(StatusCode::UNAUTHORIZED, "bad signature");
        }
    }
    feed.mask_secrets();
    if feed.names_other_task(&task_id) {
        // Acknowledged, so the sender stops retrying, but not recorded:
        // its clips are another task's (an earlier submission of the job).
        tracing::warn!(
            key,
            "callback ignored: it is about another task than the job's"
        );
        return (
            StatusCode::OK,
            axum::Json(json!({"ok": true, "recorded": false})),
        )
            .into_response();
    }
    match shared.store.apply(key, &task_id, &feed) {
        Ok(applied) => {
            if applied.changed
                && let Some(tx) = &shared.changed
            {
                let _ = tx.send(key.to_owned());
            }
        }
        Err(e) => {
            tracing::warn!(key, "callback not recorded: {e}");
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "catalog unreadable");
        }
    }
    tracing::debug!(key, clips = feed.clips.len(), "callback recorded");
    axum::Json(json!({"ok": true})).into_response()
}

/// Compares without stopping at the first difference, so timing tells an
/// attacker nothing about how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_in_full() {
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"", b"a"));
    }
}
