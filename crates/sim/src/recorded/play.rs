//! Incidents of a recorded world: for each injected fault, an alert on the entry service, the
//! reference agent's investigation through the telemetry API, and a simulated user's feedback from
//! the fault list's truth, delivered to evalmint over HTTP exactly as `sim run` does.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use tokio::sync::Semaphore;

use super::{RecordedFault, RecordedWorld};
use crate::agent::{AgentVersion, Investigator, ReferenceAgent, Trigger};
use crate::rng::hash_words;
use crate::run::{RunSummary, deliver, merge};
use crate::scenario::{InvestigationTruth, Outcome, SPLIT_TRACE_PROBABILITY, investigation_truth};
use crate::telemetry::rfc3339_ms;
use crate::tools::{HttpTools, Tools};
use crate::topology::ComponentKind;
use crate::users::{FaultView, FeedbackRates, plan_feedback_for};

/// How long after the fault the alert fires: one evaluation interval of a typical alert rule.
pub const ALERT_DELAY_SECS: i64 = 60;
/// The minutes before a fault that are its baseline.
const BASELINE_SECS: i64 = 15 * 60;
/// The minutes after a fault the alert rule looks at.
const AFTER_SECS: i64 = 3 * 60;

/// Which of the entry service's objectives a fault breaches: the success rate when its error ratio
/// rose beyond the baseline's spread (median + 3 MAD, and by at least a point), else latency.
fn breached_monitor(world: &RecordedWorld, entry: &str, at: i64) -> &'static str {
    let Some((median, mad)) = world.baseline("request_error_ratio", entry, at - BASELINE_SECS, at)
    else {
        return "p99-latency";
    };
    match world.baseline("request_error_ratio", entry, at, at + AFTER_SECS) {
        Some((after, _)) if after > median + (3.0 * mad).max(0.01) => "error-rate",
        _ => "p99-latency",
    }
}

/// The alert an on-call engineer would get for `fault`: on the entry service, shortly after it.
pub fn trigger_for(world: &RecordedWorld, fault: &RecordedFault) -> Option<Trigger> {
    let entry = world.entry.clone()?;
    let monitor = breached_monitor(world, &entry, fault.at);
    let description = match monitor {
        "error-rate" => format!("success rate of {entry} below objective"),
        _ => format!("p99 latency of {entry} above objective"),
    };
    let name = format!("{entry}-{monitor}");
    Some(Trigger {
        kind: "alert",
        text: format!("[FIRING] {name}: {description}"),
        monitor: name,
        service: entry,
        fired_at_ms: (fault.at + ALERT_DELAY_SECS) * 1000,
    })
}

pub fn incident_id(index: usize) -> String {
    format!("fault-{index:03}")
}

/// What the user knows about `fault`.
pub fn fault_view<'a>(
    world: &'a RecordedWorld,
    seed: u64,
    index: usize,
    incident_id: &'a str,
    root: &'a str,
    fault: &'a RecordedFault,
    alerted: &'a str,
) -> FaultView<'a> {
    let service = world.service(root);
    let mut vague_hints = Vec::new();
    if fault.category() == "resource.cpu" {
        vague_hints.push("cpu again".to_string());
    }
    FaultView {
        seed,
        index: index as u64,
        incident_id,
        root,
        root_kind: ComponentKind::Service,
        root_pods: service
            .map(|s| {
                s.pods
                    .iter()
                    .map(|p| (p.name.clone(), p.host.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        kind: None,
        mechanism: fault.mechanism(),
        onset: fault.at,
        alerted,
        alerted_calls: world
            .service(alerted)
            .map(|s| s.calls.iter().cloned().collect())
            .unwrap_or_default(),
        background: Vec::new(),
        frontends: world
            .services
            .iter()
            .filter(|s| s.kind == "frontend")
            .map(|s| s.name.clone())
            .collect(),
        vague_hints,
    }
}

/// One fault played by one agent.
pub async fn play<T: Tools>(
    world: &RecordedWorld,
    seed: u64,
    index: usize,
    agent: &ReferenceAgent,
    tools: &T,
    rates: &FeedbackRates,
) -> Option<(Outcome, RecordedTruth)> {
    let fault = world.faults.get(index)?;
    let trigger = trigger_for(world, fault)?;
    let run_key = hash_words(&[seed, index as u64, 0x1a7e]);
    let investigation = agent.investigate(tools, &trigger, run_key).await;
    let split_key = hash_words(&[seed, index as u64, agent.version() as u64, 0x5b17]);
    let requests = crate::otlp::export_requests(&investigation, split_key, SPLIT_TRACE_PROBABILITY);
    let id = incident_id(index);
    let root = world.workload(&fault.pod);
    let view = fault_view(world, seed, index, &id, &root, fault, &trigger.service);
    let feedback = plan_feedback_for(&view, &investigation, rates);
    let outcome = Outcome {
        investigation,
        requests,
        feedback,
    };
    let truth = RecordedTruth {
        incident_id: id.clone(),
        root_component: root.clone(),
        root_pod: fault.pod.clone(),
        inject_type: fault.inject_type.clone(),
        category: fault.category(),
        onset: rfc3339_ms(fault.at * 1000),
        alerted_component: trigger.service.clone(),
        monitor: trigger.monitor.clone(),
        fired_at: rfc3339_ms(trigger.fired_at_ms),
        investigation: investigation_truth(&outcome, &root),
    };
    Some((outcome, truth))
}

/// One line of a recorded run's truth file.
#[derive(Debug, Serialize)]
pub struct RecordedTruth {
    pub incident_id: String,
    pub root_component: String,
    pub root_pod: String,
    pub inject_type: String,
    pub category: &'static str,
    pub onset: String,
    pub alerted_component: String,
    pub monitor: String,
    pub fired_at: String,
    pub investigation: InvestigationTruth,
}

#[derive(Debug, Clone)]
pub struct RecordedRunOptions {
    pub server: String,
    pub api_key: Option<String>,
    /// The telemetry API serving the recorded world.
    pub telemetry: String,
    pub agents: Vec<AgentVersion>,
    pub seed: u64,
    pub truth: PathBuf,
    pub rates: FeedbackRates,
    pub concurrency: usize,
    /// Play only these faults (indexes); all when `None`.
    pub faults: Option<Vec<usize>>,
}

/// Plays every fault of `world` with every agent against evalmint; writes the truth file.
pub async fn run(
    world: Arc<RecordedWorld>,
    options: RecordedRunOptions,
) -> anyhow::Result<RunSummary> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    let tools = Arc::new(HttpTools::new(&options.telemetry, client.clone()));
    let indexes: Vec<usize> = options
        .faults
        .clone()
        .unwrap_or_else(|| (0..world.faults.len()).collect());
    let semaphore = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let options = Arc::new(options);
    let mut tasks = tokio::task::JoinSet::new();
    for &version in &options.agents {
        for &index in &indexes {
            let permit = semaphore
                .clone()
                .acquire_owned()
                .await
                .context("semaphore closed")?;
            let (world, tools, client, options) = (
                world.clone(),
                tools.clone(),
                client.clone(),
                options.clone(),
            );
            tasks.spawn(async move {
                let agent = ReferenceAgent { version };
                let played = play(
                    &world,
                    options.seed,
                    index,
                    &agent,
                    tools.as_ref(),
                    &options.rates,
                )
                .await;
                let report = match played {
                    Some((outcome, truth)) => {
                        let mut summary = deliver(
                            &outcome,
                            &client,
                            &options.server,
                            options.api_key.as_deref(),
                            &truth.incident_id,
                        )
                        .await;
                        summary.wrong_component = u64::from(!truth.investigation.correct_component);
                        Some((truth, summary))
                    }
                    None => None,
                };
                drop(permit);
                (version, index, report)
            });
        }
    }
    let mut reports = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        reports.push(joined.context("a fault task panicked")?);
    }
    reports.sort_by_key(|(version, index, _)| (*version, *index));
    let mut total = RunSummary::default();
    let mut truth = std::io::BufWriter::new(
        std::fs::File::create(&options.truth)
            .with_context(|| format!("creating {}", options.truth.display()))?,
    );
    for (_, _, report) in reports {
        let Some((record, summary)) = report else {
            continue;
        };
        total.incidents += 1;
        serde_json::to_writer(&mut truth, &record)?;
        truth.write_all(b"\n")?;
        merge(&mut total, summary);
    }
    truth.flush()?;
    Ok(total)
}
