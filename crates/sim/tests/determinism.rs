//! The same seed produces the same bytes, whatever the number of worker threads.

use evalmint_sim::agent::AgentVersion;
use evalmint_sim::generate::{GenerateOptions, generate};
use evalmint_sim::users::FeedbackRates;
use evalmint_sim::world::{DEFAULT_TIMELINE_END, WorldConfig};

fn options(out: &std::path::Path, seed: u64, threads: usize) -> GenerateOptions {
    GenerateOptions {
        world: WorldConfig {
            seed,
            incidents: 40,
            services: None,
            timeline_end: DEFAULT_TIMELINE_END,
        },
        out: out.to_path_buf(),
        truth: None,
        agent: AgentVersion::V1,
        rates: FeedbackRates::default(),
        threads,
    }
}

const FILES: [&str; 5] = [
    "traces.otlp",
    "investigations.jsonl",
    "feedback.jsonl",
    "sim-truth.jsonl",
    "topology.json",
];

#[test]
fn same_seed_same_bytes() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let summary_a = generate(&options(a.path(), 11, 1)).unwrap();
    let summary_b = generate(&options(b.path(), 11, 2)).unwrap();
    assert_eq!(summary_a.incidents, 40);
    assert_eq!(summary_a.spans, summary_b.spans);
    for file in FILES {
        let left = std::fs::read(a.path().join(file)).unwrap();
        let right = std::fs::read(b.path().join(file)).unwrap();
        assert!(
            !left.is_empty() || file == "feedback.jsonl",
            "{file} is empty"
        );
        assert!(
            left == right,
            "{file} differs between two runs with the same seed"
        );
    }
}

#[test]
fn different_seeds_differ() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    generate(&options(a.path(), 1, 1)).unwrap();
    generate(&options(b.path(), 2, 1)).unwrap();
    let left = std::fs::read(a.path().join("sim-truth.jsonl")).unwrap();
    let right = std::fs::read(b.path().join("sim-truth.jsonl")).unwrap();
    assert_ne!(left, right);
}

#[test]
fn truth_stays_out_of_what_evalmint_receives() {
    let dir = tempfile::tempdir().unwrap();
    generate(&options(dir.path(), 5, 1)).unwrap();
    let feedback = std::fs::read_to_string(dir.path().join("feedback.jsonl")).unwrap();
    for line in feedback.lines() {
        let body: serde_json::Value = serde_json::from_str(line).unwrap();
        let metadata = body["metadata"].as_object().unwrap();
        let style = metadata["sim.style"].as_str().unwrap();
        // Mistaken and wrong-time corrections must look like any precise correction from outside.
        assert!(
            ["no_text", "confirm", "precise", "vague", "partial"].contains(&style),
            "style {style} leaks the truth"
        );
        for key in metadata.keys() {
            assert!(
                ["sim.style", "sim.agent_version"].contains(&key.as_str()),
                "unexpected metadata {key}"
            );
        }
    }
    let traces = std::fs::read(dir.path().join("traces.otlp")).unwrap();
    let text = String::from_utf8_lossy(&traces);
    for forbidden in ["fault_kind", "root_component", "causal_chain", "sim.truth"] {
        assert!(!text.contains(forbidden), "traces mention {forbidden}");
    }
}
