//! The entity catalog's table: upserts that merge what each source knows about a name, and the
//! reads the label pipeline and the API make.

use std::collections::BTreeMap;

use evalmint_model::{Catalog, CatalogEntry, EntityProvenance, TenantId};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::rows::{internal, nanos, timestamp};
use crate::{CatalogQuery, Result, StoredCatalogEntry};

/// Entries whose provenance is observation (traces, tool calls, Prometheus) expire when not seen
/// again; declared and confirmed names stay until changed.
const OBSERVED: &str = "'trace', 'tool_call', 'prometheus'";

/// `last_seen` of a name seen again is rewritten only when older than this (nanoseconds).
const LAST_SEEN_GRANULARITY: i64 = 60_000_000_000;

/// Merges `entries` into the tenant's catalog: one row per name, fields merged by provenance
/// authority ([`CatalogEntry::merge`]), `last_seen` set to `now`. Returns how many names were
/// written.
pub(crate) fn upsert(
    conn: &Connection,
    tenant: &TenantId,
    entries: Vec<CatalogEntry>,
    now: i64,
) -> Result<usize> {
    let mut by_name: BTreeMap<String, CatalogEntry> = BTreeMap::new();
    for entry in entries {
        let name = entry.name.trim();
        if name.is_empty() {
            continue;
        }
        match by_name.get_mut(name) {
            Some(existing) => existing.merge(entry),
            None => {
                by_name.insert(name.to_owned(), entry);
            }
        }
    }
    if by_name.is_empty() {
        return Ok(0);
    }
    let mut select = conn.prepare_cached(
        "SELECT name, kind, workload, aliases, team, depends_on, provenance, first_seen, last_seen
         FROM catalog_entries WHERE tenant = ?1 AND name = ?2",
    )?;
    let mut write = conn.prepare_cached(
        "INSERT INTO catalog_entries
             (tenant, name, kind, workload, aliases, team, depends_on, provenance, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
         ON CONFLICT (tenant, name) DO UPDATE SET
             kind = excluded.kind, workload = excluded.workload, aliases = excluded.aliases,
             team = excluded.team, depends_on = excluded.depends_on,
             provenance = excluded.provenance, last_seen = excluded.last_seen",
    )?;
    let mut touch = conn.prepare_cached(
        "UPDATE catalog_entries SET last_seen = ?3 WHERE tenant = ?1 AND name = ?2",
    )?;
    let written = by_name.len();
    for (name, entry) in by_name {
        let stored = select
            .query_row(params![tenant.as_str(), name], stored_entry)
            .optional()?
            .transpose()?;
        let merged = match stored {
            Some(stored) => {
                let mut merged = stored.entry.clone();
                merged.merge(entry);
                if merged == stored.entry {
                    // The common case on the ingest path: a name seen again, nothing new. Its
                    // `last_seen` moves only when it is older than a minute: expiry counts in
                    // days, and a write per name per request would cost more than the read.
                    if now.saturating_sub(nanos(stored.last_seen)) >= LAST_SEEN_GRANULARITY {
                        touch.execute(params![tenant.as_str(), name, now])?;
                    }
                    continue;
                }
                merged
            }
            None => entry,
        };
        write.execute(params![
            tenant.as_str(),
            name,
            merged.kind,
            merged.workload,
            json_list(&merged.aliases)?,
            merged.team,
            json_list(&merged.depends_on)?,
            merged.provenance.as_str(),
            now,
        ])?;
    }
    Ok(written)
}

/// The tenant's whole catalog, ordered by name.
pub(crate) fn catalog(conn: &Connection, tenant: &TenantId) -> Result<Catalog> {
    let entries = query(
        conn,
        tenant,
        &CatalogQuery {
            limit: usize::MAX,
            ..CatalogQuery::default()
        },
    )?;
    Ok(Catalog::new(entries.into_iter().map(|e| e.entry).collect()))
}

/// One page of the tenant's catalog, ordered by name, after `query.after`.
pub(crate) fn query(
    conn: &Connection,
    tenant: &TenantId,
    query: &CatalogQuery,
) -> Result<Vec<StoredCatalogEntry>> {
    let mut statement = conn.prepare_cached(
        "SELECT name, kind, workload, aliases, team, depends_on, provenance, first_seen, last_seen
         FROM catalog_entries
         WHERE tenant = ?1
           AND (?2 IS NULL OR kind = ?2)
           AND (?3 IS NULL OR provenance = ?3)
           AND (?4 IS NULL OR name > ?4)
         ORDER BY name
         LIMIT ?5",
    )?;
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    let rows = statement.query_map(
        params![
            tenant.as_str(),
            query.kind,
            query.provenance.map(EntityProvenance::as_str),
            query.after,
            limit
        ],
        stored_entry,
    )?;
    let mut entries = Vec::new();
    for row in rows {
        entries.push(row??);
    }
    Ok(entries)
}

/// Deletes observed names not seen since `cutoff`.
pub(crate) fn expire(conn: &Connection, cutoff: i64) -> Result<u64> {
    let deleted = conn.execute(
        &format!("DELETE FROM catalog_entries WHERE last_seen < ?1 AND provenance IN ({OBSERVED})"),
        [cutoff],
    )?;
    Ok(deleted as u64)
}

fn json_list(items: &[String]) -> Result<String> {
    serde_json::to_string(items).map_err(internal)
}

/// A row, or the reason it cannot be read (a corrupt column is a store failure, not a SQL one).
fn stored_entry(row: &Row<'_>) -> rusqlite::Result<Result<StoredCatalogEntry>> {
    let name: String = row.get(0)?;
    let aliases: String = row.get(3)?;
    let depends_on: String = row.get(5)?;
    let provenance: String = row.get(6)?;
    let (kind, workload, team) = (row.get(1)?, row.get(2)?, row.get(4)?);
    let (first_seen, last_seen): (i64, i64) = (row.get(7)?, row.get(8)?);
    Ok((|| {
        let provenance = EntityProvenance::parse(&provenance).ok_or_else(|| {
            internal(format!(
                "catalog entry {name:?} has provenance {provenance:?}"
            ))
        })?;
        Ok(StoredCatalogEntry {
            entry: CatalogEntry {
                kind,
                workload,
                aliases: serde_json::from_str(&aliases).map_err(internal)?,
                team,
                depends_on: serde_json::from_str(&depends_on).map_err(internal)?,
                ..CatalogEntry::new(name, provenance)
            },
            first_seen: timestamp(first_seen),
            last_seen: timestamp(last_seen),
        })
    })())
}
