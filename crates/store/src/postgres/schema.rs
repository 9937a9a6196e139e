//! Versioned Postgres migrations: one file per SQLite migration number, applied in order under a
//! transaction-scoped advisory lock (so processes starting together do not race) and recorded in
//! `evalmint_schema_migrations`.

use tokio_postgres::Client;

use crate::convert::internal;
use crate::{Result, StoreError};

/// Every migration, in order; the number its name starts with is the schema version it produces,
/// the same number as the SQLite migration of the same change.
pub(crate) const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init.sql",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        "0002_label_pipeline.sql",
        include_str!("../../migrations/postgres/0002_label_pipeline.sql"),
    ),
    (
        "0003_pipeline_reads.sql",
        include_str!("../../migrations/postgres/0003_pipeline_reads.sql"),
    ),
    (
        "0004_tenant_keys_and_erasure.sql",
        include_str!("../../migrations/postgres/0004_tenant_keys_and_erasure.sql"),
    ),
    (
        "0005_steps_rowid.sql",
        include_str!("../../migrations/postgres/0005_steps_rowid.sql"),
    ),
    (
        "0006_catalog.sql",
        include_str!("../../migrations/postgres/0006_catalog.sql"),
    ),
    (
        "0007_review_and_releases.sql",
        include_str!("../../migrations/postgres/0007_review_and_releases.sql"),
    ),
    (
        "0008_eval_runs.sql",
        include_str!("../../migrations/postgres/0008_eval_runs.sql"),
    ),
    (
        "0009_publishable_keys.sql",
        include_str!("../../migrations/postgres/0009_publishable_keys.sql"),
    ),
    (
        "0010_keyed_erasure_audit.sql",
        include_str!("../../migrations/postgres/0010_keyed_erasure_audit.sql"),
    ),
    (
        "0011_review_queue_columns.sql",
        include_str!("../../migrations/postgres/0011_review_queue_columns.sql"),
    ),
    (
        "0012_eval_label_runs.sql",
        include_str!("../../migrations/postgres/0012_eval_label_runs.sql"),
    ),
    (
        "0013_release_item_digests.sql",
        include_str!("../../migrations/postgres/0013_release_item_digests.sql"),
    ),
    (
        "0014_ui_sessions.sql",
        include_str!("../../migrations/postgres/0014_ui_sessions.sql"),
    ),
    (
        "0015_production_coverage.sql",
        include_str!("../../migrations/postgres/0015_production_coverage.sql"),
    ),
    (
        "0016_decided_versions_index.sql",
        include_str!("../../migrations/postgres/0016_decided_versions_index.sql"),
    ),
];

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The versions this run applied, in order (empty when the schema was up to date).
    pub applied: Vec<i64>,
    /// The schema version afterwards.
    pub current: i64,
}

fn version_of(name: &str) -> i64 {
    name.split('_')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("migration file names start with their number")
}

/// A schema name quoted as an identifier.
pub(crate) fn quoted(schema: &str) -> String {
    format!("\"{}\"", schema.replace('"', "\"\""))
}

/// Creates `schema` if it is missing and applies the migrations not applied yet, all in one
/// transaction under an advisory lock keyed by the schema: a concurrent run waits, then finds
/// everything applied.
pub(crate) async fn migrate(client: &mut Client, schema: Option<&str>) -> Result<MigrationReport> {
    let target = schema.unwrap_or("public");
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('evalmint migrations ' || $1, 0))",
        &[&target],
    )
    .await
    .map_err(pg_error)?;
    if let Some(schema) = schema {
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {0}; SET LOCAL search_path TO {0}",
            quoted(schema)
        ))
        .await
        .map_err(pg_error)?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS evalmint_schema_migrations (
             version    BIGINT NOT NULL PRIMARY KEY,
             name       TEXT   NOT NULL,
             applied_at BIGINT NOT NULL
         )",
    )
    .await
    .map_err(pg_error)?;
    let done: Vec<i64> = tx
        .query("SELECT version FROM evalmint_schema_migrations", &[])
        .await
        .map_err(pg_error)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut applied = Vec::new();
    for (name, sql) in MIGRATIONS {
        let version = version_of(name);
        if done.contains(&version) {
            continue;
        }
        tx.batch_execute(sql)
            .await
            .map_err(|e| StoreError::Internal(format!("postgres migration {name}: {e}")))?;
        // The wall clock on purpose: when a migration ran is an operator's fact, not a store time.
        let applied_at = crate::convert::nanos(evalmint_model::Timestamp::now());
        tx.execute(
            "INSERT INTO evalmint_schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[&version, name, &applied_at],
        )
        .await
        .map_err(pg_error)?;
        applied.push(version);
    }
    let current: Option<i64> = tx
        .query_one("SELECT max(version) FROM evalmint_schema_migrations", &[])
        .await
        .map_err(pg_error)?
        .get(0);
    tx.commit().await.map_err(pg_error)?;
    Ok(MigrationReport {
        applied,
        current: current.unwrap_or(0),
    })
}

/// A database error as the store reports it: contention the caller should retry (a deadlock, a
/// serialisation failure, no connection slot left) is `Busy`; the rest is `Internal`, with the
/// server's message and SQLSTATE for the log.
pub(crate) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    use tokio_postgres::error::SqlState;
    let retry = [
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::TOO_MANY_CONNECTIONS,
    ];
    if e.code().is_some_and(|code| retry.contains(code)) {
        tracing::warn!(error = %e, "postgres contention; the caller is told to retry");
        return StoreError::Busy;
    }
    match e.as_db_error() {
        Some(db) => internal(format!(
            "postgres: {} ({}){}",
            db.message(),
            db.code().code(),
            db.detail().map(|d| format!(": {d}")).unwrap_or_default()
        )),
        None => internal(format!("postgres: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql_files(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_file())
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn postgres_migrations_mirror_the_sqlite_ones_and_are_all_listed() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let sqlite = sql_files(&root);
        let postgres = sql_files(&root.join("postgres"));
        assert_eq!(
            postgres, sqlite,
            "every SQLite migration has a Postgres file of the same number and name"
        );
        let listed: Vec<String> = MIGRATIONS.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(
            listed, postgres,
            "every Postgres migration is listed, in order"
        );
        let sqlite_listed: Vec<&str> = crate::sqlite::MIGRATIONS.iter().map(|(n, _)| *n).collect();
        assert_eq!(listed, sqlite_listed);
    }
}
