//! Evaluation runs: `GET /api/v1/runs` (newest first, summaries) and `GET /api/v1/runs/{id}`
//! (the whole run with its summary). Another tenant's run is 404 like a missing one.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use evalmint_model::Scope;
use serde::Deserialize;
use serde_json::json;

use super::PathId;
use super::labels::{limit, params};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    #[serde(default)]
    limit: Option<usize>,
}

#[utoipa::path(
    get,
    path = "/api/v1/runs",
    tag = "runs",
    summary = "Evaluation runs, newest first",
    params(("limit" = Option<u32>, Query, description = "at most this many, 1-1000")),
    responses(
        (status = 200, description = "the runs", body = crate::schemas::RunList),
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
    let runs = state
        .labels
        .eval_runs(caller.tenant(), limit(params.limit)?)
        .await?;
    let runs: Vec<_> = runs
        .iter()
        .map(|run| {
            let summary = evalmint_eval::report::summarise(run, None);
            json!({
                "id": run.id,
                "agent": run.agent,
                "label_source": run.label_source,
                "k": run.k,
                "status": run.status,
                "started_at": run.started_at,
                "finished_at": run.finished_at,
                "labels": summary.labels,
                "pass_rate": summary.overall().rate,
            })
        })
        .collect();
    Ok(Json(json!({ "runs": runs })))
}

#[utoipa::path(
    get,
    path = "/api/v1/runs/{id}",
    tag = "runs",
    summary = "One run with every attempt and its summary",
    params(("id" = String, Path, description = "the object's id")),
    responses(
        (status = 200, description = "the run", body = crate::schemas::RunDetail),
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
    let run = state
        .labels
        .eval_run(caller.tenant(), &id)
        .await?
        .ok_or(ApiError::NotFound("run"))?;
    let summary = evalmint_eval::report::summarise(&run, None);
    Ok(Json(json!({ "run": run, "summary": summary })))
}
