//! The files a clip's `audio_url` and `image_url` point at: a real (silent)
//! MP3 and a tiny PNG, both made on the fly from the clip id, and which
//! clips' final URLs are bad under `--bad-audio`.
//!
//! Its own module because these are pure functions of a clip id, used by
//! the clip JSON (`clips`: a clip's `duration`), by the decision at
//! acceptance (`decide`: its bad final URLs) and by the routes that serve
//! the bytes (`media`); none of them needs HTTP.
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
//!
//! # Bad final URLs
//! Under `--bad-audio P` a finished clip's final URL, decided per clip from
//! a hash of its id ([`bad_audio_for`]), does what public reports show real
//! ones do: answers an HTML page or a JSON body with 200, answers 404, is
//! `…/None.mp3`, or is `…/api/forbidden` (403); `media` serves each.

use sha2::{Digest, Sha256};

use super::config::BadAudioKind;
use super::state::BadAudio;

/// The header of every frame; see the module docs.
const FRAME_HEADER: [u8; 4] = [0xFF, 0xFB, 0x94, 0xC4];
/// Bytes per frame: 144 * 128 kbit/s / 48 kHz.
pub const FRAME_LEN: usize = 384;
/// Samples per MPEG-1 Layer III frame, and the sample rate.
const SAMPLES_PER_FRAME: u32 = 1152;
const SAMPLE_RATE: u32 = 48_000;
/// The shortest clip, in frames (2.4 s), and how many lengths there are.
const MIN_FRAMES: u32 = 100;
const FRAME_SPREAD: u32 = 150;
/// Side length of the square cover image.
const IMAGE_SIDE: u32 = 16;

fn digest(clip_id: &str) -> [u8; 32] {
    Sha256::digest(clip_id.as_bytes()).into()
}

/// How many frames the clip's MP3 has.
fn frame_count(clip_id: &str) -> u32 {
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
        BadAudioKind::Streaming => BadAudio::Streaming,
        BadAudioKind::Missing => BadAudio::Missing,
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
fn crc32(bytes: &[u8]) -> u32 {
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
}
