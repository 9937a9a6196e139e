//! `evalmint sim generate`: incidents, agent traces, feedback and truth written to disk without
//! any server, deterministically per seed.

use std::fs::File;
use std::future::Future;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use prost::Message;

use crate::agent::{AgentVersion, ReferenceAgent};
use crate::scenario::{play, truth_record};
use crate::telemetry::{Retention, SimClock, TelemetryService};
use crate::tools::InProcessTools;
use crate::users::FeedbackRates;
use crate::world::{World, WorldConfig};

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub world: WorldConfig,
    pub out: PathBuf,
    pub truth: Option<PathBuf>,
    pub agent: AgentVersion,
    pub rates: FeedbackRates,
    /// Worker threads (1 or more); the output does not depend on it.
    pub threads: usize,
}

/// Counts of what was generated.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GenerateSummary {
    pub incidents: u64,
    pub services: usize,
    pub spans: u64,
    pub export_requests: u64,
    pub feedback: u64,
    pub wrong_component: u64,
    pub feedback_by_style: std::collections::BTreeMap<&'static str, u64>,
    pub world_time: Duration,
    pub total_time: Duration,
}

/// Polls a future that never waits (the in-process tools answer synchronously).
fn run_ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("in-process tools never wait"),
    }
}

struct IncidentBytes {
    traces: Vec<u8>,
    investigation: Vec<u8>,
    feedback: Vec<u8>,
    truth: Vec<u8>,
    spans: u64,
    requests: u64,
    wrong: bool,
    style: Option<&'static str>,
}

fn render(
    world: &World,
    index: usize,
    tools: &InProcessTools,
    clock: &SimClock,
    agent: &ReferenceAgent,
    rates: &FeedbackRates,
) -> anyhow::Result<IncidentBytes> {
    let incident = &world.incidents[index];
    // The investigation happens right after the alert: nothing it needs has expired yet.
    clock.set(incident.fired_at * 1000 + 15 * 60_000);
    let outcome = run_ready(play(world, incident, agent, tools, rates));
    let mut traces = Vec::new();
    for request in &outcome.requests {
        request
            .encode_length_delimited(&mut traces)
            .context("encoding an export request")?;
    }
    let inv = &outcome.investigation;
    let mut investigation = serde_json::to_vec(&serde_json::json!({
        "investigation_id": hex::encode(inv.trace_id),
        "incident_id": incident.id,
        "agent_version": inv.version.as_str(),
        "trigger": inv.trigger,
        "conclusion": inv.conclusion,
        "spans": 1 + inv.steps.len(),
        "export_requests": outcome.requests.len(),
    }))?;
    investigation.push(b'\n');
    let mut feedback = Vec::new();
    if let Some(planned) = &outcome.feedback {
        serde_json::to_writer(&mut feedback, &planned.body)?;
        feedback.push(b'\n');
    }
    let record = truth_record(world, incident, &outcome);
    let mut truth = serde_json::to_vec(&record)?;
    truth.push(b'\n');
    Ok(IncidentBytes {
        traces,
        investigation,
        feedback,
        truth,
        spans: 1 + inv.steps.len() as u64,
        requests: outcome.requests.len() as u64,
        wrong: !record.investigation.correct_component,
        style: outcome.feedback.as_ref().map(|f| f.style.as_str()),
    })
}

fn create(path: &Path) -> anyhow::Result<BufWriter<File>> {
    Ok(BufWriter::new(
        File::create(path).with_context(|| format!("creating {}", path.display()))?,
    ))
}

/// Generates everything into `options.out`.
pub fn generate(options: &GenerateOptions) -> anyhow::Result<GenerateSummary> {
    let started = Instant::now();
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("creating {}", options.out.display()))?;
    let world = Arc::new(World::generate(options.world));
    let world_time = started.elapsed();
    let truth_path = options
        .truth
        .clone()
        .unwrap_or_else(|| options.out.join("sim-truth.jsonl"));
    let mut traces_file = create(&options.out.join("traces.otlp"))?;
    let mut investigations_file = create(&options.out.join("investigations.jsonl"))?;
    let mut feedback_file = create(&options.out.join("feedback.jsonl"))?;
    let mut truth_file = create(&truth_path)?;
    let topology_service = TelemetryService::new(
        world.clone(),
        Arc::new(SimClock::manual(world.end * 1000)),
        Retention::default(),
    );
    let mut topology_file = create(&options.out.join("topology.json"))?;
    serde_json::to_writer_pretty(&mut topology_file, &topology_service.services()["data"])?;
    topology_file.flush()?;

    let agent = ReferenceAgent {
        version: options.agent,
    };
    let threads = options.threads.max(1);
    let mut summary = GenerateSummary {
        incidents: world.incidents.len() as u64,
        services: world.config.services.unwrap_or(0),
        ..Default::default()
    };
    const BATCH: usize = 512;
    let mut next = 0usize;
    while next < world.incidents.len() {
        let batch_end = (next + BATCH).min(world.incidents.len());
        let indices: Vec<usize> = (next..batch_end).collect();
        let chunk_size = indices.len().div_ceil(threads);
        let results: Vec<anyhow::Result<Vec<IncidentBytes>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = indices
                .chunks(chunk_size)
                .map(|chunk| {
                    let world = world.clone();
                    let rates = options.rates;
                    scope.spawn(move || {
                        let clock = Arc::new(SimClock::manual(0));
                        let service = Arc::new(TelemetryService::new(
                            world.clone(),
                            clock.clone(),
                            Retention::default(),
                        ));
                        let tools = InProcessTools::new(service);
                        chunk
                            .iter()
                            .map(|&i| render(&world, i, &tools, &clock, &agent, &rates))
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a generation worker panicked"))
                .collect()
        });
        for chunk in results {
            for bytes in chunk? {
                traces_file.write_all(&bytes.traces)?;
                investigations_file.write_all(&bytes.investigation)?;
                feedback_file.write_all(&bytes.feedback)?;
                truth_file.write_all(&bytes.truth)?;
                summary.spans += bytes.spans;
                summary.export_requests += bytes.requests;
                summary.wrong_component += u64::from(bytes.wrong);
                if let Some(style) = bytes.style {
                    summary.feedback += 1;
                    *summary.feedback_by_style.entry(style).or_default() += 1;
                }
            }
        }
        next = batch_end;
    }
    for file in [
        &mut traces_file,
        &mut investigations_file,
        &mut feedback_file,
        &mut truth_file,
    ] {
        file.flush()?;
    }
    summary.world_time = world_time;
    summary.total_time = started.elapsed();
    Ok(summary)
}
