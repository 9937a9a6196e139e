//! The label pipeline's tables: label jobs, snapshot queries with their captures, candidates.

use evalmint_model::{CandidateLabel, CaptureStatus, FeedbackId, SnapshotQuery, TenantId, TraceId};
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{internal, timestamp};
use super::writer::WriteContext;
use crate::labels::next_lease_token;
use crate::{
    CandidateQuery, CaptureOrder, CaptureOutcome, CaptureTask, FeedbackLabelState, LabelJob,
    LabelOutcome, PipelineStats, Result, StoreError,
};

/// Queues (or re-arms) the label job of an investigation that just received feedback.
pub(crate) fn enqueue_label_job(
    conn: &Connection,
    tenant: &TenantId,
    trace: TraceId,
    now: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO label_jobs (tenant, trace_id, state, due_at, first_queued_at)
         VALUES (?1, ?2, 'pending', ?3, ?3)
         ON CONFLICT (tenant, trace_id) DO UPDATE SET
             state = 'pending',
             generation = generation + 1,
             due_at = min(due_at, excluded.due_at)",
    )?
    .execute(params![tenant.as_str(), &trace.as_bytes()[..], now])?;
    Ok(())
}

/// Makes a waiting label job due now, e.g. because its trace or its last capture arrived.
pub(crate) fn wake_label_job(
    conn: &Connection,
    tenant: &str,
    trace: &[u8],
    now: i64,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE label_jobs SET due_at = ?3
         WHERE tenant = ?1 AND trace_id = ?2 AND state = 'pending' AND due_at > ?3",
    )?
    .execute(params![tenant, trace, now])?;
    Ok(())
}

fn trace_of(bytes: &[u8]) -> Result<TraceId> {
    TraceId::from_bytes(bytes).map_err(internal)
}

pub(crate) fn claim_label_jobs(
    conn: &Connection,
    now: i64,
    lease_nanos: i64,
    limit: usize,
) -> Result<Vec<LabelJob>> {
    let rows: Vec<(String, Vec<u8>, i64, i64, i64)> = conn
        .prepare_cached(
            "SELECT tenant, trace_id, generation, attempts, first_queued_at FROM label_jobs
             WHERE state = 'pending' AND due_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1)
             ORDER BY due_at LIMIT ?2",
        )?
        .query_map(params![now, limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut lease = conn.prepare_cached(
        "UPDATE label_jobs SET lease_until = ?3, attempts = attempts + 1
         WHERE tenant = ?1 AND trace_id = ?2",
    )?;
    let mut jobs = Vec::with_capacity(rows.len());
    for (tenant, trace, generation, attempts, first_queued_at) in rows {
        lease.execute(params![tenant, trace, now.saturating_add(lease_nanos)])?;
        jobs.push(LabelJob {
            tenant: TenantId::new(&tenant).map_err(internal)?,
            trace_id: trace_of(&trace)?,
            generation,
            attempts: u32::try_from(attempts + 1).unwrap_or(u32::MAX),
            first_queued_at: timestamp(first_queued_at),
        });
    }
    Ok(jobs)
}

pub(crate) fn defer_label_job(
    conn: &Connection,
    context: &mut WriteContext<'_>,
    job: &LabelJob,
    due_at: i64,
    error: Option<String>,
) -> Result<()> {
    let now = context.now;
    if !holds_claim(conn, job)? {
        return Ok(());
    }
    // A deferral waits for what the job asked for, unless it already came: a newer generation
    // of feedback, or captures that all ended while the job held its claim (their wake-up found
    // the job claimed and would otherwise be lost).
    conn.prepare_cached(
        "UPDATE label_jobs SET
             due_at = CASE WHEN generation = ?3
                            AND (NOT EXISTS (SELECT 1 FROM snapshot_queries q
                                             WHERE q.tenant = ?1 AND q.trace_id = ?2)
                                 OR EXISTS (SELECT 1 FROM snapshot_queries q
                                            WHERE q.tenant = ?1 AND q.trace_id = ?2
                                              AND q.status = 'pending'))
                       THEN ?4 ELSE ?5 END,
             lease_until = NULL,
             last_error = ?6
         WHERE tenant = ?1 AND trace_id = ?2",
    )?
    .execute(params![
        job.tenant.as_str(),
        &job.trace_id.as_bytes()[..],
        job.generation,
        due_at,
        now,
        error
    ])?;
    // A run that was under way when all of the investigation's feedback was erased may have
    // planned queries since; they have no label to serve.
    let feedback_left: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM feedback WHERE tenant = ?1 AND investigation_id = ?2)",
        )?
        .query_row(
            params![job.tenant.as_str(), &job.trace_id.as_bytes()[..]],
            |r| r.get(0),
        )?;
    if !feedback_left {
        super::erasure::drop_snapshot(
            conn,
            &job.tenant,
            job.trace_id,
            &mut context.released_blobs,
        )?;
    }
    Ok(())
}

pub(crate) fn finish_label_job(
    conn: &Connection,
    job: &LabelJob,
    outcome: LabelOutcome,
    now: i64,
) -> Result<()> {
    let (tenant, trace) = (job.tenant.as_str(), &job.trace_id.as_bytes()[..]);
    if !holds_claim(conn, job)? {
        return Ok(());
    }
    if let Ok(candidate) = &outcome.result
        && !all_feedback_exists(conn, &job.tenant, &candidate.provenance.feedback_ids)?
    {
        // Feedback the draft read was erased while the job ran: the draft may quote it, so it is
        // dropped and the job runs again without it.
        conn.prepare_cached(
            "UPDATE label_jobs SET state = 'pending', due_at = ?3, lease_until = NULL,
                 last_error = 'feedback erased while drafting'
             WHERE tenant = ?1 AND trace_id = ?2",
        )?
        .execute(params![tenant, trace, now])?;
        return Ok(());
    }
    let (state, detail) = match outcome.result {
        Ok(mut candidate) => {
            let version: i64 = conn
                .prepare_cached(
                    "SELECT MAX(COALESCE((SELECT MAX(version) FROM candidates
                                          WHERE tenant = ?1 AND trace_id = ?2), 0),
                                COALESCE((SELECT last_version FROM label_jobs
                                          WHERE tenant = ?1 AND trace_id = ?2), 0)) + 1",
                )?
                .query_row(params![tenant, trace], |r| r.get(0))?;
            conn.prepare_cached(
                "UPDATE label_jobs SET last_version = ?3 WHERE tenant = ?1 AND trace_id = ?2",
            )?
            .execute(params![tenant, trace, version])?;
            crate::labels::number_candidate(&mut candidate, job.trace_id, version, now);
            conn.prepare_cached(
                "UPDATE candidates SET current = 0 WHERE tenant = ?1 AND trace_id = ?2 AND current = 1",
            )?
            .execute(params![tenant, trace])?;
            conn.prepare_cached(
                "INSERT INTO candidates
                     (id, tenant, trace_id, version, current, route, audit, created_at, body,
                      lowest_score)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                candidate.id,
                tenant,
                trace,
                version,
                candidate.route.as_str(),
                candidate.audit,
                now,
                crate::encoding::encode(&*candidate)?,
                crate::labels::lowest_score(&candidate)
            ])?;
            super::review::insert_candidate_segments(conn, &job.tenant, &candidate)?;
            if candidate.route == evalmint_model::Route::Admit {
                super::review::admit(conn, &job.tenant, &candidate)?;
            }
            ("candidate", candidate.id)
        }
        Err(reason) => ("not_candidate", reason),
    };
    conn.prepare_cached(
        "UPDATE feedback SET label_state = ?3, label_detail = ?4
         WHERE tenant = ?1 AND investigation_id = ?2",
    )?
    .execute(params![tenant, trace, state, detail])?;
    let mut exclude = conn.prepare_cached(
        "UPDATE feedback SET label_state = 'not_candidate', label_detail = ?3
         WHERE tenant = ?1 AND id = ?2",
    )?;
    for (id, reason) in outcome.excluded {
        exclude.execute(params![tenant, &id.as_uuid().as_bytes()[..], reason])?;
    }
    conn.prepare_cached(
        "UPDATE label_jobs SET
             state = CASE WHEN generation = ?3 THEN 'done' ELSE 'pending' END,
             due_at = ?4, lease_until = NULL, last_error = NULL
         WHERE tenant = ?1 AND trace_id = ?2",
    )?
    .execute(params![tenant, trace, job.generation, now])?;
    Ok(())
}

/// True while no other worker has claimed the job since `job` was claimed (see
/// [`LabelJob::attempts`]).
fn holds_claim(conn: &Connection, job: &LabelJob) -> Result<bool> {
    let attempts: Option<i64> = conn
        .prepare_cached("SELECT attempts FROM label_jobs WHERE tenant = ?1 AND trace_id = ?2")?
        .query_row(
            params![job.tenant.as_str(), &job.trace_id.as_bytes()[..]],
            |r| r.get(0),
        )
        .optional()?;
    let holds = attempts == Some(i64::from(job.attempts));
    if !holds {
        tracing::info!(trace = %job.trace_id, "a label job was claimed again after its lease ran out; this claim's result is dropped");
    }
    Ok(holds)
}

/// True when every id names stored feedback of `tenant`.
fn all_feedback_exists(conn: &Connection, tenant: &TenantId, ids: &[FeedbackId]) -> Result<bool> {
    let mut exists = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM feedback WHERE tenant = ?1 AND id = ?2)")?;
    for id in ids {
        let found: bool = exists.query_row(
            params![tenant.as_str(), &id.as_uuid().as_bytes()[..]],
            |r| r.get(0),
        )?;
        if !found {
            return Ok(false);
        }
    }
    Ok(true)
}

pub(crate) fn plan_snapshot(
    conn: &Connection,
    tenant: &TenantId,
    trace: TraceId,
    queries: Vec<SnapshotQuery>,
    now: i64,
) -> Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO snapshot_queries
             (tenant, trace_id, query_id, deadline, status, planned_at, due_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
    )?;
    for query in queries {
        insert.execute(params![
            tenant.as_str(),
            &trace.as_bytes()[..],
            query.id,
            super::rows::nanos(query.deadline),
            query.status.as_str(),
            now,
            crate::encoding::encode(&query)?
        ])?;
    }
    Ok(())
}

pub(crate) fn snapshot(
    conn: &Connection,
    tenant: &TenantId,
    trace: TraceId,
) -> Result<Vec<SnapshotQuery>> {
    let bodies: Vec<String> = conn
        .prepare_cached(
            "SELECT body FROM snapshot_queries WHERE tenant = ?1 AND trace_id = ?2
             ORDER BY planned_at, query_id",
        )?
        .query_map(params![tenant.as_str(), &trace.as_bytes()[..]], |r| {
            r.get(0)
        })?
        .collect::<rusqlite::Result<_>>()?;
    bodies.iter().map(|b| crate::encoding::decode(b)).collect()
}

/// Where a frozen result is: in the row, or in the blob store under a digest.
pub(crate) enum StoredResult {
    Inline(Vec<u8>),
    Blob(String),
}

pub(crate) fn snapshot_result(
    conn: &Connection,
    tenant: &TenantId,
    trace: TraceId,
    query_id: &str,
) -> Result<Option<StoredResult>> {
    let row: Option<(Option<Vec<u8>>, Option<String>)> = conn
        .prepare_cached(
            "SELECT result_inline, result_blob FROM snapshot_queries
             WHERE tenant = ?1 AND trace_id = ?2 AND query_id = ?3",
        )?
        .query_row(
            params![tenant.as_str(), &trace.as_bytes()[..], query_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(match row {
        Some((Some(bytes), _)) => Some(StoredResult::Inline(bytes)),
        Some((None, Some(digest))) => Some(StoredResult::Blob(digest)),
        _ => None,
    })
}

pub(crate) fn claim_captures(
    conn: &Connection,
    order: CaptureOrder,
    now: i64,
    lease_nanos: i64,
    limit: usize,
) -> Result<Vec<CaptureTask>> {
    let sql = match order {
        CaptureOrder::EarliestDeadline => {
            "SELECT tenant, trace_id, body, lease_until FROM snapshot_queries INDEXED BY snapshot_queries_pending
             WHERE status = 'pending' AND due_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1)
             ORDER BY deadline LIMIT ?2"
        }
        CaptureOrder::FirstInFirstOut => {
            "SELECT tenant, trace_id, body, lease_until FROM snapshot_queries INDEXED BY snapshot_queries_pending_fifo
             WHERE status = 'pending' AND due_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1)
             ORDER BY planned_at LIMIT ?2"
        }
    };
    let rows: Vec<(String, Vec<u8>, String, Option<i64>)> = conn
        .prepare_cached(sql)?
        .query_map(params![now, limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut lease = conn.prepare_cached(
        "UPDATE snapshot_queries SET lease_until = ?4
         WHERE tenant = ?1 AND trace_id = ?2 AND query_id = ?3",
    )?;
    let mut tasks = Vec::with_capacity(rows.len());
    for (tenant, trace, body, previous_lease) in rows {
        let query: SnapshotQuery = crate::encoding::decode(&body)?;
        let lease_token = next_lease_token(now, lease_nanos, previous_lease);
        lease.execute(params![tenant, trace, query.id, lease_token])?;
        tasks.push(CaptureTask {
            tenant: TenantId::new(&tenant).map_err(internal)?,
            trace_id: trace_of(&trace)?,
            query,
            lease_token,
        });
    }
    Ok(tasks)
}

pub(crate) fn record_capture(
    conn: &Connection,
    context: &mut WriteContext<'_>,
    task: CaptureTask,
    outcome: CaptureOutcome,
) -> Result<()> {
    let now = context.now;
    // Small results stay in the row; large ones go to the blob store. Either way the digest names
    // the content.
    let (digest, inline, blob) = match &outcome.result {
        Some(bytes) if bytes.len() <= context.inline_result_max => (
            Some(crate::BlobStore::digest(bytes)),
            Some(bytes.clone()),
            None,
        ),
        Some(bytes) => {
            let digest = context
                .blobs
                .put(bytes, super::rows::system_time(now))
                .map_err(internal)?;
            (Some(digest.clone()), None, Some(digest))
        }
        None => (None, None, None),
    };
    let (query, due_at) = crate::labels::captured_query(task.query.clone(), &outcome, digest, now);
    let (tenant, trace) = (task.tenant.as_str(), &task.trace_id.as_bytes()[..]);
    let changed = conn
        .prepare_cached(
            "UPDATE snapshot_queries SET status = ?4, due_at = ?5, lease_until = NULL,
                 result_blob = COALESCE(?6, result_blob),
                 result_inline = COALESCE(?7, result_inline), body = ?8
             WHERE tenant = ?1 AND trace_id = ?2 AND query_id = ?3 AND status = 'pending'
               AND lease_until = ?9",
        )?
        .execute(params![
            tenant,
            trace,
            query.id,
            query.status.as_str(),
            due_at,
            blob.as_ref().filter(|_| query.status.is_terminal()),
            inline.filter(|_| query.status.is_terminal()),
            crate::encoding::encode(&query)?,
            task.lease_token
        ])?;
    if changed == 0 {
        // Our lease ran out and another worker claimed or finished this query: its claim stands.
        if let Some(blob) = blob {
            context.released_blobs.push(blob);
        }
        return Ok(());
    }
    let pending_left: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM snapshot_queries
                            WHERE tenant = ?1 AND trace_id = ?2 AND status = 'pending')",
        )?
        .query_row(params![tenant, trace], |r| r.get(0))?;
    if !pending_left {
        wake_label_job(conn, tenant, trace, now)?;
    }
    Ok(())
}

pub(crate) fn candidates(
    conn: &Connection,
    tenant: &TenantId,
    query: &CandidateQuery,
) -> Result<Vec<CandidateLabel>> {
    let mut sql = String::from("SELECT body FROM candidates WHERE tenant = ?1 AND current = 1");
    let mut values: Vec<String> = vec![tenant.as_str().to_owned()];
    if !query.routes.is_empty() {
        let placeholders: Vec<String> = query
            .routes
            .iter()
            .map(|route| {
                values.push(route.as_str().to_owned());
                format!("?{}", values.len())
            })
            .collect();
        sql += &format!(" AND route IN ({})", placeholders.join(", "));
    }
    if query.audit_only {
        sql += " AND audit = 1";
    }
    sql += &format!(" ORDER BY created_at DESC, id LIMIT {}", query.limit.max(1));
    let bodies: Vec<String> = conn
        .prepare(&sql)?
        .query_map(rusqlite::params_from_iter(values.iter()), |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    bodies.iter().map(|b| crate::encoding::decode(b)).collect()
}

pub(crate) fn candidate(
    conn: &Connection,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<CandidateLabel>> {
    conn.prepare_cached("SELECT body FROM candidates WHERE tenant = ?1 AND id = ?2")?
        .query_row(params![tenant.as_str(), id], |r| r.get::<_, String>(0))
        .optional()?
        .map(|b| crate::encoding::decode(&b))
        .transpose()
}

pub(crate) fn feedback_label_state(
    conn: &Connection,
    tenant: &TenantId,
    id: FeedbackId,
) -> Result<Option<FeedbackLabelState>> {
    let row: Option<(String, Option<String>)> = conn
        .prepare_cached(
            "SELECT label_state, label_detail FROM feedback WHERE tenant = ?1 AND id = ?2",
        )?
        .query_row(
            params![tenant.as_str(), &id.as_uuid().as_bytes()[..]],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    row.map(|(state, detail)| match state.as_str() {
        "pending" => Ok(FeedbackLabelState::Pending),
        "candidate" => Ok(FeedbackLabelState::Candidate(detail.unwrap_or_default())),
        "not_candidate" => Ok(FeedbackLabelState::NotCandidate(detail.unwrap_or_default())),
        other => Err(StoreError::Internal(format!(
            "unknown label state {other:?}"
        ))),
    })
    .transpose()
}

pub(crate) fn pipeline_stats(conn: &Connection, tenant: &TenantId) -> Result<PipelineStats> {
    let mut stats = PipelineStats::default();
    let by = |sql: &str, assign: &mut dyn FnMut(&str, u64)| -> Result<()> {
        let rows: Vec<(String, i64)> = conn
            .prepare_cached(sql)?
            .query_map([tenant.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (key, count) in rows {
            assign(&key, count as u64);
        }
        Ok(())
    };
    by(
        "SELECT label_state, count(*) FROM feedback WHERE tenant = ?1 GROUP BY label_state",
        &mut |state, n| match state {
            "pending" => stats.feedback_pending = n,
            "candidate" => stats.feedback_candidate = n,
            _ => stats.feedback_not_candidate += n,
        },
    )?;
    by(
        "SELECT route, count(*) FROM candidates WHERE tenant = ?1 AND current = 1 GROUP BY route",
        &mut |route, n| match route {
            "admit" => stats.candidates_admitted = n,
            "review" => stats.candidates_review = n,
            _ => stats.candidates_insufficient += n,
        },
    )?;
    by(
        "SELECT 'audit', count(*) FROM candidates WHERE tenant = ?1 AND current = 1 AND audit = 1",
        &mut |_, n| stats.candidates_audit = n,
    )?;
    by(
        "SELECT status, count(*) FROM snapshot_queries WHERE tenant = ?1 GROUP BY status",
        &mut |status, n| match CaptureStatus::parse(status) {
            Some(CaptureStatus::Pending) => stats.queries_pending = n,
            Some(CaptureStatus::Captured) => stats.queries_captured = n,
            Some(CaptureStatus::Recorded) => stats.queries_recorded = n,
            Some(CaptureStatus::Expired) => stats.queries_expired = n,
            _ => stats.queries_failed += n,
        },
    )?;
    Ok(stats)
}
