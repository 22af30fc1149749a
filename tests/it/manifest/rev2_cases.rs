//! What revision 2 of the API docs added to a manifest: inspiration mode,
//! `chirp-v5` and user-added models, the fields `gender`, `style_weight`,
//! `weirdness_constraint` and `audio_weight`, and the generate paths in
//! `[run]`. Helpers come from `tests/it/manifest/mod.rs`.

use batchgen::files::manifest::load_with;
use batchgen::job::{Gender, Rules, Weight};

use super::*;

fn w(hundredths: u8) -> Option<Weight> {
    Weight::from_hundredths(hundredths)
}

// ---- inspiration mode ----

#[test]
fn inspiration_jobs_need_no_prompt_and_count_as_their_own_mode() {
    let toml = r#"
[[job]]
gpt_description_prompt = "a song about a lighthouse"

[[job]]
gpt_description_prompt = "the same, without vocals"
make_instrumental = true

[[job]]
prompt = "a description"
gpt_description_prompt = "both may be set"

[[job]]
prompt = "a description only"
"#;
    let m = valid("jobs.toml", toml);
    assert_eq!(m.len(), 4);
    let modes: Vec<_> = m
        .summary
        .modes
        .iter()
        .map(|(mode, n)| (mode.to_string(), *n))
        .collect();
    assert_eq!(
        modes,
        [
            ("description".to_owned(), 2),
            ("inspiration".to_owned(), 1),
            ("inspiration instrumental".to_owned(), 1),
        ]
    );
    let csv = "id,gpt_description_prompt,prompt\na,tides,\nb,,\n";
    assert_eq!(
        problems("jobs.csv", csv),
        [
            "jobs.csv:3: prompt: not set: in description mode a job needs prompt or gpt_description_prompt (either is enough)"
        ]
    );
}

#[test]
fn an_unreadable_gpt_description_prompt_is_not_also_reported_missing() {
    // The value could not be read; "neither is set" would be an echo of that.
    assert_eq!(
        problems("jobs.toml", "[[job]]\ngpt_description_prompt = 3\n"),
        ["jobs.toml:1: gpt_description_prompt: expected a string, found integer 3"]
    );
}

// ---- the newer fields, in TOML ----

#[test]
fn toml_weights_are_numbers_and_gender_a_word() {
    let toml = r#"
[[job]]
prompt = "a"
gender = "Female"
style_weight = 0.65
weirdness_constraint = 0
audio_weight = 1

[[job]]
prompt = "b"
style_weight = 0.5_0
audio_weight = 5e-1
weirdness_constraint = 1.0
"#;
    let m = valid("jobs.toml", toml);
    let jobs = m.collect_jobs().unwrap();
    let f = &jobs[0].fields;
    assert_eq!(f.gender, Some(Gender::Female));
    assert_eq!(
        (f.style_weight, f.weirdness_constraint, f.audio_weight),
        (w(65), w(0), w(100))
    );
    let f = &jobs[1].fields;
    assert_eq!(
        (f.style_weight, f.weirdness_constraint, f.audio_weight),
        (w(50), w(100), w(50))
    );
}

#[test]
fn bad_toml_weights_and_genders_are_reported_with_their_lines() {
    let toml = r#"[[job]]
prompt = "a"
style_weight = "0.5"

[[job]]
prompt = "b"
style_weight = 1.5
weirdness_constraint = 0.655
audio_weight = 2
gender = "robot"

[[job]]
prompt = "c"
gender = true
audio_weight = -0.1
style_wieght = 0.5
"#;
    let rule = "a number from 0 to 1 with at most two decimals, like 0.65";
    assert_eq!(
        problems("jobs.toml", toml),
        [
            format!(
                "jobs.toml:1: style_weight: expected {rule} (without quotes), found string \"0.5\""
            ),
            // Within a table, in the order the toml crate gives the keys.
            format!("jobs.toml:5: audio_weight: 2 is out of range: expected {rule}"),
            "jobs.toml:5: gender: \"robot\" is not a vocal gender: use \"male\" or \"female\""
                .to_owned(),
            format!("jobs.toml:5: style_weight: 1.5 is out of range: expected {rule}"),
            format!(
                "jobs.toml:5: weirdness_constraint: 0.655 has more than two decimals: expected {rule}"
            ),
            format!("jobs.toml:12: audio_weight: -0.1 is out of range: expected {rule}"),
            "jobs.toml:12: gender: expected \"male\" or \"female\", found boolean true".to_owned(),
            "jobs.toml:12: style_wieght: unknown field; did you mean \"style_weight\"?".to_owned(),
        ]
    );
}

// ---- the newer fields, in CSV ----

#[test]
fn csv_weights_are_decimal_text_and_blank_is_unset() {
    let csv = "prompt,gender,style_weight,weirdness_constraint,audio_weight\n\
               a, male ,0.65,.5,1\n\
               b,,  ,0.50,0\n";
    let m = valid("jobs.csv", csv);
    let jobs = m.collect_jobs().unwrap();
    let f = &jobs[0].fields;
    assert_eq!(
        (
            f.gender,
            f.style_weight,
            f.weirdness_constraint,
            f.audio_weight
        ),
        (Some(Gender::Male), w(65), w(50), w(100))
    );
    let f = &jobs[1].fields;
    assert_eq!(
        (
            f.gender,
            f.style_weight,
            f.weirdness_constraint,
            f.audio_weight
        ),
        (None, None, w(50), w(0))
    );
}

#[test]
fn bad_csv_weights_and_genders_name_row_and_column() {
    let csv =
        "prompt,gender,style_weight,audio_weight\na,m,0,5%\nb,female,0,5,0.655\nc,,1.01,abc\n";
    let rule = "a number from 0 to 1 with at most two decimals, like 0.65";
    assert_eq!(
        problems("jobs.csv", csv),
        [
            "jobs.csv:2: gender: \"m\" is not a vocal gender: use \"male\" or \"female\""
                .to_owned(),
            format!("jobs.csv:2: audio_weight: \"5%\" is not {rule}"),
            "jobs.csv:3: has 5 fields, the header has 4".to_owned(),
            format!("jobs.csv:4: style_weight: \"1.01\" is out of range: expected {rule}"),
            format!("jobs.csv:4: audio_weight: \"abc\" is not {rule}"),
        ]
    );
}

#[test]
fn the_same_job_from_toml_and_csv_has_the_same_key() {
    let toml = valid(
        "jobs.toml",
        "[[job]]\nprompt = \"p\"\ngender = \"male\"\nstyle_weight = 0.5\naudio_weight = 1\n",
    );
    let csv = valid(
        "jobs.csv",
        "prompt,gender,style_weight,audio_weight\np,MALE,0.50,1.00\n",
    );
    let key = |m: &Valid| m.collect_jobs().unwrap()[0].key.clone();
    assert_eq!(key(&toml), key(&csv));
    let plain = valid("jobs.csv", "prompt\np\n");
    assert_ne!(key(&plain), key(&csv), "set fields are part of the key");
}

#[test]
fn defaults_set_the_newer_fields_too() {
    let toml = r#"
[defaults]
gender = "female"
style_weight = 0.3
weirdness_constraint = 0.07

[[job]]
prompt = "a"

[[job]]
prompt = "b"
style_weight = 0.9
gender = "male"
"#;
    let m = valid("jobs.toml", toml);
    let jobs = m.collect_jobs().unwrap();
    let pick = |i: usize| {
        let f = &jobs[i].fields;
        (
            f.gender,
            f.style_weight,
            f.weirdness_constraint,
            f.audio_weight,
        )
    };
    assert_eq!(pick(0), (Some(Gender::Female), w(30), w(7), None));
    assert_eq!(pick(1), (Some(Gender::Male), w(90), w(7), None));
    assert_eq!(
        problems(
            "jobs.toml",
            "[defaults]\nstyle_weight = \"high\"\n\n[[job]]\nprompt = \"a\"\n"
        ),
        [
            "jobs.toml:2: style_weight: expected a number from 0 to 1 with at most two decimals, like 0.65 (without quotes), found string \"high\""
        ]
    );
}

// ---- models ----

#[test]
fn chirp_v5_is_known_and_long_form() {
    let toml = format!(
        "[[job]]\nmodel = \"chirp-v5\"\nprompt = \"{}\"\n",
        "x".repeat(5000)
    );
    assert_eq!(valid("jobs.toml", &toml).len(), 1);
    let toml = format!(
        "[[job]]\nmodel = \"chirp-v5\"\nprompt = \"{}\"\n",
        "x".repeat(5001)
    );
    assert_eq!(
        problems("jobs.toml", &toml),
        [format!(
            "jobs.toml:1: prompt: is 5001 characters, over the limit of 5000 for chirp-v5 on udioapi {TOO_LONG}"
        )]
    );
}

#[test]
fn an_unknown_model_says_how_to_add_it() {
    let lines = problems("jobs.csv", "prompt,model\na,chirp-v7\n");
    assert_eq!(
        lines,
        [
            "jobs.csv:2: model: unknown model \"chirp-v7\"; the provider lists: chirp-v4-0, chirp-v4-5, chirp-v4-5-plus, chirp-v5, chirp-v5-5; if the provider has added \"chirp-v7\", name it with --extra-model chirp-v7 or [run] extra_models = [\"chirp-v7\"] (it gets the short-form limits: prompt 3000, style 200, title 80 characters), or give its limits in a models file (--models FILE, see `batchgen models`)"
        ]
    );
    // A name that could not be added gets no hint to add it.
    let lines = problems("jobs.csv", "prompt,model\na,chirp v6\n");
    assert!(lines[0].ends_with("chirp-v5-5"), "{lines:?}");
}

#[test]
fn run_extra_models_are_known_to_every_row_with_short_form_limits() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("jobs.toml");
    std::fs::write(
        &toml,
        "csv = \"rows.csv\"\n\n[run]\nextra_models = [\"chirp-v7\", \"suno-x\"]\n",
    )
    .unwrap();
    let long = "x".repeat(3001);
    std::fs::write(
        dir.path().join("rows.csv"),
        format!("id,prompt,model\na,p,chirp-v7\nb,p,suno-x\nc,{long},chirp-v7\n"),
    )
    .unwrap();
    let Err(ManifestError::Invalid { diagnostics }) = load(&toml) else {
        panic!("the 3001-character prompt is over the short-form limit")
    };
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    assert_eq!(diagnostics[0].line, 4);
    assert_eq!(
        diagnostics[0].message,
        format!("is 3001 characters, over the limit of 3000 for chirp-v7 on udioapi {TOO_LONG}")
    );
    std::fs::write(
        dir.path().join("rows.csv"),
        "id,prompt,model\na,p,chirp-v7\nb,p,suno-x\n",
    )
    .unwrap();
    let m = load(&toml).unwrap();
    assert_eq!(m.rules.extra_models(), ["chirp-v7", "suno-x"]);
    // The second pass over the CSV checks with the same rules.
    assert_eq!(m.collect_jobs().unwrap().len(), 2);
}

#[test]
fn extra_models_from_the_flags_reach_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("jobs.csv");
    std::fs::write(&csv, "prompt,model\na,chirp-v7\n").unwrap();
    assert!(load(&csv).is_err());
    let rules = Rules::with_extra_models(["chirp-v7"]).unwrap();
    let m = load_with(&csv, &rules).unwrap();
    assert_eq!(
        m.collect_jobs().unwrap()[0]
            .fields
            .model
            .as_deref()
            .unwrap(),
        "chirp-v7"
    );
}

#[test]
fn bad_extra_models_are_reported_at_their_line() {
    let toml = "[run]\nextra_models = [\"chirp v6\"]\n\n[[job]]\nprompt = \"a\"\n";
    assert_eq!(
        problems("jobs.toml", toml),
        [
            "jobs.toml:2: extra_models: model name \"chirp v6\" contains ' '; use letters, digits, '-', '.' and '_' (like chirp-v5)"
        ]
    );
    assert_eq!(
        problems("jobs.toml", "[run]\nextra_models = \"chirp-v6\"\n"),
        [
            "jobs.toml:2: extra_models: expected a list of model names like [\"chirp-v6\"], found string \"chirp-v6\""
        ]
    );
}

// ---- generate paths ----

#[test]
fn generate_paths_are_run_settings() {
    let m = valid(
        "jobs.toml",
        "[run]\ngenerate_path = \"/api/v3/generate\"\ncallback_generate_path = \"api/generate\"\n",
    );
    assert_eq!(m.settings.generate_path.as_deref(), Some("api/v3/generate"));
    assert_eq!(
        m.settings.callback_generate_path.as_deref(),
        Some("api/generate")
    );
    assert_eq!(
        problems(
            "jobs.toml",
            "[run]\ngenerate_path = \"https://h/api/generate\"\n"
        ),
        [
            "jobs.toml:2: generate_path: invalid API path \"https://h/api/generate\": give a path like api/v2/generate; the host goes in base_url"
        ]
    );
}
