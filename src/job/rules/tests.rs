//! The rules over whole jobs: modes, limits, ids, models and callbacks.

use super::*;

fn fields(custom: bool, instrumental: bool) -> JobFields {
    JobFields {
        custom_mode: Some(custom),
        make_instrumental: Some(instrumental),
        ..JobFields::default()
    }
}

fn missing(problems: &[Problem]) -> Vec<Field> {
    problems
        .iter()
        .filter(|p| {
            matches!(
                p.kind,
                ProblemKind::Missing(_) | ProblemKind::MissingEither { .. }
            )
        })
        .map(|p| p.field)
        .collect()
}

#[test]
fn mode_table_is_the_apis() {
    assert_eq!(
        missing(&check(&fields(true, false))),
        [Field::Prompt, Field::Title, Field::Style]
    );
    assert_eq!(
        missing(&check(&fields(true, true))),
        [Field::Title, Field::Style]
    );
    assert_eq!(missing(&check(&fields(false, true))), [Field::Prompt]);
    assert_eq!(missing(&check(&JobFields::default())), [Field::Prompt]);
}

#[test]
fn description_mode_takes_prompt_or_gpt_description_prompt() {
    let gpt = Some("a song about tides".to_owned());
    for instrumental in [false, true] {
        let inspiration = JobFields {
            gpt_description_prompt: gpt.clone(),
            ..fields(false, instrumental)
        };
        assert_eq!(check(&inspiration), [], "either alone is enough");
        let both = JobFields {
            prompt: Some("waves".into()),
            ..inspiration.clone()
        };
        assert_eq!(check(&both), [], "both may be set");
    }
    let neither = check(&JobFields::default());
    assert_eq!(
        neither[0].to_string(),
        "not set: in description mode a job needs prompt or gpt_description_prompt (either is enough)"
    );
    // Custom mode still needs its lyrics: a description is no stand-in.
    let custom = JobFields {
        gpt_description_prompt: gpt,
        title: Some("T".into()),
        style: Some("S".into()),
        ..fields(true, false)
    };
    assert_eq!(missing(&check(&custom)), [Field::Prompt]);
    assert!(matches!(check(&custom)[0].kind, ProblemKind::Missing(_)));
}

#[test]
fn limits_depend_on_model() {
    let mut f = JobFields {
        prompt: Some("x".repeat(3001)),
        ..JobFields::default()
    };
    assert!(matches!(
        check(&f)[0].kind,
        ProblemKind::TooLong { limit: 3000, .. }
    ));
    for long_form in ["chirp-v4-5", "chirp-v5", "chirp-v5-5"] {
        f.model = Some(long_form.into());
        f.prompt = Some("x".repeat(3001));
        assert!(check(&f).is_empty(), "{long_form}");
        f.prompt = Some("é".repeat(5000));
        assert!(check(&f).is_empty(), "limits count characters, not bytes");
        f.prompt = Some("x".repeat(5001));
        assert_eq!(check(&f).len(), 1);
    }
}

#[test]
fn unknown_model_empty_field_and_bad_url() {
    let f = JobFields {
        prompt: Some("  ".into()),
        model: Some("chirp-v9".into()),
        callback_url: Some("ftp://example.com/x".into()),
        ..JobFields::default()
    };
    let kinds: Vec<_> = check(&f).into_iter().map(|p| p.field).collect();
    assert_eq!(kinds, [Field::Model, Field::Prompt, Field::CallbackUrl]);
    let relative = JobFields {
        prompt: Some("a".into()),
        callback_url: Some("/hook".into()),
        ..JobFields::default()
    };
    assert_eq!(check(&relative)[0].field, Field::CallbackUrl);
}

#[test]
fn added_models_are_known_with_short_form_limits() {
    let rules = Rules::with_extra_models(["chirp-v7", " chirp-v7 ", "chirp-v5"]).unwrap();
    assert_eq!(
        rules.extra_models(),
        ["chirp-v7"],
        "no repeats, no documented names"
    );
    let mut f = JobFields {
        prompt: Some("x".repeat(3000)),
        model: Some("chirp-v7".into()),
        ..JobFields::default()
    };
    assert_eq!(rules.check(&f), []);
    assert_eq!(
        check(&f)[0].kind,
        ProblemKind::UnknownModel {
            model: "chirp-v7".into(),
            known: Rules::default()
                .catalogue()
                .listed(Provider::Udioapi)
                .join(", "),
        },
        "only the rules that add it know it"
    );
    f.prompt = Some("x".repeat(3001));
    assert!(matches!(
        rules.check(&f)[0].kind,
        ProblemKind::TooLong { limit: 3000, .. }
    ));
    for bad in ["", "chirp v6", "chirp/v6", "é", &"x".repeat(65)] {
        assert!(Rules::with_extra_models([bad]).is_err(), "{bad:?}");
    }
}

#[test]
fn ids_must_be_filename_safe() {
    for bad in ["", "a/b", "../x", ".hidden", "fp-0123", "a b"] {
        let f = JobFields {
            id: Some(bad.into()),
            prompt: Some("p".into()),
            ..JobFields::default()
        };
        assert_eq!(check(&f)[0].field, Field::Id, "{bad:?}");
    }
}

#[test]
fn an_unknown_model_is_shown_cut() {
    let f = JobFields {
        prompt: Some("p".into()),
        model: Some("m".repeat(100_000)),
        ..JobFields::default()
    };
    let message = check(&f)[0].to_string();
    assert!(message.len() < 400, "{} bytes", message.len());
    assert!(message.contains(&format!("\"{}…\"", "m".repeat(MAX_MODEL_NAME_LEN))));
}
