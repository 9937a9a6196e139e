//! Operational endpoints: liveness, readiness and Prometheus metrics. Neither reveals tenant data; metrics
//! need a key with the `metrics` scope when the server is started with `--metrics-key-required`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use evalmint_model::Scope;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "ops",
    summary = "Liveness",
    responses(
        (status = 200, description = "alive", body = Object)
    )
)]
pub(crate) async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    summary = "Readiness: the store answers and takes writes",
    responses(
        (status = 200, description = "ready to serve", body = Object),
        (status = 503, description = "the store does not answer; take this process out of the load balancer", body = Object)
    )
)]
pub(crate) async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.check_ready().await {
        Ok(()) => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready" })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({
                    "status": "unavailable",
                    "error": "the store does not answer; see the server log",
                })),
            )
        }
    }
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    summary = "Self-metrics (OpenMetrics text)",
    responses(
        (status = 200, description = "metrics", body = String, content_type = "application/openmetrics-text"),
        (status = 401, description = "missing or unknown API key", body = Object),
        (status = 403, description = "the key lacks the scope", body = Object)
    )
)]
pub(crate) async fn metrics(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    if state.config.metrics_key_required {
        caller?.require(Scope::Metrics)?;
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    ))
}
