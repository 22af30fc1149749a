//! One exit code per error, and the hints that go with them.

use super::*;

/// A bug is not a failed row: a cron wrapper tells them apart by the
/// code. An address `--listen` cannot take, or a stdout that cannot be
/// written, is neither.
#[test]
fn an_internal_error_exits_70_and_is_said_to_be_a_bug() {
    let bug = Error::Other(anyhow::anyhow!("the manifest reader failed: task panicked"));
    assert_eq!(bug.exit_code(), ExitCode::Internal);
    assert_eq!(ExitCode::Internal.code(), 70);
    assert!(bug.hint().unwrap().contains("bug in batchgen"));
    let listen = Error::from(crate::engine::collect::receive::ReceiveError::Listen {
        addr: "127.0.0.1:1".parse().unwrap(),
        source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
    });
    assert_eq!(listen.exit_code(), ExitCode::Config);
    assert!(
        listen
            .to_string()
            .starts_with("cannot listen on 127.0.0.1:1: ")
    );
    let output = Error::Output(std::io::Error::from(std::io::ErrorKind::StorageFull));
    assert_eq!(output.exit_code(), ExitCode::CantCreate);
}

#[test]
fn a_refusal_says_its_status_once() {
    for message in ["HTTP 401: bad key", "bad key"] {
        let e = Error::Host(Halt::Refused {
            status: 401,
            message: message.into(),
        });
        assert_eq!(
            e.to_string(),
            "the API refused the request with HTTP 401: bad key"
        );
    }
}

#[test]
fn catalog_and_download_folder_errors_name_their_own_flag() {
    let io = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
    let catalog = Error::Catalog {
        path: "c.csv".into(),
        source: io(),
    };
    assert!(
        catalog
            .to_string()
            .starts_with("cannot write the catalog c.csv")
    );
    assert!(catalog.hint().unwrap().contains("--catalog"));
    let dir = Error::DownloadDir {
        path: "mp3".into(),
        source: io(),
    };
    assert!(
        dir.to_string()
            .starts_with("cannot write into the download folder mp3")
    );
    assert!(dir.hint().unwrap().contains("--download"));
    let locked = Error::CatalogLocked {
        path: "c.csv".into(),
        holder: Some(7),
    };
    assert!(locked.hint().unwrap().contains("--catalog"));
    assert!(!locked.hint().unwrap().contains("--out"));
    assert_eq!(locked.exit_code(), ExitCode::Locked);
    let credits = Error::Credits {
        url: "http://h/api/v2/credits".into(),
        message: "HTTP 404: Not Found".into(),
    };
    assert!(!credits.hint().unwrap().contains("pending"));
    assert_eq!(credits.exit_code(), ExitCode::Unavailable);
}
