//! The tests' own hygiene (issue 26): no test sleeps to synchronise. A test
//! waits for the event itself (a channel from a test server, a line the
//! binary prints, an inotify event, a child's exit) or runs on tokio's
//! paused clock. A sleep that is left is behaviour the test imitates (a
//! slow server, a client's polling, a kill at some moment), marked
//! `// simulates: …` on its line or the line before; the one exception is
//! the shared polling helper, `common/poll.rs`, which says why it polls.

use std::path::{Path, PathBuf};

/// The one file that may sleep without simulating anything.
const POLLING_HELPER: &str = "common/poll.rs";

/// What a sleep that imitates behaviour is marked with.
const MARK: &str = "// simulates:";

/// Every `.rs` file under `dir`, at any depth.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_test_sleeps_to_synchronise() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    // Spelled in two parts, so that this file does not hold them itself.
    let calls = [concat!("sleep", "("), concat!("sleep_until", "(")];
    let mut found = Vec::new();
    for file in &files {
        let name = file.strip_prefix(&root).unwrap();
        let name = name.to_string_lossy().replace('\\', "/");
        if name == POLLING_HELPER {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let mut before = "";
        for (i, line) in text.lines().enumerate() {
            let sleeps = calls.iter().any(|call| line.contains(call));
            if sleeps && !line.contains(MARK) && !before.contains(MARK) {
                found.push(format!("tests/it/{name}:{}: {}", i + 1, line.trim()));
            }
            before = line;
        }
    }
    assert!(
        files.iter().any(|f| f.ends_with(POLLING_HELPER)),
        "the polling helper is not where this test looks: {files:?}"
    );
    assert!(
        found.is_empty(),
        "a sleep that is not marked `{MARK} …` (wait for the event instead, \
         or say what the sleep imitates; the one polling helper is \
         tests/it/{POLLING_HELPER}):\n{}",
        found.join("\n")
    );
}
