//! Deriving what a tool call read — its telemetry source, query text, time window and entities —
//! from explicit `evalmint.tool.*` attributes or, failing those, from the tool's name and arguments.

use evalmint_model::{SignalSource, TimeWindow, Timestamp};
use serde_json::{Map, Value};

use crate::attributes::Attributes;

const QUERY_KEYS: &[&str] = &["query", "promql", "expr", "q", "search", "filter"];
const ENTITY_KEYS: &[&str] = &[
    "service",
    "services",
    "pod",
    "host",
    "namespace",
    "database",
    "db",
    "topic",
    "consumer_group",
    "entity",
    "component",
];
const ENTITY_LABELS: &[&str] = &[
    "service",
    "pod",
    "host",
    "namespace",
    "database",
    "db",
    "topic",
    "consumergroup",
    "consumer_group",
    "component",
    "job",
    "instance",
];

/// The telemetry source: explicit attribute, else inferred from the tool name.
pub(crate) fn source(attrs: &Attributes<'_>, tool_name: &str) -> SignalSource {
    if let Some(explicit) = attrs
        .text(&["evalmint.tool.source"])
        .and_then(|s| SignalSource::parse(&s.to_ascii_lowercase()))
    {
        return explicit;
    }
    infer_source(tool_name)
}

fn infer_source(tool_name: &str) -> SignalSource {
    let name = tool_name.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| name.contains(w));
    if has(&["metric", "prom", "query_range", "timeseries"]) {
        SignalSource::Metrics
    } else if has(&["log"]) {
        SignalSource::Logs
    } else if has(&["trace", "span"]) {
        SignalSource::Traces
    } else if has(&["event", "deploy", "change", "incident"]) {
        SignalSource::Events
    } else if has(&["k8s", "kube", "pod", "host", "node", "infra", "service"]) {
        SignalSource::Infra
    } else {
        SignalSource::Unknown
    }
}

/// The query text: explicit attribute, else a query-like argument, else the raw arguments.
pub(crate) fn query(
    attrs: &Attributes<'_>,
    arguments: Option<&Map<String, Value>>,
    raw: &str,
) -> String {
    attrs
        .text(&["evalmint.tool.query"])
        .or_else(|| {
            let args = arguments?;
            QUERY_KEYS
                .iter()
                .find_map(|k| args.get(*k).and_then(Value::as_str).map(str::to_owned))
        })
        .unwrap_or_else(|| raw.to_owned())
}

/// The time window the query read.
pub(crate) fn window(
    attrs: &Attributes<'_>,
    arguments: Option<&Map<String, Value>>,
    span_start: Timestamp,
) -> Option<TimeWindow> {
    let explicit = (
        attrs
            .text(&["evalmint.tool.window.start"])
            .and_then(|s| parse_time(&Value::String(s))),
        attrs
            .text(&["evalmint.tool.window.end"])
            .and_then(|s| parse_time(&Value::String(s))),
    );
    if let (Some(start), Some(end)) = explicit {
        return TimeWindow::new(start, end);
    }
    let args = arguments?;
    let time_arg = |keys: &[&str]| keys.iter().find_map(|k| args.get(*k).and_then(parse_time));
    let start = time_arg(&["start", "from", "since", "start_time"]);
    let end = time_arg(&["end", "to", "until", "end_time"]);
    let lookback = ["range", "lookback", "duration", "window"]
        .iter()
        .find_map(|k| {
            args.get(*k)
                .and_then(Value::as_str)
                .and_then(evalmint_model::parse_duration)
        });
    match (start, end, lookback) {
        (Some(start), Some(end), _) => TimeWindow::new(start, end),
        (Some(start), None, Some(d)) => TimeWindow::new(start, start.checked_add(d).ok()?),
        (Some(start), None, None) => TimeWindow::new(start, span_start.max(start)),
        (None, Some(end), Some(d)) => TimeWindow::new(end.checked_sub(d).ok()?, end),
        (None, None, Some(d)) => TimeWindow::new(span_start.checked_sub(d).ok()?, span_start),
        _ => None,
    }
}

/// Entity names: explicit attribute, else entity-like arguments and label matchers in the query.
pub(crate) fn entities(
    attrs: &Attributes<'_>,
    arguments: Option<&Map<String, Value>>,
    query: &str,
) -> Vec<String> {
    if let Some(explicit) = attrs.string_list("evalmint.tool.entities") {
        return normalise(explicit);
    }
    let mut found = Vec::new();
    if let Some(args) = arguments {
        for key in ENTITY_KEYS {
            match args.get(*key) {
                Some(Value::String(s)) => found.push(s.clone()),
                Some(Value::Array(items)) => {
                    found.extend(items.iter().filter_map(Value::as_str).map(str::to_owned))
                }
                _ => {}
            }
        }
    }
    found.extend(label_matcher_values(query));
    normalise(found)
}

fn normalise(mut names: Vec<String>) -> Vec<String> {
    names.retain(|n| !n.trim().is_empty());
    for name in &mut names {
        *name = name.trim().to_owned();
    }
    names.sort();
    names.dedup();
    names
}

/// Values of `label="value"` / `label=~"value"` matchers for entity-like labels, read from the
/// parsed PromQL expression; a regex that is more than a literal names no single entity. A query
/// that is not PromQL yields none (its entities come from the arguments).
fn label_matcher_values(query: &str) -> Vec<String> {
    let Ok(expr) = promql_parser::parser::parse(query) else {
        return Vec::new();
    };
    let mut collect = EntityMatchers(Vec::new());
    let Ok(_) = promql_parser::util::walk_expr(&mut collect, &expr);
    collect.0
}

/// Collects entity values from the selectors of a PromQL expression.
struct EntityMatchers(Vec<String>);

impl promql_parser::util::ExprVisitor for EntityMatchers {
    type Error = std::convert::Infallible;

    fn pre_visit(&mut self, expr: &promql_parser::parser::Expr) -> Result<bool, Self::Error> {
        use promql_parser::label::MatchOp;
        use promql_parser::parser::Expr;
        let selector = match expr {
            Expr::VectorSelector(selector) => selector,
            Expr::MatrixSelector(matrix) => &matrix.vs,
            _ => return Ok(true),
        };
        let matchers = &selector.matchers;
        for matcher in matchers
            .matchers
            .iter()
            .chain(matchers.or_matchers.iter().flatten())
        {
            let literal = match &matcher.op {
                MatchOp::Equal => true,
                MatchOp::Re(_) => !matcher.value.contains(['*', '|', '(', '[', '+', '?', '.']),
                MatchOp::NotEqual | MatchOp::NotRe(_) => false,
            };
            if literal && ENTITY_LABELS.contains(&matcher.name.to_ascii_lowercase().as_str()) {
                self.0.push(matcher.value.clone());
            }
        }
        Ok(true)
    }
}

/// RFC 3339 text, or Unix seconds / milliseconds as a number or numeric string.
pub(crate) fn parse_time(value: &Value) -> Option<Timestamp> {
    let number = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(n) => n,
            Err(_) => return s.trim().parse::<Timestamp>().ok(),
        },
        _ => return None,
    };
    if !number.is_finite() || number <= 0.0 {
        return None;
    }
    // Beyond the year 5138 in seconds means the number is in milliseconds.
    let seconds = if number > 1e11 {
        number / 1000.0
    } else {
        number
    };
    Timestamp::from_nanosecond((seconds * 1e9) as i128).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_inferred_from_tool_names() {
        assert_eq!(infer_source("query_metrics"), SignalSource::Metrics);
        assert_eq!(infer_source("search_logs"), SignalSource::Logs);
        assert_eq!(infer_source("get_traces"), SignalSource::Traces);
        assert_eq!(infer_source("get_events"), SignalSource::Events);
        assert_eq!(infer_source("list_services"), SignalSource::Infra);
        assert_eq!(infer_source("submit_rca"), SignalSource::Unknown);
    }

    #[test]
    fn label_matchers_name_entities_but_not_patterns() {
        let q = r#"histogram_quantile(0.99, rate(http_duration_bucket{service="checkout", namespace=~"prod", pod=~"api-.*", code!="200"}[5m]))"#;
        assert_eq!(label_matcher_values(q), ["checkout", "prod"]);
    }

    #[test]
    fn label_matchers_are_read_from_the_expression_not_from_look_alike_text() {
        // `service="x"` inside a string literal or a label name ending in `service` is no matcher.
        let q = r#"label_replace(up{backend_service="a", job="api"}, "dst", "service=\"fake\"", "src", "(.*)") or on(pod) rate(errors_total{pod="api-1"}[5m])"#;
        assert_eq!(label_matcher_values(q), ["api", "api-1"]);
        assert!(label_matcher_values("level:warn service=\"checkout\" |= timeout").is_empty());
    }

    #[test]
    fn times_and_durations_parse_in_every_documented_form() {
        let expected: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        for v in [
            serde_json::json!("2026-01-01T00:00:00Z"),
            serde_json::json!(1_767_225_600),
            serde_json::json!("1767225600"),
            serde_json::json!(1_767_225_600_000_i64),
        ] {
            assert_eq!(parse_time(&v), Some(expected), "{v}");
        }
        assert_eq!(parse_time(&serde_json::json!("yesterday")), None);
    }
}
