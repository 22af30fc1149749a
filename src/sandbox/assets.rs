//! The files a clip's `image_url` points at (a tiny PNG made on the fly
//! from the clip id), and which clips' final URLs are bad under
//! `--bad-audio`. The MP3 a final `audio_url` serves is the clip's take,
//! made in `audio`.
//!
//! Its own module because these are pure functions of a clip id, used by
//! the decision at acceptance (`decide`: its bad final URLs) and by the
//! routes that serve the bytes (`media`); none of them needs HTTP.
//!
//! # Bad final URLs
//! Under `--bad-audio P` a finished clip's final URL, decided per clip from
//! a hash of its id ([`bad_audio_for`]), does what public reports show real
//! ones do: answers an HTML page or a JSON body with 200, answers 404, is
//! `…/None.mp3`, or is `…/api/forbidden` (403); `media` serves each.

use sha2::{Digest, Sha256};

use super::config::BadAudioKind;
use super::state::BadAudio;

/// Side length of the square cover image.
const IMAGE_SIDE: u32 = 16;

fn digest(clip_id: &str) -> [u8; 32] {
    Sha256::digest(clip_id.as_bytes()).into()
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
