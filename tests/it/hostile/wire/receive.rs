//! `batchgen receive` where anyone can connect: a weak secret is refused,
//! connections that never finish their headers do not starve a real
//! callback and are closed, a body that never arrives gets 408, and no log
//! line holds the secret.

use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use batchgen::engine::collect::receive::{self, HEADER_TIMEOUT, ReceiveConfig, Receiver};
use batchgen::util::redact::Secret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

const SECRET: &str = "receive-secret-0123456789";

fn clip() -> String {
    serde_json::json!([{"id": "c1", "status": "complete", "title": "T", "tags": "lofi",
        "audio_url": "https://cdn.example/c1.mp3", "duration": "12.5", "fail_message": ""}])
    .to_string()
}

/// A results file with one submitted job, `job-1`.
fn results_file(dir: &Path) -> std::path::PathBuf {
    crate::common::submitted_results(dir, &[("job-1", "task-1")])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_weak_secret_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let results = results_file(dir.path());
    let out = run_with_env(
        vec![
            "receive".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--results".into(),
            results.to_str().unwrap().into(),
        ],
        vec![("BATCHGEN_CALLBACK_SECRET".into(), "hunter2-weak".into())],
    )
    .await;
    let err = stderr(&out);
    assert_eq!(code(&out), 78, "{err}");
    assert!(
        err.contains("BATCHGEN_CALLBACK_SECRET is 12 characters long")
            && err.contains("at least 16"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    assert!(
        !dir.path().join("jobs.catalog.csv").exists(),
        "nothing was started"
    );
}

/// On the paused clock: the header and body times pass when every
/// connection waits, in no real time, and the real callback is served (or
/// not) before they do, whatever the machine's load.
#[tokio::test(start_paused = true)]
async fn connections_that_never_finish_their_headers_do_not_starve_a_callback() {
    let dir = tempfile::tempdir().unwrap();
    let results = results_file(dir.path());
    let receiver = Receiver::start(ReceiveConfig {
        webhook_key: None,
        listen: "127.0.0.1:0".parse().unwrap(),
        provider: Default::default(),
        secret: Secret::new(SECRET),
        results,
        catalog: dir.path().join("jobs.catalog.csv"),
    })
    .await
    .unwrap();
    let addr = receiver.addr();
    let mut loris = Vec::new();
    for _ in 0..300 {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(format!("POST /callback/{SECRET}/job-1 HTTP/1.1\r\nHost: x\r\n").as_bytes())
            .await
            .unwrap();
        loris.push(stream);
    }
    // A body that never comes: the head is complete, 10 of 100 bytes sent.
    let mut slow_body = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow_body
        .write_all(
            format!("POST /callback/{SECRET}/job-1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n[{{\"id\":\"c").as_bytes(),
        )
        .await
        .unwrap();

    let url = batchgen::settings::callback_url(
        &url::Url::parse(&format!("http://{addr}")).unwrap(),
        SECRET,
        "job-1",
    );
    let answer = reqwest::Client::new().post(url).body(clip()).send();
    let answer = tokio::time::timeout(wait::WAIT, answer)
        .await
        .expect("the real callback is answered")
        .unwrap();
    assert_eq!(answer.status(), 200);
    // Served beside them, not after them: an order, not a time. A
    // receiver the stalled connections starved would serve it only once
    // their header time is up and they are closed.
    let still_open = |stream: &tokio::net::TcpStream| {
        let mut byte = 0u8;
        // SAFETY: a peek of at most one byte into `byte`, on an open socket.
        let n = unsafe {
            libc::recv(
                stream.as_raw_fd(),
                (&raw mut byte).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock
    };
    assert!(
        loris.iter().all(still_open),
        "the real callback was served only after stalled connections closed"
    );

    // The stalled ones are closed once their header time is up...
    let mut first = loris.swap_remove(0);
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(
        HEADER_TIMEOUT + Duration::from_secs(3),
        first.read_to_end(&mut buf),
    )
    .await;
    assert!(
        closed.is_ok(),
        "a connection without headers is closed after {HEADER_TIMEOUT:?}"
    );
    // ...and the slow body gets 408 once its time is up.
    let mut answer = Vec::new();
    let timed_out = tokio::time::timeout(
        receive::BODY_TIMEOUT + Duration::from_secs(5),
        slow_body.read_to_end(&mut answer),
    )
    .await;
    assert!(timed_out.is_ok(), "a body that never arrives is cut off");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    drop(loris);
    receiver.shutdown().await.unwrap();
    let catalog = std::fs::read_to_string(dir.path().join("jobs.catalog.csv")).unwrap();
    assert_eq!(catalog.matches(",c1,").count(), 1, "{catalog}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_log_line_holds_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let results = results_file(dir.path());
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("batchgen"))
        .args(["receive", "-vv", "--listen", "127.0.0.1:0", "--results"])
        .arg(&results)
        .env("BATCHGEN_CALLBACK_SECRET", SECRET)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let base = first
        .trim()
        .strip_prefix("BATCHGEN_CALLBACK_LISTEN=")
        .unwrap()
        .to_owned();
    let http = reqwest::Client::new();
    for (path, body) in [
        (format!("/callback/{SECRET}/job-1"), clip()),
        (format!("/callback/{SECRET}/no-such-job"), clip()),
        (format!("/callback/{SECRET}/job-1"), "not clips".into()),
        (format!("/callback/job-1?secret={SECRET}"), clip()),
        ("/callback/wrong-secret-0000000000/job-1".into(), clip()),
    ] {
        http.post(format!("{base}{path}"))
            .body(body)
            .send()
            .await
            .unwrap();
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("no-such-job"), "the logs are on: {err}");
    assert!(!err.contains(SECRET), "{err}");
}
