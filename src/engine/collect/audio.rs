//! Is this the song? The checks a download passes before it is kept.
//!
//! A `complete` clip's `audio_url` is not always a song: public reports show
//! `…/None.mp3` (a missing value printed into the URL), URLs ending in
//! `/api/forbidden`, HTML error pages and JSON error bodies served with
//! 200, and a streaming URL serves a partial, growing body. Kept under its
//! final name, any of these would look like a finished download and never
//! be fetched again. So before anything is requested, the URL must be
//! usable ([`usable_url`]); the answer's `Content-Type` must be audio
//! ([`content_type`]); and before the file is renamed into place its first
//! bytes must be an MP3's ([`looks_like_audio`]: an `ID3` tag header or an
//! MPEG frame sync).
//!
//! `Content-Type` is judged leniently, because object stores and CDNs label
//! files loosely: `audio/*` is audio; `application/octet-stream`,
//! `binary/octet-stream` and a missing header are tolerated (the first
//! bytes decide); anything else (`text/html`, `application/json`,
//! `image/png`, …) is refused without reading the body.
//!
//! Messages name the URL by host and path only ([`place`]): a query string
//! can carry a signed token, and user info a password.

use crate::api::feed;

/// Why `url` cannot be the final file, before any request; `Ok` if it may
/// be.
///
/// # Errors
/// No URL (or not http(s): the parser drops those), a streaming URL, or a
/// file named for a missing value (`None.mp3`, `null.mp3`,
/// `undefined.mp3`).
pub fn usable_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err("the clip is complete but the API gave no usable audio_url".to_owned());
    }
    let Ok(parsed) = url::Url::parse(url) else {
        return Err(format!("{}: not a URL", place(url)));
    };
    if feed::is_streaming_url(url) {
        return Err(format!(
            "{}: a streaming URL, not the final file",
            place(url)
        ));
    }
    let name = parsed
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or_default();
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    if ["none", "null", "undefined", "nan"].contains(&stem.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "{}: the API's audio_url names no file ({name})",
            place(url)
        ));
    }
    Ok(())
}

/// Whether an answer's `Content-Type` may hold an MP3 (module docs).
///
/// # Errors
/// The type, quoted and capped, when it is not audio.
pub fn content_type(value: Option<&str>) -> Result<(), String> {
    let Some(value) = value else { return Ok(()) };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence.is_empty()
        || essence.starts_with("audio/")
        || essence == "application/octet-stream"
        || essence == "binary/octet-stream"
    {
        return Ok(());
    }
    Err(format!("not audio: Content-Type {:?}", excerpt(value, 60)))
}

/// Whether a file's first bytes are an MP3's: an ID3v2 tag header (`ID3`)
/// or an MPEG audio frame sync (11 set bits: `0xFF`, then `0xE0` masked).
pub fn looks_like_audio(head: &[u8]) -> bool {
    head.starts_with(b"ID3") || matches!(head, [0xFF, b, ..] if b & 0xE0 == 0xE0)
}

/// Why `head` is not audio, for the catalog: what it starts with.
pub fn not_audio(head: &[u8]) -> String {
    if head.is_empty() {
        return "not audio: an empty body".to_owned();
    }
    let text = String::from_utf8_lossy(&head[..head.len().min(40)]);
    format!(
        "not audio: the body starts with {:?}, not an ID3 tag or an MPEG frame",
        excerpt(&text, 40)
    )
}

/// `https://user:pw@cdn.example/a/b.mp3?token=x` → `cdn.example/a/b.mp3`:
/// where a URL points, without what may be secret; capped.
pub fn place(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or_default();
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            excerpt(&format!("{host}{port}{}", u.path()), 200)
        }
        Err(_) => "an unreadable URL".to_owned(),
    }
}

/// One line, control characters out, at most `max` characters.
fn excerpt(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_that_cannot_be_the_song_are_refused_before_a_request() {
        for (url, why) in [
            ("", "no usable audio_url"),
            ("https://audiopipe.suno.ai/?item_id=d23e", "streaming URL"),
            ("https://cdn.example/stream?item_id=1", "streaming URL"),
            ("https://cdn1.suno.ai/None.mp3", "names no file (None.mp3)"),
            ("https://cdn1.suno.ai/x/null.mp3", "names no file"),
            ("https://cdn1.suno.ai/undefined", "names no file"),
        ] {
            let e = usable_url(url).expect_err(url);
            assert!(e.contains(why), "{url}: {e}");
        }
        for url in [
            "https://cdn1.suno.ai/d23e.mp3",
            "http://127.0.0.1:8080/media/a.mp3?sig=1",
            "https://cdn.example/api/forbidden",
        ] {
            assert_eq!(usable_url(url), Ok(()), "{url}");
        }
    }

    #[test]
    fn content_types() {
        for ok in [
            None,
            Some("audio/mpeg"),
            Some("Audio/MP3; charset=binary"),
            Some("application/octet-stream"),
            Some("binary/octet-stream"),
            Some(""),
        ] {
            assert_eq!(content_type(ok), Ok(()), "{ok:?}");
        }
        for bad in [
            "text/html; charset=utf-8",
            "application/json",
            "image/png",
            "text/plain",
        ] {
            let e = content_type(Some(bad)).expect_err(bad);
            assert!(e.starts_with("not audio: Content-Type"), "{e}");
        }
    }

    #[test]
    fn first_bytes() {
        assert!(looks_like_audio(b"ID3\x04\x00\x00\x00\x00\x00\x00"));
        assert!(looks_like_audio(&[0xFF, 0xFB, 0x94, 0xC4]));
        assert!(looks_like_audio(&[0xFF, 0xE3]));
        for bad in [
            &b"<!DOCTYPE html>"[..],
            b"{\"code\":404}",
            b"",
            &[0xFF],
            &[0xFF, 0x1F],
            b"ID",
        ] {
            assert!(!looks_like_audio(bad), "{bad:?}");
        }
        assert!(not_audio(b"<html>\n<body>").contains(r#""<html> <body>""#));
        assert_eq!(not_audio(b""), "not audio: an empty body");
    }

    #[test]
    fn places_keep_no_secret() {
        assert_eq!(
            place("https://user:pw@cdn.example/a/b.mp3?token=x#f"),
            "cdn.example/a/b.mp3"
        );
        assert_eq!(
            place("http://127.0.0.1:81/None.mp3"),
            "127.0.0.1:81/None.mp3"
        );
        assert_eq!(place("::"), "an unreadable URL");
        assert!(
            place(&format!("https://h/{}", "a".repeat(500)))
                .chars()
                .count()
                <= 201
        );
    }
}
