//! What the in-process benchmarks share: the simulator's telemetry API and an evalmint server with
//! its label pipeline on loopback ports, and the feedback-to-routed latency read from the store.

use std::sync::Arc;

use evalmint_model::{SignalSource, TenantId};
use evalmint_pipeline::config::{Config, Connector, Source};
use evalmint_pipeline::metrics::PipelineMetrics;
use evalmint_server::{AppState, Metrics, ServerConfig};
use evalmint_sim::telemetry::{Retention, SimClock, TelemetryService};
use evalmint_sim::world::World;
use evalmint_store::{
    CandidateQuery, CaptureOrder, FullStore, PipelineStore, SqliteStore, Store, SystemClock,
};
use jiff::SignedDuration;
use tokio_util::sync::CancellationToken;

/// Telemetry sources for the simulator's API at `url`, with its default retention.
pub(crate) fn simulator_sources(url: &str, retention: &Retention) -> Vec<Source> {
    let source = |name: &str, signal, connector, ttl_secs: i64, tool: &str| Source {
        name: name.to_owned(),
        signal,
        connector,
        ttl: SignedDuration::from_secs(ttl_secs),
        tools: vec![tool.to_owned()],
        concurrency: 8,
    };
    let http = |path: &str, rename: &[(&str, &str)]| Connector::HttpJson {
        endpoint: format!("{url}{path}"),
        rename: rename
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect(),
    };
    vec![
        source(
            "sim-metrics",
            SignalSource::Metrics,
            Connector::Prometheus {
                endpoint: url.to_owned(),
            },
            retention.metrics,
            "query_metrics",
        ),
        source(
            "sim-logs",
            SignalSource::Logs,
            http("/api/v1/logs", &[]),
            retention.logs,
            "search_logs",
        ),
        source(
            "sim-events",
            SignalSource::Events,
            http("/api/v1/events", &[("services", "service")]),
            retention.events,
            "get_events",
        ),
        source(
            "sim-traces",
            SignalSource::Traces,
            http("/api/v1/traces", &[]),
            retention.traces,
            "get_traces",
        ),
        source(
            "sim-topology",
            SignalSource::Infra,
            http("/api/v1/services", &[]),
            3650 * 86_400,
            "list_services",
        ),
    ]
}

pub(crate) async fn serve_on_loopback(
    router: axum::Router,
    shutdown: CancellationToken,
) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
    });
    Ok(url)
}

/// The simulator's telemetry API for `world`, its clock at the end of the world's timeline.
pub(crate) async fn start_telemetry(
    world: Arc<World>,
    retention: Retention,
    shutdown: &CancellationToken,
) -> anyhow::Result<String> {
    let clock = Arc::new(SimClock::running(world.end * 1000, 1.0));
    let telemetry = Arc::new(TelemetryService::new(world, clock, retention));
    serve_on_loopback(evalmint_sim::telemetry::app(telemetry), shutdown.clone()).await
}

/// An evalmint server with its label pipeline, in this process.
pub(crate) struct Evalmint {
    pub url: String,
    pub pipeline_metrics: Arc<PipelineMetrics>,
    pub pipeline: tokio::task::JoinSet<()>,
}

pub(crate) async fn start_evalmint(
    store: Arc<SqliteStore>,
    config: Config,
    shutdown: &CancellationToken,
) -> anyhow::Result<Evalmint> {
    let mut metrics = Metrics::default();
    let pipeline_metrics = Arc::new(PipelineMetrics::default());
    pipeline_metrics.register(metrics.registry_mut());
    let pipeline = evalmint_pipeline::worker::start(
        store.clone() as Arc<dyn FullStore>,
        Arc::new(config),
        Arc::new(SystemClock),
        pipeline_metrics.clone(),
        CaptureOrder::EarliestDeadline,
        shutdown.clone(),
    );
    let state = AppState::with_metrics(store.clone(), store, ServerConfig::default(), metrics);
    let url = serve_on_loopback(evalmint_server::app(state), shutdown.clone()).await?;
    Ok(Evalmint {
        url,
        pipeline_metrics,
        pipeline,
    })
}

/// For every feedback in a current candidate: the time from its acknowledgement to the
/// candidate's creation, sorted.
pub(crate) async fn routed_latencies(
    store: &SqliteStore,
    tenant: &TenantId,
) -> anyhow::Result<Vec<SignedDuration>> {
    let candidates = store
        .candidates(
            tenant,
            CandidateQuery {
                routes: vec![],
                audit_only: false,
                limit: 1_000_000,
            },
        )
        .await?;
    let mut latencies = Vec::new();
    for candidate in &candidates {
        for id in &candidate.provenance.feedback_ids {
            if let Some(feedback) = store.feedback(tenant, *id).await? {
                latencies.push(candidate.created_at.duration_since(feedback.received_at));
            }
        }
    }
    latencies.sort();
    Ok(latencies)
}

/// The `q` quantile of sorted values, as text in the given unit.
pub(crate) fn quantile(sorted: &[SignedDuration], q: f64) -> String {
    match sorted.get(((sorted.len().max(1) - 1) as f64 * q).round() as usize) {
        Some(d) if d.as_secs() >= 10 => format!("{:.1} s", d.as_secs_f64()),
        Some(d) => format!("{:.0} ms", d.as_secs_f64() * 1000.0),
        None => "n/a".to_owned(),
    }
}
