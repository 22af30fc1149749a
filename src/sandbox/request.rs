//! What a generate request says: its body as a JSON object, the API's
//! fields read out of it, and the 400 message when they break the API's
//! rules.
//!
//! Its own module because this is the sandbox's reading of the wire
//! format, kept apart from the order of the checks (`decide`) and from the
//! routes (`api`). It reads the body field by field, by the types the
//! API's docs give, not through `JobFields`'s serde derive, which is how
//! batchgen itself writes a body: an imitation that parsed with the
//! client's own code would agree with a client bug by construction. Only
//! the rules ([`job::check`]) are shared, on purpose: the sandbox refuses
//! exactly what the client checks before sending.

use serde_json::{Map, Value};

use crate::job::{self, Field, Gender, JobFields, Kind, Problem, ProblemKind, Weight, WeightError};

/// The body as a JSON object, or the 400 message saying why it is not one.
pub(super) fn parse_body(body: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("request body must be a JSON object".into()),
        Err(e) => Err(format!("request body is not valid JSON: {e}")),
    }
}

/// Reads the API's fields out of a body. Unknown fields (and `token`) are
/// ignored and `null` means unset, as the service does; a field of the wrong
/// type is a 400 naming it. Each field is read as batchgen writes it: a
/// weight is a JSON number from 0 to 1 with at most two decimals (a string
/// `"0.5"` is refused: the docs type it as a number), `gender` is `"male"`
/// or `"female"` exactly.
pub(super) fn to_fields(body: Map<String, Value>) -> Result<JobFields, String> {
    let mut fields = JobFields::default();
    for (name, value) in body {
        // `id` and the duration limits are batchgen's own, never part of
        // a request body.
        let Some(field) = Field::from_name(&name).filter(|&f| f.is_sent()) else {
            continue;
        };
        let typed = match (field.kind(), value) {
            (_, Value::Null) => continue,
            (Kind::Bool, Value::Bool(b)) => job::Value::Bool(b),
            (Kind::Text, Value::String(s)) => job::Value::Str(s),
            (Kind::Weight, Value::Number(n)) => {
                let weight = n.as_f64().ok_or(WeightError::NotANumber);
                match weight.and_then(Weight::from_f64) {
                    Ok(w) => job::Value::Weight(w),
                    Err(e) => return Err(format!("{field} {n} {e}")),
                }
            }
            (Kind::Gender, Value::String(s)) => match s.as_str() {
                "male" => job::Value::Gender(Gender::Male),
                "female" => job::Value::Gender(Gender::Female),
                _ => return Err(format!("{field} must be \"male\" or \"female\", not {s:?}")),
            },
            (kind, other) => {
                let expected = match kind {
                    Kind::Bool => "a boolean",
                    Kind::Text | Kind::Gender => "a string",
                    Kind::Weight => "a number",
                    Kind::Duration => unreachable!("never read from a request body"),
                };
                return Err(format!("{field} must be {expected}, not {other}"));
            }
        };
        fields.set(field, typed);
    }
    Ok(fields)
}

/// The 400 message for failed checks: the service's own "Topic too long."
/// when any limit is exceeded, otherwise each problem with its field.
pub(super) fn problems_message(problems: &[Problem]) -> String {
    if problems
        .iter()
        .any(|p| matches!(p.kind, ProblemKind::TooLong { .. }))
    {
        return "Topic too long.".into();
    }
    problems
        .iter()
        .map(|p| match &p.kind {
            ProblemKind::Missing(mode) => format!("{} is required in {mode} mode", p.field),
            ProblemKind::UnknownModel { .. } => p.to_string(),
            _ => format!("{} {p}", p.field),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn fields_are_read_leniently_but_typed() {
        let f = to_fields(body(json!({
            "prompt": "rain", "token": "k", "id": "x", "extra": [1], "title": null,
            "make_instrumental": true,
        })))
        .unwrap();
        assert_eq!(
            f,
            JobFields {
                prompt: Some("rain".into()),
                make_instrumental: Some(true),
                ..JobFields::default()
            }
        );
        let err = to_fields(body(json!({"custom_mode": "yes"}))).unwrap_err();
        assert_eq!(err, r#"custom_mode must be a boolean, not "yes""#);
        assert!(to_fields(body(json!({"prompt": 3}))).is_err());
    }

    #[test]
    fn new_fields_are_typed_as_batchgen_sends_them() {
        let f = to_fields(body(json!({
            "gpt_description_prompt": "tides", "model": "chirp-v5", "gender": "female",
            "style_weight": 0.65, "weirdness_constraint": 0, "audio_weight": 1.0,
        })))
        .unwrap();
        assert_eq!(
            f,
            JobFields {
                gpt_description_prompt: Some("tides".into()),
                model: Some("chirp-v5".into()),
                gender: Some(Gender::Female),
                style_weight: Weight::from_hundredths(65),
                weirdness_constraint: Some(Weight::ZERO),
                audio_weight: Some(Weight::ONE),
                ..JobFields::default()
            }
        );
        assert_eq!(
            job::check(&f),
            [],
            "inspiration mode and chirp-v5 are accepted"
        );
        let refused = |v: Value| to_fields(body(v)).unwrap_err();
        assert_eq!(
            refused(json!({"style_weight": "0.5"})),
            r#"style_weight must be a number, not "0.5""#
        );
        assert_eq!(
            refused(json!({"audio_weight": 0.655})),
            "audio_weight 0.655 has more than two decimals: expected a number from 0 to 1 with at most two decimals, like 0.65"
        );
        assert!(refused(json!({"weirdness_constraint": 1.5})).contains("out of range"));
        assert!(refused(json!({"weirdness_constraint": -0.1})).contains("out of range"));
        assert_eq!(
            refused(json!({"gender": "Female"})),
            r#"gender must be "male" or "female", not "Female""#
        );
        assert_eq!(
            refused(json!({"gender": true})),
            "gender must be a string, not true"
        );
    }

    #[test]
    fn messages_name_the_field() {
        let custom = JobFields {
            custom_mode: Some(true),
            prompt: Some("words".into()),
            style: Some("lofi".into()),
            ..JobFields::default()
        };
        assert_eq!(
            problems_message(&job::check(&custom)),
            "title is required in custom mode"
        );
        let empty = JobFields {
            prompt: Some(" ".into()),
            ..JobFields::default()
        };
        assert_eq!(problems_message(&job::check(&empty)), "prompt is empty");
    }
}
