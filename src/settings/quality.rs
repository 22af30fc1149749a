//! The quality gate's rules: what a measured take must meet to be kept,
//! from the manifest's `[quality]` table and the flags, with defaults from
//! what destinations ask for (`shared/CATALOG.md`, the README's "Quality"
//! table), and the verdict they give a take.
//!
//! A rule is read the same way from a table key and from its flag
//! ([`QualitySettings::set`]): a duration (`30s`, `2m`), a level in dB, a
//! count, a loudness window (`-16..-12`), `reject` or `keep`, and `off` for
//! any rule that has a limit. Layers merge as every setting does (flags,
//! then the manifest), and a rule no layer sets takes its default.
//!
//! | rule | key | default | why |
//! |---|---|---|---|
//! | shortest take | `min_duration` | 30 s | streaming pays nothing under 30 s |
//! | longest take | `max_duration` | off | |
//! | silence at the start | `max_leading_silence` | 2 s | a take that starts late |
//! | silence at the end | `max_trailing_silence` | 10 s | payouts and playlists: at most ~10 s |
//! | true peak | `max_true_peak` | 0 dBTP | nothing over full scale (stock libraries) |
//! | clipped samples | `max_clipped_samples` | 0 | a clipped master |
//! | loudness window | `loudness` | off (measured and reported only) | a release's tracks within a few LU |
//! | the second of two identical takes | `identical_takes` | `reject` | anti-spam: no mass duplicates |
//! | watermarked lyrics | `watermarked_lyrics` | `reject` | a relay that failed its captcha |
//!
//! The rules judge what was measured ([`Take`]); they know nothing of how
//! it was measured, so the measuring code and the gate change apart.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

/// One layer of quality settings (`[quality]`, or the flags): each rule
/// as the layer set it, `None` where it did not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QualitySettings {
    pub min_duration: Option<Limit<Duration>>,
    pub max_duration: Option<Limit<Duration>>,
    pub max_leading_silence: Option<Limit<Duration>>,
    pub max_trailing_silence: Option<Limit<Duration>>,
    pub max_true_peak: Option<Limit<f64>>,
    pub max_clipped_samples: Option<Limit<u64>>,
    pub loudness: Option<Limit<(f64, f64)>>,
    pub identical_takes: Option<Policy>,
    pub watermarked_lyrics: Option<Policy>,
}

pub use crate::job::Limit;

/// What to do with a take a yes-or-no rule catches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Reject,
    Keep,
}

/// The keys of `[quality]`, in the README's order.
pub const KEYS: &[&str] = &[
    "min_duration",
    "max_duration",
    "max_leading_silence",
    "max_trailing_silence",
    "max_true_peak",
    "max_clipped_samples",
    "loudness",
    "identical_takes",
    "watermarked_lyrics",
];

/// A rule's value as written: a TOML string, number or integer, or a
/// flag's text (read as a string).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Written<'a> {
    Text(&'a str),
    Number(f64),
}

impl QualitySettings {
    /// Sets rule `key` from `value`, as a `[quality]` key or its flag
    /// writes it.
    ///
    /// # Errors
    /// An unknown key, or a value the rule does not take: the message
    /// says what it takes.
    pub fn set(&mut self, key: &str, value: Written<'_>) -> Result<(), String> {
        match key {
            "min_duration" => self.min_duration = Some(duration(value)?),
            "max_duration" => self.max_duration = Some(duration(value)?),
            "max_leading_silence" => self.max_leading_silence = Some(duration(value)?),
            "max_trailing_silence" => self.max_trailing_silence = Some(duration(value)?),
            "max_true_peak" => self.max_true_peak = Some(decibels(value)?),
            "max_clipped_samples" => self.max_clipped_samples = Some(count(value)?),
            "loudness" => self.loudness = Some(window(value)?),
            "identical_takes" => self.identical_takes = Some(policy(value)?),
            "watermarked_lyrics" => self.watermarked_lyrics = Some(policy(value)?),
            _ => return Err(format!("unknown rule; [quality] takes {}", KEYS.join(", "))),
        }
        Ok(())
    }

    /// Each rule this layer sets, written as its key takes it (what
    /// [`QualitySettings::set`] reads back to the same settings): how a
    /// manifest's `[quality]` table is kept in the state store for a
    /// later `collect`.
    pub fn written(&self) -> Vec<(&'static str, String)> {
        fn limit<T: Copy>(value: Option<Limit<T>>, show: impl Fn(T) -> String) -> Option<String> {
            value.map(|l| match l {
                Limit::Off => "off".to_owned(),
                Limit::At(v) => show(v),
            })
        }
        let duration = |d: Duration| humantime::format_duration(d).to_string();
        let policy = |p: Option<Policy>| {
            p.map(|p| match p {
                Policy::Reject => "reject".to_owned(),
                Policy::Keep => "keep".to_owned(),
            })
        };
        let values = [
            limit(self.min_duration, duration),
            limit(self.max_duration, duration),
            limit(self.max_leading_silence, duration),
            limit(self.max_trailing_silence, duration),
            limit(self.max_true_peak, |v| v.to_string()),
            limit(self.max_clipped_samples, |v| v.to_string()),
            limit(self.loudness, |(low, high)| format!("{low}..{high}")),
            policy(self.identical_takes),
            policy(self.watermarked_lyrics),
        ];
        KEYS.iter()
            .zip(values)
            .filter_map(|(key, value)| Some((*key, value?)))
            .collect()
    }

    /// `self` where set, else `lower`.
    pub fn or(self, lower: QualitySettings) -> QualitySettings {
        QualitySettings {
            min_duration: self.min_duration.or(lower.min_duration),
            max_duration: self.max_duration.or(lower.max_duration),
            max_leading_silence: self.max_leading_silence.or(lower.max_leading_silence),
            max_trailing_silence: self.max_trailing_silence.or(lower.max_trailing_silence),
            max_true_peak: self.max_true_peak.or(lower.max_true_peak),
            max_clipped_samples: self.max_clipped_samples.or(lower.max_clipped_samples),
            loudness: self.loudness.or(lower.loudness),
            identical_takes: self.identical_takes.or(lower.identical_takes),
            watermarked_lyrics: self.watermarked_lyrics.or(lower.watermarked_lyrics),
        }
    }

    /// The rules in force: each set one, else its default.
    pub fn rules(&self) -> QualityRules {
        let d = QualityRules::default();
        let pick = |set: Option<Limit<Duration>>, default| set.map_or(default, Limit::get);
        QualityRules {
            min_duration: pick(self.min_duration, d.min_duration),
            max_duration: pick(self.max_duration, d.max_duration),
            max_leading_silence: pick(self.max_leading_silence, d.max_leading_silence),
            max_trailing_silence: pick(self.max_trailing_silence, d.max_trailing_silence),
            max_true_peak: self.max_true_peak.map_or(d.max_true_peak, Limit::get),
            max_clipped_samples: self
                .max_clipped_samples
                .map_or(d.max_clipped_samples, Limit::get),
            loudness: self.loudness.map_or(d.loudness, Limit::get),
            identical_takes: self.identical_takes.unwrap_or(d.identical_takes),
            watermarked_lyrics: self.watermarked_lyrics.unwrap_or(d.watermarked_lyrics),
        }
    }
}

/// The rules in force; `None` where a rule is off.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityRules {
    pub min_duration: Option<Duration>,
    pub max_duration: Option<Duration>,
    pub max_leading_silence: Option<Duration>,
    pub max_trailing_silence: Option<Duration>,
    /// dBTP.
    pub max_true_peak: Option<f64>,
    pub max_clipped_samples: Option<u64>,
    /// Integrated loudness window, LUFS (lowest, highest).
    pub loudness: Option<(f64, f64)>,
    pub identical_takes: Policy,
    pub watermarked_lyrics: Policy,
}

impl Default for QualityRules {
    /// The defaults of the module docs' table.
    fn default() -> QualityRules {
        QualityRules {
            min_duration: Some(Duration::from_secs(30)),
            max_duration: None,
            max_leading_silence: Some(Duration::from_secs(2)),
            max_trailing_silence: Some(Duration::from_secs(10)),
            max_true_peak: Some(0.0),
            max_clipped_samples: Some(0),
            loudness: None,
            identical_takes: Policy::Reject,
            watermarked_lyrics: Policy::Reject,
        }
    }
}

/// The rules in force for every job of a catalog: the run's, and for the
/// jobs that set their own duration limits (`min_duration`,
/// `max_duration` in a `[[job]]` table or a CSV row), those over the
/// run's: a job's own limit is the most specific, so it wins over the
/// flags and `[quality]` alike.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gate {
    run: QualityRules,
    jobs: HashMap<String, QualityRules>,
    /// What changes whenever any job's rules change (see
    /// [`Gate::fingerprint`]).
    fingerprint: String,
}

impl Gate {
    /// The run's rules from `run` (each rule it sets, else its default),
    /// and each job of `jobs` with its own over them.
    pub fn new(run: &QualitySettings, jobs: &BTreeMap<String, QualitySettings>) -> Gate {
        let rules = run.rules();
        let mut fingerprint = format!("{rules:?}");
        if !jobs.is_empty() {
            use sha2::{Digest, Sha256};
            let mut hash = Sha256::new();
            for (key, own) in jobs {
                hash.update(format!("{}\0{:?}\0", key.len(), own.written()));
                hash.update(key.as_bytes());
            }
            fingerprint += &format!("; jobs {}", hex::encode(&hash.finalize()[..16]));
        }
        Gate {
            jobs: jobs
                .iter()
                .map(|(key, own)| (key.clone(), own.clone().or(run.clone()).rules()))
                .collect(),
            run: rules,
            fingerprint,
        }
    }

    /// The rules job `key` is judged by.
    pub fn rules(&self, key: &str) -> &QualityRules {
        self.jobs.get(key).unwrap_or(&self.run)
    }

    /// A text that differs whenever the verdict of some take could: the
    /// run's rules and every job's own. A store keeps the one its takes
    /// were judged by, and judges them again when it changes.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// What the gate judges of one take: what was measured, and what is known
/// of it besides.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Take {
    /// As decoded.
    pub duration: Duration,
    pub leading_silence: Duration,
    pub trailing_silence: Duration,
    /// dBTP; `None` for digital silence.
    pub true_peak: Option<f64>,
    pub clipped_samples: u64,
    /// Integrated loudness, LUFS; `None` for digital silence.
    pub loudness: Option<f64>,
    /// The same audio as a take of the same task listed before it.
    pub repeats_earlier_take: bool,
    /// The lyrics carry a relay's watermark.
    pub watermarked: bool,
}

/// Why a take is rejected: one per rule it breaks.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    TooShort {
        duration: Duration,
        min: Duration,
    },
    TooLong {
        duration: Duration,
        max: Duration,
    },
    LeadingSilence {
        silence: Duration,
        max: Duration,
    },
    TrailingSilence {
        silence: Duration,
        max: Duration,
    },
    TruePeak {
        peak: f64,
        max: f64,
    },
    Clipped {
        samples: u64,
        max: u64,
    },
    /// Digital silence, under a loudness window.
    Silent,
    TooQuiet {
        loudness: f64,
        min: f64,
    },
    TooLoud {
        loudness: f64,
        max: f64,
    },
    Identical,
    Watermarked,
}

impl Reason {
    /// A short name for reports and filters (`too_short`, …).
    pub fn code(&self) -> &'static str {
        match self {
            Reason::TooShort { .. } => "too_short",
            Reason::TooLong { .. } => "too_long",
            Reason::LeadingSilence { .. } => "leading_silence",
            Reason::TrailingSilence { .. } => "trailing_silence",
            Reason::TruePeak { .. } => "true_peak",
            Reason::Clipped { .. } => "clipped",
            Reason::Silent => "silent",
            Reason::TooQuiet { .. } => "too_quiet",
            Reason::TooLoud { .. } => "too_loud",
            Reason::Identical => "identical",
            Reason::Watermarked => "watermarked",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = |d: &Duration| format!("{:.1} s", d.as_secs_f64());
        match self {
            Reason::TooShort { duration, min } => {
                write!(f, "too short: {} (at least {})", s(duration), s(min))
            }
            Reason::TooLong { duration, max } => {
                write!(f, "too long: {} (at most {})", s(duration), s(max))
            }
            Reason::LeadingSilence { silence, max } => {
                write!(
                    f,
                    "{} of silence at the start (at most {})",
                    s(silence),
                    s(max)
                )
            }
            Reason::TrailingSilence { silence, max } => {
                write!(
                    f,
                    "{} of silence at the end (at most {})",
                    s(silence),
                    s(max)
                )
            }
            Reason::TruePeak { peak, max } => {
                write!(f, "true peak {peak:+.1} dBTP (at most {max:+.1})")
            }
            Reason::Clipped { samples, max } => {
                write!(f, "{samples} clipped samples (at most {max})")
            }
            Reason::Silent => f.write_str("silent: no loudness to measure"),
            Reason::TooQuiet { loudness, min } => {
                write!(f, "too quiet: {loudness:.1} LUFS (at least {min:.1})")
            }
            Reason::TooLoud { loudness, max } => {
                write!(f, "too loud: {loudness:.1} LUFS (at most {max:.1})")
            }
            Reason::Identical => f.write_str("the same audio as the take before it"),
            Reason::Watermarked => f.write_str("watermarked lyrics"),
        }
    }
}

impl QualityRules {
    /// Every rule `take` breaks, in the table's order; empty when it is
    /// kept.
    pub fn verdict(&self, take: &Take) -> Vec<Reason> {
        let mut reasons = Vec::new();
        if let Some(min) = self.min_duration.filter(|min| take.duration < *min) {
            reasons.push(Reason::TooShort {
                duration: take.duration,
                min,
            });
        }
        if let Some(max) = self.max_duration.filter(|max| take.duration > *max) {
            reasons.push(Reason::TooLong {
                duration: take.duration,
                max,
            });
        }
        if let Some(max) = self
            .max_leading_silence
            .filter(|max| take.leading_silence > *max)
        {
            reasons.push(Reason::LeadingSilence {
                silence: take.leading_silence,
                max,
            });
        }
        if let Some(max) = self
            .max_trailing_silence
            .filter(|max| take.trailing_silence > *max)
        {
            reasons.push(Reason::TrailingSilence {
                silence: take.trailing_silence,
                max,
            });
        }
        if let (Some(max), Some(peak)) = (self.max_true_peak, take.true_peak)
            && peak > max
        {
            reasons.push(Reason::TruePeak { peak, max });
        }
        if let Some(max) = self
            .max_clipped_samples
            .filter(|max| take.clipped_samples > *max)
        {
            reasons.push(Reason::Clipped {
                samples: take.clipped_samples,
                max,
            });
        }
        self.loudness_reasons(take, &mut reasons);
        if take.repeats_earlier_take && self.identical_takes == Policy::Reject {
            reasons.push(Reason::Identical);
        }
        if take.watermarked && self.watermarked_lyrics == Policy::Reject {
            reasons.push(Reason::Watermarked);
        }
        reasons
    }

    /// Outside a window the user set: too quiet or too loud (a take with
    /// no loudness, digital silence, is below any window). Without a
    /// window loudness is measured and reported, never a reason.
    fn loudness_reasons(&self, take: &Take, reasons: &mut Vec<Reason>) {
        let Some((min, max)) = self.loudness else {
            return;
        };
        match take.loudness {
            None => reasons.push(Reason::Silent),
            Some(loudness) if loudness < min => {
                reasons.push(Reason::TooQuiet { loudness, min });
            }
            Some(loudness) if loudness > max => reasons.push(Reason::TooLoud { loudness, max }),
            Some(_) => {}
        }
    }
}

fn text<'a>(value: Written<'a>, what: &str) -> Result<&'a str, String> {
    match value {
        Written::Text(text) => Ok(text.trim()),
        Written::Number(_) => Err(format!("write {what} in quotes")),
    }
}

fn is_off(value: Written<'_>) -> bool {
    matches!(value, Written::Text(t) if t.trim().eq_ignore_ascii_case("off"))
}

fn duration(value: Written<'_>) -> Result<Limit<Duration>, String> {
    crate::job::parse_duration_limit(text(value, crate::job::DURATION_RULE)?)
}

fn decibels(value: Written<'_>) -> Result<Limit<f64>, String> {
    const WHAT: &str = "a level in dB (e.g. -1.0) or \"off\"";
    if is_off(value) {
        return Ok(Limit::Off);
    }
    let level = match value {
        Written::Number(n) => n,
        Written::Text(t) => t
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("{t:?} is not {WHAT}"))?,
    };
    if !(-60.0..=6.0).contains(&level) {
        return Err(format!("{level} is out of range: {WHAT} between -60 and 6"));
    }
    Ok(Limit::At(level))
}

fn count(value: Written<'_>) -> Result<Limit<u64>, String> {
    const WHAT: &str = "a whole number (e.g. 0) or \"off\"";
    if is_off(value) {
        return Ok(Limit::Off);
    }
    let n = match value {
        Written::Number(n) if n >= 0.0 && n.fract() == 0.0 && n <= 1e15 => n as u64,
        Written::Number(n) => return Err(format!("{n} is not {WHAT}")),
        Written::Text(t) => t
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("{t:?} is not {WHAT}"))?,
    };
    Ok(Limit::At(n))
}

fn window(value: Written<'_>) -> Result<Limit<(f64, f64)>, String> {
    const WHAT: &str = "a loudness window in LUFS, \"LOW..HIGH\" (e.g. \"-16..-12\"), or \"off\"";
    if is_off(value) {
        return Ok(Limit::Off);
    }
    let text = text(value, WHAT)?;
    let parsed = text.split_once("..").and_then(|(low, high)| {
        Some((
            low.trim().parse::<f64>().ok()?,
            high.trim().parse::<f64>().ok()?,
        ))
    });
    match parsed {
        Some((low, high)) if low.is_finite() && high.is_finite() && low <= high => {
            if low < -70.0 || high > 0.0 {
                return Err(format!("{text:?} is out of range: LUFS between -70 and 0"));
            }
            Ok(Limit::At((low, high)))
        }
        Some(_) => Err(format!(
            "{text:?} is not {WHAT}: the lower bound comes first"
        )),
        None => Err(format!("{text:?} is not {WHAT}")),
    }
}

fn policy(value: Written<'_>) -> Result<Policy, String> {
    const WHAT: &str = "\"reject\" or \"keep\"";
    let text = text(value, WHAT)?;
    match text.to_ascii_lowercase().as_str() {
        "reject" => Ok(Policy::Reject),
        "keep" => Ok(Policy::Keep),
        _ => Err(format!("{text:?} is not {WHAT}")),
    }
}

#[cfg(test)]
mod tests;
