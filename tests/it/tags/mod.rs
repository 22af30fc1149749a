//! The ID3 tags of downloaded songs, read back from the files: a sandbox
//! journey in custom and description mode (the main run's `--wait
//! --download --images`, and `collect --download` without images), and a
//! hostile host on 127.0.0.1:0 whose covers are HTML, 50 MB or of the
//! wrong kind and whose lyrics are 440 KB with NULs ([`hostile`]; the 1 MiB
//! feed cap refuses larger bodies whole). Every song must
//! keep playing (an ID3 tag, then whole MPEG frames), and what the tag says
//! must match the catalog row and the manifest.

mod hostile;

use std::path::{Path, PathBuf};
use std::time::Duration;

use batchgen::files::catalog::Row;
use batchgen::sandbox::SandboxConfig;
use id3::TagLike;

use crate::common::{self, arg, catalog, code, stderr};

const VERSE: &str = "[Verse]\nDrops on the glass keep time with the clock\n\n[Chorus]\nRainy window, slow afternoon";
const DRIVE: &str = "[Verse]\nNeon lines on an empty road\n[Chorus]\nHighway lights";

/// Two custom-mode jobs (lyrics), one description in `prompt`, one for the
/// service's lyric writer.
fn manifest(dir: &Path, name: &str, run: &str) -> PathBuf {
    let text = format!(
        r#"{run}
[[job]]
id = "rainy-window"
custom_mode = true
title = "Rainy Window"
style = "lofi, chill, 80 bpm, soft piano"
prompt = """{VERSE}"""

[[job]]
id = "highway-lights"
custom_mode = true
title = "Highway Lights"
style = "synthwave"
prompt = """{DRIVE}"""

[[job]]
id = "described"
prompt = "a calm song about rain on a tin roof"

[[job]]
id = "inspired"
gpt_description_prompt = "an upbeat song about a city at night"
"#
    );
    common::write(dir, name, &text)
}

/// Length of the ID3v2 tag at the start of `bytes` (header included).
fn id3_len(bytes: &[u8]) -> usize {
    assert_eq!(&bytes[..3], b"ID3", "the file starts with its tag");
    let size = bytes[6..10]
        .iter()
        .fold(0usize, |acc, b| (acc << 7) | usize::from(b & 0x7f));
    10 + size
}

/// The file still plays: its tag, then whole MPEG-1 Layer III frames,
/// each where the one before ends (the sandbox's are 192 bytes, the
/// hostile CDN's 384).
fn plays(path: &Path) {
    const KBPS: [usize; 15] = [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ];
    let bytes = std::fs::read(path).unwrap();
    let audio = &bytes[id3_len(&bytes)..];
    assert!(!audio.is_empty(), "{path:?}");
    let mut at = 0;
    while at < audio.len() {
        let h = &audio[at..(at + 4).min(audio.len())];
        assert!(
            h.len() == 4 && h[..2] == [0xFF, 0xFB],
            "{path:?}: an MPEG frame at {at} after the tag"
        );
        let kbps = KBPS[usize::from(h[2] >> 4)];
        let rate = [44_100, 48_000, 32_000][usize::from((h[2] >> 2) & 3)];
        assert!(kbps > 0, "{path:?}: a bitrate at {at}");
        at += 144 * kbps * 1000 / rate + usize::from((h[2] >> 1) & 1);
    }
    assert_eq!(at, audio.len(), "{path:?}: the last frame ends the file");
}

fn extended<'a>(tag: &'a id3::Tag, name: &str) -> Option<&'a str> {
    tag.extended_texts()
        .find(|t| t.description == name)
        .map(|t| t.value.as_str())
}

/// The row's file, with the tag the catalog row says it should have.
fn check_tag(row: &Row, track: u32, artist: &str, album: &str) -> id3::Tag {
    let path = Path::new(&row.file);
    plays(path);
    let tag = id3::Tag::read_from_path(path).unwrap();
    let what = format!("{}-{}", row.key, row.clip_index);
    assert_eq!(tag.title(), Some(row.title.as_str()), "{what}");
    assert_eq!(tag.artist(), Some(artist), "{what}");
    assert_eq!(tag.album_artist(), Some(artist), "{what}");
    assert_eq!(tag.album(), Some(album), "{what}");
    assert_eq!(
        tag.track(),
        Some(track),
        "{what}: its job's place in the manifest"
    );
    let recorded = tag.date_recorded().expect("TDRC");
    assert_eq!(
        format!(
            "{:04}-{:02}-{:02}",
            recorded.year,
            recorded.month.unwrap(),
            recorded.day.unwrap()
        ),
        row.created_at[..10],
        "{what}"
    );
    for (name, value) in [
        ("batchgen:key", &row.key.to_string()),
        ("batchgen:task_id", &row.task_id),
        ("batchgen:clip_id", &row.clip_id),
        ("batchgen:model", &row.model),
    ] {
        assert!(!value.is_empty());
        assert_eq!(extended(&tag, name), Some(value.as_str()), "{what} {name}");
    }
    let comments: Vec<&str> = tag.comments().map(|c| c.text.as_str()).collect();
    assert_eq!(
        comments,
        [format!("batchgen job {}, clip {}", row.key, row.clip_index)]
    );
    tag
}

fn lyrics(tag: &id3::Tag) -> Vec<&str> {
    tag.lyrics().map(|l| l.text.as_str()).collect()
}

fn cover(tag: &id3::Tag) -> &id3::frame::Picture {
    let pictures: Vec<_> = tag.pictures().collect();
    assert_eq!(pictures.len(), 1, "one cover");
    assert_eq!(
        pictures[0].picture_type,
        id3::frame::PictureType::CoverFront
    );
    pictures[0]
}

/// Genre, tempo and lyrics by job: what the manifest says in custom mode;
/// for a description (in `prompt` or inspiration mode's
/// `gpt_description_prompt`), the title and style the service wrote,
/// which the sandbox derives from the description as the service does:
/// they are the catalog's, and reach TIT2, TCON and TBPM.
fn check_job_frames(row: &Row, tag: &id3::Tag) {
    let (genres, bpm, words): (Vec<&str>, _, _) = match row.key.as_str() {
        "rainy-window" => (vec!["lofi", "chill", "soft piano"], Some("80"), vec![VERSE]),
        "highway-lights" => (vec!["synthwave"], None, vec![DRIVE]),
        "described" => (vec!["chillwave"], Some("100"), Vec::new()),
        "inspired" => (vec!["synthwave"], Some("73"), Vec::new()),
        other => panic!("unexpected job {other}"),
    };
    let generated = match row.key.as_str() {
        "described" => Some(("Calm Rain Tin", "chillwave, 100 bpm")),
        "inspired" => Some(("Upbeat City Night", "synthwave, 73 bpm")),
        _ => None,
    };
    if let Some((title, style)) = generated {
        assert_eq!((row.title.as_str(), row.style.as_str()), (title, style));
        assert_eq!(tag.title(), Some(title), "{}: TIT2", row.key);
    }
    let genres = (!genres.is_empty()).then_some(genres);
    assert_eq!(tag.genres(), genres, "{}: TCON", row.key);
    let tempo = tag.get("TBPM").and_then(|f| f.content().text());
    assert_eq!(tempo, bpm, "{}", row.key);
    assert_eq!(lyrics(tag), words, "{}: USLT", row.key);
    let recorded: Vec<&str> = words.to_vec();
    assert_eq!(
        if row.lyrics.is_empty() {
            vec![]
        } else {
            vec![row.lyrics.as_str()]
        },
        recorded,
        "{}: the catalog keeps the lyrics for a later collect",
        row.key
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_main_run_tags_with_cover_lyrics_and_trace() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(
        dir.path(),
        "given.toml",
        "[run]\nartist = \"The Batch\"\nalbum = \"Not This One\"",
    );
    let songs = dir.path().join("songs");
    let out = common::run_with_env(
        vec![
            arg(&manifest).into(),
            "--sandbox".into(),
            "--rate".into(),
            "unlimited".into(),
            "--wait".into(),
            "--download".into(),
            arg(&songs).into(),
            "--images".into(),
            "--album".into(),
            "Rain Tapes".into(),
        ],
        vec![],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rows = catalog(&dir.path().join("given.sandbox.catalog.csv"));
    assert_eq!(rows.len(), 8, "four jobs, two clips each");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.status, "complete", "{row:?}");
        assert_eq!(row.error, "", "{row:?}");
        let tag = check_tag(row, i as u32 / 2 + 1, "The Batch", "Rain Tapes");
        check_job_frames(row, &tag);
        let picture = cover(&tag);
        assert_eq!(picture.mime_type, "image/png");
        assert!(!row.image_file.is_empty(), "--images keeps the cover");
        assert_eq!(
            picture.data,
            std::fs::read(&row.image_file).unwrap(),
            "the embedded cover is the kept image"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn collect_tags_with_the_default_artist_and_album() {
    let sandbox = common::sandbox(SandboxConfig {
        stage_time: Duration::from_millis(100),
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), "plain.toml", "");
    let results = dir.path().join("plain.results.csv");
    common::submit_ok(&sandbox, &manifest, &results).await;
    let songs = dir.path().join("songs");
    let args = [
        "collect",
        arg(&results),
        "--poll-interval",
        "100ms",
        "--poll-rate",
        "unlimited",
        "--download",
        arg(&songs),
    ];
    let env = vec![
        ("BATCHGEN_API_KEY".to_owned(), sandbox.key().to_owned()),
        ("BATCHGEN_BASE_URL".to_owned(), sandbox.base_url()),
    ];
    let out = common::run_with_env(args.iter().map(|s| s.to_string()).collect(), env).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rows = catalog(&dir.path().join("plain.catalog.csv"));
    assert_eq!(rows.len(), 8);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.error, "", "{row:?}");
        let tag = check_tag(row, i as u32 / 2 + 1, "batchgen", "plain");
        check_job_frames(row, &tag);
        // Without --images the cover is fetched into memory, not kept.
        assert!(row.image_file.is_empty());
        let served = reqwest::get(&row.image_url)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(cover(&tag).data, served.to_vec());
    }
    let pngs = std::fs::read_dir(&songs)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "png")
        })
        .count();
    assert_eq!(pngs, 0, "no image kept without --images");
}

#[test]
fn the_feed_reads_each_providers_lyrics_field() {
    use batchgen::api::feed;
    // udioapi's clips: `prompt`; gcui's: `lyric` first.
    let udio = feed::parse(
        br#"[{"id":"a","status":"complete","prompt":"[Verse]\r\nline one\u0000\nline two"}]"#,
    )
    .unwrap();
    assert_eq!(udio.clips[0].lyrics, "[Verse]\nline one\nline two");
    let gcui = feed::parse(
        br#"[{"id":"a","status":"complete","lyric":"from lyric","prompt":"from prompt"}]"#,
    )
    .unwrap();
    assert_eq!(gcui.clips[0].lyrics, "from lyric");
    let none = feed::parse(br#"[{"id":"a","status":"complete","prompt":42,"lyric":""}]"#).unwrap();
    assert_eq!(none.clips[0].lyrics, "");
    // The documented bodies carry them where API.md says.
    for (file, lyrics) in [
        ("udioapi/callback-complete.json", "[Verse]\nneon lights"),
        ("gcui/get-complete.json", "[Verse]\nneon lights"),
    ] {
        let body = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/providers")
                .join(file),
        )
        .unwrap();
        let clips = feed::parse(&body).unwrap().clips;
        assert!(clips.iter().all(|c| c.lyrics == lyrics), "{file}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn run_artist_and_album_are_checked_settings() {
    let dir = tempfile::tempdir().unwrap();
    let validate = |manifest: PathBuf| async move {
        common::run_with_env(vec!["validate".into(), arg(&manifest).into()], vec![]).await
    };
    let good = manifest(
        dir.path(),
        "good.toml",
        "[run]\nartist = \"The Batch\"\nalbum = \"\"",
    );
    let out = validate(good).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for (name, run, field) in [
        ("number.toml", "[run]\nartist = 3", "artist"),
        ("lines.toml", "[run]\nalbum = \"one\\ntwo\"", "album"),
        (
            "long.toml",
            &format!("[run]\nalbum = \"{}\"", "a".repeat(201)),
            "album",
        ),
    ] {
        let out = validate(manifest(dir.path(), name, run)).await;
        assert_eq!(code(&out), 65, "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains(field), "{name}: {}", stderr(&out));
    }
    // The flags need a download to tag.
    let out = common::run_with_env(
        vec![
            arg(&dir.path().join("good.toml")).into(),
            "--artist".into(),
            "x".into(),
        ],
        vec![],
    )
    .await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_providers_lyrics_reach_the_tag() {
    for provider in ["sunoapi", "gcui"] {
        let dir = tempfile::tempdir().unwrap();
        let run = format!("[run]\nprovider = \"{provider}\"");
        let manifest = manifest(dir.path(), "p.toml", &run);
        let songs = dir.path().join("songs");
        let args = [arg(&manifest), "--sandbox", "--rate", "unlimited", "--wait"];
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        args.extend(["--download".into(), arg(&songs).into()]);
        let out = common::run_with_env(args, vec![]).await;
        assert_eq!(code(&out), 0, "{provider}: {}", stderr(&out));
        let rows = catalog(&dir.path().join("p.sandbox.catalog.csv"));
        assert_eq!(rows.len(), 8, "{provider}");
        for (i, row) in rows.iter().enumerate() {
            let tag = check_tag(row, i as u32 / 2 + 1, "batchgen", "p");
            check_job_frames(row, &tag);
            assert_eq!(cover(&tag).mime_type, "image/png", "{provider}");
        }
    }
}
