//! The silent runs of a take: at its head, at its tail, and the longest
//! one inside it, from the RMS level of short windows (see
//! [`SilenceSettings`] for the level, the window and why).
//!
//! Runs are counted in frames, so a run's length is exact to the window
//! that starts or ends it; a take's last window may be shorter than the
//! others.

use super::SilenceSettings;

/// Silence bookkeeping over a stream of interleaved samples.
#[derive(Debug)]
pub(super) struct Silence {
    channels: usize,
    /// Frames per window.
    window: u64,
    /// Mean square below which a window is silent.
    floor: f64,
    /// Shortest run that counts, in frames.
    min_frames: u64,
    /// The current window: its sum of squares and its frames so far.
    sum: f64,
    filled: u64,
    /// The first sounding window's start; `None` while all was silent.
    leading: Option<u64>,
    /// The silent run that ends at the frames measured so far.
    run: u64,
    longest_inner: u64,
    frames: u64,
}

/// The three silences, in frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Runs {
    pub leading: u64,
    pub trailing: u64,
    pub longest_inner: u64,
}

impl Silence {
    pub fn new(rate: u32, channels: u16, settings: &SilenceSettings) -> Silence {
        let frames_of = |secs: f64| (secs * f64::from(rate)).round() as u64;
        Silence {
            channels: usize::from(channels.max(1)),
            window: frames_of(SilenceSettings::WINDOW.as_secs_f64()).max(1),
            floor: 10f64.powf(settings.threshold_dbfs / 10.0),
            min_frames: frames_of(settings.min_len.as_secs_f64()),
            sum: 0.0,
            filled: 0,
            leading: None,
            run: 0,
            longest_inner: 0,
            frames: 0,
        }
    }

    /// Adds interleaved samples (whole frames).
    pub fn push(&mut self, samples: &[f32]) {
        let mut rest = samples;
        while !rest.is_empty() {
            let room = (self.window - self.filled) as usize * self.channels;
            let (now, later) = rest.split_at(room.min(rest.len()));
            // f32 squares summed in f32 per window, then added once: a
            // window is at most a few thousand samples.
            let sum: f32 = now.iter().map(|x| x * x).sum();
            self.sum += f64::from(sum);
            self.filled += (now.len() / self.channels) as u64;
            if self.filled == self.window {
                self.close_window();
            }
            rest = later;
        }
    }

    /// Judges the window just filled (or the last, partial one).
    fn close_window(&mut self) {
        let n = self.filled;
        if n == 0 {
            return;
        }
        let mean_square = self.sum / (n as f64 * self.channels as f64);
        if mean_square < self.floor {
            self.run += n;
        } else {
            match self.leading {
                None => self.leading = Some(self.frames),
                Some(_) => self.longest_inner = self.longest_inner.max(self.run),
            }
            self.run = 0;
        }
        self.frames += n;
        self.sum = 0.0;
        self.filled = 0;
    }

    /// The runs, each 0 if shorter than the settings' minimum. A take
    /// silent throughout is all leading and all trailing silence.
    pub fn finish(mut self) -> Runs {
        self.close_window();
        let counted = |frames: u64| if frames >= self.min_frames { frames } else { 0 };
        let Some(leading) = self.leading else {
            return Runs {
                leading: counted(self.frames),
                trailing: counted(self.frames),
                longest_inner: 0,
            };
        };
        Runs {
            leading: counted(leading),
            trailing: counted(self.run),
            longest_inner: counted(self.longest_inner),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const RATE: u32 = 1000;

    /// `secs` of a stereo level: 0 is digital silence, else a square wave
    /// of that amplitude (its RMS is the amplitude).
    fn part(secs: f64, amplitude: f32) -> Vec<f32> {
        let frames = (secs * f64::from(RATE)) as usize;
        (0..frames * 2)
            .map(|i| {
                if (i / 2) % 2 == 0 {
                    amplitude
                } else {
                    -amplitude
                }
            })
            .collect()
    }

    fn runs(parts: &[(f64, f32)], settings: &SilenceSettings, chunk: usize) -> Runs {
        let mut s = Silence::new(RATE, 2, settings);
        let all: Vec<f32> = parts.iter().flat_map(|&(t, a)| part(t, a)).collect();
        for piece in all.chunks(chunk * 2) {
            s.push(piece);
        }
        s.finish()
    }

    #[test]
    fn head_tail_and_inner_runs_are_found_whatever_the_chunking() {
        let take = [
            (1.5, 0.0),
            (2.0, 0.5),
            (1.2, 0.001),
            (1.0, 0.5),
            (0.5, 0.0),
            (1.0, 0.2),
            (3.0, 0.0),
        ];
        let settings = SilenceSettings::default();
        for chunk in [1, 7, 10, 333, 100_000] {
            let r = runs(&take, &settings, chunk);
            assert_eq!(
                r,
                Runs {
                    leading: 1500,
                    trailing: 3000,
                    longest_inner: 1200
                },
                "chunk {chunk}"
            );
        }
        // −40 dBFS is the line: 0.011 (−39.2 dBFS) is sound, 0.009 (−40.9) is not.
        let near = [
            (1.0, 0.5),
            (2.0, 0.011),
            (1.0, 0.5),
            (2.0, 0.009),
            (1.0, 0.5),
        ];
        assert_eq!(runs(&near, &settings, 64).longest_inner, 2000);
    }

    #[test]
    fn runs_shorter_than_the_minimum_are_not_silences() {
        let take = [(0.5, 0.0), (1.0, 0.5), (0.9, 0.0), (1.0, 0.5), (0.99, 0.0)];
        let r = runs(&take, &SilenceSettings::default(), 50);
        assert_eq!((r.leading, r.trailing, r.longest_inner), (0, 0, 0));
        let every = SilenceSettings {
            min_len: Duration::ZERO,
            ..SilenceSettings::default()
        };
        let r = runs(&take, &every, 50);
        assert_eq!((r.leading, r.trailing, r.longest_inner), (500, 990, 900));
    }

    #[test]
    fn a_silent_take_is_all_head_and_tail() {
        let r = runs(&[(2.345, 0.0)], &SilenceSettings::default(), 100);
        assert_eq!((r.leading, r.trailing, r.longest_inner), (2345, 2345, 0));
        let r = runs(&[(0.004, 0.5)], &SilenceSettings::default(), 100);
        assert_eq!((r.leading, r.trailing, r.longest_inner), (0, 0, 0));
    }
}
