//! Arize Phoenix's annotation API: `POST /v1/span_annotations` (with `?sync=true` answering the
//! new ids) and `GET /arize_phoenix_version`, which the client reads before gated calls. Phoenix
//! clients send `Authorization: Bearer <key>`, the native header. A request is all or nothing:
//! one invalid annotation refuses the request with 422 and stores none.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use evalmint_model::{FeedbackOrigin, Scope, ValidFeedback, Verdict};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Judgement, hex_id, read_label, read_number, submit_all, user_in};
use crate::AppState;
use crate::auth::Caller;
use crate::body::read_json;
use crate::error::{ApiError, ErrorShape};

const MAX_ANNOTATIONS_BYTES: usize = 1024 * 1024;

/// The Phoenix server version evalmint answers: old enough that the client refuses, by itself
/// and with a clear message, capabilities evalmint does not serve, and new enough for span
/// annotations.
pub(crate) const PHOENIX_VERSION: &str = "8.0.0";

const FIELD_NAMES: &[(&str, &str)] = &[
    ("investigation_id", "span_id"),
    ("verdict", "result"),
    ("rating", "result.score"),
    ("correction", "result.explanation"),
    ("idempotency_key", "identifier"),
];

#[derive(Debug, Deserialize)]
struct AnnotateSpans {
    data: Vec<Value>,
}

/// One annotation; unknown fields are accepted and ignored.
#[derive(Debug, Deserialize)]
struct SpanAnnotation {
    name: String,
    #[serde(default)]
    annotator_kind: Option<String>,
    span_id: String,
    #[serde(default)]
    result: Option<AnnotationResult>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    #[serde(default)]
    identifier: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AnnotationResult {
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    score: Option<f64>,
    #[serde(default)]
    explanation: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct SyncParam {
    #[serde(default)]
    sync: bool,
}

fn annotation_feedback(raw: Value) -> Result<ValidFeedback, String> {
    let annotation: SpanAnnotation = serde_json::from_value(raw).map_err(|e| e.to_string())?;
    let result = annotation.result.unwrap_or_default();
    let span_id = hex_id(&annotation.span_id);
    let mut judgement = Judgement {
        idempotency_key: Some(format!(
            "phoenix:{span_id}:{}:{}",
            annotation.name,
            annotation.identifier.as_deref().unwrap_or("")
        )),
        span_id: Some(span_id),
        comment: result.explanation.clone(),
        ..Judgement::default()
    };
    let label_verdict = match result.label.as_deref() {
        Some(label) => match read_label(label) {
            Ok(verdict) => Some(verdict),
            // A label that is no verdict is still fine beside a score.
            Err(_) if result.score.is_some() => None,
            Err(message) => return Err(format!("result.label: {message}")),
        },
        None => None,
    };
    if let Some(score) = result.score {
        let (verdict, rating) =
            read_number(score, &annotation.name).map_err(|m| format!("result.score: {m}"))?;
        judgement.verdict = verdict;
        judgement.rating = rating;
    }
    if label_verdict.is_some() {
        judgement.verdict = label_verdict;
    }
    if judgement.verdict.is_none() && judgement.rating.is_none() {
        if result.explanation.is_none() {
            return Err("result: one of label, score or explanation is required".to_owned());
        }
        // An explanation alone is a note on what was wrong: a correction.
        judgement.verdict = Some(Verdict::NotQuite);
    }
    let mut phoenix = Map::new();
    phoenix.insert("name".into(), Value::String(annotation.name));
    if let Some(kind) = annotation.annotator_kind {
        phoenix.insert("annotator_kind".into(), Value::String(kind));
    }
    if let Some(label) = result.label {
        phoenix.insert("label".into(), Value::String(label));
    }
    if let Some(metadata) = annotation.metadata {
        judgement.user_id = user_in(&metadata);
        phoenix.insert("metadata".into(), Value::Object(metadata));
    }
    judgement
        .metadata
        .insert("phoenix".into(), Value::Object(phoenix));
    judgement
        .into_valid(FeedbackOrigin::Phoenix, FIELD_NAMES)
        .map_err(|m| {
            m.replace(
                "span_id: one of investigation_id (trace id) or span_id is required",
                "span_id: required",
            )
        })
}

/// `POST /v1/span_annotations`.
#[utoipa::path(
    post,
    path = "/v1/span_annotations",
    tag = "phoenix",
    summary = "Phoenix: span annotations",
    request_body(content = Object, content_type = "application/json"),
    params(("sync" = Option<bool>, Query, description = "answer the new ids")),
    responses(
        (status = 200, description = "stored; ids when sync=true", body = Object),
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
pub(crate) async fn span_annotations(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    query: Result<Query<SyncParam>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    span_annotations_inner(&state, caller, query, &headers, body)
        .await
        .unwrap_or_else(|e| e.shaped(ErrorShape::Phoenix))
}

async fn span_annotations_inner(
    state: &AppState,
    caller: Result<Caller, ApiError>,
    query: Result<Query<SyncParam>, QueryRejection>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = caller?;
    caller.require(Scope::Feedback)?;
    let Query(params) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let limit = MAX_ANNOTATIONS_BYTES.min(state.config.max_body_bytes);
    let request: AnnotateSpans = read_json(state, headers, body, limit).await?;
    let mut valid = Vec::with_capacity(request.data.len());
    let mut problems = Vec::new();
    for (index, raw) in request.data.into_iter().enumerate() {
        match annotation_feedback(raw) {
            Ok(feedback) => valid.push(feedback),
            Err(message) => problems.push(format!("data[{index}]: {message}")),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems.join("; ")));
    }
    let mut ids = Vec::with_capacity(valid.len());
    for outcome in submit_all(state, &caller, valid).await {
        ids.push(json!({ "id": outcome?.feedback().id.to_string() }));
    }
    let data = if params.sync { ids } else { Vec::new() };
    Ok(Json(json!({ "data": data })).into_response())
}

/// `GET /arize_phoenix_version`: plain text, as Phoenix serves it.
#[utoipa::path(
    get,
    path = "/arize_phoenix_version",
    tag = "phoenix",
    summary = "Phoenix: the server version the client checks",
    responses(
        (status = 200, description = "a version", body = String, content_type = "text/plain")
    )
)]
pub(crate) async fn version() -> &'static str {
    PHOENIX_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_map_label_score_and_explanation() {
        let labelled = annotation_feedback(json!({"name": "correctness", "annotator_kind": "HUMAN",
            "span_id": "051581BF3CB55C13", "result": {"label": "incorrect", "explanation": "the db pool"}})).unwrap();
        assert_eq!(labelled.verdict, Some(Verdict::Down));
        assert_eq!(labelled.correction.as_deref(), Some("the db pool"));
        assert_eq!(labelled.span_id.unwrap().to_hex(), "051581bf3cb55c13");
        let scored = annotation_feedback(json!({"name": "quality", "span_id": "051581bf3cb55c13",
            "result": {"label": "meh", "score": 0.9}, "extra": 1}))
        .unwrap();
        assert_eq!(scored.verdict, Some(Verdict::Up));
        let note = annotation_feedback(json!({"name": "note", "span_id": "051581bf3cb55c13",
            "result": {"explanation": "look at the pool"}}))
        .unwrap();
        assert_eq!(note.verdict, Some(Verdict::NotQuite));
    }

    #[test]
    fn bad_annotations_name_the_phoenix_field() {
        let empty =
            annotation_feedback(json!({"name": "x", "span_id": "051581bf3cb55c13", "result": {}}))
                .unwrap_err();
        assert!(empty.starts_with("result:"), "{empty}");
        let label = annotation_feedback(
            json!({"name": "x", "span_id": "051581bf3cb55c13", "result": {"label": "meh"}}),
        )
        .unwrap_err();
        assert!(label.starts_with("result.label:"), "{label}");
        let span = annotation_feedback(
            json!({"name": "x", "span_id": "nope", "result": {"label": "good"}}),
        )
        .unwrap_err();
        assert!(span.starts_with("span_id:"), "{span}");
    }
}
