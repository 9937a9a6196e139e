//! Where a command's data lives: the embedded SQLite store in a data directory (the default,
//! owned by one process), or a Postgres database that any number of `serve` and `worker`
//! processes share; and where large results go (`--blobs`). `serve`, `worker`, `migrate` and
//! `keys` open their store here.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use evalmint_store::{
    BlobStore, FullStore, PostgresOptions, PostgresStore, SqliteOptions, SqliteStore,
};

use crate::DataArgs;

#[derive(Debug, clap::Args)]
pub(crate) struct StoreArgs {
    #[command(flatten)]
    pub(crate) data: DataArgs,
    /// A Postgres database (postgres://user@host:5432/dbname) that any number of `serve` and
    /// `worker` processes share. Without it, the embedded SQLite store in --data, which one
    /// process owns. With it, --data keeps only the generated admin key and, without --blobs,
    /// the blob directory.
    #[arg(
        long,
        env = "EVALMINT_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub(crate) database: Option<String>,
    /// Connections to --database this process keeps open at most.
    #[arg(long, default_value_t = 16, value_name = "N")]
    database_pool: usize,
    #[command(flatten)]
    blobs: BlobArgs,
}

#[derive(Debug, clap::Args)]
struct BlobArgs {
    /// Where large tool results go: s3://bucket/prefix (credentials, region and endpoint from
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and AWS_ENDPOINT_URL) or
    /// file:///absolute/path. Defaults to DATA/blobs. Processes sharing a --database must
    /// share this too.
    #[arg(long = "blobs", env = "EVALMINT_BLOBS", value_name = "URL")]
    url: Option<String>,
}

impl StoreArgs {
    pub(crate) fn data_dir(&self) -> &Path {
        &self.data.dir
    }

    /// Opens the store. The embedded one is then owned by this process until it ends: a second
    /// process on the same directory is refused with a message naming this one.
    pub(crate) async fn open(&self) -> anyhow::Result<Arc<dyn FullStore>> {
        let dir = self.data_dir();
        let blobs = self.blob_store()?;
        match &self.database {
            None => {
                let options = SqliteOptions {
                    blobs,
                    ..SqliteOptions::default()
                };
                let store = SqliteStore::open(dir, options)
                    .with_context(|| format!("opening the store in {}", dir.display()))?;
                Ok(Arc::new(store))
            }
            Some(url) => {
                if self.blobs.url.is_none() {
                    tracing::warn!(
                        blobs = %dir.join("blobs").display(),
                        "--database without --blobs keeps large results in this process's \
                         data directory: every process sharing the database must reach the \
                         same blobs (give them all --blobs s3://… or one shared directory)"
                    );
                }
                evalmint_store::private::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let blobs = match blobs {
                    Some(blobs) => blobs,
                    None => BlobStore::open(dir.join("blobs")).with_context(|| {
                        format!("opening the blob directory in {}", dir.display())
                    })?,
                };
                let options = PostgresOptions {
                    pool_size: self.database_pool.max(1),
                    ..PostgresOptions::new(blobs)
                };
                let store = PostgresStore::connect(url, options)
                    .await
                    .with_context(|| format!("connecting to {}", redacted(url)))?;
                Ok(Arc::new(store))
            }
        }
    }

    fn blob_store(&self) -> anyhow::Result<Option<BlobStore>> {
        let Some(url) = &self.blobs.url else {
            return Ok(None);
        };
        let store = BlobStore::from_url(url, &self.data_dir().join("blobs"))
            .with_context(|| format!("opening the blob store at {url}"))?;
        Ok(Some(store))
    }

    /// Where the data is, for people: the directory, or the database without its password.
    pub(crate) fn describe(&self) -> String {
        match &self.database {
            Some(url) => format!("database {}", redacted(url)),
            None => format!("data in {}", self.data_dir().display()),
        }
    }
}

/// A database URL without its password, for messages and logs.
pub(crate) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_owned(),
    }
}

/// `evalmint migrate`: applies the schema migrations a store lacks (every start does too).
#[derive(Debug, clap::Args)]
pub(crate) struct MigrateArgs {
    #[command(flatten)]
    store: StoreArgs,
}

pub(crate) async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    match &args.store.database {
        Some(url) => {
            let report = PostgresStore::migrate(url, None)
                .await
                .with_context(|| format!("migrating {}", redacted(url)))?;
            if report.applied.is_empty() {
                println!(
                    "{}: up to date at schema version {}",
                    redacted(url),
                    report.current
                );
            } else {
                let applied: Vec<String> = report.applied.iter().map(i64::to_string).collect();
                println!(
                    "{}: applied {} migration(s) ({}); schema version {}",
                    redacted(url),
                    applied.len(),
                    applied.join(", "),
                    report.current
                );
            }
        }
        None => {
            // Opening the embedded store applies what it lacks, under its owner lock.
            args.store.open().await?;
            println!(
                "{}: migrations applied (schema version {})",
                args.store.describe(),
                evalmint_store::schema_version()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_lose_their_password_in_messages() {
        assert_eq!(
            redacted("postgres://evalmint:s3cret@db.internal:5432/evalmint"),
            "postgres://evalmint@db.internal:5432/evalmint"
        );
        assert_eq!(
            redacted("postgres://postgres@127.0.0.1/db"),
            "postgres://postgres@127.0.0.1/db"
        );
        assert_eq!(redacted("postgres:///db"), "postgres:///db");
    }
}
