use std::io::Write;

use super::*;
use crate::files::results::{self, Record, Status};
use crate::job::JobsDigest;

fn record(id: &str, status: Status, task: &str) -> Record {
    Record {
        id: id.into(),
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
        digest.add(r.id.as_bytes(), r.line, r.fingerprint.as_bytes());
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
    assert!(report.contains(",t-1 t-2,results/2\n"), "{report}");
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
            format!("{header},stars\na,2,,pending,0,,,,,,results/3,5\n"),
            "columns this batchgen does not know",
        ),
        (
            format!("{header}\na,2,,pending,0,,,,,,results/3\n"),
            "format results/3",
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
