//! Simulated users: after each investigation, maybe some feedback — silence, a thumb, a rating,
//! and corrections in varied styles (precise, vague, partial, mistaken, wrong time).

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::agent::Investigation;
use crate::faults::{FaultKind, Incident};
use crate::rng::{SimRng, hash_words};
use crate::topology::ComponentKind;
use crate::world::World;

/// How users behave; every field is a probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeedbackRates {
    /// No feedback at all when the agent was right.
    pub silence_when_right: f64,
    /// No feedback at all when the agent was wrong.
    pub silence_when_wrong: f64,
    /// A rating without a verdict.
    pub rating_only: f64,
    /// A user who thinks a right answer is wrong (and says so, with a mistaken correction).
    pub mistaken_when_right: f64,
    /// Feedback sent before the agent's trace is flushed.
    pub before_trace: f64,
    /// Correction styles when the agent was wrong; weights, need not sum to 1.
    pub precise: f64,
    pub vague: f64,
    pub partial: f64,
    pub mistaken: f64,
    pub wrong_time: f64,
    /// Names the root cause the way people do: a pod, a host, another spelling, a typo.
    pub named: f64,
    pub no_text: f64,
}

impl Default for FeedbackRates {
    fn default() -> Self {
        FeedbackRates {
            silence_when_right: 0.6,
            silence_when_wrong: 0.25,
            rating_only: 0.1,
            mistaken_when_right: 0.03,
            before_trace: 0.05,
            precise: 0.35,
            vague: 0.2,
            partial: 0.15,
            mistaken: 0.08,
            wrong_time: 0.1,
            named: 0.15,
            no_text: 0.12,
        }
    }
}

/// What kind of correction the user wrote; the truth about it stays in the truth file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrectionStyle {
    /// A verdict and/or rating, no text.
    NoText,
    /// Agrees with the agent.
    Confirm,
    Precise,
    Vague,
    Partial,
    /// The user is wrong.
    Mistaken,
    /// Right component and mechanism, wrong onset.
    WrongTime,
    /// Right component, named by one of its pods, its host, another spelling or with a typo —
    /// names the agent's trace may never have contained.
    Named,
}

impl CorrectionStyle {
    pub fn as_str(self) -> &'static str {
        match self {
            CorrectionStyle::NoText => "no_text",
            CorrectionStyle::Confirm => "confirm",
            CorrectionStyle::Precise => "precise",
            CorrectionStyle::Vague => "vague",
            CorrectionStyle::Partial => "partial",
            CorrectionStyle::Mistaken => "mistaken",
            CorrectionStyle::WrongTime => "wrong_time",
            CorrectionStyle::Named => "named",
        }
    }

    /// What the style looks like from outside; mistaken and wrong-time corrections read as precise,
    /// so `sim.style` metadata never tells evalmint that a user is wrong.
    pub fn surface(self) -> &'static str {
        match self {
            CorrectionStyle::Mistaken | CorrectionStyle::WrongTime => "precise",
            other => other.as_str(),
        }
    }
}

/// The JSON body of `POST /api/v1/feedback`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FeedbackBody {
    pub investigation_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rating: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correction: Option<String>,
    pub tags: Vec<String>,
    pub user_id: String,
    pub idempotency_key: String,
    pub metadata: Map<String, Value>,
}

/// Feedback a user will give, with the facts about it that stay aside.
#[derive(Debug, Clone)]
pub struct PlannedFeedback {
    pub body: FeedbackBody,
    pub style: CorrectionStyle,
    pub before_trace: bool,
}

fn hhmm(unix_secs: i64) -> String {
    jiff::Timestamp::from_second(unix_secs)
        .map(|t| t.strftime("%H:%M").to_string())
        .unwrap_or_default()
}

fn pick_weighted(rng: &mut SimRng, options: &[(CorrectionStyle, f64)]) -> CorrectionStyle {
    let total: f64 = options.iter().map(|o| o.1).sum();
    let mut roll = rng.unit() * total;
    for (style, weight) in options {
        if roll < *weight {
            return *style;
        }
        roll -= weight;
    }
    options.last().map_or(CorrectionStyle::NoText, |o| o.0)
}

/// What a user knows about the fault behind an investigation: the truth, as they would put it.
#[derive(Debug, Clone)]
pub struct FaultView<'a> {
    pub seed: u64,
    pub index: u64,
    pub incident_id: &'a str,
    pub root: &'a str,
    pub root_kind: ComponentKind,
    /// The root's pods as (pod, host).
    pub root_pods: Vec<(String, String)>,
    /// The simulator's fault kind; `None` for a recorded fault.
    pub kind: Option<FaultKind>,
    pub mechanism: &'a str,
    /// Unix seconds.
    pub onset: i64,
    pub alerted: &'a str,
    pub alerted_calls: Vec<String>,
    /// Components with unrelated trouble at the time (red herrings for a mistaken user).
    pub background: Vec<String>,
    pub frontends: Vec<String>,
    /// Symptom words a vague user may use beyond the generic ones ("memory again").
    pub vague_hints: Vec<String>,
}

impl<'a> FaultView<'a> {
    /// The view of a simulated incident.
    pub fn of_incident(world: &'a World, incident: &'a Incident) -> FaultView<'a> {
        let components = &world.topology.components;
        let root = &components[incident.root];
        let alerted = &components[incident.alerted];
        let mut vague_hints = Vec::new();
        if matches!(incident.kind, FaultKind::PacketLoss | FaultKind::DnsFailure) {
            vague_hints.push("network issue".to_string());
        }
        if matches!(incident.kind, FaultKind::OomKill | FaultKind::MemoryLeak) {
            vague_hints.push("memory again".to_string());
        }
        FaultView {
            seed: world.seed,
            index: incident.index,
            incident_id: &incident.id,
            root: &root.name,
            root_kind: root.kind,
            root_pods: root
                .pods
                .iter()
                .map(|p| (p.name.clone(), p.host.clone()))
                .collect(),
            kind: Some(incident.kind),
            mechanism: incident.kind.mechanism(),
            onset: incident.onset,
            alerted: &alerted.name,
            alerted_calls: alerted
                .calls
                .iter()
                .map(|&c| components[c].name.clone())
                .collect(),
            background: incident
                .background
                .iter()
                .map(|b| components[b.component].name.clone())
                .collect(),
            frontends: components
                .iter()
                .filter(|c| c.kind == ComponentKind::Frontend)
                .map(|c| c.name.clone())
                .collect(),
            vague_hints,
        }
    }
}

/// Decides what (if anything) the user says about `investigation` of `incident`.
pub fn plan_feedback(
    world: &World,
    incident: &Incident,
    investigation: &Investigation,
    rates: &FeedbackRates,
) -> Option<PlannedFeedback> {
    plan_feedback_for(
        &FaultView::of_incident(world, incident),
        investigation,
        rates,
    )
}

/// Decides what (if anything) the user who knows `fault` says about `investigation`.
pub fn plan_feedback_for(
    fault: &FaultView<'_>,
    investigation: &Investigation,
    rates: &FeedbackRates,
) -> Option<PlannedFeedback> {
    let mut rng = SimRng::new(hash_words(&[
        fault.seed,
        fault.index,
        investigation.version as u64,
        0xfeed,
    ]));
    let root = fault.root;
    let right = investigation.blamed == *root;
    let user_mistaken = right && rng.chance(rates.mistaken_when_right);
    let silent = if right && !user_mistaken {
        rng.chance(rates.silence_when_right)
    } else {
        rng.chance(rates.silence_when_wrong)
    };
    if silent {
        return None;
    }
    let style = if user_mistaken {
        CorrectionStyle::Mistaken
    } else if right {
        if rng.chance(0.15) {
            CorrectionStyle::Confirm
        } else {
            CorrectionStyle::NoText
        }
    } else {
        pick_weighted(
            &mut rng,
            &[
                (CorrectionStyle::Precise, rates.precise),
                (CorrectionStyle::Vague, rates.vague),
                (CorrectionStyle::Partial, rates.partial),
                (CorrectionStyle::Mistaken, rates.mistaken),
                (CorrectionStyle::WrongTime, rates.wrong_time),
                (CorrectionStyle::Named, rates.named),
                (CorrectionStyle::NoText, rates.no_text),
            ],
        )
    };
    let user_thinks_right = right && !user_mistaken;
    let rating_only = rng.chance(rates.rating_only);
    let verdict = match (rating_only, user_thinks_right) {
        (true, _) => None,
        (false, true) => Some("up"),
        (false, false) => Some(if rng.chance(0.45) {
            "not_quite"
        } else {
            "down"
        }),
    };
    let rating = if rating_only || rng.chance(0.4) {
        Some(match (user_thinks_right, verdict) {
            (true, _) => rng.range_i64(4, 5) as u8,
            (false, Some("not_quite")) => rng.range_i64(2, 3) as u8,
            (false, _) => rng.range_i64(1, 2) as u8,
        })
    } else {
        None
    };
    let correction = correction_text(fault, investigation, style, &mut rng);
    let mut tags = Vec::new();
    match style {
        CorrectionStyle::Precise
        | CorrectionStyle::Partial
        | CorrectionStyle::Mistaken
        | CorrectionStyle::Named => tags.push("wrong-component".to_string()),
        CorrectionStyle::WrongTime => tags.push("wrong-cause".to_string()),
        CorrectionStyle::Confirm => tags.push("helpful".to_string()),
        CorrectionStyle::Vague if rng.chance(0.5) => tags.push("missing-evidence".to_string()),
        _ => {}
    }
    let mut metadata = Map::new();
    metadata.insert("sim.style".to_string(), json!(style.surface()));
    metadata.insert(
        "sim.agent_version".to_string(),
        json!(investigation.version.as_str()),
    );
    let body = FeedbackBody {
        investigation_id: hex::encode(investigation.trace_id),
        verdict,
        rating,
        correction,
        tags,
        user_id: format!("u-{}", rng.range_i64(1, 60)),
        idempotency_key: format!(
            "sim-{}-{}-{}",
            fault.seed,
            fault.incident_id,
            investigation.version.as_str()
        ),
        metadata,
    };
    Some(PlannedFeedback {
        body,
        style,
        before_trace: rng.chance(rates.before_trace),
    })
}

/// The name as people write it: spaces or underscores for dashes, capitals, "database" for
/// `-db`, or one pair of letters swapped in a long name.
fn other_spelling(name: &str, rng: &mut SimRng) -> String {
    let letters: Vec<char> = name.chars().collect();
    match rng.range_i64(0, 3) {
        0 if name.ends_with("-db") => format!("the {} database", &name[..name.len() - 3]),
        1 if letters.len() >= 6 => {
            let at = letters.len() / 2;
            let mut swapped = letters.clone();
            if swapped[at - 1].is_ascii_alphabetic() && swapped[at].is_ascii_alphabetic() {
                swapped.swap(at - 1, at);
            }
            swapped.into_iter().collect()
        }
        2 => name.replace('-', "_").to_uppercase(),
        _ => name.replace('-', " "),
    }
}

fn correction_text(
    fault: &FaultView<'_>,
    investigation: &Investigation,
    style: CorrectionStyle,
    rng: &mut SimRng,
) -> Option<String> {
    let root = fault.root;
    let alerted = fault.alerted;
    let blamed = &investigation.blamed;
    let mechanism = fault.mechanism;
    let onset = hhmm(fault.onset);
    Some(match style {
        CorrectionStyle::NoText => return None,
        CorrectionStyle::Confirm => rng
            .pick(&[
                "spot on, thanks",
                "yes, that was it",
                "correct, we rolled it back",
            ])
            .to_string(),
        CorrectionStyle::Precise => {
            let specific = match fault.kind {
                Some(FaultKind::OomKill) => format!("{root} pods OOM-killed from {onset}"),
                Some(FaultKind::BadDeploy) => {
                    format!("the {onset} deploy of {root} broke it, rolling back fixed it")
                }
                Some(FaultKind::ConnectionPoolExhaustion) => {
                    format!("it was the {root} connection pool, not {blamed}")
                }
                Some(FaultKind::DnsFailure) => {
                    format!("DNS for {root} stopped resolving around {onset}")
                }
                Some(FaultKind::CertificateExpiry) => {
                    format!("the TLS cert on {root} expired at {onset}")
                }
                _ => format!("{root} {mechanism} starting {onset} UTC"),
            };
            if rng.chance(0.5) {
                format!("{specific}; {blamed} was only a symptom")
            } else {
                specific
            }
        }
        CorrectionStyle::Vague => {
            let mut options = vec![
                "it was slow".to_string(),
                "something downstream".to_string(),
                format!("not sure, but {alerted} was just reacting"),
            ];
            match fault.root_kind {
                ComponentKind::Postgres => {
                    options.extend(["check the db".to_string(), "database problem".to_string()])
                }
                ComponentKind::Redis => options.push("the cache was acting up".to_string()),
                _ => {}
            }
            options.extend(fault.vague_hints.iter().cloned());
            rng.pick(&options).clone()
        }
        CorrectionStyle::Partial => {
            if fault.frontends.contains(blamed) && rng.chance(0.6) {
                "not the frontend".to_string()
            } else {
                rng.pick(&[
                    format!("not {blamed}"),
                    format!("{blamed} was fine"),
                    "wrong service".to_string(),
                ])
                .clone()
            }
        }
        CorrectionStyle::Mistaken => {
            // The user blames a red herring: a background anomaly, the alerted service, or a neighbour.
            let mut suspects: Vec<String> = fault.background.clone();
            suspects.push(alerted.to_string());
            suspects.extend(fault.alerted_calls.iter().cloned());
            suspects.retain(|s| s != root);
            let suspect = if suspects.is_empty() {
                "the load balancer".to_string()
            } else {
                rng.pick(&suspects).clone()
            };
            rng.pick(&[
                format!("it was the {suspect} deploy"),
                format!("{suspect} ran out of memory"),
                format!("{suspect} was the cause, the rest followed"),
            ])
            .clone()
        }
        CorrectionStyle::Named => {
            let pod = (!fault.root_pods.is_empty()).then(|| rng.pick(&fault.root_pods).clone());
            let spelled = other_spelling(root, rng);
            match (rng.range_i64(0, 3), pod) {
                (0, Some((pod, _))) => format!("{pod} {mechanism} from {onset}, not {blamed}"),
                (1, Some((pod, host))) => {
                    format!("{spelled} on {host} ({pod}) — {mechanism} starting {onset}")
                }
                _ => format!("it was {spelled}: {mechanism}, around {onset}"),
            }
        }
        CorrectionStyle::WrongTime => {
            let shift = rng.range_i64(30, 120) * 60 * if rng.chance(0.5) { 1 } else { -1 };
            format!(
                "{root} {mechanism}, it started at {} UTC",
                hhmm(fault.onset + shift)
            )
        }
    })
}
