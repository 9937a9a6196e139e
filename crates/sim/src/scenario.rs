//! One incident end to end: the trigger the agent sees, the investigation, its export requests,
//! the user's feedback, and the truth record that stays aside.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde::Serialize;

use crate::agent::{Investigation, Investigator, Trigger};
use crate::faults::{Category, FaultKind, Incident};
use crate::rng::hash_words;
use crate::telemetry::rfc3339_ms;
use crate::tools::Tools;
use crate::users::{FeedbackRates, PlannedFeedback, plan_feedback};
use crate::world::World;

/// The probability that an agent's trace is split into two export requests.
pub const SPLIT_TRACE_PROBABILITY: f64 = 0.15;

/// The alert that starts an investigation; no more than an on-call engineer would see.
pub fn trigger_for(world: &World, incident: &Incident) -> Trigger {
    let monitor = &world.topology.monitors[incident.monitor];
    let service = world.topology.components[incident.alerted].name.clone();
    Trigger {
        kind: "alert",
        monitor: monitor.name.clone(),
        text: format!("[FIRING] {}: {}", monitor.name, monitor.description),
        service,
        fired_at_ms: incident.fired_at * 1000,
    }
}

/// Everything one incident produced.
#[derive(Debug)]
pub struct Outcome {
    pub investigation: Investigation,
    pub requests: Vec<ExportTraceServiceRequest>,
    pub feedback: Option<PlannedFeedback>,
}

/// The run key that makes an investigation of `incident` deterministic under `seed`.
pub fn run_key(seed: u64, incident: &Incident) -> u64 {
    hash_words(&[seed, incident.index, 0x1a7e])
}

pub async fn play<I: Investigator, T: Tools>(
    world: &World,
    incident: &Incident,
    agent: &I,
    tools: &T,
    rates: &FeedbackRates,
) -> Outcome {
    let trigger = trigger_for(world, incident);
    let investigation = agent
        .investigate(tools, &trigger, run_key(world.seed, incident))
        .await;
    let split_key = hash_words(&[world.seed, incident.index, agent.version() as u64, 0x5b17]);
    let requests = crate::otlp::export_requests(&investigation, split_key, SPLIT_TRACE_PROBABILITY);
    let feedback = plan_feedback(world, incident, &investigation, rates);
    Outcome {
        investigation,
        requests,
        feedback,
    }
}

/// One line of the truth file.
#[derive(Debug, Serialize)]
pub struct TruthRecord {
    pub incident_id: String,
    pub seed: u64,
    pub root_component: String,
    pub root_kind: &'static str,
    pub fault_kind: FaultKind,
    pub category: Category,
    pub onset: String,
    pub end: String,
    /// From the root cause up to the alerted component.
    pub causal_chain: Vec<String>,
    pub alerted_component: String,
    pub monitor: String,
    pub fired_at: String,
    pub background: Vec<String>,
    pub investigation: InvestigationTruth,
}

#[derive(Debug, Serialize)]
pub struct InvestigationTruth {
    pub trace_id: String,
    pub agent_version: &'static str,
    pub blamed: String,
    pub correct_component: bool,
    pub took_loudest_symptom: bool,
    pub conclusion: String,
    pub span_count: usize,
    pub export_requests: usize,
    pub feedback: Option<FeedbackTruth>,
}

#[derive(Debug, Serialize)]
pub struct FeedbackTruth {
    pub style: &'static str,
    pub verdict: Option<&'static str>,
    pub rating: Option<u8>,
    pub correction: Option<String>,
    pub before_trace: bool,
}

pub fn truth_record(world: &World, incident: &Incident, outcome: &Outcome) -> TruthRecord {
    let components = &world.topology.components;
    let root = &components[incident.root];
    TruthRecord {
        incident_id: incident.id.clone(),
        seed: world.seed,
        root_component: root.name.clone(),
        root_kind: root.kind.as_str(),
        fault_kind: incident.kind,
        category: incident.kind.category(),
        onset: rfc3339_ms(incident.onset * 1000),
        end: rfc3339_ms(incident.end * 1000),
        causal_chain: incident
            .chain
            .iter()
            .map(|&c| components[c].name.clone())
            .collect(),
        alerted_component: components[incident.alerted].name.clone(),
        monitor: world.topology.monitors[incident.monitor].name.clone(),
        fired_at: rfc3339_ms(incident.fired_at * 1000),
        background: incident
            .background
            .iter()
            .map(|b| b.description.clone())
            .collect(),
        investigation: investigation_truth(outcome, &root.name),
    }
}

/// The truth about one investigation of a fault rooted at `root`.
pub fn investigation_truth(outcome: &Outcome, root: &str) -> InvestigationTruth {
    let inv = &outcome.investigation;
    InvestigationTruth {
        trace_id: hex::encode(inv.trace_id),
        agent_version: inv.version.as_str(),
        blamed: inv.blamed.clone(),
        correct_component: inv.blamed == root,
        took_loudest_symptom: inv.took_loudest_symptom,
        conclusion: inv.conclusion.clone(),
        span_count: 1 + inv.steps.len(),
        export_requests: outcome.requests.len(),
        feedback: outcome.feedback.as_ref().map(|f| FeedbackTruth {
            style: f.style.as_str(),
            verdict: f.body.verdict,
            rating: f.body.rating,
            correction: f.body.correction.clone(),
            before_trace: f.before_trace,
        }),
    }
}
