//! The OTLP spans the ingest benchmarks send: by default traces shaped like a real SRE agent's
//! (GenAI attributes, JSON tool arguments, tool results of a few hundred bytes, about 880 bytes a
//! span on the wire), or the lighter spans of earlier runs with `--light`.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

/// What a benchmark trace looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpanShape {
    /// An agent run of six spans: the agent, two model calls and three tool calls with JSON
    /// arguments and results, as an instrumented SRE agent exports them.
    Agent,
    /// Ten short spans per trace with small attributes.
    Light,
}

impl SpanShape {
    pub(crate) fn spans_per_trace(self) -> usize {
        match self {
            SpanShape::Agent => 6,
            SpanShape::Light => 10,
        }
    }

    /// The shape's usual request: 100 traces of 6 spans, or 500 light spans.
    pub(crate) fn default_batch_spans(self) -> usize {
        match self {
            SpanShape::Agent => 600,
            SpanShape::Light => 500,
        }
    }
}

/// SplitMix64's finalizer: spreads consecutive numbers over the whole range, as real trace and
/// span ids (random) are spread over the store's indexes.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The id of the `index`th benchmark trace, random-looking like a real one; `run` keeps runs
/// against one server apart.
pub(crate) fn trace_id(run: u8, index: usize) -> [u8; 16] {
    let high = mix((u64::from(run) << 56) ^ index as u64);
    let low = mix(high ^ index as u64);
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&high.to_be_bytes());
    id[8..].copy_from_slice(&low.to_be_bytes());
    id
}

/// The id of the benchmark's `index`th span.
fn span_id(run: u8, index: usize) -> [u8; 8] {
    mix((u64::from(run) << 56) ^ (index as u64) ^ 0x5eed_0000_0000)
        .max(1)
        .to_be_bytes()
}

pub(crate) fn hex_trace_id(run: u8, index: usize) -> String {
    hex::encode(trace_id(run, index))
}

fn text(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..KeyValue::default()
    }
}

/// One export request holding the spans `first_span..first_span + spans` of the benchmark.
pub(crate) fn encode_batch(shape: SpanShape, run: u8, first_span: usize, spans: usize) -> Vec<u8> {
    let base_nanos: u64 = 1_767_225_600_000_000_000;
    let per_trace = shape.spans_per_trace();
    let built: Vec<Span> = (first_span..first_span + spans)
        .map(|global| {
            let trace = global / per_trace;
            let position = global % per_trace;
            let start =
                base_nanos + (trace as u64) * 60_000_000_000 + position as u64 * 1_000_000_000;
            let root = span_id(run, trace * per_trace);
            let (name, attributes) = match shape {
                SpanShape::Agent => agent_span(trace, position),
                SpanShape::Light => light_span(trace, position),
            };
            Span {
                trace_id: trace_id(run, trace).to_vec(),
                span_id: span_id(run, global).to_vec(),
                parent_span_id: if position == 0 {
                    Vec::new()
                } else {
                    root.to_vec()
                },
                name,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 500_000_000,
                attributes,
                ..Span::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    text("service.name", "sre-agent"),
                    text("deployment.environment", "production"),
                ],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: built,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
    .encode_to_vec()
}

const SERVICES: [&str; 6] = [
    "checkout",
    "payments",
    "payments-db",
    "inventory",
    "frontend",
    "auth",
];

fn agent_span(trace: usize, position: usize) -> (String, Vec<KeyValue>) {
    let service = SERVICES[trace % SERVICES.len()];
    let neighbour = SERVICES[(trace + 2) % SERVICES.len()];
    let model = |tokens_in: i64, tokens_out: i64| {
        vec![
            text("gen_ai.operation.name", "chat"),
            text("gen_ai.system", "openai"),
            text("gen_ai.request.model", "gpt-4o-2024-08-06"),
            text("gen_ai.response.model", "gpt-4o-2024-08-06"),
            int("gen_ai.usage.input_tokens", tokens_in + trace as i64 % 97),
            int("gen_ai.usage.output_tokens", tokens_out),
        ]
    };
    match position {
        0 => (
            "invoke_agent sre-agent".to_owned(),
            vec![
                text("gen_ai.operation.name", "invoke_agent"),
                text("gen_ai.agent.name", "sre-agent"),
                text("gen_ai.agent.version", "2.14.0"),
                text("gen_ai.request.model", "gpt-4o-2024-08-06"),
                text(
                    "evalmint.agent.config_hash",
                    format!("cfg-{:016x}", trace as u64 * 0x9e37_79b9),
                ),
                text("evalmint.trigger.kind", "alert"),
                text("gen_ai.conversation.id", format!("conv-{trace:012x}")),
                text("user.id", format!("oncall-{}", trace % 40)),
                text("evalmint.trigger.monitor", format!("{service}-latency-p99")),
                text(
                    "evalmint.trigger.text",
                    format!(
                        "[FIRING] {service} p99 latency above 2s for 5m (alert #{trace}) on prod-eu-1"
                    ),
                ),
                text(
                    "evalmint.conclusion",
                    format!(
                        "Root cause: {neighbour} connection pool exhaustion starting 14:02 UTC after deploy \
                         {neighbour}@v{}. {service} errors and latency are a downstream symptom; \
                         recommend rolling back and raising pool size.",
                        trace % 300
                    ),
                ),
            ],
        ),
        1 | 5 => {
            let mut attributes = model(3_400, 180);
            attributes.push(text(
                "gen_ai.input.messages",
                format!(
                    r#"[{{"role":"system","parts":[{{"type":"text","content":"You are an SRE agent. Investigate the alert, query metrics, logs and events, and name the root cause with evidence."}}]}},{{"role":"user","parts":[{{"type":"text","content":"[FIRING] {service} p99 latency above 2s for 5m (alert #{trace}). Find the root cause."}}]}}]"#
                ),
            ));
            attributes.push(text(
                "gen_ai.output.messages",
                format!(
                    r#"[{{"role":"assistant","parts":[{{"type":"text","content":"The {service} latency spike starts at 14:02, right when {neighbour} begins returning connection errors. Next: check {neighbour} saturation and recent deploys."}}]}}]"#
                ),
            ));
            (format!("chat gpt-4o step {position}"), attributes)
        }
        _ => {
            let (tool, arguments, result) = match position {
                2 => (
                    "query_metrics",
                    format!(
                        r#"{{"query":"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{{service=\"{service}\"}}[5m])))","start":"2026-01-01T13:30:00Z","end":"2026-01-01T14:30:00Z","step":"60s"}}"#
                    ),
                    format!(
                        r#"{{"resultType":"matrix","result":[{{"metric":{{"service":"{service}"}},"values":[[1767274200,"0.212"],[1767274260,"0.231"],[1767274320,"0.226"],[1767274380,"0.219"],[1767274440,"1.874"],[1767274500,"2.412"],[1767274560,"2.551"],[1767274620,"2.498"],[1767274680,"2.6{trace}"]]}}]}}"#
                    ),
                ),
                3 => (
                    "search_logs",
                    format!(
                        r#"{{"service":"{neighbour}","query":"level:error AND (timeout OR pool)","start":"2026-01-01T13:50:00Z","end":"2026-01-01T14:20:00Z","limit":20}}"#
                    ),
                    format!(
                        r#"[{{"ts":"2026-01-01T14:02:11Z","service":"{neighbour}","level":"error","msg":"connection pool exhausted (max=50, waiting=212)"}},{{"ts":"2026-01-01T14:02:14Z","service":"{service}","level":"error","msg":"upstream {neighbour} timed out after 2000ms"}},{{"ts":"2026-01-01T14:02:19Z","service":"{neighbour}","level":"error","msg":"acquire connection timed out"}}]"#
                    ),
                ),
                _ => (
                    "get_events",
                    format!(
                        r#"{{"services":["{service}","{neighbour}"],"start":"2026-01-01T12:00:00Z","end":"2026-01-01T14:30:00Z","kinds":["deploy","config_change","scale"]}}"#
                    ),
                    format!(
                        r#"[{{"ts":"2026-01-01T13:58:40Z","kind":"deploy","service":"{neighbour}","version":"v{}","author":"ci-bot","change":"lower max pool size 100 -> 50; enable statement cache"}},{{"ts":"2026-01-01T11:02:00Z","kind":"scale","service":"{service}","replicas":"6 -> 8"}}]"#,
                        trace % 300
                    ),
                ),
            };
            (
                format!("execute_tool {tool}"),
                vec![
                    text("gen_ai.operation.name", "execute_tool"),
                    text("gen_ai.tool.name", tool),
                    text("gen_ai.tool.type", "function"),
                    text(
                        "gen_ai.tool.description",
                        format!("{tool} against the production observability stack"),
                    ),
                    text("server.address", "observability.prod-eu-1.internal"),
                    text(
                        "gen_ai.tool.call.id",
                        format!("call_{trace:08x}{position:02}"),
                    ),
                    text("gen_ai.tool.call.arguments", arguments),
                    text("gen_ai.tool.call.result", result),
                ],
            )
        }
    }
}

fn light_span(trace: usize, position: usize) -> (String, Vec<KeyValue>) {
    let attributes = match position {
        0 => vec![
            text("gen_ai.operation.name", "invoke_agent"),
            text("gen_ai.agent.name", "sre-agent"),
            text("gen_ai.agent.version", "v1"),
            text(
                "evalmint.trigger.text",
                format!("checkout p99 latency above 2s (alert {trace})"),
            ),
            text(
                "evalmint.conclusion",
                "Root cause: payments-db connection pool exhaustion starting 14:02 UTC; checkout errors are a downstream symptom.",
            ),
        ],
        1..=6 => vec![
            text("gen_ai.operation.name", "execute_tool"),
            text("gen_ai.tool.name", "query_metrics"),
            text(
                "gen_ai.tool.call.arguments",
                r#"{"query":"histogram_quantile(0.99, rate(http_request_duration_seconds_bucket{service=\"checkout\"}[5m]))","range":"30m"}"#,
            ),
            text(
                "gen_ai.tool.call.result",
                format!(
                    r#"{{"resultType":"matrix","result":[{{"metric":{{"service":"checkout"}},"values":[[1767225600,"0.21"],[1767225660,"0.24"],[1767225720,"2.{position}"]]}}]}}"#
                ),
            ),
        ],
        _ => vec![
            text("gen_ai.operation.name", "chat"),
            text("gen_ai.request.model", "gpt-4o-2024-08-06"),
            text(
                "gen_ai.output.messages",
                r#"[{"role":"assistant","parts":[{"type":"text","content":"The latency spike in checkout follows connection errors from payments-db."}]}]"#,
            ),
        ],
    };
    let name = if position == 0 {
        "invoke_agent sre-agent".to_owned()
    } else {
        format!("step {position}")
    };
    (name, attributes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_spans_are_about_880_bytes_on_the_wire_and_map_to_steps() {
        let spans = 600;
        let body = encode_batch(SpanShape::Agent, 0, 0, spans);
        let per_span = body.len() / spans;
        assert!(
            (780..=980).contains(&per_span),
            "{per_span} bytes a span is not a realistic agent span"
        );
        let request =
            evalmint_otlp::decode_request(&body, evalmint_otlp::Encoding::Protobuf).unwrap();
        let mapped = evalmint_otlp::map_request(&request);
        assert_eq!(mapped.steps.len(), spans);
        assert_eq!(mapped.rejected_spans, 0);
        let tool_calls = mapped
            .steps
            .iter()
            .filter(|m| {
                m.step
                    .tool_call
                    .as_ref()
                    .is_some_and(|c| c.result.is_some())
            })
            .count();
        assert_eq!(
            tool_calls,
            spans / 2,
            "three of six spans are tool calls with results"
        );
    }

    #[test]
    fn light_spans_keep_their_shape() {
        let body = encode_batch(SpanShape::Light, 0, 0, 500);
        let request =
            evalmint_otlp::decode_request(&body, evalmint_otlp::Encoding::Protobuf).unwrap();
        assert_eq!(evalmint_otlp::map_request(&request).steps.len(), 500);
    }
}
