//! Langfuse's public API, as far as feedback goes: `POST /api/public/scores` (a JSON array of
//! scores, 202 or 207 with per-score errors; a single score object is also taken), the legacy
//! `POST /api/public/ingestion` with `score-create` events, `GET /api/public/projects` for the
//! SDK's `auth_check()`, and `POST /api/public/otel/v1/traces` (the SDK's span exporter, served by
//! the OTLP handler). Basic auth `public_key:secret_key`: the secret key is an evalmint key.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use evalmint_model::{FeedbackOrigin, Scope, ValidFeedback, Verdict};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Judgement, hex_id, is_retryable, read_label, read_number, submit_all, user_in};
use crate::AppState;
use crate::auth::Caller;
use crate::body::read_json;
use crate::error::{ApiError, ErrorShape};

/// Langfuse's own limit on a score batch (the Next.js body limit).
const MAX_SCORES_BYTES: usize = 1024 * 1024;
/// Legacy ingestion batches carried traces too, so they were allowed to be larger.
const MAX_INGESTION_BYTES: usize = 4 * 1024 * 1024;

const FIELD_NAMES: &[(&str, &str)] = &[
    ("investigation_id", "traceId"),
    ("span_id", "observationId"),
    ("verdict", "value"),
    ("rating", "value"),
    ("correction", "value"),
    ("idempotency_key", "id"),
];

/// A score as Langfuse clients send it; fields evalmint has no use for (`configId`, `queueId`,
/// `source`, `timestamp`, …) are accepted and ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Score {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    trace_id: Option<String>,
    #[serde(default)]
    observation_id: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    dataset_run_id: Option<String>,
    name: String,
    value: Value,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    data_type: Option<String>,
    #[serde(default)]
    environment: Option<String>,
}

fn score_feedback(raw: Value) -> Result<ValidFeedback, String> {
    let score: Score = serde_json::from_value(raw).map_err(|e| e.to_string())?;
    if score.trace_id.is_none() && score.observation_id.is_none() {
        let target = if score.session_id.is_some() {
            "a session"
        } else if score.dataset_run_id.is_some() {
            "a dataset run"
        } else {
            "nothing"
        };
        return Err(format!(
            "traceId: a score must name its trace (or observation); this one names {target}"
        ));
    }
    let data_type = match score.data_type.as_deref() {
        Some(t) => t.to_ascii_uppercase(),
        None => match &score.value {
            Value::String(_) => "CATEGORICAL".to_owned(),
            Value::Bool(_) => "BOOLEAN".to_owned(),
            _ => "NUMERIC".to_owned(),
        },
    };
    let mut judgement = Judgement {
        trace_id: score.trace_id.as_deref().map(hex_id),
        span_id: score.observation_id.as_deref().map(hex_id),
        comment: score.comment,
        idempotency_key: score.id.as_ref().map(|id| format!("langfuse:{id}")),
        ..Judgement::default()
    };
    let value_error = |message: String| format!("value: {message}");
    match (data_type.as_str(), &score.value) {
        ("NUMERIC", value) => {
            let number = value
                .as_f64()
                .ok_or_else(|| value_error("a NUMERIC score's value must be a number".into()))?;
            (judgement.verdict, judgement.rating) =
                read_number(number, &score.name).map_err(value_error)?;
        }
        ("BOOLEAN", value) => {
            judgement.verdict = Some(match value {
                Value::Bool(true) => Verdict::Up,
                Value::Bool(false) => Verdict::Down,
                v if v.as_f64() == Some(1.0) => Verdict::Up,
                v if v.as_f64() == Some(0.0) => Verdict::Down,
                _ => return Err(value_error("a BOOLEAN score's value must be 1 or 0".into())),
            });
        }
        ("CATEGORICAL", Value::String(label)) => {
            judgement.verdict = Some(read_label(label).map_err(value_error)?);
        }
        ("CORRECTION" | "TEXT", Value::String(text)) => {
            // A correction says the answer needed correcting; the pipeline reads its text.
            judgement.verdict = Some(Verdict::NotQuite);
            judgement.correction = Some(text.clone());
        }
        ("CATEGORICAL" | "CORRECTION" | "TEXT", _) => {
            return Err(value_error(format!(
                "a {data_type} score's value must be a string"
            )));
        }
        (other, _) => {
            return Err(format!(
                "dataType: {other:?} is not one of NUMERIC, BOOLEAN, CATEGORICAL, CORRECTION, TEXT"
            ));
        }
    }
    let mut langfuse = Map::new();
    langfuse.insert("name".into(), Value::String(score.name));
    langfuse.insert("data_type".into(), Value::String(data_type));
    if let Some(id) = score.id {
        langfuse.insert("score_id".into(), Value::String(id));
    }
    if let Some(environment) = score.environment {
        langfuse.insert("environment".into(), Value::String(environment));
    }
    if let Some(Value::Object(metadata)) = score.metadata {
        judgement.user_id = user_in(&metadata);
        langfuse.insert("metadata".into(), Value::Object(metadata));
    }
    judgement
        .metadata
        .insert("langfuse".into(), Value::Object(langfuse));
    judgement.into_valid(FeedbackOrigin::Langfuse, FIELD_NAMES)
}

/// `POST /api/public/scores`.
#[utoipa::path(
    post,
    path = "/api/public/scores",
    tag = "langfuse",
    summary = "Langfuse: a batch of scores",
    request_body(content = Vec<Object>, content_type = "application/json", description = "Langfuse score objects"),
    responses(
        (status = 202, description = "every score stored", body = Object),
        (status = 200, description = "a single score object stored", body = Object),
        (status = 207, description = "some items were rejected; each is listed with its reason", body = Object),
        (status = 400, description = "invalid request: the JSON error body names each bad field", body = Object),
        (status = 401, description = "missing or unknown API key", body = Object),
        (status = 403, description = "the key lacks the scope", body = Object),
        (status = 409, description = "conflict", body = Object),
        (status = 413, description = "body larger than the limit", body = Object),
        (status = 415, description = "wrong content type", body = Object),
        (status = 429, description = "saturated; retry after Retry-After seconds", body = Object)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn scores(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    scores_inner(&state, caller, &headers, body)
        .await
        .unwrap_or_else(|e| e.shaped(ErrorShape::Langfuse))
}

async fn scores_inner(
    state: &AppState,
    caller: Result<Caller, ApiError>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = caller?;
    caller.require(Scope::Feedback)?;
    let limit = MAX_SCORES_BYTES.min(state.config.max_body_bytes);
    let request: Value = read_json(state, headers, body, limit).await?;
    match request {
        Value::Array(items) => {
            let (accepted, errors) = store_scores(state, &caller, items).await?;
            if errors.is_empty() {
                return Ok(
                    (StatusCode::ACCEPTED, Json(json!({ "message": "Accepted" }))).into_response(),
                );
            }
            let errors: Vec<Value> = errors
                .into_iter()
                .map(|(index, message)| json!({ "message": format!("scores[{index}]: {message}") }))
                .collect();
            Ok((
                StatusCode::MULTI_STATUS,
                Json(json!({ "accepted": accepted, "rejected": errors.len(), "errors": errors })),
            )
                .into_response())
        }
        Value::Object(_) => {
            let valid = score_feedback(request).map_err(ApiError::invalid)?;
            let score_id = valid
                .metadata
                .get("langfuse")
                .and_then(|l| l.get("score_id"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let receipt = submit_all(state, &caller, vec![valid])
                .await
                .pop()
                .unwrap_or_else(|| Err(ApiError::Internal("no write result".into())))?;
            let id = score_id.unwrap_or_else(|| receipt.feedback().id.to_string());
            Ok(Json(json!({ "id": id })).into_response())
        }
        _ => Err(ApiError::invalid(
            "the body must be a JSON array of scores (or one score object)",
        )),
    }
}

/// Stores the valid scores; returns how many were stored and each rejected score's index and
/// reason. A retryable store failure fails the whole request instead.
async fn store_scores(
    state: &AppState,
    caller: &Caller,
    items: Vec<Value>,
) -> Result<(usize, Vec<(usize, String)>), ApiError> {
    let mut errors = Vec::new();
    let mut valid = Vec::new();
    let mut positions = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match score_feedback(item) {
            Ok(feedback) => {
                valid.push(feedback);
                positions.push(index);
            }
            Err(message) => errors.push((index, message)),
        }
    }
    let mut accepted = 0;
    for (index, outcome) in positions
        .into_iter()
        .zip(submit_all(state, caller, valid).await)
    {
        match outcome {
            Ok(_) => accepted += 1,
            Err(e) if is_retryable(&e) => return Err(e),
            Err(e) => errors.push((index, e.to_string())),
        }
    }
    errors.sort_by_key(|(index, _)| *index);
    Ok((accepted, errors))
}

#[derive(Debug, Deserialize)]
struct IngestionRequest {
    batch: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct IngestionEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    body: Value,
}

/// `POST /api/public/ingestion`: the legacy batch endpoint. Only `score-create` events are
/// feedback; other events (traces, observations) are answered as errors pointing at the OTLP
/// endpoint, so nothing is silently dropped. Always 207, with per-event results.
#[utoipa::path(
    post,
    path = "/api/public/ingestion",
    tag = "langfuse",
    summary = "Langfuse (legacy): score-create events",
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 207, description = "per-event results", body = Object),
        (status = 400, description = "invalid request: the JSON error body names each bad field", body = Object),
        (status = 401, description = "missing or unknown API key", body = Object),
        (status = 403, description = "the key lacks the scope", body = Object),
        (status = 413, description = "body larger than the limit", body = Object),
        (status = 415, description = "wrong content type", body = Object),
        (status = 429, description = "saturated; retry after Retry-After seconds", body = Object)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn ingestion(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    ingestion_inner(&state, caller, &headers, body)
        .await
        .unwrap_or_else(|e| e.shaped(ErrorShape::Langfuse))
}

async fn ingestion_inner(
    state: &AppState,
    caller: Result<Caller, ApiError>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = caller?;
    caller.require(Scope::Feedback)?;
    let limit = MAX_INGESTION_BYTES.min(state.config.max_body_bytes);
    let request: IngestionRequest = read_json(state, headers, body, limit).await?;
    let mut successes = Vec::new();
    let mut errors = Vec::new();
    let mut scores = Vec::new();
    let mut score_ids = Vec::new();
    for (index, raw) in request.batch.into_iter().enumerate() {
        let event: IngestionEvent = match serde_json::from_value(raw) {
            Ok(event) => event,
            Err(e) => {
                errors.push(json!({ "id": format!("batch[{index}]"), "status": 400,
                    "message": format!("batch[{index}]: {e}"), "error": "invalid_request" }));
                continue;
            }
        };
        if event.kind != "score-create" {
            errors.push(json!({ "id": event.id, "status": 400,
                "message": format!("event type {:?} is not taken here: evalmint reads scores from this endpoint and traces through OTLP (/api/public/otel/v1/traces)", event.kind),
                "error": "unsupported_event" }));
            continue;
        }
        match score_feedback(event.body) {
            Ok(valid) => {
                scores.push(valid);
                score_ids.push(event.id);
            }
            Err(message) => errors.push(json!({ "id": event.id, "status": 400,
                "message": message, "error": "invalid_request" })),
        }
    }
    for (id, outcome) in score_ids
        .into_iter()
        .zip(submit_all(state, &caller, scores).await)
    {
        match outcome {
            Ok(_) => successes.push(json!({ "id": id, "status": 201 })),
            Err(e) if is_retryable(&e) => return Err(e),
            Err(e) => errors.push(json!({ "id": id, "status": e.status().as_u16(),
                "message": e.to_string(), "error": e.code() })),
        }
    }
    Ok((
        StatusCode::MULTI_STATUS,
        Json(json!({ "successes": successes, "errors": errors })),
    )
        .into_response())
}

/// `POST /api/public/otel/v1/traces`: the Langfuse SDK's span exporter; the OTLP handler.
#[utoipa::path(
    post,
    path = "/api/public/otel/v1/traces",
    tag = "langfuse",
    summary = "Langfuse: the SDK's span export (OTLP/HTTP, as /v1/traces)",
    request_body(content = Object, content_type = "application/json", description = "an OTLP ExportTraceServiceRequest; application/x-protobuf is also taken"),
    responses(
        (status = 200, description = "stored", body = Object),
        (status = 400, description = "invalid request", body = Object),
        (status = 401, description = "missing or unknown API key", body = Object),
        (status = 403, description = "the key lacks the scope", body = Object),
        (status = 413, description = "body larger than the limit", body = Object),
        (status = 415, description = "wrong content type", body = Object),
        (status = 429, description = "saturated; retry after Retry-After seconds", body = Object)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn otel_traces(
    state: State<AppState>,
    caller: Result<Caller, ApiError>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    crate::routes::otlp::export(state, caller, headers, body).await
}

/// `GET /api/public/projects`: the key's tenant as Langfuse's one project.
#[utoipa::path(
    get,
    path = "/api/public/projects",
    tag = "langfuse",
    summary = "Langfuse: the key's project (auth_check)",
    responses(
        (status = 200, description = "the tenant as the one project", body = Object),
        (status = 401, description = "missing or unknown API key", body = Object)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn projects(caller: Result<Caller, ApiError>) -> Response {
    match caller {
        Ok(caller) => {
            let tenant = caller.tenant().as_str();
            Json(json!({ "data": [{
                "id": tenant,
                "name": tenant,
                "organization": { "id": tenant, "name": tenant },
                "metadata": {},
            }] }))
            .into_response()
        }
        Err(e) => e.shaped(ErrorShape::Langfuse),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_map_by_data_type() {
        let trace = "5b8efff798038103d269b633813fc60c";
        let boolean = score_feedback(
            json!({"name": "helpful", "value": 0, "dataType": "BOOLEAN", "traceId": trace}),
        )
        .unwrap();
        assert_eq!(boolean.verdict, Some(Verdict::Down));
        let categorical = score_feedback(
            json!({"name": "verdict", "value": "thumbs_up", "traceId": trace, "configId": "x"}),
        )
        .unwrap();
        assert_eq!(categorical.verdict, Some(Verdict::Up));
        let correction = score_feedback(
            json!({"id": "s1", "name": "fix", "value": "the db pool", "dataType": "CORRECTION",
            "traceId": trace, "observationId": "051581bf3cb55c13"}),
        )
        .unwrap();
        assert_eq!(correction.correction.as_deref(), Some("the db pool"));
        assert_eq!(correction.verdict, Some(Verdict::NotQuite));
        assert_eq!(correction.span_id.unwrap().to_hex(), "051581bf3cb55c13");
        assert_eq!(correction.idempotency_key.as_deref(), Some("langfuse:s1"));
        let rating =
            score_feedback(json!({"name": "stars", "value": 4, "traceId": trace})).unwrap();
        assert_eq!(rating.rating, Some(4));
    }

    #[test]
    fn bad_scores_name_the_langfuse_field() {
        let trace = "5b8efff798038103d269b633813fc60c";
        let no_target =
            score_feedback(json!({"name": "x", "value": 1, "sessionId": "s"})).unwrap_err();
        assert!(no_target.contains("names a session"), "{no_target}");
        let label =
            score_feedback(json!({"name": "x", "value": "meh", "traceId": trace})).unwrap_err();
        assert!(label.starts_with("value:"), "{label}");
        let kind = score_feedback(
            json!({"name": "x", "value": 1, "dataType": "VECTOR", "traceId": trace}),
        )
        .unwrap_err();
        assert!(kind.starts_with("dataType:"), "{kind}");
        let trace_id =
            score_feedback(json!({"name": "x", "value": 1, "traceId": "abc"})).unwrap_err();
        assert!(trace_id.starts_with("traceId:"), "{trace_id}");
        let missing = score_feedback(json!({"value": 1, "traceId": trace})).unwrap_err();
        assert!(missing.contains("name"), "{missing}");
    }
}
