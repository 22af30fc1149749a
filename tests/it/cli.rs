//! The command line as a user meets it: subcommands, key files, warnings.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use batchgen::sandbox::SandboxConfig;

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn sandbox_subcommand_prints_its_address_and_key_first() {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("batchgen"))
        .args(["sandbox", "--listen", "127.0.0.1:0", "--key", "sk-test-123"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let vars: Vec<(&str, &str)> = first
        .split_whitespace()
        .map(|kv| kv.split_once('=').unwrap())
        .collect();
    assert_eq!(vars[0].0, "BATCHGEN_BASE_URL");
    assert_eq!(vars[1], ("BATCHGEN_API_KEY", "sk-test-123"));
    let base = vars[0].1.to_owned();
    assert!(
        base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"),
        "{base}"
    );

    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 3);
    let args = [manifest.to_str().unwrap(), "--rate", "unlimited"];
    let out = run_at(&base, "sk-test-123", &args).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stats: serde_json::Value = reqwest::get(format!("{base}/sandbox/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["accepted"], 3);

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "SIGTERM stops the sandbox cleanly"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn api_key_file_is_read_trimmed_and_checked_for_sharing() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 2);
    let key_file = write(dir.path(), "key", &format!("  {}\n", sandbox.key()));
    let run = |file: std::path::PathBuf, base: String| {
        run_with_env(
            vec![
                manifest.to_str().unwrap().into(),
                "--base-url".into(),
                base,
                "--api-key-file".into(),
                file.to_str().unwrap().into(),
                "--rate".into(),
                "unlimited".into(),
            ],
            vec![],
        )
    };
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let shared = run(key_file.clone(), sandbox.base_url()).await;
    assert_eq!(code(&shared), 0, "{}", stderr(&shared));
    assert!(
        stderr(&shared).contains("readable by other users"),
        "{}",
        stderr(&shared)
    );

    std::fs::remove_file(dir.path().join("jobs.results.csv")).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let private = run(key_file, sandbox.base_url()).await;
    assert_eq!(code(&private), 0);
    assert!(!stderr(&private).contains("readable"));

    let empty = write(dir.path(), "empty-key", "\n");
    let out = run(empty, sandbox.base_url()).await;
    assert_eq!(code(&out), 78, "{}", stderr(&out));
    let missing = run(dir.path().join("nope"), sandbox.base_url()).await;
    assert_eq!(code(&missing), 78);
    assert!(stderr(&missing).contains("nope"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_edited_under_the_same_id_is_reported_not_resent() {
    let sandbox = sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(dir.path(), "m.csv", "id,prompt\nsong,first version\n");
    let args = [manifest.to_str().unwrap(), "--rate", "unlimited"];
    assert_eq!(code(&run_bin(&sandbox, &args).await), 0);
    std::fs::write(&manifest, "id,prompt\nsong,second version\n").unwrap();
    let out = run_bin(&sandbox, &args).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning: line 2: job \"song\" changed since it was submitted"),
        "{err}"
    );
    assert!(err.contains("give it a new id"), "{err}");
    assert_eq!(sandbox.stats().accepted, 1, "not resent");
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_help_and_validate() {
    let none = run_with_env(vec![], vec![]).await;
    assert_eq!(code(&none), 2, "{}", stderr(&none));

    let help = run_with_env(vec!["--help".into()], vec![]).await;
    assert_eq!(code(&help), 0);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("Exit codes") && text.contains("validate") && text.contains("--rate"));

    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.toml",
        "[[job]]\npromt = \"x\"\n\n[[job]]\nprompt = \"ok\"\nmodel = \"chirp-v9\"\n",
    );
    let out = run_with_env(
        vec!["validate".into(), bad.to_str().unwrap().into()],
        vec![],
    )
    .await;
    assert_eq!(code(&out), 65);
    let err = stderr(&out);
    assert!(
        err.contains("bad.toml:1: promt: unknown field; did you mean \"prompt\"?"),
        "{err}"
    );
    assert!(
        err.contains("bad.toml:4: model: unknown model \"chirp-v9\""),
        "{err}"
    );
    assert!(err.contains("nothing was sent"), "{err}");

    let good = write(
        dir.path(),
        "good.csv",
        "prompt,make_instrumental\none,\ntwo,yes\n",
    );
    let out = run_with_env(
        vec!["validate".into(), good.to_str().unwrap().into()],
        vec![],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2 jobs, all valid"), "{text}");
    assert!(
        text.contains("description 1 · description instrumental 1"),
        "{text}"
    );
}

/// The recipe for a provider cannot be half-followed: the `--provider`
/// help of the run and of the sandbox, `batchgen models` and the README's
/// providers table name every provider there is.
#[tokio::test(flavor = "multi_thread")]
async fn every_provider_is_named_in_the_help_and_the_readme() {
    use batchgen::job::Provider;
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = readme
        .lines()
        .find(|l| l.starts_with("| | `udioapi` (default)"))
        .expect("the README's providers table");
    for command in [
        vec!["run", "--help"],
        vec!["sandbox", "--help"],
        vec!["models"],
    ] {
        let out = run_with_env(command.iter().map(|s| (*s).to_owned()).collect(), vec![]).await;
        assert_eq!(code(&out), 0, "{command:?}");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        for &p in Provider::ALL {
            assert!(text.contains(p.name()), "{command:?} names {p}");
        }
    }
    for &p in Provider::ALL {
        assert!(
            table.contains(&format!("`{p}`")),
            "the README's table has a {p} column"
        );
    }
}

/// `receive` and `sandbox` on an address already taken: a configuration
/// error (78) naming the address, not a bug (70) nor a failed row (1).
#[test]
fn a_listen_address_in_use_is_a_configuration_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("r.csv");
    std::fs::write(&results, "").unwrap();
    for args in [
        vec!["sandbox", "--listen", addr.as_str()],
        vec![
            "receive",
            "--results",
            results.to_str().unwrap(),
            "--listen",
            addr.as_str(),
            "--secret",
            "s3cret-for-the-test",
        ],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_batchgen"))
            .args(&args)
            .env_remove("BATCHGEN_API_KEY")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{args:?}: {err}");
        assert!(
            err.starts_with(&format!("batchgen: error: cannot listen on {addr}: ")),
            "{args:?}: {err}"
        );
    }
}
