//! `evalmint eval run --judge` reads the `[llm]` section of the configuration and adds the
//! judge's verdict to every result and to the reports (JSON summary, JUnit, HTML, table), while
//! the deterministic graders keep deciding the outcome; without an enabled `[llm]` it refuses
//! to start, naming the section. The model is a stand-in chat-completions server.

use std::path::Path;
use std::process::Output;

use axum::Json;
use serde_json::{Value, json};

fn evalmint(args: &[&str], data: &Path) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_evalmint"))
        .args(args)
        .arg("--data")
        .arg(data)
        .env("EVALMINT_LOG", "error")
        .env_remove("EVALMINT_CONFIG")
        .output()
        .unwrap()
}

/// Fails every answer, with a reason.
async fn chat(Json(_body): Json<Value>) -> Json<Value> {
    let content = json!({"verdict": "fail", "reason": "The stand-in fails everything."});
    Json(json!({"choices": [{"message": {"role": "assistant", "content": content.to_string()}}]}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_judge_joins_every_result_and_report() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/v1", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(chat));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_owned();
    let demo = tokio::task::spawn_blocking(move || {
        evalmint(
            &[
                "demo",
                "--incidents",
                "12",
                "--listen",
                "127.0.0.1:0",
                "--no-wait",
            ],
            &dir,
        )
    })
    .await
    .unwrap();
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );

    let files = tempfile::tempdir().unwrap();
    let config = files.path().join("evalmint.toml");
    std::fs::write(
        &config,
        format!("[llm]\nenabled = true\nendpoint = \"{endpoint}\"\nmodel = \"stand-in\"\n"),
    )
    .unwrap();
    let off = files.path().join("off.toml");
    std::fs::write(&off, "").unwrap();
    let junit = files.path().join("eval.xml");
    let html = files.path().join("eval.html");

    let dir = data.path().to_owned();
    let (config_arg, off_arg, junit_arg, html_arg) = (
        config.display().to_string(),
        off.display().to_string(),
        junit.display().to_string(),
        html.display().to_string(),
    );
    let (judged, refused) = tokio::task::spawn_blocking(move || {
        let judged = evalmint(
            &[
                "eval",
                "run",
                "--agent",
                "sim:v1",
                "--judge",
                "--config",
                &config_arg,
                "--json",
                "--junit",
                &junit_arg,
                "--html",
                &html_arg,
            ],
            &dir,
        );
        let refused = evalmint(
            &[
                "eval", "run", "--agent", "sim:v1", "--judge", "--config", &off_arg,
            ],
            &dir,
        );
        (judged, refused)
    })
    .await
    .unwrap();
    assert!(
        judged.status.success(),
        "{}",
        String::from_utf8_lossy(&judged.stderr)
    );
    let summary: Value = serde_json::from_slice(&judged.stdout).unwrap();
    let tally = &summary["judge"];
    assert_eq!(tally["judge"], "llm:stand-in/judge-v1", "{summary}");
    assert_eq!(tally["passed"], 0);
    assert_eq!(tally["errors"], 0);
    assert_eq!(tally["failed"], summary["attempts"]);
    // Advisory: the graders still pass what they pass.
    assert!(
        summary["segments"][0]["rate"]["passed"].as_u64().unwrap() > 0,
        "{summary}"
    );
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("judge fail: llm:stand-in/judge-v1: The stand-in fails everything.")
    );
    assert!(
        std::fs::read_to_string(&html)
            .unwrap()
            .contains("judge llm:stand-in/judge-v1 (advisory)")
    );

    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("--judge needs an enabled [llm] section"),
        "{stderr}"
    );
}
