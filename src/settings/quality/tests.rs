use super::*;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A take every default rule keeps: 2 minutes, a little silence at each
/// end, a peak under full scale, at -14 LUFS.
fn good() -> Take {
    Take {
        duration: secs(120.0),
        leading_silence: secs(0.5),
        trailing_silence: secs(3.0),
        true_peak: Some(-1.2),
        clipped_samples: 0,
        loudness: Some(-14.0),
        repeats_earlier_take: false,
        watermarked: false,
    }
}

fn codes(rules: &QualityRules, take: &Take) -> Vec<&'static str> {
    rules.verdict(take).iter().map(Reason::code).collect()
}

#[test]
fn the_defaults_keep_a_good_take_and_reject_each_defect() {
    let rules = QualitySettings::default().rules();
    assert_eq!(rules, QualityRules::default());
    assert!(codes(&rules, &good()).is_empty());
    let cases: [(&str, Take); 7] = [
        (
            "too_short",
            Take {
                duration: secs(29.9),
                ..good()
            },
        ),
        (
            "leading_silence",
            Take {
                leading_silence: secs(2.5),
                ..good()
            },
        ),
        (
            "trailing_silence",
            Take {
                trailing_silence: secs(10.5),
                ..good()
            },
        ),
        (
            "true_peak",
            Take {
                true_peak: Some(0.3),
                ..good()
            },
        ),
        (
            "clipped",
            Take {
                clipped_samples: 1,
                ..good()
            },
        ),
        (
            "identical",
            Take {
                repeats_earlier_take: true,
                ..good()
            },
        ),
        (
            "watermarked",
            Take {
                watermarked: true,
                ..good()
            },
        ),
    ];
    for (code, take) in cases {
        assert_eq!(codes(&rules, &take), [code], "{take:?}");
    }
}

#[test]
fn limits_are_inclusive_and_loudness_is_no_reason_without_a_window() {
    let rules = QualityRules::default();
    let at_limits = Take {
        duration: secs(30.0),
        leading_silence: secs(2.0),
        trailing_silence: secs(10.0),
        true_peak: Some(0.0),
        loudness: Some(-40.0),
        ..good()
    };
    assert!(codes(&rules, &at_limits).is_empty());
    let silent = Take {
        loudness: None,
        true_peak: None,
        ..good()
    };
    assert!(codes(&rules, &silent).is_empty(), "no window, no reason");
}

#[test]
fn every_reason_a_take_breaks_is_given_in_order() {
    let take = Take {
        duration: secs(12.0),
        leading_silence: secs(4.0),
        trailing_silence: secs(11.0),
        true_peak: Some(1.5),
        clipped_samples: 300,
        loudness: Some(-6.0),
        repeats_earlier_take: true,
        watermarked: true,
    };
    let mut settings = QualitySettings::default();
    settings.set("loudness", Written::Text("-16..-12")).unwrap();
    let rules = settings.rules();
    assert_eq!(
        codes(&rules, &take),
        [
            "too_short",
            "leading_silence",
            "trailing_silence",
            "true_peak",
            "clipped",
            "too_loud",
            "identical",
            "watermarked"
        ]
    );
    let messages: Vec<String> = rules
        .verdict(&take)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(messages[0], "too short: 12.0 s (at least 30.0 s)");
    assert_eq!(messages[3], "true peak +1.5 dBTP (at most +0.0)");
    assert_eq!(messages[5], "too loud: -6.0 LUFS (at most -12.0)");
}

#[test]
fn a_window_catches_quiet_loud_and_silent_takes() {
    let mut settings = QualitySettings::default();
    settings
        .set("loudness", Written::Text(" -16 .. -12 "))
        .unwrap();
    let rules = settings.rules();
    let with = |loudness| Take { loudness, ..good() };
    assert_eq!(codes(&rules, &with(Some(-30.0))), ["too_quiet"]);
    assert_eq!(codes(&rules, &with(Some(-8.0))), ["too_loud"]);
    assert_eq!(codes(&rules, &with(None)), ["silent"]);
    assert!(codes(&rules, &with(Some(-16.0))).is_empty());
}

#[test]
fn off_and_keep_turn_a_rule_off_and_a_higher_layer_wins() {
    let mut manifest = QualitySettings::default();
    for key in [
        "min_duration",
        "max_leading_silence",
        "max_trailing_silence",
        "max_true_peak",
        "max_clipped_samples",
    ] {
        manifest.set(key, Written::Text("off")).unwrap();
    }
    manifest
        .set("identical_takes", Written::Text("keep"))
        .unwrap();
    manifest
        .set("watermarked_lyrics", Written::Text("Keep"))
        .unwrap();
    let worst = Take {
        duration: secs(5.0),
        leading_silence: secs(5.0),
        trailing_silence: secs(60.0),
        true_peak: Some(3.0),
        clipped_samples: 10_000,
        repeats_earlier_take: true,
        watermarked: true,
        ..good()
    };
    assert!(codes(&manifest.rules(), &worst).is_empty());
    let mut flags = QualitySettings::default();
    flags.set("min_duration", Written::Text("1m")).unwrap();
    flags.set("max_duration", Written::Text("4m")).unwrap();
    let merged = flags.or(manifest);
    assert_eq!(merged.rules().min_duration, Some(secs(60.0)));
    assert_eq!(merged.rules().max_duration, Some(secs(240.0)));
    assert_eq!(
        merged.rules().max_true_peak,
        None,
        "off from the lower layer"
    );
    let long = Take {
        duration: secs(300.0),
        ..good()
    };
    assert_eq!(codes(&merged.rules(), &long), ["too_long"]);
}

#[test]
fn numbers_and_text_read_alike_and_bad_values_say_what_the_rule_takes() {
    let mut s = QualitySettings::default();
    s.set("max_true_peak", Written::Number(-1.0)).unwrap();
    assert_eq!(s.max_true_peak, Some(Limit::At(-1.0)));
    s.set("max_true_peak", Written::Text("-2")).unwrap();
    assert_eq!(s.max_true_peak, Some(Limit::At(-2.0)));
    s.set("max_clipped_samples", Written::Number(3.0)).unwrap();
    assert_eq!(s.max_clipped_samples, Some(Limit::At(3)));
    let err = |key: &str, value: Written<'_>| {
        QualitySettings::default()
            .set(key, value)
            .expect_err("refused")
    };
    assert_eq!(
        err("min_duration", Written::Text("soon")),
        "\"soon\" is not a duration (e.g. \"30s\", \"2m\") or \"off\""
    );
    assert!(err("min_duration", Written::Number(30.0)).contains("in quotes"));
    assert!(err("max_true_peak", Written::Number(12.0)).contains("out of range"));
    assert!(err("max_clipped_samples", Written::Number(-1.0)).contains("whole number"));
    assert!(err("max_clipped_samples", Written::Number(1.5)).contains("whole number"));
    assert!(err("loudness", Written::Text("-12..-16")).contains("lower bound comes first"));
    assert!(err("loudness", Written::Text("-14")).contains("LOW..HIGH"));
    assert!(err("loudness", Written::Text("-90..-10")).contains("out of range"));
    assert!(err("identical_takes", Written::Text("drop")).contains("\"reject\" or \"keep\""));
    assert!(err("max_peak", Written::Text("0")).contains("[quality] takes min_duration"));
}

/// What a layer sets is written as its keys take it, and reads back the
/// same (how the store keeps a manifest's table for `collect`).
#[test]
fn a_layer_round_trips_through_its_written_form() {
    let mut layer = QualitySettings::default();
    for (key, value) in [
        ("min_duration", "1m 30s 250ms"),
        ("max_duration", "off"),
        ("max_true_peak", "-1.5"),
        ("max_clipped_samples", "3"),
        ("loudness", "-16.5..-12"),
        ("identical_takes", "keep"),
    ] {
        layer.set(key, Written::Text(value)).unwrap();
    }
    let written = layer.written();
    assert_eq!(written.len(), 6, "only what the layer sets: {written:?}");
    let mut back = QualitySettings::default();
    for (key, value) in &written {
        back.set(key, Written::Text(value)).unwrap();
    }
    assert_eq!(back, layer);
    assert!(QualitySettings::default().written().is_empty());
}

#[test]
fn a_jobs_own_limits_go_above_the_runs_for_that_job_alone() {
    let mut run = QualitySettings::default();
    run.set("min_duration", Written::Text("40s")).unwrap();
    run.set("max_true_peak", Written::Number(-1.0)).unwrap();
    let mut jingle = QualitySettings::default();
    jingle.set("min_duration", Written::Text("10s")).unwrap();
    jingle.set("max_duration", Written::Text("45s")).unwrap();
    let mut long = QualitySettings::default();
    long.set("min_duration", Written::Text("off")).unwrap();
    let jobs: BTreeMap<String, QualitySettings> =
        [("jingle".to_owned(), jingle), ("long".to_owned(), long)].into();
    let gate = Gate::new(&run, &jobs);
    let j = gate.rules("jingle");
    assert_eq!(
        (j.min_duration, j.max_duration, j.max_true_peak),
        (Some(secs(10.0)), Some(secs(45.0)), Some(-1.0)),
        "its own durations, the run's other rules"
    );
    assert_eq!(gate.rules("long").min_duration, None, "off turns it off");
    assert_eq!(gate.rules("other"), &run.rules());

    let without = Gate::new(&run, &BTreeMap::new());
    assert_eq!(
        without.fingerprint(),
        format!("{:?}", run.rules()),
        "a store judged before jobs had rules is not judged again for nothing"
    );
    let mut changed = jobs.clone();
    changed
        .get_mut("jingle")
        .unwrap()
        .set("max_duration", Written::Text("50s"))
        .unwrap();
    let fingerprints = [
        without.fingerprint().to_owned(),
        gate.fingerprint().to_owned(),
        Gate::new(&run, &changed).fingerprint().to_owned(),
    ];
    assert_eq!(
        fingerprints
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        3,
        "{fingerprints:?}"
    );
    assert_eq!(Gate::new(&run, &jobs).fingerprint(), gate.fingerprint());
}
