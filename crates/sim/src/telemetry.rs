//! The telemetry API over a generated world: Prometheus-shaped metric queries, log search, events,
//! sampled traces, the topology listing and a `/metrics` scrape, each signal kind cut off at its
//! retention TTL relative to a controllable simulated clock.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::promql::{self, Series, SeriesSource};
use crate::recorded::RecordedWorld;
use crate::signals::{EventKind, Metric};
use crate::world::{LogFilter, World};

/// Simulated "now": wall-clock driven with an acceleration factor, or set explicitly.
#[derive(Debug)]
pub struct SimClock {
    state: Mutex<ClockState>,
}

#[derive(Debug, Clone, Copy)]
enum ClockState {
    Running {
        sim_origin_ms: i64,
        wall_origin: Instant,
        factor: f64,
    },
    Manual {
        now_ms: i64,
    },
}

impl SimClock {
    /// A clock that reads `sim_now_ms` now and then advances `factor` simulated seconds per second.
    pub fn running(sim_now_ms: i64, factor: f64) -> SimClock {
        SimClock {
            state: Mutex::new(ClockState::Running {
                sim_origin_ms: sim_now_ms,
                wall_origin: Instant::now(),
                factor,
            }),
        }
    }

    /// A clock that only moves when told to.
    pub fn manual(now_ms: i64) -> SimClock {
        SimClock {
            state: Mutex::new(ClockState::Manual { now_ms }),
        }
    }

    pub fn now_ms(&self) -> i64 {
        match *self.state.lock().expect("clock lock poisoned") {
            ClockState::Running {
                sim_origin_ms,
                wall_origin,
                factor,
            } => sim_origin_ms + (wall_origin.elapsed().as_secs_f64() * 1000.0 * factor) as i64,
            ClockState::Manual { now_ms } => now_ms,
        }
    }

    /// Stops the clock at `now_ms`.
    pub fn set(&self, now_ms: i64) {
        *self.state.lock().expect("clock lock poisoned") = ClockState::Manual { now_ms };
    }

    pub fn advance(&self, by_ms: i64) {
        let now = self.now_ms();
        let mut state = self.state.lock().expect("clock lock poisoned");
        *state = match *state {
            ClockState::Running { factor, .. } => ClockState::Running {
                sim_origin_ms: now + by_ms,
                wall_origin: Instant::now(),
                factor,
            },
            ClockState::Manual { .. } => ClockState::Manual {
                now_ms: now + by_ms,
            },
        };
    }
}

/// How long each signal kind is kept, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub metrics: i64,
    pub logs: i64,
    pub events: i64,
    pub traces: i64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            metrics: 15 * 86_400,
            logs: 7 * 86_400,
            events: 30 * 86_400,
            traces: 3 * 86_400,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid duration {0:?}: expected a number with a unit s, m, h, d or w (e.g. 15m, 7d)")]
pub struct DurationError(String);

/// Parses a positive duration (`30s`, `15m`, `2h`, `7d`, `1w`, `1h30m`) into whole seconds, with
/// evalmint's one duration grammar ([`evalmint_model::parse_duration`]).
pub fn parse_duration_secs(text: &str) -> Result<i64, DurationError> {
    evalmint_model::parse_duration(text)
        .map(|d| d.as_secs())
        .filter(|secs| *secs > 0)
        .ok_or_else(|| DurationError(text.to_string()))
}

/// An error answer of the telemetry API: a status and a Prometheus-style body.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    BadData(String),
    #[error("{0}")]
    NotFound(String),
    #[error("internal error")]
    Internal,
}

impl QueryError {
    fn status(&self) -> StatusCode {
        match self {
            QueryError::BadData(_) => StatusCode::BAD_REQUEST,
            QueryError::NotFound(_) => StatusCode::NOT_FOUND,
            QueryError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        let error_type = match self {
            QueryError::BadData(_) => "bad_data",
            QueryError::NotFound(_) => "not_found",
            QueryError::Internal => "internal",
        };
        (
            self.status(),
            Json(json!({"status": "error", "errorType": error_type, "error": self.to_string()})),
        )
            .into_response()
    }
}

/// Parses a time parameter: RFC 3339 or Unix seconds (fractions allowed). Returns milliseconds.
pub fn parse_time_ms(text: &str) -> Result<i64, QueryError> {
    if let Ok(seconds) = text.parse::<f64>() {
        return Ok((seconds * 1000.0).round() as i64);
    }
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| {
            QueryError::BadData(format!(
                "invalid time {text:?}: expected RFC 3339 or Unix seconds"
            ))
        })
}

pub fn rfc3339_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

const MAX_POINTS_PER_SERIES: i64 = 11_000;
const MAX_LIMIT: usize = 1_000;

/// What the telemetry API serves: the simulated world, or a recorded one.
#[derive(Debug, Clone)]
pub enum Backend {
    Simulated(Arc<World>),
    Recorded(Arc<RecordedWorld>),
}

impl Backend {
    fn series(&self) -> &dyn SeriesSource {
        match self {
            Backend::Simulated(world) => world.as_ref(),
            Backend::Recorded(world) => world.as_ref(),
        }
    }
}

/// The query side of the telemetry API, shared by the HTTP handlers and the in-process tools.
#[derive(Debug)]
pub struct TelemetryService {
    backend: Backend,
    clock: Arc<SimClock>,
    retention: Retention,
    /// The topology listing never changes; built once.
    services: std::sync::OnceLock<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RangeParams {
    pub query: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub step: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct InstantParams {
    pub query: Option<String>,
    pub time: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct LogParams {
    pub query: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
pub struct EventParams {
    pub service: Option<String>,
    pub kind: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
pub struct TraceParams {
    pub service: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub errors: Option<bool>,
    pub limit: Option<usize>,
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, QueryError> {
    value
        .as_deref()
        .ok_or_else(|| QueryError::BadData(format!("missing parameter {name:?}")))
}

/// Prometheus-style sample text, rounded to six decimals.
fn format_value(v: f64) -> String {
    if !v.is_finite() || v.abs() >= 1e12 {
        return if v.is_nan() {
            "NaN".to_string()
        } else if v.is_infinite() {
            if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
        } else {
            v.to_string()
        };
    }
    let micros = (v * 1e6).round() as i64;
    let (whole, fraction) = (micros / 1_000_000, (micros % 1_000_000).abs());
    let sign = if micros < 0 && whole == 0 { "-" } else { "" };
    if fraction == 0 {
        return format!("{sign}{whole}");
    }
    let mut text = format!("{sign}{whole}.{fraction:06}");
    while text.ends_with('0') {
        text.pop();
    }
    text
}

impl TelemetryService {
    pub fn new(world: Arc<World>, clock: Arc<SimClock>, retention: Retention) -> TelemetryService {
        TelemetryService::with_backend(Backend::Simulated(world), clock, retention)
    }

    /// The API over a recorded world; its clock decides what retention has cut.
    pub fn recorded(
        world: Arc<RecordedWorld>,
        clock: Arc<SimClock>,
        retention: Retention,
    ) -> TelemetryService {
        TelemetryService::with_backend(Backend::Recorded(world), clock, retention)
    }

    fn with_backend(backend: Backend, clock: Arc<SimClock>, retention: Retention) -> Self {
        TelemetryService {
            backend,
            clock,
            retention,
            services: std::sync::OnceLock::new(),
        }
    }

    /// The simulated world, when that is what is served.
    pub fn world(&self) -> Option<&Arc<World>> {
        match &self.backend {
            Backend::Simulated(world) => Some(world),
            Backend::Recorded(_) => None,
        }
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    pub fn clock(&self) -> &Arc<SimClock> {
        &self.clock
    }

    /// The window still retained for a signal with `ttl_secs`, clipped to `[start_ms, end_ms]`.
    fn retained(&self, ttl_secs: i64, start_ms: i64, end_ms: i64) -> Option<(i64, i64)> {
        let now = self.clock.now_ms();
        let start = start_ms.max(now - ttl_secs * 1000);
        let end = end_ms.min(now);
        (start <= end).then_some((start, end))
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn query_range(&self, params: &RangeParams) -> Result<Value, QueryError> {
        let query = required(&params.query, "query")?;
        let start = parse_time_ms(required(&params.start, "start")?)?;
        let end = parse_time_ms(required(&params.end, "end")?)?;
        let step_text = required(&params.step, "step")?;
        let step_ms = match step_text.parse::<f64>() {
            Ok(s) => (s * 1000.0) as i64,
            Err(_) => {
                parse_duration_secs(step_text).map_err(|e| QueryError::BadData(e.to_string()))?
                    * 1000
            }
        };
        if step_ms <= 0 {
            return Err(QueryError::BadData("step must be positive".into()));
        }
        if end < start {
            return Err(QueryError::BadData("end is before start".into()));
        }
        if end.saturating_sub(start) / step_ms >= MAX_POINTS_PER_SERIES {
            return Err(QueryError::BadData(
                "exceeded maximum resolution of 11,000 points per timeseries".into(),
            ));
        }
        let expr = promql::parse(query).map_err(|e| QueryError::BadData(e.to_string()))?;
        let mut times_ms = Vec::new();
        if let Some((from, to)) = self.retained(self.retention.metrics, start, end) {
            let mut t = start;
            while t <= end {
                if t >= from && t <= to {
                    times_ms.push(t);
                }
                let Some(next) = t.checked_add(step_ms) else {
                    break;
                };
                t = next;
            }
        }
        let times: Vec<i64> = times_ms.iter().map(|t| t.div_euclid(1000)).collect();
        let series = promql::evaluate(self.backend.series(), &expr, &times)
            .map_err(|e| QueryError::BadData(e.to_string()))?;
        let result: Vec<Value> = if times.is_empty() {
            Vec::new()
        } else {
            series
                .into_iter()
                .filter_map(|s| matrix_entry(s, &times_ms))
                .collect()
        };
        Ok(json!({"status": "success", "data": {"resultType": "matrix", "result": result}}))
    }

    pub fn query_instant(&self, params: &InstantParams) -> Result<Value, QueryError> {
        let query = required(&params.query, "query")?;
        let time = match &params.time {
            Some(t) => parse_time_ms(t)?,
            None => self.now_ms(),
        };
        let expr = promql::parse(query).map_err(|e| QueryError::BadData(e.to_string()))?;
        let result: Vec<Value> = match self.retained(self.retention.metrics, time, time) {
            None => Vec::new(),
            Some(_) => promql::evaluate(self.backend.series(), &expr, &[time.div_euclid(1000)])
                .map_err(|e| QueryError::BadData(e.to_string()))?
                .into_iter()
                .filter(|s| !s.values[0].is_nan())
                .map(|s| json!({"metric": s.labels, "value": [time as f64 / 1000.0, format_value(s.values[0])]}))
                .collect(),
        };
        Ok(json!({"status": "success", "data": {"resultType": "vector", "result": result}}))
    }

    pub fn search_logs(&self, params: &LogParams) -> Result<Value, QueryError> {
        let query = params.query.as_deref().unwrap_or("");
        let start = parse_time_ms(required(&params.start, "start")?)?;
        let end = parse_time_ms(required(&params.end, "end")?)?;
        let limit = params.limit.unwrap_or(100).min(MAX_LIMIT);
        let filter = LogFilter::parse(query);
        let retained = self.retained(self.retention.logs, start, end);
        let result: Vec<Value> = match (&self.backend, retained) {
            (_, None) => Vec::new(),
            (Backend::Simulated(world), Some((from, to))) => {
                let components = &world.topology.components;
                world
                    .search_logs(&filter, from, to, limit)
                    .iter()
                    .map(|l| {
                        json!({
                            "timestamp": rfc3339_ms(l.time_ms),
                            "service": components[l.component].name,
                            "pod": l.pod,
                            "level": l.level.as_str(),
                            "message": l.message,
                        })
                    })
                    .collect()
            }
            (Backend::Recorded(world), Some((from, to))) => world
                .search_logs(&filter, from, to, limit)
                .into_iter()
                .map(|l| {
                    let mut row = json!({
                        "timestamp": rfc3339_ms(l.time_ms),
                        "service": world.workload(&l.pod),
                        "pod": l.pod,
                        "level": l.level.as_str(),
                        "message": l.message,
                    });
                    if let Some(trace) = &l.trace_id {
                        row["trace_id"] = json!(trace);
                    }
                    if let Some(span) = &l.span_id {
                        row["span_id"] = json!(span);
                    }
                    row
                })
                .collect(),
        };
        Ok(json!({"status": "success", "data": {"result": result}}))
    }

    pub fn events(&self, params: &EventParams) -> Result<Value, QueryError> {
        let start = parse_time_ms(required(&params.start, "start")?)?;
        let end = parse_time_ms(required(&params.end, "end")?)?;
        let services: Option<Vec<String>> = params
            .service
            .as_ref()
            .map(|s| s.split(',').map(str::to_string).collect());
        let kinds: Option<Vec<EventKind>> = match &params.kind {
            None => None,
            Some(list) => Some(
                list.split(',')
                    .map(|k| {
                        EventKind::parse(k)
                            .ok_or_else(|| QueryError::BadData(format!("unknown event kind {k:?}")))
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        let limit = params.limit.unwrap_or(200).min(MAX_LIMIT);
        // A recorded data set has no change events.
        let Backend::Simulated(world) = &self.backend else {
            return Ok(json!({"status": "success", "data": {"result": []}}));
        };
        let components = &world.topology.components;
        let result: Vec<Value> = match self.retained(self.retention.events, start, end) {
            None => Vec::new(),
            Some((from, to)) => world
                .events(
                    services.as_deref(),
                    kinds.as_deref(),
                    from.div_euclid(1000),
                    to.div_euclid(1000),
                    limit,
                )
                .into_iter()
                .map(|e| {
                    json!({
                        "timestamp": rfc3339_ms(e.time * 1000),
                        "service": components[e.component].name,
                        "kind": e.kind.as_str(),
                        "reason": e.reason,
                        "message": e.message,
                    })
                })
                .collect(),
        };
        Ok(json!({"status": "success", "data": {"result": result}}))
    }

    pub fn traces(&self, params: &TraceParams) -> Result<Value, QueryError> {
        let service = required(&params.service, "service")?;
        let unknown = || QueryError::NotFound(format!("unknown service {service:?}"));
        let start = parse_time_ms(required(&params.start, "start")?)?;
        let end = parse_time_ms(required(&params.end, "end")?)?;
        let limit = params.limit.unwrap_or(10).min(100);
        let errors = params.errors.unwrap_or(false);
        let retained = self.retained(self.retention.traces, start, end);
        let traces = match &self.backend {
            Backend::Simulated(world) => {
                let component = world.topology.index_of(service).ok_or_else(unknown)?;
                let traces = match retained {
                    Some((from, to)) => world.traces(
                        component,
                        from.div_euclid(1000),
                        to.div_euclid(1000),
                        errors,
                        limit,
                    ),
                    None => Vec::new(),
                };
                serde_json::to_value(traces)
            }
            Backend::Recorded(world) => {
                world.service(service).ok_or_else(unknown)?;
                let traces = match retained {
                    Some((from, to)) => world.traces(service, from, to, errors, limit),
                    None => Vec::new(),
                };
                serde_json::to_value(traces)
            }
        }
        .map_err(|_| QueryError::Internal)?;
        Ok(json!({"status": "success", "data": {"result": traces}}))
    }

    pub fn services(&self) -> Value {
        self.services.get_or_init(|| self.build_services()).clone()
    }

    fn build_services(&self) -> Value {
        let world = match &self.backend {
            Backend::Simulated(world) => world,
            Backend::Recorded(world) => return recorded_services(world),
        };
        let t = &world.topology;
        let name = |i: &usize| t.components[*i].name.clone();
        let services: Vec<Value> = t
            .components
            .iter()
            .map(|c| {
                let mut entry = json!({
                    "name": c.name,
                    "kind": c.kind.as_str(),
                    "team": c.team,
                    "technology": c.technology,
                    "calls": c.calls.iter().map(name).collect::<Vec<_>>(),
                    "callers": c.callers.iter().map(name).collect::<Vec<_>>(),
                    "pods": c.pods,
                });
                if let Some(q) = c.consumes {
                    entry["consumes"] = json!({"topic": t.queues[q].topic, "consumer_group": t.queues[q].consumer_group});
                }
                entry
            })
            .collect();
        let queues: Vec<Value> = t
            .queues
            .iter()
            .map(|q| json!({"topic": q.topic, "producer": name(&q.producer), "consumer": name(&q.consumer), "consumer_group": q.consumer_group}))
            .collect();
        let monitors: Vec<Value> = t
            .monitors
            .iter()
            .map(|m| json!({"name": m.name, "service": name(&m.component), "metric": m.metric.prom_name(), "threshold": m.threshold, "description": m.description}))
            .collect();
        json!({"status": "success", "data": {"services": services, "queues": queues, "monitors": monitors, "hosts": t.hosts}})
    }

    /// Prometheus text exposition of every series at the simulated now.
    pub fn scrape(&self) -> String {
        let now = self.now_ms().div_euclid(1000);
        let world = match &self.backend {
            Backend::Simulated(world) => world,
            Backend::Recorded(world) => return recorded_scrape(world, now),
        };
        let mut out = String::new();
        for metric in Metric::ALL {
            let kind = if metric.is_counter() {
                "counter"
            } else {
                "gauge"
            };
            out.push_str(&format!(
                "# HELP {} {}\n# TYPE {} {}\n",
                metric.prom_name(),
                metric.help(),
                metric.prom_name(),
                kind
            ));
            for component in 0..world.topology.components.len() {
                if !world.has_metric(component, metric) {
                    continue;
                }
                let labels: Vec<String> = world
                    .series_labels(component, metric)
                    .into_iter()
                    .filter(|(k, _)| *k != "__name__")
                    .map(|(k, v)| {
                        format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
                    })
                    .collect();
                let value = world.metric_value(component, metric, now);
                out.push_str(&format!(
                    "{}{{{}}} {}\n",
                    metric.prom_name(),
                    labels.join(","),
                    format_value(value)
                ));
            }
        }
        out
    }
}

/// One matrix entry; instants without a sample are left out, and so is a series without any.
fn matrix_entry(series: Series, times_ms: &[i64]) -> Option<Value> {
    let values: Vec<Value> = times_ms
        .iter()
        .zip(&series.values)
        .filter(|(_, v)| !v.is_nan())
        .map(|(t, v)| json!([*t as f64 / 1000.0, format_value(*v)]))
        .collect();
    if values.is_empty() {
        return None;
    }
    let labels: BTreeMap<String, String> = series.labels;
    Some(json!({"metric": labels, "values": values}))
}

/// The topology of a recorded world, in the simulator's listing shape. Each entry service gets an
/// error-rate and a latency monitor, the alerts a recorded incident fires.
fn recorded_services(world: &RecordedWorld) -> Value {
    let services: Vec<Value> = world
        .services
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "kind": s.kind,
                "team": "",
                "technology": "",
                "calls": s.calls,
                "callers": s.callers,
                "pods": s.pods,
            })
        })
        .collect();
    let monitors: Vec<Value> = world
        .entry
        .iter()
        .flat_map(|entry| {
            [
                json!({"name": format!("{entry}-error-rate"), "service": entry, "metric": "request_error_ratio", "threshold": 0.05, "description": format!("success rate of {entry} below objective")}),
                json!({"name": format!("{entry}-p99-latency"), "service": entry, "metric": "request_latency_p99_seconds", "threshold": 1.0, "description": format!("p99 latency of {entry} above objective")}),
            ]
        })
        .collect();
    let hosts: std::collections::BTreeSet<&str> = world
        .services
        .iter()
        .flat_map(|s| s.pods.iter().map(|p| p.host.as_str()))
        .filter(|h| !h.is_empty())
        .collect();
    json!({"status": "success", "data": {"services": services, "queues": [], "monitors": monitors, "hosts": hosts}})
}

/// The last sample of every recorded series within the lookback, as Prometheus text.
fn recorded_scrape(world: &RecordedWorld, now: i64) -> String {
    let mut out = String::new();
    for name in world.metric_names() {
        out.push_str(&format!("# TYPE {name} gauge\n"));
        let Ok(series) = world.select(name, &[], &[now]) else {
            continue;
        };
        for s in series {
            if s.values[0].is_nan() {
                continue;
            }
            let labels: Vec<String> = s
                .labels
                .iter()
                .filter(|(k, _)| k.as_str() != "__name__")
                .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            out.push_str(&format!(
                "{name}{{{}}} {}\n",
                labels.join(","),
                format_value(s.values[0])
            ));
        }
    }
    out
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockUpdate {
    now: Option<String>,
    advance: Option<String>,
}

/// The telemetry HTTP API.
pub fn app(service: Arc<TelemetryService>) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/query_range", get(query_range))
        .route("/api/v1/query", get(query_instant))
        .route("/api/v1/logs", get(search_logs))
        .route("/api/v1/events", get(events))
        .route("/api/v1/traces", get(traces))
        .route("/api/v1/services", get(services))
        .route("/api/v1/clock", get(clock).post(set_clock))
        .route("/api/v1/sim/world", get(world_parameters))
        .route("/metrics", get(scrape))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(service)
}

type Shared = State<Arc<TelemetryService>>;

/// Runs a query that may evaluate many points on the blocking pool, so it never stalls the runtime.
async fn off_the_runtime(
    query: impl FnOnce() -> Result<Value, QueryError> + Send + 'static,
) -> Result<Json<Value>, QueryError> {
    tokio::task::spawn_blocking(query)
        .await
        .map_err(|_| QueryError::Internal)?
        .map(Json)
}

async fn query_range(
    State(s): Shared,
    Query(p): Query<RangeParams>,
) -> Result<Json<Value>, QueryError> {
    off_the_runtime(move || s.query_range(&p)).await
}

async fn query_instant(
    State(s): Shared,
    Query(p): Query<InstantParams>,
) -> Result<Json<Value>, QueryError> {
    s.query_instant(&p).map(Json)
}

async fn search_logs(
    State(s): Shared,
    Query(p): Query<LogParams>,
) -> Result<Json<Value>, QueryError> {
    off_the_runtime(move || s.search_logs(&p)).await
}

async fn events(State(s): Shared, Query(p): Query<EventParams>) -> Result<Json<Value>, QueryError> {
    s.events(&p).map(Json)
}

async fn traces(State(s): Shared, Query(p): Query<TraceParams>) -> Result<Json<Value>, QueryError> {
    off_the_runtime(move || s.traces(&p)).await
}

async fn services(State(s): Shared) -> Json<Value> {
    Json(s.services())
}

async fn world_parameters(State(s): Shared) -> Json<Value> {
    match s.backend() {
        Backend::Simulated(world) => {
            let c = world.config;
            Json(
                json!({"seed": c.seed, "incidents": c.incidents, "services": c.services, "timeline_end": c.timeline_end}),
            )
        }
        Backend::Recorded(world) => Json(json!({
            "recorded": world.format,
            "faults": world.faults.len(),
            "services": world.services.len(),
            "start": rfc3339_ms(world.start * 1000),
            "end": rfc3339_ms(world.end * 1000),
        })),
    }
}

async fn scrape(State(s): Shared) -> Result<impl IntoResponse, QueryError> {
    let text = tokio::task::spawn_blocking(move || s.scrape())
        .await
        .map_err(|_| QueryError::Internal)?;
    Ok(([("content-type", "text/plain; version=0.0.4")], text))
}

async fn clock(State(s): Shared) -> Json<Value> {
    Json(json!({"now": rfc3339_ms(s.now_ms())}))
}

async fn set_clock(
    State(s): Shared,
    Json(update): Json<ClockUpdate>,
) -> Result<Json<Value>, QueryError> {
    if let Some(now) = &update.now {
        s.clock.set(parse_time_ms(now)?);
    }
    if let Some(advance) = &update.advance {
        s.clock.advance(
            parse_duration_secs(advance).map_err(|e| QueryError::BadData(e.to_string()))? * 1000,
        );
    }
    Ok(Json(json!({"now": rfc3339_ms(s.now_ms())})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_reject_garbage() {
        assert_eq!(parse_duration_secs("15m"), Ok(900));
        assert_eq!(parse_duration_secs("2h"), Ok(7200));
        assert_eq!(parse_duration_secs("7d"), Ok(604_800));
        assert_eq!(parse_duration_secs("1h30m"), Ok(5400));
        assert!(parse_duration_secs("15").is_err());
        assert!(parse_duration_secs("abc").is_err());
        assert!(parse_duration_secs("0s").is_err());
    }

    #[test]
    fn values_format_like_prometheus_samples() {
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(0.0123456789), "0.012346");
        assert_eq!(format_value(-0.5), "-0.5");
        assert_eq!(format_value(12.25), "12.25");
        assert_eq!(format_value(f64::NAN), "NaN");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = SimClock::manual(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance(500);
        assert_eq!(clock.now_ms(), 1_500);
        clock.set(10);
        assert_eq!(clock.now_ms(), 10);
    }
}
