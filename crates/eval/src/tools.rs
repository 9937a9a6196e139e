//! The session's tools, named and shaped like the common observability MCP servers (flat JSON
//! arguments, RFC 3339 or epoch-second times), and the Prometheus HTTP API over the same frozen
//! metric answers. Every answer comes from the session's world or says "no data".

use serde_json::{Map, Value, json};

use crate::matching::{self, Found, MatchKind};
use crate::world::ReplayWorld;

/// The tools every session offers, with a one-line description and their arguments.
pub const TOOLS: [(&str, &str, &[&str]); 7] = [
    (
        "query_metrics",
        "Run a PromQL range query (query, start, end, step)",
        &["query", "start", "end", "step"],
    ),
    (
        "search_logs",
        "Search logs (query, start, end, limit)",
        &["query", "start", "end", "limit"],
    ),
    (
        "get_traces",
        "Sampled request traces entering a service (service, start, end, errors)",
        &["service", "start", "end", "errors"],
    ),
    (
        "get_events",
        "Deploy, config, Kubernetes and infrastructure events (services, start, end)",
        &["services", "start", "end"],
    ),
    (
        "list_services",
        "The topology: services, datastores, queues, monitors",
        &[],
    ),
    (
        "get_service_dependencies",
        "What a service calls and what calls it (service)",
        &["service"],
    ),
    (
        "submit_rca",
        "Submit the root cause (conclusion, component, category, onset)",
        &["conclusion", "component", "category", "onset"],
    ),
];

/// Why a tool call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    #[error("no tool named {0:?}")]
    UnknownTool(String),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("this session reached its limit of {0} tool calls")]
    CallLimit(u32),
}

fn required<'a>(args: &'a Map<String, Value>, field: &str) -> Result<&'a Value, ToolError> {
    args.get(field).ok_or_else(|| ToolError::Invalid {
        field: field.to_owned(),
        message: "is required".to_owned(),
    })
}

fn check_time(args: &Map<String, Value>, field: &str) -> Result<(), ToolError> {
    if let Some(v) = args.get(field)
        && matching::parse_time(v).is_none()
    {
        return Err(ToolError::Invalid {
            field: field.to_owned(),
            message: "is not an RFC 3339 time or epoch seconds".to_owned(),
        });
    }
    Ok(())
}

/// Answers a data tool (everything but `submit_rca`) from `world`.
pub fn answer(
    world: &ReplayWorld,
    tool: &str,
    args: &Map<String, Value>,
) -> Result<Found, ToolError> {
    match tool {
        "query_metrics" | "search_logs" => {
            required(args, "query")?;
            check_time(args, "start")?;
            check_time(args, "end")?;
            Ok(matching::lookup(world, tool, args))
        }
        "get_traces" => {
            required(args, "service")?;
            check_time(args, "start")?;
            check_time(args, "end")?;
            Ok(matching::lookup(world, tool, args))
        }
        "get_events" => {
            check_time(args, "start")?;
            check_time(args, "end")?;
            Ok(matching::lookup(world, tool, args))
        }
        "list_services" => Ok(matching::lookup(world, tool, &Map::new())),
        "get_service_dependencies" => {
            let service =
                required(args, "service")?
                    .as_str()
                    .ok_or_else(|| ToolError::Invalid {
                        field: "service".into(),
                        message: "must be a string".into(),
                    })?;
            Ok(dependencies(world, service))
        }
        other => Err(ToolError::UnknownTool(other.to_owned())),
    }
}

/// `get_service_dependencies`, read from the frozen topology.
fn dependencies(world: &ReplayWorld, service: &str) -> Found {
    let topology = matching::lookup(world, "list_services", &Map::new());
    let Some(services) = topology
        .result
        .pointer("/data/services")
        .and_then(Value::as_array)
    else {
        return topology;
    };
    let calls_of = |s: &Value| -> Vec<String> {
        s.get("calls")
            .and_then(Value::as_array)
            .map(|c| {
                c.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let Some(entry) = services
        .iter()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(service))
    else {
        return Found {
            kind: MatchKind::NoData,
            query_id: None,
            result: Value::Null,
        };
    };
    let callers: Vec<&str> = services
        .iter()
        .filter(|s| calls_of(s).iter().any(|c| c == service))
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .collect();
    Found {
        kind: topology.kind,
        query_id: topology.query_id,
        result: json!({"status": "success", "data": {"service": service, "calls": calls_of(entry), "called_by": callers}}),
    }
}

/// The JSON a tool call answers with: the frozen result, or a "no data" answer that says so.
pub fn to_json(found: &Found) -> Value {
    match found.kind {
        MatchKind::NoData => json!({
            "status": "success",
            "data": {"result": []},
            "warnings": ["no data: this query has no answer in the snapshot"],
        }),
        _ => found.result.clone(),
    }
}

/// The Prometheus API's `query` (instant): the last frozen point at or before `time` of every
/// series a matching range query froze.
pub fn prometheus_instant(
    world: &ReplayWorld,
    args: &Map<String, Value>,
) -> Result<(Found, Value), ToolError> {
    required(args, "query")?;
    check_time(args, "time")?;
    let time = args
        .get("time")
        .and_then(matching::parse_time)
        .or(world.now_ms)
        .unwrap_or(0);
    let mut range_args = args.clone();
    range_args.remove("time");
    let found = matching::lookup(world, "query_metrics", &range_args);
    let mut vector = Vec::new();
    if let Some(series) = found
        .result
        .pointer("/data/result")
        .and_then(Value::as_array)
    {
        for s in series {
            let last = s
                .get("values")
                .and_then(Value::as_array)
                .and_then(|points| {
                    points.iter().rfind(|p| {
                        p.get(0)
                            .and_then(Value::as_f64)
                            .is_some_and(|t| (t * 1000.0) as i64 <= time)
                    })
                });
            if let Some(point) = last {
                vector.push(json!({"metric": s.get("metric").cloned().unwrap_or(json!({})), "value": point}));
            }
        }
    }
    let body = json!({"status": "success", "data": {"resultType": "vector", "result": vector}});
    Ok((found, body))
}

/// The Prometheus API's `query_range`.
pub fn prometheus_range(
    world: &ReplayWorld,
    args: &Map<String, Value>,
) -> Result<(Found, Value), ToolError> {
    let found = answer(world, "query_metrics", args)?;
    let body = match found.kind {
        MatchKind::NoData => {
            json!({"status": "success", "data": {"resultType": "matrix", "result": []}, "warnings": ["no data: this query has no answer in the snapshot"]})
        }
        _ => found.result.clone(),
    };
    Ok((found, body))
}

/// Every label set of the frozen metric answers, filtered by the equality matchers of `match[]`.
pub fn prometheus_series(world: &ReplayWorld, matchers: &[String]) -> Value {
    let wanted: Vec<(String, String)> = matchers
        .iter()
        .flat_map(|m| {
            let inner = m
                .split_once('{')
                .map_or("", |(_, r)| r.trim_end_matches('}'));
            inner
                .split(',')
                .filter_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    if k.ends_with('!') || v.starts_with('~') {
                        return None;
                    }
                    Some((k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let mut series: Vec<Value> = Vec::new();
    for label_set in frozen_label_sets(world) {
        let keep = wanted
            .iter()
            .all(|(k, v)| label_set.get(k).and_then(Value::as_str) == Some(v));
        if keep && !series.contains(&label_set) {
            series.push(label_set);
        }
    }
    json!({"status": "success", "data": series})
}

/// Every label name of the frozen metric answers.
pub fn prometheus_labels(world: &ReplayWorld) -> Value {
    let mut names: Vec<String> = frozen_label_sets(world)
        .iter()
        .filter_map(Value::as_object)
        .flat_map(|m| m.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    json!({"status": "success", "data": names})
}

fn frozen_label_sets(world: &ReplayWorld) -> Vec<Value> {
    world
        .queries
        .iter()
        .filter(|q| q.tool == "query_metrics")
        .filter_map(|q| q.result.pointer("/data/result")?.as_array().cloned())
        .flatten()
        .filter_map(|s| s.get("metric").cloned())
        .collect()
}
