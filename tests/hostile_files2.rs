//! More of a hostile world of files, the cases `hostile_files` does not
//! use: a gigabyte of garbage as the results file, a symlink planted among
//! a download template's folders, hard links planted where batchgen writes
//! in place, and a planted `.part` link the server's answers would have
//! let batchgen read and rename into place. Each drives the real binary.

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Output;

use batchgen::sandbox::{Sandbox, SandboxConfig};
use common::*;

async fn collect(sandbox: &Sandbox, args: &[&str]) -> Output {
    let mut all = vec!["collect".to_owned()];
    all.extend(args.iter().map(|s| s.to_string()));
    all.extend(["--poll-interval".into(), "100ms".into()]);
    let out = run_with_env(
        all,
        vec![
            ("BATCHGEN_API_KEY".into(), sandbox.key().into()),
            ("BATCHGEN_BASE_URL".into(), sandbox.base_url()),
        ],
    )
    .await;
    no_secret(&out, sandbox.key());
    out
}

async fn quick_sandbox() -> Sandbox {
    common::sandbox(SandboxConfig {
        stage_time: std::time::Duration::from_millis(100),
        ..SandboxConfig::default()
    })
    .await
}

/// A folder with a submitted 1-job manifest: (dir, manifest, results).
async fn submitted(sandbox: &Sandbox) -> (tempfile::TempDir, PathBuf, PathBuf) {
    submitted_folder(sandbox, 1, None).await
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            out.extend(files_in(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gigabyte_of_garbage_in_the_results_file_stops_in_bounded_memory_and_time() {
    let sandbox = quick_sandbox().await;
    let (_dir, manifest, results) = submitted(&sandbox).await;
    let sent = sandbox.stats().requests;
    // A copy cut off inside a quote, then 1 GB of (sparse) zeros: the
    // unclosed quote makes all of it one record. A file the previous
    // release left (no store yet), since a store makes the file a report.
    remove_state(&results);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&results)
        .unwrap();
    std::io::Write::write_all(&mut file, b"job-0,2,\"").unwrap();
    file.set_len(1 << 30).unwrap();
    drop(file);
    let started = std::time::Instant::now();
    let out = run_checked(&sandbox, &[arg(&manifest), "--out", arg(&results)]).await;
    let err = stderr(&out);
    assert_eq!(code(&out), 78, "{err}");
    assert!(
        err.contains("r.csv:3:") && err.contains("over 1048576 bytes"),
        "{err}"
    );
    let out = collect(&sandbox, &[arg(&results)]).await;
    assert_eq!(code(&out), 78, "{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(sandbox.stats().requests, sent, "nothing sent");
    assert_eq!(std::fs::metadata(&results).unwrap().len(), 1 << 30);
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &raw mut usage) },
        0
    );
    assert!(usage.ru_maxrss < 200 * 1024, "peak {} KiB", usage.ru_maxrss);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_symlink_planted_among_the_download_folders_is_never_followed() {
    let sandbox = quick_sandbox().await;
    let (dir, _manifest, results) = submitted(&sandbox).await;
    let songs = dir.path().join("songs");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&songs).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    // Someone who can write the shared download folder links the folder
    // the template will make to a folder of their choice.
    symlink(&elsewhere, songs.join("job-0")).unwrap();
    let template = ["--download", arg(&songs), "--name", "{key}/{index}"];
    let mut args = vec![arg(&results)];
    args.extend(template);
    let out = collect(&sandbox, &args).await;
    assert_ne!(code(&out), 0, "{}", stderr(&out));
    assert!(
        files_in(&elsewhere).is_empty(),
        "{:?}",
        files_in(&elsewhere)
    );
    let catalog = std::fs::read_to_string(dir.path().join("r.catalog.csv")).unwrap();
    assert!(catalog.contains("is a symlink"), "{catalog}");

    // With the link gone the same run makes a real folder and fills it.
    std::fs::remove_file(songs.join("job-0")).unwrap();
    let out = collect(&sandbox, &args).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(songs.join("job-0/1.mp3").is_file());
    assert!(files_in(&elsewhere).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn hard_links_planted_where_batchgen_writes_in_place_are_refused() {
    let sandbox = quick_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 1);
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let untouched = || assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

    // The results file's lock: opening it truncates it to write the pid.
    let results = dir.path().join("r.csv");
    std::fs::hard_link(&victim, dir.path().join("r.csv.lock")).unwrap();
    let out = run_checked(&sandbox, &[arg(&manifest), "--out", arg(&results)]).await;
    assert_eq!(code(&out), 73, "{}", stderr(&out));
    assert!(stderr(&out).contains("hard link"), "{}", stderr(&out));
    assert_eq!(sandbox.stats().requests, 0);
    untouched();
    std::fs::remove_file(dir.path().join("r.csv.lock")).unwrap();
    submit_ok(&sandbox, &manifest, &results).await;

    // A download's `.part` (the clip's own name, learnt from a collect
    // that downloads nothing): it would be truncated and filled with audio.
    let out = collect(&sandbox, &[arg(&results)]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let songs = dir.path().join("songs");
    std::fs::create_dir_all(&songs).unwrap();
    let mp3 = songs.join("job-0-1.mp3");
    std::fs::hard_link(
        &victim,
        own_part(&dir.path().join("r.catalog.csv"), &mp3, "1"),
    )
    .unwrap();
    let out = collect(&sandbox, &[arg(&results), "--download", arg(&songs)]).await;
    assert_ne!(code(&out), 0, "{}", stderr(&out));
    untouched();
    assert!(!mp3.exists());
    assert!(
        songs.join("job-0-2.mp3").is_file(),
        "the other clip is fetched"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_planted_part_link_is_never_read_resumed_or_renamed_into_place() {
    let sandbox = quick_sandbox().await;
    let (dir, _manifest, results) = submitted(&sandbox).await;
    let songs = dir.path().join("songs");
    let out = collect(&sandbox, &[arg(&results), "--download", arg(&songs)]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mp3 = songs.join("job-0-1.mp3");
    // A file the planter wants batchgen to read (or to record as the song),
    // as long as the clip: the server's answer to `Range: bytes=LEN-` is
    // then "416, the file is LEN bytes", which says "you have it all".
    let victim = dir.path().join("victim.mp3");
    std::fs::rename(&mp3, &victim).unwrap();
    let before = std::fs::read(&victim).unwrap();
    symlink(
        &victim,
        own_part(&dir.path().join("r.catalog.csv"), &mp3, "1"),
    )
    .unwrap();
    let out = collect(&sandbox, &[arg(&results), "--download", arg(&songs)]).await;
    assert_ne!(code(&out), 0, "{}", stderr(&out));
    assert!(
        std::fs::symlink_metadata(&mp3).is_err(),
        "the link was renamed to the song's name"
    );
    assert_eq!(std::fs::read(&victim).unwrap(), before);
    let catalog = std::fs::read_to_string(dir.path().join("r.catalog.csv")).unwrap();
    assert!(catalog.contains("symlink"), "{catalog}");
}

/// The `.part` clip `index` of the catalog's only job downloads `mp3` to.
fn own_part(catalog: &Path, mp3: &Path, index: &str) -> PathBuf {
    let (headers, rows) = catalog_rows(catalog);
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let row = rows
        .iter()
        .find(|r| &r[col("clip_index")] == index)
        .unwrap();
    batchgen::engine::collect::download::resumable_part(
        mp3,
        &row[col("task_id")],
        &row[col("clip_id")],
    )
}

/// The catalog's rows as header → value maps.
fn catalog_rows(path: &Path) -> (csv::StringRecord, Vec<csv::StringRecord>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let rows = reader.records().map(Result::unwrap).collect();
    (headers, rows)
}

/// A template that names two clips alike (`{title_slug}`: both clips of a
/// task carry its title): the second gets a suffix of its own, each file
/// is its clip's (tagged with its clip ID), and a rerun keeps both where
/// they are without fetching either again.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_recorded_for_one_clip_never_becomes_another_clips() {
    let sandbox = quick_sandbox().await;
    let (dir, _manifest, results) = submitted(&sandbox).await;
    let songs = dir.path().join("songs");
    let args = [
        arg(&results),
        "--download",
        arg(&songs),
        "--name",
        "{title_slug}",
        "--download-concurrency",
        "1",
    ];
    let out = collect(&sandbox, &args).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let catalog = dir.path().join("r.catalog.csv");
    let (headers, rows) = catalog_rows(&catalog);
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (file, clip_id) = (col("file"), col("clip_id"));
    assert_eq!(rows.len(), 2);
    assert_ne!(rows[0][file], rows[1][file], "two clips, two files");
    for row in &rows {
        let tag = id3::Tag::read_from_path(&row[file]).unwrap();
        let named = tag
            .extended_texts()
            .find(|t| t.description == "batchgen:clip_id")
            .map(|t| t.value.clone());
        assert_eq!(named.as_deref(), Some(&row[clip_id]), "{row:?}");
    }
    let fetched = sandbox.stats().audio_fetches;
    let out = collect(&sandbox, &args).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let (_, again) = catalog_rows(&catalog);
    assert_eq!(again, rows, "each clip keeps its file");
    assert_eq!(
        sandbox.stats().audio_fetches,
        fetched,
        "nothing fetched again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_strangers_link_in_a_shared_folder_is_not_followed_to_an_empty_file() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = quick_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 1);
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    // An empty file reads as a new results file or catalog, so a link to
    // one would have it rewritten wherever it is.
    let victim = dir.path().join("empty-config");
    std::fs::write(&victim, "").unwrap();
    let plant = |name: &str| {
        let link = shared.join(name);
        symlink(&victim, &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).is_ok()
    };
    if !plant("r.csv") {
        eprintln!("skipped: giving a link to another user needs root");
        return;
    }
    let results = shared.join("r.csv");
    let out = run_checked(&sandbox, &[arg(&manifest), "--out", arg(&results)]).await;
    assert_eq!(code(&out), 73, "{}", stderr(&out));
    assert!(stderr(&out).contains("another user"), "{}", stderr(&out));
    assert_eq!(sandbox.stats().requests, 0);
    assert_eq!(std::fs::read(&victim).unwrap(), b"");

    // The catalog's default name beside a results file in that folder.
    std::fs::remove_file(&results).unwrap();
    submit_ok(&sandbox, &manifest, &results).await;
    assert!(plant("r.catalog.csv"));
    let out = collect(&sandbox, &[arg(&results)]).await;
    assert_eq!(code(&out), 73, "{}", stderr(&out));
    assert_eq!(std::fs::read(&victim).unwrap(), b"");

    // The user's own link there is theirs: followed, the link kept.
    std::fs::remove_file(shared.join("r.catalog.csv")).unwrap();
    let mine = dir.path().join("mine.csv");
    symlink(&mine, shared.join("r.catalog.csv")).unwrap_or(());
    std::fs::write(&mine, "").unwrap();
    let out = collect(&sandbox, &[arg(&results)]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(std::fs::read_to_string(&mine).unwrap().starts_with("key,"));
}

#[tokio::test(flavor = "multi_thread")]
async fn init_naming_the_csv_writes_the_toml_beside_it_not_into_it() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("x.csv");
    let out = run_with_env(vec!["init".into(), arg(&csv).into()], vec![]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let toml = std::fs::read_to_string(dir.path().join("x.toml")).unwrap();
    assert!(toml.starts_with('#'), "{toml}");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("id,"), "the CSV holds the CSV: {text}");
}

/// The clip ID in the batchgen tag of the MP3 at `path`.
fn tagged_clip(path: &Path) -> Option<String> {
    let tag = id3::Tag::read_from_path(path).ok()?;
    tag.extended_texts()
        .find(|t| t.description == "batchgen:clip_id")
        .map(|t| t.value.clone())
}

/// A file under a song's name that batchgen did not write for that clip
/// is neither taken for the song nor replaced: the song gets a name of
/// its own (its clip's suffix), the same on every run.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_planted_under_a_songs_name_is_not_taken_for_the_song() {
    let sandbox = quick_sandbox().await;
    let (dir, _manifest, results) = submitted(&sandbox).await;
    let songs = dir.path().join("songs");
    std::fs::create_dir_all(&songs).unwrap();
    let mp3 = songs.join("job-0-1.mp3");
    std::fs::write(&mp3, "planted, not audio").unwrap();
    let out = collect(&sandbox, &[arg(&results), "--download", arg(&songs)]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read(&mp3).unwrap(), b"planted, not audio");
    let (headers, rows) = catalog_rows(&dir.path().join("r.catalog.csv"));
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let first = rows.iter().find(|r| &r[col("clip_index")] == "1").unwrap();
    let file = PathBuf::from(&first[col("file")]);
    assert_ne!(file, mp3);
    assert!(file.starts_with(&songs), "{file:?}");
    assert_eq!(tagged_clip(&file).as_deref(), Some(&first[col("clip_id")]));
    assert!(!std::fs::read(songs.join("job-0-2.mp3")).unwrap().is_empty());
}

/// Two catalogs share a download folder (two manifests with the same ids,
/// or a job sent again into another results file): the second's songs take
/// names of their own, each tagged with its own clip ID, and the first's
/// files keep their bytes. The same folder reached by another name (a
/// symlink, as a bind mount would) is the same files: nothing is fetched
/// again.
#[tokio::test(flavor = "multi_thread")]
async fn songs_of_another_task_under_the_same_names_are_neither_adopted_nor_replaced() {
    let sandbox = quick_sandbox().await;
    let (dir, manifest, results) = submitted(&sandbox).await;
    let songs = dir.path().join("songs");
    let out = collect(&sandbox, &[arg(&results), "--download", arg(&songs)]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let firsts: Vec<(PathBuf, Vec<u8>)> = ["job-0-1.mp3", "job-0-2.mp3"]
        .iter()
        .map(|n| (songs.join(n), std::fs::read(songs.join(n)).unwrap()))
        .collect();

    let other = dir.path().join("other.csv");
    let out = run_checked(
        &sandbox,
        &[arg(&manifest), "--out", arg(&other), "--rate", "unlimited"],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = collect(&sandbox, &[arg(&other), "--download", arg(&songs)]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for (path, bytes) in &firsts {
        assert_eq!(&std::fs::read(path).unwrap(), bytes, "{path:?} untouched");
    }
    let (headers, rows) = catalog_rows(&dir.path().join("other.catalog.csv"));
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        let file = PathBuf::from(&row[col("file")]);
        assert!(firsts.iter().all(|(p, _)| *p != file), "{file:?}");
        assert_eq!(tagged_clip(&file).as_deref(), Some(&row[col("clip_id")]));
    }

    let fetched = sandbox.stats().audio_fetches;
    let alias = dir.path().join("alias");
    symlink(&songs, &alias).unwrap();
    let out = collect(&sandbox, &[arg(&results), "--download", arg(&alias)]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        sandbox.stats().audio_fetches,
        fetched,
        "nothing fetched again"
    );
    for (path, bytes) in &firsts {
        assert_eq!(&std::fs::read(path).unwrap(), bytes, "{path:?} untouched");
    }
}

/// The reports batchgen writes (the catalog report, the page, the
/// playlist) replace only files of their own kind: a manifest named as
/// the catalog (directly or through a hard link), a playlist or a page of
/// the user's beside the catalog keep their bytes, and the message says
/// what to do without telling anyone to move their file away. An earlier
/// release's playlist (no mark, beside its page) is batchgen's.
#[tokio::test(flavor = "multi_thread")]
async fn reports_replace_only_files_of_their_own_kind() {
    let sandbox = quick_sandbox().await;
    let (dir, manifest, results) = submitted(&sandbox).await;
    let out = collect(&sandbox, &[arg(&results)]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let page = dir.path().join("r.catalog.html");
    let playlist = dir.path().join("r.m3u8");
    assert!(page.is_file() && playlist.is_file());

    let kept = std::fs::read(&manifest).unwrap();
    let linked = dir.path().join("linked.csv");
    std::fs::hard_link(&manifest, &linked).unwrap();
    for named in [&manifest, &linked] {
        let out = collect(&sandbox, &[arg(&results), "--catalog", arg(named)]).await;
        assert_eq!(code(&out), 78, "{}", stderr(&out));
        assert_eq!(
            stderr(&out),
            format!(
                "batchgen: error: {}: not a batchgen catalog (its header lacks key, task_id, clip_index, status); \
                 batchgen leaves it untouched and fetched nothing. Name a file of its own with --catalog, \
                 or leave --catalog out for the one beside the results file\n",
                named.display()
            )
        );
        assert_eq!(std::fs::read(&manifest).unwrap(), kept);
    }

    let status = |html: bool| {
        let mut args = vec!["status".to_owned(), arg(&results).to_owned()];
        if html {
            args.push("--html".into());
        }
        run_with_env(args, vec![])
    };
    // An earlier release's playlist: replaced, with the mark.
    std::fs::write(&playlist, "#EXTM3U\n#EXTINF:1,old\nold.mp3\n").unwrap();
    let out = status(true).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = std::fs::read_to_string(&playlist).unwrap();
    assert!(text.starts_with(&format!("#EXTM3U\n{}\n", batchgen::files::playlist::MARK)));

    // The user's own playlist, with no page of batchgen's beside it.
    std::fs::remove_file(&page).unwrap();
    let mine = "#EXTM3U\n#EXTINF:200,Mine\n/music/mine.mp3\n";
    std::fs::write(&playlist, mine).unwrap();
    let out = status(true).await;
    assert_eq!(code(&out), 78, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{} is not a playlist batchgen wrote (it does not start with batchgen's mark, and no batchgen page is beside it), so it is left as it is",
            playlist.display()
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&playlist).unwrap(), mine);
    assert!(!page.exists());

    // The user's own page under the page's name: the same.
    std::fs::remove_file(&playlist).unwrap();
    std::fs::write(&page, "<html>my notes</html>").unwrap();
    let out = status(true).await;
    assert_eq!(code(&out), 78, "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&page).unwrap(),
        "<html>my notes</html>"
    );
    assert!(!playlist.exists());
}

/// `--out` naming the manifest, by its own name or another (a hard link):
/// refused as a usage error that says what it is and what to do, before
/// any file is made beside it and before any request.
#[tokio::test(flavor = "multi_thread")]
async fn out_naming_the_manifest_is_refused_before_anything_is_made() {
    let sandbox = quick_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 1);
    let kept = std::fs::read(&manifest).unwrap();
    let linked = dir.path().join("linked.csv");
    std::fs::hard_link(&manifest, &linked).unwrap();
    for out in [&manifest, &linked] {
        let before: Vec<PathBuf> = files_in(dir.path());
        let run = run_checked(&sandbox, &[arg(&manifest), "--out", arg(out)]).await;
        assert_eq!(code(&run), 2, "{}", stderr(&run));
        assert_eq!(
            stderr(&run).lines().next().unwrap(),
            format!(
                "batchgen: error: the results file {} is the manifest ({}): the results are a file of their own; \
                 leave --out out (the results go to {}) or name another file",
                out.display(),
                manifest.display(),
                dir.path().join("jobs.results.csv").display()
            )
        );
        assert_eq!(files_in(dir.path()), before, "nothing made");
        assert_eq!(std::fs::read(&manifest).unwrap(), kept);
    }
    assert_eq!(sandbox.stats().requests, 0);
}
