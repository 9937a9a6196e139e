//! `evalmint sim run`: plays incidents against a running evalmint server — agent traces over
//! OTLP/HTTP, user feedback over the native API — with telemetry served over HTTP.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use prost::Message;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::agent::{AgentVersion, ReferenceAgent};
use crate::scenario::{TruthRecord, play, truth_record};
use crate::telemetry::{Retention, SimClock, TelemetryService, app};
use crate::tools::HttpTools;
use crate::users::FeedbackRates;
use crate::world::{World, WorldConfig};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub server: String,
    pub api_key: Option<String>,
    pub world: WorldConfig,
    pub agent: AgentVersion,
    /// A running `evalmint sim telemetry`; `None` starts one in process on a loopback port.
    pub telemetry: Option<String>,
    pub truth: PathBuf,
    pub rates: FeedbackRates,
    pub concurrency: usize,
    pub show_progress: bool,
}

/// What a run did, for the summary table.
#[derive(Debug, Default, Clone)]
pub struct RunSummary {
    pub incidents: u64,
    pub traces_sent: u64,
    pub export_requests: u64,
    pub spans: u64,
    pub wrong_component: u64,
    pub feedback_sent: u64,
    pub feedback_replayed: u64,
    pub feedback_before_trace: u64,
    pub feedback_by_verdict: BTreeMap<String, u64>,
    pub feedback_by_style: BTreeMap<String, u64>,
    pub throttled_retries: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub tool_errors: u64,
    pub error_samples: Vec<String>,
}

const MAX_ATTEMPTS: u32 = 6;
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug)]
enum Delivery {
    Created,
    Replayed,
    Rejected(String),
}

#[derive(Debug, Default)]
struct DeliveryStats {
    throttled: u64,
    server_errors: u64,
}

/// POSTs with bounded retries: 429 waits for `Retry-After`, 5xx and transport errors back off.
async fn post(
    client: &reqwest::Client,
    url: &str,
    api_key: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
    stats: &mut DeliveryStats,
) -> Delivery {
    let mut backoff = Duration::from_millis(200);
    let mut last_problem = String::new();
    for _ in 0..MAX_ATTEMPTS {
        let mut request = client
            .post(url)
            .header("content-type", content_type)
            .body(body.clone());
        if let Some(key) = api_key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                if status.as_u16() == 429 {
                    stats.throttled += 1;
                    let wait = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map_or(Duration::from_secs(1), Duration::from_secs)
                        .min(MAX_RETRY_AFTER);
                    tokio::time::sleep(wait).await;
                    last_problem = "429 Too Many Requests".to_string();
                    continue;
                }
                if status.is_server_error() {
                    stats.server_errors += 1;
                    last_problem =
                        format!("{status}: {}", response.text().await.unwrap_or_default());
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    continue;
                }
                if status.as_u16() == 200 {
                    return Delivery::Replayed;
                }
                if status.is_success() {
                    return Delivery::Created;
                }
                let text = response.text().await.unwrap_or_default();
                return Delivery::Rejected(format!(
                    "POST {url} answered {status}: {}",
                    text.chars().take(300).collect::<String>()
                ));
            }
            Err(e) => {
                last_problem = e.to_string();
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
    }
    Delivery::Rejected(format!(
        "POST {url} gave up after {MAX_ATTEMPTS} attempts: {last_problem}"
    ))
}

struct IncidentReport {
    truth: TruthRecord,
    summary: RunSummary,
}

/// Runs the whole loop; returns the summary (also written as the truth file).
pub async fn run(options: RunOptions) -> anyhow::Result<RunSummary> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    // Fail fast when nothing listens at the server URL, rather than retrying every request.
    let server = options.server.trim_end_matches('/');
    if let Err(e) = client.get(format!("{server}/healthz")).send().await {
        if e.is_connect() {
            anyhow::bail!("cannot reach the evalmint server at {server}: {e}");
        }
        tracing::warn!(error = %e, "evalmint health check failed; trying anyway");
    }
    let (world, telemetry_url, server_task) = match &options.telemetry {
        Some(url) => {
            let url = url.trim_end_matches('/').to_string();
            let parameters: Value = client
                .get(format!("{url}/api/v1/sim/world"))
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .with_context(|| format!("asking {url} for its world parameters"))?
                .json()
                .await
                .context("reading the telemetry world parameters")?;
            let seed = parameters["seed"]
                .as_u64()
                .context("world parameters without a seed")?;
            let incidents = parameters["incidents"]
                .as_u64()
                .context("world parameters without incidents")?;
            if seed != options.world.seed {
                anyhow::bail!(
                    "the telemetry at {url} simulates seed {seed}, not {}",
                    options.world.seed
                );
            }
            if incidents < options.world.incidents {
                anyhow::bail!(
                    "the telemetry at {url} has {incidents} incidents, fewer than the {} asked for",
                    options.world.incidents
                );
            }
            let config = WorldConfig {
                seed,
                incidents,
                services: parameters["services"].as_u64().map(|s| s as usize),
                timeline_end: parameters["timeline_end"]
                    .as_i64()
                    .context("world parameters without timeline_end")?,
            };
            let world = tokio::task::spawn_blocking(move || World::generate(config)).await?;
            (Arc::new(world), url, None)
        }
        None => {
            let config = options.world;
            let world =
                Arc::new(tokio::task::spawn_blocking(move || World::generate(config)).await?);
            let service = Arc::new(TelemetryService::new(
                world.clone(),
                Arc::new(SimClock::running(world.end * 1000, 1.0)),
                Retention::default(),
            ));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .context("binding the in-process telemetry API")?;
            let address = listener.local_addr()?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(async move {
                axum::serve(listener, app(service))
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
            });
            tracing::info!(%address, "in-process telemetry API listening");
            (world, format!("http://{address}"), Some((stop, task)))
        }
    };
    let count = options.world.incidents.min(world.incidents.len() as u64) as usize;
    let progress = if options.show_progress {
        indicatif::ProgressBar::new(count as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} incidents {elapsed_precise} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let tools = Arc::new(HttpTools::new(&telemetry_url, client.clone()));
    let agent = ReferenceAgent {
        version: options.agent,
    };
    let semaphore = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let options = Arc::new(options);
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..count {
        let permit = semaphore
            .clone()
            .acquire_owned()
            .await
            .context("semaphore closed")?;
        let (world, tools, client, options, progress) = (
            world.clone(),
            tools.clone(),
            client.clone(),
            options.clone(),
            progress.clone(),
        );
        tasks.spawn(async move {
            let report = play_one(&world, index, &agent, &tools, &client, &options).await;
            progress.inc(1);
            drop(permit);
            (index, report)
        });
    }
    let mut reports: Vec<(usize, IncidentReport)> = Vec::with_capacity(count);
    while let Some(joined) = tasks.join_next().await {
        reports.push(joined.context("an incident task panicked")?);
    }
    progress.finish_and_clear();
    if let Some((stop, task)) = server_task {
        let _ = stop.send(());
        task.await
            .context("the in-process telemetry API panicked")?
            .context("serving the in-process telemetry API")?;
    }
    reports.sort_by_key(|(index, _)| *index);
    let mut total = RunSummary {
        incidents: count as u64,
        ..Default::default()
    };
    let mut truth = std::io::BufWriter::new(
        std::fs::File::create(&options.truth)
            .with_context(|| format!("creating {}", options.truth.display()))?,
    );
    for (_, report) in reports {
        serde_json::to_writer(&mut truth, &report.truth)?;
        truth.write_all(b"\n")?;
        merge(&mut total, report.summary);
    }
    truth.flush()?;
    Ok(total)
}

pub(crate) fn merge(total: &mut RunSummary, part: RunSummary) {
    total.traces_sent += part.traces_sent;
    total.export_requests += part.export_requests;
    total.spans += part.spans;
    total.wrong_component += part.wrong_component;
    total.feedback_sent += part.feedback_sent;
    total.feedback_replayed += part.feedback_replayed;
    total.feedback_before_trace += part.feedback_before_trace;
    for (k, v) in part.feedback_by_verdict {
        *total.feedback_by_verdict.entry(k).or_default() += v;
    }
    for (k, v) in part.feedback_by_style {
        *total.feedback_by_style.entry(k).or_default() += v;
    }
    total.throttled_retries += part.throttled_retries;
    total.client_errors += part.client_errors;
    total.server_errors += part.server_errors;
    total.tool_errors += part.tool_errors;
    for sample in part.error_samples {
        if total.error_samples.len() < 10 {
            total.error_samples.push(sample);
        }
    }
}

async fn send_feedback(
    planned: Option<&crate::users::PlannedFeedback>,
    client: &reqwest::Client,
    url: &str,
    api_key: Option<&str>,
    summary: &mut RunSummary,
    stats: &mut DeliveryStats,
) -> Option<Delivery> {
    let planned = planned?;
    let body = serde_json::to_vec(&planned.body).expect("feedback serialises");
    let delivery = post(client, url, api_key, "application/json", body, stats).await;
    *summary
        .feedback_by_verdict
        .entry(planned.body.verdict.unwrap_or("rating_only").to_string())
        .or_default() += 1;
    *summary
        .feedback_by_style
        .entry(planned.style.as_str().to_string())
        .or_default() += 1;
    summary.feedback_before_trace += u64::from(planned.before_trace);
    Some(delivery)
}

async fn play_one(
    world: &World,
    index: usize,
    agent: &ReferenceAgent,
    tools: &HttpTools,
    client: &reqwest::Client,
    options: &RunOptions,
) -> IncidentReport {
    let incident = &world.incidents[index];
    let outcome = play(world, incident, agent, tools, &options.rates).await;
    let mut summary = deliver(
        &outcome,
        client,
        &options.server,
        options.api_key.as_deref(),
        &incident.id,
    )
    .await;
    let truth = truth_record(world, incident, &outcome);
    summary.wrong_component = u64::from(!truth.investigation.correct_component);
    IncidentReport { truth, summary }
}

/// Sends one incident's trace and feedback to evalmint in the planned order, and counts.
pub(crate) async fn deliver(
    outcome: &crate::scenario::Outcome,
    client: &reqwest::Client,
    server: &str,
    api_key: Option<&str>,
    incident_id: &str,
) -> RunSummary {
    let mut summary = RunSummary::default();
    let mut stats = DeliveryStats::default();
    let server = server.trim_end_matches('/');
    let traces_url = format!("{server}/v1/traces");
    let feedback_url = format!("{server}/api/v1/feedback");
    summary.tool_errors = outcome
        .investigation
        .steps
        .iter()
        .filter(|s| matches!(s, crate::agent::Step::Tool { error: Some(_), .. }))
        .count() as u64;
    let reject = |summary: &mut RunSummary, problem: String| {
        tracing::warn!(problem = %problem, incident = %incident_id, "request rejected");
        summary.client_errors += 1;
        if summary.error_samples.len() < 3 {
            summary.error_samples.push(problem);
        }
    };
    let feedback_first = outcome.feedback.as_ref().is_some_and(|f| f.before_trace);
    let mut deliveries = Vec::new();
    if feedback_first {
        deliveries.push((
            "feedback",
            send_feedback(
                outcome.feedback.as_ref(),
                client,
                &feedback_url,
                api_key,
                &mut summary,
                &mut stats,
            )
            .await,
        ));
    }
    for request in &outcome.requests {
        let body = request.encode_to_vec();
        let delivery = post(
            client,
            &traces_url,
            api_key,
            "application/x-protobuf",
            body,
            &mut stats,
        )
        .await;
        summary.export_requests += 1;
        deliveries.push(("trace", Some(delivery)));
    }
    summary.traces_sent = 1;
    summary.spans = 1 + outcome.investigation.steps.len() as u64;
    if !feedback_first {
        deliveries.push((
            "feedback",
            send_feedback(
                outcome.feedback.as_ref(),
                client,
                &feedback_url,
                api_key,
                &mut summary,
                &mut stats,
            )
            .await,
        ));
    }
    for (what, delivery) in deliveries {
        match delivery {
            None => {}
            Some(Delivery::Created) => summary.feedback_sent += u64::from(what == "feedback"),
            Some(Delivery::Replayed) => {
                summary.feedback_sent += u64::from(what == "feedback");
                summary.feedback_replayed += u64::from(what == "feedback");
            }
            Some(Delivery::Rejected(problem)) => reject(&mut summary, problem),
        }
    }
    summary.throttled_retries = stats.throttled;
    summary.server_errors = stats.server_errors;
    summary
}
