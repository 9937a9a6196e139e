//! Freezing the world before it expires. Planning turns an investigation's tool calls into
//! snapshot queries, each with a deadline (the earliest expiry of the data it touches); the
//! capturer re-runs them against their sources earliest-deadline-first, with bounded concurrency
//! per source and retries with backoff, and falls back to the result recorded in the trace —
//! marked as such — when the source can no longer answer. A query is never silently empty.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use evalmint_model::{
    CaptureStatus, Investigation, SnapshotQuery, StepKind, TimeWindow, Timestamp,
};
use evalmint_store::{CaptureOrder, CaptureOutcome, CaptureTask, Clock, FullStore};
use jiff::SignedDuration;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Connector, Source};
use crate::metrics::PipelineMetrics;
use crate::redact;

/// How long recorded-only queries are considered capturable: the trace itself is the source.
const RECORDED_LIFETIME: SignedDuration = SignedDuration::from_hours(24 * 14);
/// Largest result kept from a live capture; longer results are cut while they stream and marked
/// truncated.
const MAX_RESULT_BYTES: usize = 8 * 1024 * 1024;
/// How much of a source's error body is kept in a query's `last_error`.
const MAX_ERROR_EXCERPT_BYTES: usize = 300;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CLAIM_BATCH: usize = 64;

/// A stable id for a query within its investigation.
pub(crate) fn query_id(source: &str, tool: &str, text: &str, window: Option<TimeWindow>) -> String {
    let mut hasher = Sha256::new();
    for part in [source, tool, text] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    if let Some(w) = window {
        hasher.update(w.start.to_string().as_bytes());
        hasher.update(w.end.to_string().as_bytes());
    }
    format!("q-{}", &hex::encode(hasher.finalize())[..16])
}

/// The deadline of a query: its window's start plus the source's TTL (data at the window's start
/// expires first); the step's start when the query has no window.
pub(crate) fn deadline(
    source: Option<&Source>,
    window: Option<TimeWindow>,
    at: Timestamp,
) -> Timestamp {
    let oldest = window.map_or(at, |w| w.start);
    let ttl = source.map_or(RECORDED_LIFETIME, |s| s.ttl);
    oldest.checked_add(ttl).unwrap_or(oldest)
}

/// The snapshot queries an investigation's own tool calls need.
pub fn plan_agent_queries(
    config: &Config,
    investigation: &Investigation,
    now: Timestamp,
) -> Vec<SnapshotQuery> {
    let mut planned: Vec<SnapshotQuery> = Vec::new();
    for step in investigation
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::Tool)
    {
        let Some(call) = &step.tool_call else {
            continue;
        };
        let source = config.source_for(&call.tool_name, call.source);
        let source_name = source.map_or("recorded", |s| s.name.as_str());
        let mut query = SnapshotQuery {
            arguments: call.arguments.clone(),
            window: call.window,
            entities: call.entities.clone(),
            step: Some(step.span_id),
            ..SnapshotQuery::pending(
                String::new(),
                source_name.to_owned(),
                call.source,
                call.tool_name.clone(),
                call.query.clone(),
                deadline(source, call.window, step.started_at),
                now,
            )
        };
        redact_query(&mut query);
        let text = query.arguments.as_deref().unwrap_or(&query.query);
        query.id = query_id(source_name, &query.tool_name, text, query.window);
        if planned.iter().any(|q| q.id == query.id) {
            continue;
        }
        planned.push(query);
    }
    planned
}

/// The wait before retry number `attempts + 1`: 200 ms doubling, at most 51.2 s.
pub(crate) fn backoff(attempts: u32) -> SignedDuration {
    SignedDuration::from_millis(200 * (1_i64 << attempts.min(8)))
}

/// A transport error as stored: named by source, redacted (URLs carry the query's arguments).
fn redact_error(source: &str, error: &reqwest::Error) -> String {
    redact::redact(&format!("{source}: {error}")).text
}

/// Redacts everything a query carries that came from the agent or a source: query text,
/// arguments (value by value when JSON), entity names and the last error. Planning applies it
/// before a query is stored, so captures replay the redacted query.
pub(crate) fn redact_query(query: &mut SnapshotQuery) {
    query.query = redact::redact(&query.query).text;
    if let Some(arguments) = &mut query.arguments {
        match serde_json::from_str::<serde_json::Value>(arguments) {
            Ok(mut value) => {
                if redact::redact_json(&mut value) > 0 {
                    *arguments = value.to_string();
                }
            }
            Err(_) => *arguments = redact::redact(arguments).text,
        }
    }
    for entity in &mut query.entities {
        *entity = redact::redact(entity).text;
    }
    if let Some(error) = &mut query.last_error {
        *error = redact::redact(error).text;
    }
}

/// Keeps secrets and personal data out of the snapshot: JSON results are redacted value by
/// value (keys and structure stay), anything else as text.
fn redact_result(bytes: Vec<u8>) -> Vec<u8> {
    if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        if redact::redact_json(&mut value) == 0 {
            return bytes;
        }
        return serde_json::to_vec(&value).unwrap_or(bytes);
    }
    redact::redact(&String::from_utf8_lossy(&bytes))
        .text
        .into_bytes()
}

/// Why one attempt failed, and whether trying again can help. Messages are redacted: sources
/// echo requests (and whatever secrets they carried) in their error bodies.
#[derive(Debug)]
enum FetchError {
    Retryable(String),
    Permanent(String),
}

/// Why a query could not be captured live. Decides the status when the trace recorded no
/// result: data that expired is `expired`, a source that failed is `failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Miss {
    /// The query has no live source (recorded-only, or its source is no longer configured).
    NoSource,
    /// The data had expired before the feedback arrived: no scheduler could have captured it.
    ExpiredBeforeFeedback,
    /// The deadline passed before capture.
    ExpiredBeforeCapture,
    /// The source failed and the deadline falls before the next retry.
    ExpiresBeforeRetry(String),
    /// The source failed for good, or every attempt was used.
    Failed(String),
}

impl Miss {
    /// The status of a query that missed and has no recorded result to stand in.
    fn status(&self) -> CaptureStatus {
        match self {
            Miss::ExpiredBeforeFeedback
            | Miss::ExpiredBeforeCapture
            | Miss::ExpiresBeforeRetry(_) => CaptureStatus::Expired,
            Miss::NoSource | Miss::Failed(_) => CaptureStatus::Failed,
        }
    }

    /// The reason stored with the query; `None` for a recorded-only query that stands in as
    /// designed.
    fn reason(&self) -> Option<String> {
        match self {
            Miss::NoSource => None,
            Miss::ExpiredBeforeFeedback => {
                Some("the source's data had expired before the feedback arrived".to_owned())
            }
            Miss::ExpiredBeforeCapture => {
                Some("the source's data expired before capture".to_owned())
            }
            Miss::ExpiresBeforeRetry(error) => {
                Some(format!("{error}; the data expires before a retry"))
            }
            Miss::Failed(error) => Some(error.clone()),
        }
    }
}

/// Reads a response body up to `cap` bytes while it streams, so an oversized answer never sits
/// in memory whole. Returns the bytes kept and whether the body was longer.
async fn read_capped(
    response: &mut reqwest::Response,
    cap: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = cap - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// Re-runs queries against their sources until shutdown.
pub struct Capturer {
    store: Arc<dyn FullStore>,
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    client: reqwest::Client,
    order: CaptureOrder,
    limits: HashMap<String, Arc<Semaphore>>,
    metrics: Arc<PipelineMetrics>,
    poll: Duration,
    max_result_bytes: usize,
}

impl Capturer {
    pub fn new(
        store: Arc<dyn FullStore>,
        config: Arc<Config>,
        clock: Arc<dyn Clock>,
        order: CaptureOrder,
        metrics: Arc<PipelineMetrics>,
    ) -> Self {
        let limits = config
            .sources
            .iter()
            .map(|s| (s.name.clone(), Arc::new(Semaphore::new(s.concurrency))))
            .collect();
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("a plain HTTP client builds");
        Capturer {
            store,
            config,
            clock,
            client,
            order,
            limits,
            metrics,
            poll: Duration::from_millis(100),
            max_result_bytes: MAX_RESULT_BYTES,
        }
    }

    /// Caps live results at `bytes` instead of the default 8 MiB.
    pub fn with_max_result_bytes(mut self, bytes: usize) -> Self {
        self.max_result_bytes = bytes;
        self
    }

    /// Claims and captures due queries until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut in_flight = tokio::task::JoinSet::new();
        while !shutdown.is_cancelled() {
            while in_flight.try_join_next().is_some() {}
            let claiming = std::time::Instant::now();
            let claimed = self
                .store
                .claim_captures(self.order, self.config.capture_lease, CLAIM_BATCH)
                .await;
            self.metrics
                .claimed(crate::metrics::Queue::Captures, claiming.elapsed());
            let tasks = match claimed {
                Ok(tasks) => tasks,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming captures failed");
                    Vec::new()
                }
            };
            if tasks.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(self.poll) => {}
                }
                continue;
            }
            for task in tasks {
                let capturer = self.clone();
                let permit = self.limits.get(&task.query.source_name).cloned();
                // Wait for a slot here, so claims never run ahead of capacity (and EDF order holds).
                let permit = match permit {
                    Some(semaphore) => Some(semaphore.acquire_owned().await.expect("never closed")),
                    None => None,
                };
                in_flight.spawn(async move {
                    let outcome = capturer.capture(&task).await;
                    drop(permit);
                    if let Err(e) = capturer.store.record_capture(task, outcome).await {
                        tracing::warn!(error = %e, "recording a capture failed");
                    }
                });
            }
        }
        while in_flight.join_next().await.is_some() {}
    }

    /// One attempt at one query, decided entirely here: capture, retry later, or fall back.
    pub(crate) async fn capture(&self, task: &CaptureTask) -> CaptureOutcome {
        let query = &task.query;
        let now = self.clock.now();
        let source = self
            .config
            .sources
            .iter()
            .find(|s| s.name == query.source_name);
        let Some(source) = source.filter(|s| s.connector != Connector::Recorded) else {
            return self.fall_back(task, Miss::NoSource).await;
        };
        if query.deadline <= query.planned_at {
            self.metrics.expired_before_feedback(&source.name);
            return self.fall_back(task, Miss::ExpiredBeforeFeedback).await;
        }
        if now >= query.deadline {
            self.metrics.ttl_miss(&source.name);
            return self.fall_back(task, Miss::ExpiredBeforeCapture).await;
        }
        match self.fetch(source, query).await {
            Ok((bytes, truncated)) => {
                let bytes = redact_result(bytes);
                let slack = query.deadline.duration_since(self.clock.now());
                self.metrics.captured(&source.name, slack);
                CaptureOutcome {
                    status: CaptureStatus::Captured,
                    result: Some(bytes),
                    truncated,
                    error: None,
                    retry_at: None,
                }
            }
            Err(FetchError::Retryable(error))
                if query.attempts + 1 < self.config.capture_attempts =>
            {
                let retry_at = now.checked_add(backoff(query.attempts)).unwrap_or(now);
                if retry_at >= query.deadline {
                    self.metrics.ttl_miss(&source.name);
                    return self.fall_back(task, Miss::ExpiresBeforeRetry(error)).await;
                }
                CaptureOutcome {
                    status: CaptureStatus::Pending,
                    result: None,
                    truncated: false,
                    error: Some(error),
                    retry_at: Some(retry_at),
                }
            }
            Err(FetchError::Retryable(error) | FetchError::Permanent(error)) => {
                self.fall_back(task, Miss::Failed(error)).await
            }
        }
    }

    /// The result recorded in the trace, or an explicit `expired` / `failed` without one.
    async fn fall_back(&self, task: &CaptureTask, miss: Miss) -> CaptureOutcome {
        let recorded = match task.query.step {
            Some(span) => match self.store.investigation(&task.tenant, task.trace_id).await {
                Ok(Some(investigation)) => investigation
                    .steps
                    .into_iter()
                    .find(|s| s.span_id == span)
                    .and_then(|s| s.tool_call)
                    .and_then(|c| c.result.map(|r| (r, c.result_truncated))),
                _ => None,
            },
            None => None,
        };
        let reason = miss.reason();
        match recorded {
            Some((result, truncated)) => CaptureOutcome {
                status: CaptureStatus::Recorded,
                result: Some(redact_result(result.into_bytes())),
                truncated,
                error: reason,
                retry_at: None,
            },
            None => CaptureOutcome {
                status: miss.status(),
                result: None,
                truncated: false,
                error: Some(
                    reason.unwrap_or_else(|| "no source and no recorded result".to_owned()),
                ),
                retry_at: None,
            },
        }
    }

    /// One request to the source: the body (at most [`MAX_RESULT_BYTES`], read while it streams)
    /// and whether it was cut.
    async fn fetch(
        &self,
        source: &Source,
        query: &SnapshotQuery,
    ) -> Result<(Vec<u8>, bool), FetchError> {
        let arguments: serde_json::Map<String, serde_json::Value> = query
            .arguments
            .as_deref()
            .and_then(|a| serde_json::from_str(a).ok())
            .unwrap_or_default();
        let request = match &source.connector {
            Connector::Recorded => return Err(FetchError::Permanent("recorded source".into())),
            Connector::Prometheus { endpoint } => {
                let window = query.window.ok_or_else(|| {
                    FetchError::Permanent("a range query needs a time window".into())
                })?;
                let seconds = window.end.duration_since(window.start).as_secs().max(1);
                let step = arguments
                    .get("step")
                    .and_then(|s| {
                        s.as_str()
                            .map(str::to_owned)
                            .or_else(|| Some(s.to_string()))
                    })
                    .unwrap_or_else(|| format!("{}s", (seconds / 240).max(15)));
                self.client
                    .get(format!("{endpoint}/api/v1/query_range"))
                    .query(&[
                        ("query", query.query.as_str()),
                        ("start", &window.start.to_string()),
                        ("end", &window.end.to_string()),
                        ("step", &step),
                    ])
            }
            Connector::HttpJson { endpoint, rename } => {
                let params: Vec<(String, String)> = arguments
                    .iter()
                    .map(|(key, value)| {
                        let key = rename.get(key).cloned().unwrap_or_else(|| key.clone());
                        let value = match value {
                            serde_json::Value::String(s) => s.clone(),
                            serde_json::Value::Array(items) => items
                                .iter()
                                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                                .collect::<Vec<_>>()
                                .join(","),
                            other => other.to_string(),
                        };
                        (key, value)
                    })
                    .collect();
                self.client.get(endpoint).query(&params)
            }
        };
        let failed = |e: reqwest::Error| FetchError::Retryable(redact_error(&source.name, &e));
        let mut response = request.send().await.map_err(failed)?;
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(FetchError::Retryable(format!(
                "{} answered {status}",
                source.name
            )));
        }
        if !status.is_success() {
            let (excerpt, _) = read_capped(&mut response, MAX_ERROR_EXCERPT_BYTES)
                .await
                .unwrap_or_default();
            let excerpt = redact::redact(&String::from_utf8_lossy(&excerpt)).text;
            return Err(FetchError::Permanent(format!(
                "{} answered {status}: {excerpt}",
                source.name
            )));
        }
        read_capped(&mut response, self.max_result_bytes)
            .await
            .map_err(failed)
    }
}
