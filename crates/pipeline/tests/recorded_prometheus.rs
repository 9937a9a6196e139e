//! The Nezha day's real metrics in a real Prometheus: the recorded world is exported as
//! OpenMetrics, backfilled with `promtool tsdb create-blocks-from openmetrics`, and Prometheus is
//! started on those blocks with a retention long enough for 2023 samples. The `prometheus`
//! connector then captures an agent's query over the recorded window from it, and the frozen
//! answer agrees with the telemetry API serving the same world. Skips where `prometheus`,
//! `promtool` or the data (`shared/data/nezha`, or `EVALMINT_NEZHA_DATA`) is absent, and fails
//! there instead under `EVALMINT_REQUIRE_ALL=1`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use evalmint_model::{
    CaptureStatus, FeedbackOrigin, FeedbackSubmission, SignalSource, SpanId, Step, StepKind,
    StepStatus, TenantId, TimeWindow, Timestamp, ToolCall, TraceId,
};
use evalmint_pipeline::config::{Config, Connector, Source};
use evalmint_pipeline::metrics::PipelineMetrics;
use evalmint_sim::telemetry::{RangeParams, Retention, SimClock, TelemetryService};
use evalmint_store::{
    CaptureOrder, FullStore, IngestBatch, PipelineStore, SqliteOptions, SqliteStore, Store,
    SystemClock,
};
use jiff::SignedDuration;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

mod support;

use support::{Prometheus, free_port};

fn nezha_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("EVALMINT_NEZHA_DATA") {
        return Some(PathBuf::from(dir));
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/data/nezha"))
        .find(|d| d.is_dir())
}

const QUERY: &str =
    r#"max by (service) (cpu_usage_ratio{service=~"ts-order-service|ts-travel-service"})"#;

/// (service, [(t, v)]) of a Prometheus matrix answer, sorted by service.
fn matrix(answer: &Value) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut out: Vec<(String, Vec<(f64, f64)>)> = answer["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let points = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p[0].as_f64().unwrap(),
                        p[1].as_str().unwrap().parse().unwrap(),
                    )
                })
                .collect();
            (s["metric"]["service"].as_str().unwrap().to_owned(), points)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_metrics_backfilled_into_prometheus_are_captured_through_the_connector() {
    for binary in ["prometheus", "promtool"] {
        if Command::new(binary).arg("--version").output().is_err() {
            return evalmint_testkit::skip(&format!(
                "the `{binary}` binary is not installed (apt-get install prometheus)"
            ));
        }
    }
    let Some(data) = nezha_dir() else {
        return evalmint_testkit::skip("the Nezha data (shared/data/nezha) is not here");
    };
    let world = Arc::new(evalmint_sim::recorded::load(&data).expect("the shared day loads"));

    // Export and backfill.
    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("nezha.om");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&exported).unwrap());
    world.write_openmetrics(&mut file).unwrap();
    drop(file);
    let tsdb = dir.path().join("tsdb");
    let backfill = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&exported)
        .arg(&tsdb)
        .output()
        .unwrap();
    assert!(
        backfill.status.success(),
        "promtool failed: {}",
        String::from_utf8_lossy(&backfill.stderr)
    );

    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, "global:\n  scrape_interval: 1m\n").unwrap();
    let port = free_port();
    let _prometheus = Prometheus(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", tsdb.display()))
            .arg("--storage.tsdb.retention.time=10y")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let prometheus_url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..240 {
        let answer = client
            .get(format!("{prometheus_url}/api/v1/query"))
            .query(&[
                ("query", "count(cpu_usage_ratio)"),
                ("time", "2023-01-29T09:00:00Z"),
            ])
            .send()
            .await;
        if let Ok(response) = answer
            && let Ok(body) = response.json::<Value>().await
            && body["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(ready, "Prometheus never served the backfilled blocks");

    // An investigation that read the recorded window, and feedback that asks for a label.
    let shutdown = CancellationToken::new();
    let store = Arc::new(SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap());
    let tenant = TenantId::default_tenant();
    let trace = TraceId::from_bytes(&[7; 16]).unwrap();
    let start: Timestamp = "2023-01-29T08:40:00Z".parse().unwrap();
    let end: Timestamp = "2023-01-29T09:00:00Z".parse().unwrap();
    let window = TimeWindow::new(start, end).unwrap();
    let step = Step {
        span_id: SpanId::from_bytes(&[1; 8]).unwrap(),
        parent_span_id: None,
        name: "execute_tool query_metrics".into(),
        kind: StepKind::Tool,
        started_at: end,
        ended_at: end,
        status: StepStatus::Ok,
        status_message: None,
        agent: Default::default(),
        trigger: None,
        input: None,
        output: None,
        tool_call: Some(ToolCall {
            tool_name: "query_metrics".into(),
            source: SignalSource::Metrics,
            query: QUERY.into(),
            arguments: Some(serde_json::json!({"query": QUERY, "step": "60s"}).to_string()),
            window: Some(window),
            entities: vec![],
            result: None,
            result_truncated: false,
        }),
    };
    store
        .ingest(
            &tenant,
            IngestBatch {
                steps: vec![(trace, step)],
                feedback: vec![],
                entities: vec![],
            },
        )
        .await
        .unwrap();
    let feedback = FeedbackSubmission {
        investigation_id: Some(trace.to_hex()),
        verdict: Some("up".into()),
        ..FeedbackSubmission::default()
    }
    .validate(FeedbackOrigin::Api)
    .unwrap();
    store.submit_feedback(&tenant, feedback).await.unwrap();
    let config = Config {
        sources: vec![Source {
            name: "prometheus".into(),
            signal: SignalSource::Metrics,
            connector: Connector::Prometheus {
                endpoint: prometheus_url,
            },
            // The samples are from 2023: a TTL of ten years keeps their deadline ahead.
            ttl: SignedDuration::from_hours(24 * 3650),
            tools: vec![],
            concurrency: 2,
        }],
        noise_queries: 0,
        ..Config::default()
    };
    let metrics = Arc::new(PipelineMetrics::default());
    let mut tasks = evalmint_pipeline::worker::start(
        store.clone() as Arc<dyn FullStore>,
        Arc::new(config),
        Arc::new(SystemClock),
        metrics.clone(),
        CaptureOrder::EarliestDeadline,
        shutdown.clone(),
    );
    let mut snapshot = Vec::new();
    for _ in 0..200 {
        snapshot = store.snapshot(&tenant, trace).await.unwrap();
        if !snapshot.is_empty() && snapshot.iter().all(|q| q.status.is_terminal()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}

    let captured = snapshot.iter().find(|q| q.query == QUERY).unwrap();
    assert_eq!(captured.status, CaptureStatus::Captured, "{captured:?}");
    assert_eq!(metrics.ttl_misses_total(), 0);
    let frozen: Value = serde_json::from_slice(
        &store
            .snapshot_result(&tenant, trace, &captured.id)
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(frozen["status"], "success");
    let from_prometheus = matrix(&frozen);
    assert_eq!(from_prometheus.len(), 2, "{frozen}");
    assert_eq!(from_prometheus[0].0, "ts-order-service");
    // 08:42 to 09:00 by minute: the first sample of the day is at 08:41:10.
    assert_eq!(from_prometheus[0].1.len(), 19);

    // The telemetry API serving the same world answers the same query with the same numbers.
    let served = TelemetryService::recorded(
        world.clone(),
        Arc::new(SimClock::manual(world.end * 1000)),
        Retention::default(),
    )
    .query_range(&RangeParams {
        query: Some(QUERY.into()),
        start: Some("2023-01-29T08:40:00Z".into()),
        end: Some("2023-01-29T09:00:00Z".into()),
        step: Some("60".into()),
    })
    .unwrap();
    let from_api = matrix(&served);
    assert_eq!(from_api.len(), from_prometheus.len());
    for ((service_a, a), (service_b, b)) in from_prometheus.iter().zip(&from_api) {
        assert_eq!(service_a, service_b);
        assert_eq!(a.len(), b.len(), "{service_a}");
        for (p, q) in a.iter().zip(b) {
            assert_eq!(p.0, q.0);
            assert!(
                (p.1 - q.1).abs() < 1e-6,
                "{service_a} at {}: {} vs {}",
                p.0,
                p.1,
                q.1
            );
        }
    }
}
