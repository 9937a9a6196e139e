//! The embedded store: SQLite in WAL mode in the data directory, a single writer thread for all
//! writes and a small pool of read connections, both off the async threads.

mod catalog;
mod pipeline;
mod rows;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use evalmint_model::{
    Feedback, FeedbackId, Investigation, ScopeSet, Step, TenantId, Timestamp, TraceId,
    ValidFeedback,
};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use self::rows::{feedback_row, internal, nanos, timestamp};
use self::writer::{Command, WriteContext, Writer};
use crate::{
    ApiKey, BlobStore, CandidateQuery, CaptureOrder, CaptureOutcome, CaptureTask, CatalogQuery,
    Clock, FeedbackLabelState, FeedbackReceipt, IngestBatch, IngestReceipt, LabelJob, LabelOutcome,
    NewApiKey, PipelineStats, PipelineStore, Result, Store, StoreError, StoredCatalogEntry,
    SystemClock,
};
use evalmint_model::{CandidateLabel, Catalog, CatalogEntry, SnapshotQuery};

/// Tuning of the embedded store.
#[derive(Clone)]
pub struct SqliteOptions {
    /// Write commands that may wait for the writer; beyond this, writes fail with `Busy`.
    pub write_queue: usize,
    /// Tool results longer than this many bytes go to the blob store.
    pub inline_result_max: usize,
    pub read_connections: usize,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SqliteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteOptions")
            .field("write_queue", &self.write_queue)
            .field("inline_result_max", &self.inline_result_max)
            .field("read_connections", &self.read_connections)
            .finish_non_exhaustive()
    }
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            write_queue: 1024,
            inline_result_max: 4096,
            read_connections: 16,
            clock: Arc::new(SystemClock),
        }
    }
}

/// The embedded default store.
pub struct SqliteStore {
    commands: mpsc::Sender<Command>,
    readers: Arc<ReadPool>,
    blobs: BlobStore,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.readers.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir`: `evalmint.db` and `blobs/`.
    pub fn open(data_dir: &Path, options: SqliteOptions) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Internal(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join("evalmint.db");
        let mut conn = Connection::open(&path)?;
        schema::configure_writer(&conn)?;
        schema::migrate(&mut conn)?;
        let blobs = BlobStore::open(data_dir.join("blobs")).map_err(internal)?;

        let (commands, receiver) = mpsc::channel(options.write_queue.max(1));
        let writer = Writer {
            conn,
            blobs: blobs.clone(),
            clock: options.clock.clone(),
            inline_result_max: options.inline_result_max,
        };
        let checkpointer = Connection::open(&path)?;
        schema::configure(&checkpointer)?;
        let stop_checkpointing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = stop_checkpointing.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                writer.run(receiver);
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            })
            .map_err(internal)?;
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_until(&checkpointer, &stop_checkpointing))
            .map_err(internal)?;

        Ok(SqliteStore {
            commands,
            readers: Arc::new(ReadPool {
                path,
                idle: Mutex::new(Vec::new()),
                max_idle: options.read_connections.max(1),
            }),
            blobs,
            clock: options.clock,
        })
    }

    /// Queues a write without waiting for room: a full queue is `Busy`, which callers turn into
    /// back-pressure (HTTP 429) instead of unbounded buffering.
    async fn write<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&Connection, &mut WriteContext<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .try_send(Command::new(operation, reply))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Busy,
                mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
            })?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Like [`Self::write`] but waits for room: for background work and operator commands, which
    /// must not be refused.
    async fn write_patiently<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&Connection, &mut WriteContext<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::new(operation, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection, &BlobStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let readers = self.readers.clone();
        let blobs = self.blobs.clone();
        tokio::task::spawn_blocking(move || {
            let conn = readers.take()?;
            let outcome = query(&conn, &blobs);
            readers.give_back(conn);
            outcome
        })
        .await
        .map_err(internal)?
    }
}

/// Copies the WAL back into the database every half second, off the writer's path. When the WAL
/// has grown past 64 MiB it also resets it (when no reader needs it) so it cannot grow without
/// bound. Stops once the writer has stopped.
fn checkpoint_until(conn: &Connection, writer_stopped: &std::sync::atomic::AtomicBool) {
    const WAL_RESET_PAGES: i64 = 16_384;
    while !writer_stopped.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        match result {
            Ok((wal_pages, _)) if wal_pages > WAL_RESET_PAGES => {
                let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
    }
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}

/// Read connections, opened on demand and kept up to `max_idle`.
struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
}

impl ReadPool {
    fn take(&self) -> Result<Connection> {
        if let Some(conn) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(conn);
        }
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }
}

fn secret_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(internal)?;
    Ok(hex::encode(buf))
}

fn read_feedback_of(conn: &Connection, tenant: &TenantId, trace: TraceId) -> Result<Vec<Feedback>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, received_at, body, investigation_id FROM feedback
         WHERE tenant = ?1 AND investigation_id = ?2 ORDER BY id",
    )?;
    let rows = statement.query_map(params![tenant.as_str(), &trace.as_bytes()[..]], |row| {
        feedback_row(tenant, row)
    })?;
    Ok(rows
        .map(|r| r.map(|row| row.feedback))
        .collect::<rusqlite::Result<_>>()?)
}

fn read_steps(
    conn: &Connection,
    blobs: &BlobStore,
    tenant: &TenantId,
    trace: TraceId,
) -> Result<Vec<Step>> {
    let mut statement = conn.prepare_cached(
        "SELECT body, result_inline, result_blob FROM steps WHERE tenant = ?1 AND trace_id = ?2",
    )?;
    let rows = statement.query_map(params![tenant.as_str(), &trace.as_bytes()[..]], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })?;
    let mut steps = Vec::new();
    for row in rows {
        let (body, inline, blob) = row?;
        let mut step: Step = serde_json::from_str(&body).map_err(internal)?;
        if let Some(call) = step.tool_call.as_mut() {
            call.result = match (inline, blob) {
                (Some(text), _) => Some(text),
                (None, Some(digest)) => {
                    let bytes = blobs.get(&digest).map_err(|e| {
                        StoreError::Internal(format!("blob {digest} of a step is unreadable: {e}"))
                    })?;
                    Some(String::from_utf8_lossy(&bytes).into_owned())
                }
                (None, None) => None,
            };
        }
        steps.push(step);
    }
    Ok(steps)
}

#[async_trait]
impl Store for SqliteStore {
    async fn ingest(&self, tenant: &TenantId, batch: IngestBatch) -> Result<IngestReceipt> {
        if batch.steps.is_empty() && batch.feedback.is_empty() && batch.entities.is_empty() {
            return Ok(IngestReceipt::default());
        }
        let tenant = tenant.clone();
        self.write(move |conn, context| writer::ingest(conn, context, &tenant, batch))
            .await
    }

    async fn submit_feedback(
        &self,
        tenant: &TenantId,
        feedback: ValidFeedback,
    ) -> Result<FeedbackReceipt> {
        let tenant = tenant.clone();
        self.write(move |conn, context| {
            writer::insert_feedback(conn, &tenant, feedback, context.now)
        })
        .await
    }

    async fn feedback(&self, tenant: &TenantId, id: FeedbackId) -> Result<Option<Feedback>> {
        let tenant = tenant.clone();
        self.read(move |conn, _| {
            Ok(conn
                .prepare_cached(
                    "SELECT id, received_at, body, investigation_id FROM feedback
                     WHERE tenant = ?1 AND id = ?2",
                )?
                .query_row(
                    params![tenant.as_str(), &id.as_uuid().as_bytes()[..]],
                    |row| feedback_row(&tenant, row),
                )
                .optional()?
                .map(|row| row.feedback))
        })
        .await
    }

    async fn investigation(&self, tenant: &TenantId, id: TraceId) -> Result<Option<Investigation>> {
        let tenant = tenant.clone();
        self.read(move |conn, blobs| {
            let steps = read_steps(conn, blobs, &tenant, id)?;
            if steps.is_empty() {
                return Ok(None);
            }
            let feedback = read_feedback_of(conn, &tenant, id)?;
            Ok(Investigation::assemble(id, steps, feedback))
        })
        .await
    }

    async fn create_api_key(
        &self,
        tenant: &TenantId,
        name: &str,
        scopes: ScopeSet,
    ) -> Result<NewApiKey> {
        let secret = format!("em_{}", random_hex(24)?);
        let key = self.ensure_api_key(tenant, name, scopes, &secret).await?;
        Ok(NewApiKey { secret, key })
    }

    async fn ensure_api_key(
        &self,
        tenant: &TenantId,
        name: &str,
        scopes: ScopeSet,
        secret: &str,
    ) -> Result<ApiKey> {
        let key = ApiKey {
            id: format!("key_{}", random_hex(8)?),
            tenant: tenant.clone(),
            name: name.to_owned(),
            scopes,
            created_at: self.clock.now(),
        };
        let secret_sha256 = secret_hash(secret);
        self.write_patiently(move |conn, _| writer::insert_key(conn, key, &secret_sha256))
            .await?;
        self.authenticate(secret)
            .await?
            .ok_or_else(|| StoreError::Internal("a key just written cannot be read".into()))
    }

    async fn authenticate(&self, secret: &str) -> Result<Option<ApiKey>> {
        let hash = secret_hash(secret);
        self.read(move |conn, _| {
            let row = conn
                .prepare_cached(
                    "SELECT id, tenant, name, scopes, created_at FROM api_keys WHERE secret_sha256 = ?1",
                )?
                .query_row([hash], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })
                .optional()?;
            let Some((id, tenant, name, scopes, created_at)) = row else {
                return Ok(None);
            };
            Ok(Some(ApiKey {
                id,
                tenant: TenantId::new(&tenant).map_err(internal)?,
                name,
                scopes: writer::scopes_from_column(&scopes)?,
                created_at: timestamp(created_at),
            }))
        })
        .await
    }

    async fn api_key_count(&self) -> Result<u64> {
        self.read(|conn, _| {
            Ok(conn.query_row("SELECT count(*) FROM api_keys", [], |r| r.get::<_, i64>(0))? as u64)
        })
        .await
    }

    async fn expire_investigations(&self, cutoff: Timestamp) -> Result<u64> {
        let cutoff_nanos = nanos(cutoff);
        self.write_patiently(move |conn, context| {
            let expired = writer::expire(conn, cutoff_nanos, &mut context.released_blobs)?;
            catalog::expire(conn, cutoff_nanos)?;
            Ok(expired)
        })
        .await
    }
}

fn lease_nanos(lease: jiff::SignedDuration) -> i64 {
    i64::try_from(lease.as_nanos()).unwrap_or(i64::MAX)
}

#[async_trait]
impl PipelineStore for SqliteStore {
    async fn claim_label_jobs(
        &self,
        lease: jiff::SignedDuration,
        limit: usize,
    ) -> Result<Vec<LabelJob>> {
        let lease = lease_nanos(lease);
        self.write_patiently(move |conn, context| {
            pipeline::claim_label_jobs(conn, context.now, lease, limit)
        })
        .await
    }

    async fn release_leases(&self) -> Result<u64> {
        self.write_patiently(|conn, _| {
            let jobs = conn.execute(
                "UPDATE label_jobs SET lease_until = NULL WHERE lease_until IS NOT NULL",
                [],
            )?;
            let captures = conn.execute(
                "UPDATE snapshot_queries SET lease_until = NULL WHERE lease_until IS NOT NULL",
                [],
            )?;
            Ok((jobs + captures) as u64)
        })
        .await
    }

    async fn defer_label_job(
        &self,
        job: &LabelJob,
        due_at: Timestamp,
        error: Option<String>,
    ) -> Result<()> {
        let job = job.clone();
        self.write_patiently(move |conn, context| {
            pipeline::defer_label_job(conn, &job, context.now, nanos(due_at), error)
        })
        .await
    }

    async fn finish_label_job(&self, job: &LabelJob, outcome: LabelOutcome) -> Result<()> {
        let job = job.clone();
        self.write_patiently(move |conn, context| {
            pipeline::finish_label_job(conn, &job, outcome, context.now)
        })
        .await
    }

    async fn plan_snapshot(
        &self,
        tenant: &TenantId,
        trace_id: TraceId,
        queries: Vec<SnapshotQuery>,
    ) -> Result<()> {
        let tenant = tenant.clone();
        self.write_patiently(move |conn, context| {
            pipeline::plan_snapshot(conn, &tenant, trace_id, queries, context.now)
        })
        .await
    }

    async fn snapshot(&self, tenant: &TenantId, trace_id: TraceId) -> Result<Vec<SnapshotQuery>> {
        let tenant = tenant.clone();
        self.read(move |conn, _| pipeline::snapshot(conn, &tenant, trace_id))
            .await
    }

    async fn snapshot_result(
        &self,
        tenant: &TenantId,
        trace_id: TraceId,
        query_id: &str,
    ) -> Result<Option<Vec<u8>>> {
        let (tenant, query_id) = (tenant.clone(), query_id.to_owned());
        self.read(move |conn, blobs| {
            match pipeline::snapshot_result(conn, &tenant, trace_id, &query_id)? {
                Some(pipeline::StoredResult::Inline(bytes)) => Ok(Some(bytes)),
                Some(pipeline::StoredResult::Blob(digest)) => {
                    blobs.get(&digest).map(Some).map_err(internal)
                }
                None => Ok(None),
            }
        })
        .await
    }

    async fn claim_captures(
        &self,
        order: CaptureOrder,
        lease: jiff::SignedDuration,
        limit: usize,
    ) -> Result<Vec<CaptureTask>> {
        let lease = lease_nanos(lease);
        self.write_patiently(move |conn, context| {
            pipeline::claim_captures(conn, order, context.now, lease, limit)
        })
        .await
    }

    async fn record_capture(&self, task: CaptureTask, outcome: CaptureOutcome) -> Result<()> {
        self.write_patiently(move |conn, context| {
            pipeline::record_capture(conn, context, task, outcome)
        })
        .await
    }

    async fn candidates(
        &self,
        tenant: &TenantId,
        query: CandidateQuery,
    ) -> Result<Vec<CandidateLabel>> {
        let tenant = tenant.clone();
        self.read(move |conn, _| pipeline::candidates(conn, &tenant, &query))
            .await
    }

    async fn candidate(&self, tenant: &TenantId, id: &str) -> Result<Option<CandidateLabel>> {
        let (tenant, id) = (tenant.clone(), id.to_owned());
        self.read(move |conn, _| pipeline::candidate(conn, &tenant, &id))
            .await
    }

    async fn feedback_label_state(
        &self,
        tenant: &TenantId,
        id: FeedbackId,
    ) -> Result<Option<FeedbackLabelState>> {
        let tenant = tenant.clone();
        self.read(move |conn, _| pipeline::feedback_label_state(conn, &tenant, id))
            .await
    }

    async fn pipeline_stats(&self, tenant: &TenantId) -> Result<PipelineStats> {
        let tenant = tenant.clone();
        self.read(move |conn, _| pipeline::pipeline_stats(conn, &tenant))
            .await
    }

    async fn upsert_catalog(&self, tenant: &TenantId, entries: Vec<CatalogEntry>) -> Result<usize> {
        if entries.is_empty() {
            return Ok(0);
        }
        let tenant = tenant.clone();
        self.write_patiently(move |conn, context| {
            catalog::upsert(conn, &tenant, entries, context.now)
        })
        .await
    }

    async fn catalog(&self, tenant: &TenantId) -> Result<Catalog> {
        let tenant = tenant.clone();
        self.read(move |conn, _| catalog::catalog(conn, &tenant))
            .await
    }

    async fn catalog_entries(
        &self,
        tenant: &TenantId,
        query: CatalogQuery,
    ) -> Result<Vec<StoredCatalogEntry>> {
        let tenant = tenant.clone();
        self.read(move |conn, _| catalog::query(conn, &tenant, &query))
            .await
    }
}
