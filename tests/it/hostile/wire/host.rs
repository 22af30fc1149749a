//! A hostile feed and media host on 127.0.0.1:0 that remembers every
//! request with its headers.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One request as the host saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Path and query.
    pub uri: String,
    pub headers: HeaderMap,
}

type Feed = dyn Fn(&str) -> Value + Send + Sync;

struct Inner {
    base: String,
    feed: Box<Feed>,
    seen: Mutex<Vec<Seen>>,
}

pub struct Host {
    pub base: String,
    inner: Arc<Inner>,
}

impl Host {
    pub fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().unwrap().clone()
    }
}

/// 50 whole MPEG frames, no tag: what a CDN serves.
pub fn song() -> Vec<u8> {
    let mut bytes = Vec::new();
    for i in 0..50u8 {
        let mut frame = vec![i; 384];
        frame[..4].copy_from_slice(&[0xFF, 0xFB, 0x94, 0xC4]);
        bytes.extend(frame);
    }
    bytes
}

/// A finished clip as the v2 feed shows it.
pub fn clip(id: &str, title: &str, audio_url: &str) -> Value {
    json!({"id": id, "status": "complete", "title": title, "tags": "lofi",
           "audio_url": audio_url, "image_url": "", "duration": 12.0,
           "model_name": "chirp-v3-5", "created_at": "2025-01-01T22:10:31.665Z",
           "extra_message": "All generated successfully.", "fail_message": "",
           "error_message": ""})
}

/// `GET /api/v2/feed` answers `feed(base)`; `/media/*` a song;
/// `/redirect/<n>/*` a 302 to `/media/*` (query kept off).
pub async fn start(feed: impl Fn(&str) -> Value + Send + Sync + 'static) -> Host {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let inner = Arc::new(Inner {
        base: base.clone(),
        feed: Box::new(feed),
        seen: Mutex::default(),
    });
    let app = Router::new()
        .fallback(answer)
        .with_state(Arc::clone(&inner));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Host { base, inner }
}

async fn answer(State(inner): State<Arc<Inner>>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().to_owned();
    inner.seen.lock().unwrap().push(Seen {
        uri: uri.to_string(),
        headers,
    });
    if path == "/api/v2/feed" {
        return axum::Json((inner.feed)(&inner.base)).into_response();
    }
    if let Some(rest) = path.strip_prefix("/redirect/") {
        let to = format!("{}/media/{rest}", inner.base);
        return (StatusCode::FOUND, [(header::LOCATION, to)]).into_response();
    }
    if path.starts_with("/media/") {
        return ([(header::CONTENT_TYPE, "audio/mpeg")], song()).into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}
