//! Shared test helpers: a sandbox on 127.0.0.1:0, manifests in a temp dir,
//! and the real binary driven through assert_cmd.

use std::path::{Path, PathBuf};
use std::process::Output;

use batchgen::files::catalog::Row;
use batchgen::files::results::Record;
use batchgen::sandbox::{Sandbox, SandboxConfig};

pub mod poll;
pub mod wait;

/// A sandbox with the given configuration on a free loopback port.
pub async fn sandbox(config: SandboxConfig) -> Sandbox {
    Sandbox::start(([127, 0, 0, 1], 0).into(), config)
        .await
        .expect("sandbox starts")
}

/// The sandbox's callback counters, for a failure message.
pub fn callback_counts(sb: &Sandbox) -> String {
    let s = sb.stats();
    format!(
        "sandbox callbacks: {} delivered, {} retried, {} given up",
        s.callbacks_sent, s.callback_retries, s.callbacks_failed
    )
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A CSV manifest of `n` description-mode prompts with ids.
pub fn csv_manifest(dir: &Path, n: usize) -> PathBuf {
    let mut text = String::from("id,prompt\n");
    for i in 0..n {
        text.push_str(&format!("job-{i},\"a calm song number {i}, with rain\"\n"));
    }
    write(dir, "jobs.csv", &text)
}

/// Runs the binary against `sandbox` with its key, off the async runtime.
pub async fn run_bin(sandbox: &Sandbox, args: &[&str]) -> Output {
    run_at(&sandbox.base_url(), sandbox.key(), args).await
}

/// Runs the binary against any server at `base_url`, with `key`.
pub async fn run_at(base_url: &str, key: &str, args: &[&str]) -> Output {
    let mut all = vec!["--base-url".to_owned(), base_url.to_owned()];
    all.extend(args.iter().map(|s| s.to_string()));
    run_with_env(all, vec![("BATCHGEN_API_KEY".into(), key.to_owned())]).await
}

/// Runs the binary with exactly these arguments and environment additions.
pub async fn run_with_env(args: Vec<String>, env: Vec<(String, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut cmd = assert_cmd::Command::cargo_bin("batchgen").unwrap();
        cmd.env_remove("BATCHGEN_API_KEY")
            .env_remove("BATCHGEN_BASE_URL")
            .env_remove("BATCHGEN_PROVIDER");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(args)
            .timeout(std::time::Duration::from_secs(300))
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// Runs the binary like [`run_with_env`], and measures that one run: its
/// output, and its peak resident memory in KiB.
///
/// The run is started by a fresh, small process (this test binary again,
/// running only [`measured_run`]), not by this one: Linux carries the
/// spawning process's peak memory into the child's `ru_maxrss` across
/// `execve`, and this process may have grown to hundreds of MB in another
/// feature's test. `getrusage(RUSAGE_CHILDREN)` would be worse still: the
/// peak of every process this binary ever waited for.
pub async fn run_with_env_measured(args: Vec<String>, env: Vec<(String, String)>) -> (Output, i64) {
    tokio::task::spawn_blocking(move || {
        use std::os::unix::process::ExitStatusExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("run.json"),
            serde_json::to_vec(&(args, env)).unwrap(),
        )
        .unwrap();
        let helper = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "common::measured_run",
                "--test-threads=1",
            ])
            .env(MEASURED_RUN, dir.path())
            .output()
            .unwrap();
        assert!(
            helper.status.success(),
            "the measuring process failed: {}",
            String::from_utf8_lossy(&helper.stdout)
        );
        let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
        let (status, peak): (i32, i64) = serde_json::from_slice(&read("measured.json")).unwrap();
        let output = Output {
            status: std::process::ExitStatus::from_raw(status),
            stdout: read("stdout"),
            stderr: read("stderr"),
        };
        (output, peak)
    })
    .await
    .unwrap()
}

/// The environment variable naming the folder [`measured_run`] works in.
const MEASURED_RUN: &str = "BATCHGEN_TEST_MEASURED_RUN";

/// Not a test of its own: the small process [`run_with_env_measured`]
/// starts, which runs the binary with the arguments and environment in
/// `run.json` and writes its stdout, stderr, wait status and peak memory
/// beside it. Without the folder (a plain `--ignored` run) it does nothing.
#[test]
#[ignore = "started by run_with_env_measured in a process of its own"]
fn measured_run() {
    use std::os::unix::process::ExitStatusExt;
    let Some(dir) = std::env::var_os(MEASURED_RUN).map(PathBuf::from) else {
        return;
    };
    let (args, env): (Vec<String>, Vec<(String, String)>) =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    let (output, peak) = spawn_measured(args, env);
    std::fs::write(dir.join("stdout"), &output.stdout).unwrap();
    std::fs::write(dir.join("stderr"), &output.stderr).unwrap();
    std::fs::write(
        dir.join("measured.json"),
        serde_json::to_vec(&(output.status.into_raw(), peak)).unwrap(),
    )
    .unwrap();
}

/// Runs the binary and measures that one run, from the process that
/// starts it: its output and its own `ru_maxrss` (KiB), from `wait4(2)` on
/// its pid. Linux keeps the peak of the process that spawned it across
/// `execve`, so this is only the run's own peak when the spawning process
/// is small: see [`run_with_env_measured`].
fn spawn_measured(args: Vec<String>, env: Vec<(String, String)>) -> (Output, i64) {
    {
        use std::io::Read;
        use std::os::unix::process::ExitStatusExt;
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_batchgen"));
        cmd.env_remove("BATCHGEN_API_KEY")
            .env_remove("BATCHGEN_BASE_URL")
            .env_remove("BATCHGEN_PROVIDER");
        for (k, v) in env {
            cmd.env(k, v);
        }
        #[expect(
            clippy::zombie_processes,
            reason = "reaped by wait4 below, which gives its rusage"
        )]
        let mut child = cmd
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let read = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                pipe.read_to_end(&mut bytes).unwrap();
                bytes
            })
        };
        let stdout = read(Box::new(child.stdout.take().unwrap()));
        let stderr = read(Box::new(child.stderr.take().unwrap()));
        let pid = libc::pid_t::try_from(child.id()).unwrap();
        // Told when the child has exited: `waitid` with `WNOWAIT` waits for
        // the exit without reaping, so the pid stays this child's (a zombie)
        // until `wait4` below reaps it and reads its rusage.
        let (exited, exit) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let waited = loop {
                // SAFETY: a zeroed siginfo is a valid one for waitid to fill.
                let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
                // SAFETY: waitid on the pid of a child this test started and
                // has not reaped.
                let rc = unsafe {
                    libc::waitid(
                        libc::P_PID,
                        pid as libc::id_t,
                        &raw mut info,
                        libc::WEXITED | libc::WNOWAIT,
                    )
                };
                let error = std::io::Error::last_os_error();
                match rc {
                    0 => break Ok(()),
                    _ if error.kind() == std::io::ErrorKind::Interrupted => {}
                    _ => break Err(error),
                }
            };
            let _ = exited.send(waited);
        });
        match exit.recv_timeout(std::time::Duration::from_secs(300)) {
            Ok(waited) => waited.expect("waitid"),
            Err(_) => {
                // Not reaped, so the pid is still this child's.
                let _ = child.kill();
                panic!("the run took over 300 s");
            }
        }
        let mut status = 0;
        // SAFETY: a zeroed rusage is a valid one for wait4 to fill.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 on the pid of a child that has exited and that
        // nothing has reaped yet (std's `Child` never waits unless asked).
        let got = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) };
        assert_eq!(got, pid, "wait4: {}", std::io::Error::last_os_error());
        let output = Output {
            status: std::process::ExitStatus::from_raw(status),
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        };
        (output, usage.ru_maxrss)
    }
}

/// Runs the binary with the sandbox's base URL and key in its environment
/// (`BATCHGEN_BASE_URL`, `BATCHGEN_API_KEY`), not as flags.
pub async fn run_env(sb: &Sandbox, args: &[&str]) -> Output {
    let env = vec![
        ("BATCHGEN_API_KEY".to_owned(), sb.key().to_owned()),
        ("BATCHGEN_BASE_URL".to_owned(), sb.base_url()),
    ];
    run_with_env(args.iter().map(|s| s.to_string()).collect(), env).await
}

/// The catalog file's rows, as written.
pub fn catalog(path: &Path) -> Vec<Row> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader.deserialize().map(|r| r.unwrap()).collect()
}

/// Length of the ID3v2 tag at the start of `bytes` (header included), if
/// they start with one.
pub fn id3_len(bytes: &[u8]) -> Option<usize> {
    if bytes.len() < 10 || &bytes[..3] != b"ID3" {
        return None;
    }
    let size = bytes[6..10]
        .iter()
        .fold(0usize, |acc, b| (acc << 7) | usize::from(b & 0x7f));
    Some(10 + size)
}

/// Bytes per frame of the sandbox's MP3s (MPEG-1 Layer III, 64 kbit/s,
/// 48 kHz, mono: never padded), and the header every frame starts with.
pub const SANDBOX_FRAME: usize = 192;
pub const SANDBOX_HEADER: [u8; 4] = [0xFF, 0xFB, 0x54, 0xC4];

/// The length in seconds of a sandbox MP3 of `len` bytes: 1152 samples
/// at 48 kHz a frame.
pub fn sandbox_mp3_secs(len: usize) -> f64 {
    assert!(len.is_multiple_of(SANDBOX_FRAME), "whole frames: {len}");
    (len / SANDBOX_FRAME) as f64 * 0.024
}

/// Whether `bytes` is a whole, tagged sandbox MP3: an ID3 tag, then whole
/// 192-byte frames, each with the frame header, at least 100 of them.
pub fn is_whole_mp3(bytes: &[u8]) -> bool {
    let Some(tag) = id3_len(bytes) else {
        return false;
    };
    let audio = &bytes[tag.min(bytes.len())..];
    audio.len() >= 100 * SANDBOX_FRAME
        && audio.len().is_multiple_of(SANDBOX_FRAME)
        && audio
            .chunks(SANDBOX_FRAME)
            .all(|f| f[..4] == SANDBOX_HEADER)
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The results file, one record per row, as written.
pub fn results(path: &Path) -> Vec<Record> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader.deserialize().map(|r| r.unwrap()).collect()
}

/// The exit code; a test fails if the process was killed instead.
pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed by a signal")
}

/// A results row for `id` as a run records an accepted job: `submitted`
/// with `task_id`, on manifest line `line`.
pub fn submitted(id: &str, line: u64, task_id: &str) -> Record {
    Record {
        key: id.into(),
        line,
        task_id: task_id.into(),
        status: batchgen::files::results::Status::Submitted,
        attempts: 1,
        http_status: Some(200),
        error: String::new(),
        submitted_at: String::new(),
        fingerprint: String::new(),
    }
}

/// `dir/jobs.results.csv` holding one `submitted` row per `(id, task ID)`,
/// on lines 2, 3, …; its path.
pub fn submitted_results(dir: &Path, jobs: &[(&str, &str)]) -> PathBuf {
    let rows: Vec<Record> = jobs
        .iter()
        .enumerate()
        .map(|(i, (id, task))| submitted(id, i as u64 + 2, task))
        .collect();
    let path = dir.join("jobs.results.csv");
    batchgen::files::results::write_atomic(&path, &rows).unwrap();
    path
}

/// A path as a command-line argument.
pub fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Fails if `secret`, or the environment's key assignment, shows in
/// `out`'s stdout or stderr.
pub fn no_secret(out: &Output, secret: &str) {
    for text in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(text);
        assert!(!text.contains(secret), "the secret leaked: {text}");
        assert!(
            !text.contains("BATCHGEN_API_KEY="),
            "the environment leaked: {text}"
        );
    }
}

/// Runs the binary against the sandbox; fails if its key shows anywhere.
pub async fn run_checked(sandbox: &Sandbox, args: &[&str]) -> Output {
    let out = run_bin(sandbox, args).await;
    no_secret(&out, sandbox.key());
    out
}

/// [`run_checked`], measured as [`run_with_env_measured`] measures: the
/// output and the run's peak resident memory in KiB.
pub async fn run_checked_measured(sandbox: &Sandbox, args: &[&str]) -> (Output, i64) {
    let mut all = vec!["--base-url".to_owned(), sandbox.base_url()];
    all.extend(args.iter().map(|s| s.to_string()));
    let env = vec![("BATCHGEN_API_KEY".into(), sandbox.key().to_owned())];
    let (out, peak_kib) = run_with_env_measured(all, env).await;
    no_secret(&out, sandbox.key());
    (out, peak_kib)
}

/// Submits `manifest` into `results` at an unlimited rate; fails unless
/// the run exits 0 (with no secret in its output).
pub async fn submit_ok(sandbox: &Sandbox, manifest: &Path, results: &Path) -> Output {
    let out = run_checked(
        sandbox,
        &[arg(manifest), "--out", arg(results), "--rate", "unlimited"],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    out
}

/// A folder with an `n`-job CSV manifest submitted by a real run
/// (`--max-jobs`, when given, leaves the rest pending): (dir, manifest,
/// results file `r.csv`).
pub async fn submitted_folder(
    sandbox: &Sandbox,
    n: usize,
    max_jobs: Option<&str>,
) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), n);
    let results = dir.path().join("r.csv");
    let mut args = vec![
        arg(&manifest),
        "--out",
        arg(&results),
        "--rate",
        "unlimited",
    ];
    if let Some(max) = max_jobs {
        args.extend(["--max-jobs", max]);
    }
    let out = run_checked(sandbox, &args).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    (dir, manifest, results)
}

/// Removes the state store of `results` (and its WAL files), so the next
/// run meets the results file as the previous release left it: the first
/// contact after an upgrade.
pub fn remove_state(results: &Path) {
    for file in batchgen::files::state::files_for(results) {
        let _ = std::fs::remove_file(file);
    }
}

/// Every job of the results file's store, as a rerun sees it (a job left
/// `sending` is `unknown`), in the report's order: the state, where the
/// report may lag behind it (a killed run).
pub fn jobs(results: &Path) -> Vec<Record> {
    let snapshot = batchgen::files::state::Snapshot::open(results).unwrap();
    let mut out = Vec::new();
    snapshot
        .each(|_, record| {
            out.push(record);
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    out
}
