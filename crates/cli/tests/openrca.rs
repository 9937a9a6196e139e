//! Real RCA-agent runs from the OpenRCA benchmark through the label pipeline (`evalmint bench
//! openrca`). The data lives in `../shared/data/openrca` beside the checkout; the test skips with
//! a message where it is absent, and fails instead under `EVALMINT_REQUIRE_ALL=1`.

use std::path::Path;
use std::process::Command;

#[test]
fn openrca_runs_become_candidates_that_name_the_true_root_cause() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/openrca");
    if !data.join("agent-Bank.csv").exists() {
        return evalmint_testkit::skip(&format!("no OpenRCA data at {}", data.display()));
    }
    let output = Command::new(env!("CARGO_BIN_EXE_evalmint"))
        .args(["bench", "openrca", "--json", "--data"])
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
    let count = |key: &str| figures[key].as_u64().unwrap();
    assert_eq!(count("rows"), 187, "51 Telecom and 136 Bank runs");
    assert_eq!(
        count("candidates"),
        count("rows"),
        "every feedback became a candidate"
    );
    assert!(
        count("component_right") * 100 >= count("candidates") * 85,
        "drafted components: {figures}"
    );
    assert!(
        count("reason_right") * 100 >= count("candidates") * 80,
        "drafted reasons: {figures}"
    );
    // Without telemetry nothing can be confirmed, so nothing wrong may be admitted.
    assert_eq!(count("admitted_right"), count("admitted"), "{figures}");
}
