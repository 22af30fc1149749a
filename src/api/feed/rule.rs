//! The completion rule for one clip (the module docs of [`super`], "When
//! a clip is finished"), in one place for every provider: udioapi's feeds
//! and callbacks, sunoapi's record-info and callbacks, gcui's clips; and
//! the watermark that fails a clip whatever its stage ([`is_watermarked`]).

use super::ClipStatus;

/// The `extra_message` of the final stage, lower-cased.
const FINAL_MESSAGE: &str = "all generated successfully";

/// Why a clip the host calls finished is held at `first`: it gave no URL
/// of the final file (none, one that is not http(s), or sunoapi's
/// streaming URL again). The clip stays pending, and this is the reason
/// the summary and `status` count it under.
pub const NO_FINAL_URL: &str =
    "the host calls the clip finished but gives no URL of its final file";

/// Why a clip the host calls finished is held at `first`: its only audio
/// URL is a streaming one, never the final file.
pub const ONLY_STREAMING_URL: &str =
    "the host calls the clip finished but gives only a streaming URL, not the final file";

/// Whether `message` is one of the reasons a finished clip is held back
/// (a pending clip's, not a failure's).
pub fn is_held_back(message: &str) -> bool {
    message == NO_FINAL_URL || message == ONLY_STREAMING_URL
}

/// The completion rule for one clip that did not fail ([`super`]'s docs),
/// with the reason a clip the host calls finished is held back
/// ([`NO_FINAL_URL`], [`ONLY_STREAMING_URL`]). `reported` is the host's
/// stage word; sunoapi's task stages arrive here as `text` and
/// `streaming`, gcui's `submitted` and `queued` as `new`.
pub(super) fn stage(
    reported: &str,
    extra: &str,
    audio_url: &str,
    duration: Option<f64>,
) -> (ClipStatus, Option<&'static str>) {
    let status = match reported.trim().to_ascii_lowercase().as_str() {
        "complete" | "completed" | "success" => ClipStatus::Complete,
        "first" if extra.to_lowercase().contains(FINAL_MESSAGE) => ClipStatus::Complete,
        "streaming" if is_final_mp3(audio_url) && duration.is_some_and(|d| d > 0.0) => {
            ClipStatus::Complete
        }
        "first" | "streaming" => ClipStatus::First,
        "text" => ClipStatus::Text,
        "failed" | "fail" | "error" => ClipStatus::Failed,
        _ => ClipStatus::New,
    };
    // Finished in words, but the final file is not there yet: no URL (or
    // none that is http(s)), or a streaming one.
    if status == ClipStatus::Complete && audio_url.is_empty() {
        return (ClipStatus::First, Some(NO_FINAL_URL));
    }
    if status == ClipStatus::Complete && is_streaming_url(audio_url) {
        return (ClipStatus::First, Some(ONLY_STREAMING_URL));
    }
    (status, None)
}

/// What a relay that failed Suno's captcha writes instead of the song's
/// lyrics (API.md, "Results"; SunoAI-API/Suno-API #53, QuantumNous/new-api
/// #653): matched case-insensitively, whitespace ignored.
pub const WATERMARK: &str = "This is a fake app http://suno.com";

/// Why a clip with [`WATERMARK`] in its lyrics failed, as the catalog says.
/// It names the address without quoting it as a URL: server text is
/// stored with its URLs normalised (`crate::util::redact`), and the
/// reason must read the same in every report.
pub const WATERMARK_REASON: &str = "watermarked lyrics (\"This is a fake app\" and Suno's address): the host's relay failed Suno's captcha; the song is not what was asked";

/// Whether `lyrics` hold [`WATERMARK`], in any case and with any
/// whitespace (line breaks, runs of spaces, none) between its words.
pub fn is_watermarked(lyrics: &str) -> bool {
    let squeezed = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect()
    };
    squeezed(lyrics).contains(&squeezed(WATERMARK))
}

/// A streaming URL (`https://audiopipe.suno.ai/?item_id=…`): it serves a
/// partial, growing body, never the final file. Recognised by an
/// `audiopipe` host or an `item_id` query parameter.
pub fn is_streaming_url(url: &str) -> bool {
    let Ok(url) = url::Url::parse(url) else {
        return false;
    };
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    host.split('.').any(|label| label == "audiopipe")
        || url
            .query_pairs()
            .any(|(name, _)| name.eq_ignore_ascii_case("item_id"))
}

/// An http(s) URL whose path ends in `.mp3` and is not a streaming URL.
pub fn is_final_mp3(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    matches!(parsed.scheme(), "http" | "https")
        && parsed.path().to_ascii_lowercase().ends_with(".mp3")
        && !is_streaming_url(url)
}
