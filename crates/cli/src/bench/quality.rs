//! `evalmint bench quality`: the simulator and the label pipeline end to end, scored against the
//! simulator's truth file. An in-process evalmint server (embedded store, real HTTP) and an
//! in-process simulator telemetry API on loopback; the reference agent's traces and the simulated
//! users' feedback arrive through the real ingest path, and capture re-runs the agent's queries
//! against the telemetry API before their TTL.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use evalmint_model::{Category, Route, TenantId};
use evalmint_pipeline::config::Config;
use evalmint_sim::agent::AgentVersion;
use evalmint_sim::telemetry::Retention;
use evalmint_sim::world::{World, WorldConfig};
use evalmint_store::{CandidateQuery, PipelineStore, SqliteOptions, SqliteStore};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use super::harness;
use crate::table;

#[derive(Debug, clap::Args)]
pub(crate) struct QualityArgs {
    /// Incidents to simulate.
    #[arg(long, default_value_t = 200)]
    incidents: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Services in the simulated world (10-500); by default the seed chooses.
    #[arg(long)]
    services: Option<usize>,
    /// The reference agent that investigates.
    #[arg(long, value_enum, default_value = "v1")]
    agent: AgentVersion,
    /// Concurrent investigations in the simulator.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Retention of every telemetry signal in the simulator (and the TTL evalmint is told). The
    /// simulator plays weeks of incidents in seconds, so the default keeps all of them reachable:
    /// this benchmark measures label quality at nominal load, `bench capture` the TTL race.
    #[arg(long, default_value = "3650d", value_parser = crate::positive_duration)]
    ttl: jiff::SignedDuration,
    /// Print per-style details of wrong admissions.
    #[arg(long)]
    verbose: bool,
    /// Print the figures as one JSON object instead of tables.
    #[arg(long)]
    json: bool,
    /// Keep the store (labels and snapshots) in this directory instead of a temporary one, for
    /// `evalmint eval run --data DIR` afterwards.
    #[arg(long)]
    keep_data: Option<std::path::PathBuf>,
}

const KEY: &str = "em_bench_quality_admin_key_0123456789";

pub(crate) async fn run(args: QualityArgs) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let data = tempfile::tempdir()?;
    let store_dir = args
        .keep_data
        .clone()
        .unwrap_or_else(|| data.path().to_owned());
    let store = Arc::new(SqliteStore::open(&store_dir, SqliteOptions::default())?);
    evalmint_server::bootstrap_admin_key(store.as_ref(), Some(KEY)).await?;
    let tenant = TenantId::default_tenant();

    let world_config = WorldConfig {
        seed: args.seed,
        incidents: args.incidents,
        services: args.services,
        timeline_end: jiff::Timestamp::now().as_second(),
    };
    let world = Arc::new(World::generate(world_config));
    let retention = Retention {
        metrics: args.ttl.as_secs(),
        logs: args.ttl.as_secs(),
        events: args.ttl.as_secs(),
        traces: args.ttl.as_secs(),
    };
    let telemetry_url = harness::start_telemetry(world, retention, &shutdown).await?;
    let config = Config {
        sources: harness::simulator_sources(&telemetry_url, &retention),
        ..Config::default()
    };
    let evalmint = harness::start_evalmint(store.clone(), config, &shutdown).await?;
    let (server_url, pipeline_metrics, mut pipeline) =
        (evalmint.url, evalmint.pipeline_metrics, evalmint.pipeline);

    let truth_path = data.path().join("truth.jsonl");
    let started = Instant::now();
    let summary = evalmint_sim::run::run(evalmint_sim::run::RunOptions {
        server: server_url,
        api_key: Some(KEY.to_owned()),
        world: world_config,
        agent: args.agent,
        telemetry: Some(telemetry_url),
        truth: truth_path.clone(),
        rates: evalmint_sim::users::FeedbackRates::default(),
        concurrency: args.concurrency,
        show_progress: true,
    })
    .await
    .context("running the simulator")?;
    let simulated_in = started.elapsed();

    let waited = Instant::now();
    let progress = ProgressBar::new(summary.feedback_sent);
    progress.set_style(
        ProgressStyle::with_template(
            "labelling [{bar:40}] {pos}/{len} feedback routed ({elapsed})",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    let stats = loop {
        let stats = store.pipeline_stats(&tenant).await?;
        progress.set_position(stats.feedback_candidate + stats.feedback_not_candidate);
        if stats.feedback_pending == 0 || waited.elapsed() > Duration::from_secs(900) {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    progress.finish_and_clear();
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

    #[derive(Default)]
    struct Tally {
        candidates: u64,
        admitted: u64,
        admitted_right: u64,
        review: u64,
        insufficient: u64,
        resolved_right: u64,
    }
    // A more specific category than the truth's (`resource.cpu.container` for `resource.cpu`)
    // counts as right.
    let taxonomy = evalmint_pipeline::taxonomy::Taxonomy::default();
    let mut by_style: BTreeMap<String, Tally> = BTreeMap::new();
    let mut overall = Tally::default();
    let mut wrong_admissions = Vec::new();
    for candidate in &candidates {
        let Some(truth) = truth.get(&candidate.investigation_id.to_string()) else {
            continue;
        };
        let style = truth["investigation"]["feedback"]["style"]
            .as_str()
            .unwrap_or("none")
            .to_owned();
        let (component_right, category_right) = match &candidate.ground_truth {
            Some(gt) => (
                gt.components.first().map(String::as_str) == truth["root_component"].as_str(),
                match (
                    &gt.category,
                    truth["category"].as_str().and_then(Category::parse),
                ) {
                    (Some(drafted), Some(true_category)) => {
                        taxonomy.agrees(drafted, &true_category)
                    }
                    _ => false,
                },
            ),
            None => (false, false),
        };
        for tally in [&mut overall, by_style.entry(style.clone()).or_default()] {
            tally.candidates += 1;
            match candidate.route {
                Route::Admit => {
                    tally.admitted += 1;
                    if component_right && category_right {
                        tally.admitted_right += 1;
                    }
                }
                Route::Review => tally.review += 1,
                Route::Insufficient => tally.insufficient += 1,
            }
            if component_right {
                tally.resolved_right += 1;
            }
        }
        if candidate.route == Route::Admit && !(component_right && category_right) {
            wrong_admissions.push(format!(
                "{style}: said {:?} / {:?}, truth {} / {}",
                candidate.ground_truth.as_ref().map(|g| g.statement.clone()),
                truth["investigation"]["feedback"]["correction"].as_str(),
                truth["root_component"],
                truth["category"]
            ));
        }
    }
    let latencies = harness::routed_latencies(&store, &tenant).await?;
    let percentile = |p: f64| harness::quantile(&latencies, p);
    let ratio = |num: u64, den: u64| -> String {
        if den == 0 {
            "n/a".to_owned()
        } else {
            format!("{:.3} ({num}/{den})", num as f64 / den as f64)
        }
    };
    let vague = by_style.get("vague");
    if args.json {
        let figures = serde_json::json!({
            "incidents": summary.incidents,
            "feedback_sent": summary.feedback_sent,
            "feedback_candidate": stats.feedback_candidate,
            "feedback_not_candidate": stats.feedback_not_candidate,
            "feedback_pending": stats.feedback_pending,
            "candidates": overall.candidates,
            "admitted": overall.admitted,
            "admitted_right": overall.admitted_right,
            "review": overall.review,
            "insufficient": overall.insufficient,
            "vague": vague.map_or(0, |v| v.candidates),
            "vague_right": vague.map_or(0, |v| v.resolved_right),
            "ttl_misses": pipeline_metrics.ttl_misses_total(),
            "client_errors": summary.client_errors,
        });
        println!("{figures}");
        return Ok(());
    }
    let rows = vec![
        vec!["incidents".into(), summary.incidents.to_string()],
        vec![
            "agent wrong component".into(),
            summary.wrong_component.to_string(),
        ],
        vec!["feedback sent".into(), summary.feedback_sent.to_string()],
        vec![
            "feedback → candidate".into(),
            stats.feedback_candidate.to_string(),
        ],
        vec![
            "feedback → not a candidate".into(),
            stats.feedback_not_candidate.to_string(),
        ],
        vec![
            "feedback still pending".into(),
            stats.feedback_pending.to_string(),
        ],
        vec!["candidates".into(), overall.candidates.to_string()],
        vec![
            "admitted precision (component+category)".into(),
            ratio(overall.admitted_right, overall.admitted),
        ],
        vec![
            "review fraction".into(),
            ratio(overall.review, overall.candidates),
        ],
        vec![
            "insufficient fraction".into(),
            ratio(overall.insufficient, overall.candidates),
        ],
        vec![
            "vague corrections → right component".into(),
            vague.map_or("n/a".into(), |v| ratio(v.resolved_right, v.candidates)),
        ],
        vec!["audit sample".into(), stats.candidates_audit.to_string()],
        vec![
            "queries captured / recorded / expired / failed".into(),
            format!(
                "{} / {} / {} / {}",
                stats.queries_captured,
                stats.queries_recorded,
                stats.queries_expired,
                stats.queries_failed
            ),
        ],
        vec![
            "TTL misses".into(),
            pipeline_metrics.ttl_misses_total().to_string(),
        ],
        vec![
            "queries already expired when feedback arrived".into(),
            pipeline_metrics.expired_before_feedback_total().to_string(),
        ],
        vec!["feedback → routed p50".into(), percentile(0.5)],
        vec!["feedback → routed p99".into(), percentile(0.99)],
        vec![
            "simulation".into(),
            format!("{:.1} s", simulated_in.as_secs_f64()),
        ],
        vec![
            "labelling after the last feedback".into(),
            format!("{:.1} s", labelled_in.as_secs_f64()),
        ],
    ];
    print!("{}", table::render(&["measure", "value"], &rows));
    println!();
    let style_rows: Vec<Vec<String>> = by_style
        .iter()
        .map(|(style, t)| {
            vec![
                style.clone(),
                t.candidates.to_string(),
                t.admitted.to_string(),
                ratio(t.admitted_right, t.admitted),
                t.review.to_string(),
                t.insufficient.to_string(),
                ratio(t.resolved_right, t.candidates),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            &[
                "feedback style",
                "candidates",
                "admitted",
                "admitted precision",
                "review",
                "insufficient",
                "right component"
            ],
            &style_rows
        )
    );
    if args.verbose {
        for line in wrong_admissions {
            println!("wrong admission: {line}");
        }
    }
    Ok(())
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
