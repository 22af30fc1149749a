use std::path::Path;

use super::*;
use crate::job::{JobFields, ProblemKind, Rules};

fn user(text: &str) -> Result<Catalogue, ModelsError> {
    Catalogue::built_in().with_text(text, Path::new("models.toml"), false)
}

fn rules(provider: Provider, catalogue: Catalogue) -> Rules {
    Rules::default()
        .with_catalogue(Arc::new(catalogue))
        .for_provider(provider)
}

fn title(model: Option<&str>, chars: usize) -> JobFields {
    JobFields {
        custom_mode: Some(true),
        prompt: Some("[Verse] words".into()),
        style: Some("lofi".into()),
        title: Some("t".repeat(chars)),
        model: model.map(str::to_owned),
        ..JobFields::default()
    }
}

#[test]
fn the_built_in_catalogue_is_valid_and_every_provider_has_an_entry() {
    let c = Catalogue::built_in();
    for &p in Provider::ALL {
        assert!(!c.listed(p).is_empty(), "{p} lists models");
        if let Some(default) = &c.provider(p).default {
            let m = c.find(default).expect("the default is a model");
            assert!(m.offers[&p].listed, "{p}'s default is one it lists");
        }
    }
    // Nothing stale is sent: udioapi gets no model, sunoapi and kie the
    // current default, gcui a current internal name.
    assert_eq!(c.wire_model(Provider::Udioapi, None), None);
    assert_eq!(
        c.wire_model(Provider::Sunoapi, None).as_deref(),
        Some("V4_5ALL")
    );
    assert_eq!(
        c.wire_model(Provider::Kie, None).as_deref(),
        Some("V4_5ALL")
    );
    assert_eq!(
        c.wire_model(Provider::Gcui, None).as_deref(),
        Some("chirp-fenix")
    );
    assert_eq!(
        c.wire_model(Provider::Sunoapi, Some("chirp-v5-5"))
            .as_deref(),
        Some("V5_5")
    );
    assert_eq!(
        c.wire_model(Provider::Gcui, Some("chirp-v4-5")).as_deref(),
        Some("chirp-auk")
    );
    assert_eq!(
        c.wire_model(Provider::Udioapi, Some("chirp-v4")).as_deref(),
        Some("chirp-v4-0"),
        "an alias is sent under the model's name"
    );
}

#[test]
fn limits_are_the_providers_for_the_model() {
    let sunoapi = Rules::default().for_provider(Provider::Sunoapi);
    // Titles of 81–100 characters are taken on V4_5 and later, not on V4
    // or V4_5ALL (the default).
    for model in ["chirp-v4-5", "chirp-v4-5-plus", "chirp-v5", "chirp-v5-5"] {
        assert_eq!(sunoapi.check(&title(Some(model), 100)), [], "{model}");
        assert_eq!(sunoapi.check(&title(Some(model), 101)).len(), 1, "{model}");
    }
    for model in [Some("chirp-v4-0"), None] {
        assert_eq!(sunoapi.check(&title(model, 80)), []);
        let problems = sunoapi.check(&title(model, 81));
        assert!(
            matches!(problems[0].kind, ProblemKind::TooLong { limit: 80, .. }),
            "{model:?}: {problems:?}"
        );
    }
    // On udioapi, titles are 80 whatever the model.
    let udioapi = Rules::default();
    assert_eq!(udioapi.check(&title(Some("chirp-v5-5"), 81)).len(), 1);
    // A description outside custom mode: 500 on sunoapi, whatever the model.
    let description = JobFields {
        prompt: Some("d".repeat(501)),
        model: Some("chirp-v5".into()),
        ..JobFields::default()
    };
    assert!(matches!(
        sunoapi.check(&description)[0].kind,
        ProblemKind::TooLong { limit: 500, .. }
    ));
    assert_eq!(udioapi.check(&description), []);
}

#[test]
fn gcui_counts_what_suno_counts() {
    let gcui = Rules::default().for_provider(Provider::Gcui);
    // 60 emoji are 60 characters but 120 UTF-16 units: over Suno's 80.
    let emoji = JobFields {
        title: Some("🎵".repeat(60)),
        ..title(Some("chirp-v4-5"), 1)
    };
    let problems = gcui.check(&emoji);
    assert!(
        matches!(
            problems[0].kind,
            ProblemKind::TooLong {
                actual: 120,
                limit: 80,
                ..
            }
        ),
        "{problems:?}"
    );
    assert!(
        problems[0].to_string().contains("UTF-16"),
        "{}",
        problems[0]
    );
    assert_eq!(
        Rules::default().check(&emoji),
        [],
        "udioapi counts characters"
    );
}

#[test]
fn a_model_the_provider_no_longer_lists_is_sent_with_a_warning_not_refused() {
    let rules = Rules::default();
    let old = title(Some("chirp-v3-5"), 10);
    assert_eq!(rules.check(&old), []);
    assert!(rules.unlisted(Some("chirp-v3-5")));
    assert!(!rules.unlisted(Some("chirp-v5")) && !rules.unlisted(None));
    let gcui = Rules::default().for_provider(Provider::Gcui);
    let v6 = title(Some("chirp-v6"), 10);
    assert!(matches!(
        gcui.check(&v6)[0].kind,
        ProblemKind::NotOffered { .. }
    ));
}

#[test]
fn a_user_file_adds_a_model_with_its_names_and_limits() {
    let c = user(
        r#"
format = 1

[[model]]
name = "chirp-v7"
limits = { prompt = 6000, style = 1200, title = 120, description = 500 }
offers.udioapi = {}
offers.sunoapi = { wire = "V7", credits = 14 }

[provider.sunoapi]
default = "chirp-v7"
"#,
    )
    .unwrap();
    assert_eq!(c.wire_model(Provider::Sunoapi, None).as_deref(), Some("V7"));
    assert_eq!(
        c.wire_model(Provider::Udioapi, Some("chirp-v7")).as_deref(),
        Some("chirp-v7")
    );
    let m = c.find("chirp-v7").unwrap();
    assert_eq!(
        m.origin,
        Origin::File {
            path: "models.toml".into(),
            line: 4
        }
    );
    assert_eq!(m.offers[&Provider::Sunoapi].credits, Some(14));
    let sunoapi = rules(Provider::Sunoapi, c.clone());
    assert_eq!(sunoapi.check(&title(Some("chirp-v7"), 120)), []);
    assert_eq!(sunoapi.check(&title(Some("chirp-v7"), 121)).len(), 1);
    let gcui = rules(Provider::Gcui, c);
    assert!(matches!(
        gcui.check(&title(Some("chirp-v7"), 10))[0].kind,
        ProblemKind::NotOffered { .. }
    ));
}

#[test]
fn a_user_file_changes_only_what_it_sets() {
    let c = user(
        r#"
[[model]]
name = "chirp-v4-5"
offers.sunoapi = { limits = { title = 90 } }
offers.udioapi = { listed = false }

[[model]]
name = "plain-new"
"#,
    )
    .unwrap();
    let m = c.find("chirp-v4-5").unwrap();
    assert_eq!(m.offers[&Provider::Sunoapi].wire, "V4_5", "kept");
    assert_eq!(m.offers[&Provider::Sunoapi].limits.title, Some(90));
    assert_eq!(m.offers[&Provider::Gcui].wire, "chirp-auk", "kept");
    assert!(!m.offers[&Provider::Udioapi].listed);
    assert_eq!(m.limits.prompt, Some(5000), "kept");
    // A new model without offers or limits: everywhere, short-form.
    let plain = c.find("plain-new").unwrap();
    assert_eq!(plain.limits, SHORT_FORM);
    assert!(
        Provider::ALL
            .iter()
            .all(|p| plain.offers[p].wire == "plain-new")
    );
}

#[test]
fn a_malformed_file_is_refused_with_its_line() {
    let cases = [
        (
            "[[model]]\nname = \"x\"\nlimits = { promt = 1 }\n",
            3,
            "promt",
        ),
        ("[[model]]\nname = \"bad name\"\n", 1, "contains ' '"),
        ("format = 2\n", 1, "newer"),
        (
            "\n[provider.suno]\ncounts = \"characters\"\n",
            2,
            "unknown provider",
        ),
        (
            "[provider.gcui]\ndefault = \"chirp-v4-5-all\"\n",
            1,
            "not a model gcui takes",
        ),
        (
            "[[model]]\nname = \"x\"\naliases = [\"chirp-v5\"]\n",
            1,
            "already names",
        ),
        (
            "[[model]]\nname = \"x\"\nlimits = { title = 0 }\n",
            1,
            "at least 1",
        ),
        ("[[model]]\nname = \"x\"\n\n[[model]\n", 4, ""),
        ("models = 1\n", 1, "unknown field"),
    ];
    for (text, line, says) in cases {
        let e = user(text).unwrap_err();
        assert_eq!(e.line, Some(line), "{text:?}: {e}");
        assert!(
            e.to_string().starts_with(&format!("models.toml:{line}: ")),
            "{e}"
        );
        assert!(e.message.contains(says), "{text:?}: {e}");
    }
}

#[test]
fn extra_models_are_offered_everywhere_with_the_short_form_limits() {
    let c = (*Catalogue::built_in())
        .clone()
        .with_extra_model("chirp-v9")
        .unwrap();
    let m = c.find("chirp-v9").unwrap();
    assert_eq!(m.origin, Origin::ExtraModel);
    assert_eq!(m.limits, SHORT_FORM);
    for &p in Provider::ALL {
        assert_eq!(
            c.wire_model(p, Some("chirp-v9")).as_deref(),
            Some("chirp-v9")
        );
    }
    let known = (*Catalogue::built_in())
        .clone()
        .with_extra_model("chirp-v5")
        .unwrap();
    assert_eq!(
        known,
        *Catalogue::built_in(),
        "a known name changes nothing"
    );
}
