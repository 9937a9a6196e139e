//! The OpenRCA-compatible grader reproduces the `score` column of OpenRCA's archived agent runs
//! from their `prediction` and `groundtruth` cells.

use std::path::PathBuf;

use evalmint_eval::openrca::{Scored, failures_in, parse_ground_truth, parse_prediction, score};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/openrca")
}

#[test]
fn reproduces_the_archived_scores() {
    let dir = data_dir();
    if !dir.join("agent-Bank.csv").exists() {
        evalmint_testkit::skip("the OpenRCA data is not at ../shared/data/openrca");
        return;
    }
    let (mut exact, mut incomplete) = (0, 0);
    for file in ["agent-Bank.csv", "agent-Telecom.csv"] {
        let mut reader = csv::Reader::from_path(dir.join(file)).unwrap();
        for row in reader.deserialize::<std::collections::HashMap<String, String>>() {
            let row = row.unwrap();
            let scored = Scored::for_task(&row["task_index"]).unwrap();
            let truth = parse_ground_truth(&row["groundtruth"]);
            let failures = failures_in(&row["instruction"]).unwrap_or(truth.len());
            let ours = score(
                &parse_prediction(&row["prediction"]),
                &truth,
                failures,
                scored,
            );
            let archived: f64 = row["score"].parse().unwrap();
            if truth.len() == failures {
                assert!(
                    (ours - archived).abs() < 1e-12,
                    "{file} {}: ours {ours}, archived {archived}",
                    row["row_id"]
                );
                exact += 1;
            } else {
                // The cell records fewer failures than the instruction names: the missing ones
                // are points no prediction can meet here, so ours is a lower bound.
                assert!(truth.len() < failures, "{file} {}", row["row_id"]);
                assert!(
                    ours <= archived + 1e-12,
                    "{file} {}: ours {ours} > {archived}",
                    row["row_id"]
                );
                incomplete += 1;
            }
        }
    }
    assert_eq!(exact + incomplete, 187, "every row was read");
    // A broken ground-truth or instruction parser would push rows out of the exact check; most
    // archived cells list every failure their instruction names.
    assert!(
        exact * 4 >= (exact + incomplete) * 3,
        "only {exact} of {} rows were checked exactly",
        exact + incomplete
    );
}
