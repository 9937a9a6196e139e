//! `evalmint bench contention` on a small scale: it starts its own server with a valid operator
//! key, sends feedback alone and then beside concurrent exports, and reports both phases.

use std::process::Command;

#[test]
fn the_contention_benchmark_runs_against_its_own_server() {
    let output = Command::new(env!("CARGO_BIN_EXE_evalmint"))
        .args([
            "bench",
            "contention",
            "--exports",
            "2",
            "--export-mb",
            "1",
            "--feedback-rate",
            "20",
            "--baseline",
            "1s",
        ])
        .env("EVALMINT_LOG", "error")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for measure in [
        "feedback alone p99",
        "feedback during exports p99",
        "export request p50",
        "export 429 retries",
    ] {
        assert!(stdout.contains(measure), "no {measure:?} in:\n{stdout}");
    }
}
