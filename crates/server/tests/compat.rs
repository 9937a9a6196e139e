//! The Langfuse, Phoenix and LangSmith endpoints without a socket: the legacy Langfuse ingestion
//! batch, Basic auth, and that a wrong or missing key is 401 and bad input a 4xx in each SDK's
//! shape, never a 5xx. (The SDKs themselves are driven in `interop/test_compat_sdks.py`.)

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use evalmint_model::{ScopeSet, TenantId};
use evalmint_server::{AppState, ServerConfig, app};
use evalmint_store::{SqliteOptions, SqliteStore, Store};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const TRACE: &str = "5b8efff798038103d269b633813fc60c";

struct Harness {
    router: Router,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Arc::new(SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap());
        Harness {
            router: app(AppState::new(sqlite.clone(), ServerConfig::default())),
            store: sqlite,
            _dir: dir,
        }
    }

    async fn key(&self, scopes: &str) -> String {
        self.store
            .create_api_key(
                &TenantId::new("acme").unwrap(),
                "test",
                ScopeSet::parse_list(scopes).unwrap(),
            )
            .await
            .unwrap()
            .secret
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, body)
    }
}

fn basic(secret: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("pk-lf-1:{secret}"));
    format!("Basic {encoded}")
}

fn post(uri: &str, authorization: (&str, String), body: Value) -> Request<Body> {
    Request::post(uri)
        .header(authorization.0, authorization.1)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn legacy_ingestion_stores_score_events_and_names_the_others() {
    let harness = Harness::new();
    let key = harness.key("feedback").await;
    let batch = json!({ "batch": [
        { "id": "e1", "type": "score-create", "timestamp": "2026-11-29T10:00:00Z",
          "body": { "id": "s1", "traceId": TRACE, "name": "user-feedback", "value": 1, "dataType": "BOOLEAN",
                    "metadata": { "userId": "u-1" } } },
        { "id": "e2", "type": "trace-create", "timestamp": "2026-11-29T10:00:00Z", "body": { "id": TRACE } },
        { "id": "e3", "type": "score-create", "timestamp": "2026-11-29T10:00:00Z",
          "body": { "traceId": TRACE, "name": "x", "value": 9.5 } },
    ], "metadata": { "sdk": "python" } });
    let (status, body) = harness
        .send(post(
            "/api/public/ingestion",
            ("authorization", basic(&key)),
            batch.clone(),
        ))
        .await;
    assert_eq!(status, StatusCode::MULTI_STATUS, "{body}");
    assert_eq!(body["successes"], json!([{ "id": "e1", "status": 201 }]));
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{body}");
    assert_eq!(errors[0]["id"], "e2");
    assert!(errors[0]["message"].as_str().unwrap().contains("OTLP"));
    assert_eq!(errors[1]["id"], "e3");
    assert!(errors[1]["message"].as_str().unwrap().starts_with("value:"));

    // The same batch again: the score id makes it a replay, not a second feedback.
    let (status, body) = harness
        .send(post(
            "/api/public/ingestion",
            ("authorization", basic(&key)),
            batch,
        ))
        .await;
    assert_eq!(status, StatusCode::MULTI_STATUS, "{body}");
    // The trace arrives; the score joined it once.
    let admin = harness.key("admin").await;
    let investigation = json!({ "id": TRACE, "agent": { "name": "sre-agent" },
        "started_at": "2026-11-29T09:59:00Z",
        "steps": [{ "kind": "llm", "name": "chat", "started_at": "2026-11-29T09:59:01Z", "output": "done" }] });
    let (status, body) = harness
        .send(post(
            "/api/v1/investigations",
            ("authorization", format!("Bearer {admin}")),
            investigation,
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, read) = harness
        .send(
            Request::get(format!("/api/v1/investigations/{TRACE}"))
                .header("authorization", format!("Bearer {admin}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let feedback = read["feedback"].as_array().unwrap();
    assert_eq!(feedback.len(), 1, "{read}");
    assert_eq!(feedback[0]["origin"], "langfuse");
    assert_eq!(feedback[0]["verdict"], "up");
    assert_eq!(feedback[0]["user_id"], "u-1");
}

#[tokio::test]
async fn wrong_keys_are_401_in_each_shape_and_never_5xx() {
    let harness = Harness::new();
    let score = json!([{ "traceId": TRACE, "name": "x", "value": 1 }]);
    let annotation = json!({ "data": [{ "name": "x", "span_id": "051581bf3cb55c13", "result": { "label": "good" } }] });
    let feedback =
        json!({ "trace_id": "5b8efff7-9803-8103-d269-b633813fc60c", "key": "k", "score": 1 });
    let wrong = "em_wrong_key_0123456789abcdef".to_owned();
    for (request, field) in [
        (
            post(
                "/api/public/scores",
                ("authorization", basic(&wrong)),
                score.clone(),
            ),
            "message",
        ),
        (
            post(
                "/api/public/scores",
                ("authorization", "Basic !!!".to_owned()),
                score.clone(),
            ),
            "message",
        ),
        (
            post(
                "/api/public/ingestion",
                ("x-other", "1".to_owned()),
                json!({ "batch": [] }),
            ),
            "message",
        ),
        (
            post(
                "/v1/span_annotations?sync=true",
                ("authorization", format!("Bearer {wrong}")),
                annotation.clone(),
            ),
            "detail",
        ),
        (
            post("/feedback", ("x-api-key", wrong.clone()), feedback.clone()),
            "detail",
        ),
    ] {
        let uri = request.uri().to_string();
        let (status, body) = harness.send(request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}: {body}");
        assert!(body[field].is_string(), "{uri}: {body}");
    }
    let (status, _) = harness
        .send(
            Request::get("/api/public/projects")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_input_is_4xx_in_each_shape_and_a_feedback_key_reads_nothing() {
    let harness = Harness::new();
    let key = harness.key("feedback").await;
    let bearer = || ("authorization", format!("Bearer {key}"));
    for (request, expected, field) in [
        (
            post(
                "/api/public/scores",
                ("authorization", basic(&key)),
                json!("scores"),
            ),
            StatusCode::BAD_REQUEST,
            "message",
        ),
        (
            post(
                "/api/public/scores",
                ("authorization", basic(&key)),
                json!({ "name": "x", "value": 1 }),
            ),
            StatusCode::BAD_REQUEST,
            "message",
        ),
        (
            post(
                "/v1/span_annotations",
                bearer(),
                json!({ "data": [{ "name": "x", "span_id": "zz", "result": { "label": "good" } }] }),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "detail",
        ),
        (
            post("/v1/span_annotations", bearer(), json!({ "rows": [] })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "detail",
        ),
        (
            post(
                "/feedback",
                ("x-api-key", key.clone()),
                json!({ "key": "k", "score": 1 }),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "detail",
        ),
        (
            post(
                "/feedback",
                ("x-api-key", key.clone()),
                json!({ "trace_id": "nope", "key": "k" }),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "detail",
        ),
    ] {
        let uri = request.uri().to_string();
        let (status, body) = harness.send(request).await;
        assert_eq!(status, expected, "{uri}: {body}");
        assert!(body[field].is_string(), "{uri}: {body}");
    }
    // A valid annotation with the feedback key is stored; the same key cannot read it back.
    let (status, body) = harness
        .send(post("/v1/span_annotations?sync=true", bearer(), json!({ "data": [{ "name": "x", "span_id": "051581bf3cb55c13", "result": { "label": "good" } }] })))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["data"][0]["id"].as_str().unwrap();
    let (status, _) = harness
        .send(
            Request::get(format!("/api/v1/feedback/{id}"))
                .header("authorization", format!("Bearer {key}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_openapi_description_documents_every_route_and_docs_renders_it() {
    let harness = Harness::new();
    let (status, api) = harness
        .send(Request::get("/openapi.json").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(api["openapi"].as_str().unwrap().starts_with("3.1"), "{api}");
    let paths = api["paths"].as_object().unwrap();
    for path in [
        "/v1/traces",
        "/api/v1/feedback",
        "/api/v1/investigations/{id}",
        "/api/public/scores",
        "/api/public/ingestion",
        "/api/public/projects",
        "/api/public/otel/v1/traces",
        "/v1/span_annotations",
        "/arize_phoenix_version",
        "/info",
        "/feedback",
        "/healthz",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    // Malformed feedback is 400, well-formed feedback with bad fields 422, an erased one 410.
    let submit = &paths["/api/v1/feedback"]["post"]["responses"];
    for status in ["400", "410", "422"] {
        assert!(
            submit.get(status).is_some(),
            "feedback {status} undocumented"
        );
    }
    assert!(
        paths["/api/v1/feedback/{id}"].get("delete").is_some(),
        "erasure by id is undocumented"
    );
    let (status, page) = harness
        .send(Request::get("/docs").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.as_str().unwrap().contains("/openapi.json"));
}

#[tokio::test]
async fn a_retry_of_erased_feedback_is_410_in_each_shape_and_stores_nothing() {
    let harness = Harness::new();
    let key = harness.key("feedback").await;
    let admin = harness.key("admin").await;
    let user = json!({ "user_id": "u-9" });
    let requests = || {
        [
            (
                post(
                    "/api/public/scores",
                    ("authorization", basic(&key)),
                    json!({ "id": "s-9", "traceId": TRACE, "name": "helpful", "value": 0, "metadata": user }),
                ),
                "message",
            ),
            (
                post(
                    "/v1/span_annotations?sync=true",
                    ("authorization", format!("Bearer {key}")),
                    json!({ "data": [{ "name": "x", "span_id": "051581bf3cb55c13",
                                       "result": { "label": "bad" }, "metadata": user }] }),
                ),
                "detail",
            ),
            (
                post(
                    "/feedback",
                    ("x-api-key", key.clone()),
                    json!({ "id": "1f0c7d5e-0000-4000-8000-000000000009",
                            "trace_id": "5b8efff7-9803-8103-d269-b633813fc60c", "key": "k",
                            "score": 0, "feedback_source": { "metadata": user } }),
                ),
                "detail",
            ),
        ]
    };
    for (request, _) in requests() {
        let uri = request.uri().to_string();
        let (status, body) = harness.send(request).await;
        assert!(status.is_success(), "{uri}: {status} {body}");
    }
    let (status, erased) = harness
        .send(
            Request::delete("/api/v1/feedback?user_id=u-9")
                .header("authorization", format!("Bearer {admin}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    assert_eq!(erased["feedback_erased"], 3, "{erased}");
    for (request, field) in requests() {
        let uri = request.uri().to_string();
        let (status, body) = harness.send(request).await;
        assert_eq!(status, StatusCode::GONE, "{uri}: {body}");
        assert!(
            body[field].as_str().unwrap().contains("erased"),
            "{uri}: {body}"
        );
    }
}
