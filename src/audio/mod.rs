//! What a downloaded take sounds like, in numbers: one streaming pass over
//! the decoded MP3 gives its length, loudness, peaks, silences, clipping
//! and an audio fingerprint ([`Measurement`]); from those, the ReplayGain
//! tags players read ([`write_replaygain`]) and a WAV at a delivery
//! loudness ([`write_wav`]).
//!
//! # Why
//! A take is released, regenerated or dropped on what it sounds like, not
//! on what the API said about it: too short or cut off, silent at the head
//! or tail (or collapsing into silence before its end), clipped, far louder
//! or quieter than its siblings, or the very same audio as the other take
//! of its task. Publishers check these by ear and by meter today; these
//! numbers let rules check them for every take.
//!
//! # How it is measured
//! - **Decoding**: `symphonia` (pure Rust), packet by packet. A take is
//!   never held as a whole in memory (four minutes of stereo f32 would be
//!   ~85 MB); each packet's interleaved samples go to every meter and are
//!   dropped. The encoder's delay and padding named by a LAME tag are
//!   trimmed (gapless decoding), so the length is the length that was
//!   encoded. A damaged frame is skipped and counted
//!   ([`Measurement::decode_errors`]); a file cut short measures the part
//!   that is there. symphonia 0.5 clamps what it decodes to ±1.0, which
//!   hides how far a hot take overshoots full scale (see
//!   [`Measurement::sample_peak_dbfs`]).
//! - **Loudness and peaks**: the `ebur128` crate, a port of libebur128,
//!   the reference implementation of ITU-R BS.1770 / EBU R128: integrated
//!   loudness (LUFS), loudness range (LU), true peak (dBTP, 4× oversampled
//!   below 96 kHz) and sample peak (dBFS), the peaks the highest of any
//!   channel. The integrated loudness of digital silence is −∞: it is
//!   `None` here, and so are the peaks of a take whose every sample is
//!   zero, so a stored measurement is plain JSON (`null`, never `-inf`).
//! - **Silence**: the `silence` module's windows; see [`SilenceSettings`].
//! - **Clipping**: samples at or above [`CLIP_LEVEL`] in magnitude.
//! - **Fingerprint**: SHA-256 of the decoded PCM (see
//!   [`Measurement::audio_sha256`]), so two takes with the same audio and
//!   different tags compare equal; and SHA-256 of the file's bytes.
//!
//! # Parts
//! | module | owns |
//! |---|---|
//! | this one | [`Measurement`] and its [`VERSION`], [`SilenceSettings`], [`AudioError`], [`measure_file`] and [`measure_reader`] |
//! | `decode` | [`PcmStream`]: an MP3 from any reader to interleaved f32 packets, the file's bytes hashed on the way |
//! | `meter` | [`Meter`]: the one pass over the samples, every figure at once |
//! | `silence` | the silent runs at the head, the tail and inside |
//! | `replaygain` | [`ReplayGain`] 2.0 numbers, their tag strings, and writing them into an MP3's ID3v2 tag |
//! | `wav` | [`write_wav`]: the take decoded again, one gain, dither, a WAV written atomically |
//!
//! The module sits in the lowest layers: it knows samples and files, not
//! jobs, providers or runs, and uses only [`crate::util`] (the atomic
//! rewrite of [`crate::util::fsx`]).

mod decode;
mod meter;
mod replaygain;
mod silence;
mod wav;

#[cfg(test)]
mod tests;

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use decode::PcmStream;
pub use meter::{CLIP_LEVEL, Meter};
pub use replaygain::{REFERENCE_LUFS, ReplayGain, write_replaygain};
pub use wav::{Limit, WavBits, WavReport, WavSettings, write_wav};

/// The measuring method's version, stored in every [`Measurement`]. It
/// changes whenever a figure would come out differently for the same file
/// (a meter, a threshold, the decoder's output, the fingerprint's
/// quantisation), so a stored measurement of another version is measured
/// again rather than compared.
pub const VERSION: u32 = 1;

/// Why a take could not be measured, tagged or converted. Every message
/// names the file.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The file cannot be opened or read (missing, a folder, a disk error).
    #[error("cannot read {}: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    /// No MPEG audio stream in it: an HTML or JSON error page, an empty
    /// file, an image, or an MP3 cut off before its first whole frame.
    #[error("{} is not an MP3: {reason}", file.display())]
    NotMp3 { file: PathBuf, reason: String },
    /// An MPEG stream, but not one frame of it decodes.
    #[error("{} has no decodable audio ({reason})", file.display())]
    NoAudio { file: PathBuf, reason: String },
    /// The decoder or a meter refused the stream as a whole (an
    /// unsupported layer, a sample rate of zero).
    #[error("cannot decode {}: {reason}", file.display())]
    Decode { file: PathBuf, reason: String },
    /// The take is digitally silent (or below BS.1770's −70 LUFS gate): it
    /// has no loudness to derive a gain from.
    #[error("{} has no measurable loudness (silent)", file.display())]
    Silent { file: PathBuf },
    /// A measurement given for this file is not of this file's audio.
    #[error("the measurement given for {} is not of its audio: {reason}", file.display())]
    Mismatch { file: PathBuf, reason: String },
    /// The file's ID3v2 tag cannot be read or written.
    #[error("cannot tag {}: {reason}", file.display())]
    Tag { file: PathBuf, reason: String },
    /// The output cannot be written.
    #[error("cannot write {}: {source}", file.display())]
    Write {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Where a take's leading, trailing and inner silences are drawn.
///
/// The level is the RMS of all channels over [`SilenceSettings::WINDOW`]
/// (10 ms) windows, in dB relative to a full-scale square wave (a
/// full-scale sine reads −3 dBFS). RMS rather than peak, because a peak
/// meter calls a fade's quiet tail loud on one stray sample of codec
/// noise, while the RMS of a window follows what is heard; 10 ms is short
/// enough to place a silence's edges within a hundredth of a second and
/// long enough to hold several periods of anything above 100 Hz.
/// A window is silent when its level is below `threshold_dbfs`; a run of
/// silent windows counts as a silence when it lasts at least `min_len`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SilenceSettings {
    /// Below this RMS level a window is silent. Default −40 dBFS, the
    /// threshold publishers' own tools use for Suno takes (CATALOG.md).
    pub threshold_dbfs: f64,
    /// The shortest run of silent windows that is a silence. Default 1 s
    /// (the same tools' minimum); `0` reports every run.
    #[serde(with = "seconds")]
    pub min_len: Duration,
}

impl SilenceSettings {
    /// The length of one level window.
    pub const WINDOW: Duration = Duration::from_millis(10);
}

impl Default for SilenceSettings {
    fn default() -> Self {
        SilenceSettings {
            threshold_dbfs: -40.0,
            min_len: Duration::from_secs(1),
        }
    }
}

/// A `Duration` stored as seconds (a float), as the rest of a measurement.
mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

/// Everything one pass over a take measured. Times are in seconds, levels
/// in dB; `None` stands for −∞ (silence), so the struct round-trips
/// through JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// The [`VERSION`] of the method that measured it.
    pub version: u32,
    /// Frames decoded / sample rate: the take's real length, whatever its
    /// tags or the API claim.
    pub duration: f64,
    /// Frames decoded (one sample per channel each).
    pub frames: u64,
    pub sample_rate: u32,
    pub channels: u16,
    /// Integrated loudness (BS.1770, gated), LUFS; `None` for silence.
    pub integrated_lufs: Option<f64>,
    /// Loudness range (EBU Tech 3342), LU; 0 for a take too short or too
    /// even to have one.
    pub loudness_range_lu: f64,
    /// The highest true peak of any channel, dBTP; `None` if every sample
    /// is zero.
    pub true_peak_dbtp: Option<f64>,
    /// The highest sample magnitude of any channel, dBFS; `None` if every
    /// sample is zero. An MP3 may decode above 0 dBFS, but symphonia 0.5's
    /// decoder clamps its output to ±1.0 (removed in 0.6): a take that
    /// overshoots reads 0 here, its clamped samples are counted in
    /// `clipped_samples`, and its true peak is that of the clamped
    /// waveform, an under-reading of what an unclamped decoder (ffmpeg, a
    /// player) makes of it.
    pub sample_peak_dbfs: Option<f64>,
    /// The silent run at the start (0 if shorter than the settings'
    /// `min_len`). A take silent throughout has it equal to its duration,
    /// and so its trailing silence.
    pub leading_silence: f64,
    /// The silent run at the end (0 if shorter than `min_len`).
    pub trailing_silence: f64,
    /// The longest silent run with sound on both sides (0 if none reaches
    /// `min_len`): a take that collapses into silence and comes back.
    pub longest_inner_silence: f64,
    /// The settings the three silences were measured with.
    pub silence: SilenceSettings,
    /// Samples (each channel counted) at or above [`CLIP_LEVEL`].
    pub clipped_samples: u64,
    /// Runs of consecutive clipped samples on one channel. A run of three
    /// or more is the usual sign of a clipped master; a lone sample at
    /// full scale may be a legal peak.
    pub clip_runs: u64,
    /// The longest such run, in samples.
    pub longest_clip_run: u64,
    /// Packets the decoder could not decode and skipped.
    pub decode_errors: u64,
    /// SHA-256 (hex) of the decoded audio: the format (sample rate and
    /// channels, little-endian u32 and u16) then every sample, interleaved,
    /// quantised to 16 bits (×32767, rounded, saturated) little-endian. Equal
    /// for two files with the same MPEG frames whatever their tags; it is
    /// a fingerprint of this decoder's output, so it is compared only
    /// between measurements of one [`VERSION`].
    pub audio_sha256: String,
    /// SHA-256 (hex) of the file's bytes, tags included.
    pub file_sha256: String,
    /// The file's size in bytes.
    pub file_bytes: u64,
}

impl Measurement {
    /// The true peak as a linear amplitude (1.0 = full scale; 0 for
    /// silence).
    pub fn true_peak_linear(&self) -> f64 {
        self.true_peak_dbtp.map_or(0.0, |db| 10f64.powf(db / 20.0))
    }
}

/// Measures the MP3 at `path` in one streaming pass.
///
/// # Errors
/// [`AudioError`]: the file cannot be read, is not an MP3, or has no
/// decodable frame.
pub fn measure_file(path: &Path, silence: &SilenceSettings) -> Result<Measurement, AudioError> {
    let file = std::fs::File::open(path).map_err(|source| AudioError::Read {
        file: path.to_owned(),
        source,
    })?;
    measure_reader(file, path, silence)
}

/// Measures the MP3 read from `reader` (bytes in memory, a download in
/// flight) in one streaming pass; `name` is what errors call it.
///
/// # Errors
/// As [`measure_file`].
pub fn measure_reader<R>(
    reader: R,
    name: &Path,
    silence: &SilenceSettings,
) -> Result<Measurement, AudioError>
where
    R: Read + Send + Sync + 'static,
{
    let mut stream = PcmStream::new(reader, name)?;
    let mut meter = Meter::new(stream.sample_rate(), stream.channels(), silence)
        .map_err(|e| stream.error(e))?;
    while let Some(samples) = stream.next_chunk()? {
        meter.push(samples).map_err(|e| stream.error(e))?;
    }
    let decode_errors = stream.decode_errors();
    let (file_sha256, file_bytes) = stream.finish()?;
    let mut m = meter.finish().map_err(|e| AudioError::Decode {
        file: name.to_owned(),
        reason: e.to_string(),
    })?;
    if m.frames == 0 {
        return Err(AudioError::NoAudio {
            file: name.to_owned(),
            reason: format!("{decode_errors} frames found, none decodable"),
        });
    }
    m.decode_errors = decode_errors;
    m.file_sha256 = file_sha256;
    m.file_bytes = file_bytes;
    Ok(m)
}
