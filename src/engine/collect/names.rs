//! File names for downloads: the `--name` template and its sanitising.
//!
//! A template is a file stem with placeholders: `{key}`, `{index}`,
//! `{clip_id}`, `{task_id}`, `{title_slug}`; the extension (`.mp3`, `.png`)
//! is added by the downloader. `/` in the template makes folders under the
//! download directory. Every value put in is reduced to one safe path
//! component, and every component of the result is checked again, so no
//! manifest key, title or API answer can name a file outside the directory
//! (`..`, absolute paths, hidden files, control characters).

use std::str::FromStr;

use crate::files::catalog::Row;

/// The default template: `DIR/<key>-<index>.mp3`.
pub const DEFAULT_NAME: &str = "{key}-{index}";

const PLACEHOLDERS: [&str; 5] = ["key", "index", "clip_id", "task_id", "title_slug"];
/// Longest path component written, in bytes (most filesystems allow 255,
/// and `.part` files add a few).
const MAX_COMPONENT: usize = 150;

/// A checked `--name` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTemplate(String);

impl Default for NameTemplate {
    fn default() -> NameTemplate {
        NameTemplate(DEFAULT_NAME.to_owned())
    }
}

impl FromStr for NameTemplate {
    type Err = String;

    fn from_str(s: &str) -> Result<NameTemplate, String> {
        let mut rest = s;
        let mut has_placeholder = false;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("invalid --name {s:?}: unclosed {{"))?;
            let name = &after[..close];
            if !PLACEHOLDERS.contains(&name) {
                return Err(format!(
                    "invalid --name {s:?}: unknown placeholder {{{name}}} (use {})",
                    PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
                ));
            }
            has_placeholder = true;
            rest = &after[close + 1..];
        }
        if !has_placeholder {
            return Err(format!(
                "invalid --name {s:?}: every clip would get the same name; use {{key}} and {{index}} or {{clip_id}}"
            ));
        }
        if s.starts_with('/') || s.split('/').any(|c| c == "..") {
            return Err(format!(
                "invalid --name {s:?}: must stay inside the download directory"
            ));
        }
        Ok(NameTemplate(s.to_owned()))
    }
}

impl NameTemplate {
    /// The file stem for a clip (its catalog row), relative to the
    /// download directory.
    pub fn render(&self, clip: &Row) -> String {
        let index = clip.clip_index.to_string();
        let slug = slug(&clip.title);
        let mut out = self.0.clone();
        for (name, value) in [
            ("key", clip.key.as_str()),
            ("index", index.as_str()),
            ("clip_id", clip.clip_id.as_str()),
            ("task_id", clip.task_id.as_str()),
            ("title_slug", slug.as_str()),
        ] {
            out = out.replace(&format!("{{{name}}}"), &component(value));
        }
        let parts: Vec<String> = out
            .split('/')
            .filter(|c| !c.is_empty())
            .map(component)
            .collect();
        if parts.is_empty() {
            return component(&format!("{}-{}", clip.key, clip.clip_index));
        }
        parts.join("/")
    }
}

/// One safe path component: no separators, no control or reserved
/// characters, no leading dot, not empty, at most 150 bytes (`MAX_COMPONENT`).
fn component(value: &str) -> String {
    let mut out: String = value
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    out = out.trim().to_owned();
    while out.starts_with('.') {
        out.replace_range(..1, "_");
    }
    if out.len() > MAX_COMPONENT {
        let mut end = MAX_COMPONENT;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// `"Neon Harbor (Remix)!"` → `neon-harbor-remix`; at most 60 characters.
fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.chars().count() >= 60 {
            break;
        }
    }
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() {
        "untitled".to_owned()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The second clip (index 2, id `c-9`) of job `key`, as the catalog
    /// records it.
    fn job(key: &str, title: &str) -> Row {
        let body = serde_json::json!([
            {"id": "c-1", "status": "complete"},
            {"id": "c-9", "status": "complete", "title": title},
        ]);
        let mut job = crate::files::catalog::JobRows::default();
        job.apply(
            key,
            "t1",
            &crate::api::feed::parse(body.to_string().as_bytes()).unwrap(),
        );
        job.rows[1].clone()
    }

    #[test]
    fn templates_render_and_nothing_escapes() {
        let t = NameTemplate::default();
        assert_eq!(t.render(&job("rain", "x")), "rain-2");
        let t: NameTemplate = "{title_slug}/{key}_{clip_id}".parse().unwrap();
        assert_eq!(
            t.render(&job("a", "Neon Harbor (Remix)!")),
            "neon-harbor-remix/a_c-9"
        );
        let t: NameTemplate = "{key}".parse().unwrap();
        for hostile in ["../../etc/passwd", "/abs", "..", ".hidden", "a\0b\nc", ""] {
            let name = t.render(&job(hostile, ""));
            assert!(!name.contains('/') && !name.starts_with('.'), "{name:?}");
            assert!(!name.contains('\0') && !name.is_empty(), "{name:?}");
        }
        for bad in ["{nope}", "{key", "fixed", "../{key}", "/x/{key}"] {
            assert!(bad.parse::<NameTemplate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("  Hello, World  "), "hello-world");
        assert_eq!(slug("!!!"), "untitled");
        assert_eq!(slug(&"a".repeat(100)).len(), 60);
    }
}
