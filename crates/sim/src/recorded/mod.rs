//! Recorded worlds: real telemetry read from a data set on disk and served through the same
//! telemetry API as the simulated world, so agents, users, capture and every connector meet real
//! data unchanged. A format ([`Format`]) only turns its files into a [`Recording`] (samples per pod,
//! logs, spans, injected faults); everything derived (workloads, kinds, the call graph, error
//! ratios, indexes) is built here, once for every format.

pub mod nezha;
pub mod play;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::promql::{Matcher, PromqlError, Series, SeriesSource};
use crate::signals::LogLevel;
use crate::world::LogFilter;

/// A data set format: reads one directory of recorded telemetry.
pub trait Format {
    /// A short name (`nezha`).
    fn name(&self) -> &'static str;
    /// Whether `dir` holds one recording of this format.
    fn recognises(&self, dir: &Path) -> bool;
    /// Reads the recording in `dir`.
    fn load(&self, dir: &Path) -> Result<Recording, LoadError>;
}

/// The formats `load` knows, tried in order.
fn formats() -> Vec<Box<dyn Format>> {
    vec![Box::new(nezha::Nezha)]
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{0} holds no recording of a known format (nezha) nor directories that do")]
    Unrecognised(PathBuf),
}

/// What a format reads: raw, per pod, in the data set's own time.
#[derive(Debug, Default)]
pub struct Recording {
    /// One series per pod and metric name (sim vocabulary where it fits).
    pub samples: Vec<PodSeries>,
    pub logs: Vec<RecordedLog>,
    pub spans: Vec<RecordedSpan>,
    pub faults: Vec<RecordedFault>,
    /// Pod → the node it ran on, where the data says.
    pub nodes: BTreeMap<String, String>,
    /// What the format had to decide about the data (clock quirks, unusable columns).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct PodSeries {
    pub pod: String,
    pub metric: String,
    /// (unix seconds, value), any order.
    pub points: Vec<(i64, f64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordedLog {
    pub time_ms: i64,
    pub pod: String,
    pub level: LogLevel,
    pub message: String,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RecordedSpan {
    pub trace_id: String,
    pub span_id: String,
    /// `None` for a root span.
    pub parent_id: Option<String>,
    pub pod: String,
    pub operation: String,
    pub start_ms: i64,
    pub duration_ms: f64,
}

/// One injected fault, the truth about it.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedFault {
    /// When it was injected, in the telemetry's own clock (unix seconds).
    pub at: i64,
    pub pod: String,
    /// The data set's name for what was injected (`exception`, `return`, `cpu_contention`).
    pub inject_type: String,
}

impl RecordedFault {
    /// The taxonomy category of the fault, from its injected type.
    pub fn category(&self) -> &'static str {
        match self.inject_type.as_str() {
            "cpu_contention" | "cpu_consumed" | "cpu" => "resource.cpu",
            "memory" | "memory_consumed" => "resource.memory",
            "network_delay" | "delay" => "network.latency",
            "network_loss" | "loss" => "network.loss",
            // Code-level faults: a thrown exception, a changed return value.
            _ => "code_defect",
        }
    }

    /// How a person would name what happened.
    pub fn mechanism(&self) -> &'static str {
        match self.category() {
            "resource.cpu" => "CPU contention",
            "resource.memory" => "memory pressure",
            "network.latency" => "network latency",
            "network.loss" => "packet loss",
            _ if self.inject_type == "exception" => "a code bug throwing exceptions",
            _ => "a code bug returning wrong values",
        }
    }
}

/// A workload of the recorded world.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedService {
    pub name: String,
    /// `frontend` for an entry point (where traces start), `service` otherwise.
    pub kind: &'static str,
    pub pods: Vec<RecordedPod>,
    pub calls: BTreeSet<String>,
    pub callers: BTreeSet<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct RecordedPod {
    pub name: String,
    pub host: String,
}

#[derive(Debug, Clone)]
struct StoredSeries {
    labels: BTreeMap<String, String>,
    /// Sorted by time.
    points: Vec<(i64, f64)>,
}

/// How far back a query looks for the last sample, as Prometheus does.
pub const LOOKBACK_SECS: i64 = 300;

/// A recorded data set, ready to serve.
#[derive(Debug)]
pub struct RecordedWorld {
    pub format: &'static str,
    pub services: Vec<RecordedService>,
    /// The entry service: where most traces start.
    pub entry: Option<String>,
    pub faults: Vec<RecordedFault>,
    /// First and last instant with data (unix seconds).
    pub start: i64,
    pub end: i64,
    pub notes: Vec<String>,
    series: Vec<StoredSeries>,
    metric_names: BTreeSet<String>,
    /// Sorted by time.
    logs: Vec<RecordedLog>,
    spans: Vec<RecordedSpan>,
    /// Root spans (indexes into `spans`), sorted by start.
    roots: Vec<usize>,
    /// Trace id → its spans.
    traces: HashMap<String, Vec<usize>>,
    /// Trace and span id → the first error log line of that span.
    span_errors: HashMap<(String, String), String>,
    pod_workload: HashMap<String, String>,
}

/// The workload a pod belongs to: the pod name without its replica-set hash and pod suffix.
pub fn workload_of_pod(pod: &str) -> String {
    evalmint_model::workload_of(pod, Some("pod")).unwrap_or_else(|| pod.to_owned())
}

/// Loads the recording in `dir`, or every recording in its subdirectories (days of one system).
pub fn load(dir: &Path) -> Result<RecordedWorld, LoadError> {
    let formats = formats();
    let recognised = |d: &Path| formats.iter().find(|f| f.recognises(d));
    if let Some(format) = recognised(dir) {
        return Ok(RecordedWorld::build(format.name(), format.load(dir)?));
    }
    let io = |source| LoadError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut days: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    days.sort();
    let mut merged: Option<(&'static str, Recording)> = None;
    for day in days {
        let Some(format) = recognised(&day) else {
            continue;
        };
        let recording = format.load(&day)?;
        match &mut merged {
            None => merged = Some((format.name(), recording)),
            Some((_, all)) => {
                all.samples.extend(recording.samples);
                all.logs.extend(recording.logs);
                all.spans.extend(recording.spans);
                all.faults.extend(recording.faults);
                all.nodes.extend(recording.nodes);
                all.notes.extend(recording.notes);
            }
        }
    }
    let (format, recording) = merged.ok_or_else(|| LoadError::Unrecognised(dir.to_owned()))?;
    Ok(RecordedWorld::build(format, recording))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

impl RecordedWorld {
    /// Derives the served world from a format's recording.
    pub fn build(format: &'static str, mut recording: Recording) -> RecordedWorld {
        let mut notes = std::mem::take(&mut recording.notes);
        notes.sort();
        notes.dedup();
        recording.logs.sort_by_key(|l| l.time_ms);
        recording.faults.sort_by_key(|f| f.at);
        let mut pods: BTreeSet<String> = BTreeSet::new();
        pods.extend(recording.samples.iter().map(|s| s.pod.clone()));
        pods.extend(recording.spans.iter().map(|s| s.pod.clone()));
        pods.extend(recording.logs.iter().map(|l| l.pod.clone()));
        pods.extend(recording.faults.iter().map(|f| f.pod.clone()));
        let pod_workload: HashMap<String, String> = pods
            .iter()
            .map(|p| (p.clone(), workload_of_pod(p)))
            .collect();

        // Spans: index by trace, find roots, and the call graph from parent/child pairs that
        // cross workloads.
        let spans = std::mem::take(&mut recording.spans);
        let mut traces: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, span) in spans.iter().enumerate() {
            traces.entry(span.trace_id.clone()).or_default().push(i);
        }
        let mut by_id: HashMap<(&str, &str), usize> = HashMap::new();
        for (i, span) in spans.iter().enumerate() {
            by_id.insert((&span.trace_id, &span.span_id), i);
        }
        let mut calls: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut roots = Vec::new();
        let mut root_counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, span) in spans.iter().enumerate() {
            let parent = span
                .parent_id
                .as_deref()
                .and_then(|p| by_id.get(&(span.trace_id.as_str(), p)));
            match parent {
                Some(&p) => {
                    let caller = &pod_workload[&spans[p].pod];
                    let callee = &pod_workload[&span.pod];
                    if caller != callee {
                        calls
                            .entry(caller.clone())
                            .or_default()
                            .insert(callee.clone());
                    }
                }
                None if span.parent_id.is_none() => {
                    roots.push(i);
                    *root_counts.entry(&pod_workload[&span.pod]).or_default() += 1;
                }
                None => {}
            }
        }
        roots.sort_by_key(|&i| spans[i].start_ms);
        let entry = root_counts
            .iter()
            .max_by_key(|(name, n)| (**n, std::cmp::Reverse(**name)))
            .map(|(name, _)| (*name).to_owned());

        // A span failed when its own pod logged an error with its ids.
        let mut span_errors: HashMap<(String, String), String> = HashMap::new();
        for log in &recording.logs {
            if log.level < LogLevel::Error {
                continue;
            }
            if let (Some(t), Some(s)) = (&log.trace_id, &log.span_id) {
                span_errors
                    .entry((t.clone(), s.clone()))
                    .or_insert_with(|| log.message.clone());
            }
        }

        let mut series: Vec<StoredSeries> = Vec::new();
        let kind_of = |workload: &str| {
            if entry.as_deref() == Some(workload) {
                "frontend"
            } else {
                "service"
            }
        };
        let mut grouped: BTreeMap<(String, String), Vec<(i64, f64)>> = BTreeMap::new();
        for s in recording.samples {
            grouped
                .entry((s.pod, s.metric))
                .or_default()
                .extend(s.points);
        }
        // The error ratio per pod and minute, from spans and their error logs: a rate, so it
        // compares across load levels where raw error counts do not.
        let mut minute_counts: BTreeMap<(String, i64), (u32, u32)> = BTreeMap::new();
        for span in &spans {
            let slot = minute_counts
                .entry((span.pod.clone(), span.start_ms.div_euclid(60_000)))
                .or_default();
            slot.0 += 1;
            if span_errors.contains_key(&(span.trace_id.clone(), span.span_id.clone())) {
                slot.1 += 1;
            }
        }
        for ((pod, minute), (total, errors)) in minute_counts {
            grouped
                .entry((pod, "request_error_ratio".to_owned()))
                .or_default()
                .push((minute * 60 + 30, f64::from(errors) / f64::from(total)));
        }
        for ((pod, metric), mut points) in grouped {
            points.sort_by_key(|p| p.0);
            points.dedup_by_key(|p| p.0);
            let workload = pod_workload
                .get(&pod)
                .cloned()
                .unwrap_or_else(|| workload_of_pod(&pod));
            let mut labels = BTreeMap::from([
                ("__name__".to_owned(), metric),
                ("kind".to_owned(), kind_of(&workload).to_owned()),
                ("pod".to_owned(), pod.clone()),
                ("service".to_owned(), workload),
            ]);
            if let Some(node) = recording.nodes.get(&pod) {
                labels.insert("node".to_owned(), node.clone());
            }
            series.push(StoredSeries { labels, points });
        }
        let metric_names = series
            .iter()
            .map(|s| s.labels["__name__"].clone())
            .collect();

        let mut services: BTreeMap<String, RecordedService> = BTreeMap::new();
        for pod in &pods {
            let workload = &pod_workload[pod];
            let service = services
                .entry(workload.clone())
                .or_insert_with(|| RecordedService {
                    name: workload.clone(),
                    kind: kind_of(workload),
                    pods: Vec::new(),
                    calls: BTreeSet::new(),
                    callers: BTreeSet::new(),
                });
            service.pods.push(RecordedPod {
                name: pod.clone(),
                host: recording.nodes.get(pod).cloned().unwrap_or_default(),
            });
        }
        for (caller, callees) in &calls {
            for callee in callees {
                if let Some(s) = services.get_mut(caller) {
                    s.calls.insert(callee.clone());
                }
                if let Some(s) = services.get_mut(callee) {
                    s.callers.insert(caller.clone());
                }
            }
        }

        let times = series
            .iter()
            .flat_map(|s| [s.points.first(), s.points.last()])
            .flatten()
            .map(|p| p.0)
            .chain(recording.logs.iter().map(|l| l.time_ms.div_euclid(1000)))
            .chain(spans.iter().map(|s| s.start_ms.div_euclid(1000)));
        let (start, end) = times.fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t), b.max(t)));
        let (start, end) = if start > end { (0, 0) } else { (start, end) };
        RecordedWorld {
            format,
            services: services.into_values().collect(),
            entry,
            faults: recording.faults,
            start,
            end,
            notes,
            series,
            metric_names,
            logs: recording.logs,
            spans,
            roots,
            traces,
            span_errors,
            pod_workload,
        }
    }

    pub fn service(&self, name: &str) -> Option<&RecordedService> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The workload of a pod the world knows.
    pub fn workload(&self, pod: &str) -> String {
        self.pod_workload
            .get(pod)
            .cloned()
            .unwrap_or_else(|| workload_of_pod(pod))
    }

    pub fn metric_names(&self) -> impl Iterator<Item = &str> {
        self.metric_names.iter().map(String::as_str)
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    pub fn logs_len(&self) -> usize {
        self.logs.len()
    }

    pub fn spans_len(&self) -> usize {
        self.spans.len()
    }

    /// The samples of one series, by its labels (every given label must match).
    pub fn samples(&self, labels: &[(&str, &str)]) -> Vec<&[(i64, f64)]> {
        self.series
            .iter()
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.points.as_slice())
            .collect()
    }

    /// The median and median absolute deviation of `metric` on `service` over `[from, to)`.
    pub fn baseline(&self, metric: &str, service: &str, from: i64, to: i64) -> Option<(f64, f64)> {
        let mut values: Vec<f64> = self
            .samples(&[("__name__", metric), ("service", service)])
            .into_iter()
            .flatten()
            .filter(|p| p.0 >= from && p.0 < to && p.1.is_finite())
            .map(|p| p.1)
            .collect();
        if values.is_empty() {
            return None;
        }
        let m = median(&mut values);
        let mut deviations: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
        Some((m, median(&mut deviations)))
    }

    /// Log lines in [start_ms, end_ms] matching `filter`, newest first, at most `limit`.
    pub fn search_logs(
        &self,
        filter: &LogFilter,
        start_ms: i64,
        end_ms: i64,
        limit: usize,
    ) -> Vec<&RecordedLog> {
        let from = self.logs.partition_point(|l| l.time_ms < start_ms);
        let to = self.logs.partition_point(|l| l.time_ms <= end_ms);
        self.logs[from..to]
            .iter()
            .rev()
            .filter(|l| filter.accepts(&self.workload(&l.pod), &l.pod, l.level, &l.message))
            .take(limit)
            .collect()
    }

    /// Traces entering at `service` in [start_ms, end_ms], newest first, at most `limit`.
    pub fn traces(
        &self,
        service: &str,
        start_ms: i64,
        end_ms: i64,
        errors_only: bool,
        limit: usize,
    ) -> Vec<RecordedTrace> {
        let from = self
            .roots
            .partition_point(|&i| self.spans[i].start_ms < start_ms);
        let to = self
            .roots
            .partition_point(|&i| self.spans[i].start_ms <= end_ms);
        let mut out = Vec::new();
        for &root in self.roots[from..to].iter().rev() {
            if out.len() >= limit {
                break;
            }
            if self.workload(&self.spans[root].pod) != service {
                continue;
            }
            let trace = self.trace(root);
            if !errors_only || trace.error {
                out.push(trace);
            }
        }
        out
    }

    fn trace(&self, root: usize) -> RecordedTrace {
        let root_span = &self.spans[root];
        let mut members: Vec<usize> = self.traces[&root_span.trace_id].clone();
        members.sort_by_key(|&i| (self.spans[i].start_ms, i));
        let spans: Vec<TraceSpan> = members
            .iter()
            .take(MAX_SPANS_PER_TRACE)
            .map(|&i| {
                let span = &self.spans[i];
                let message = self
                    .span_errors
                    .get(&(span.trace_id.clone(), span.span_id.clone()))
                    .cloned();
                TraceSpan {
                    span_id: span.span_id.clone(),
                    parent_span_id: span.parent_id.clone(),
                    service: self.workload(&span.pod),
                    pod: span.pod.clone(),
                    operation: span.operation.clone(),
                    start_ms: span.start_ms,
                    duration_ms: span.duration_ms,
                    status: if message.is_some() { "error" } else { "ok" },
                    message,
                }
            })
            .collect();
        RecordedTrace {
            trace_id: root_span.trace_id.clone(),
            root_service: self.workload(&root_span.pod),
            start_ms: root_span.start_ms,
            duration_ms: root_span.duration_ms,
            error: spans.iter().any(|s| s.status == "error"),
            spans,
        }
    }

    /// Every series as OpenMetrics text (for `promtool tsdb create-blocks-from openmetrics`).
    pub fn write_openmetrics(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut by_name: BTreeMap<&str, Vec<&StoredSeries>> = BTreeMap::new();
        for s in &self.series {
            by_name.entry(&s.labels["__name__"]).or_default().push(s);
        }
        for (name, members) in by_name {
            writeln!(out, "# TYPE {name} gauge")?;
            for s in members {
                let labels: Vec<String> = s
                    .labels
                    .iter()
                    .filter(|(k, _)| k.as_str() != "__name__")
                    .map(|(k, v)| {
                        format!(
                            "{k}=\"{}\"",
                            v.replace('\\', "\\\\")
                                .replace('"', "\\\"")
                                .replace('\n', "\\n")
                        )
                    })
                    .collect();
                let labels = labels.join(",");
                for (t, v) in &s.points {
                    if v.is_finite() {
                        writeln!(out, "{name}{{{labels}}} {v} {t}")?;
                    }
                }
            }
        }
        writeln!(out, "# EOF")
    }
}

/// Recorded traces stop listing spans here; the rest are summarised by the trace's flags.
const MAX_SPANS_PER_TRACE: usize = 200;

impl SeriesSource for RecordedWorld {
    fn select(
        &self,
        metric: &str,
        matchers: &[Matcher],
        times: &[i64],
    ) -> Result<Vec<Series>, PromqlError> {
        if !self.metric_names.contains(metric) {
            return Err(PromqlError::UnknownMetric(metric.to_owned()));
        }
        let mut out = Vec::new();
        for s in &self.series {
            if s.labels["__name__"] != metric
                || !matchers
                    .iter()
                    .all(|m| m.matches(s.labels.get(&m.label).map(String::as_str)))
            {
                continue;
            }
            let values: Vec<f64> = times
                .iter()
                .map(|&t| {
                    let at = s.points.partition_point(|p| p.0 <= t);
                    match at.checked_sub(1).map(|i| s.points[i]) {
                        Some((sampled, v)) if t - sampled <= LOOKBACK_SECS => v,
                        _ => f64::NAN,
                    }
                })
                .collect();
            if values.iter().all(|v| v.is_nan()) {
                continue;
            }
            out.push(Series {
                labels: s.labels.clone(),
                values,
            });
        }
        Ok(out)
    }
}

/// A recorded request trace, shaped like the simulator's sampled traces (plus each span's pod).
#[derive(Debug, Clone, Serialize)]
pub struct RecordedTrace {
    pub trace_id: String,
    pub root_service: String,
    pub start_ms: i64,
    pub duration_ms: f64,
    pub error: bool,
    pub spans: Vec<TraceSpan>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TraceSpan {
    pub span_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    pub service: String,
    pub pod: String,
    pub operation: String,
    pub start_ms: i64,
    pub duration_ms: f64,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
