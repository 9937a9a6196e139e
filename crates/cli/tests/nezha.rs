//! `evalmint bench nezha` on the first faults of the shared Nezha day: the whole path over
//! loopback HTTP (recorded telemetry, the reference agent, simulated users, real capture, the label
//! pipeline) and the figures it prints. The data is `shared/data/nezha` in an ancestor of the
//! checkout (or `EVALMINT_NEZHA_DATA`); the test skips where it is absent, and fails instead under
//! `EVALMINT_REQUIRE_ALL=1`.

use std::path::PathBuf;
use std::process::Command;

fn nezha_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("EVALMINT_NEZHA_DATA") {
        return Some(PathBuf::from(dir));
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/data/nezha"))
        .find(|d| d.is_dir())
}

#[test]
fn the_first_recorded_faults_become_scored_candidates() {
    let Some(data) = nezha_dir() else {
        return evalmint_testkit::skip("the Nezha data (shared/data/nezha) is not here");
    };
    let output = Command::new(env!("CARGO_BIN_EXE_evalmint"))
        .args([
            "bench", "nezha", "--json", "--agents", "v1", "--faults", "3", "--data",
        ])
        .arg(&data)
        .env("EVALMINT_LOG", "error")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let figures: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(figures["faults"], 28, "{figures}");
    // Three faults, one agent, and a user who always answers: three feedbacks, three candidates.
    assert_eq!(figures["investigations"], 3, "{figures}");
    assert_eq!(figures["feedback_sent"], 3, "{figures}");
    assert_eq!(figures["feedback_pending"], 0, "{figures}");
    assert_eq!(figures["candidates"], 3, "{figures}");
    assert_eq!(figures["client_errors"], 0, "{figures}");
    assert_eq!(figures["ttl_misses"], 0, "{figures}");
    // The agent's queries were re-run against the telemetry API, none expired.
    assert!(
        figures["queries_captured"].as_u64().unwrap() > 0,
        "{figures}"
    );
    assert_eq!(figures["queries_expired"], 0, "{figures}");
    assert!(figures["snapshot_bytes_median"].as_u64().unwrap() > 0);
    // Every listed figure is there, fractions in [0, 1] (or null when nothing was counted).
    for key in [
        "admitted_precision",
        "review_fraction",
        "insufficient_fraction",
        "vague_right",
        "evidence_top1",
        "evidence_top3",
    ] {
        let value = &figures[key];
        assert!(
            value.is_null() || value.as_f64().is_some_and(|v| (0.0..=1.0).contains(&v)),
            "{key}: {figures}"
        );
    }
    assert!(figures["admitted"].is_u64());
    assert_eq!(
        figures["by_type"]["return"]["candidates"], 3,
        "the first three faults are return faults: {figures}"
    );
    assert!(
        figures["evidence_top3"].as_f64().is_some(),
        "the evidence ranked every candidate: {figures}"
    );
}
