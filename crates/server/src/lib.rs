//! The evalmint HTTP API: OTLP/HTTP trace ingest, native investigations and feedback, the
//! Langfuse/Phoenix/LangSmith-compatible feedback endpoints, API keys, health and self-metrics. The only crate that serves the API. [`app`] builds the router without a
//! socket, for tests; [`serve`] runs it until shutdown.

mod auth;
mod body;
mod connections;
mod error;
pub mod mcp;
mod metrics;
mod openapi;
mod routes;
mod schemas;
mod ui;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use evalmint_model::{ScopeSet, TenantId};
use evalmint_store::{Clock, ReviewStore, Store};
use tokio_util::sync::CancellationToken;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use connections::default_max_connections;
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
    /// Time a client has to send a complete request head, from connecting (or, on a kept-alive
    /// connection, from the first byte of the next request).
    pub header_read_timeout: Duration,
    /// Time a client has to send a complete request body, from the start of reading it.
    pub body_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Open connections at most; beyond it the oldest idle connection is closed to make room.
    pub max_connections: usize,
    /// Request body bytes held at once across all requests, compressed and decompressed; beyond
    /// it requests are refused with 429.
    pub max_in_flight_bytes: usize,
    /// Bodies being decompressed at once; more wait for a turn.
    pub max_decompressions: usize,
    /// Large bodies (1 MiB or more) being decoded at once; more wait for a turn.
    pub max_large_decodes: usize,
    /// `/metrics` answers only to a key with the `metrics` (or `admin`) scope.
    pub metrics_key_required: bool,
    /// The taxonomy's categories: what a reviewer's edit may name.
    pub categories: Vec<evalmint_model::Category>,
    /// The pipeline's admission thresholds (specificity, accuracy, thoroughness), which
    /// calibration compares the reviewers with. Read only; calibration never changes them.
    pub thresholds: [f64; 3],
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 4318)),
            max_body_bytes: 64 * 1024 * 1024,
            retention: jiff::SignedDuration::from_hours(24 * 14),
            retention_sweep: Duration::from_secs(3600),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_connections: default_max_connections(),
            max_in_flight_bytes: 192 * 1024 * 1024,
            max_decompressions: std::thread::available_parallelism().map_or(2, usize::from),
            // One core stays free for feedback, reads and the writer.
            max_large_decodes: std::thread::available_parallelism()
                .map_or(1, |cores| usize::from(cores).saturating_sub(1).max(1)),
            metrics_key_required: false,
            categories: evalmint_model::Category::BUILTIN.to_vec(),
            thresholds: [0.6, 0.6, 0.5],
        }
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// The label pipeline's and the reviewers' state (usually the same store object).
    pub labels: Arc<dyn ReviewStore>,
    pub config: Arc<ServerConfig>,
    pub metrics: Arc<Metrics>,
    /// Open replay sessions, served under `/replay/sessions/{sid}`.
    pub sessions: Arc<evalmint_eval::Sessions>,
    keys: Arc<auth::KeyCache>,
    bodies: Arc<body::BodyBudget>,
}

impl AppState {
    pub fn new(store: Arc<dyn evalmint_store::FullStore>, config: ServerConfig) -> Self {
        Self::with_metrics(store.clone(), store, config, Metrics::default())
    }

    /// With a metrics registry that other components (the pipeline) have registered into.
    pub fn with_metrics(
        store: Arc<dyn Store>,
        labels: Arc<dyn ReviewStore>,
        config: ServerConfig,
        metrics: Metrics,
    ) -> Self {
        AppState {
            store,
            labels,
            bodies: Arc::new(body::BodyBudget::new(&config)),
            config: Arc::new(config),
            metrics: Arc::new(metrics),
            sessions: Arc::default(),
            keys: Arc::default(),
        }
    }
}

/// The whole API as a router, with its OpenAPI description at `/openapi.json` and a reference
/// page at `/docs`.
pub fn app(state: AppState) -> Router {
    let (router, api) = api_router().split_for_parts();
    let api = openapi::finish(api);
    router
        .route(
            "/openapi.json",
            get(move || std::future::ready(axum::Json(api.clone()))),
        )
        .route("/docs", get(openapi::docs_page))
        .merge(ui::routes())
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn(routes::widget::cors))
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
        // API answers are per caller and never meant to be sniffed or cached by a browser.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .with_state(state)
}

/// Every documented route; the OpenAPI description is generated from the handlers' attributes.
fn api_router() -> OpenApiRouter<AppState> {
    use routes::compat::{langfuse, langsmith, phoenix};
    use routes::{
        catalog, feedback, investigations, keys, labels, ops, otlp, releases, replay, review, runs,
        widget,
    };
    OpenApiRouter::new()
        .routes(routes!(otlp::export))
        .routes(routes!(investigations::create))
        .routes(routes!(investigations::show))
        .routes(routes!(feedback::submit, feedback::erase))
        .routes(routes!(feedback::show, feedback::erase_one))
        .routes(routes!(keys::create, keys::list))
        .routes(routes!(keys::revoke))
        .routes(routes!(keys::rotate))
        .routes(routes!(labels::list))
        .routes(routes!(labels::show))
        .routes(routes!(catalog::list, catalog::import))
        .routes(routes!(review::queue))
        .routes(routes!(review::show))
        .routes(routes!(review::decide))
        .routes(routes!(review::versions))
        .routes(routes!(review::calibration))
        .routes(routes!(releases::create, releases::list))
        .routes(routes!(releases::import))
        .routes(routes!(releases::show))
        .routes(routes!(releases::export))
        .routes(routes!(releases::diff))
        .routes(routes!(replay::open))
        .routes(routes!(replay::list_tools))
        .routes(routes!(replay::tool))
        .routes(routes!(replay::prometheus))
        .routes(routes!(replay::mcp))
        .routes(routes!(runs::list))
        .routes(routes!(runs::show))
        .routes(routes!(runs::history))
        .routes(routes!(langfuse::scores))
        .routes(routes!(langfuse::ingestion))
        .routes(routes!(langfuse::projects))
        .routes(routes!(langfuse::otel_traces))
        .routes(routes!(phoenix::span_annotations))
        .routes(routes!(phoenix::version))
        .routes(routes!(langsmith::info))
        .routes(routes!(langsmith::feedback))
        .routes(routes!(widget::script))
        .routes(routes!(widget::demo))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
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

/// The name under which the operator's own admin key (`--admin-key`) is registered; a new one
/// revokes the key registered before it under this name.
pub const OPERATOR_KEY_NAME: &str = "operator admin key";

/// The name of the admin key a server creates on a store without keys; an operator key given
/// later revokes it.
pub const GENERATED_KEY_NAME: &str = "generated admin key";

/// Makes sure an admin key exists. With `operator_secret` the operator's key is registered for
/// the default tenant, replacing (revoking) the operator key of an earlier start; a weak secret
/// is refused. Otherwise, on a store without any key, a new admin key is created and returned so
/// the caller can show it once and keep it.
pub async fn bootstrap_admin_key(
    store: &dyn Store,
    operator_secret: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let admin = ScopeSet::default().with(evalmint_model::Scope::Admin);
    let tenant = TenantId::default_tenant();
    if let Some(secret) = operator_secret {
        evalmint_model::check_chosen_secret(secret)
            .map_err(|reason| anyhow::anyhow!("refusing the admin key: {reason}"))?;
        store
            .replace_named_api_key(&tenant, OPERATOR_KEY_NAME, admin, secret)
            .await?;
        // The operator's key replaces a generated one: two admin keys nobody chose to keep
        // would be one too many.
        for key in store.api_keys(&tenant).await? {
            if key.name == GENERATED_KEY_NAME {
                store.revoke_api_key(&tenant, &key.id).await?;
            }
        }
        return Ok(None);
    }
    if store.api_key_count().await? > 0 {
        return Ok(None);
    }
    let created = store
        .create_api_key(&tenant, GENERATED_KEY_NAME, admin)
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
        match state.store.collect_garbage().await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "removed unreferenced blobs"),
            Err(e) => tracing::warn!(error = %e, "blob garbage collection failed"),
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
    let limits = connections::ConnectionLimits {
        header_read_timeout: state.config.header_read_timeout,
        idle_timeout: state.config.idle_timeout,
        max_connections: state.config.max_connections.max(1),
    };
    connections::serve(listener, app(state), limits, shutdown.clone()).await;
    shutdown.cancel();
    let _ = sweeper.await;
    Ok(())
}

/// The operational endpoints alone (`/healthz`, `/readyz`, `/metrics`), for a process that
/// serves no API, such as `evalmint worker`: its pipeline metrics live in that process.
pub fn ops_app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(routes::ops::healthz))
        .route("/readyz", get(routes::ops::readyz))
        .route("/metrics", get(routes::ops::metrics))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .with_state(state)
}

/// Serves [`ops_app`] on `listener` until `shutdown` is cancelled.
pub async fn serve_ops(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    axum::serve(listener, ops_app(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

/// Where the generated admin key is written, readable by the owner only.
pub fn admin_key_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("admin-key")
}
