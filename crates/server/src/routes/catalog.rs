//! The tenant's entity catalog: `GET /api/v1/catalog` lists it a page at a time (filtered by
//! kind or provenance), `POST /api/v1/catalog` imports a static catalog file (evalmint's entity
//! list in YAML, TOML or JSON, or Backstage `catalog-info.yaml` documents).

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use evalmint_model::{CatalogFormat, EntityProvenance, Scope, parse_catalog_file};
use evalmint_store::CatalogQuery;
use serde::Deserialize;

use super::labels::{limit, params};
use super::timed_write;
use crate::AppState;
use crate::auth::Caller;
use crate::body::{media_type, read_capped};
use crate::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    provenance: Option<String>,
    /// The `next` of the previous page.
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

#[utoipa::path(
    get,
    path = "/api/v1/catalog",
    tag = "catalog",
    summary = "The tenant's entity catalog",
    params(("kind" = Option<String>, Query, description = "only entities of this kind"), ("provenance" = Option<String>, Query, description = "only entities learned this way"), ("after" = Option<String>, Query, description = "page after this name"), ("limit" = Option<u32>, Query, description = "at most this many")),
    responses(
        (status = 200, description = "catalog entries", body = Object),
        (status = 400, description = "invalid request: the JSON error body names each bad field", body = Object),
        (status = 401, description = "missing or unknown API key", body = Object),
        (status = 403, description = "the key lacks the scope", body = Object)
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
    let provenance = params
        .provenance
        .as_deref()
        .map(|name| {
            EntityProvenance::parse(name).ok_or_else(|| {
                let known: Vec<&str> = EntityProvenance::ALL.iter().map(|p| p.as_str()).collect();
                ApiError::invalid(format!(
                    "provenance {name:?} is not one of {}",
                    known.join(", ")
                ))
            })
        })
        .transpose()?;
    let limit = limit(params.limit)?;
    let mut entries = state
        .labels
        .catalog_entries(
            caller.tenant(),
            CatalogQuery {
                kind: params.kind,
                provenance,
                after: params.after,
                limit: limit + 1,
            },
        )
        .await?;
    let next = (entries.len() > limit).then(|| {
        entries.truncate(limit);
        entries.last().map(|e| e.entry.name.clone())
    });
    Ok(Json(
        serde_json::json!({ "entries": entries, "next": next.flatten() }),
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/catalog",
    tag = "catalog",
    summary = "Import a static or Backstage catalog file",
    request_body(content = String, content_type = "application/yaml", description = "a catalog file (evalmint list or Backstage documents)"),
    responses(
        (status = 200, description = "what was imported", body = Object),
        (status = 400, description = "invalid request: the JSON error body names each bad field", body = Object),
        (status = 401, description = "missing or unknown API key", body = Object),
        (status = 403, description = "the key lacks the scope", body = Object),
        (status = 413, description = "body larger than the limit", body = Object),
        (status = 415, description = "wrong content type", body = Object)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn import(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Admin)?;
    let format = media_type(&headers)
        .as_deref()
        .and_then(CatalogFormat::from_media_type)
        .ok_or_else(|| {
            ApiError::UnsupportedMediaType(format!(
                "expected Content-Type application/yaml, application/toml or application/json, got {}",
                media_type(&headers).as_deref().unwrap_or("none")
            ))
        })?;
    let body = read_capped(&state, &headers, body, state.config.max_body_bytes).await?;
    let text = std::str::from_utf8(&body.bytes)
        .map_err(|e| ApiError::invalid(format!("the catalog file is not UTF-8: {e}")))?;
    let entries = parse_catalog_file(text, format)
        .map_err(|e| ApiError::invalid(format!("invalid catalog file: {e}")))?;
    let imported = timed_write(
        &state,
        "catalog",
        state.labels.upsert_catalog(caller.tenant(), entries),
    )
    .await?;
    Ok(Json(serde_json::json!({ "imported": imported })))
}
