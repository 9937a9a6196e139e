//! `evalmint serve`: open the store, make sure an admin key exists, serve until Ctrl-C/SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use evalmint_server::{AppState, ServerConfig};
use evalmint_store::{SqliteOptions, SqliteStore, SystemClock};
use tokio_util::sync::CancellationToken;

use crate::DataArgs;

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    data: DataArgs,
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
    #[arg(long, default_value = "14d", value_parser = parse_retention)]
    retention: jiff::SignedDuration,
}

fn parse_retention(text: &str) -> Result<jiff::SignedDuration, String> {
    evalmint_model::parse_duration(text)
        .filter(|d| d.is_positive())
        .ok_or_else(|| format!("{text:?} is not a duration like 14d, 12h or 30m"))
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
    let data_dir = args.data.dir;
    let store = SqliteStore::open(&data_dir, SqliteOptions::default())
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    let store: Arc<dyn evalmint_store::Store> = Arc::new(store);

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

    let config = ServerConfig {
        listen: args.listen,
        max_body_bytes: args.max_body,
        retention: args.retention,
        ..ServerConfig::default()
    };
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
        "evalmint listening on http://{address} (data in {})",
        data_dir.display()
    );

    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let state = AppState::new(store, config);
    evalmint_server::serve(listener, state, Arc::new(SystemClock), shutdown).await?;
    tracing::info!("stopped");
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
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
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
