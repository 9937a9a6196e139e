//! The pipeline over a real store and a local source, on the store's manual clock: TTL deadlines,
//! retry backoff, the join deadline for span-only feedback, streamed result caps, and redaction of
//! everything a label stores. No test sleeps to let time pass.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use evalmint_model::{
    CaptureStatus, FeedbackId, FeedbackOrigin, FeedbackSubmission, SignalSource, SpanId, Step,
    StepKind, StepStatus, TenantId, TimeWindow, ToolCall, TraceId, Trigger,
};
use evalmint_store::{
    CaptureOrder, CaptureOutcome, Clock, FeedbackLabelState, IngestBatch, ManualClock,
    PipelineStore, SqliteOptions, SqliteStore, Store,
};
use jiff::SignedDuration;

use crate::capture::{Capturer, plan_agent_queries};
use crate::config::Config;
use crate::metrics::PipelineMetrics;
use crate::redact::CORPUS;
use crate::worker::LabelWorker;

const T0: &str = "2026-03-01T12:10:00Z";
const TRACE: [u8; 16] = [7; 16];

struct Fixture {
    clock: Arc<ManualClock>,
    store: Arc<SqliteStore>,
    config: Arc<Config>,
    metrics: Arc<PipelineMetrics>,
    tenant: TenantId,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// A store on a manual clock at [`T0`] and a pipeline configured by `config` (TOML).
    fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0.parse().unwrap()));
        let options = SqliteOptions {
            clock: clock.clone(),
            ..SqliteOptions::default()
        };
        Fixture {
            store: Arc::new(SqliteStore::open(dir.path(), options).unwrap()),
            config: Arc::new(Config::parse(config).unwrap()),
            metrics: Arc::new(PipelineMetrics::default()),
            tenant: TenantId::new("acme").unwrap(),
            clock,
            _dir: dir,
        }
    }

    fn capturer(&self) -> Capturer {
        Capturer::new(
            self.store.clone(),
            self.config.clone(),
            self.clock.clone(),
            CaptureOrder::EarliestDeadline,
            self.metrics.clone(),
        )
    }

    fn worker(&self) -> LabelWorker {
        LabelWorker::new(
            self.store.clone(),
            self.config.clone(),
            self.clock.clone(),
            self.metrics.clone(),
        )
    }

    fn trace(&self) -> TraceId {
        TraceId::from_bytes(&TRACE).unwrap()
    }

    async fn ingest(&self, steps: Vec<Step>) {
        let batch = IngestBatch {
            steps: steps.into_iter().map(|s| (self.trace(), s)).collect(),
            feedback: Vec::new(),
            entities: Vec::new(),
        };
        self.store.ingest(&self.tenant, batch).await.unwrap();
    }

    /// Plans the stored investigation's agent queries now.
    async fn plan(&self) {
        let investigation = self
            .store
            .investigation(&self.tenant, self.trace())
            .await
            .unwrap()
            .unwrap();
        let planned = plan_agent_queries(&self.config, &investigation, self.clock.now());
        self.store
            .plan_snapshot(&self.tenant, self.trace(), planned)
            .await
            .unwrap();
    }

    /// Claims every due capture, runs one attempt of each and records it.
    async fn capture_due(&self, capturer: &Capturer) -> Vec<CaptureOutcome> {
        let tasks = self
            .store
            .claim_captures(
                CaptureOrder::EarliestDeadline,
                SignedDuration::from_secs(60),
                100,
            )
            .await
            .unwrap();
        let mut outcomes = Vec::new();
        for task in tasks {
            let outcome = capturer.capture(&task).await;
            self.store
                .record_capture(task, outcome.clone())
                .await
                .unwrap();
            outcomes.push(outcome);
        }
        outcomes
    }

    async fn submit(&self, json: serde_json::Value) -> FeedbackId {
        let valid = serde_json::from_value::<FeedbackSubmission>(json)
            .unwrap()
            .validate(FeedbackOrigin::Api)
            .unwrap();
        let receipt = self
            .store
            .submit_feedback(&self.tenant, valid)
            .await
            .unwrap();
        receipt.feedback().id
    }

    async fn state(&self, id: FeedbackId) -> FeedbackLabelState {
        self.store
            .feedback_label_state(&self.tenant, id)
            .await
            .unwrap()
            .unwrap()
    }
}

/// Serves `router` on a loopback port; returns its base URL.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

/// A Prometheus-like source that answers every range query with `status`, counting requests.
async fn prometheus_answering(status: u16) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let router = axum::Router::new().route(
        "/api/v1/query_range",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { (axum::http::StatusCode::from_u16(status).unwrap(), "{}") }
        }),
    );
    (serve(router).await, hits)
}

fn prometheus_config(endpoint: &str, ttl: &str, attempts: u32) -> String {
    format!(
        "[pipeline]\ncapture_attempts = {attempts}\nnoise_queries = 0\n\n\
         [[sources]]\nname = \"metrics\"\nsignal = \"metrics\"\nconnector = \"prometheus\"\n\
         endpoint = \"{endpoint}\"\nttl = \"{ttl}\"\ntools = [\"query_metrics\"]\n"
    )
}

fn tool_step(
    id: u8,
    tool: &str,
    query: &str,
    arguments: serde_json::Value,
    recorded: Option<&str>,
) -> Step {
    let window = TimeWindow::new(
        "2026-03-01T11:30:00Z".parse().unwrap(),
        "2026-03-01T12:00:00Z".parse().unwrap(),
    );
    Step {
        span_id: SpanId::from_bytes(&[id; 8]).unwrap(),
        parent_span_id: None,
        name: format!("execute_tool {tool}"),
        kind: StepKind::Tool,
        started_at: "2026-03-01T12:00:00Z".parse().unwrap(),
        ended_at: "2026-03-01T12:00:01Z".parse().unwrap(),
        status: StepStatus::Ok,
        status_message: None,
        agent: Default::default(),
        trigger: None,
        input: None,
        output: None,
        tool_call: Some(ToolCall {
            tool_name: tool.into(),
            source: SignalSource::Metrics,
            query: query.into(),
            arguments: Some(arguments.to_string()),
            window,
            entities: vec!["checkout".into()],
            result: recorded.map(str::to_owned),
            result_truncated: false,
        }),
    }
}

fn metrics_step(recorded: Option<&str>) -> Step {
    let query = "pool_usage{service=\"checkout\"}";
    tool_step(
        1,
        "query_metrics",
        query,
        serde_json::json!({"query": query}),
        recorded,
    )
}

#[tokio::test]
async fn a_query_past_its_deadline_is_not_fetched_and_falls_back_by_type() {
    let (url, hits) = prometheus_answering(200).await;
    // Window start 11:30 + TTL 1h: the deadline is 12:30, twenty minutes after T0.
    for (recorded, expected) in [
        (Some("pool usage 100%"), CaptureStatus::Recorded),
        (None, CaptureStatus::Expired),
    ] {
        let f = Fixture::new(&prometheus_config(&url, "1h", 5));
        f.ingest(vec![metrics_step(recorded)]).await;
        f.plan().await;
        f.clock.advance(SignedDuration::from_mins(20));
        let outcomes = f.capture_due(&f.capturer()).await;
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].status, expected);
        assert_eq!(
            outcomes[0].error.as_deref(),
            Some("the source's data expired before capture")
        );
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "an expired query is never fetched"
    );
}

#[tokio::test]
async fn failed_attempts_back_off_on_the_clock_then_fail_by_type() {
    let (url, hits) = prometheus_answering(503).await;
    let f = Fixture::new(&prometheus_config(&url, "1h", 3));
    f.ingest(vec![metrics_step(None)]).await;
    f.plan().await;
    let capturer = f.capturer();

    let first = f.capture_due(&capturer).await;
    assert_eq!(first[0].status, CaptureStatus::Pending);
    assert_eq!(
        first[0].retry_at,
        Some(f.clock.now() + SignedDuration::from_millis(200))
    );
    f.clock.advance(SignedDuration::from_millis(199));
    assert!(
        f.capture_due(&capturer).await.is_empty(),
        "not due before its backoff"
    );
    f.clock.advance(SignedDuration::from_millis(1));
    let second = f.capture_due(&capturer).await;
    assert_eq!(second[0].status, CaptureStatus::Pending);
    assert_eq!(
        second[0].retry_at,
        Some(f.clock.now() + SignedDuration::from_millis(400)),
        "the backoff doubles"
    );
    f.clock.advance(SignedDuration::from_millis(400));
    let third = f.capture_due(&capturer).await;
    assert_eq!(third[0].status, CaptureStatus::Failed, "attempts used up");
    assert!(third[0].error.as_deref().unwrap().contains("answered 503"));
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_retry_that_would_land_after_the_deadline_is_an_expiry() {
    let (url, _) = prometheus_answering(503).await;
    let f = Fixture::new(&prometheus_config(&url, "1h", 5));
    f.ingest(vec![metrics_step(None)]).await;
    f.plan().await;
    // 100 ms before the 12:30 deadline: the first 200 ms backoff ends after it.
    f.clock
        .advance(SignedDuration::from_mins(20) - SignedDuration::from_millis(100));
    let outcomes = f.capture_due(&f.capturer()).await;
    assert_eq!(outcomes[0].status, CaptureStatus::Expired);
    assert!(
        outcomes[0]
            .error
            .as_deref()
            .unwrap()
            .ends_with("; the data expires before a retry")
    );
}

#[tokio::test]
async fn a_result_longer_than_the_cap_is_cut_while_it_streams() {
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: usize = 1024; // 64 MiB offered
    const CAP: usize = 1024 * 1024;
    let produced = Arc::new(AtomicUsize::new(0));
    let counter = produced.clone();
    let router = axum::Router::new().route(
        "/api/v1/query_range",
        axum::routing::get(move || {
            let counter = counter.clone();
            async move {
                let stream = futures_util::stream::iter(0..CHUNKS).map(move |_| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, std::convert::Infallible>(bytes_of(CHUNK))
                });
                axum::body::Body::from_stream(stream)
            }
        }),
    );
    let url = serve(router).await;
    let f = Fixture::new(&prometheus_config(&url, "3650d", 5));
    f.ingest(vec![metrics_step(None)]).await;
    f.plan().await;
    let capturer = f.capturer().with_max_result_bytes(CAP);
    let outcomes = f.capture_due(&capturer).await;
    assert_eq!(outcomes[0].status, CaptureStatus::Captured);
    assert!(outcomes[0].truncated);
    assert_eq!(outcomes[0].result.as_ref().unwrap().len(), CAP);
    let read = produced.load(Ordering::SeqCst);
    assert!(
        read < CHUNKS / 4,
        "the source was read to the end ({read} of {CHUNKS} chunks) instead of stopping at the cap"
    );
}

fn bytes_of(len: usize) -> axum::body::Bytes {
    axum::body::Bytes::from(vec![b'x'; len])
}

use futures_util::StreamExt;

#[tokio::test]
async fn span_only_feedback_whose_trace_never_arrives_ends_at_the_deadline() {
    let f = Fixture::new("[pipeline]\ntrace_wait = \"1h\"\n");
    // This span's trace arrives, so its feedback is joined and has a job; the other never does.
    f.ingest(vec![metrics_step(None)]).await;
    let joined = f
        .submit(serde_json::json!({"span_id": "0101010101010101", "verdict": "up"}))
        .await;
    let orphan = f
        .submit(serde_json::json!({"span_id": "0202020202020202", "verdict": "down"}))
        .await;
    let worker = f.worker();

    assert_eq!(worker.end_unjoined_feedback().await.unwrap(), 0);
    f.clock.advance(SignedDuration::from_hours(1));
    assert_eq!(
        worker.end_unjoined_feedback().await.unwrap(),
        0,
        "the deadline is not yet past"
    );
    assert_eq!(f.state(orphan).await, FeedbackLabelState::Pending);
    f.clock.advance(SignedDuration::from_secs(1));
    assert_eq!(worker.end_unjoined_feedback().await.unwrap(), 1);
    assert_eq!(
        f.state(orphan).await,
        FeedbackLabelState::NotCandidate("its trace never arrived within 1h".to_owned())
    );
    assert_eq!(
        f.state(joined).await,
        FeedbackLabelState::Pending,
        "joined feedback is its job's to finish"
    );
    assert_eq!(
        worker.end_unjoined_feedback().await.unwrap(),
        0,
        "ended once"
    );
}

#[tokio::test]
async fn nothing_enters_a_label_unredacted() {
    // The source refuses every request and echoes one corpus secret in its error body.
    let router = axum::Router::new().route(
        "/lookup",
        axum::routing::get(
            |axum::extract::Query(params): axum::extract::Query<
                std::collections::HashMap<String, String>,
            >| async move {
                let i: usize = params.get("i").and_then(|i| i.parse().ok()).unwrap_or(0);
                (
                    axum::http::StatusCode::BAD_REQUEST,
                    format!("bad request: {}", CORPUS[i % CORPUS.len()].1),
                )
            },
        ),
    );
    let url = serve(router).await;
    let f = Fixture::new(&format!(
        "[pipeline]\nnoise_queries = 0\n\n[[sources]]\nname = \"lookup\"\nsignal = \"metrics\"\n\
         connector = \"http_json\"\nendpoint = \"{url}/lookup\"\nttl = \"3650d\"\ntools = [\"lookup\"]\n"
    ));
    let every_text = CORPUS
        .iter()
        .map(|(_, text)| *text)
        .collect::<Vec<_>>()
        .join(" | ");
    let mut steps: Vec<Step> = CORPUS
        .iter()
        .enumerate()
        .map(|(i, (_, text))| {
            let mut step = tool_step(
                i as u8 + 1,
                "lookup",
                text,
                serde_json::json!({"i": i, "query": text, "service": [text], "note": text}),
                Some(text),
            );
            let call = step.tool_call.as_mut().unwrap();
            call.entities = vec!["checkout".into(), (*text).to_owned()];
            step
        })
        .collect();
    steps[0].trigger = Some(Trigger {
        kind: Default::default(),
        text: every_text.clone(),
        monitor: Some(CORPUS[0].1.to_owned()),
        fired_at: None,
    });
    f.ingest(steps).await;
    let feedback = f
        .submit(serde_json::json!({
            "investigation_id": hex(&TRACE),
            "verdict": "not_quite",
            "correction": format!("it was payments-db, not checkout: {every_text}"),
        }))
        .await;

    let worker = f.worker();
    let capturer = f.capturer();
    for _ in 0..20 {
        for job in f
            .store
            .claim_label_jobs(SignedDuration::from_secs(60), 8)
            .await
            .unwrap()
        {
            worker.run_job(&job).await;
        }
        f.capture_due(&capturer).await;
        if f.state(feedback).await != FeedbackLabelState::Pending {
            break;
        }
        f.clock.advance(SignedDuration::from_secs(30));
    }
    let FeedbackLabelState::Candidate(id) = f.state(feedback).await else {
        panic!("no candidate: {:?}", f.state(feedback).await)
    };
    let candidate = f.store.candidate(&f.tenant, &id).await.unwrap().unwrap();
    assert_eq!(candidate.snapshot.len(), CORPUS.len());
    assert!(
        candidate.snapshot.iter().all(|q| q.last_error.is_some()),
        "every source error is kept, redacted"
    );
    let mut stored = serde_json::to_string(&candidate).unwrap();
    for query in f.store.snapshot(&f.tenant, f.trace()).await.unwrap() {
        stored.push_str(&serde_json::to_string(&query).unwrap());
        let result = f
            .store
            .snapshot_result(&f.tenant, f.trace(), &query.id)
            .await
            .unwrap()
            .unwrap();
        stored.push_str(&String::from_utf8_lossy(&result));
    }
    // JSON escapes newlines; compare against the text as stored.
    let stored = stored.replace("\\n", "\n");
    for (secret, _) in CORPUS {
        if let Some(at) = stored.find(secret) {
            let from = stored.floor_char_boundary(at.saturating_sub(200));
            panic!(
                "{secret:?} was stored: …{}…",
                &stored[from..at + secret.len()]
            );
        }
    }
    assert!(
        stored.contains("[redacted:"),
        "placeholders stand where secrets were"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
