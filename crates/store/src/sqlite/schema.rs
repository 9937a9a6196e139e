//! Versioned schema migrations, applied in order and recorded in `PRAGMA user_version`.

use rusqlite::Connection;

/// Every migration, in order; the index plus one is the schema version it produces.
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
        "0007_catalog.sql",
        include_str!("../../migrations/0007_catalog.sql"),
    ),
];

pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let applied = usize::try_from(current).unwrap_or(0);
    for (version, (_, sql)) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version as i64 + 1)?;
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

/// The writer's connection additionally keeps a larger page cache and leaves checkpointing to
/// the checkpointer thread, so a commit never pays for copying the WAL into the database.
pub(crate) fn configure_writer(conn: &Connection) -> rusqlite::Result<()> {
    configure(conn)?;
    conn.pragma_update(None, "cache_size", -65_536)?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_and_all_exist() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        on_disk.sort();
        let listed: Vec<String> = MIGRATIONS.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(on_disk, listed, "every migration file is listed, in order");
        let numbers: Vec<u32> = listed
            .iter()
            .map(|name| name[..4].parse().expect("a four-digit migration number"))
            .collect();
        assert_eq!(numbers[0], 1);
        assert!(
            numbers.windows(2).all(|pair| pair[0] < pair[1]),
            "migration numbers are unique and increasing: {numbers:?}"
        );
    }

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version as usize, MIGRATIONS.len());
    }
}
