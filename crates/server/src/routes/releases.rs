//! Releases: `POST/GET /api/v1/releases`, `GET /api/v1/releases/{id}`, the JSONL export
//! (`GET /api/v1/releases/{id}/export`: the manifest on the first line, then one label per line
//! with its snapshot results inline) that `POST /api/v1/releases/import` reads back, and
//! `GET /api/v1/releases/{a}/diff/{b}`.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use evalmint_model::release::Release;
use evalmint_model::{LabelVersion, Scope, TenantId};
use evalmint_store::{ImportError, ReleaseManifest, ReleasedLabel};
use serde::{Deserialize, Serialize};

use super::{PathId, PathParams, timed_write};
use crate::AppState;
use crate::auth::Caller;
use crate::body::{media_type, read_capped, read_request};
use crate::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateRelease {
    pub name: String,
    /// `facet=value`; several on one facet are alternatives.
    #[serde(default)]
    pub filters: Vec<String>,
}

/// Creates (or finds) a release; the one path for the API and the UI.
pub(crate) async fn create_release(
    state: &AppState,
    tenant: &TenantId,
    request: CreateRelease,
) -> Result<(Release, bool), ApiError> {
    let name = request.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::unprocessable(vec![evalmint_model::FieldError {
            field: "name",
            message: "a release has a name of 1-200 bytes".into(),
        }]));
    }
    let filters = super::review::filters(&request.filters)?;
    Ok(timed_write(
        state,
        "release",
        state.labels.create_release(tenant, name, filters),
    )
    .await?)
}

#[utoipa::path(
    post,
    path = "/api/v1/releases",
    tag = "releases",
    summary = "Create a release of the current labels matching the filters (the same selection gives the same id)",
    request_body(content = crate::schemas::CreateRelease, content_type = "application/json"),
    responses(
        (status = 201, description = "created", body = crate::schemas::Release),
        (status = 200, description = "this selection was released before", body = crate::schemas::Release),
        (status = 400, description = "malformed JSON", body = crate::schemas::ErrorBody),
        (status = 401, description = "missing or unknown API key", body = crate::schemas::ErrorBody),
        (status = 403, description = "the key lacks the scope", body = crate::schemas::ErrorBody),
        (status = 413, description = "body larger than the limit", body = crate::schemas::ErrorBody),
        (status = 415, description = "wrong content type", body = crate::schemas::ErrorBody),
        (status = 422, description = "a field's value is refused: the JSON error body names it", body = crate::schemas::ErrorBody),
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
    caller.require(Scope::Review)?;
    let request: CreateRelease = read_request(&state, &headers, body, 64 * 1024).await?;
    let (release, created) = create_release(&state, caller.tenant(), request).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(release)))
}

#[utoipa::path(
    get,
    path = "/api/v1/releases",
    tag = "releases",
    summary = "The tenant's releases",
    responses(
        (status = 200, description = "the releases", body = crate::schemas::ReleaseList),
        (status = 401, description = "missing or unknown API key", body = crate::schemas::ErrorBody),
        (status = 403, description = "the key lacks the scope", body = crate::schemas::ErrorBody)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Review)?;
    let releases = state.labels.releases(caller.tenant()).await?;
    Ok(Json(serde_json::json!({ "releases": releases })))
}

#[utoipa::path(
    get,
    path = "/api/v1/releases/{id}",
    tag = "releases",
    summary = "One release with its segment coverage and feedback bias",
    params(("id" = String, Path, description = "the object's id")),
    responses(
        (status = 200, description = "the release", body = crate::schemas::Release),
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
    let release = state
        .labels
        .release(caller.tenant(), &id)
        .await?
        .ok_or(ApiError::NotFound("release"))?;
    Ok(Json(release))
}

/// One exported label: the version and its frozen results, text when they are UTF-8.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportedLabel {
    label: LabelVersion,
    results: Vec<ExportedResult>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportedResult {
    query_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hex: Option<String>,
}

/// The export: the manifest, then one label per line, each line ending in a newline.
fn encode_export(
    manifest: &ReleaseManifest,
    labels: Vec<ReleasedLabel>,
) -> Result<Vec<u8>, ApiError> {
    let internal = |e: serde_json::Error| ApiError::Internal(e.to_string());
    let mut out = serde_json::to_vec(manifest).map_err(internal)?;
    out.push(b'\n');
    for label in labels {
        let results = label
            .results
            .into_iter()
            .map(|(query_id, bytes)| match String::from_utf8(bytes) {
                Ok(text) => ExportedResult {
                    query_id,
                    text: Some(text),
                    hex: None,
                },
                Err(e) => ExportedResult {
                    query_id,
                    text: None,
                    hex: Some(hex::encode(e.into_bytes())),
                },
            })
            .collect();
        serde_json::to_writer(
            &mut out,
            &ExportedLabel {
                label: label.label,
                results,
            },
        )
        .map_err(internal)?;
        out.push(b'\n');
    }
    Ok(out)
}

fn decode_export(bytes: &[u8]) -> Result<(ReleaseManifest, Vec<ReleasedLabel>), ApiError> {
    let mut lines = bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.is_empty());
    let bad =
        |n: usize, e: &dyn std::fmt::Display| ApiError::invalid(format!("line {}: {e}", n + 1));
    let (n, first) = lines
        .next()
        .ok_or_else(|| ApiError::invalid("an export starts with its manifest line"))?;
    let manifest: ReleaseManifest = serde_json::from_slice(first).map_err(|e| bad(n, &e))?;
    let mut labels = Vec::new();
    for (n, line) in lines {
        let exported: ExportedLabel = serde_json::from_slice(line).map_err(|e| bad(n, &e))?;
        let mut results = Vec::with_capacity(exported.results.len());
        for r in exported.results {
            let bytes = match (r.text, r.hex) {
                (Some(text), None) => text.into_bytes(),
                (None, Some(h)) => hex::decode(h).map_err(|e| bad(n, &e))?,
                _ => return Err(bad(n, &"a result is either text or hex")),
            };
            results.push((r.query_id, bytes));
        }
        labels.push(ReleasedLabel {
            label: exported.label,
            results,
        });
    }
    Ok((manifest, labels))
}

#[utoipa::path(
    get,
    path = "/api/v1/releases/{id}/export",
    tag = "releases",
    summary = "A release as JSONL: the manifest, then one label per line with its snapshot results inline",
    params(("id" = String, Path, description = "the object's id")),
    responses(
        (status = 200, description = "the export", body = String, content_type = "application/x-ndjson"),
        (status = 400, description = "invalid request: the JSON error body names each bad field", body = crate::schemas::ErrorBody),
        (status = 401, description = "missing or unknown API key", body = crate::schemas::ErrorBody),
        (status = 403, description = "the key lacks the scope", body = crate::schemas::ErrorBody),
        (status = 404, description = "no such object in the caller's tenant", body = crate::schemas::ErrorBody)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn export(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Review)?;
    let (manifest, labels) = state
        .labels
        .release_labels(caller.tenant(), &id)
        .await?
        .ok_or(ApiError::NotFound("release"))?;
    let body = encode_export(&manifest, labels)?;
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body))
}

#[utoipa::path(
    post,
    path = "/api/v1/releases/import",
    tag = "releases",
    summary = "Import a release exported by GET /api/v1/releases/{id}/export",
    request_body(content = String, content_type = "application/x-ndjson"),
    responses(
        (status = 201, description = "imported", body = crate::schemas::Release),
        (status = 400, description = "invalid request: the JSON error body names each bad field", body = crate::schemas::ErrorBody),
        (status = 401, description = "missing or unknown API key", body = crate::schemas::ErrorBody),
        (status = 403, description = "the key lacks the scope", body = crate::schemas::ErrorBody),
        (status = 409, description = "conflict", body = crate::schemas::ErrorBody),
        (status = 413, description = "body larger than the limit", body = crate::schemas::ErrorBody),
        (status = 415, description = "wrong content type", body = crate::schemas::ErrorBody),
        (status = 422, description = "a field's value is refused: the JSON error body names it", body = crate::schemas::ErrorBody),
        (status = 429, description = "saturated; retry after Retry-After seconds", body = crate::schemas::ErrorBody)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn import(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Review)?;
    match media_type(&headers).as_deref() {
        Some("application/x-ndjson" | "application/jsonl") => {}
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "expected Content-Type application/x-ndjson, got {}",
                other.unwrap_or("none")
            )));
        }
    }
    let limit = state.config.max_body_bytes;
    let bytes = read_capped(&state, &headers, body, limit).await?.bytes;
    let (manifest, labels) = decode_export(&bytes)?;
    let outcome = timed_write(
        &state,
        "release_import",
        state
            .labels
            .import_release(caller.tenant(), manifest, labels),
    )
    .await?;
    match outcome {
        Ok(release) => Ok((StatusCode::CREATED, Json(release))),
        Err(ImportError::Mismatch(message)) => {
            Err(ApiError::unprocessable(vec![evalmint_model::FieldError {
                field: "labels",
                message,
            }]))
        }
        Err(ImportError::Conflict(message)) => Err(ApiError::Conflict(message)),
    }
}

/// What differs between two releases, label by label.
pub(crate) async fn diff_releases(
    state: &AppState,
    tenant: &TenantId,
    a: &str,
    b: &str,
) -> Result<serde_json::Value, ApiError> {
    let load = |id: String| async move {
        state
            .labels
            .release_labels(tenant, &id)
            .await?
            .ok_or(ApiError::NotFound("release"))
    };
    let (_, left) = load(a.to_owned()).await?;
    let (_, right) = load(b.to_owned()).await?;
    let index = |labels: Vec<ReleasedLabel>| -> BTreeMap<String, LabelVersion> {
        labels
            .into_iter()
            .map(|l| (l.label.label_id.clone(), l.label))
            .collect()
    };
    let (left, right) = (index(left), index(right));
    let removed: Vec<&String> = left.keys().filter(|k| !right.contains_key(*k)).collect();
    let added: Vec<&String> = right.keys().filter(|k| !left.contains_key(*k)).collect();
    let changed: Vec<serde_json::Value> = right
        .iter()
        .filter_map(|(id, after)| {
            let before = left.get(id)?;
            (before.version != after.version).then(|| {
                serde_json::json!({
                    "label_id": id,
                    "from_version": before.version,
                    "to_version": after.version,
                    "changes": after.diff(Some(before)),
                })
            })
        })
        .collect();
    Ok(serde_json::json!({
        "from": a, "to": b, "added": added, "removed": removed, "changed": changed,
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/releases/{id}/diff/{other}",
    tag = "releases",
    summary = "What differs between two releases, label by label",
    params(("id" = String, Path, description = "the release to compare from"), ("other" = String, Path, description = "the release to compare to")),
    responses(
        (status = 200, description = "labels added, removed and changed", body = crate::schemas::ReleaseDiff),
        (status = 400, description = "invalid request: the JSON error body names each bad field", body = crate::schemas::ErrorBody),
        (status = 401, description = "missing or unknown API key", body = crate::schemas::ErrorBody),
        (status = 403, description = "the key lacks the scope", body = crate::schemas::ErrorBody),
        (status = 404, description = "no such object in the caller's tenant", body = crate::schemas::ErrorBody)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn diff(
    State(state): State<AppState>,
    caller: Caller,
    PathParams((a, b)): PathParams<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Review)?;
    Ok(Json(diff_releases(&state, caller.tenant(), &a, &b).await?))
}
