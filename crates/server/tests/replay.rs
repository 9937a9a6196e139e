//! Replay sessions and runs over HTTP: a session opened on a stored label answers from its
//! frozen snapshot only; its ground truth, scores and feedback text are unreachable through
//! every face; unknown sessions, labels and runs, and other tenants' ones, are 404.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use evalmint_model::{
    CaptureStatus, ScopeSet, SignalSource, SnapshotQuery, TenantId, TimeWindow, Timestamp, TraceId,
    Trigger, TriggerKind,
};
use evalmint_server::{AppState, ServerConfig, app};
use evalmint_store::{
    CaptureOrder, CaptureOutcome, LabelOutcome, PipelineStore, SqliteOptions, SqliteStore, Store,
};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const TRACE: &str = "5b8efff798038103d269b633813fc60c";
const TRUTH: &str = "SECRET-STATEMENT payments-db pool drained by the nightly batch";
const CHAIN: &str = "SECRET-CHAIN batch holds connections";
const CORRECTION: &str = "SECRET-FEEDBACK it was the nightly batch";
const REASON: &str = "SECRET-SCORE-REASON";

async fn send(router: &Router, request: Request<Body>) -> (StatusCode, String) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn post(uri: &str, key: Option<&str>, body: Value) -> Request<Body> {
    let mut request = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(key) = key {
        request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    request.body(Body::from(body.to_string())).unwrap()
}

fn get(uri: &str, key: Option<&str>) -> Request<Body> {
    let mut request = Request::get(uri);
    if let Some(key) = key {
        request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    request.body(Body::empty()).unwrap()
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// Stores one admitted label for `acme` with one captured metric query.
async fn admitted_label(
    store: &Arc<SqliteStore>,
    tenant: &TenantId,
    router: &Router,
    admin: &str,
) -> String {
    let feedback = json!({"investigation_id": TRACE, "verdict": "down", "correction": CORRECTION});
    let (status, _) = send(router, post("/api/v1/feedback", Some(admin), feedback)).await;
    assert_eq!(status, StatusCode::CREATED);
    let trace: TraceId = TRACE.parse().unwrap();
    let mut query = SnapshotQuery::pending(
        "q1".into(),
        "prometheus".into(),
        SignalSource::Metrics,
        "query_metrics".into(),
        "max by (service) (pool_usage{service=\"payments-db\"})".into(),
        t("2026-03-02T12:00:00Z"),
        t("2026-03-01T12:00:00Z"),
    );
    query.arguments = Some(
        json!({"query": query.query, "start": "2026-03-01T11:00:00Z", "end": "2026-03-01T12:00:00Z", "step": "600s"}).to_string(),
    );
    query.window = TimeWindow::new(t("2026-03-01T11:00:00Z"), t("2026-03-01T12:00:00Z"));
    store
        .plan_snapshot(tenant, trace, vec![query.clone()])
        .await
        .unwrap();
    let lease = jiff::SignedDuration::from_secs(60);
    for task in store
        .claim_captures(CaptureOrder::EarliestDeadline, lease, 10)
        .await
        .unwrap()
    {
        let values: Vec<Value> = (0..7)
            .map(|i| json!([1_772_362_800 + i * 600, format!("0.{i}")]))
            .collect();
        let result = json!({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"service": "payments-db"}, "values": values}]}});
        let outcome = CaptureOutcome {
            status: CaptureStatus::Captured,
            result: Some(result.to_string().into_bytes()),
            truncated: false,
            error: None,
            retry_at: None,
        };
        store.record_capture(task, outcome).await.unwrap();
    }
    let score = || evalmint_model::Score {
        value: 0.9,
        reasons: vec![REASON.into()],
    };
    let jobs = store.claim_label_jobs(lease, 10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    let label = evalmint_model::CandidateLabel {
        id: String::new(),
        investigation_id: trace,
        version: 0,
        trigger: Some(Trigger {
            kind: TriggerKind::Alert,
            text: "[FIRING] pool saturation".into(),
            monitor: Some("pool".into()),
            fired_at: Some(t("2026-03-01T11:55:00Z")),
        }),
        ground_truth: Some(evalmint_model::GroundTruth {
            statement: TRUTH.into(),
            components: vec!["payments-db".into()],
            category: Some(evalmint_model::Category::RESOURCE_CONNECTION_POOL),
            onset: Some(t("2026-03-01T11:40:00Z")),
            causal_chain: vec![CHAIN.into()],
            evidence: vec!["q1".into()],
            reason: Some(CORRECTION.into()),
            entities: vec![],
        }),
        // The snapshot as captured, as the label worker reads it.
        snapshot: store.snapshot(tenant, trace).await.unwrap(),
        segments: vec![evalmint_model::Segment {
            facet: "service".into(),
            value: "payments-db".into(),
        }],
        scores: evalmint_model::Scores {
            specificity: score(),
            accuracy: score(),
            thoroughness: score(),
        },
        route: evalmint_model::Route::Admit,
        audit: false,
        provenance: evalmint_model::Provenance {
            feedback_ids: vec![],
            drafter: "test".into(),
            drafter_version: "1".into(),
            basis: "correction".into(),
        },
        created_at: Timestamp::UNIX_EPOCH,
    };
    let outcome = LabelOutcome {
        result: Ok(Box::new(label)),
        excluded: vec![],
    };
    store.finish_label_job(&jobs[0], outcome).await.unwrap();
    format!("cand-{TRACE}-v1")
}

#[tokio::test]
async fn a_session_serves_the_snapshot_and_never_the_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap());
    let acme = TenantId::new("acme").unwrap();
    let admin = store
        .create_api_key(&acme, "t", ScopeSet::parse_list("admin").unwrap())
        .await
        .unwrap()
        .secret;
    let other = store
        .create_api_key(
            &TenantId::new("globex").unwrap(),
            "t",
            ScopeSet::parse_list("admin").unwrap(),
        )
        .await
        .unwrap()
        .secret;
    let router = app(AppState::new(store.clone(), ServerConfig::default()));
    let label_id = admitted_label(&store, &acme, &router, &admin).await;

    // Another tenant cannot open a session on it; an unknown label is 404 too.
    for (key, id) in [(&other, label_id.as_str()), (&admin, "cand-nope-v1")] {
        let (status, _) = send(
            &router,
            post(
                "/api/v1/replay/sessions",
                Some(key),
                json!({"label_id": id}),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, body) = send(
        &router,
        post(
            "/api/v1/replay/sessions",
            Some(&admin),
            json!({"label_id": label_id}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let opened: Value = serde_json::from_str(&body).unwrap();
    let sid = opened["id"].as_str().unwrap().to_owned();
    for url in ["mcp_url", "http_url", "prometheus_url"] {
        assert!(opened[url].as_str().unwrap().contains(&sid), "{url}");
    }
    assert_eq!(opened["trigger"]["monitor"], "pool");

    let base = format!("/replay/sessions/{sid}");
    let mut seen = vec![body];
    // The frozen series, through the tools and through the Prometheus API.
    let args = json!({"query": "max by(service)(pool_usage{service=\"payments-db\"})", "start": 1_772_362_800, "end": 1_772_366_400, "step": "10m"});
    let (status, metrics) = send(
        &router,
        post(&format!("{base}/tools/query_metrics"), None, args),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{metrics}");
    assert_eq!(
        serde_json::from_str::<Value>(&metrics).unwrap()["data"]["result"][0]["values"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    let range = format!(
        "{base}/prometheus/api/v1/query_range?query=max%20by%20(service)%20(pool_usage%7Bservice%3D%22payments-db%22%7D)&start=2026-03-01T11:30:00Z&end=2026-03-01T12:00:00Z&step=600"
    );
    let (status, prom) = send(&router, get(&range, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&prom).unwrap()["data"]["result"][0]["values"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    seen.extend([metrics, prom]);
    // Everything else a session offers, with wildcard-ish arguments.
    for (tool, args) in [
        ("search_logs", json!({"query": "*"})),
        ("search_logs", json!({"query": "SECRET"})),
        ("get_events", json!({})),
        ("get_traces", json!({"service": "payments-db"})),
        ("list_services", json!({})),
        (
            "get_service_dependencies",
            json!({"service": "payments-db"}),
        ),
        ("query_metrics", json!({"query": "{__name__=~\".+\"}"})),
    ] {
        let (status, body) = send(&router, post(&format!("{base}/tools/{tool}"), None, args)).await;
        assert_eq!(status, StatusCode::OK, "{tool}: {body}");
        seen.push(body);
    }
    for endpoint in [
        "query?query=up",
        "series?match[]=%7Bservice%3D%22payments-db%22%7D",
        "labels",
    ] {
        let (status, body) = send(
            &router,
            get(&format!("{base}/prometheus/api/v1/{endpoint}"), None),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{endpoint}: {body}");
        seen.push(body);
    }
    let (_, tools) = send(&router, get(&format!("{base}/tools"), None)).await;
    seen.push(tools);
    for body in &seen {
        for secret in ["SECRET", TRUTH, CHAIN, CORRECTION, REASON] {
            assert!(
                !body.contains(secret),
                "{secret:?} reached a session: {body}"
            );
        }
    }
    // Bad arguments name the field; unknown tools and sessions are 404.
    let (status, body) = send(
        &router,
        post(
            &format!("{base}/tools/query_metrics"),
            None,
            json!({"start": 1}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("query: is required"), "{body}");
    let (status, _) = send(
        &router,
        post(&format!("{base}/tools/rm_rf"), None, json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(
        &router,
        post(
            "/replay/sessions/s-0000/tools/list_services",
            None,
            json!({}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn runs_are_listed_per_tenant_and_unknown_runs_are_404() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap());
    let acme = TenantId::new("acme").unwrap();
    let admin = store
        .create_api_key(&acme, "t", ScopeSet::parse_list("admin").unwrap())
        .await
        .unwrap()
        .secret;
    let other = store
        .create_api_key(
            &TenantId::new("globex").unwrap(),
            "t",
            ScopeSet::parse_list("review").unwrap(),
        )
        .await
        .unwrap()
        .secret;
    let run = evalmint_model::EvalRun {
        id: "run-1".into(),
        agent: "sim:v1".into(),
        label_source: "admitted".into(),
        k: 1,
        status: evalmint_model::RunStatus::Completed,
        error: None,
        started_at: t("2026-03-01T12:00:00Z"),
        finished_at: t("2026-03-01T12:01:00Z"),
        baseline: None,
        results: vec![evalmint_model::EvalResult {
            label_id: "cand-1".into(),
            label_version: 1,
            attempt: 0,
            outcome: evalmint_model::Outcome::Pass,
            reason: "component: answered payments-db".into(),
            grades: vec![],
            segments: vec![],
            answer: None,
            trace: vec![],
            duration_ms: 5,
        }],
    };
    store.store_eval_run(&acme, run).await.unwrap();
    let router = app(AppState::new(store.clone(), ServerConfig::default()));
    let (status, body) = send(&router, get("/api/v1/runs", Some(&admin))).await;
    assert_eq!(status, StatusCode::OK);
    let listed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(listed["runs"][0]["id"], "run-1");
    assert_eq!(listed["runs"][0]["pass_rate"]["passed"], 1);
    let (status, body) = send(&router, get("/api/v1/runs/run-1", Some(&admin))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("\"summary\""));
    for (key, id) in [(&other, "run-1"), (&admin, "run-2")] {
        let (status, _) = send(&router, get(&format!("/api/v1/runs/{id}"), Some(key))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (_, body) = send(&router, get("/api/v1/runs", Some(&other))).await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["runs"],
        json!([])
    );
}

/// A run over the admitted set and a run over a release of the same labels name them alike, so
/// they pair: the comparison sees the label that flipped, the later run remembers its baseline
/// and the label's history lists both runs.
#[tokio::test]
async fn admitted_and_release_runs_of_the_same_labels_pair_on_their_label_ids() {
    use evalmint_model::{EvalResult, EvalRun, Outcome, RunStatus};
    use evalmint_store::ReviewStore;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap());
    let acme = TenantId::new("acme").unwrap();
    let admin = store
        .create_api_key(&acme, "t", ScopeSet::parse_list("admin").unwrap())
        .await
        .unwrap()
        .secret;
    let router = app(AppState::new(store.clone(), ServerConfig::default()));
    admitted_label(&store, &acme, &router, &admin).await;
    let (release, _) = store.create_release(&acme, "r1", vec![]).await.unwrap();

    let admitted = evalmint_eval::labels::admitted(&*store, &acme)
        .await
        .unwrap();
    let released = evalmint_eval::labels::release(&*store, &acme, &release.id)
        .await
        .unwrap()
        .unwrap();
    let names = |labels: &[evalmint_eval::LabelVersion]| -> Vec<(String, u32)> {
        labels
            .iter()
            .map(|l| (l.label_id.clone(), l.version))
            .collect()
    };
    let label = format!("lbl-{TRACE}");
    assert_eq!(names(&admitted), [(label.clone(), 1)]);
    assert_eq!(names(&admitted), names(&released));

    let run_on =
        |id: &str, minute: i64, source: &str, labels: &[evalmint_eval::LabelVersion], outcome| {
            EvalRun {
                id: id.into(),
                agent: "sim:v1".into(),
                label_source: source.into(),
                k: 1,
                status: RunStatus::Completed,
                error: None,
                started_at: Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_mins(minute),
                finished_at: Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_mins(minute + 1),
                baseline: None,
                results: labels
                    .iter()
                    .map(|l| EvalResult {
                        label_id: l.label_id.clone(),
                        label_version: l.version,
                        attempt: 0,
                        outcome,
                        reason: format!("{} on {source}", outcome.as_str()),
                        grades: vec![],
                        segments: l.segments.clone(),
                        answer: None,
                        trace: vec![],
                        duration_ms: 1,
                    })
                    .collect(),
            }
        };
    let on_admitted = run_on("run-admitted", 0, "admitted", &admitted, Outcome::Pass);
    let mut on_release = run_on("run-release", 5, &release.id, &released, Outcome::Fail);
    on_release.baseline = Some(on_admitted.id.clone());
    let summary = evalmint_eval::report::summarise(&on_release, Some(&on_admitted));
    let overall = summary.overall();
    assert_eq!(overall.baseline.unwrap().total, 1, "the label is paired");
    assert_eq!(overall.lost, Some(1));
    assert_eq!(summary.flips, std::slice::from_ref(&label));
    store.store_eval_run(&acme, on_admitted).await.unwrap();
    store.store_eval_run(&acme, on_release).await.unwrap();

    // The stored run compares with its baseline without being asked.
    let (status, body) = send(&router, get("/api/v1/runs/run-release", Some(&admin))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let shown: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(shown["run"]["baseline"], "run-admitted");
    assert_eq!(shown["summary"]["baseline"], "run-admitted");
    assert_eq!(shown["summary"]["flips"], json!([label]));
    assert_eq!(shown["summary"]["segments"][0]["lost"], 1);

    // The label's history: both runs, newest first, flaky.
    let (status, body) = send(
        &router,
        get(&format!("/api/v1/labels/{label}/runs"), Some(&admin)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let history: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(history["flaky"], true);
    let runs: Vec<&str> = history["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(runs, ["run-release", "run-admitted"]);
    assert_eq!(history["runs"][0]["label_source"], release.id);
    assert_eq!(history["runs"][0]["passed"], false);
    assert_eq!(
        history["runs"][1]["attempts"][0]["reason"],
        "pass on admitted"
    );
    // A candidate id names the same label; the limit is checked.
    let (status, body) = send(
        &router,
        get(
            &format!("/api/v1/labels/cand-{TRACE}-v1/runs?limit=1"),
            Some(&admin),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["runs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    for bad in ["0", "501", "many"] {
        let (status, body) = send(
            &router,
            get(
                &format!("/api/v1/labels/{label}/runs?limit={bad}"),
                Some(&admin),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert!(body.contains("limit"), "{body}");
    }
    let (status, _) = send(
        &router,
        get(
            &format!("/api/v1/labels/lbl-{}/runs", "0".repeat(31) + "1"),
            Some(&admin),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
