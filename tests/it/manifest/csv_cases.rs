//! CSV manifests: columns, cells, quoting, encodings, line numbers; helpers come from `tests/it/manifest/mod.rs`.

use super::*;

#[test]
fn bad_boolean_in_csv() {
    assert_eq!(
        problems("jobs.csv", "prompt,custom_mode\na,no\nb,maybe\n"),
        ["jobs.csv:3: custom_mode: \"maybe\" is not a boolean (use true/false, yes/no or 1/0)"]
    );
}

#[test]
fn booleans_in_csv_are_lenient_and_empty_means_unset() {
    let csv =
        "prompt,title,style,custom_mode,make_instrumental\na,T,S, Yes ,0\nb,,,,\nc,,,FALSE,1\n";
    let m = valid("jobs.csv", csv);
    let all = m.collect_jobs().unwrap();
    let modes: Vec<_> = all
        .iter()
        .map(|j| (j.fields.custom_mode, j.fields.make_instrumental))
        .collect();
    assert_eq!(
        modes,
        [
            (Some(true), Some(false)),
            (None, None),
            (Some(false), Some(true))
        ]
    );
}

#[test]
fn unknown_and_duplicate_columns() {
    assert_eq!(
        problems("jobs.csv", " id , promt ,notes,id\nx,a,b,y\n"),
        [
            "jobs.csv:1: promt: unknown column; did you mean \"prompt\"?",
            "jobs.csv:1: notes: unknown column; columns are: id, prompt, gpt_description_prompt, title, style, tags, custom_mode, make_instrumental, model, gender, style_weight, weirdness_constraint, audio_weight, callback_url, cluster, min_duration, max_duration",
            "jobs.csv:1: id: duplicate column (also column 1)",
        ]
    );
}

#[test]
fn ragged_row_is_reported_and_reading_goes_on() {
    assert_eq!(
        problems("jobs.csv", "id,prompt,title\na,p,t\nb,p\nc,p,t,x\nd,p,t\n"),
        [
            "jobs.csv:3: has 2 fields, the header has 3",
            "jobs.csv:4: has 4 fields, the header has 3",
        ]
    );
}

#[test]
fn invalid_utf8_in_csv_names_row_and_column() {
    assert_eq!(
        problems("jobs.csv", b"prompt,title\nok,\nfine,caf\xe9\n"),
        [
            "jobs.csv:3: title: column 2: invalid UTF-8 at byte 4 of the cell; save the file as UTF-8"
        ]
    );
}

#[test]
fn empty_csv_has_no_header() {
    let expected = ["jobs.csv:1: empty file: expected a header row naming the columns"];
    assert_eq!(problems("jobs.csv", ""), expected);
    assert_eq!(problems("jobs.csv", "\u{feff}"), expected);
}

#[test]
fn header_only_csv_is_valid_with_no_jobs() {
    let m = valid("jobs.csv", "id,prompt\n");
    assert!(m.is_empty());
    assert_eq!(m.rows_path, m.path);
}

#[test]
fn bom_and_crlf_are_accepted() {
    let csv = "\u{feff}id,prompt,title\r\na,\"two\r\nlines\",T\r\n\r\nb,second,T\r\n";
    let m = valid("jobs.csv", csv);
    let all = m.collect_jobs().unwrap();
    let got: Vec<_> = all
        .iter()
        .map(|j| (j.key.as_str(), j.line, j.fields.prompt.as_deref().unwrap()))
        .collect();
    assert_eq!(got, [("a", 2, "two\r\nlines"), ("b", 5, "second")]);
}

#[test]
fn quoted_fields_round_trip_exactly() {
    let m = load(&fixture("valid/quoting.csv")).unwrap();
    let all = m.collect_jobs().unwrap();
    let prompts: Vec<_> = all
        .iter()
        .map(|j| (j.key.as_str(), j.line, j.fields.prompt.as_deref().unwrap()))
        .collect();
    assert_eq!(
        prompts,
        [
            ("quotes", 2, "She said \"hi\", then left"),
            (
                "lyrics",
                3,
                "[Verse]\n  Line one, with a comma\nLine two \"quoted\"\n\n[Chorus]\nÜnïcödé ♪ 日本語"
            ),
            ("plain", 9, "  spaced prompt  "),
        ]
    );
    assert_eq!(
        m.collect_jobs().unwrap()[0].fields.style.as_deref(),
        Some("rock, 120 bpm")
    );
    assert!(
        m.collect_jobs()
            .unwrap()
            .iter()
            .all(|j| j.fields.custom_mode == Some(true))
    );
}

#[test]
fn every_bad_row_is_reported_in_one_error() {
    let err = load(&fixture("invalid/rows.csv")).unwrap_err();
    assert_eq!(err.exit_code().code(), 65);
    let file = fixture("invalid/rows.csv").display().to_string();
    let shown = err.to_string().replace(&file, "rows.csv");
    let lines: Vec<_> = shown.lines().collect();
    assert_eq!(lines.len(), 6, "{shown}");
    assert_eq!(
        lines[0],
        "rows.csv:3: custom_mode: \"maybe\" is not a boolean (use true/false, yes/no or 1/0)"
    );
    assert_eq!(
        lines[1],
        "rows.csv:3: id: contains ' '; ids may use only letters, digits, '-', '_' and '.' (they name files)"
    );
    assert_eq!(
        lines[2],
        "rows.csv:4: title: required in custom mode but not set"
    );
    assert_eq!(lines[3], "rows.csv:5: has 3 fields, the header has 6");
    assert!(lines[4].starts_with("rows.csv:6: model: unknown model \"chirp-v9\""));
    assert_eq!(lines[5], "rows.csv: 5 problems in 4 rows; nothing was sent");
}

#[test]
fn an_unread_value_does_not_echo_as_missing_fields() {
    // custom_mode could not be read, so whether title and style are required
    // is unknown: only the boolean is reported. The bad id is independent.
    assert_eq!(
        problems("jobs.csv", "id,prompt,custom_mode\nno/slash,,maybe\n"),
        [
            "jobs.csv:2: custom_mode: \"maybe\" is not a boolean (use true/false, yes/no or 1/0)",
            "jobs.csv:2: id: contains '/'; ids may use only letters, digits, '-', '_' and '.' (they name files)",
        ]
    );
    // A misspelt column is reported once, not as a missing prompt per row.
    assert_eq!(
        problems("jobs.csv", "promt,title\na,T\nb,T\n"),
        ["jobs.csv:1: promt: unknown column; did you mean \"prompt\"?"]
    );
    // Same for a bad [defaults] value.
    assert_eq!(
        problems(
            "jobs.toml",
            "[defaults]\ncustom_mode = 1\n[[job]]\nprompt = \"a\"\n"
        ),
        ["jobs.toml:2: custom_mode: expected true or false (without quotes), found integer 1"]
    );
}

#[test]
fn duration_limit_columns_set_a_jobs_own_rules_and_a_blank_cell_sets_none() {
    let csv = "id,prompt,min_duration,max_duration\njingle,a,15s,45s\nsong,b,,\nlong,c,, off \nbad,d,soon,\n";
    assert_eq!(
        problems("jobs.csv", csv),
        ["jobs.csv:5: min_duration: \"soon\" is not a duration (e.g. \"30s\", \"2m\") or \"off\""]
    );
    let m = valid("jobs.csv", &csv[..csv.find("bad,").unwrap()]);
    let own: Vec<(&str, Vec<(&str, String)>)> = m
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
                    ("min_duration", "15s".to_owned()),
                    ("max_duration", "45s".to_owned())
                ]
            ),
            ("long", vec![("max_duration", "off".to_owned())]),
        ]
    );
}
