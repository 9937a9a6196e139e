//! How a tool call finds its frozen answer: an exact match, a normalised match (whitespace,
//! label and list order, equivalent durations), or a sub-window / coarser step of a captured
//! range. Anything else is "no data".

use serde_json::{Map, Value};

use crate::world::{FrozenQuery, ReplayWorld};

/// Argument names that give the time range rather than what is asked.
const TIME_KEYS: [&str; 6] = ["start", "end", "step", "time", "limit", "timeout"];

/// How a call was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    Exact,
    Normalised,
    Slice,
    NoData,
}

impl MatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::Normalised => "normalised",
            MatchKind::Slice => "slice",
            MatchKind::NoData => "no_data",
        }
    }
}

/// A call's answer: the frozen query it came from and the (possibly sliced) result.
#[derive(Debug, Clone)]
pub struct Found {
    pub kind: MatchKind,
    pub query_id: Option<String>,
    pub result: Value,
}

impl Found {
    fn none() -> Self {
        Found {
            kind: MatchKind::NoData,
            query_id: None,
            result: Value::Null,
        }
    }
}

/// The key of a call: its tool and its arguments apart from times, normalised when asked.
pub(crate) fn request_key(tool: &str, arguments: &Map<String, Value>, normalise: bool) -> String {
    let mut parts: Vec<(String, String)> = arguments
        .iter()
        .filter(|(k, _)| !TIME_KEYS.contains(&k.as_str()))
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            let text = if !normalise {
                text
            } else if k == "query" && tool == "query_metrics" {
                normalise_promql(&text)
            } else {
                normalise_text(&text)
            };
            // `service` and `services` name the same thing in different tools' dialects.
            let key = if normalise && k == "service" {
                "services".to_owned()
            } else {
                k.clone()
            };
            (key, text)
        })
        .collect();
    parts.sort();
    let args: Vec<String> = parts.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{tool}?{}", args.join("&"))
}

/// Whitespace collapsed, whitespace-separated words sorted, comma lists inside words sorted.
fn normalise_text(text: &str) -> String {
    let mut words: Vec<String> = text
        .split_whitespace()
        .map(|word| {
            let (head, list) = match word.split_once(':') {
                Some((h, l)) => (format!("{h}:"), l),
                None => (String::new(), word),
            };
            let mut items: Vec<&str> = list.split(',').filter(|s| !s.is_empty()).collect();
            items.sort_unstable();
            format!("{head}{}", items.join(","))
        })
        .collect();
    words.sort();
    words.join(" ")
}

/// PromQL with insignificant whitespace removed, label matchers sorted inside each selector and
/// range durations written in seconds.
pub(crate) fn normalise_promql(query: &str) -> String {
    let mut out = String::new();
    let mut chars = query.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                out.push(c);
                read_quoted(c, &mut chars, &mut out);
            }
            '{' => {
                let mut inner = String::new();
                while let Some(&n) = chars.peek() {
                    chars.next();
                    match n {
                        '}' => break,
                        '"' | '\'' | '`' => {
                            inner.push(n);
                            read_quoted(n, &mut chars, &mut inner);
                        }
                        n if n.is_whitespace() => {}
                        n => inner.push(n),
                    }
                }
                let mut matchers = split_outside_quotes(&inner);
                matchers.retain(|m| !m.is_empty());
                matchers.sort();
                out.push('{');
                out.push_str(&matchers.join(","));
                out.push('}');
            }
            '[' => {
                let mut inner = String::new();
                for n in chars.by_ref() {
                    if n == ']' {
                        break;
                    }
                    if !n.is_whitespace() {
                        inner.push(n);
                    }
                }
                let parts: Vec<String> = inner
                    .split(':')
                    .map(|d| {
                        evalmint_model::parse_duration(d)
                            .map_or_else(|| d.to_owned(), |s| format!("{}s", s.as_secs()))
                    })
                    .collect();
                out.push('[');
                out.push_str(&parts.join(":"));
                out.push(']');
            }
            c if c.is_whitespace() => {
                // Keep one space only where it separates two words (`sum by`, `a or b`).
                let prev_word = out.chars().last().is_some_and(is_word);
                let next_word = chars.peek().copied().is_some_and(is_word);
                if prev_word && next_word {
                    out.push(' ');
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == ':'
}

fn read_quoted(
    quote: char,
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    out: &mut String,
) {
    let mut escaped = false;
    for n in chars.by_ref() {
        out.push(n);
        if escaped {
            escaped = false;
        } else if n == '\\' {
            escaped = true;
        } else if n == quote {
            break;
        }
    }
}

fn split_outside_quotes(text: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        let current = parts.last_mut().expect("never empty");
        match quote {
            Some(q) => {
                current.push(c);
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == ',' => parts.push(String::new()),
            None => {
                if matches!(c, '"' | '\'' | '`') {
                    quote = Some(c);
                }
                current.push(c);
            }
        }
    }
    parts
}

/// A time argument: RFC 3339, or seconds since the epoch (number or numeric string).
pub(crate) fn parse_time(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_f64().map(|s| (s * 1000.0).round() as i64),
        Value::String(s) => {
            if let Ok(seconds) = s.trim().parse::<f64>() {
                return Some((seconds * 1000.0).round() as i64);
            }
            s.trim()
                .parse::<jiff::Timestamp>()
                .ok()
                .map(|t| t.as_millisecond())
        }
        _ => None,
    }
}

/// A step: seconds as a number, a numeric string or a duration (`2m`).
pub(crate) fn parse_step(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_f64().map(|s| s.round() as i64),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .map(|s| s.round() as i64)
            .or_else(|| evalmint_model::parse_duration(s).map(|d| d.as_secs())),
        _ => None,
    }
    .filter(|s| *s > 0)
}

pub(crate) fn window_of(arguments: &Map<String, Value>) -> Option<(i64, i64)> {
    let start = arguments.get("start").and_then(parse_time)?;
    let end = arguments.get("end").and_then(parse_time)?;
    (start <= end).then_some((start, end))
}

/// Finds the frozen answer to `tool` called with `arguments`.
pub fn lookup(world: &ReplayWorld, tool: &str, arguments: &Map<String, Value>) -> Found {
    let raw_key = request_key(tool, arguments, false);
    let key = request_key(tool, arguments, true);
    let mut requested = window_of(arguments);
    // Nothing existed after the investigation: a range reaching past it ends there.
    if let (Some((start, end)), Some(now)) = (requested, world.now_ms)
        && end > now
        && start <= now
    {
        requested = Some((start, now));
    }
    let step = arguments.get("step").and_then(parse_step);
    let limit = arguments
        .get("limit")
        .and_then(|l| l.as_u64().or_else(|| l.as_str()?.parse().ok()));
    let candidates = world
        .queries
        .iter()
        .filter(|q| q.tool == tool && q.key == key);
    let mut best: Option<Found> = None;
    for frozen in candidates {
        let same_text = frozen.raw_key == raw_key;
        let found = match (requested, frozen.window) {
            (None, _) => Some(Found {
                kind: if same_text {
                    MatchKind::Exact
                } else {
                    MatchKind::Normalised
                },
                query_id: Some(frozen.id.clone()),
                result: (*frozen.result).clone(),
            }),
            (Some(_), None) => None,
            (Some(req), Some(cap)) => slice(frozen, req, cap, step, same_text),
        };
        if let Some(found) = found {
            let better = best
                .as_ref()
                .is_none_or(|b| rank(found.kind) < rank(b.kind));
            if better {
                best = Some(found);
            }
        }
    }
    let mut found = best.unwrap_or_else(Found::none);
    if let Some(limit) = limit {
        truncate_rows(&mut found.result, limit as usize);
    }
    found
}

fn rank(kind: MatchKind) -> u8 {
    match kind {
        MatchKind::Exact => 0,
        MatchKind::Normalised => 1,
        MatchKind::Slice => 2,
        MatchKind::NoData => 3,
    }
}

fn slice(
    frozen: &FrozenQuery,
    req: (i64, i64),
    cap: (i64, i64),
    step: Option<i64>,
    same_text: bool,
) -> Option<Found> {
    if req.0 < cap.0 || req.1 > cap.1 {
        return None;
    }
    let same_step = match (step, frozen.step_secs) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    if req == cap && same_step {
        return Some(Found {
            kind: if same_text {
                MatchKind::Exact
            } else {
                MatchKind::Normalised
            },
            query_id: Some(frozen.id.clone()),
            result: (*frozen.result).clone(),
        });
    }
    let mut result = (*frozen.result).clone();
    if frozen.tool == "query_metrics" {
        let captured_step = frozen.step_secs.unwrap_or(0) * 1000;
        let wanted_step = step.map_or(captured_step, |s| s * 1000);
        // A finer step, or points that do not fall on the captured grid, cannot be answered.
        if captured_step > 0
            && (wanted_step < captured_step
                || wanted_step % captured_step != 0
                || (req.0 - cap.0) % captured_step != 0)
        {
            return None;
        }
        slice_matrix(&mut result, req, wanted_step);
    } else {
        slice_rows(&mut result, req);
    }
    Some(Found {
        kind: MatchKind::Slice,
        query_id: Some(frozen.id.clone()),
        result,
    })
}

fn slice_matrix(result: &mut Value, req: (i64, i64), step_ms: i64) {
    let Some(series) = result
        .pointer_mut("/data/result")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for s in series {
        if let Some(values) = s.get_mut("values").and_then(Value::as_array_mut) {
            values.retain(|point| {
                let Some(t) = point.get(0).and_then(Value::as_f64) else {
                    return false;
                };
                let t = (t * 1000.0).round() as i64;
                t >= req.0 && t <= req.1 && (step_ms == 0 || (t - req.0) % step_ms == 0)
            });
        }
    }
}

fn rows_mut(result: &mut Value) -> Option<&mut Vec<Value>> {
    if result.pointer("/data/result").is_some_and(Value::is_array) {
        return result
            .pointer_mut("/data/result")
            .and_then(Value::as_array_mut);
    }
    result.as_array_mut()
}

fn slice_rows(result: &mut Value, req: (i64, i64)) {
    if let Some(rows) = rows_mut(result) {
        rows.retain(|row| {
            let time = ["timestamp", "time", "start"]
                .iter()
                .find_map(|k| row.get(*k).and_then(parse_time));
            time.is_none_or(|t| t >= req.0 && t <= req.1)
        });
    }
}

fn truncate_rows(result: &mut Value, limit: usize) {
    if let Some(rows) = rows_mut(result) {
        rows.truncate(limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promql_normalises_whitespace_matcher_order_and_durations() {
        let a = normalise_promql(
            r#"sum by (service) (rate(http_errors{service="a", code=~"5.."}[5m]))"#,
        );
        let b = normalise_promql(
            r#"sum by(service)(rate(http_errors{code=~"5..",service="a"}[300s]))"#,
        );
        assert_eq!(a, b);
        assert_ne!(
            a,
            normalise_promql(r#"sum by (service) (rate(http_errors{service="b"}[5m]))"#)
        );
        // Commas and spaces inside a label value are part of the value.
        assert_ne!(
            normalise_promql(r#"x{a="1, 2"}"#),
            normalise_promql(r#"x{a="1,2"}"#)
        );
    }

    #[test]
    fn text_arguments_ignore_order_and_spacing() {
        assert_eq!(
            normalise_text("level:warn  service:b,a"),
            normalise_text("service:a,b level:warn")
        );
    }

    #[test]
    fn times_parse_as_rfc3339_or_epoch_seconds() {
        let rfc = parse_time(&Value::String("2026-03-01T12:00:00Z".into())).unwrap();
        assert_eq!(parse_time(&serde_json::json!(rfc / 1000)), Some(rfc));
        assert_eq!(
            parse_time(&Value::String(format!("{}", rfc / 1000))),
            Some(rfc)
        );
        assert_eq!(parse_step(&Value::String("2m".into())), Some(120));
        assert_eq!(parse_step(&serde_json::json!(120)), Some(120));
    }
}
