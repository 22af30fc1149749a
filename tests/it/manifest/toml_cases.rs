//! TOML manifests: keys, types, `[run]`, `[defaults]`, `csv = "..."`; helpers come from `tests/it/manifest/mod.rs`.

use super::*;

#[test]
fn unknown_job_key_is_reported_at_its_job_header_with_a_suggestion() {
    let toml = "[[job]]\nprompt = \"a\"\n\n[[job]]\nprompt = \"b\"\n# typo below\npromt = \"c\"\n";
    assert_eq!(
        problems("jobs.toml", toml),
        ["jobs.toml:4: promt: unknown field; did you mean \"prompt\"?"]
    );
}

#[test]
fn typos_everywhere_are_all_reported() {
    assert_eq!(
        fixture_problems("invalid/typos.toml"),
        [
            "invalid/typos.toml:2: rate: invalid rate \"fast\": expected N/s, N/min, N/h, N/<duration> (e.g. 20/10s) or \"unlimited\"",
            "invalid/typos.toml:3: concurency: unknown setting; did you mean \"concurrency\"?",
            "invalid/typos.toml:6: modle: unknown field; did you mean \"model\"?",
            "invalid/typos.toml:8: promt: unknown field; did you mean \"prompt\"?",
        ]
    );
}

#[test]
fn unknown_top_level_keys() {
    assert_eq!(
        problems("jobs.toml", "jobs = []\nprompt = \"a\"\nzzzzz = 1\n"),
        [
            "jobs.toml:1: jobs: unknown key; did you mean \"job\"?",
            "jobs.toml:2: prompt: is a job field: put it in a [[job]] table, or in [defaults] for every job",
            "jobs.toml:3: zzzzz: unknown key",
        ]
    );
}

#[test]
fn invalid_utf8_in_toml_names_the_line() {
    assert_eq!(
        problems(
            "jobs.toml",
            b"[[job]]\nprompt = \"a\"\n\n[[job]]\nprompt = \"caf\xe9\"\n"
        ),
        ["jobs.toml:5: not valid UTF-8 (byte 0xe9); save the file as UTF-8"]
    );
}

#[test]
fn toml_syntax_error_is_one_line() {
    let lines = problems("jobs.toml", "[[job]]\nprompt = \"a\"\ntitle = \n");
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("jobs.toml:3: invalid TOML: "),
        "{lines:?}"
    );
    assert!(!lines[0].contains('\n'));
    let dup = problems("jobs.toml", "[[job]]\nprompt = \"a\"\nprompt = \"b\"\n");
    assert_eq!(dup, ["jobs.toml:3: invalid TOML: duplicate key"]);
}

#[test]
fn toml_type_errors_name_field_and_type() {
    let toml = "[[job]]\nprompt = \"a\"\ncustom_mode = \"yes\"\ntitle = 5\nstyle = [\"pop\"]\n";
    assert_eq!(
        problems("jobs.toml", toml),
        [
            "jobs.toml:1: custom_mode: expected true or false (without quotes), found string \"yes\"",
            "jobs.toml:1: style: expected a string, found array",
            "jobs.toml:1: title: expected a string, found integer 5",
        ]
    );
    assert_eq!(
        problems("jobs.toml", "job = 3\nrun = \"fast\"\ndefaults = [1]\n"),
        [
            "jobs.toml:1: job: expected [[job]] tables, found integer 3; write each job under a [[job]] header",
            "jobs.toml:2: run: expected a [run] table, found string \"fast\"",
            "jobs.toml:3: defaults: expected a [defaults] table, found array",
        ]
    );
    assert_eq!(
        problems("jobs.toml", "[job]\nprompt = \"a\"\n"),
        [
            "jobs.toml:1: job: found a single [job] table: write [[job]], with two brackets, above each job"
        ]
    );
}

#[test]
fn duplicate_id() {
    let toml = "[[job]]\nid = \"x\"\nprompt = \"a\"\n\n[[job]]\nid = \"x\"\nprompt = \"b\"\n";
    assert_eq!(
        problems("jobs.toml", toml),
        ["jobs.toml:5: id: duplicate key \"x\" (first at line 1)"]
    );
}

#[test]
fn duplicate_content_without_id() {
    let csv = "prompt,model\nrain,\nsun,\nrain,chirp-v3.5\n";
    assert_eq!(
        problems("jobs.csv", csv),
        ["jobs.csv:4: exact duplicate of line 2; give one of them an `id` to generate both"]
    );
}

#[test]
fn defaults_apply_to_jobs_and_run_settings_parse() {
    let m = load(&fixture("valid/settings.toml")).unwrap();
    let s = &m.settings;
    assert_eq!(s.base_url.as_deref(), Some("http://127.0.0.1:8080/"));
    assert_eq!(s.rate, Some("30/min".parse::<Rate>().unwrap()));
    assert_eq!(s.burst.map(|b| b.get()), Some(2));
    assert_eq!(s.concurrency, Some(8));
    assert_eq!(s.max_attempts, Some(3));
    assert_eq!(s.timeout, Some(Duration::from_secs(90)));
    assert_eq!(s.results, Some(fixture("valid/out/results.csv")));
    let all = m.collect_jobs().unwrap();
    let jobs: Vec<_> = all
        .iter()
        .map(|j| {
            (
                j.key.as_str(),
                j.line,
                j.fields.model.as_deref(),
                j.fields.make_instrumental,
            )
        })
        .collect();
    assert_eq!(jobs[0], ("first", 15, Some("chirp-v4-5"), Some(true)));
    assert_eq!(
        (jobs[1].1, jobs[1].2, jobs[1].3),
        (19, Some("chirp-v3-5"), Some(false))
    );
    assert!(jobs[1].0.starts_with("fp-"));
}

#[test]
fn bad_run_settings_are_reported_at_their_lines() {
    let toml = "[run]\nrate = \"2/day\"\nburst = 0\nconcurrency = 2000\ntimeout = \"soon\"\nbase_url = \"ftp://x\"\nmax_attempts = \"3\"\n";
    assert_eq!(
        problems("jobs.toml", toml),
        [
            "jobs.toml:2: rate: invalid rate \"2/day\": expected N/s, N/min, N/h, N/<duration> (e.g. 20/10s) or \"unlimited\"",
            "jobs.toml:3: burst: must be between 1 and 4294967295, not 0",
            "jobs.toml:4: concurrency: must be between 1 and 1024, not 2000",
            "jobs.toml:5: timeout: invalid duration \"soon\": expected number at 0 (e.g. 30s, 2m)",
            "jobs.toml:6: base_url: invalid base URL \"ftp://x\": expected http(s)://host[:port]",
            "jobs.toml:7: max_attempts: expected an integer, found string \"3\"",
        ]
    );
    let m = valid("jobs.toml", "[run]\ntimeout = 45\nrate = \"unlimited\"\n");
    assert_eq!(m.settings.timeout, Some(Duration::from_secs(45)));
    assert_eq!(m.settings.rate, Some(Rate::Unlimited));
}

#[test]
fn quality_rules_are_read_and_bad_ones_reported_at_their_lines() {
    let toml = "[quality]\nmin_duration = \"1m\"\nmax_true_peak = -1\nloudness = \"-16..-12\"\nidentical_takes = \"keep\"\nmax_trailing_silence = \"off\"\nmax_clipped_samples = 5\n";
    let m = valid("jobs.toml", toml);
    let rules = m.settings.quality.rules();
    assert_eq!(rules.min_duration, Some(Duration::from_secs(60)));
    assert_eq!(rules.max_true_peak, Some(-1.0));
    assert_eq!(rules.loudness, Some((-16.0, -12.0)));
    assert_eq!(
        rules.identical_takes,
        batchgen::settings::quality::Policy::Keep
    );
    assert_eq!(rules.max_trailing_silence, None);
    assert_eq!(rules.max_clipped_samples, Some(5));
    assert_eq!(
        rules.max_leading_silence,
        Some(Duration::from_secs(2)),
        "a default"
    );
    let bad = "[quality]\nmin_duration = 30\nmax_true_peak = \"loud\"\nloudness = \"-12..-16\"\nmax_silence = \"2s\"\nwatermarked_lyrics = true\n";
    assert_eq!(
        problems("jobs.toml", bad),
        [
            "jobs.toml:2: min_duration: write a duration (e.g. \"30s\", \"2m\") or \"off\" in quotes",
            "jobs.toml:3: max_true_peak: \"loud\" is not a level in dB (e.g. -1.0) or \"off\"",
            "jobs.toml:4: loudness: \"-12..-16\" is not a loudness window in LUFS, \"LOW..HIGH\" (e.g. \"-16..-12\"), or \"off\": the lower bound comes first",
            "jobs.toml:5: max_silence: unknown rule; [quality] takes min_duration, max_duration, max_leading_silence, max_trailing_silence, max_true_peak, max_clipped_samples, loudness, identical_takes, watermarked_lyrics",
            "jobs.toml:6: watermarked_lyrics: expected a string or a number, found boolean true",
        ]
    );
}

#[test]
fn empty_toml_is_valid_with_no_jobs() {
    let m = valid("jobs.toml", "# nothing yet\n[run]\nrate = \"1/s\"\n");
    assert!(m.is_empty());
    assert_eq!(m.settings.rate, Some("1/s".parse().unwrap()));
}

// ---- csv = "..." ----

#[test]
fn toml_can_take_rows_from_a_csv_with_defaults() {
    let path = fixture("valid/catalog.toml");
    let m = load(&path).unwrap();
    assert_eq!(m.path, path);
    assert_eq!(m.rows_path, fixture("valid/rows/catalog.csv"));
    let all = m.collect_jobs().unwrap();
    let got: Vec<_> = all
        .iter()
        .map(|j| {
            (
                j.key.as_str(),
                j.line,
                j.fields.model.as_deref(),
                j.fields.custom_mode,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("a", 2, Some("chirp-v4-5"), Some(true)),
            ("b", 3, Some("chirp-v4-5"), Some(true))
        ]
    );
}

#[test]
fn csv_rows_of_a_toml_manifest_are_reported_against_the_csv() {
    let lines = problems_in(&[
        (
            "jobs.toml",
            b"csv = \"data/rows.csv\"\n[defaults]\ncustom_mode = true\n",
        ),
        ("data/rows.csv", b"prompt,title\nla,T\n"),
    ]);
    let csv = format!("data{MAIN_SEPARATOR}rows.csv");
    assert_eq!(
        lines,
        [format!(
            "{csv}:2: style: required in custom mode but not set"
        )]
    );
}

#[test]
fn csv_must_stay_inside_the_manifest_folder() {
    assert_eq!(
        fixture_problems("invalid/outside.toml"),
        [
            "invalid/outside.toml:2: csv: \"../valid/quoting.csv\" leaves this manifest's folder; the CSV must be in it or below it"
        ]
    );
    assert_eq!(
        problems("jobs.toml", "\ncsv = \"/etc/passwd\"\n"),
        [
            "jobs.toml:2: csv: \"/etc/passwd\" is an absolute path; give a path relative to this manifest's folder"
        ]
    );
    assert_eq!(
        problems("jobs.toml", "csv = \"rows.csv\"\n[[job]]\nprompt = \"a\"\n"),
        ["jobs.toml:1: csv: cannot be used with [[job]] tables: rows come from one or the other"]
    );
}

#[test]
fn missing_csv_is_unreadable() {
    let (dir, result) = load_files(&[("jobs.toml", b"csv = \"nope.csv\"\n")]);
    match result {
        Err(e @ ManifestError::Unreadable { .. }) => {
            assert_eq!(e.exit_code().code(), 66);
            let ManifestError::Unreadable { path, .. } = e else {
                unreachable!()
            };
            assert_eq!(path, dir.path().join("nope.csv"));
        }
        other => panic!("expected Unreadable, got {other:?}"),
    }
}

#[test]
fn a_jobs_own_duration_limits_are_read_checked_and_never_sent() {
    let toml = "[[job]]\nid = \"jingle\"\nprompt = \"a\"\nmin_duration = \"10s\"\nmax_duration = \"45s\"\n\n\
                [[job]]\nid = \"long\"\nprompt = \"b\"\nmax_duration = \"off\"\n\n\
                [[job]]\nid = \"plain\"\nprompt = \"c\"\n";
    let manifest = valid("jobs.toml", toml);
    let own: Vec<(&str, Vec<(&str, String)>)> = manifest
        .job_quality
        .iter()
        .map(|(key, rules)| (key.as_str(), rules.written()))
        .collect();
    assert_eq!(
        own,
        [
            (
                "jingle",
                vec![
                    ("min_duration", "10s".to_owned()),
                    ("max_duration", "45s".to_owned())
                ]
            ),
            ("long", vec![("max_duration", "off".to_owned())]),
        ]
    );
    let jobs: Vec<_> = manifest.jobs().unwrap().map(Result::unwrap).collect();
    let body = serde_json::to_string(jobs[0].body()).unwrap();
    assert_eq!(body, r#"{"prompt":"a"}"#, "never sent");
    let plain = valid("jobs.toml", "[[job]]\nid = \"jingle\"\nprompt = \"a\"\n");
    let first = plain.jobs().unwrap().next().unwrap().unwrap();
    assert_eq!(
        jobs[0].fingerprint, first.fingerprint,
        "the limits are not the music: the job is the same job"
    );

    assert_eq!(
        problems(
            "jobs.toml",
            "[[job]]\nprompt = \"a\"\nmin_duration = 30\n\n[[job]]\nprompt = \"b\"\nmax_duration = \"soon\"\n\n\
             [[job]]\nprompt = \"c\"\nmin_duration = \"2m\"\nmax_duration = \"1m\"\n\n\
             [[job]]\nprompt = \"d\"\nmin_duraton = \"2m\"\n"
        ),
        [
            "jobs.toml:1: min_duration: expected a duration (e.g. \"30s\", \"2m\") or \"off\" in quotes, found integer 30",
            "jobs.toml:5: max_duration: \"soon\" is not a duration (e.g. \"30s\", \"2m\") or \"off\"",
            "jobs.toml:9: min_duration: 2m is longer than max_duration 1m: every take would be rejected",
            "jobs.toml:14: min_duraton: unknown field; did you mean \"min_duration\"?",
        ]
    );
    assert_eq!(
        problems(
            "jobs.toml",
            "[defaults]\nmin_duration = \"20s\"\n\n[[job]]\nprompt = \"a\"\n"
        ),
        [
            "jobs.toml:2: min_duration: a rule for every job goes in [quality] (min_duration = ...); a job sets its own in its [[job]] table or CSV row"
        ]
    );
}
