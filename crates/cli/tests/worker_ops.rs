//! `evalmint worker --listen` serves the operational endpoints of a process without an API: its
//! liveness, its readiness (the store answers) and the pipeline's own metrics, which live only
//! in the worker's process when servers run with `--no-pipeline`.

use std::process::{Command, Stdio};
use std::time::Duration;

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_serves_health_readiness_and_its_pipeline_metrics() {
    let data = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let mut worker = Command::new(env!("CARGO_BIN_EXE_evalmint"))
        .args(["worker", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data.path())
        .env("EVALMINT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut ready = None;
    for _ in 0..200 {
        if let Ok(response) = client.get(format!("{url}/readyz")).send().await {
            ready = Some(response.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ready, Some(reqwest::StatusCode::OK));
    let health = client.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // The label worker claims every 100 ms: after a few polls the claim histogram has counts.
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = client
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains(r#"evalmint_pipeline_claim_seconds_count{queue="label_jobs"}"#)
            && metrics.contains(r#"evalmint_pipeline_claim_seconds_count{queue="captures"}"#)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for queue in ["label_jobs", "captures"] {
        assert!(
            metrics.contains(&format!(
                r#"evalmint_pipeline_claim_seconds_count{{queue="{queue}"}}"#
            )),
            "no claim figures for {queue} in\n{metrics}"
        );
    }
    let api = client
        .get(format!("{url}/api/v1/labels"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 404, "a worker serves no API");
    let _ = worker.kill();
    let _ = worker.wait();
}
