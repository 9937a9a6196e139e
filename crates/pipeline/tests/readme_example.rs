//! The README's example end to end: an OpenTelemetry trace whose only tool call queried
//! `checkout`, then the feedback "it was the payments-db connection pool, not checkout". No
//! inventory, catalog or topology knows `payments-db`; the pipeline must still draft it — marked
//! unverified and sent to review — instead of giving up as `insufficient`.

use std::sync::Arc;
use std::time::Duration;

use evalmint_model::{
    Category, EntityProvenance, FeedbackOrigin, FeedbackSubmission, Route, TenantId,
};
use evalmint_otlp::{Encoding, decode_request, map_request};
use evalmint_pipeline::config::Config;
use evalmint_pipeline::metrics::PipelineMetrics;
use evalmint_store::{
    CandidateQuery, CaptureOrder, FullStore, IngestBatch, PipelineStore, SqliteOptions,
    SqliteStore, Store, SystemClock,
};
use tokio_util::sync::CancellationToken;

const TRACE: &str = "5b8efff798038103d269b633813fc60c";

/// What the README's Python snippet exports, as OTLP JSON.
fn readme_trace() -> String {
    let attribute =
        |key: &str, value: &str| serde_json::json!({"key": key, "value": {"stringValue": value}});
    let arguments = serde_json::json!({
        "query": "rate(http_errors_total{service=\"checkout\"}[5m])",
        "range": "30m"
    })
    .to_string();
    serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [attribute("service.name", "sre-agent")]},
        "scopeSpans": [{"scope": {"name": "sre-agent"}, "spans": [
            {"traceId": TRACE, "spanId": "eee19b7ec3c1b174", "name": "invoke_agent sre", "kind": 1,
             "startTimeUnixNano": "1767225600000000000", "endTimeUnixNano": "1767225660000000000",
             "attributes": [
                attribute("gen_ai.operation.name", "invoke_agent"),
                attribute("gen_ai.agent.name", "sre-agent"),
                attribute("evalmint.trigger.text", "checkout p99 latency above 2s"),
                attribute("evalmint.conclusion", "checkout is failing because of a bad deploy"),
             ]},
            {"traceId": TRACE, "spanId": "0102030405060708", "parentSpanId": "eee19b7ec3c1b174",
             "name": "execute_tool query_metrics", "kind": 1,
             "startTimeUnixNano": "1767225610000000000", "endTimeUnixNano": "1767225611000000000",
             "attributes": [
                attribute("gen_ai.operation.name", "execute_tool"),
                attribute("gen_ai.tool.name", "query_metrics"),
                attribute("gen_ai.tool.call.arguments", &arguments),
                attribute("gen_ai.tool.call.result", "{\"checkout\": 0.12}"),
             ]}
        ]}]
    }]})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_correction_drafts_payments_db_for_review() {
    let data = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(data.path(), SqliteOptions::default()).unwrap());
    let tenant = TenantId::default_tenant();

    let request = decode_request(readme_trace().as_bytes(), Encoding::Json).unwrap();
    let mapped = map_request(&request);
    assert_eq!(mapped.rejected_spans, 0, "{:?}", mapped.rejection_reasons);
    let trace = mapped.steps[0].trace_id;
    store
        .ingest(
            &tenant,
            IngestBatch {
                steps: mapped
                    .steps
                    .into_iter()
                    .map(|m| (m.trace_id, m.step))
                    .collect(),
                feedback: vec![],
                entities: evalmint_otlp::catalog_entries(&request),
            },
        )
        .await
        .unwrap();
    let feedback = FeedbackSubmission {
        investigation_id: Some(TRACE.into()),
        verdict: Some("not_quite".into()),
        rating: Some(2),
        correction: Some("it was the payments-db connection pool, not checkout".into()),
        user_id: Some("u-17".into()),
        idempotency_key: Some("fb-1".into()),
        ..FeedbackSubmission::default()
    }
    .validate(FeedbackOrigin::Api)
    .unwrap();
    store.submit_feedback(&tenant, feedback).await.unwrap();

    let shutdown = CancellationToken::new();
    let mut tasks = evalmint_pipeline::worker::start(
        store.clone() as Arc<dyn FullStore>,
        Arc::new(Config::default()),
        Arc::new(SystemClock),
        Arc::new(PipelineMetrics::default()),
        CaptureOrder::EarliestDeadline,
        shutdown.clone(),
    );
    // Wait for the pipeline to finish the job (bounded, so a hang fails instead of blocking).
    for _ in 0..600 {
        if store
            .pipeline_stats(&tenant)
            .await
            .unwrap()
            .feedback_pending
            == 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}

    let candidates = store
        .candidates(
            &tenant,
            CandidateQuery {
                routes: vec![],
                audit_only: false,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(candidates.len(), 1);
    let candidate = &candidates[0];
    assert_eq!(candidate.investigation_id, trace);
    assert_eq!(candidate.route, Route::Review, "{:#?}", candidate.scores);
    let truth = candidate
        .ground_truth
        .as_ref()
        .expect("a drafted ground truth");
    assert_eq!(truth.components, ["payments-db"]);
    assert_eq!(truth.category, Some(Category::RESOURCE_CONNECTION_POOL));
    assert_eq!(
        truth.reason.as_deref(),
        Some("it was the payments-db connection pool, not checkout")
    );
    assert_eq!(truth.entities.len(), 1);
    assert_eq!(
        truth.entities[0].provenance,
        EntityProvenance::OpenVocabulary
    );
    assert!(
        truth
            .statement
            .starts_with("payments-db: connection pool exhaustion"),
        "{}",
        truth.statement
    );
    let segment = |facet: &str| {
        candidate
            .segments
            .iter()
            .find(|s| s.facet == facet)
            .map(|s| s.value.as_str())
    };
    assert_eq!(segment("recognition"), Some("open_vocabulary"));
    assert!(
        candidate
            .scores
            .accuracy
            .reasons
            .iter()
            .any(|r| r.contains("payments-db not confirmed")),
        "{:#?}",
        candidate.scores.accuracy
    );
}
