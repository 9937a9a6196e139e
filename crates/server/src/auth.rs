//! Who is calling: the API key from `Authorization: Bearer …` (or `x-api-key`), resolved to its
//! tenant and scopes. Resolved keys are cached briefly so authentication costs no storage read
//! on the hot path; a key revoked through this server is dropped from the cache at once, one
//! revoked elsewhere (the CLI, another server) stops working within the cache's lifetime.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use evalmint_model::{Scope, TenantId};
use evalmint_store::ApiKey;

use crate::AppState;
use crate::error::ApiError;

const CACHE_TTL: Duration = Duration::from_secs(30);
const CACHE_MAX: usize = 10_000;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: ApiKey,
}

impl Caller {
    pub fn tenant(&self) -> &TenantId {
        &self.key.tenant
    }

    /// Fails with 403 unless the key carries `scope` (or `admin`).
    pub fn require(&self, scope: Scope) -> Result<&Self, ApiError> {
        if self.key.scopes.permits(scope) {
            Ok(self)
        } else {
            Err(ApiError::Forbidden(scope.as_str()))
        }
    }
}

/// Recently resolved keys, by secret.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    entries: Mutex<HashMap<String, (ApiKey, Instant)>>,
}

impl KeyCache {
    fn get(&self, secret: &str) -> Option<ApiKey> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(secret)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(key, _)| key.clone())
    }

    /// Drops the cached entries of a revoked key, so it stops working at once on this server.
    pub(crate) fn forget(&self, key_id: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, (key, _)| key.id != key_id);
    }

    fn put(&self, secret: &str, key: ApiKey) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CACHE_MAX {
            entries.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
            if entries.len() >= CACHE_MAX {
                entries.clear();
            }
        }
        entries.insert(secret.to_owned(), (key, Instant::now()));
    }
}

pub(crate) fn presented_secret(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, secret) = value.trim().split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| secret.trim());
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Resolves a presented key secret to its caller, through the cache.
pub(crate) async fn resolve(state: &AppState, secret: &str) -> Result<Caller, ApiError> {
    if let Some(key) = state.keys.get(secret) {
        return Ok(Caller { key });
    }
    let key = state
        .store
        .authenticate(secret)
        .await?
        .ok_or(ApiError::Unauthenticated("invalid API key"))?;
    state.keys.put(secret, key.clone());
    Ok(Caller { key })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let secret = presented_secret(&parts.headers)
            .filter(|s| !s.is_empty())
            .ok_or(ApiError::Unauthenticated(
                "missing API key: send Authorization: Bearer <key>",
            ))?;
        resolve(state, secret).await
    }
}
