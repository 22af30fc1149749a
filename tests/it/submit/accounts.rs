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

/// A feed is per account: a collect with another key (a rotated one, or
/// the wrong one) says whose tasks they are, and the key that made them
/// collects them.
#[tokio::test]
async fn a_collect_with_another_key_names_the_account_that_made_the_tasks() {
    use batchgen::sandbox::KeySpec;
    let sb = common::sandbox(SandboxConfig {
        keys: vec![
            KeySpec::new("sk-account-one"),
            KeySpec::new("sk-account-two"),
        ],
        stage_time: std::time::Duration::from_millis(50),
        ..SandboxConfig::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(tmp.path(), 2);
    let base = sb.base_url();
    let out = common::run_at(&base, "sk-account-one", &[common::arg(&manifest), "-q"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let one = batchgen::util::redact::Secret::new("sk-account-one").fingerprint();
    let two = batchgen::util::redact::Secret::new("sk-account-two").fingerprint();

    let results = tmp.path().join("jobs.results.csv");
    let collect = |key: &str| {
        let args = [
            "collect",
            common::arg(&results),
            "--poll-interval",
            "50ms",
            "--deadline",
            "1s",
        ];
        common::run_with_env(
            args.iter().map(|s| s.to_string()).collect(),
            vec![
                ("BATCHGEN_BASE_URL".into(), base.clone()),
                ("BATCHGEN_API_KEY".into(), key.to_owned()),
            ],
        )
    };
    let out = collect("sk-account-two").await;
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "batchgen: warning: 2 tasks were made with {one}, not the key set now ({two}): a host's feed is per account; if their polls fail, collect them with the key that made them"
        )),
        "{err}"
    );
    assert!(!err.contains("sk-account"), "no key in any message: {err}");

    let out = collect("sk-account-one").await;
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert!(err.contains("2/2 tasks finished"), "{err}");
    assert!(!err.contains("not the key set now"), "{err}");
}
