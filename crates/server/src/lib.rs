//! The evalmint HTTP API: OTLP/HTTP trace ingest, native investigations and feedback, API keys,
//! health and self-metrics. Only this crate knows HTTP. [`app`] builds the router without a
//! socket, for tests; [`serve`] runs it until shutdown.

mod auth;
mod body;
mod error;
mod metrics;
mod routes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use evalmint_model::{ScopeSet, TenantId};
use evalmint_store::{Clock, PipelineStore, Store};
use tokio_util::sync::CancellationToken;

pub use error::ApiError;
pub use metrics::Metrics;

/// How the server behaves; built and validated by the binary.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Largest request body, on the wire and after decompression.
    pub max_body_bytes: usize,
    /// Investigations without feedback are deleted this long after they were last seen.
    pub retention: jiff::SignedDuration,
    /// How often retention runs.
    pub retention_sweep: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 4318)),
            max_body_bytes: 64 * 1024 * 1024,
            retention: jiff::SignedDuration::from_hours(24 * 14),
            retention_sweep: Duration::from_secs(3600),
        }
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// The label pipeline's state (usually the same store object).
    pub labels: Arc<dyn PipelineStore>,
    pub config: Arc<ServerConfig>,
    pub metrics: Arc<Metrics>,
    keys: Arc<auth::KeyCache>,
}

impl AppState {
    pub fn new(store: Arc<dyn evalmint_store::FullStore>, config: ServerConfig) -> Self {
        Self::with_metrics(store.clone(), store, config, Metrics::default())
    }

    /// With a metrics registry that other components (the pipeline) have registered into.
    pub fn with_metrics(
        store: Arc<dyn Store>,
        labels: Arc<dyn PipelineStore>,
        config: ServerConfig,
        metrics: Metrics,
    ) -> Self {
        AppState {
            store,
            labels,
            config: Arc::new(config),
            metrics: Arc::new(metrics),
            keys: Arc::default(),
        }
    }
}

/// The whole API as a router.
pub fn app(state: AppState) -> Router {
    use routes::{catalog, feedback, investigations, keys, labels, ops, otlp};
    Router::new()
        .route("/v1/traces", post(otlp::export))
        .route("/api/v1/investigations", post(investigations::create))
        .route("/api/v1/investigations/{id}", get(investigations::show))
        .route("/api/v1/feedback", post(feedback::submit))
        .route("/api/v1/feedback/{id}", get(feedback::show))
        .route("/api/v1/keys", post(keys::create))
        .route("/api/v1/labels", get(labels::list))
        .route("/api/v1/labels/{id}", get(labels::show))
        .route("/api/v1/review", get(labels::review_queue))
        .route("/api/v1/catalog", get(catalog::list).post(catalog::import))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                axum::response::IntoResponse::into_response(ApiError::Internal(
                    "a request handler panicked".into(),
                ))
            },
        ))
        .with_state(state)
}

async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    state.metrics.request(&route, response.status().as_u16());
    response
}

/// Makes sure an admin key exists. With `operator_secret` the operator's key is registered for
/// the default tenant; otherwise, on a store without any key, a new admin key is created and
/// returned so the caller can show it once and keep it.
pub async fn bootstrap_admin_key(
    store: &dyn Store,
    operator_secret: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let admin = ScopeSet::default().with(evalmint_model::Scope::Admin);
    let tenant = TenantId::default_tenant();
    if let Some(secret) = operator_secret {
        store
            .ensure_api_key(&tenant, "operator admin key", admin, secret)
            .await?;
        return Ok(None);
    }
    if store.api_key_count().await? > 0 {
        return Ok(None);
    }
    let created = store
        .create_api_key(&tenant, "generated admin key", admin)
        .await?;
    Ok(Some(created.secret))
}

/// Deletes expired investigations now and then until shutdown.
async fn sweep_retention(state: AppState, clock: Arc<dyn Clock>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(state.config.retention_sweep);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Ok(cutoff) = clock.now().checked_sub(state.config.retention) else {
            continue;
        };
        match state.store.expire_investigations(cutoff).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "expired investigations without feedback"),
            Err(e) => tracing::warn!(error = %e, "retention sweep failed"),
        }
    }
}

/// Serves the API on `listener` until `shutdown` is cancelled, then drains in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let sweeper = tokio::spawn(sweep_retention(state.clone(), clock, shutdown.clone()));
    let router = app(state);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await?;
    shutdown.cancel();
    let _ = sweeper.await;
    Ok(())
}

/// Where the generated admin key is written, readable by the owner only.
pub fn admin_key_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("admin-key")
}
