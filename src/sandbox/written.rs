//! What the service writes itself: the title and style of a job that
//! leaves them to it, and the lyrics a relay writes when it failed Suno's
//! captcha.
//!
//! A non-custom job (a description in `prompt`, or inspiration mode's
//! `gpt_description_prompt`) gets a **generated** title and style (API.md,
//! "Results": "the clips' `title` and `tags` are the service's, not the
//! manifest's"). The sandbox makes them as a pure function of the
//! description, so the same job gets the same title and style on every run
//! and from every face: a title of the description's first words that say
//! something ([`title`], "Calm Rain Tin" for "a calm song about rain on a
//! tin roof"), and a style of one genre from a short list and a tempo
//! ([`style`], e.g. "dream pop, 92 bpm"). A custom job keeps the title and
//! style it sent.
//!
//! Under `--fail-captcha P` a clip's lyrics are [`WATERMARK`] instead of
//! its own ([`watermarked`], decided from the clip's id like
//! `--bad-audio`), whatever its stage says: what hosts whose relay failed
//! Suno's captcha answer (gcui-art hosts, new-api #653). The song is still
//! made and reaches its final stage; a client must refuse it.

use sha2::{Digest, Sha256};

use super::faults::drawn_for;
use crate::job::JobFields;

/// The lyrics of a clip whose relay failed Suno's captcha.
pub const WATERMARK: &str = "This is a fake app http://suno.com";

/// Genres a generated style picks from.
const GENRES: [&str; 12] = [
    "dream pop",
    "lofi hip hop",
    "synthwave",
    "indie folk",
    "acoustic ballad",
    "city pop",
    "ambient",
    "jazz",
    "bossa nova",
    "chillwave",
    "soul",
    "piano pop",
];

/// Words of a description that say nothing about the song.
const FILLER: [&str; 24] = [
    "a", "an", "the", "song", "track", "tune", "music", "about", "of", "on", "in", "at", "with",
    "and", "for", "to", "by", "my", "is", "that", "this", "some", "from", "into",
];

/// Words for a title when the description has none that say anything.
const FALLBACK_WORDS: [[&str; 8]; 2] = [
    [
        "Midnight", "Velvet", "Neon", "Quiet", "Golden", "Paper", "Electric", "Distant",
    ],
    [
        "Rain", "Harbor", "Echoes", "Static", "Lanterns", "Highway", "Bloom", "Tides",
    ],
];

/// Most words in a generated title, and most characters of each.
const TITLE_WORDS: usize = 3;
const WORD_CHARS: usize = 20;

/// The job's title and style as its clips show them: its own in custom
/// mode, the service's ([`title`], [`style`]) otherwise.
pub fn title_and_style(fields: &JobFields) -> (String, String) {
    if fields.custom_mode == Some(true) {
        let title = fields.title.clone().unwrap_or_default();
        return (title, fields.style.clone().unwrap_or_default());
    }
    let description = fields
        .gpt_description_prompt
        .as_deref()
        .or(fields.prompt.as_deref())
        .unwrap_or_default();
    (title(description), style(description))
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// A title of the description's first [`TITLE_WORDS`] words that are not
/// [`FILLER`], each capitalised; two words of [`FALLBACK_WORDS`] picked
/// from the description's hash when it has none.
pub fn title(description: &str) -> String {
    let words: Vec<String> = description
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !FILLER.contains(&w.to_lowercase().as_str()))
        .take(TITLE_WORDS)
        .map(|w| {
            let mut chars = w.chars().take(WORD_CHARS);
            let first: String = chars
                .next()
                .into_iter()
                .flat_map(char::to_uppercase)
                .collect();
            first + &chars.collect::<String>().to_lowercase()
        })
        .collect();
    if !words.is_empty() {
        return words.join(" ");
    }
    let d = digest(description);
    let [first, second] = FALLBACK_WORDS;
    format!(
        "{} {}",
        first[usize::from(d[2]) % first.len()],
        second[usize::from(d[3]) % second.len()]
    )
}

/// A style of one of [`GENRES`] and a tempo from 70 to 130 bpm, picked
/// from the description's hash: "dream pop, 92 bpm".
pub fn style(description: &str) -> String {
    let d = digest(description);
    let genre = GENRES[usize::from(d[0]) % GENRES.len()];
    let bpm = 70 + u32::from(d[1]) % 61;
    format!("{genre}, {bpm} bpm")
}

/// Whether the clip `clip_id`'s lyrics are [`WATERMARK`] under
/// `--fail-captcha probability` (decided from the id alone).
pub fn watermarked(clip_id: &str, probability: f64) -> bool {
    drawn_for(clip_id, "captcha", probability)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_the_descriptions_words() {
        assert_eq!(
            title("a calm song about rain on a tin roof"),
            "Calm Rain Tin"
        );
        assert_eq!(
            title("An UPBEAT song about a city at night"),
            "Upbeat City Night"
        );
        assert_eq!(title("über-düstere Nacht"), "Über Düstere Nacht");
        let none = title("a song about the ...");
        assert_eq!(none.split(' ').count(), 2, "{none}");
        assert_eq!(none, title("a song about the ..."), "the same every time");
        let long = title(&"x".repeat(500));
        assert_eq!(long.chars().count(), WORD_CHARS);
    }

    #[test]
    fn styles_are_a_genre_and_a_tempo_the_same_every_time() {
        let s = style("a calm song about rain on a tin roof");
        assert_eq!(s, style("a calm song about rain on a tin roof"));
        let (genre, bpm) = s.split_once(", ").unwrap();
        assert!(GENRES.contains(&genre), "{s}");
        let bpm: u32 = bpm.strip_suffix(" bpm").unwrap().parse().unwrap();
        assert!((70..=130).contains(&bpm), "{s}");
        let styles: std::collections::BTreeSet<String> =
            (0..64).map(|i| style(&format!("song {i}"))).collect();
        assert!(styles.len() > 10, "descriptions get different styles");
    }

    #[test]
    fn custom_jobs_keep_their_own() {
        let custom = JobFields {
            custom_mode: Some(true),
            title: Some("Neon".into()),
            style: Some("synthwave".into()),
            prompt: Some("[Verse] lights".into()),
            ..JobFields::default()
        };
        assert_eq!(
            title_and_style(&custom),
            ("Neon".to_owned(), "synthwave".to_owned())
        );
        let inspired = JobFields {
            gpt_description_prompt: Some("an upbeat song about a city at night".into()),
            ..JobFields::default()
        };
        let (t, s) = title_and_style(&inspired);
        assert_eq!(t, "Upbeat City Night");
        assert_eq!(s, style("an upbeat song about a city at night"));
    }

    #[test]
    fn watermarks_by_probability_from_the_id() {
        assert!(!watermarked("c1", 0.0));
        assert!(watermarked("c1", 1.0));
        let hits = (0..1000)
            .filter(|i| watermarked(&format!("clip-{i}"), 0.3))
            .count();
        assert!((200..400).contains(&hits), "{hits}");
        assert_eq!(watermarked("c7", 0.5), watermarked("c7", 0.5));
    }
}
