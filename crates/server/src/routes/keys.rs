//! `POST /api/v1/keys`: an admin creates more keys for its own tenant.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use evalmint_model::{Scope, ScopeSet};
use serde::Deserialize;

use crate::AppState;
use crate::auth::Caller;
use crate::body::read_json;
use crate::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    scopes: Vec<Scope>,
}

pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Admin)?;
    let request: NewKey = read_json(&state, &headers, body, 64 * 1024).await?;
    let name = request.name.trim();
    if name.is_empty() || name.len() > 128 {
        return Err(ApiError::invalid("name must be 1-128 characters"));
    }
    let scopes: ScopeSet = request.scopes.into_iter().collect();
    if scopes.is_empty() {
        return Err(ApiError::invalid("scopes: at least one scope is required"));
    }
    let created = state
        .store
        .create_api_key(caller.tenant(), name, scopes)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "id": created.key.id,
            "tenant": created.key.tenant,
            "name": created.key.name,
            "scopes": created.key.scopes.iter().collect::<Vec<_>>(),
            "secret": created.secret,
        })),
    ))
}
