//! `evalmint bench capture`: the TTL race under a burst. A burst of investigations lands at once,
//! each with metric queries whose data expires at spread-out moments over the next seconds; the
//! capturer re-runs them against the simulator's Prometheus-compatible API with bounded
//! concurrency. Run once earliest-deadline-first and once first-in-first-out, on fresh stores, and
//! count the deadlines each misses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use evalmint_model::{SignalSource, SnapshotQuery, TenantId, TimeWindow, TraceId};
use evalmint_pipeline::capture::Capturer;
use evalmint_pipeline::config::{Config, Connector, Source};
use evalmint_pipeline::metrics::PipelineMetrics;
use evalmint_sim::telemetry::Retention;
use evalmint_sim::world::{World, WorldConfig};
use evalmint_store::{
    CaptureOrder, FullStore, PipelineStore, SqliteOptions, SqliteStore, SystemClock,
};
use indicatif::{ProgressBar, ProgressStyle};
use jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::table;

#[derive(Debug, clap::Args)]
pub(crate) struct CaptureArgs {
    /// Investigations at nominal load; the burst multiplies this.
    #[arg(long, default_value_t = 100)]
    investigations: usize,
    /// Burst factor over nominal load.
    #[arg(long, default_value_t = 20)]
    burst: usize,
    /// Metric queries per investigation.
    #[arg(long, default_value_t = 5)]
    queries: usize,
    /// Deadlines are spread uniformly over this long after the burst lands.
    #[arg(long, default_value = "10s", value_parser = crate::positive_duration)]
    spread: SignedDuration,
    /// Concurrent captures against the source.
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
}

struct Outcome {
    queries: usize,
    misses: u64,
    took: Duration,
}

/// A small simulated world whose timeline ends now.
pub(crate) fn small_world(seed: u64, services: usize) -> World {
    World::generate(WorldConfig {
        seed,
        incidents: 5,
        services: Some(services),
        timeline_end: Timestamp::now().as_second(),
    })
}

pub(crate) async fn run(args: CaptureArgs) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let world = Arc::new(small_world(11, 20));
    let url =
        super::harness::start_telemetry(world.clone(), Retention::default(), &shutdown).await?;
    let services: Vec<String> = world
        .topology
        .components
        .iter()
        .map(|c| c.name.clone())
        .collect();

    let mut rows = Vec::new();
    for (label, investigations) in [
        ("nominal", args.investigations),
        ("burst", args.investigations * args.burst),
    ] {
        let mut results = Vec::new();
        for order in [
            CaptureOrder::EarliestDeadline,
            CaptureOrder::FirstInFirstOut,
        ] {
            let outcome = race(&args, &url, &services, investigations, order).await?;
            results.push(outcome);
        }
        let name = |o: &Outcome| format!("{} / {}", o.misses, o.queries);
        rows.push(vec![
            label.to_owned(),
            investigations.to_string(),
            name(&results[0]),
            format!("{:.1} s", results[0].took.as_secs_f64()),
            name(&results[1]),
            format!("{:.1} s", results[1].took.as_secs_f64()),
        ]);
    }
    shutdown.cancel();
    print!(
        "{}",
        table::render(
            &[
                "load",
                "investigations",
                "EDF misses",
                "EDF time",
                "FIFO misses",
                "FIFO time"
            ],
            &rows
        )
    );
    Ok(())
}

/// One race on a fresh store: plan every query at once, capture until none is pending.
async fn race(
    args: &CaptureArgs,
    url: &str,
    services: &[String],
    investigations: usize,
    order: CaptureOrder,
) -> anyhow::Result<Outcome> {
    let data = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(data.path(), SqliteOptions::default())?);
    let tenant = TenantId::default_tenant();
    let ttl = SignedDuration::from_hours(1);
    let config = Arc::new(Config {
        sources: vec![Source {
            name: "sim-metrics".into(),
            signal: SignalSource::Metrics,
            connector: Connector::Prometheus {
                endpoint: url.to_owned(),
            },
            ttl,
            tools: vec![],
            concurrency: args.concurrency,
        }],
        ..Config::default()
    });
    // The planned queries arrive in an order unrelated to their deadlines, as bursts do.
    let total = investigations * args.queries;
    let planned_at = Timestamp::now();
    let spread_ms = args.spread.as_millis() as u64;
    for i in 0..investigations {
        let trace = TraceId::from_bytes(&(i as u128 + 1).to_be_bytes())?;
        let queries = (0..args.queries)
            .map(|q| {
                let n = (i * args.queries + q) as u64;
                // A fixed permutation of deadlines: multiplicative hashing spreads them evenly.
                let offset_ms =
                    (n.wrapping_mul(2_654_435_761) % total as u64) * spread_ms / total as u64;
                let deadline = planned_at + SignedDuration::from_millis(1_000 + offset_ms as i64);
                let start = deadline - ttl;
                let service = &services[(n as usize) % services.len()];
                let query = format!("cpu_usage_ratio{{service=\"{service}\"}}");
                SnapshotQuery {
                    arguments: Some(serde_json::json!({"query": query, "step": "60s"}).to_string()),
                    window: TimeWindow::new(start, start + SignedDuration::from_mins(30)),
                    entities: vec![service.clone()],
                    ..SnapshotQuery::pending(
                        format!("q-{q}"),
                        "sim-metrics".into(),
                        SignalSource::Metrics,
                        "query_metrics".into(),
                        query,
                        deadline,
                        planned_at,
                    )
                }
            })
            .collect();
        store.plan_snapshot(&tenant, trace, queries).await?;
    }
    let metrics = Arc::new(PipelineMetrics::default());
    let shutdown = CancellationToken::new();
    let capturer = Arc::new(Capturer::new(
        store.clone() as Arc<dyn FullStore>,
        config,
        Arc::new(SystemClock),
        order,
        metrics.clone(),
    ));
    let started = Instant::now();
    let task = tokio::spawn(capturer.run(shutdown.clone()));
    let progress = ProgressBar::new(total as u64);
    progress.set_style(
        ProgressStyle::with_template("{msg:>5} [{bar:40}] {pos}/{len} queries")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    progress.set_message(match order {
        CaptureOrder::EarliestDeadline => "EDF",
        CaptureOrder::FirstInFirstOut => "FIFO",
    });
    loop {
        let stats = store.pipeline_stats(&tenant).await?;
        progress.set_position(total as u64 - stats.queries_pending);
        if stats.queries_pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    progress.finish_and_clear();
    let took = started.elapsed();
    shutdown.cancel();
    let _ = task.await;
    Ok(Outcome {
        queries: total,
        misses: metrics.ttl_misses_total(),
        took,
    })
}
