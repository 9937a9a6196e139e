//! Versioned schema migrations, applied in order and recorded in `PRAGMA user_version`.

use rusqlite::Connection;

/// Every migration, in order; the number its name starts with is the schema version it produces.
/// Numbers are reserved per change, so a number can be missing until its change is merged.
pub(crate) const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init.sql",
        include_str!("../../migrations/0001_init.sql"),
    ),
    (
        "0002_label_pipeline.sql",
        include_str!("../../migrations/0002_label_pipeline.sql"),
    ),
    (
        "0003_pipeline_reads.sql",
        include_str!("../../migrations/0003_pipeline_reads.sql"),
    ),
    (
        "0004_tenant_keys_and_erasure.sql",
        include_str!("../../migrations/0004_tenant_keys_and_erasure.sql"),
    ),
    (
        "0005_steps_rowid.sql",
        include_str!("../../migrations/0005_steps_rowid.sql"),
    ),
    (
        "0006_catalog.sql",
        include_str!("../../migrations/0006_catalog.sql"),
    ),
    (
        "0007_review_and_releases.sql",
        include_str!("../../migrations/0007_review_and_releases.sql"),
    ),
    (
        "0008_eval_runs.sql",
        include_str!("../../migrations/0008_eval_runs.sql"),
    ),
    (
        "0009_publishable_keys.sql",
        include_str!("../../migrations/0009_publishable_keys.sql"),
    ),
    (
        "0010_keyed_erasure_audit.sql",
        include_str!("../../migrations/0010_keyed_erasure_audit.sql"),
    ),
    (
        "0011_review_queue_columns.sql",
        include_str!("../../migrations/0011_review_queue_columns.sql"),
    ),
    (
        "0012_eval_label_runs.sql",
        include_str!("../../migrations/0012_eval_label_runs.sql"),
    ),
    (
        "0013_release_item_digests.sql",
        include_str!("../../migrations/0013_release_item_digests.sql"),
    ),
    (
        "0014_ui_sessions.sql",
        include_str!("../../migrations/0014_ui_sessions.sql"),
    ),
    (
        "0015_production_coverage.sql",
        include_str!("../../migrations/0015_production_coverage.sql"),
    ),
    (
        "0016_decided_versions_index.sql",
        include_str!("../../migrations/0016_decided_versions_index.sql"),
    ),
];

/// The schema version a migration produces: the number its file name starts with.
pub(crate) fn version_of(name: &str) -> i64 {
    name.split('_')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("migration file names start with their number")
}

pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    migrate_before(conn, i64::MAX)
}

/// Applies the migrations older than version `before` that are not applied yet.
pub(crate) fn migrate_before(conn: &mut Connection, before: i64) -> rusqlite::Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (name, sql) in MIGRATIONS {
        let version = version_of(name);
        if version <= current || version >= before {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(())
}

/// Settings every connection gets: WAL for concurrent readers, full sync so an acknowledged
/// write survives power loss, and a busy timeout for readers racing a checkpoint.
pub(crate) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

/// The writer's connection additionally keeps a larger page cache, keeps the statement journals
/// of its per-command savepoints in memory (on disk they were a write system call for every page
/// a command first touched), and leaves checkpointing to the checkpointer thread, so a commit
/// never pays for copying the WAL into the database.
pub(crate) fn configure_writer(conn: &Connection) -> rusqlite::Result<()> {
    configure(conn)?;
    conn.pragma_update(None, "cache_size", -65_536)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use evalmint_model::{Outcome, TenantId};

    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_and_all_exist() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_file())
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        on_disk.sort();
        let listed: Vec<String> = MIGRATIONS.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(on_disk, listed, "every migration file is listed, in order");
        let versions: Vec<i64> = listed.iter().map(|n| version_of(n)).collect();
        assert_eq!(versions[0], 1, "the first migration is 0001");
        for (pair, names) in versions.windows(2).zip(listed.windows(2)) {
            assert!(pair[0] < pair[1], "{} is out of sequence", names[1]);
        }
        for name in &listed {
            assert!(
                name.starts_with(&format!("{:04}_", version_of(name))),
                "{name} has no four-digit number"
            );
        }
    }

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, version_of(MIGRATIONS.last().unwrap().0));
    }

    #[test]
    fn steps_written_before_the_rowid_migration_survive_it() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_before(&mut conn, 5).unwrap();
        for (trace, span) in [(1u8, 1u8), (1, 2), (2, 1)] {
            conn.execute(
                "INSERT INTO steps (tenant, trace_id, span_id, body, result_inline, result_blob)
                 VALUES ('acme', ?1, ?2, '{}', 'result', NULL)",
                rusqlite::params![vec![trace; 16], vec![span; 8]],
            )
            .unwrap();
        }
        migrate(&mut conn).unwrap();
        let rows: i64 = conn
            .query_row(
                "SELECT count(*) FROM steps WHERE tenant = 'acme' AND result_inline = 'result'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(rows, 3);
        let rowid_table: i64 = conn
            .query_row(
                "SELECT count(*) FROM pragma_table_list WHERE name = 'steps' AND wr = 0",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(rowid_table, 1, "steps is an ordinary rowid table");
        let duplicate = conn.execute(
            "INSERT INTO steps (tenant, trace_id, span_id, body) VALUES ('acme', ?1, ?2, '{}')",
            rusqlite::params![vec![1u8; 16], vec![1u8; 8]],
        );
        assert!(duplicate.is_err(), "(tenant, trace, span) stays unique");
    }

    #[test]
    fn runs_stored_before_the_label_history_are_in_it_under_their_label_ids() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_before(&mut conn, 12).unwrap();
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/rows/eval_run.v1.json");
        let v1 = std::fs::read_to_string(golden).unwrap();
        let admitted_run = v1.replace("\"cand-0101\"", &format!("\"cand-{trace}-v3\""));
        let mut release_run: serde_json::Value = serde_json::from_str(&v1).unwrap();
        release_run["id"] = "run-release".into();
        release_run["label_source"] = "rel-1".into();
        release_run["results"][0]["label_id"] = format!("lbl-{trace}").into();
        let second = release_run["results"][0].clone();
        release_run["results"].as_array_mut().unwrap().insert(0, {
            let mut pass = second;
            pass["attempt"] = 1.into();
            pass["outcome"] = "pass".into();
            pass
        });
        for (id, minute, body) in [
            ("run-0193f0a0", 0i64, admitted_run),
            ("run-release", 1, release_run.to_string()),
        ] {
            conn.execute(
                "INSERT INTO eval_runs (tenant, id, started_at, agent, status, body)
                 VALUES ('acme', ?1, ?2, 'sim:v2', 'completed', ?3)",
                rusqlite::params![id, minute * 60_000_000_000, body],
            )
            .unwrap();
        }
        migrate(&mut conn).unwrap();
        let history = crate::sqlite::eval_runs::label_history(
            &conn,
            &TenantId::new("acme").unwrap(),
            &format!("lbl-{trace}"),
            10,
        )
        .unwrap();
        let runs: Vec<&str> = history.iter().map(|h| h.run_id.as_str()).collect();
        assert_eq!(runs, ["run-release", "run-0193f0a0"]);
        assert_eq!(history[0].label_source, "rel-1");
        let outcomes: Vec<(u32, Outcome)> = history[0]
            .attempts
            .iter()
            .map(|a| (a.attempt, a.outcome))
            .collect();
        assert_eq!(outcomes, [(0, Outcome::Fail), (1, Outcome::Pass)]);
        let old = &history[1];
        assert_eq!(old.label_source, "admitted");
        assert_eq!(old.label_version, 2);
        assert_eq!(old.attempts.len(), 1);
        assert_eq!(
            old.attempts[0].reason,
            "component: answered checkout, expected payments-db"
        );
        assert_eq!(
            old.attempts[0].grades[0].reason,
            "answered checkout, expected payments-db"
        );
        assert_eq!(old.attempts[0].grades[0].grader, "component");
    }

    #[test]
    fn candidates_written_before_the_queue_columns_are_backfilled() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        migrate_before(&mut conn, 11).unwrap();
        let body = r#"{"segments": [{"facet": "service", "value": "checkout"},
                                    {"facet": "polarity", "value": "negative"}],
                       "scores": {"specificity": {"value": 0.8}, "accuracy": {"value": 0.25},
                                  "thoroughness": {"value": 0.6}}}"#;
        conn.execute(
            "INSERT INTO candidates (id, tenant, trace_id, version, current, route, audit,
                                     created_at, body)
             VALUES ('cand-1', 'acme', ?1, 1, 1, 'review', 0, 1, ?2)",
            rusqlite::params![vec![1u8; 16], body],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let lowest: f64 = conn
            .query_row("SELECT lowest_score FROM candidates", [], |r| r.get(0))
            .unwrap();
        assert_eq!(lowest, 0.25);
        let segments: Vec<String> = conn
            .prepare(
                "SELECT facet || '=' || value FROM candidate_segments
                 WHERE tenant = 'acme' AND candidate_id = 'cand-1' ORDER BY facet",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(segments, ["polarity=negative", "service=checkout"]);
        conn.execute("DELETE FROM candidates WHERE id = 'cand-1'", [])
            .unwrap();
        let left: i64 = conn
            .query_row("SELECT count(*) FROM candidate_segments", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0, "a candidate's segments go with it");
    }
}
