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
        let (status, bytes) = self
            .call_raw(method, uri, key, body.map(|b| ("application/json", b)))
            .await;
        let value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, value)
    }

    /// A request with a body of any media type (`key` empty: no key at all); the raw answer.
    async fn call_raw(
        &self,
        method: &str,
        uri: &str,
        key: &str,
        body: Option<(&str, String)>,
    ) -> (StatusCode, Vec<u8>) {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, "localhost");
        if !key.is_empty() {
            request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        if let Some((media_type, _)) = &body {
            request = request
                .header(header::CONTENT_TYPE, *media_type)
                .header(header::ACCEPT, "application/json, text/event-stream");
        }
        let request = request
            .body(body.map_or_else(Body::empty, |(_, b)| Body::from(b)))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.to_vec())
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

const TENANTS: [&str; 2] = ["acme", "globex"];

/// A reviewable candidate of `tenant` on `trace`, every text of it naming the tenant, so
/// whatever one tenant is shown can be checked for the other's name.
fn candidate_of(
    tenant: &str,
    trace: evalmint_model::TraceId,
    feedback: evalmint_model::FeedbackId,
    difficulty: &str,
) -> evalmint_model::CandidateLabel {
    let score = |value| evalmint_model::Score {
        value,
        reasons: vec![format!("{tenant}: +0.50 test")],
    };
    let segment = |facet: &str, value: String| evalmint_model::Segment {
        facet: facet.into(),
        value,
    };
    evalmint_model::CandidateLabel {
        id: String::new(),
        investigation_id: trace,
        version: 0,
        trigger: Some(evalmint_model::Trigger {
            kind: Default::default(),
            text: format!("{tenant}: checkout errors above 5%"),
            monitor: None,
            fired_at: None,
        }),
        ground_truth: Some(evalmint_model::GroundTruth {
            statement: format!("{tenant}: payments-db connection pool exhausted"),
            components: vec![format!("{tenant}-payments-db")],
            category: Some(evalmint_model::Category::RESOURCE_CONNECTION_POOL),
            onset: None,
            causal_chain: vec![],
            evidence: vec![],
            reason: None,
            entities: vec![],
        }),
        snapshot: vec![],
        segments: vec![
            segment("service", format!("{tenant}-payments-db")),
            segment("difficulty", difficulty.to_owned()),
        ],
        scores: evalmint_model::Scores {
            specificity: score(0.9),
            accuracy: score(0.5),
            thoroughness: score(0.9),
        },
        route: evalmint_model::Route::Review,
        audit: false,
        provenance: evalmint_model::Provenance {
            feedback_ids: vec![feedback],
            drafter: "test".into(),
            drafter_version: "1".into(),
            basis: "correction".into(),
        },
        created_at: evalmint_model::Timestamp::UNIX_EPOCH,
    }
}

/// Asserts that `text` (an answer to tenant `me`) names only `me`.
fn names_only(text: &str, me: usize, what: &str) {
    assert!(
        !text.contains(TENANTS[1 - me]),
        "{what} shown to {} carries the other tenant's data: {text}",
        TENANTS[me]
    );
}

/// The ids of a list answer's items.
fn ids(listed: &serde_json::Value, field: &str) -> BTreeSet<String> {
    listed[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {listed}"))
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A stored run of `tenant` named `id`.
fn run_of(tenant: &str, id: &str) -> evalmint_model::EvalRun {
    evalmint_model::EvalRun {
        id: id.to_owned(),
        agent: format!("sim:{tenant}"),
        label_source: "admitted".into(),
        k: 1,
        status: evalmint_model::RunStatus::Completed,
        error: None,
        started_at: evalmint_model::Timestamp::UNIX_EPOCH,
        finished_at: evalmint_model::Timestamp::UNIX_EPOCH,
        baseline: None,
        results: vec![evalmint_model::EvalResult {
            label_id: format!("lbl-{tenant}"),
            label_version: 1,
            attempt: 0,
            outcome: evalmint_model::Outcome::Pass,
            reason: format!("{tenant}: component matched"),
            grades: vec![],
            segments: vec![],
            answer: None,
            trace: vec![],
            duration_ms: 1,
        }],
    }
}

/// The review queue and items, decisions, label versions, calibration, releases (create, list,
/// show, diff, export, import), replay sessions (opening, the tools, Prometheus and MCP faces)
/// and runs: tenants that share trace ids, and so candidate and label ids, and even run ids,
/// each see their own object under a shared id, and a 404 (never a 403, never data) for an id
/// only the other has.
// `me` indexes the keys, the names and the other tenant (`1 - me`) alike.
#[allow(clippy::needless_range_loop)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_release_replay_and_run_endpoints_are_scoped_to_the_tenant() {
    use evalmint_store::{LabelOutcome, PipelineStore};
    let world = &World::new().await;
    let shared = trace_hex(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c);
    let own = [trace_hex(0xa1), trace_hex(0xb2)];
    let candidate = |trace: &str| format!("cand-{trace}-v1");
    let label = |trace: &str| format!("lbl-{trace}");

    // Each tenant's feedback on the shared trace and on its own, drafted into candidates.
    let mut feedback = BTreeMap::new();
    for me in 0..2 {
        for trace in [&shared, &own[me]] {
            let body = serde_json::json!({"investigation_id": trace, "verdict": "down",
                "correction": format!("{}: it was payments-db", TENANTS[me])});
            let (status, created) = world
                .call(
                    "POST",
                    "/api/v1/feedback",
                    &world.keys[me],
                    Some(body.to_string()),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{created}");
            let id: evalmint_model::FeedbackId =
                serde_json::from_value(created["id"].clone()).unwrap();
            feedback.insert((TENANTS[me].to_owned(), trace.clone()), id);
        }
    }
    let jobs = world
        .store
        .claim_label_jobs(jiff::SignedDuration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 4);
    for job in jobs {
        let tenant = job.tenant.as_str().to_owned();
        let id = feedback[&(tenant.clone(), job.trace_id.to_string())];
        let difficulty = if job.trace_id.to_string() == shared {
            "shared"
        } else {
            "own"
        };
        let drafted = candidate_of(&tenant, job.trace_id, id, difficulty);
        let outcome = LabelOutcome {
            result: Ok(Box::new(drafted)),
            excluded: vec![],
        };
        world.store.finish_label_job(&job, outcome).await.unwrap();
    }

    // The queue and its items.
    for me in 0..2 {
        let key = &world.keys[me];
        let (status, queue) = world
            .call("GET", "/api/v1/review?limit=1000", key, None)
            .await;
        assert_eq!(status, StatusCode::OK);
        let expected: BTreeSet<String> = [candidate(&shared), candidate(&own[me])].into();
        assert_eq!(ids(&queue, "queue"), expected);
        names_only(&queue.to_string(), me, "the review queue");
        let (status, item) = world
            .call(
                "GET",
                &format!("/api/v1/review/{}", candidate(&shared)),
                key,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        names_only(&item.to_string(), me, "a shared candidate id");
        let (status, _) = world
            .call(
                "GET",
                &format!("/api/v1/review/{}", candidate(&own[1 - me])),
                key,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    // Decisions: acme decides first, on its own candidates; globex's are untouched, and
    // globex cannot decide on acme's.
    let approve = r#"{"action": "approve", "version": 0}"#.to_owned();
    let decide = |me: usize, trace: &str| {
        let uri = format!("/api/v1/review/{}/decision", candidate(trace));
        let key = world.keys[me].clone();
        let body = approve.clone();
        async move { world.call("POST", &uri, &key, Some(body)).await }
    };
    let (status, _) = decide(1, &own[0]).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a decision on another tenant's candidate"
    );
    for trace in [&shared, &own[0]] {
        let (status, version) = decide(0, trace).await;
        assert_eq!(status, StatusCode::CREATED, "{version}");
        names_only(&version.to_string(), 0, "a decision's label version");
    }
    let (_, item) = world
        .call(
            "GET",
            &format!("/api/v1/review/{}", candidate(&shared)),
            &world.keys[1],
            None,
        )
        .await;
    assert_eq!(
        item["version"], 0,
        "acme's decision reached globex's candidate: {item}"
    );
    let calibration = |me: usize| {
        let key = world.keys[me].clone();
        async move {
            let (status, report) = world.call("GET", "/api/v1/calibration", &key, None).await;
            assert_eq!(status, StatusCode::OK);
            report["calibration"]["decisions"].as_u64().unwrap()
        }
    };
    assert_eq!(calibration(0).await, 2);
    assert_eq!(
        calibration(1).await,
        0,
        "globex's calibration counts acme's decisions"
    );
    for trace in [&shared, &own[1]] {
        let (status, _) = decide(1, trace).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    assert_eq!(calibration(0).await, 2);
    assert_eq!(calibration(1).await, 2);

    // Label versions.
    for me in 0..2 {
        let key = &world.keys[me];
        let (status, history) = world
            .call(
                "GET",
                &format!("/api/v1/labels/{}/versions", label(&shared)),
                key,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            history["versions"].as_array().unwrap().len(),
            1,
            "{history}"
        );
        names_only(&history.to_string(), me, "a shared label's versions");
        let (status, _) = world
            .call(
                "GET",
                &format!("/api/v1/labels/{}/versions", label(&own[1 - me])),
                key,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    // Releases: one of everything per tenant (the same name and label ids for both), and one
    // of acme's label on its own trace.
    let mut everything = [String::new(), String::new()];
    for me in 0..2 {
        let (status, release) = world
            .call(
                "POST",
                "/api/v1/releases",
                &world.keys[me],
                Some(r#"{"name": "nightly"}"#.to_owned()),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{release}");
        names_only(&release.to_string(), me, "a created release");
        everything[me] = release["id"].as_str().unwrap().to_owned();
    }
    let (status, release) = world
        .call(
            "POST",
            "/api/v1/releases",
            &world.keys[0],
            Some(r#"{"name": "acme only", "filters": ["difficulty=own"]}"#.to_owned()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{release}");
    let acme_only = release["id"].as_str().unwrap().to_owned();
    let (status, acme_export) = world
        .call_raw(
            "GET",
            &format!("/api/v1/releases/{acme_only}/export"),
            &world.keys[0],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let exported = String::from_utf8_lossy(&acme_export);
    assert!(exported.contains("acme: payments-db"), "{exported}");
    assert!(exported.contains(&label(&own[0])) && !exported.contains(&label(&shared)));
    for me in 0..2 {
        let key = &world.keys[me];
        let (status, listed) = world.call("GET", "/api/v1/releases", key, None).await;
        assert_eq!(status, StatusCode::OK);
        names_only(&listed.to_string(), me, "the release list");
        let mut expected = BTreeSet::from([everything[me].clone()]);
        if me == 0 {
            expected.insert(acme_only.clone());
        }
        assert_eq!(ids(&listed, "releases"), expected);
        let mine = &everything[me];
        for uri in [
            format!("/api/v1/releases/{mine}"),
            format!("/api/v1/releases/{mine}/export"),
            format!("/api/v1/releases/{mine}/diff/{mine}"),
        ] {
            let (status, body) = world.call_raw("GET", &uri, key, None).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            names_only(&String::from_utf8_lossy(&body), me, &uri);
        }
    }
    let globex = &world.keys[1];
    for uri in [
        format!("/api/v1/releases/{acme_only}"),
        format!("/api/v1/releases/{acme_only}/export"),
        format!("/api/v1/releases/{acme_only}/diff/{}", everything[1]),
        format!("/api/v1/releases/{}/diff/{acme_only}", everything[1]),
    ] {
        let (status, body) = world.call_raw("GET", &uri, globex, None).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{uri}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    // globex importing a copy of acme's export makes globex's own copy; acme's is untouched.
    let (status, _) = world
        .call_raw(
            "POST",
            "/api/v1/releases/import",
            globex,
            Some((
                "application/x-ndjson",
                String::from_utf8(acme_export.clone()).unwrap(),
            )),
        )
        .await;
    assert!(status.is_success() || status.is_client_error(), "{status}");
    let (_, listed) = world
        .call("GET", "/api/v1/releases", &world.keys[0], None)
        .await;
    assert_eq!(ids(&listed, "releases").len(), 2);
    let (_, again) = world
        .call_raw(
            "GET",
            &format!("/api/v1/releases/{acme_only}/export"),
            &world.keys[0],
            None,
        )
        .await;
    assert_eq!(
        again, acme_export,
        "an import by another tenant changed acme's release"
    );

    // Replay sessions: opened only on one's own candidates, and a session answers no key of
    // another tenant on any face.
    let open = |me: usize, trace: &str| {
        let body = serde_json::json!({"label_id": candidate(trace)}).to_string();
        let key = world.keys[me].clone();
        async move {
            world
                .call("POST", "/api/v1/replay/sessions", &key, Some(body))
                .await
        }
    };
    let (status, _) = open(1, &own[0]).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a session on another tenant's label"
    );
    let mut sessions = [String::new(), String::new()];
    for me in 0..2 {
        let (status, session) = open(me, &shared).await;
        assert_eq!(status, StatusCode::CREATED, "{session}");
        let trigger = session["trigger"]["text"].as_str().unwrap();
        assert!(trigger.starts_with(TENANTS[me]), "{trigger}");
        sessions[me] = session["id"].as_str().unwrap().to_owned();
    }
    let initialize = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-03-26", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "1"}}})
    .to_string();
    for me in 0..2 {
        let sid = &sessions[1 - me];
        let faces = [
            ("GET", format!("/replay/sessions/{sid}/tools"), None),
            (
                "POST",
                format!("/replay/sessions/{sid}/tools/list_services"),
                Some(("application/json", "{}".to_owned())),
            ),
            (
                "GET",
                format!("/replay/sessions/{sid}/prometheus/api/v1/labels"),
                None,
            ),
            (
                "POST",
                format!("/replay/sessions/{sid}/mcp"),
                Some(("application/json", initialize.clone())),
            ),
        ];
        for (method, uri, body) in faces {
            // The session's own tenant and a keyless agent (the id is its credential) are
            // answered; the other tenant's key is told the session does not exist.
            for (key, expected) in [
                (world.keys[1 - me].as_str(), true),
                ("", true),
                (world.keys[me].as_str(), false),
            ] {
                let (status, answer) = world.call_raw(method, &uri, key, body.clone()).await;
                let answer = String::from_utf8_lossy(&answer);
                if expected {
                    assert!(status.is_success(), "{method} {uri}: {status} {answer}");
                } else {
                    assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}: {answer}");
                    assert!(!answer.contains(TENANTS[1 - me]), "{answer}");
                }
            }
        }
    }

    // Runs: a run id both tenants use is each one's own run; one only acme has is missing to
    // globex.
    for tenant in TENANTS {
        let tenant_id = TenantId::new(tenant).unwrap();
        world
            .store
            .store_eval_run(&tenant_id, run_of(tenant, "run-shared"))
            .await
            .unwrap();
    }
    world
        .store
        .store_eval_run(&TenantId::new("acme").unwrap(), run_of("acme", "run-acme"))
        .await
        .unwrap();
    for me in 0..2 {
        let key = &world.keys[me];
        let (status, listed) = world.call("GET", "/api/v1/runs", key, None).await;
        assert_eq!(status, StatusCode::OK);
        let expected: BTreeSet<String> = if me == 0 {
            ["run-acme".to_owned(), "run-shared".to_owned()].into()
        } else {
            ["run-shared".to_owned()].into()
        };
        assert_eq!(ids(&listed, "runs"), expected);
        names_only(&listed.to_string(), me, "the run list");
        let (status, run) = world
            .call("GET", "/api/v1/runs/run-shared", key, None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(run["run"]["agent"], format!("sim:{}", TENANTS[me]));
        names_only(&run.to_string(), me, "a shared run id");
    }
    let (status, _) = world
        .call("GET", "/api/v1/runs/run-acme", globex, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Label histories: each tenant's run on the shared label id and on its own label, compared
    // with its own `run-shared`; a label only the other tenant has is 404, a bad limit 422.
    for me in 0..2 {
        let tenant_id = TenantId::new(TENANTS[me]).unwrap();
        let mut run = run_of(TENANTS[me], "run-history");
        run.baseline = Some("run-shared".to_owned());
        run.started_at = evalmint_model::Timestamp::from_second(60).unwrap();
        let graded = run.results[0].clone();
        run.results = [&shared, &own[me]]
            .into_iter()
            .map(|trace| evalmint_model::EvalResult {
                label_id: label(trace),
                ..graded.clone()
            })
            .collect();
        world.store.store_eval_run(&tenant_id, run).await.unwrap();
    }
    for me in 0..2 {
        let key = &world.keys[me];
        let (status, history) = world
            .call(
                "GET",
                &format!("/api/v1/labels/{}/runs", label(&shared)),
                key,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{history}");
        assert_eq!(history["label_id"], label(&shared));
        let runs: Vec<&str> = history["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["run_id"].as_str().unwrap())
            .collect();
        assert_eq!(runs, ["run-history"]);
        assert_eq!(history["runs"][0]["agent"], format!("sim:{}", TENANTS[me]));
        names_only(&history.to_string(), me, "a shared label's history");
        // The other tenant's own label: unknown to acme (404); globex imported acme's release,
        // so it knows acme's label, but none of acme's runs on it.
        let (status, theirs) = world
            .call(
                "GET",
                &format!("/api/v1/labels/{}/runs", label(&own[1 - me])),
                key,
                None,
            )
            .await;
        if me == 0 {
            assert_eq!(status, StatusCode::NOT_FOUND, "{theirs}");
        } else {
            assert_eq!(status, StatusCode::OK, "{theirs}");
            assert_eq!(theirs["runs"], serde_json::json!([]), "{theirs}");
        }
        let (status, bad) = world
            .call(
                "GET",
                &format!("/api/v1/labels/{}/runs?limit=0", label(&own[me])),
                key,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(bad.to_string().contains("limit"), "{bad}");
        // The run compares with the baseline it remembers: the tenant's own run-shared.
        let (status, run) = world
            .call("GET", "/api/v1/runs/run-history", key, None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(run["summary"]["baseline"], "run-shared");
        names_only(&run.to_string(), me, "a run compared with its baseline");
    }
}
