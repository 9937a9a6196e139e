//! The reference agent grades the same through either face of a session: `sim:v1` over the plain
//! HTTP tools and `sim:v1+mcp` over the MCP face (rmcp's streamable-HTTP client) give the same
//! outcome on every label and attempt, and make the same tool calls. The labels come from
//! `evalmint demo` on a small world.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn evalmint(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_evalmint"))
        .args(args)
        .arg("--data")
        .arg(data)
        .env("EVALMINT_LOG", "error")
        .output()
        .unwrap()
}

fn json_of(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Per (label, attempt): the outcome and the tool names called, in order.
fn outcomes(agent: &str, data: &Path) -> BTreeMap<(String, u64), (String, Vec<String>)> {
    let summary = json_of(&evalmint(
        &["eval", "run", "--agent", agent, "--k", "2", "--json"],
        data,
    ));
    assert_eq!(summary["agent"], agent);
    let run = json_of(&evalmint(
        &["eval", "show", summary["run"].as_str().unwrap(), "--json"],
        data,
    ));
    run["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let tools = r["trace"]
                .as_array()
                .unwrap()
                .iter()
                .map(|step| step["name"].as_str().unwrap_or_default().to_owned())
                .collect();
            (
                (
                    r["label_id"].as_str().unwrap().to_owned(),
                    r["attempt"].as_u64().unwrap(),
                ),
                (r["outcome"].as_str().unwrap().to_owned(), tools),
            )
        })
        .collect()
}

#[test]
fn sim_v1_grades_the_same_over_http_and_mcp() {
    let data = tempfile::tempdir().unwrap();
    let demo = evalmint(
        &[
            "demo",
            "--incidents",
            "20",
            "--listen",
            "127.0.0.1:0",
            "--no-wait",
        ],
        data.path(),
    );
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );

    let http = outcomes("sim:v1", data.path());
    let mcp = outcomes("sim:v1+mcp", data.path());
    assert!(http.len() >= 10, "too few labels: {}", http.len());
    let passes = http.values().filter(|(o, _)| o == "pass").count();
    assert!(passes > 0, "no attempt passed over HTTP: {http:?}");
    assert!(
        http.values().all(|(o, _)| o != "error"),
        "errors over HTTP: {http:?}"
    );
    for (key, (outcome, tools)) in &http {
        let (over_mcp, mcp_tools) = &mcp[key];
        assert_eq!(outcome, over_mcp, "{key:?}");
        assert_eq!(tools, mcp_tools, "{key:?}");
        assert!(tools.len() >= 2, "{key:?}: {tools:?}");
    }
    assert_eq!(http.len(), mcp.len());

    let unknown = evalmint(&["eval", "run", "--agent", "sim:v1+grpc"], data.path());
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("unknown agent \"sim:v1+grpc\""),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
}
