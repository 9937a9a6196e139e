//! Real RCA-agent runs from the OpenRCA benchmark through the label pipeline (`evalmint bench
//! openrca`). The data lives in `../shared/data/openrca` beside the checkout; the test skips with
//! a message where it is absent, and fails instead under `EVALMINT_REQUIRE_ALL=1`.

use std::path::Path;
use std::process::Command;

fn bench(data: &Path, extra: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_evalmint"))
        .args(["bench", "openrca", "--json", "--data"])
        .arg(data)
        .args(extra)
        .env("EVALMINT_LOG", "error")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn openrca_runs_become_candidates_that_name_the_true_root_cause() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/openrca");
    if !data.join("agent-Bank.csv").exists() {
        return evalmint_testkit::skip(&format!("no OpenRCA data at {}", data.display()));
    }
    // With the system's inventory, and with only what a plain trace carries (trigger and answer):
    // a correction that names a component no one listed still drafts a ground truth.
    for extra in [&[][..], &["--no-inventory"][..]] {
        let figures = bench(&data, extra);
        let fraction = |key: &str| {
            let value = figures[key].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&value), "{key}: {figures}");
            value
        };
        assert_eq!(figures["rows"], 187, "51 Telecom and 136 Bank runs");
        assert_eq!(
            figures["candidates"], figures["rows"],
            "every feedback became a candidate"
        );
        assert!(fraction("component_right") >= 0.85, "{extra:?}: {figures}");
        assert!(fraction("category_right") >= 0.80, "{extra:?}: {figures}");
        assert!(fraction("insufficient") <= 0.05, "{extra:?}: {figures}");
        // Without telemetry nothing can be confirmed, so nothing wrong may be admitted.
        fraction("admitted");
        assert_eq!(fraction("admitted_precision"), 1.0, "{extra:?}: {figures}");
    }
}
