//! The music a clip's final `audio_url` serves: a take of real, music-like
//! MP3 frames, made from the clip id, and the defects a quality gate must
//! catch (`--bad-take`).
//!
//! # Why real music
//! batchgen measures every downloaded take (loudness, true peak, silence,
//! clipping, length, identical takes) and rejects bad ones. A sandbox that
//! served digital silence would let a broken measurer pass: one that read
//! nothing, or the wrong frames, would find every take equally empty. So a
//! take is music with a known loudness and peak, and a defective take is
//! defective in the way the gate looks for, decoded by any MP3 decoder.
//!
//! # The assets, and why they are shipped
//! The music is encoded once, with a real encoder (LAME 3.100), and shipped
//! in this folder (`normal.mp3`, `quiet.mp3`, `clipped.mp3`; included in the
//! binary), so neither a build nor a test needs an encoder. `make_assets.py`
//! beside this file synthesises it and `README.md` says how to run it.
//!
//! Four 4-bar phrases in C major at 125 bpm: chords on a detuned pad, a
//! bass line, a lead melody and drums, with their own dynamics (a verse, a
//! lift, a breakdown without kick, a chorus with a fill and a crash).
//! `normal.mp3` holds all four at about -14 LUFS (true peak about
//! -1.8 dBTP); `quiet.mp3` two of them 17 dB down (about -30 LUFS);
//! `clipped.mp3` two of them driven 15 dB into a hard clip (about
//! -4 LUFS, a tenth of the samples at full scale, true peak above 0 dBTP).
//!
//! # The frame format, and why takes can be cut and joined
//! MPEG-1 Layer III, 48 kHz, mono, CBR 64 kbit/s: every frame is
//! `144 * 64000 / 48000` = 192 bytes ([`FRAME_LEN`]), never padded, with the
//! header `FF FB 54 C4`, and holds 1152 samples (24 ms). LAME's `--nores`
//! turns the bit reservoir off, so no frame borrows bits from the one before
//! (`main_data_begin` is 0) and any run of frames is a valid stream; `-t`
//! writes no Xing/LAME info frame and no ID3 tag is written, so the files
//! are bare frames. The script cuts the encoder's delay, so each phrase
//! starts on a frame boundary and a bar is exactly 80 frames (1.92 s).
//! Bars of one phrase join exactly (they were encoded as one stream); where
//! two phrases meet, only the codec's 12 ms overlap differs.
//!
//! Silence is made here, not shipped: a frame with the same header and
//! all-zero side information ("no Huffman data, gain 0"), which every
//! decoder turns into digital silence. After music, the first silent frame
//! still carries the last 12 ms of the music's overlap.
//!
//! # Takes
//! A clip's take is a [`Take`]: its kind, its length in frames, and the id
//! whose hash picks its music (the clip's own). A length is drawn from
//! `--take-length` (default 35 s to 70 s: real songs are 2 to 4 minutes,
//! but tests download many clips, and 30 s is the least a streaming payout
//! counts). Music is whole phrases in an order drawn from the hash, cut at
//! the last frame; two clips almost never share their bytes.
//!
//! | kind | what it is |
//! | --- | --- |
//! | normal | music of the drawn length, about -14 LUFS |
//! | quiet | the quiet phrases, about -30 LUFS |
//! | clipped | the clipped phrases: full-scale samples, true peak over 0 dBTP |
//! | silent tail | music, then 15 to 20 s of silence; the drawn length in all |
//! | silent head | 3 to 5 s of silence, then music; the drawn length in all |
//! | short | 12 to 20 s of music, whatever `--take-length` says |
//!
//! A take's duration is exactly its frames × 1152 / 48000 s ([`Take::duration_secs`]),
//! which the feed reports as the clip's `duration`.
//!
//! # Bad takes
//! Under `--bad-take P` with `--bad-take-kind` a clip's take is of a
//! defective kind with probability P, decided from a hash of its id like
//! `--bad-audio` ([`bad_take_for`]), so a seed reproduces the run. One kind
//! is a relation, not a sound: `identical` gives both clips of a task the
//! very same bytes (the first clip's normal take), as a host that returns
//! one song twice does. It is decided per task, from the draw of the task's
//! first clip ([`takes_for`], which decides both clips at acceptance); under
//! `mixed` the first clip may draw it and the second picks among the
//! others. The captcha watermark in lyrics (`--fail-captcha`) is decided on
//! its own and composes with any take.

use std::fmt;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::faults::drawn_for;
use crate::util::units::parse_duration;

/// Bytes per frame: 144 * 64 kbit/s / 48 kHz.
pub const FRAME_LEN: usize = 192;
/// The header of every frame: sync, MPEG-1, Layer III, no CRC, 64 kbit/s,
/// 48 kHz, no padding, mono, "original".
const FRAME_HEADER: [u8; 4] = [0xFF, 0xFB, 0x54, 0xC4];
/// Samples per MPEG-1 Layer III frame, and the sample rate.
const SAMPLES_PER_FRAME: u32 = 1152;
const SAMPLE_RATE: u32 = 48_000;
/// A bar is 80 frames (1.92 s at 125 bpm), a phrase four bars.
const BAR_FRAMES: u32 = 80;
const PHRASE_LEN: usize = 4 * BAR_FRAMES as usize * FRAME_LEN;

/// The phrases, encoded once (see the module docs).
static NORMAL: &[u8] = include_bytes!("normal.mp3");
static QUIET: &[u8] = include_bytes!("quiet.mp3");
static CLIPPED: &[u8] = include_bytes!("clipped.mp3");

/// The longest `--take-length`: ten minutes, longer than any real song.
const MAX_TAKE: Duration = Duration::from_secs(600);
/// Silence at the head of a `silent-head` take: 3 s to 5 s, in frames.
const HEAD_FRAMES: (u32, u32) = (125, 208);
/// Silence at the end of a `silent-tail` take: 15 s to 20 s, in frames.
const TAIL_FRAMES: (u32, u32) = (625, 833);
/// A `short` take: 12 s to 20 s, in frames.
const SHORT_FRAMES: (u32, u32) = (500, 833);

/// What a clip's take sounds like; see the module docs for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeKind {
    Normal,
    Quiet,
    Clipped,
    SilentTail,
    SilentHead,
    Short,
}

/// Which defect `--bad-take` gives a take: the defects a release gate
/// rejects, for testing that a client measures what it downloads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BadTakeKind {
    /// Each bad take gets one of the kinds below, picked from its id
    /// (`identical` only by a task's first clip).
    #[default]
    Mixed,
    /// Far too quiet: about -30 LUFS.
    Quiet,
    /// Over-driven into a hard clip: many samples at full scale, true peak
    /// above 0 dBTP.
    Clipped,
    /// Music, then 15 to 20 s of silence at the end.
    SilentTail,
    /// 3 to 5 s of silence before the music.
    SilentHead,
    /// 12 to 20 s long: under the 30 s a streaming payout needs.
    Short,
    /// Both clips of the task carry the same audio, byte for byte (decided
    /// per task).
    Identical,
}

/// The range a take's length is drawn from (`--take-length`), written
/// `35s..70s` (or one duration, for every take the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TakeLength {
    min: Duration,
    max: Duration,
}

impl Default for TakeLength {
    /// 35 s to 70 s: above the 30 s a streaming payout needs, short enough
    /// for tests that download many clips.
    fn default() -> TakeLength {
        TakeLength {
            min: Duration::from_secs(35),
            max: Duration::from_secs(70),
        }
    }
}

impl TakeLength {
    /// A range from `min` to `max`.
    ///
    /// # Errors
    /// When `min` is over `max`, under a second, or `max` over ten minutes.
    pub fn new(min: Duration, max: Duration) -> Result<TakeLength, String> {
        if min < Duration::from_secs(1) {
            return Err("a take is at least 1s long".into());
        }
        if max > MAX_TAKE {
            return Err("a take is at most 10m long".into());
        }
        if min > max {
            return Err("the shortest take is longer than the longest".into());
        }
        Ok(TakeLength { min, max })
    }

    /// Parses `MIN..MAX` (e.g. `35s..70s`, `1m..2m`) or one duration.
    ///
    /// # Errors
    /// A duration that does not parse, or a range [`TakeLength::new`]
    /// refuses.
    pub fn parse(s: &str) -> Result<TakeLength, String> {
        let (min, max) = s.split_once("..").unwrap_or((s, s));
        let length = TakeLength::new(parse_duration(min)?, parse_duration(max)?);
        length.map_err(|e| format!("invalid take length {s:?}: {e}"))
    }

    /// The shortest take.
    pub fn min(&self) -> Duration {
        self.min
    }

    /// The longest take.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The range in whole frames, rounded inwards (a range narrower than a
    /// frame gives the frame just over its shortest).
    fn frames(&self) -> (u32, u32) {
        let frames =
            |d: Duration| d.as_secs_f64() * f64::from(SAMPLE_RATE) / f64::from(SAMPLES_PER_FRAME);
        // At most ten minutes: 25,000 frames.
        let min = frames(self.min).ceil() as u32;
        let max = frames(self.max).floor() as u32;
        (min, max.max(min))
    }
}

impl fmt::Display for TakeLength {
    /// `35s..70s`, as the flag is written (milliseconds where needed).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |d: Duration| {
            if d.subsec_nanos() == 0 {
                format!("{}s", d.as_secs())
            } else {
                format!("{}ms", d.as_millis())
            }
        };
        write!(f, "{}..{}", show(self.min), show(self.max))
    }
}

/// What `--bad-take`, `--bad-take-kind` and `--take-length` set.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TakeSettings {
    pub bad_take: f64,
    pub bad_take_kind: BadTakeKind,
    pub take_length: TakeLength,
}

/// One clip's audio: what it sounds like, how long it is, and the id whose
/// hash picks its music. A pure function of these: [`Take::mp3`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Take {
    source: String,
    kind: TakeKind,
    frames: u32,
    /// Frames of silence at the head or the tail (by kind), else 0.
    silent: u32,
}

impl Take {
    /// The take of `kind` whose music and length are drawn from a hash of
    /// `source` (a clip id), its length from `length` (see the module docs
    /// for each kind's).
    pub fn new(source: &str, kind: TakeKind, length: TakeLength) -> Take {
        let mut draw = Draw::new(&format!("length:{source}"));
        let (min, max) = length.frames();
        let drawn = draw.between(min, max);
        let (frames, silent) = match kind {
            TakeKind::Normal | TakeKind::Quiet | TakeKind::Clipped => (drawn, 0),
            TakeKind::SilentHead | TakeKind::SilentTail => {
                let (lo, hi) = if kind == TakeKind::SilentHead {
                    HEAD_FRAMES
                } else {
                    TAIL_FRAMES
                };
                let silent = draw.between(lo, hi);
                // At least a bar of music, whatever the length.
                (drawn.max(silent + BAR_FRAMES), silent)
            }
            TakeKind::Short => (draw.between(SHORT_FRAMES.0, SHORT_FRAMES.1), 0),
        };
        Take {
            source: source.to_owned(),
            kind,
            frames,
            silent,
        }
    }

    /// What the take sounds like. (The sandbox itself needs only the
    /// bytes and the duration; the tests look closer.)
    #[cfg(test)]
    pub fn kind(&self) -> TakeKind {
        self.kind
    }

    /// How many frames the take's MP3 has.
    #[cfg(test)]
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// The exact length of the take's MP3 in seconds (a multiple of 24 ms):
    /// the clip's `duration`.
    pub fn duration_secs(&self) -> f64 {
        f64::from(self.frames * SAMPLES_PER_FRAME) / f64::from(SAMPLE_RATE)
    }

    /// The take's MP3: [`Take::frames`] frames of [`FRAME_LEN`] bytes, no
    /// tag.
    pub fn mp3(&self) -> Vec<u8> {
        let mut draw = Draw::new(&format!("music:{}", self.source));
        let (frames, silent) = (self.frames as usize, self.silent as usize);
        let mut out = Vec::with_capacity(frames * FRAME_LEN);
        match self.kind {
            TakeKind::Normal | TakeKind::Short => music(&mut out, NORMAL, frames, &mut draw),
            TakeKind::Quiet => music(&mut out, QUIET, frames, &mut draw),
            TakeKind::Clipped => music(&mut out, CLIPPED, frames, &mut draw),
            TakeKind::SilentHead => {
                silence(&mut out, silent);
                music(&mut out, NORMAL, frames - silent, &mut draw);
            }
            TakeKind::SilentTail => {
                music(&mut out, NORMAL, frames - silent, &mut draw);
                silence(&mut out, silent);
            }
        }
        debug_assert_eq!(out.len(), frames * FRAME_LEN);
        out
    }

    /// Frames of silence at the head (`silent-head`) or the tail
    /// (`silent-tail`); 0 for the other kinds.
    #[cfg(test)]
    pub fn silent_frames(&self) -> u32 {
        self.silent
    }
}

/// Appends `frames` frames of whole phrases of `pool`, each drawn from
/// `draw`, the last cut short.
fn music(out: &mut Vec<u8>, pool: &[u8], frames: usize, draw: &mut Draw) {
    let phrases = u32::try_from(pool.len() / PHRASE_LEN).expect("a few phrases");
    let mut left = frames * FRAME_LEN;
    while left > 0 {
        let at = draw.between(0, phrases - 1) as usize * PHRASE_LEN;
        let take = left.min(PHRASE_LEN);
        out.extend_from_slice(&pool[at..at + take]);
        left -= take;
    }
}

/// Appends `frames` silent frames (see the module docs).
fn silence(out: &mut Vec<u8>, frames: usize) {
    let mut frame = [0u8; FRAME_LEN];
    frame[..4].copy_from_slice(&FRAME_HEADER);
    for _ in 0..frames {
        out.extend_from_slice(&frame);
    }
}

/// Numbers drawn from a hash of an id: splitmix64 seeded by SHA-256, the
/// same sequence for the same id on every run and platform.
struct Draw(u64);

impl Draw {
    fn new(what: &str) -> Draw {
        let d = Sha256::digest(what.as_bytes());
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&d[..8]);
        Draw(u64::from_be_bytes(seed))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number from `lo` to `hi`, both included.
    fn between(&mut self, lo: u32, hi: u32) -> u32 {
        let span = u64::from(hi - lo) + 1;
        lo + u32::try_from(self.next() % span).expect("under the span")
    }
}

/// Whether (and how) the take of clip `clip_id` is bad under `--bad-take
/// probability` with `kind`: a pure function of the id, so the seed that
/// gives the clip ids gives the bad takes. `first` says whether the clip
/// is its task's first, the only one that draws `identical` under
/// `mixed`.
pub fn bad_take_for(
    clip_id: &str,
    probability: f64,
    kind: BadTakeKind,
    first: bool,
) -> Option<BadTakeKind> {
    if !drawn_for(clip_id, "bad-take", probability) {
        return None;
    }
    const ALL: [BadTakeKind; 6] = [
        BadTakeKind::Quiet,
        BadTakeKind::Clipped,
        BadTakeKind::SilentTail,
        BadTakeKind::SilentHead,
        BadTakeKind::Short,
        BadTakeKind::Identical,
    ];
    Some(match kind {
        BadTakeKind::Mixed => {
            let kinds = if first { &ALL[..] } else { &ALL[..5] };
            let d = Sha256::new()
                .chain_update(b"bad-take-kind:")
                .chain_update(clip_id.as_bytes())
                .finalize();
            kinds[usize::from(d[0]) % kinds.len()]
        }
        BadTakeKind::Identical if !first => return None,
        kind => kind,
    })
}

/// The takes of a task's two clips, decided at acceptance: each clip's
/// from its own id ([`bad_take_for`]), except that a first clip drawn
/// `identical` makes both clips carry its normal take.
pub fn takes_for(clip_ids: &[String; 2], settings: &TakeSettings) -> [Take; 2] {
    let TakeSettings {
        bad_take,
        bad_take_kind,
        take_length,
    } = *settings;
    let take = |index: usize| {
        let id = &clip_ids[index];
        let kind = match bad_take_for(id, bad_take, bad_take_kind, index == 0) {
            None | Some(BadTakeKind::Identical | BadTakeKind::Mixed) => TakeKind::Normal,
            Some(BadTakeKind::Quiet) => TakeKind::Quiet,
            Some(BadTakeKind::Clipped) => TakeKind::Clipped,
            Some(BadTakeKind::SilentTail) => TakeKind::SilentTail,
            Some(BadTakeKind::SilentHead) => TakeKind::SilentHead,
            Some(BadTakeKind::Short) => TakeKind::Short,
        };
        Take::new(id, kind, take_length)
    };
    let identical =
        bad_take_for(&clip_ids[0], bad_take, bad_take_kind, true) == Some(BadTakeKind::Identical);
    if identical {
        let first = take(0);
        return [first.clone(), first];
    }
    [take(0), take(1)]
}

#[cfg(test)]
mod tests;
