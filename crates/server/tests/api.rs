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
    // Malformed JSON is a 400: there is nothing to name.
    for body in [r#"{"investigation_id": "#, "", "{\"verdict\": \"up\",}"] {
        let (status, error) = h
            .json(post(
                "/api/v1/feedback",
                &h.admin,
                "application/json",
                body.to_owned(),
            ))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(&error), "invalid_request");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("invalid JSON"),
            "{error}"
        );
    }
    // Well-formed JSON whose fields are wrong is a 422 naming each field.
    let cases = [
        (r#"[1, 2]"#.to_owned(), "body: must be a JSON object"),
        (
            format!(r#"{{"investigation_id": "{TRACE}", "rating": "five"}}"#),
            "rating: invalid type: string \"five\"",
        ),
        (
            format!(r#"{{"investigation_id": "{TRACE}", "verdict": "up", "sentiment": 1}}"#),
            "unknown field \"sentiment\"",
        ),
        (
            format!(r#"{{"investigation_id": "{TRACE}"}}"#),
            "at least one of verdict or rating",
        ),
        (
            r#"{"investigation_id": "xyz", "verdict": "up"}"#.to_owned(),
            "investigation_id",
        ),
        (
            format!(r#"{{"investigation_id": "{TRACE}", "rating": 0}}"#),
            "outside 1-5",
        ),
        // Blank ids would store feedback that names nothing and never reaches a label state.
        (
            r#"{"investigation_id": "  ", "verdict": "up"}"#.to_owned(),
            "investigation_id: must not be blank",
        ),
        (
            r#"{"investigation_id": "", "verdict": "up"}"#.to_owned(),
            "investigation_id: must not be blank",
        ),
        (
            r#"{"span_id": "", "verdict": "up"}"#.to_owned(),
            "span_id: must not be blank",
        ),
    ];
    for (body, needle) in cases {
        let (status, error) = h
            .json(post(
                "/api/v1/feedback",
                &h.admin,
                "application/json",
                body.clone(),
            ))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(error_code(&error), "invalid_field");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(needle),
            "{message:?} should mention {needle:?}"
        );
        assert!(
            !error["error"]["fields"].as_array().unwrap().is_empty(),
            "{error}"
        );
    }
    // Every problem of one body is named at once, each with its field.
    let (status, error) = h
        .json(post(
            "/api/v1/feedback",
            &h.admin,
            "application/json",
            r#"{"investigation_id": "xyz", "rating": "five", "tags": 3, "colour": "red"}"#,
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut fields: Vec<&str> = error["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        ["body", "investigation_id", "rating", "tags"],
        "{error}"
    );
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
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(error_code(&error), "invalid_field");
    }
    // Malformed JSON stays a 400.
    let (status, error) = h
        .json(post(
            "/api/v1/investigations",
            &h.admin,
            "application/json",
            "{\"id\": ".to_owned(),
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&error), "invalid_request");
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
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
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

/// A real store seen through a wrapper that counts the key reads, and, when `saturated`, has a
/// write queue that is always full (to check back-pressure reaches clients as 429) and reports
/// itself not ready (to check `/readyz` turns that into 503).
struct WrappedStore {
    inner: Arc<dyn Store>,
    saturated: bool,
    authentications: std::sync::atomic::AtomicUsize,
    key_checks: std::sync::atomic::AtomicUsize,
}

impl WrappedStore {
    fn new(inner: Arc<dyn Store>, saturated: bool) -> Self {
        WrappedStore {
            inner,
            saturated,
            authentications: Default::default(),
            key_checks: Default::default(),
        }
    }
}

#[async_trait]
impl Store for WrappedStore {
    async fn ingest(&self, t: &TenantId, b: IngestBatch) -> Result<IngestReceipt, StoreError> {
        if self.saturated {
            return Err(StoreError::Busy);
        }
        self.inner.ingest(t, b).await
    }
    async fn submit_feedback(
        &self,
        t: &TenantId,
        f: ValidFeedback,
    ) -> Result<FeedbackReceipt, StoreError> {
        if self.saturated {
            return Err(StoreError::Busy);
        }
        self.inner.submit_feedback(t, f).await
    }
    async fn feedback(&self, t: &TenantId, id: FeedbackId) -> Result<Option<Feedback>, StoreError> {
        self.inner.feedback(t, id).await
    }
    async fn investigation(
        &self,
        t: &TenantId,
        id: TraceId,
    ) -> Result<Option<Investigation>, StoreError> {
        self.inner.investigation(t, id).await
    }
    async fn create_api_key(
        &self,
        t: &TenantId,
        n: &str,
        s: ScopeSet,
    ) -> Result<NewApiKey, StoreError> {
        self.inner.create_api_key(t, n, s).await
    }
    async fn create_publishable_key(
        &self,
        t: &TenantId,
        n: &str,
        o: Vec<String>,
    ) -> Result<NewApiKey, StoreError> {
        self.inner.create_publishable_key(t, n, o).await
    }
    async fn replace_named_api_key(
        &self,
        t: &TenantId,
        n: &str,
        s: ScopeSet,
        secret: &str,
    ) -> Result<ApiKey, StoreError> {
        self.inner.replace_named_api_key(t, n, s, secret).await
    }
    async fn api_keys(&self, t: &TenantId) -> Result<Vec<ApiKey>, StoreError> {
        self.inner.api_keys(t).await
    }
    async fn revoke_api_key(&self, t: &TenantId, id: &str) -> Result<bool, StoreError> {
        self.inner.revoke_api_key(t, id).await
    }
    async fn rotate_api_key(
        &self,
        t: &TenantId,
        id: &str,
    ) -> Result<Option<NewApiKey>, StoreError> {
        self.inner.rotate_api_key(t, id).await
    }
    async fn authenticate(&self, secret: &str) -> Result<Option<ApiKey>, StoreError> {
        self.authentications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.authenticate(secret).await
    }
    async fn active_api_key_ids(
        &self,
        ids: Vec<String>,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        self.key_checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.active_api_key_ids(ids).await
    }
    async fn api_key_count(&self) -> Result<u64, StoreError> {
        self.inner.api_key_count().await
    }
    async fn create_ui_session(
        &self,
        t: &TenantId,
        token_sha256: &[u8],
        key_id: &str,
        csrf: &str,
        ttl: std::time::Duration,
    ) -> Result<(), StoreError> {
        self.inner
            .create_ui_session(t, token_sha256, key_id, csrf, ttl)
            .await
    }
    async fn ui_session(
        &self,
        token_sha256: &[u8],
    ) -> Result<Option<evalmint_store::UiSession>, StoreError> {
        self.inner.ui_session(token_sha256).await
    }
    async fn end_ui_session(&self, t: &TenantId, token_sha256: &[u8]) -> Result<bool, StoreError> {
        self.inner.end_ui_session(t, token_sha256).await
    }
    async fn expire_investigations(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        self.inner.expire_investigations(cutoff).await
    }
    async fn collect_garbage(&self) -> Result<u64, StoreError> {
        self.inner.collect_garbage().await
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        if self.saturated {
            return Err(StoreError::Closed);
        }
        self.inner.check_ready().await
    }
}

#[tokio::test]
async fn a_saturated_write_path_answers_429_with_retry_after() {
    let h = Harness::new().await;
    let router = app(AppState::with_metrics(
        Arc::new(WrappedStore::new(h.store.clone(), true)),
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
    let response = router
        .clone()
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = h
        .json(Request::get("/readyz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "a working store is ready");
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
            category: Some(evalmint_model::Category::RESOURCE_CONNECTION_POOL),
            onset: None,
            causal_chain: vec![],
            evidence: vec![],
            reason: None,
            entities: vec![],
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

fn delete(uri: &str, key: &str) -> Request<Body> {
    Request::delete(uri)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn erasing_a_user_deletes_their_feedback_and_labels_and_says_what_went() {
    use evalmint_store::PipelineStore;
    let h = Harness::new().await;
    let other = key(&h.store, "globex", "admin").await;
    h.send(post("/v1/traces", &h.admin, "application/json", fixture()))
        .await;
    let mut ids = Vec::new();
    for (who, idem) in [(&h.admin, "e1"), (&h.admin, "e2"), (&other, "e1")] {
        let (status, created) = h
            .json(post(
                "/api/v1/feedback",
                who,
                "application/json",
                feedback_body(idem, "down"),
            ))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    for job in h
        .labels
        .claim_label_jobs(jiff::SignedDuration::from_secs(60), 10)
        .await
        .unwrap()
    {
        let mut label = candidate(job.trace_id, evalmint_model::Route::Admit);
        label.provenance.feedback_ids = h
            .store
            .investigation(&job.tenant, job.trace_id)
            .await
            .unwrap()
            .map(|i| i.feedback.iter().map(|f| f.id).collect())
            .unwrap_or_default();
        let outcome = evalmint_store::LabelOutcome {
            result: Ok(Box::new(label)),
            excluded: vec![],
        };
        h.labels.finish_label_job(&job, outcome).await.unwrap();
    }

    let reviewer = key(&h.store, "acme", "review").await;
    let (status, _) = h
        .json(delete("/api/v1/feedback?user_id=u-17", &reviewer))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "erasure needs the admin scope"
    );
    for bad in [
        "/api/v1/feedback",
        "/api/v1/feedback?user_id=",
        "/api/v1/feedback?user_id=u-17&colour=red",
    ] {
        let (status, body) = h.json(delete(bad, &h.admin)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }

    let (status, erased) = h
        .json(delete("/api/v1/feedback?user_id=u-17", &h.admin))
        .await;
    assert_eq!(status, StatusCode::OK);
    // The fixture's trace carries feedback of its own (an evaluation event), without a user id:
    // the label it shares with u-17's feedback is drafted again without u-17.
    assert_eq!(erased["feedback_erased"], 2);
    assert_eq!(erased["subject"], "user");
    // The audit names the user by a keyed hash only: neither the id nor its plain SHA-256.
    let digest = erased["user_id_hmac"].as_str().unwrap();
    assert_eq!(digest.len(), 64);
    let plain_sha256 = sha2_hex("u-17");
    assert!(
        !erased.to_string().contains("u-17") && !erased.to_string().contains(&plain_sha256),
        "{erased}"
    );
    let withdrawn = erased["labels_withdrawn"].as_u64().unwrap();
    let redrafted = erased["labels_redrafted"].as_u64().unwrap();
    assert_eq!(withdrawn + redrafted, 1, "{erased}");
    assert!(
        !erased.to_string().contains("payments-db"),
        "no erased text"
    );
    for id in &ids[..2] {
        let (status, _) = h
            .json(get(&format!("/api/v1/feedback/{id}"), &h.admin))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (_, labels) = h.json(get("/api/v1/labels?route=all", &h.admin)).await;
    for label in labels["labels"].as_array().unwrap() {
        for fb in label["provenance"]["feedback_ids"].as_array().unwrap() {
            assert!(!ids[..2].contains(&fb.as_str().unwrap().to_owned()));
        }
    }
    // Globex's u-17 is someone else.
    let (status, _) = h
        .json(get(&format!("/api/v1/feedback/{}", ids[2]), &other))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, theirs) = h.json(get("/api/v1/labels", &other)).await;
    assert_eq!(theirs["labels"].as_array().unwrap().len(), 1);
    let audit = h
        .labels
        .erasures(&TenantId::new("acme").unwrap())
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(serde_json::to_value(&audit[0]).unwrap(), erased);
    // Whoever holds the store can still tell that u-17 was erased, and that u-18 was not.
    let acme = TenantId::new("acme").unwrap();
    assert_eq!(h.labels.user_erasures(&acme, "u-17").await.unwrap(), audit);
    assert!(
        h.labels
            .user_erasures(&acme, "u-18")
            .await
            .unwrap()
            .is_empty()
    );

    // A client retrying an erased submission is told it is gone, and nothing comes back.
    for idem in ["e1", "e2"] {
        let (status, body) = h
            .json(post(
                "/api/v1/feedback",
                &h.admin,
                "application/json",
                feedback_body(idem, "down"),
            ))
            .await;
        assert_eq!(status, StatusCode::GONE, "{body}");
        assert_eq!(error_code(&body), "erased");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("new idempotency key"),
            "{body}"
        );
    }
    let (_, investigation) = h
        .json(get(&format!("/api/v1/investigations/{TRACE}"), &h.admin))
        .await;
    assert!(
        investigation["feedback"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["user_id"] != "u-17"),
        "{investigation}"
    );
    // The same key in another tenant is that tenant's own, and unaffected.
    let (status, _) = h
        .json(post(
            "/api/v1/feedback",
            &other,
            "application/json",
            feedback_body("e1", "down"),
        ))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "globex's retry is an ordinary replay"
    );
}

fn sha2_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

#[tokio::test]
async fn feedback_without_a_user_is_erased_by_id_and_never_comes_back() {
    use evalmint_store::PipelineStore;
    let h = Harness::new().await;
    let other = key(&h.store, "globex", "admin").await;
    let anonymous = |idem: &str| {
        format!(
            r#"{{"investigation_id": "{TRACE}", "verdict": "down", "correction": "the cache, not the db",
                "idempotency_key": "{idem}"}}"#
        )
    };
    let (status, created) = h
        .json(post(
            "/api/v1/feedback",
            &h.admin,
            "application/json",
            anonymous("anon-1"),
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_str().unwrap().to_owned();
    let (_, kept) = h
        .json(post(
            "/api/v1/feedback",
            &h.admin,
            "application/json",
            anonymous("anon-2"),
        ))
        .await;
    let kept = kept["id"].as_str().unwrap().to_owned();

    let reviewer = key(&h.store, "acme", "review").await;
    let uri = format!("/api/v1/feedback/{id}");
    let (status, _) = h.json(delete(&uri, &reviewer)).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "erasure needs the admin scope"
    );
    let (status, _) = h.json(delete(&uri, &other)).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another tenant's feedback is not found"
    );
    let (status, body) = h
        .json(delete("/api/v1/feedback/not-a-uuid", &h.admin))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );

    let (status, erased) = h.json(delete(&uri, &h.admin)).await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    assert_eq!(erased["subject"], "feedback");
    assert_eq!(erased["feedback_id"], id.as_str());
    assert_eq!(erased["feedback_erased"], 1);
    assert!(
        !erased.to_string().contains("cache"),
        "no erased text: {erased}"
    );
    let (status, _) = h.json(get(&uri, &h.admin)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = h
        .json(get(&format!("/api/v1/feedback/{kept}"), &h.admin))
        .await;
    assert_eq!(status, StatusCode::OK, "only the named feedback goes");
    let (status, _) = h.json(delete(&uri, &h.admin)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "erased once, then gone");

    let (status, body) = h
        .json(post(
            "/api/v1/feedback",
            &h.admin,
            "application/json",
            anonymous("anon-1"),
        ))
        .await;
    assert_eq!((status, error_code(&body)), (StatusCode::GONE, "erased"));
    let (_, investigation) = h
        .json(get(&format!("/api/v1/investigations/{TRACE}"), &h.admin))
        .await;
    let stored: Vec<&str> = investigation["feedback"]
        .as_array()
        .map(|a| a.iter().map(|f| f["id"].as_str().unwrap()).collect())
        .unwrap_or_default();
    assert!(!stored.contains(&id.as_str()), "{investigation}");

    let audit = h
        .labels
        .erasures(&TenantId::new("acme").unwrap())
        .await
        .unwrap();
    assert_eq!(
        audit.len(),
        1,
        "a refused or foreign erasure records nothing"
    );
    assert_eq!(serde_json::to_value(&audit[0]).unwrap(), erased);
}

#[tokio::test]
async fn admins_list_revoke_and_rotate_their_tenants_keys_and_revocation_is_immediate() {
    let h = Harness::new().await;
    let ci = key(&h.store, "acme", "ingest").await;
    let foreign_admin = key(&h.store, "globex", "admin").await;
    // Authenticate once so the key sits in the server's cache.
    let (status, _) = h
        .json(post("/v1/traces", &ci, "application/json", fixture()))
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, listed) = h.json(get("/api/v1/keys", &h.admin)).await;
    assert_eq!(status, StatusCode::OK);
    let keys = listed["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "acme's two keys, not globex's: {listed}");
    assert!(
        keys.iter()
            .all(|k| k.get("secret").is_none() && k["tenant"] == "acme"),
        "{listed}"
    );
    let ci_id = keys
        .iter()
        .find(|k| k["scopes"] == serde_json::json!(["ingest"]))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = h.json(get("/api/v1/keys", &ci)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Another tenant's admin cannot see, revoke or rotate acme's key.
    let (status, body) = h
        .json(delete(&format!("/api/v1/keys/{ci_id}"), &foreign_admin))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, _) = h
        .json(post(
            &format!("/api/v1/keys/{ci_id}/rotate"),
            &foreign_admin,
            "application/json",
            "",
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, rotated) = h
        .json(post(
            &format!("/api/v1/keys/{ci_id}/rotate"),
            &h.admin,
            "application/json",
            "",
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(rotated["scopes"], serde_json::json!(["ingest"]));
    assert_ne!(rotated["id"], ci_id.as_str());
    let new_secret = rotated["secret"].as_str().unwrap();
    let (status, _) = h
        .json(post("/v1/traces", &ci, "application/json", fixture()))
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the rotated-out key stops working at once, despite the cache"
    );
    let (status, _) = h
        .json(post(
            "/v1/traces",
            new_secret,
            "application/json",
            fixture(),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);

    let new_id = rotated["id"].as_str().unwrap();
    let (status, _, body) = h
        .send(delete(&format!("/api/v1/keys/{new_id}"), &h.admin))
        .await;
    assert_eq!((status, body.len()), (StatusCode::NO_CONTENT, 0));
    let (status, _) = h
        .json(post(
            "/v1/traces",
            new_secret,
            "application/json",
            fixture(),
        ))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = h
        .json(delete(&format!("/api/v1/keys/{new_id}"), &h.admin))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, listed) = h.json(get("/api/v1/keys", &h.admin)).await;
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1);

    let (status, body) = h
        .json(post(
            "/api/v1/keys",
            &h.admin,
            "application/json",
            serde_json::json!({"name": evalmint_server::OPERATOR_KEY_NAME, "scopes": ["admin"]})
                .to_string(),
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), "invalid_field");
    assert!(body.to_string().contains("\"field\":\"name\""), "{body}");
}

/// Two servers over one store (two processes sharing a database): a key revoked through one is
/// refused by the other within about a second, and the other reads the store for keys about
/// once a second however many requests it serves, not once per request.
#[tokio::test]
async fn a_key_revoked_on_one_server_is_refused_by_another_within_a_second() {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};
    let h = Harness::new().await;
    let second_store = Arc::new(WrappedStore::new(h.store.clone(), false));
    let second = app(AppState::with_metrics(
        second_store.clone(),
        h.labels.clone(),
        ServerConfig::default(),
        evalmint_server::Metrics::default(),
    ));
    let (status, created) = h
        .json(post(
            "/api/v1/keys",
            &h.admin,
            "application/json",
            r#"{"name": "reader", "scopes": ["review"]}"#,
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (secret, id) = (
        created["secret"].as_str().unwrap().to_owned(),
        created["id"].as_str().unwrap().to_owned(),
    );
    let status_on_second = || async {
        second
            .clone()
            .oneshot(get("/api/v1/labels", &secret))
            .await
            .unwrap()
            .status()
    };

    let busy_for = Duration::from_millis(2_500);
    let started = Instant::now();
    let mut requests = 0;
    while started.elapsed() < busy_for {
        assert_eq!(status_on_second().await, StatusCode::OK);
        requests += 1;
    }
    let checks = second_store.key_checks.load(Ordering::Relaxed);
    assert_eq!(second_store.authentications.load(Ordering::Relaxed), 1);
    assert!(
        (1..=4).contains(&checks),
        "{checks} key re-checks for {requests} requests in {busy_for:?}"
    );
    assert!(requests > 10, "only {requests} requests");

    let (status, _, _) = h
        .send(delete(&format!("/api/v1/keys/{id}"), &h.admin))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let revoked_at = Instant::now();
    loop {
        let status = status_on_second().await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            revoked_at.elapsed() < Duration::from_secs(10),
            "the second server still takes the revoked key after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = revoked_at.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "the revoked key was refused only after {took:?}"
    );
    assert_eq!(
        status_on_second().await,
        StatusCode::UNAUTHORIZED,
        "and stays refused"
    );
}

#[tokio::test]
async fn a_weak_operator_key_is_refused_and_a_new_one_revokes_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    for weak in [
        "x",
        "short-but-varied-123",
        &"a".repeat(32),
        &"0123".repeat(8),
    ] {
        let refused = evalmint_server::bootstrap_admin_key(&store, Some(weak)).await;
        assert!(refused.is_err(), "{weak:?} was accepted");
    }
    assert_eq!(
        store.api_key_count().await.unwrap(),
        0,
        "nothing registered"
    );

    let old = "3f9a1c07d2b84e6f0a5c9d13e7b2f468";
    let new = "b7e2d19c4a0f68e35d1c2b9a7f04e6d1";
    evalmint_server::bootstrap_admin_key(&store, Some(old))
        .await
        .unwrap();
    evalmint_server::bootstrap_admin_key(&store, Some(old))
        .await
        .unwrap();
    assert!(store.authenticate(old).await.unwrap().is_some());
    evalmint_server::bootstrap_admin_key(&store, Some(new))
        .await
        .unwrap();
    assert!(
        store.authenticate(old).await.unwrap().is_none(),
        "the old operator key is revoked"
    );
    let admin = store.authenticate(new).await.unwrap().unwrap();
    assert!(admin.scopes.permits(evalmint_model::Scope::Admin));
    assert_eq!(store.api_key_count().await.unwrap(), 1);
}

#[tokio::test]
async fn an_operator_key_revokes_the_generated_admin_key_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    let generated = evalmint_server::bootstrap_admin_key(&store, None)
        .await
        .unwrap()
        .expect("a store without keys gets a generated admin key");
    assert!(store.authenticate(&generated).await.unwrap().is_some());
    let ingest = store
        .create_api_key(
            &TenantId::default_tenant(),
            "agent",
            ScopeSet::default().with(evalmint_model::Scope::Ingest),
        )
        .await
        .unwrap();

    let operator = "c41e7a9b02d58f36e1b7c0a94d2f6e83";
    evalmint_server::bootstrap_admin_key(&store, Some(operator))
        .await
        .unwrap();
    assert!(
        store.authenticate(&generated).await.unwrap().is_none(),
        "the generated admin key is revoked once the operator chose one"
    );
    assert!(store.authenticate(operator).await.unwrap().is_some());
    assert!(
        store.authenticate(&ingest.secret).await.unwrap().is_some(),
        "other keys are untouched"
    );
}

#[tokio::test]
async fn malformed_path_ids_and_non_object_otlp_json_are_json_400s() {
    let h = Harness::new().await;
    for uri in [
        "/api/v1/investigations/%FF",
        "/api/v1/feedback/%C3%28",
        "/api/v1/labels/%FF%FE",
    ] {
        let (status, body) = h.json(get(uri, &h.admin)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(error_code(&body), "invalid_request", "{uri}: {body}");
    }
    let (status, body) = h.json(delete("/api/v1/keys/%FF", &h.admin)).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );

    for otlp in ["[]", "[{}]", "null", "  "] {
        let (status, body) = h
            .json(post("/v1/traces", &h.admin, "application/json", otlp))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{otlp}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("expected an object"), "{otlp}: {message}");
    }
    let (status, _) = h
        .json(post("/v1/traces", &h.admin, "application/json", "{}"))
        .await;
    assert_eq!(status, StatusCode::OK, "an empty export is still fine");
}

#[tokio::test]
async fn every_response_forbids_sniffing_and_caching() {
    let h = Harness::new().await;
    for request in [
        get(&format!("/api/v1/investigations/{TRACE}"), &h.admin),
        get("/api/v1/labels", &h.admin),
        get("/api/v1/keys", "em_nope"),
        Request::get("/healthz").body(Body::empty()).unwrap(),
        Request::get("/metrics").body(Body::empty()).unwrap(),
        Request::get("/nowhere").body(Body::empty()).unwrap(),
    ] {
        let uri = request.uri().to_string();
        let (_, headers, _) = h.send(request).await;
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{uri}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{uri}");
    }
}

#[tokio::test]
async fn metrics_can_require_a_key_with_the_metrics_scope() {
    let h = Harness::with_config(ServerConfig {
        metrics_key_required: true,
        ..ServerConfig::default()
    })
    .await;
    let (status, body) = h
        .json(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    let ingest = key(&h.store, "acme", "ingest").await;
    let (status, _) = h.json(get("/metrics", &ingest)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for allowed in [key(&h.store, "acme", "metrics").await, h.admin.clone()] {
        let (status, _, body) = h.send(get("/metrics", &allowed)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(String::from_utf8_lossy(&body).contains("evalmint_http_requests"));
    }
    let (status, _) = h
        .json(Request::get("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "liveness never needs a key");
}

#[tokio::test]
async fn bodies_beyond_the_shared_byte_budget_get_429_with_retry_after() {
    let h = Harness::with_config(ServerConfig {
        max_in_flight_bytes: 64 * 1024,
        ..ServerConfig::default()
    })
    .await;
    // Larger than the whole budget: it could never fit, so it is too large, not "retry later".
    let big = vec![b' '; 100 * 1024];
    let (status, body) = h
        .json(post("/v1/traces", &h.admin, "application/json", big))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("65536"),
        "{body}"
    );

    // A small bomb inflates past the budget and is refused, not decompressed to the end.
    let bomb = gzip(&vec![b' '; 4 * 1024 * 1024]);
    let mut request = post("/v1/traces", &h.admin, "application/json", bomb);
    request
        .headers_mut()
        .insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
    let (status, headers, body) = h.send(request).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers[header::RETRY_AFTER], "1");
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error_code(&body), "busy");

    // The budget was given back: a normal export still fits.
    let (status, _) = h
        .json(post("/v1/traces", &h.admin, "application/json", fixture()))
        .await;
    assert_eq!(status, StatusCode::OK);
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
