//! `evalmint bench latency`: feedback-to-routed-candidate latency at a steady feedback rate. An
//! in-process server and pipeline capture each investigation's metric queries from the
//! simulator's telemetry API; feedback is posted over loopback HTTP at `--rate` per second, and
//! the time from its durable acknowledgement to its routed candidate is measured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use evalmint_model::{
    AgentInfo, SignalSource, SpanId, Step, StepKind, StepStatus, TenantId, TimeWindow, Timestamp,
    ToolCall, TraceId, Trigger, TriggerKind,
};
use evalmint_pipeline::config::Config;
use evalmint_sim::telemetry::Retention;
use evalmint_store::{
    CandidateQuery, IngestBatch, PipelineStore, SqliteOptions, SqliteStore, Store,
};
use indicatif::{ProgressBar, ProgressStyle};
use jiff::SignedDuration;
use tokio_util::sync::CancellationToken;

use super::harness;
use crate::table;

#[derive(Debug, clap::Args)]
pub(crate) struct LatencyArgs {
    /// Feedback per second.
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// How long to send feedback.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Metric queries per investigation (each is captured from the simulator).
    #[arg(long, default_value_t = 4)]
    queries: usize,
}

const KEY: &str = "em_bench_latency_admin_key_0123456789";

pub(crate) fn investigation(
    index: usize,
    services: &[String],
    queries: usize,
    now: Timestamp,
) -> anyhow::Result<Vec<(TraceId, Step)>> {
    let trace = TraceId::from_bytes(&(index as u128 + 1).to_be_bytes())?;
    let span =
        |n: usize| SpanId::from_bytes(&((index as u64) << 8 | n as u64 | 1 << 60).to_be_bytes());
    let service = &services[index % services.len()];
    let window = TimeWindow::new(now - SignedDuration::from_mins(30), now).context("window")?;
    let base = Step {
        span_id: span(0)?,
        parent_span_id: None,
        name: "invoke_agent".into(),
        kind: StepKind::Agent,
        started_at: now,
        ended_at: now,
        status: StepStatus::Ok,
        status_message: None,
        agent: AgentInfo {
            name: Some("sre-agent".into()),
            ..AgentInfo::default()
        },
        trigger: Some(Trigger {
            kind: TriggerKind::Alert,
            text: format!("{service} latency above SLO"),
            monitor: Some(format!("{service} p99")),
            fired_at: None,
        }),
        input: None,
        output: Some(format!("Root cause: {service} CPU saturation")),
        tool_call: None,
    };
    let mut steps = vec![(trace, base.clone())];
    let metrics = [
        "cpu_usage_ratio",
        "memory_usage_ratio",
        "request_error_ratio",
        "request_latency_p99_seconds",
    ];
    for q in 0..queries {
        let query = format!("{}{{service=\"{service}\"}}", metrics[q % metrics.len()]);
        steps.push((
            trace,
            Step {
                span_id: span(q + 1)?,
                parent_span_id: Some(span(0)?),
                name: "execute_tool query_metrics".into(),
                kind: StepKind::Tool,
                trigger: None,
                output: None,
                tool_call: Some(ToolCall {
                    tool_name: "query_metrics".into(),
                    source: SignalSource::Metrics,
                    arguments: Some(serde_json::json!({"query": query, "start": window.start.to_string(), "end": window.end.to_string(), "step": "60s"}).to_string()),
                    query,
                    window: Some(window),
                    entities: vec![service.clone()],
                    result: None,
                    result_truncated: false,
                }),
                ..base.clone()
            },
        ));
    }
    Ok(steps)
}

/// The simulator's telemetry API for a small world of 30 services on a loopback port, and the
/// world's service names.
pub(crate) async fn start_small_world(
    seed: u64,
    shutdown: &CancellationToken,
) -> anyhow::Result<(String, Vec<String>)> {
    let world = Arc::new(crate::bench::capture::small_world(seed, 30));
    let telemetry_url =
        harness::start_telemetry(world.clone(), Retention::default(), shutdown).await?;
    let services = world
        .topology
        .components
        .iter()
        .map(|c| c.name.clone())
        .collect();
    Ok((telemetry_url, services))
}

/// Stores the [`investigation`]s numbered `indices`, 200 to a batch.
pub(crate) async fn ingest_investigations(
    store: &dyn Store,
    tenant: &TenantId,
    indices: &[usize],
    services: &[String],
    queries: usize,
    now: Timestamp,
) -> anyhow::Result<()> {
    for chunk in indices.chunks(200) {
        let mut steps = Vec::new();
        for index in chunk {
            steps.extend(investigation(*index, services, queries, now)?);
        }
        store
            .ingest(
                tenant,
                IngestBatch {
                    steps,
                    feedback: vec![],
                    entities: vec![],
                },
            )
            .await?;
    }
    Ok(())
}

pub(crate) async fn run(args: LatencyArgs) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let (telemetry_url, services) = start_small_world(13, &shutdown).await?;
    let data = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(data.path(), SqliteOptions::default())?);
    evalmint_server::bootstrap_admin_key(store.as_ref(), Some(KEY)).await?;
    let tenant = TenantId::default_tenant();

    let total = (args.rate * args.seconds) as usize;
    let now = Timestamp::now();
    eprintln!("ingesting {total} investigations…");
    let indices: Vec<usize> = (0..total).collect();
    ingest_investigations(&*store, &tenant, &indices, &services, args.queries, now).await?;

    let config = Config {
        sources: harness::simulator_sources(&telemetry_url, &Retention::default()),
        ..Config::default()
    };
    let evalmint = harness::start_evalmint(store.clone(), config, &shutdown).await?;
    let (server, pipeline_metrics, mut pipeline) =
        (evalmint.url, evalmint.pipeline_metrics, evalmint.pipeline);

    let client = reqwest::Client::new();
    let progress = ProgressBar::new(total as u64);
    progress.set_style(
        ProgressStyle::with_template("feedback [{bar:40}] {pos}/{len} sent, {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sends = tokio::task::JoinSet::new();
    for index in 0..total {
        ticker.tick().await;
        let (client, server) = (client.clone(), server.clone());
        let service = services[index % services.len()].clone();
        sends.spawn(async move {
            let trace = format!("{:032x}", index as u128 + 1);
            let body = if index % 3 == 0 {
                serde_json::json!({"investigation_id": trace, "verdict": "up"})
            } else {
                serde_json::json!({"investigation_id": trace, "verdict": "not_quite",
                                   "correction": format!("{service} ran out of CPU")})
            };
            client
                .post(format!("{server}/api/v1/feedback"))
                .bearer_auth(KEY)
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
        if index % args.rate as usize == 0 {
            let stats = store.pipeline_stats(&tenant).await?;
            progress.set_message(format!(
                "{} routed",
                stats.feedback_candidate + stats.feedback_not_candidate
            ));
        }
        progress.inc(1);
    }
    let mut failed = 0;
    while let Some(sent) = sends.join_next().await {
        if !matches!(sent?, Ok(201)) {
            failed += 1;
        }
    }
    let sending = started.elapsed();
    progress.finish_and_clear();
    let waited = Instant::now();
    loop {
        let stats = store.pipeline_stats(&tenant).await?;
        if stats.feedback_pending == 0 || waited.elapsed() > Duration::from_secs(600) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    while pipeline.join_next().await.is_some() {}

    let latencies = harness::routed_latencies(&store, &tenant).await?;
    let at = |q: f64| harness::quantile(&latencies, q);
    // When capture got going: from each feedback to the first of its queries frozen.
    let mut capture_starts = Vec::new();
    for candidate in store
        .candidates(
            &tenant,
            CandidateQuery {
                routes: vec![],
                audit_only: false,
                limit: 1_000_000,
            },
        )
        .await?
    {
        let first_capture = candidate
            .snapshot
            .iter()
            .filter_map(|q| q.captured_at)
            .min();
        for id in &candidate.provenance.feedback_ids {
            if let (Some(captured), Some(feedback)) =
                (first_capture, store.feedback(&tenant, *id).await?)
            {
                capture_starts.push(captured.duration_since(feedback.received_at));
            }
        }
    }
    capture_starts.sort();
    let stats = store.pipeline_stats(&tenant).await?;
    let rows = vec![
        vec!["feedback sent".into(), total.to_string()],
        vec!["feedback refused".into(), failed.to_string()],
        vec![
            "achieved rate".into(),
            format!("{:.0}/s", total as f64 / sending.as_secs_f64()),
        ],
        vec![
            "routed".into(),
            (stats.feedback_candidate + stats.feedback_not_candidate).to_string(),
        ],
        vec!["still pending".into(), stats.feedback_pending.to_string()],
        vec!["feedback → routed p50".into(), at(0.5)],
        vec!["feedback → routed p99".into(), at(0.99)],
        vec!["feedback → routed max".into(), at(1.0)],
        vec![
            "feedback → first query captured p50".into(),
            harness::quantile(&capture_starts, 0.5),
        ],
        vec![
            "feedback → first query captured p99".into(),
            harness::quantile(&capture_starts, 0.99),
        ],
        vec![
            "queries captured".into(),
            stats.queries_captured.to_string(),
        ],
        vec![
            "TTL misses".into(),
            pipeline_metrics.ttl_misses_total().to_string(),
        ],
    ];
    print!("{}", table::render(&["measure", "value"], &rows));
    Ok(())
}
