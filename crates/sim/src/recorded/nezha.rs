//! The Nezha RCA data set (Train Ticket on Kubernetes, one directory per day): `fault_list.json`,
//! `metric/<pod>_metric.csv.gz`, `log/HH_MM_log.csv.gz` and `trace/HH_MM_trace.csv.gz`.
//!
//! Clocks: the telemetry's stamps (`TimeStamp`, `TimeUnixNano`, `StartTimeUnixNano`) carry the
//! cluster's local wall-clock time labelled as UTC, and `inject_time` is that same local wall-clock
//! time, while `inject_timestamp` is an epoch that is off by minutes (and repeated) in some rows.
//! So a fault's time is `inject_time` read as UTC, which puts it on the telemetry's own clock;
//! `inject_timestamp` is ignored.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use serde_json::Value;

use super::{Format, LoadError, PodSeries, RecordedFault, RecordedLog, RecordedSpan, Recording};
use crate::signals::LogLevel;

/// The Nezha format.
#[derive(Debug, Clone, Copy)]
pub struct Nezha;

/// Pod metric columns and the names they are served under.
const METRIC_COLUMNS: &[(&str, &str, f64)] = &[
    ("CpuUsageRate(%)", "cpu_usage_ratio", 0.01),
    ("CpuUsage(m)", "cpu_usage_millicores", 1.0),
    ("MemoryUsageRate(%)", "memory_usage_ratio", 0.01),
    ("MemoryUsage(Mi)", "memory_usage_mebibytes", 1.0),
    ("PodServerLatencyP99(s)", "request_latency_p99_seconds", 1.0),
    ("PodServerLatencyP90(s)", "request_latency_p90_seconds", 1.0),
    ("PodClientLatencyP99(s)", "client_latency_p99_seconds", 1.0),
    ("PodWorkload(Ops)", "request_rate_per_second", 1.0),
    ("PodSuccessRate(%)", "request_success_ratio", 0.01),
    ("NetworkReceiveBytes", "network_receive_bytes", 1.0),
    ("NetworkTransmitBytes", "network_transmit_bytes", 1.0),
    ("NodeCpuUsageRate(%)", "node_cpu_usage_ratio", 0.01),
];

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> LoadError + '_ {
    move |source| LoadError::Io {
        path: path.to_owned(),
        source,
    }
}

fn invalid(path: &Path, message: impl Into<String>) -> LoadError {
    LoadError::Invalid {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// A CSV reader over a file, gzip-decompressed when its name ends in `.gz`.
fn csv_reader(path: &Path) -> Result<csv::Reader<Box<dyn Read>>, LoadError> {
    let file = File::open(path).map_err(io_error(path))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(GzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    Ok(csv::ReaderBuilder::new().flexible(true).from_reader(reader))
}

/// The files of a subdirectory, sorted.
fn files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_error(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    Ok(out)
}

fn column(headers: &csv::StringRecord, name: &str) -> Option<usize> {
    headers.iter().position(|h| h.trim() == name)
}

fn required_column(
    headers: &csv::StringRecord,
    name: &str,
    path: &Path,
) -> Result<usize, LoadError> {
    column(headers, name).ok_or_else(|| invalid(path, format!("no column {name:?}")))
}

/// `2023-01-29 08:43:04` read as UTC, in unix seconds.
fn civil_seconds(text: &str) -> Option<i64> {
    let civil: jiff::civil::DateTime = text.trim().replace(' ', "T").parse().ok()?;
    jiff::tz::Offset::UTC
        .to_timestamp(civil)
        .ok()
        .map(|t| t.as_second())
}

impl Format for Nezha {
    fn name(&self) -> &'static str {
        "nezha"
    }

    fn recognises(&self, dir: &Path) -> bool {
        dir.join("fault_list.json").is_file() && dir.join("metric").is_dir()
    }

    fn load(&self, dir: &Path) -> Result<Recording, LoadError> {
        let mut recording = Recording::default();
        recording.notes.push(
            "fault times are inject_time read as UTC, the telemetry's own clock; inject_timestamp is not used"
                .to_owned(),
        );
        read_faults(&dir.join("fault_list.json"), &mut recording)?;
        for path in files(&dir.join("metric"))? {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.contains("_metric.csv") {
                read_pod_metrics(&path, &mut recording)?;
            }
        }
        for path in files(&dir.join("log"))? {
            read_logs(&path, &mut recording)?;
        }
        for path in files(&dir.join("trace"))? {
            read_spans(&path, &mut recording)?;
        }
        Ok(recording)
    }
}

fn read_faults(path: &Path, recording: &mut Recording) -> Result<(), LoadError> {
    let text = std::fs::read_to_string(path).map_err(io_error(path))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| invalid(path, e.to_string()))?;
    // `{"08": [fault, …], "09": […]}`, or a plain list.
    let lists: Vec<&Value> = match &value {
        Value::Object(hours) => hours.values().collect(),
        Value::Array(_) => vec![&value],
        _ => return Err(invalid(path, "expected an object of lists or a list")),
    };
    for fault in lists.into_iter().filter_map(Value::as_array).flatten() {
        let field = |k: &str| fault.get(k).and_then(Value::as_str);
        let (Some(time), Some(pod), Some(kind)) = (
            field("inject_time"),
            field("inject_pod"),
            field("inject_type"),
        ) else {
            return Err(invalid(
                path,
                format!("a fault without inject_time, inject_pod or inject_type: {fault}"),
            ));
        };
        let at = civil_seconds(time)
            .ok_or_else(|| invalid(path, format!("inject_time {time:?} is not a date and time")))?;
        recording.faults.push(RecordedFault {
            at,
            pod: pod.to_owned(),
            inject_type: kind.to_owned(),
        });
    }
    Ok(())
}

fn read_pod_metrics(path: &Path, recording: &mut Recording) -> Result<(), LoadError> {
    let mut reader = csv_reader(path)?;
    let headers = reader
        .headers()
        .map_err(|e| invalid(path, e.to_string()))?
        .clone();
    let time = required_column(&headers, "TimeStamp", path)?;
    let pod_column = required_column(&headers, "PodName", path)?;
    let columns: Vec<(usize, &str, f64)> = METRIC_COLUMNS
        .iter()
        .filter_map(|(c, name, scale)| Some((column(&headers, c)?, *name, *scale)))
        .collect();
    let mut per_pod: BTreeMap<(String, &str), Vec<(i64, f64)>> = BTreeMap::new();
    for row in reader.records() {
        let row = row.map_err(|e| invalid(path, e.to_string()))?;
        let (Some(t), Some(pod)) = (
            row.get(time).and_then(|t| t.trim().parse::<f64>().ok()),
            row.get(pod_column),
        ) else {
            continue;
        };
        for &(c, name, scale) in &columns {
            if let Some(v) = row.get(c).and_then(|v| v.trim().parse::<f64>().ok())
                && v.is_finite()
            {
                per_pod
                    .entry((pod.to_owned(), name))
                    .or_default()
                    .push((t as i64, v * scale));
            }
        }
    }
    for ((pod, metric), points) in per_pod {
        // A success rate of 0 in every row means the column was not measured (every pod of the
        // shared day): the error ratio comes from spans and error logs instead.
        if metric == "request_success_ratio" && points.iter().all(|p| p.1 == 0.0) {
            recording.notes.push(
                "PodSuccessRate is 0 in every row: read as not measured; request_error_ratio is derived from spans and their error logs"
                    .to_owned(),
            );
            continue;
        }
        recording.samples.push(PodSeries {
            pod,
            metric: metric.to_owned(),
            points,
        });
    }
    Ok(())
}

/// Reads the level and message out of a container log line (`16:42:22.382 INFO  t.s.X#1 text`).
fn parse_log_line(line: &str) -> (LogLevel, String) {
    let line = line.trim_end();
    let mut words = line.split_whitespace();
    let first = words.next().unwrap_or("");
    let second = words.next().unwrap_or("");
    let level_word = |w: &str| match w.trim_matches(|c| c == '[' || c == ']') {
        "ERROR" | "SEVERE" => Some(LogLevel::Error),
        "FATAL" => Some(LogLevel::Fatal),
        "WARN" | "WARNING" => Some(LogLevel::Warn),
        "INFO" | "DEBUG" | "TRACE" => Some(LogLevel::Info),
        _ => None,
    };
    let (level, skip) = match (level_word(first), level_word(second)) {
        (Some(l), _) => (l, 1),
        (None, Some(l)) => (l, 2),
        // Stack-trace continuation lines and the like carry no level of their own.
        (None, None) => (LogLevel::Info, 0),
    };
    let mut rest = line;
    for _ in 0..skip {
        rest = rest.trim_start();
        rest = rest.find(char::is_whitespace).map_or("", |at| &rest[at..]);
    }
    (level, rest.trim().to_owned())
}

fn read_logs(path: &Path, recording: &mut Recording) -> Result<(), LoadError> {
    let mut reader = csv_reader(path)?;
    let headers = reader
        .headers()
        .map_err(|e| invalid(path, e.to_string()))?
        .clone();
    let time = required_column(&headers, "TimeUnixNano", path)?;
    let pod_column = required_column(&headers, "PodName", path)?;
    let log_column = required_column(&headers, "Log", path)?;
    let node = column(&headers, "Node");
    let trace = column(&headers, "TraceID");
    let span = column(&headers, "SpanID");
    for row in reader.records() {
        let row = row.map_err(|e| invalid(path, e.to_string()))?;
        let (Some(nanos), Some(pod), Some(cell)) = (
            row.get(time).and_then(|t| t.trim().parse::<i64>().ok()),
            row.get(pod_column),
            row.get(log_column),
        ) else {
            continue;
        };
        // The cell is the container runtime's JSON line; fall back to the raw text.
        let text = serde_json::from_str::<Value>(cell)
            .ok()
            .and_then(|v| v.get("log").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| cell.to_owned());
        let (level, message) = parse_log_line(&text);
        let id = |c: Option<usize>| {
            c.and_then(|c| row.get(c))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        if let Some(node) = id(node) {
            recording.nodes.entry(pod.to_owned()).or_insert(node);
        }
        recording.logs.push(RecordedLog {
            time_ms: nanos.div_euclid(1_000_000),
            pod: pod.to_owned(),
            level,
            message,
            trace_id: id(trace),
            span_id: id(span),
        });
    }
    Ok(())
}

fn read_spans(path: &Path, recording: &mut Recording) -> Result<(), LoadError> {
    let mut reader = csv_reader(path)?;
    let headers = reader
        .headers()
        .map_err(|e| invalid(path, e.to_string()))?
        .clone();
    let trace = required_column(&headers, "TraceID", path)?;
    let span = required_column(&headers, "SpanID", path)?;
    let parent = required_column(&headers, "ParentID", path)?;
    let pod_column = required_column(&headers, "PodName", path)?;
    let operation = required_column(&headers, "OperationName", path)?;
    let start = required_column(&headers, "StartTimeUnixNano", path)?;
    let end = column(&headers, "EndTimeUnixNano");
    for row in reader.records() {
        let row = row.map_err(|e| invalid(path, e.to_string()))?;
        let field = |c: usize| row.get(c).map(str::trim).unwrap_or("");
        let Ok(start_ns) = field(start).parse::<i64>() else {
            continue;
        };
        let end_ns = end
            .and_then(|c| field(c).parse::<i64>().ok())
            .unwrap_or(start_ns);
        let parent_id = match field(parent) {
            "" | "root" => None,
            p => Some(p.to_owned()),
        };
        recording.spans.push(RecordedSpan {
            trace_id: field(trace).to_owned(),
            span_id: field(span).to_owned(),
            parent_id,
            pod: field(pod_column).to_owned(),
            operation: field(operation).to_owned(),
            start_ms: start_ns.div_euclid(1_000_000),
            duration_ms: (end_ns - start_ns).max(0) as f64 / 1e6,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_give_their_level_and_message() {
        let (level, message) =
            parse_log_line("17:26:07.440 ERROR o.a.c.c.C#175 TraceID: ab SpanID: cd failed\n");
        assert_eq!(level, LogLevel::Error);
        assert_eq!(message, "o.a.c.c.C#175 TraceID: ab SpanID: cd failed");
        let (level, message) = parse_log_line("\tat java.lang.Thread.run(Thread.java:748)");
        assert_eq!(level, LogLevel::Info);
        assert_eq!(message, "at java.lang.Thread.run(Thread.java:748)");
    }

    #[test]
    fn inject_time_is_read_on_the_telemetry_clock() {
        assert_eq!(civil_seconds("2023-01-29 08:43:04"), Some(1_674_981_784));
        assert_eq!(civil_seconds("not a time"), None);
    }
}
