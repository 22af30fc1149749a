//! Shared by the fuzz targets: write the input to a file with the right
//! extension in a fresh folder, load it, and check what every caller relies
//! on: no panic (libFuzzer reports one as a crash), and every diagnostic is
//! one line that starts with its file and points at a line the file has.

use std::path::Path;

use batchgen::manifest::{ManifestError, load};

pub fn check(data: &[u8], name: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, data).expect("write input");
    match load(&path) {
        Ok(_) | Err(ManifestError::Unreadable { .. }) => {}
        Err(ManifestError::Invalid { diagnostics }) => {
            assert!(!diagnostics.is_empty(), "Invalid with no diagnostics");
            for d in &diagnostics {
                let shown = d.to_string();
                assert!(
                    shown.starts_with(&d.file.display().to_string()),
                    "{shown:?} does not start with its file"
                );
                assert!(!shown.contains('\n'), "{shown:?} spans lines");
                assert!(
                    d.line <= lines(&d.file),
                    "{shown:?} points past the end of the file"
                );
            }
        }
    }
}

/// Lines in a file: a last line without a newline still counts.
fn lines(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap_or_default();
    bytes.iter().filter(|&&b| b == b'\n').count() as u64 + 1
}
