//! Feeding the entity catalog from the pipeline: Prometheus label values and the static file on a
//! refresh, and each investigation's own entities before drafting.

use std::sync::Arc;

use axum::Json;
use axum::extract::Path;
use axum::routing::get;
use evalmint_model::{
    AgentInfo, CatalogEntry, EntityProvenance, Investigation, SignalSource, SpanId, Step, StepKind,
    StepStatus, TenantId, ToolCall, TraceId,
};
use evalmint_pipeline::catalog::{CatalogFeeder, catalog_for, label_value_entry};
use evalmint_pipeline::config::{Config, Connector, Source};
use evalmint_pipeline::evidence::Evidence;
use evalmint_store::{FullStore, PipelineStore, SqliteOptions, SqliteStore};
use jiff::SignedDuration;
use serde_json::{Value, json};

/// A stand-in for the Prometheus label API.
async fn prometheus_labels() -> String {
    let app = axum::Router::new()
        .route(
            "/api/v1/labels",
            get(|| async {
                Json(json!({"status": "success", "data": ["__name__", "instance", "job", "pod", "le"]}))
            }),
        )
        .route(
            "/api/v1/label/{name}/values",
            get(|Path(name): Path<String>| async move {
                let data: Value = match name.as_str() {
                    "pod" => json!(["frontend-579b9bff58-t2dbm", "redis-cart-0", "redis-cart-1", ""]),
                    "instance" => json!(["10.0.3.7:9100", "cart:8080"]),
                    "job" => json!(["node-exporter"]),
                    _ => return Json(json!({"status": "error", "error": "not asked for"})),
                };
                Json(json!({"status": "success", "data": data}))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

fn prometheus_source(name: &str, endpoint: String) -> Source {
    Source {
        name: name.into(),
        signal: SignalSource::Metrics,
        connector: Connector::Prometheus { endpoint },
        ttl: SignedDuration::from_hours(24),
        tools: vec![],
        concurrency: 1,
    }
}

fn store(dir: &tempfile::TempDir) -> Arc<SqliteStore> {
    Arc::new(SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap())
}

fn names(catalog: &evalmint_model::Catalog) -> Vec<&str> {
    catalog.entries().iter().map(|e| e.name.as_str()).collect()
}

#[tokio::test]
async fn label_values_and_the_static_file_feed_the_configured_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let file = dir.path().join("catalog-info.yaml");
    std::fs::write(
        &file,
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: cart}\nspec: {type: service, owner: shop}\n",
    )
    .unwrap();
    let (acme, globex) = (
        TenantId::new("acme").unwrap(),
        TenantId::new("globex").unwrap(),
    );
    let mut config = Config {
        sources: vec![
            prometheus_source("prometheus", prometheus_labels().await),
            // Nothing listens here: reported, and the other sources still count.
            prometheus_source("gone", "http://127.0.0.1:9".into()),
        ],
        ..Config::default()
    };
    config.catalog.tenants = vec![acme.clone()];
    config.catalog.file = Some(file);
    config.catalog.max_values = 3;
    let feeder = CatalogFeeder::new(store.clone(), Arc::new(config));
    assert!(feeder.has_work());

    let report = feeder.refresh().await;
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert!(report.problems[0].starts_with("source gone:"), "{report:?}");

    let catalog = store.catalog(&acme).await.unwrap();
    assert_eq!(
        names(&catalog),
        [
            "10.0.3.7:9100",
            "cart",
            "cart:8080",
            "frontend-579b9bff58-t2dbm",
            "node-exporter",
            "redis-cart-0",
            "redis-cart-1"
        ],
        "the empty value is skipped, the pod list is cut at max_values"
    );
    let pod = catalog.get("frontend-579b9bff58-t2dbm").unwrap();
    assert_eq!(
        (pod.kind.as_deref(), pod.workload.as_deref(), pod.provenance),
        (Some("pod"), Some("frontend"), EntityProvenance::Prometheus)
    );
    assert_eq!(
        catalog.get("cart:8080").unwrap().workload.as_deref(),
        Some("cart")
    );
    assert_eq!(catalog.get("10.0.3.7:9100").unwrap().workload, None);
    let cart = catalog.get("cart").unwrap();
    assert_eq!(
        (cart.provenance, cart.team.as_deref()),
        (EntityProvenance::StaticFile, Some("shop"))
    );
    assert!(store.catalog(&globex).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_bad_static_file_is_reported_and_nothing_else_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let file = dir.path().join("entities.toml");
    std::fs::write(&file, "[[entities]]\nkind = \"database\"\n").unwrap();
    let mut config = Config {
        sources: vec![prometheus_source("prometheus", prometheus_labels().await)],
        ..Config::default()
    };
    config.catalog.tenants = vec![TenantId::new("acme").unwrap()];
    config.catalog.file = Some(file);
    let report = CatalogFeeder::new(store.clone(), Arc::new(config))
        .refresh()
        .await;
    assert_eq!(report.problems.len(), 1);
    assert!(
        report.problems[0].contains("entity 1: missing field `name`"),
        "{report:?}"
    );
    assert_eq!(report.entries, 6, "three pods, two instances, one job");

    let mut idle = Config::default();
    idle.catalog.tenants = vec![TenantId::new("acme").unwrap()];
    assert!(!CatalogFeeder::new(store, Arc::new(idle)).has_work());
}

#[test]
fn label_names_decide_the_kind() {
    let entry = label_value_entry("namespace", " shop ");
    assert_eq!(
        (entry.name.as_str(), entry.kind.as_deref()),
        ("shop", Some("namespace"))
    );
    assert_eq!(label_value_entry("job", "api").kind, None);
    assert_eq!(
        label_value_entry("pod", "checkout-6d8f7c9b5d-x2x7q")
            .workload
            .as_deref(),
        Some("checkout")
    );
}

#[tokio::test]
async fn an_investigation_is_read_against_the_stored_catalog_plus_its_own_entities() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let acme = TenantId::new("acme").unwrap();
    let mut declared = CatalogEntry::new("payments-db", EntityProvenance::StaticFile);
    declared.kind = Some("database".into());
    store.upsert_catalog(&acme, vec![declared]).await.unwrap();

    let start: jiff::Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
    let step = Step {
        span_id: SpanId::from_bytes(&[2; 8]).unwrap(),
        parent_span_id: None,
        name: "execute_tool query_metrics".into(),
        kind: StepKind::Tool,
        started_at: start,
        ended_at: start,
        status: StepStatus::Ok,
        status_message: None,
        agent: AgentInfo::default(),
        trigger: None,
        input: None,
        output: None,
        tool_call: Some(ToolCall {
            tool_name: "query_metrics".into(),
            source: SignalSource::Metrics,
            query: "up".into(),
            arguments: None,
            window: None,
            entities: vec!["checkout-7d4f8b6c9d-bcd45".into(), "payments-db".into()],
            result: None,
            result_truncated: false,
        }),
    };
    let investigation =
        Investigation::assemble(TraceId::from_bytes(&[1; 16]).unwrap(), vec![step], vec![])
            .unwrap();
    let mut evidence = Evidence::default();
    evidence.entities.insert("orders-queue".into());
    evidence.kinds.insert("orders-queue".into(), "kafka".into());
    evidence
        .calls
        .insert("orders-queue".into(), ["payments-db".to_owned()].into());

    let full: Arc<dyn FullStore> = store.clone();
    let catalog = catalog_for(&*full, &acme, &investigation, &evidence)
        .await
        .unwrap();
    assert_eq!(
        names(&catalog),
        ["payments-db", "checkout-7d4f8b6c9d-bcd45", "orders-queue"]
    );
    assert_eq!(
        catalog.get("payments-db").unwrap().provenance,
        EntityProvenance::StaticFile
    );
    let queue = catalog.get("orders-queue").unwrap();
    assert_eq!(queue.kind.as_deref(), Some("kafka"));
    assert_eq!(queue.depends_on, ["payments-db"]);
    assert_eq!(
        catalog
            .get("checkout-7d4f8b6c9d-bcd45")
            .unwrap()
            .workload
            .as_deref(),
        Some("checkout")
    );
    // Stored for the investigations to come.
    let stored = store.catalog(&acme).await.unwrap();
    assert_eq!(stored.len(), 3);
    assert_eq!(
        stored.get("payments-db").unwrap().kind.as_deref(),
        Some("database")
    );
}
