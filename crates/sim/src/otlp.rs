//! Encodes an investigation as an OTLP trace with the OTel GenAI conventions and the `evalmint.*`
//! attributes of docs/otel-attributes.md, optionally split into two export requests.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span::SpanKind, status::StatusCode,
};
use serde_json::json;

use crate::agent::{AGENT_NAME, Investigation, Step};
use crate::rng::SimRng;
use crate::telemetry::rfc3339_ms;

fn string_value(v: impl Into<String>) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(v.into())),
    }
}

fn kv(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(string_value(value)),
        ..Default::default()
    }
}

fn kv_bool(key: &str, value: bool) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::BoolValue(value)),
        }),
        ..Default::default()
    }
}

fn kv_strings(key: &str, values: &[String]) -> KeyValue {
    let values = values.iter().map(|v| string_value(v.clone())).collect();
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue { values })),
        }),
        ..Default::default()
    }
}

fn nanos(ms: i64) -> u64 {
    (ms.max(0) as u64) * 1_000_000
}

fn assistant_message(text: &str) -> String {
    json!([{"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": "stop"}]).to_string()
}

/// All spans of an investigation, the root `invoke_agent` span first.
pub fn spans(investigation: &Investigation) -> Vec<Span> {
    let inv = investigation;
    let trace_id = inv.trace_id.to_vec();
    let model = inv.version.model();
    let mut root_attributes = vec![
        kv("gen_ai.operation.name", "invoke_agent"),
        kv("gen_ai.agent.name", AGENT_NAME),
        kv("gen_ai.agent.version", inv.version.as_str()),
        kv("gen_ai.request.model", model),
        kv("evalmint.agent.config_hash", inv.version.config_hash()),
        kv("evalmint.trigger.kind", inv.trigger.kind),
        kv("evalmint.trigger.text", inv.trigger.text.clone()),
        kv("evalmint.trigger.monitor", inv.trigger.monitor.clone()),
        kv(
            "evalmint.trigger.fired_at",
            rfc3339_ms(inv.trigger.fired_at_ms),
        ),
        kv("evalmint.conclusion", inv.conclusion.clone()),
    ];
    root_attributes.push(kv(
        "gen_ai.output.messages",
        assistant_message(&inv.conclusion),
    ));
    let mut out = vec![Span {
        trace_id: trace_id.clone(),
        span_id: inv.root_span_id.to_vec(),
        name: format!("invoke_agent {AGENT_NAME}"),
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: nanos(inv.started_ms),
        end_time_unix_nano: nanos(inv.ended_ms),
        attributes: root_attributes,
        status: Some(Status {
            message: String::new(),
            code: StatusCode::Ok as i32,
        }),
        ..Default::default()
    }];
    for step in &inv.steps {
        let span = match step {
            Step::Chat {
                span_id,
                start_ms,
                end_ms,
                output,
            } => Span {
                trace_id: trace_id.clone(),
                span_id: span_id.to_vec(),
                parent_span_id: inv.root_span_id.to_vec(),
                name: format!("chat {model}"),
                kind: SpanKind::Client as i32,
                start_time_unix_nano: nanos(*start_ms),
                end_time_unix_nano: nanos(*end_ms),
                attributes: vec![
                    kv("gen_ai.operation.name", "chat"),
                    kv("gen_ai.request.model", model),
                    kv("gen_ai.output.messages", assistant_message(output)),
                ],
                ..Default::default()
            },
            Step::Tool {
                span_id,
                start_ms,
                end_ms,
                tool,
                arguments,
                result,
                truncated,
                source,
                query,
                window,
                entities,
                error,
            } => {
                let mut attributes = vec![
                    kv("gen_ai.operation.name", "execute_tool"),
                    kv("gen_ai.tool.name", *tool),
                    kv("gen_ai.tool.call.arguments", arguments.to_string()),
                    kv("gen_ai.tool.call.result", result.clone()),
                    kv("evalmint.tool.source", *source),
                    kv("evalmint.tool.query", query.clone()),
                    kv("evalmint.tool.window.start", rfc3339_ms(window.0)),
                    kv("evalmint.tool.window.end", rfc3339_ms(window.1)),
                    kv_strings("evalmint.tool.entities", entities),
                ];
                if *truncated {
                    attributes.push(kv_bool("evalmint.tool.result_truncated", true));
                }
                let status = match error {
                    Some(message) => Status {
                        message: message.clone(),
                        code: StatusCode::Error as i32,
                    },
                    None => Status {
                        message: String::new(),
                        code: StatusCode::Ok as i32,
                    },
                };
                Span {
                    trace_id: trace_id.clone(),
                    span_id: span_id.to_vec(),
                    parent_span_id: inv.root_span_id.to_vec(),
                    name: format!("execute_tool {tool}"),
                    kind: SpanKind::Internal as i32,
                    start_time_unix_nano: nanos(*start_ms),
                    end_time_unix_nano: nanos(*end_ms),
                    attributes,
                    status: Some(status),
                    ..Default::default()
                }
            }
        };
        out.push(span);
    }
    out
}

fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", AGENT_NAME)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "evalmint-sim".to_string(),
                    version: env!("CARGO_PKG_VERSION").to_string(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// The export requests for one investigation in the order they are sent: usually one; sometimes
/// (`split_probability`) two, and then in half of the cases the children arrive before the root.
pub fn export_requests(
    investigation: &Investigation,
    split_key: u64,
    split_probability: f64,
) -> Vec<ExportTraceServiceRequest> {
    let rng = &mut SimRng::new(split_key);
    let all = spans(investigation);
    if all.len() < 3 || !rng.chance(split_probability) {
        return vec![request(all)];
    }
    let cut = 1 + rng.index(all.len() - 2);
    let mut first = all;
    let second = first.split_off(cut);
    let mut requests = vec![request(first), request(second)];
    if rng.chance(0.5) {
        requests.reverse();
    }
    requests
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::{AgentVersion, Trigger};

    fn investigation() -> Investigation {
        let steps = (0..6u8)
            .map(|i| Step::Chat {
                span_id: [i + 1; 8],
                start_ms: 1_000 + i64::from(i),
                end_ms: 1_001 + i64::from(i),
                output: format!("step {i}"),
            })
            .collect();
        Investigation {
            trace_id: [7; 16],
            root_span_id: [9; 8],
            version: AgentVersion::V1,
            trigger: Trigger {
                kind: "alert",
                monitor: "m".into(),
                service: "s".into(),
                text: "t".into(),
                fired_at_ms: 500,
            },
            started_ms: 1_000,
            ended_ms: 2_000,
            steps,
            conclusion: "Root cause: x".into(),
            blamed: "x".into(),
            mechanism: "y".into(),
            onset_ms: None,
            took_loudest_symptom: false,
        }
    }

    #[test]
    fn a_split_trace_keeps_every_span_once_and_sometimes_sends_children_first() {
        let inv = investigation();
        let mut children_first = 0;
        for key in 0..40 {
            let requests = export_requests(&inv, key, 1.0);
            assert_eq!(requests.len(), 2);
            let spans: Vec<&Span> = requests
                .iter()
                .flat_map(|r| &r.resource_spans[0].scope_spans[0].spans)
                .collect();
            assert_eq!(spans.len(), 7);
            let mut ids: Vec<&Vec<u8>> = spans.iter().map(|s| &s.span_id).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), 7);
            let root_in_second = requests[1].resource_spans[0].scope_spans[0]
                .spans
                .iter()
                .any(|s| s.parent_span_id.is_empty());
            children_first += usize::from(root_in_second);
        }
        assert!(
            (5..35).contains(&children_first),
            "children first in {children_first} of 40"
        );
        assert_eq!(export_requests(&inv, 1, 0.0).len(), 1);
    }
}
