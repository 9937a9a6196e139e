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

pub(crate) async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

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
