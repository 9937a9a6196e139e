//! Erasing feedback on request (one user's, or one feedback by id): the feedback rows, the label
//! versions that read them, the snapshots of labels that rested on nothing else, a tombstone of
//! their idempotency keys, and an audit record without the erased text. User ids and idempotency
//! keys are kept only as HMACs under a secret of this installation.

use std::collections::{BTreeSet, HashSet};

use evalmint_model::{CandidateLabel, FeedbackId, TenantId, TraceId};
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{internal, nanos, timestamp};
use super::writer::{WriteContext, blob_referenced};
use crate::erasure::{
    ERASURE_SECRET, Selection, keyed, keyed_sha256, new_secret, refuse_if_erased, subject_columns,
    subject_from_columns,
};
use crate::{Erasure, ErasureSubject, Result};

/// How audit rows written before the secret existed name a user: an unsalted SHA-256.
const LEGACY_PREFIX: &str = "sha256:";

/// The erasure secret, if it was ever created.
fn secret(conn: &Connection) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached("SELECT value FROM installation_secrets WHERE name = ?1")?
        .query_row([ERASURE_SECRET], |r| r.get(0))
        .optional()?)
}

/// The erasure secret, created (32 random bytes) on first use; only the writer calls this.
fn secret_or_create(conn: &Connection) -> Result<Vec<u8>> {
    if let Some(secret) = secret(conn)? {
        return Ok(secret);
    }
    let secret = new_secret()?;
    conn.prepare_cached("INSERT INTO installation_secrets (name, value) VALUES (?1, ?2)")?
        .execute(params![ERASURE_SECRET, secret])?;
    Ok(secret)
}

/// Keys the audit rows that still name a user by an unsalted SHA-256 (written before migration
/// 0010). Runs when the store opens, before anything else writes.
pub(crate) fn key_legacy_audit_rows(conn: &mut Connection) -> Result<usize> {
    let tx = conn.transaction()?;
    let legacy: Vec<(String, String, String)> = tx
        .prepare(
            "SELECT tenant, id, subject_id FROM erasures
             WHERE subject = 'user' AND subject_id LIKE 'sha256:%'",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if legacy.is_empty() {
        return Ok(0);
    }
    let secret = secret_or_create(&tx)?;
    for (tenant, id, subject_id) in &legacy {
        let sha256 = hex::decode(&subject_id[LEGACY_PREFIX.len()..]).map_err(internal)?;
        tx.execute(
            "UPDATE erasures SET subject_id = ?3 WHERE tenant = ?1 AND id = ?2",
            params![tenant, id, keyed_sha256(&secret, &sha256)],
        )?;
    }
    tx.commit()?;
    Ok(legacy.len())
}

/// Refuses an idempotency key whose feedback was erased.
pub(crate) fn check_not_erased(conn: &Connection, tenant: &TenantId, key: &str) -> Result<()> {
    let Some(secret) = secret(conn)? else {
        return Ok(());
    };
    let erased: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM erased_idempotency_keys
                            WHERE tenant = ?1 AND key_hmac = ?2)",
        )?
        .query_row(params![tenant.as_str(), keyed(&secret, key)], |r| r.get(0))?;
    refuse_if_erased(erased, key)
}

type FeedbackRow = (Vec<u8>, Option<Vec<u8>>, Option<String>);

fn selected_rows(
    conn: &Connection,
    tenant: &TenantId,
    selection: &Selection<'_>,
) -> Result<Vec<FeedbackRow>> {
    let read = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?, r.get(2)?));
    let rows = match selection {
        Selection::User(user_id) => conn
            .prepare_cached(
                "SELECT id, investigation_id, idempotency_key FROM feedback
                 WHERE tenant = ?1 AND user_id = ?2",
            )?
            .query_map(params![tenant.as_str(), user_id], read)?
            .collect::<rusqlite::Result<_>>()?,
        Selection::Feedback(id) => conn
            .prepare_cached(
                "SELECT id, investigation_id, idempotency_key FROM feedback
                 WHERE tenant = ?1 AND id = ?2",
            )?
            .query_map(params![tenant.as_str(), &id.as_uuid().as_bytes()[..]], read)?
            .collect::<rusqlite::Result<_>>()?,
    };
    Ok(rows)
}

/// Erases the selected feedback of `tenant`; `None` when an erasure by id finds nothing (an
/// erasure of a user is recorded even when the user has no feedback).
pub(crate) fn erase(
    conn: &Connection,
    context: &mut WriteContext<'_>,
    tenant: &TenantId,
    selection: Selection<'_>,
    requested_by: &str,
) -> Result<Option<Erasure>> {
    let now = context.now;
    let rows = selected_rows(conn, tenant, &selection)?;
    if matches!(selection, Selection::Feedback(_)) && rows.is_empty() {
        return Ok(None);
    }
    let secret = secret_or_create(conn)?;
    let subject = match selection {
        Selection::Feedback(feedback_id) => ErasureSubject::Feedback { feedback_id },
        Selection::User(user_id) => ErasureSubject::User {
            user_id_hmac: keyed(&secret, user_id),
        },
    };
    let mut erased = HashSet::new();
    let mut traces = BTreeSet::new();
    let mut delete = conn.prepare_cached("DELETE FROM feedback WHERE tenant = ?1 AND id = ?2")?;
    let mut tombstone = conn.prepare_cached(
        "INSERT INTO erased_idempotency_keys (tenant, key_hmac, erased_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (tenant, key_hmac) DO NOTHING",
    )?;
    for (id, trace, idempotency_key) in rows {
        delete.execute(params![tenant.as_str(), &id])?;
        if let Some(key) = idempotency_key {
            tombstone.execute(params![tenant.as_str(), keyed(&secret, &key), now])?;
        }
        erased.insert(FeedbackId::from_uuid(
            uuid::Uuid::from_slice(&id).map_err(internal)?,
        ));
        traces.extend(trace);
    }

    let mut record = Erasure {
        id: uuid::Uuid::now_v7().to_string(),
        requested_by: requested_by.to_owned(),
        requested_at: timestamp(now),
        subject,
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
            delete_versions(conn, tenant, versions.iter().map(|v| v.id.as_str()), now)?;
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
        delete_versions(conn, tenant, dependent.iter().map(|v| v.id.as_str()), now)?;
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

    let (subject, subject_id) = subject_columns(&record.subject);
    conn.prepare_cached(
        "INSERT INTO erasures (id, tenant, requested_by, requested_at, subject, subject_id,
             feedback_erased, labels_withdrawn, labels_redrafted, queries_removed, blobs_released)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        record.id,
        tenant.as_str(),
        record.requested_by,
        nanos(record.requested_at),
        subject,
        subject_id,
        record.feedback_erased as i64,
        record.labels_withdrawn as i64,
        record.labels_redrafted as i64,
        record.queries_removed as i64,
        record.blobs_released as i64,
    ])?;
    Ok(Some(record))
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
    now: i64,
) -> Result<()> {
    let mut delete = conn.prepare_cached("DELETE FROM candidates WHERE tenant = ?1 AND id = ?2")?;
    for id in ids {
        delete.execute(params![tenant.as_str(), id])?;
        super::review::delete_versions_of_candidate(conn, tenant, id, now)?;
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
    let mut statement = conn.prepare_cached(
        "SELECT id, requested_by, requested_at, subject, subject_id, feedback_erased,
                labels_withdrawn, labels_redrafted, queries_removed, blobs_released
         FROM erasures WHERE tenant = ?1 ORDER BY requested_at, id",
    )?;
    read_erasures(statement.query([tenant.as_str()])?)
}

/// The erasures of one user's feedback, found by the keyed hash of the user id.
pub(crate) fn user_erasures(
    conn: &Connection,
    tenant: &TenantId,
    user_id: &str,
) -> Result<Vec<Erasure>> {
    let Some(secret) = secret(conn)? else {
        return Ok(Vec::new());
    };
    let mut statement = conn.prepare_cached(
        "SELECT id, requested_by, requested_at, subject, subject_id, feedback_erased,
                labels_withdrawn, labels_redrafted, queries_removed, blobs_released
         FROM erasures WHERE tenant = ?1 AND subject = 'user' AND subject_id = ?2
         ORDER BY requested_at, id",
    )?;
    read_erasures(statement.query(params![tenant.as_str(), keyed(&secret, user_id)])?)
}

fn read_erasures(mut rows: rusqlite::Rows<'_>) -> Result<Vec<Erasure>> {
    let mut erasures = Vec::new();
    while let Some(r) = rows.next()? {
        let subject: String = r.get(3)?;
        erasures.push(Erasure {
            id: r.get(0)?,
            requested_by: r.get(1)?,
            requested_at: timestamp(r.get(2)?),
            subject: subject_from_columns(&subject, r.get(4)?)?,
            feedback_erased: r.get::<_, i64>(5)? as u64,
            labels_withdrawn: r.get::<_, i64>(6)? as u64,
            labels_redrafted: r.get::<_, i64>(7)? as u64,
            queries_removed: r.get::<_, i64>(8)? as u64,
            blobs_released: r.get::<_, i64>(9)? as u64,
        });
    }
    Ok(erasures)
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    #[test]
    fn audit_rows_with_a_plain_sha256_are_keyed_when_the_store_opens() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate_before(&mut conn, 10).unwrap();
        let plain = hex::encode(Sha256::digest(b"u-1"));
        conn.execute(
            "INSERT INTO erasures (id, tenant, requested_by, requested_at, user_id_sha256,
                 feedback_erased, labels_withdrawn, labels_redrafted, queries_removed,
                 blobs_released)
             VALUES ('e1', 'acme', 'key_ops', 0, ?1, 2, 1, 0, 0, 0)",
            [&plain],
        )
        .unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        assert_eq!(key_legacy_audit_rows(&mut conn).unwrap(), 1);
        assert_eq!(key_legacy_audit_rows(&mut conn).unwrap(), 0, "once");

        let acme = TenantId::new("acme").unwrap();
        let audit = erasures(&conn, &acme).unwrap();
        assert_eq!(audit.len(), 1);
        let ErasureSubject::User { user_id_hmac } = &audit[0].subject else {
            panic!("{audit:?}");
        };
        assert_ne!(user_id_hmac, &plain, "the plain digest is gone");
        assert_eq!(audit[0].feedback_erased, 2);
        assert_eq!(user_erasures(&conn, &acme, "u-1").unwrap(), audit);
        assert!(user_erasures(&conn, &acme, "u-2").unwrap().is_empty());
    }
}
