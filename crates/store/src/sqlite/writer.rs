//! The single writer: one thread owns the write connection and commits whatever commands are
//! queued as one transaction (group commit), so many concurrent acknowledgements share one sync.
//! Each command runs in its own savepoint: one failing command never undoes another.
//!
//! Commands wait in two lanes. The prompt lane holds small writes someone is waiting on
//! (feedback, keys, the pipeline's bookkeeping); the bulk lane holds span ingest and retention.
//! Every group takes the whole prompt lane first and then bulk commands up to a budget of rows.
//! While it runs, the writer checks the prompt lane before each further bulk command and commits
//! early when something waits there, so a feedback waits behind at most one bulk command (a
//! bounded chunk of spans) and a commit, not behind a whole group.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use evalmint_model::{FeedbackId, ScopeSet, Step, TenantId, TraceId, ValidFeedback};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, oneshot};

use super::rows::{feedback_row, internal, nanos, system_time};
use crate::{
    ApiKey, BlobStore, Clock, FeedbackReceipt, IngestBatch, IngestReceipt, Result, StoreError,
};

/// Commands per group commit, at most.
const MAX_GROUP: usize = 512;

/// Rows of bulk work (spans, trace-borne feedback) one group commit takes at most, unless a
/// single command is larger.
pub(crate) const BULK_ROWS_PER_COMMIT: usize = 4_096;

/// Rows one bulk command writes at most: ingest splits larger batches into chunks of this size,
/// which bounds how long a feedback can wait for the command the writer is in.
pub(crate) const BULK_ROWS_PER_COMMAND: usize = 1_024;

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

/// Which lane a write waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// Small writes a person or the pipeline waits on; always committed first.
    Prompt,
    /// Span ingest and retention, taken up to [`BULK_ROWS_PER_COMMIT`] rows a commit.
    Bulk,
}

/// Whether a write that finds its lane full is refused or waits for room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WhenFull {
    /// `StoreError::Busy`: back-pressure for clients, who retry.
    Refuse,
    /// Background work and operator commands, which must not be refused.
    Wait,
}

/// A command in its lane, holding its share of the lane's room until the writer takes it.
struct Queued {
    command: Command,
    lane: Lane,
    rows: usize,
    _room: OwnedSemaphorePermit,
}

#[derive(Default)]
struct Lanes {
    prompt: VecDeque<Queued>,
    bulk: VecDeque<Queued>,
    closed: bool,
}

/// The writer's two lanes. Room is counted in commands for the prompt lane and in rows for the
/// bulk lane, so a few huge batches fill the bulk lane as surely as many small ones.
pub(crate) struct WriteQueue {
    lanes: Mutex<Lanes>,
    ready: Condvar,
    prompt_room: Arc<Semaphore>,
    bulk_room: Arc<Semaphore>,
    bulk_capacity: usize,
}

impl WriteQueue {
    pub(crate) fn new(prompt_commands: usize, bulk_rows: usize) -> Self {
        let bulk_capacity = bulk_rows.max(1);
        WriteQueue {
            lanes: Mutex::new(Lanes::default()),
            ready: Condvar::new(),
            prompt_room: Arc::new(Semaphore::new(prompt_commands.max(1))),
            bulk_room: Arc::new(Semaphore::new(bulk_capacity)),
            bulk_capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lanes> {
        self.lanes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `command`, which writes about `rows` rows, in `lane`.
    pub(crate) async fn push(
        &self,
        lane: Lane,
        rows: usize,
        when_full: WhenFull,
        command: Command,
    ) -> Result<()> {
        let (room, units) = match lane {
            Lane::Prompt => (&self.prompt_room, 1),
            // A command larger than the whole lane takes all of it rather than waiting forever.
            Lane::Bulk => (&self.bulk_room, rows.clamp(1, self.bulk_capacity)),
        };
        let units = u32::try_from(units).unwrap_or(u32::MAX);
        let permit = match when_full {
            WhenFull::Refuse => {
                room.clone()
                    .try_acquire_many_owned(units)
                    .map_err(|e| match e {
                        TryAcquireError::NoPermits => StoreError::Busy,
                        TryAcquireError::Closed => StoreError::Closed,
                    })?
            }
            WhenFull::Wait => room
                .clone()
                .acquire_many_owned(units)
                .await
                .map_err(|_| StoreError::Closed)?,
        };
        let queued = Queued {
            command,
            lane,
            rows,
            _room: permit,
        };
        let mut lanes = self.lock();
        if lanes.closed {
            return Err(StoreError::Closed);
        }
        match lane {
            Lane::Prompt => lanes.prompt.push_back(queued),
            Lane::Bulk => lanes.bulk.push_back(queued),
        }
        drop(lanes);
        self.ready.notify_one();
        Ok(())
    }

    /// Commands waiting in the prompt and the bulk lane.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> (usize, usize) {
        let lanes = self.lock();
        (lanes.prompt.len(), lanes.bulk.len())
    }

    /// Whether the queue refuses commands (closed, or the writer died).
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Refuses new commands; the writer finishes the queued ones and stops.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.prompt_room.close();
        self.bulk_room.close();
        self.ready.notify_all();
    }

    fn prompt_waiting(&self) -> bool {
        !self.lock().prompt.is_empty()
    }

    /// Puts bulk commands a group did not get to back at the head of their lane, in order.
    fn requeue_bulk(&self, rest: Vec<Queued>) {
        let mut lanes = self.lock();
        for queued in rest.into_iter().rev() {
            lanes.bulk.push_front(queued);
        }
    }

    /// Drops every queued command, whose callers then see `Closed`.
    fn abandon(&self) {
        let mut lanes = self.lock();
        lanes.closed = true;
        lanes.prompt.clear();
        lanes.bulk.clear();
    }

    /// The next group to commit: every prompt command (up to [`MAX_GROUP`]), then bulk commands
    /// in arrival order up to [`BULK_ROWS_PER_COMMIT`] rows (at least one, so bulk work always
    /// moves). Blocks while both lanes are empty; `None` once closed and drained.
    fn next_group(&self) -> Option<Vec<Queued>> {
        let mut lanes = self.lock();
        while lanes.prompt.is_empty() && lanes.bulk.is_empty() {
            if lanes.closed {
                return None;
            }
            lanes = self.ready.wait(lanes).unwrap_or_else(|e| e.into_inner());
        }
        let prompt = lanes.prompt.len().min(MAX_GROUP);
        let mut group: Vec<Queued> = lanes.prompt.drain(..prompt).collect();
        let mut bulk_rows = 0;
        while let Some(next) = lanes.bulk.front() {
            let first = bulk_rows == 0;
            if !first && (bulk_rows + next.rows > BULK_ROWS_PER_COMMIT || group.len() >= MAX_GROUP)
            {
                break;
            }
            bulk_rows += next.rows.max(1);
            group.extend(lanes.bulk.pop_front());
        }
        Some(group)
    }
}

pub(crate) struct Writer {
    pub conn: Connection,
    pub blobs: BlobStore,
    pub clock: Arc<dyn Clock>,
    pub inline_result_max: usize,
    /// A blob stored more recently than this is never removed (see [`BlobStore`]).
    pub blob_grace: jiff::SignedDuration,
}

impl Writer {
    /// Commits groups until the queue is closed and drained. If the writer dies, queued commands
    /// are dropped so their callers see `Closed` instead of waiting forever.
    pub(crate) fn run(mut self, queue: &WriteQueue) {
        struct AbandonOnExit<'q>(&'q WriteQueue);
        impl Drop for AbandonOnExit<'_> {
            fn drop(&mut self) {
                self.0.abandon();
            }
        }
        let _abandon = AbandonOnExit(queue);
        while let Some(group) = queue.next_group() {
            self.commit_group(group, queue);
        }
    }

    fn commit_group(&mut self, group: Vec<Queued>, queue: &WriteQueue) {
        let mut tx = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => {
                tracing::error!(error = %e, "could not begin a write transaction");
                let err = internal(e);
                for queued in group {
                    (queued.command.0)(Err(err.clone()));
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
        let mut bulk_done = false;
        let mut pending = group.into_iter();
        while let Some(queued) = pending.next() {
            if queued.lane == Lane::Bulk {
                if bulk_done && queue.prompt_waiting() {
                    // Something prompt arrived: commit what is done and let it in first.
                    queue.requeue_bulk(std::iter::once(queued).chain(pending).collect());
                    break;
                }
                bulk_done = true;
            }
            let command = queued.command;
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
        let now = context.now;
        let commit = tx.commit().map_err(|e| {
            tracing::error!(error = %e, "group commit failed");
            internal(e)
        });
        if commit.is_ok() {
            let removed =
                remove_unreferenced(&self.conn, &self.blobs, &released, now, self.blob_grace);
            if let Err(e) = removed {
                tracing::warn!(error = %e, "could not remove unreferenced blobs");
            }
        }
        for done in finishes {
            done(commit.clone());
        }
    }
}

/// True when a step or a snapshot query references the blob.
pub(crate) fn blob_referenced(conn: &Connection, digest: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM steps WHERE result_blob = ?1)
                 OR EXISTS (SELECT 1 FROM snapshot_queries WHERE result_blob = ?1)",
        )?
        .query_row([digest], |r| r.get(0))?)
}

/// Removes the blobs among `digests` that no row references and that were last stored before
/// `now - grace`; returns how many were removed. Runs on the writer after a commit, so no write
/// of this store can add a reference between the check and the removal; the grace period covers
/// a writer that stored a blob but has not committed the row that references it yet.
pub(crate) fn remove_unreferenced(
    conn: &Connection,
    blobs: &BlobStore,
    digests: &[String],
    now: i64,
    grace: jiff::SignedDuration,
) -> Result<u64> {
    let old_enough =
        system_time(now.saturating_sub(i64::try_from(grace.as_nanos()).unwrap_or(i64::MAX)));
    let mut removed = 0;
    let mut seen = HashSet::new();
    for digest in digests {
        if !seen.insert(digest.as_str()) || blob_referenced(conn, digest)? {
            continue;
        }
        match blobs.stored_at(digest).map_err(internal)? {
            Some(stored) if stored <= old_enough => {
                blobs.remove(digest).map_err(internal)?;
                removed += 1;
            }
            _ => {}
        }
    }
    Ok(removed)
}

/// A step as its row stores it: the step as JSON without its tool result, and the result apart
/// (inline or in the blob store, by size).
pub(crate) struct StepRow {
    pub body: String,
    pub result: Option<String>,
}

impl StepRow {
    pub(crate) fn of(mut step: Step) -> Result<Self> {
        let result = step.tool_call.as_mut().and_then(|call| call.result.take());
        let body = crate::encoding::encode(&step)?;
        Ok(StepRow { body, result })
    }
}

pub(crate) fn ingest(
    conn: &Connection,
    context: &mut WriteContext<'_>,
    tenant: &TenantId,
    batch: IngestBatch,
) -> Result<IngestReceipt> {
    let (now, blobs, inline_result_max) = (context.now, context.blobs, context.inline_result_max);
    let mut released = Vec::new();
    // A span arrives once in the common case: the insert alone, whose unique index probe also
    // tells a re-sent span apart. Only a re-sent span reads its old row and is updated.
    let mut insert_step = conn.prepare_cached(
        "INSERT INTO steps (tenant, trace_id, span_id, body, result_inline, result_blob)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (tenant, trace_id, span_id) DO NOTHING",
    )?;
    let mut replace_step = conn.prepare_cached(
        "UPDATE steps SET body = ?4, result_inline = ?5, result_blob = ?6
         WHERE tenant = ?1 AND trace_id = ?2 AND span_id = ?3",
    )?;
    let mut touch_investigation = conn.prepare_cached(
        "INSERT INTO investigations (tenant, trace_id, first_seen, last_seen, agent_version)
         VALUES (?1, ?2, ?3, ?3, ?4)
         ON CONFLICT (tenant, trace_id) DO UPDATE SET last_seen = excluded.last_seen,
             agent_version = coalesce(investigations.agent_version, excluded.agent_version)",
    )?;
    let mut replaced_blob = conn.prepare_cached(
        "SELECT result_blob FROM steps WHERE tenant = ?1 AND trace_id = ?2 AND span_id = ?3",
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

    let agent_versions = batch.agent_versions();
    let mut entities = batch.entities;
    entities.extend(evalmint_model::tool_call_entries(
        batch
            .steps
            .iter()
            .filter_map(|(_, step)| step.tool_call.as_ref()),
    ));
    super::catalog::upsert(conn, tenant, entities, now)?;

    let mut traces: HashSet<TraceId> = HashSet::new();
    let steps_written = batch.steps.len();
    for (trace_id, step) in batch.steps {
        let span_id = step.span_id;
        let row = StepRow::of(step)?;
        let (inline, blob) = match row.result {
            Some(text) if text.len() > inline_result_max => (
                None,
                Some(
                    blobs
                        .put(text.as_bytes(), system_time(now))
                        .map_err(internal)?,
                ),
            ),
            other => (other, None),
        };
        let key = params![
            tenant.as_str(),
            &trace_id.as_bytes()[..],
            &span_id.as_bytes()[..]
        ];
        let values = params![
            tenant.as_str(),
            &trace_id.as_bytes()[..],
            &span_id.as_bytes()[..],
            row.body,
            inline,
            blob
        ];
        if insert_step.execute(values)? == 0 {
            // A re-sent span with a different result leaves its old blob without this reference.
            let previous: Option<String> = replaced_blob
                .query_row(key, |r| r.get(0))
                .optional()?
                .flatten();
            if let Some(previous) = previous
                && Some(&previous) != blob.as_ref()
            {
                released.push(previous);
            }
            replace_step.execute(values)?;
        }
        if feedback_awaits_trace {
            let joined = join_waiting_feedback.execute(params![
                tenant.as_str(),
                &span_id.as_bytes()[..],
                &trace_id.as_bytes()[..]
            ])?;
            if joined > 0 {
                super::pipeline::enqueue_label_job(conn, tenant, trace_id, now)?;
            }
        }
        if traces.insert(trace_id) {
            touch_investigation.execute(params![
                tenant.as_str(),
                &trace_id.as_bytes()[..],
                now,
                agent_versions.get(&trace_id)
            ])?;
            // Feedback may have been waiting for this trace.
            super::pipeline::wake_label_job(conn, tenant.as_str(), &trace_id.as_bytes()[..], now)?;
        }
    }
    context.released_blobs.append(&mut released);
    let mut feedback_created = 0;
    for feedback in batch.feedback {
        match insert_feedback(conn, tenant, feedback, now) {
            Ok(FeedbackReceipt::Created(_)) => feedback_created += 1,
            // A re-sent span event is stored once; one whose feedback was erased, never again.
            Ok(FeedbackReceipt::Replayed(_))
            | Err(StoreError::IdempotencyConflict(_) | StoreError::Erased(_)) => {}
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
        super::erasure::check_not_erased(conn, tenant, key)?;
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
    let body = crate::encoding::encode(&feedback)?;
    conn.prepare_cached(
        "INSERT INTO feedback
             (id, tenant, investigation_id, span_id, received_at, body, idempotency_key, user_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        &id.as_uuid().as_bytes()[..],
        tenant.as_str(),
        joined.map(|t| t.as_bytes().to_vec()),
        feedback.span_id.map(|s| s.as_bytes().to_vec()),
        now,
        body,
        feedback.idempotency_key,
        feedback.user_id,
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
            "SELECT tenant FROM api_keys WHERE secret_sha256 = ?1",
            [secret_sha256],
            |r| r.get::<_, String>(0),
        )
        .optional()?;
    match existing {
        // The operator's key is already registered; keep the original record.
        Some(tenant) if tenant == key.tenant.as_str() => return Ok(key),
        // A secret names one tenant's key; registering it for another would hand that tenant's
        // data to whoever holds it.
        Some(_) => return Err(StoreError::KeyTaken),
        None => {}
    }
    conn.execute(
        "INSERT INTO api_keys (id, tenant, name, scopes, secret_sha256, created_at, allowed_origins)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            key.id,
            key.tenant.as_str(),
            key.name,
            key.scopes.to_list(),
            secret_sha256,
            nanos(key.created_at),
            key.allowed_origins.join("\n")
        ],
    )?;
    Ok(key)
}

/// Stores `key` and deletes every other key of its tenant with its name.
pub(crate) fn replace_named_key(
    conn: &Connection,
    key: ApiKey,
    secret_sha256: &[u8],
) -> Result<ApiKey> {
    conn.execute(
        "DELETE FROM api_keys WHERE tenant = ?1 AND name = ?2 AND secret_sha256 != ?3",
        params![key.tenant.as_str(), key.name, secret_sha256],
    )?;
    insert_key(conn, key, secret_sha256)
}

pub(crate) fn delete_key(conn: &Connection, tenant: &TenantId, id: &str) -> Result<bool> {
    let deleted = conn.execute(
        "DELETE FROM api_keys WHERE tenant = ?1 AND id = ?2",
        params![tenant.as_str(), id],
    )?;
    Ok(deleted > 0)
}

/// Starts a web UI session, first deleting expired ones and those whose key is gone.
pub(crate) fn insert_ui_session(
    conn: &Connection,
    tenant: &TenantId,
    token_sha256: &[u8],
    key_id: &str,
    csrf: &str,
    now: i64,
    expires_at: i64,
) -> Result<()> {
    conn.prepare_cached(
        "DELETE FROM ui_sessions
         WHERE expires_at <= ?1
            OR NOT EXISTS (SELECT 1 FROM api_keys AS k
                           WHERE k.tenant = ui_sessions.tenant AND k.id = ui_sessions.key_id)",
    )?
    .execute([now])?;
    conn.prepare_cached(
        "INSERT INTO ui_sessions (token_sha256, tenant, key_id, csrf, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        token_sha256,
        tenant.as_str(),
        key_id,
        csrf,
        now,
        expires_at
    ])?;
    Ok(())
}

pub(crate) fn delete_ui_session(
    conn: &Connection,
    tenant: &TenantId,
    token_sha256: &[u8],
) -> Result<bool> {
    let deleted = conn.execute(
        "DELETE FROM ui_sessions WHERE tenant = ?1 AND token_sha256 = ?2",
        params![tenant.as_str(), token_sha256],
    )?;
    Ok(deleted > 0)
}

/// Inserts `new` with the name and scopes of the tenant's key `old_id` and deletes that key.
pub(crate) fn rotate_key(
    conn: &Connection,
    old_id: &str,
    mut new: ApiKey,
    secret_sha256: &[u8],
) -> Result<Option<ApiKey>> {
    let old = conn
        .query_row(
            "SELECT name, scopes, allowed_origins FROM api_keys WHERE tenant = ?1 AND id = ?2",
            params![new.tenant.as_str(), old_id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )
        .optional()?;
    let Some((name, scopes, origins)) = old else {
        return Ok(None);
    };
    new.name = name;
    new.scopes = scopes_from_column(&scopes)?;
    new.allowed_origins = origins.lines().map(str::to_owned).collect();
    let tenant = new.tenant.clone();
    let new = insert_key(conn, new, secret_sha256)?;
    delete_key(conn, &tenant, old_id)?;
    Ok(Some(new))
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
