//! HTTP handlers, one module per resource.

pub(crate) mod catalog;
pub(crate) mod compat;
pub(crate) mod feedback;
pub(crate) mod investigations;
pub(crate) mod keys;
pub(crate) mod labels;
pub(crate) mod ops;
pub(crate) mod otlp;
pub(crate) mod releases;
pub(crate) mod replay;
pub(crate) mod review;
pub(crate) mod runs;
pub(crate) mod widget;

use std::future::Future;
use std::time::Instant;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use crate::AppState;
use crate::error::ApiError;

/// The `{id}` of a route; a malformed one (such as invalid UTF-8) is a JSON 400 like any other
/// bad input.
pub(crate) struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| PathId(id))
            .map_err(|rejection| ApiError::invalid(format!("path: {}", rejection.body_text())))
    }
}

/// Several path parameters (or one of another type); a malformed one is a JSON 400 too.
pub(crate) struct PathParams<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(params)| PathParams(params))
            .map_err(|rejection| ApiError::invalid(format!("path: {}", rejection.body_text())))
    }
}

/// Runs a store write and records how long it took to become durable.
pub(crate) async fn timed_write<T>(
    state: &AppState,
    operation: &'static str,
    write: impl Future<Output = T>,
) -> T {
    let started = Instant::now();
    let outcome = write.await;
    state.metrics.store_write(operation, started.elapsed());
    outcome
}
