//! Fixture-driven checks of span mapping: an OTLP JSON export in, the mapped steps and feedback
//! out, compared against a reviewed rendering.

use evalmint_otlp::{Encoding, MappedBatch, decode_request, map_request};
use expect_test::{Expect, expect};
use prost::Message;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn render(batch: &MappedBatch) -> String {
    let mut out = String::new();
    for mapped in &batch.steps {
        out += &format!("trace {}\n", mapped.trace_id);
        out += &serde_json::to_string_pretty(&mapped.step).unwrap();
        out += "\n";
    }
    for mapped in &batch.feedback {
        out += &format!("feedback on {}\n", mapped.trace_id);
        out += &serde_json::to_string_pretty(&mapped.feedback).unwrap();
        out += "\n";
    }
    out += &format!(
        "rejected {}: {}\n",
        batch.rejected_spans,
        batch.rejection_message()
    );
    out
}

/// Maps the fixture from JSON, and again after a round trip through protobuf: both must agree.
fn check(name: &str, expected: Expect) {
    let request = decode_request(&fixture(name), Encoding::Json).unwrap();
    let from_json = render(&map_request(&request));
    let protobuf = request.encode_to_vec();
    let from_protobuf = render(&map_request(
        &decode_request(&protobuf, Encoding::Protobuf).unwrap(),
    ));
    assert_eq!(from_json, from_protobuf);
    expected.assert_eq(&from_json);
}

#[test]
fn genai_agent_trace() {
    check(
        "genai_trace.json",
        expect![[r#"
        trace 5b8efff798038103d269b633813fc60c
        {
          "span_id": "eee19b7ec3c1b174",
          "name": "invoke_agent sre",
          "kind": "agent",
          "started_at": "2026-01-01T00:00:00Z",
          "ended_at": "2026-01-01T00:01:00Z",
          "status": "ok",
          "agent": {
            "name": "sre-investigator",
            "version": "v1",
            "config_hash": "c0ffee"
          },
          "trigger": {
            "kind": "alert",
            "text": "checkout p99 latency above 2s",
            "monitor": "checkout p99 latency"
          },
          "output": "payments-db connection pool exhausted since 00:02 UTC"
        }
        trace 5b8efff798038103d269b633813fc60c
        {
          "span_id": "0102030405060708",
          "parent_span_id": "eee19b7ec3c1b174",
          "name": "execute_tool query_metrics",
          "kind": "tool",
          "started_at": "2026-01-01T00:00:10Z",
          "ended_at": "2026-01-01T00:00:11Z",
          "status": "unset",
          "agent": {
            "name": "sre-agent",
            "version": "1.4.0"
          },
          "tool_call": {
            "tool_name": "query_metrics",
            "source": "metrics",
            "query": "rate(http_errors_total{service=\"checkout\"}[5m])",
            "arguments": "{\"promql\":\"rate(http_errors_total{service=\\\"checkout\\\"}[5m])\",\"range\":\"30m\"}",
            "window": {
              "start": "2025-12-31T23:30:10Z",
              "end": "2026-01-01T00:00:10Z"
            },
            "entities": [
              "checkout"
            ],
            "result": "{\"series\": 1}",
            "result_truncated": false
          }
        }
        trace 5b8efff798038103d269b633813fc60c
        {
          "span_id": "0102030405060709",
          "parent_span_id": "eee19b7ec3c1b174",
          "name": "chat gpt-4o",
          "kind": "llm",
          "started_at": "2026-01-01T00:00:20Z",
          "ended_at": "2026-01-01T00:00:30Z",
          "status": "unset",
          "agent": {
            "name": "sre-agent",
            "version": "1.4.0",
            "model": "gpt-4o"
          }
        }
        feedback on 5b8efff798038103d269b633813fc60c
        {
          "investigation_id": "5b8efff798038103d269b633813fc60c",
          "span_id": "eee19b7ec3c1b174",
          "verdict": "down",
          "rating": 2,
          "correction": "it was the cart-redis, not the db",
          "tags": [],
          "user_id": null,
          "idempotency_key": "otel:5b8efff798038103d269b633813fc60c:eee19b7ec3c1b174:user_feedback:0",
          "metadata": {},
          "origin": "otel_event"
        }
        rejected 1: span "bad": invalid trace_id: an all-zero id is invalid
    "#]],
    );
}

#[test]
fn openinference_agent_trace() {
    check(
        "openinference_trace.json",
        expect![[r#"
        trace aa8efff798038103d269b633813fc60c
        {
          "span_id": "aae19b7ec3c1b174",
          "name": "agent",
          "kind": "agent",
          "started_at": "2026-01-01T00:00:00Z",
          "ended_at": "2026-01-01T00:01:00Z",
          "status": "unset",
          "agent": {
            "name": "rca-bot"
          },
          "input": "why are orders failing?",
          "output": "the orders-events consumer group is lagging"
        }
        trace aa8efff798038103d269b633813fc60c
        {
          "span_id": "aae19b7ec3c1b175",
          "parent_span_id": "aae19b7ec3c1b174",
          "name": "search_logs",
          "kind": "tool",
          "started_at": "2026-01-01T00:00:01Z",
          "ended_at": "2026-01-01T00:00:02Z",
          "status": "unset",
          "agent": {
            "name": "rca-bot"
          },
          "tool_call": {
            "tool_name": "search_logs",
            "source": "logs",
            "query": "level:error",
            "arguments": "{\"query\":\"level:error\",\"service\":\"orders\",\"start\":\"2026-01-01T00:00:00Z\",\"end\":1767225600}",
            "window": {
              "start": "2026-01-01T00:00:00Z",
              "end": "2026-01-01T00:00:00Z"
            },
            "entities": [
              "orders"
            ],
            "result": "3 lines",
            "result_truncated": false
          }
        }
        feedback on aa8efff798038103d269b633813fc60c
        {
          "investigation_id": "aa8efff798038103d269b633813fc60c",
          "span_id": "aae19b7ec3c1b174",
          "verdict": "down",
          "rating": null,
          "correction": "DNS failure on orders-db",
          "tags": [],
          "user_id": "u-9",
          "idempotency_key": "openinference:aa8efff798038103d269b633813fc60c:aae19b7ec3c1b174:correctness",
          "metadata": {},
          "origin": "openinference_annotation"
        }
        rejected 1: span "no start": missing start_time_unix_nano
    "#]],
    );
}

/// An evaluation event that is feedback but invalid is not dropped silently: its span is kept and
/// the response's partial success counts and names it.
#[test]
fn invalid_evaluation_events_are_reported_in_partial_success() {
    let event = |name: &str, explanation: &str| {
        serde_json::json!({
            "name": "gen_ai.evaluation.result",
            "timeUnixNano": "1772366400000000000",
            "attributes": [
                {"key": "gen_ai.evaluation.name", "value": {"stringValue": name}},
                {"key": "gen_ai.evaluation.score.label", "value": {"stringValue": "incorrect"}},
                {"key": "gen_ai.evaluation.explanation", "value": {"stringValue": explanation}}
            ]
        })
    };
    let export = serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "0102030405060708",
        "name": "invoke_agent",
        "startTimeUnixNano": "1772366400000000000",
        "endTimeUnixNano": "1772366401000000000",
        "events": [
            event("user_feedback", "it was the database"),
            event("user_feedback", &"x".repeat(10_001)),
            event(&"n".repeat(300), "fine"),
            // Neither verdict nor score: not feedback, not an error.
            {"name": "gen_ai.evaluation.result", "timeUnixNano": "1772366400000000000", "attributes": [
                {"key": "gen_ai.evaluation.name", "value": {"stringValue": "relevance"}},
                {"key": "gen_ai.evaluation.score.label", "value": {"stringValue": "relevant"}}
            ]}
        ]
    }]}]}]});
    let request = decode_request(export.to_string().as_bytes(), Encoding::Json).unwrap();
    let batch = map_request(&request);
    assert_eq!(batch.steps.len(), 1, "the span is kept");
    assert_eq!(batch.feedback.len(), 1);
    assert_eq!(batch.rejected_spans, 0);
    assert_eq!(batch.rejected_feedback, 2);
    let message = batch.rejection_message();
    assert!(
        message.starts_with("2 feedback record(s) rejected: "),
        "{message}"
    );
    assert!(
        message.contains("correction: longer than 10000 characters"),
        "{message}"
    );
    assert!(
        message.contains("idempotency_key: must be 1-256 characters"),
        "{message}"
    );

    let response: serde_json::Value = serde_json::from_slice(&evalmint_otlp::encode_response(
        batch.rejected_spans,
        &message,
        Encoding::Json,
    ))
    .unwrap();
    assert_eq!(response["partialSuccess"]["errorMessage"], message.as_str());
}
