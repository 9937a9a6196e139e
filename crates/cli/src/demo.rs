//! `evalmint demo`: the whole story in one command on the embedded store. It serves the API with
//! its label pipeline on `--listen`, starts the simulator's telemetry, has the reference agent v1
//! investigate a few hundred incidents with simulated users giving feedback (over HTTP, like real
//! clients), waits for the labels, releases the admitted ones and evaluates agents v1 and v2 on
//! that release, v2 against v1 (their sessions served by the same server), then prints the URL, a sign-in key and a
//! short tour and keeps serving until Ctrl-C. Each stage is a step in `run`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use evalmint_model::{Scope, ScopeSet, TenantId};
use evalmint_pipeline::config::Config;
use evalmint_pipeline::metrics::PipelineMetrics;
use evalmint_server::{AppState, Metrics, ServerConfig};
use evalmint_sim::agent::AgentVersion;
use evalmint_sim::telemetry::Retention;
use evalmint_sim::world::{World, WorldConfig};
use evalmint_store::{
    CandidateQuery, CaptureOrder, FullStore, PipelineStore, ReviewStore, SqliteOptions,
    SqliteStore, Store, SystemClock,
};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::DataArgs;
use crate::bench::harness;

#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Address to serve on, as for `serve`.
    #[arg(long, env = "EVALMINT_LISTEN", default_value = "127.0.0.1:4318")]
    listen: SocketAddr,
    /// Incidents the agent investigates.
    #[arg(long, default_value_t = 300)]
    incidents: u64,
    /// Seed of the simulated world.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Stop after the tour instead of serving until Ctrl-C.
    #[arg(long)]
    no_wait: bool,
}

pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let shutdown = CancellationToken::new();
    std::fs::create_dir_all(&args.data.dir)
        .with_context(|| format!("creating {}", args.data.dir.display()))?;
    let store = Arc::new(
        SqliteStore::open(&args.data.dir, SqliteOptions::default())
            .with_context(|| format!("opening the store in {}", args.data.dir.display()))?,
    );
    let tenant = TenantId::default_tenant();
    let sign_in = store
        .create_api_key(
            &tenant,
            "demo sign-in key",
            ScopeSet::default().with(Scope::Admin),
        )
        .await?
        .secret;

    // The simulator's world and its telemetry API, which the pipeline captures from.
    let world_config = WorldConfig {
        seed: args.seed,
        incidents: args.incidents,
        services: None,
        timeline_end: jiff::Timestamp::now().as_second(),
    };
    let world = Arc::new(World::generate(world_config));
    let ttl = jiff::SignedDuration::from_hours(24 * 3650).as_secs();
    let retention = Retention {
        metrics: ttl,
        logs: ttl,
        events: ttl,
        traces: ttl,
    };
    let telemetry_url = harness::start_telemetry(world, retention, &shutdown).await?;
    let config = Config {
        sources: harness::simulator_sources(&telemetry_url, &retention),
        ..Config::default()
    };

    // The server and its pipeline, as `serve` runs them.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    let mut metrics = Metrics::default();
    let pipeline_metrics = Arc::new(PipelineMetrics::default());
    pipeline_metrics.register(metrics.registry_mut());
    let mut pipeline = evalmint_pipeline::worker::start(
        store.clone() as Arc<dyn FullStore>,
        Arc::new(config),
        Arc::new(SystemClock),
        pipeline_metrics,
        CaptureOrder::EarliestDeadline,
        shutdown.clone(),
    );
    let config = ServerConfig {
        listen: args.listen,
        ..ServerConfig::default()
    };
    let state = AppState::with_metrics(store.clone(), store.clone(), config, metrics);
    let sessions = state.sessions.clone();
    let server = tokio::spawn(evalmint_server::serve(
        listener,
        state,
        Arc::new(SystemClock),
        shutdown.clone(),
    ));

    // Agent v1 investigates; simulated users give feedback. The truth file stays outside evalmint.
    let truth = tempfile::tempdir()?;
    let summary = evalmint_sim::run::run(evalmint_sim::run::RunOptions {
        server: url.clone(),
        api_key: Some(sign_in.clone()),
        world: world_config,
        agent: AgentVersion::V1,
        telemetry: Some(telemetry_url),
        truth: truth.path().join("truth.jsonl"),
        rates: evalmint_sim::users::FeedbackRates::default(),
        concurrency: 8,
        show_progress: true,
    })
    .await
    .context("running the simulator")?;

    let labelled = wait_for_labels(store.as_ref(), &tenant, summary.feedback_sent).await?;
    let labelled_in = started.elapsed();
    let evaluated = release_and_evaluate(&store, &tenant, sessions, &url).await?;
    let ready_in = started.elapsed();
    print_tour(
        store.as_ref(),
        &tenant,
        &url,
        &sign_in,
        &summary,
        labelled,
        &evaluated,
        (labelled_in, ready_in),
    )
    .await?;

    if !args.no_wait {
        tokio::signal::ctrl_c().await.ok();
    }
    shutdown.cancel();
    let _ = server.await;
    while pipeline.join_next().await.is_some() {}
    Ok(())
}

/// Shows the pipeline working through the feedback; returns how much of it was routed.
async fn wait_for_labels(
    store: &SqliteStore,
    tenant: &TenantId,
    feedback: u64,
) -> anyhow::Result<u64> {
    let progress = ProgressBar::new(feedback);
    progress.set_style(
        ProgressStyle::with_template(
            "labelling [{bar:40}] {pos}/{len} feedback routed ({elapsed})",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    let waited = Instant::now();
    let stats = loop {
        let stats = store.pipeline_stats(tenant).await?;
        progress.set_position(stats.feedback_candidate + stats.feedback_not_candidate);
        if stats.feedback_pending == 0 || waited.elapsed() > Duration::from_secs(600) {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    progress.finish();
    Ok(stats.feedback_candidate + stats.feedback_not_candidate)
}

/// The release of the admitted labels, agent v1's run on it, and agent v2's compared with v1's.
struct Evaluated {
    release: evalmint_model::release::Release,
    v1: Option<evalmint_eval::report::Summary>,
    v2: Option<evalmint_eval::report::Summary>,
}

/// Releases the admitted labels, then has agent v1 and agent v2 replay them once each, through
/// the sessions of the server the demo runs; the runs are stored like any `eval run`, and v2 is
/// summarised against v1 as its baseline (its regressions per segment).
async fn release_and_evaluate(
    store: &Arc<SqliteStore>,
    tenant: &TenantId,
    sessions: Arc<evalmint_eval::Sessions>,
    url: &str,
) -> anyhow::Result<Evaluated> {
    let (release, _) = store
        .create_release(tenant, "demo: the admitted labels", Vec::new())
        .await
        .context("releasing the admitted labels")?;
    if release.labels == 0 {
        return Ok(Evaluated {
            release,
            v1: None,
            v2: None,
        });
    }
    let mut runs = Vec::new();
    for agent in ["sim:v1", "sim:v2"] {
        let (labels, source) = crate::eval::labels_for(&**store, tenant, Some(&release.id)).await?;
        let progress = ProgressBar::new(labels.len() as u64);
        progress.set_style(
            ProgressStyle::with_template(&format!(
                "eval {agent} [{{bar:40}}] {{pos}}/{{len}} labels replayed ({{elapsed}})"
            ))
            .expect("a valid template")
            .progress_chars("=> "),
        );
        let bar = progress.clone();
        let setup = crate::eval::Replay {
            agent: agent.to_owned(),
            k: 1,
            concurrency: 8,
            timeout: Duration::from_secs(30),
            call_limit: evalmint_eval::session::DEFAULT_CALL_LIMIT,
            onset_tolerance: jiff::SignedDuration::from_mins(15),
            judge: None,
            tool_timings: Default::default(),
            // v2 remembers v1 as its baseline, so its run page compares them by default.
            baseline: runs
                .last()
                .map(|run: &evalmint_model::EvalRun| run.id.clone()),
        };
        let run = crate::eval::replay(
            store,
            tenant,
            &setup,
            labels,
            source,
            sessions.clone(),
            url.to_owned(),
            Arc::new(move |_| bar.inc(1)),
        )
        .await
        .with_context(|| format!("evaluating agent {agent} on the release"))?;
        progress.finish();
        store
            .store_eval_run(tenant, run.clone())
            .await
            .context("storing the run")?;
        runs.push(run);
    }
    let v1 = evalmint_eval::report::summarise(&runs[0], None);
    let v2 = evalmint_eval::report::summarise(&runs[1], Some(&runs[0]));
    Ok(Evaluated {
        release,
        v1: Some(v1),
        v2: Some(v2),
    })
}

#[allow(clippy::too_many_arguments)]
async fn print_tour(
    store: &SqliteStore,
    tenant: &TenantId,
    url: &str,
    sign_in: &str,
    summary: &evalmint_sim::run::RunSummary,
    labelled: u64,
    evaluated: &Evaluated,
    (labelled_in, ready_in): (Duration, Duration),
) -> anyhow::Result<()> {
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
    let count =
        |route: evalmint_model::Route| candidates.iter().filter(|c| c.route == route).count();
    let sample = candidates.first().map(|c| c.investigation_id.to_string());
    let widget_key = store
        .create_publishable_key(tenant, "demo widget", vec![url.to_owned()])
        .await?
        .secret;
    println!();
    println!(
        "evalmint is ready at {url} ({:.1} s from the command: labels after {:.1} s, then the \
         release and the eval)",
        ready_in.as_secs_f64(),
        labelled_in.as_secs_f64()
    );
    println!();
    println!("  sign-in key (admin): {sign_in}");
    println!();
    println!(
        "  {} incidents investigated by agent v1, {} feedback, {labelled} routed: {} candidate labels \
         ({} admitted, {} to review, {} insufficient)",
        summary.incidents,
        summary.feedback_sent,
        candidates.len(),
        count(evalmint_model::Route::Admit),
        count(evalmint_model::Route::Review),
        count(evalmint_model::Route::Insufficient),
    );
    println!();
    println!("A short tour:");
    println!("  0. The review UI (sign in with the admin key): {url}/");
    println!("  1. The API reference:          {url}/docs");
    println!(
        "  2. The admitted labels:        curl -s -H 'Authorization: Bearer {sign_in}' {url}/api/v1/labels"
    );
    println!(
        "  3. The review queue:           curl -s -H 'Authorization: Bearer {sign_in}' {url}/api/v1/review"
    );
    if let Some(trace) = sample {
        println!(
            "  4. One investigation:          curl -s -H 'Authorization: Bearer {sign_in}' {url}/api/v1/investigations/{trace}"
        );
        println!(
            "  5. The feedback widget on it:  {url}/widget/demo?investigation={trace}&key={widget_key}"
        );
    }
    let Evaluated { release, v1, v2 } = evaluated;
    println!(
        "  6. The release of the admitted labels ({} labels), its coverage: {url}/releases/{}",
        release.labels, release.id
    );
    if let (Some(v1), Some(v2)) = (v1, v2) {
        let regressions: Vec<&str> = v2.regressions().map(|row| row.segment.as_str()).collect();
        println!(
            "  7. Agent v2 against agent v1 on that release (pass rate {:.1}% → {:.1}%; \
             regressions: {}): {url}/runs/{}?baseline={}",
            v1.overall().rate.rate * 100.0,
            v2.overall().rate.rate * 100.0,
            if regressions.is_empty() {
                "none".to_owned()
            } else {
                regressions.join(", ")
            },
            v2.run,
            v1.run
        );
    }
    println!("  8. Send scores with the Langfuse, Phoenix or LangSmith SDK: see docs/compat.md");
    println!();
    println!("Serving until Ctrl-C.");
    Ok(())
}
