//! The page's shell: the template (`catalog.html`), its styles
//! (`page.css`) and its script (`page.js`), all compiled into the binary,
//! rendered through `minijinja`.
//!
//! The template's name ends in `.html`, so minijinja HTML-escapes every
//! value it prints (the catalog's name, the counts). The only values
//! printed unescaped are this crate's own: the styles, the script, and the
//! JSON of the config and the data, which sit inside `<script>` elements
//! (raw text, where an HTML entity would not be decoded) and are made safe
//! for that place by [`super::data::js_safe`] instead.

use minijinja::value::Value;
use minijinja::{Environment, context};

use super::PageError;
use super::data::{Data, JOBS_PER_CHUNK, PageCounts, js_safe};

const TEMPLATE: &str = include_str!("catalog.html");
const CSS: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// Jobs on one page of the view.
pub const JOBS_PER_PAGE: usize = 50;

/// What the shell shows.
#[derive(Debug)]
pub struct Shell<'a> {
    /// The catalog file's name.
    pub name: &'a str,
    pub counts: &'a PageCounts,
    /// Job entries in the data.
    pub entries: u64,
    pub data: &'a Data,
    /// The data folder, as a URL relative to the page.
    pub data_href: &'a str,
}

/// The page, whole.
///
/// # Errors
/// The template fails to render: a bug ([`PageError::Encode`]).
pub fn page(shell: &Shell) -> Result<String, PageError> {
    let encode = |e: minijinja::Error| PageError::Encode(e.to_string());
    let mut env = Environment::new();
    env.add_template("catalog.html", TEMPLATE).map_err(encode)?;
    let (chunks, generation, embedded) = match shell.data {
        Data::Embedded(json) => (1, "", Some(json)),
        Data::Files { generation, count } => (*count, generation.as_str(), None),
    };
    let config = serde_json::json!({
        "name": shell.name,
        "entries": shell.entries,
        "perPage": JOBS_PER_PAGE,
        "perChunk": JOBS_PER_CHUNK,
        "chunks": chunks,
        "generation": generation,
        "dir": shell.data_href,
        "embedded": embedded.is_some(),
        "counts": shell.counts,
    });
    let config = serde_json::to_vec(&config).map_err(|e| PageError::Encode(e.to_string()))?;
    let safe = |bytes: &[u8]| {
        let mut out = Vec::with_capacity(bytes.len());
        js_safe(bytes, &mut out);
        Value::from_safe_string(String::from_utf8_lossy(&out).into_owned())
    };
    let template = env.get_template("catalog.html").map_err(encode)?;
    template
        .render(context! {
            name => shell.name,
            counts => counts(shell.counts),
            judged => shell.counts.judged(),
            css => Value::from_safe_string(CSS.to_owned()),
            script => Value::from_safe_string(SCRIPT.to_owned()),
            config => safe(&config),
            data => embedded.map(|json| safe(json)),
        })
        .map_err(encode)
}

/// The counts at the top, in the order shown: the quality counts only
/// once a take is judged, the jobs to review a link to their view.
fn counts(c: &PageCounts) -> Vec<Value> {
    let running = c.new + c.text + c.first;
    let mut shown = vec![
        ("jobs", c.jobs, "jobs", "", ""),
        ("clips", c.clips, "clips", "", ""),
        ("complete", c.complete, "complete", "st-complete", ""),
        ("failed", c.failed, "failed", "st-failed", ""),
        ("running", running, "in progress", "st-running", ""),
        ("downloaded", c.downloaded, "downloaded", "st-local", ""),
    ];
    if c.judged() {
        shown.extend([
            ("kept", c.kept, "kept", "st-kept", ""),
            ("rejected", c.rejected, "rejected", "st-rejected", ""),
            ("review", c.review, "to review", "st-review", "#review=1"),
        ]);
    }
    shown
        .into_iter()
        .map(|(key, n, label, class, href)| context! { key, n, label, class, href })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_name_is_escaped_and_the_data_cannot_close_its_script() {
        let data = Data::Embedded(br#"[{"title":"</script><script>alert(1)</script>"}]"#.to_vec());
        let html = page(&Shell {
            name: "<b>x</b>\".catalog.csv",
            counts: &PageCounts::default(),
            entries: 1,
            data: &data,
            data_href: "x.catalog-data",
        })
        .unwrap();
        assert!(
            html.contains("&lt;b&gt;x&lt;&#x2f;b&gt;&quot;.catalog.csv"),
            "{html}"
        );
        assert!(!html.contains("<b>x"), "the name was printed as markup");
        // Our own three scripts close; nothing from the data does.
        assert_eq!(html.matches("</script>").count(), 3, "{html}");
        assert!(html.contains(r"\u003c/script\u003e\u003cscript\u003ealert(1)"));
    }

    fn shell_html(counts: &PageCounts) -> String {
        page(&Shell {
            name: "jobs.catalog.csv",
            counts,
            entries: 1,
            data: &Data::Embedded(b"[]".to_vec()),
            data_href: "jobs.catalog-data",
        })
        .unwrap()
    }

    #[test]
    fn quality_counts_and_controls_appear_once_a_take_is_judged() {
        let plain = PageCounts {
            jobs: 2,
            clips: 4,
            complete: 4,
            ..PageCounts::default()
        };
        let html = shell_html(&plain);
        for absent in [
            r#"data-count="kept""#,
            r#"data-count="rejected""#,
            r#"data-count="review""#,
            r#"id="review""#,
            r#"id="picks""#,
        ] {
            assert!(
                !html.contains(absent),
                "{absent} in a page with no judged take"
            );
        }
        assert!(html.contains(r#"<li class="count " data-count="jobs"><b>2</b> jobs</li>"#));

        let judged = PageCounts {
            kept: 3,
            rejected: 5,
            review: 2,
            ..plain
        };
        let html = shell_html(&judged);
        assert!(
            html.contains(r#"<li class="count st-kept" data-count="kept"><b>3</b> kept</li>"#),
            "{html}"
        );
        assert!(html.contains(
            r#"<li class="count st-rejected" data-count="rejected"><b>5</b> rejected</li>"#
        ));
        assert!(html.contains(
            r##"<li class="count st-review" data-count="review"><a href="#review=1"><b>2</b> to review</a></li>"##
        ));
        assert!(html.contains(r#"<input id="review" type="checkbox" data-control="review">"#));
        assert!(html.contains(r#"<input id="picks" type="checkbox" data-control="picks">"#));
        // The script reads and writes both filters in the fragment.
        for name in [
            r#"flag(p, "review")"#,
            r#"flag(p, "picks")"#,
            r#"p.set("review", "1")"#,
            r#"p.set("picks", "1")"#,
        ] {
            assert!(html.contains(name), "{name} not in the script");
        }
    }
}
