//! The generated world — topology plus a timeline of incidents — and the queries that read it:
//! metric values at any instant, log and event search, and sampled request traces.

use std::collections::HashMap;

use serde::Serialize;

use crate::faults::{FaultKind, Incident, generate_incident};
use crate::rng::{SimRng, hash_words, unit_from_hash};
use crate::signals::{Effect, EventKind, LogLevel, LogLine, Metric, WorldEvent};
use crate::topology::{ComponentKind, Topology};

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct WorldConfig {
    pub seed: u64,
    pub incidents: u64,
    /// Number of services; `None` lets the seed choose (10..=500).
    pub services: Option<usize>,
    /// Unix seconds at which the timeline ends: the last incident is over an hour before it.
    pub timeline_end: i64,
}

/// 2026-01-01T00:00:00Z: the default end of the timeline, so that generation is byte-stable.
pub const DEFAULT_TIMELINE_END: i64 = 1_767_225_600;

/// The whole simulated world.
#[derive(Debug)]
pub struct World {
    pub seed: u64,
    pub topology: Topology,
    pub incidents: Vec<Incident>,
    /// Unix seconds of the first minute of the timeline.
    pub start: i64,
    pub end: i64,
    /// The configuration the world was generated from (services resolved).
    pub config: WorldConfig,
    effects_by_component: Vec<ComponentEffects>,
    roots_by_component: Vec<Vec<usize>>,
    logs: Vec<LogLine>,
    events: Vec<WorldEvent>,
}

impl World {
    pub fn generate(config: WorldConfig) -> World {
        let services = config
            .services
            .unwrap_or_else(|| Topology::services_for_seed(config.seed));
        let topology = Topology::generate(config.seed, services);
        let mut rng = SimRng::derive(config.seed, "timeline", 0);
        // Incidents are far enough apart that one is over before the next begins.
        let gaps: Vec<i64> = (0..config.incidents)
            .map(|_| rng.range_i64(100, 240) * 60)
            .collect();
        let span: i64 = gaps.iter().sum();
        let start = (config.timeline_end - span - 3 * 3600) / 60 * 60;
        let mut onset = start + 2 * 3600;
        let mut incidents = Vec::with_capacity(config.incidents as usize);
        for (index, gap) in gaps.iter().enumerate() {
            incidents.push(generate_incident(
                config.seed,
                index as u64,
                &topology,
                onset,
            ));
            onset += gap;
        }
        let config = WorldConfig {
            services: Some(services),
            ..config
        };
        World::assemble(config, topology, incidents, start)
    }

    fn assemble(
        config: WorldConfig,
        topology: Topology,
        incidents: Vec<Incident>,
        start: i64,
    ) -> World {
        let (seed, end) = (config.seed, config.timeline_end);
        let n = topology.components.len();
        let mut effects_by_component: Vec<ComponentEffects> = vec![ComponentEffects::default(); n];
        let mut roots_by_component: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut logs = Vec::new();
        let mut events = Vec::new();
        for (i, incident) in incidents.iter().enumerate() {
            roots_by_component[incident.root].push(i);
            for effect in &incident.effects {
                let slot = &mut effects_by_component[effect.component];
                if effect.last_active() == i64::MAX {
                    slot.counters.push(effect.clone());
                } else {
                    slot.longest = slot.longest.max(effect.last_active() - effect.start);
                    slot.windowed.push(effect.clone());
                }
            }
            logs.extend(incident.logs.iter().cloned());
            events.extend(incident.events.iter().cloned());
        }
        for slot in &mut effects_by_component {
            slot.windowed.sort_by_key(|e| e.start);
            slot.counters.sort_by_key(|e| e.start);
        }
        logs.sort_by_key(|l| (l.time_ms, l.component));
        events.sort_by_key(|e| (e.time, e.component));
        World {
            seed,
            topology,
            incidents,
            start,
            end,
            config,
            effects_by_component,
            roots_by_component,
            logs,
            events,
        }
    }

    pub fn has_metric(&self, component: usize, metric: Metric) -> bool {
        let c = &self.topology.components[component];
        match metric {
            Metric::PoolUsage => c.kind.is_datastore(),
            Metric::ConsumerLag => c.consumes.is_some(),
            _ => true,
        }
    }

    /// Labels of the one series of `metric` on `component`, sorted by name.
    pub fn series_labels(&self, component: usize, metric: Metric) -> Vec<(&'static str, String)> {
        let c = &self.topology.components[component];
        let mut labels = vec![
            ("__name__", metric.prom_name().to_string()),
            ("kind", c.kind.as_str().to_string()),
            ("service", c.name.clone()),
            ("team", c.team.clone()),
        ];
        if metric == Metric::ConsumerLag
            && let Some(q) = c.consumes
        {
            let queue = &self.topology.queues[q];
            labels.insert(1, ("consumer_group", queue.consumer_group.clone()));
            labels.push(("topic", queue.topic.clone()));
        }
        labels
    }

    /// The value of one label of the series of `metric` on `component`, without allocating.
    pub fn label_value(&self, component: usize, metric: Metric, label: &str) -> Option<&str> {
        let c = &self.topology.components[component];
        match label {
            "__name__" => Some(metric.prom_name()),
            "kind" => Some(c.kind.as_str()),
            "service" => Some(c.name.as_str()),
            "team" => Some(c.team.as_str()),
            "topic" if metric == Metric::ConsumerLag => {
                c.consumes.map(|q| self.topology.queues[q].topic.as_str())
            }
            "consumer_group" if metric == Metric::ConsumerLag => c
                .consumes
                .map(|q| self.topology.queues[q].consumer_group.as_str()),
            _ => None,
        }
    }

    fn baseline(&self, component: usize, metric: Metric, t: i64) -> f64 {
        let c = &self.topology.components[component];
        let h = hash_words(&[self.seed, component as u64, metric as u64]);
        let u = unit_from_hash(h);
        let depth_scale = 1.0 / (1.0 + c.layer as f64);
        let (level, diurnal_amplitude, noise) = match metric {
            Metric::LatencyP50 => {
                if c.kind.is_datastore() {
                    (0.001 + 0.006 * u, 0.1, 0.06)
                } else {
                    (0.015 + 0.08 * u, 0.1, 0.06)
                }
            }
            Metric::LatencyP99 => {
                let p50 = self.baseline_level_p50(component);
                (p50 * (3.0 + 5.0 * u), 0.15, 0.1)
            }
            Metric::ErrorRatio => (0.001 + 0.006 * u, 0.0, 0.3),
            Metric::RequestRate => {
                let frontend = if c.kind == ComponentKind::Frontend {
                    4.0
                } else {
                    1.0
                };
                (
                    (150.0 + 1500.0 * u) * frontend * depth_scale.max(0.2),
                    0.3,
                    0.05,
                )
            }
            Metric::Cpu => (0.2 + 0.3 * u, 0.2, 0.05),
            Metric::Memory => (0.35 + 0.3 * u, 0.0, 0.01),
            Metric::Restarts => ((h % 3) as f64, 0.0, 0.0),
            Metric::PoolUsage => (0.15 + 0.35 * u, 0.2, 0.05),
            Metric::ConsumerLag => (50.0 + 800.0 * u, 0.3, 0.3),
            Metric::Disk => (0.3 + 0.35 * u, 0.0, 0.002),
        };
        let day_phase = (t.rem_euclid(86_400) as f64 / 86_400.0 + u) * std::f64::consts::TAU;
        let minute = t.div_euclid(60) as u64;
        let n1 = unit_from_hash(hash_words(&[h, minute]));
        let n2 = unit_from_hash(hash_words(&[h, minute, 1]));
        let wobble = (n1 + n2 - 1.0) * noise;
        let value = level * (1.0 + diurnal_amplitude * day_phase.sin()) * (1.0 + wobble);
        if metric == Metric::Restarts {
            level
        } else {
            value.max(0.0)
        }
    }

    fn baseline_level_p50(&self, component: usize) -> f64 {
        let c = &self.topology.components[component];
        let u = unit_from_hash(hash_words(&[
            self.seed,
            component as u64,
            Metric::LatencyP50 as u64,
        ]));
        if c.kind.is_datastore() {
            0.001 + 0.006 * u
        } else {
            0.015 + 0.08 * u
        }
    }

    /// The value of `metric` on `component` at `t` (unix seconds), with every effect applied.
    pub fn metric_value(&self, component: usize, metric: Metric, t: i64) -> f64 {
        self.metric_value_filtered(component, metric, t, true)
    }

    /// Like [`World::metric_value`]; without propagated symptoms when `include_propagated` is false.
    pub fn metric_value_filtered(
        &self,
        component: usize,
        metric: Metric,
        t: i64,
        include_propagated: bool,
    ) -> f64 {
        let mut value = self.baseline(component, metric, t);
        let slot = &self.effects_by_component[component];
        // Only effects that started within the longest effect span before `t` can still be active.
        let from = slot
            .windowed
            .partition_point(|e| e.start < t - slot.longest);
        let upto = slot.windowed.partition_point(|e| e.start <= t);
        for effect in &slot.windowed[from..upto] {
            if effect.metric != metric
                || (effect.propagated && !include_propagated)
                || effect.last_active() < t
            {
                continue;
            }
            value = effect.apply(value, t);
        }
        if metric.is_counter() {
            for effect in slot.counters.iter().take_while(|e| e.start <= t) {
                if !effect.propagated || include_propagated {
                    value = effect.apply(value, t);
                }
            }
        }
        match metric {
            Metric::ErrorRatio
            | Metric::Cpu
            | Metric::Memory
            | Metric::PoolUsage
            | Metric::Disk => value.clamp(0.0, 1.0),
            _ => value,
        }
    }

    /// Incidents rooted at `component` whose fault is active at `t`.
    fn active_root_incident(&self, component: usize, t: i64) -> Option<&Incident> {
        self.roots_by_component[component]
            .iter()
            .map(|&i| &self.incidents[i])
            .find(|inc| inc.onset <= t && t <= inc.end)
    }

    /// Log lines in [start_ms, end_ms] matching `filter`, newest first, at most `limit`.
    pub fn search_logs(
        &self,
        filter: &LogFilter,
        start_ms: i64,
        end_ms: i64,
        limit: usize,
    ) -> Vec<LogLine> {
        let mut out: Vec<LogLine> = Vec::new();
        let from = self.logs.partition_point(|l| l.time_ms < start_ms);
        let to = self.logs.partition_point(|l| l.time_ms <= end_ms);
        for line in &self.logs[from..to] {
            if filter.matches(self, line) {
                out.push(line.clone());
            }
        }
        // Background chatter, generated on demand so it costs nothing when nobody looks.
        let components: Vec<usize> = match &filter.services {
            Some(names) => names
                .iter()
                .filter_map(|n| self.topology.index_of(n))
                .collect(),
            None => (0..self.topology.components.len()).collect(),
        };
        let first_minute = start_ms.div_euclid(60_000);
        let last_minute = end_ms.div_euclid(60_000);
        if filter.min_level <= LogLevel::Warn && last_minute - first_minute <= 24 * 60 {
            for &component in &components {
                for minute in first_minute..=last_minute {
                    if let Some(line) = self.background_log(component, minute)
                        && line.time_ms >= start_ms
                        && line.time_ms <= end_ms
                        && filter.matches(self, &line)
                    {
                        out.push(line);
                    }
                }
            }
        }
        out.sort_by(|a, b| {
            b.time_ms
                .cmp(&a.time_ms)
                .then(a.component.cmp(&b.component))
        });
        out.truncate(limit);
        out
    }

    fn background_log(&self, component: usize, minute: i64) -> Option<LogLine> {
        let h = hash_words(&[self.seed, component as u64, minute as u64, 0x10c]);
        let u = unit_from_hash(h);
        if u > 0.25 {
            return None;
        }
        let c = &self.topology.components[component];
        let pod = &c.pods[(h >> 8) as usize % c.pods.len()];
        let (level, message) = if u < 0.01 {
            (
                LogLevel::Warn,
                "retrying request after transient error (attempt 2/3)".to_string(),
            )
        } else if u < 0.02 {
            (
                LogLevel::Warn,
                format!("slow request: GET /v1/{} took 1310ms", c.name),
            )
        } else {
            let messages = [
                "GET /healthz 200 1ms",
                "cache refresh completed in 14ms",
                "processed batch of 128 records",
                "connection pool stats: active=12 idle=36 waiting=0",
                "request completed status=200",
            ];
            (
                LogLevel::Info,
                messages[(h >> 20) as usize % messages.len()].to_string(),
            )
        };
        Some(LogLine {
            time_ms: minute * 60_000 + (h >> 32) as i64 % 60_000,
            component,
            pod: pod.name.clone(),
            level,
            message,
        })
    }

    /// Events in [start, end] (unix seconds) on the given services and of the given kinds.
    pub fn events(
        &self,
        services: Option<&[String]>,
        kinds: Option<&[EventKind]>,
        start: i64,
        end: i64,
        limit: usize,
    ) -> Vec<&WorldEvent> {
        let from = self.events.partition_point(|e| e.time < start);
        let to = self.events.partition_point(|e| e.time <= end);
        self.events[from..to]
            .iter()
            .filter(|e| {
                services.is_none_or(|s| {
                    s.iter()
                        .any(|n| *n == self.topology.components[e.component].name)
                })
            })
            .filter(|e| kinds.is_none_or(|k| k.contains(&e.kind)))
            .take(limit)
            .collect()
    }

    /// Sampled request traces entering at `service`, one per minute of [start, end], newest first.
    pub fn traces(
        &self,
        service: usize,
        start: i64,
        end: i64,
        errors_only: bool,
        limit: usize,
    ) -> Vec<SampledTrace> {
        let mut out = Vec::new();
        let first = start.div_euclid(60);
        let last = end.div_euclid(60);
        let mut minute = last;
        while minute >= first && out.len() < limit && last - minute < 24 * 60 {
            let t =
                minute * 60 + (hash_words(&[self.seed, service as u64, minute as u64]) % 60) as i64;
            if t >= start && t <= end {
                let trace = self.sample_trace(service, t);
                if !errors_only || trace.error {
                    out.push(trace);
                }
            }
            minute -= 1;
        }
        out
    }

    fn sample_trace(&self, service: usize, t: i64) -> SampledTrace {
        let h = hash_words(&[self.seed, service as u64, t as u64, 0x7ace]);
        let mut spans = Vec::new();
        let trace_id = format!("{:016x}{:016x}", h, hash_words(&[h, 1]));
        self.sample_span(service, t * 1000, None, 0, h, &mut spans);
        let error = spans
            .first()
            .is_some_and(|s: &SampledSpan| s.status == "error");
        let duration_ms = spans.first().map_or(0.0, |s| s.duration_ms);
        SampledTrace {
            trace_id,
            root_service: self.topology.components[service].name.clone(),
            start_ms: t * 1000,
            duration_ms,
            error,
            spans,
        }
    }

    /// Appends the span for `component` and its callees; returns (errored, duration_ms).
    fn sample_span(
        &self,
        component: usize,
        start_ms: i64,
        parent: Option<String>,
        depth: u32,
        h: u64,
        spans: &mut Vec<SampledSpan>,
    ) -> (bool, f64) {
        let t = start_ms / 1000;
        let c = &self.topology.components[component];
        let span_hash = hash_words(&[h, component as u64, depth as u64]);
        let span_id = format!("{:016x}", span_hash);
        let index = spans.len();
        spans.push(SampledSpan {
            span_id: span_id.clone(),
            parent_span_id: parent,
            service: c.name.clone(),
            operation: if c.kind.is_datastore() {
                format!("{} query", c.technology.split(' ').next().unwrap_or("db"))
            } else {
                format!("HTTP POST /v1/{}", c.name)
            },
            start_ms,
            duration_ms: 0.0,
            status: "ok",
            message: None,
        });
        let mut child_error: Option<String> = None;
        let mut elapsed = 0.0;
        if depth < 3 && spans.len() < MAX_SPANS_PER_SAMPLED_TRACE {
            for &callee in &c.calls {
                let (errored, duration) = self.sample_span(
                    callee,
                    start_ms + elapsed as i64,
                    Some(span_id.clone()),
                    depth + 1,
                    h,
                    spans,
                );
                elapsed += duration;
                if errored && child_error.is_none() {
                    child_error = Some(self.topology.components[callee].name.clone());
                }
            }
        }
        let own_latency_s = self.metric_value_filtered(component, Metric::LatencyP50, t, false);
        let jitter = 0.7 + 0.6 * unit_from_hash(hash_words(&[span_hash, 2]));
        let own_ms = own_latency_s * 1000.0 * jitter;
        let mut own_error_level =
            self.metric_value_filtered(component, Metric::ErrorRatio, t, false);
        let mut own_message = "internal error".to_string();
        if let Some(incident) = self.active_root_incident(component, t) {
            own_message = root_span_message(incident.kind, &c.name);
            if matches!(
                incident.kind,
                FaultKind::DnsFailure | FaultKind::CertificateExpiry
            ) {
                own_error_level = own_error_level.max(0.6);
            }
            if incident.kind == FaultKind::ConnectionPoolExhaustion {
                own_error_level = own_error_level.max(0.3);
            }
        }
        let roll = unit_from_hash(hash_words(&[span_hash, 3]));
        let (status, message) = if roll < own_error_level {
            ("error", Some(own_message))
        } else if let Some(child) = child_error.filter(|_| roll < 0.9) {
            ("error", Some(format!("upstream {child} failed")))
        } else {
            ("ok", None)
        };
        let duration_ms = ((own_ms + elapsed) * 1000.0).round() / 1000.0;
        let span = &mut spans[index];
        span.duration_ms = duration_ms;
        span.status = status;
        span.message = message;
        (status == "error", duration_ms)
    }

    pub fn logs_len(&self) -> usize {
        self.logs.len()
    }

    /// Where component names appear in telemetry, keyed by name.
    pub fn names(&self) -> HashMap<&str, usize> {
        self.topology
            .components
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.as_str(), i))
            .collect()
    }
}

fn root_span_message(kind: FaultKind, name: &str) -> String {
    match kind {
        FaultKind::DnsFailure => format!("dial tcp: lookup {name}: no such host"),
        FaultKind::CertificateExpiry => {
            "x509: certificate has expired or is not yet valid".to_string()
        }
        FaultKind::ConnectionPoolExhaustion => {
            "FATAL: remaining connection slots are reserved".to_string()
        }
        FaultKind::DiskFull => "could not extend file: No space left on device".to_string(),
        FaultKind::DataCorruption => "invalid input syntax for type uuid".to_string(),
        FaultKind::OomKill => "connection reset: container restarted (OOMKilled)".to_string(),
        FaultKind::NodeFailure => "connect: connection refused".to_string(),
        FaultKind::PacketLoss => "read: connection reset by peer".to_string(),
        _ => "internal error".to_string(),
    }
}

/// The effects on one component: bounded ones sorted by start (with the longest span, so a lookup
/// only scans a window), and counters, which never stop counting.
#[derive(Debug, Clone, Default)]
struct ComponentEffects {
    windowed: Vec<Effect>,
    longest: i64,
    counters: Vec<Effect>,
}

/// Sampled traces stop descending once they have this many spans.
const MAX_SPANS_PER_SAMPLED_TRACE: usize = 24;

/// A request trace sampled from the world (not the agent's own trace).
#[derive(Debug, Clone, Serialize)]
pub struct SampledTrace {
    pub trace_id: String,
    pub root_service: String,
    pub start_ms: i64,
    pub duration_ms: f64,
    pub error: bool,
    pub spans: Vec<SampledSpan>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SampledSpan {
    pub span_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    pub service: String,
    pub operation: String,
    pub start_ms: i64,
    pub duration_ms: f64,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A parsed log search: `service:a,b level:warn pod:x "some phrase" word`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogFilter {
    pub services: Option<Vec<String>>,
    pub pods: Option<Vec<String>>,
    pub min_level: LogLevel,
    /// Lowercased substrings that must all appear in the message.
    pub terms: Vec<String>,
}

impl LogFilter {
    pub fn parse(query: &str) -> LogFilter {
        let mut filter = LogFilter {
            services: None,
            pods: None,
            min_level: LogLevel::Info,
            terms: Vec::new(),
        };
        let mut rest = query.trim();
        while !rest.is_empty() {
            let token;
            if let Some(stripped) = rest.strip_prefix('"') {
                let close = stripped.find('"').unwrap_or(stripped.len());
                token = &stripped[..close];
                rest = stripped.get(close + 1..).unwrap_or("").trim_start();
                if !token.is_empty() {
                    filter.terms.push(token.to_lowercase());
                }
                continue;
            }
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            token = &rest[..end];
            rest = rest[end..].trim_start();
            let split = token.split_once(':').or_else(|| token.split_once('='));
            match split {
                Some(("service", v)) => {
                    filter.services = Some(
                        v.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect(),
                    )
                }
                Some(("pod", v)) => filter.pods = Some(v.split(',').map(str::to_string).collect()),
                Some(("level", v)) => {
                    filter.min_level = match v.to_ascii_lowercase().as_str() {
                        "warn" | "warning" => LogLevel::Warn,
                        "error" | "err" => LogLevel::Error,
                        "fatal" | "critical" => LogLevel::Fatal,
                        _ => LogLevel::Info,
                    }
                }
                _ => filter.terms.push(token.to_lowercase()),
            }
        }
        filter
    }

    fn matches(&self, world: &World, line: &LogLine) -> bool {
        self.accepts(
            &world.topology.components[line.component].name,
            &line.pod,
            line.level,
            &line.message,
        )
    }

    /// Whether a line of `service`'s `pod` at `level` saying `message` passes the filter.
    pub fn accepts(&self, service: &str, pod: &str, level: LogLevel, message: &str) -> bool {
        if level < self.min_level {
            return false;
        }
        if let Some(services) = &self.services
            && !services.iter().any(|s| s == service)
        {
            return false;
        }
        if let Some(pods) = &self.pods
            && !pods.iter().any(|p| p == pod)
        {
            return false;
        }
        if self.terms.is_empty() {
            return true;
        }
        let message = message.to_lowercase();
        self.terms.iter().all(|t| message.contains(t.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_filter_parses_fields_phrases_and_words() {
        let f = LogFilter::parse("service:checkout,payments level:error \"no such host\" lookup");
        assert_eq!(
            f.services,
            Some(vec!["checkout".to_string(), "payments".to_string()])
        );
        assert_eq!(f.min_level, LogLevel::Error);
        assert_eq!(
            f.terms,
            vec!["no such host".to_string(), "lookup".to_string()]
        );
    }

    #[test]
    fn world_is_deterministic_and_incidents_are_ordered() {
        let config = WorldConfig {
            seed: 5,
            incidents: 30,
            services: Some(40),
            timeline_end: DEFAULT_TIMELINE_END,
        };
        let a = World::generate(config);
        let b = World::generate(config);
        assert_eq!(a.incidents.len(), 30);
        for (x, y) in a.incidents.iter().zip(&b.incidents) {
            assert_eq!(
                (x.kind, x.root, x.onset, x.fired_at),
                (y.kind, y.root, y.onset, y.fired_at)
            );
        }
        assert!(a.incidents.windows(2).all(|w| w[0].onset < w[1].onset));
        assert!(a.incidents.last().is_some_and(|i| i.end + 3600 <= a.end));
        let t = a.incidents[0].onset;
        assert_eq!(
            a.metric_value(3, Metric::Cpu, t),
            b.metric_value(3, Metric::Cpu, t)
        );
    }
}
