//! Who is calling: the API key from `Authorization: Bearer …`, `x-api-key`, or the secret half of
//! `Authorization: Basic public:secret` (as Langfuse clients send it), resolved to its tenant and
//! scopes. Resolved keys are cached so authentication costs no storage read per request; the
//! cached keys are re-checked against the store together, in one read, at most once a second, so
//! a key revoked anywhere (this server, another one, the CLI) stops working everywhere within
//! about a second. A key revoked through this server is dropped from its cache at once.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use evalmint_model::{Scope, TenantId};
use evalmint_store::{ApiKey, Store};

use crate::AppState;
use crate::error::ApiError;

const CACHE_TTL: Duration = Duration::from_secs(30);
const CACHE_MAX: usize = 10_000;
/// How long a cached key is trusted without asking the store whether it is still active.
pub(crate) const REVALIDATE_EVERY: Duration = Duration::from_secs(1);

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
    /// When the cached keys were last confirmed active (the moment the confirming read began).
    confirmed_at: Mutex<Option<Instant>>,
    /// One re-check at a time: requests arriving meanwhile wait for its answer instead of
    /// reading the store themselves.
    checking: tokio::sync::Mutex<()>,
}

impl KeyCache {
    fn get(&self, secret: &str) -> Option<ApiKey> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(secret)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(key, _)| key.clone())
    }

    fn confirmed_recently(&self) -> bool {
        let confirmed_at = self.confirmed_at.lock().unwrap_or_else(|e| e.into_inner());
        confirmed_at.is_some_and(|at| at.elapsed() < REVALIDATE_EVERY)
    }

    /// Drops the cached keys that the store no longer knows (revoked or rotated anywhere), unless
    /// that was checked less than [`REVALIDATE_EVERY`] ago: one store read for all of them.
    async fn revalidate(&self, store: &dyn Store) -> Result<(), ApiError> {
        if self.confirmed_recently() {
            return Ok(());
        }
        let _turn = self.checking.lock().await;
        if self.confirmed_recently() {
            return Ok(());
        }
        let started = Instant::now();
        let mut ids: Vec<String> = {
            let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            entries.values().map(|(key, _)| key.id.clone()).collect()
        };
        ids.sort_unstable();
        ids.dedup();
        let active = store.active_api_key_ids(ids).await?;
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Keys cached while the read ran were just read from the store themselves.
        entries.retain(|_, (key, at)| *at >= started || active.contains(&key.id));
        drop(entries);
        *self.confirmed_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(started);
        Ok(())
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

pub(crate) fn presented_secret(headers: &HeaderMap) -> Option<Cow<'_, str>> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, credentials) = value.trim().split_once(' ')?;
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some(Cow::Borrowed(credentials.trim()));
        }
        if scheme.eq_ignore_ascii_case("basic") {
            return basic_secret(credentials.trim()).map(Cow::Owned);
        }
        return None;
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|v| Cow::Borrowed(v.trim()))
}

/// The password of HTTP Basic credentials: Langfuse clients send `public_key:secret_key`, and the
/// secret key is the evalmint key; the public key names nothing here.
fn basic_secret(encoded: &str) -> Option<String> {
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_public, secret) = text.split_once(':')?;
    Some(secret.trim().to_owned())
}

/// A publishable key answers only to the web origins it was made for; a request without an
/// `Origin` (not from a browser page) is refused too, so the key is good for its pages only.
fn check_origin(key: &ApiKey, headers: &HeaderMap) -> Result<(), ApiError> {
    if key.allowed_origins.is_empty() {
        return Ok(());
    }
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if key.allowed_origins.iter().any(|allowed| allowed == origin) {
        Ok(())
    } else {
        Err(ApiError::OriginNotAllowed(origin.to_owned()))
    }
}

/// Resolves a presented key secret to its caller, through the cache.
pub(crate) async fn resolve(state: &AppState, secret: &str) -> Result<Caller, ApiError> {
    if state.keys.get(secret).is_some() {
        state.keys.revalidate(state.store.as_ref()).await?;
        // Gone now if it was revoked since it was cached: the store then refuses it too.
        if let Some(key) = state.keys.get(secret) {
            return Ok(Caller { key });
        }
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
        let caller = resolve(state, secret.as_ref()).await?;
        check_origin(&caller.key, &parts.headers)?;
        Ok(caller)
    }
}
