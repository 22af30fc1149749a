//! Keeps the benchmark from rotting: `cargo test` compiles the examples but
//! never runs them, so this runs `bench --quick` (tiny sizes, seconds) on
//! the debug binary and checks that every target was measured. The figures
//! and verdicts are not asserted: a debug build on a shared CI machine says
//! nothing about the targets (see BENCHMARKS.md for the real numbers).

use std::process::Command;

#[test]
fn bench_quick_runs_every_target() {
    let out = Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--quiet", "--example", "bench", "--", "--quick"])
        .args(["--bin-path", env!("CARGO_BIN_EXE_batchgen")])
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench --quick failed:\n{stdout}\n{stderr}"
    );
    for target in [
        "rate", "overhead", "sandbox", "memory", "validate", "rerun", "measure",
    ] {
        assert!(
            stdout.contains(&format!("| {target} |")),
            "no verdict for {target}:\n{stdout}"
        );
    }
    assert!(stdout.contains("machine: cpu:"), "{stdout}");
}
