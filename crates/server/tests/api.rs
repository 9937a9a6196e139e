//! The HTTP API end to end without a socket: every endpoint with good, malformed, truncated,
//! oversized, wrong-type, wrong-tenant and duplicate requests.

use std::io::Write;
use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use evalmint_model::{
    Feedback, FeedbackId, Investigation, ScopeSet, TenantId, Timestamp, TraceId, ValidFeedback,
};
use evalmint_server::{AppState, ServerConfig, app};
use evalmint_store::{
    ApiKey, FeedbackReceipt, IngestBatch, IngestReceipt, NewApiKey, SqliteOptions, SqliteStore,
    Store, StoreError,
};
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tower::ServiceExt;

const TRACE: &str = "5b8efff798038103d269b633813fc60c";

fn fixture() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../otlp/tests/fixtures/genai_trace.json"
    ))
    .unwrap()
}

fn fixture_protobuf() -> Vec<u8> {
    serde_json::from_slice::<ExportTraceServiceRequest>(&fixture())
        .unwrap()
        .encode_to_vec()
}

struct Harness {
    router: Router,
    store: Arc<dyn Store>,
    labels: Arc<SqliteStore>,
    admin: String,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Self {
        Self::with_config(ServerConfig::default()).await
    }

    async fn with_config(config: ServerConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Arc::new(SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap());
        let store: Arc<dyn Store> = sqlite.clone();
        let admin = key(&store, "acme", "admin").await;
        Harness {
            router: app(AppState::new(sqlite.clone(), config)),
            labels: sqlite,
            store,
            admin,
            _dir: dir,
        }
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        (status, headers, body)
    }

    async fn json(&self, request: Request<Body>) -> (StatusCode, serde_json::Value) {
        let (status, _, body) = self.send(request).await;
        let value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&body)));
        (status, value)
    }
}

async fn key(store: &Arc<dyn Store>, tenant: &str, scopes: &str) -> String {
    store
        .create_api_key(
            &TenantId::new(tenant).unwrap(),
            "test",
            ScopeSet::parse_list(scopes).unwrap(),
        )
        .await
        .unwrap()
        .secret
}

fn post(uri: &str, key: &str, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, content_type)
        .body(body.into())
        .unwrap()
}

fn get(uri: &str, key: &str) -> Request<Body> {
    Request::get(uri)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn error_code(body: &serde_json::Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

#[tokio::test]
async fn otlp_json_and_protobuf_exports_are_stored_and_served() {
    let h = Harness::new().await;
    let (status, body) = h
        .json(post("/v1/traces", &h.admin, "application/json", fixture()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["partialSuccess"]["rejectedSpans"], "1");

    let (status, headers, body) = h
        .send(post(
            "/v1/traces",
            &h.admin,
            "application/x-protobuf",
            fixture_protobuf(),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/x-protobuf");
    let response =
        opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::decode(
            body.as_slice(),
        )
        .unwrap();
    assert_eq!(response.partial_success.unwrap().rejected_spans, 1);

    let (status, investigation) = h
        .json(get(&format!("/api/v1/investigations/{TRACE}"), &h.admin))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        investigation["steps"].as_array().unwrap().len(),
        3,
        "re-sent spans do not duplicate"
    );
    assert_eq!(investigation["agent"]["name"], "sre-investigator");
    assert_eq!(
        investigation["conclusion"],
        "payments-db connection pool exhausted since 00:02 UTC"
    );
    assert_eq!(
        investigation["feedback"].as_array().unwrap().len(),
        1,
        "the evaluation event became one feedback record, not one per export"
    );
}

#[tokio::test]
async fn gzip_bodies_are_accepted_and_bombs_refused() {
    let h = Harness::with_config(ServerConfig {
        max_body_bytes: 64 * 1024,
        ..ServerConfig::default()
    })
    .await;
    let mut request = post("/v1/traces", &h.admin, "application/json", gzip(&fixture()));
    request
        .headers_mut()
        .insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
    assert_eq!(h.send(request).await.0, StatusCode::OK);

    let mut bomb = post(
        "/v1/traces",
        &h.admin,
        "application/x-protobuf",
        gzip(&vec![b' '; 1024 * 1024]),
    );
    bomb.headers_mut()
        .insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
    assert_eq!(h.send(bomb).await.0, StatusCode::PAYLOAD_TOO_LARGE);

    let mut brotli = post("/v1/traces", &h.admin, "application/json", fixture());
    brotli
        .headers_mut()
        .insert(header::CONTENT_ENCODING, "br".parse().unwrap());
    assert_eq!(h.send(brotli).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn bad_trace_exports_get_clear_errors_and_write_nothing() {
    let h = Harness::with_config(ServerConfig {
        max_body_bytes: 4 * 1024,
        ..ServerConfig::default()
    })
    .await;
    let protobuf = fixture_protobuf();
    let truncated = protobuf[..protobuf.len() / 2].to_vec();
    let cases: Vec<(Request<Body>, StatusCode)> = vec![
        (
            post("/v1/traces", &h.admin, "application/x-protobuf", truncated),
            StatusCode::BAD_REQUEST,
        ),
        (
            post(
                "/v1/traces",
                &h.admin,
                "application/json",
                r#"{"resourceSpans": "#,
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            post(
                "/v1/traces",
                &h.admin,
                "application/json",
                r#"{"resourceSpans": [{"scopeSpans": 7}]}"#,
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            post("/v1/traces", &h.admin, "text/plain", "hello"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            post(
                "/v1/traces",
                &h.admin,
                "application/json",
                vec![b' '; 5 * 1024],
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            post("/v1/traces", "em_nope", "application/json", fixture()),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (request, expected) in cases {
        let (status, headers, body) = h.send(request).await;
        assert_eq!(status, expected, "{}", String::from_utf8_lossy(&body));
        let content_type = headers[header::CONTENT_TYPE].to_str().unwrap().to_owned();
        if content_type == "application/x-protobuf" {
            let status = evalmint_otlp::RpcStatus::decode(body.as_slice()).unwrap();
            assert!(!status.message.is_empty());
        } else {
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert!(
                json["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
        }
    }
    let feedback_only = key(&h.store, "acme", "feedback").await;
    let (status, body) = h
        .json(post(
            "/v1/traces",
            &feedback_only,
            "application/json",
            fixture(),
        ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "forbidden");
    let (status, _) = h
        .json(get(&format!("/api/v1/investigations/{TRACE}"), &h.admin))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was written");
}

fn feedback_body(key: &str, verdict: &str) -> String {
    format!(
        r#"{{"investigation_id": "{TRACE}", "span_id": null, "verdict": "{verdict}", "rating": 2,
            "correction": "it was the payments-db connection pool, not checkout",
            "tags": ["wrong-component"], "user_id": "u-17", "idempotency_key": "{key}", "metadata": {{}}}}"#
    )
}

#[tokio::test]
async fn feedback_is_idempotent_and_joined_when_the_trace_arrives_later() {
    let h = Harness::new().await;
    let browser = key(&h.store, "acme", "feedback").await;
    let (status, created) = h
        .json(post(
            "/api/v1/feedback",
            &browser,
            "application/json",
            feedback_body("fb-1", "not_quite"),
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, replayed) = h
        .json(post(
            "/api/v1/feedback",
            &browser,
            "application/json",
            feedback_body("fb-1", "not_quite"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(created["id"], replayed["id"]);
    let (status, conflict) = h
        .json(post(
            "/api/v1/feedback",
            &browser,
            "application/json",
            feedback_body("fb-1", "up"),
        ))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&conflict), "conflict");

    // The feedback key cannot read; a review key can.
    let id = created["id"].as_str().unwrap();
    let (status, _) = h
        .json(get(&format!("/api/v1/feedback/{id}"), &browser))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, read) = h
        .json(get(&format!("/api/v1/feedback/{id}"), &h.admin))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["verdict"], "not_quite");

    h.send(post("/v1/traces", &h.admin, "application/json", fixture()))
        .await;
    let (_, investigation) = h
        .json(get(&format!("/api/v1/investigations/{TRACE}"), &h.admin))
        .await;
    let joined: Vec<&str> = investigation["feedback"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["origin"].as_str().unwrap())
        .collect();
    assert_eq!(joined, ["api", "otel_event"]);
}

#[tokio::test]
async fn malformed_feedback_is_refused_with_the_reason() {
    let h = Harness::new().await;
    let cases = [
        (
            r#"{"investigation_id": "#,
            "invalid_request",
            "invalid JSON",
        ),
        (r#"[1, 2]"#, "invalid_request", "invalid JSON"),
        (
            &format!(r#"{{"investigation_id": "{TRACE}", "rating": "five"}}"#) as &str,
            "invalid_request",
            "invalid JSON",
        ),
        (
            &format!(r#"{{"investigation_id": "{TRACE}", "verdict": "up", "sentiment": 1}}"#),
            "invalid_request",
            "unknown field",
        ),
        (
            &format!(r#"{{"investigation_id": "{TRACE}"}}"#),
            "invalid_request",
            "at least one of verdict or rating",
        ),
        (
            r#"{"investigation_id": "xyz", "verdict": "up"}"#,
            "invalid_request",
            "investigation_id",
        ),
        (
            &format!(r#"{{"investigation_id": "{TRACE}", "rating": 0}}"#),
            "invalid_request",
            "outside 1-5",
        ),
    ];
    for (body, code, needle) in cases {
        let (status, error) = h
            .json(post(
                "/api/v1/feedback",
                &h.admin,
                "application/json",
                body.to_owned(),
            ))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(&error), code);
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(needle),
            "{message:?} should mention {needle:?}"
        );
    }
    let (status, _) = h
        .json(post(
            "/api/v1/feedback",
            &h.admin,
            "text/plain",
            feedback_body("k", "up"),
        ))
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _) = h
        .json(post(
            "/api/v1/feedback",
            &h.admin,
            "application/json",
            vec![b' '; 300 * 1024],
        ))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = h.json(get("/api/v1/feedback/not-a-uuid", &h.admin)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn tenants_are_isolated_and_foreign_objects_are_not_found() {
    let h = Harness::new().await;
    let other = key(&h.store, "globex", "admin").await;
    h.send(post("/v1/traces", &h.admin, "application/json", fixture()))
        .await;
    let (_, created) = h
        .json(post(
            "/api/v1/feedback",
            &h.admin,
            "application/json",
            feedback_body("fb-9", "down"),
        ))
        .await;
    let id = created["id"].as_str().unwrap();
    for uri in [
        format!("/api/v1/investigations/{TRACE}"),
        format!("/api/v1/feedback/{id}"),
    ] {
        let (status, body) = h.json(get(&uri, &other)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(error_code(&body), "not_found");
    }
    // The same idempotency key in another tenant is a different feedback.
    let (status, _) = h
        .json(post(
            "/api/v1/feedback",
            &other,
            "application/json",
            feedback_body("fb-9", "up"),
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn native_investigations_round_trip_and_bad_ones_write_nothing() {
    let h = Harness::new().await;
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let good = serde_json::json!({
        "id": trace,
        "agent": {"name": "sre-agent", "version": "2.1.0", "model": "claude", "config_hash": "abc"},
        "trigger": {"kind": "alert", "text": "orders consumer lag > 10k", "monitor": "orders-lag"},
        "conclusion": "orders-events consumer group stalled after the 09:12 deploy",
        "started_at": "2026-02-01T09:15:00Z",
        "steps": [
            {"kind": "tool", "name": "query_metrics", "started_at": "2026-02-01T09:15:01Z",
             "tool_call": {"tool_name": "query_metrics", "source": "metrics",
                           "query": "kafka_consumergroup_lag{topic=\"orders-events\"}",
                           "window": {"start": "2026-02-01T08:45:00Z", "end": "2026-02-01T09:15:00Z"},
                           "entities": ["orders-events"], "result": "lag rising since 09:12"}},
            {"kind": "llm", "name": "chat", "started_at": "2026-02-01T09:15:05Z", "output": "thinking"}
        ]
    });
    let (status, created) = h
        .json(post(
            "/api/v1/investigations",
            &h.admin,
            "application/json",
            good.to_string(),
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["steps"], 3);
    // Posting again is idempotent.
    h.send(post(
        "/api/v1/investigations",
        &h.admin,
        "application/json",
        good.to_string(),
    ))
    .await;
    let (_, read) = h
        .json(get(&format!("/api/v1/investigations/{trace}"), &h.admin))
        .await;
    assert_eq!(read["steps"].as_array().unwrap().len(), 3);
    assert_eq!(read["trigger"]["monitor"], "orders-lag");
    assert_eq!(
        read["steps"][1]["tool_call"]["entities"][0],
        "orders-events"
    );

    let bad_trace = "1af7651916cd43dd8448eb211c80319c";
    let bad = [
        serde_json::json!({"id": bad_trace, "started_at": "2026-02-01T09:15:00Z",
            "steps": [{"kind": "tool", "name": "q", "started_at": "2026-02-01T09:15:01Z"}]}),
        serde_json::json!({"id": bad_trace, "started_at": "yesterday"}),
        serde_json::json!({"id": "zz", "started_at": "2026-02-01T09:15:00Z"}),
        serde_json::json!({"id": bad_trace, "started_at": "2026-02-01T09:15:00Z", "colour": "red"}),
    ];
    for body in bad {
        let (status, error) = h
            .json(post(
                "/api/v1/investigations",
                &h.admin,
                "application/json",
                body.to_string(),
            ))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(&error), "invalid_request");
    }
    let (status, _) = h
        .json(get(
            &format!("/api/v1/investigations/{bad_trace}"),
            &h.admin,
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = h.json(get("/api/v1/investigations/nope", &h.admin)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn admins_mint_keys_for_their_own_tenant_only() {
    let h = Harness::new().await;
    let ingest = key(&h.store, "acme", "ingest").await;
    let request = serde_json::json!({"name": "ci", "scopes": ["ingest", "review"]}).to_string();
    let (status, _) = h
        .json(post(
            "/api/v1/keys",
            &ingest,
            "application/json",
            request.clone(),
        ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, created) = h
        .json(post("/api/v1/keys", &h.admin, "application/json", request))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["tenant"], "acme");
    let secret = created["secret"].as_str().unwrap();
    let (status, _) = h
        .json(post("/v1/traces", secret, "application/json", fixture()))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h
        .json(post(
            "/api/v1/keys",
            &h.admin,
            "application/json",
            r#"{"name": "x", "scopes": ["root"]}"#,
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn health_and_metrics_need_no_key_and_count_traffic() {
    let h = Harness::new().await;
    h.send(post("/v1/traces", &h.admin, "application/json", fixture()))
        .await;
    h.send(post(
        "/api/v1/feedback",
        &h.admin,
        "application/json",
        feedback_body("m", "up"),
    ))
    .await;
    let (status, _, _) = h
        .send(Request::get("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, body) = h
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    let text = String::from_utf8(body).unwrap();
    for line in [
        r#"evalmint_http_requests_total{route="/v1/traces",status="200"} 1"#,
        "evalmint_spans_accepted_total 3",
        "evalmint_spans_rejected_total 1",
        r#"evalmint_feedback_accepted_total{origin="api"} 1"#,
        r#"evalmint_store_write_seconds_count{operation="feedback"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    let (status, body) = h
        .json(Request::get("/nowhere").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "not_found");
}

/// A store whose write queue is always full, to check back-pressure reaches clients as 429.
struct SaturatedStore(Arc<dyn Store>);

#[async_trait]
impl Store for SaturatedStore {
    async fn ingest(&self, _: &TenantId, _: IngestBatch) -> Result<IngestReceipt, StoreError> {
        Err(StoreError::Busy)
    }
    async fn submit_feedback(
        &self,
        _: &TenantId,
        _: ValidFeedback,
    ) -> Result<FeedbackReceipt, StoreError> {
        Err(StoreError::Busy)
    }
    async fn feedback(&self, t: &TenantId, id: FeedbackId) -> Result<Option<Feedback>, StoreError> {
        self.0.feedback(t, id).await
    }
    async fn investigation(
        &self,
        t: &TenantId,
        id: TraceId,
    ) -> Result<Option<Investigation>, StoreError> {
        self.0.investigation(t, id).await
    }
    async fn create_api_key(
        &self,
        t: &TenantId,
        n: &str,
        s: ScopeSet,
    ) -> Result<NewApiKey, StoreError> {
        self.0.create_api_key(t, n, s).await
    }
    async fn ensure_api_key(
        &self,
        t: &TenantId,
        n: &str,
        s: ScopeSet,
        secret: &str,
    ) -> Result<ApiKey, StoreError> {
        self.0.ensure_api_key(t, n, s, secret).await
    }
    async fn authenticate(&self, secret: &str) -> Result<Option<ApiKey>, StoreError> {
        self.0.authenticate(secret).await
    }
    async fn api_key_count(&self) -> Result<u64, StoreError> {
        self.0.api_key_count().await
    }
    async fn expire_investigations(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        self.0.expire_investigations(cutoff).await
    }
}

#[tokio::test]
async fn a_saturated_write_path_answers_429_with_retry_after() {
    let h = Harness::new().await;
    let router = app(AppState::with_metrics(
        Arc::new(SaturatedStore(h.store.clone())),
        h.labels.clone(),
        ServerConfig::default(),
        evalmint_server::Metrics::default(),
    ));
    for request in [
        post(
            "/v1/traces",
            &h.admin,
            "application/x-protobuf",
            fixture_protobuf(),
        ),
        post("/v1/traces", &h.admin, "application/json", fixture()),
        post(
            "/api/v1/feedback",
            &h.admin,
            "application/json",
            feedback_body("b", "up"),
        ),
    ] {
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}

fn candidate(trace: TraceId, route: evalmint_model::Route) -> evalmint_model::CandidateLabel {
    let score = || evalmint_model::Score {
        value: 0.9,
        reasons: vec!["+0.90 test".into()],
    };
    evalmint_model::CandidateLabel {
        id: String::new(),
        investigation_id: trace,
        version: 0,
        trigger: None,
        ground_truth: Some(evalmint_model::GroundTruth {
            statement: "payments-db: connection pool exhaustion".into(),
            components: vec!["payments-db".into()],
            category: Some(evalmint_model::Category::ResourceConnectionPool),
            onset: None,
            causal_chain: vec![],
            evidence: vec![],
        }),
        snapshot: vec![],
        segments: vec![],
        scores: evalmint_model::Scores {
            specificity: score(),
            accuracy: score(),
            thoroughness: score(),
        },
        route,
        audit: false,
        provenance: evalmint_model::Provenance {
            feedback_ids: vec![],
            drafter: "test".into(),
            drafter_version: "1".into(),
            basis: "correction".into(),
        },
        created_at: Timestamp::UNIX_EPOCH,
    }
}

#[tokio::test]
async fn labels_and_the_review_queue_are_served_per_tenant() {
    use evalmint_store::PipelineStore;
    let h = Harness::new().await;
    let (_, created) = h
        .json(post(
            "/api/v1/feedback",
            &h.admin,
            "application/json",
            feedback_body("l1", "down"),
        ))
        .await;
    let second_trace = "6b8efff798038103d269b633813fc60c";
    let second = format!(
        r#"{{"investigation_id": "{second_trace}", "verdict": "down", "correction": "x"}}"#
    );
    h.send(post(
        "/api/v1/feedback",
        &h.admin,
        "application/json",
        second,
    ))
    .await;
    let lease = jiff::SignedDuration::from_secs(60);
    for job in h.labels.claim_label_jobs(lease, 10).await.unwrap() {
        let route = if job.trace_id.to_string() == TRACE {
            evalmint_model::Route::Admit
        } else {
            evalmint_model::Route::Review
        };
        let outcome = evalmint_store::LabelOutcome {
            result: Ok(Box::new(candidate(job.trace_id, route))),
            excluded: vec![],
        };
        h.labels.finish_label_job(&job, outcome).await.unwrap();
    }

    let (status, body) = h.json(get("/api/v1/labels", &h.admin)).await;
    assert_eq!(status, StatusCode::OK);
    let labels = body["labels"].as_array().unwrap();
    assert_eq!(labels.len(), 1, "the label set is the admitted candidates");
    let id = labels[0]["id"].as_str().unwrap();
    assert_eq!(id, format!("cand-{TRACE}-v1"));
    let (_, all) = h.json(get("/api/v1/labels?route=all", &h.admin)).await;
    assert_eq!(all["labels"].as_array().unwrap().len(), 2);
    let (_, queue) = h.json(get("/api/v1/review", &h.admin)).await;
    let queued: Vec<&str> = queue["queue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["investigation_id"].as_str().unwrap())
        .collect();
    assert_eq!(queued, [second_trace]);

    let (status, label) = h.json(get(&format!("/api/v1/labels/{id}"), &h.admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        label["ground_truth"]["category"],
        "resource.connection_pool"
    );
    let feedback_id = created["id"].as_str().unwrap();
    let (_, feedback) = h
        .json(get(&format!("/api/v1/feedback/{feedback_id}"), &h.admin))
        .await;
    assert_eq!(
        feedback["label"],
        serde_json::json!({"state": "candidate", "detail": id})
    );

    let other = key(&h.store, "globex", "review").await;
    let (status, _) = h.json(get(&format!("/api/v1/labels/{id}"), &other)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, foreign) = h.json(get("/api/v1/labels?route=all", &other)).await;
    assert!(foreign["labels"].as_array().unwrap().is_empty());
    let browser = key(&h.store, "acme", "feedback").await;
    let (status, _) = h.json(get("/api/v1/labels", &browser)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for bad in [
        "/api/v1/labels?route=maybe",
        "/api/v1/labels?limit=0",
        "/api/v1/labels?colour=red",
    ] {
        let (status, body) = h.json(get(bad, &h.admin)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

#[tokio::test]
async fn the_catalog_learns_from_traces_imports_files_and_pages() {
    let h = Harness::new().await;
    let reviewer = key(&h.store, "acme", "review").await;
    let other = key(&h.store, "globex", "admin").await;
    let (status, _) = h
        .json(post("/v1/traces", &h.admin, "application/json", fixture()))
        .await;
    assert_eq!(status, StatusCode::OK);

    let backstage = "apiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata: {name: payments-db}\nspec: {type: database, owner: group:payments}\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: checkout}\nspec: {type: service, dependsOn: [resource:payments-db]}\n";
    let (status, body) = h
        .json(post(
            "/api/v1/catalog",
            &h.admin,
            "application/yaml",
            backstage,
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["imported"], 2);
    let toml =
        "[[entities]]\nname = \"redis-cart\"\nkind = \"cache\"\naliases = [\"cart cache\"]\n";
    let (status, _) = h
        .json(post("/api/v1/catalog", &h.admin, "application/toml", toml))
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = h
        .json(get("/api/v1/catalog?provenance=static_file", &reviewer))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let names: Vec<&str> = body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["checkout", "payments-db", "redis-cart"]);
    assert_eq!(body["entries"][1]["team"], "payments");
    assert_eq!(body["entries"][0]["depends_on"][0], "payments-db");
    assert!(body["entries"][0]["first_seen"].is_string());

    // The trace's own attributes fed the catalog too, and pages cover everything once.
    let (_, everything) = h.json(get("/api/v1/catalog?limit=1000", &reviewer)).await;
    let all = everything["entries"].as_array().unwrap().len();
    assert!(
        everything["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["provenance"] == "trace"),
        "{everything}"
    );
    let mut paged = Vec::new();
    let mut uri = "/api/v1/catalog?limit=2".to_owned();
    loop {
        let (status, page) = h.json(get(&uri, &reviewer)).await;
        assert_eq!(status, StatusCode::OK);
        paged.extend(page["entries"].as_array().unwrap().clone());
        match page["next"].as_str() {
            Some(next) => uri = format!("/api/v1/catalog?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(paged.len(), all);
    assert_eq!(paged, *everything["entries"].as_array().unwrap());

    let (_, services) = h.json(get("/api/v1/catalog?kind=cache", &reviewer)).await;
    assert_eq!(services["entries"].as_array().unwrap().len(), 1);

    // Another tenant sees none of it.
    let (_, foreign) = h.json(get("/api/v1/catalog", &other)).await;
    assert_eq!(foreign["entries"], serde_json::json!([]));
}

#[tokio::test]
async fn bad_catalog_imports_are_refused_with_the_problem_and_write_nothing() {
    let h = Harness::new().await;
    let reviewer = key(&h.store, "acme", "review").await;
    let cases = [
        (
            "application/yaml",
            "entities:\n  - name: ok\n  - kind: database\n",
            StatusCode::BAD_REQUEST,
            "entity 2: missing field `name`",
        ),
        (
            "application/json",
            "{\"entities\": [",
            StatusCode::BAD_REQUEST,
            "invalid JSON",
        ),
        (
            "application/toml",
            "entities = 3",
            StatusCode::BAD_REQUEST,
            "not a list of entities",
        ),
        (
            "text/plain",
            "name: x",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "application/yaml",
        ),
    ];
    for (content_type, body, expected, message) in cases {
        let (status, response) = h
            .json(post("/api/v1/catalog", &h.admin, content_type, body))
            .await;
        assert_eq!(status, expected, "{content_type}: {response}");
        let text = response["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{text:?} lacks {message:?}");
    }
    let (status, response) = h
        .json(post(
            "/api/v1/catalog",
            &h.admin,
            "application/yaml",
            vec![0xff, 0xfe, 0x00],
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{response}");

    // Importing needs the admin scope; listing needs review; bad filters are named.
    let (status, _) = h
        .json(post(
            "/api/v1/catalog",
            &reviewer,
            "application/yaml",
            "[{name: x}]",
        ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let ingest_only = key(&h.store, "acme", "ingest").await;
    let (status, _) = h.json(get("/api/v1/catalog", &ingest_only)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for query in ["provenance=guess", "limit=0", "colour=red"] {
        let (status, body) = h
            .json(get(&format!("/api/v1/catalog?{query}"), &reviewer))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
    }
    let (_, body) = h.json(get("/api/v1/catalog", &reviewer)).await;
    assert_eq!(body["entries"], serde_json::json!([]));
}
