//! Where a clip's files are, as seen from the page (and the playlist)
//! beside the catalog.
//!
//! The catalog's `file` and `image_file` are paths as the collect run was
//! given them: relative to the folder it ran in, or absolute. The page is
//! opened from its own folder, so each path is found on disk (as given,
//! from the current folder; else from the catalog's folder, where a
//! collect usually runs) and rewritten relative to the page's folder. A
//! file that is not there is no path at all: the page falls back to the
//! server's URL, which is kept only when it is `http` or `https` (a
//! `javascript:` or `file:` URL from a server is never a link).

use std::path::{Component, Path, PathBuf};

/// Finds the files the catalog names, relative to one folder.
#[derive(Debug, Clone)]
pub struct Locator {
    /// The folder the page and playlist are in, canonical.
    home: PathBuf,
    /// The folder this process runs in.
    cwd: Option<PathBuf>,
}

impl Locator {
    /// `home` must be canonical (the page's folder, symlinks resolved).
    pub fn new(home: PathBuf) -> Locator {
        Locator {
            home,
            cwd: std::env::current_dir().ok(),
        }
    }

    /// The regular file `given` names, relative to the page's folder; `None`
    /// when it is empty or not there.
    pub fn find(&self, given: &str) -> Option<PathBuf> {
        if given.is_empty() {
            return None;
        }
        let given = Path::new(given);
        let candidates = if given.is_absolute() {
            vec![given.to_owned()]
        } else {
            let mut c: Vec<PathBuf> = self.cwd.iter().map(|d| d.join(given)).collect();
            c.push(self.home.join(given));
            c
        };
        let found = candidates
            .into_iter()
            .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))?;
        let real = std::fs::canonicalize(found).ok()?;
        Some(relative(&self.home, &real))
    }
}

/// `target` as a path from the folder `from`; both absolute and
/// normalised (canonical).
pub fn relative(from: &Path, target: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = target.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for part in &to[common..] {
        out.push(part.as_os_str());
    }
    out
}

/// A relative path as a URL reference: each byte outside the unreserved
/// set percent-encoded, `/` between the parts. A name with `#`, `?`, `%`
/// or a space stays one path.
pub fn href(path: &Path) -> String {
    let mut out = String::new();
    for (i, part) in path.components().enumerate() {
        if i > 0 {
            out.push('/');
        }
        for &b in part.as_os_str().as_encoded_bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// A server's URL, kept only when it is an absolute `http`/`https` URL;
/// returned as the `url` crate writes it (spaces and quotes encoded).
pub fn remote(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    matches!(parsed.scheme(), "http" | "https").then(|| parsed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_only_as_far_as_needed() {
        let rel = |a: &str, b: &str| relative(Path::new(a), Path::new(b));
        assert_eq!(
            rel("/w/run", "/w/run/songs/a.mp3"),
            Path::new("songs/a.mp3")
        );
        assert_eq!(
            rel("/w/run/out", "/w/songs/a.mp3"),
            Path::new("../../songs/a.mp3")
        );
        assert_eq!(rel("/", "/x/a.mp3"), Path::new("x/a.mp3"));
    }

    #[test]
    fn hrefs_encode_everything_a_url_would_read_otherwise() {
        assert_eq!(
            href(Path::new("../songs/rain #1?/50% ü\".mp3")),
            "../songs/rain%20%231%3F/50%25%20%C3%BC%22.mp3"
        );
    }

    #[test]
    fn only_web_urls_are_kept() {
        assert_eq!(
            remote("https://cdn.example/a b.mp3").as_deref(),
            Some("https://cdn.example/a%20b.mp3")
        );
        for bad in [
            "javascript:alert(1)",
            "file:///etc/passwd",
            "data:text/html,x",
            "songs/a.mp3",
            "",
        ] {
            assert_eq!(remote(bad), None, "{bad}");
        }
    }

    #[test]
    fn files_are_found_from_the_catalog_folder_and_made_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let home = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(home.join("songs")).unwrap();
        std::fs::write(home.join("songs/a.mp3"), b"x").unwrap();
        let locator = Locator::new(home.join("songs").parent().unwrap().to_owned());
        assert_eq!(
            locator.find("songs/a.mp3"),
            Some(PathBuf::from("songs/a.mp3"))
        );
        let absolute = home.join("songs/a.mp3");
        assert_eq!(
            locator.find(absolute.to_str().unwrap()),
            Some(PathBuf::from("songs/a.mp3"))
        );
        assert_eq!(locator.find("songs/missing.mp3"), None);
        assert_eq!(locator.find("songs"), None, "a folder is not a file");
        assert_eq!(locator.find(""), None);
    }
}
