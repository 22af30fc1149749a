//! Manifest loading, end to end: files on disk in, jobs or the exact
//! `FILE:LINE: field: message` diagnostics a user would see out. The
//! cases are by format ([`csv_cases`], [`toml_cases`], and what revision 2
//! of the API docs added, [`rev2_cases`]); the keys of the example
//! manifests, which must never move, are in [`keys`].

mod csv_cases;
mod keys;
mod rev2_cases;
mod toml_cases;

use std::path::{MAIN_SEPARATOR, Path, PathBuf};
use std::time::Duration;

use batchgen::files::manifest::{Manifest, ManifestError, load};
use batchgen::program::exit::ExitStatus as _;
use batchgen::util::units::Rate;
use tempfile::TempDir;

/// Writes `files` into a fresh folder and loads the first one.
fn load_files(files: &[(&str, &[u8])]) -> (TempDir, Result<Manifest, ManifestError>) {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    let result = load(&dir.path().join(files[0].0));
    (dir, result)
}

/// The diagnostics of an invalid manifest, as displayed, with the temporary
/// folder removed from the file names.
fn problems_in(files: &[(&str, &[u8])]) -> Vec<String> {
    let (dir, result) = load_files(files);
    let prefix = format!("{}{MAIN_SEPARATOR}", dir.path().display());
    match result {
        Ok(m) => panic!("expected diagnostics, loaded {} jobs", m.len()),
        Err(ManifestError::Invalid { diagnostics }) => diagnostics
            .iter()
            .map(|d| d.to_string().replacen(&prefix, "", 1))
            .collect(),
        Err(e) => panic!("expected diagnostics, got {e}"),
    }
}

fn problems(name: &str, content: impl AsRef<[u8]>) -> Vec<String> {
    problems_in(&[(name, content.as_ref())])
}

/// A valid manifest with its folder, which lives as long as it does: CSV
/// rows are read from disk again when the jobs are asked for.
struct Valid {
    _dir: TempDir,
    manifest: Manifest,
}

impl std::ops::Deref for Valid {
    type Target = Manifest;
    fn deref(&self) -> &Manifest {
        &self.manifest
    }
}

fn valid(name: &str, content: impl AsRef<[u8]>) -> Valid {
    let (dir, loaded) = load_files(&[(name, content.as_ref())]);
    match loaded {
        Ok(manifest) => Valid {
            _dir: dir,
            manifest,
        },
        Err(e) => panic!("expected a valid manifest:\n{e}"),
    }
}

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/manifests")
        .join(path)
}

fn fixture_problems(path: &str) -> Vec<String> {
    match load(&fixture(path)) {
        Err(ManifestError::Invalid { diagnostics }) => {
            let prefix = format!("{}{MAIN_SEPARATOR}", fixture("").display());
            let prefix = prefix.trim_end_matches(MAIN_SEPARATOR).to_owned() + "/";
            diagnostics
                .iter()
                .map(|d| d.to_string().replacen(&prefix, "", 1))
                .collect()
        }
        other => panic!("expected diagnostics, got {other:?}"),
    }
}

const TOO_LONG: &str = "(the API would fail it with \"Topic too long.\")";

// ---- the API's mode rules ----

#[test]
fn custom_mode_needs_prompt_title_and_style() {
    let toml = "[[job]]\nprompt = \"ok\"\n\n[[job]]\ncustom_mode = true\n";
    assert_eq!(
        problems("jobs.toml", toml),
        [
            "jobs.toml:4: prompt: required in custom mode but not set",
            "jobs.toml:4: title: required in custom mode but not set",
            "jobs.toml:4: style: required in custom mode but not set",
        ]
    );
}

#[test]
fn custom_instrumental_needs_style_and_title_but_no_prompt() {
    let csv = "title,style,custom_mode,make_instrumental\nT,,true,true\nT,lofi,true,true\n";
    assert_eq!(
        problems("jobs.csv", csv),
        ["jobs.csv:2: style: required in custom instrumental mode but not set"]
    );
}

#[test]
fn description_mode_needs_a_prompt_or_a_gpt_description_prompt() {
    assert_eq!(
        problems("jobs.toml", "[[job]]\nmodel = \"chirp-v4-5\"\n"),
        [
            "jobs.toml:1: prompt: not set: in description mode a job needs prompt or gpt_description_prompt (either is enough)"
        ]
    );
    assert_eq!(
        problems(
            "jobs.csv",
            "prompt,gpt_description_prompt,make_instrumental\n,,yes\n"
        ),
        [
            "jobs.csv:2: prompt: not set: in description instrumental mode a job needs prompt or gpt_description_prompt (either is enough)"
        ]
    );
}

// ---- length limits, per model ----

#[test]
fn length_limits_follow_the_model() {
    let cases = [
        ("prompt", 3001, "chirp-v3-5", Some(3000)),
        ("prompt", 3001, "chirp-v4-5", None),
        ("prompt", 5001, "chirp-v4-5", Some(5000)),
        ("style", 201, "chirp-v3-5", Some(200)),
        ("style", 1000, "chirp-v4-5", None),
        ("style", 1001, "chirp-v4-5", Some(1000)),
        ("title", 81, "chirp-v4-5", Some(80)),
        ("gpt_description_prompt", 401, "chirp-v4-5", Some(400)),
    ];
    for (field, len, model, limit) in cases {
        let toml = format!(
            "[defaults]\nmodel = \"{model}\"\ncustom_mode = true\ntitle = \"t\"\nstyle = \"s\"\nprompt = \"p\"\n\n[[job]]\n{field} = \"{}\"\n",
            "é".repeat(len)
        );
        let result = load_files(&[("jobs.toml", toml.as_bytes())]).1;
        match (limit, result) {
            (None, Ok(m)) => assert_eq!(m.len(), 1),
            (Some(limit), Err(ManifestError::Invalid { diagnostics })) => {
                let shown: Vec<_> = diagnostics
                    .iter()
                    .map(|d| format!("{}: {}", d.line, d))
                    .collect();
                assert_eq!(diagnostics.len(), 1, "{shown:?}");
                assert_eq!(diagnostics[0].line, 8);
                assert_eq!(diagnostics[0].field.as_deref(), Some(field));
                assert_eq!(
                    diagnostics[0].message,
                    format!(
                        "is {len} characters, over the limit of {limit} for {model} on udioapi {TOO_LONG}"
                    )
                );
            }
            (limit, other) => panic!("{field} {len} {model}: expected {limit:?}, got {other:?}"),
        }
    }
}

#[test]
fn unknown_model() {
    let lines = problems("jobs.csv", "prompt,model\na,chirp-v9\n");
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with(
            "jobs.csv:2: model: unknown model \"chirp-v9\"; the provider lists: chirp-v4-0,"
        ),
        "{lines:?}"
    );
}

#[test]
fn bad_callback_url() {
    let toml = "[[job]]\nprompt = \"a\"\ncallback_url = \"ftp://example.com/hook\"\n";
    assert_eq!(
        problems("jobs.toml", toml),
        [
            "jobs.toml:1: callback_url: not an absolute http(s) URL: scheme \"ftp\" is not http or https"
        ]
    );
}

// ---- the file itself ----

#[test]
fn missing_file_or_directory_is_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    for path in [dir.path().join("missing.toml"), dir.path().to_path_buf()] {
        let err = load(&path).unwrap_err();
        assert!(matches!(err, ManifestError::Unreadable { .. }), "{err:?}");
        assert_eq!(err.exit_code().code(), 66);
        assert!(err.to_string().starts_with("cannot read "));
    }
}

#[test]
fn unknown_extension_is_invalid() {
    let err = load_files(&[("jobs.json", b"{}")]).1.unwrap_err();
    assert_eq!(err.exit_code().code(), 65);
    assert!(
        err.to_string()
            .contains("jobs.json: unknown manifest type: batchgen reads .toml and .csv files\n"),
        "{err}"
    );
}

#[test]
fn examples_load_without_diagnostics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for (name, at_least) in [("jobs.toml", 18), ("prompts.csv", 8), ("catalog.toml", 8)] {
        let m = load(&root.join(name)).unwrap_or_else(|e| panic!("{name}:\n{e}"));
        assert!(m.len() >= at_least, "{name}: {} jobs", m.len());
    }
}

// ---- large CSVs: read on one thread, checked on another ----

#[test]
fn problems_far_apart_in_a_large_csv_keep_their_lines_and_order() {
    let mut csv = String::from("id,prompt,custom_mode\n");
    for i in 0..3000 {
        match i {
            300 => csv.push_str("r300,\"a song,\nover two lines\",maybe\n"),
            1200 => csv.push_str("r5,a copy of row 5's key,\n"),
            2000 => csv.push_str("r2000,too,many,cells\n"),
            2998 => csv.push_str("bad id,\"x\",true\n"),
            _ => csv.push_str(&format!("r{i},\"song {i}, \"\"quoted\"\"\",\n")),
        }
    }
    csv.push_str("last,\"never closed\n");
    // Row i starts on line i + 2, and rows after 300 one line further down.
    // The last row is swallowed by its open quote: only the quote is shown.
    assert_eq!(
        problems("jobs.csv", &csv),
        [
            "jobs.csv:302: custom_mode: \"maybe\" is not a boolean (use true/false, yes/no or 1/0)",
            "jobs.csv:1203: id: duplicate key \"r5\" (first at line 7)",
            "jobs.csv:2003: has 4 fields, the header has 3",
            "jobs.csv:3001: id: contains ' '; ids may use only letters, digits, '-', '_' and '.' (they name files)",
            "jobs.csv:3001: title: required in custom mode but not set",
            "jobs.csv:3001: style: required in custom mode but not set",
            "jobs.csv:3003: unterminated quoted cell: this `\"` is never closed, so the rest of the file would be one cell; close it or double it (`\"\"`)",
        ]
    );
}

#[test]
fn a_large_valid_csv_gives_every_job_in_order() {
    let mut csv = String::from("prompt,make_instrumental\n");
    for i in 0..2000 {
        csv.push_str(&format!(
            "\"song {i}\nwith a second line\",{}\n",
            i % 2 == 0
        ));
    }
    let m = valid("jobs.csv", &csv);
    assert_eq!(m.len(), 2000);
    let jobs = m.collect_jobs().unwrap();
    assert_eq!(jobs.len(), 2000);
    for (i, job) in jobs.iter().enumerate() {
        assert_eq!(job.line, 2 * i as u64 + 2);
        assert_eq!(job.fields.make_instrumental, Some(i % 2 == 0));
    }
}
