//! Hostile manifests: malformed, huge, deeply nested, special files. Every
//! case must end in a clear diagnostic naming the file (and the line, where
//! there is one), exit 65 or 66, no panic and no request sent.
//!
//! One table of cases drives two layers: `manifest::load` in-process (the
//! exact diagnostics), and the real binary against one in-process sandbox
//! (exit code, stderr, zero requests). Then property tests throw random and
//! near-valid bytes at the loader. Big inputs are generated at test time.

use std::path::{MAIN_SEPARATOR, Path, PathBuf};

use batchgen::files::manifest::{MAX_SHOWN, ManifestError, load};
use batchgen::program::exit::ExitStatus as _;
use batchgen::sandbox::SandboxConfig;
use proptest::prelude::*;

use crate::common;

/// What a case must produce.
enum Expect {
    /// Loads with this many jobs; the run has nothing to do and exits 0.
    Valid(usize),
    /// Exit 65 with exactly these diagnostics, each given as the start of its
    /// display with the case's folder removed (`file:line: field: message`).
    Invalid(&'static [&'static str]),
    /// Exit 65 with this many diagnostics, the first starting like this.
    Many(usize, &'static str),
    /// Exit 66: `ManifestError::Unreadable` for this file (relative to the
    /// case's folder), which stderr names.
    Unreadable(&'static str),
}

struct Case {
    name: &'static str,
    /// Writes the case into an empty folder; returns the manifest to load.
    setup: Box<dyn Fn(&Path) -> PathBuf>,
    expect: Expect,
}

/// A case made of plain files; the first one is the manifest.
fn files(name: &'static str, files: &[(&'static str, Vec<u8>)], expect: Expect) -> Case {
    let files = files.to_vec();
    Case {
        name,
        setup: Box::new(move |dir| {
            for (file, bytes) in &files {
                let path = dir.join(file);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, bytes).unwrap();
            }
            dir.join(files[0].0)
        }),
        expect,
    }
}

fn one(name: &'static str, file: &'static str, bytes: impl Into<Vec<u8>>, expect: Expect) -> Case {
    files(name, &[(file, bytes.into())], expect)
}

fn custom(name: &'static str, expect: Expect, setup: impl Fn(&Path) -> PathBuf + 'static) -> Case {
    Case {
        name,
        setup: Box::new(setup),
        expect,
    }
}

/// 50 MB: far past every limit, small enough for a test.
const HUGE: usize = 50_000_000;

/// Rows in the all-duplicates case.
const DUPLICATES: usize = 100_000;

fn cases() -> Vec<Case> {
    use Expect::*;
    let nested = |open: &str, inner: &str, close: &str| {
        format!(
            "x = {}{inner}{}\n",
            open.repeat(10_000),
            close.repeat(10_000)
        )
    };
    let mut cases = vec![
        // ---- empty and blank files ----
        // Nothing to do is not an error: a TOML manifest may hold only settings.
        one("empty_toml", "jobs.toml", "", Valid(0)),
        // A CSV needs a header naming its columns; zero bytes has none.
        one(
            "empty_csv",
            "jobs.csv",
            "",
            Invalid(&["jobs.csv:1: empty file: expected a header row"]),
        ),
        one("header_only_csv", "jobs.csv", "id,prompt\r\n", Valid(0)),
        // Whitespace is blank TOML (valid, no jobs) ...
        one("whitespace_toml", "jobs.toml", "  \n\t\n  ", Valid(0)),
        // ... but a CSV "header" of spaces names no column: an error, not an
        // empty manifest, since the user meant to give rows.
        one(
            "whitespace_csv",
            "jobs.csv",
            "   \n\t\n  ",
            Invalid(&["jobs.csv:1: column 1 has no name"]),
        ),
        // ---- encodings ----
        // BOM + CRLF: accepted, and lines still count from the real first line.
        one(
            "bom_crlf_toml",
            "jobs.toml",
            "\u{feff}[[job]]\r\nprompt = \"a\"\r\n\r\n[[job]]\r\nprompt = 5\r\n",
            Invalid(&["jobs.toml:4: prompt: expected a string, found integer 5"]),
        ),
        // A raw NUL byte is not allowed in a TOML string: a syntax error.
        one(
            "nul_byte_toml",
            "jobs.toml",
            "[[job]]\nprompt = \"a\0b\"\n",
            Invalid(&["jobs.toml:2: invalid TOML: "]),
        ),
        // An escaped one parses, but no prompt means it: a corrupt export.
        one(
            "nul_escape_toml",
            "jobs.toml",
            "[[job]]\nprompt = \"a\\u0000b\"\n",
            Invalid(&[
                "jobs.toml:1: prompt: contains the control character '\\0' (character 2); remove it",
            ]),
        ),
        one(
            "nul_byte_csv",
            "jobs.csv",
            "prompt,title\n\"a\0b\",\nok,\n",
            Invalid(&[
                "jobs.csv:2: prompt: contains the control character '\\0' (character 2); remove it",
            ]),
        ),
        // A terminal colour code pasted into a title.
        one(
            "escape_in_title",
            "jobs.toml",
            "[[job]]\ncustom_mode = true\nstyle = \"s\"\nprompt = \"p\"\ntitle = \"\\u001b[31mRed\"\n",
            Invalid(&[
                "jobs.toml:1: title: contains the control character '\\u{1b}' (character 1); remove it",
            ]),
        ),
        one(
            "invalid_utf8_header",
            "jobs.csv",
            b"prompt,ti\xfftle\na,b\n".to_vec(),
            Invalid(&["jobs.csv:1: column 2: the name is not valid UTF-8"]),
        ),
        // Excel's "Unicode text": UTF-16 with a BOM. Not UTF-8 at all.
        one(
            "utf16_csv",
            "jobs.csv",
            b"\xff\xfep\0r\0o\0m\0p\0t\0\n\0a\0\n\0".to_vec(),
            Invalid(&["jobs.csv:1: column 1: the name is not valid UTF-8"]),
        ),
        // ---- nesting: the toml crate has a recursion limit, so no stack
        // overflow and no guard of our own; the limit is its diagnostic. ----
        one(
            "deep_arrays",
            "jobs.toml",
            nested("[", "", "]"),
            Invalid(&["jobs.toml:1: invalid TOML: "]),
        ),
        one(
            "deep_inline_tables",
            "jobs.toml",
            nested("{a=", "1", "}"),
            Invalid(&["jobs.toml:1: invalid TOML: "]),
        ),
        one(
            "deep_dotted_header",
            "jobs.toml",
            format!("[{}]\n", vec!["a"; 10_000].join(".")),
            Invalid(&["jobs.toml:1: invalid TOML: "]),
        ),
        // ---- wrong table types ----
        one(
            "job_is_a_string",
            "jobs.toml",
            "job = \"x\"\n",
            Invalid(&["jobs.toml:1: job: expected [[job]] tables, found string \"x\""]),
        ),
        one(
            "jobs_are_scalars",
            "jobs.toml",
            "job = [1, \"a\"]\n",
            Invalid(&[
                "jobs.toml:1: job: each job must be a table, found integer 1",
                "jobs.toml:1: job: each job must be a table, found string \"a\"",
            ]),
        ),
        one(
            "run_array_of_tables",
            "jobs.toml",
            "[[run]]\nrate = \"1/s\"\n",
            Invalid(&["jobs.toml:1: run: expected a [run] table, found array"]),
        ),
        one(
            "run_integer_defaults_empty_array",
            "jobs.toml",
            "run = 5\ndefaults = []\n[[job]]\nprompt = \"a\"\n",
            Invalid(&[
                "jobs.toml:1: run: expected a [run] table, found integer 5",
                "jobs.toml:2: defaults: expected a [defaults] table, found array",
            ]),
        ),
        one(
            "run_table_twice",
            "jobs.toml",
            "[run]\nrate = \"1/s\"\n\n[run]\nburst = 2\n",
            Invalid(&["jobs.toml:4: invalid TOML: "]),
        ),
        // Only the value's type is named: a datetime is not text.
        one(
            "datetime_for_string",
            "jobs.toml",
            "[[job]]\nprompt = 1979-05-27T07:32:00Z\n",
            Invalid(&["jobs.toml:1: prompt: expected a string, found datetime"]),
        ),
        // TOML is typed: 1 is not a boolean there (CSV cells are lenient).
        one(
            "integer_for_boolean",
            "jobs.toml",
            "[[job]]\nprompt = \"a\"\ncustom_mode = 1\n",
            Invalid(&[
                "jobs.toml:1: custom_mode: expected true or false (without quotes), found integer 1",
            ]),
        ),
        // ---- CSV cells and columns ----
        one(
            "mixed_case_booleans",
            "jobs.csv",
            "prompt,custom_mode,make_instrumental\na,FALSE,nO\nb,no,Yes\nc,0,TRUE\n",
            Valid(3),
        ),
        one(
            "boolean_maybe",
            "jobs.csv",
            "prompt,make_instrumental\na,YES\nb,Maybe\n",
            Invalid(&["jobs.csv:3: make_instrumental: \"Maybe\" is not a boolean"]),
        ),
        // The name is shown escaped so the diagnostic stays one line.
        one(
            "newline_in_header_cell",
            "jobs.csv",
            "\"pro\nmpt\",title\na,b\n",
            Invalid(&["jobs.csv:1: \"pro\\nmpt\": unknown column; did you mean \"prompt\"?"]),
        ),
        // Names are trimmed, so these are the same column.
        one(
            "duplicate_column_after_trim",
            "jobs.csv",
            "prompt, prompt ,title\na,b,c\n",
            Invalid(&["jobs.csv:1: prompt: duplicate column (also column 1)"]),
        ),
        // Names are case-sensitive, as in the API's JSON: unknown, with a hint.
        one(
            "column_case",
            "jobs.csv",
            "Prompt,TITLE\na,b\n",
            Invalid(&[
                "jobs.csv:1: Prompt: unknown column; did you mean \"prompt\"?",
                "jobs.csv:1: TITLE: unknown column; did you mean \"title\"?",
            ]),
        ),
        // A megabyte column name: no slow typo search, shown quoted and cut
        // short (60 characters).
        one(
            "huge_column_name",
            "jobs.csv",
            format!("{},prompt\na,b\n", "q".repeat(1_000_000)),
            Invalid(&[
                "jobs.csv:1: \"qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq…\": unknown column",
            ]),
        ),
        // The csv crate reads an unclosed quote as a cell to the end of the
        // file without complaint: reported, not a confusing "prompt missing".
        one(
            "lone_quote_at_end",
            "jobs.csv",
            "prompt\na\n\"",
            Invalid(&["jobs.csv:3: unterminated quoted cell"]),
        ),
        // Worse, it would swallow every later row into `tags` and pass as a
        // one-job manifest. The rows before it are still checked.
        one(
            "unclosed_quote_swallows_rows",
            "jobs.csv",
            "prompt,tags\n,x\nb,\"oops\nc,y\nd,z\n",
            Invalid(&[
                "jobs.csv:2: prompt: not set: in description mode a job needs prompt or gpt_description_prompt",
                "jobs.csv:3: unterminated quoted cell",
            ]),
        ),
        // `12" vinyl`: a quote inside an unquoted cell is text.
        one(
            "quote_inside_unquoted_cell",
            "jobs.csv",
            "prompt,tags\na 12\" vinyl sound,\"x\"\"y\"\n",
            Valid(1),
        ),
        one(
            "trailing_comma_and_short_row",
            "jobs.csv",
            "prompt,title\na,b,\nc\n",
            Invalid(&[
                "jobs.csv:2: has 3 fields, the header has 2",
                "jobs.csv:3: has 1 field, the header has 2",
            ]),
        ),
        // ---- field values ----
        one(
            "id_path_traversal",
            "jobs.toml",
            "[[job]]\nid = \"../../etc/passwd\"\nprompt = \"a\"\n",
            Invalid(&["jobs.toml:1: id: contains '/'"]),
        ),
        one(
            "id_with_spaces",
            "jobs.toml",
            "[[job]]\nid = \"my song\"\nprompt = \"a\"\n",
            Invalid(&["jobs.toml:1: id: contains ' '"]),
        ),
        one(
            "id_10000_characters",
            "jobs.csv",
            format!("id,prompt\n{},a\n", "i".repeat(10_000)),
            Invalid(&["jobs.csv:2: id: is longer than 128 characters"]),
        ),
        one(
            "callback_javascript",
            "jobs.csv",
            "prompt,callback_url\na,javascript:alert(1)\n",
            Invalid(&[
                "jobs.csv:2: callback_url: not an absolute http(s) URL: scheme \"javascript\" is not http or https",
            ]),
        ),
        // ---- csv = "..." ----
        one(
            "csv_escapes_through_subfolder",
            "jobs.toml",
            "csv = \"data/../../x.csv\"\n",
            Invalid(&["jobs.toml:1: csv: \"data/../../x.csv\" leaves this manifest's folder"]),
        ),
        one(
            "csv_points_to_itself",
            "jobs.toml",
            "csv = \"jobs.toml\"\n",
            Invalid(&["jobs.toml:1: csv: \"jobs.toml\" is not a .csv file"]),
        ),
        files(
            "csv_points_to_toml",
            &[
                ("jobs.toml", b"csv = \"other.toml\"\n".to_vec()),
                ("other.toml", b"[[job]]\nprompt = \"a\"\n".to_vec()),
            ],
            Invalid(&["jobs.toml:1: csv: \"other.toml\" is not a .csv file"]),
        ),
        one(
            "csv_missing",
            "jobs.toml",
            "csv = \"rows.csv\"\n",
            Unreadable("rows.csv"),
        ),
        custom("csv_is_a_directory", Unreadable("rows.csv"), |dir| {
            std::fs::create_dir(dir.join("rows.csv")).unwrap();
            common::write(dir, "jobs.toml", "csv = \"rows.csv\"\n")
        }),
        // ---- the manifest file itself ----
        custom("manifest_is_a_directory", Unreadable("jobs.toml"), |dir| {
            std::fs::create_dir(dir.join("jobs.toml")).unwrap();
            dir.join("jobs.toml")
        }),
        one(
            "no_extension",
            "jobs",
            "[[job]]\nprompt = \"a\"\n",
            Invalid(&["jobs: unknown manifest type"]),
        ),
        one(
            "json_extension",
            "jobs.json",
            "{\"job\": []}",
            Invalid(&["jobs.json: unknown manifest type"]),
        ),
        // ---- size ----
        custom(
            "huge_prompt_csv",
            // Past the record cap (1 MiB) reading stops: a diagnostic in
            // bounded memory, naming the column the row was in.
            Invalid(&["jobs.csv:2: prompt: this row is over 1048576 bytes"]),
            |dir| {
                let mut text = b"id,prompt\nbig,".to_vec();
                text.resize(text.len() + HUGE, b'x');
                text.push(b'\n');
                std::fs::write(dir.join("jobs.csv"), text).unwrap();
                dir.join("jobs.csv")
            },
        ),
        custom(
            "huge_prompt_toml",
            Invalid(&["jobs.toml:1: prompt: is 50000000 characters, over the limit of 3000"]),
            |dir| {
                let mut text = b"[[job]]\nprompt = \"".to_vec();
                text.resize(text.len() + HUGE, b'x');
                text.extend_from_slice(b"\"\n");
                std::fs::write(dir.join("jobs.toml"), text).unwrap();
                dir.join("jobs.toml")
            },
        ),
        // Every row but the first is a duplicate: all reported (exit 65), but
        // the display stops at MAX_SHOWN lines; see `duplicates_are_capped`.
        custom(
            "100k_duplicates",
            Many(DUPLICATES - 1, "jobs.csv:3: exact duplicate of line 2"),
            |dir| {
                let text = format!("prompt\n{}", "same song\n".repeat(DUPLICATES));
                common::write(dir, "jobs.csv", &text)
            },
        ),
    ];
    #[cfg(unix)]
    cases.extend(unix_cases());
    cases
}

/// Special files: symlinks and FIFOs.
#[cfg(unix)]
fn unix_cases() -> Vec<Case> {
    use std::os::unix::fs::symlink;
    vec![
        custom("symlink_loop", Expect::Unreadable("jobs.toml"), |dir| {
            symlink(dir.join("a.toml"), dir.join("jobs.toml")).unwrap();
            symlink(dir.join("jobs.toml"), dir.join("a.toml")).unwrap();
            dir.join("jobs.toml")
        }),
        // Opening a FIFO blocks until something writes to it: refused up
        // front as not a regular file, rather than hanging the run.
        custom("fifo", Expect::Unreadable("jobs.csv"), |dir| {
            let path = dir.join("jobs.csv");
            let made = std::process::Command::new("mkfifo")
                .arg(&path)
                .status()
                .unwrap();
            assert!(made.success());
            path
        }),
        // Devices too: /dev/null would pass as an empty manifest, /dev/zero
        // would fill memory. A manifest is a file.
        custom("dev_null", Expect::Unreadable("jobs.toml"), |dir| {
            symlink("/dev/null", dir.join("jobs.toml")).unwrap();
            dir.join("jobs.toml")
        }),
        custom("dev_zero", Expect::Unreadable("jobs.csv"), |dir| {
            symlink("/dev/zero", dir.join("jobs.csv")).unwrap();
            dir.join("jobs.csv")
        }),
    ]
}

/// The case's diagnostics as displayed, with its folder removed.
fn shown(dir: &Path, diagnostics: &[batchgen::files::manifest::Diagnostic]) -> Vec<String> {
    let prefix = format!("{}{MAIN_SEPARATOR}", dir.display());
    diagnostics
        .iter()
        .map(|d| d.to_string().replacen(&prefix, "", 1))
        .collect()
}

/// Layer (a): `manifest::load` returns (a case that reads forever, such
/// as /dev/zero, fails here rather than hangs) with the expected error.
#[test]
fn every_hostile_case_loads_to_the_expected_error() {
    let root = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    // The loads run on one thread of their own, so a load that never
    // returns is a failure and not a hang; how long one takes asserts
    // nothing.
    let (ask, asked) = std::sync::mpsc::channel::<PathBuf>();
    let (done, loaded) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for path in asked {
            if done.send(load(&path)).is_err() {
                break;
            }
        }
    });
    for case in cases() {
        let dir = root.path().join(case.name);
        std::fs::create_dir(&dir).unwrap();
        let manifest = (case.setup)(&dir);
        ask.send(manifest.clone()).unwrap();
        let Ok(result) = loaded.recv_timeout(common::wait::WAIT) else {
            // The loader is stuck in this case: the rest cannot run.
            failures.push(format!("{}: load never returned", case.name));
            break;
        };
        let problem = match (&case.expect, result) {
            (Expect::Valid(n), Ok(m)) if m.len() == *n => None,
            (Expect::Invalid(expected), Err(ManifestError::Invalid { diagnostics })) => {
                let got = shown(&dir, &diagnostics);
                let matches = got.len() == expected.len()
                    && expected
                        .iter()
                        .zip(&got)
                        .all(|(want, got)| got.starts_with(want));
                let one_line = got.iter().all(|d| !d.contains('\n'));
                (!(matches && one_line)).then(|| format!("expected {expected:#?}\ngot {got:#?}"))
            }
            (Expect::Many(n, first), Err(ManifestError::Invalid { diagnostics })) => {
                let got = shown(&dir, &diagnostics);
                (got.len() != *n || !got[0].starts_with(first)).then(|| {
                    format!(
                        "expected {n}, first {first:?}; got {}: {:?}",
                        got.len(),
                        got[0]
                    )
                })
            }
            (Expect::Unreadable(file), Err(e @ ManifestError::Unreadable { .. })) => {
                let ManifestError::Unreadable { path, .. } = &e else {
                    unreachable!()
                };
                (path != &dir.join(file) || e.exit_code().code() != 66)
                    .then(|| format!("expected {file} unreadable (66), got {e}"))
            }
            (_, other) => Some(format!("got {other:?}")),
        };
        if let Some(problem) = problem {
            failures.push(format!("{}: {problem}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn there_are_at_least_30_cases() {
    assert!(cases().len() >= 30);
}

/// 100,000 duplicate rows: every one is counted, a thousand are printed.
#[test]
fn duplicates_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("prompt\n{}", "same song\n".repeat(DUPLICATES));
    let path = common::write(dir.path(), "jobs.csv", &text);
    let err = load(&path).unwrap_err();
    let ManifestError::Invalid { diagnostics } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(diagnostics.len(), DUPLICATES - 1);
    let display = err.to_string();
    let lines: Vec<_> = display.lines().collect();
    assert_eq!(
        lines.len(),
        MAX_SHOWN + 2,
        "shown, `... and N more`, summary"
    );
    assert_eq!(
        lines[MAX_SHOWN],
        format!("... and {} more", DUPLICATES - 1 - MAX_SHOWN)
    );
    assert!(lines[MAX_SHOWN + 1].ends_with(&format!(
        "jobs.csv: {} problems in {} rows; nothing was sent",
        DUPLICATES - 1,
        DUPLICATES - 1
    )));
}

/// Layer (b): the real binary, against one sandbox, for every case.
#[tokio::test(flavor = "multi_thread")]
async fn the_binary_sends_nothing_for_any_hostile_case() {
    let sandbox = common::sandbox(SandboxConfig::default()).await;
    let root = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for case in cases() {
        let dir = root.path().join(case.name);
        std::fs::create_dir(&dir).unwrap();
        let manifest = (case.setup)(&dir);
        let out = dir.join("out.results.csv");
        let path = manifest.to_str().unwrap();
        let name = manifest.file_name().unwrap().to_str().unwrap();
        // A valid case with jobs is only validated: running it would send them.
        let (output, want, says) = match case.expect {
            Expect::Valid(0) => {
                let args = [path, "--out", out.to_str().unwrap()];
                (common::run_bin(&sandbox, &args).await, 0, "nothing to do")
            }
            Expect::Valid(_) => {
                let args = vec!["validate".to_owned(), path.to_owned()];
                (common::run_with_env(args, vec![]).await, 0, "all valid")
            }
            Expect::Invalid(_) | Expect::Many(..) => {
                (common::run_bin(&sandbox, &[path]).await, 65, name)
            }
            Expect::Unreadable(file) => (common::run_bin(&sandbox, &[path]).await, 66, file),
        };
        let stderr = common::stderr(&output);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let code = output.status.code();
        let mut wrong = Vec::new();
        if code != Some(want) {
            wrong.push(format!("exit {code:?}, expected {want}"));
        }
        if !stderr.contains(says) && !stdout.contains(says) {
            wrong.push(format!("the output does not say {says:?}"));
        }
        // Diagnostics, `... and N more`, the summary and a hint at most.
        let lines = stderr.lines().count();
        if lines > MAX_SHOWN + 3 {
            wrong.push(format!("{lines} lines of stderr"));
        }
        if stderr.contains("panicked") || stdout.contains("panicked") {
            wrong.push("panicked".into());
        }
        let requests = sandbox.stats().requests;
        if requests != 0 {
            wrong.push(format!("{requests} requests sent"));
        }
        if !wrong.is_empty() {
            let head: String = stderr.chars().take(2000).collect();
            failures.push(format!("{}: {}\n{head}", case.name, wrong.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(sandbox.stats().requests, 0);
}

// ---- property tests ----

/// Loads `bytes` saved as `name`; checks the loader's promises and returns
/// whether it loaded.
fn check_load(name: &str, bytes: &[u8]) -> Result<bool, TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    match load(&path) {
        Ok(_) => Ok(true),
        // Only the CSV a TOML manifest names can be missing here.
        Err(ManifestError::Unreadable { path: p, .. }) => {
            prop_assert!(name.ends_with(".toml") && p != path, "{p:?}");
            Ok(false)
        }
        Err(ManifestError::Invalid { diagnostics }) => {
            prop_assert!(!diagnostics.is_empty());
            for d in &diagnostics {
                let shown = d.to_string();
                let content = std::fs::read(&d.file).unwrap_or_default();
                let lines = content.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
                prop_assert!(shown.starts_with(&d.file.display().to_string()), "{shown}");
                prop_assert!(d.line <= lines, "{shown}: the file has {lines} lines");
                prop_assert!(!shown.contains('\n'), "{shown:?} spans lines");
            }
            Ok(false)
        }
    }
}

fn example(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name),
    )
    .unwrap()
}

/// Bytes that matter to CSV or TOML, and some that should not be there.
const SPICE: &[&[u8]] = &[
    b"\"",
    b",",
    b"\n",
    b"\r\n",
    b"[",
    b"]",
    b"[[",
    b"=",
    b"{",
    b"}",
    b"#",
    b"'",
    b"\"\"\"",
    b"\\",
    b"\0",
    b"\xef\xbb\xbf",
    b"\xff",
    b"true",
    b"1",
    b"job",
    b"prompt",
    b" ",
];

/// Edits to a near-valid file: insert spice, delete a span, or repeat one.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, usize),
    Delete(usize, usize),
    Repeat(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0..SPICE.len()).prop_map(|(at, s)| Edit::Insert(at, s)),
        (any::<usize>(), 1..40usize).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), 1..200usize).prop_map(|(at, n)| Edit::Repeat(at, n)),
    ]
}

fn mutate(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let len = bytes.len();
        match *edit {
            Edit::Insert(at, s) => {
                let at = at % (len + 1);
                bytes.splice(at..at, SPICE[s].iter().copied());
            }
            Edit::Delete(at, n) if len > 0 => {
                let at = at % len;
                bytes.drain(at..(at + n).min(len));
            }
            Edit::Repeat(at, n) if len > 0 => {
                let at = at % len;
                let span = bytes[at..(at + n).min(len)].to_vec();
                bytes.splice(at..at, span);
            }
            _ => {}
        }
    }
    bytes
}

fn config() -> ProptestConfig {
    // PROPTEST_CASES=200000 for a long run; a few seconds by default.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        toml in any::<bool>(),
    ) {
        check_load(if toml { "jobs.toml" } else { "jobs.csv" }, &bytes)?;
    }

    #[test]
    fn mutated_csv_example_never_panics(edits in proptest::collection::vec(edit(), 1..8)) {
        check_load("jobs.csv", &mutate(example("prompts.csv"), &edits))?;
    }

    #[test]
    fn mutated_toml_example_never_panics(edits in proptest::collection::vec(edit(), 1..8)) {
        check_load("jobs.toml", &mutate(example("jobs.toml"), &edits))?;
    }

    /// A TOML manifest naming a mutated CSV: diagnostics point into the CSV.
    #[test]
    fn mutated_csv_behind_toml_never_panics(edits in proptest::collection::vec(edit(), 1..8)) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("prompts.csv"), mutate(example("prompts.csv"), &edits)).unwrap();
        let manifest = dir.path().join("catalog.toml");
        std::fs::write(&manifest, example("catalog.toml")).unwrap();
        if let Err(ManifestError::Invalid { diagnostics }) = load(&manifest) {
            for d in &diagnostics {
                prop_assert_eq!(&d.file, &dir.path().join("prompts.csv"), "{}", d);
                prop_assert!(!d.to_string().contains('\n'), "{}", d);
            }
        }
    }
}
