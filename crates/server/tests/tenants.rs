//! Tenants that share identifiers never see or block each other. Trace ids cross organisations
//! in `traceparent` headers, span ids are reused, idempotency keys and user ids are short and
//! common, and label ids are derived from trace ids: a property test sends random interleavings
//! of two tenants' traffic that share all of these through every endpoint, runs the label
//! pipeline until it is idle, and checks that nothing of one tenant is visible to the other and
//! that every feedback of both ends in a terminal label state.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use evalmint_model::{ScopeSet, TenantId};
use evalmint_server::{AppState, ServerConfig, app};
use evalmint_store::{ManualClock, SqliteOptions, SqliteStore, Store};
use http_body_util::BodyExt;
use proptest::prelude::*;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const FIXTURE_TRACE: &str = "5B8EFFF798038103D269B633813FC60C";
/// A span of the OTLP fixture: every trace sent from it has this span.
const SHARED_SPAN: &str = "0102030405060709";

/// One request of one tenant.
#[derive(Debug, Clone)]
enum Action {
    /// The OTLP fixture under trace `n`.
    Otlp(usize),
    /// A native investigation under trace `n`.
    Native(usize),
    /// Feedback on trace `n` by user `user`, with idempotency key `key`.
    FeedbackOnTrace {
        trace: usize,
        user: usize,
        key: usize,
        opt_out: bool,
    },
    /// Feedback naming only the fixture's shared span.
    FeedbackOnSpan { user: usize, key: usize },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0..3usize).prop_map(Action::Otlp),
        (0..3usize).prop_map(Action::Native),
        (
            0..3usize,
            0..2usize,
            0..3usize,
            proptest::bool::weighted(0.2)
        )
            .prop_map(|(trace, user, key, opt_out)| Action::FeedbackOnTrace {
                trace,
                user,
                key,
                opt_out
            }),
        (0..2usize, 0..3usize).prop_map(|(user, key)| Action::FeedbackOnSpan { user, key }),
    ]
}

/// Random trace ids shared by both tenants, and each tenant's actions, interleaved.
fn scenario() -> impl Strategy<Value = (Vec<u128>, Vec<(usize, Action)>)> {
    (
        proptest::collection::vec(1u128.., 3),
        proptest::collection::vec((0..2usize, action()), 1..14),
    )
}

struct World {
    router: Router,
    store: Arc<SqliteStore>,
    clock: Arc<ManualClock>,
    keys: [String; 2],
    _dir: tempfile::TempDir,
}

impl World {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new("2026-01-01T00:05:00Z".parse().unwrap()));
        let store = Arc::new(
            SqliteStore::open(
                dir.path(),
                SqliteOptions {
                    clock: clock.clone(),
                    ..SqliteOptions::default()
                },
            )
            .unwrap(),
        );
        let mut keys = [String::new(), String::new()];
        for (slot, tenant) in keys.iter_mut().zip(["acme", "globex"]) {
            *slot = store
                .create_api_key(
                    &TenantId::new(tenant).unwrap(),
                    "admin",
                    ScopeSet::parse_list("admin").unwrap(),
                )
                .await
                .unwrap()
                .secret;
        }
        World {
            router: app(AppState::new(store.clone(), ServerConfig::default())),
            store,
            clock,
            keys,
            _dir: dir,
        }
    }

    async fn call(
        &self,
        method: &str,
        uri: &str,
        key: &str,
        body: Option<String>,
    ) -> (StatusCode, serde_json::Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {key}"));
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(body.map_or_else(Body::empty, Body::from))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, value)
    }
}

fn trace_hex(id: u128) -> String {
    format!("{id:032x}")
}

fn otlp(trace: &str) -> String {
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../otlp/tests/fixtures/genai_trace.json"
    ))
    .unwrap();
    assert!(fixture.contains(FIXTURE_TRACE));
    fixture.replace(FIXTURE_TRACE, trace)
}

fn native(trace: &str, tenant: usize) -> String {
    serde_json::json!({
        "id": trace,
        "agent": {"name": "sre-agent"},
        "trigger": {"kind": "alert", "text": "checkout errors above 5%"},
        "conclusion": format!("tenant {tenant}: payments-db connection pool exhausted"),
        "started_at": "2026-01-01T00:00:00Z",
        "steps": [{
            "kind": "tool", "name": "query_metrics", "started_at": "2026-01-01T00:00:10Z",
            "tool_call": {"tool_name": "query_metrics", "source": "metrics",
                          "query": "rate(errors_total{service=\"checkout\"}[5m])",
                          "result": format!("{{\"tenant\": {tenant}, \"checkout\": 0.12}}")}
        }]
    })
    .to_string()
}

/// Everything one tenant was told it owns.
#[derive(Default)]
struct Owned {
    feedback: BTreeSet<String>,
    traces: BTreeSet<String>,
    /// Feedback bodies by idempotency key, to know whether a reuse replays or conflicts.
    keys: BTreeMap<String, String>,
}

async fn play(world: &World, traces: &[u128], actions: &[(usize, Action)]) -> [Owned; 2] {
    let mut owned = [Owned::default(), Owned::default()];
    // Span-only feedback joins only a span the tenant sends: make sure it does.
    let mut actions = actions.to_vec();
    for tenant in 0..2 {
        let names_span = actions
            .iter()
            .any(|(t, a)| *t == tenant && matches!(a, Action::FeedbackOnSpan { .. }));
        if names_span {
            actions.push((tenant, Action::Otlp(0)));
        }
    }
    for (tenant, action) in &actions {
        let key = &world.keys[*tenant];
        let mine = &mut owned[*tenant];
        match action {
            Action::Otlp(n) | Action::Native(n) => {
                let trace = trace_hex(traces[*n]);
                let (uri, body) = match action {
                    Action::Otlp(_) => ("/v1/traces", otlp(&trace)),
                    _ => ("/api/v1/investigations", native(&trace, *tenant)),
                };
                let (status, answer) = world.call("POST", uri, key, Some(body)).await;
                assert!(status.is_success(), "{uri}: {status} {answer}");
                mine.traces.insert(trace);
            }
            Action::FeedbackOnTrace { .. } | Action::FeedbackOnSpan { .. } => {
                let (target, user, idem, opt_out) = match action {
                    Action::FeedbackOnTrace {
                        trace,
                        user,
                        key,
                        opt_out,
                    } => (
                        serde_json::json!({"investigation_id": trace_hex(traces[*trace])}),
                        user,
                        key,
                        *opt_out,
                    ),
                    Action::FeedbackOnSpan { user, key } => (
                        serde_json::json!({"span_id": SHARED_SPAN}),
                        user,
                        key,
                        false,
                    ),
                    _ => unreachable!(),
                };
                let mut body = target;
                body["verdict"] = "not_quite".into();
                body["correction"] = format!("tenant {tenant}: it was payments-db").into();
                body["user_id"] = format!("u-{user}").into();
                body["idempotency_key"] = format!("k-{idem}").into();
                body["metadata"] = serde_json::json!({"label_opt_out": opt_out});
                let body = body.to_string();
                let (status, answer) = world
                    .call("POST", "/api/v1/feedback", key, Some(body.clone()))
                    .await;
                let expected = match mine.keys.get(&format!("k-{idem}")) {
                    None => StatusCode::CREATED,
                    Some(earlier) if *earlier == body => StatusCode::OK,
                    Some(_) => StatusCode::CONFLICT,
                };
                assert_eq!(status, expected, "{answer}");
                if status == StatusCode::CREATED {
                    mine.keys.insert(format!("k-{idem}"), body);
                    mine.feedback
                        .insert(answer["id"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    // Feedback that arrived inside traces (evaluation events) belongs to the sender too.
    for (mine, key) in owned.iter_mut().zip(&world.keys) {
        let traces: Vec<String> = mine.traces.iter().cloned().collect();
        for trace in traces {
            let (status, investigation) = world
                .call("GET", &format!("/api/v1/investigations/{trace}"), key, None)
                .await;
            assert_eq!(status, StatusCode::OK);
            for fb in investigation["feedback"].as_array().unwrap() {
                mine.feedback.insert(fb["id"].as_str().unwrap().to_owned());
            }
        }
    }
    owned
}

/// Runs the label pipeline, moving the store's clock on while anything waits, until every
/// feedback of both tenants has a terminal label state. Panics if that never happens.
async fn label_everything(world: &World, owned: &[Owned; 2]) {
    let config = evalmint_pipeline::config::Config {
        noise_queries: 0,
        trace_wait: jiff::SignedDuration::from_mins(5),
        ..Default::default()
    };
    let shutdown = CancellationToken::new();
    let mut pipeline = evalmint_pipeline::worker::start(
        world.store.clone(),
        Arc::new(config),
        world.clock.clone(),
        Arc::new(evalmint_pipeline::metrics::PipelineMetrics::default()),
        evalmint_store::CaptureOrder::EarliestDeadline,
        shutdown.clone(),
    );
    let mut pending = usize::MAX;
    // The pipeline polls in real time; the bound is generous so a loaded machine only slows
    // this down. Only a blocked label reaches it.
    for _ in 0..3000 {
        pending = 0;
        for (tenant, mine) in owned.iter().enumerate() {
            for id in &mine.feedback {
                let (_, fb) = world
                    .call(
                        "GET",
                        &format!("/api/v1/feedback/{id}"),
                        &world.keys[tenant],
                        None,
                    )
                    .await;
                if fb["label"]["state"] == "pending" {
                    pending += 1;
                }
            }
        }
        if pending == 0 {
            break;
        }
        world.clock.advance(jiff::SignedDuration::from_secs(30));
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    while pipeline.join_next().await.is_some() {}
    assert_eq!(pending, 0, "feedback left pending: labels are blocked");
}

/// Nothing of tenant `other` reaches tenant `me`, through any endpoint.
async fn check_isolation(world: &World, owned: &[Owned; 2], me: usize) {
    let other = 1 - me;
    let key = &world.keys[me];
    for id in &owned[other].feedback {
        let (status, _) = world
            .call("GET", &format!("/api/v1/feedback/{id}"), key, None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "another tenant's feedback");
    }
    for trace in owned[other].traces.difference(&owned[me].traces) {
        let (status, _) = world
            .call("GET", &format!("/api/v1/investigations/{trace}"), key, None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "another tenant's trace");
    }
    for trace in &owned[me].traces {
        let (_, investigation) = world
            .call("GET", &format!("/api/v1/investigations/{trace}"), key, None)
            .await;
        for fb in investigation["feedback"].as_array().unwrap() {
            assert!(owned[me].feedback.contains(fb["id"].as_str().unwrap()));
        }
    }
    let mut label_ids = BTreeSet::new();
    for uri in [
        "/api/v1/labels?route=all&limit=1000",
        "/api/v1/review?limit=1000",
    ] {
        let (status, listed) = world.call("GET", uri, key, None).await;
        assert_eq!(status, StatusCode::OK);
        let labels = listed["labels"]
            .as_array()
            .or(listed["queue"].as_array())
            .unwrap();
        for label in labels {
            label_ids.insert(label["id"].as_str().unwrap().to_owned());
        }
    }
    for id in &owned[me].feedback {
        let (_, fb) = world
            .call("GET", &format!("/api/v1/feedback/{id}"), key, None)
            .await;
        if fb["label"]["state"] == "candidate" {
            label_ids.insert(fb["label"]["detail"].as_str().unwrap().to_owned());
        }
    }
    for id in &label_ids {
        let (status, label) = world
            .call("GET", &format!("/api/v1/labels/{id}"), key, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{id}");
        for fb in label["provenance"]["feedback_ids"].as_array().unwrap() {
            assert!(
                owned[me].feedback.contains(fb.as_str().unwrap()),
                "label {id} of tenant {me} read another tenant's feedback"
            );
        }
        for segment in label["segments"].as_array().unwrap() {
            if segment["facet"] == "tenant" {
                assert_eq!(segment["value"], ["acme", "globex"][me]);
            }
        }
        let statement = label["ground_truth"]["statement"].as_str().unwrap_or("");
        assert!(
            !statement.contains(&format!("tenant {other}")),
            "label {id} quotes the other tenant: {statement}"
        );
    }
    // A key minted by this tenant's admin belongs to this tenant.
    let (status, minted) = world
        .call(
            "POST",
            "/api/v1/keys",
            key,
            Some(r#"{"name": "reader", "scopes": ["review"]}"#.to_owned()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(minted["tenant"], ["acme", "globex"][me]);
    let reader = minted["secret"].as_str().unwrap();
    for id in &owned[other].feedback {
        let (status, _) = world
            .call("GET", &format!("/api/v1/feedback/{id}"), reader, None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

/// Erasing a user id in one tenant leaves the other tenant's user of the same id alone, and the
/// re-drafted labels still end every remaining feedback in a terminal state.
async fn check_erasure(world: &World, owned: &mut [Owned; 2]) {
    let (status, erased) = world
        .call(
            "DELETE",
            "/api/v1/feedback?user_id=u-0",
            &world.keys[0],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    let mut gone = BTreeSet::new();
    for id in &owned[0].feedback {
        let (status, _) = world
            .call(
                "GET",
                &format!("/api/v1/feedback/{id}"),
                &world.keys[0],
                None,
            )
            .await;
        if status == StatusCode::NOT_FOUND {
            gone.insert(id.clone());
        }
    }
    assert_eq!(
        gone.len() as u64,
        erased["feedback_erased"].as_u64().unwrap()
    );
    owned[0].feedback.retain(|id| !gone.contains(id));
    for id in &owned[1].feedback {
        let (status, _) = world
            .call(
                "GET",
                &format!("/api/v1/feedback/{id}"),
                &world.keys[1],
                None,
            )
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "the other tenant's u-0 is another person"
        );
    }
}

async fn run(traces: Vec<u128>, actions: Vec<(usize, Action)>) -> (World, [Owned; 2]) {
    let world = World::new().await;
    let mut owned = play(&world, &traces, &actions).await;
    let (status, _) = world.call("GET", "/healthz", "", None).await;
    assert_eq!(status, StatusCode::OK);
    label_everything(&world, &owned).await;
    for me in 0..2 {
        check_isolation(&world, &owned, me).await;
    }
    check_erasure(&world, &mut owned).await;
    label_everything(&world, &owned).await;
    for me in 0..2 {
        check_isolation(&world, &owned, me).await;
    }
    let (status, _) = world.call("GET", "/metrics", "", None).await;
    assert_eq!(status, StatusCode::OK);
    (world, owned)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 12,
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    })]

    #[test]
    fn tenants_sharing_ids_never_leak_or_block((traces, actions) in scenario()) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move { run(traces, actions).await; });
    }
}

/// The collision that used to block a tenant's labels forever, as a fixed case: the other tenant
/// drafts its label for the shared trace id first.
#[test]
fn a_label_id_taken_by_another_tenant_does_not_block() {
    let shared: u128 = 0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c;
    let feedback = |user| Action::FeedbackOnTrace {
        trace: 0,
        user,
        key: 0,
        opt_out: false,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (world, owned) = run(
            vec![shared, shared + 1, shared + 2],
            vec![
                (1, Action::Native(0)),
                (1, feedback(0)),
                (0, Action::Native(0)),
                (0, feedback(1)),
            ],
        )
        .await;
        let label = format!("cand-{}-v1", trace_hex(shared));
        for (tenant, mine) in owned.iter().enumerate() {
            assert_eq!(mine.feedback.len(), 1);
            let id = mine.feedback.first().unwrap();
            let (_, fb) = world
                .call(
                    "GET",
                    &format!("/api/v1/feedback/{id}"),
                    &world.keys[tenant],
                    None,
                )
                .await;
            assert_eq!(fb["label"]["state"], "candidate", "{fb}");
            assert_eq!(fb["label"]["detail"], label.as_str());
        }
    });
}
