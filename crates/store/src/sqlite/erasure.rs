//! Erasing one user's feedback on request: the feedback rows, the label versions that read them,
//! the snapshots of labels that rested on nothing else, and an audit record without the erased
//! text.

use std::collections::{BTreeSet, HashSet};

use evalmint_model::{CandidateLabel, FeedbackId, TenantId, TraceId};
use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

use super::rows::{internal, nanos, timestamp};
use super::writer::{WriteContext, blob_referenced};
use crate::{Erasure, Result};

pub(crate) fn user_id_sha256(user_id: &str) -> String {
    hex::encode(Sha256::digest(user_id.as_bytes()))
}

pub(crate) fn erase_user_feedback(
    conn: &Connection,
    context: &mut WriteContext<'_>,
    tenant: &TenantId,
    user_id: &str,
    requested_by: &str,
) -> Result<Erasure> {
    let now = context.now;
    let rows: Vec<(Vec<u8>, Option<Vec<u8>>)> = conn
        .prepare_cached(
            "SELECT id, investigation_id FROM feedback WHERE tenant = ?1 AND user_id = ?2",
        )?
        .query_map(params![tenant.as_str(), user_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let erased: HashSet<FeedbackId> = rows
        .iter()
        .map(|(id, _)| uuid::Uuid::from_slice(id).map(FeedbackId::from_uuid))
        .collect::<Result<_, _>>()
        .map_err(internal)?;
    let traces: BTreeSet<Vec<u8>> = rows.into_iter().filter_map(|(_, trace)| trace).collect();
    conn.prepare_cached("DELETE FROM feedback WHERE tenant = ?1 AND user_id = ?2")?
        .execute(params![tenant.as_str(), user_id])?;

    let mut record = Erasure {
        id: uuid::Uuid::now_v7().to_string(),
        requested_by: requested_by.to_owned(),
        requested_at: timestamp(now),
        user_id_sha256: user_id_sha256(user_id),
        feedback_erased: erased.len() as u64,
        labels_withdrawn: 0,
        labels_redrafted: 0,
        queries_removed: 0,
        blobs_released: 0,
    };
    let mut released = Vec::new();
    for trace in &traces {
        let trace = TraceId::from_bytes(trace).map_err(internal)?;
        let remaining: i64 = conn
            .prepare_cached(
                "SELECT count(*) FROM feedback WHERE tenant = ?1 AND investigation_id = ?2",
            )?
            .query_row(params![tenant.as_str(), &trace.as_bytes()[..]], |r| {
                r.get(0)
            })?;
        let versions = label_versions(conn, tenant, trace)?;
        if remaining == 0 {
            if versions.iter().any(|v| v.current) {
                record.labels_withdrawn += 1;
            }
            delete_versions(conn, tenant, versions.iter().map(|v| v.id.as_str()))?;
            record.queries_removed += drop_snapshot(conn, tenant, trace, &mut released)?;
            // The job stays (it remembers the last version drafted) but has nothing left to do;
            // the new generation makes a run that is under way drop its draft.
            conn.prepare_cached(
                "UPDATE label_jobs SET state = 'done', generation = generation + 1,
                     lease_until = NULL, last_error = NULL
                 WHERE tenant = ?1 AND trace_id = ?2",
            )?
            .execute(params![tenant.as_str(), &trace.as_bytes()[..]])?;
            continue;
        }
        let dependent: Vec<&LabelVersion> = versions
            .iter()
            .filter(|v| v.feedback_ids.iter().any(|id| erased.contains(id)))
            .collect();
        delete_versions(conn, tenant, dependent.iter().map(|v| v.id.as_str()))?;
        if dependent.iter().any(|v| v.current) {
            record.labels_redrafted += 1;
        }
        // Re-queue even when no stored version read the erased feedback: a run under way may
        // have, and the new generation makes it start over.
        super::pipeline::enqueue_label_job(conn, tenant, trace, now)?;
        if !dependent.is_empty() {
            conn.prepare_cached(
                "UPDATE feedback SET label_state = 'pending', label_detail = NULL
                 WHERE tenant = ?1 AND investigation_id = ?2",
            )?
            .execute(params![tenant.as_str(), &trace.as_bytes()[..]])?;
        }
    }
    let mut distinct = HashSet::new();
    for digest in &released {
        if distinct.insert(digest.as_str()) && !blob_referenced(conn, digest)? {
            record.blobs_released += 1;
        }
    }
    context.released_blobs.extend(released);

    conn.prepare_cached(
        "INSERT INTO erasures (id, tenant, requested_by, requested_at, user_id_sha256,
             feedback_erased, labels_withdrawn, labels_redrafted, queries_removed, blobs_released)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        record.id,
        tenant.as_str(),
        record.requested_by,
        nanos(record.requested_at),
        record.user_id_sha256,
        record.feedback_erased as i64,
        record.labels_withdrawn as i64,
        record.labels_redrafted as i64,
        record.queries_removed as i64,
        record.blobs_released as i64,
    ])?;
    Ok(record)
}

struct LabelVersion {
    id: String,
    current: bool,
    feedback_ids: Vec<FeedbackId>,
}

fn label_versions(
    conn: &Connection,
    tenant: &TenantId,
    trace: TraceId,
) -> Result<Vec<LabelVersion>> {
    let rows: Vec<(String, bool, String)> = conn
        .prepare_cached(
            "SELECT id, current, body FROM candidates WHERE tenant = ?1 AND trace_id = ?2",
        )?
        .query_map(params![tenant.as_str(), &trace.as_bytes()[..]], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    rows.into_iter()
        .map(|(id, current, body)| {
            let label: CandidateLabel = crate::encoding::decode(&body)?;
            Ok(LabelVersion {
                id,
                current,
                feedback_ids: label.provenance.feedback_ids,
            })
        })
        .collect()
}

fn delete_versions<'a>(
    conn: &Connection,
    tenant: &TenantId,
    ids: impl Iterator<Item = &'a str>,
) -> Result<()> {
    let mut delete = conn.prepare_cached("DELETE FROM candidates WHERE tenant = ?1 AND id = ?2")?;
    for id in ids {
        delete.execute(params![tenant.as_str(), id])?;
        super::review::delete_versions_of_candidate(conn, tenant, id)?;
    }
    Ok(())
}

/// Deletes an investigation's snapshot queries; their blobs go to `released` for the collector.
/// Returns how many queries were deleted.
pub(crate) fn drop_snapshot(
    conn: &Connection,
    tenant: &TenantId,
    trace: TraceId,
    released: &mut Vec<String>,
) -> Result<u64> {
    let blobs: Vec<String> = conn
        .prepare_cached(
            "SELECT result_blob FROM snapshot_queries
             WHERE tenant = ?1 AND trace_id = ?2 AND result_blob IS NOT NULL",
        )?
        .query_map(params![tenant.as_str(), &trace.as_bytes()[..]], |r| {
            r.get(0)
        })?
        .collect::<rusqlite::Result<_>>()?;
    released.extend(blobs);
    let deleted = conn
        .prepare_cached("DELETE FROM snapshot_queries WHERE tenant = ?1 AND trace_id = ?2")?
        .execute(params![tenant.as_str(), &trace.as_bytes()[..]])?;
    Ok(deleted as u64)
}

pub(crate) fn erasures(conn: &Connection, tenant: &TenantId) -> Result<Vec<Erasure>> {
    let rows = conn
        .prepare_cached(
            "SELECT id, requested_by, requested_at, user_id_sha256, feedback_erased,
                    labels_withdrawn, labels_redrafted, queries_removed, blobs_released
             FROM erasures WHERE tenant = ?1 ORDER BY requested_at, id",
        )?
        .query_map([tenant.as_str()], |r| {
            Ok(Erasure {
                id: r.get(0)?,
                requested_by: r.get(1)?,
                requested_at: timestamp(r.get(2)?),
                user_id_sha256: r.get(3)?,
                feedback_erased: r.get::<_, i64>(4)? as u64,
                labels_withdrawn: r.get::<_, i64>(5)? as u64,
                labels_redrafted: r.get::<_, i64>(6)? as u64,
                queries_removed: r.get::<_, i64>(7)? as u64,
                blobs_released: r.get::<_, i64>(8)? as u64,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}
