//! `sim run` against a test double that only records what it receives: the traces must decode as
//! OTLP with the documented attributes, the feedback must have the documented shape, and a 429
//! must be retried.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use evalmint_model::{FeedbackOrigin, FeedbackSubmission};
use evalmint_sim::agent::AgentVersion;
use evalmint_sim::run::{RunOptions, run};
use evalmint_sim::users::FeedbackRates;
use evalmint_sim::world::WorldConfig;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;

#[derive(Debug, Clone)]
struct Received {
    path: &'static str,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Default)]
struct Recorder {
    received: Mutex<Vec<Received>>,
    throttled_once: Mutex<bool>,
    keys: Mutex<std::collections::HashSet<String>>,
}

async fn traces(
    State(r): State<Arc<Recorder>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    r.received.lock().unwrap().push(Received {
        path: "traces",
        headers,
        body,
    });
    (
        StatusCode::OK,
        [("content-type", "application/x-protobuf")],
        Vec::<u8>::new(),
    )
}

async fn feedback(
    State(r): State<Arc<Recorder>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    {
        let mut throttled = r.throttled_once.lock().unwrap();
        if !*throttled {
            *throttled = true;
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "0")],
                String::new(),
            )
                .into_response();
        }
    }
    let key = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["idempotency_key"].as_str().map(str::to_string));
    r.received.lock().unwrap().push(Received {
        path: "feedback",
        headers,
        body,
    });
    let fresh = key.is_some_and(|k| r.keys.lock().unwrap().insert(k));
    let status = if fresh {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, axum::Json(serde_json::json!({"id": "x"}))).into_response()
}

fn string_attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_sends_otlp_traces_and_documented_feedback() {
    let recorder = Arc::new(Recorder::default());
    let double = axum::Router::new()
        .route("/v1/traces", axum::routing::post(traces))
        .route("/api/v1/feedback", axum::routing::post(feedback))
        .with_state(recorder.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, double).await });

    let truth_dir = tempfile::tempdir().unwrap();
    let truth = truth_dir.path().join("truth.jsonl");
    let now = jiff::Timestamp::now().as_second() / 60 * 60;
    let rates = FeedbackRates {
        silence_when_right: 0.0,
        silence_when_wrong: 0.0,
        before_trace: 0.3,
        ..FeedbackRates::default()
    };
    let incidents = 8;
    let summary = run(RunOptions {
        server: server.clone(),
        api_key: Some("test-key".to_string()),
        world: WorldConfig {
            seed: 3,
            incidents,
            services: Some(15),
            timeline_end: now,
        },
        agent: AgentVersion::V2,
        telemetry: None,
        truth: truth.clone(),
        rates,
        concurrency: 2,
        show_progress: false,
    })
    .await
    .unwrap();

    assert_eq!(summary.incidents, incidents);
    assert_eq!(summary.client_errors, 0, "{:?}", summary.error_samples);
    assert_eq!(summary.tool_errors, 0);
    assert_eq!(summary.throttled_retries, 1);
    assert_eq!(summary.feedback_sent, incidents);

    let received = recorder.received.lock().unwrap().clone();
    let mut spans_by_trace: BTreeMap<Vec<u8>, Vec<_>> = BTreeMap::new();
    for r in received.iter().filter(|r| r.path == "traces") {
        assert_eq!(r.headers["content-type"], "application/x-protobuf");
        assert_eq!(r.headers["authorization"], "Bearer test-key");
        let request = ExportTraceServiceRequest::decode(r.body.as_ref())
            .expect("body decodes as ExportTraceServiceRequest");
        for resource_spans in request.resource_spans {
            let resource = resource_spans.resource.expect("resource");
            assert_eq!(
                string_attr(&resource.attributes, "service.name"),
                Some("sre-agent")
            );
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans_by_trace
                        .entry(span.trace_id.clone())
                        .or_default()
                        .push(span);
                }
            }
        }
    }
    assert_eq!(spans_by_trace.len(), incidents as usize);
    let mut trace_ids = Vec::new();
    for (trace_id, spans) in &spans_by_trace {
        trace_ids.push(hex::encode(trace_id));
        let roots: Vec<_> = spans
            .iter()
            .filter(|s| string_attr(&s.attributes, "gen_ai.operation.name") == Some("invoke_agent"))
            .collect();
        assert_eq!(roots.len(), 1);
        let root = roots[0];
        assert!(root.parent_span_id.is_empty());
        for key in [
            "gen_ai.agent.name",
            "gen_ai.agent.version",
            "gen_ai.request.model",
            "evalmint.agent.config_hash",
            "evalmint.trigger.kind",
            "evalmint.trigger.text",
            "evalmint.trigger.monitor",
            "evalmint.trigger.fired_at",
            "evalmint.conclusion",
        ] {
            assert!(
                string_attr(&root.attributes, key).is_some_and(|v| !v.is_empty()),
                "root span without {key}"
            );
        }
        assert_eq!(
            string_attr(&root.attributes, "gen_ai.agent.version"),
            Some("v2")
        );
        assert!(
            string_attr(&root.attributes, "evalmint.conclusion")
                .unwrap()
                .starts_with("Root cause: ")
        );
        assert!(
            string_attr(&root.attributes, "evalmint.trigger.fired_at")
                .unwrap()
                .parse::<jiff::Timestamp>()
                .is_ok()
        );
        let tools: Vec<_> = spans
            .iter()
            .filter(|s| string_attr(&s.attributes, "gen_ai.operation.name") == Some("execute_tool"))
            .collect();
        let chats: Vec<_> = spans
            .iter()
            .filter(|s| string_attr(&s.attributes, "gen_ai.operation.name") == Some("chat"))
            .collect();
        assert!(tools.len() >= 8 && !chats.is_empty());
        let mut names = std::collections::BTreeSet::new();
        for tool in &tools {
            assert_eq!(tool.parent_span_id, root.span_id);
            let name = string_attr(&tool.attributes, "gen_ai.tool.name").unwrap();
            names.insert(name.to_string());
            serde_json::from_str::<serde_json::Value>(
                string_attr(&tool.attributes, "gen_ai.tool.call.arguments").unwrap(),
            )
            .unwrap();
            assert!(
                string_attr(&tool.attributes, "gen_ai.tool.call.result")
                    .is_some_and(|r| r.len() <= 4096)
            );
            assert!(
                ["metrics", "logs", "events", "traces", "infra"]
                    .contains(&string_attr(&tool.attributes, "evalmint.tool.source").unwrap())
            );
            assert!(string_attr(&tool.attributes, "evalmint.tool.query").is_some());
            for key in ["evalmint.tool.window.start", "evalmint.tool.window.end"] {
                assert!(
                    string_attr(&tool.attributes, key)
                        .unwrap()
                        .parse::<jiff::Timestamp>()
                        .is_ok()
                );
            }
            let entities =
                attr(&tool.attributes, "evalmint.tool.entities").and_then(|v| v.value.as_ref());
            assert!(matches!(entities, Some(any_value::Value::ArrayValue(_))));
            if let Some(truncated) = attr(&tool.attributes, "evalmint.tool.result_truncated") {
                assert_eq!(truncated.value, Some(any_value::Value::BoolValue(true)));
            }
        }
        for expected in [
            "list_services",
            "query_metrics",
            "search_logs",
            "get_events",
            "get_traces",
        ] {
            assert!(names.contains(expected), "no {expected} call");
        }
        for chat in chats {
            assert!(string_attr(&chat.attributes, "gen_ai.request.model").is_some());
            let messages: serde_json::Value = serde_json::from_str(
                string_attr(&chat.attributes, "gen_ai.output.messages").unwrap(),
            )
            .unwrap();
            assert_eq!(messages[0]["role"], "assistant");
        }
    }

    let documented: std::collections::HashSet<&str> = [
        "investigation_id",
        "verdict",
        "rating",
        "correction",
        "tags",
        "user_id",
        "idempotency_key",
        "metadata",
    ]
    .into_iter()
    .collect();
    let mut keys = HashMap::new();
    for r in received.iter().filter(|r| r.path == "feedback") {
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.headers["authorization"], "Bearer test-key");
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        for key in body.as_object().unwrap().keys() {
            assert!(
                documented.contains(key.as_str()),
                "undocumented field {key}"
            );
        }
        let id = body["investigation_id"].as_str().unwrap();
        assert_eq!(id.len(), 32);
        assert!(
            trace_ids.contains(&id.to_string()),
            "feedback for an unknown investigation"
        );
        assert!(body.get("verdict").is_some() || body.get("rating").is_some());
        if let Some(verdict) = body.get("verdict") {
            assert!(["up", "not_quite", "down"].contains(&verdict.as_str().unwrap()));
        }
        if let Some(rating) = body.get("rating") {
            assert!((1..=5).contains(&rating.as_u64().unwrap()));
        }
        assert!(body["tags"].is_array());
        assert!(body["user_id"].as_str().unwrap().starts_with("u-"));
        assert!(body["metadata"]["sim.style"].is_string());
        *keys
            .entry(body["idempotency_key"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
        let submission: FeedbackSubmission =
            serde_json::from_value(body).expect("matches the model's submission type");
        submission
            .validate(FeedbackOrigin::Api)
            .expect("valid feedback");
    }
    assert_eq!(keys.len(), incidents as usize);

    let truth_lines: Vec<serde_json::Value> = std::fs::read_to_string(&truth)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(truth_lines.len(), incidents as usize);
    for line in &truth_lines {
        assert!(
            trace_ids.contains(
                &line["investigation"]["trace_id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            )
        );
        assert!(
            line["root_component"].is_string()
                && line["category"].is_string()
                && line["onset"].is_string()
        );
    }
}

async fn reject_feedback(
    State(r): State<Arc<Recorder>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    r.received.lock().unwrap().push(Received {
        path: "feedback",
        headers,
        body,
    });
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        axum::Json(serde_json::json!({"error": {"code": "invalid", "message": "no"}})),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_against_a_running_telemetry_api_and_counts_rejections() {
    use evalmint_sim::telemetry::{Retention, SimClock, TelemetryService, app};
    use evalmint_sim::world::World;

    // A separately started telemetry API, as `evalmint sim telemetry` would be.
    let now = jiff::Timestamp::now().as_second() / 60 * 60;
    let config = WorldConfig {
        seed: 9,
        incidents: 5,
        services: Some(12),
        timeline_end: now,
    };
    let world = Arc::new(World::generate(config));
    let queried = Arc::new(Mutex::new(0usize));
    let service = Arc::new(TelemetryService::new(
        world.clone(),
        Arc::new(SimClock::running(now * 1000, 1.0)),
        Retention::default(),
    ));
    let counter = queried.clone();
    let telemetry = app(service).layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let counter = counter.clone();
            async move {
                *counter.lock().unwrap() += 1;
                next.run(request).await
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let telemetry_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, telemetry).await });

    let recorder = Arc::new(Recorder::default());
    let double = axum::Router::new()
        .route("/v1/traces", axum::routing::post(traces))
        .route("/api/v1/feedback", axum::routing::post(reject_feedback))
        .with_state(recorder.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, double).await });

    let truth_dir = tempfile::tempdir().unwrap();
    let rates = FeedbackRates {
        silence_when_right: 0.0,
        silence_when_wrong: 0.0,
        ..FeedbackRates::default()
    };
    let options = |seed: u64| RunOptions {
        server: server.clone(),
        api_key: None,
        // The timeline end comes from the telemetry API, not from here.
        world: WorldConfig {
            seed,
            incidents: 5,
            services: None,
            timeline_end: 0,
        },
        agent: AgentVersion::V1,
        telemetry: Some(telemetry_url.clone()),
        truth: truth_dir.path().join("truth.jsonl"),
        rates,
        concurrency: 3,
        show_progress: false,
    };
    let mismatch = run(options(10)).await.unwrap_err();
    assert!(mismatch.to_string().contains("seed 9"), "{mismatch}");

    let summary = run(options(9)).await.unwrap();
    assert_eq!(summary.incidents, 5);
    assert_eq!(
        summary.client_errors, 5,
        "every rejected feedback is counted"
    );
    assert!(summary.error_samples.iter().all(|e| e.contains("422")));
    assert_eq!(summary.tool_errors, 0);
    // The agents asked the running telemetry API (several queries per investigation).
    assert!(*queried.lock().unwrap() > 5 * 8);
    let received = recorder.received.lock().unwrap();
    assert!(
        received
            .iter()
            .all(|r| !r.headers.contains_key("authorization"))
    );
    // A rejection is not retried.
    assert_eq!(received.iter().filter(|r| r.path == "feedback").count(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_fails_fast() {
    // Bind and drop a listener so that the port is (almost certainly) closed.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let truth_dir = tempfile::tempdir().unwrap();
    let error = run(RunOptions {
        server,
        api_key: None,
        world: WorldConfig {
            seed: 1,
            incidents: 2,
            services: Some(10),
            timeline_end: jiff::Timestamp::now().as_second(),
        },
        agent: AgentVersion::V1,
        telemetry: None,
        truth: truth_dir.path().join("t.jsonl"),
        rates: FeedbackRates::default(),
        concurrency: 1,
        show_progress: false,
    })
    .await
    .unwrap_err();
    assert!(error.to_string().contains("cannot reach"), "{error}");
}
