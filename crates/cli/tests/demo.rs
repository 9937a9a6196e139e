//! `evalmint demo` end to end on a small world: it serves, the simulated feedback is labelled,
//! the admitted labels are released and agent v1 is evaluated on them, and it prints the URL, an
//! `em_…` sign-in key that works, and the tour with the release and the run.

use std::process::Command;

#[test]
fn the_demo_labels_simulated_feedback_and_prints_a_working_sign_in_key() {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_evalmint"))
        .args([
            "demo",
            "--incidents",
            "20",
            "--listen",
            "127.0.0.1:0",
            "--no-wait",
            "--data",
        ])
        .arg(data.path())
        .env("EVALMINT_LOG", "error")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("evalmint is ready at http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(stdout.contains("/docs"), "{stdout}");
    let key = stdout
        .split_whitespace()
        .skip_while(|w| *w != "(admin):")
        .nth(1)
        .unwrap_or_else(|| panic!("no sign-in key in {stdout}"));
    assert!(key.starts_with("em_"), "{stdout}");
    // The key was stored in the data directory and the labels with it.
    let listed = Command::new(env!("CARGO_BIN_EXE_evalmint"))
        .args(["keys", "list", "--data"])
        .arg(data.path())
        .output()
        .unwrap();
    let keys = String::from_utf8_lossy(&listed.stdout);
    assert!(keys.contains("demo sign-in key"), "{keys}");
    let routed = stdout
        .lines()
        .find(|l| l.contains(" routed: "))
        .unwrap_or_else(|| panic!("no summary in {stdout}"));
    assert!(!routed.contains(" 0 candidate labels"), "{routed}");
    // The tour links the release of the admitted labels and the run on it, which are stored.
    assert!(stdout.contains("/releases/rel-"), "{stdout}");
    let run = stdout
        .split(['/', ' ', '\n'])
        .find(|w| w.starts_with("run-"))
        .unwrap_or_else(|| panic!("no run in {stdout}"));
    let runs = Command::new(env!("CARGO_BIN_EXE_evalmint"))
        .args(["eval", "list", "--data"])
        .arg(data.path())
        .output()
        .unwrap();
    let runs = String::from_utf8_lossy(&runs.stdout);
    assert!(runs.contains(run) && runs.contains("sim:v1"), "{runs}");
}
