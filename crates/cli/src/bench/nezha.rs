//! `evalmint bench nezha`: label quality on real telemetry. A recorded data set (the Nezha Train
//! Ticket faults) is served through the simulator's telemetry API on loopback; the reference agents
//! investigate each fault from an alert on the entry service, simulated users answer from the
//! fault list's truth, and evalmint captures, drafts and routes exactly as in production. Scored
//! per fault type against the truth, with how often the evidence alone ranks the true component.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use evalmint_model::{CaptureStatus, Category, Route, TenantId};
use evalmint_pipeline::config::Config;
use evalmint_pipeline::evidence::Evidence;
use evalmint_sim::agent::AgentVersion;
use evalmint_sim::recorded::RecordedWorld;
use evalmint_sim::recorded::play::RecordedRunOptions;
use evalmint_sim::telemetry::{Retention, SimClock, TelemetryService};
use evalmint_sim::users::FeedbackRates;
use evalmint_store::{CandidateQuery, PipelineStore, SqliteOptions, SqliteStore, Store};
use tokio_util::sync::CancellationToken;

use super::harness;
use crate::table;

#[derive(Debug, clap::Args)]
pub(crate) struct NezhaArgs {
    /// The Nezha data: one day's directory (with `fault_list.json`) or a directory of days.
    #[arg(long)]
    data: PathBuf,
    /// The reference agents that investigate (each investigates every fault).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "v1,v2")]
    agents: Vec<AgentVersion>,
    /// Seed of the agents' and users' choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Play only the first N faults.
    #[arg(long)]
    faults: Option<usize>,
    /// Concurrent investigations.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Retention of every signal in the telemetry API (and the TTL evalmint is told), counted from
    /// the end of the recorded data.
    #[arg(long, default_value = "3650d", value_parser = crate::positive_duration)]
    ttl: jiff::SignedDuration,
    /// Print every candidate against its truth.
    #[arg(long)]
    verbose: bool,
    /// Print the figures as one JSON object instead of tables.
    #[arg(long)]
    json: bool,
}

const KEY: &str = "em_bench_nezha_admin_key_0123456789ab";

#[derive(Debug, Default, Clone)]
struct Tally {
    investigations: u64,
    candidates: u64,
    admitted: u64,
    admitted_right: u64,
    review: u64,
    insufficient: u64,
    vague: u64,
    vague_right: u64,
    evidence_ranked: u64,
    evidence_top1: u64,
    evidence_top3: u64,
    snapshot_bytes: Vec<u64>,
    captured: u64,
    recorded: u64,
    expired: u64,
    failed: u64,
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

fn shown(num: u64, den: u64) -> String {
    ratio(num, den).map_or_else(|| "n/a".into(), |r| format!("{r:.3} ({num}/{den})"))
}

fn median(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

pub(crate) async fn run(args: NezhaArgs) -> anyhow::Result<()> {
    let dir = args.data.clone();
    let world: RecordedWorld =
        tokio::task::spawn_blocking(move || evalmint_sim::recorded::load(&dir))
            .await?
            .with_context(|| format!("loading {}", args.data.display()))?;
    let world = Arc::new(world);
    anyhow::ensure!(
        world.entry.is_some(),
        "the recorded data has no traces, so no entry service to alert on"
    );
    let shutdown = CancellationToken::new();
    let data = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(data.path(), SqliteOptions::default())?);
    evalmint_server::bootstrap_admin_key(store.as_ref(), Some(KEY)).await?;
    let tenant = TenantId::default_tenant();

    let ttl = args.ttl.as_secs();
    let retention = Retention {
        metrics: ttl,
        logs: ttl,
        events: ttl,
        traces: ttl,
    };
    let clock = Arc::new(SimClock::running(world.end * 1000, 1.0));
    let telemetry = Arc::new(TelemetryService::recorded(world.clone(), clock, retention));
    let telemetry_url =
        harness::serve_on_loopback(evalmint_sim::telemetry::app(telemetry), shutdown.clone())
            .await?;
    let config = Config {
        sources: harness::simulator_sources(&telemetry_url, &retention),
        ..Config::default()
    };
    let evalmint = harness::start_evalmint(store.clone(), config, &shutdown).await?;
    let (server_url, pipeline_metrics, mut pipeline) =
        (evalmint.url, evalmint.pipeline_metrics, evalmint.pipeline);

    let truth_path = data.path().join("truth.jsonl");
    let started = Instant::now();
    // Every investigation gets feedback, in the usual mix of styles: 28 faults are few.
    let rates = FeedbackRates {
        silence_when_right: 0.0,
        silence_when_wrong: 0.0,
        ..FeedbackRates::default()
    };
    let faults = args
        .faults
        .map(|n| (0..n.min(world.faults.len())).collect());
    let summary = evalmint_sim::recorded::play::run(
        world.clone(),
        RecordedRunOptions {
            server: server_url,
            api_key: Some(KEY.to_owned()),
            telemetry: telemetry_url,
            agents: args.agents.clone(),
            seed: args.seed,
            truth: truth_path.clone(),
            rates,
            concurrency: args.concurrency,
            faults,
        },
    )
    .await
    .context("playing the recorded faults")?;
    let played_in = started.elapsed();

    let waited = Instant::now();
    let stats = loop {
        let stats = store.pipeline_stats(&tenant).await?;
        if stats.feedback_pending == 0 || waited.elapsed() > Duration::from_secs(900) {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let labelled_in = waited.elapsed();
    shutdown.cancel();
    while pipeline.join_next().await.is_some() {}

    let truth = read_truth(&truth_path)?;
    let candidates = store
        .candidates(
            &tenant,
            CandidateQuery {
                routes: vec![],
                audit_only: false,
                limit: 1_000_000,
            },
        )
        .await?;
    let taxonomy = evalmint_pipeline::taxonomy::Taxonomy::default();
    let mut by_type: BTreeMap<String, Tally> = BTreeMap::new();
    let mut overall = Tally::default();
    for record in truth.values() {
        let kind = record["inject_type"].as_str().unwrap_or("?").to_owned();
        overall.investigations += 1;
        by_type.entry(kind).or_default().investigations += 1;
    }
    let mut details = Vec::new();
    for candidate in &candidates {
        let Some(record) = truth.get(&candidate.investigation_id.to_string()) else {
            continue;
        };
        let kind = record["inject_type"].as_str().unwrap_or("?").to_owned();
        let root = record["root_component"].as_str().unwrap_or("");
        let style = record["investigation"]["feedback"]["style"]
            .as_str()
            .unwrap_or("none");
        let (component_right, category_right) = match &candidate.ground_truth {
            Some(gt) => (
                gt.components.first().map(String::as_str) == Some(root),
                match (
                    &gt.category,
                    record["category"].as_str().and_then(Category::parse),
                ) {
                    (Some(drafted), Some(truth)) => taxonomy.agrees(drafted, &truth),
                    _ => false,
                },
            ),
            None => (false, false),
        };
        // The snapshot as captured, and what its evidence alone ranks first.
        let snapshot = store.snapshot(&tenant, candidate.investigation_id).await?;
        let mut results = Vec::with_capacity(snapshot.len());
        let mut bytes_total = 0u64;
        let mut outcomes = [0u64; 4];
        for query in snapshot {
            match query.status {
                CaptureStatus::Captured => outcomes[0] += 1,
                CaptureStatus::Recorded => outcomes[1] += 1,
                CaptureStatus::Expired => outcomes[2] += 1,
                CaptureStatus::Failed => outcomes[3] += 1,
                CaptureStatus::Pending => {}
            }
            let bytes = if query.status.has_result() {
                store
                    .snapshot_result(&tenant, candidate.investigation_id, &query.id)
                    .await?
            } else {
                None
            };
            bytes_total += bytes.as_ref().map_or(0, |b| b.len() as u64);
            results.push((query, bytes));
        }
        let mut evidence = Evidence::extract(&results, &[]);
        let fired_at = store
            .investigation(&tenant, candidate.investigation_id)
            .await?
            .and_then(|i| i.trigger.and_then(|t| t.fired_at));
        if let Some(fired_at) = fired_at {
            evidence.weigh_change(fired_at - evalmint_pipeline::worker::CHANGE_LEAD);
        }
        let ranking = evidence.ranking();
        let rank = ranking.iter().position(|(e, _)| e == root);
        for tally in [&mut overall, by_type.entry(kind.clone()).or_default()] {
            tally.candidates += 1;
            match candidate.route {
                Route::Admit => {
                    tally.admitted += 1;
                    tally.admitted_right += u64::from(component_right && category_right);
                }
                Route::Review => tally.review += 1,
                Route::Insufficient => tally.insufficient += 1,
            }
            if style == "vague" {
                tally.vague += 1;
                tally.vague_right += u64::from(component_right);
            }
            tally.evidence_ranked += 1;
            tally.evidence_top1 += u64::from(rank == Some(0));
            tally.evidence_top3 += u64::from(rank.is_some_and(|r| r < 3));
            tally.snapshot_bytes.push(bytes_total);
            tally.captured += outcomes[0];
            tally.recorded += outcomes[1];
            tally.expired += outcomes[2];
            tally.failed += outcomes[3];
        }
        if args.verbose {
            details.push(format!(
                "{} {kind} {style} route={:?} truth={root}/{} drafted={:?}/{:?} evidence={:?}",
                record["incident_id"].as_str().unwrap_or("?"),
                candidate.route,
                record["category"].as_str().unwrap_or("?"),
                candidate
                    .ground_truth
                    .as_ref()
                    .and_then(|g| g.components.first()),
                candidate
                    .ground_truth
                    .as_ref()
                    .and_then(|g| g.category.as_ref().map(|c| c.as_str().to_owned())),
                ranking.iter().take(3).map(|(e, _)| e).collect::<Vec<_>>(),
            ));
        }
    }

    let figures = |t: &Tally| {
        serde_json::json!({
            "investigations": t.investigations,
            "candidates": t.candidates,
            "admitted": t.admitted,
            "admitted_right": t.admitted_right,
            "admitted_precision": ratio(t.admitted_right, t.admitted),
            "review": t.review,
            "review_fraction": ratio(t.review, t.candidates),
            "insufficient": t.insufficient,
            "insufficient_fraction": ratio(t.insufficient, t.candidates),
            "vague": t.vague,
            "vague_right": ratio(t.vague_right, t.vague),
            "evidence_top1": ratio(t.evidence_top1, t.evidence_ranked),
            "evidence_top3": ratio(t.evidence_top3, t.evidence_ranked),
            "snapshot_bytes_median": median(&t.snapshot_bytes),
            "snapshot_bytes_max": t.snapshot_bytes.iter().max().copied().unwrap_or(0),
            "queries_captured": t.captured,
            "queries_recorded": t.recorded,
            "queries_expired": t.expired,
            "queries_failed": t.failed,
        })
    };
    if args.json {
        let mut out = figures(&overall);
        out["faults"] = serde_json::json!(world.faults.len());
        out["feedback_sent"] = serde_json::json!(summary.feedback_sent);
        out["feedback_pending"] = serde_json::json!(stats.feedback_pending);
        out["agent_wrong_component"] = serde_json::json!(summary.wrong_component);
        out["ttl_misses"] = serde_json::json!(pipeline_metrics.ttl_misses_total());
        out["client_errors"] = serde_json::json!(summary.client_errors);
        out["by_type"] = by_type
            .iter()
            .map(|(k, t)| (k.clone(), figures(t)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        println!("{out}");
        return Ok(());
    }
    for line in &world.notes {
        println!("data: {line}");
    }
    let rows = vec![
        vec!["faults".into(), world.faults.len().to_string()],
        vec!["investigations".into(), summary.incidents.to_string()],
        vec![
            "agent wrong component".into(),
            summary.wrong_component.to_string(),
        ],
        vec!["feedback sent".into(), summary.feedback_sent.to_string()],
        vec![
            "feedback still pending".into(),
            stats.feedback_pending.to_string(),
        ],
        vec![
            "TTL misses".into(),
            pipeline_metrics.ttl_misses_total().to_string(),
        ],
        vec!["client errors".into(), summary.client_errors.to_string()],
        vec![
            "playing".into(),
            format!("{:.1} s", played_in.as_secs_f64()),
        ],
        vec![
            "labelling after the last feedback".into(),
            format!("{:.1} s", labelled_in.as_secs_f64()),
        ],
    ];
    print!("{}", table::render(&["measure", "value"], &rows));
    println!();
    let mut type_rows: Vec<Vec<String>> = by_type.iter().map(|(k, t)| type_row(k, t)).collect();
    type_rows.push(type_row("overall", &overall));
    print!(
        "{}",
        table::render(
            &[
                "fault type",
                "candidates",
                "admitted precision",
                "review",
                "insufficient",
                "vague → right",
                "evidence top-1",
                "evidence top-3",
                "snapshot median / max",
                "captured / recorded / expired / failed",
            ],
            &type_rows
        )
    );
    for line in details {
        println!("{line}");
    }
    Ok(())
}

fn type_row(name: &str, t: &Tally) -> Vec<String> {
    vec![
        name.to_owned(),
        t.candidates.to_string(),
        shown(t.admitted_right, t.admitted),
        shown(t.review, t.candidates),
        shown(t.insufficient, t.candidates),
        shown(t.vague_right, t.vague),
        shown(t.evidence_top1, t.evidence_ranked),
        shown(t.evidence_top3, t.evidence_ranked),
        format!(
            "{} / {} KiB",
            median(&t.snapshot_bytes) / 1024,
            t.snapshot_bytes.iter().max().copied().unwrap_or(0) / 1024
        ),
        format!(
            "{} / {} / {} / {}",
            t.captured, t.recorded, t.expired, t.failed
        ),
    ]
}

fn read_truth(path: &std::path::Path) -> anyhow::Result<HashMap<String, serde_json::Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut by_trace = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let record: serde_json::Value = serde_json::from_str(line)?;
        if let Some(trace) = record["investigation"]["trace_id"].as_str() {
            by_trace.insert(trace.to_owned(), record);
        }
    }
    Ok(by_trace)
}
