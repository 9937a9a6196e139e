//! Evaluation runs: `GET /api/v1/runs` (newest first, summaries) and `GET /api/v1/runs/{id}`
//! (the whole run with its summary, compared with the baseline the run remembers), and a label's
//! history across runs, `GET /api/v1/labels/{id}/runs`. Another tenant's run or label is 404
//! like a missing one.

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
    summary = "One run with every attempt and its summary, compared with its stored baseline",
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
    let baseline =
        evalmint_eval::run::stored_baseline(&*state.labels, caller.tenant(), &run).await?;
    let summary = evalmint_eval::report::summarise(&run, baseline.as_ref());
    Ok(Json(json!({ "run": run, "summary": summary })))
}

/// A label history's default length, and the most a request may ask for.
const HISTORY_DEFAULT: usize = 50;
const HISTORY_MAX: usize = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryParams {
    /// Kept as text so a bad value is a 422 naming the field.
    #[serde(default)]
    limit: Option<String>,
}

fn history_limit(requested: Option<&str>) -> Result<usize, ApiError> {
    let Some(text) = requested else {
        return Ok(HISTORY_DEFAULT);
    };
    match text.parse::<usize>() {
        Ok(n @ 1..=HISTORY_MAX) => Ok(n),
        _ => Err(ApiError::unprocessable(vec![evalmint_model::FieldError {
            field: "limit",
            message: format!("{text:?} is not a whole number in 1-{HISTORY_MAX}"),
        }])),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/labels/{id}/runs",
    tag = "runs",
    summary = "A label's history: every run that graded it, newest first",
    params(
        ("id" = String, Path, description = "lbl-<trace id>, a candidate id or the trace id"),
        ("limit" = Option<u32>, Query, description = "at most this many runs, 1-500 (default 50)")
    ),
    responses(
        (status = 200, description = "the label's runs", body = crate::schemas::LabelRunHistory),
        (status = 400, description = "invalid request: the JSON error body names each bad field", body = crate::schemas::ErrorBody),
        (status = 401, description = "missing or unknown API key", body = crate::schemas::ErrorBody),
        (status = 403, description = "the key lacks the scope", body = crate::schemas::ErrorBody),
        (status = 404, description = "no such object in the caller's tenant", body = crate::schemas::ErrorBody),
        (status = 422, description = "a bad limit", body = crate::schemas::ErrorBody)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn history(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    query: Result<Query<HistoryParams>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Review)?;
    let params = params(query)?;
    let limit = history_limit(params.limit.as_deref())?;
    let (label_id, runs) = label_history(&state, caller.tenant(), &id, limit).await?;
    let flaky = evalmint_model::is_flaky(&runs);
    let runs: Vec<_> = runs
        .iter()
        .map(|run| {
            json!({
                "run_id": run.run_id,
                "agent": run.agent,
                "label_source": run.label_source,
                "started_at": run.started_at,
                "label_version": run.label_version,
                "passed": run.passed(),
                "attempts": run.attempts,
            })
        })
        .collect();
    Ok(Json(
        json!({ "label_id": label_id, "flaky": flaky, "runs": runs }),
    ))
}

/// The history of label `id` (a label id, candidate id or trace id) in `tenant`, newest first;
/// 404 when the tenant has no such label. The API and the web UI share it.
pub(crate) async fn label_history(
    state: &AppState,
    tenant: &evalmint_model::TenantId,
    id: &str,
    limit: usize,
) -> Result<(String, Vec<evalmint_model::LabelRun>), ApiError> {
    let trace = super::review::trace_of(id).ok_or(ApiError::NotFound("label"))?;
    let label_id = evalmint_model::label_id(trace);
    let runs = state.labels.label_history(tenant, &label_id, limit).await?;
    // A label that no run graded yet still has its versions; one with neither is unknown.
    if runs.is_empty() && state.labels.label_versions(tenant, trace).await?.is_empty() {
        return Err(ApiError::NotFound("label"));
    }
    Ok((label_id, runs))
}
