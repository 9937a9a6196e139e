//! Native feedback: `POST /api/v1/feedback` acknowledges only after a durable commit;
//! `GET /api/v1/feedback/{id}` reads it back; `DELETE /api/v1/feedback?user_id=…` erases one
//! user's feedback and the labels drawn from it, `DELETE /api/v1/feedback/{id}` one feedback.

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
        (status = 400, description = "malformed JSON", body = crate::schemas::ErrorBody),
        (status = 401, description = "missing or unknown API key", body = crate::schemas::ErrorBody),
        (status = 403, description = "the key lacks the scope", body = crate::schemas::ErrorBody),
        (status = 409, description = "the idempotency key was used for different feedback", body = crate::schemas::ErrorBody),
        (status = 410, description = "the idempotency key names feedback that was erased", body = crate::schemas::ErrorBody),
        (status = 413, description = "body larger than the limit", body = crate::schemas::ErrorBody),
        (status = 415, description = "wrong content type", body = crate::schemas::ErrorBody),
        (status = 422, description = "well-formed JSON with invalid fields: the error body names each problem in `fields`", body = crate::schemas::ErrorBody),
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
    // Malformed JSON is a 400; a well-formed document whose fields are wrong is a 422 naming
    // every problem.
    let document: serde_json::Value = read_json(&state, &headers, body, limit).await?;
    let origin = match headers
        .get("x-evalmint-origin")
        .and_then(|v| v.to_str().ok())
    {
        Some("widget") => FeedbackOrigin::Widget,
        _ => FeedbackOrigin::Api,
    };
    let valid =
        FeedbackSubmission::validate_json(document, origin).map_err(ApiError::unprocessable)?;
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

/// Erases one feedback by its id (admin only): feedback sent without a user id can be erased
/// only this way. Same consequences and audit record as erasing a user.
#[utoipa::path(
    delete,
    path = "/api/v1/feedback/{id}",
    tag = "feedback",
    summary = "Erase one feedback and the labels drawn from it",
    params(("id" = String, Path, description = "the feedback's id")),
    responses(
        (status = 200, description = "what was erased", body = Object),
        (status = 400, description = "the id is not a feedback id", body = Object),
        (status = 401, description = "missing or unknown API key", body = Object),
        (status = 403, description = "the key lacks the scope", body = Object),
        (status = 404, description = "no such feedback in the caller's tenant (or already erased)", body = Object)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn erase_one(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Admin)?;
    let id = feedback_id(&id)?;
    let erasure = timed_write(
        &state,
        "erase",
        state
            .labels
            .erase_feedback(caller.tenant(), id, &caller.key.id),
    )
    .await?
    .ok_or(ApiError::NotFound("feedback"))?;
    Ok(Json(erasure))
}

fn feedback_id(text: &str) -> Result<FeedbackId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::invalid("feedback id must be a UUID"))
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
    let id = feedback_id(&id)?;
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
