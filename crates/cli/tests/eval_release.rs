//! `evalmint eval run --release ID` replays exactly the label versions the release pinned, and
//! the run records the release: in `eval show`, `eval list`, and the JSON and HTML reports. The
//! labels come from `evalmint demo` on a small world (which also releases them and evaluates
//! agent v1 on that release); a smaller release is made through the API of `evalmint serve`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

mod support;

fn evalmint(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_evalmint"))
        .args(args)
        .arg("--data")
        .arg(data)
        .env("EVALMINT_LOG", "error")
        .output()
        .unwrap()
}

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The word of `text` that starts with `prefix` after the last `/` (a link's last segment).
fn linked(text: &str, prefix: &str) -> String {
    text.split_whitespace()
        .filter_map(|w| w.rsplit('/').next())
        .find(|w| w.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix}… link in {text}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_run_release_replays_the_release_and_records_it() {
    let data = tempfile::tempdir().unwrap();
    let demo = stdout_of(&evalmint(
        &[
            "demo",
            "--incidents",
            "20",
            "--listen",
            "127.0.0.1:0",
            "--no-wait",
        ],
        data.path(),
    ));
    let demo_release = linked(&demo, "rel-");
    let demo_run = linked(&demo, "run-");
    let shown: serde_json::Value = serde_json::from_str(&stdout_of(&evalmint(
        &["eval", "show", &demo_run, "--json"],
        data.path(),
    )))
    .unwrap();
    assert_eq!(shown["label_source"], demo_release.as_str());
    let listed = stdout_of(&evalmint(&["eval", "list"], data.path()));
    assert!(
        listed
            .lines()
            .any(|l| l.contains(&demo_run) && l.contains(&demo_release)),
        "{listed}"
    );

    // A smaller release, of one segment of the demo's, made through the API.
    let (subset, pinned) = {
        let server = support::start(data.path()).await;
        let client = reqwest::Client::new();
        let get = |path: String| {
            client
                .get(format!("{}{path}", server.url))
                .bearer_auth(support::KEY)
                .send()
        };
        let release: serde_json::Value = get(format!("/api/v1/releases/{demo_release}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let total = release["labels"].as_u64().unwrap();
        let segment = release["coverage"]["segments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| (1..total).contains(&s["labels"].as_u64().unwrap()))
            .unwrap_or_else(|| panic!("no segment with part of the labels: {release}"))
            .clone();
        let filter = format!(
            "{}={}",
            segment["facet"].as_str().unwrap(),
            segment["value"].as_str().unwrap()
        );
        let created: serde_json::Value = client
            .post(format!("{}/api/v1/releases", server.url))
            .bearer_auth(support::KEY)
            .json(&serde_json::json!({"name": "one segment", "filters": [filter]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let subset = created["id"].as_str().unwrap().to_owned();
        assert_eq!(created["labels"], segment["labels"], "{created}");
        let export = get(format!("/api/v1/releases/{subset}/export"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let pinned: BTreeSet<(String, u64)> = export
            .lines()
            .skip(1)
            .map(|line| {
                let label: serde_json::Value = serde_json::from_str(line).unwrap();
                (
                    label["label"]["label_id"].as_str().unwrap().to_owned(),
                    label["label"]["version"].as_u64().unwrap(),
                )
            })
            .collect();
        assert!(!pinned.is_empty() && (pinned.len() as u64) < total);
        (subset, pinned)
    };

    let html = data.path().join("report.html");
    let summary: serde_json::Value = serde_json::from_str(&stdout_of(&evalmint(
        &[
            "eval",
            "run",
            "--release",
            &subset,
            "--agent",
            "sim:v1",
            "--json",
            "--html",
            html.to_str().unwrap(),
        ],
        data.path(),
    )))
    .unwrap();
    assert_eq!(summary["label_source"], subset.as_str());
    assert_eq!(summary["labels"], pinned.len() as u64);
    assert!(std::fs::read_to_string(&html).unwrap().contains(&subset));
    let run_id = summary["run"].as_str().unwrap();
    let run: serde_json::Value = serde_json::from_str(&stdout_of(&evalmint(
        &["eval", "show", run_id, "--json"],
        data.path(),
    )))
    .unwrap();
    assert_eq!(run["label_source"], subset.as_str());
    let replayed: BTreeSet<(String, u64)> = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["label_id"].as_str().unwrap().to_owned(),
                r["label_version"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        replayed, pinned,
        "the run replayed other labels than the release's"
    );
    let table = stdout_of(&evalmint(&["eval", "show", run_id], data.path()));
    assert!(table.contains(&format!("release {subset}")), "{table}");

    // An unknown release is the run failing (exit 2), with what to do.
    let missing = evalmint(
        &[
            "eval",
            "run",
            "--release",
            "rel-000000000000000000000000",
            "--agent",
            "sim:v1",
        ],
        data.path(),
    );
    assert_eq!(missing.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("no release") && stderr.contains("release list"),
        "{stderr}"
    );
}
