//! Label quality end to end, as a regression test: a small simulated world, its agent traces and
//! user feedback through the real HTTP API, the label pipeline capturing from the simulator's
//! telemetry, and the candidates scored against the simulator's truth file. The thresholds are
//! looser than the benchmark's targets because the sample is small; `evalmint bench quality`
//! measures the real figures.

use std::process::Command;

#[test]
fn simulated_feedback_becomes_labels_whose_precision_is_measured() {
    let output = Command::new(env!("CARGO_BIN_EXE_evalmint"))
        .args([
            "bench",
            "quality",
            "--incidents",
            "80",
            "--seed",
            "3",
            "--json",
        ])
        .env("EVALMINT_LOG", "error")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let figures: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let count = |key: &str| figures[key].as_u64().unwrap();
    assert!(count("feedback_sent") > 20, "{figures}");
    assert_eq!(
        count("client_errors"),
        0,
        "the simulator's requests were all valid: {figures}"
    );
    assert_eq!(count("feedback_pending"), 0, "{figures}");
    assert_eq!(
        count("feedback_candidate") + count("feedback_not_candidate"),
        count("feedback_sent"),
        "every feedback ended in one state: {figures}"
    );
    assert!(count("admitted") > 0, "{figures}");
    assert!(
        count("admitted_right") * 100 >= count("admitted") * 90,
        "admitted precision: {figures}"
    );
    assert!(
        count("review") * 100 <= count("candidates") * 40,
        "review fraction: {figures}"
    );
    assert_eq!(count("ttl_misses"), 0, "{figures}");
}
