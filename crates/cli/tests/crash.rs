//! Acknowledged data survives a crash: feedback and spans are sent to a real `evalmint serve`,
//! the process is killed with SIGKILL mid-stream (and mid-pipeline), restarted on the same data
//! directory, and every request that was acknowledged must be readable — and every acknowledged
//! feedback must end in exactly one candidate or one explicit non-candidate state.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

const KEY: &str = "em_crash_test_admin_key_0123456789";

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(data: &std::path::Path) -> Server {
    start_with(data, None).await
}

/// Starts `evalmint serve`, optionally with a pipeline configuration file.
async fn start_with(data: &std::path::Path, config: Option<&std::path::Path>) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_evalmint"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .env("EVALMINT_ADMIN_KEY", KEY)
        .env("EVALMINT_LOG", "warn")
        .envs(config.map(|c| ("EVALMINT_CONFIG", c.as_os_str())))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .is_ok()
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not start");
}

fn trace_hex(i: usize) -> String {
    format!("{:032x}", 0x00c0_ffee_0000_0000_u128 + i as u128)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_feedback_and_spans_survive_sigkill() {
    let data = tempfile::tempdir().unwrap();
    let mut server = start(data.path()).await;
    let client = reqwest::Client::new();

    let senders: Vec<_> = (0..16)
        .map(|worker| {
            let (client, url) = (client.clone(), server.url.clone());
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for n in 0..10_000 {
                    let i = worker * 10_000 + n;
                    let feedback = client
                        .post(format!("{url}/api/v1/feedback"))
                        .bearer_auth(KEY)
                        .json(&serde_json::json!({
                            "investigation_id": trace_hex(i),
                            "verdict": "down",
                            "correction": format!("correction {i}"),
                            "idempotency_key": format!("crash-{i}"),
                        }))
                        .send()
                        .await;
                    let investigation = client
                        .post(format!("{url}/api/v1/investigations"))
                        .bearer_auth(KEY)
                        .json(&serde_json::json!({
                            "id": trace_hex(i),
                            "started_at": "2026-03-01T12:00:00Z",
                            "conclusion": format!("conclusion {i}"),
                        }))
                        .send()
                        .await;
                    match (feedback, investigation) {
                        (Ok(f), Ok(inv)) if f.status() == 201 && inv.status() == 201 => {
                            let body: serde_json::Value = f.json().await.unwrap();
                            acknowledged.push((i, body["id"].as_str().unwrap().to_owned()));
                        }
                        _ => return acknowledged,
                    }
                }
                acknowledged
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.child.kill().unwrap(); // SIGKILL: no graceful shutdown, no flush
    server.child.wait().unwrap();
    let mut acknowledged = Vec::new();
    for sender in senders {
        acknowledged.extend(sender.await.unwrap());
    }
    assert!(
        acknowledged.len() > 50,
        "the test must kill the server mid-stream, after some writes ({} acknowledged)",
        acknowledged.len()
    );

    let restarted = start(data.path()).await;
    for (i, feedback_id) in &acknowledged {
        let feedback = client
            .get(format!("{}/api/v1/feedback/{feedback_id}", restarted.url))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(feedback.status(), 200, "acknowledged feedback {i} was lost");
        let investigation: serde_json::Value = client
            .get(format!(
                "{}/api/v1/investigations/{}",
                restarted.url,
                trace_hex(*i)
            ))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(investigation["conclusion"], format!("conclusion {i}"));
        assert_eq!(investigation["feedback"][0]["id"], feedback_id.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_feedback_ends_in_one_label_state_across_sigkill() {
    let data = tempfile::tempdir().unwrap();
    // The metrics source refuses connections: every capture retries with backoff for seconds
    // before it falls back to the recorded result, so the kill lands while work is in flight.
    let refused_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = data.path().join("evalmint.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\nname = \"metrics\"\nsignal = \"metrics\"\nconnector = \"prometheus\"\nendpoint = \"http://127.0.0.1:{refused_port}\"\nttl = \"3650d\"\n"
        ),
    )
    .unwrap();
    let mut server = start_with(data.path(), Some(&config)).await;
    let client = reqwest::Client::new();
    let investigations = 400;
    for i in 0..investigations {
        let response = client
            .post(format!("{}/api/v1/investigations", server.url))
            .bearer_auth(KEY)
            .json(&serde_json::json!({
                "id": trace_hex(i),
                "trigger": {"kind": "alert", "text": "checkout p99 latency above 2s"},
                "conclusion": "Root cause: checkout connection pool exhaustion",
                "started_at": "2026-03-01T12:00:00Z",
                "steps": [{
                    "kind": "tool", "name": "query_metrics", "started_at": "2026-03-01T12:00:01Z",
                    "tool_call": {"tool_name": "query_metrics", "source": "metrics",
                                  "query": "pool_usage{service=\"checkout\"}",
                                  "window": {"start": "2026-03-01T11:30:00Z", "end": "2026-03-01T12:00:00Z"},
                                  "entities": ["checkout", "payments-db"],
                                  "result": "pool usage 100%"}
                }]
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    let verdicts = ["up", "down", "not_quite"];
    let mut acknowledged = Vec::new();
    let started = std::time::Instant::now();
    for i in 0..investigations {
        let mut body = serde_json::json!({
            "investigation_id": trace_hex(i),
            "verdict": verdicts[i % 3],
            "idempotency_key": format!("pipeline-{i}"),
        });
        match i % 4 {
            0 => body["correction"] = "it was payments-db, not checkout".into(),
            1 => body["metadata"] = serde_json::json!({"label_opt_out": true}),
            _ => {}
        }
        let response = client
            .post(format!("{}/api/v1/feedback", server.url))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let created: serde_json::Value = response.json().await.unwrap();
        acknowledged.push(created["id"].as_str().unwrap().to_owned());
        if started.elapsed() > Duration::from_millis(400) && i > investigations / 2 {
            break;
        }
    }
    // The last feedback that does not opt out needs a capture, so it cannot be done yet.
    let last = &acknowledged[(0..acknowledged.len()).rev().find(|i| i % 4 != 1).unwrap()];
    let before_kill: serde_json::Value = client
        .get(format!("{}/api/v1/feedback/{last}", server.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    assert_eq!(
        before_kill["label"]["state"], "pending",
        "the server must be killed while the pipeline still has work"
    );

    let restarted = start_with(data.path(), Some(&config)).await;
    let mut states = Vec::new();
    for id in &acknowledged {
        let mut state = serde_json::Value::Null;
        for _ in 0..600 {
            let feedback: serde_json::Value = client
                .get(format!("{}/api/v1/feedback/{id}", restarted.url))
                .bearer_auth(KEY)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            state = feedback["label"].clone();
            if state["state"] != "pending" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        states.push(state);
    }
    for (id, state) in acknowledged.iter().zip(&states) {
        match state["state"].as_str() {
            Some("candidate") => assert!(state["detail"].as_str().unwrap().starts_with("cand-")),
            Some("not_candidate") => assert!(!state["detail"].as_str().unwrap().is_empty()),
            other => panic!("feedback {id} ended in {other:?}"),
        }
    }
    let opted_out = states
        .iter()
        .filter(|s| s["detail"] == "the user opted out of label creation")
        .count();
    let expected_opt_outs = (0..acknowledged.len()).filter(|i| i % 4 == 1).count();
    assert_eq!(opted_out, expected_opt_outs);
    let labels: serde_json::Value = client
        .get(format!(
            "{}/api/v1/labels?route=all&limit=1000",
            restarted.url
        ))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let labels = labels["labels"].as_array().unwrap();
    let mut investigations_with_labels: Vec<&str> = labels
        .iter()
        .map(|l| l["investigation_id"].as_str().unwrap())
        .collect();
    let total = investigations_with_labels.len();
    investigations_with_labels.sort();
    investigations_with_labels.dedup();
    assert_eq!(
        total,
        investigations_with_labels.len(),
        "one current candidate per investigation"
    );
    let candidates = states.iter().filter(|s| s["state"] == "candidate").count();
    assert_eq!(
        total, candidates,
        "each candidate state points at a stored candidate"
    );
}
