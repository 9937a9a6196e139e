//! Human review: the queue (`GET /api/v1/review`, with filters), one item with its label's
//! history (`GET /api/v1/review/{candidate_id}`), decisions
//! (`POST /api/v1/review/{candidate_id}/decision`), a label's versions with their diffs
//! (`GET /api/v1/labels/{id}/versions`) and the calibration report (`GET /api/v1/calibration`).
//! The web UI calls the same functions as these handlers.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use evalmint_model::calibration::{Calibration, calibrate};
use evalmint_model::{
    CandidateLabel, DecisionRequest, LabelVersion, Route, Scope, Segment, TenantId, TraceId,
};
use evalmint_store::{DecisionOutcome, ReviewQuery};
use serde::{Deserialize, Serialize};

use super::labels::{limit, params};
use super::{PathId, timed_write};
use crate::AppState;
use crate::auth::Caller;
use crate::body::read_request;
use crate::error::ApiError;

const MAX_DECISION_BYTES: usize = 256 * 1024;

/// The queue's filters, as query parameters (API) or form fields (UI).
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueueParams {
    /// `review`, `insufficient`, `audit` or empty for all.
    #[serde(default)]
    pub route: Option<String>,
    /// `facet=value`.
    #[serde(default)]
    pub segment: Option<String>,
    #[serde(default)]
    pub min_score: Option<f64>,
    #[serde(default)]
    pub max_score: Option<f64>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub offset: Option<usize>,
}

impl QueueParams {
    pub(crate) fn query(&self) -> Result<ReviewQuery, ApiError> {
        let routes = match self.route.as_deref().unwrap_or("") {
            "" | "all" => Vec::new(),
            "audit" => vec![Route::Admit],
            name => vec![
                Route::parse(name)
                    .filter(|r| *r != Route::Admit)
                    .ok_or_else(|| {
                        ApiError::invalid(format!(
                            "route {name:?} is not one of review, insufficient, audit, all"
                        ))
                    })?,
            ],
        };
        let segment = match self.segment.as_deref().filter(|s| !s.is_empty()) {
            Some(text) => {
                Some(evalmint_model::release::parse_filter(text).map_err(ApiError::invalid)?)
            }
            None => None,
        };
        for score in [self.min_score, self.max_score].into_iter().flatten() {
            if !(0.0..=1.0).contains(&score) {
                return Err(ApiError::invalid(format!("score {score} is outside 0-1")));
            }
        }
        Ok(ReviewQuery {
            routes,
            segment,
            min_score: self.min_score,
            max_score: self.max_score,
            limit: limit(self.limit)?,
            offset: self.offset.unwrap_or(0),
        })
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/review",
    tag = "review",
    summary = "The review queue: candidates to review, insufficient ones and the audit sample",
    params(("route" = Option<String>, Query, description = "review, insufficient, audit or all (default)"), ("segment" = Option<String>, Query, description = "facet=value"), ("min_score" = Option<f64>, Query, description = "lowest score at least this, 0-1"), ("max_score" = Option<f64>, Query, description = "lowest score at most this, 0-1"), ("limit" = Option<u32>, Query, description = "at most this many, 1-1000"), ("offset" = Option<u32>, Query, description = "skip this many")),
    responses(
        (status = 200, description = "one page of the queue, newest first", body = crate::schemas::ReviewQueue),
        (status = 400, description = "invalid request: the JSON error body names each bad field", body = crate::schemas::ErrorBody),
        (status = 401, description = "missing or unknown API key", body = crate::schemas::ErrorBody),
        (status = 403, description = "the key lacks the scope", body = crate::schemas::ErrorBody)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn queue(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<QueueParams>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Review)?;
    let query = params(query)?.query()?;
    let (queue, total) = state.labels.review_queue(caller.tenant(), query).await?;
    Ok(Json(serde_json::json!({ "queue": queue, "total": total })))
}

/// A label version with what changed from the one before it.
#[derive(Debug, Serialize)]
pub(crate) struct VersionWithDiff {
    #[serde(flatten)]
    pub version: LabelVersion,
    pub changes: Vec<evalmint_model::FieldChange>,
}

pub(crate) fn with_diffs(versions: Vec<LabelVersion>) -> Vec<VersionWithDiff> {
    let mut out: Vec<VersionWithDiff> = Vec::with_capacity(versions.len());
    for version in versions {
        let changes = version.diff(out.last().map(|v| &v.version));
        out.push(VersionWithDiff { version, changes });
    }
    out
}

/// One review item: the candidate, the label's history and the version a decision must name.
#[derive(Debug, Serialize)]
pub(crate) struct ReviewItem {
    pub candidate: CandidateLabel,
    /// The label version a decision is made on (0: none yet).
    pub version: u32,
    pub versions: Vec<VersionWithDiff>,
}

pub(crate) async fn item(
    state: &AppState,
    tenant: &TenantId,
    candidate_id: &str,
) -> Result<ReviewItem, ApiError> {
    let candidate = state
        .labels
        .candidate(tenant, candidate_id)
        .await?
        .ok_or(ApiError::NotFound("candidate"))?;
    let versions = state
        .labels
        .label_versions(tenant, candidate.investigation_id)
        .await?;
    Ok(ReviewItem {
        version: versions.last().map_or(0, |v| v.version),
        versions: with_diffs(versions),
        candidate,
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/review/{id}",
    tag = "review",
    summary = "One candidate with its label's versions and the version a decision must name",
    params(("id" = String, Path, description = "the object's id")),
    responses(
        (status = 200, description = "the review item", body = crate::schemas::ReviewItem),
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
    Ok(Json(item(&state, caller.tenant(), &id).await?))
}

/// Validates and records one decision; the one path for the API and the UI.
pub(crate) async fn record(
    state: &AppState,
    caller: &Caller,
    candidate_id: &str,
    request: DecisionRequest,
) -> Result<LabelVersion, ApiError> {
    caller.require(Scope::Review)?;
    let now = jiff::Timestamp::now();
    let valid = request
        .validate(&state.config.categories, now)
        .map_err(|fields| {
            // A missing or unknown action or reason is a malformed request; a field whose value
            // the taxonomy or the clock refuses is well-formed but unprocessable.
            if fields.iter().all(|f| f.field.starts_with("ground_truth.")) {
                ApiError::unprocessable(fields)
            } else {
                ApiError::invalid_fields(fields)
            }
        })?;
    let reviewer = caller.key.name.clone();
    let outcome = timed_write(
        state,
        "decision",
        state
            .labels
            .decide(caller.tenant(), candidate_id, &reviewer, valid),
    )
    .await?;
    match outcome {
        DecisionOutcome::Recorded(version) => Ok(*version),
        DecisionOutcome::NotFound => Err(ApiError::NotFound("candidate")),
        DecisionOutcome::Stale {
            current_version,
            current_candidate,
        } => Err(ApiError::Stale {
            current_version,
            current_candidate,
        }),
        DecisionOutcome::Invalid(fields) => Err(ApiError::unprocessable(fields)),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/review/{id}/decision",
    tag = "review",
    summary = "Approve, edit or reject a candidate: records the label's next version",
    params(("id" = String, Path, description = "the candidate id")),
    request_body(content = crate::schemas::DecisionRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "the new label version", body = crate::schemas::LabelVersion),
        (status = 400, description = "malformed JSON", body = crate::schemas::ErrorBody),
        (status = 401, description = "missing or unknown API key", body = crate::schemas::ErrorBody),
        (status = 403, description = "the key lacks the scope", body = crate::schemas::ErrorBody),
        (status = 404, description = "no such object in the caller's tenant", body = crate::schemas::ErrorBody),
        (status = 409, description = "stale: the label moved on; the body carries the current version and candidate", body = crate::schemas::ErrorBody),
        (status = 413, description = "body larger than the limit", body = crate::schemas::ErrorBody),
        (status = 415, description = "wrong content type", body = crate::schemas::ErrorBody),
        (status = 422, description = "a field's value is refused: the JSON error body names it", body = crate::schemas::ErrorBody),
        (status = 429, description = "saturated; retry after Retry-After seconds", body = crate::schemas::ErrorBody)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Review)?;
    let limit = MAX_DECISION_BYTES.min(state.config.max_body_bytes);
    let request: DecisionRequest = read_request(&state, &headers, body, limit).await?;
    let version = record(&state, &caller, &id, request).await?;
    Ok((StatusCode::CREATED, Json(version)))
}

/// The investigation a label id names: `lbl-<trace>`, a candidate id `cand-<trace>-v<n>`, or
/// the trace id itself.
pub(crate) fn trace_of(id: &str) -> Option<TraceId> {
    let hex = id
        .strip_prefix("lbl-")
        .or_else(|| {
            id.strip_prefix("cand-")
                .and_then(|rest| rest.rsplit_once("-v").map(|(t, _)| t))
        })
        .unwrap_or(id);
    hex.parse().ok()
}

#[utoipa::path(
    get,
    path = "/api/v1/labels/{id}/versions",
    tag = "review",
    summary = "A label's immutable versions, each with its changes",
    params(("id" = String, Path, description = "lbl-<trace id>, a candidate id or the trace id")),
    responses(
        (status = 200, description = "the history, oldest first", body = crate::schemas::LabelHistory),
        (status = 400, description = "invalid request: the JSON error body names each bad field", body = crate::schemas::ErrorBody),
        (status = 401, description = "missing or unknown API key", body = crate::schemas::ErrorBody),
        (status = 403, description = "the key lacks the scope", body = crate::schemas::ErrorBody),
        (status = 404, description = "no such object in the caller's tenant", body = crate::schemas::ErrorBody)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn versions(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Review)?;
    let trace = trace_of(&id).ok_or(ApiError::NotFound("label"))?;
    let versions = state.labels.label_versions(caller.tenant(), trace).await?;
    if versions.is_empty() {
        return Err(ApiError::NotFound("label"));
    }
    Ok(Json(serde_json::json!({
        "label_id": evalmint_model::label_id(trace),
        "versions": with_diffs(versions),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CalibrationParams {
    #[serde(default)]
    pub target: Option<f64>,
}

pub(crate) async fn report(
    state: &AppState,
    tenant: &TenantId,
    target: Option<f64>,
) -> Result<Calibration, ApiError> {
    let target = target.unwrap_or(0.98);
    if !(0.5..1.0).contains(&target) {
        return Err(ApiError::invalid(format!(
            "target {target} is outside 0.5-1 (exclusive of 1)"
        )));
    }
    let observations = state.labels.calibration_observations(tenant).await?;
    Ok(calibrate(&observations, state.config.thresholds, target))
}

#[utoipa::path(
    get,
    path = "/api/v1/calibration",
    tag = "review",
    summary = "Calibration of the validator against the reviewers' decisions",
    params(("target" = Option<f64>, Query, description = "the target precision, 0.5-1 (default 0.98)")),
    responses(
        (status = 200, description = "the report and the proposed thresholds", body = crate::schemas::CalibrationReport),
        (status = 400, description = "invalid request: the JSON error body names each bad field", body = crate::schemas::ErrorBody),
        (status = 401, description = "missing or unknown API key", body = crate::schemas::ErrorBody),
        (status = 403, description = "the key lacks the scope", body = crate::schemas::ErrorBody)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn calibration(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<CalibrationParams>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Review)?;
    let params = params(query)?;
    let report = report(&state, caller.tenant(), params.target).await?;
    let config = report
        .proposal
        .as_ref()
        .map(|p| p.as_config(report.target_precision));
    Ok(Json(
        serde_json::json!({ "calibration": report, "proposed_config": config }),
    ))
}

/// Segment filters of a release request, parsed.
pub(crate) fn filters(texts: &[String]) -> Result<Vec<Segment>, ApiError> {
    texts
        .iter()
        .map(|t| {
            evalmint_model::release::parse_filter(t).map_err(|message| {
                ApiError::unprocessable(vec![evalmint_model::FieldError {
                    field: "filters",
                    message,
                }])
            })
        })
        .collect()
}
