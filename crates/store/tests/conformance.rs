//! The behaviour every `Store` implementation must show. Each test gets a fresh store; the
//! suite runs against SQLite here and against any other implementation through `suite!`.

use std::sync::Arc;

use evalmint_model::{
    AgentInfo, CatalogEntry, EntityProvenance, FeedbackOrigin, FeedbackSubmission, ScopeSet,
    SignalSource, SpanId, Step, StepKind, StepStatus, TenantId, Timestamp, ToolCall, TraceId,
    ValidFeedback,
};
use evalmint_store::{
    CandidateQuery, CaptureOrder, CaptureOutcome, CatalogQuery, FeedbackLabelState,
    FeedbackReceipt, FullStore, IngestBatch, LabelOutcome, ManualClock, SqliteOptions, SqliteStore,
    Store, StoreError,
};
use jiff::SignedDuration;

fn start() -> Timestamp {
    "2026-03-01T12:00:00Z".parse().unwrap()
}

fn trace(n: u8) -> TraceId {
    TraceId::from_bytes(&[n; 16]).unwrap()
}

fn span(n: u8) -> SpanId {
    SpanId::from_bytes(&[n; 8]).unwrap()
}

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).unwrap()
}

fn step(id: u8, parent: Option<u8>, kind: StepKind) -> Step {
    Step {
        span_id: span(id),
        parent_span_id: parent.map(span),
        name: format!("step {id}"),
        kind,
        started_at: start() + SignedDuration::from_secs(i64::from(id)),
        ended_at: start() + SignedDuration::from_secs(i64::from(id) + 1),
        status: StepStatus::Ok,
        status_message: None,
        agent: AgentInfo::default(),
        trigger: None,
        input: None,
        output: None,
        tool_call: None,
    }
}

fn tool_step(id: u8, result: String) -> Step {
    Step {
        tool_call: Some(ToolCall {
            tool_name: "query_metrics".into(),
            source: SignalSource::Metrics,
            query: "up".into(),
            arguments: None,
            window: None,
            entities: vec![],
            result: Some(result),
            result_truncated: false,
        }),
        ..step(id, Some(1), StepKind::Tool)
    }
}

fn feedback(json: &str) -> ValidFeedback {
    serde_json::from_str::<FeedbackSubmission>(json)
        .unwrap()
        .validate(FeedbackOrigin::Api)
        .unwrap()
}

fn batch(trace_id: TraceId, steps: Vec<Step>) -> IngestBatch {
    IngestBatch {
        steps: steps.into_iter().map(|s| (trace_id, s)).collect(),
        feedback: vec![],
        entities: vec![],
    }
}

struct Fixture {
    store: Arc<dyn FullStore>,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let store = SqliteStore::open(
        dir.path(),
        SqliteOptions {
            inline_result_max: 64,
            clock: clock.clone(),
            ..SqliteOptions::default()
        },
    )
    .unwrap();
    Fixture {
        store: Arc::new(store),
        clock,
        _dir: dir,
    }
}

async fn spans_arriving_out_of_order_assemble_one_investigation(f: Fixture) {
    let acme = tenant("acme");
    let mut root = step(1, None, StepKind::Agent);
    root.output = Some("payments-db pool exhausted".into());
    f.store
        .ingest(&acme, batch(trace(1), vec![tool_step(3, "ok".into())]))
        .await
        .unwrap();
    let partial = f
        .store
        .investigation(&acme, trace(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(partial.conclusion, None);
    f.store
        .ingest(
            &acme,
            batch(trace(1), vec![root, step(2, Some(1), StepKind::Llm)]),
        )
        .await
        .unwrap();
    // A re-sent span replaces, never duplicates.
    f.store
        .ingest(&acme, batch(trace(1), vec![tool_step(3, "ok".into())]))
        .await
        .unwrap();
    let full = f
        .store
        .investigation(&acme, trace(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(full.steps.len(), 3);
    assert_eq!(
        full.conclusion.as_deref(),
        Some("payments-db pool exhausted")
    );
    assert_eq!(full.tool_calls().count(), 1);
}

async fn feedback_retries_are_idempotent_and_conflicts_refused(f: Fixture) {
    let acme = tenant("acme");
    let body = r#"{"investigation_id":"01010101010101010101010101010101","verdict":"down","idempotency_key":"k1"}"#;
    let first = f
        .store
        .submit_feedback(&acme, feedback(body))
        .await
        .unwrap();
    let again = f
        .store
        .submit_feedback(&acme, feedback(body))
        .await
        .unwrap();
    let FeedbackReceipt::Created(created) = first else {
        panic!("first submission must create")
    };
    assert_eq!(again, FeedbackReceipt::Replayed(created.clone()));
    let changed = r#"{"investigation_id":"01010101010101010101010101010101","verdict":"up","idempotency_key":"k1"}"#;
    assert!(matches!(
        f.store.submit_feedback(&acme, feedback(changed)).await,
        Err(StoreError::IdempotencyConflict(_))
    ));
    // Another tenant may use the same key independently.
    let other = f
        .store
        .submit_feedback(&tenant("globex"), feedback(changed))
        .await
        .unwrap();
    assert!(matches!(other, FeedbackReceipt::Created(_)));
    assert_eq!(
        f.store.feedback(&acme, created.id).await.unwrap(),
        Some(created)
    );
}

async fn feedback_before_its_trace_is_joined_when_the_trace_arrives(f: Fixture) {
    let acme = tenant("acme");
    let by_trace = f
        .store
        .submit_feedback(
            &acme,
            feedback(r#"{"investigation_id":"02020202020202020202020202020202","verdict":"up"}"#),
        )
        .await
        .unwrap();
    let by_span = f
        .store
        .submit_feedback(
            &acme,
            feedback(r#"{"span_id":"0909090909090909","rating":2}"#),
        )
        .await
        .unwrap();
    assert_eq!(by_span.feedback().body.investigation_id, None);
    assert!(
        f.store
            .investigation(&acme, trace(2))
            .await
            .unwrap()
            .is_none()
    );

    f.store
        .ingest(
            &acme,
            batch(
                trace(2),
                vec![
                    step(1, None, StepKind::Agent),
                    step(9, Some(1), StepKind::Llm),
                ],
            ),
        )
        .await
        .unwrap();
    let joined = f
        .store
        .investigation(&acme, trace(2))
        .await
        .unwrap()
        .unwrap();
    let ids: Vec<_> = joined.feedback.iter().map(|fb| fb.id).collect();
    assert_eq!(ids, [by_trace.feedback().id, by_span.feedback().id]);
    let span_feedback = f
        .store
        .feedback(&acme, by_span.feedback().id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(span_feedback.body.investigation_id, Some(trace(2)));

    // Once the trace is known, span-only feedback joins immediately.
    let late = f
        .store
        .submit_feedback(
            &acme,
            feedback(r#"{"span_id":"0101010101010101","verdict":"down"}"#),
        )
        .await
        .unwrap();
    assert_eq!(late.feedback().body.investigation_id, Some(trace(2)));
}

async fn tenants_never_see_each_other(f: Fixture) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    f.store
        .ingest(&acme, batch(trace(3), vec![step(1, None, StepKind::Agent)]))
        .await
        .unwrap();
    let fb = f
        .store
        .submit_feedback(
            &acme,
            feedback(r#"{"investigation_id":"03030303030303030303030303030303","verdict":"up"}"#),
        )
        .await
        .unwrap();
    assert!(
        f.store
            .investigation(&globex, trace(3))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        f.store
            .feedback(&globex, fb.feedback().id)
            .await
            .unwrap()
            .is_none()
    );
    // Span-only feedback of another tenant does not join this tenant's trace.
    let foreign = f
        .store
        .submit_feedback(
            &globex,
            feedback(r#"{"span_id":"0101010101010101","verdict":"up"}"#),
        )
        .await
        .unwrap();
    assert_eq!(foreign.feedback().body.investigation_id, None);
    let mine = f
        .store
        .investigation(&acme, trace(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mine.feedback.len(), 1);
}

async fn retention_expires_unpinned_investigations_only(f: Fixture) {
    let acme = tenant("acme");
    f.store
        .ingest(&acme, batch(trace(4), vec![tool_step(1, "x".repeat(200))]))
        .await
        .unwrap();
    f.store
        .ingest(&acme, batch(trace(5), vec![tool_step(1, "y".repeat(200))]))
        .await
        .unwrap();
    f.store
        .submit_feedback(
            &acme,
            feedback(r#"{"investigation_id":"05050505050505050505050505050505","rating":4}"#),
        )
        .await
        .unwrap();
    f.clock.advance(SignedDuration::from_hours(24 * 15));
    f.store
        .ingest(&acme, batch(trace(6), vec![step(1, None, StepKind::Agent)]))
        .await
        .unwrap();
    let cutoff = f.clock.now() - SignedDuration::from_hours(24 * 14);
    assert_eq!(f.store.expire_investigations(cutoff).await.unwrap(), 1);
    assert!(
        f.store
            .investigation(&acme, trace(4))
            .await
            .unwrap()
            .is_none()
    );
    let pinned = f
        .store
        .investigation(&acme, trace(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        pinned.tool_calls().next().unwrap().result.as_deref(),
        Some("y".repeat(200).as_str()),
        "large results come back from the blob store"
    );
    assert!(
        f.store
            .investigation(&acme, trace(6))
            .await
            .unwrap()
            .is_some()
    );
}

async fn api_keys_authenticate_by_secret_only(f: Fixture) {
    let acme = tenant("acme");
    let scopes = ScopeSet::parse_list("ingest,feedback").unwrap();
    let created = f.store.create_api_key(&acme, "ci", scopes).await.unwrap();
    let found = f
        .store
        .authenticate(&created.secret)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, created.key);
    assert!(f.store.authenticate("em_wrong").await.unwrap().is_none());
    let admin = ScopeSet::parse_list("admin").unwrap();
    let first = f
        .store
        .ensure_api_key(&acme, "boot", admin, "s3cret")
        .await
        .unwrap();
    let second = f
        .store
        .ensure_api_key(&acme, "boot", admin, "s3cret")
        .await
        .unwrap();
    assert_eq!(first, second);
    assert_eq!(f.store.api_key_count().await.unwrap(), 2);
}

fn snapshot_query(id: &str, deadline_hours: i64) -> evalmint_model::SnapshotQuery {
    evalmint_model::SnapshotQuery {
        id: id.into(),
        source_name: "prom".into(),
        signal: SignalSource::Metrics,
        tool_name: "query_metrics".into(),
        query: "up".into(),
        arguments: None,
        window: None,
        entities: vec![],
        origin: evalmint_model::QueryOrigin::Agent,
        step: None,
        deadline: start() + SignedDuration::from_hours(deadline_hours),
        planned_at: start(),
        status: evalmint_model::CaptureStatus::Pending,
        captured_at: None,
        result_digest: None,
        result_truncated: false,
        attempts: 0,
        last_error: None,
    }
}

fn candidate(trace_id: TraceId) -> evalmint_model::CandidateLabel {
    let zero = || evalmint_model::Score {
        value: 0.9,
        reasons: vec!["test".into()],
    };
    evalmint_model::CandidateLabel {
        id: String::new(),
        investigation_id: trace_id,
        version: 0,
        trigger: None,
        ground_truth: None,
        snapshot: vec![],
        segments: vec![],
        scores: evalmint_model::Scores {
            specificity: zero(),
            accuracy: zero(),
            thoroughness: zero(),
        },
        route: evalmint_model::Route::Admit,
        audit: false,
        provenance: evalmint_model::Provenance {
            feedback_ids: vec![],
            drafter: "test".into(),
            drafter_version: "1".into(),
            basis: "correction".into(),
        },
        created_at: start(),
    }
}

async fn feedback_enqueues_one_label_job_that_reruns_when_more_feedback_arrives(f: Fixture) {
    let acme = tenant("acme");
    let lease = SignedDuration::from_secs(60);
    let first = f
        .store
        .submit_feedback(
            &acme,
            feedback(r#"{"investigation_id":"08080808080808080808080808080808","verdict":"down"}"#),
        )
        .await
        .unwrap();
    let jobs = f.store.claim_label_jobs(lease, 10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert!(
        f.store
            .claim_label_jobs(lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "a leased job is not claimed twice"
    );
    // More feedback while the job runs: finishing must not lose it.
    f.store
        .submit_feedback(
            &acme,
            feedback(r#"{"investigation_id":"08080808080808080808080808080808","rating":2}"#),
        )
        .await
        .unwrap();
    f.store
        .finish_label_job(
            &jobs[0],
            LabelOutcome {
                result: Ok(Box::new(candidate(trace(8)))),
                excluded: vec![],
            },
        )
        .await
        .unwrap();
    let state = f
        .store
        .feedback_label_state(&acme, first.feedback().id)
        .await
        .unwrap();
    assert_eq!(
        state,
        Some(FeedbackLabelState::Candidate(format!(
            "cand-{}-v1",
            trace(8)
        )))
    );
    let again = f.store.claim_label_jobs(lease, 10).await.unwrap();
    assert_eq!(again.len(), 1, "new feedback re-queued the job");
    assert_eq!(again[0].generation, 2);
    f.store
        .finish_label_job(
            &again[0],
            LabelOutcome {
                result: Ok(Box::new(candidate(trace(8)))),
                excluded: vec![(first.feedback().id, "opted out".into())],
            },
        )
        .await
        .unwrap();
    assert!(
        f.store
            .claim_label_jobs(lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let current = f
        .store
        .candidates(
            &acme,
            CandidateQuery {
                routes: vec![],
                audit_only: false,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(current.len(), 1, "only the latest version is current");
    assert_eq!(current[0].version, 2);
    assert_eq!(
        f.store
            .feedback_label_state(&acme, first.feedback().id)
            .await
            .unwrap(),
        Some(FeedbackLabelState::NotCandidate("opted out".into()))
    );
    // A crashed worker's lease runs out and the job is claimable again.
    f.store
        .submit_feedback(
            &acme,
            feedback(r#"{"investigation_id":"09090909090909090909090909090909","verdict":"up"}"#),
        )
        .await
        .unwrap();
    assert_eq!(f.store.claim_label_jobs(lease, 10).await.unwrap().len(), 1);
    f.clock.advance(SignedDuration::from_secs(61));
    assert_eq!(f.store.claim_label_jobs(lease, 10).await.unwrap().len(), 1);
}

async fn captures_are_claimed_by_deadline_or_arrival_and_wake_their_job(f: Fixture) {
    let acme = tenant("acme");
    let lease = SignedDuration::from_secs(60);
    f.store
        .submit_feedback(
            &acme,
            feedback(r#"{"investigation_id":"0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a","verdict":"up"}"#),
        )
        .await
        .unwrap();
    let job = f.store.claim_label_jobs(lease, 1).await.unwrap().remove(0);
    f.store
        .plan_snapshot(
            &acme,
            trace(10),
            vec![snapshot_query("late", 48), snapshot_query("soon", 2)],
        )
        .await
        .unwrap();
    f.store
        .defer_label_job(&job, start() + SignedDuration::from_hours(1), None)
        .await
        .unwrap();
    let fifo = f
        .store
        .claim_captures(CaptureOrder::FirstInFirstOut, SignedDuration::ZERO, 1)
        .await
        .unwrap();
    assert_eq!(fifo[0].query.id, "late");
    let mut edf = f
        .store
        .claim_captures(CaptureOrder::EarliestDeadline, lease, 10)
        .await
        .unwrap();
    assert_eq!(
        edf.iter().map(|t| t.query.id.as_str()).collect::<Vec<_>>(),
        ["soon", "late"]
    );
    let captured = |bytes: &[u8]| CaptureOutcome {
        status: evalmint_model::CaptureStatus::Captured,
        result: Some(bytes.to_vec()),
        truncated: false,
        error: None,
        retry_at: None,
    };
    f.store
        .record_capture(edf.remove(0), captured(b"[1,2,3]"))
        .await
        .unwrap();
    assert!(
        f.store.claim_label_jobs(lease, 1).await.unwrap().is_empty(),
        "one capture is still pending"
    );
    f.store
        .record_capture(edf.remove(0), captured(b"[4]"))
        .await
        .unwrap();
    assert_eq!(
        f.store.claim_label_jobs(lease, 1).await.unwrap().len(),
        1,
        "the last capture woke the job"
    );
    assert_eq!(
        f.store
            .snapshot_result(&acme, trace(10), "soon")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"[1,2,3]"[..])
    );
    assert!(
        f.store
            .snapshot_result(&tenant("globex"), trace(10), "soon")
            .await
            .unwrap()
            .is_none()
    );
    let stats = f.store.pipeline_stats(&acme).await.unwrap();
    assert_eq!(stats.queries_captured, 2);
    assert_eq!(stats.feedback_pending, 1);
}

fn entry(name: &str, provenance: EntityProvenance) -> CatalogEntry {
    CatalogEntry::new(name, provenance)
}

async fn catalog_merges_sources_per_tenant_and_pages_by_name(f: Fixture) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    // Ingest feeds the catalog: attributes of the request and the tool calls' entity tags.
    let mut call_step = tool_step(2, "[]".into());
    call_step.tool_call.as_mut().unwrap().entities = vec![
        "checkout".into(),
        "frontend-579b9bff58-t2dbm".into(),
        " ".into(),
    ];
    let mut seen = entry("checkout", EntityProvenance::Trace);
    seen.kind = Some("service".into());
    let mut ingest = batch(trace(1), vec![step(1, None, StepKind::Agent), call_step]);
    ingest.entities = vec![seen, entry("payments-db", EntityProvenance::Trace)];
    f.store.ingest(&acme, ingest).await.unwrap();

    let catalog = f.store.catalog(&acme).await.unwrap();
    let names: Vec<&str> = catalog.entries().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["checkout", "frontend-579b9bff58-t2dbm", "payments-db"]
    );
    let checkout = catalog.get("checkout").unwrap();
    assert_eq!(
        checkout.provenance,
        EntityProvenance::Trace,
        "a trace outranks a tool call"
    );
    assert_eq!(checkout.kind.as_deref(), Some("service"));
    let pod = catalog.get("frontend-579b9bff58-t2dbm").unwrap();
    assert_eq!(pod.workload.as_deref(), Some("frontend"));
    assert_eq!(pod.provenance, EntityProvenance::ToolCall);

    // A static file declares more; a reviewer's word outranks it.
    let mut declared = entry("payments-db", EntityProvenance::StaticFile);
    declared.kind = Some("database".into());
    declared.aliases = vec!["paydb".into()];
    declared.team = Some("payments".into());
    declared.depends_on = vec!["disk-1".into()];
    f.clock.advance(SignedDuration::from_secs(60));
    assert_eq!(
        f.store.upsert_catalog(&acme, vec![declared]).await.unwrap(),
        1
    );
    let mut confirmed = entry("payments-db", EntityProvenance::Trace);
    confirmed.kind = Some("postgres".into());
    f.store
        .confirm_catalog_entries(&acme, vec![confirmed])
        .await
        .unwrap();
    let stored = f
        .store
        .catalog_entries(
            &acme,
            CatalogQuery {
                provenance: Some(EntityProvenance::Reviewer),
                limit: 10,
                ..CatalogQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    let payments = &stored[0];
    assert_eq!(payments.entry.kind.as_deref(), Some("postgres"));
    assert_eq!(payments.entry.aliases, ["paydb"]);
    assert_eq!(payments.entry.team.as_deref(), Some("payments"));
    assert_eq!(payments.entry.depends_on, ["disk-1"]);
    assert_eq!(payments.first_seen, start());
    assert_eq!(payments.last_seen, start() + SignedDuration::from_secs(60));

    // Filters and pages.
    let services = f
        .store
        .catalog_entries(
            &acme,
            CatalogQuery {
                kind: Some("service".into()),
                limit: 10,
                ..CatalogQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(services.len(), 1);
    assert_eq!(services[0].entry.name, "checkout");
    let first_page = f
        .store
        .catalog_entries(
            &acme,
            CatalogQuery {
                limit: 2,
                ..CatalogQuery::default()
            },
        )
        .await
        .unwrap();
    let second_page = f
        .store
        .catalog_entries(
            &acme,
            CatalogQuery {
                after: Some(first_page[1].entry.name.clone()),
                limit: 2,
                ..CatalogQuery::default()
            },
        )
        .await
        .unwrap();
    let paged: Vec<&str> = first_page
        .iter()
        .chain(&second_page)
        .map(|e| e.entry.name.as_str())
        .collect();
    assert_eq!(
        paged,
        ["checkout", "frontend-579b9bff58-t2dbm", "payments-db"]
    );

    // Another tenant sees none of it.
    assert!(f.store.catalog(&globex).await.unwrap().is_empty());
    f.store
        .upsert_catalog(
            &globex,
            vec![entry("checkout", EntityProvenance::Prometheus)],
        )
        .await
        .unwrap();
    assert_eq!(f.store.catalog(&globex).await.unwrap().len(), 1);
    assert_eq!(
        f.store
            .catalog(&acme)
            .await
            .unwrap()
            .get("checkout")
            .unwrap()
            .provenance,
        EntityProvenance::Trace
    );
}

async fn catalog_retention_forgets_observed_names_only(f: Fixture) {
    let acme = tenant("acme");
    f.store
        .upsert_catalog(
            &acme,
            vec![
                entry("old-pod-0", EntityProvenance::Trace),
                entry("old-target", EntityProvenance::Prometheus),
                entry("declared", EntityProvenance::StaticFile),
                entry("confirmed", EntityProvenance::Reviewer),
            ],
        )
        .await
        .unwrap();
    f.clock.advance(SignedDuration::from_hours(48));
    f.store
        .upsert_catalog(&acme, vec![entry("fresh", EntityProvenance::ToolCall)])
        .await
        .unwrap();
    f.store
        .expire_investigations(start() + SignedDuration::from_hours(24))
        .await
        .unwrap();
    let catalog = f.store.catalog(&acme).await.unwrap();
    let names: Vec<&str> = catalog.entries().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["confirmed", "declared", "fresh"]);
}

use evalmint_store::Clock;

macro_rules! suite {
    ($backend:ident: $($test:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::$backend()).await;
                }
            )*
        }
    };
}

suite!(sqlite:
    spans_arriving_out_of_order_assemble_one_investigation,
    feedback_retries_are_idempotent_and_conflicts_refused,
    feedback_before_its_trace_is_joined_when_the_trace_arrives,
    tenants_never_see_each_other,
    retention_expires_unpinned_investigations_only,
    api_keys_authenticate_by_secret_only,
    feedback_enqueues_one_label_job_that_reruns_when_more_feedback_arrives,
    captures_are_claimed_by_deadline_or_arrival_and_wake_their_job,
    catalog_merges_sources_per_tenant_and_pages_by_name,
    catalog_retention_forgets_observed_names_only,
);

#[tokio::test]
async fn sqlite_data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let acme = tenant("acme");
    let id = {
        let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
        store
            .ingest(&acme, batch(trace(7), vec![step(1, None, StepKind::Agent)]))
            .await
            .unwrap();
        store
            .submit_feedback(
                &acme,
                feedback(
                    r#"{"investigation_id":"07070707070707070707070707070707","verdict":"up"}"#,
                ),
            )
            .await
            .unwrap()
            .feedback()
            .id
    };
    let reopened = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    let investigation = reopened
        .investigation(&acme, trace(7))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(investigation.feedback[0].id, id);
}
