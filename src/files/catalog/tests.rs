//! The catalog file as body and tail: reading, appending, compacting, and
//! what a kill or a hand leaves behind.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use super::*;
use crate::api::feed;

fn row(key: &str, task: &str, clip: u32, status: &str) -> Row {
    Row {
        key: key.into(),
        task_id: task.into(),
        clip_index: clip,
        clip_id: format!("{key}-{clip}"),
        status: status.into(),
        title: format!("title of {key}"),
        ..Row::default()
    }
}

fn write(path: &Path, rows: &[Row]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for r in rows {
        writer.serialize(r).unwrap();
    }
    let bytes = writer.into_inner().unwrap();
    std::fs::write(path, &bytes).unwrap();
    bytes
}

fn append(path: &Path, rows: &[Row]) {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    for r in rows {
        writer.serialize(r).unwrap();
    }
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(&writer.into_inner().unwrap()).unwrap();
}

/// Each job's key and its rows' (clip, task, status).
type Seen = Vec<(String, Vec<(u32, String, String)>)>;

fn all(path: &Path, ranks: &Arc<Ranks>) -> Seen {
    read_jobs(path, Arc::clone(ranks))
        .unwrap()
        .unwrap()
        .map(|j| {
            let j = j.unwrap();
            let rows = j
                .rows
                .iter()
                .map(|r| (r.clip_index, r.task_id.clone(), r.status.clone()))
                .collect();
            (j.key, rows)
        })
        .collect()
}

fn file_rows(path: &Path) -> Vec<(String, u32)> {
    csv::Reader::from_path(path)
        .unwrap()
        .deserialize::<Row>()
        .map(|r| {
            let r = r.unwrap();
            (r.key, r.clip_index)
        })
        .collect()
}

#[test]
fn a_tail_is_merged_in_place_order_and_its_latest_rows_win() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.catalog.csv");
    let ranks = Arc::new(Ranks::new(["a", "b", "c", "d"]));
    write(
        &path,
        &[
            row("a", "ta", 1, "text"),
            row("a", "ta", 2, "text"),
            row("c", "tc", 1, "complete"),
            row("c", "tc", 2, "complete"),
        ],
    );
    // Appended since: b (only in the tail, placed between a and c), a's
    // first clip twice, and c submitted again (its new task's row).
    append(
        &path,
        &[
            row("b", "tb", 1, "first"),
            row("a", "ta", 1, "first"),
            row("a", "ta", 1, "complete"),
            row("c", "tc2", 1, "new"),
            row("zz", "tz", 1, "complete"),
        ],
    );
    let layout = Layout::read(&path, &ranks).unwrap().unwrap();
    assert!(!layout.is_compact());
    assert_eq!(layout.body_jobs, 2);
    let jobs = all(&path, &ranks);
    let keys: Vec<&str> = jobs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["a", "b", "c", "zz"], "place order, strangers last");
    assert_eq!(
        jobs[0].1,
        [
            (1, "ta".into(), "complete".into()),
            (2, "ta".into(), "text".into())
        ]
    );
    assert_eq!(
        jobs[2].1,
        [(1, "tc2".into(), "new".into())],
        "the new task's rows only"
    );

    // One job looked up by itself sees the same.
    let c = scan::job_rows(&path, &layout, &ranks, "c").unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].task_id, "tc2");
}

#[test]
fn opening_compacts_a_tail_and_drops_a_row_a_kill_cut_short() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.catalog.csv");
    let ranks = Arc::new(Ranks::new(["a", "b"]));
    write(&path, &[row("b", "tb", 1, "complete")]);
    append(&path, &[row("a", "ta", 1, "complete")]);
    // Half a row, inside a quoted cell, as a kill in mid-append leaves it.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(b"a,ta,2,a-2,\"half a ti").unwrap();
    drop(file);

    let store = SharedCatalog::open(&path, Arc::clone(&ranks)).unwrap();
    assert_eq!(store.compactions(), 1);
    assert_eq!(file_rows(&path), [("a".into(), 1), ("b".into(), 1)]);
    let layout = Layout::read(&path, &ranks).unwrap().unwrap();
    assert!(layout.is_compact(), "{layout:?}");

    // Damage with rows after it is not a torn append: refused, untouched.
    let bytes = write(&path, &[row("a", "ta", 1, "complete")]);
    let mut damaged = bytes.clone();
    damaged.extend_from_slice(b"a,ta,notanumber,x,,,,complete\n");
    damaged.extend_from_slice(&bytes[bytes.iter().position(|&b| b == b'\n').unwrap() + 1..]);
    std::fs::write(&path, &damaged).unwrap();
    let err = SharedCatalog::open(&path, Arc::clone(&ranks)).unwrap_err();
    assert!(matches!(err, CatalogError::Refused(_)), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), damaged);

    // A file of another kind is refused too.
    std::fs::write(&path, "name,size\nx,1\n").unwrap();
    let err = SharedCatalog::open(&path, ranks).unwrap_err();
    assert!(err.to_string().contains("not a batchgen catalog"), "{err}");
}

fn answer(clips: &[(&str, &str)]) -> feed::TaskClips {
    let body: Vec<String> = clips
        .iter()
        .map(|(id, status)| {
            format!(
                r#"{{"id":"{id}","status":"{status}","audio_url":"https://cdn.example/{id}.mp3"}}"#
            )
        })
        .collect();
    feed::parse(format!("[{}]", body.join(",")).as_bytes()).unwrap()
}

/// A run against a reference: answers applied to jobs at random, appended,
/// the store dropped (a kill after the last append) and opened again,
/// compacted; what the file says is what the reference says, in order.
#[test]
fn appends_kills_and_compactions_keep_every_answer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.catalog.csv");
    let keys: Vec<String> = (0..300).map(|i| format!("job-{i:03}")).collect();
    let ranks = || Arc::new(Ranks::new(keys.iter().map(String::as_str)));
    let mut reference: BTreeMap<usize, JobRows> = BTreeMap::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    for round in 0..6 {
        let store = SharedCatalog::open(&path, ranks()).unwrap();
        for _ in 0..400 {
            let i = next(keys.len());
            let stage = ["text", "first", "complete"][next(3)];
            let clips = [
                (format!("{i}-a"), stage),
                (format!("{i}-b"), if next(2) == 0 { "text" } else { stage }),
            ];
            let clips: Vec<(&str, &str)> = clips.iter().map(|(a, b)| (a.as_str(), *b)).collect();
            let body = answer(&clips);
            store.apply(&keys[i], "t", &body).unwrap();
            reference.entry(i).or_default().apply(&keys[i], "t", &body);
            if next(50) == 0 {
                store.flush().unwrap();
            }
        }
        if round % 2 == 0 {
            store.compact().unwrap();
        } else {
            store.flush().unwrap();
        }
        assert!(store.jobs_in_memory() == 0, "nothing held, nothing kept");
        drop(store);
    }
    let found = all(&path, &ranks());
    let expected: Seen = reference
        .iter()
        .map(|(&i, job)| {
            let rows = job
                .rows
                .iter()
                .map(|r| (r.clip_index, r.task_id.clone(), r.status.clone()))
                .collect();
            (keys[i].clone(), rows)
        })
        .collect();
    assert_eq!(found, expected);
    // Opening compacts what the last run left as a tail; the file is then
    // the body alone, in place order, one row a clip.
    drop(SharedCatalog::open(&path, ranks()).unwrap());
    let rows = file_rows(&path);
    let mut sorted = rows.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(rows, sorted);
}

#[test]
fn any_job_is_found_through_the_sparse_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.catalog.csv");
    let keys: Vec<String> = (0..500).map(|i| format!("k{i}")).collect();
    let ranks = Arc::new(Ranks::new(keys.iter().map(String::as_str)));
    let rows: Vec<Row> = keys
        .iter()
        .flat_map(|k| [row(k, "t", 1, "complete"), row(k, "t", 2, "failed")])
        .collect();
    write(&path, &rows);
    let layout = Layout::read(&path, &ranks).unwrap().unwrap();
    assert!(layout.is_compact());
    for k in keys.iter().step_by(7).chain([&keys[0], &keys[499]]) {
        let found = scan::job_rows(&path, &layout, &ranks, k).unwrap();
        assert_eq!(found.len(), 2, "{k}");
        assert!(found.iter().all(|r| &r.key == k));
    }
    assert!(
        scan::job_rows(&path, &layout, &ranks, "nope")
            .unwrap()
            .is_empty()
    );
}
