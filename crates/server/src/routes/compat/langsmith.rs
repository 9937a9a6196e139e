//! LangSmith's feedback API: `GET /info` (answered so the client posts each feedback to
//! `/feedback` rather than batching it into multipart run ingestion) and `POST /feedback`.
//! Clients authenticate with `x-api-key`. A LangSmith trace id is a UUID whose 16 bytes are the
//! OTel trace id and a run id's first 8 bytes are its span id, the mapping LangSmith's own OTel
//! exporter uses.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use evalmint_model::{FeedbackOrigin, Scope, ValidFeedback, Verdict};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Judgement, read_label, read_number, submit_all, user_in};
use crate::AppState;
use crate::auth::Caller;
use crate::body::read_json;
use crate::error::{ApiError, ErrorShape};

const MAX_FEEDBACK_BYTES: usize = 256 * 1024;

const FIELD_NAMES: &[(&str, &str)] = &[
    ("investigation_id", "trace_id"),
    ("span_id", "run_id"),
    ("verdict", "score"),
    ("rating", "score"),
    ("idempotency_key", "id"),
];

/// A feedback record as LangSmith clients send it; other fields (`feedback_config`,
/// `session_id`, `created_at`, …) are accepted and ignored.
#[derive(Debug, Deserialize)]
struct LangSmithFeedback {
    #[serde(default)]
    id: Option<uuid::Uuid>,
    #[serde(default)]
    run_id: Option<uuid::Uuid>,
    #[serde(default)]
    trace_id: Option<uuid::Uuid>,
    key: String,
    #[serde(default)]
    score: Option<Value>,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    correction: Option<Value>,
    #[serde(default)]
    feedback_source: Option<FeedbackSource>,
}

#[derive(Debug, Deserialize)]
struct FeedbackSource {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

/// A score or value: a boolean, a number, or (for values) a label.
fn read_judgement(
    value: &Value,
    key: &str,
    field: &str,
) -> Result<(Option<Verdict>, Option<i64>), String> {
    match value {
        Value::Bool(true) => Ok((Some(Verdict::Up), None)),
        Value::Bool(false) => Ok((Some(Verdict::Down), None)),
        Value::Number(n) => {
            read_number(n.as_f64().unwrap_or(f64::NAN), key).map_err(|m| format!("{field}: {m}"))
        }
        Value::String(label) => read_label(label)
            .map(|v| (Some(v), None))
            .map_err(|m| format!("{field}: {m}")),
        _ => Err(format!("{field}: must be a boolean, a number or a label")),
    }
}

fn correction_text(correction: Value) -> Option<String> {
    match correction {
        Value::String(text) => Some(text),
        Value::Null => None,
        Value::Object(map) => ["correction", "text", "output", "answer", "value"]
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_str).map(str::to_owned))
            .or_else(|| Some(Value::Object(map).to_string())),
        other => Some(other.to_string()),
    }
}

fn langsmith_feedback(raw: Value) -> Result<ValidFeedback, String> {
    let feedback: LangSmithFeedback = serde_json::from_value(raw).map_err(|e| e.to_string())?;
    if feedback.run_id.is_none() && feedback.trace_id.is_none() {
        return Err(
            "run_id: feedback must name its run or trace (project-level feedback is not taken)"
                .to_owned(),
        );
    }
    // Without a trace id, a run id alone names a span; it joins its trace when that arrives.
    let trace_id = feedback.trace_id;
    // A run id equal to the trace id is the root run: the feedback is on the whole trace.
    let span_id = feedback
        .run_id
        .filter(|run| Some(*run) != trace_id)
        .map(|run| {
            run.as_bytes()[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        });
    let mut judgement = Judgement {
        trace_id: trace_id.map(|t| t.simple().to_string()),
        span_id,
        comment: feedback.comment,
        correction: feedback.correction.and_then(correction_text),
        idempotency_key: feedback.id.map(|id| format!("langsmith:{id}")),
        ..Judgement::default()
    };
    let mut langsmith = Map::new();
    if let Some(score) = &feedback.score
        && !score.is_null()
    {
        (judgement.verdict, judgement.rating) = read_judgement(score, &feedback.key, "score")?;
    }
    match &feedback.value {
        None | Some(Value::Null) => {}
        Some(Value::Object(_) | Value::Array(_)) => {
            langsmith.insert("value".into(), feedback.value.clone().unwrap_or_default());
        }
        Some(value) => {
            let (verdict, rating) = read_judgement(value, &feedback.key, "value")?;
            judgement.verdict = judgement.verdict.or(verdict);
            judgement.rating = judgement.rating.or(rating);
        }
    }
    if judgement.verdict.is_none() && judgement.rating.is_none() && judgement.correction.is_some() {
        judgement.verdict = Some(Verdict::NotQuite);
    }
    langsmith.insert("key".into(), Value::String(feedback.key));
    if let Some(id) = feedback.id {
        langsmith.insert("feedback_id".into(), Value::String(id.to_string()));
    }
    if let Some(source) = feedback.feedback_source {
        if let Some(kind) = source.kind {
            langsmith.insert("source_type".into(), Value::String(kind));
        }
        if let Some(metadata) = source.metadata {
            judgement.user_id = user_in(&metadata);
        }
    }
    judgement
        .metadata
        .insert("langsmith".into(), Value::Object(langsmith));
    judgement.into_valid(FeedbackOrigin::Langsmith, FIELD_NAMES)
}

/// `POST /feedback`: answers the feedback as stored, with LangSmith's id.
#[utoipa::path(
    post,
    path = "/feedback",
    tag = "langsmith",
    summary = "LangSmith: one feedback",
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "stored", body = Object),
        (status = 401, description = "missing or unknown API key", body = Object),
        (status = 403, description = "the key lacks the scope", body = Object),
        (status = 409, description = "conflict", body = Object),
        (status = 413, description = "body larger than the limit", body = Object),
        (status = 415, description = "wrong content type", body = Object),
        (status = 422, description = "invalid input, in the SDK's error shape", body = Object),
        (status = 429, description = "saturated; retry after Retry-After seconds", body = Object)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn feedback(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    feedback_inner(&state, caller, &headers, body)
        .await
        .unwrap_or_else(|e| e.shaped(ErrorShape::LangSmith))
}

async fn feedback_inner(
    state: &AppState,
    caller: Result<Caller, ApiError>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = caller?;
    caller.require(Scope::Feedback)?;
    let limit = MAX_FEEDBACK_BYTES.min(state.config.max_body_bytes);
    let raw: Value = read_json(state, headers, body, limit).await?;
    let echo = json!({
        "id": raw.get("id"),
        "run_id": raw.get("run_id"),
        "trace_id": raw.get("trace_id"),
        "key": raw.get("key"),
    });
    let valid = langsmith_feedback(raw).map_err(ApiError::invalid)?;
    let receipt = submit_all(state, &caller, vec![valid])
        .await
        .pop()
        .unwrap_or_else(|| Err(ApiError::Internal("no write result".into())))?;
    let mut body = echo;
    body["evalmint_feedback_id"] = Value::String(receipt.feedback().id.to_string());
    Ok(Json(body).into_response())
}

/// `GET /info`: no multipart ingestion, so feedback goes to `POST /feedback` one by one.
#[utoipa::path(
    get,
    path = "/info",
    tag = "langsmith",
    summary = "LangSmith: server info for the client",
    responses(
        (status = 200, description = "server info", body = Object)
    )
)]
pub(crate) async fn info() -> Response {
    Json(json!({
        "version": "0.8.0",
        // The client's tracing thread reads every field of this block.
        "batch_ingest_config": {
            "use_multipart_endpoint": false,
            "scale_up_qsize_trigger": 1000,
            "scale_up_nthreads_limit": 1,
            "scale_down_nempty_trigger": 4,
            "size_limit": 100,
            "size_limit_bytes": 20_971_520,
        },
        "instance_flags": {},
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_map_to_spans_and_traces_to_investigations() {
        let trace = "5b8efff7-9803-8103-d269-b633813fc60c";
        let run = "051581bf-3cb5-5c13-0000-000000000000";
        let feedback = langsmith_feedback(json!({"id": "7d3f3a8e-4b4e-4f0e-9a51-0b3f0f0e0a01",
            "run_id": run, "trace_id": trace, "key": "user_score", "score": 0,
            "comment": "wrong service", "session_id": null, "extra": true}))
        .unwrap();
        assert_eq!(
            feedback.investigation_id.unwrap().to_hex(),
            "5b8efff798038103d269b633813fc60c"
        );
        assert_eq!(feedback.span_id.unwrap().to_hex(), "051581bf3cb55c13");
        assert_eq!(feedback.verdict, Some(Verdict::Down));
        assert_eq!(feedback.correction.as_deref(), Some("wrong service"));
        let root = langsmith_feedback(
            json!({"run_id": trace, "trace_id": trace, "key": "k", "value": "correct"}),
        )
        .unwrap();
        assert_eq!(root.span_id, None);
        assert_eq!(root.verdict, Some(Verdict::Up));
        let corrected = langsmith_feedback(json!({"trace_id": trace, "key": "k",
            "correction": {"answer": "payments-db pool"}}))
        .unwrap();
        assert_eq!(corrected.correction.as_deref(), Some("payments-db pool"));
    }

    #[test]
    fn bad_feedback_names_the_langsmith_field() {
        let trace = "5b8efff7-9803-8103-d269-b633813fc60c";
        let nothing = langsmith_feedback(json!({"key": "k", "score": 1})).unwrap_err();
        assert!(nothing.starts_with("run_id:"), "{nothing}");
        let score =
            langsmith_feedback(json!({"trace_id": trace, "key": "k", "score": 9.5})).unwrap_err();
        assert!(score.starts_with("score:"), "{score}");
        let empty = langsmith_feedback(json!({"trace_id": trace, "key": "k"})).unwrap_err();
        assert!(empty.starts_with("score:"), "{empty}");
        let id =
            langsmith_feedback(json!({"trace_id": "nope", "key": "k", "score": 1})).unwrap_err();
        assert!(id.contains("trace_id") || id.contains("UUID"), "{id}");
    }
}
