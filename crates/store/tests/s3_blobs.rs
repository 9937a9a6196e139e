//! The blob store in a real S3-compatible bucket (`moto_server`, started per test): content is
//! stored once, listed, read back and removed, and a `SqliteStore` whose blobs live in the bucket
//! keeps, serves and collects tool results as it does with a directory.

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use evalmint_model::{
    AgentInfo, SignalSource, SpanId, Step, StepKind, StepStatus, TenantId, Timestamp, ToolCall,
    TraceId,
};
use evalmint_store::{BlobStore, IngestBatch, ManualClock, SqliteOptions, SqliteStore, Store};
use evalmint_testkit::moto::MotoServer;
use jiff::SignedDuration;

const BUCKET: &str = "evalmint-blobs";

/// A bucket on a fresh moto server, or `None` (after skipping) when moto is not installed.
fn bucket(prefix: &str) -> Option<(MotoServer, BlobStore)> {
    let Some(moto) = MotoServer::start() else {
        evalmint_testkit::skip("moto_server is not installed (pip install 'moto[server]')");
        return None;
    };
    moto.create_bucket(BUCKET);
    let unused_root = std::env::temp_dir().join("evalmint-unused-blob-root");
    let blobs =
        BlobStore::from_url_with_env(&format!("s3://{BUCKET}/{prefix}"), &unused_root, moto.env())
            .unwrap();
    Some((moto, blobs))
}

/// Blob calls block; the tests make them from the blocking pool, as the store does.
async fn blocking<T: Send + 'static>(call: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(call).await.unwrap()
}

#[tokio::test]
async fn a_bucket_stores_each_content_once_and_lists_reads_and_removes_it() {
    let Some((_moto, blobs)) = bucket("team-a/blobs") else {
        return;
    };
    let before = SystemTime::now() - Duration::from_secs(60);
    let listed = blocking(move || {
        let first = blobs.put(b"series: 42", SystemTime::now()).unwrap();
        let again = blobs.put(b"series: 42", SystemTime::now()).unwrap();
        assert_eq!(first, again, "content names its blob");
        assert_eq!(first, BlobStore::digest(b"series: 42"));
        let other = blobs.put(b"rows: 7", SystemTime::now()).unwrap();
        assert_eq!(blobs.get(&first).unwrap(), b"series: 42");
        assert_eq!(blobs.get(&other).unwrap(), b"rows: 7");

        let mut listed = blobs.list(SystemTime::now()).unwrap();
        listed.sort();
        let mut expected = vec![first.clone(), other.clone()];
        expected.sort();
        assert_eq!(
            listed.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(),
            expected,
            "one object per distinct content"
        );
        let stored = blobs.stored_at(&first).unwrap().expect("stored");

        blobs.remove(&first).unwrap();
        assert_eq!(blobs.get(&first).unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(blobs.stored_at(&first).unwrap(), None);
        blobs.remove(&first).unwrap();
        assert_eq!(
            blobs.get("../../etc/passwd").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        let remaining: Vec<String> = blobs
            .list(SystemTime::now())
            .unwrap()
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(remaining, [other]);
        (listed, stored)
    })
    .await;
    let after = SystemTime::now() + Duration::from_secs(60);
    let (listed, stored) = listed;
    let times = listed.iter().map(|(_, time)| *time).chain([stored]);
    for time in times {
        assert!(
            before < time && time < after,
            "the stored time is the server's clock at the write: {time:?}"
        );
    }
}

#[tokio::test]
async fn objects_outside_the_prefix_or_the_layout_are_not_blobs() {
    let Some((moto, blobs)) = bucket("team-a") else {
        return;
    };
    let unused_root = std::env::temp_dir().join("evalmint-unused-blob-root");
    let neighbour =
        BlobStore::from_url_with_env(&format!("s3://{BUCKET}/team-b"), &unused_root, moto.env())
            .unwrap();
    let missing_bucket =
        BlobStore::from_url_with_env("s3://no-such-bucket/x", &unused_root, moto.env()).unwrap();
    blocking(move || {
        let ours = blobs.put(b"ours", SystemTime::now()).unwrap();
        neighbour.put(b"theirs", SystemTime::now()).unwrap();
        let listed: Vec<String> = blobs
            .list(SystemTime::now())
            .unwrap()
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(listed, [ours]);
        let error = missing_bucket
            .put(b"anything", SystemTime::now())
            .unwrap_err();
        assert!(
            error.to_string().contains("s3://no-such-bucket/x"),
            "the error names the bucket: {error}"
        );
    })
    .await;
}

fn tool_step(result: &str) -> Step {
    let at: Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
    Step {
        span_id: SpanId::from_bytes(&[2; 8]).unwrap(),
        parent_span_id: None,
        name: "query metrics".into(),
        kind: StepKind::Tool,
        started_at: at,
        ended_at: at + SignedDuration::from_secs(1),
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
            entities: vec![],
            result: Some(result.to_owned()),
            result_truncated: false,
        }),
    }
}

#[tokio::test]
async fn a_store_with_blobs_in_a_bucket_serves_results_and_collects_them_after_the_grace_period() {
    let Some((_moto, blobs)) = bucket("data") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The bucket stamps objects with the server's clock, so the store's clock starts there.
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let store = SqliteStore::open(
        dir.path(),
        SqliteOptions {
            inline_result_max: 64,
            clock: clock.clone(),
            blobs: Some(blobs.clone()),
            ..SqliteOptions::default()
        },
    )
    .unwrap();
    assert!(
        !dir.path().join("blobs").exists(),
        "no blob directory when blobs live in a bucket"
    );
    let acme = TenantId::new("acme").unwrap();
    let trace = TraceId::from_bytes(&[17; 16]).unwrap();
    let ingest = |result: String| IngestBatch {
        steps: vec![(trace, tool_step(&result))],
        feedback: vec![],
        entities: vec![],
    };
    let old = "o".repeat(200);
    store.ingest(&acme, ingest(old.clone())).await.unwrap();
    let old_digest = BlobStore::digest(old.as_bytes());
    let read_back = store.investigation(&acme, trace).await.unwrap().unwrap();
    assert_eq!(
        read_back.tool_calls().next().unwrap().result.as_deref(),
        Some(old.as_str())
    );
    let stored = {
        let (blobs, digest) = (blobs.clone(), old_digest.clone());
        blocking(move || blobs.stored_at(&digest).unwrap()).await
    };
    assert!(stored.is_some(), "the long result went to the bucket");

    // A blob whose row never came (its writer crashed) is kept through the grace period...
    let orphan = {
        let blobs = blobs.clone();
        blocking(move || {
            blobs
                .put(b"a result whose row never came", SystemTime::now())
                .unwrap()
        })
        .await
    };
    assert_eq!(store.collect_garbage().await.unwrap(), 0);
    // ...and collected after it; the referenced one stays.
    clock.advance(SignedDuration::from_hours(1));
    assert_eq!(store.collect_garbage().await.unwrap(), 1);

    // Replacing the step releases the old result, which is past its grace period.
    let new = "n".repeat(200);
    store.ingest(&acme, ingest(new.clone())).await.unwrap();
    let live = store.investigation(&acme, trace).await.unwrap().unwrap();
    assert_eq!(
        live.tool_calls().next().unwrap().result.as_deref(),
        Some(new.as_str())
    );
    let new_digest = BlobStore::digest(new.as_bytes());
    let (old_after, orphan_after, new_after) = blocking(move || {
        (
            blobs.stored_at(&old_digest).unwrap(),
            blobs.stored_at(&orphan).unwrap(),
            blobs.stored_at(&new_digest).unwrap(),
        )
    })
    .await;
    assert_eq!(
        old_after, None,
        "the replaced result is gone from the bucket"
    );
    assert_eq!(orphan_after, None, "the orphan was collected");
    assert!(new_after.is_some(), "the live result stays");
}
