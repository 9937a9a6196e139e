//! Native feedback: `POST /api/v1/feedback` acknowledges only after a durable commit;
//! `GET /api/v1/feedback/{id}` reads it back; `DELETE /api/v1/feedback?user_id=…` erases one
//! user's feedback and the labels drawn from it.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use evalmint_model::{FeedbackId, FeedbackOrigin, FeedbackSubmission, Scope};
use evalmint_store::FeedbackReceipt;

use super::{PathId, timed_write};
use crate::AppState;
use crate::auth::Caller;
use crate::body::read_json;
use crate::error::ApiError;

/// Feedback is small; anything bigger than this is a client bug.
const MAX_FEEDBACK_BYTES: usize = 256 * 1024;

#[utoipa::path(
    post,
    path = "/api/v1/feedback",
    tag = "feedback",
    summary = "Submit feedback on an investigation",
    request_body(content = crate::schemas::FeedbackSubmission, content_type = "application/json"),
    responses(
        (status = 201, description = "stored", body = crate::schemas::Feedback),
        (status = 200, description = "a retry with the same idempotency key", body = crate::schemas::Feedback),
        (status = 400, description = "invalid request: the JSON error body names each bad field", body = crate::schemas::ErrorBody),
        (status = 401, description = "missing or unknown API key", body = crate::schemas::ErrorBody),
        (status = 403, description = "the key lacks the scope", body = crate::schemas::ErrorBody),
        (status = 409, description = "conflict", body = crate::schemas::ErrorBody),
        (status = 413, description = "body larger than the limit", body = crate::schemas::ErrorBody),
        (status = 415, description = "wrong content type", body = crate::schemas::ErrorBody),
        (status = 429, description = "saturated; retry after Retry-After seconds", body = crate::schemas::ErrorBody)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Feedback)?;
    let limit = MAX_FEEDBACK_BYTES.min(state.config.max_body_bytes);
    let submission: FeedbackSubmission = read_json(&state, &headers, body, limit).await?;
    let origin = match headers
        .get("x-evalmint-origin")
        .and_then(|v| v.to_str().ok())
    {
        Some("widget") => FeedbackOrigin::Widget,
        _ => FeedbackOrigin::Api,
    };
    let valid = submission
        .validate(origin)
        .map_err(ApiError::invalid_fields)?;
    let receipt = timed_write(
        &state,
        "feedback",
        state.store.submit_feedback(caller.tenant(), valid),
    )
    .await?;
    let status = match &receipt {
        FeedbackReceipt::Created(_) => {
            state.metrics.feedback(origin, 1);
            StatusCode::CREATED
        }
        FeedbackReceipt::Replayed(_) => StatusCode::OK,
    };
    let feedback = receipt.feedback();
    Ok((
        status,
        [(
            header::LOCATION,
            format!("/api/v1/feedback/{}", feedback.id),
        )],
        Json(feedback.clone()),
    ))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EraseParams {
    user_id: Option<String>,
}

/// Erases every feedback of one user in the caller's tenant (admin only) and answers with what
/// was erased; the request is kept in the erasure audit log.
#[utoipa::path(
    delete,
    path = "/api/v1/feedback",
    tag = "feedback",
    summary = "Erase one user's feedback and the labels drawn from it",
    params(("user_id" = String, Query, description = "the user whose feedback is erased")),
    responses(
        (status = 200, description = "what was erased", body = Object),
        (status = 400, description = "invalid request: the JSON error body names each bad field", body = crate::schemas::ErrorBody),
        (status = 401, description = "missing or unknown API key", body = crate::schemas::ErrorBody),
        (status = 403, description = "the key lacks the scope", body = crate::schemas::ErrorBody)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn erase(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<EraseParams>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Admin)?;
    let Query(params) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let user_id = params
        .user_id
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("user_id is required"))?;
    let erasure = timed_write(
        &state,
        "erase",
        state
            .labels
            .erase_user_feedback(caller.tenant(), &user_id, &caller.key.id),
    )
    .await?;
    Ok(Json(erasure))
}

#[utoipa::path(
    get,
    path = "/api/v1/feedback/{id}",
    tag = "feedback",
    summary = "One feedback with its label state",
    params(("id" = String, Path, description = "the object's id")),
    responses(
        (status = 200, description = "the feedback", body = crate::schemas::FeedbackWithLabel),
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
    let id: FeedbackId = id
        .parse()
        .map_err(|_| ApiError::invalid("feedback id must be a UUID"))?;
    let feedback = state
        .store
        .feedback(caller.tenant(), id)
        .await?
        .ok_or(ApiError::NotFound("feedback"))?;
    let label = state
        .labels
        .feedback_label_state(caller.tenant(), id)
        .await?;
    let mut body =
        serde_json::to_value(&feedback).map_err(|e| ApiError::Internal(e.to_string()))?;
    body["label"] = serde_json::to_value(label).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(body))
}
