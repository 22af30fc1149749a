//! The catalog page and the playlist of a measured catalog: each take's
//! numbers, verdict, reasons and pick in the page's data, the quality
//! counts in its header, the `review` and `picks` filters in a real
//! browser over chunked data, and a playlist made of the kept picks.
//!
//! Catalogs are written as a catalog CSV and handed to the page writer
//! row by row, as `page::a_catalog_of_100000_clips_…` does. The browser
//! tests need Chromium (see [`crate::page`]).

use std::path::{Path, PathBuf};

use batchgen::files::catalog::Row;
use batchgen::files::page::{Outputs, write_outputs};

use crate::page::{browser, dom, screenshot, tags};

/// What a job's two takes are, by its number: the kinds cycle.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// Take 1 rejected, take 2 kept and picked: one to review, a song.
    KeptPick,
    /// Both rejected, take 1 picked: to review, no song.
    AllRejected,
    /// Both kept, take 2 picked: a song.
    AllKept,
    /// Not measured (measuring off): no badge, both takes in the playlist.
    Unmeasured,
}

fn kind(job: usize) -> Kind {
    [
        Kind::KeptPick,
        Kind::AllRejected,
        Kind::AllKept,
        Kind::Unmeasured,
    ][job % 4]
}

/// A rejected take's reasons; job 1's hold markup, which must stay text.
fn reasons(job: usize, take: u32) -> String {
    if job == 1 && take == 1 {
        "<b>too short</b>: 12.0 s (at least 30.0 s)".to_owned()
    } else {
        format!(
            "too short: 1{take}.0 s (at least 30.0 s); 14.2 s of silence at the end (at most 10.0 s)"
        )
    }
}

/// A catalog of `jobs` jobs of two complete, downloaded takes each, the
/// kinds of [`Kind`] in turn; its CSV path.
fn measured_catalog(dir: &Path, jobs: usize) -> PathBuf {
    std::fs::create_dir(dir.join("songs")).unwrap();
    let path = dir.join("q.catalog.csv");
    let mut w = csv::Writer::from_path(&path).unwrap();
    for j in 0..jobs {
        for i in 1..=2u32 {
            let file = format!("songs/k{j}-{i}.mp3");
            std::fs::write(dir.join(&file), b"ID3").unwrap();
            let (verdict, pick) = match (kind(j), i) {
                (Kind::KeptPick, 1) => ("rejected", false),
                (Kind::KeptPick, _) => ("kept", true),
                (Kind::AllRejected, i) => ("rejected", i == 1),
                (Kind::AllKept, i) => ("kept", i == 2),
                (Kind::Unmeasured, _) => ("", false),
            };
            let measured = !verdict.is_empty();
            w.serialize(Row {
                key: format!("k{j}").into(),
                task_id: format!("t{j}"),
                clip_index: i,
                clip_id: format!("c{j}-{i}"),
                title: format!("Song {j} take {i}"),
                model: "chirp-v4-5".into(),
                status: "complete".into(),
                duration: Some(120.0 + f64::from(i)),
                audio_url: format!("http://127.0.0.1:9/{j}-{i}.mp3"),
                file,
                measured_duration: measured.then_some(120.5 + f64::from(i)),
                loudness: measured.then_some(-14.24),
                true_peak: measured.then_some(-0.96),
                verdict: verdict.into(),
                reasons: if verdict == "rejected" {
                    reasons(j, i)
                } else {
                    String::new()
                },
                pick,
                ..Row::default()
            })
            .unwrap();
        }
    }
    w.flush().unwrap();
    path
}

/// The catalog at `csv` read back and written as a page and a playlist.
fn write_page(csv: &Path) -> Outputs {
    let mut rows = Vec::new();
    batchgen::files::catalog::each_row(csv, |_, row| rows.push(row)).unwrap();
    write_outputs(csv, rows.into_iter()).unwrap()
}

/// The paths the playlist lists, in order.
fn playlist_paths(out: &Outputs) -> Vec<String> {
    std::fs::read_to_string(&out.playlist)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The JSON array embedded in a page.
fn embedded_data(html: &str) -> serde_json::Value {
    let open = r#"<script type="application/json" id="batchgen-data">"#;
    let start = html.find(open).expect("embedded data") + open.len();
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap()
}

#[test]
fn the_page_data_carries_each_takes_measurement_and_the_header_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let csv = measured_catalog(dir.path(), 4);
    let out = write_page(&csv);
    assert_eq!(
        (out.counts.kept, out.counts.rejected, out.counts.review),
        (3, 3, 2),
        "{:?}",
        out.counts
    );
    let html = std::fs::read_to_string(&out.page).unwrap();
    let data = embedded_data(&html);
    let clip = |job: usize, take: usize| &data[job]["clips"][take];

    // KeptPick: take 1 rejected with its reasons, take 2 the kept pick.
    let rejected = clip(0, 0);
    assert_eq!(rejected["verdict"], "rejected");
    assert_eq!(rejected["reasons"], reasons(0, 1).as_str());
    assert_eq!(rejected["measured"], 121.5);
    assert_eq!(rejected["lufs"], -14.24);
    assert_eq!(rejected["dbtp"], -0.96);
    assert!(rejected.get("pick").is_none());
    let pick = clip(0, 1);
    assert_eq!(
        (&pick["verdict"], &pick["pick"]),
        (&"kept".into(), &true.into())
    );
    assert!(pick.get("reasons").is_none());
    // The markup in job 1's reasons reaches the page as script-safe text.
    assert_eq!(clip(1, 0)["reasons"], reasons(1, 1).as_str());
    assert!(html.contains(r"\u003cb\u003etoo short\u003c/b\u003e"));
    assert!(!html.contains("<b>too short</b>"));
    // Unmeasured: none of the quality keys.
    for take in 0..2 {
        let plain = clip(3, take).as_object().unwrap();
        for key in ["measured", "lufs", "dbtp", "verdict", "reasons", "pick"] {
            assert!(!plain.contains_key(key), "{key} in {plain:?}");
        }
    }

    // The header: kept, rejected, and the jobs to review, linked to it.
    assert!(
        html.contains(r#"data-count="kept"><b>3</b> kept</li>"#),
        "{html}"
    );
    assert!(html.contains(r#"data-count="rejected"><b>3</b> rejected</li>"#));
    assert!(
        html.contains(r##"data-count="review"><a href="#review=1"><b>2</b> to review</a></li>"##)
    );
    // The filter bar's controls, and the script's names for both filters.
    assert!(html.contains(r#"data-control="review""#));
    assert!(html.contains(r#"data-control="picks""#));
    for name in [r#"flag(p, "review")"#, r#"flag(p, "picks")"#] {
        assert!(html.contains(name), "{name}");
    }
}

#[test]
fn the_playlist_is_the_kept_picks_and_every_take_of_an_unjudged_job() {
    let dir = tempfile::tempdir().unwrap();
    let out = write_page(&measured_catalog(dir.path(), 8));
    let expected: Vec<String> = (0..8)
        .flat_map(|j| match kind(j) {
            Kind::KeptPick | Kind::AllKept => vec![format!("songs/k{j}-2.mp3")],
            Kind::AllRejected => vec![],
            Kind::Unmeasured => vec![format!("songs/k{j}-1.mp3"), format!("songs/k{j}-2.mp3")],
        })
        .collect();
    assert_eq!(playlist_paths(&out), expected);
    assert_eq!(out.playlist_entries, expected.len() as u64);
    assert_eq!(out.counts.downloaded, 16, "the page still shows every take");
    let text = std::fs::read_to_string(&out.playlist).unwrap();
    assert!(
        text.contains("#EXTINF:122,Song 0 take 2\nsongs/k0-2.mp3\n"),
        "{text}"
    );
    assert!(
        !text.contains("Song 1 take"),
        "all rejected: left out\n{text}"
    );
}

#[test]
fn a_catalog_without_measurements_has_no_quality_counts_controls_or_keys() {
    let dir = tempfile::tempdir().unwrap();
    let csv = measured_catalog(dir.path(), 4);
    // Keep only the unmeasured job: a catalog as measuring off writes it.
    let mut rows = Vec::new();
    batchgen::files::catalog::each_row(&csv, |_, row| rows.push(row)).unwrap();
    rows.retain(|r| r.key.as_str() == "k3");
    let out = write_outputs(&csv, rows.into_iter()).unwrap();
    assert_eq!(
        (out.counts.kept, out.counts.rejected, out.counts.review),
        (0, 0, 0)
    );
    let html = std::fs::read_to_string(&out.page).unwrap();
    for absent in [
        r#"data-count="kept""#,
        r#"data-count="rejected""#,
        r#"data-count="review""#,
        r#"id="review""#,
        r#"id="picks""#,
    ] {
        assert!(!html.contains(absent), "{absent} in an unmeasured page");
    }
    let data = embedded_data(&html);
    for clip in data[0]["clips"].as_array().unwrap() {
        let keys: Vec<&String> = clip.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 11, "the keys of an unmeasured clip: {keys:?}");
    }
    assert_eq!(playlist_paths(&out), ["songs/k3-1.mp3", "songs/k3-2.mp3"]);
}

/// Tags of `tag` carrying attribute `attr`.
fn with(dom: &str, tag: &str, attr: &str) -> usize {
    tags(dom, tag)
        .iter()
        .filter(|t| t.contains_key(attr))
        .count()
}

/// The pager's text.
fn pager(dom: &str) -> &str {
    let at = dom.find("data-where").unwrap();
    let start = at + dom[at..].find('>').unwrap() + 1;
    &dom[start..start + dom[start..].find('<').unwrap()]
}

#[test]
fn review_and_picks_filter_a_chunked_catalog_in_a_browser() {
    let Some(chrome) = browser() else { return };
    let dir = tempfile::tempdir().unwrap();
    let jobs = 1_200;
    let out = write_page(&measured_catalog(dir.path(), jobs));
    let data = out.data_dir.clone().expect("three chunks, not embedded");
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 3);
    let of = |k: Kind| (0..jobs).filter(|&j| kind(j) == k).count();

    // The plain view: badges, numbers and reasons on measured takes only.
    let all = dom(&chrome, &out.page, "");
    assert_eq!(tags(&all, "section").len(), 50);
    let first_page = |k: Kind| (0..50).filter(|&j| kind(j) == k).count();
    let judged_jobs = 50 - first_page(Kind::Unmeasured);
    assert_eq!(with(&all, "article", "data-verdict"), 2 * judged_jobs);
    assert_eq!(with(&all, "article", "data-pick"), judged_jobs);
    assert_eq!(
        with(&all, "span", "data-pick"),
        judged_jobs,
        "one pick badge a job"
    );
    assert_eq!(with(&all, "div", "data-measure"), 2 * judged_jobs);
    let rejected_badges = tags(&all, "span")
        .into_iter()
        .filter(|t| t.get("data-verdict").map(String::as_str) == Some("rejected"))
        .count();
    assert_eq!(
        rejected_badges,
        first_page(Kind::KeptPick) + 2 * first_page(Kind::AllRejected)
    );
    assert_eq!(
        with(&all, "p", "data-reasons"),
        rejected_badges,
        "each says why"
    );
    assert!(
        all.contains("measured 2:02 · \u{2212}14.2 LUFS · \u{2212}1.0 dBTP"),
        "the numbers, with a true minus"
    );
    assert!(
        all.contains("&lt;b&gt;too short&lt;/b&gt;: 12.0 s"),
        "reasons are text"
    );
    assert!(!all.contains("<b>too short</b>"), "reasons became markup");
    assert!(all.contains(r##"data-count="review"><a href="#review=1"><b>600</b> to review</a>"##));

    // Picks alone hides no job: the plain paging, one chunk loaded, each
    // measured job's pick and every clip of an unmeasured one.
    let picks = dom(&chrome, &out.page, "#picks=1");
    assert_eq!(tags(&picks, "section").len(), 50);
    assert_eq!(
        tags(&picks, "script").len(),
        2 + 1,
        "the shell and one chunk"
    );
    assert!(
        pager(&picks).starts_with("page 1 of 24 · jobs 1–50 of 1200"),
        "{}",
        pager(&picks)
    );
    let shown = tags(&picks, "article");
    assert_eq!(shown.len(), judged_jobs + 2 * first_page(Kind::Unmeasured));
    assert!(
        shown
            .iter()
            .all(|a| a.contains_key("data-pick") || !a.contains_key("data-verdict")),
        "only picks among judged takes"
    );

    // Needs review: every chunk read, only jobs with a rejected take.
    let review_jobs = of(Kind::KeptPick) + of(Kind::AllRejected);
    let review = dom(&chrome, &out.page, "#review=1&page=2");
    assert_eq!(tags(&review, "script").len(), 2 + 3, "every chunk");
    assert_eq!(tags(&review, "section").len(), 50);
    assert!(
        pager(&review).contains(&format!(
            "of {review_jobs} · {} matching clips",
            2 * review_jobs
        )),
        "{}",
        pager(&review)
    );
    for section in tags(&review, "section") {
        let j: usize = section["data-job"][1..].parse().unwrap();
        assert!(
            matches!(kind(j), Kind::KeptPick | Kind::AllRejected),
            "k{j}"
        );
    }

    // Both: the jobs whose pick is rejected, the ones with no song.
    let both = dom(&chrome, &out.page, "#review=1&picks=1");
    let stuck = of(Kind::AllRejected);
    assert!(
        pager(&both).contains(&format!("of {stuck} · {stuck} matching clips")),
        "{}",
        pager(&both)
    );
    let shown = tags(&both, "article");
    assert_eq!(shown.len(), 50);
    assert!(shown.iter().all(
        |a| a.get("data-verdict").map(String::as_str) == Some("rejected")
            && a.contains_key("data-pick")
    ));

    // With the status filter: the failed view of a catalog with no failure.
    let none = dom(&chrome, &out.page, "#status=failed&review=1");
    assert!(none.contains("No clip matches this view."));

    // The playlist agrees: the kept picks and the unmeasured takes.
    assert_eq!(
        out.playlist_entries as usize,
        of(Kind::KeptPick) + of(Kind::AllKept) + 2 * of(Kind::Unmeasured)
    );
    screenshot(&chrome, &out.page, "", "catalog-page-quality.png");
}
