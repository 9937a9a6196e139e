//! What a world snapshot shows about each entity: change points in metric series, error bursts in
//! logs, deploy/config/infrastructure events, and the topology (kinds and call graph). Read from
//! the frozen query results by their shape, so any source that answers in the Prometheus matrix
//! format or with JSON rows of `service`/`message` works.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use evalmint_model::{SignalSource, SnapshotQuery, Timestamp};
use serde_json::Value;

/// A sustained shift in one metric series of one entity.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    pub query_id: String,
    pub metric: String,
    pub onset: Timestamp,
    /// Shift in units of the baseline's spread.
    pub strength: f64,
    /// Shift relative to the baseline level.
    pub relative: f64,
    /// The level went up (rather than down).
    pub rising: bool,
}

/// A log line or event tied to an entity.
#[derive(Debug, Clone, PartialEq)]
pub struct Mention {
    pub query_id: String,
    pub at: Option<Timestamp>,
    /// `error`/`fatal` for logs; the event kind for events.
    pub kind: String,
    pub text: String,
}

/// Everything the snapshot says about one entity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntitySignals {
    pub anomalies: Vec<Anomaly>,
    pub error_logs: Vec<Mention>,
    pub events: Vec<Mention>,
    /// Other entities this one's own errors name as failing ("lookup payments-db: no such
    /// host"), with how often: a sign that this entity is a victim, not the cause.
    pub blames: BTreeMap<String, usize>,
    /// Failing request traces whose deepest failing span, the one whose children all succeed,
    /// is this entity's: trace-derived blame.
    pub trace_blames: Vec<Mention>,
    /// Its errors were as frequent before the trouble as during it: chronic noise, not a change.
    pub chronic: bool,
}

impl EntitySignals {
    /// How strongly the snapshot says something happened here.
    pub fn strength(&self) -> f64 {
        let anomaly = self
            .anomalies
            .iter()
            .map(|a| (a.strength / 8.0).min(1.0) * (a.relative.min(2.0) / 2.0 + 0.5))
            .fold(0.0, f64::max);
        // Errors that were there before the trouble say little about it.
        let chronic = if self.chronic { 0.2 } else { 1.0 };
        let logs = (self.error_logs.len() as f64 / 5.0).min(1.0) * 0.6 * chronic;
        let traces = (self.trace_blames.len() as f64 / 3.0).min(1.0) * 0.8 * chronic;
        let events = if self.events.iter().any(|e| {
            matches!(
                e.kind.as_str(),
                "deploy" | "config" | "infra" | "kubernetes"
            )
        }) {
            0.4
        } else {
            0.0
        };
        anomaly + logs + traces + events
    }

    /// When trouble started here: the earliest change point or error (errors that were there all
    /// along start nothing).
    pub fn onset(&self) -> Option<Timestamp> {
        let errors = (!self.chronic).then_some(&self.error_logs);
        self.anomalies
            .iter()
            .map(|a| a.onset)
            .chain(errors.into_iter().flatten().filter_map(|m| m.at))
            .min()
    }

    pub fn signal_kinds(&self) -> BTreeSet<SignalSource> {
        let mut kinds = BTreeSet::new();
        if !self.anomalies.is_empty() {
            kinds.insert(SignalSource::Metrics);
        }
        if !self.error_logs.is_empty() {
            kinds.insert(SignalSource::Logs);
        }
        if !self.events.is_empty() {
            kinds.insert(SignalSource::Events);
        }
        if !self.trace_blames.is_empty() {
            kinds.insert(SignalSource::Traces);
        }
        kinds
    }

    pub fn query_ids(&self) -> BTreeSet<String> {
        self.anomalies
            .iter()
            .map(|a| a.query_id.clone())
            .chain(self.error_logs.iter().map(|m| m.query_id.clone()))
            .chain(self.events.iter().map(|m| m.query_id.clone()))
            .chain(self.trace_blames.iter().map(|m| m.query_id.clone()))
            .collect()
    }

    /// Text evidence (log messages, events), for the category lexicon.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.error_logs
            .iter()
            .chain(&self.events)
            .chain(&self.trace_blames)
            .map(|m| m.text.as_str())
    }
}

/// The entity dictionary and per-entity signals of one snapshot.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// Known entity names (services, datastores, topics, …), lowercase.
    pub entities: BTreeSet<String>,
    /// Entity kind from the topology (`frontend`, `service`, `postgres`, `redis`, …).
    pub kinds: HashMap<String, String>,
    /// Caller → callees.
    pub calls: BTreeMap<String, BTreeSet<String>>,
    /// Entity → the team that owns it, from the topology.
    pub teams: BTreeMap<String, String>,
    pub signals: BTreeMap<String, EntitySignals>,
    /// Pod or instance name → the entity it belongs to.
    pods: HashMap<String, String>,
}

/// The least stretch of errors before the reference that says what is usual (seconds).
const MIN_BASELINE_SECS: f64 = 300.0;

const ENTITY_LABELS: &[&str] = &[
    "service",
    "database",
    "db",
    "topic",
    "consumer_group",
    "consumergroup",
    "component",
    "job",
];

impl Evidence {
    /// Reads every captured result of the snapshot. `results` pairs each query with its bytes.
    pub fn extract(
        results: &[(SnapshotQuery, Option<Vec<u8>>)],
        extra_entities: &[String],
    ) -> Self {
        let mut evidence = Evidence::default();
        for name in extra_entities {
            evidence.add_entity(name);
        }
        let parsed: Vec<(&SnapshotQuery, Value)> = results
            .iter()
            .filter_map(|(q, bytes)| Some((q, serde_json::from_slice(bytes.as_deref()?).ok()?)))
            .collect();
        // Topology first, so kinds and pods are known when reading signals.
        for (_, value) in &parsed {
            evidence.read_topology(value);
        }
        for (query, value) in &parsed {
            evidence.read_signals(query, value);
        }
        evidence
    }

    fn add_entity(&mut self, name: &str) {
        let name = name.trim().to_ascii_lowercase();
        if name.len() >= 2 {
            self.entities.insert(name);
        }
    }

    fn read_topology(&mut self, value: &Value) {
        visit_objects(value, &mut |object| {
            let Some(name) = object.get("name").and_then(Value::as_str) else {
                return;
            };
            if !(object.contains_key("calls") || object.contains_key("callers")) {
                return;
            }
            let name = name.to_ascii_lowercase();
            self.add_entity(&name);
            if let Some(kind) = object.get("kind").and_then(Value::as_str) {
                self.kinds.insert(name.clone(), kind.to_ascii_lowercase());
            }
            if let Some(team) = object.get("team").and_then(Value::as_str) {
                self.teams.insert(name.clone(), team.to_owned());
            }
            for callee in strings(object.get("calls")) {
                self.calls
                    .entry(name.clone())
                    .or_default()
                    .insert(callee.to_ascii_lowercase());
            }
            for caller in strings(object.get("callers")) {
                self.calls
                    .entry(caller.to_ascii_lowercase())
                    .or_default()
                    .insert(name.clone());
            }
            for pod in strings(object.get("pods")) {
                self.pods.insert(pod.to_ascii_lowercase(), name.clone());
            }
            if let Some(pods) = object.get("pods").and_then(Value::as_array) {
                for pod in pods
                    .iter()
                    .filter_map(|p| p.get("name").and_then(Value::as_str))
                {
                    self.pods.insert(pod.to_ascii_lowercase(), name.clone());
                }
            }
            if let Some(consumes) = object.get("consumes").and_then(Value::as_object) {
                for key in ["topic", "consumer_group"] {
                    if let Some(v) = consumes.get(key).and_then(Value::as_str) {
                        self.add_entity(v);
                    }
                }
            }
        });
    }

    /// The entity a label value or row names: a known entity, or the owner of a known pod.
    fn entity_of(&mut self, name: &str) -> String {
        let name = name.to_ascii_lowercase();
        if let Some(owner) = self.pods.get(&name) {
            return owner.clone();
        }
        if !self.entities.contains(&name)
            && let Some(owner) = self
                .entities
                .iter()
                .filter(|e| name.starts_with(&format!("{e}-")))
                .max_by_key(|e| e.len())
        {
            return owner.clone();
        }
        self.add_entity(&name);
        name
    }

    fn read_signals(&mut self, query: &SnapshotQuery, value: &Value) {
        let mut series = Vec::new();
        let mut rows = Vec::new();
        let mut traces = Vec::new();
        visit_objects(value, &mut |object| {
            if let Some(spans) = object.get("spans").and_then(Value::as_array) {
                traces.push(spans.clone());
            }
            if let (Some(metric), Some(values)) = (
                object.get("metric").and_then(Value::as_object),
                object.get("values").and_then(Value::as_array),
            ) {
                series.push((metric.clone(), values.clone()));
            } else if object.contains_key("service")
                && (object.contains_key("message") || object.contains_key("kind"))
            {
                rows.push(object.clone());
            }
        });
        for (labels, values) in series {
            let Some(entity_name) = ENTITY_LABELS
                .iter()
                .find_map(|l| labels.get(*l).and_then(Value::as_str))
                .or_else(|| {
                    ["pod", "instance", "host"]
                        .iter()
                        .find_map(|l| labels.get(*l).and_then(Value::as_str))
                })
            else {
                continue;
            };
            let entity = self.entity_of(entity_name);
            let metric = labels
                .get("__name__")
                .and_then(Value::as_str)
                .map_or_else(|| metric_name(&query.query), str::to_owned);
            let points: Vec<(Timestamp, f64)> = values.iter().filter_map(point).collect();
            if let Some(mut anomaly) = change_point(&points) {
                anomaly.query_id = query.id.clone();
                anomaly.metric = metric;
                self.signals
                    .entry(entity)
                    .or_default()
                    .anomalies
                    .push(anomaly);
            }
        }
        for spans in traces {
            self.read_trace(query, &spans);
        }
        for row in rows {
            if row.contains_key("span_id") && row.contains_key("status") {
                // A span of a trace, read above.
                continue;
            }
            let Some(service) = row.get("service").and_then(Value::as_str) else {
                continue;
            };
            let entity = self.entity_of(service);
            let at = row
                .get("timestamp")
                .or_else(|| row.get("time"))
                .and_then(Value::as_str)
                .and_then(|t| t.parse().ok());
            let text = ["message", "reason"]
                .iter()
                .filter_map(|k| row.get(*k).and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(" ");
            let named_in_text = self.entities_named_in(&text, &entity);
            if let Some(kind) = row.get("kind").and_then(Value::as_str) {
                self.signals
                    .entry(entity)
                    .or_default()
                    .events
                    .push(Mention {
                        query_id: query.id.clone(),
                        at,
                        kind: kind.to_owned(),
                        text,
                    });
            } else {
                let level = row
                    .get("level")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_ascii_lowercase();
                if matches!(level.as_str(), "error" | "fatal" | "critical" | "panic") {
                    let mention = Mention {
                        query_id: query.id.clone(),
                        at,
                        kind: level,
                        text,
                    };
                    // An error that names another component ("lookup payments-db: no such
                    // host") is evidence about that component, and says the logger is a victim.
                    if named_in_text.is_empty() {
                        self.signals
                            .entry(entity)
                            .or_default()
                            .error_logs
                            .push(mention);
                    } else {
                        let logger = self.signals.entry(entity).or_default();
                        for named in &named_in_text {
                            *logger.blames.entry(named.clone()).or_default() += 1;
                        }
                        for named in named_in_text {
                            self.signals
                                .entry(named)
                                .or_default()
                                .error_logs
                                .push(mention.clone());
                        }
                    }
                }
            }
        }
    }

    /// Trace-derived blame: in a failing trace, the deepest failing span (none of whose children
    /// fail) is where the failure began; the failing spans above it are victims.
    fn read_trace(&mut self, query: &SnapshotQuery, spans: &[Value]) {
        let field = |span: &Value, names: &[&str]| {
            names
                .iter()
                .find_map(|n| span.get(*n).and_then(Value::as_str))
                .map(str::to_owned)
        };
        let failed = |span: &Value| {
            span.get("error").and_then(Value::as_bool) == Some(true)
                || field(span, &["status", "status_code", "statusCode"]).is_some_and(|s| {
                    let s = s.to_ascii_lowercase();
                    s == "error" || s == "status_code_error" || s == "failed"
                })
        };
        struct Span {
            id: String,
            parent: Option<String>,
            service: String,
            failed: bool,
            at: Option<Timestamp>,
            message: String,
        }
        let parsed: Vec<Span> = spans
            .iter()
            .filter_map(|span| {
                Some(Span {
                    id: field(span, &["span_id", "spanId", "spanID"])?,
                    parent: field(span, &["parent_span_id", "parentSpanId", "parent_id"]),
                    service: field(span, &["service", "service_name", "serviceName"])?,
                    failed: failed(span),
                    at: span
                        .get("start_ms")
                        .and_then(Value::as_i64)
                        .and_then(|ms| Timestamp::from_millisecond(ms).ok()),
                    message: field(span, &["message", "status_message"]).unwrap_or_default(),
                })
            })
            .collect();
        let failing_parents: BTreeSet<&str> = parsed
            .iter()
            .filter(|s| s.failed)
            .filter_map(|s| s.parent.as_deref())
            .collect();
        let mut culprits: BTreeMap<String, &Span> = BTreeMap::new();
        for span in parsed.iter().filter(|s| s.failed) {
            if !failing_parents.contains(span.id.as_str()) {
                let entity = self.entity_of(&span.service);
                culprits.entry(entity).or_insert(span);
            }
        }
        let victims: BTreeSet<String> = parsed
            .iter()
            .filter(|s| s.failed && failing_parents.contains(s.id.as_str()))
            .map(|s| s.service.to_ascii_lowercase())
            .collect();
        for (entity, span) in &culprits {
            self.signals
                .entry(entity.clone())
                .or_default()
                .trace_blames
                .push(Mention {
                    query_id: query.id.clone(),
                    at: span.at,
                    kind: "trace".to_owned(),
                    text: span.message.clone(),
                });
            for victim in victims.iter().filter(|v| *v != entity) {
                let victim = self.entity_of(victim);
                *self
                    .signals
                    .entry(victim)
                    .or_default()
                    .blames
                    .entry(entity.clone())
                    .or_default() += 1;
            }
        }
    }

    /// Marks the entities whose errors are no more frequent from `reference` on than before it
    /// (a rate, so a busy service's steady errors do not count as a change). Judged only where
    /// the snapshot's errors cover a stretch before `reference`.
    pub fn weigh_change(&mut self, reference: Timestamp) {
        let times: Vec<Timestamp> = self
            .signals
            .values()
            .flat_map(|s| s.error_logs.iter().chain(&s.trace_blames))
            .filter_map(|m| m.at)
            .collect();
        let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) else {
            return;
        };
        let before_span = reference.duration_since(*first).as_secs_f64();
        let after_span = last.duration_since(reference).as_secs_f64().max(60.0);
        if before_span < MIN_BASELINE_SECS {
            return;
        }
        for signals in self.signals.values_mut() {
            let (mut before, mut after) = (0.0, 0.0);
            for at in signals
                .error_logs
                .iter()
                .chain(&signals.trace_blames)
                .filter_map(|m| m.at)
            {
                if at < reference {
                    before += 1.0;
                } else {
                    after += 1.0;
                }
            }
            signals.chronic = before >= 2.0 && after / after_span <= 2.0 * before / before_span;
        }
    }

    /// Known entities other than `except` that `text` names as whole words.
    fn entities_named_in(&self, text: &str, except: &str) -> Vec<String> {
        let lower = text.to_ascii_lowercase();
        let is_word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        self.entities
            .iter()
            .filter(|e| e.as_str() != except && e.len() >= 3)
            .filter(|e| {
                lower.match_indices(e.as_str()).any(|(start, _)| {
                    let end = start + e.len();
                    lower[..start]
                        .chars()
                        .next_back()
                        .is_none_or(|c| !is_word(c))
                        && lower[end..].chars().next().is_none_or(|c| !is_word(c))
                })
            })
            .cloned()
            .collect()
    }

    /// Entities reachable downstream of `from` in the call graph, with their distance.
    pub fn downstream(&self, from: &str) -> BTreeMap<String, usize> {
        let mut seen = BTreeMap::new();
        let mut frontier = vec![from.to_owned()];
        let mut depth = 0;
        while !frontier.is_empty() && depth < 12 {
            depth += 1;
            let mut next = Vec::new();
            for node in frontier {
                for callee in self.calls.get(&node).into_iter().flatten() {
                    if !seen.contains_key(callee) && callee != from {
                        seen.insert(callee.clone(), depth);
                        next.push(callee.clone());
                    }
                }
            }
            frontier = next;
        }
        seen
    }

    /// A call path from `from` down to `to`, both included, if the topology has one.
    pub fn path(&self, from: &str, to: &str) -> Option<Vec<String>> {
        if from == to {
            return Some(vec![from.to_owned()]);
        }
        let mut parent: HashMap<String, String> = HashMap::new();
        let mut frontier = vec![from.to_owned()];
        while !frontier.is_empty() {
            let mut next = Vec::new();
            for node in frontier {
                for callee in self.calls.get(&node).into_iter().flatten() {
                    if callee != from && !parent.contains_key(callee) {
                        parent.insert(callee.clone(), node.clone());
                        if callee == to {
                            let mut path = vec![to.to_owned()];
                            let mut at = to.to_owned();
                            while let Some(p) = parent.get(&at) {
                                path.push(p.clone());
                                at = p.clone();
                            }
                            path.reverse();
                            return Some(path);
                        }
                        next.push(callee.clone());
                    }
                }
            }
            frontier = next;
        }
        None
    }

    /// How well the snapshot supports `key` as the cause among suspects whose earliest onset is
    /// `earliest`: its signal strength, plus a half when its trouble started first (symptoms
    /// follow their cause).
    pub fn support(&self, key: &str, earliest: Option<Timestamp>) -> f64 {
        let Some(signals) = self.signals.get(key) else {
            return 0.0;
        };
        let first = match (signals.onset(), earliest) {
            (Some(onset), Some(earliest)) if onset <= earliest => 0.5,
            _ => 0.0,
        };
        signals.strength() + first
    }

    /// Every entity with signals, best supported first (ties by name): what the evidence alone,
    /// with no text to go by, says the cause is.
    pub fn ranking(&self) -> Vec<(String, f64)> {
        let pool: Vec<&String> = self
            .signals
            .iter()
            .filter(|(_, s)| s.strength() > 0.0)
            .map(|(e, _)| e)
            .collect();
        let earliest = pool
            .iter()
            .filter_map(|e| self.signals.get(*e)?.onset())
            .min();
        let mut ranked: Vec<(String, f64)> = pool
            .into_iter()
            .map(|e| (e.clone(), self.support(e, earliest)))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked
    }

    /// Instances (pods, replicas) the topology lists, with the entity each belongs to.
    pub fn instances(&self) -> impl Iterator<Item = (&String, &String)> {
        self.pods.iter()
    }

    pub fn kind_of(&self, entity: &str) -> Option<&str> {
        self.kinds.get(entity).map(String::as_str)
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn visit_objects(value: &Value, visit: &mut dyn FnMut(&serde_json::Map<String, Value>)) {
    match value {
        Value::Object(map) => {
            visit(map);
            for child in map.values() {
                visit_objects(child, visit);
            }
        }
        Value::Array(items) => {
            for item in items {
                visit_objects(item, visit);
            }
        }
        _ => {}
    }
}

/// `[unix seconds, "value"]`, the Prometheus matrix point.
fn point(value: &Value) -> Option<(Timestamp, f64)> {
    let pair = value.as_array()?;
    let seconds = pair.first()?.as_f64()?;
    let sample = match pair.get(1)? {
        Value::String(s) => s.parse().ok()?,
        other => other.as_f64()?,
    };
    let at = Timestamp::from_nanosecond((seconds * 1e9) as i128).ok()?;
    sample.is_finite().then_some((at, sample))
}

/// The metric name at the head of a PromQL expression's innermost selector.
fn metric_name(query: &str) -> String {
    let selector = query.split(['{', '[']).next().unwrap_or(query);
    selector
        .rsplit(|c: char| c == '(' || c.is_whitespace() || c == ',')
        .find(|s| !s.is_empty())
        .unwrap_or(query)
        .trim()
        .to_owned()
}

/// The strongest single shift in a series: the split that best separates a stable baseline from
/// what follows, if it is large against the baseline's own noise and level.
pub(crate) fn change_point(points: &[(Timestamp, f64)]) -> Option<Anomaly> {
    const MIN_SIDE: usize = 3;
    if points.len() < 2 * MIN_SIDE {
        return None;
    }
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    let mut best: Option<(usize, f64, f64, bool)> = None;
    for split in MIN_SIDE..=values.len() - MIN_SIDE {
        let (before, after) = values.split_at(split);
        let (mean_before, spread_before) = mean_and_spread(before);
        let (mean_after, _) = mean_and_spread(after);
        let shift = (mean_after - mean_before).abs();
        let noise = spread_before + 0.02 * mean_before.abs() + 1e-9;
        let strength = shift / noise;
        let relative = shift / (mean_before.abs() + 1e-6);
        if best.is_none_or(|(_, s, _, _)| strength > s) {
            best = Some((split, strength, relative, mean_after > mean_before));
        }
    }
    let (split, strength, relative, rising) = best?;
    (strength >= 4.0 && relative >= 0.25).then(|| Anomaly {
        query_id: String::new(),
        metric: String::new(),
        onset: points[split].0,
        strength,
        relative,
        rising,
    })
}

fn mean_and_spread(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, variance.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[f64]) -> Vec<(Timestamp, f64)> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                (
                    Timestamp::from_second(1_767_225_600 + 60 * i as i64).unwrap(),
                    *v,
                )
            })
            .collect()
    }

    #[test]
    fn a_step_is_found_at_its_onset_and_noise_is_not() {
        let step = series(&[1.0, 1.1, 0.9, 1.0, 1.05, 5.0, 5.2, 4.9, 5.1]);
        let anomaly = change_point(&step).unwrap();
        assert_eq!(anomaly.onset, step[5].0);
        let flat = series(&[1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 1.02, 0.98, 1.0]);
        assert!(change_point(&flat).is_none());
        assert!(
            change_point(&series(&[1.0, 9.0])).is_none(),
            "too short to judge"
        );
    }

    #[test]
    fn topology_and_signals_are_read_from_results_by_shape() {
        let query = |id: &str| SnapshotQuery {
            status: evalmint_model::CaptureStatus::Captured,
            ..SnapshotQuery::pending(
                id.into(),
                "s".into(),
                SignalSource::Metrics,
                "t".into(),
                "rate(http_errors_total[5m])".into(),
                Timestamp::UNIX_EPOCH,
                Timestamp::UNIX_EPOCH,
            )
        };
        let topology = serde_json::json!({"data": {"services": [
            {"name": "checkout", "kind": "frontend", "calls": ["payments"], "callers": [], "pods": ["checkout-7f9c"]},
            {"name": "payments", "kind": "service", "calls": ["payments-db"], "callers": ["checkout"]},
            {"name": "payments-db", "kind": "postgres", "calls": [], "callers": ["payments"]}
        ]}});
        let matrix = serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"pod": "checkout-7f9c"}, "values": [[1767225600, "1"], [1767225660, "1"], [1767225720, "1.1"], [1767225780, "9"], [1767225840, "9"], [1767225900, "9.2"]]}
        ]}});
        let logs = serde_json::json!({"data": {"result": [
            {"timestamp": "2026-01-01T00:03:00Z", "service": "payments-db", "level": "fatal", "message": "FATAL: remaining connection slots are reserved"},
            {"timestamp": "2026-01-01T00:01:00Z", "service": "payments-db", "level": "info", "message": "checkpoint complete"}
        ]}});
        let evidence = Evidence::extract(
            &[
                (query("q1"), Some(topology.to_string().into_bytes())),
                (query("q2"), Some(matrix.to_string().into_bytes())),
                (query("q3"), Some(logs.to_string().into_bytes())),
            ],
            &[],
        );
        assert_eq!(evidence.kind_of("payments-db"), Some("postgres"));
        assert_eq!(
            evidence.path("checkout", "payments-db").unwrap(),
            ["checkout", "payments", "payments-db"]
        );
        let checkout = &evidence.signals["checkout"];
        assert_eq!(
            checkout.anomalies.len(),
            1,
            "the pod's series belongs to its service"
        );
        assert_eq!(checkout.anomalies[0].metric, "http_errors_total");
        assert_eq!(evidence.signals["payments-db"].error_logs.len(), 1);
    }

    fn captured(id: &str, value: &Value) -> (SnapshotQuery, Option<Vec<u8>>) {
        let query = SnapshotQuery {
            status: evalmint_model::CaptureStatus::Captured,
            ..SnapshotQuery::pending(
                id.into(),
                "s".into(),
                SignalSource::Traces,
                "t".into(),
                "q".into(),
                Timestamp::UNIX_EPOCH,
                Timestamp::UNIX_EPOCH,
            )
        };
        (query, Some(value.to_string().into_bytes()))
    }

    #[test]
    fn a_failing_trace_blames_its_deepest_failing_span_and_its_callers_are_victims() {
        let traces = serde_json::json!({"data": {"result": [{"trace_id": "t1", "error": true, "spans": [
            {"span_id": "a", "service": "gateway", "status": "error", "start_ms": 1_767_225_600_000_i64},
            {"span_id": "b", "parent_span_id": "a", "service": "orders", "status": "error", "message": "upstream failed"},
            {"span_id": "c", "parent_span_id": "b", "service": "contacts", "status": "error", "message": "No contacts"},
            {"span_id": "d", "parent_span_id": "c", "service": "contacts-db", "status": "ok"},
            {"span_id": "e", "parent_span_id": "a", "service": "auth", "status": "ok"}
        ]}]}});
        let evidence = Evidence::extract(&[captured("q1", &traces)], &[]);
        let contacts = &evidence.signals["contacts"];
        assert_eq!(contacts.trace_blames.len(), 1);
        assert_eq!(contacts.trace_blames[0].text, "No contacts");
        assert!(contacts.signal_kinds().contains(&SignalSource::Traces));
        assert_eq!(evidence.signals["orders"].blames.get("contacts"), Some(&1));
        assert!(evidence.signals["gateway"].trace_blames.is_empty());
        assert!(!evidence.signals.contains_key("auth"));
        assert_eq!(evidence.ranking()[0].0, "contacts");
    }

    #[test]
    fn errors_as_frequent_before_the_alert_as_after_are_chronic() {
        let at = |minute: i64| jiff::Timestamp::from_second(1_767_225_600 + 60 * minute).unwrap();
        let line = |minute: i64, service: &str| serde_json::json!({"timestamp": at(minute).to_string(), "service": service, "level": "error", "message": "failed"});
        // `noisy` errs every few minutes all along; `root` only from minute 30.
        let mut rows: Vec<Value> = (0..40).step_by(4).map(|m| line(m, "noisy")).collect();
        rows.extend((30..40).map(|m| line(m, "root")));
        let logs = serde_json::json!({"data": {"result": rows}});
        let mut evidence = Evidence::extract(&[captured("q1", &logs)], &[]);
        let before = evidence.signals["noisy"].strength();
        evidence.weigh_change(at(28));
        assert!(evidence.signals["noisy"].chronic);
        assert!(evidence.signals["noisy"].strength() < before);
        assert!(!evidence.signals["root"].chronic);
        assert_eq!(evidence.ranking()[0].0, "root");
    }
}
