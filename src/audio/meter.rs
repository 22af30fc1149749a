//! The one pass over a take's samples: every meter is fed each packet as
//! it is decoded, and [`Meter::finish`] turns them into a
//! [`Measurement`].
//!
//! The meter knows samples, not files: a WAV, a generated test signal and
//! a decoded MP3 go through the same code, which is how the tests check
//! the meters against signals with known answers.

use sha2::{Digest, Sha256};

use super::silence::Silence;
use super::{Measurement, SilenceSettings, VERSION};

/// A sample at or above this magnitude counts as clipped: 0.999 (−0.009
/// dBFS). A master clipped at full scale decodes from an MP3 as a ripple
/// around 1.0 that overshoots it, so the count takes every sample within a
/// hair of full scale, not only those beyond it; a master normalised to a
/// −0.1 dBFS peak (0.989) is not clipped by this count.
pub const CLIP_LEVEL: f32 = 0.999;

/// Every meter of one take, fed interleaved f32 samples.
pub struct Meter {
    rate: u32,
    channels: u16,
    settings: SilenceSettings,
    loudness: ebur128::EbuR128,
    silence: Silence,
    clips: Clips,
    audio: Sha256,
    /// The current packet quantised for the fingerprint (reused).
    pcm: Vec<u8>,
    frames: u64,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("rate", &self.rate)
            .field("channels", &self.channels)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

/// Clipped samples and their runs, per channel.
#[derive(Debug)]
struct Clips {
    samples: u64,
    runs: u64,
    longest: u64,
    /// The run each channel is in now.
    current: Vec<u64>,
}

impl Clips {
    fn new(channels: usize) -> Clips {
        Clips {
            samples: 0,
            runs: 0,
            longest: 0,
            current: vec![0; channels],
        }
    }

    /// Counts the clipped samples of `samples` (whole interleaved frames)
    /// and writes each sample's [`quantise`]d little-endian
    /// bytes to `pcm` (two bytes a sample, as long as `samples` doubled).
    fn push(&mut self, samples: &[f32], pcm: &mut [u8]) {
        let channels = self.current.len();
        for (frame, bytes) in samples
            .chunks_exact(channels)
            .zip(pcm.chunks_exact_mut(2 * channels))
        {
            for ((x, run), out) in frame
                .iter()
                .zip(self.current.iter_mut())
                .zip(bytes.chunks_exact_mut(2))
            {
                out.copy_from_slice(&quantise(*x).to_le_bytes());
                if x.abs() >= CLIP_LEVEL {
                    *run += 1;
                    self.samples += 1;
                    if *run == 1 {
                        self.runs += 1;
                    }
                    self.longest = self.longest.max(*run);
                } else {
                    *run = 0;
                }
            }
        }
    }
}

impl Meter {
    /// Meters for a stream of `channels` channels at `rate` frames per
    /// second.
    ///
    /// # Errors
    /// The loudness meter refuses the format (no channels, a rate of 0).
    pub fn new(
        rate: u32,
        channels: u16,
        silence: &SilenceSettings,
    ) -> Result<Meter, ebur128::Error> {
        use ebur128::Mode;
        let mode = Mode::I | Mode::LRA | Mode::TRUE_PEAK | Mode::SAMPLE_PEAK;
        let loudness = ebur128::EbuR128::new(u32::from(channels), rate, mode)?;
        let mut audio = Sha256::new();
        audio.update(rate.to_le_bytes());
        audio.update(channels.to_le_bytes());
        Ok(Meter {
            rate,
            channels,
            settings: *silence,
            loudness,
            silence: Silence::new(rate, channels, silence),
            clips: Clips::new(usize::from(channels)),
            audio,
            pcm: Vec::new(),
            frames: 0,
        })
    }

    /// Feeds interleaved samples: whole frames, channel after channel.
    ///
    /// # Errors
    /// The loudness meter's own (out of memory for its history).
    pub fn push(&mut self, samples: &[f32]) -> Result<(), ebur128::Error> {
        let channels = usize::from(self.channels);
        let samples = &samples[..samples.len() - samples.len() % channels];
        self.loudness.add_frames_f32(samples)?;
        self.silence.push(samples);
        self.pcm.resize(2 * samples.len(), 0);
        self.clips.push(samples, &mut self.pcm);
        self.audio.update(&self.pcm);
        self.frames += (samples.len() / channels) as u64;
        Ok(())
    }

    /// Frames fed so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The measurement of everything fed. The file's own fields
    /// (`file_sha256`, `file_bytes`, `decode_errors`) are left empty for
    /// the caller that read the file.
    ///
    /// # Errors
    /// The loudness meter's own, which its modes rule out.
    pub fn finish(self) -> Result<Measurement, ebur128::Error> {
        let rate = f64::from(self.rate);
        let secs = |frames: u64| frames as f64 / rate;
        let mut true_peak = 0f64;
        let mut sample_peak = 0f64;
        for ch in 0..u32::from(self.channels) {
            true_peak = true_peak.max(self.loudness.true_peak(ch)?);
            sample_peak = sample_peak.max(self.loudness.sample_peak(ch)?);
        }
        let runs = self.silence.finish();
        let integrated = self.loudness.loudness_global()?;
        let range = self.loudness.loudness_range()?;
        Ok(Measurement {
            version: VERSION,
            duration: secs(self.frames),
            frames: self.frames,
            sample_rate: self.rate,
            channels: self.channels,
            integrated_lufs: integrated.is_finite().then_some(integrated),
            loudness_range_lu: if range.is_finite() { range } else { 0.0 },
            true_peak_dbtp: decibels(true_peak),
            sample_peak_dbfs: decibels(sample_peak),
            leading_silence: secs(runs.leading),
            trailing_silence: secs(runs.trailing),
            longest_inner_silence: secs(runs.longest_inner),
            silence: self.settings,
            clipped_samples: self.clips.samples,
            clip_runs: self.clips.runs,
            longest_clip_run: self.clips.longest,
            decode_errors: 0,
            audio_sha256: hex::encode(self.audio.finalize()),
            file_sha256: String::new(),
            file_bytes: 0,
        })
    }
}

/// A sample as the fingerprint's 16-bit integer: ×32767, rounded half away
/// from zero, saturated (NaN is 0).
fn quantise(x: f32) -> i16 {
    let v = x.clamp(-1.0, 1.0) * 32767.0;
    // `as` truncates toward zero: adding ±0.5 first rounds, without the
    // library call `f32::round` is on baseline x86-64.
    (v + 0.5f32.copysign(v)) as i16
}

/// A linear amplitude in dB; `None` for 0 (−∞).
fn decibels(linear: f64) -> Option<f64> {
    (linear > 0.0 && linear.is_finite()).then(|| 20.0 * linear.log10())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantisation_rounds_saturates_and_zeroes_nan() {
        assert_eq!(quantise(0.0), 0);
        assert_eq!(quantise(1.0), 32767);
        assert_eq!(quantise(-1.0), -32767);
        assert_eq!(quantise(1.7), 32767);
        assert_eq!(quantise(-3.0), -32767);
        assert_eq!(quantise(0.5 / 32767.0), 1);
        assert_eq!(quantise(-0.5 / 32767.0), -1);
        assert_eq!(quantise(0.49 / 32767.0), 0);
        assert_eq!(quantise(f32::NAN), 0);
    }

    /// Meters `parts` of a stereo sine at 48 kHz: (seconds, dBFS per
    /// channel, frequency Hz, phase in degrees), fed in 1152-frame packets.
    /// The first 50 ms fade in: a sine that starts at its full level is a
    /// step, whose reconstruction really does overshoot its steady peak.
    fn sine(parts: &[(f64, f64, f64, f64)]) -> Measurement {
        const RATE: f64 = 48_000.0;
        const FADE: f64 = 0.05 * RATE;
        let mut meter = Meter::new(48_000, 2, &SilenceSettings::default()).unwrap();
        let mut packet = Vec::with_capacity(2 * 1152);
        let mut t = 0.0;
        for &(secs, dbfs, hz, degrees) in parts {
            let amplitude = 10f64.powf(dbfs / 20.0);
            let step = std::f64::consts::TAU * hz / RATE;
            let phase = degrees.to_radians();
            for n in 0..(secs * RATE) as u64 {
                let fade = (t / FADE).min(1.0);
                t += 1.0;
                let x = (fade * amplitude * (step * n as f64 + phase).sin()) as f32;
                packet.extend([x, x]);
                if packet.len() == packet.capacity() {
                    meter.push(&packet).unwrap();
                    packet.clear();
                }
            }
        }
        meter.push(&packet).unwrap();
        meter.finish().unwrap()
    }

    #[track_caller]
    fn near(got: Option<f64>, want: f64, below: f64, above: f64) {
        let got = got.unwrap();
        assert!(
            got >= want - below && got <= want + above,
            "{got} is not within −{below}/+{above} of {want}"
        );
    }

    /// EBU Tech 3341's first two test signals: a stereo 1 kHz sine reads
    /// its level per channel in LUFS, ±0.1 LU.
    #[test]
    fn ebu_tech_3341_sines_read_their_level() {
        let m = sine(&[(20.0, -23.0, 1000.0, 0.0)]);
        near(m.integrated_lufs, -23.0, 0.1, 0.1);
        near(m.true_peak_dbtp, -23.0, 0.1, 0.1);
        near(m.sample_peak_dbfs, -23.0, 0.1, 0.01);
        assert!(m.loudness_range_lu < 0.1, "{}", m.loudness_range_lu);
        near(
            sine(&[(20.0, -33.0, 1000.0, 0.0)]).integrated_lufs,
            -33.0,
            0.1,
            0.1,
        );
    }

    /// EBU Tech 3341's gating signals (tests 3 and 4): quiet passages
    /// around a −23 dBFS one are gated out, ±0.1 LU.
    #[test]
    fn ebu_tech_3341_gating_keeps_the_programme() {
        let three = sine(&[
            (10.0, -36.0, 1000.0, 0.0),
            (60.0, -23.0, 1000.0, 0.0),
            (10.0, -36.0, 1000.0, 0.0),
        ]);
        near(three.integrated_lufs, -23.0, 0.1, 0.1);
        let four = sine(&[
            (10.0, -72.0, 1000.0, 0.0),
            (10.0, -36.0, 1000.0, 0.0),
            (60.0, -23.0, 1000.0, 0.0),
            (10.0, -36.0, 1000.0, 0.0),
            (10.0, -72.0, 1000.0, 0.0),
        ]);
        near(four.integrated_lufs, -23.0, 0.1, 0.1);
    }

    /// EBU Tech 3341's true-peak signals: sines at a quarter, a sixth and
    /// an eighth of the sample rate whose samples miss the crest (at a
    /// quarter with a 45° phase, every sample is 3 dB under it). The true
    /// peak finds the crest within the specification's +0.2/−0.4 dB (the
    /// meter reads them within 0.04 dB); the sample peak does not.
    #[test]
    fn true_peak_finds_the_crest_between_samples() {
        for (hz, degrees) in [
            (12_000.0, 0.0),
            (12_000.0, 45.0),
            (8_000.0, 60.0),
            (6_000.0, 67.5),
        ] {
            let m = sine(&[(2.0, -6.0, hz, degrees)]);
            near(m.true_peak_dbtp, -6.0, 0.4, 0.2);
        }
        let m = sine(&[(2.0, -6.0, 12_000.0, 45.0)]);
        near(m.sample_peak_dbfs, -6.0 - 3.0103, 0.01, 0.01);
    }

    #[test]
    fn clips_are_counted_per_channel_in_runs() {
        let mut c = Clips::new(2);
        let mut pcm = [0; 8];
        // Left: 1.0, 1.2, 0.5, -0.9995 → runs of 2 and 1; right: 0.999 ×3.
        c.push(&[1.0, 0.999, 1.2, 0.999], &mut pcm);
        assert_eq!(pcm, [0xff, 0x7f, 0xde, 0x7f, 0xff, 0x7f, 0xde, 0x7f]);
        c.push(&[0.5, -0.999, -0.9995, 0.2], &mut pcm);
        assert_eq!((c.samples, c.runs, c.longest), (6, 3, 3));
    }
}
