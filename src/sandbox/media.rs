//! The files a clip's `audio_url` and `image_url` point at: a real (silent)
//! MP3 and a tiny PNG, both made on the fly from the clip id, and the
//! `/media/…` routes that serve them with HTTP Range support.
//!
//! # Why real files
//! A client downloads `audio_url` once a clip is `complete`; a sandbox that
//! served placeholder bytes would let a broken downloader (truncation,
//! a resume that splices at the wrong offset) pass. So the MP3 is a valid
//! stream any decoder accepts, and its length is the `duration` the feed
//! reports.
//!
//! # How the MP3 is built
//! MPEG-1 Layer III, 128 kbit/s, 48 kHz, mono, no CRC: every frame starts
//! with the header `FF FB 94 C4` (sync, MPEG-1, layer III, no CRC; bitrate
//! index 9 = 128 kbit/s, sample-rate index 1 = 48 kHz, no padding; mono,
//! "original" bit set). At 48 kHz a frame is `144 * 128000 / 48000` = 384
//! bytes exactly, so no padding slot is ever needed, and it holds 1152
//! samples = 24 ms. The rest of each frame is zero: zeroed side information
//! says "main data starts here, zero bits of Huffman data, gain 0" for the
//! one granule pair, which every decoder turns into digital silence. A clip
//! has between [`MIN_FRAMES`] and [`MIN_FRAMES`] + [`FRAME_SPREAD`] - 1
//! frames, picked from a hash of its id.
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
//! a hash of its id ([`bad_audio_for`]), does what public reports show real
//! ones do: answers an HTML page or a JSON body with 200, answers 404, is
//! `…/None.mp3`, or is `…/api/forbidden` (403).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::config::BadAudioKind;
use super::lifecycle::Phase;
use super::reply::ApiError;
use super::state::BadAudio;
use super::{Shared, State as SandboxState};

/// The header of every frame; see the module docs.
pub const FRAME_HEADER: [u8; 4] = [0xFF, 0xFB, 0x94, 0xC4];
/// Bytes per frame: 144 * 128 kbit/s / 48 kHz.
pub const FRAME_LEN: usize = 384;
/// Samples per MPEG-1 Layer III frame, and the sample rate.
pub const SAMPLES_PER_FRAME: u32 = 1152;
pub const SAMPLE_RATE: u32 = 48_000;
/// The shortest clip, in frames (2.4 s), and how many lengths there are.
pub const MIN_FRAMES: u32 = 100;
pub const FRAME_SPREAD: u32 = 150;
/// How many frames a streaming URL serves: about 0.4 s, well short of the
/// shortest clip.
pub const STREAM_FRAMES: usize = 16;
/// What a bad final URL of kind `Html` answers, with 200.
const HTML_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Access denied</title></head>\n<body><h1>Access denied</h1><p>You do not have permission to view this file.</p></body></html>\n";
/// What a bad final URL of kind `Json` answers, with 200.
const JSON_BODY: &str = r#"{"code":404,"message":"file not found","data":null}"#;
/// Side length of the square cover image.
const IMAGE_SIDE: u32 = 16;

fn digest(clip_id: &str) -> [u8; 32] {
    Sha256::digest(clip_id.as_bytes()).into()
}

/// How many frames the clip's MP3 has.
pub fn frame_count(clip_id: &str) -> u32 {
    let d = digest(clip_id);
    MIN_FRAMES + u32::from(u16::from_be_bytes([d[0], d[1]])) % FRAME_SPREAD
}

/// The exact length of the clip's MP3 in seconds (a multiple of 24 ms).
pub fn duration_secs(clip_id: &str) -> f64 {
    f64::from(frame_count(clip_id) * SAMPLES_PER_FRAME) / f64::from(SAMPLE_RATE)
}

/// The clip's MP3: [`frame_count`] silent frames.
pub fn mp3(clip_id: &str) -> Vec<u8> {
    let mut frame = [0u8; FRAME_LEN];
    frame[..4].copy_from_slice(&FRAME_HEADER);
    frame.repeat(frame_count(clip_id) as usize)
}

/// Whether (and how) the final URL of the clip `clip_id` is bad under
/// `--bad-audio probability` with `kind`: a pure function of the id, so the
/// seed that gives the clip ids gives the bad clips.
pub fn bad_audio_for(clip_id: &str, probability: f64, kind: BadAudioKind) -> Option<BadAudio> {
    if probability <= 0.0 {
        return None;
    }
    let d = digest(clip_id);
    let draw = f64::from(u32::from_be_bytes([d[8], d[9], d[10], d[11]])) / f64::from(u32::MAX);
    if draw >= probability && probability < 1.0 {
        return None;
    }
    const ALL: [BadAudio; 5] = [
        BadAudio::Html,
        BadAudio::Json,
        BadAudio::NotFound,
        BadAudio::NoneMp3,
        BadAudio::Forbidden,
    ];
    Some(match kind {
        BadAudioKind::Mixed => ALL[usize::from(d[12]) % ALL.len()],
        BadAudioKind::Html => BadAudio::Html,
        BadAudioKind::Json => BadAudio::Json,
        BadAudioKind::NotFound => BadAudio::NotFound,
        BadAudioKind::NoneMp3 => BadAudio::NoneMp3,
        BadAudioKind::Forbidden => BadAudio::Forbidden,
    })
}

/// The clip's cover: a 16×16 8-bit RGB PNG in one colour taken from its id.
///
/// Hand-assembled: signature, `IHDR`, one `IDAT` holding a zlib stream made
/// of a single stored (uncompressed) deflate block, `IEND`; each chunk ends
/// with the CRC-32 of its type and data.
pub fn png(clip_id: &str) -> Vec<u8> {
    let d = digest(clip_id);
    let row_len = 1 + 3 * IMAGE_SIDE as usize;
    // Each row: filter type 0 (none), then the pixels.
    let mut row = vec![0u8];
    for _ in 0..IMAGE_SIDE {
        row.extend_from_slice(&d[2..5]);
    }
    debug_assert_eq!(row.len(), row_len);
    let raw = row.repeat(IMAGE_SIDE as usize);
    let len = u16::try_from(raw.len()).expect("image fits one stored block");
    let mut zlib = vec![0x78, 0x01, 0x01]; // zlib header; final stored block
    zlib.extend_from_slice(&len.to_le_bytes());
    zlib.extend_from_slice(&(!len).to_le_bytes());
    zlib.extend_from_slice(&raw);
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());

    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&IMAGE_SIDE.to_be_bytes());
    ihdr.extend_from_slice(&IMAGE_SIDE.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);

    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [
        (b"IHDR", &ihdr[..]),
        (b"IDAT", &zlib[..]),
        (b"IEND", &[][..]),
    ] {
        let len = u32::try_from(data.len()).expect("small chunk");
        out.extend_from_slice(&len.to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    out
}

/// CRC-32 (IEEE, reflected, as PNG and zip use), bit by bit: the inputs
/// are tiny, so no table.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

/// What a `Range` header asks of a file of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAsk {
    /// No usable range: send the whole file (also for multi-range and
    /// malformed headers, which RFC 9110 lets a server ignore).
    Whole,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// 416: the range lies outside the file.
    Unsatisfiable,
}

pub fn parse_range(header: Option<&str>, len: u64) -> RangeAsk {
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
    State(shared): State<Arc<Shared>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (clip, kind) = match file.rsplit_once('.') {
        Some((clip, "mp3")) => {
            shared.lock().records.audio_fetches += 1;
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
    State(shared): State<Arc<Shared>>,
    Path(clip): Path<String>,
    headers: HeaderMap,
) -> Response {
    shared.lock().records.stream_fetches += 1;
    serve(&shared, &clip, Kind::Stream, &headers)
}

/// `GET /api/forbidden`: where a bad final URL of kind `Forbidden` points.
pub(super) async fn forbidden(State(shared): State<Arc<Shared>>) -> Response {
    shared.lock().records.audio_fetches += 1;
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

/// The phase of the task that has `clip`, and what its final URL does.
fn look_up(state: &SandboxState, shared: &Shared, clip: &str) -> Option<(Phase, Option<BadAudio>)> {
    let task = state.records.tasks.by_clip(clip)?;
    let index = task.clip_ids.iter().position(|c| c == clip)?;
    let phase = shared.lifecycle.phase(task, Instant::now());
    Some((phase, task.bad_audio[index]))
}

fn serve(shared: &Shared, clip: &str, kind: Kind, headers: &HeaderMap) -> Response {
    let Some((phase, bad)) = look_up(&shared.lock(), shared, clip) else {
        return not_found("not found");
    };
    // Files the feed does not point at yet (or ever, for a failed clip) do
    // not exist: a CDN answers 404 for an object not uploaded yet.
    let ready = match kind {
        Kind::Final => phase == Phase::Complete,
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
        Kind::Final => ranged(mp3(clip), "audio/mpeg", &format!("\"{clip}-mp3\""), headers),
        Kind::Image => ranged(png(clip), "image/png", &format!("\"{clip}-png\""), headers),
        Kind::Stream => {
            let mut bytes = mp3(clip);
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
    fn checksums_match_known_values() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }

    #[test]
    fn mp3_is_whole_frames_and_matches_its_duration() {
        let id = "0f1c2d3e-0000-4000-8000-000000000000";
        let bytes = mp3(id);
        let frames = frame_count(id);
        assert!((MIN_FRAMES..MIN_FRAMES + FRAME_SPREAD).contains(&frames));
        assert_eq!(bytes.len(), frames as usize * FRAME_LEN);
        assert!(bytes.chunks(FRAME_LEN).all(|f| f[..4] == FRAME_HEADER));
        assert_eq!(duration_secs(id), f64::from(frames) * 0.024);
        assert_eq!(mp3(id), bytes, "deterministic");
    }

    #[test]
    fn bad_audio_is_decided_by_the_clip_id() {
        let ids: Vec<String> = (0..400).map(|i| format!("clip-{i}")).collect();
        let bad = |p, kind| {
            ids.iter()
                .filter_map(|id| bad_audio_for(id, p, kind))
                .collect::<Vec<_>>()
        };
        assert!(bad(0.0, BadAudioKind::Mixed).is_empty());
        assert_eq!(bad(1.0, BadAudioKind::Html), [BadAudio::Html; 400]);
        let some = bad(0.25, BadAudioKind::Mixed);
        assert!((60..140).contains(&some.len()), "{}", some.len());
        for kind in [
            BadAudio::Html,
            BadAudio::Json,
            BadAudio::NotFound,
            BadAudio::NoneMp3,
            BadAudio::Forbidden,
        ] {
            assert!(some.contains(&kind), "{kind:?}");
        }
        assert_eq!(bad(0.25, BadAudioKind::Mixed), some, "deterministic");
    }

    #[test]
    fn png_has_valid_chunks() {
        let png = png("x");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(&png[png.len() - 8..], b"IEND\xAE\x42\x60\x82");
        assert_ne!(png, super::png("y"));
    }

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
