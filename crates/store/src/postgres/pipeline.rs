//! The label pipeline's tables on Postgres: label jobs and snapshot queries claimed across
//! processes with `FOR UPDATE SKIP LOCKED` under fenced leases, candidates, and erasure.

use std::collections::{BTreeSet, HashSet};

use deadpool_postgres::GenericClient;
use evalmint_model::{CandidateLabel, CaptureStatus, FeedbackId, SnapshotQuery, TenantId, TraceId};
use tokio_postgres::types::ToSql;

use super::{lock_investigation, tenant_of, trace_of};
use crate::convert::{internal, nanos, timestamp};
use crate::erasure::{
    ERASURE_SECRET, Selection, keyed, new_secret, refuse_if_erased, subject_columns,
    subject_from_columns,
};
use crate::{
    CandidateQuery, CaptureOrder, CaptureOutcome, CaptureTask, Erasure, ErasureSubject,
    FeedbackLabelState, LabelJob, LabelOutcome, PipelineStats, Result, StoreError,
};

/// Queues (or re-arms) the label job of an investigation that just received feedback.
pub(crate) async fn enqueue_label_job(
    db: &impl GenericClient,
    tenant: &TenantId,
    trace: TraceId,
    now: i64,
) -> Result<()> {
    db.execute(
        &db.prepare_cached(
            "INSERT INTO label_jobs (tenant, trace_id, state, due_at, first_queued_at)
         VALUES ($1, $2, 'pending', $3, $3)
         ON CONFLICT (tenant, trace_id) DO UPDATE SET
             state = 'pending',
             generation = label_jobs.generation + 1,
             due_at = LEAST(label_jobs.due_at, excluded.due_at)",
        )
        .await?,
        &[&tenant.as_str(), &&trace.as_bytes()[..], &now],
    )
    .await?;
    Ok(())
}

/// Makes a waiting label job due now, e.g. because its last capture arrived.
async fn wake_label_job(
    db: &impl GenericClient,
    tenant: &str,
    trace: &[u8],
    now: i64,
) -> Result<()> {
    db.execute(
        &db.prepare_cached(
            "UPDATE label_jobs SET due_at = $3
         WHERE tenant = $1 AND trace_id = $2 AND state = 'pending' AND due_at > $3",
        )
        .await?,
        &[&tenant, &trace, &now],
    )
    .await?;
    Ok(())
}

fn limit_of(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Claims due jobs, earliest due first across every worker: rows another worker is claiming
/// right now are skipped, not waited for.
pub(crate) async fn claim_label_jobs(
    db: &impl GenericClient,
    now: i64,
    lease_nanos: i64,
    limit: usize,
) -> Result<Vec<LabelJob>> {
    let rows = db
        .query(
            &db.prepare_cached(
                "UPDATE label_jobs AS j SET lease_until = $2, attempts = j.attempts + 1
             FROM (SELECT tenant, trace_id FROM label_jobs
                   WHERE state = 'pending' AND due_at <= $1
                     AND (lease_until IS NULL OR lease_until <= $1)
                   ORDER BY due_at LIMIT $3
                   FOR UPDATE SKIP LOCKED) AS due
             WHERE j.tenant = due.tenant AND j.trace_id = due.trace_id
             RETURNING j.tenant, j.trace_id, j.generation, j.attempts, j.first_queued_at, j.due_at",
            )
            .await?,
            &[&now, &now.saturating_add(lease_nanos), &limit_of(limit)],
        )
        .await?;
    let mut jobs = Vec::with_capacity(rows.len());
    for row in rows {
        let due_at: i64 = row.get(5);
        jobs.push((
            due_at,
            LabelJob {
                tenant: tenant_of(row.get(0))?,
                trace_id: trace_of(row.get(1))?,
                generation: row.get(2),
                attempts: u32::try_from(row.get::<_, i32>(3)).unwrap_or(u32::MAX),
                first_queued_at: timestamp(row.get(4)),
            },
        ));
    }
    jobs.sort_by_key(|(due_at, _)| *due_at);
    Ok(jobs.into_iter().map(|(_, job)| job).collect())
}

/// Locks the job's row and answers whether `job` is still its latest claim (see
/// [`LabelJob::attempts`]).
async fn holds_claim(db: &impl GenericClient, job: &LabelJob) -> Result<bool> {
    let attempts: Option<i32> = db
        .query_opt(
            &db.prepare_cached(
                "SELECT attempts FROM label_jobs WHERE tenant = $1 AND trace_id = $2 FOR UPDATE",
            )
            .await?,
            &[&job.tenant.as_str(), &&job.trace_id.as_bytes()[..]],
        )
        .await?
        .map(|r| r.get(0));
    let holds = attempts.and_then(|a| u32::try_from(a).ok()) == Some(job.attempts);
    if !holds {
        tracing::info!(
            trace = %job.trace_id,
            "a label job was claimed again after its lease ran out; this claim's result is dropped"
        );
    }
    Ok(holds)
}

pub(crate) async fn defer_label_job(
    db: &impl GenericClient,
    job: &LabelJob,
    due_at: i64,
    error: Option<String>,
    now: i64,
    released: &mut Vec<String>,
) -> Result<()> {
    lock_investigation(db, &job.tenant, job.trace_id).await?;
    if !holds_claim(db, job).await? {
        return Ok(());
    }
    let (tenant, trace) = (job.tenant.as_str(), &job.trace_id.as_bytes()[..]);
    db.execute(
        // A deferral waits for what the job asked for, unless it already came: a newer
        // generation of feedback, or captures that all ended while the job held its claim (their
        // wake-up found the job claimed and would otherwise be lost).
        "UPDATE label_jobs SET
             due_at = CASE WHEN generation = $3
                            AND (NOT EXISTS (SELECT 1 FROM snapshot_queries q
                                             WHERE q.tenant = $1 AND q.trace_id = $2)
                                 OR EXISTS (SELECT 1 FROM snapshot_queries q
                                            WHERE q.tenant = $1 AND q.trace_id = $2
                                              AND q.status = 'pending'))
                       THEN $4::bigint ELSE $5::bigint END,
             lease_until = NULL,
             last_error = $6
         WHERE tenant = $1 AND trace_id = $2",
        &[&tenant, &trace, &job.generation, &due_at, &now, &error],
    )
    .await?;
    // A run that was under way when all of the investigation's feedback was erased may have
    // planned queries since; they have no label to serve.
    let feedback_left: bool = db
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM feedback WHERE tenant = $1 AND investigation_id = $2)",
            &[&tenant, &trace],
        )
        .await?
        .get(0);
    if !feedback_left {
        drop_snapshot(db, &job.tenant, job.trace_id, released).await?;
    }
    Ok(())
}

pub(crate) async fn finish_label_job(
    db: &impl GenericClient,
    job: &LabelJob,
    outcome: LabelOutcome,
    now: i64,
) -> Result<()> {
    lock_investigation(db, &job.tenant, job.trace_id).await?;
    if !holds_claim(db, job).await? {
        return Ok(());
    }
    let (tenant, trace) = (job.tenant.as_str(), &job.trace_id.as_bytes()[..]);
    if let Ok(candidate) = &outcome.result
        && !all_feedback_exists(db, &job.tenant, &candidate.provenance.feedback_ids).await?
    {
        // Feedback the draft read was erased while the job ran: the draft may quote it, so it is
        // dropped and the job runs again without it.
        db.execute(
            "UPDATE label_jobs SET state = 'pending', due_at = $3, lease_until = NULL,
                 last_error = 'feedback erased while drafting'
             WHERE tenant = $1 AND trace_id = $2",
            &[&tenant, &trace, &now],
        )
        .await?;
        return Ok(());
    }
    let (state, detail) = match outcome.result {
        Ok(mut candidate) => {
            let version: i32 = db
                .query_one(
                    "SELECT GREATEST(
                         COALESCE((SELECT MAX(version) FROM candidates
                                   WHERE tenant = $1 AND trace_id = $2), 0),
                         COALESCE((SELECT last_version FROM label_jobs
                                   WHERE tenant = $1 AND trace_id = $2), 0)) + 1",
                    &[&tenant, &trace],
                )
                .await?
                .get(0);
            db.execute(
                "UPDATE label_jobs SET last_version = $3 WHERE tenant = $1 AND trace_id = $2",
                &[&tenant, &trace, &version],
            )
            .await?;
            crate::labels::number_candidate(&mut candidate, job.trace_id, i64::from(version), now);
            db.execute(
                "UPDATE candidates SET current = FALSE
                 WHERE tenant = $1 AND trace_id = $2 AND current",
                &[&tenant, &trace],
            )
            .await?;
            db.execute(
                "INSERT INTO candidates
                     (id, tenant, trace_id, version, current, route, audit, created_at, body,
                      lowest_score)
                 VALUES ($1, $2, $3, $4, TRUE, $5, $6, $7, $8, $9)",
                &[
                    &candidate.id,
                    &tenant,
                    &trace,
                    &version,
                    &candidate.route.as_str(),
                    &candidate.audit,
                    &now,
                    &crate::encoding::encode(&*candidate)?,
                    &crate::labels::lowest_score(&candidate),
                ],
            )
            .await?;
            super::review::insert_candidate_segments(db, &job.tenant, &candidate).await?;
            if candidate.route == evalmint_model::Route::Admit {
                super::review::admit(db, &job.tenant, &candidate).await?;
            }
            ("candidate", candidate.id)
        }
        Err(reason) => ("not_candidate", reason),
    };
    db.execute(
        "UPDATE feedback SET label_state = $3, label_detail = $4
         WHERE tenant = $1 AND investigation_id = $2",
        &[&tenant, &trace, &state, &detail],
    )
    .await?;
    for (id, reason) in outcome.excluded {
        db.execute(
            "UPDATE feedback SET label_state = 'not_candidate', label_detail = $3
             WHERE tenant = $1 AND id = $2",
            &[&tenant, &&id.as_uuid().as_bytes()[..], &reason],
        )
        .await?;
    }
    db.execute(
        "UPDATE label_jobs SET
             state = CASE WHEN generation = $3 THEN 'done' ELSE 'pending' END,
             due_at = $4, lease_until = NULL, last_error = NULL
         WHERE tenant = $1 AND trace_id = $2",
        &[&tenant, &trace, &job.generation, &now],
    )
    .await?;
    Ok(())
}

/// True when every id names stored feedback of `tenant`.
async fn all_feedback_exists(
    db: &impl GenericClient,
    tenant: &TenantId,
    ids: &[FeedbackId],
) -> Result<bool> {
    let ids: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| id.as_uuid().as_bytes().to_vec())
        .collect();
    let found: i64 = db
        .query_one(
            "SELECT count(*) FROM feedback WHERE tenant = $1 AND id = ANY($2)",
            &[&tenant.as_str(), &ids],
        )
        .await?
        .get(0);
    Ok(found as usize == ids.iter().collect::<HashSet<_>>().len())
}

pub(crate) async fn plan_snapshot(
    db: &impl GenericClient,
    tenant: &TenantId,
    trace: TraceId,
    queries: &[SnapshotQuery],
    now: i64,
) -> Result<()> {
    for query in queries {
        db.execute(
            "INSERT INTO snapshot_queries
                 (tenant, trace_id, query_id, deadline, status, planned_at, due_at, body)
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7)
             ON CONFLICT (tenant, trace_id, query_id) DO NOTHING",
            &[
                &tenant.as_str(),
                &&trace.as_bytes()[..],
                &query.id,
                &nanos(query.deadline),
                &query.status.as_str(),
                &now,
                &crate::encoding::encode(query)?,
            ],
        )
        .await?;
    }
    Ok(())
}

pub(crate) async fn snapshot(
    db: &impl GenericClient,
    tenant: &TenantId,
    trace: TraceId,
) -> Result<Vec<SnapshotQuery>> {
    db.query(
        "SELECT body FROM snapshot_queries WHERE tenant = $1 AND trace_id = $2
         ORDER BY planned_at, query_id",
        &[&tenant.as_str(), &&trace.as_bytes()[..]],
    )
    .await?
    .iter()
    .map(|r| crate::encoding::decode(r.get(0)))
    .collect()
}

/// Where a frozen result is: in the row, or in the blob store under a digest.
pub(crate) enum StoredResult {
    Inline(Vec<u8>),
    Blob(String),
}

pub(crate) async fn snapshot_result(
    db: &impl GenericClient,
    tenant: &TenantId,
    trace: TraceId,
    query_id: &str,
) -> Result<Option<StoredResult>> {
    let row = db
        .query_opt(
            "SELECT result_inline, result_blob FROM snapshot_queries
             WHERE tenant = $1 AND trace_id = $2 AND query_id = $3",
            &[&tenant.as_str(), &&trace.as_bytes()[..], &query_id],
        )
        .await?;
    Ok(row.and_then(|r| {
        match (
            r.get::<_, Option<Vec<u8>>>(0),
            r.get::<_, Option<String>>(1),
        ) {
            (Some(bytes), _) => Some(StoredResult::Inline(bytes)),
            (None, Some(digest)) => Some(StoredResult::Blob(digest)),
            _ => None,
        }
    }))
}

/// Claims due pending captures in `order` across every worker. Each claim's lease end is its
/// fencing token, always past the previous claim's (see [`CaptureTask::lease_token`]).
pub(crate) async fn claim_captures(
    db: &impl GenericClient,
    order: CaptureOrder,
    now: i64,
    lease_nanos: i64,
    limit: usize,
) -> Result<Vec<CaptureTask>> {
    let order_by = match order {
        CaptureOrder::EarliestDeadline => "deadline",
        CaptureOrder::FirstInFirstOut => "planned_at",
    };
    let rows = db
        .query(
            &format!(
                "UPDATE snapshot_queries AS q SET lease_until = GREATEST($2, q.lease_until + 1)
                 FROM (SELECT tenant, trace_id, query_id FROM snapshot_queries
                       WHERE status = 'pending' AND due_at <= $1
                         AND (lease_until IS NULL OR lease_until <= $1)
                       ORDER BY {order_by} LIMIT $3
                       FOR UPDATE SKIP LOCKED) AS due
                 WHERE q.tenant = due.tenant AND q.trace_id = due.trace_id
                   AND q.query_id = due.query_id
                 RETURNING q.tenant, q.trace_id, q.body, q.lease_until, q.{order_by}"
            ),
            &[&now, &now.saturating_add(lease_nanos), &limit_of(limit)],
        )
        .await?;
    let mut tasks = Vec::with_capacity(rows.len());
    for row in rows {
        let rank: i64 = row.get(4);
        tasks.push((
            rank,
            CaptureTask {
                tenant: tenant_of(row.get(0))?,
                trace_id: trace_of(row.get(1))?,
                query: crate::encoding::decode(row.get(2))?,
                lease_token: row.get(3),
            },
        ));
    }
    tasks.sort_by_key(|(rank, _)| *rank);
    Ok(tasks.into_iter().map(|(_, task)| task).collect())
}

/// Stores a capture attempt under its claim; returns false (nothing written) when the claim was
/// superseded or the query is already finished.
pub(crate) async fn record_capture(
    db: &impl GenericClient,
    task: &CaptureTask,
    outcome: &CaptureOutcome,
    digest: Option<String>,
    blob: Option<String>,
    now: i64,
) -> Result<bool> {
    // Serialised per investigation, so the last of its captures always sees the others and
    // wakes the job.
    lock_investigation(db, &task.tenant, task.trace_id).await?;
    let inline = match (&outcome.result, &blob) {
        (Some(bytes), None) => Some(bytes.clone()),
        _ => None,
    };
    let (query, due_at) = crate::labels::captured_query(task.query.clone(), outcome, digest, now);
    let terminal = query.status.is_terminal();
    let (tenant, trace) = (task.tenant.as_str(), &task.trace_id.as_bytes()[..]);
    let changed = db
        .execute(
            &db.prepare_cached(
                "UPDATE snapshot_queries SET status = $4, due_at = $5, lease_until = NULL,
                 result_blob = COALESCE($6, result_blob),
                 result_inline = COALESCE($7, result_inline), body = $8
             WHERE tenant = $1 AND trace_id = $2 AND query_id = $3 AND status = 'pending'
               AND lease_until = $9",
            )
            .await?,
            &[
                &tenant,
                &trace,
                &query.id,
                &query.status.as_str(),
                &due_at,
                &blob.filter(|_| terminal),
                &inline.filter(|_| terminal),
                &crate::encoding::encode(&query)?,
                &task.lease_token,
            ],
        )
        .await?;
    if changed == 0 {
        tracing::info!(
            trace = %task.trace_id,
            query = %query.id,
            "a capture was claimed again or finished after this claim's lease ran out; its result is dropped"
        );
        return Ok(false);
    }
    let pending_left: bool = db
        .query_one(
            &db.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM snapshot_queries
                            WHERE tenant = $1 AND trace_id = $2 AND status = 'pending')",
            )
            .await?,
            &[&tenant, &trace],
        )
        .await?
        .get(0);
    if !pending_left {
        wake_label_job(db, tenant, trace, now).await?;
    }
    Ok(true)
}

pub(crate) async fn candidates(
    db: &impl GenericClient,
    tenant: &TenantId,
    query: &CandidateQuery,
) -> Result<Vec<CandidateLabel>> {
    let routes: Vec<&str> = query.routes.iter().map(|r| r.as_str()).collect();
    db.query(
        "SELECT body FROM candidates
         WHERE tenant = $1 AND current
           AND (cardinality($2::text[]) = 0 OR route = ANY($2))
           AND (NOT $3 OR audit)
         ORDER BY created_at DESC, id LIMIT $4",
        &[
            &tenant.as_str(),
            &routes,
            &query.audit_only,
            &limit_of(query.limit.max(1)),
        ],
    )
    .await?
    .iter()
    .map(|r| crate::encoding::decode(r.get(0)))
    .collect()
}

pub(crate) async fn candidate(
    db: &impl GenericClient,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<CandidateLabel>> {
    db.query_opt(
        "SELECT body FROM candidates WHERE tenant = $1 AND id = $2",
        &[&tenant.as_str(), &id],
    )
    .await?
    .map(|r| crate::encoding::decode(r.get(0)))
    .transpose()
}

pub(crate) async fn feedback_label_state(
    db: &impl GenericClient,
    tenant: &TenantId,
    id: FeedbackId,
) -> Result<Option<FeedbackLabelState>> {
    let row = db
        .query_opt(
            "SELECT label_state, label_detail FROM feedback WHERE tenant = $1 AND id = $2",
            &[&tenant.as_str(), &&id.as_uuid().as_bytes()[..]],
        )
        .await?;
    row.map(|r| {
        let detail: Option<String> = r.get(1);
        match r.get::<_, &str>(0) {
            "pending" => Ok(FeedbackLabelState::Pending),
            "candidate" => Ok(FeedbackLabelState::Candidate(detail.unwrap_or_default())),
            "not_candidate" => Ok(FeedbackLabelState::NotCandidate(detail.unwrap_or_default())),
            other => Err(StoreError::Internal(format!(
                "unknown label state {other:?}"
            ))),
        }
    })
    .transpose()
}

pub(crate) async fn pipeline_stats(
    db: &impl GenericClient,
    tenant: &TenantId,
) -> Result<PipelineStats> {
    let mut stats = PipelineStats::default();
    let counts = |sql: &'static str| async move {
        let rows = db.query(sql, &[&tenant.as_str()]).await?;
        Ok::<_, StoreError>(
            rows.iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
                .collect::<Vec<_>>(),
        )
    };
    for (state, n) in
        counts("SELECT label_state, count(*) FROM feedback WHERE tenant = $1 GROUP BY label_state")
            .await?
    {
        match state.as_str() {
            "pending" => stats.feedback_pending = n,
            "candidate" => stats.feedback_candidate = n,
            _ => stats.feedback_not_candidate += n,
        }
    }
    for (route, n) in counts(
        "SELECT route, count(*) FROM candidates WHERE tenant = $1 AND current GROUP BY route",
    )
    .await?
    {
        match route.as_str() {
            "admit" => stats.candidates_admitted = n,
            "review" => stats.candidates_review = n,
            _ => stats.candidates_insufficient += n,
        }
    }
    for (_, n) in
        counts("SELECT 'audit', count(*) FROM candidates WHERE tenant = $1 AND current AND audit")
            .await?
    {
        stats.candidates_audit = n;
    }
    for (status, n) in
        counts("SELECT status, count(*) FROM snapshot_queries WHERE tenant = $1 GROUP BY status")
            .await?
    {
        match CaptureStatus::parse(&status) {
            Some(CaptureStatus::Pending) => stats.queries_pending = n,
            Some(CaptureStatus::Captured) => stats.queries_captured = n,
            Some(CaptureStatus::Recorded) => stats.queries_recorded = n,
            Some(CaptureStatus::Expired) => stats.queries_expired = n,
            _ => stats.queries_failed += n,
        }
    }
    Ok(stats)
}

/// Deletes an investigation's snapshot queries; their blobs go to `released`. Returns how many
/// queries were deleted.
pub(crate) async fn drop_snapshot(
    db: &impl GenericClient,
    tenant: &TenantId,
    trace: TraceId,
    released: &mut Vec<String>,
) -> Result<u64> {
    let rows = db
        .query(
            "DELETE FROM snapshot_queries WHERE tenant = $1 AND trace_id = $2
             RETURNING result_blob",
            &[&tenant.as_str(), &&trace.as_bytes()[..]],
        )
        .await?;
    released.extend(rows.iter().filter_map(|r| r.get::<_, Option<String>>(0)));
    Ok(rows.len() as u64)
}

/// One drafted candidate version of an investigation, as erasure sees it.
struct DraftedVersion {
    id: String,
    current: bool,
    feedback_ids: Vec<FeedbackId>,
}

async fn drafted_versions(
    db: &impl GenericClient,
    tenant: &TenantId,
    trace: TraceId,
) -> Result<Vec<DraftedVersion>> {
    db.query(
        "SELECT id, current, body FROM candidates WHERE tenant = $1 AND trace_id = $2",
        &[&tenant.as_str(), &&trace.as_bytes()[..]],
    )
    .await?
    .iter()
    .map(|r| {
        let label: CandidateLabel = crate::encoding::decode(r.get(2))?;
        Ok(DraftedVersion {
            id: r.get(0),
            current: r.get(1),
            feedback_ids: label.provenance.feedback_ids,
        })
    })
    .collect()
}

/// Deletes candidate versions and their label versions; the releases that selected one keep
/// its item, marked erased at `now`.
async fn delete_versions(
    db: &impl GenericClient,
    tenant: &TenantId,
    ids: &[&str],
    now: i64,
) -> Result<()> {
    db.execute(
        "DELETE FROM candidates WHERE tenant = $1 AND id = ANY($2)",
        &[&tenant.as_str(), &ids],
    )
    .await?;
    db.execute(
        "UPDATE release_items SET erased_at = $3
         WHERE tenant = $1 AND erased_at IS NULL
           AND (trace_id, version) IN (SELECT trace_id, version FROM label_versions
                                       WHERE tenant = $1 AND candidate_id = ANY($2))",
        &[&tenant.as_str(), &ids, &now],
    )
    .await?;
    db.execute(
        "DELETE FROM label_versions WHERE tenant = $1 AND candidate_id = ANY($2)",
        &[&tenant.as_str(), &ids],
    )
    .await?;
    Ok(())
}

/// The erasure secret, if it was ever created.
async fn secret(db: &impl GenericClient) -> Result<Option<Vec<u8>>> {
    Ok(db
        .query_opt(
            &db.prepare_cached("SELECT value FROM installation_secrets WHERE name = $1")
                .await?,
            &[&ERASURE_SECRET],
        )
        .await?
        .map(|r| r.get(0)))
}

/// The erasure secret, created on first use. Processes that create it at once all insert,
/// the first insert wins and every one of them reads the winner's.
async fn secret_or_create(db: &impl GenericClient) -> Result<Vec<u8>> {
    if let Some(secret) = secret(db).await? {
        return Ok(secret);
    }
    db.execute(
        "INSERT INTO installation_secrets (name, value) VALUES ($1, $2)
         ON CONFLICT (name) DO NOTHING",
        &[&ERASURE_SECRET, &new_secret()?],
    )
    .await?;
    secret(db)
        .await?
        .ok_or_else(|| internal("the erasure secret vanished after it was created"))
}

/// Refuses an idempotency key whose feedback was erased.
pub(crate) async fn check_not_erased(
    db: &impl GenericClient,
    tenant: &TenantId,
    key: &str,
) -> Result<()> {
    let Some(secret) = secret(db).await? else {
        return Ok(());
    };
    let erased: bool = db
        .query_one(
            &db.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM erased_idempotency_keys
                                WHERE tenant = $1 AND key_hmac = $2)",
            )
            .await?,
            &[&tenant.as_str(), &keyed(&secret, key)],
        )
        .await?
        .get(0);
    refuse_if_erased(erased, key)
}

/// Erases the selected feedback of `tenant`; `None` when an erasure by id finds nothing (an
/// erasure of a user is recorded even when the user has no feedback).
pub(crate) async fn erase(
    db: &impl GenericClient,
    tenant: &TenantId,
    selection: Selection<'_>,
    requested_by: &str,
    now: i64,
    released: &mut Vec<String>,
) -> Result<Option<Erasure>> {
    let feedback_id;
    let (column, value): (&str, &(dyn ToSql + Sync)) = match &selection {
        Selection::User(user_id) => ("user_id", user_id),
        Selection::Feedback(id) => {
            feedback_id = id.as_uuid().as_bytes().to_vec();
            ("id", &feedback_id)
        }
    };
    // The investigations' locks first, in order, as every other write to them takes them.
    let touched = db
        .query(
            &format!(
                "SELECT DISTINCT investigation_id FROM feedback
                 WHERE tenant = $1 AND {column} = $2 AND investigation_id IS NOT NULL
                 ORDER BY investigation_id"
            ),
            &[&tenant.as_str(), value],
        )
        .await?;
    for row in &touched {
        lock_investigation(db, tenant, trace_of(row.get(0))?).await?;
    }
    let rows = db
        .query(
            &format!(
                "DELETE FROM feedback WHERE tenant = $1 AND {column} = $2
                 RETURNING id, investigation_id, idempotency_key"
            ),
            &[&tenant.as_str(), value],
        )
        .await?;
    if matches!(selection, Selection::Feedback(_)) && rows.is_empty() {
        return Ok(None);
    }
    let secret = secret_or_create(db).await?;
    let subject = match selection {
        Selection::Feedback(feedback_id) => ErasureSubject::Feedback { feedback_id },
        Selection::User(user_id) => ErasureSubject::User {
            user_id_hmac: keyed(&secret, user_id),
        },
    };
    let erased: HashSet<FeedbackId> = rows
        .iter()
        .map(|r| uuid::Uuid::from_slice(r.get(0)).map(FeedbackId::from_uuid))
        .collect::<std::result::Result<_, _>>()
        .map_err(internal)?;
    let traces: BTreeSet<Vec<u8>> = rows
        .iter()
        .filter_map(|r| r.get::<_, Option<Vec<u8>>>(1))
        .collect();
    let tombstones: Vec<String> = rows
        .iter()
        .filter_map(|r| r.get::<_, Option<&str>>(2))
        .map(|key| keyed(&secret, key))
        .collect();
    db.execute(
        "INSERT INTO erased_idempotency_keys (tenant, key_hmac, erased_at)
         SELECT $1, k, $3 FROM unnest($2::text[]) AS k
         ON CONFLICT (tenant, key_hmac) DO NOTHING",
        &[&tenant.as_str(), &tombstones, &now],
    )
    .await?;
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
    let mut released_here = Vec::new();
    for trace in &traces {
        let trace = trace_of(trace)?;
        let bytes = &trace.as_bytes()[..];
        let remaining: i64 = db
            .query_one(
                "SELECT count(*) FROM feedback WHERE tenant = $1 AND investigation_id = $2",
                &[&tenant.as_str(), &bytes],
            )
            .await?
            .get(0);
        let versions = drafted_versions(db, tenant, trace).await?;
        if remaining == 0 {
            if versions.iter().any(|v| v.current) {
                record.labels_withdrawn += 1;
            }
            let ids: Vec<&str> = versions.iter().map(|v| v.id.as_str()).collect();
            delete_versions(db, tenant, &ids, now).await?;
            record.queries_removed += drop_snapshot(db, tenant, trace, &mut released_here).await?;
            // The job stays (it remembers the last version drafted) but has nothing left to do;
            // the new generation makes a run that is under way drop its draft.
            db.execute(
                "UPDATE label_jobs SET state = 'done', generation = generation + 1,
                     lease_until = NULL, last_error = NULL
                 WHERE tenant = $1 AND trace_id = $2",
                &[&tenant.as_str(), &bytes],
            )
            .await?;
            continue;
        }
        let dependent: Vec<&DraftedVersion> = versions
            .iter()
            .filter(|v| v.feedback_ids.iter().any(|id| erased.contains(id)))
            .collect();
        let ids: Vec<&str> = dependent.iter().map(|v| v.id.as_str()).collect();
        delete_versions(db, tenant, &ids, now).await?;
        if dependent.iter().any(|v| v.current) {
            record.labels_redrafted += 1;
        }
        // Re-queue even when no stored version read the erased feedback: a run under way may
        // have, and the new generation makes it start over.
        enqueue_label_job(db, tenant, trace, now).await?;
        if !dependent.is_empty() {
            db.execute(
                "UPDATE feedback SET label_state = 'pending', label_detail = NULL
                 WHERE tenant = $1 AND investigation_id = $2",
                &[&tenant.as_str(), &bytes],
            )
            .await?;
        }
    }
    let distinct: Vec<String> = released_here
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    record.blobs_released = super::unreferenced_blobs(db, &distinct).await?.len() as u64;
    released.extend(released_here);
    let (subject, subject_id) = subject_columns(&record.subject);
    db.execute(
        "INSERT INTO erasures (id, tenant, requested_by, requested_at, subject, subject_id,
             feedback_erased, labels_withdrawn, labels_redrafted, queries_removed, blobs_released)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &record.id,
            &tenant.as_str(),
            &record.requested_by,
            &nanos(record.requested_at),
            &subject,
            &subject_id,
            &(record.feedback_erased as i64),
            &(record.labels_withdrawn as i64),
            &(record.labels_redrafted as i64),
            &(record.queries_removed as i64),
            &(record.blobs_released as i64),
        ],
    )
    .await?;
    Ok(Some(record))
}

const ERASURE_COLUMNS: &str = "id, requested_by, requested_at, subject, subject_id, \
     feedback_erased, labels_withdrawn, labels_redrafted, queries_removed, blobs_released";

pub(crate) async fn erasures(db: &impl GenericClient, tenant: &TenantId) -> Result<Vec<Erasure>> {
    let rows = db
        .query(
            &format!(
                "SELECT {ERASURE_COLUMNS} FROM erasures WHERE tenant = $1
                 ORDER BY requested_at, id"
            ),
            &[&tenant.as_str()],
        )
        .await?;
    rows.iter().map(erasure_of).collect()
}

/// The erasures of one user's feedback, found by the keyed hash of the user id.
pub(crate) async fn user_erasures(
    db: &impl GenericClient,
    tenant: &TenantId,
    user_id: &str,
) -> Result<Vec<Erasure>> {
    let Some(secret) = secret(db).await? else {
        return Ok(Vec::new());
    };
    let rows = db
        .query(
            &format!(
                "SELECT {ERASURE_COLUMNS} FROM erasures
                 WHERE tenant = $1 AND subject = 'user' AND subject_id = $2
                 ORDER BY requested_at, id"
            ),
            &[&tenant.as_str(), &keyed(&secret, user_id)],
        )
        .await?;
    rows.iter().map(erasure_of).collect()
}

fn erasure_of(r: &tokio_postgres::Row) -> Result<Erasure> {
    Ok(Erasure {
        id: r.get(0),
        requested_by: r.get(1),
        requested_at: timestamp(r.get(2)),
        subject: subject_from_columns(r.get(3), r.get(4))?,
        feedback_erased: r.get::<_, i64>(5) as u64,
        labels_withdrawn: r.get::<_, i64>(6) as u64,
        labels_redrafted: r.get::<_, i64>(7) as u64,
        queries_removed: r.get::<_, i64>(8) as u64,
        blobs_released: r.get::<_, i64>(9) as u64,
    })
}
