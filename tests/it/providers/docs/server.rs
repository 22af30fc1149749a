//! An imitation of udioapi.pro written from `/work/shared/API.md` alone
//! (not from the sandbox): submit on both generate paths (each one can be
//! switched off), the v2 feed, credits, final MP3s and streaming URLs, all
//! scripted by the test and all recorded.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const KEY: &str = "docs-imitation-key-0123456789";

/// What submit answers: given how many times this prompt was sent before
/// (0 first), the body and the task ID to hand out.
pub type Answer = dyn Fn(usize, &Value, &str) -> Reply + Send + Sync;
/// What the feed answers: given the task's index (submit order), its ID,
/// the number of polls before this one and the server's base URL.
pub type FeedScript = dyn Fn(usize, &str, usize, &str) -> Value + Send + Sync;

pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Value,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            retry_after: None,
            body,
        }
    }
    /// The documented error shape.
    pub fn error(status: u16, message: &str) -> Reply {
        Reply::json(
            status,
            json!({"code": status, "message": message, "data": null}),
        )
    }
}

/// The documented success answer, in one of the forms the docs allow.
pub fn accepted(form: usize, id: &str) -> Reply {
    let body = match form % 4 {
        0 => json!({"code": 200, "message": "success", "workId": id}),
        1 => json!({"code": 200, "message": "success", "data": {"task_id": id}}),
        2 => json!({"code": 200, "message": "success", "workId": id, "data": {"task_id": id}}),
        _ => {
            // A numeric ID (the hosts' IDs are text; some clones send numbers).
            let n: u64 = id.trim_start_matches('w').parse().unwrap();
            json!({"code": 200, "message": "success", "workId": 9_000_000_000u64 + n})
        }
    };
    Reply::json(200, body)
}

pub struct Config {
    /// Generate paths this host serves (`api/v2/generate`, `api/generate`).
    pub generate_paths: Vec<&'static str>,
    pub answer: Box<Answer>,
    pub feed: Box<FeedScript>,
    /// `None`: the host has no credits endpoint (404).
    pub credits: Option<Value>,
    /// `Content-Type` of final files.
    pub file_type: &'static str,
    /// Whether `Range` is honoured (206) or ignored (200, whole body).
    pub ranges: bool,
    /// Files whose first transfer breaks off halfway.
    pub cut_first_transfer: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            generate_paths: vec!["api/v2/generate", "api/generate"],
            answer: Box::new(|_, _, id| accepted(2, id)),
            feed: Box::new(|_, _, _, _| json!({"code": 200, "message": "success", "data": null})),
            credits: Some(
                json!({"code": 200, "message": "success", "data": {"credits": 195, "used_credits": 5}}),
            ),
            file_type: "audio/mpeg",
            ranges: true,
            cut_first_transfer: false,
        }
    }
}

#[derive(Default)]
pub struct Log {
    /// (path, body) of every submit, in arrival order.
    pub submits: Vec<(String, Value)>,
    /// Task ID handed out per prompt text.
    pub tasks: Vec<String>,
    /// Polls per task ID (as the client sent it).
    pub polls: HashMap<String, usize>,
    /// Every request: "METHOD path?query".
    pub requests: Vec<String>,
    /// Streaming URLs fetched (must stay empty).
    pub streams: Vec<String>,
    /// Final files fetched: (name, Range header).
    pub files: Vec<(String, Option<String>)>,
}

pub struct World {
    config: Config,
    pub log: Mutex<Log>,
    sent: Mutex<HashMap<String, usize>>,
    next: Mutex<usize>,
    addr: Mutex<Option<SocketAddr>>,
}

impl World {
    pub fn base(&self) -> String {
        format!("http://{}", self.addr.lock().unwrap().unwrap())
    }
    pub fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap()
    }
}

/// The whole MP3 a final URL serves for `name`: MPEG-1 layer III frames
/// (128 kbit/s, 44.1 kHz: 417 bytes each) whose padding spells the name.
pub fn mp3(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..6 {
        let mut frame = vec![0xFF, 0xFB, 0x90, 0x64];
        let fill = format!("{name}#{i};");
        while frame.len() < 417 {
            frame.extend_from_slice(fill.as_bytes());
        }
        frame.truncate(417);
        out.extend(frame);
    }
    out
}

pub async fn start(config: Config) -> Arc<World> {
    let world = Arc::new(World {
        config,
        log: Mutex::default(),
        sent: Mutex::default(),
        next: Mutex::new(0),
        addr: Mutex::new(None),
    });
    let mut app = Router::new();
    for path in &world.config.generate_paths {
        app = app.route(&format!("/{path}"), post(generate));
    }
    let app = app
        .route("/api/v2/feed", get(feed))
        .route("/api/v2/credits", get(credits))
        .route("/files/{name}", get(file))
        .route("/stream", get(stream))
        .fallback(missing)
        .with_state(Arc::clone(&world));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    *world.addr.lock().unwrap() = Some(listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    world
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut r = (
            StatusCode::from_u16(self.status).unwrap(),
            axum::Json(self.body),
        )
            .into_response();
        if let Some(after) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, after.parse().unwrap());
        }
        r
    }
}

/// What the host does not serve: 404, recorded.
async fn missing(
    State(world): State<Arc<World>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> Reply {
    world
        .log()
        .requests
        .push(format!("{method} {}", uri.path()));
    Reply::error(404, "Not Found")
}

fn authorised(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {KEY}"))
}

async fn generate(
    State(world): State<Arc<World>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    world.log().requests.push(format!("POST {}", uri.path()));
    if !authorised(&headers) {
        return Reply::error(401, "Unauthorized: Invalid or missing API key");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return Reply::error(400, "Bad Request: invalid JSON");
    };
    let prompt = body
        .get("prompt")
        .or_else(|| body.get("gpt_description_prompt"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if prompt.is_empty() {
        return Reply::error(400, "Bad Request: 'prompt' is required.");
    }
    let before = {
        let mut sent = world.sent.lock().unwrap();
        let n = sent.entry(prompt.clone()).or_default();
        *n += 1;
        *n - 1
    };
    world
        .log()
        .submits
        .push((uri.path().to_owned(), body.clone()));
    // One lock from choosing the ID to counting it: two requests in
    // flight must never be answered the same task ID (batchgen would
    // rightly refuse the second as a duplicate).
    let mut next = world.next.lock().unwrap();
    let id = format!("w{}", *next + 1);
    let reply = (world.config.answer)(before, &body, &id);
    if reply.status == 200 && reply.body.get("code").and_then(Value::as_u64) == Some(200) {
        *next += 1;
        world.log().tasks.push(id);
    }
    reply
}

async fn feed(
    State(world): State<Arc<World>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Reply {
    let work = q.get("workId").cloned().unwrap_or_default();
    world
        .log()
        .requests
        .push(format!("GET /api/v2/feed?workId={work}"));
    if !authorised(&headers) {
        return Reply::error(401, "Unauthorized: Invalid or missing API key");
    }
    // Numeric IDs come back as the client kept them: map to our `wN`.
    let id = match work.parse::<u64>() {
        Ok(n) if n > 9_000_000_000 => format!("w{}", n - 9_000_000_000),
        _ => work.clone(),
    };
    let index = world.log().tasks.iter().position(|t| *t == id);
    let Some(index) = index else {
        return Reply::error(404, "Task not found");
    };
    let polls = {
        let mut log = world.log();
        let n = log.polls.entry(work.clone()).or_default();
        *n += 1;
        *n - 1
    };
    Reply::json(200, (world.config.feed)(index, &id, polls, &world.base()))
}

async fn credits(State(world): State<Arc<World>>, headers: HeaderMap) -> Reply {
    world.log().requests.push("GET /api/v2/credits".into());
    if !authorised(&headers) {
        return Reply::error(401, "Unauthorized: Invalid or missing API key");
    }
    match &world.config.credits {
        Some(body) => Reply::json(200, body.clone()),
        None => Reply::error(404, "Not Found"),
    }
}

async fn stream(State(world): State<Arc<World>>, uri: axum::http::Uri) -> Response {
    world.log().streams.push(uri.to_string());
    let partial = mp3("streaming")[..500].to_vec();
    ([(header::CONTENT_TYPE, "audio/mpeg")], partial).into_response()
}

async fn file(
    State(world): State<Arc<World>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    // The clips' covers (embedded in the tags): a JPEG, not logged with
    // the songs.
    if name.starts_with("image_") && name.ends_with(".jpeg") {
        return (
            [(header::CONTENT_TYPE, "image/jpeg")],
            &b"\xFF\xD8\xFF\xE0 cover"[..],
        )
            .into_response();
    }
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let first = {
        let mut log = world.log();
        let first = !log.files.iter().any(|(n, _)| *n == name);
        log.files.push((name.clone(), range.clone()));
        first
    };
    let Some(stem) = name.strip_suffix(".mp3") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let whole = mp3(stem);
    let content_type = world.config.file_type;
    if world.config.cut_first_transfer && first {
        // Announces the whole length, sends half, then breaks off.
        let half = Bytes::from(whole[..whole.len() / 2].to_vec());
        return Response::builder()
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_LENGTH, whole.len())
            .body(Body::new(Broken(Some(half))))
            .unwrap();
    }
    if world.config.ranges
        && let Some(start) = range
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|s| s.parse::<usize>().ok())
        && start < whole.len()
    {
        return Response::builder()
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_TYPE, content_type)
            .header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{}/{}", whole.len() - 1, whole.len()),
            )
            .body(Body::from(whole[start..].to_vec()))
            .unwrap();
    }
    ([(header::CONTENT_TYPE, content_type)], whole).into_response()
}

/// A body that sends `first`, then fails: the connection breaks off.
struct Broken(Option<Bytes>);

impl http_body::Body for Broken {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        std::task::Poll::Ready(Some(match self.0.take() {
            Some(data) => Ok(http_body::Frame::data(data)),
            None => Err(std::io::Error::other("connection lost")),
        }))
    }
}

// ---- clip objects in the documented forms ----

/// A clip at the text stage: streaming URL (or none), `duration` "".
pub fn text_clip(id: &str, base: &str, stream: bool) -> Value {
    json!({
        "id": id, "status": "text",
        "audio_url": if stream { format!("{base}/stream?item_id={id}") } else { String::new() },
        "image_url": format!("{base}/files/image_{id}.jpeg"), "image_large_url": "",
        "created_at": "2025-01-01T22:10:31.665Z", "timestamp": 1740620331100u64,
        "title": "", "prompt": "", "tags": "", "duration": "", "model_name": "chirp-v3-5",
        "extra_message": "Text generated successfully.", "fail_message": "", "error_message": "",
        "some_new_field": {"nested": [1, 2]}
    })
}

/// First audio: still a streaming URL.
pub fn first_clip(id: &str, base: &str) -> Value {
    let mut c = text_clip(id, base, true);
    c["status"] = json!("first");
    c["extra_message"] = json!("First audio generated successfully.");
    c["title"] = json!(format!("Title {id}"));
    c["tags"] = json!("lofi, chill");
    c
}

/// The final stage in form `form`: 0 `first` + "All generated
/// successfully.", 1 `complete`, 2 `streaming` + mp3 + numeric duration.
/// Time stamps and duration types vary with `form` too.
pub fn final_clip(id: &str, base: &str, form: usize) -> Value {
    let mut c = first_clip(id, base);
    c["audio_url"] = json!(format!("{base}/files/{id}.mp3"));
    let o = c.as_object_mut().unwrap();
    o.remove("created_at");
    o.remove("timestamp");
    match form % 3 {
        0 => {
            o.insert("status".into(), json!("first"));
            o.insert("extra_message".into(), json!("All generated successfully."));
            o.insert("duration".into(), json!(109.8));
            o.insert("created_at".into(), json!("2025-01-01T22:10:31.665Z"));
        }
        1 => {
            o.insert("status".into(), json!("complete"));
            o.insert("duration".into(), json!("109.8"));
            o.insert("createTime".into(), json!(1717587606036u64));
        }
        _ => {
            o.insert("status".into(), json!("streaming"));
            o.insert("duration".into(), json!(146.08));
            o.insert("created_at".into(), json!("2024-09-05 13:09:01"));
        }
    }
    c
}

/// The v2 feed envelope around some clips.
pub fn v2(kind: &str, clips: Vec<Value>) -> Value {
    json!({"code": 200, "message": "success", "data": {
        "type": kind,
        "request_body": {"prompt": "...", "title": "", "tags": "", "make_instrumental": false, "model": "chirp-v3-5"},
        "response_data": clips,
        "created_at": "2025-01-01T22:10:31.665Z"
    }})
}
