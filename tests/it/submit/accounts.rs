//! Tasks remember the account that made them: the state file, `status`
//! and collect name it by its key's fingerprint, never by the key.

use batchgen::sandbox::SandboxConfig;

use crate::common::{self, code, csv_manifest, run_bin, stderr};

#[tokio::test]
async fn each_task_names_its_account_by_fingerprint_and_the_key_is_in_no_file() {
    let sb = common::sandbox(SandboxConfig::default()).await;
    let tmp = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(tmp.path(), 3);
    let out = run_bin(&sb, &[common::arg(&manifest), "--rate", "unlimited"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let fingerprint = batchgen::util::redact::Secret::new(sb.key()).fingerprint();
    assert!(
        fingerprint.starts_with("key-") && fingerprint.len() == 12,
        "{fingerprint}"
    );

    let conn = rusqlite::Connection::open(tmp.path().join("jobs.results.db")).unwrap();
    let accounts: Vec<String> = conn
        .prepare("SELECT account FROM tasks ORDER BY job_id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(accounts, vec![fingerprint.clone(); 3]);
    drop(conn);

    let results = tmp.path().join("jobs.results.csv");
    let status =
        common::run_with_env(vec!["status".into(), common::arg(&results).into()], vec![]).await;
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains(&format!("  accounts:  {fingerprint} 3 tasks\n")),
        "{text}"
    );

    // Nothing the run wrote holds the key (the store's pages included).
    for entry in std::fs::read_dir(tmp.path()).unwrap().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap();
        assert!(
            !bytes
                .windows(sb.key().len())
                .any(|w| w == sb.key().as_bytes()),
            "{} holds the key",
            entry.path().display()
        );
    }
}
