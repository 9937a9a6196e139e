//! The entity catalog on Postgres: the same merge as the embedded store (one read of every name
//! of a request, a write only for names that changed or whose `last_seen` is a minute old).

use std::collections::{BTreeMap, HashMap};

use deadpool_postgres::GenericClient;
use evalmint_model::{CatalogEntry, EntityProvenance, TenantId};
use tokio_postgres::Row;

use crate::convert::{internal, nanos, timestamp};
use crate::{CatalogQuery, Result, StoredCatalogEntry};

/// Entries whose provenance is observation (traces, tool calls, Prometheus) expire when not seen
/// again; declared and confirmed names stay until changed.
const OBSERVED: &[&str] = &["trace", "tool_call", "prometheus"];

/// `last_seen` of a name seen again is rewritten only when older than this (nanoseconds).
const LAST_SEEN_GRANULARITY: i64 = 60_000_000_000;

const COLUMNS: &str =
    "name, kind, workload, aliases, team, depends_on, provenance, first_seen, last_seen";

pub(crate) async fn upsert(
    db: &impl GenericClient,
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
    let names: Vec<&str> = by_name.keys().map(String::as_str).collect();
    let mut stored: HashMap<String, StoredCatalogEntry> = HashMap::new();
    for row in db
        .query(
            &format!("SELECT {COLUMNS} FROM catalog_entries WHERE tenant = $1 AND name = ANY($2)"),
            &[&tenant.as_str(), &names],
        )
        .await?
    {
        let entry = stored_entry(&row)?;
        stored.insert(entry.entry.name.clone(), entry);
    }
    let written = by_name.len();
    for (name, entry) in by_name {
        let merged = match stored.remove(&name) {
            Some(stored) => {
                let mut merged = stored.entry.clone();
                merged.merge(entry);
                if merged == stored.entry {
                    if now.saturating_sub(nanos(stored.last_seen)) >= LAST_SEEN_GRANULARITY {
                        db.execute(
                            "UPDATE catalog_entries SET last_seen = $3
                             WHERE tenant = $1 AND name = $2",
                            &[&tenant.as_str(), &name, &now],
                        )
                        .await?;
                    }
                    continue;
                }
                merged
            }
            None => entry,
        };
        db.execute(
            "INSERT INTO catalog_entries
                 (tenant, name, kind, workload, aliases, team, depends_on, provenance, first_seen,
                  last_seen)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
             ON CONFLICT (tenant, name) DO UPDATE SET
                 kind = excluded.kind, workload = excluded.workload, aliases = excluded.aliases,
                 team = excluded.team, depends_on = excluded.depends_on,
                 provenance = excluded.provenance, last_seen = excluded.last_seen",
            &[
                &tenant.as_str(),
                &name,
                &merged.kind,
                &merged.workload,
                &json_list(&merged.aliases)?,
                &merged.team,
                &json_list(&merged.depends_on)?,
                &merged.provenance.as_str(),
                &now,
            ],
        )
        .await?;
    }
    Ok(written)
}

/// One page of the tenant's catalog, ordered by name, after `query.after`.
pub(crate) async fn query(
    db: &impl GenericClient,
    tenant: &TenantId,
    query: &CatalogQuery,
) -> Result<Vec<StoredCatalogEntry>> {
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    db.query(
        &format!(
            "SELECT {COLUMNS} FROM catalog_entries
             WHERE tenant = $1
               AND ($2::text IS NULL OR kind = $2)
               AND ($3::text IS NULL OR provenance = $3)
               AND ($4::text IS NULL OR name > $4 COLLATE \"C\")
             ORDER BY name COLLATE \"C\"
             LIMIT $5"
        ),
        &[
            &tenant.as_str(),
            &query.kind,
            &query.provenance.map(EntityProvenance::as_str),
            &query.after,
            &limit,
        ],
    )
    .await?
    .iter()
    .map(stored_entry)
    .collect()
}

/// Deletes observed names not seen since `cutoff`.
pub(crate) async fn expire(db: &impl GenericClient, cutoff: i64) -> Result<u64> {
    Ok(db
        .execute(
            "DELETE FROM catalog_entries WHERE last_seen < $1 AND provenance = ANY($2)",
            &[&cutoff, &OBSERVED],
        )
        .await?)
}

fn json_list(items: &[String]) -> Result<String> {
    serde_json::to_string(items).map_err(internal)
}

fn stored_entry(row: &Row) -> Result<StoredCatalogEntry> {
    let name: String = row.get(0);
    let provenance: String = row.get(6);
    let provenance = EntityProvenance::parse(&provenance).ok_or_else(|| {
        internal(format!(
            "catalog entry {name:?} has provenance {provenance:?}"
        ))
    })?;
    Ok(StoredCatalogEntry {
        entry: CatalogEntry {
            kind: row.get(1),
            workload: row.get(2),
            aliases: serde_json::from_str(row.get(3)).map_err(internal)?,
            team: row.get(4),
            depends_on: serde_json::from_str(row.get(5)).map_err(internal)?,
            ..CatalogEntry::new(name, provenance)
        },
        first_seen: timestamp(row.get(7)),
        last_seen: timestamp(row.get(8)),
    })
}
