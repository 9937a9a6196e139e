//! Capture against a real Prometheus (Debian's `prometheus` package) scraping the simulator: the
//! agent's PromQL query is re-run through Prometheus's HTTP API and frozen, and a query whose data
//! is older than the source's TTL falls back to the recorded result, marked as such. Skips with a
//! message where the `prometheus` binary is not installed, and fails there instead under
//! `EVALMINT_REQUIRE_ALL=1` (`.ci/run` installs Prometheus and sets it).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use evalmint_model::{
    CaptureStatus, FeedbackOrigin, FeedbackSubmission, SignalSource, SpanId, Step, StepKind,
    StepStatus, TenantId, TimeWindow, Timestamp, ToolCall, TraceId,
};
use evalmint_pipeline::config::{Config, Connector, Source};
use evalmint_pipeline::metrics::PipelineMetrics;
use evalmint_sim::telemetry::{Retention, SimClock, TelemetryService};
use evalmint_sim::world::{World, WorldConfig};
use evalmint_store::{
    CaptureOrder, FullStore, IngestBatch, PipelineStore, SqliteOptions, SqliteStore, Store,
    SystemClock,
};
use jiff::SignedDuration;
use tokio_util::sync::CancellationToken;

mod support;

use support::{Prometheus, free_port};

fn tool_step(id: u8, query: &str, window: TimeWindow, recorded: Option<&str>) -> Step {
    Step {
        span_id: SpanId::from_bytes(&[id; 8]).unwrap(),
        parent_span_id: None,
        name: "execute_tool query_metrics".into(),
        kind: StepKind::Tool,
        started_at: window.end,
        ended_at: window.end,
        status: StepStatus::Ok,
        status_message: None,
        agent: Default::default(),
        trigger: None,
        input: None,
        output: None,
        tool_call: Some(ToolCall {
            tool_name: "query_metrics".into(),
            source: SignalSource::Metrics,
            query: query.into(),
            arguments: Some(serde_json::json!({"query": query, "step": "5s"}).to_string()),
            window: Some(window),
            entities: vec![],
            result: recorded.map(str::to_owned),
            result_truncated: false,
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_are_captured_through_a_real_prometheus_before_their_ttl() {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        return evalmint_testkit::skip(
            "the `prometheus` binary is not installed (apt-get install prometheus)",
        );
    }
    let shutdown = CancellationToken::new();

    // The simulator's telemetry API, which Prometheus scrapes.
    let now = Timestamp::now();
    let world = Arc::new(World::generate(WorldConfig {
        seed: 5,
        incidents: 2,
        services: Some(10),
        timeline_end: now.as_second(),
    }));
    let telemetry = Arc::new(TelemetryService::new(
        world.clone(),
        Arc::new(SimClock::running(now.as_millisecond(), 1.0)),
        Retention::default(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let telemetry_address = listener.local_addr().unwrap();
    let app = evalmint_sim::telemetry::app(telemetry);
    let stop = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });

    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(
        &config_path,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: sim\n    static_configs:\n      - targets: ['{telemetry_address}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let _prometheus = Prometheus(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let prometheus_url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut scraped = false;
    for _ in 0..120 {
        let answer = client
            .get(format!("{prometheus_url}/api/v1/query"))
            .query(&[("query", "count(cpu_usage_ratio)")])
            .send()
            .await;
        if let Ok(response) = answer
            && let Ok(body) = response.json::<serde_json::Value>().await
            && body["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        {
            scraped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(scraped, "Prometheus never scraped the simulator");
    tokio::time::sleep(Duration::from_secs(3)).await;

    // An investigation with a fresh query and one whose data is older than the source keeps.
    let store = Arc::new(SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap());
    let tenant = TenantId::default_tenant();
    let trace = TraceId::from_bytes(&[9; 16]).unwrap();
    let now = Timestamp::now();
    let fresh = TimeWindow::new(now - SignedDuration::from_secs(20), now).unwrap();
    let stale = TimeWindow::new(
        now - SignedDuration::from_hours(3),
        now - SignedDuration::from_hours(2),
    )
    .unwrap();
    store
        .ingest(
            &tenant,
            IngestBatch {
                steps: vec![
                    (trace, tool_step(1, "cpu_usage_ratio", fresh, None)),
                    (
                        trace,
                        tool_step(2, "memory_usage_ratio", stale, Some("{\"recorded\": true}")),
                    ),
                ],
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
            ttl: SignedDuration::from_hours(1),
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
    for _ in 0..100 {
        snapshot = store.snapshot(&tenant, trace).await.unwrap();
        if snapshot.len() == 2 && snapshot.iter().all(|q| q.status.is_terminal()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}

    let by_query = |name: &str| snapshot.iter().find(|q| q.query == name).unwrap();
    let captured = by_query("cpu_usage_ratio");
    assert_eq!(captured.status, CaptureStatus::Captured, "{captured:?}");
    let result: serde_json::Value = serde_json::from_slice(
        &store
            .snapshot_result(&tenant, trace, &captured.id)
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(result["status"], "success");
    let series = result["data"]["result"].as_array().unwrap();
    assert!(
        !series.is_empty(),
        "Prometheus returned the scraped series: {result}"
    );
    assert!(series[0]["metric"]["service"].is_string());
    assert!(!series[0]["values"].as_array().unwrap().is_empty());

    let stale = by_query("memory_usage_ratio");
    assert_eq!(stale.status, CaptureStatus::Recorded);
    assert!(stale.last_error.as_deref().unwrap().contains("expired"));
    assert_eq!(
        store
            .snapshot_result(&tenant, trace, &stale.id)
            .await
            .unwrap()
            .as_deref(),
        Some(&b"{\"recorded\": true}"[..])
    );
    assert_eq!(
        metrics.ttl_misses_total() + metrics.expired_before_feedback_total(),
        1
    );
}
