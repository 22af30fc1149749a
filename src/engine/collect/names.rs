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
    /// download directory. Each folder and the file name is at most
    /// 150 bytes (`MAX_COMPONENT`): a long title is cut first, and never what
    /// tells clips apart (see `fit`).
    pub fn render(&self, clip: &Row) -> String {
        let index = clip.clip_index.to_string();
        let values = [
            ("key", safe(&clip.key)),
            ("index", index),
            ("clip_id", safe(&clip.clip_id)),
            ("task_id", safe(&clip.task_id)),
            ("title_slug", safe(&slug(&clip.title))),
        ];
        let parts: Vec<String> = self
            .0
            .split('/')
            .filter(|c| !c.is_empty())
            .map(|part| component(&fit(part, &values)))
            .collect();
        if parts.is_empty() {
            return component(&format!("{}-{}", clip.key, clip.clip_index));
        }
        parts.join("/")
    }

    /// The stem for a clip whose name from [`NameTemplate::render`] is held
    /// by another clip (an earlier task of its job, or a template without
    /// `{index}`): the same, with a suffix from the clip's own task and ID,
    /// so it is the same on every run and differs from its neighbours'.
    pub fn render_distinct(&self, clip: &Row) -> String {
        let stem = self.render(clip);
        let suffix = format!(
            "-{:08x}",
            crate::job::key_hash(format!("{}/{}", clip.task_id, clip.clip_id).as_bytes()) as u32
        );
        let (folder, name) = match stem.rsplit_once('/') {
            Some((folder, name)) => (Some(folder), name),
            None => (None, stem.as_str()),
        };
        let name = format!("{}{suffix}", cut(name, MAX_COMPONENT - suffix.len()));
        match folder {
            Some(folder) => format!("{folder}/{name}"),
            None => name,
        }
    }
}

/// One component of the template (`part`) with its placeholders filled
/// from `values`, at most [`MAX_COMPONENT`] bytes. The title is free text
/// and the first to be cut; the key, index, clip and task IDs are what
/// tell clips apart and stay whole. Only when they alone are too long is
/// the whole cut, and a short hash of all of it keeps it distinct.
fn fit(part: &str, values: &[(&str, String)]) -> String {
    let fill = |title: &str| {
        values.iter().fold(part.to_owned(), |out, (name, value)| {
            let value = if *name == "title_slug" { title } else { value };
            out.replace(&format!("{{{name}}}"), value)
        })
    };
    let title = values
        .iter()
        .find(|(name, _)| *name == "title_slug")
        .map_or("", |(_, v)| v.as_str());
    let full = fill(title);
    if full.len() <= MAX_COMPONENT {
        return full;
    }
    let titles = part.matches("{title_slug}").count();
    if titles > 0 {
        let over = (full.len() - MAX_COMPONENT).div_ceil(titles);
        if over < title.len() {
            let shorter = cut(title, title.len() - over).trim_end_matches('-');
            let out = fill(shorter);
            if out.len() <= MAX_COMPONENT && !shorter.is_empty() {
                return out;
            }
        }
    }
    let hash = format!("-{:08x}", crate::job::key_hash(full.as_bytes()) as u32);
    format!("{}{hash}", cut(&full, MAX_COMPONENT - hash.len()))
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A value as it may appear in a path component: no separators, no
/// control or reserved characters (not cut: [`fit`] decides what is).
fn safe(value: &str) -> String {
    value
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect()
}

/// One safe path component: no separators, no control or reserved
/// characters, no leading dot, not empty, at most 150 bytes (`MAX_COMPONENT`).
fn component(value: &str) -> String {
    let mut out = safe(value).trim().to_owned();
    while out.starts_with('.') {
        out.replace_range(..1, "_");
    }
    out = cut(&out, MAX_COMPONENT).to_owned();
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

    /// Every template the README shows, and more, over long titles and keys
    /// in every script: each name fits; a template with `{index}` or
    /// `{clip_id}` names a task's clips apart, cut or not; and the names
    /// with a clip's own suffix differ for every clip of every task.
    #[test]
    fn cut_names_keep_what_tells_clips_apart() {
        let templates = [
            DEFAULT_NAME,
            "{key}/{title_slug}-{index}",
            "{title_slug}/{key}_{clip_id}",
            "{title_slug}-{index}",
            "{key}-{title_slug}-{index}",
            "{title_slug}{title_slug}-{clip_id}",
            "{key}_{task_id}_{index}",
        ];
        let scripts = [
            "雨の日の窓辺で聴く静かなピアノと遠い街の灯りと眠れない夜の物語そして朝が来るまでの長い時間を歌う",
            "🎹🌧️🌃✨🎶🎧🎸🥁🎺🎻🪕🎷🪗🎼🎤🔊📻🎙️🎚️🎛️🎹🌧️🌃✨🎶🎧🎸🥁🎺🎻🪕🎷🪗🎼🎤🔊📻🎙️🎚️🎛️",
            "שיר ארוך מאוד על גשם בחלון ועל פסנתר שקט ועל אורות רחוקים של העיר בלילה שאין בו שינה",
            "e\u{301}e\u{301}e\u{301}a\u{308}o\u{308}u\u{308}n\u{303}".repeat(12).as_str(),
            &"a-very-long-english-title-".repeat(10),
        ]
        .map(str::to_owned);
        let long_key = "k".repeat(400);
        for template in templates {
            let t: NameTemplate = template.parse().unwrap();
            for title in &scripts {
                for key in ["rain", long_key.as_str()] {
                    let mut names = std::collections::BTreeSet::new();
                    for (task, clip) in [("t1", 1), ("t1", 2), ("t2", 1), ("t2", 2)] {
                        let mut row = job(key, title);
                        row.task_id = task.into();
                        row.clip_index = clip;
                        row.clip_id = format!("{task}-c{clip}");
                        let name = t.render(&row);
                        for part in name.split('/') {
                            assert!(part.len() <= MAX_COMPONENT, "{template}: {part:?}");
                            assert!(!part.is_empty() && !part.starts_with('.'), "{name:?}");
                        }
                        let distinct = t.render_distinct(&row);
                        assert!(distinct.split('/').all(|p| p.len() <= MAX_COMPONENT));
                        assert_ne!(distinct, name, "the suffix changes the name");
                        names.insert(distinct);
                    }
                    assert_eq!(names.len(), 4, "{template} {key:.8} {title:.20}: {names:?}");
                }
            }
            // Within one task, the template's own names differ.
            if template.contains("{index}") || template.contains("{clip_id}") {
                for title in &scripts {
                    let (mut a, mut b) = (job(&long_key, title), job(&long_key, title));
                    a.clip_index = 1;
                    a.clip_id = "c-1".into();
                    b.clip_index = 2;
                    b.clip_id = "c-2".into();
                    assert_ne!(t.render(&a), t.render(&b), "{template} {title:.20}");
                }
            }
        }
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("  Hello, World  "), "hello-world");
        assert_eq!(slug("!!!"), "untitled");
        assert_eq!(slug(&"a".repeat(100)).len(), 60);
    }
}
