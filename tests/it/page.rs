//! The catalog page in a real browser: headless Chromium opens the page
//! `batchgen status --html` wrote from a temp folder (`file://`), runs its
//! script, and the test reads the DOM it dumps: players, their files, the
//! status filter, a hostile title, and paging at 10^5 clips. A screenshot
//! is left at `target/catalog-page.png` for a person to look at.
//!
//! Chromium is `$CHROME`, else `/usr/bin/chromium`, else `chromium` on the
//! PATH (`.ci/run` installs Debian's). Without one the tests fail, unless
//! `BATCHGEN_SKIP_BROWSER=1`, when they say loudly that they skipped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use batchgen::files::catalog::Row;

use crate::common::{self, code, stderr};

/// The browser, or `None` (said on stderr and stdout) when none is found
/// and skipping was asked for.
pub(crate) fn browser() -> Option<PathBuf> {
    let found = std::env::var_os("CHROME")
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .or_else(|| Some(PathBuf::from("/usr/bin/chromium")).filter(|p| p.exists()))
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join("chromium"))
                    .find(|p| p.is_file())
            })
        });
    if found.is_none() {
        let why = "no Chromium found ($CHROME, /usr/bin/chromium, chromium on PATH)";
        if std::env::var("BATCHGEN_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!("SKIPPED catalog page browser test: {why}; BATCHGEN_SKIP_BROWSER=1");
            println!("SKIPPED catalog page browser test: {why}; BATCHGEN_SKIP_BROWSER=1");
            return None;
        }
        panic!(
            "{why}: install it (apt-get install chromium; .ci/run does), point CHROME at one, \
             or set BATCHGEN_SKIP_BROWSER=1 to skip these tests on purpose"
        );
    }
    found
}

/// Chromium, headless, loopback and file only, with a throwaway profile.
fn chromium(chrome: &Path, extra: &[String], url: &str) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--virtual-time-budget=10000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!("--user-data-dir={}", profile.path().display()));
    args.extend(extra.iter().cloned());
    args.push(url.to_owned());
    let out = assert_cmd::Command::new(chrome)
        .args(&args)
        .timeout(Duration::from_secs(180))
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium failed: {}", stderr(&out));
    out
}

fn page_url(page: &Path, fragment: &str) -> String {
    let page = std::fs::canonicalize(page).unwrap();
    format!("file://{}{fragment}", page.display())
}

/// The DOM after the page's script ran, as Chromium serializes it.
pub(crate) fn dom(chrome: &Path, page: &Path, fragment: &str) -> String {
    let out = chromium(chrome, &["--dump-dom".into()], &page_url(page, fragment));
    let dom = String::from_utf8(out.stdout).unwrap();
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page did not finish rendering {fragment}: {}",
        &dom[dom.find("data-where").unwrap_or(0)..][..300.min(dom.len())]
    );
    dom
}

pub(crate) fn screenshot(chrome: &Path, page: &Path, fragment: &str, name: &str) {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&target).unwrap();
    let shot = target.join(name);
    chromium(
        chrome,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,1600".into(),
        ],
        &page_url(page, fragment),
    );
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "{}",
        shot.display()
    );
    eprintln!("screenshot: {}", shot.display());
}

/// Every `<tag …>` in `dom` with its attributes (values unescaped).
pub(crate) fn tags(dom: &str, tag: &str) -> Vec<HashMap<String, String>> {
    let open = format!("<{tag}");
    let mut found = Vec::new();
    let mut rest = dom;
    while let Some(at) = rest.find(&open) {
        rest = &rest[at + open.len()..];
        if !rest.starts_with([' ', '>']) {
            continue;
        }
        let end = rest.find('>').unwrap();
        found.push(attributes(&rest[..end]));
        rest = &rest[end..];
    }
    found
}

fn attributes(mut text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    loop {
        text = text.trim_start();
        let Some(eq) = text.find(['=', ' ']) else {
            if !text.is_empty() {
                out.insert(text.to_owned(), String::new());
            }
            return out;
        };
        let name = text[..eq].to_owned();
        if text[eq..].starts_with("=\"") {
            let value_start = eq + 2;
            let close = text[value_start..].find('"').unwrap() + value_start;
            let value = text[value_start..close]
                .replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&");
            out.insert(name, value);
            text = &text[close + 1..];
        } else {
            out.insert(name, String::new());
            text = &text[eq..];
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

const HOSTILE: &str = "<script>document.title='pwned'</script> </script><!-- \"onerror=alert(1) x";

/// A real sandbox run with downloads, in a temp folder, as the README's
/// quick start; then `status --html` from another folder.
fn sandbox_catalog() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!(
        r#"
[[job]]
id = "calm"
prompt = "a calm song with rain"

[[job]]
id = "moderated"
prompt = "a forbidden song"

[[job]]
id = "hostile"
custom_mode = true
title = {}
style = "pop </script>"
prompt = "la la la"

[[job]]
id = "sea"
prompt = "an upbeat song about the sea"
"#,
        toml::Value::String(HOSTILE.into())
    );
    std::fs::write(dir.path().join("m.toml"), manifest).unwrap();
    let run = assert_cmd::Command::cargo_bin("batchgen")
        .unwrap()
        .current_dir(dir.path())
        .env_remove("BATCHGEN_API_KEY")
        .env_remove("BATCHGEN_BASE_URL")
        .args([
            "m.toml",
            "--sandbox",
            "--wait",
            "--download",
            "my songs",
            "--rate",
            "unlimited",
        ])
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    let results = dir.path().join("m.sandbox.results.csv");
    let status = assert_cmd::Command::cargo_bin("batchgen")
        .unwrap()
        .args(["status", results.to_str().unwrap(), "--html"])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert_eq!(code(&status), 0, "{}", stderr(&status));
    let stdout = String::from_utf8_lossy(&status.stdout);
    let page = dir.path().join("m.sandbox.catalog.html");
    assert!(stdout.contains("m.sandbox.catalog.html"), "{stdout}");
    assert!(stdout.contains("m.sandbox.m3u8"), "{stdout}");
    (dir, page)
}

#[test]
fn a_sandbox_catalog_shows_its_players_failures_and_hostile_titles_as_text() {
    let Some(chrome) = browser() else { return };
    let (dir, page) = sandbox_catalog();
    let rows = common::catalog(&dir.path().join("m.sandbox.catalog.csv"));
    let complete = rows.iter().filter(|r| r.status == "complete").count();
    let failed = rows.iter().filter(|r| r.status == "failed").count();
    assert!(complete >= 4 && failed >= 2, "{rows:?}");

    // Every complete clip has a player, playing its downloaded file.
    let all = dom(&chrome, &page, "");
    let players = tags(&all, "audio");
    assert_eq!(players.len(), complete, "one player per complete clip");
    for player in &players {
        assert_eq!(player.get("data-player").map(String::as_str), Some("local"));
        let src = &player["src"];
        assert!(!src.contains("://"), "a relative path: {src}");
        let file = dir.path().join(percent_decode(src));
        assert!(file.is_file(), "{src} → {} is not there", file.display());
    }
    assert_eq!(tags(&all, "article").len(), rows.len());

    // A hostile title is text: no element made of it, no script run.
    assert!(
        all.contains("<title>m.sandbox.catalog.csv · batchgen catalog</title>"),
        "the title changed"
    );
    assert!(
        all.contains("&lt;script&gt;document.title='pwned'&lt;/script&gt;"),
        "the title is not shown as text"
    );
    assert!(
        !all.contains("<script>document.title"),
        "the title became markup"
    );
    assert_eq!(tags(&all, "script").len(), 3, "only the page's own scripts");
    for tag in ["img", "audio", "article", "h3", "p", "section"] {
        for attrs in tags(&all, tag) {
            assert!(
                !attrs.keys().any(|k| k.starts_with("on")),
                "an event handler attribute on <{tag}>: {attrs:?}"
            );
        }
    }

    // The failed view shows exactly the failed clips, with their message.
    let view = dom(&chrome, &page, "#status=failed");
    let shown = tags(&view, "article");
    assert_eq!(shown.len(), failed, "{view}");
    assert!(shown.iter().all(|a| a["data-status"] == "failed"));
    assert!(tags(&view, "audio").is_empty());
    let messages = tags(&view, "p")
        .into_iter()
        .filter(|p| p.contains_key("data-error"))
        .count();
    assert_eq!(messages, failed, "each failed clip says why");

    // The playlist lists the picks beside the page: a judged job's kept
    // pick, every downloaded take of a job not judged.
    let playlist = std::fs::read_to_string(dir.path().join("m.sandbox.m3u8")).unwrap();
    let lines: Vec<&str> = playlist.lines().collect();
    assert_eq!(lines[0], "#EXTM3U");
    let paths: Vec<&str> = lines[1..]
        .iter()
        .copied()
        .filter(|l| !l.starts_with('#'))
        .collect();
    let mut expected: Vec<&str> = Vec::new();
    let mut keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    keys.dedup();
    for key in keys {
        let takes: Vec<&Row> = rows.iter().filter(|r| r.key.as_str() == key).collect();
        let judged = takes.iter().any(|r| r.verdict().is_some());
        expected.extend(
            takes
                .iter()
                .filter(|r| r.status == "complete" && !r.file.is_empty())
                .filter(|r| !judged || (r.pick && r.verdict == "kept"))
                .map(|r| r.file.as_str()),
        );
    }
    assert!(!expected.is_empty(), "{rows:?}");
    assert_eq!(paths, expected, "{playlist}");
    assert_eq!(lines.len(), 2 + 2 * expected.len(), "{playlist}");
    for path in paths {
        assert!(dir.path().join(path).is_file(), "{path}");
    }
    screenshot(&chrome, &page, "", "catalog-page.png");
}

/// A catalog of `jobs` jobs, two clips each: every 7th job failed, every
/// 3rd one downloaded (a file that exists), the rest complete and remote.
fn big_catalog(dir: &Path, jobs: usize) -> PathBuf {
    std::fs::create_dir(dir.join("songs")).unwrap();
    let path = dir.join("big.catalog.csv");
    let mut w = csv::Writer::from_path(&path).unwrap();
    for j in 0..jobs {
        for i in 1..=2u32 {
            let failed = j % 7 == 3;
            let downloaded = !failed && j % 3 == 0;
            let file = if downloaded {
                let name = format!("songs/k{j}-{i}.mp3");
                if j < 200 {
                    std::fs::write(dir.join(&name), b"ID3").unwrap();
                }
                name
            } else {
                String::new()
            };
            w.serialize(Row {
                key: format!("k{j}").into(),
                task_id: format!("t{j}"),
                clip_index: i,
                clip_id: format!("c{j}-{i}"),
                title: if j == 31_337 {
                    "the needle".into()
                } else {
                    format!("Song {j} take {i}")
                },
                style: "lofi, rain".into(),
                model: "chirp-v4-5".into(),
                status: if failed { "failed" } else { "complete" }.into(),
                duration: Some(120.0 + f64::from(i)),
                created_at: String::new(),
                audio_url: if failed {
                    String::new()
                } else {
                    format!("http://127.0.0.1:9/{j}-{i}.mp3")
                },
                image_url: String::new(),
                file,
                file_bytes: None,
                image_file: String::new(),
                error: if failed {
                    "moderated".into()
                } else {
                    String::new()
                },
                ..Row::default()
            })
            .unwrap();
        }
    }
    w.flush().unwrap();
    path
}

#[test]
fn a_catalog_of_100000_clips_opens_paged_and_filters_over_every_chunk() {
    let Some(chrome) = browser() else { return };
    let dir = tempfile::tempdir().unwrap();
    let jobs = 50_000;
    let catalog = big_catalog(dir.path(), jobs);
    let mut rows = Vec::new();
    batchgen::files::catalog::each_row(&catalog, |_, row| rows.push(row)).unwrap();
    let out = batchgen::files::page::write_outputs(&catalog, rows.into_iter()).unwrap();
    assert_eq!(out.counts.clips, 2 * jobs as u64);
    let data = out.data_dir.clone().expect("too large to embed");
    let chunks = std::fs::read_dir(&data).unwrap().count();
    assert_eq!(chunks, jobs / 500, "one chunk file per 500 jobs");

    // The first page: 50 jobs, their players, nothing more.
    let first = dom(&chrome, &out.page, "");
    assert_eq!(tags(&first, "section").len(), 50);
    let complete_first: usize = (0..50).filter(|j| j % 7 != 3).count() * 2;
    assert_eq!(tags(&first, "audio").len(), complete_first);
    assert!(first.contains("page 1 of 1000"), "paged");
    assert_eq!(
        tags(&first, "script").len(),
        2 + 1,
        "the shell and one chunk, not all"
    );
    // A page past the end (an old bookmark) shows the last one.
    let last = dom(&chrome, &out.page, "#page=99999");
    assert!(
        last.contains("page 1000 of 1000 · jobs 49951–50000"),
        "clamped"
    );
    assert_eq!(tags(&last, "section").len(), 50);

    // The failed view reads every chunk and still shows one page.
    let failed_jobs = (0..jobs).filter(|j| j % 7 == 3).count();
    let view = dom(&chrome, &out.page, "#status=failed&page=3");
    let shown = tags(&view, "article");
    assert_eq!(shown.len(), 100, "50 jobs of two failed clips");
    assert!(shown.iter().all(|a| a["data-status"] == "failed"));
    assert!(tags(&view, "audio").is_empty());
    assert!(
        view.contains(&format!(
            "of {failed_jobs} · {} matching clips",
            2 * failed_jobs
        )),
        "{}",
        &view[view.find("data-where").unwrap()..][..200]
    );

    // A search finds the one job among 10^5 clips.
    let needle = dom(&chrome, &out.page, "#q=NEEDLE");
    assert_eq!(tags(&needle, "section").len(), 1, "only the job titled so");
    let shown = tags(&needle, "article");
    assert_eq!(shown.len(), 2, "its two takes");
    assert!(shown.iter().all(|a| a["data-key"] == "k31337"));

    // Downloaded clips play the file beside the page.
    let downloaded = dom(&chrome, &out.page, "#status=downloaded");
    let players = tags(&downloaded, "audio");
    assert_eq!(players.len(), 100);
    for p in players.iter().take(10) {
        assert!(
            dir.path().join(percent_decode(&p["src"])).is_file(),
            "{p:?}"
        );
    }
    screenshot(
        &chrome,
        &out.page,
        "#status=failed",
        "catalog-page-100k-failed.png",
    );
}

#[test]
fn status_html_without_a_catalog_says_so_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let results = common::submitted_results(dir.path(), &[("a", "t-a")]);
    let out = assert_cmd::Command::cargo_bin("batchgen")
        .unwrap()
        .args(["status", results.to_str().unwrap(), "--html"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing collected"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("jobs.catalog.html").exists());
    assert!(!dir.path().join("jobs.m3u8").exists());
}
