//! Native JSON investigations: `POST /api/v1/investigations` for agents that do not speak OTLP,
//! and `GET /api/v1/investigations/{id}` for the assembled investigation with its feedback.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use evalmint_model::{
    AgentInfo, Scope, SignalSource, SpanId, Step, StepKind, StepStatus, TimeWindow, Timestamp,
    ToolCall, TraceId, Trigger,
};
use evalmint_store::IngestBatch;
use serde::Deserialize;

use super::{PathId, timed_write};
use crate::AppState;
use crate::auth::Caller;
use crate::body::read_request;
use crate::error::ApiError;

const MAX_STEPS: usize = 10_000;

/// The native investigation body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NativeInvestigation {
    /// The trace id (32 hex characters); generated when absent.
    #[serde(default)]
    id: Option<TraceId>,
    #[serde(default)]
    agent: AgentInfo,
    #[serde(default)]
    trigger: Option<Trigger>,
    #[serde(default)]
    conclusion: Option<String>,
    started_at: Timestamp,
    #[serde(default)]
    ended_at: Option<Timestamp>,
    #[serde(default)]
    steps: Vec<NativeStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NativeStep {
    kind: StepKind,
    name: String,
    started_at: Timestamp,
    #[serde(default)]
    ended_at: Option<Timestamp>,
    #[serde(default)]
    status: StepStatus,
    #[serde(default)]
    input: Option<String>,
    #[serde(default)]
    output: Option<String>,
    #[serde(default)]
    tool_call: Option<NativeToolCall>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NativeToolCall {
    tool_name: String,
    #[serde(default = "unknown_source")]
    source: SignalSource,
    query: String,
    #[serde(default)]
    arguments: Option<serde_json::Value>,
    #[serde(default)]
    window: Option<TimeWindow>,
    #[serde(default)]
    entities: Vec<String>,
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    result_truncated: bool,
}

fn unknown_source() -> SignalSource {
    SignalSource::Unknown
}

/// Deterministic span ids, so that posting the same investigation twice is idempotent.
fn span_id_for(trace: TraceId, index: usize) -> SpanId {
    let base = u64::from_be_bytes(trace.as_bytes()[8..16].try_into().expect("8 bytes"));
    let mut value = base.wrapping_add(index as u64 + 1);
    if value == 0 {
        value = 1;
    }
    SpanId::from_bytes(&value.to_be_bytes()).expect("non-zero 8 bytes")
}

/// A 422 naming the steps, for a native investigation whose steps are refused.
fn refused_step(message: impl Into<String>) -> ApiError {
    ApiError::unprocessable(vec![evalmint_model::FieldError {
        field: "steps",
        message: message.into(),
    }])
}

fn random_trace_id() -> Result<TraceId, ApiError> {
    let id = uuid::Uuid::now_v7();
    TraceId::from_bytes(id.as_bytes()).map_err(|e| ApiError::Internal(e.to_string()))
}

impl NativeInvestigation {
    fn into_steps(self, trace: TraceId) -> Result<Vec<Step>, ApiError> {
        if self.steps.len() > MAX_STEPS {
            return Err(refused_step(format!("more than {MAX_STEPS} steps")));
        }
        let latest_step_end = self
            .steps
            .iter()
            .map(|s| s.ended_at.unwrap_or(s.started_at))
            .max();
        let ended_at = self
            .ended_at
            .or(latest_step_end)
            .unwrap_or(self.started_at)
            .max(self.started_at);
        let root_id = span_id_for(trace, 0);
        let mut steps = vec![Step {
            span_id: root_id,
            parent_span_id: None,
            name: "invoke_agent".to_owned(),
            kind: StepKind::Agent,
            started_at: self.started_at,
            ended_at,
            status: StepStatus::Unset,
            status_message: None,
            agent: self.agent,
            trigger: self.trigger,
            input: None,
            output: self.conclusion,
            tool_call: None,
        }];
        for (index, native) in self.steps.into_iter().enumerate() {
            let position = index + 1;
            if native.name.trim().is_empty() {
                return Err(refused_step(format!("steps[{index}].name is empty")));
            }
            if native.kind == StepKind::Agent {
                return Err(refused_step(format!(
                    "steps[{index}].kind: the investigation itself is the agent step; use tool, llm or other"
                )));
            }
            let tool_call = match (native.kind, native.tool_call) {
                (StepKind::Tool, Some(call)) => Some(ToolCall {
                    tool_name: call.tool_name,
                    source: call.source,
                    query: call.query,
                    arguments: call.arguments.map(|a| match a {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    }),
                    window: call.window,
                    entities: call.entities,
                    result: call.result,
                    result_truncated: call.result_truncated,
                }),
                (StepKind::Tool, None) => {
                    return Err(refused_step(format!(
                        "steps[{index}]: a tool step needs tool_call"
                    )));
                }
                (_, Some(_)) => {
                    return Err(refused_step(format!(
                        "steps[{index}]: only tool steps carry tool_call"
                    )));
                }
                (_, None) => None,
            };
            if let Some(window) = tool_call.as_ref().and_then(|c| c.window)
                && window.start > window.end
            {
                return Err(refused_step(format!(
                    "steps[{index}].tool_call.window: start is after end"
                )));
            }
            steps.push(Step {
                span_id: span_id_for(trace, position),
                parent_span_id: Some(root_id),
                name: native.name,
                kind: native.kind,
                started_at: native.started_at,
                ended_at: native
                    .ended_at
                    .unwrap_or(native.started_at)
                    .max(native.started_at),
                status: native.status,
                status_message: None,
                agent: AgentInfo::default(),
                trigger: None,
                input: native.input,
                output: native.output,
                tool_call,
            });
        }
        Ok(steps)
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/investigations",
    tag = "investigations",
    summary = "Store an investigation sent as native JSON",
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 201, description = "stored", body = Object),
        (status = 400, description = "malformed JSON", body = crate::schemas::ErrorBody),
        (status = 401, description = "missing or unknown API key", body = crate::schemas::ErrorBody),
        (status = 403, description = "the key lacks the scope", body = crate::schemas::ErrorBody),
        (status = 413, description = "body larger than the limit", body = crate::schemas::ErrorBody),
        (status = 415, description = "wrong content type", body = crate::schemas::ErrorBody),
        (status = 422, description = "well-formed JSON with invalid fields: the error body names each problem in `fields`", body = crate::schemas::ErrorBody),
        (status = 429, description = "saturated; retry after Retry-After seconds", body = crate::schemas::ErrorBody)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Ingest)?;
    let native: NativeInvestigation =
        read_request(&state, &headers, body, state.config.max_body_bytes).await?;
    let trace = match native.id {
        Some(id) => id,
        None => random_trace_id()?,
    };
    let steps = native.into_steps(trace)?;
    let count = steps.len();
    let batch = IngestBatch {
        steps: steps.into_iter().map(|s| (trace, s)).collect(),
        feedback: Vec::new(),
        entities: Vec::new(),
    };
    timed_write(&state, "ingest", state.store.ingest(caller.tenant(), batch)).await?;
    state.metrics.spans(count, 0);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/investigations/{trace}"))],
        Json(serde_json::json!({ "id": trace, "steps": count })),
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/investigations/{id}",
    tag = "investigations",
    summary = "An investigation with its steps and joined feedback",
    params(("id" = String, Path, description = "the object's id")),
    responses(
        (status = 200, description = "the investigation", body = Object),
        (status = 400, description = "invalid request: the JSON error body names each bad field", body = crate::schemas::ErrorBody),
        (status = 401, description = "missing or unknown API key", body = crate::schemas::ErrorBody),
        (status = 403, description = "the key lacks the scope", body = crate::schemas::ErrorBody),
        (status = 404, description = "no such object in the caller's tenant", body = crate::schemas::ErrorBody)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Review)?;
    let trace: TraceId = id
        .to_ascii_lowercase()
        .parse()
        .map_err(|e| ApiError::invalid(format!("investigation id: {e}")))?;
    let investigation = state
        .store
        .investigation(caller.tenant(), trace)
        .await?
        .ok_or(ApiError::NotFound("investigation"))?;
    Ok(Json(investigation))
}
