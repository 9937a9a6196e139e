//! `evalmint bench contention`: feedback latency while several very large trace exports keep the
//! store's writer busy, against a fresh `evalmint serve` child. Feedback is sent at a steady rate
//! (open loop, so a slow answer does not slow the sending) first alone, then during the exports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio_util::sync::CancellationToken;

use super::spans::{SpanShape, encode_batch, hex_trace_id};
use super::{
    ChildServer, PhaseResult, cpu_used, micros_per, ms, row, run_phase, wait_until_healthy,
};
use crate::table;

#[derive(Debug, clap::Args)]
pub(crate) struct ContentionArgs {
    /// Concurrent trace exports.
    #[arg(long, default_value_t = 4)]
    exports: usize,
    /// Size of each export request body, in MB (10^6 bytes) of OTLP protobuf agent spans.
    #[arg(long, default_value_t = 59)]
    export_mb: usize,
    /// Feedback requests per second, during both phases.
    #[arg(long, default_value_t = 50)]
    feedback_rate: u32,
    /// How long feedback is measured alone, before the exports start.
    #[arg(long, default_value = "5s", value_parser = crate::positive_duration)]
    baseline: jiff::SignedDuration,
    /// The server's --max-body; it must admit one export.
    #[arg(long, default_value = "128MiB")]
    max_body: String,
}

pub(crate) async fn run(args: ContentionArgs) -> anyhow::Result<()> {
    if args.exports == 0 || args.export_mb == 0 || args.feedback_rate == 0 {
        bail!("--exports, --export-mb and --feedback-rate must be positive");
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let key = super::bench_admin_key();
    let (child, server) = ChildServer::start(&key, &["--max-body", &args.max_body])?;
    wait_until_healthy(&client, &server).await?;

    let shape = SpanShape::Agent;
    let per_span = encode_batch(shape, 0, 0, 600).len() / 600;
    let spans_per_export =
        (args.export_mb * 1_000_000 / per_span).next_multiple_of(shape.spans_per_trace());
    eprintln!(
        "encoding {} exports of {spans_per_export} spans…",
        args.exports
    );
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..args.exports)
            .map(|e| encode_batch(shape, 0, e * spans_per_export, spans_per_export))
            .collect(),
    );
    let export_bytes = bodies.iter().map(Vec::len).sum::<usize>() / args.exports;
    let traces = args.exports * spans_per_export / shape.spans_per_trace();
    let interval = Duration::from_secs(1) / args.feedback_rate;

    let baseline = send_feedback(
        client.clone(),
        server.clone(),
        key.clone(),
        traces,
        interval,
        CancellationToken::new(),
        Some(Duration::try_from(args.baseline)?),
    )
    .await?;

    let stop_feedback = CancellationToken::new();
    let during = tokio::spawn(send_feedback(
        client.clone(),
        server.clone(),
        key.clone(),
        traces,
        interval,
        stop_feedback.clone(),
        None,
    ));
    let cpu_before = child.cpu_time();
    let exports = run_phase(
        "exports",
        &client,
        args.exports,
        args.exports,
        spans_per_export as u64,
        {
            let (server, key, bodies) = (server.clone(), key.clone(), bodies.clone());
            move |client: &reqwest::Client, index: usize| {
                client
                    .post(format!("{server}/v1/traces"))
                    .bearer_auth(&key)
                    .header("content-type", "application/x-protobuf")
                    .body(bodies[index].clone())
            }
        },
    )
    .await;
    let export_cpu = cpu_used(Some(&child), cpu_before);
    stop_feedback.cancel();
    let during = during.await??;
    let exports = exports?;

    let mut rows = vec![
        row(
            "exports",
            format!(
                "{} concurrent, {:.1} MB and {spans_per_export} spans each",
                args.exports,
                export_bytes as f64 / 1e6
            ),
        ),
        row(
            "exports acknowledged",
            format!(
                "{} of {} in {:.1} s ({:.0} spans/s)",
                exports.latencies.len(),
                args.exports,
                exports.elapsed.as_secs_f64(),
                exports.rate()
            ),
        ),
        row("export request p50", ms(exports.percentile(0.5))),
        row("export request max", ms(exports.percentile(1.0))),
        row("export 429 retries", exports.retries.to_string()),
        row(
            "server CPU per exported span",
            micros_per(export_cpu, exports.items),
        ),
    ];
    for (name, phase) in [("alone", &baseline), ("during exports", &during)] {
        rows.push(row(
            &format!("feedback {name}"),
            format!(
                "{} acknowledged, {} refused (429), {} failed",
                phase.acknowledged.len(),
                phase.refused,
                phase.failed
            ),
        ));
        rows.push(row(
            &format!("feedback {name} p50"),
            ms(quantile(&phase.acknowledged, 0.5)),
        ));
        rows.push(row(
            &format!("feedback {name} p99"),
            ms(quantile(&phase.acknowledged, 0.99)),
        ));
        rows.push(row(
            &format!("feedback {name} max"),
            ms(quantile(&phase.acknowledged, 1.0)),
        ));
    }
    rows.push(row(
        "server peak RSS",
        child.peak_rss_bytes().map_or("n/a".to_owned(), |b| {
            format!("{:.1} MiB", b as f64 / 1_048_576.0)
        }),
    ));
    print!("{}", table::render(&["measure", "value"], &rows));
    Ok(())
}

/// Feedback latencies of one phase.
#[derive(Default)]
struct FeedbackPhase {
    acknowledged: Vec<Duration>,
    refused: usize,
    failed: usize,
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    PhaseResult::quantile_of(sorted, q)
}

/// Sends one feedback every `interval` until `stop` fires or `length` has passed, each in its own
/// task, and waits for every answer.
async fn send_feedback(
    client: reqwest::Client,
    server: String,
    key: String,
    traces: usize,
    interval: Duration,
    stop: CancellationToken,
    length: Option<Duration>,
) -> anyhow::Result<FeedbackPhase> {
    let started = Instant::now();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = tokio::task::JoinSet::new();
    let mut index = 0usize;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        if length.is_some_and(|length| started.elapsed() >= length) {
            break;
        }
        let verdict = ["up", "not_quite", "down"][index % 3];
        let body = serde_json::json!({
            "investigation_id": hex_trace_id(0, index.wrapping_mul(2_654_435_761) % traces.max(1)),
            "verdict": verdict,
            "rating": 1 + index % 5,
            "correction": "payments-db connection pool exhausted after the 14:02 deploy",
            "user_id": format!("u-{}", index % 100),
        });
        let request = client
            .post(format!("{server}/api/v1/feedback"))
            .bearer_auth(&key)
            .json(&body);
        sent.spawn(async move {
            let at = Instant::now();
            let response = request.send().await;
            (at.elapsed(), response.map(|r| r.status()))
        });
        index += 1;
    }
    let mut phase = FeedbackPhase::default();
    while let Some(answer) = sent.join_next().await {
        match answer? {
            (latency, Ok(status)) if status.is_success() => phase.acknowledged.push(latency),
            (_, Ok(reqwest::StatusCode::TOO_MANY_REQUESTS)) => phase.refused += 1,
            _ => phase.failed += 1,
        }
    }
    phase.acknowledged.sort();
    Ok(phase)
}
