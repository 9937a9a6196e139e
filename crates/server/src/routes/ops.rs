//! Operational endpoints: liveness and Prometheus metrics. Neither reveals tenant data; metrics
//! need a key with the `metrics` scope when the server is started with `--metrics-key-required`.

use axum::Json;
use axum::extract::State;
use axum::http::header;
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
