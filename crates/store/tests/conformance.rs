//! The behaviour every `Store` implementation must show. Each test gets a fresh store; the
//! suite runs against SQLite and Postgres (`every_backend!`; a fresh schema per test, skipped with
//! a message when no Postgres server answers at `EVALMINT_TEST_DATABASE_URL`). Postgres-only
//! tests at the end cover several processes on one database.

use std::sync::Arc;

use evalmint_model::{
    AgentInfo, CatalogEntry, EntityProvenance, FeedbackId, FeedbackOrigin, FeedbackSubmission,
    ScopeSet, SignalSource, SpanId, Step, StepKind, StepStatus, TenantId, Timestamp, ToolCall,
    TraceId, ValidFeedback,
};
use evalmint_store::{
    CandidateQuery, CaptureOrder, CaptureOutcome, CatalogQuery, FeedbackLabelState,
    FeedbackReceipt, FullStore, IngestBatch, LabelOutcome, ManualClock, PostgresOptions,
    PostgresStore, SqliteOptions, SqliteStore, Store, StoreError,
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
    backend: Backend,
    _dir: tempfile::TempDir,
    _schema: Option<SchemaGuard>,
}

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Fixture {
    /// Another empty store of the same backend.
    async fn another(&self) -> Fixture {
        match self.backend {
            Backend::Sqlite => sqlite().await,
            Backend::Postgres => postgres().await,
        }
        .expect("the backend answered a moment ago")
    }
}

impl Fixture {
    /// The same data, opened again after `sql` ran on it directly: the state an older version of
    /// evalmint may have left.
    async fn reopened_after(self, sql: &str) -> Fixture {
        let Fixture {
            store,
            clock,
            backend,
            _dir,
            _schema,
        } = self;
        drop(store);
        let store: Arc<dyn FullStore> = match (backend, &_schema) {
            (Backend::Sqlite, _) => {
                let conn = rusqlite::Connection::open(_dir.path().join("evalmint.db")).unwrap();
                conn.execute_batch(sql).unwrap();
                drop(conn);
                Arc::new(sqlite_with_clock(_dir.path(), clock.clone()))
            }
            (Backend::Postgres, Some(schema)) => {
                let (client, connection) =
                    tokio_postgres::connect(&schema.url, tokio_postgres::NoTls)
                        .await
                        .unwrap();
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("SET search_path TO {}; {sql}", schema.name))
                    .await
                    .unwrap();
                Arc::new(
                    PostgresStore::connect(&schema.url, schema.options(clock.clone(), _dir.path()))
                        .await
                        .unwrap(),
                )
            }
            (Backend::Postgres, None) => unreachable!("a Postgres fixture has its schema"),
        };
        Fixture {
            store,
            clock,
            backend,
            _dir,
            _schema,
        }
    }
}

async fn sqlite() -> Option<Fixture> {
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
    Some(Fixture {
        store: Arc::new(store),
        clock,
        backend: Backend::Sqlite,
        _dir: dir,
        _schema: None,
    })
}

fn database_url() -> String {
    std::env::var("EVALMINT_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh schema of the test database, dropped (best effort) when the guard goes.
struct SchemaGuard {
    url: String,
    name: String,
}

impl SchemaGuard {
    /// A new schema name, or `None` (the test skips) when no Postgres server answers.
    async fn new() -> Option<SchemaGuard> {
        let url = database_url();
        if let Err(e) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            evalmint_testkit::skip(&format!(
                "no Postgres server answers at {url} ({e}); set EVALMINT_TEST_DATABASE_URL"
            ));
            return None;
        }
        let name = format!("evalmint_test_{}", uuid::Uuid::now_v7().simple());
        Some(SchemaGuard { url, name })
    }

    fn options(&self, clock: Arc<ManualClock>, blobs: &std::path::Path) -> PostgresOptions {
        PostgresOptions {
            clock,
            inline_result_max: 64,
            schema: Some(self.name.clone()),
            ..PostgresOptions::new(evalmint_store::BlobStore::open(blobs).unwrap())
        }
    }
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .ok()?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await
                    .ok()
            })
        });
        let _ = dropped.join();
    }
}

async fn postgres() -> Option<Fixture> {
    let schema = SchemaGuard::new().await?;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let store = PostgresStore::connect(&schema.url, schema.options(clock.clone(), dir.path()))
        .await
        .unwrap();
    Some(Fixture {
        store: Arc::new(store),
        clock,
        backend: Backend::Postgres,
        _dir: dir,
        _schema: Some(schema),
    })
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
        .replace_named_api_key(&acme, "boot", admin, "s3cret")
        .await
        .unwrap();
    let second = f
        .store
        .replace_named_api_key(&acme, "boot", admin, "s3cret")
        .await
        .unwrap();
    assert_eq!(first, second);
    assert_eq!(f.store.api_key_count().await.unwrap(), 2);
}

async fn a_named_key_replaced_with_a_new_secret_revokes_the_old_one(f: Fixture) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let admin = ScopeSet::parse_list("admin").unwrap();
    f.store
        .replace_named_api_key(&acme, "operator", admin, "old-secret")
        .await
        .unwrap();
    f.store
        .replace_named_api_key(&globex, "operator", admin, "globex-secret")
        .await
        .unwrap();
    let other = f.store.create_api_key(&acme, "ci", admin).await.unwrap();
    let new = f
        .store
        .replace_named_api_key(&acme, "operator", admin, "new-secret")
        .await
        .unwrap();
    assert!(f.store.authenticate("old-secret").await.unwrap().is_none());
    assert_eq!(f.store.authenticate("new-secret").await.unwrap(), Some(new));
    assert!(
        f.store.authenticate(&other.secret).await.unwrap().is_some(),
        "keys of other names stay"
    );
    assert!(
        f.store
            .authenticate("globex-secret")
            .await
            .unwrap()
            .is_some(),
        "another tenant's key of the same name stays"
    );
}

async fn publishable_keys_carry_feedback_scope_and_their_origins_through_rotation(f: Fixture) {
    let acme = tenant("acme");
    let origins = vec![
        "https://app.example.com".to_owned(),
        "http://localhost:3000".to_owned(),
    ];
    let created = f
        .store
        .create_publishable_key(&acme, "widget", origins.clone())
        .await
        .unwrap();
    assert_eq!(
        created.key.scopes,
        ScopeSet::parse_list("feedback").unwrap()
    );
    assert_eq!(created.key.allowed_origins, origins);
    let found = f
        .store
        .authenticate(&created.secret)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, created.key);
    let rotated = f
        .store
        .rotate_api_key(&acme, &created.key.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rotated.key.allowed_origins, origins);
    assert_eq!(rotated.key.scopes, created.key.scopes);
    // Other keys answer to any origin.
    let plain = f
        .store
        .create_api_key(&acme, "ci", ScopeSet::parse_list("feedback").unwrap())
        .await
        .unwrap();
    assert!(plain.key.allowed_origins.is_empty());
    assert!(
        f.store
            .create_publishable_key(&acme, "none", Vec::new())
            .await
            .is_err()
    );
}

async fn keys_are_listed_revoked_and_rotated_within_their_tenant(f: Fixture) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let scopes = ScopeSet::parse_list("ingest,review").unwrap();
    let first = f.store.create_api_key(&acme, "ci", scopes).await.unwrap();
    let second = f.store.create_api_key(&acme, "ui", scopes).await.unwrap();
    let foreign = f.store.create_api_key(&globex, "ci", scopes).await.unwrap();
    let listed = f.store.api_keys(&acme).await.unwrap();
    assert_eq!(listed, vec![first.key.clone(), second.key.clone()]);

    // Another tenant can neither revoke nor rotate acme's keys.
    assert!(
        !f.store
            .revoke_api_key(&globex, &first.key.id)
            .await
            .unwrap()
    );
    assert!(
        f.store
            .rotate_api_key(&globex, &first.key.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(f.store.authenticate(&first.secret).await.unwrap().is_some());

    let rotated = f
        .store
        .rotate_api_key(&acme, &first.key.id)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(rotated.key.id, first.key.id);
    assert_ne!(rotated.secret, first.secret);
    assert_eq!(
        (rotated.key.name.as_str(), rotated.key.scopes),
        ("ci", scopes)
    );
    assert!(f.store.authenticate(&first.secret).await.unwrap().is_none());
    assert_eq!(
        f.store.authenticate(&rotated.secret).await.unwrap(),
        Some(rotated.key.clone())
    );

    assert!(f.store.revoke_api_key(&acme, &second.key.id).await.unwrap());
    assert!(!f.store.revoke_api_key(&acme, &second.key.id).await.unwrap());
    assert!(
        f.store
            .authenticate(&second.secret)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(f.store.api_keys(&acme).await.unwrap(), vec![rotated.key]);
    assert_eq!(f.store.api_keys(&globex).await.unwrap(), vec![foreign.key]);
}

async fn ui_sessions_are_created_looked_up_and_ended(f: Fixture) {
    let acme = tenant("acme");
    let scopes = ScopeSet::parse_list("review").unwrap();
    let key = f.store.create_api_key(&acme, "ann", scopes).await.unwrap();
    let hour = std::time::Duration::from_secs(3600);
    let token = [1u8; 32];
    f.store
        .create_ui_session(&acme, &token, &key.key.id, "csrf-1", hour)
        .await
        .unwrap();
    let session = f.store.ui_session(&token).await.unwrap().unwrap();
    assert_eq!(session.key, key.key);
    assert_eq!(session.csrf, "csrf-1");
    assert!(f.store.ui_session(&[2u8; 32]).await.unwrap().is_none());

    // Another tenant cannot end it; its own tenant can, once.
    assert!(
        !f.store
            .end_ui_session(&tenant("globex"), &token)
            .await
            .unwrap()
    );
    assert!(f.store.ui_session(&token).await.unwrap().is_some());
    assert!(f.store.end_ui_session(&acme, &token).await.unwrap());
    assert!(!f.store.end_ui_session(&acme, &token).await.unwrap());
    assert!(f.store.ui_session(&token).await.unwrap().is_none());
}

async fn ui_sessions_expire_by_the_store_clock(f: Fixture) {
    let acme = tenant("acme");
    let scopes = ScopeSet::parse_list("review").unwrap();
    let key = f.store.create_api_key(&acme, "ann", scopes).await.unwrap();
    let hour = std::time::Duration::from_secs(3600);
    f.store
        .create_ui_session(&acme, &[1u8; 32], &key.key.id, "c1", hour)
        .await
        .unwrap();
    f.clock.advance(SignedDuration::from_mins(59));
    assert!(f.store.ui_session(&[1u8; 32]).await.unwrap().is_some());
    f.clock.advance(SignedDuration::from_mins(1));
    assert!(
        f.store.ui_session(&[1u8; 32]).await.unwrap().is_none(),
        "over at its expiry"
    );
    // A new session sweeps the expired one away; the new one stands.
    f.store
        .create_ui_session(&acme, &[2u8; 32], &key.key.id, "c2", hour)
        .await
        .unwrap();
    assert!(!f.store.end_ui_session(&acme, &[1u8; 32]).await.unwrap());
    assert_eq!(
        f.store.ui_session(&[2u8; 32]).await.unwrap().unwrap().csrf,
        "c2"
    );
}

async fn a_revoked_or_rotated_key_ends_its_ui_sessions(f: Fixture) {
    let acme = tenant("acme");
    let scopes = ScopeSet::parse_list("review").unwrap();
    let revoked = f.store.create_api_key(&acme, "ann", scopes).await.unwrap();
    let rotated = f.store.create_api_key(&acme, "bob", scopes).await.unwrap();
    let kept = f.store.create_api_key(&acme, "cy", scopes).await.unwrap();
    let hour = std::time::Duration::from_secs(3600);
    for (n, key) in [&revoked, &rotated, &kept].into_iter().enumerate() {
        f.store
            .create_ui_session(&acme, &[n as u8 + 1; 32], &key.key.id, "c", hour)
            .await
            .unwrap();
    }
    assert!(
        f.store
            .revoke_api_key(&acme, &revoked.key.id)
            .await
            .unwrap()
    );
    f.store
        .rotate_api_key(&acme, &rotated.key.id)
        .await
        .unwrap()
        .unwrap();
    assert!(f.store.ui_session(&[1u8; 32]).await.unwrap().is_none());
    assert!(f.store.ui_session(&[2u8; 32]).await.unwrap().is_none());
    assert_eq!(
        f.store.ui_session(&[3u8; 32]).await.unwrap().unwrap().key,
        kept.key
    );
}

async fn ui_sessions_belong_to_their_key_tenant(f: Fixture) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let scopes = ScopeSet::parse_list("review").unwrap();
    let ann = f.store.create_api_key(&acme, "ann", scopes).await.unwrap();
    let gus = f
        .store
        .create_api_key(&globex, "gus", scopes)
        .await
        .unwrap();
    let hour = std::time::Duration::from_secs(3600);
    f.store
        .create_ui_session(&acme, &[1u8; 32], &ann.key.id, "a", hour)
        .await
        .unwrap();
    f.store
        .create_ui_session(&globex, &[2u8; 32], &gus.key.id, "g", hour)
        .await
        .unwrap();
    // A session claiming another tenant's key names no key.
    f.store
        .create_ui_session(&globex, &[3u8; 32], &ann.key.id, "x", hour)
        .await
        .unwrap();
    let found = f.store.ui_session(&[1u8; 32]).await.unwrap().unwrap();
    assert_eq!((found.key.tenant, found.csrf.as_str()), (acme.clone(), "a"));
    let found = f.store.ui_session(&[2u8; 32]).await.unwrap().unwrap();
    assert_eq!(
        (found.key.tenant, found.csrf.as_str()),
        (globex.clone(), "g")
    );
    assert!(f.store.ui_session(&[3u8; 32]).await.unwrap().is_none());
    // Revoking globex's key leaves acme's session alone.
    assert!(f.store.revoke_api_key(&globex, &gus.key.id).await.unwrap());
    assert!(f.store.ui_session(&[1u8; 32]).await.unwrap().is_some());
    assert!(f.store.ui_session(&[2u8; 32]).await.unwrap().is_none());
}

async fn active_key_ids_answer_in_one_call_across_tenants(f: Fixture) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let scopes = ScopeSet::parse_list("ingest").unwrap();
    let kept = f.store.create_api_key(&acme, "a", scopes).await.unwrap();
    let revoked = f.store.create_api_key(&acme, "b", scopes).await.unwrap();
    let rotated = f.store.create_api_key(&globex, "c", scopes).await.unwrap();
    let foreign = f.store.create_api_key(&globex, "d", scopes).await.unwrap();
    let all = |keys: &[&evalmint_store::NewApiKey]| -> Vec<String> {
        keys.iter().map(|k| k.key.id.clone()).collect()
    };
    let asked = all(&[&kept, &revoked, &rotated, &foreign]);
    assert_eq!(
        f.store.active_api_key_ids(asked.clone()).await.unwrap(),
        asked.iter().cloned().collect()
    );
    assert!(
        f.store
            .revoke_api_key(&acme, &revoked.key.id)
            .await
            .unwrap()
    );
    let successor = f
        .store
        .rotate_api_key(&globex, &rotated.key.id)
        .await
        .unwrap()
        .unwrap();
    let mut with_unknown = asked.clone();
    with_unknown.push("key_0000000000000000".into());
    with_unknown.push("x' OR '1'='1".into());
    assert_eq!(
        f.store.active_api_key_ids(with_unknown).await.unwrap(),
        [kept.key.id.clone(), foreign.key.id.clone()]
            .into_iter()
            .collect()
    );
    assert!(
        f.store
            .active_api_key_ids(vec![successor.key.id.clone()])
            .await
            .unwrap()
            .contains(&successor.key.id)
    );
    assert!(f.store.active_api_key_ids(vec![]).await.unwrap().is_empty());
}

fn snapshot_query(id: &str, deadline_hours: i64) -> evalmint_model::SnapshotQuery {
    evalmint_model::SnapshotQuery::pending(
        id.into(),
        "prom".into(),
        SignalSource::Metrics,
        "query_metrics".into(),
        "up".into(),
        start() + SignedDuration::from_hours(deadline_hours),
        start(),
    )
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

/// The last capture can end while the job that planned it still holds its claim (another
/// worker's capturer is quick): the job's own deferral afterwards must not bury that wake-up.
async fn captures_that_end_while_their_job_is_claimed_still_wake_it(f: Fixture) {
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
        .plan_snapshot(&acme, trace(10), vec![snapshot_query("only", 2)])
        .await
        .unwrap();
    let task = f
        .store
        .claim_captures(CaptureOrder::EarliestDeadline, lease, 1)
        .await
        .unwrap()
        .remove(0);
    f.store
        .record_capture(
            task,
            CaptureOutcome {
                status: evalmint_model::CaptureStatus::Captured,
                result: Some(b"[1]".to_vec()),
                truncated: false,
                error: None,
                retry_at: None,
            },
        )
        .await
        .unwrap();
    f.store
        .defer_label_job(&job, start() + SignedDuration::from_hours(1), None)
        .await
        .unwrap();
    assert_eq!(
        f.store.claim_label_jobs(lease, 1).await.unwrap().len(),
        1,
        "every capture has ended: the job is due now, not in an hour"
    );
    // A job still waiting for a capture keeps its deferral.
    f.store
        .submit_feedback(
            &acme,
            feedback(r#"{"investigation_id":"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b","verdict":"up"}"#),
        )
        .await
        .unwrap();
    let waiting = f.store.claim_label_jobs(lease, 1).await.unwrap().remove(0);
    assert_eq!(waiting.trace_id, trace(11));
    f.store
        .plan_snapshot(&acme, trace(11), vec![snapshot_query("pending", 2)])
        .await
        .unwrap();
    f.store
        .defer_label_job(&waiting, start() + SignedDuration::from_hours(1), None)
        .await
        .unwrap();
    assert!(f.store.claim_label_jobs(lease, 1).await.unwrap().is_empty());
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

fn all_routes(limit: usize) -> CandidateQuery {
    CandidateQuery {
        routes: vec![],
        audit_only: false,
        limit,
    }
}

fn drafted(trace_id: TraceId, statement: &str, feedback: &[FeedbackId]) -> LabelOutcome {
    let mut label = candidate(trace_id);
    label.ground_truth = Some(evalmint_model::GroundTruth {
        statement: statement.into(),
        components: vec![],
        category: None,
        onset: None,
        causal_chain: vec![],
        evidence: vec![],
        reason: None,
        entities: vec![],
    });
    label.provenance.feedback_ids = feedback.to_vec();
    LabelOutcome {
        result: Ok(Box::new(label)),
        excluded: vec![],
    }
}

/// Runs every due label job once with `draft`, which sees the job and the feedback ids of its
/// investigation; returns how many jobs ran.
async fn run_label_jobs(
    store: &dyn FullStore,
    draft: impl Fn(&evalmint_store::LabelJob, &[FeedbackId]) -> LabelOutcome,
) -> usize {
    let jobs = store
        .claim_label_jobs(SignedDuration::from_secs(60), 100)
        .await
        .unwrap();
    for job in &jobs {
        let ids: Vec<FeedbackId> = match store.investigation(&job.tenant, job.trace_id).await {
            Ok(Some(investigation)) => investigation.feedback.iter().map(|fb| fb.id).collect(),
            _ => vec![],
        };
        store.finish_label_job(job, draft(job, &ids)).await.unwrap();
    }
    jobs.len()
}

async fn tenants_sharing_a_trace_id_both_get_their_own_label(f: Fixture) {
    // Trace ids travel in `traceparent` headers across organisations: two tenants can name the
    // same one, and the candidate id derived from it must not collide.
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let body = r#"{"investigation_id":"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b","verdict":"down","correction":"x"}"#;
    let theirs = f
        .store
        .submit_feedback(&globex, feedback(body))
        .await
        .unwrap();
    let ours = f
        .store
        .submit_feedback(&acme, feedback(body))
        .await
        .unwrap();
    for who in [&globex, &acme] {
        f.store
            .ingest(who, batch(trace(11), vec![step(1, None, StepKind::Agent)]))
            .await
            .unwrap();
    }
    // Globex's job first, then acme's: both must be stored.
    let lease = SignedDuration::from_secs(60);
    let mut jobs = f.store.claim_label_jobs(lease, 10).await.unwrap();
    assert_eq!(jobs.len(), 2);
    jobs.sort_by_key(|j| j.tenant != globex);
    for job in &jobs {
        let statement = format!("{} statement", job.tenant);
        let ids = [if job.tenant == acme {
            ours.feedback().id
        } else {
            theirs.feedback().id
        }];
        f.store
            .finish_label_job(job, drafted(job.trace_id, &statement, &ids))
            .await
            .unwrap();
    }
    let id = format!("cand-{}-v1", trace(11));
    for (who, fb) in [(&acme, &ours), (&globex, &theirs)] {
        assert_eq!(
            f.store
                .feedback_label_state(who, fb.feedback().id)
                .await
                .unwrap(),
            Some(FeedbackLabelState::Candidate(id.clone())),
            "{who}'s feedback is not blocked"
        );
        let label = f.store.candidate(who, &id).await.unwrap().unwrap();
        assert_eq!(
            label.ground_truth.unwrap().statement,
            format!("{who} statement"),
            "each tenant reads its own label under the shared id"
        );
        let listed = f.store.candidates(who, all_routes(10)).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].provenance.feedback_ids, [fb.feedback().id]);
    }
    assert!(
        f.store
            .claim_label_jobs(lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing is left to retry"
    );
}

async fn a_key_secret_names_one_tenant_only(f: Fixture) {
    let admin = ScopeSet::parse_list("admin").unwrap();
    let acme_key = f
        .store
        .replace_named_api_key(&tenant("acme"), "boot", admin, "shared-secret")
        .await
        .unwrap();
    assert!(matches!(
        f.store
            .replace_named_api_key(&tenant("globex"), "boot", admin, "shared-secret")
            .await,
        Err(StoreError::KeyTaken)
    ));
    assert_eq!(
        f.store.authenticate("shared-secret").await.unwrap(),
        Some(acme_key),
        "the secret still opens acme's key only"
    );
}

async fn erasing_a_user_withdraws_or_redrafts_the_labels_built_on_their_feedback(f: Fixture) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let on = |trace_hex: &str, user: &str, text: &str| {
        feedback(&format!(
            r#"{{"investigation_id":"{trace_hex}","verdict":"down","correction":"{text}","user_id":"{user}"}}"#
        ))
    };
    let only = "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c";
    let shared = "0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d";
    let mine_only = f
        .store
        .submit_feedback(&acme, on(only, "u-1", "secret a"))
        .await
        .unwrap();
    let mine_shared = f
        .store
        .submit_feedback(&acme, on(shared, "u-1", "secret b"))
        .await
        .unwrap();
    let someone_else = f
        .store
        .submit_feedback(&acme, on(shared, "u-2", "kept"))
        .await
        .unwrap();
    // The same user id in another tenant is another person's.
    let foreign = f
        .store
        .submit_feedback(&globex, on(only, "u-1", "theirs"))
        .await
        .unwrap();
    // A large frozen result makes the withdrawn snapshot hold a blob.
    for (who, n) in [(&acme, 12), (&acme, 13), (&globex, 12)] {
        f.store
            .ingest(who, batch(trace(n), vec![step(1, None, StepKind::Agent)]))
            .await
            .unwrap();
    }
    let jobs = f
        .store
        .claim_label_jobs(SignedDuration::from_secs(60), 10)
        .await
        .unwrap();
    for job in &jobs {
        f.store
            .plan_snapshot(&job.tenant, job.trace_id, vec![snapshot_query("big", 48)])
            .await
            .unwrap();
    }
    let tasks = f
        .store
        .claim_captures(
            CaptureOrder::EarliestDeadline,
            SignedDuration::from_secs(60),
            10,
        )
        .await
        .unwrap();
    for (n, task) in tasks.into_iter().enumerate() {
        f.store
            .record_capture(
                task,
                CaptureOutcome {
                    status: evalmint_model::CaptureStatus::Captured,
                    result: Some(format!("{n}{}", "r".repeat(100)).into_bytes()),
                    truncated: false,
                    error: None,
                    retry_at: None,
                },
            )
            .await
            .unwrap();
    }
    for job in &jobs {
        let ids: Vec<FeedbackId> = f
            .store
            .investigation(&job.tenant, job.trace_id)
            .await
            .unwrap()
            .unwrap()
            .feedback
            .iter()
            .map(|fb| fb.id)
            .collect();
        f.store
            .finish_label_job(job, drafted(job.trace_id, "draft", &ids))
            .await
            .unwrap();
    }
    let labels_before = f.store.candidates(&acme, all_routes(10)).await.unwrap();
    assert_eq!(labels_before.len(), 2);

    let erasure = f
        .store
        .erase_user_feedback(&acme, "u-1", "key_ops")
        .await
        .unwrap();
    assert_eq!(erasure.feedback_erased, 2);
    assert_eq!(erasure.labels_withdrawn, 1, "trace 12 rested only on u-1");
    assert_eq!(
        erasure.labels_redrafted, 1,
        "trace 13 rested on u-1 and u-2"
    );
    assert_eq!(erasure.queries_removed, 1, "the withdrawn label's snapshot");
    assert_eq!(erasure.blobs_released, 1);
    assert_eq!(erasure.requested_by, "key_ops");
    let evalmint_store::ErasureSubject::User { user_id_hmac } = &erasure.subject else {
        panic!("an erasure of a user names the user: {erasure:?}");
    };
    assert_eq!(user_id_hmac.len(), 64, "hex HMAC-SHA256");
    assert!(!format!("{erasure:?}").contains("u-1"));
    assert_eq!(
        f.store.erasures(&acme).await.unwrap(),
        std::slice::from_ref(&erasure)
    );
    assert!(f.store.erasures(&globex).await.unwrap().is_empty());
    assert_eq!(
        f.store.user_erasures(&acme, "u-1").await.unwrap(),
        [erasure]
    );
    assert!(
        f.store
            .user_erasures(&acme, "u-2")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        f.store
            .user_erasures(&globex, "u-1")
            .await
            .unwrap()
            .is_empty()
    );

    for gone in [mine_only.feedback().id, mine_shared.feedback().id] {
        assert!(f.store.feedback(&acme, gone).await.unwrap().is_none());
        assert!(
            f.store
                .feedback_label_state(&acme, gone)
                .await
                .unwrap()
                .is_none()
        );
    }
    assert!(
        f.store
            .candidates(&acme, all_routes(10))
            .await
            .unwrap()
            .is_empty(),
        "no label that read the erased feedback is served while the other is re-drafted"
    );
    assert!(f.store.snapshot(&acme, trace(12)).await.unwrap().is_empty());
    assert_eq!(
        f.store.snapshot(&acme, trace(13)).await.unwrap().len(),
        1,
        "kept for the re-draft"
    );
    assert_eq!(
        f.store
            .feedback_label_state(&acme, someone_else.feedback().id)
            .await
            .unwrap(),
        Some(FeedbackLabelState::Pending)
    );
    // The other tenant's u-1 is untouched.
    assert!(
        f.store
            .feedback(&globex, foreign.feedback().id)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        f.store
            .candidates(&globex, all_routes(10))
            .await
            .unwrap()
            .len(),
        1
    );

    // The re-draft reads only what is left, under a new version number.
    assert_eq!(
        run_label_jobs(&*f.store, |job, ids| drafted(job.trace_id, "redraft", ids)).await,
        1
    );
    let after = f.store.candidates(&acme, all_routes(10)).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].investigation_id, trace(13));
    assert_eq!(
        after[0].version, 2,
        "a withdrawn version number is never reused"
    );
    assert_eq!(
        after[0].provenance.feedback_ids,
        [someone_else.feedback().id]
    );
    assert_eq!(
        f.store
            .feedback_label_state(&acme, someone_else.feedback().id)
            .await
            .unwrap(),
        Some(FeedbackLabelState::Candidate(after[0].id.clone()))
    );
    // The withdrawn snapshot's blob goes once nothing references it and the grace has passed.
    f.clock.advance(SignedDuration::from_hours(1));
    assert_eq!(f.store.collect_garbage().await.unwrap(), 1);
    // Erasing a user without feedback is recorded too, and counts nothing.
    let nothing = f
        .store
        .erase_user_feedback(&acme, "u-404", "key_ops")
        .await
        .unwrap();
    assert_eq!((nothing.feedback_erased, nothing.labels_withdrawn), (0, 0));
    assert_eq!(f.store.erasures(&acme).await.unwrap().len(), 2);
}

async fn feedback_erased_by_id_is_withdrawn_audited_and_never_stored_again(f: Fixture) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let on = |trace_hex: &str, idem: &str| {
        feedback(&format!(
            r#"{{"investigation_id":"{trace_hex}","verdict":"down","correction":"secret text","idempotency_key":"{idem}"}}"#
        ))
    };
    let only = "1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a";
    let anonymous = f
        .store
        .submit_feedback(&acme, on(only, "k-1"))
        .await
        .unwrap();
    let theirs = f
        .store
        .submit_feedback(&globex, on(only, "k-1"))
        .await
        .unwrap();
    for who in [&acme, &globex] {
        f.store
            .ingest(
                who,
                batch(trace(0x1a), vec![step(1, None, StepKind::Agent)]),
            )
            .await
            .unwrap();
    }
    assert_eq!(
        run_label_jobs(&*f.store, |job, ids| drafted(job.trace_id, "draft", ids)).await,
        2
    );
    let id = anonymous.feedback().id;
    assert!(
        f.store
            .erase_feedback(&globex, id, "key_x")
            .await
            .unwrap()
            .is_none(),
        "another tenant cannot erase it"
    );
    let erasure = f
        .store
        .erase_feedback(&acme, id, "key_ops")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        erasure.subject,
        evalmint_store::ErasureSubject::Feedback { feedback_id: id }
    );
    assert_eq!((erasure.feedback_erased, erasure.labels_withdrawn), (1, 1));
    assert!(f.store.feedback(&acme, id).await.unwrap().is_none());
    assert!(
        f.store
            .candidates(&acme, all_routes(10))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        f.store
            .erase_feedback(&acme, id, "key_ops")
            .await
            .unwrap()
            .is_none(),
        "nothing left to erase, nothing recorded"
    );
    assert_eq!(f.store.erasures(&acme).await.unwrap(), [erasure]);

    // A retry of the erased submission is refused, by the API and on the ingest path alike.
    assert!(matches!(
        f.store.submit_feedback(&acme, on(only, "k-1")).await,
        Err(StoreError::Erased(key)) if key == "k-1"
    ));
    let receipt = f
        .store
        .ingest(
            &acme,
            IngestBatch {
                feedback: vec![on(only, "k-1")],
                ..IngestBatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(receipt.feedback_created, 0);
    let investigation = f
        .store
        .investigation(&acme, trace(0x1a))
        .await
        .unwrap()
        .unwrap();
    assert!(investigation.feedback.is_empty(), "{investigation:?}");
    // Other keys, and the same key in another tenant, are unaffected.
    assert!(matches!(
        f.store.submit_feedback(&acme, on(only, "k-2")).await,
        Ok(FeedbackReceipt::Created(_))
    ));
    assert_eq!(
        f.store
            .submit_feedback(&globex, on(only, "k-1"))
            .await
            .unwrap(),
        FeedbackReceipt::Replayed(theirs.feedback().clone())
    );
}

async fn a_draft_that_read_erased_feedback_is_dropped_and_redone(f: Fixture) {
    let acme = tenant("acme");
    let body = |user: &str| {
        feedback(&format!(
            r#"{{"investigation_id":"0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e","rating":1,"user_id":"{user}"}}"#
        ))
    };
    let erased = f.store.submit_feedback(&acme, body("u-1")).await.unwrap();
    let kept = f.store.submit_feedback(&acme, body("u-2")).await.unwrap();
    let job = f
        .store
        .claim_label_jobs(SignedDuration::from_secs(60), 1)
        .await
        .unwrap()
        .remove(0);
    // The worker drafted from both feedbacks; the erasure lands before it stores the draft.
    f.store
        .erase_user_feedback(&acme, "u-1", "key_ops")
        .await
        .unwrap();
    f.store
        .finish_label_job(
            &job,
            drafted(
                trace(14),
                "quotes u-1",
                &[erased.feedback().id, kept.feedback().id],
            ),
        )
        .await
        .unwrap();
    assert!(
        f.store
            .candidates(&acme, all_routes(10))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        f.store
            .feedback_label_state(&acme, kept.feedback().id)
            .await
            .unwrap(),
        Some(FeedbackLabelState::Pending)
    );
    assert_eq!(
        run_label_jobs(&*f.store, |job, ids| drafted(job.trace_id, "clean", ids)).await,
        1
    );
    assert_eq!(
        f.store
            .feedback_label_state(&acme, kept.feedback().id)
            .await
            .unwrap(),
        Some(FeedbackLabelState::Candidate(format!(
            "cand-{}-v1",
            trace(14)
        )))
    );
}

async fn a_replaced_step_result_is_collected_after_the_grace_period(f: Fixture) {
    let acme = tenant("acme");
    let (first, second) = ("a".repeat(200), "b".repeat(200));
    f.store
        .ingest(&acme, batch(trace(15), vec![tool_step(2, first.clone())]))
        .await
        .unwrap();
    // Another investigation stores the same content: one blob, two references.
    f.store
        .ingest(&acme, batch(trace(16), vec![tool_step(2, first.clone())]))
        .await
        .unwrap();
    f.store
        .ingest(&acme, batch(trace(15), vec![tool_step(2, second.clone())]))
        .await
        .unwrap();
    f.clock.advance(SignedDuration::from_hours(1));
    assert_eq!(
        f.store.collect_garbage().await.unwrap(),
        0,
        "trace 16 still reads it"
    );
    f.store
        .ingest(&acme, batch(trace(16), vec![tool_step(2, second.clone())]))
        .await
        .unwrap();
    // The first result lost its last reference and was stored an hour ago: it was removed right
    // after the commit that released it, so there is nothing left to collect.
    assert_eq!(f.store.collect_garbage().await.unwrap(), 0);
    // A result replaced within the grace period waits for a later collection.
    let third = "c".repeat(200);
    f.store
        .ingest(&acme, batch(trace(15), vec![tool_step(2, third.clone())]))
        .await
        .unwrap();
    f.store
        .ingest(&acme, batch(trace(15), vec![tool_step(2, second.clone())]))
        .await
        .unwrap();
    assert_eq!(
        f.store.collect_garbage().await.unwrap(),
        0,
        "within the grace period"
    );
    f.clock.advance(SignedDuration::from_hours(1));
    assert_eq!(
        f.store.collect_garbage().await.unwrap(),
        1,
        "the third result's blob"
    );
    assert_eq!(
        f.store.collect_garbage().await.unwrap(),
        0,
        "the live blob stays"
    );
    for n in [15, 16] {
        let investigation = f
            .store
            .investigation(&acme, trace(n))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            investigation.tool_calls().next().unwrap().result.as_deref(),
            Some(second.as_str())
        );
    }
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

/// A name seen again keeps an accurate `last_seen` to the minute, without a write per sighting.
async fn catalog_last_seen_is_kept_to_the_minute(f: Fixture) {
    let acme = tenant("acme");
    let last_seen = |f: &Fixture| {
        let (store, acme) = (f.store.clone(), acme.clone());
        async move {
            let stored = store
                .catalog_entries(
                    &acme,
                    CatalogQuery {
                        limit: 10,
                        ..CatalogQuery::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(stored.len(), 1);
            stored[0].last_seen
        }
    };
    let seen = || vec![entry("cart-7d9f", EntityProvenance::Trace)];
    f.store.upsert_catalog(&acme, seen()).await.unwrap();
    f.clock.advance(SignedDuration::from_secs(30));
    f.store.upsert_catalog(&acme, seen()).await.unwrap();
    assert_eq!(last_seen(&f).await, start(), "within the minute: unchanged");
    f.clock.advance(SignedDuration::from_secs(40));
    f.store.upsert_catalog(&acme, seen()).await.unwrap();
    assert_eq!(last_seen(&f).await, start() + SignedDuration::from_secs(70));
}

use evalmint_store::Clock;

/// Drafts one candidate per trace `n` with `route` (and `audit`), through the label pipeline.
async fn draft_candidates(
    store: &dyn FullStore,
    who: &TenantId,
    drafts: &[(u8, evalmint_model::Route, bool, bool)],
) {
    for (n, _, _, _) in drafts {
        store
            .submit_feedback(
                who,
                feedback(&format!(
                    r#"{{"investigation_id":"{}","verdict":"down","correction":"pool"}}"#,
                    trace(*n)
                )),
            )
            .await
            .unwrap();
    }
    run_label_jobs(store, |job, ids| {
        let (_, route, audit, with_truth) = drafts
            .iter()
            .find(|d| trace(d.0) == job.trace_id)
            .copied()
            .unwrap();
        let mut outcome = drafted(job.trace_id, "checkout pool exhausted", ids);
        let label = outcome.result.as_mut().unwrap();
        label.route = route;
        label.audit = audit;
        label.snapshot = vec![snapshot_query("q1", 1)];
        label.segments = vec![
            evalmint_model::Segment {
                facet: "service".into(),
                value: if job.trace_id == trace(1) {
                    "payments"
                } else {
                    "checkout"
                }
                .into(),
            },
            evalmint_model::Segment {
                facet: "polarity".into(),
                value: "negative".into(),
            },
        ];
        if !with_truth {
            label.ground_truth = None;
        }
        outcome
    })
    .await;
}

fn decision(json: &str) -> evalmint_model::ValidDecision {
    serde_json::from_str::<evalmint_model::DecisionRequest>(json)
        .unwrap()
        .validate(&evalmint_model::Category::BUILTIN, start())
        .unwrap()
}

/// Labels admitted before label versions existed get version 1 when the store opens, once, and
/// are released like any other.
async fn labels_admitted_before_label_versions_existed_are_released(f: Fixture) {
    use evalmint_model::Route;
    let acme = tenant("acme");
    draft_candidates(
        &*f.store,
        &acme,
        &[
            (1, Route::Admit, false, true),
            (2, Route::Review, false, true),
        ],
    )
    .await;
    let admitted = f.store.label_versions(&acme, trace(1)).await.unwrap();
    assert_eq!(admitted.len(), 1);
    let f = f.reopened_after("DELETE FROM label_versions").await;
    let versions = f.store.label_versions(&acme, trace(1)).await.unwrap();
    assert_eq!(
        versions, admitted,
        "the same version 1 the validator would have written"
    );
    assert!(
        f.store
            .label_versions(&acme, trace(2))
            .await
            .unwrap()
            .is_empty(),
        "a candidate awaiting review has no version"
    );
    let (release, created) = f.store.create_release(&acme, "all", vec![]).await.unwrap();
    assert!(created);
    assert_eq!(release.labels, 1);
    let (manifest, labels) = f
        .store
        .release_labels(&acme, &release.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(manifest.items.len(), 1);
    assert_eq!(labels[0].label.investigation_id, trace(1));
    let f = f.reopened_after("SELECT 1").await;
    assert_eq!(
        f.store.label_versions(&acme, trace(1)).await.unwrap().len(),
        1,
        "opening again adds nothing"
    );
}

/// The queue filters on routes, segments and the lowest score together, and pages through what
/// they leave; a redrafted candidate is filtered on its own segments, not its predecessor's.
async fn review_queue_filters_combine_and_page(f: Fixture) {
    use evalmint_model::Route;
    use evalmint_store::ReviewQuery;
    let acme = tenant("acme");
    let plan: Vec<(u8, Route, f64)> = (1..=6u8)
        .map(|n| {
            let route = if n % 2 == 0 {
                Route::Review
            } else {
                Route::Insufficient
            };
            (n, route, f64::from(n) / 10.0)
        })
        .collect();
    for (n, _, _) in &plan {
        f.store
            .submit_feedback(
                &acme,
                feedback(&format!(
                    r#"{{"investigation_id":"{}","verdict":"down","correction":"pool"}}"#,
                    trace(*n)
                )),
            )
            .await
            .unwrap();
    }
    run_label_jobs(&*f.store, |job, ids| {
        let (n, route, lowest) = plan
            .iter()
            .find(|p| trace(p.0) == job.trace_id)
            .copied()
            .unwrap();
        let mut outcome = drafted(job.trace_id, "checkout pool exhausted", ids);
        let label = outcome.result.as_mut().unwrap();
        label.route = route;
        label.scores.specificity.value = 0.9;
        label.scores.accuracy.value = lowest;
        label.scores.thoroughness.value = 0.95;
        label.segments = vec![evalmint_model::Segment {
            facet: "service".into(),
            value: if n <= 3 { "payments" } else { "checkout" }.into(),
        }];
        outcome
    })
    .await;
    let query = |routes: Vec<Route>, service: Option<&str>, min: Option<f64>, max: Option<f64>| {
        ReviewQuery {
            routes,
            segment: service.map(|value| evalmint_model::Segment {
                facet: "service".into(),
                value: value.into(),
            }),
            min_score: min,
            max_score: max,
            limit: 50,
            ..ReviewQuery::default()
        }
    };
    let traces = |items: &[evalmint_store::QueueItem]| {
        let mut found: Vec<TraceId> = items.iter().map(|i| i.candidate.investigation_id).collect();
        found.sort();
        found
    };
    let (items, total) = f
        .store
        .review_queue(&acme, query(vec![], None, Some(0.25), Some(0.55)))
        .await
        .unwrap();
    assert_eq!(total, 3, "lowest scores 0.3, 0.4 and 0.5");
    assert_eq!(traces(&items), [trace(3), trace(4), trace(5)]);
    let (items, total) = f
        .store
        .review_queue(
            &acme,
            query(vec![Route::Review], Some("payments"), None, None),
        )
        .await
        .unwrap();
    assert_eq!(total, 1);
    assert_eq!(traces(&items), [trace(2)]);
    let (items, total) = f
        .store
        .review_queue(&acme, query(vec![], Some("checkout"), Some(0.45), None))
        .await
        .unwrap();
    assert_eq!(total, 2);
    assert_eq!(traces(&items), [trace(5), trace(6)]);
    let page = |offset: usize| ReviewQuery {
        limit: 4,
        offset,
        ..query(vec![], None, None, None)
    };
    let (first, total) = f.store.review_queue(&acme, page(0)).await.unwrap();
    let (second, _) = f.store.review_queue(&acme, page(4)).await.unwrap();
    assert_eq!((total, first.len(), second.len()), (6, 4, 2));
    let mut all = traces(&first);
    all.extend(traces(&second));
    all.sort();
    assert_eq!(
        all,
        (1..=6u8).map(trace).collect::<Vec<_>>(),
        "no row twice, none missed"
    );

    // A second draft of trace 1 moves it to checkout: the payments filter no longer finds it.
    f.store
        .submit_feedback(
            &acme,
            feedback(&format!(
                r#"{{"investigation_id":"{}","verdict":"down","correction":"the cache"}}"#,
                trace(1)
            )),
        )
        .await
        .unwrap();
    run_label_jobs(&*f.store, |job, ids| {
        let mut outcome = drafted(job.trace_id, "cache stampede", ids);
        let label = outcome.result.as_mut().unwrap();
        label.route = Route::Review;
        label.segments = vec![evalmint_model::Segment {
            facet: "service".into(),
            value: "checkout".into(),
        }];
        outcome
    })
    .await;
    let (items, _) = f
        .store
        .review_queue(&acme, query(vec![], Some("payments"), None, None))
        .await
        .unwrap();
    assert_eq!(traces(&items), [trace(2), trace(3)]);
}

async fn decisions_make_immutable_versions_and_stale_ones_change_nothing(f: Fixture) {
    use evalmint_model::{LabelState, Route};
    use evalmint_store::{DecisionOutcome, ReviewQuery};
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    draft_candidates(
        &*f.store,
        &acme,
        &[
            (1, Route::Review, false, true),
            (2, Route::Insufficient, false, false),
            (3, Route::Admit, true, true),
            (4, Route::Admit, false, true),
        ],
    )
    .await;
    let queue = |segment: Option<(&str, &str)>| ReviewQuery {
        segment: segment.map(|(facet, value)| evalmint_model::Segment {
            facet: facet.into(),
            value: value.into(),
        }),
        limit: 50,
        ..ReviewQuery::default()
    };
    let (items, total) = f.store.review_queue(&acme, queue(None)).await.unwrap();
    assert_eq!(
        total, 3,
        "review, insufficient and the audit sample; not plain admissions"
    );
    assert_eq!(items.len(), 3);
    let (payments, _) = f
        .store
        .review_queue(&acme, queue(Some(("service", "payments"))))
        .await
        .unwrap();
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0].candidate.investigation_id, trace(1));
    assert_eq!(payments[0].label_version, 0);
    assert_eq!(
        f.store.review_queue(&globex, queue(None)).await.unwrap().1,
        0
    );

    let review = format!("cand-{}-v1", trace(1));
    // Another tenant's candidate is missing.
    let other = f
        .store
        .decide(
            &globex,
            &review,
            "eve",
            decision(r#"{"action":"approve","version":0}"#),
        )
        .await
        .unwrap();
    assert_eq!(other, DecisionOutcome::NotFound);
    let DecisionOutcome::Recorded(first) = f
        .store
        .decide(
            &acme,
            &review,
            "ann",
            decision(r#"{"action":"approve","version":0}"#),
        )
        .await
        .unwrap()
    else {
        panic!("approval not recorded")
    };
    assert_eq!(first.version, 1);
    assert_eq!(first.decision.as_ref().unwrap().reviewer, "ann");
    assert_eq!(first.decision.as_ref().unwrap().on_version, 0);
    // A second reviewer who saw version 0 is told about version 1; nothing is written.
    let stale = f
        .store
        .decide(
            &acme,
            &review,
            "bob",
            decision(r#"{"action":"reject","version":0,"reason":"duplicate"}"#),
        )
        .await
        .unwrap();
    assert_eq!(
        stale,
        DecisionOutcome::Stale {
            current_version: 1,
            current_candidate: review.clone()
        }
    );
    let edit = r#"{"action":"edit","version":1,"ground_truth":{"category":"resource.connection_pool",
        "onset":"2026-02-28T10:00:00Z"},"snapshot":[{"op":"evidence","query_id":"q1"},
        {"op":"add","source":"prom","query":"db_pool_in_use"}]}"#;
    let DecisionOutcome::Recorded(second) = f
        .store
        .decide(&acme, &review, "ann", decision(edit))
        .await
        .unwrap()
    else {
        panic!("edit not recorded")
    };
    assert_eq!(second.version, 2);
    let truth = second.ground_truth.as_ref().unwrap();
    assert_eq!(
        truth.category.as_ref().unwrap().as_str(),
        "resource.connection_pool"
    );
    assert_eq!(truth.evidence, ["q1"]);
    assert_eq!(
        second.snapshot.len(),
        2,
        "the reviewer's query joined the snapshot"
    );
    assert!(
        f.store
            .snapshot(&acme, trace(1))
            .await
            .unwrap()
            .iter()
            .any(|q| q.origin == evalmint_model::QueryOrigin::Reviewer),
        "and is planned for capture"
    );
    let history = f.store.label_versions(&acme, trace(1)).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0], *first, "version 1 is unchanged by the edit");
    let diff = history[1].diff(Some(&history[0]));
    let fields: Vec<&str> = diff.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "ground_truth.category",
            "ground_truth.onset",
            "ground_truth.evidence",
            "snapshot"
        ]
    );
    assert!(
        f.store
            .label_versions(&globex, trace(1))
            .await
            .unwrap()
            .is_empty()
    );

    // An insufficient candidate: approval is refused, an edit without a component too, and a
    // complete edit makes its first version.
    let insufficient = format!("cand-{}-v1", trace(2));
    let refused = f
        .store
        .decide(
            &acme,
            &insufficient,
            "ann",
            decision(r#"{"action":"approve","version":0}"#),
        )
        .await
        .unwrap();
    assert!(matches!(refused, DecisionOutcome::Invalid(_)));
    let partial = f
        .store
        .decide(
            &acme,
            &insufficient,
            "ann",
            decision(r#"{"action":"edit","version":0,"ground_truth":{"statement":"disk full"}}"#),
        )
        .await
        .unwrap();
    let DecisionOutcome::Invalid(problems) = partial else {
        panic!("{partial:?}")
    };
    assert_eq!(problems[0].field, "ground_truth.components");
    let completed = f
        .store
        .decide(
            &acme,
            &insufficient,
            "ann",
            decision(
                r#"{"action":"edit","version":0,"ground_truth":{"statement":"disk full on db-1",
                "components":["db-1"],"category":"resource.disk"}}"#,
            ),
        )
        .await
        .unwrap();
    assert!(matches!(completed, DecisionOutcome::Recorded(v) if v.version == 1));

    // The audit sample: the admission made version 1; rejecting it disagrees with the validator.
    let audited = format!("cand-{}-v1", trace(3));
    let admitted = f.store.label_versions(&acme, trace(3)).await.unwrap();
    assert_eq!(admitted.len(), 1);
    assert!(admitted[0].decision.is_none());
    let DecisionOutcome::Recorded(rejected) = f
        .store
        .decide(&acme, &audited, "ann", decision(
            r#"{"action":"reject","version":1,"reason":"wrong_root_cause","note":"it was DNS"}"#,
        ))
        .await
        .unwrap()
    else {
        panic!("rejection not recorded")
    };
    assert_eq!(rejected.state, LabelState::Rejected);
    assert_eq!(
        rejected.decision.as_ref().unwrap().agrees_with_validator,
        Some(false)
    );
    assert_eq!(f.store.review_queue(&acme, queue(None)).await.unwrap().1, 0);
    let observations = f.store.calibration_observations(&acme).await.unwrap();
    assert_eq!(observations.len(), 4);
    assert_eq!(observations.iter().filter(|o| o.audit).count(), 1);
    assert!(
        f.store
            .calibration_observations(&globex)
            .await
            .unwrap()
            .is_empty()
    );

    // The current label set: traces 1, 2 and 4 (3 was rejected).
    let current = f.store.current_labels(&acme, vec![]).await.unwrap();
    let traces: Vec<TraceId> = current.iter().map(|l| l.investigation_id).collect();
    assert_eq!(traces.len(), 3);
    assert!(!traces.contains(&trace(3)));
}

async fn releases_are_content_addressed_and_round_trip_through_import(f: Fixture) {
    use evalmint_model::Route;
    let acme = tenant("acme");
    draft_candidates(
        &*f.store,
        &acme,
        &[
            (1, Route::Admit, false, true),
            (2, Route::Admit, false, true),
            (3, Route::Review, false, true),
        ],
    )
    .await;
    for n in [1u8, 2] {
        f.store
            .plan_snapshot(&acme, trace(n), vec![snapshot_query("q1", 1)])
            .await
            .unwrap();
        let task = f
            .store
            .claim_captures(
                CaptureOrder::EarliestDeadline,
                SignedDuration::from_secs(60),
                10,
            )
            .await
            .unwrap();
        for t in task {
            let result = format!("{{\"trace\":{n},\"padding\":\"{}\"}}", "x".repeat(100));
            f.store
                .record_capture(
                    t,
                    CaptureOutcome {
                        status: evalmint_model::CaptureStatus::Captured,
                        result: Some(result.into_bytes()),
                        truncated: false,
                        error: None,
                        retry_at: None,
                    },
                )
                .await
                .unwrap();
        }
    }
    let (release, created) = f
        .store
        .create_release(&acme, "march", vec![])
        .await
        .unwrap();
    assert!(created);
    assert_eq!(
        release.labels, 2,
        "the admitted labels; the one in review is not a label yet"
    );
    let (again, created_again) = f
        .store
        .create_release(&acme, "march again", vec![])
        .await
        .unwrap();
    assert!(!created_again);
    assert_eq!(
        again.id, release.id,
        "the same selection is the same release"
    );
    let filtered = f
        .store
        .create_release(
            &acme,
            "payments",
            vec![evalmint_model::release::parse_filter("service=payments").unwrap()],
        )
        .await
        .unwrap()
        .0;
    assert_eq!(filtered.labels, 1);
    assert_ne!(filtered.id, release.id);
    let coverage = &release.coverage;
    assert_eq!(coverage.negative, 2);
    assert!(
        coverage
            .segments
            .iter()
            .any(|s| s.facet == "service" && s.investigations >= 1)
    );
    assert_eq!(f.store.releases(&acme).await.unwrap().len(), 2);
    assert!(
        f.store
            .release(&tenant("globex"), &release.id)
            .await
            .unwrap()
            .is_none()
    );

    let (manifest, labels) = f
        .store
        .release_labels(&acme, &release.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(manifest.items.len(), 2);
    assert!(
        labels.iter().all(|l| !l.results.is_empty()),
        "results travel with the labels"
    );

    // Into a fresh store, and back out unchanged.
    let other = f.another().await;
    let imported = other
        .store
        .import_release(&acme, manifest.clone(), labels.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(imported.id, release.id);
    let (manifest_back, labels_back) = other
        .store
        .release_labels(&acme, &release.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(manifest_back, manifest);
    assert_eq!(labels_back, labels);
    // A changed label does not hash to the id: refused, nothing written.
    let mut tampered = labels.clone();
    tampered[0].label.ground_truth.as_mut().unwrap().statement = "something else".into();
    let third = f.another().await;
    let refused = third
        .store
        .import_release(&acme, manifest, tampered)
        .await
        .unwrap();
    assert!(matches!(
        refused,
        Err(evalmint_store::ImportError::Mismatch(_))
    ));
    assert!(third.store.releases(&acme).await.unwrap().is_empty());
}

/// An erasure removes label versions a release selected; the release keeps their items, marked
/// erased, so its export still hashes to its id and imports elsewhere, holding only what is left.
async fn a_release_keeps_proving_its_id_after_an_erasure(f: Fixture) {
    use evalmint_model::Route;
    let acme = tenant("acme");
    for n in [1u8, 2] {
        f.store
            .ingest(&acme, batch(trace(n), vec![step(1, None, StepKind::Agent)]))
            .await
            .unwrap();
    }
    draft_candidates(
        &*f.store,
        &acme,
        &[
            (1, Route::Admit, false, true),
            (2, Route::Admit, false, true),
        ],
    )
    .await;
    let (release, _) = f.store.create_release(&acme, "all", vec![]).await.unwrap();
    assert_eq!((release.labels, release.erased), (2, 0));
    let (before, _) = f
        .store
        .release_labels(&acme, &release.id)
        .await
        .unwrap()
        .unwrap();

    let candidates = f.store.candidates(&acme, all_routes(10)).await.unwrap();
    let first = candidates
        .iter()
        .find(|c| c.investigation_id == trace(1))
        .unwrap();
    let erasure = f
        .store
        .erase_feedback(&acme, first.provenance.feedback_ids[0], "key_ops")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(erasure.labels_withdrawn, 1);

    let shown = f.store.release(&acme, &release.id).await.unwrap().unwrap();
    assert_eq!((shown.labels, shown.erased), (2, 1));
    assert_eq!(f.store.releases(&acme).await.unwrap()[0].erased, 1);
    let (manifest, labels) = f
        .store
        .release_labels(&acme, &release.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(manifest.id, release.id);
    let erased: Vec<&str> = manifest
        .items
        .iter()
        .filter(|i| i.erased)
        .map(|i| i.label_id.as_str())
        .collect();
    assert_eq!(erased, [evalmint_model::label_id(trace(1))]);
    let unmarked: Vec<_> = manifest
        .items
        .iter()
        .cloned()
        .map(|mut i| {
            i.erased = false;
            i
        })
        .collect();
    assert_eq!(unmarked, before.items, "the same items, digests kept");
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].label.investigation_id, trace(2));

    // The export still imports: same id, the erased item recorded as erased, nothing of it held.
    let other = f.another().await;
    let imported = other
        .store
        .import_release(&acme, manifest.clone(), labels.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (imported.id.as_str(), imported.labels, imported.erased),
        (release.id.as_str(), 2, 1)
    );
    let (manifest_back, labels_back) = other
        .store
        .release_labels(&acme, &release.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(manifest_back, manifest);
    assert_eq!(labels_back, labels);
    assert!(
        other
            .store
            .label_versions(&acme, trace(1))
            .await
            .unwrap()
            .is_empty()
    );

    // An erased item passed off as present, or dropped from the manifest, is refused.
    let third = f.another().await;
    let mut unmarked_manifest = manifest.clone();
    unmarked_manifest.items = unmarked;
    let mut dropped = manifest.clone();
    dropped.items.retain(|i| !i.erased);
    for tampered in [unmarked_manifest, dropped] {
        assert!(matches!(
            third
                .store
                .import_release(&acme, tampered, labels.clone())
                .await
                .unwrap(),
            Err(evalmint_store::ImportError::Mismatch(_))
        ));
    }
    assert!(third.store.releases(&acme).await.unwrap().is_empty());

    // A release made now selects what is left, under another id.
    let (after, created) = f
        .store
        .create_release(&acme, "after", vec![])
        .await
        .unwrap();
    assert!(created);
    assert_eq!((after.labels, after.erased), (1, 0));
    assert_ne!(after.id, release.id);
}

/// A release's coverage counts every investigation first seen over its period: the agent
/// version from the trace itself (any of its spans), and those without feedback as polarity
/// `none`. Another tenant's traces never count.
async fn release_coverage_counts_investigations_without_feedback(f: Fixture) {
    use evalmint_model::Route;
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    for (who, n, version) in [
        (&acme, 1u8, "v2"),
        (&acme, 5, "v1"),
        (&acme, 6, "v1"),
        (&acme, 7, "v1"),
        (&globex, 5, "v9"),
    ] {
        let root = step(1, None, StepKind::Agent);
        let mut child = step(2, Some(1), StepKind::Agent);
        child.agent.version = Some(version.into());
        f.store
            .ingest(who, batch(trace(n), vec![root, child]))
            .await
            .unwrap();
    }
    draft_candidates(&*f.store, &acme, &[(1, Route::Admit, false, true)]).await;
    let (release, _) = f.store.create_release(&acme, "all", vec![]).await.unwrap();
    let coverage = &release.coverage;
    assert_eq!((coverage.investigations, coverage.with_feedback), (4, 1));
    let share = |facet: &str, value: &str| {
        coverage
            .segments
            .iter()
            .find(|s| s.facet == facet && s.value == value)
            .map(|s| (s.labels, s.investigations, s.investigation_share))
    };
    assert_eq!(share("agent_version", "v1"), Some((0, 3, 0.75)));
    assert_eq!(share("agent_version", "v2"), Some((0, 1, 0.25)));
    assert_eq!(share("agent_version", "v9"), None, "another tenant's trace");
    assert_eq!(share("polarity", "none"), Some((0, 3, 0.75)));
    assert_eq!(share("polarity", "negative"), Some((1, 1, 0.25)));
    assert_eq!(share("service", "payments"), Some((1, 1, 1.0)));
    assert_eq!(
        coverage.under_covered[0].facet, "agent_version",
        "{coverage:?}"
    );
}

async fn a_finish_after_the_lease_was_reclaimed_changes_nothing(f: Fixture) {
    let acme = tenant("acme");
    let lease = SignedDuration::from_secs(60);
    let submitted = f
        .store
        .submit_feedback(
            &acme,
            feedback(r#"{"investigation_id":"1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c","verdict":"down"}"#),
        )
        .await
        .unwrap();
    let stale = f.store.claim_label_jobs(lease, 10).await.unwrap().remove(0);
    // The first worker stalls past its lease; a second one claims the job.
    f.clock.advance(SignedDuration::from_secs(61));
    let fresh = f.store.claim_label_jobs(lease, 10).await.unwrap().remove(0);
    assert_eq!(fresh.trace_id, stale.trace_id);
    assert!(fresh.attempts > stale.attempts);

    f.store
        .defer_label_job(&stale, f.clock.now(), Some("stale".into()))
        .await
        .unwrap();
    assert!(
        f.store
            .claim_label_jobs(lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "a stale deferral does not release the live claim"
    );
    let id = submitted.feedback().id;
    f.store
        .finish_label_job(&stale, drafted(trace(0x1c), "stale draft", &[id]))
        .await
        .unwrap();
    assert!(
        f.store
            .candidates(&acme, all_routes(10))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        f.store.feedback_label_state(&acme, id).await.unwrap(),
        Some(FeedbackLabelState::Pending),
        "the stale claim wrote nothing"
    );

    f.store
        .finish_label_job(&fresh, drafted(trace(0x1c), "fresh draft", &[id]))
        .await
        .unwrap();
    let labels = f.store.candidates(&acme, all_routes(10)).await.unwrap();
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].version, 1);
    assert_eq!(
        labels[0].ground_truth.as_ref().unwrap().statement,
        "fresh draft"
    );
    assert_eq!(
        f.store.feedback_label_state(&acme, id).await.unwrap(),
        Some(FeedbackLabelState::Candidate(labels[0].id.clone()))
    );
    // Finishing the stale claim after the fresh one finished changes nothing either.
    f.store
        .finish_label_job(&stale, drafted(trace(0x1c), "stale draft", &[id]))
        .await
        .unwrap();
    assert_eq!(
        f.store.candidates(&acme, all_routes(10)).await.unwrap(),
        labels
    );
    assert!(
        f.store
            .claim_label_jobs(lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_capture_recorded_after_its_lease_was_reclaimed_changes_nothing(f: Fixture) {
    let acme = tenant("acme");
    let lease = SignedDuration::from_secs(60);
    f.store
        .submit_feedback(
            &acme,
            feedback(r#"{"investigation_id":"1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d","verdict":"up"}"#),
        )
        .await
        .unwrap();
    let job = f.store.claim_label_jobs(lease, 1).await.unwrap().remove(0);
    f.store
        .plan_snapshot(&acme, trace(0x1d), vec![snapshot_query("q", 4)])
        .await
        .unwrap();
    f.store
        .defer_label_job(&job, start() + SignedDuration::from_hours(3), None)
        .await
        .unwrap();
    let claim = |store: Arc<dyn FullStore>| async move {
        store
            .claim_captures(CaptureOrder::EarliestDeadline, lease, 10)
            .await
            .unwrap()
    };
    let stale = claim(f.store.clone()).await.remove(0);
    f.clock.advance(SignedDuration::from_secs(61));
    let fresh = claim(f.store.clone()).await.remove(0);
    assert_eq!(fresh.query.id, stale.query.id);
    assert_ne!(fresh.lease_token, stale.lease_token);

    let outcome = |status, result: Option<&[u8]>, retry_at| CaptureOutcome {
        status,
        result: result.map(<[u8]>::to_vec),
        truncated: false,
        error: None,
        retry_at,
    };
    // A stale retry would hand the query to a third worker while the second still captures it.
    f.store
        .record_capture(
            stale.clone(),
            outcome(
                evalmint_model::CaptureStatus::Pending,
                None,
                Some(f.clock.now()),
            ),
        )
        .await
        .unwrap();
    assert!(
        claim(f.store.clone()).await.is_empty(),
        "a stale retry does not release the live claim"
    );
    let stale_result = "s".repeat(100);
    f.store
        .record_capture(
            stale,
            outcome(
                evalmint_model::CaptureStatus::Captured,
                Some(stale_result.as_bytes()),
                None,
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        f.store
            .snapshot_result(&acme, trace(0x1d), "q")
            .await
            .unwrap(),
        None,
        "the stale claim recorded nothing"
    );
    f.store
        .record_capture(
            fresh,
            outcome(evalmint_model::CaptureStatus::Captured, Some(b"[1]"), None),
        )
        .await
        .unwrap();
    assert_eq!(
        f.store
            .snapshot_result(&acme, trace(0x1d), "q")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"[1]"[..])
    );
    let snapshot = f.store.snapshot(&acme, trace(0x1d)).await.unwrap();
    assert_eq!(snapshot[0].attempts, 1, "one recorded attempt");
    assert_eq!(
        f.store
            .pipeline_stats(&acme)
            .await
            .unwrap()
            .queries_captured,
        1
    );
    assert_eq!(
        f.store.claim_label_jobs(lease, 1).await.unwrap().len(),
        1,
        "the capture woke its job"
    );
}

macro_rules! suite {
    ($backend:ident: $($test:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some(fixture) = super::$backend().await {
                        super::$test(fixture).await;
                    }
                }
            )*
        }
    };
}

/// Instantiates the suite once per backend.
macro_rules! every_backend {
    ($($test:ident),* $(,)?) => {
        suite!(sqlite: $($test),*);
        suite!(postgres: $($test),*);
    };
}

async fn a_batch_larger_than_one_commit_is_written_whole(f: Fixture) {
    let acme = tenant("acme");
    // Five thousand spans over twenty traces: more than any one commit takes.
    let steps: Vec<(TraceId, Step)> = (0..5_000u32)
        .map(|n| {
            let trace_id = trace((n % 20) as u8 + 1);
            let mut s = tool_step(1, format!("result {n}"));
            s.span_id = SpanId::from_bytes(&(u64::from(n) + 1).to_be_bytes()).unwrap();
            (trace_id, s)
        })
        .collect();
    let last_span = steps.last().unwrap().1.span_id;
    let receipt = f
        .store
        .ingest(
            &acme,
            IngestBatch {
                steps,
                feedback: vec![feedback(&format!(
                    r#"{{"span_id": "{last_span}", "verdict": "down"}}"#
                ))],
                entities: vec![],
            },
        )
        .await
        .unwrap();
    assert_eq!(receipt.steps_written, 5_000);
    assert_eq!(receipt.feedback_created, 1);
    for n in 1..=20u8 {
        let investigation = f
            .store
            .investigation(&acme, trace(n))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(investigation.steps.len(), 250, "trace {n}");
    }
    // The trace-borne feedback was stored with the last chunk, after the span it names.
    let with_feedback = f
        .store
        .investigation(&acme, trace(20))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(with_feedback.feedback.len(), 1);
}

every_backend!(
    a_release_keeps_proving_its_id_after_an_erasure,
    release_coverage_counts_investigations_without_feedback,
    labels_admitted_before_label_versions_existed_are_released,
    review_queue_filters_combine_and_page,
    spans_arriving_out_of_order_assemble_one_investigation,
    captures_that_end_while_their_job_is_claimed_still_wake_it,
    feedback_retries_are_idempotent_and_conflicts_refused,
    feedback_before_its_trace_is_joined_when_the_trace_arrives,
    tenants_never_see_each_other,
    retention_expires_unpinned_investigations_only,
    api_keys_authenticate_by_secret_only,
    publishable_keys_carry_feedback_scope_and_their_origins_through_rotation,
    a_named_key_replaced_with_a_new_secret_revokes_the_old_one,
    keys_are_listed_revoked_and_rotated_within_their_tenant,
    active_key_ids_answer_in_one_call_across_tenants,
    ui_sessions_are_created_looked_up_and_ended,
    ui_sessions_expire_by_the_store_clock,
    a_revoked_or_rotated_key_ends_its_ui_sessions,
    ui_sessions_belong_to_their_key_tenant,
    feedback_enqueues_one_label_job_that_reruns_when_more_feedback_arrives,
    captures_are_claimed_by_deadline_or_arrival_and_wake_their_job,
    tenants_sharing_a_trace_id_both_get_their_own_label,
    a_key_secret_names_one_tenant_only,
    erasing_a_user_withdraws_or_redrafts_the_labels_built_on_their_feedback,
    feedback_erased_by_id_is_withdrawn_audited_and_never_stored_again,
    a_draft_that_read_erased_feedback_is_dropped_and_redone,
    a_replaced_step_result_is_collected_after_the_grace_period,
    a_batch_larger_than_one_commit_is_written_whole,
    catalog_merges_sources_per_tenant_and_pages_by_name,
    catalog_retention_forgets_observed_names_only,
    catalog_last_seen_is_kept_to_the_minute,
    eval_runs_are_kept_per_tenant_newest_first,
    label_history_lists_each_run_on_the_label_newest_first,
    decisions_make_immutable_versions_and_stale_ones_change_nothing,
    releases_are_content_addressed_and_round_trip_through_import,
    a_finish_after_the_lease_was_reclaimed_changes_nothing,
    a_capture_recorded_after_its_lease_was_reclaimed_changes_nothing,
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

fn file_time(t: Timestamp) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.as_second().try_into().unwrap())
}

fn sqlite_with_clock(dir: &std::path::Path, clock: Arc<ManualClock>) -> SqliteStore {
    SqliteStore::open(
        dir,
        SqliteOptions {
            inline_result_max: 64,
            clock,
            ..SqliteOptions::default()
        },
    )
    .unwrap()
}

#[tokio::test]
async fn sqlite_blob_collection_spares_blobs_whose_rows_are_not_committed_yet() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let store = sqlite_with_clock(dir.path(), clock.clone());
    let blobs = evalmint_store::BlobStore::open(dir.path().join("blobs")).unwrap();
    let acme = tenant("acme");
    let old = "o".repeat(200);
    store
        .ingest(&acme, batch(trace(17), vec![tool_step(2, old.clone())]))
        .await
        .unwrap();
    let old_digest = evalmint_store::BlobStore::digest(old.as_bytes());
    assert!(blobs.stored_at(&old_digest).unwrap().is_some());
    clock.advance(SignedDuration::from_hours(1));
    store
        .ingest(&acme, batch(trace(17), vec![tool_step(2, "n".repeat(200))]))
        .await
        .unwrap();
    assert_eq!(
        blobs.stored_at(&old_digest).unwrap(),
        None,
        "the replaced result's file is gone"
    );

    // A writer that has stored its blob but not yet committed the row that references it.
    let in_flight = blobs
        .put(b"a result whose row is on its way", file_time(clock.now()))
        .unwrap();
    assert_eq!(store.collect_garbage().await.unwrap(), 0);
    assert!(blobs.stored_at(&in_flight).unwrap().is_some());
    clock.advance(SignedDuration::from_mins(5));
    // Storing the same content again (another writer) restarts its grace period.
    blobs
        .put(b"a result whose row is on its way", file_time(clock.now()))
        .unwrap();
    clock.advance(SignedDuration::from_mins(6));
    assert_eq!(store.collect_garbage().await.unwrap(), 0);
    // A writer that never committed (it crashed): its blob goes once the grace period is over.
    clock.advance(SignedDuration::from_mins(5));
    assert_eq!(store.collect_garbage().await.unwrap(), 1);
    assert_eq!(blobs.stored_at(&in_flight).unwrap(), None);
    let live = store
        .investigation(&acme, trace(17))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        live.tool_calls().next().unwrap().result.as_deref(),
        Some("n".repeat(200).as_str())
    );
}

/// A database written by the previous schema (migration 0003) keeps its data and gains the
/// per-tenant keys: a label id another tenant already holds no longer blocks this one.
#[tokio::test]
async fn sqlite_migration_keeps_existing_rows_and_unblocks_colliding_labels() {
    let dir = tempfile::tempdir().unwrap();
    let acme = tenant("acme");
    let globex = tenant("globex");
    let trace_id = trace(18);
    let acme_feedback = uuid::Uuid::now_v7();
    {
        let conn = rusqlite::Connection::open(dir.path().join("evalmint.db")).unwrap();
        for sql in [
            include_str!("../migrations/0001_init.sql"),
            include_str!("../migrations/0002_label_pipeline.sql"),
            include_str!("../migrations/0003_pipeline_reads.sql"),
        ] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 3).unwrap();
        let mut globex_label = candidate(trace_id);
        globex_label.id = format!("cand-{trace_id}-v1");
        globex_label.version = 1;
        conn.execute(
            "INSERT INTO candidates (id, tenant, trace_id, version, current, route, audit, created_at, body)
             VALUES (?1, 'globex', ?2, 1, 1, 'admit', 0, 0, ?3)",
            rusqlite::params![
                globex_label.id,
                &trace_id.as_bytes()[..],
                serde_json::to_string(&globex_label).unwrap()
            ],
        )
        .unwrap();
        // Acme's feedback on the same trace id, stuck pending by the collision; its body is in
        // the unversioned format of that time.
        let body = feedback(&format!(
            r#"{{"investigation_id":"{trace_id}","verdict":"down","correction":"c","user_id":"u-9"}}"#
        ));
        conn.execute(
            "INSERT INTO feedback (id, tenant, investigation_id, received_at, body)
             VALUES (?1, 'acme', ?2, 0, ?3)",
            rusqlite::params![
                &acme_feedback.as_bytes()[..],
                &trace_id.as_bytes()[..],
                serde_json::to_string(&body).unwrap()
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO label_jobs (tenant, trace_id, state, due_at, first_queued_at, attempts)
             VALUES ('acme', ?1, 'pending', 0, 0, 7)",
            [&trace_id.as_bytes()[..]],
        )
        .unwrap();
    }
    let clock = Arc::new(ManualClock::new(start()));
    let store: Arc<dyn FullStore> = Arc::new(sqlite_with_clock(dir.path(), clock));
    let id = FeedbackId::from_uuid(acme_feedback);
    assert_eq!(
        store
            .feedback(&acme, id)
            .await
            .unwrap()
            .unwrap()
            .body
            .user_id
            .as_deref(),
        Some("u-9")
    );
    assert_eq!(
        store
            .candidate(&globex, &format!("cand-{trace_id}-v1"))
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
    store
        .ingest(&acme, batch(trace_id, vec![step(1, None, StepKind::Agent)]))
        .await
        .unwrap();
    assert_eq!(
        run_label_jobs(&*store, |job, ids| drafted(job.trace_id, "acme's", ids)).await,
        1
    );
    assert_eq!(
        store.feedback_label_state(&acme, id).await.unwrap(),
        Some(FeedbackLabelState::Candidate(format!("cand-{trace_id}-v1")))
    );
    // The user id column was filled from the stored bodies: erasure finds the old row.
    let erasure = store
        .erase_user_feedback(&acme, "u-9", "key_ops")
        .await
        .unwrap();
    assert_eq!((erasure.feedback_erased, erasure.labels_withdrawn), (1, 1));
    assert_eq!(
        store
            .candidates(&globex, all_routes(10))
            .await
            .unwrap()
            .len(),
        1
    );
}

fn eval_run(id: &str, minute: i64, agent: &str) -> evalmint_model::EvalRun {
    evalmint_model::EvalRun {
        id: id.to_owned(),
        agent: agent.to_owned(),
        label_source: "admitted".to_owned(),
        k: 1,
        status: evalmint_model::RunStatus::Completed,
        error: None,
        started_at: start() + SignedDuration::from_mins(minute),
        finished_at: start() + SignedDuration::from_mins(minute + 1),
        baseline: None,
        results: vec![evalmint_model::EvalResult {
            label_id: "cand-1".to_owned(),
            label_version: 1,
            attempt: 0,
            outcome: evalmint_model::Outcome::Pass,
            reason: "component matched".to_owned(),
            grades: Vec::new(),
            segments: Vec::new(),
            answer: None,
            trace: vec![step(1, None, StepKind::Tool)],
            duration_ms: 3,
        }],
    }
}

async fn eval_runs_are_kept_per_tenant_newest_first(f: Fixture) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    f.store
        .store_eval_run(&acme, eval_run("run-a", 0, "sim:v1"))
        .await
        .unwrap();
    f.store
        .store_eval_run(&acme, eval_run("run-b", 5, "sim:v2"))
        .await
        .unwrap();
    // Another tenant may use the same id without touching acme's run.
    f.store
        .store_eval_run(&globex, eval_run("run-a", 9, "cmd:x"))
        .await
        .unwrap();
    let listed: Vec<String> = f
        .store
        .eval_runs(&acme, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, ["run-b", "run-a"]);
    let run = f.store.eval_run(&acme, "run-a").await.unwrap().unwrap();
    assert_eq!(run, eval_run("run-a", 0, "sim:v1"));
    assert_eq!(
        f.store
            .eval_run(&globex, "run-a")
            .await
            .unwrap()
            .unwrap()
            .agent,
        "cmd:x"
    );
    assert!(f.store.eval_run(&globex, "run-b").await.unwrap().is_none());
    assert_eq!(f.store.eval_runs(&acme, 1).await.unwrap().len(), 1);
}

fn attempt(
    label: &str,
    version: u32,
    attempt: u32,
    outcome: evalmint_model::Outcome,
) -> evalmint_model::EvalResult {
    evalmint_model::EvalResult {
        label_id: label.to_owned(),
        label_version: version,
        attempt,
        outcome,
        reason: format!("{} on attempt {attempt}", outcome.as_str()),
        grades: vec![evalmint_model::Grade {
            grader: "component".to_owned(),
            passed: outcome == evalmint_model::Outcome::Pass,
            score: 1.0,
            reason: format!("graded attempt {attempt}"),
            errored: false,
        }],
        segments: Vec::new(),
        answer: None,
        trace: Vec::new(),
        duration_ms: 1,
    }
}

async fn label_history_lists_each_run_on_the_label_newest_first(f: Fixture) {
    use evalmint_model::Outcome::{Fail, Pass};
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let mut first = eval_run("run-1", 0, "sim:v1");
    first.results = vec![
        attempt("lbl-a", 1, 1, Fail),
        attempt("lbl-a", 1, 0, Pass),
        attempt("lbl-b", 1, 0, Pass),
    ];
    let mut second = eval_run("run-2", 10, "sim:v2");
    second.label_source = "rel-1".to_owned();
    second.baseline = Some("run-1".to_owned());
    second.results = vec![attempt("lbl-a", 2, 0, Fail)];
    let mut unrelated = eval_run("run-3", 20, "sim:v2");
    unrelated.results = vec![attempt("lbl-b", 1, 0, Fail)];
    for run in [first.clone(), second.clone(), unrelated] {
        f.store.store_eval_run(&acme, run).await.unwrap();
    }
    // Another tenant's run on the same label id stays its own.
    let mut globex_run = eval_run("run-9", 30, "cmd:x");
    globex_run.results = vec![attempt("lbl-a", 1, 0, Pass)];
    f.store.store_eval_run(&globex, globex_run).await.unwrap();

    let history = f.store.label_history(&acme, "lbl-a", 10).await.unwrap();
    let runs: Vec<&str> = history.iter().map(|h| h.run_id.as_str()).collect();
    assert_eq!(runs, ["run-2", "run-1"]);
    assert_eq!(history[0].agent, "sim:v2");
    assert_eq!(history[0].label_source, "rel-1");
    assert_eq!(history[0].label_version, 2);
    assert_eq!(history[0].started_at, second.started_at);
    assert!(!history[0].passed());
    let attempts: Vec<(u32, evalmint_model::Outcome)> = history[1]
        .attempts
        .iter()
        .map(|a| (a.attempt, a.outcome))
        .collect();
    assert_eq!(attempts, [(0, Pass), (1, Fail)], "in attempt order");
    assert_eq!(history[1].attempts[1].reason, "fail on attempt 1");
    assert_eq!(history[1].attempts[1].grades[0].reason, "graded attempt 1");
    assert!(evalmint_model::is_flaky(&history));
    assert_eq!(
        history[1],
        first
            .label_runs()
            .into_iter()
            .find(|(label, _)| label == "lbl-a")
            .unwrap()
            .1
    );
    // The stored run remembers its baseline.
    let stored = f.store.eval_run(&acme, "run-2").await.unwrap().unwrap();
    assert_eq!(stored.baseline.as_deref(), Some("run-1"));

    assert_eq!(
        f.store
            .label_history(&acme, "lbl-a", 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        f.store
            .label_history(&acme, "lbl-zz", 10)
            .await
            .unwrap()
            .is_empty()
    );
    let theirs = f.store.label_history(&globex, "lbl-a", 10).await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].run_id, "run-9");

    // Storing a run again replaces its rows: run-1 no longer grades lbl-a.
    let mut again = first.clone();
    again.results = vec![attempt("lbl-b", 1, 0, Fail)];
    f.store.store_eval_run(&acme, again).await.unwrap();
    let history = f.store.label_history(&acme, "lbl-a", 10).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].run_id, "run-2");
    let b: Vec<String> = f
        .store
        .label_history(&acme, "lbl-b", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.run_id)
        .collect();
    assert_eq!(b, ["run-3", "run-1"]);
}

/// Two stores on one schema: two pools, as two processes would have.
async fn two_postgres_stores() -> Option<(
    Arc<dyn FullStore>,
    Arc<dyn FullStore>,
    Arc<ManualClock>,
    SchemaGuard,
    tempfile::TempDir,
)> {
    let schema = SchemaGuard::new().await?;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let (a, b) = tokio::join!(
        PostgresStore::connect(&schema.url, schema.options(clock.clone(), dir.path())),
        PostgresStore::connect(&schema.url, schema.options(clock.clone(), dir.path())),
    );
    Some((
        Arc::new(a.unwrap()),
        Arc::new(b.unwrap()),
        clock,
        schema,
        dir,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_processes_erasing_at_once_create_one_installation_secret() {
    let Some((a, b, _clock, _schema, _dir)) = two_postgres_stores().await else {
        return;
    };
    let acme = tenant("acme");
    for (n, user) in [(1u8, "u-a"), (2, "u-b")] {
        a.submit_feedback(
            &acme,
            feedback(&format!(
                r#"{{"investigation_id":"{}","verdict":"down","user_id":"{user}","idempotency_key":"k-{user}"}}"#,
                trace(n + 150)
            )),
        )
        .await
        .unwrap();
    }
    // The first erasures of the installation, through two processes at once: both create the
    // secret, one insert wins and both key with the winner's.
    let (by_a, by_b) = tokio::join!(
        a.erase_user_feedback(&acme, "u-a", "key_ops"),
        b.erase_user_feedback(&acme, "u-b", "key_ops"),
    );
    let (by_a, by_b) = (by_a.unwrap(), by_b.unwrap());
    assert_eq!((by_a.feedback_erased, by_b.feedback_erased), (1, 1));
    for store in [&a, &b] {
        assert_eq!(
            store.user_erasures(&acme, "u-a").await.unwrap(),
            std::slice::from_ref(&by_a)
        );
        assert_eq!(
            store.user_erasures(&acme, "u-b").await.unwrap(),
            std::slice::from_ref(&by_b)
        );
    }
    // Either process refuses a retry of what the other erased.
    let retry = feedback(&format!(
        r#"{{"investigation_id":"{}","verdict":"down","user_id":"u-b","idempotency_key":"k-u-b"}}"#,
        trace(152)
    ));
    assert!(matches!(
        a.submit_feedback(&acme, retry).await,
        Err(StoreError::Erased(key)) if key == "k-u-b"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_workers_of_two_processes_never_share_a_job_and_keep_deadline_order() {
    let Some((a, b, clock, _schema, _dir)) = two_postgres_stores().await else {
        return;
    };
    let acme = tenant("acme");
    let lease = SignedDuration::from_secs(60);
    // Forty investigations whose jobs come due a second apart, through both servers.
    for n in 0..40u8 {
        let server = if n % 2 == 0 { &a } else { &b };
        server
            .submit_feedback(
                &acme,
                feedback(&format!(
                    r#"{{"investigation_id":"{}","verdict":"down"}}"#,
                    trace(n + 100)
                )),
            )
            .await
            .unwrap();
        clock.advance(SignedDuration::from_secs(1));
    }
    let (first_a, first_b) =
        tokio::join!(a.claim_label_jobs(lease, 10), b.claim_label_jobs(lease, 10));
    let (first_a, first_b) = (first_a.unwrap(), first_b.unwrap());
    let numbers = |jobs: &[evalmint_store::LabelJob]| -> Vec<u8> {
        jobs.iter()
            .map(|j| j.trace_id.as_bytes()[0] - 100)
            .collect()
    };
    for claimed in [numbers(&first_a), numbers(&first_b)] {
        assert_eq!(claimed.len(), 10);
        assert!(
            claimed.is_sorted(),
            "each claim is in deadline order: {claimed:?}"
        );
    }
    let mut union: Vec<u8> = numbers(&first_a)
        .into_iter()
        .chain(numbers(&first_b))
        .collect();
    union.sort();
    assert_eq!(
        union,
        (0..20).collect::<Vec<_>>(),
        "together, the twenty earliest"
    );
    // The rest, claimed in a race until nothing is left: every job exactly once.
    let drain = |store: Arc<dyn FullStore>| async move {
        let mut claimed = Vec::new();
        loop {
            let jobs = store.claim_label_jobs(lease, 3).await.unwrap();
            if jobs.is_empty() {
                return claimed;
            }
            claimed.extend(jobs.iter().map(|j| j.trace_id));
        }
    };
    let (rest_a, rest_b) = tokio::join!(drain(a.clone()), drain(b.clone()));
    let mut all: Vec<TraceId> = first_a
        .iter()
        .chain(&first_b)
        .map(|j| j.trace_id)
        .chain(rest_a)
        .chain(rest_b)
        .collect();
    assert_eq!(all.len(), 40);
    all.sort_by_key(|t| *t.as_bytes());
    all.dedup();
    assert_eq!(all.len(), 40, "no job was claimed twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_captures_claimed_by_two_processes_are_disjoint_and_earliest_deadline_first() {
    let Some((a, b, _clock, _schema, _dir)) = two_postgres_stores().await else {
        return;
    };
    let acme = tenant("acme");
    let lease = SignedDuration::from_secs(60);
    // Forty queries over four investigations, deadlines shuffled against planning order.
    for n in 0..40i64 {
        let deadline_hours = (n * 17) % 40 + 1;
        a.plan_snapshot(
            &acme,
            trace((n % 4) as u8 + 1),
            vec![snapshot_query(
                &format!("q{deadline_hours:02}"),
                deadline_hours,
            )],
        )
        .await
        .unwrap();
    }
    let claim = |store: Arc<dyn FullStore>, limit| async move {
        store
            .claim_captures(CaptureOrder::EarliestDeadline, lease, limit)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.query.id)
            .collect::<Vec<_>>()
    };
    let (first_a, first_b) = tokio::join!(claim(a.clone(), 10), claim(b.clone(), 10));
    for claimed in [&first_a, &first_b] {
        assert_eq!(claimed.len(), 10);
        assert!(
            claimed.is_sorted(),
            "each claim is earliest deadline first: {claimed:?}"
        );
    }
    let mut union: Vec<String> = first_a.iter().chain(&first_b).cloned().collect();
    union.sort();
    let earliest: Vec<String> = (1..=20).map(|h| format!("q{h:02}")).collect();
    assert_eq!(union, earliest, "together, the twenty earliest deadlines");
    let (rest_a, rest_b) = tokio::join!(claim(a.clone(), 100), claim(b.clone(), 100));
    let mut all: Vec<String> = union.into_iter().chain(rest_a).chain(rest_b).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 40, "every query claimed exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrations_applied_twice_or_concurrently_are_a_no_op() {
    let Some(schema) = SchemaGuard::new().await else {
        return;
    };
    let (first, second) = tokio::join!(
        PostgresStore::migrate(&schema.url, Some(&schema.name)),
        PostgresStore::migrate(&schema.url, Some(&schema.name)),
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    let mut applied = [first.applied.clone(), second.applied.clone()];
    applied.sort_by_key(Vec::len);
    assert_eq!(
        applied[0],
        Vec::<i64>::new(),
        "the run that waited found nothing to do"
    );
    // Every migration on disk, by number (a number reserved by a change not merged yet is
    // missing until it is).
    let mut on_disk: Vec<i64> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
            .unwrap()
            .map(|e| {
                e.unwrap().file_name().to_string_lossy()[..4]
                    .parse()
                    .unwrap()
            })
            .collect();
    on_disk.sort();
    let latest = *on_disk.last().unwrap();
    assert_eq!(applied[1], on_disk);
    assert_eq!((first.current, second.current), (latest, latest));
    // Two processes starting at once on a migrated schema, then a third migration run.
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let (a, b) = tokio::join!(
        PostgresStore::connect(&schema.url, schema.options(clock.clone(), dir.path())),
        PostgresStore::connect(&schema.url, schema.options(clock.clone(), dir.path())),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    a.check_ready().await.unwrap();
    b.check_ready().await.unwrap();
    let again = PostgresStore::migrate(&schema.url, Some(&schema.name))
        .await
        .unwrap();
    assert!(again.applied.is_empty());
    assert_eq!(again.current, latest);

    // Label versions are immutable here too.
    let (client, connection) = tokio_postgres::connect(&schema.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "SET search_path TO {};
             INSERT INTO label_versions (tenant, trace_id, version, state, candidate_id, decided,
                 created_at, digest, body)
             VALUES ('acme', '\\x01', 1, 'active', 'cand-1', FALSE, 0, 'd', '{{}}')",
            schema.name
        ))
        .await
        .unwrap();
    let refused = client
        .batch_execute("UPDATE label_versions SET state = 'rejected'")
        .await
        .unwrap_err();
    assert!(
        refused
            .as_db_error()
            .is_some_and(|e| e.message() == "label versions are immutable"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn postgres_refuses_an_unusable_schema_name_and_an_unreachable_server() {
    let bad = PostgresStore::migrate(&database_url(), Some("x; DROP TABLE steps")).await;
    assert!(
        matches!(&bad, Err(StoreError::Internal(m)) if m.contains("letters, digits and _")),
        "{bad:?}"
    );
    // A port nothing listens on (the discard port): the error says how to fix it.
    let unreachable =
        PostgresStore::migrate("postgres://postgres@127.0.0.1:9/postgres", None).await;
    assert!(
        matches!(&unreachable, Err(StoreError::Internal(m)) if m.contains("cannot connect to Postgres")),
        "{unreachable:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_pool_exhausted_past_its_wait_answers_busy() {
    let Some(schema) = SchemaGuard::new().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let store: Arc<dyn FullStore> = Arc::new(
        PostgresStore::connect(
            &schema.url,
            PostgresOptions {
                pool_size: 1,
                pool_wait: std::time::Duration::from_millis(100),
                ..schema.options(clock, dir.path())
            },
        )
        .await
        .unwrap(),
    );
    let acme = tenant("acme");
    store
        .submit_feedback(
            &acme,
            feedback(r#"{"investigation_id":"1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e","verdict":"down"}"#),
        )
        .await
        .unwrap();
    let job = store
        .claim_label_jobs(SignedDuration::from_secs(60), 1)
        .await
        .unwrap()
        .remove(0);
    // Another process holds the job's row: finishing waits for it on the pool's only connection.
    let (holder, connection) = tokio_postgres::connect(&schema.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    holder
        .batch_execute(&format!(
            "SET search_path TO {}; BEGIN; SELECT 1 FROM label_jobs FOR UPDATE",
            schema.name
        ))
        .await
        .unwrap();
    let finishing = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .finish_label_job(&job, drafted(trace(0x1e), "drafted", &[]))
                .await
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let refused = store.check_ready().await;
    assert!(matches!(refused, Err(StoreError::Busy)), "{refused:?}");
    holder.batch_execute("COMMIT").await.unwrap();
    finishing.await.unwrap().unwrap();
    store.check_ready().await.unwrap();
    assert_eq!(
        store.candidates(&acme, all_routes(10)).await.unwrap().len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_feedback_retried_through_another_server_is_a_replay() {
    let Some((a, b, _clock, _schema, _dir)) = two_postgres_stores().await else {
        return;
    };
    let acme = tenant("acme");
    for n in 0..10 {
        let body = format!(
            r#"{{"investigation_id":"1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f","verdict":"down","idempotency_key":"retry-{n}"}}"#
        );
        // The same submission reaches both servers at once, as a client retrying a timeout.
        let (first, second) = tokio::join!(
            a.submit_feedback(&acme, feedback(&body)),
            b.submit_feedback(&acme, feedback(&body)),
        );
        let mut receipts = [first.unwrap(), second.unwrap()];
        receipts.sort_by_key(|r| matches!(r, FeedbackReceipt::Replayed(_)));
        let [
            FeedbackReceipt::Created(created),
            FeedbackReceipt::Replayed(replayed),
        ] = &receipts
        else {
            panic!("one creates, the other replays: {receipts:?}");
        };
        assert_eq!(created, replayed);
        let changed = body.replace("down", "up");
        assert!(matches!(
            b.submit_feedback(&acme, feedback(&changed)).await,
            Err(StoreError::IdempotencyConflict(_))
        ));
    }
    let investigation_feedback = a.pipeline_stats(&acme).await.unwrap().feedback_pending;
    assert_eq!(investigation_feedback, 10, "one row per key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_ui_session_started_through_one_server_is_known_to_another() {
    let Some((a, b, clock, _schema, _dir)) = two_postgres_stores().await else {
        return;
    };
    let acme = tenant("acme");
    let scopes = ScopeSet::parse_list("review").unwrap();
    let key = a.create_api_key(&acme, "ann", scopes).await.unwrap();
    let hour = std::time::Duration::from_secs(3600);
    a.create_ui_session(&acme, &[1u8; 32], &key.key.id, "c1", hour)
        .await
        .unwrap();
    assert_eq!(b.ui_session(&[1u8; 32]).await.unwrap().unwrap().csrf, "c1");
    // Signing out through the other server ends it for both.
    assert!(b.end_ui_session(&acme, &[1u8; 32]).await.unwrap());
    assert!(a.ui_session(&[1u8; 32]).await.unwrap().is_none());
    // A key revoked through one server ends its sessions on the other at once.
    b.create_ui_session(&acme, &[2u8; 32], &key.key.id, "c2", hour)
        .await
        .unwrap();
    assert!(a.ui_session(&[2u8; 32]).await.unwrap().is_some());
    assert!(a.revoke_api_key(&acme, &key.key.id).await.unwrap());
    assert!(b.ui_session(&[2u8; 32]).await.unwrap().is_none());
    // Expiry is the same for both: the stores share one clock here, as servers share time.
    let kept = b.create_api_key(&acme, "bob", scopes).await.unwrap();
    a.create_ui_session(&acme, &[3u8; 32], &kept.key.id, "c3", hour)
        .await
        .unwrap();
    clock.advance(SignedDuration::from_hours(1));
    assert!(b.ui_session(&[3u8; 32]).await.unwrap().is_none());
}
