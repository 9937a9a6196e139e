//! The single writer: one thread owns the write connection and commits whatever commands are
//! queued as one transaction (group commit), so many concurrent acknowledgements share one sync.
//! Each command runs in its own savepoint: one failing command never undoes another.

use std::collections::HashSet;
use std::sync::Arc;

use evalmint_model::{FeedbackId, ScopeSet, TenantId, TraceId, ValidFeedback};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use super::rows::{feedback_row, internal, nanos};
use crate::{
    ApiKey, BlobStore, Clock, FeedbackReceipt, IngestBatch, IngestReceipt, Result, StoreError,
};

/// Commands per group commit, at most.
const MAX_GROUP: usize = 512;

/// What a write may use besides its connection.
pub(crate) struct WriteContext<'a> {
    pub blobs: &'a BlobStore,
    pub now: i64,
    pub inline_result_max: usize,
    /// Blobs that may have lost their last reference; checked after the commit.
    pub released_blobs: Vec<String>,
}

/// Sends the command's result once the group's commit outcome is known.
type Finish = Box<dyn FnOnce(Result<()>) + Send>;

/// One queued write. It is called once: with the connection and context to apply itself (returning
/// whether to keep its writes and how to report), or with the error that prevented that.
#[allow(clippy::type_complexity)]
pub(crate) struct Command(
    Box<
        dyn for<'c, 'b> FnOnce(
                Result<(&'c Connection, &'c mut WriteContext<'b>)>,
            ) -> Option<(bool, Finish)>
            + Send,
    >,
);

impl Command {
    /// A write that runs `operation` inside its own savepoint and replies on `reply` after the
    /// group commit.
    pub(crate) fn new<T: Send + 'static>(
        operation: impl FnOnce(&Connection, &mut WriteContext<'_>) -> Result<T> + Send + 'static,
        reply: oneshot::Sender<Result<T>>,
    ) -> Self {
        Command(Box::new(move |ready| match ready {
            Ok((conn, context)) => {
                let outcome = operation(conn, context);
                let keep = outcome.is_ok();
                let finish: Finish = Box::new(move |commit| {
                    let _ = reply.send(commit.and(outcome));
                });
                Some((keep, finish))
            }
            Err(e) => {
                let _ = reply.send(Err(e));
                None
            }
        }))
    }
}

pub(crate) struct Writer {
    pub conn: Connection,
    pub blobs: BlobStore,
    pub clock: Arc<dyn Clock>,
    pub inline_result_max: usize,
}

impl Writer {
    /// Runs until every sender is dropped.
    pub(crate) fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        while let Some(first) = commands.blocking_recv() {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match commands.try_recv() {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
            self.commit_group(group);
        }
    }

    fn commit_group(&mut self, group: Vec<Command>) {
        let mut tx = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => {
                tracing::error!(error = %e, "could not begin a write transaction");
                let err = internal(e);
                for command in group {
                    (command.0)(Err(err.clone()));
                }
                return;
            }
        };
        let mut context = WriteContext {
            blobs: &self.blobs,
            now: nanos(self.clock.now()),
            inline_result_max: self.inline_result_max,
            released_blobs: Vec::new(),
        };
        let mut finishes = Vec::with_capacity(group.len());
        for command in group {
            let mut savepoint = match tx.savepoint() {
                Ok(sp) => sp,
                Err(e) => {
                    (command.0)(Err(internal(e)));
                    continue;
                }
            };
            let Some((keep, done)) = (command.0)(Ok((&savepoint, &mut context))) else {
                continue;
            };
            if keep {
                if let Err(e) = savepoint.commit() {
                    done(Err(internal(e)));
                    continue;
                }
            } else {
                let _ = savepoint.rollback();
            }
            finishes.push(done);
        }
        let released = std::mem::take(&mut context.released_blobs);
        let commit = tx.commit().map_err(|e| {
            tracing::error!(error = %e, "group commit failed");
            internal(e)
        });
        if commit.is_ok() {
            self.collect_garbage(&released);
        }
        for done in finishes {
            done(commit.clone());
        }
    }

    /// Removes blobs that no row references any more. Runs on the writer, so no write can add a
    /// reference between the check and the removal.
    fn collect_garbage(&self, digests: &[String]) {
        for digest in digests {
            let referenced = self
                .conn
                .query_row(
                    "SELECT 1 FROM steps WHERE result_blob = ?1
                     UNION ALL SELECT 1 FROM snapshot_queries WHERE result_blob = ?1 LIMIT 1",
                    [digest],
                    |_| Ok(()),
                )
                .optional();
            if let Ok(None) = referenced
                && let Err(e) = self.blobs.remove(digest)
            {
                tracing::warn!(error = %e, %digest, "could not remove an unreferenced blob");
            }
        }
    }
}

pub(crate) fn ingest(
    conn: &Connection,
    context: &mut WriteContext<'_>,
    tenant: &TenantId,
    batch: IngestBatch,
) -> Result<IngestReceipt> {
    let (now, blobs, inline_result_max) = (context.now, context.blobs, context.inline_result_max);
    let mut insert_step = conn.prepare_cached(
        "INSERT OR REPLACE INTO steps (tenant, trace_id, span_id, body, result_inline, result_blob)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut touch_investigation = conn.prepare_cached(
        "INSERT INTO investigations (tenant, trace_id, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (tenant, trace_id) DO UPDATE SET last_seen = excluded.last_seen",
    )?;
    let mut join_waiting_feedback = conn.prepare_cached(
        "UPDATE feedback SET investigation_id = ?3
         WHERE tenant = ?1 AND span_id = ?2 AND investigation_id IS NULL",
    )?;

    // Span-only feedback waiting for its trace is rare; skip the per-span join when there is none.
    let feedback_awaits_trace: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM feedback WHERE tenant = ?1 AND investigation_id IS NULL)",
        )?
        .query_row([tenant.as_str()], |r| r.get(0))?;

    let mut entities = batch.entities;
    for (_, step) in &batch.steps {
        if let Some(call) = &step.tool_call {
            entities.extend(evalmint_model::tool_call_entries(call));
        }
    }
    super::catalog::upsert(conn, tenant, entities, now)?;

    let mut traces: HashSet<TraceId> = HashSet::new();
    let steps_written = batch.steps.len();
    for (trace_id, mut step) in batch.steps {
        let result = step.tool_call.as_mut().and_then(|call| call.result.take());
        let (inline, blob) = match result {
            Some(text) if text.len() > inline_result_max => {
                (None, Some(blobs.put(text.as_bytes()).map_err(internal)?))
            }
            other => (other, None),
        };
        let body = serde_json::to_string(&step).map_err(internal)?;
        insert_step.execute(params![
            tenant.as_str(),
            &trace_id.as_bytes()[..],
            &step.span_id.as_bytes()[..],
            body,
            inline,
            blob
        ])?;
        if feedback_awaits_trace {
            let joined = join_waiting_feedback.execute(params![
                tenant.as_str(),
                &step.span_id.as_bytes()[..],
                &trace_id.as_bytes()[..]
            ])?;
            if joined > 0 {
                super::pipeline::enqueue_label_job(conn, tenant, trace_id, now)?;
            }
        }
        if traces.insert(trace_id) {
            touch_investigation.execute(params![tenant.as_str(), &trace_id.as_bytes()[..], now])?;
            // Feedback may have been waiting for this trace.
            super::pipeline::wake_label_job(conn, tenant.as_str(), &trace_id.as_bytes()[..], now)?;
        }
    }
    let mut feedback_created = 0;
    for feedback in batch.feedback {
        match insert_feedback(conn, tenant, feedback, now) {
            Ok(FeedbackReceipt::Created(_)) => feedback_created += 1,
            Ok(FeedbackReceipt::Replayed(_)) | Err(StoreError::IdempotencyConflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(IngestReceipt {
        steps_written,
        feedback_created,
    })
}

pub(crate) fn insert_feedback(
    conn: &Connection,
    tenant: &TenantId,
    feedback: ValidFeedback,
    now: i64,
) -> Result<FeedbackReceipt> {
    if let Some(key) = &feedback.idempotency_key {
        let existing = conn
            .prepare_cached(
                "SELECT id, received_at, body, investigation_id FROM feedback
                 WHERE tenant = ?1 AND idempotency_key = ?2",
            )?
            .query_row(params![tenant.as_str(), key], |row| {
                feedback_row(tenant, row)
            })
            .optional()?;
        if let Some(row) = existing {
            return if row.submitted == feedback {
                Ok(FeedbackReceipt::Replayed(row.feedback))
            } else {
                Err(StoreError::IdempotencyConflict(key.clone()))
            };
        }
    }
    let joined = match (feedback.investigation_id, feedback.span_id) {
        (Some(trace), _) => Some(trace),
        (None, Some(span)) => conn
            .prepare_cached(
                "SELECT trace_id FROM steps WHERE tenant = ?1 AND span_id = ?2 LIMIT 1",
            )?
            .query_row(params![tenant.as_str(), &span.as_bytes()[..]], |r| {
                r.get::<_, Vec<u8>>(0)
            })
            .optional()?
            .and_then(|b| TraceId::from_bytes(&b).ok()),
        (None, None) => None,
    };
    let id = FeedbackId::from_uuid(uuid::Uuid::now_v7());
    let body = serde_json::to_string(&feedback).map_err(internal)?;
    conn.prepare_cached(
        "INSERT INTO feedback (id, tenant, investigation_id, span_id, received_at, body, idempotency_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        &id.as_uuid().as_bytes()[..],
        tenant.as_str(),
        joined.map(|t| t.as_bytes().to_vec()),
        feedback.span_id.map(|s| s.as_bytes().to_vec()),
        now,
        body,
        feedback.idempotency_key,
    ])?;
    if let Some(trace) = joined {
        super::pipeline::enqueue_label_job(conn, tenant, trace, now)?;
    }
    let mut served = feedback;
    served.investigation_id = joined;
    Ok(FeedbackReceipt::Created(evalmint_model::Feedback {
        id,
        tenant: tenant.clone(),
        received_at: super::rows::timestamp(now),
        body: served,
    }))
}

pub(crate) fn insert_key(conn: &Connection, key: ApiKey, secret_sha256: &[u8]) -> Result<ApiKey> {
    let existing = conn
        .query_row(
            "SELECT id FROM api_keys WHERE secret_sha256 = ?1",
            [secret_sha256],
            |r| r.get::<_, String>(0),
        )
        .optional()?;
    if existing.is_some() {
        // The operator's key is already registered; keep the original record.
        return Ok(key);
    }
    conn.execute(
        "INSERT INTO api_keys (id, tenant, name, scopes, secret_sha256, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            key.id,
            key.tenant.as_str(),
            key.name,
            key.scopes.to_list(),
            secret_sha256,
            nanos(key.created_at)
        ],
    )?;
    Ok(key)
}

pub(crate) fn expire(
    conn: &Connection,
    cutoff: i64,
    expired_blobs: &mut Vec<String>,
) -> Result<u64> {
    let mut candidates = conn.prepare(
        "SELECT tenant, trace_id FROM investigations AS i
         WHERE last_seen < ?1
           AND NOT EXISTS (SELECT 1 FROM feedback AS f
                           WHERE f.tenant = i.tenant AND f.investigation_id = i.trace_id)",
    )?;
    let doomed: Vec<(String, Vec<u8>)> = candidates
        .query_map([cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut blobs_of = conn.prepare(
        "SELECT result_blob FROM steps WHERE tenant = ?1 AND trace_id = ?2 AND result_blob IS NOT NULL",
    )?;
    for (tenant, trace) in &doomed {
        let digests = blobs_of
            .query_map(params![tenant, trace], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        expired_blobs.extend(digests);
        conn.execute(
            "DELETE FROM steps WHERE tenant = ?1 AND trace_id = ?2",
            params![tenant, trace],
        )?;
        conn.execute(
            "DELETE FROM investigations WHERE tenant = ?1 AND trace_id = ?2",
            params![tenant, trace],
        )?;
    }
    Ok(doomed.len() as u64)
}

pub(crate) fn scopes_from_column(list: &str) -> Result<ScopeSet> {
    ScopeSet::parse_list(list).map_err(StoreError::Internal)
}
