use std::io::Write;

use super::*;
use crate::files::results::{self, Record, Status};
use crate::job::JobsDigest;

fn record(id: &str, status: Status, task: &str) -> Record {
    Record {
        key: id.into(),
        line: 2,
        task_id: task.into(),
        status,
        attempts: 1,
        http_status: None,
        error: String::new(),
        submitted_at: String::new(),
        fingerprint: format!("fp-{id}"),
    }
}

fn merged(state: &mut State, rows: &[Record]) -> Vec<Record> {
    let mut merge = state.merge().unwrap();
    for r in rows {
        merge.put(r).unwrap();
    }
    let orphans = merge.orphans().unwrap();
    merge.finish(orphans.len()).unwrap();
    orphans
}

#[test]
fn the_store_is_named_after_the_results_file() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| path_for(&dir.path().join(name));
    assert_eq!(at("jobs.results.csv"), dir.path().join("jobs.results.db"));
    assert_eq!(at("OUT.CSV"), dir.path().join("OUT.db"));
    assert_eq!(at("results"), dir.path().join("results.db"));
    assert_eq!(at("x.db"), dir.path().join("x.db.db"));
}

#[test]
fn a_results_file_with_journal_rows_is_imported_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    results::write_atomic(
        &path,
        &[
            record("a", Status::Pending, ""),
            record("b", Status::Pending, ""),
            record("c", Status::Pending, ""),
        ],
    )
    .unwrap();
    // Journal rows as a killed run of the previous release left them.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"a,2,,sending,1,,,,fp-a\na,2,t-a,submitted,1,200,,2026-01-01T00:00:00Z,fp-a\nb,2,,sending,1,,,,fp-b\nc,2,t-c,unknown,1,,,,fp-c\nc,2,,sen")
        .unwrap();
    drop(f);
    let mut state = State::open(&path).unwrap();
    let mut merge = state.merge().unwrap();
    let a = merge.get("a").unwrap().unwrap();
    assert_eq!((a.status, a.task_id.as_str()), (Status::Submitted, "t-a"));
    let b = merge.get("b").unwrap().unwrap();
    assert_eq!(
        b.status,
        Status::Unknown,
        "a `sending` row may have been sent"
    );
    assert_eq!(b.error, results::INTERRUPTED);
    let c = merge.get("c").unwrap().unwrap();
    assert_eq!(
        (c.status, c.task_id.as_str()),
        (Status::Unknown, "t-c"),
        "a damaged last row keeps the job's task ID"
    );
    assert!(c.error.contains("line 9"), "{}", c.error);
    drop(merge);
    assert_eq!(state.tasks_of("a").unwrap(), ["t-a"]);
    assert_eq!(state.tasks_of("c").unwrap(), ["t-c"]);
    // The import happens once: the results file is a report from now on.
    drop(state);
    std::fs::write(
        &path,
        "id,line,task_id,status,attempts,http_status,error,submitted_at,fingerprint\n",
    )
    .unwrap();
    let mut state = State::open(&path).unwrap();
    assert_eq!(
        state.merge().unwrap().get("a").unwrap().unwrap().task_id,
        "t-a"
    );
}

#[test]
fn a_line_that_names_no_job_stops_the_import_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    results::write_atomic(&path, &[record("a", Status::Submitted, "t-a")]).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"b").unwrap();
    drop(f);
    let text = State::open(&path).err().unwrap().to_string();
    assert!(
        text.contains("r.csv:3:") && text.contains("names no job"),
        "{text}"
    );
    // Nothing was kept: once the line is repaired, the import runs.
    let repaired = std::fs::read_to_string(&path).unwrap().replace("\nb", "\n");
    std::fs::write(&path, repaired).unwrap();
    let mut state = State::open(&path).unwrap();
    assert!(state.merge().unwrap().get("a").unwrap().is_some());
}

#[test]
fn a_resend_adds_a_task_and_never_drops_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    let mut state = State::open(&path).unwrap();
    merged(&mut state, &[record("a", Status::Pending, "")]);
    state
        .record(&[&record("a", Status::Submitted, "t-1")])
        .unwrap();
    // Sent again (--retry-unknown): the new attempt's rows carry no task
    // ID until it is accepted, and a failure keeps the last one.
    state.record(&[&record("a", Status::Sending, "")]).unwrap();
    state.record(&[&record("a", Status::Failed, "")]).unwrap();
    let a = state.merge().unwrap().get("a").unwrap().unwrap();
    assert_eq!((a.status, a.task_id.as_str()), (Status::Failed, "t-1"));
    state
        .record(&[&record("a", Status::Submitted, "t-2")])
        .unwrap();
    assert_eq!(state.tasks_of("a").unwrap(), ["t-1", "t-2"]);
    assert_eq!(state.task_id_hashes().unwrap().len(), 2);
    state.write_report().unwrap();
    let rows = results::read(&path).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].task_id, "t-2");
}

#[test]
fn a_second_run_is_refused_whatever_name_leads_to_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    results::write_atomic(&path, &[record("a", Status::Pending, "")]).unwrap();
    let linked = dir.path().join("hard.csv");
    std::fs::hard_link(&path, &linked).unwrap();
    let first = State::open(&path).unwrap();
    for other in [
        path.clone(),
        dir.path().join(".").join("r.csv"),
        linked.clone(),
    ] {
        assert!(
            matches!(State::open(&other), Err(ResultsError::Locked { .. })),
            "{}",
            other.display()
        );
    }
    // A report written by the first run is held too.
    first.write_report().unwrap();
    let relinked = dir.path().join("again.csv");
    std::fs::hard_link(&path, &relinked).unwrap();
    assert!(matches!(
        State::open(&relinked),
        Err(ResultsError::Locked { .. })
    ));
    drop(first);
    State::open(&linked).unwrap();
}

#[test]
fn a_store_from_a_newer_batchgen_or_another_program_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    drop(State::open(&path).unwrap());
    let store = path_for(&path);
    {
        let conn = Connection::open(&store).unwrap();
        conn.pragma_update(None, "user_version", schema::VERSION + 1)
            .unwrap();
    }
    let before = std::fs::read(&store).unwrap();
    for text in [
        State::open(&path).err().unwrap().to_string(),
        State::open_read_only(&path).err().unwrap().to_string(),
    ] {
        assert!(
            text.contains(&format!("version {}", schema::VERSION + 1))
                && text.contains(&format!("up to {}", schema::VERSION)),
            "{text}"
        );
    }
    assert_eq!(std::fs::read(&store).unwrap(), before);

    std::fs::write(
        &store,
        b"this is not a database, but it is long enough to look like one at a glance",
    )
    .unwrap();
    let _ = std::fs::remove_file(dir.path().join("r.db-wal"));
    let err = State::open(&path).err().unwrap();
    assert!(
        matches!(&err, ResultsError::Refused(t) if t.contains("not a batchgen state file")),
        "{err}"
    );
}

#[test]
fn a_dry_run_plans_from_a_results_file_without_writing_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    results::write_atomic(&path, &[record("a", Status::Submitted, "t-a")]).unwrap();
    let mut state = State::open_read_only(&path).unwrap();
    let orphans = merged(&mut state, &[record("b", Status::Pending, "")]);
    assert_eq!(orphans.len(), 1);
    assert!(!path_for(&path).exists());
    // And read-only on a store that exists: the merge keeps nothing.
    drop(State::open(&path).unwrap());
    let mut state = State::open_read_only(&path).unwrap();
    merged(&mut state, &[record("b", Status::Pending, "")]);
    let mut state = State::open(&path).unwrap();
    assert!(state.merge().unwrap().get("b").unwrap().is_none());
}

#[test]
fn the_fast_plan_holds_only_while_the_store_is_the_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    let mut state = State::open(&path).unwrap();
    let rows = [
        record("a", Status::Pending, ""),
        record("b", Status::Pending, ""),
    ];
    merged(&mut state, &rows);
    let mut digest = JobsDigest::default();
    for r in &rows {
        digest.add(r.key.as_bytes(), r.line, r.fingerprint.as_bytes());
    }
    let mut seen = Vec::new();
    assert!(
        state
            .statuses_if_unchanged(&digest.finish(), 2, |s| seen.push(s))
            .unwrap()
    );
    assert_eq!(seen, [Status::Pending, Status::Pending]);
    assert!(
        !state
            .statuses_if_unchanged(&digest.finish(), 3, |_| ())
            .unwrap()
    );
    state.record(&[&record("b", Status::Sending, "")]).unwrap();
    assert!(
        !state
            .statuses_if_unchanged(&digest.finish(), 2, |_| ())
            .unwrap(),
        "a job in flight is the full merge's to settle"
    );
}

#[test]
fn a_deleted_store_is_rebuilt_from_its_report_with_every_task_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    let mut state = State::open(&path).unwrap();
    merged(
        &mut state,
        &[
            record("a", Status::Pending, ""),
            record("b", Status::Pending, ""),
        ],
    );
    state
        .record(&[&record("a", Status::Submitted, "t-1")])
        .unwrap();
    state.record(&[&record("a", Status::Unknown, "")]).unwrap();
    state
        .record(&[&record("a", Status::Submitted, "t-2")])
        .unwrap();
    state.write_report().unwrap();
    drop(state);
    let report = std::fs::read_to_string(&path).unwrap();
    assert!(
        report.starts_with(&format!("{}\n", results::REPORT_COLUMNS.join(","))),
        "{report}"
    );
    assert!(report.contains(",t-1 t-2,results/3\n"), "{report}");
    for file in files_for(&path) {
        let _ = std::fs::remove_file(file);
    }
    let state = State::open(&path).unwrap();
    assert_eq!(state.tasks_of("a").unwrap(), ["t-1", "t-2"]);
    state.write_report().unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        report,
        "the same report again"
    );
}

#[test]
fn a_report_of_a_newer_format_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    let header = results::REPORT_COLUMNS.join(",");
    for (text, names) in [
        (
            format!("{header},stars\na,2,,pending,0,,,,,,results/4,5\n"),
            "columns this batchgen does not know",
        ),
        (
            format!("{header}\na,2,,pending,0,,,,,,results/4\n"),
            "format results/4",
        ),
    ] {
        std::fs::write(&path, &text).unwrap();
        let err = State::open(&path).err().unwrap().to_string();
        assert!(
            err.contains("newer batchgen") && err.contains(names),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        assert!(!State::exists(&path));
    }
}

#[test]
fn a_link_planted_at_the_stores_names_is_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "keep me").unwrap();
    for name in ["r.db", "r.db-wal", "r.db-shm"] {
        let planted = dir.path().join(name);
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let err = State::open(&path).err().expect("refused").to_string();
        assert!(err.contains("symlink"), "{name}: {err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        std::fs::remove_file(&planted).unwrap();
    }
    State::open(&path).unwrap();
}

// The catalog: clips and files in the store, the report, the import.

fn clip(key: &str, task: &str, index: u32, status: &str, file: &str) -> crate::files::catalog::Row {
    crate::files::catalog::Row {
        key: key.into(),
        task_id: task.into(),
        clip_index: index,
        clip_id: format!("{task}-{index}"),
        status: status.into(),
        title: format!("song {key}"),
        file: file.into(),
        file_bytes: (!file.is_empty()).then_some(100),
        ..Default::default()
    }
}

/// A results file of submitted jobs `keys` (task `t-<key>`), its store built.
fn submitted(dir: &Path, keys: &[&str]) -> PathBuf {
    let path = dir.join("r.csv");
    let rows: Vec<Record> = keys
        .iter()
        .map(|k| record(k, Status::Submitted, &format!("t-{k}")))
        .collect();
    results::write_atomic(&path, &rows).unwrap();
    path
}

fn answer(body: &str) -> crate::api::feed::TaskClips {
    crate::api::feed::parse(body.as_bytes()).unwrap()
}

fn report_rows(path: &Path) -> Vec<crate::files::catalog::Row> {
    let mut rows = Vec::new();
    crate::files::catalog::each_row(path, |_, r| rows.push(r)).unwrap();
    rows
}

#[test]
fn an_earlier_release_catalog_is_imported_by_its_rules_once() {
    let dir = tempfile::tempdir().unwrap();
    let results = submitted(dir.path(), &["a", "b", "c"]);
    let catalog = dir.path().join("r.catalog.csv");
    // Body, then appended rows: a's clip 1 completed and downloaded; b sent
    // again (its new task's row supersedes the old task's two); c cut short.
    let mut writer = csv::Writer::from_writer(Vec::new());
    for r in [
        clip("a", "t-a", 1, "text", ""),
        clip("a", "t-a", 2, "complete", "a-2.mp3"),
        clip("b", "old", 1, "complete", "b-1.mp3"),
        clip("b", "old", 2, "complete", "b-2.mp3"),
        clip("a", "t-a", 1, "complete", "a-1.mp3"),
        clip("b", "t-b", 1, "text", ""),
    ] {
        writer.serialize(r).unwrap();
    }
    let mut bytes = writer.into_inner().unwrap();
    bytes.extend_from_slice(b"c,t-c,1,t-c-1,,,,comp");
    std::fs::write(&catalog, &bytes).unwrap();

    let store = Catalog::open(&results, &catalog).unwrap();
    let a = store.rows_of("a").unwrap();
    assert_eq!(
        a.iter()
            .map(|r| (r.clip_index, r.status.as_str(), r.file.as_str()))
            .collect::<Vec<_>>(),
        [(1, "complete", "a-1.mp3"), (2, "complete", "a-2.mp3")]
    );
    let b = store.rows_of("b").unwrap();
    assert_eq!(b.len(), 1, "the new task's rows replace the old task's");
    assert_eq!((b[0].task_id.as_str(), b[0].file.as_str()), ("t-b", ""));
    assert!(store.rows_of("c").unwrap().is_empty(), "a torn row is none");
    let mut files = Vec::new();
    store.audio_paths(|p| files.push(p.to_owned())).unwrap();
    files.sort();
    assert_eq!(
        files,
        ["a-1.mp3", "a-2.mp3", "b-1.mp3", "b-2.mp3"],
        "the old task's files stay recorded (their names stay taken)"
    );
    // The end of the run writes the report in the current format.
    store.write_report().unwrap();
    drop(store);
    let text = std::fs::read_to_string(&catalog).unwrap();
    assert!(
        text.lines().skip(1).all(|l| l.ends_with(",catalog/3")),
        "{text}"
    );
    assert_eq!(report_rows(&catalog).len(), 3);

    // Imported once: a report edited by hand is not state.
    std::fs::write(&catalog, "key,task_id,clip_index,status\n").unwrap();
    let store = Catalog::open(&results, &catalog).unwrap();
    assert_eq!(store.rows_of("a").unwrap().len(), 2);
}

#[test]
fn a_catalog_of_another_results_file_is_refused_and_a_stray_job_kept() {
    let dir = tempfile::tempdir().unwrap();
    let results = submitted(dir.path(), &["a"]);
    let catalog = dir.path().join("r.catalog.csv");
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .serialize(clip("zz", "t-z", 1, "complete", ""))
        .unwrap();
    let bytes = writer.into_inner().unwrap();
    std::fs::write(&catalog, &bytes).unwrap();
    let err = Catalog::open(&results, &catalog).unwrap_err();
    assert!(
        matches!(&err, CatalogError::Refused(m) if m.contains("none of its jobs") && m.contains("\"zz\"")),
        "{err}"
    );
    assert_eq!(std::fs::read(&catalog).unwrap(), bytes, "left untouched");

    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .serialize(clip("zz", "t-z", 1, "complete", "zz.mp3"))
        .unwrap();
    writer
        .serialize(clip("a", "t-a", 1, "complete", ""))
        .unwrap();
    std::fs::write(&catalog, writer.into_inner().unwrap()).unwrap();
    let store = Catalog::open(&results, &catalog).unwrap();
    assert_eq!(store.rows_of("zz").unwrap()[0].file, "zz.mp3");
    store.write_report().unwrap();
    drop(store);
    let keys: Vec<String> = report_rows(&catalog)
        .into_iter()
        .map(|r| r.key.into_string())
        .collect();
    assert_eq!(keys, ["a", "zz"], "the stray job after the others");
    let state = State::open(&results).unwrap();
    assert_eq!(state.tasks_of("zz").unwrap(), ["t-z"]);
}

#[test]
fn answers_and_downloads_reach_the_store_and_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let results = submitted(dir.path(), &["a", "b"]);
    let catalog = dir.path().join("r.catalog.csv");
    let store = Catalog::open(&results, &catalog).unwrap();
    let done = r#"[{"id":"c1","status":"complete","audio_url":"https://cdn.example/1.mp3"},
                   {"id":"c2","status":"complete","audio_url":"https://cdn.example/2.mp3"}]"#;
    let applied = store.apply("b", "t-b", &answer(done)).unwrap();
    assert!(applied.changed && applied.finished);
    assert_eq!(store.rows_written(), 0, "pending until the writer commits");
    assert_eq!(
        store.rows_of("b").unwrap().len(),
        2,
        "but read back already"
    );
    store.flush().unwrap();
    assert_eq!(store.rows_written(), 2);
    assert!(
        store
            .update_job("b", 1, "t-b", |job| {
                let r = job.row_mut(1).unwrap();
                r.file = "b-1.mp3".into();
                r.file_bytes = Some(7);
            })
            .unwrap()
    );
    assert!(!store.update_job("b", 1, "another task", |_| {}).unwrap());
    store.write_report().unwrap();
    let rows = report_rows(&catalog);
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].file.as_str(), rows[0].file_bytes),
        ("b-1.mp3", Some(7))
    );

    // A second collector is refused; a run may send beside it.
    let err = Catalog::open(&results, &catalog).unwrap_err();
    assert!(matches!(err, CatalogError::Locked { .. }), "{err}");
    let link = dir.path().join("link.csv");
    std::fs::hard_link(&catalog, &link).unwrap();
    let err = Catalog::open(&results, &link).unwrap_err();
    assert!(matches!(err, CatalogError::Locked { .. }), "{err}");
    drop(State::open(&results).unwrap());

    // A job sent again: its new task's clip never shows the old file.
    store
        .apply("b", "t-b2", &answer(r#"[{"id":"c1","status":"text"}]"#))
        .unwrap();
    store.flush().unwrap();
    let b = store.rows_of("b").unwrap();
    assert_eq!(
        (b.len(), b[0].task_id.as_str(), b[0].file.as_str()),
        (1, "t-b2", "")
    );
    drop(store);

    // Readers see it all, in report order.
    let snapshot = Snapshot::open_with_catalog(&results, &catalog).unwrap();
    let mut seen = Vec::new();
    snapshot
        .each_job(|job| {
            seen.push((job.key, job.place, job.rows.len()));
            Ok::<_, CatalogError>(())
        })
        .unwrap();
    assert_eq!(seen, [("a".into(), 0, 0), ("b".into(), 1, 1)]);
}

#[test]
fn a_reader_imports_a_catalog_in_memory_when_the_store_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let results = submitted(dir.path(), &["a"]);
    drop(State::open(&results).unwrap());
    let catalog = dir.path().join("r.catalog.csv");
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .serialize(clip("a", "t-a", 1, "complete", ""))
        .unwrap();
    std::fs::write(&catalog, writer.into_inner().unwrap()).unwrap();
    // An earlier release's collector holds the catalog.
    let held = results::Lock::acquire(&catalog).unwrap();
    let snapshot = Snapshot::open_with_catalog(&results, &catalog).unwrap();
    assert!(snapshot.has_clips().unwrap());
    drop(held);
    let on_disk = Snapshot::open(&results).unwrap();
    assert!(!on_disk.has_clips().unwrap(), "nothing written");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_writer_that_cannot_write_says_so_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let results = submitted(dir.path(), &["a"]);
    let catalog = dir.path().join("r.catalog.csv");
    let store = Catalog::open(&results, &catalog).unwrap();
    // Something the writer cannot get past (a full disk, say).
    rusqlite::Connection::open(store.store())
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER full BEFORE INSERT ON clips BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END",
        )
        .unwrap();
    let failed = tokio_util::sync::CancellationToken::new();
    let writer = flusher(
        Arc::clone(&store),
        tokio_util::sync::CancellationToken::new(),
        failed.clone(),
    );
    store
        .apply("a", "t-a", &answer(r#"[{"id":"c1","status":"text"}]"#))
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(30), failed.cancelled())
        .await
        .expect("the run is told");
    assert!(writer.await.unwrap().is_err());
    assert_eq!(
        store.rows_of("a").unwrap().len(),
        1,
        "the answer is still held"
    );
    // And no answer is taken after it: a receiver must not acknowledge a
    // callback it can no longer keep (it answers 503, and the host retries).
    let refused = store.apply("a", "t-a", &answer(r#"[{"id":"c1","status":"first"}]"#));
    assert!(
        matches!(&refused, Err(CatalogError::Writer(why)) if why.contains("database or disk is full")),
        "{refused:?}"
    );
}

#[test]
fn each_run_is_a_row_and_a_run_that_never_finished_is_counted_apart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    let mut state = State::open(&path).unwrap();
    merged(&mut state, &[record("a", Status::Pending, "")]);
    let first = state.start_run(Some(100.0)).unwrap();
    state.finish_run(first, 3, 20.0, Some(80.0)).unwrap();
    // A host that shows no balance: estimated only.
    let second = state.start_run(None).unwrap();
    state.finish_run(second, 1, 10.0, None).unwrap();
    // Killed between its first request and its last.
    state.start_run(Some(80.0)).unwrap();
    // A top-up during the run: never a negative charge.
    let fourth = state.start_run(Some(70.0)).unwrap();
    state.finish_run(fourth, 2, 12.5, Some(500.0)).unwrap();
    // Stopped before its first request: no run of the store's.
    let fifth = state.start_run(Some(500.0)).unwrap();
    state.finish_run(fifth, 0, 0.0, None).unwrap();
    drop(state);
    let spending = Snapshot::open(&path).unwrap().spending().unwrap();
    assert_eq!(
        spending,
        super::Spending {
            runs: 3,
            unfinished: 1,
            credits_estimated: 42.5,
            credits_measured: 20.0,
            runs_measured: 2,
            last: Some(super::RunSpend {
                credits_estimated: 12.5,
                balance_before: Some(70.0),
                balance_after: Some(500.0),
            }),
        }
    );
    assert_eq!(spending.last.unwrap().credits_measured(), Some(0.0));
}
