//! The typed values of the fields that are neither text nor a switch: the
//! 0–1 weights (`style_weight`, `weirdness_constraint`, `audio_weight`), the
//! vocal `gender`, and the duration limits a job may set for its own takes
//! (`min_duration`, `max_duration`: batchgen's quality gate, never sent).
//!
//! A weight is held as whole hundredths, not as an `f64`: the API takes at
//! most two decimals, a manifest's `0.65` must reach the wire as `0.65` (not
//! `0.6500000001`, not `"0.65"`), and the fingerprint of a job must come out
//! the same on every machine and in every version. Hundredths make all three
//! exact: parsing refuses a third decimal instead of rounding it away, and
//! writing divides once (`65 / 100` is the double nearest 0.65, which
//! serde_json prints as `0.65`). Tested for every one of the 101 values.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A number from 0 to 1 with at most two decimals, as whole hundredths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Weight(u8);

/// What a weight must look like, for messages.
pub const WEIGHT_RULE: &str = "a number from 0 to 1 with at most two decimals, like 0.65";

impl Weight {
    pub const ZERO: Weight = Weight(0);
    pub const ONE: Weight = Weight(100);

    /// `n` hundredths; `None` above 100.
    pub fn from_hundredths(n: u8) -> Option<Weight> {
        (n <= 100).then_some(Weight(n))
    }

    pub fn hundredths(self) -> u8 {
        self.0
    }

    /// The value as the API's JSON number carries it.
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 100.0
    }

    /// A number already parsed as a double (a JSON body, a TOML float in
    /// exponent form): accepted when it is within rounding of a whole number
    /// of hundredths, so `0.65` (really 0.65000000000000002) is 65 and
    /// `0.655` or `0.6500001` are refused, never rounded.
    ///
    /// # Errors
    /// When the value is out of range or has more decimals.
    pub fn from_f64(x: f64) -> Result<Weight, WeightError> {
        if !x.is_finite() || !(0.0..=1.0).contains(&x) {
            return Err(WeightError::OutOfRange);
        }
        let scaled = x * 100.0;
        let whole = scaled.round();
        if (scaled - whole).abs() > 1e-6 {
            return Err(WeightError::TooPrecise);
        }
        // In 0..=100 after the range check.
        Ok(Weight(whole as u8))
    }
}

/// Why a value is not a [`Weight`]; displays as the end of a sentence whose
/// subject is the value ("0.655 has more than two decimals: ...").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WeightError {
    #[error("is not {WEIGHT_RULE}")]
    NotANumber,
    #[error("is out of range: expected {WEIGHT_RULE}")]
    OutOfRange,
    #[error("has more than two decimals: expected {WEIGHT_RULE}")]
    TooPrecise,
}

impl FromStr for Weight {
    type Err = WeightError;

    /// Decimal text: `0.65`, `.5`, `+1`, `0.650` (zeros past the second
    /// decimal are still two decimals); a negative number is out of range.
    /// No exponent, percent or decimal comma: a spreadsheet cell that holds
    /// one is a mistake worth a message, not a guess.
    fn from_str(text: &str) -> Result<Weight, WeightError> {
        let t = text.trim();
        if let Some(magnitude) = t.strip_prefix('-') {
            return match unsigned(magnitude) {
                Ok(Weight(0)) => Ok(Weight(0)),
                Ok(_) | Err(WeightError::OutOfRange | WeightError::TooPrecise) => {
                    Err(WeightError::OutOfRange)
                }
                Err(WeightError::NotANumber) => Err(WeightError::NotANumber),
            };
        }
        unsigned(t.strip_prefix('+').unwrap_or(t))
    }
}

/// [`Weight::from_str`] for text without a sign.
fn unsigned(t: &str) -> Result<Weight, WeightError> {
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return Err(WeightError::NotANumber);
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    if frac.len() > 2 {
        return Err(WeightError::TooPrecise);
    }
    let hundredths = match (int, frac.len()) {
        ("", 0) => 0,
        ("", n) => {
            let n_scale = if n == 1 { 10 } else { 1 };
            frac.parse::<u8>().map_err(|_| WeightError::NotANumber)? * n_scale
        }
        ("1", 0) => 100,
        _ => return Err(WeightError::OutOfRange),
    };
    Ok(Weight(hundredths))
}

impl fmt::Display for Weight {
    /// The shortest decimal: `0`, `0.5`, `0.65`, `1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("0"),
            100 => f.write_str("1"),
            n if n % 10 == 0 => write!(f, "0.{}", n / 10),
            n => write!(f, "0.{n:02}"),
        }
    }
}

impl Serialize for Weight {
    /// A JSON number, never a string: `0.65`, `0.5`, `0.0`, `1.0`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for Weight {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Weight, D::Error> {
        let x = f64::deserialize(deserializer)?;
        Weight::from_f64(x).map_err(|e| serde::de::Error::custom(format!("{x} {e}")))
    }
}

/// The vocal preference the API takes in `gender`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gender {
    Male,
    Female,
}

impl Gender {
    /// As the API spells it.
    pub fn name(self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
        }
    }
}

/// Why a value is not a [`Gender`]; displays like [`WeightError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("is not a vocal gender: use \"male\" or \"female\"")]
pub struct GenderError;

impl FromStr for Gender {
    type Err = GenderError;

    /// `male` or `female`, in any case, spaces around ignored: the API's
    /// spelling is what is sent.
    fn from_str(text: &str) -> Result<Gender, GenderError> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("male") {
            Ok(Gender::Male)
        } else if t.eq_ignore_ascii_case("female") {
            Ok(Gender::Female)
        } else {
            Err(GenderError)
        }
    }
}

impl fmt::Display for Gender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_weight_is_sent_as_its_own_two_decimals() {
        for n in 0..=100u8 {
            let w = Weight::from_hundredths(n).unwrap();
            let json = serde_json::to_string(&w).unwrap();
            let expected = format!("{}.{:02}", n / 100, n % 100);
            let expected = expected.trim_end_matches('0');
            let expected = if expected.ends_with('.') {
                format!("{expected}0")
            } else {
                expected.to_owned()
            };
            assert_eq!(json, expected, "{n} hundredths");
            assert_eq!(json.parse::<Weight>(), Ok(w), "{json} parses back");
            assert_eq!(w.to_string().parse::<Weight>(), Ok(w));
            assert_eq!(Weight::from_f64(w.as_f64()), Ok(w));
            assert_eq!(serde_json::from_str::<Weight>(&json).unwrap(), w);
        }
        assert_eq!(Weight::from_hundredths(101), None);
    }

    #[test]
    fn decimal_text() {
        let h = |s: &str| s.parse::<Weight>().map(Weight::hundredths);
        assert_eq!(h("0.65"), Ok(65));
        assert_eq!(h(" .5 "), Ok(50));
        assert_eq!(h("0.650"), Ok(65), "a trailing zero is not a decimal");
        assert_eq!(h("1"), Ok(100));
        assert_eq!(h("1.00"), Ok(100));
        assert_eq!(h("0"), Ok(0));
        assert_eq!(h("00.07"), Ok(7));
        assert_eq!(h("1."), Ok(100));
        assert_eq!(h("+0.5"), Ok(50));
        assert_eq!(h("-0"), Ok(0));
        assert_eq!(h("-0.1"), Err(WeightError::OutOfRange));
        assert_eq!(h("--1"), Err(WeightError::NotANumber));
        for bad in [
            "", ".", "-", "+-1", "1.01", "2", "0.655", "0,5", "5%", "1e-1", "x",
        ] {
            assert!(h(bad).is_err(), "{bad:?}");
        }
        assert_eq!(h("0.655"), Err(WeightError::TooPrecise));
        assert_eq!(h("1.5"), Err(WeightError::OutOfRange));
        assert_eq!(h("abc"), Err(WeightError::NotANumber));
        assert_eq!(
            WeightError::TooPrecise.to_string(),
            "has more than two decimals: expected a number from 0 to 1 with at most two decimals, like 0.65"
        );
    }

    #[test]
    fn doubles_are_exact_or_refused() {
        assert_eq!(Weight::from_f64(0.1 + 0.2).map(Weight::hundredths), Ok(30));
        assert!(Weight::from_f64(0.6500001).is_err());
        assert!(Weight::from_f64(-0.01).is_err());
        assert!(Weight::from_f64(f64::NAN).is_err());
        assert!(Weight::from_f64(1.01).is_err());
    }

    #[test]
    fn genders() {
        assert_eq!(" Female ".parse::<Gender>(), Ok(Gender::Female));
        assert_eq!("MALE".parse::<Gender>(), Ok(Gender::Male));
        assert!("m".parse::<Gender>().is_err());
        assert_eq!(
            serde_json::to_string(&Gender::Female).unwrap(),
            "\"female\""
        );
    }
}

/// A quality rule's limit as a job or `[quality]` sets it: a value, or
/// `off` (which turns off a limit a lower layer sets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit<T> {
    Off,
    At(T),
}

impl<T: Copy> Limit<T> {
    /// The value; `None` for `off`.
    pub fn get(self) -> Option<T> {
        match self {
            Limit::Off => None,
            Limit::At(value) => Some(value),
        }
    }
}

/// What a duration limit must look like, for messages.
pub const DURATION_RULE: &str = "a duration (e.g. \"30s\", \"2m\") or \"off\"";

/// Reads a duration limit: a `humantime` duration (`30s`, `2m 30s`) or
/// `off`, surrounding spaces ignored.
///
/// # Errors
/// Anything else, with what it takes.
pub fn parse_duration_limit(text: &str) -> Result<Limit<Duration>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(Limit::Off);
    }
    humantime::parse_duration(text)
        .map(Limit::At)
        .map_err(|_| format!("{text:?} is not {DURATION_RULE}"))
}
