//! TOML values read as what batchgen wants of them: a job field's typed
//! value, a string, a whole number in a range, a duration, a list of model
//! names. Each mismatch is the message of a diagnostic (`expected a
//! string, found an integer`), never a stop: the walk over the document
//! ([`super::from_toml`]) goes on and reports the rest. Separate from that
//! walk because these are leaf rules, each read alone.

use std::time::Duration;

use toml::Spanned;
use toml::de::DeValue;

use crate::job::{self, Field, Gender, Kind, Value as JobValue, WEIGHT_RULE, Weight, WeightError};

/// A spanned TOML value, as the walk hands it over.
pub(super) type Value<'a> = Spanned<DeValue<'a>>;

/// A job field's value, read as its [`Kind`] wants it. TOML is typed, so
/// each kind takes its own TOML type and nothing else: text a string, a
/// switch a boolean, a weight a number (`0.65`, `1`; the string `"0.65"` is
/// refused, as `"true"` is for a switch), a gender the string `"male"` or
/// `"female"`.
pub(super) fn typed(field: Field, value: &DeValue<'_>) -> Result<JobValue, String> {
    match (field.kind(), value) {
        (Kind::Text, DeValue::String(s)) => Ok(JobValue::Str(s.to_string())),
        (Kind::Text, other) => Err(format!("expected a string, found {}", describe(other))),
        (Kind::Bool, DeValue::Boolean(b)) => Ok(JobValue::Bool(*b)),
        (Kind::Bool, other) => Err(format!(
            "expected true or false (without quotes), found {}",
            describe(other)
        )),
        (Kind::Weight, DeValue::Float(f)) => {
            // TOML allows `0.6_5` and `6.5e-1`; the text without the
            // underscores is exact unless it has an exponent (or is `inf`).
            let text = f.as_str().replace('_', "");
            let weight = if text.contains(['e', 'E']) || !text.contains('.') {
                text.parse::<f64>()
                    .map_err(|_| WeightError::NotANumber)
                    .and_then(Weight::from_f64)
            } else {
                text.parse::<Weight>()
            };
            weight
                .map(JobValue::Weight)
                .map_err(|e| format!("{} {e}", f.as_str()))
        }
        (Kind::Weight, DeValue::Integer(i)) => {
            match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
                Ok(0) => Ok(JobValue::Weight(Weight::ZERO)),
                Ok(1) => Ok(JobValue::Weight(Weight::ONE)),
                _ => Err(format!("{i} {}", WeightError::OutOfRange)),
            }
        }
        (Kind::Weight, other) => Err(format!(
            "expected {WEIGHT_RULE} (without quotes), found {}",
            describe(other)
        )),
        (Kind::Gender, DeValue::String(s)) => {
            s.parse::<Gender>().map(JobValue::Gender).map_err(|e| {
                if s.chars().count() <= 40 {
                    format!("{s:?} {e}")
                } else {
                    format!("the value {e}")
                }
            })
        }
        (Kind::Gender, other) => Err(format!(
            "expected \"male\" or \"female\", found {}",
            describe(other)
        )),
        (Kind::Duration, DeValue::String(s)) => {
            crate::job::parse_duration_limit(s).map(JobValue::Duration)
        }
        (Kind::Duration, other) => Err(format!(
            "expected {} in quotes, found {}",
            crate::job::DURATION_RULE,
            describe(other)
        )),
    }
}

/// A value's type, with the value itself when it is short enough to help.
pub(super) fn describe(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) if s.chars().count() <= 40 => format!("string {s:?}"),
        DeValue::Integer(i) => format!("integer {i}"),
        DeValue::Float(f) => format!("float {f}"),
        DeValue::Boolean(b) => format!("boolean {b}"),
        other => other.type_str().to_owned(),
    }
}

pub(super) fn string<'v>(value: &'v Value<'_>) -> Result<&'v str, String> {
    match value.get_ref() {
        DeValue::String(s) => Ok(s),
        other => Err(format!("expected a string, found {}", describe(other))),
    }
}

/// `extra_models = ["chirp-v6", ...]`: each a plausible model name.
pub(super) fn model_names(value: &Value<'_>) -> Result<Vec<String>, String> {
    let DeValue::Array(items) = value.get_ref() else {
        return Err(format!(
            "expected a list of model names like [\"chirp-v6\"], found {}",
            describe(value.get_ref())
        ));
    };
    items
        .iter()
        .map(|item| match item.get_ref() {
            DeValue::String(s) => job::parse_model_name(s),
            other => Err(format!(
                "expected model names (strings), found {}",
                describe(other)
            )),
        })
        .collect()
}

pub(super) fn integer_in(value: &Value<'_>, min: i64, max: i64) -> Result<i64, String> {
    let DeValue::Integer(i) = value.get_ref() else {
        return Err(format!(
            "expected an integer, found {}",
            describe(value.get_ref())
        ));
    };
    match i64::from_str_radix(i.as_str(), i.radix()) {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("must be between {min} and {max}, not {i}")),
    }
}

/// `timeout = "90s"` or `timeout = 90` (seconds).
pub(super) fn timeout(value: &Value<'_>) -> Result<Duration, String> {
    let duration = match value.get_ref() {
        DeValue::String(s) => crate::util::units::parse_duration(s)?,
        DeValue::Integer(_) => Duration::from_secs(integer_in(value, 0, i64::MAX)?.unsigned_abs()),
        other => {
            return Err(format!(
                "expected a duration like \"60s\" or a number of seconds, found {}",
                describe(other)
            ));
        }
    };
    if duration.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(duration)
}
