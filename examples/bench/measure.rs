//! Running the batchgen binary as users do, and the arithmetic on the figures.
//!
//! The binary runs as a subprocess under `/usr/bin/time` (when present) so
//! the peak RSS (`%M`) and the CPU time (`%U + %S`) are the kernel's numbers
//! for that process alone, not the bench's own. Wall time is taken here.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What one run of the binary cost.
#[derive(Debug, Clone)]
pub struct Measured {
    pub code: i32,
    pub wall: f64,
    /// User + system CPU seconds; `None` without `/usr/bin/time`.
    pub cpu: Option<f64>,
    /// Peak resident set size in KB; `None` without `/usr/bin/time`.
    pub rss_kb: Option<u64>,
    pub stderr: String,
}

/// Runs `bin args…` with the key in the environment (never on the command
/// line) and a clean `BATCHGEN_*`/`RUST_LOG` environment.
pub async fn run_bin(bin: &Path, args: &[String], key: &str) -> Measured {
    run_bin_for(bin, args, key, Duration::from_secs(3600)).await
}

/// [`run_bin`], killing the process after `limit` (code -1, "timed out"):
/// a rate run that falls into 429 pauses can take minutes to prove nothing.
pub async fn run_bin_for(bin: &Path, args: &[String], key: &str, limit: Duration) -> Measured {
    let time = Path::new("/usr/bin/time");
    let stats = tempfile::NamedTempFile::new().expect("temp file");
    let mut cmd = if time.exists() {
        let mut c = tokio::process::Command::new(time);
        c.arg("-o").arg(stats.path()).args(["-f", "%U %S %M"]);
        c.arg(bin);
        c
    } else {
        tokio::process::Command::new(bin)
    };
    cmd.args(args)
        .env_remove("BATCHGEN_BASE_URL")
        .env_remove("RUST_LOG")
        .env("BATCHGEN_API_KEY", key)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
    let start = Instant::now();
    let Ok(out) = tokio::time::timeout(limit, cmd.output()).await else {
        // Dropping the future kills the child (kill_on_drop).
        return Measured {
            code: -1,
            wall: start.elapsed().as_secs_f64(),
            cpu: None,
            rss_kb: None,
            stderr: format!("timed out after {limit:?}"),
        };
    };
    let out = out.expect("the batchgen binary starts");
    let wall = start.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(stats.path()).unwrap_or_default();
    // /usr/bin/time prefixes a "Command exited with non-zero status" line.
    let last = text.lines().last().unwrap_or("");
    let f: Vec<f64> = last
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    let (cpu, rss_kb) = match f.as_slice() {
        [u, s, m] => (Some(u + s), Some(*m as u64)),
        _ => (None, None),
    };
    Measured {
        code: out.status.code().unwrap_or(-1),
        wall,
        cpu,
        rss_kb,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Fails loudly when a run that should succeed did not: a benchmark of a
/// failing run measures nothing.
pub fn expect_ok(m: &Measured, what: &str) {
    if m.code != 0 {
        eprintln!("bench: {what} exited {}:\n{}", m.code, m.stderr);
        std::process::exit(1);
    }
}

/// Median and spread of a sample.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    pub fn of(values: &[f64]) -> Summary {
        assert!(!values.is_empty(), "no samples");
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        };
        Summary {
            median,
            min: v[0],
            max: v[v.len() - 1],
        }
    }

    /// `median (min–max)` with `digits` decimals.
    pub fn show(&self, digits: usize) -> String {
        format!(
            "{:.d$} ({:.d$}–{:.d$})",
            self.median,
            self.min,
            self.max,
            d = digits
        )
    }
}

/// The most arrivals in any window `[t, t + 1 s)` that starts at an arrival
/// (a window holding the most requests can always be slid to start at one).
pub fn max_per_second(arrivals: &[Instant]) -> usize {
    let mut best = 0;
    let mut end = 0;
    for (i, &t) in arrivals.iter().enumerate() {
        while end < arrivals.len() && arrivals[end].duration_since(t).as_secs_f64() < 1.0 {
            end += 1;
        }
        best = best.max(end - i);
    }
    best
}

/// Arrivals per second between the first and the last arrival.
pub fn achieved_rate(arrivals: &[Instant]) -> f64 {
    match (arrivals.first(), arrivals.last()) {
        (Some(a), Some(b)) if arrivals.len() > 1 => {
            (arrivals.len() - 1) as f64 / b.duration_since(*a).as_secs_f64()
        }
        _ => 0.0,
    }
}

/// `jobs` accepted per second between the first and the last arrival (of
/// all requests, refused ones included: the last is the last job's).
pub fn achieved_rate_of(arrivals: &[Instant], jobs: u64) -> f64 {
    match (arrivals.first(), arrivals.last()) {
        (Some(a), Some(b)) if jobs > 1 && b > a => {
            (jobs - 1) as f64 / b.duration_since(*a).as_secs_f64()
        }
        _ => 0.0,
    }
}

/// The release binary of this workspace: `$CARGO_TARGET_DIR/release/batchgen`
/// or `target/release/batchgen`, built first when missing. (Examples get no
/// `CARGO_BIN_EXE_*`, and the debug binary would measure the wrong thing.)
pub fn release_binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("release").join("batchgen");
    if !bin.exists() {
        eprintln!("bench: building {}", bin.display());
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let ok = std::process::Command::new(cargo)
            .args(["build", "--release", "--bin", "batchgen"])
            .current_dir(root)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cargo build --release failed");
    }
    bin
}

/// CPU seconds (user + system) this process has used so far, from
/// `/proc/self/stat` (fields 14 and 15, in USER_HZ = 100 ticks/s on Linux).
/// Used to charge the in-process sandbox for a run.
pub fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; fields after it are plain.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// One line about the machine: what the figures depend on.
pub fn machine(bin: &Path) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|x| x.1))
        .unwrap_or("unknown CPU")
        .trim()
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cmd_out = |prog: &Path, arg: &str| {
        std::process::Command::new(prog)
            .arg(arg)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|_| "?".into())
    };
    format!(
        "cpu: {cpu} · cores: {cores} · kernel: {} · load avg: {} · {} · {}",
        kernel.trim(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        cmd_out(Path::new("rustc"), "--version"),
        cmd_out(bin, "--version"),
    )
}
