//! API keys of the caller's tenant, for admins: create (`POST /api/v1/keys`), list
//! (`GET /api/v1/keys`), revoke (`DELETE /api/v1/keys/{id}`) and rotate
//! (`POST /api/v1/keys/{id}/rotate`). A secret is shown once, when its key is made.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use evalmint_model::{Scope, ScopeSet};
use evalmint_store::{ApiKey, NewApiKey};
use serde::Deserialize;

use super::PathId;
use crate::auth::Caller;
use crate::body::read_request;
use crate::error::ApiError;
use crate::{AppState, OPERATOR_KEY_NAME};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    scopes: Vec<Scope>,
    /// Makes a publishable key (scopes must be `["feedback"]`) that answers only to these web
    /// origins, for the feedback widget.
    #[serde(default)]
    allowed_origins: Option<Vec<String>>,
}

/// A 422 naming the one field whose value is refused.
fn refused(field: &'static str, message: String) -> ApiError {
    ApiError::unprocessable(vec![evalmint_model::FieldError { field, message }])
}

/// A web origin as browsers send it: `http(s)://host[:port]`, nothing after.
fn check_origin(origin: &str) -> Result<(), String> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(|| format!("{origin:?} must start with https:// or http://"))?;
    if rest.is_empty()
        || !rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    {
        return Err(format!(
            "{origin:?} is not an origin (scheme://host[:port], no path or trailing slash)"
        ));
    }
    Ok(())
}

/// A key as shown: never its secret.
fn key_json(key: &ApiKey) -> serde_json::Value {
    serde_json::json!({
        "id": key.id,
        "tenant": key.tenant,
        "name": key.name,
        "scopes": key.scopes.iter().collect::<Vec<_>>(),
        "created_at": key.created_at,
        "allowed_origins": key.allowed_origins,
    })
}

/// A key just made, with its secret: the only time it is shown.
fn new_key_response(created: &NewApiKey) -> impl IntoResponse + use<> {
    let mut body = key_json(&created.key);
    body["secret"] = created.secret.clone().into();
    (StatusCode::CREATED, Json(body))
}

#[utoipa::path(
    post,
    path = "/api/v1/keys",
    tag = "keys",
    summary = "Create an API key (the secret is shown once)",
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 201, description = "the key with its secret", body = Object),
        (status = 400, description = "malformed JSON", body = Object),
        (status = 401, description = "missing or unknown API key", body = Object),
        (status = 403, description = "the key lacks the scope", body = Object),
        (status = 409, description = "conflict", body = Object),
        (status = 415, description = "wrong content type", body = Object),
        (status = 422, description = "well-formed JSON with invalid fields: the error body names each problem in `fields`", body = Object)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Admin)?;
    let request: NewKey = read_request(&state, &headers, body, 64 * 1024).await?;
    let name = request.name.trim();
    if name.is_empty() || name.len() > 128 {
        return Err(refused("name", "must be 1-128 characters".into()));
    }
    if name == OPERATOR_KEY_NAME {
        return Err(refused(
            "name",
            format!("{OPERATOR_KEY_NAME:?} is reserved for the key the operator passes at start"),
        ));
    }
    let scopes: ScopeSet = request.scopes.into_iter().collect();
    if scopes.is_empty() {
        return Err(refused("scopes", "at least one scope is required".into()));
    }
    let created = match request.allowed_origins {
        None => {
            state
                .store
                .create_api_key(caller.tenant(), name, scopes)
                .await?
        }
        Some(origins) => {
            if scopes != ScopeSet::default().with(Scope::Feedback) {
                return Err(refused(
                    "scopes",
                    "a key with allowed_origins is publishable and has exactly [\"feedback\"]"
                        .into(),
                ));
            }
            if origins.is_empty() || origins.len() > 32 {
                return Err(refused("allowed_origins", "1-32 origins".into()));
            }
            if let Some(problem) = origins.iter().find_map(|o| check_origin(o).err()) {
                return Err(refused("allowed_origins", problem));
            }
            state
                .store
                .create_publishable_key(caller.tenant(), name, origins)
                .await?
        }
    };
    Ok(new_key_response(&created))
}

#[utoipa::path(
    get,
    path = "/api/v1/keys",
    tag = "keys",
    summary = "The tenant's keys, without secrets",
    responses(
        (status = 200, description = "the keys", body = Object),
        (status = 401, description = "missing or unknown API key", body = Object),
        (status = 403, description = "the key lacks the scope", body = Object)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Admin)?;
    let keys = state.store.api_keys(caller.tenant()).await?;
    Ok(Json(serde_json::json!({
        "keys": keys.iter().map(key_json).collect::<Vec<_>>(),
    })))
}

#[utoipa::path(
    delete,
    path = "/api/v1/keys/{id}",
    tag = "keys",
    summary = "Revoke a key",
    params(("id" = String, Path, description = "the object's id")),
    responses(
        (status = 204, description = "revoked"),
        (status = 401, description = "missing or unknown API key", body = Object),
        (status = 403, description = "the key lacks the scope", body = Object),
        (status = 404, description = "no such object in the caller's tenant", body = Object)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Admin)?;
    if !state.store.revoke_api_key(caller.tenant(), &id).await? {
        return Err(ApiError::NotFound("key"));
    }
    state.keys.forget(&id);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/v1/keys/{id}/rotate",
    tag = "keys",
    summary = "Replace a key by a new one with the same name and scopes",
    params(("id" = String, Path, description = "the object's id")),
    responses(
        (status = 201, description = "the new key with its secret", body = Object),
        (status = 401, description = "missing or unknown API key", body = Object),
        (status = 403, description = "the key lacks the scope", body = Object),
        (status = 404, description = "no such object in the caller's tenant", body = Object)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Admin)?;
    let created = state
        .store
        .rotate_api_key(caller.tenant(), &id)
        .await?
        .ok_or(ApiError::NotFound("key"))?;
    state.keys.forget(&id);
    Ok(new_key_response(&created))
}
