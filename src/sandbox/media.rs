//! The `/media/…` routes that serve a clip's MP3 (its take, made in
//! `audio`) and PNG (made in `assets`) with HTTP Range support, the
//! streaming URL, and what bad final URLs answer.
//!
//! # Serving
//! No auth (the real files sit on a CDN). `GET`/`HEAD`, with
//! `Content-Length`, `Accept-Ranges: bytes` and an `ETag`; a single
//! `Range: bytes=…` gets 206 and `Content-Range`, an unsatisfiable one 416,
//! and a multi-range request the whole file (allowed by RFC 9110).
//!
//! A streaming URL (`/media/stream/<clip>`) answers what the provider's
//! would while the song is being made: the first [`STREAM_FRAMES`] frames
//! only, a short partial body, never the whole file and without ranges.
//! A client that saved it would keep a truncated song, so the sandbox
//! counts every request for one (`stream_fetches` in the stats) and a test
//! can assert that none was made; final mp3 requests are counted as
//! `audio_fetches`.
//!
//! # Bad final URLs
//! Under `--bad-audio P` a finished clip's final URL, decided per clip from
//! a hash of its id ([`super::assets::bad_audio_for`]), does what public reports show real
//! ones do: answers an HTML page or a JSON body with 200, answers 404, is
//! `…/None.mp3`, or is `…/api/forbidden` (403).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use super::assets::png;
use super::audio::{FRAME_LEN, Take};
use super::lifecycle::Phase;
use super::reply::ApiError;
use super::state::BadAudio;
use super::{Host, State as SandboxState};

/// How many frames a streaming URL serves: about 0.4 s, well short of the
/// shortest clip.
const STREAM_FRAMES: usize = 16;
/// What a bad final URL of kind `Html` answers, with 200.
const HTML_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Access denied</title></head>\n<body><h1>Access denied</h1><p>You do not have permission to view this file.</p></body></html>\n";
/// What a bad final URL of kind `Json` answers, with 200.
const JSON_BODY: &str = r#"{"code":404,"message":"file not found","data":null}"#;

/// What a `Range` header asks of a file of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeAsk {
    /// No usable range: send the whole file (also for multi-range and
    /// malformed headers, which RFC 9110 lets a server ignore).
    Whole,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// 416: the range lies outside the file.
    Unsatisfiable,
}

fn parse_range(header: Option<&str>, len: u64) -> RangeAsk {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match parse(last) {
            Some(0) => RangeAsk::Unsatisfiable,
            Some(_) if len == 0 => RangeAsk::Unsatisfiable,
            Some(n) => RangeAsk::Part {
                start: len.saturating_sub(n),
                end: len - 1,
            },
            None => RangeAsk::Whole,
        },
        (false, _) => {
            let Some(start) = parse(first) else {
                return RangeAsk::Whole;
            };
            let end = if last.is_empty() {
                u64::MAX
            } else {
                match parse(last) {
                    Some(end) if end >= start => end,
                    _ => return RangeAsk::Whole,
                }
            };
            if start >= len {
                RangeAsk::Unsatisfiable
            } else {
                RangeAsk::Part {
                    start,
                    end: end.min(len - 1),
                }
            }
        }
        (true, true) => RangeAsk::Whole,
    }
}

/// `GET /media/{file}`: `<clip>.mp3` once the clip is complete, `<clip>.png`
/// once it has left the `new` stage.
pub(super) async fn file(
    State(shared): State<Arc<Host>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (clip, kind) = match file.rsplit_once('.') {
        Some((clip, "mp3")) => {
            shared.lock().records.counts.audio_fetches += 1;
            (clip, Kind::Final)
        }
        Some((clip, "png")) => (clip, Kind::Image),
        _ => return not_found("not found"),
    };
    serve(&shared, clip, kind, &headers)
}

/// `GET /media/stream/{clip}` (its query, `?item_id=`, is decoration): the
/// streaming audio of a clip, from the moment the feed shows the URL. The
/// real service streams a growing file; the sandbox answers its first
/// [`STREAM_FRAMES`] frames, a body no client may keep as the song.
pub(super) async fn stream(
    State(shared): State<Arc<Host>>,
    Path(clip): Path<String>,
    headers: HeaderMap,
) -> Response {
    shared.lock().records.counts.stream_fetches += 1;
    serve(&shared, &clip, Kind::Stream, &headers)
}

/// `GET /api/forbidden`: where a bad final URL of kind `Forbidden` points.
pub(super) async fn forbidden(State(shared): State<Arc<Host>>) -> Response {
    shared.lock().records.counts.audio_fetches += 1;
    ApiError(StatusCode::FORBIDDEN, "forbidden").into_response()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Final,
    Stream,
    Image,
}

fn not_found(message: &'static str) -> Response {
    ApiError(StatusCode::NOT_FOUND, message).into_response()
}

/// The clip's phase, its index in its task, its bad final URL and its
/// take.
fn look_up(
    state: &SandboxState,
    shared: &Host,
    clip: &str,
) -> Option<(Phase, usize, Option<BadAudio>, Take)> {
    let task = state.records.tasks.by_clip(clip)?;
    let index = task.clip_ids.iter().position(|c| c == clip)?;
    let phase = shared.lifecycle.phase(task, Instant::now());
    Some((
        phase,
        index,
        task.bad_audio[index],
        task.takes[index].clone(),
    ))
}

fn serve(shared: &Host, clip: &str, kind: Kind, headers: &HeaderMap) -> Response {
    let Some((phase, index, bad, take)) = look_up(&shared.lock(), shared, clip) else {
        return not_found("not found");
    };
    // Files the feed does not point at yet (or ever, for a failed clip) do
    // not exist: a CDN answers 404 for an object not uploaded yet.
    let ready = match kind {
        Kind::Final => shared.face.is_final(phase, index),
        Kind::Stream => shared.lifecycle.streams(phase),
        Kind::Image => matches!(
            phase,
            Phase::Lyrics | Phase::Text | Phase::First | Phase::Complete
        ),
    };
    if !ready {
        return not_found("not ready");
    }
    match (kind, bad) {
        (Kind::Final, Some(BadAudio::Html)) => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/html")],
                HTML_PAGE,
            )
                .into_response();
        }
        (Kind::Final, Some(BadAudio::Json)) => {
            let json = [(header::CONTENT_TYPE, "application/json")];
            return (StatusCode::OK, json, JSON_BODY).into_response();
        }
        (Kind::Final, Some(BadAudio::NotFound)) => return not_found("not found"),
        _ => {}
    }
    match kind {
        Kind::Final => ranged(
            take.mp3(),
            "audio/mpeg",
            &format!("\"{clip}-mp3\""),
            headers,
        ),
        Kind::Image => ranged(png(clip), "image/png", &format!("\"{clip}-png\""), headers),
        Kind::Stream => {
            let mut bytes = take.mp3();
            bytes.truncate(STREAM_FRAMES * FRAME_LEN);
            let headers = [
                (header::CONTENT_TYPE, "audio/mpeg"),
                (header::CACHE_CONTROL, "no-store"),
            ];
            (StatusCode::OK, headers, bytes).into_response()
        }
    }
}

fn ranged(bytes: Vec<u8>, content_type: &'static str, etag: &str, req: &HeaderMap) -> Response {
    let len = bytes.len() as u64;
    let range = req.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, body, content_range) = match parse_range(range, len) {
        RangeAsk::Whole => (StatusCode::OK, bytes, None),
        RangeAsk::Part { start, end } => {
            let slice = bytes[start as usize..=end as usize].to_vec();
            (
                StatusCode::PARTIAL_CONTENT,
                slice,
                Some(format!("bytes {start}-{end}/{len}")),
            )
        }
        RangeAsk::Unsatisfiable => (
            StatusCode::RANGE_NOT_SATISFIABLE,
            Vec::new(),
            Some(format!("bytes */{len}")),
        ),
    };
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    if status != StatusCode::RANGE_NOT_SATISFIABLE {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(etag) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, etag);
    }
    if let Some(value) = content_range.and_then(|v| HeaderValue::from_str(&v).ok()) {
        h.insert(header::CONTENT_RANGE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        use RangeAsk::*;
        let p = |h: &str| parse_range(Some(h), 100);
        assert_eq!(parse_range(None, 100), Whole);
        assert_eq!(p("bytes=0-9"), Part { start: 0, end: 9 });
        assert_eq!(p("bytes=90-"), Part { start: 90, end: 99 });
        assert_eq!(p("bytes=90-500"), Part { start: 90, end: 99 });
        assert_eq!(p("bytes=-10"), Part { start: 90, end: 99 });
        assert_eq!(p("bytes=-500"), Part { start: 0, end: 99 });
        assert_eq!(p("bytes=100-"), Unsatisfiable);
        assert_eq!(p("bytes=-0"), Unsatisfiable);
        for ignored in [
            "bytes=0-1,5-6",
            "bytes=9-1",
            "items=0-1",
            "bytes=x-",
            "bytes=-",
        ] {
            assert_eq!(p(ignored), Whole, "{ignored}");
        }
    }
}
