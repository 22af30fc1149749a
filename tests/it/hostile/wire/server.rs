//! A scriptable hostile API server on 127.0.0.1:0 that remembers every
//! request, and the secret check every test ends with.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;

/// The API key every test runs with: long enough to be a real secret.
pub const KEY: &str = "sk-wire-test-key-0123456789";

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Got {
    pub method: String,
    pub path: String,
    pub body: String,
    /// Requests with this prompt so far, this one included.
    pub prompt_count: usize,
    /// The answer's status, filled in after the script ran.
    pub status: u16,
}

impl Got {
    /// The submitted `prompt`, or "".
    pub fn prompt(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["prompt"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

type Script = dyn Fn(&Got, usize) -> Response + Send + Sync;

struct Inner {
    script: Box<Script>,
    got: Mutex<Vec<Got>>,
    /// Told after each request is recorded in `got`.
    recorded: tokio::sync::watch::Sender<()>,
    /// How long each POST waits before its answer.
    delay: Duration,
}

pub struct Server {
    pub url: String,
    inner: Arc<Inner>,
}

impl Server {
    pub fn got(&self) -> Vec<Got> {
        self.inner.got.lock().unwrap().clone()
    }

    pub fn count(&self, method: &str, path: &str) -> usize {
        self.got()
            .iter()
            .filter(|g| g.method == method && g.path == path)
            .count()
    }

    pub fn count_status(&self, status: u16) -> usize {
        self.got().iter().filter(|g| g.status == status).count()
    }

    /// Waits until `done` holds of the server, checked now and after each
    /// request it records (told by the handler, not polled); fails,
    /// naming `what`, if that never happens.
    pub async fn until(&self, what: &str, done: impl Fn(&Server) -> bool) {
        let mut recorded = self.inner.recorded.subscribe();
        let wait = async {
            while !done(self) {
                recorded.changed().await.expect("the server runs");
            }
        };
        tokio::time::timeout(crate::common::wait::WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("gave up waiting for {what}: {:?}", self.got()));
    }
}

/// Serves `script(request, n)` (n counts from 0) for every request.
pub async fn serve(script: impl Fn(&Got, usize) -> Response + Send + Sync + 'static) -> Server {
    serve_slowly(Duration::ZERO, script).await
}

/// As [`serve`], each POST answered after `delay`.
pub async fn serve_slowly(
    delay: Duration,
    script: impl Fn(&Got, usize) -> Response + Send + Sync + 'static,
) -> Server {
    let inner = Arc::new(Inner {
        script: Box::new(script),
        got: Mutex::default(),
        recorded: tokio::sync::watch::Sender::new(()),
        delay,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .fallback(handle)
        .with_state(Arc::clone(&inner));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server { url, inner }
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    _headers: HeaderMap,
    body: String,
) -> Response {
    if method == Method::POST && !inner.delay.is_zero() {
        // simulates: a slow API, each POST answered after `delay`.
        tokio::time::sleep(inner.delay).await;
    }
    let mut got = Got {
        method: method.to_string(),
        path: uri.path().to_owned(),
        body,
        prompt_count: 0,
        status: 0,
    };
    let mut all = inner.got.lock().unwrap();
    let prompt = got.prompt();
    got.prompt_count = 1 + all
        .iter()
        .filter(|g| !prompt.is_empty() && g.prompt() == prompt)
        .count();
    let response = (inner.script)(&got, all.len());
    got.status = response.status().as_u16();
    all.push(got);
    drop(all);
    inner.recorded.send_replace(());
    response
}

pub fn json(status: u16, body: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_owned().into())
        .unwrap()
}

pub fn redirect(status: u16, location: &str) -> Response {
    Response::builder()
        .status(status)
        .header("location", location)
        .body("moved".into())
        .unwrap()
}

pub fn too_many(retry_after: u64) -> Response {
    Response::builder()
        .status(429)
        .header("retry-after", retry_after.to_string())
        .header("content-type", "application/json")
        .body(r#"{"code":429,"message":"Rate limit exceeded. Please try again later."}"#.into())
        .unwrap()
}

/// A success with a task ID unique to the request.
pub fn unique_ok(got: &Got) -> Response {
    let id = format!(
        "task-{}-{}",
        got.prompt().replace(' ', "_"),
        got.prompt_count
    );
    json(
        200,
        &format!(r#"{{"code":200,"message":"success","workId":"{id}"}}"#),
    )
}

/// Neither the key nor any of `secrets` in the process's stdout or stderr.
pub fn no_secret(out: &std::process::Output, secrets: &[&str]) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in std::iter::once(&KEY).chain(secrets) {
        assert!(!text.contains(secret), "{secret:?} leaked: {text}");
    }
}
