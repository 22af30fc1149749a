//! The catalog CSV: a report read back (an earlier release's file, with
//! its appended rows and a last row cut short), and written whole.

use std::io::Write;

use super::*;

fn row(key: &str, task: &str, clip: u32, status: &str) -> Row {
    Row {
        key: key.into(),
        task_id: task.into(),
        clip_index: clip,
        clip_id: format!("{key}-{clip}"),
        status: status.into(),
        title: format!("=title of {key}"),
        error: "HTTP 500, key catalog-test-secret-4242".into(),
        ..Row::default()
    }
}

/// An earlier release's catalog: Row's columns, no `format`.
fn write_v1(path: &Path, rows: &[Row]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for r in rows {
        writer.serialize(r).unwrap();
    }
    let bytes = writer.into_inner().unwrap();
    std::fs::write(path, &bytes).unwrap();
    bytes
}

fn read(path: &Path) -> Result<Vec<(u64, Row)>, CatalogError> {
    let mut rows = Vec::new();
    each_row(path, |line, row| rows.push((line, row)))?;
    Ok(rows)
}

#[test]
fn a_report_reads_back_as_written_and_names_its_format() {
    crate::util::redact::register("catalog-test-secret-4242");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.catalog.csv");
    let rows = [row("a", "t1", 1, "complete"), row("a", "t1", 2, "failed")];
    let mut out = ReportWriter::new(&path).unwrap();
    for r in &rows {
        out.write(r).unwrap();
    }
    out.finish().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let header = text.lines().next().unwrap();
    assert!(
        header.starts_with("key,task_id,clip_index,clip_id,"),
        "{header}"
    );
    assert!(
        header
            .ends_with(",lyrics,measured_duration,loudness,true_peak,verdict,reasons,pick,format"),
        "{header}"
    );
    assert!(
        text.lines().skip(1).all(|l| l.ends_with(",catalog/3")),
        "{text}"
    );
    assert!(
        !text.contains("catalog-test-secret-4242"),
        "the error column is redacted"
    );
    assert!(text.contains("'=title of a"), "server text is defused");
    let back = read(&path).unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back[0].1.title, "=title of a", "and read back exactly");
    assert_eq!((back[0].0, back[1].0), (2, 3), "lines are the file's");
}

#[test]
fn an_earlier_release_file_reads_with_its_appended_rows_and_a_torn_last_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.catalog.csv");
    write_v1(
        &path,
        &[
            row("a", "t1", 1, "text"),
            row("b", "t2", 1, "complete"),
            row("a", "t1", 1, "complete"),
        ],
    );
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(b"a,t1,2,a-2,\"cut sho").unwrap();
    let back = read(&path).unwrap();
    let seen: Vec<(&str, &str)> = back
        .iter()
        .map(|(_, r)| (r.key.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(seen, [("a", "text"), ("b", "complete"), ("a", "complete")]);
    assert!(read(&dir.path().join("none.csv")).unwrap().is_empty());
    assert!(!each_row(&dir.path().join("none.csv"), |_, _| {}).unwrap());
}

#[test]
fn damage_before_the_end_a_foreign_file_and_a_newer_format_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.catalog.csv");
    let good = write_v1(&path, &[row("a", "t1", 1, "complete")]);
    let mut damaged = good.clone();
    damaged.extend_from_slice(b"a,t1,notanumber,x,,,,complete\n");
    damaged.extend_from_slice(&good[good.iter().position(|&b| b == b'\n').unwrap() + 1..]);
    std::fs::write(&path, &damaged).unwrap();
    let err = read(&path).unwrap_err();
    assert!(
        matches!(&err, CatalogError::Refused(m) if m.contains("line 3") && m.contains("not a batchgen catalog")),
        "{err}"
    );

    std::fs::write(&path, "name,size\nx,1\n").unwrap();
    let err = read(&path).unwrap_err();
    assert!(
        matches!(&err, CatalogError::Refused(m) if m.contains("lacks key, task_id, clip_index, status")),
        "{err}"
    );

    let mut out = ReportWriter::new(&path).unwrap();
    out.write(&row("a", "t1", 1, "complete")).unwrap();
    out.finish().unwrap();
    let newer = std::fs::read_to_string(&path)
        .unwrap()
        .replace("catalog/3", "catalog/4");
    std::fs::write(&path, &newer).unwrap();
    let err = read(&path).unwrap_err();
    assert!(
        matches!(&err, CatalogError::Refused(m) if m.contains("\"catalog/4\"") && m.contains(FORMAT)),
        "{err}"
    );
}

/// The previous release's catalog (`catalog/2`: no measurement columns)
/// reads, its takes unmeasured.
#[test]
fn a_second_format_catalog_reads_with_its_takes_unmeasured() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.catalog.csv");
    std::fs::write(
        &path,
        "key,task_id,clip_index,clip_id,title,style,model,status,duration,created_at,audio_url,image_url,file,file_bytes,image_file,error,lyrics,format\n\
         a,t1,1,c1,Rain,lofi,V4_5,complete,61.5,2026-11-01T00:00:00Z,https://cdn.example/c1.mp3,,songs/a-1.mp3,123,,,la la,catalog/2\n",
    )
    .unwrap();
    let back = read(&path).unwrap();
    assert_eq!(back.len(), 1);
    let r = &back[0].1;
    assert_eq!(
        (r.file.as_str(), r.file_bytes),
        ("songs/a-1.mp3", Some(123))
    );
    assert_eq!(
        (r.measured_duration, r.loudness, r.verdict.as_str(), r.pick),
        (None, None, "", false)
    );
    assert!(r.measured.is_none());
}
