//! A hostile wire, second round: hosts that echo the key into the data
//! batchgen keeps (clip titles, IDs, URLs: catalog cells, file names, ID3
//! tags), redirects that would carry a signed URL to another host, and
//! answers whose body never arrives. Each test drives the real binary (or
//! the in-process receiver) against a host on 127.0.0.1:0.

mod common;
#[path = "hostile_wire2/host.rs"]
mod host;

use std::path::Path;

use common::*;
use host::{clip, v2};

/// The API key every test runs with: long enough to be a real secret.
const KEY: &str = "sk-wire2-test-key-0123456789";

/// A results file with one submitted task, `t-1` for `job-1`.
fn results(dir: &Path) -> std::path::PathBuf {
    write(
        dir,
        "r.csv",
        "id,line,task_id,status,attempts,http_status,error,submitted_at,fingerprint\n\
         job-1,2,t-1,submitted,1,200,,,\n",
    )
}

/// Every file under `dir`, with its bytes.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(tree(&path));
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

/// Neither the name nor the bytes of any file under `dir` hold `secret`.
fn nowhere_on_disk(dir: &Path, secret: &str) {
    for (name, bytes) in tree(dir) {
        assert!(!name.contains(secret), "{secret:?} in a file name: {name}");
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(secret),
            "{secret:?} inside {name}: {text:.300}"
        );
    }
}

async fn collect(base: &str, dir: &Path, extra: &[&str]) -> std::process::Output {
    let results = results(dir);
    let download = dir.join("dl");
    let mut args = vec![
        "collect".to_owned(),
        results.display().to_string(),
        "--base-url".into(),
        base.into(),
        "--poll-interval".into(),
        "1s".into(),
        "--deadline".into(),
        "20s".into(),
        "--download".into(),
        download.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    run_with_env(args, vec![("BATCHGEN_API_KEY".into(), KEY.into())]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_feed_echoing_the_key_gets_it_into_no_catalog_cell_file_name_or_tag() {
    let host = host::start(|base| {
        let echo = |i: u32| {
            let mut c = clip(
                &format!("c{i}-{KEY}"),
                &format!("Song {KEY} {i}"),
                &format!("{base}/media/{i}.mp3?k={KEY}"),
            );
            c["tags"] = format!("lofi {KEY}").into();
            c["model_name"] = KEY.into();
            c
        };
        v2(vec![echo(1), echo(2)])
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = collect(&host.base, dir.path(), &["--name", "{title_slug}-{index}"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(!text.contains(KEY), "{text}");
    // Both songs were fetched and kept, under names without the key.
    let songs: Vec<String> = tree(&dir.path().join("dl"))
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.ends_with(".mp3"))
        .collect();
    assert_eq!(songs.len(), 2, "{songs:?}");
    nowhere_on_disk(dir.path(), KEY);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callback_echoing_the_secrets_gets_them_into_no_catalog_cell() {
    use batchgen::engine::collect::receive::{ReceiveConfig, Receiver};
    use batchgen::settings::callback_url;
    use batchgen::util::redact::Secret;
    // The key is registered as the binary registers it; the callback
    // secret by its `Secret`.
    let _key = Secret::new(KEY);
    let callback_secret = "cb-wire2-secret-0123456789abcdef";
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("r.catalog.csv");
    let receiver = Receiver::start(ReceiveConfig {
        webhook_key: None,
        listen: ([127, 0, 0, 1], 0).into(),
        provider: Default::default(),
        secret: Secret::new(callback_secret),
        results: results(dir.path()),
        catalog: catalog.clone(),
    })
    .await
    .unwrap();
    let base = url::Url::parse(&format!("http://{}", receiver.addr())).unwrap();
    let mut echo = clip(
        &format!("c1-{callback_secret}"),
        &format!("{KEY} / {callback_secret}"),
        &format!("https://cdn.example/{KEY}.mp3"),
    );
    echo["tags"] = callback_secret.into();
    let body = serde_json::to_vec(&vec![echo]).unwrap();
    let answer = reqwest::Client::new()
        .post(callback_url(&base, callback_secret, "job-1"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    receiver.shutdown().await.unwrap();
    let written = std::fs::read_to_string(&catalog).unwrap();
    assert!(written.contains("job-1,t-1,1,"), "{written}");
    for secret in [KEY, callback_secret] {
        assert!(!written.contains(secret), "{secret:?}: {written}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirected_download_does_not_carry_the_signed_url_along() {
    let host = host::start(|base| {
        v2(vec![
            clip(
                "c1",
                "One",
                &format!("{base}/redirect/1.mp3?sig=signed-token-1"),
            ),
            clip(
                "c2",
                "Two",
                &format!("{base}/redirect/2.mp3?sig=signed-token-2"),
            ),
        ])
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = collect(&host.base, dir.path(), &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let media: Vec<_> = host
        .seen()
        .into_iter()
        .filter(|s| s.uri.starts_with("/media/"))
        .collect();
    assert_eq!(media.len(), 2, "{media:?}");
    for seen in media {
        // No header (a `Referer`, an `Authorization`) of the request the
        // redirect answered goes to where it points.
        for (name, value) in &seen.headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            assert!(
                !value.contains("signed-token") && !value.contains(KEY),
                "{name}: {value}"
            );
        }
        assert!(seen.headers.get("referer").is_none(), "{seen:?}");
    }
}

/// A host on 127.0.0.1:0 that reads each request head and answers the raw
/// bytes `answer`, then closes the connection.
async fn raw_host(answer: &'static [u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(answer).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    base
}

#[tokio::test(flavor = "multi_thread")]
async fn a_balance_cut_off_or_never_answered_says_so_and_not_that_a_task_may_exist() {
    let cases: [(&[u8], &str); 2] = [
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n{\"data\":{\"cre",
            "connection lost while reading the answer",
        ),
        (b"", "connection lost"),
    ];
    for (answer, says) in cases {
        let base = raw_host(answer).await;
        let args = ["credits", "--base-url", &base].map(String::from).to_vec();
        let out = run_with_env(args, vec![("BATCHGEN_API_KEY".into(), KEY.into())]).await;
        let text = stderr(&out);
        assert_eq!(code(&out), 69, "{text}");
        assert!(text.contains(says), "{says:?}: {text}");
        // A GET creates nothing, and a cut answer is not a host without
        // `data.credits`.
        for wrong in ["may have been accepted", "no data.credits"] {
            assert!(!text.contains(wrong), "{wrong:?}: {text}");
        }
        assert!(!text.contains(KEY), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_file_with_a_bom_and_crlf_is_read_as_the_key() {
    let base = raw_host(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 34\r\n\r\n{\"code\":200,\"data\":{\"credits\":42}}",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("bom", format!("\u{feff}{KEY}\r\n")),
        ("crlf", format!("{KEY}\r\n")),
    ] {
        let path = write(dir.path(), name, &text);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let args = ["credits", "--base-url", &base, "--api-key-file"]
            .iter()
            .map(|s| s.to_string())
            .chain([path.display().to_string()])
            .collect();
        let out = run_with_env(args, vec![]).await;
        assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("42 credits left"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_base_url_with_a_password_or_query_is_refused_before_anything_is_sent() {
    let host = host::start(|_| v2(vec![])).await;
    let authority = host.base.trim_start_matches("http://").to_owned();
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(dir.path(), "jobs.csv", "id,prompt\njob-1,a calm song\n");
    let password = "proxy-pass-0123456789";
    for base in [
        format!("http://me:{password}@{authority}/"),
        format!("http://{password}@{authority}/"),
        format!("http://{authority}/?token={password}"),
    ] {
        for command in [
            vec!["credits".to_owned(), "--base-url".into(), base.clone()],
            vec![
                "run".to_owned(),
                manifest.display().to_string(),
                "--base-url".into(),
                base.clone(),
            ],
            vec![
                "collect".to_owned(),
                results(dir.path()).display().to_string(),
                "--base-url".into(),
                base.clone(),
            ],
        ] {
            let out = run_with_env(
                command.clone(),
                vec![("BATCHGEN_API_KEY".into(), KEY.into())],
            )
            .await;
            let text = stderr(&out);
            assert_eq!(code(&out), 78, "{command:?}: {text}");
            assert!(!text.contains(password), "{command:?}: {text}");
        }
    }
    // Nothing reached the host: no second `Authorization` went out.
    assert!(host.seen().is_empty(), "{:?}", host.seen());
}
