//! Reference SRE agents `v1` and `v2`: investigators that read telemetry through [`Tools`], record
//! every step, and write an RCA conclusion. `v1` makes the canonical composition error — valid
//! signals from several tools combined into a wrong-component attribution (blaming the loudest
//! symptom) — at a rate that depends on what the symptoms look like; `v2` fixes some of those
//! cases and regresses one, so an evaluation has something real to find.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::faults::FaultKind;
use crate::rng::{SimRng, hash_words};
use crate::signals::Metric;
use crate::telemetry::rfc3339_ms;
use crate::tools::Tools;

/// Tool results longer than this are cut in the trace (the agent itself saw the whole result).
pub const MAX_RECORDED_RESULT_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum AgentVersion {
    V1,
    V2,
}

impl AgentVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentVersion::V1 => "v1",
            AgentVersion::V2 => "v2",
        }
    }

    /// How often the agent stops at the loudest symptom, given what the symptoms look like there.
    pub fn loudest_symptom_rate(self, impression: Impression) -> f64 {
        use Impression::*;
        match (self, impression) {
            (AgentVersion::V1, PoolTimeouts) => 0.55,
            (AgentVersion::V1, DnsErrors) => 0.5,
            (AgentVersion::V1, TlsErrors) => 0.2,
            (AgentVersion::V1, UpstreamTimeouts) => 0.45,
            (AgentVersion::V2, PoolTimeouts) => 0.08,
            (AgentVersion::V2, DnsErrors) => 0.08,
            // The regression: v2's new prompt treats TLS errors as the caller's own misconfiguration.
            (AgentVersion::V2, TlsErrors) => 0.8,
            (AgentVersion::V2, UpstreamTimeouts) => 0.15,
            (_, UpstreamErrors) => 0.3,
            (_, DatabaseErrors) => 0.35,
            (_, OwnSignals) => 0.1,
        }
    }

    pub fn model(self) -> &'static str {
        match self {
            AgentVersion::V1 => "gpt-4o-2024-08-06",
            AgentVersion::V2 => "gpt-4.1-2025-04-14",
        }
    }

    fn system_prompt(self) -> &'static str {
        match self {
            AgentVersion::V1 => {
                "You are an SRE agent. Investigate the alert and name the root cause."
            }
            AgentVersion::V2 => {
                "You are an SRE agent. Follow failing calls down the dependency graph before naming a root cause; \
                 treat TLS handshake failures as a client configuration problem."
            }
        }
    }

    /// A stable hash of everything that defines this agent configuration.
    pub fn config_hash(self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(AGENT_NAME.as_bytes());
        hasher.update(self.as_str().as_bytes());
        hasher.update(self.model().as_bytes());
        hasher.update(self.system_prompt().as_bytes());
        hex::encode(&hasher.finalize()[..8])
    }
}

pub const AGENT_NAME: &str = "sre-agent";

/// What the errors on the loudest component look like at first sight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Impression {
    PoolTimeouts,
    DnsErrors,
    TlsErrors,
    UpstreamTimeouts,
    UpstreamErrors,
    DatabaseErrors,
    OwnSignals,
}

impl Impression {
    fn mechanism(self) -> &'static str {
        match self {
            Impression::PoolTimeouts => "connection pool exhaustion",
            Impression::DnsErrors => "DNS resolution failure",
            Impression::TlsErrors => "TLS certificate misconfiguration",
            Impression::UpstreamTimeouts => "slow responses",
            Impression::UpstreamErrors => "elevated 5xx errors",
            Impression::DatabaseErrors => "database query failures",
            Impression::OwnSignals => "elevated errors",
        }
    }
}

/// What set the investigation off.
#[derive(Debug, Clone, Serialize)]
pub struct Trigger {
    pub kind: &'static str,
    pub monitor: String,
    pub service: String,
    pub text: String,
    pub fired_at_ms: i64,
}

/// One recorded step of an investigation; becomes one span.
#[derive(Debug, Clone)]
pub enum Step {
    Chat {
        span_id: [u8; 8],
        start_ms: i64,
        end_ms: i64,
        output: String,
    },
    Tool {
        span_id: [u8; 8],
        start_ms: i64,
        end_ms: i64,
        tool: &'static str,
        arguments: Value,
        result: String,
        truncated: bool,
        source: &'static str,
        query: String,
        window: (i64, i64),
        entities: Vec<String>,
        error: Option<String>,
    },
}

/// A finished investigation, ready to be encoded as a trace.
#[derive(Debug, Clone)]
pub struct Investigation {
    pub trace_id: [u8; 16],
    pub root_span_id: [u8; 8],
    pub version: AgentVersion,
    pub trigger: Trigger,
    pub started_ms: i64,
    pub ended_ms: i64,
    pub steps: Vec<Step>,
    pub conclusion: String,
    /// The component the conclusion names as the root cause.
    pub blamed: String,
    pub mechanism: String,
    pub onset_ms: Option<i64>,
    /// Whether the agent stopped at the loudest symptom (a fact about the agent, for benchmarks).
    pub took_loudest_symptom: bool,
}

/// An agent that investigates a trigger with some tools.
pub trait Investigator {
    fn version(&self) -> AgentVersion;

    /// Runs one investigation; `run_key` makes ids and choices deterministic.
    fn investigate<T: Tools>(
        &self,
        tools: &T,
        trigger: &Trigger,
        run_key: u64,
    ) -> impl Future<Output = Investigation> + Send;
}

/// The reference agent; `v1` or `v2`.
#[derive(Debug, Clone, Copy)]
pub struct ReferenceAgent {
    pub version: AgentVersion,
}

struct Recorder {
    rng: SimRng,
    cursor_ms: i64,
    steps: Vec<Step>,
}

impl Recorder {
    fn span_id(&mut self) -> [u8; 8] {
        self.rng.bytes::<8>()
    }

    fn chat(&mut self, output: String) {
        let span_id = self.span_id();
        let start_ms = self.cursor_ms;
        self.cursor_ms += self.rng.range_i64(900, 5200);
        self.steps.push(Step::Chat {
            span_id,
            start_ms,
            end_ms: self.cursor_ms,
            output,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn tool(
        &mut self,
        tool: &'static str,
        source: &'static str,
        arguments: Value,
        query: String,
        window: (i64, i64),
        entities: Vec<String>,
        outcome: &Result<Value, crate::tools::ToolError>,
    ) {
        let span_id = self.span_id();
        let start_ms = self.cursor_ms;
        self.cursor_ms += self.rng.range_i64(150, 2600);
        let (mut result, error) = match outcome {
            Ok(v) => (serialize_capped(v), None),
            Err(e) => (e.to_string(), Some(e.to_string())),
        };
        let truncated = result.len() > MAX_RECORDED_RESULT_BYTES;
        if truncated {
            let mut cut = MAX_RECORDED_RESULT_BYTES;
            while !result.is_char_boundary(cut) {
                cut -= 1;
            }
            result.truncate(cut);
        }
        self.steps.push(Step::Tool {
            span_id,
            start_ms,
            end_ms: self.cursor_ms,
            tool,
            arguments,
            result,
            truncated,
            source,
            query,
            window,
            entities,
            error,
        });
    }
}

/// Serialises `value` as JSON, stopping shortly after [`MAX_RECORDED_RESULT_BYTES`]: a recorded
/// result is cut anyway, and serialising a large answer in full costs more than the rest of a step.
fn serialize_capped(value: &Value) -> String {
    struct Capped(Vec<u8>);
    impl std::io::Write for Capped {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.0.len() > MAX_RECORDED_RESULT_BYTES {
                return Err(std::io::Error::other("full"));
            }
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut out = Capped(Vec::with_capacity(MAX_RECORDED_RESULT_BYTES + 64));
    // A write error only means the cap was reached.
    let _ = serde_json::to_writer(&mut out, value);
    let mut bytes = out.0;
    // Cut back to a character boundary so the text stays valid UTF-8.
    while std::str::from_utf8(&bytes).is_err() {
        bytes.pop();
    }
    String::from_utf8(bytes).unwrap_or_default()
}

/// A metric that moved away from its baseline on one service.
#[derive(Debug, Clone)]
struct Anomaly {
    service: String,
    metric: Metric,
    baseline: f64,
    peak: f64,
    onset_ms: i64,
}

impl Anomaly {
    fn kind_hint(&self) -> Option<FaultKind> {
        match self.metric {
            Metric::Memory => Some(FaultKind::MemoryLeak),
            Metric::Cpu => Some(FaultKind::CpuSaturation),
            Metric::PoolUsage => Some(FaultKind::ConnectionPoolExhaustion),
            Metric::Disk => Some(FaultKind::DiskFull),
            Metric::ConsumerLag => Some(FaultKind::ConsumerLag),
            Metric::Restarts => Some(FaultKind::OomKill),
            Metric::RequestRate if self.peak > self.baseline => Some(FaultKind::TrafficSpike),
            Metric::RequestRate => Some(FaultKind::DnsFailure),
            Metric::LatencyP99 | Metric::LatencyP50 => Some(FaultKind::SlowDependency),
            Metric::ErrorRatio => None,
        }
    }

    fn is_resource(&self) -> bool {
        !matches!(
            self.metric,
            Metric::ErrorRatio | Metric::LatencyP50 | Metric::LatencyP99
        )
    }

    fn describe(&self) -> String {
        let direction = if self.peak >= self.baseline {
            "rose"
        } else {
            "fell"
        };
        format!(
            "{} {} {direction} from {} to {}",
            self.service,
            self.metric.prom_name(),
            short(self.baseline),
            short(self.peak)
        )
    }
}

fn short(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// Reads a Prometheus matrix answer into (service, points).
fn parse_matrix(answer: &Value) -> Vec<(String, Vec<(i64, f64)>)> {
    let Some(result) = answer.pointer("/data/result").and_then(Value::as_array) else {
        return Vec::new();
    };
    result
        .iter()
        .filter_map(|series| {
            let service = series.pointer("/metric/service")?.as_str()?.to_string();
            let points = series
                .get("values")?
                .as_array()?
                .iter()
                .filter_map(|p| {
                    let t = (p.get(0)?.as_f64()? * 1000.0) as i64;
                    let v: f64 = p.get(1)?.as_str()?.parse().ok()?;
                    Some((t, v))
                })
                .collect();
            Some((service, points))
        })
        .collect()
}

fn detect(
    metric: Metric,
    service: &str,
    points: &[(i64, f64)],
    baseline_until_ms: i64,
) -> Option<Anomaly> {
    let before: Vec<f64> = points
        .iter()
        .filter(|p| p.0 < baseline_until_ms)
        .map(|p| p.1)
        .collect();
    let after: Vec<(i64, f64)> = points
        .iter()
        .filter(|p| p.0 >= baseline_until_ms)
        .copied()
        .collect();
    if before.len() < 3 || after.is_empty() {
        return None;
    }
    let mut sorted = before.clone();
    sorted.sort_by(f64::total_cmp);
    let baseline = sorted[sorted.len() / 2];
    let peak = after.iter().map(|p| p.1).fold(f64::MIN, f64::max);
    let low = after.iter().map(|p| p.1).fold(f64::MAX, f64::min);
    let (anomalous, extreme) = match metric {
        Metric::ErrorRatio => (peak - baseline > 0.02 && peak > 3.0 * baseline, peak),
        Metric::LatencyP99 | Metric::LatencyP50 => (peak > 2.0 * baseline, peak),
        Metric::Memory | Metric::Disk => (peak > 0.9 && peak - baseline > 0.15, peak),
        Metric::Cpu | Metric::PoolUsage => (peak > 0.85 && peak - baseline > 0.2, peak),
        Metric::ConsumerLag => (peak > 10_000.0 && peak > 10.0 * baseline, peak),
        Metric::Restarts => (peak - baseline >= 1.0, peak),
        Metric::RequestRate => {
            if peak > 2.5 * baseline {
                (true, peak)
            } else {
                (low < 0.4 * baseline, low)
            }
        }
    };
    if !anomalous {
        return None;
    }
    let midpoint = baseline + (extreme - baseline) / 2.0;
    let rising = extreme >= baseline;
    let onset_ms = after
        .iter()
        .find(|p| {
            if rising {
                p.1 >= midpoint
            } else {
                p.1 <= midpoint
            }
        })
        .map_or(after[0].0, |p| p.0);
    Some(Anomaly {
        service: service.to_string(),
        metric,
        baseline,
        peak: extreme,
        onset_ms,
    })
}

/// What one log line or event says, read the way an SRE reads it.
#[derive(Debug, Clone, PartialEq)]
enum Clue {
    /// The line is evidence that its own service has this fault.
    Own(FaultKind),
    /// The line blames another component (by name), maybe with a mechanism.
    Points {
        target: String,
        kind: Option<FaultKind>,
        impression: Impression,
    },
    /// A client-side symptom with a recognisable mechanism but no named target.
    Symptom(Impression),
    Noise,
}

fn word_after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let start = text.find(marker)? + marker.len();
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

fn classify_log(message: &str) -> Clue {
    use FaultKind::*;
    let m = message;
    if m.contains("HikariPool") {
        return Clue::Symptom(Impression::PoolTimeouts);
    }
    if m.contains("remaining connection slots") {
        if let Some(host) = word_after(m, "(host ") {
            return Clue::Points {
                target: host.to_string(),
                kind: Some(ConnectionPoolExhaustion),
                impression: Impression::PoolTimeouts,
            };
        }
        return Clue::Own(ConnectionPoolExhaustion);
    }
    if m.contains("too many clients") {
        return Clue::Own(ConnectionPoolExhaustion);
    }
    if m.contains("no such host")
        && let Some(host) = word_after(m, "lookup ")
    {
        return Clue::Points {
            target: host.to_string(),
            kind: Some(DnsFailure),
            impression: Impression::DnsErrors,
        };
    }
    if m.contains("x509:")
        && let Some(host) = word_after(m, "https://")
    {
        return Clue::Points {
            target: host.to_string(),
            kind: Some(CertificateExpiry),
            impression: Impression::TlsErrors,
        };
    }
    if let Some(target) = word_after(m, "upstream request timeout calling ") {
        return Clue::Points {
            target: target.to_string(),
            kind: None,
            impression: Impression::UpstreamTimeouts,
        };
    }
    if let Some(target) = word_after(m, "query against ") {
        return Clue::Points {
            target: target.to_string(),
            kind: None,
            impression: Impression::DatabaseErrors,
        };
    }
    for marker in ["upstream ", "call to ", "request to "] {
        if let Some(target) = word_after(m, marker)
            && (m.contains("returned 50") || m.contains("failed"))
        {
            return Clue::Points {
                target: target.to_string(),
                kind: None,
                impression: Impression::UpstreamErrors,
            };
        }
    }
    let own = [
        ("tls: bad certificate", CertificateExpiry),
        ("Java heap space", OomKill),
        ("out of memory", OomKill),
        ("GC overhead", MemoryLeak),
        ("GC pause", MemoryLeak),
        ("heap usage", MemoryLeak),
        ("thread pool queue full", CpuSaturation),
        ("CPU throttled", CpuSaturation),
        ("waiting for a worker thread", CpuSaturation),
        ("NullPointerException", BadDeploy),
        ("panic:", BadDeploy),
        ("unhandled exception", BadDeploy),
        ("invalid configuration", ConfigChange),
        ("config reload", ConfigChange),
        ("connection reset by peer", PacketLoss),
        ("broken pipe", PacketLoss),
        ("No space left on device", DiskFull),
        ("rate limit exceeded", TrafficSpike),
        ("above 7-day baseline", TrafficSpike),
        ("invalid input syntax", DataCorruption),
        ("duplicate key", DataCorruption),
        ("readiness probe failed", NodeFailure),
        ("connect: connection refused", NodeFailure),
        ("no incoming requests", DnsFailure),
    ];
    for (needle, kind) in own {
        if m.contains(needle) {
            return Clue::Own(kind);
        }
    }
    if m.contains("consumer group") && (m.contains("behind") || m.contains("Rebalancing")) {
        return Clue::Own(ConsumerLag);
    }
    if m.contains("slow request") && !m.contains("1310ms") {
        return Clue::Own(SlowDependency);
    }
    Clue::Noise
}

fn classify_event(reason: &str, message: &str) -> Option<FaultKind> {
    use FaultKind::*;
    Some(match reason {
        "Deployed" => BadDeploy,
        "ConfigMapUpdated" if !message.contains("LOG_LEVEL") => ConfigChange,
        "DNSRecordChanged" => DnsFailure,
        "OOMKilled" | "BackOff" => OomKill,
        "ScalingLimited" => CpuSaturation,
        "SuccessfulRescale" => TrafficSpike,
        "VolumeNearlyFull" => DiskFull,
        "CertificateExpired" => CertificateExpiry,
        "ConsumerRebalance" => ConsumerLag,
        "NodeNotReady" | "Evicted" => NodeFailure,
        "PacketLoss" => PacketLoss,
        "MigrationApplied" => DataCorruption,
        _ => return None,
    })
}

#[derive(Debug, Default)]
struct Suspect {
    score: f64,
    kinds: BTreeMap<FaultKind, f64>,
    onset_ms: Option<i64>,
    evidence: Vec<String>,
}

impl Suspect {
    fn add(
        &mut self,
        weight: f64,
        kind: Option<FaultKind>,
        onset_ms: Option<i64>,
        evidence: String,
    ) {
        self.score += weight;
        if let Some(kind) = kind {
            *self.kinds.entry(kind).or_default() += weight;
        }
        if let Some(t) = onset_ms {
            self.onset_ms = Some(self.onset_ms.map_or(t, |o: i64| o.min(t)));
        }
        if self.evidence.len() < 4 && !self.evidence.contains(&evidence) {
            self.evidence.push(evidence);
        }
    }

    fn top_kind(&self) -> Option<FaultKind> {
        self.kinds
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(k, _)| *k)
    }
}

/// How many layers of dependencies the agent descends at most.
const MAX_DESCENT: usize = 7;
/// Resolution of metric queries.
const METRIC_STEP_SECS: i64 = 120;
const MAX_FOCUS: usize = 30;

/// One `max by (service)` range query of `metric` over `services`, recorded, and its anomalies.
async fn query_and_detect<T: Tools>(
    tools: &T,
    rec: &mut Recorder,
    metric: Metric,
    services: &[String],
    window: (i64, i64),
    baseline_until: i64,
) -> Vec<Anomaly> {
    let query = format!(
        "max by (service) ({}{{service=~\"{}\"}})",
        metric.prom_name(),
        services.join("|")
    );
    let answer = tools
        .query_metrics(&query, window.0, window.1, METRIC_STEP_SECS)
        .await;
    let arguments = json!({"query": query, "start": rfc3339_ms(window.0), "end": rfc3339_ms(window.1), "step": format!("{METRIC_STEP_SECS}s")});
    rec.tool(
        "query_metrics",
        "metrics",
        arguments,
        query.clone(),
        window,
        services.to_vec(),
        &answer,
    );
    let Ok(answer) = &answer else {
        return Vec::new();
    };
    parse_matrix(answer)
        .into_iter()
        .filter_map(|(service, points)| detect(metric, &service, &points, baseline_until))
        .collect()
}

const RESOURCE_METRICS: [Metric; 7] = [
    Metric::Memory,
    Metric::Cpu,
    Metric::PoolUsage,
    Metric::Disk,
    Metric::ConsumerLag,
    Metric::RequestRate,
    Metric::Restarts,
];

fn hhmm(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%H:%M").to_string())
        .unwrap_or_else(|_| "??:??".to_string())
}

impl Investigator for ReferenceAgent {
    fn version(&self) -> AgentVersion {
        self.version
    }

    async fn investigate<T: Tools>(
        &self,
        tools: &T,
        trigger: &Trigger,
        run_key: u64,
    ) -> Investigation {
        let version = self.version;
        let mut rng = SimRng::new(hash_words(&[run_key, version as u64, 0xa9e7]));
        let trace_id = rng.bytes::<16>();
        let root_span_id = rng.bytes::<8>();
        let started_ms = trigger.fired_at_ms + rng.range_i64(45_000, 180_000);
        let stop_at_loudest_roll = rng.unit();
        let mut rec = Recorder {
            rng,
            cursor_ms: started_ms + 40,
            steps: Vec::new(),
        };
        let alerted = trigger.service.clone();
        let window = (trigger.fired_at_ms - 45 * 60_000, started_ms);
        let baseline_until = trigger.fired_at_ms - 30 * 60_000;

        rec.chat(format!(
            "Alert {} fired on {alerted}. I'll map its dependencies first.",
            trigger.monitor
        ));
        let services = tools.list_services().await;
        rec.tool(
            "list_services",
            "infra",
            json!({}),
            "list_services".to_string(),
            window,
            Vec::new(),
            &services,
        );
        let no_items: Vec<Value> = Vec::new();
        let calls: HashMap<String, Vec<String>> = services
            .as_ref()
            .ok()
            .and_then(|v| v.pointer("/data/services")?.as_array())
            .unwrap_or(&no_items)
            .iter()
            .filter_map(|s| {
                let name = s.get("name")?.as_str()?.to_string();
                let callees = s
                    .get("calls")?
                    .as_array()?
                    .iter()
                    .filter_map(|c| c.as_str().map(str::to_string))
                    .collect();
                Some((name, callees))
            })
            .collect();
        // Follow failing calls down: check a layer of dependencies, descend into the ones that moved.
        let mut anomalies: Vec<Anomaly> = Vec::new();
        let mut seen: Vec<String> = vec![alerted.clone()];
        let mut layer: Vec<String> = vec![alerted.clone()];
        layer.extend(calls.get(&alerted).into_iter().flatten().cloned());
        seen.extend(layer.iter().skip(1).cloned());
        let mut moved: Vec<String> = Vec::new();
        let mut quiet: Vec<String> = Vec::new();
        for depth in 0..MAX_DESCENT {
            if layer.is_empty() {
                break;
            }
            rec.chat(if depth == 0 {
                format!(
                    "Checking error rate and latency of {alerted} and its {} direct dependencies.",
                    layer.len() - 1
                )
            } else {
                format!(
                    "Following the failing calls down: checking {}.",
                    layer.join(", ")
                )
            });
            let mut found = Vec::new();
            for metric in [Metric::ErrorRatio, Metric::LatencyP99] {
                found.extend(
                    query_and_detect(tools, &mut rec, metric, &layer, window, baseline_until).await,
                );
            }
            let mut next = Vec::new();
            for service in &layer {
                if found.iter().any(|a| a.service == *service) {
                    moved.push(service.clone());
                    for callee in calls.get(service).into_iter().flatten() {
                        if !seen.contains(callee) {
                            seen.push(callee.clone());
                            next.push(callee.clone());
                        }
                    }
                } else {
                    quiet.push(service.clone());
                }
            }
            anomalies.extend(found);
            layer = next;
        }
        // Focus on what moved, and on the quiet dependencies of the deepest services that moved:
        // the cause is one of those (a dependency nobody can reach looks quiet).
        let moved_leaves: Vec<&String> = moved
            .iter()
            .filter(|m| {
                !calls
                    .get(*m)
                    .into_iter()
                    .flatten()
                    .any(|callee| moved.contains(callee))
            })
            .collect();
        let suspicious_quiet = quiet.iter().filter(|q| {
            moved_leaves
                .iter()
                .any(|leaf| calls.get(*leaf).is_some_and(|c| c.contains(q)))
        });
        let mut focus: Vec<String> = vec![alerted.clone()];
        for service in moved.iter().rev().chain(suspicious_quiet) {
            if !focus.contains(service) && focus.len() < MAX_FOCUS {
                focus.push(service.clone());
            }
        }
        rec.chat(format!(
            "{} services show errors or latency; checking saturation signals (memory, CPU, pools, disk, lag, traffic, restarts) on {} services.",
            moved.len(),
            focus.len()
        ));
        for metric in RESOURCE_METRICS {
            let found =
                query_and_detect(tools, &mut rec, metric, &focus, window, baseline_until).await;
            anomalies.extend(found);
        }

        rec.chat(
            "Looking for warnings and errors in the logs of the affected services.".to_string(),
        );
        let log_query = format!("level:warn service:{}", focus.join(","));
        let logs = tools.search_logs(&log_query, window.0, window.1, 300).await;
        let arguments = json!({"query": log_query, "start": rfc3339_ms(window.0), "end": rfc3339_ms(window.1), "limit": 300});
        rec.tool(
            "search_logs",
            "logs",
            arguments,
            log_query.clone(),
            window,
            focus.clone(),
            &logs,
        );

        let event_window = (trigger.fired_at_ms - 4 * 3_600_000, started_ms);
        let events = tools
            .get_events(&focus, event_window.0, event_window.1)
            .await;
        let arguments = json!({"services": focus, "start": rfc3339_ms(event_window.0), "end": rfc3339_ms(event_window.1)});
        rec.tool(
            "get_events",
            "events",
            arguments,
            format!("events service:{}", focus.join(",")),
            event_window,
            focus.clone(),
            &events,
        );

        let trace_window = (trigger.fired_at_ms - 15 * 60_000, started_ms);
        let traces = tools
            .get_traces(&alerted, trace_window.0, trace_window.1, true)
            .await;
        let arguments = json!({"service": alerted, "start": rfc3339_ms(trace_window.0), "end": rfc3339_ms(trace_window.1), "errors": true});
        rec.tool(
            "get_traces",
            "traces",
            arguments,
            format!("traces service:{alerted} status:error"),
            trace_window,
            vec![alerted.clone()],
            &traces,
        );
        let candidates = focus;

        // Weigh the evidence per component.
        let mut suspects: BTreeMap<String, Suspect> = candidates
            .iter()
            .map(|c| (c.clone(), Suspect::default()))
            .collect();
        let mut error_increase: BTreeMap<String, f64> = BTreeMap::new();
        for a in &anomalies {
            let Some(s) = suspects.get_mut(&a.service) else {
                continue;
            };
            if a.metric == Metric::ErrorRatio {
                error_increase.insert(a.service.clone(), a.peak - a.baseline);
            }
            let weight = if a.is_resource() { 3.0 } else { 0.5 };
            let kind = if a.metric == Metric::Memory
                && anomalies
                    .iter()
                    .any(|b| b.service == a.service && b.metric == Metric::Restarts)
            {
                Some(FaultKind::OomKill)
            } else {
                a.kind_hint()
            };
            s.add(weight, kind, Some(a.onset_ms), a.describe());
        }
        let mut impressions: BTreeMap<String, HashMap<Impression, u32>> = BTreeMap::new();
        let log_lines = logs
            .as_ref()
            .ok()
            .and_then(|v| v.pointer("/data/result")?.as_array())
            .unwrap_or(&no_items);
        let mut own_kinds_seen: BTreeMap<(String, FaultKind), u32> = BTreeMap::new();
        let mut pointers_seen: std::collections::BTreeSet<(String, String)> =
            std::collections::BTreeSet::new();
        for line in log_lines {
            let (Some(service), Some(message)) = (
                line.get("service").and_then(Value::as_str),
                line.get("message").and_then(Value::as_str),
            ) else {
                continue;
            };
            let time = line
                .get("timestamp")
                .and_then(Value::as_str)
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .map(|t| t.as_millisecond());
            match classify_log(message) {
                Clue::Own(kind) => {
                    let seen = own_kinds_seen
                        .entry((service.to_string(), kind))
                        .or_default();
                    *seen += 1;
                    if let Some(s) = suspects.get_mut(service) {
                        let weight = if *seen <= 3 { 1.0 } else { 0.1 };
                        s.add(
                            weight,
                            Some(kind),
                            time,
                            format!("{service} logs: \"{message}\""),
                        );
                    }
                    *impressions
                        .entry(service.to_string())
                        .or_default()
                        .entry(Impression::OwnSignals)
                        .or_default() += 1;
                }
                Clue::Points {
                    target,
                    kind,
                    impression,
                } => {
                    let first_from_this_caller =
                        pointers_seen.insert((service.to_string(), target.clone()));
                    if let Some(s) = suspects.get_mut(&target)
                        && first_from_this_caller
                    {
                        s.add(0.8, kind, None, format!("{service} logs: \"{message}\""));
                    }
                    *impressions
                        .entry(service.to_string())
                        .or_default()
                        .entry(impression)
                        .or_default() += 1;
                }
                Clue::Symptom(impression) => {
                    *impressions
                        .entry(service.to_string())
                        .or_default()
                        .entry(impression)
                        .or_default() += 1;
                }
                Clue::Noise => {}
            }
        }
        let event_list = events
            .as_ref()
            .ok()
            .and_then(|v| v.pointer("/data/result")?.as_array())
            .unwrap_or(&no_items);
        for event in event_list {
            let (Some(service), Some(reason), Some(message)) = (
                event.get("service").and_then(Value::as_str),
                event.get("reason").and_then(Value::as_str),
                event.get("message").and_then(Value::as_str),
            ) else {
                continue;
            };
            let time = event
                .get("timestamp")
                .and_then(Value::as_str)
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .map(|t| t.as_millisecond());
            if let (Some(kind), Some(s)) =
                (classify_event(reason, message), suspects.get_mut(service))
            {
                let recent = time.is_some_and(|t| t >= trigger.fired_at_ms - 45 * 60_000);
                let weight = if recent { 2.0 } else { 0.7 };
                let kind = if kind == FaultKind::BadDeploy && !recent {
                    FaultKind::MemoryLeak
                } else {
                    kind
                };
                s.add(
                    weight,
                    Some(kind),
                    None,
                    format!("event on {service}: {message}"),
                );
            }
        }
        let trace_list = traces
            .as_ref()
            .ok()
            .and_then(|v| v.pointer("/data/result")?.as_array())
            .unwrap_or(&no_items);
        let mut failing_spans_seen: std::collections::BTreeSet<String> =
            std::collections::BTreeSet::new();
        for trace in trace_list {
            let spans = trace
                .get("spans")
                .and_then(Value::as_array)
                .unwrap_or(&no_items);
            // The deepest span that failed on its own account.
            let own_failure = spans.iter().rev().find(|s| {
                s.get("status").and_then(Value::as_str) == Some("error")
                    && !s
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .starts_with("upstream ")
            });
            if let Some(span) = own_failure {
                let service = span
                    .get("service")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let message = span
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let kind = match classify_log(message) {
                    Clue::Own(k) => Some(k),
                    Clue::Points { kind, .. } => kind,
                    _ => None,
                };
                // A bare "internal error" happens anywhere now and then; a specific failure is telling.
                let first = failing_spans_seen.insert(service.to_string());
                let weight = match (kind.is_some(), first) {
                    (true, true) => 1.5,
                    (false, true) => 0.3,
                    (_, false) => 0.2,
                };
                if let Some(s) = suspects.get_mut(service) {
                    s.add(
                        weight,
                        kind,
                        None,
                        format!("failing span in {service}: {message}"),
                    );
                }
            }
        }

        // The careful reading: the component with the most evidence of its own fault, earliest first.
        let careful = suspects
            .iter()
            .max_by(|a, b| {
                a.1.score.total_cmp(&b.1.score).then_with(|| {
                    b.1.onset_ms
                        .unwrap_or(i64::MAX)
                        .cmp(&a.1.onset_ms.unwrap_or(i64::MAX))
                })
            })
            .filter(|(_, suspect)| suspect.score >= 1.0)
            .map(|(name, _)| name.clone())
            .unwrap_or_else(|| alerted.clone());
        // The hasty reading: the loudest symptom.
        let loudest = error_increase
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(name, _)| name.clone())
            .unwrap_or_else(|| alerted.clone());
        let impression = impressions
            .get(&loudest)
            .and_then(|counts| {
                counts
                    .iter()
                    .max_by_key(|(i, n)| (**n, **i as u8))
                    .map(|(i, _)| *i)
            })
            .unwrap_or(Impression::OwnSignals);
        let took_loudest_symptom =
            loudest != careful && stop_at_loudest_roll < version.loudest_symptom_rate(impression);
        let (blamed, mechanism) = if took_loudest_symptom {
            let mechanism = match impression {
                Impression::OwnSignals => suspects
                    .get(&loudest)
                    .and_then(Suspect::top_kind)
                    .map_or(impression.mechanism(), FaultKind::mechanism),
                other => other.mechanism(),
            };
            (loudest.clone(), mechanism.to_string())
        } else {
            let mechanism = suspects
                .get(&careful)
                .and_then(Suspect::top_kind)
                .map_or("elevated errors", FaultKind::mechanism);
            (careful.clone(), mechanism.to_string())
        };
        let suspect = suspects.get(&blamed);
        let onset_ms = suspect.and_then(|s| s.onset_ms);
        let onset_text = onset_ms
            .map(|t| format!(" starting {} UTC", hhmm(t)))
            .unwrap_or_default();
        let mut conclusion = format!("Root cause: {blamed} {mechanism}{onset_text}");
        if blamed != alerted {
            conclusion.push_str(&format!("; {alerted} errors are a downstream symptom"));
        }
        conclusion.push('.');
        if let Some(s) = suspect
            && !s.evidence.is_empty()
        {
            conclusion.push_str(" Evidence: ");
            conclusion.push_str(&s.evidence.join("; "));
            conclusion.push('.');
        }
        rec.chat(conclusion.clone());
        let ended_ms = rec.cursor_ms + 20;
        Investigation {
            trace_id,
            root_span_id,
            version,
            trigger: trigger.clone(),
            started_ms,
            ended_ms,
            steps: rec.steps,
            conclusion,
            blamed,
            mechanism,
            onset_ms,
            took_loudest_symptom,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_read_like_an_sre_reads_them() {
        assert_eq!(
            classify_log("dial tcp: lookup payments-db on 10.96.0.10:53: no such host"),
            Clue::Points {
                target: "payments-db".into(),
                kind: Some(FaultKind::DnsFailure),
                impression: Impression::DnsErrors
            }
        );
        assert_eq!(
            classify_log("java.lang.OutOfMemoryError: Java heap space"),
            Clue::Own(FaultKind::OomKill)
        );
        assert_eq!(
            classify_log("upstream request timeout calling cart-redis: context deadline exceeded"),
            Clue::Points {
                target: "cart-redis".into(),
                kind: None,
                impression: Impression::UpstreamTimeouts
            }
        );
        assert_eq!(classify_log("GET /healthz 200 1ms"), Clue::Noise);
        assert_eq!(
            classify_log("HikariPool-1 - Connection is not available"),
            Clue::Symptom(Impression::PoolTimeouts)
        );
    }

    #[test]
    fn detect_finds_a_step_and_its_onset() {
        let points: Vec<(i64, f64)> = (0..60)
            .map(|m| (m * 60_000, if m >= 40 { 0.95 } else { 0.4 }))
            .collect();
        let a = detect(Metric::Memory, "cart", &points, 20 * 60_000).expect("anomaly");
        assert_eq!(a.onset_ms, 40 * 60_000);
        assert!(detect(Metric::Memory, "cart", &points[..30], 20 * 60_000).is_none());
    }

    #[test]
    fn config_hashes_differ_between_versions() {
        assert_ne!(
            AgentVersion::V1.config_hash(),
            AgentVersion::V2.config_hash()
        );
        assert_eq!(AgentVersion::V1.config_hash().len(), 16);
    }
}
