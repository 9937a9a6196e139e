//! Candidate labels: `GET /api/v1/labels` (the admitted label set by default, or any route),
//! and `GET /api/v1/labels/{id}`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use evalmint_model::{Route, Scope};
use evalmint_store::CandidateQuery;
use serde::Deserialize;

use super::PathId;
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    /// `admit` (default), `review`, `insufficient` or `all`.
    #[serde(default)]
    route: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

/// Query-string problems as JSON errors, like every other bad input.
pub(crate) fn params<T>(parsed: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    parsed
        .map(|Query(params)| params)
        .map_err(|e| ApiError::invalid(e.body_text()))
}

pub(crate) fn limit(requested: Option<usize>) -> Result<usize, ApiError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n @ 1..=MAX_LIMIT) => Ok(n),
        Some(n) => Err(ApiError::invalid(format!(
            "limit {n} is outside 1-{MAX_LIMIT}"
        ))),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/labels",
    tag = "labels",
    summary = "Candidate labels (admitted by default)",
    params(("route" = Option<String>, Query, description = "admit (default), review, insufficient or all"), ("limit" = Option<u32>, Query, description = "at most this many, 1-1000")),
    responses(
        (status = 200, description = "the labels", body = crate::schemas::CandidateList),
        (status = 400, description = "invalid request: the JSON error body names each bad field", body = crate::schemas::ErrorBody),
        (status = 401, description = "missing or unknown API key", body = crate::schemas::ErrorBody),
        (status = 403, description = "the key lacks the scope", body = crate::schemas::ErrorBody)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListParams>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Review)?;
    let params = params(query)?;
    let routes = match params.route.as_deref() {
        None => vec![Route::Admit],
        Some("all") => Vec::new(),
        Some(name) => vec![Route::parse(name).ok_or_else(|| {
            ApiError::invalid(format!(
                "route {name:?} is not one of admit, review, insufficient, all"
            ))
        })?],
    };
    let labels = state
        .labels
        .candidates(
            caller.tenant(),
            CandidateQuery {
                routes,
                audit_only: false,
                limit: limit(params.limit)?,
            },
        )
        .await?;
    Ok(Json(serde_json::json!({ "labels": labels })))
}

#[utoipa::path(
    get,
    path = "/api/v1/labels/{id}",
    tag = "labels",
    summary = "One candidate label with its versions",
    params(("id" = String, Path, description = "the object's id")),
    responses(
        (status = 200, description = "the label", body = crate::schemas::Candidate),
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
    let label = state
        .labels
        .candidate(caller.tenant(), &id)
        .await?
        .ok_or(ApiError::NotFound("label"))?;
    Ok(Json(label))
}
