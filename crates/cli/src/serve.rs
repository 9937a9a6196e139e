//! `evalmint serve` and `evalmint worker`: open the store (embedded, or a shared Postgres
//! database), make sure an admin key exists, serve the API and/or run the label pipeline until
//! Ctrl-C/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use evalmint_pipeline::config::Config;
use evalmint_pipeline::metrics::PipelineMetrics;
use evalmint_server::{AppState, Metrics, ServerConfig};
use evalmint_store::{CaptureOrder, SystemClock};
use tokio_util::sync::CancellationToken;

use crate::store_args::StoreArgs;

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    pipeline: PipelineArgs,
    /// Address to listen on (the OTLP/HTTP port by default).
    #[arg(long, env = "EVALMINT_LISTEN", default_value = "127.0.0.1:4318")]
    listen: SocketAddr,
    /// An admin key to register for the default tenant. Without it, the first start generates
    /// one, prints it once and saves it to DATA/admin-key.
    #[arg(long, env = "EVALMINT_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
    /// Largest accepted request body, before and after decompression (e.g. 64MiB, 512KiB).
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    max_body: usize,
    /// How long investigations without feedback are kept (e.g. 14d, 12h).
    #[arg(long, default_value = "14d", value_parser = crate::positive_duration)]
    retention: jiff::SignedDuration,
    /// Serve the API only; run the label pipeline elsewhere with `evalmint worker`.
    #[arg(long)]
    no_pipeline: bool,
    #[command(flatten)]
    edge: EdgeArgs,
}

/// Limits at the HTTP edge that keep slow, idle or greedy clients from exhausting the server.
#[derive(Debug, clap::Args)]
struct EdgeArgs {
    /// Time a client has to send a complete request head (from connecting, or from the first
    /// byte of the next request on a kept-alive connection).
    #[arg(long, default_value = "10s", value_parser = std_duration)]
    header_read_timeout: Duration,
    /// Time a client has to send a complete request body; slower bodies get 408.
    #[arg(long, default_value = "60s", value_parser = std_duration)]
    body_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    #[arg(long, default_value = "60s", value_parser = std_duration)]
    idle_timeout: Duration,
    /// Open connections at most; beyond it the oldest idle connection is closed to make room.
    /// Defaults to the descriptor limit (ulimit -n) less a reserve for the store's files.
    #[arg(long)]
    max_connections: Option<usize>,
    /// Request body bytes held at once across all requests, compressed and decompressed;
    /// beyond it requests get 429 with Retry-After.
    #[arg(long, default_value = "192MiB", value_parser = parse_size)]
    max_in_flight_bytes: usize,
    /// Request bodies decompressed at once (default: the number of CPUs).
    #[arg(long)]
    max_decompressions: Option<usize>,
    /// Large request bodies (1 MiB or more) decoded at once (default: the number of CPUs less
    /// one, at least one), so big trace exports leave a core to feedback and the writer.
    #[arg(long)]
    max_large_decodes: Option<usize>,
    /// Serve /metrics only to a key with the metrics (or admin) scope.
    #[arg(long, env = "EVALMINT_METRICS_KEY_REQUIRED")]
    metrics_key_required: bool,
}

/// Where the store keeps large tool results.
/// A positive duration argument as a `std` duration.
fn std_duration(text: &str) -> Result<Duration, String> {
    let duration = crate::positive_duration(text)?;
    Duration::try_from(duration).map_err(|e| format!("{text:?}: {e}"))
}

/// Options of the label pipeline, shared by `serve` and `worker`.
#[derive(Debug, clap::Args)]
pub(crate) struct PipelineArgs {
    /// Configuration file: telemetry sources, TTLs, thresholds. Defaults to ./evalmint.toml when
    /// it exists; without one, only results recorded in traces are captured.
    #[arg(long, env = "EVALMINT_CONFIG")]
    config: Option<PathBuf>,
}

impl PipelineArgs {
    pub(crate) fn load(&self) -> anyhow::Result<Config> {
        let path = match &self.config {
            Some(path) => Some(path.clone()),
            None => Some(PathBuf::from("evalmint.toml")).filter(|p| p.exists()),
        };
        match path {
            Some(path) => {
                Config::load(&path).with_context(|| format!("loading {}", path.display()))
            }
            None => Ok(Config::default()),
        }
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct WorkerArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    pipeline: PipelineArgs,
    /// Serve /healthz, /readyz and /metrics (the pipeline's capture and claim figures) on this
    /// address; without it the worker serves no HTTP at all.
    #[arg(long, env = "EVALMINT_WORKER_LISTEN")]
    listen: Option<SocketAddr>,
}

pub(crate) fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let amount: usize = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 64MiB"))?;
    let multiplier = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        other => {
            return Err(format!(
                "unknown size unit {other:?}: use B, KiB, MiB or GiB"
            ));
        }
    };
    amount
        .checked_mul(multiplier)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{text:?} is out of range"))
}

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let data_dir = args.store.data_dir().to_owned();
    let pipeline_config = Arc::new(args.pipeline.load()?);
    let store = args.store.open().await?;

    if let Some(secret) =
        evalmint_server::bootstrap_admin_key(store.as_ref(), args.admin_key.as_deref()).await?
    {
        let path = evalmint_server::admin_key_path(&data_dir);
        write_private(&path, &secret)
            .with_context(|| format!("saving the admin key to {}", path.display()))?;
        println!(
            "generated an admin key for tenant \"default\" (shown once, saved to {}):",
            path.display()
        );
        println!("  {secret}");
    }

    let defaults = ServerConfig::default();
    let edge = args.edge;
    let config = ServerConfig {
        listen: args.listen,
        max_body_bytes: args.max_body,
        retention: args.retention,
        header_read_timeout: edge.header_read_timeout,
        body_read_timeout: edge.body_read_timeout,
        idle_timeout: edge.idle_timeout,
        max_connections: edge.max_connections.unwrap_or(defaults.max_connections),
        max_in_flight_bytes: edge.max_in_flight_bytes,
        max_decompressions: edge
            .max_decompressions
            .unwrap_or(defaults.max_decompressions),
        max_large_decodes: edge.max_large_decodes.unwrap_or(defaults.max_large_decodes),
        metrics_key_required: edge.metrics_key_required,
        categories: pipeline_config
            .taxonomy
            .categories()
            .iter()
            .map(|c| c.category.clone())
            .collect(),
        thresholds: [
            pipeline_config.thresholds.specificity,
            pipeline_config.thresholds.accuracy,
            pipeline_config.thresholds.thoroughness,
        ],
        ..defaults
    };
    if config.max_connections > evalmint_server::default_max_connections() {
        tracing::warn!(
            max_connections = config.max_connections,
            "--max-connections is close to or above the descriptor limit (ulimit -n); \
             the store may run out of descriptors under load"
        );
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}: is another server running?",
                config.listen
            )
        })?;
    let address = listener.local_addr()?;
    println!(
        "evalmint listening on http://{address} ({})",
        args.store.describe()
    );

    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let mut metrics = Metrics::default();
    let pipeline_metrics = Arc::new(PipelineMetrics::default());
    pipeline_metrics.register(metrics.registry_mut());
    let mut pipeline = (!args.no_pipeline).then(|| {
        evalmint_pipeline::worker::start(
            store.clone(),
            pipeline_config,
            Arc::new(SystemClock),
            pipeline_metrics,
            CaptureOrder::EarliestDeadline,
            shutdown.clone(),
        )
    });
    let state = AppState::with_metrics(store.clone(), store, config, metrics);
    evalmint_server::serve(listener, state, Arc::new(SystemClock), shutdown).await?;
    if let Some(tasks) = pipeline.as_mut() {
        while tasks.join_next().await.is_some() {}
    }
    tracing::info!("stopped");
    Ok(())
}

/// `evalmint worker`: the label pipeline without the HTTP API.
pub(crate) async fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    let config = Arc::new(args.pipeline.load()?);
    let store = args.store.open().await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let mut metrics = Metrics::default();
    let pipeline_metrics = Arc::new(PipelineMetrics::default());
    pipeline_metrics.register(metrics.registry_mut());
    let ops = match args.listen {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address}: is the port taken?"))?;
            let state = AppState::with_metrics(
                store.clone(),
                store.clone(),
                ServerConfig::default(),
                metrics,
            );
            eprintln!(
                "evalmint worker: health and metrics on http://{}",
                listener.local_addr()?
            );
            Some(tokio::spawn(evalmint_server::serve_ops(
                listener,
                state,
                shutdown.clone(),
            )))
        }
        None => None,
    };
    eprintln!("evalmint worker running ({})", args.store.describe());
    let mut tasks = evalmint_pipeline::worker::start(
        store,
        config,
        Arc::new(SystemClock),
        pipeline_metrics,
        CaptureOrder::EarliestDeadline,
        shutdown,
    );
    while tasks.join_next().await.is_some() {}
    if let Some(ops) = ops {
        ops.await??;
    }
    Ok(())
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    shutdown.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
    shutdown.cancel();
}

fn write_private(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = evalmint_store::private::options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    writeln!(file, "{secret}")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("64MiB"), Ok(64 * 1024 * 1024));
        assert_eq!(parse_size("512kb"), Ok(512 * 1024));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("0").is_err());
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5 parsecs").is_err());
    }
}
