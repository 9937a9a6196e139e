//! `evalmint serve --blobs s3://…` against a real S3-compatible server (`moto_server`): a tool
//! result too long to keep inline lands in the bucket, not in the data directory, and is served
//! back whole.

use std::time::SystemTime;

use evalmint_store::BlobStore;
use evalmint_testkit::moto::MotoServer;

mod support;
use support::{KEY, start_with_env};

const TRACE: &str = "5b8efff798038103d269b633813fc60c";

fn export(result: &str) -> serde_json::Value {
    let text =
        |key: &str, value: &str| serde_json::json!({"key": key, "value": {"stringValue": value}});
    serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [text("service.name", "sre-agent")]},
        "scopeSpans": [{"scope": {"name": "agent"}, "spans": [
            {"traceId": TRACE, "spanId": "eee19b7ec3c1b174", "name": "invoke_agent sre", "kind": 1,
             "startTimeUnixNano": "1767225600000000000", "endTimeUnixNano": "1767225660000000000",
             "attributes": [text("gen_ai.operation.name", "invoke_agent")]},
            {"traceId": TRACE, "spanId": "0102030405060708", "parentSpanId": "eee19b7ec3c1b174",
             "name": "execute_tool query_metrics", "kind": 1,
             "startTimeUnixNano": "1767225610000000000", "endTimeUnixNano": "1767225611000000000",
             "attributes": [
                 text("gen_ai.operation.name", "execute_tool"),
                 text("gen_ai.tool.name", "query_metrics"),
                 text("gen_ai.tool.call.arguments", "{\"promql\":\"up\"}"),
                 text("gen_ai.tool.call.result", result),
             ]}
        ]}]
    }]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_keeps_long_tool_results_in_the_bucket_it_is_given() {
    let Some(moto) = MotoServer::start() else {
        return evalmint_testkit::skip("moto_server is not installed (pip install 'moto[server]')");
    };
    moto.create_bucket("evalmint-e2e");
    let data = tempfile::tempdir().unwrap();
    let mut env = moto.env();
    env.push(("EVALMINT_BLOBS".into(), "s3://evalmint-e2e/prod".into()));
    let server = start_with_env(data.path(), env).await;

    let result: String = (0..800).map(|n| format!("{n:05}:ok ")).collect();
    assert!(result.len() > 4096, "longer than the inline limit");
    let client = reqwest::Client::new();
    let ingested = client
        .post(format!("{}/v1/traces", server.url))
        .bearer_auth(KEY)
        .json(&export(&result))
        .send()
        .await
        .unwrap();
    assert!(ingested.status().is_success(), "{}", ingested.status());
    let investigation: serde_json::Value = client
        .get(format!("{}/api/v1/investigations/{TRACE}", server.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        investigation.to_string().contains(&result),
        "the long result is served whole: {investigation:.300}"
    );

    assert!(
        !data.path().join("blobs").exists(),
        "no blob directory beside the database"
    );
    let bucket = BlobStore::from_url_with_env(
        "s3://evalmint-e2e/prod",
        &data.path().join("unused"),
        moto.env(),
    )
    .unwrap();
    let digest = BlobStore::digest(result.as_bytes());
    let listed = tokio::task::spawn_blocking(move || bucket.list(SystemTime::now()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        listed.into_iter().map(|(d, _)| d).collect::<Vec<_>>(),
        [digest],
        "the result is the bucket's one blob"
    );
}
