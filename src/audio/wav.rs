//! A WAV of a take, for destinations that take no MP3 (distributors,
//! stock and production libraries).
//!
//! A WAV decoded from an MP3 is a change of format, not of quality: it
//! holds exactly what the MP3 decodes to, which is all a distributor will
//! ever hear of it. Where the provider offers its own WAV (sunoapi's
//! `/api/v1/wav/generate`), that is the better source.
//!
//! The take is decoded again and one gain is applied to the whole of it:
//! the gain that brings its integrated loudness to the target, unless
//! that would push its true peak over the ceiling, in which case the gain
//! that puts the true peak at the ceiling (a quieter file, never a
//! limiter or a compressor: the dynamics stay the take's). A take without
//! loudness (silent, or below BS.1770's gate) is written at unity gain.
//!
//! Samples are scaled by 2^(bits − 1) (the convention of ffmpeg and
//! libsndfile, so a reader gets back what was meant) and rounded. At 16
//! bits, TPDF dither (two uniform variables, ±1 LSB, no noise shaping)
//! goes in before the rounding, so the quantisation error is noise rather
//! than distortion that follows the music; its generator is seeded
//! constantly, so one MP3 always gives the same WAV bytes. At 24 bits the
//! rounding error is 144 dB down, under any converter's own noise, and
//! the samples are only rounded. The ceiling holds for the quantised file:
//! the gain keeps 4 LSB below it for the dither and the rounding.
//!
//! The WAV is written beside its final name and renamed into place
//! ([`AtomicFile`]): a crash, an error or a measurement that turns out not
//! to be of this file leaves no partial WAV.

use std::io::{self, BufWriter};
use std::path::Path;

use super::{AudioError, Measurement, PcmStream};
use crate::util::fsx::AtomicFile;

/// Bits per sample of the WAV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavBits {
    /// CD and stock-library standard; dithered.
    Sixteen,
    /// Production-library standard.
    TwentyFour,
}

impl WavBits {
    /// 16 or 24.
    pub fn bits(self) -> u16 {
        match self {
            WavBits::Sixteen => 16,
            WavBits::TwentyFour => 24,
        }
    }

    /// `WavBits` for 16 or 24; `None` for anything else.
    pub fn from_bits(bits: u16) -> Option<WavBits> {
        match bits {
            16 => Some(WavBits::Sixteen),
            24 => Some(WavBits::TwentyFour),
            _ => None,
        }
    }
}

/// What the WAV is written as.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WavSettings {
    pub bits: WavBits,
    /// Integrated loudness aimed at, LUFS. Default −14 (Spotify, YouTube).
    pub target_lufs: f64,
    /// The true peak never exceeded, dBTP. Default −1 (Spotify's and
    /// EBU R128's delivery maximum).
    pub ceiling_dbtp: f64,
}

impl Default for WavSettings {
    fn default() -> Self {
        WavSettings {
            bits: WavBits::Sixteen,
            target_lufs: -14.0,
            ceiling_dbtp: -1.0,
        }
    }
}

/// What set the gain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The loudness target: the WAV measures the target.
    Target,
    /// The true-peak ceiling: the WAV is quieter than the target.
    Ceiling,
    /// No loudness to aim from: the take as it is.
    Unity,
}

/// What [`write_wav`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WavReport {
    /// The gain applied, dB.
    pub gain_db: f64,
    pub limit: Limit,
    /// Frames written.
    pub frames: u64,
}

/// The gain for a take measured `m` under `settings`, in dB, and what set
/// it.
fn gain(m: &Measurement, settings: &WavSettings) -> (f64, Limit) {
    let (Some(lufs), Some(peak)) = (m.integrated_lufs, m.true_peak_dbtp) else {
        return (0.0, Limit::Unity);
    };
    let to_target = settings.target_lufs - lufs;
    let ceiling = 10f64.powf(settings.ceiling_dbtp / 20.0);
    let margin = 4.0 / full_scale(settings.bits);
    let room = if ceiling > 2.0 * margin {
        20.0 * (ceiling - margin).log10() - peak
    } else {
        settings.ceiling_dbtp - peak
    };
    if to_target <= room {
        (to_target, Limit::Target)
    } else {
        (room, Limit::Ceiling)
    }
}

/// The scale of full scale: 2^(bits − 1).
fn full_scale(bits: WavBits) -> f64 {
    f64::from(1u32 << (bits.bits() - 1))
}

/// Writes `mp3` as the WAV `wav` (see the module docs): decoded again, one
/// gain from its measurement `m`, quantised to `settings.bits`, renamed
/// into place.
///
/// # Errors
/// The MP3's own ([`PcmStream`]'s); [`AudioError::Mismatch`] when `m` is
/// not a measurement of this file's audio (another format or length);
/// [`AudioError::Write`] when the WAV cannot be written.
pub fn write_wav(
    mp3: &Path,
    wav: &Path,
    m: &Measurement,
    settings: &WavSettings,
) -> Result<WavReport, AudioError> {
    let mut stream = PcmStream::open(mp3)?;
    let mismatch = |reason: String| AudioError::Mismatch {
        file: mp3.to_owned(),
        reason,
    };
    if (stream.sample_rate(), stream.channels()) != (m.sample_rate, m.channels) {
        return Err(mismatch(format!(
            "it is {} Hz × {} channels, the measurement {} Hz × {}",
            stream.sample_rate(),
            stream.channels(),
            m.sample_rate,
            m.channels
        )));
    }
    let (gain_db, limit) = gain(m, settings);
    let write = |source: io::Error| AudioError::Write {
        file: wav.to_owned(),
        source,
    };
    let hound_error = |e: hound::Error| match e {
        hound::Error::IoError(source) => write(source),
        other => write(io::Error::other(other)),
    };
    let mut out = AtomicFile::create(wav).map_err(write)?;
    let spec = hound::WavSpec {
        channels: m.channels,
        sample_rate: m.sample_rate,
        bits_per_sample: settings.bits.bits(),
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer =
        hound::WavWriter::new(BufWriter::new(out.file_mut()), spec).map_err(hound_error)?;
    let mut quantiser = Quantiser::new(settings.bits, gain_db);
    let mut frames = 0u64;
    while let Some(samples) = stream.next_chunk()? {
        quantiser.write(&mut writer, samples).map_err(hound_error)?;
        frames += (samples.len() / usize::from(m.channels)) as u64;
    }
    if frames != m.frames {
        return Err(mismatch(format!(
            "it decodes to {frames} frames, the measurement says {}",
            m.frames
        )));
    }
    writer.finalize().map_err(hound_error)?;
    out.commit().map_err(write)?;
    Ok(WavReport {
        gain_db,
        limit,
        frames,
    })
}

/// Gain, scaling, dither and rounding of samples into integers.
struct Quantiser {
    bits: WavBits,
    /// Gain × 2^(bits − 1).
    factor: f64,
    max: f64,
    dither: Tpdf,
}

impl Quantiser {
    fn new(bits: WavBits, gain_db: f64) -> Quantiser {
        let scale = full_scale(bits);
        Quantiser {
            bits,
            factor: 10f64.powf(gain_db / 20.0) * scale,
            max: scale - 1.0,
            dither: Tpdf(0x9E37_79B9_7F4A_7C15),
        }
    }

    /// One sample as an integer of the WAV's width.
    fn sample(&mut self, x: f32) -> i32 {
        let mut v = f64::from(x) * self.factor;
        if self.bits == WavBits::Sixteen {
            v += self.dither.next();
        }
        // Round half away from zero by truncation (no libm call), then
        // keep within the integer range.
        let rounded = (v + 0.5f64.copysign(v)).clamp(-self.max - 1.0, self.max);
        rounded as i32
    }

    fn write<W: io::Write + io::Seek>(
        &mut self,
        writer: &mut hound::WavWriter<W>,
        samples: &[f32],
    ) -> hound::Result<()> {
        match self.bits {
            WavBits::Sixteen => {
                let mut w = writer.get_i16_writer(samples.len() as u32);
                for &x in samples {
                    w.write_sample(self.sample(x) as i16);
                }
                w.flush()
            }
            WavBits::TwentyFour => {
                for &x in samples {
                    writer.write_sample(self.sample(x))?;
                }
                Ok(())
            }
        }
    }
}

/// Triangular (TPDF) dither, ±1 LSB: the difference of two uniform
/// variables from a xorshift64* generator. Not random enough for anything
/// but dither, which needs no more.
struct Tpdf(u64);

impl Tpdf {
    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Triangular in (−1, 1).
    fn next(&mut self) -> f64 {
        self.uniform() - self.uniform()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(lufs: Option<f64>, peak: Option<f64>) -> Measurement {
        Measurement {
            version: super::super::VERSION,
            duration: 1.0,
            frames: 44_100,
            sample_rate: 44_100,
            channels: 2,
            integrated_lufs: lufs,
            loudness_range_lu: 0.0,
            true_peak_dbtp: peak,
            sample_peak_dbfs: peak,
            leading_silence: 0.0,
            trailing_silence: 0.0,
            longest_inner_silence: 0.0,
            silence: Default::default(),
            clipped_samples: 0,
            clip_runs: 0,
            longest_clip_run: 0,
            decode_errors: 0,
            audio_sha256: String::new(),
            file_sha256: String::new(),
            file_bytes: 0,
        }
    }

    #[test]
    fn the_gain_meets_the_target_unless_the_ceiling_is_nearer() {
        let s = WavSettings::default();
        let (g, limit) = gain(&measured(Some(-20.0), Some(-12.0)), &s);
        assert_eq!((g, limit), (6.0, Limit::Target));
        let (g, limit) = gain(&measured(Some(-9.0), Some(0.5)), &s);
        assert_eq!((g, limit), (-5.0, Limit::Target));
        let (g, limit) = gain(&measured(Some(-20.0), Some(-3.0)), &s);
        assert_eq!(limit, Limit::Ceiling);
        assert!((1.99..2.0).contains(&g), "{g}: 2 dB less the dither margin");
        assert_eq!(gain(&measured(None, Some(-60.0)), &s), (0.0, Limit::Unity));
        assert_eq!(gain(&measured(None, None), &s), (0.0, Limit::Unity));
    }

    #[test]
    fn dither_is_triangular_and_bounded() {
        let mut d = Tpdf(1);
        let draws: Vec<f64> = (0..100_000).map(|_| d.next()).collect();
        assert!(draws.iter().all(|x| x.abs() < 1.0));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let var = draws.iter().map(|x| x * x).sum::<f64>() / draws.len() as f64;
        // A triangular variable on (−1, 1): mean 0, variance 1/6.
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0 / 6.0).abs() < 0.01, "{var}");
    }

    #[test]
    fn samples_round_and_saturate() {
        let mut q = Quantiser::new(WavBits::TwentyFour, 0.0);
        assert_eq!(q.sample(0.5), 1 << 22);
        assert_eq!(q.sample(-1.0), -(1 << 23));
        assert_eq!(q.sample(1.0), (1 << 23) - 1);
        assert_eq!(q.sample(3.0), (1 << 23) - 1);
        let mut q = Quantiser::new(WavBits::Sixteen, 0.0);
        for _ in 0..1000 {
            let s = q.sample(0.25);
            assert!((8191..=8193).contains(&s), "{s}");
        }
    }
}
