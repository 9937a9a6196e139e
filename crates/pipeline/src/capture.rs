//! Freezing the world before it expires. Planning turns an investigation's tool calls into
//! snapshot queries, each with a deadline (the earliest expiry of the data it touches); the
//! capturer re-runs them against their sources earliest-deadline-first, with bounded concurrency
//! per source and retries with backoff, and falls back to the result recorded in the trace —
//! marked as such — when the source can no longer answer. A query is never silently empty.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use evalmint_model::{
    CaptureStatus, Investigation, QueryOrigin, SnapshotQuery, StepKind, TimeWindow, Timestamp,
};
use evalmint_store::{CaptureOrder, CaptureOutcome, CaptureTask, Clock, FullStore};
use jiff::SignedDuration;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Connector, Source};
use crate::metrics::PipelineMetrics;

/// How long recorded-only queries are considered capturable: the trace itself is the source.
const RECORDED_LIFETIME: SignedDuration = SignedDuration::from_hours(24 * 14);
/// Largest result kept from a live capture; longer results are cut and marked truncated.
const MAX_RESULT_BYTES: usize = 8 * 1024 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CLAIM_BATCH: usize = 64;
const LEASE: SignedDuration = SignedDuration::from_secs(60);

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
        let text = call.arguments.as_deref().unwrap_or(&call.query);
        let id = query_id(source_name, &call.tool_name, text, call.window);
        if planned.iter().any(|q| q.id == id) {
            continue;
        }
        planned.push(SnapshotQuery {
            id,
            source_name: source_name.to_owned(),
            signal: call.source,
            tool_name: call.tool_name.clone(),
            query: call.query.clone(),
            arguments: call.arguments.clone(),
            window: call.window,
            entities: call.entities.clone(),
            origin: QueryOrigin::Agent,
            step: Some(step.span_id),
            deadline: deadline(source, call.window, step.started_at),
            planned_at: now,
            status: CaptureStatus::Pending,
            captured_at: None,
            result_digest: None,
            result_truncated: false,
            attempts: 0,
            last_error: None,
        });
    }
    planned
}

/// Keeps secrets and personal data out of the snapshot: JSON results are redacted value by
/// value (keys and structure stay), anything else as text.
fn redact_result(bytes: Vec<u8>) -> Vec<u8> {
    if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        if crate::redact::redact_json(&mut value) == 0 {
            return bytes;
        }
        return serde_json::to_vec(&value).unwrap_or(bytes);
    }
    crate::redact::redact(&String::from_utf8_lossy(&bytes))
        .text
        .into_bytes()
}

/// Why one attempt failed, and whether trying again can help.
#[derive(Debug)]
enum FetchError {
    Retryable(String),
    Permanent(String),
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
        }
    }

    /// Claims and captures due queries until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut in_flight = tokio::task::JoinSet::new();
        while !shutdown.is_cancelled() {
            while in_flight.try_join_next().is_some() {}
            let tasks = match self
                .store
                .claim_captures(self.order, LEASE, CLAIM_BATCH)
                .await
            {
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
    async fn capture(&self, task: &CaptureTask) -> CaptureOutcome {
        let query = &task.query;
        let now = self.clock.now();
        let source = self
            .config
            .sources
            .iter()
            .find(|s| s.name == query.source_name);
        let Some(source) = source.filter(|s| s.connector != Connector::Recorded) else {
            return self.fall_back(task, None).await;
        };
        if query.deadline <= query.planned_at {
            self.metrics.expired_before_feedback(&source.name);
            let reason = "the source's data had expired before the feedback arrived";
            return self.fall_back(task, Some(reason.to_owned())).await;
        }
        if now >= query.deadline {
            self.metrics.ttl_miss(&source.name);
            return self
                .fall_back(
                    task,
                    Some("the source's data expired before capture".to_owned()),
                )
                .await;
        }
        match self.fetch(source, query).await {
            Ok(mut bytes) => {
                let truncated = bytes.len() > MAX_RESULT_BYTES;
                bytes.truncate(MAX_RESULT_BYTES);
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
                let backoff = SignedDuration::from_millis(200 * (1_i64 << query.attempts.min(8)));
                let retry_at = now.checked_add(backoff).unwrap_or(now);
                if retry_at >= query.deadline {
                    self.metrics.ttl_miss(&source.name);
                    return self
                        .fall_back(
                            task,
                            Some(format!("{error}; the data expires before a retry")),
                        )
                        .await;
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
                self.fall_back(task, Some(error)).await
            }
        }
    }

    /// The result recorded in the trace, or an explicit `expired` / `failed` without one.
    async fn fall_back(&self, task: &CaptureTask, reason: Option<String>) -> CaptureOutcome {
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
        let expired = reason.as_deref().is_some_and(|r| r.contains("expire"));
        match recorded {
            Some((result, truncated)) => CaptureOutcome {
                status: CaptureStatus::Recorded,
                result: Some(redact_result(result.into_bytes())),
                truncated,
                error: reason,
                retry_at: None,
            },
            None => CaptureOutcome {
                status: if expired {
                    CaptureStatus::Expired
                } else {
                    CaptureStatus::Failed
                },
                result: None,
                truncated: false,
                error: Some(
                    reason.unwrap_or_else(|| "no source and no recorded result".to_owned()),
                ),
                retry_at: None,
            },
        }
    }

    async fn fetch(&self, source: &Source, query: &SnapshotQuery) -> Result<Vec<u8>, FetchError> {
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
        let response = request
            .send()
            .await
            .map_err(|e| FetchError::Retryable(format!("{}: {e}", source.name)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| FetchError::Retryable(format!("{}: {e}", source.name)))?;
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(FetchError::Retryable(format!(
                "{} answered {status}",
                source.name
            )));
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(FetchError::Permanent(format!(
                "{} answered {status}: {text}",
                source.name
            )));
        }
        Ok(body.to_vec())
    }
}
