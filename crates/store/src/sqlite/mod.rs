//! The embedded store: SQLite in WAL mode in the data directory, a single writer thread for all
//! writes and a small pool of read connections, both off the async threads.

mod catalog;
pub mod engine;
mod erasure;
mod eval_runs;
mod owner;
mod pipeline;
mod review;
mod rows;
mod schema;

pub(crate) use self::schema::{MIGRATIONS, version_of};
mod writer;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use evalmint_model::{
    Feedback, FeedbackId, Investigation, Scope, ScopeSet, Step, TenantId, Timestamp, TraceId,
    ValidFeedback,
};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use self::rows::{feedback_row, internal, nanos, system_time, timestamp};
use self::writer::{
    BULK_ROWS_PER_COMMAND, BULK_ROWS_PER_COMMIT, Command, Lane, WhenFull, WriteContext, WriteQueue,
    Writer,
};
use crate::{
    ApiKey, BlobStore, CandidateQuery, CaptureOrder, CaptureOutcome, CaptureTask, CatalogQuery,
    Clock, Erasure, FeedbackLabelState, FeedbackReceipt, IngestBatch, IngestReceipt, LabelJob,
    LabelOutcome, NewApiKey, PipelineStats, PipelineStore, Result, Store, StoreError,
    StoredCatalogEntry, SystemClock, UiSession,
};
use crate::{
    DecisionOutcome, ImportError, ReleaseManifest, ReleasedLabel, ReviewQuery, ReviewStore,
};
use evalmint_model::calibration::Observation;
use evalmint_model::release::Release;
use evalmint_model::{CandidateLabel, Catalog, CatalogEntry, EvalRun, SnapshotQuery};
use evalmint_model::{LabelVersion, Segment, ValidDecision};

/// Tuning of the embedded store.
#[derive(Clone)]
pub struct SqliteOptions {
    /// Prompt write commands (feedback, keys, pipeline) that may wait for the writer; beyond
    /// this, feedback fails with `Busy`.
    pub write_queue: usize,
    /// Span rows that may wait for the writer; beyond this, ingest fails with `Busy`. Feedback
    /// never waits behind them: the writer always commits the prompt lane first.
    pub bulk_queue_rows: usize,
    /// Tool results longer than this many bytes go to the blob store.
    pub inline_result_max: usize,
    pub read_connections: usize,
    pub clock: Arc<dyn Clock>,
    /// A blob stored more recently than this is never garbage-collected: it may belong to a
    /// write that has not committed its row yet.
    pub blob_grace: jiff::SignedDuration,
    /// Where tool results too long to keep inline go; `None` is the data directory's `blobs/`.
    pub blobs: Option<BlobStore>,
}

impl std::fmt::Debug for SqliteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteOptions")
            .field("write_queue", &self.write_queue)
            .field("bulk_queue_rows", &self.bulk_queue_rows)
            .field("inline_result_max", &self.inline_result_max)
            .field("read_connections", &self.read_connections)
            .field("blob_grace", &self.blob_grace)
            .field("blobs", &self.blobs.as_ref().map(BlobStore::location))
            .finish_non_exhaustive()
    }
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            write_queue: 1024,
            bulk_queue_rows: 4 * BULK_ROWS_PER_COMMIT,
            inline_result_max: 4096,
            read_connections: 16,
            clock: Arc::new(SystemClock),
            blob_grace: jiff::SignedDuration::from_mins(10),
            blobs: None,
        }
    }
}

/// The embedded default store.
pub struct SqliteStore {
    queue: Arc<WriteQueue>,
    readers: Arc<ReadPool>,
    blobs: BlobStore,
    clock: Arc<dyn Clock>,
    blob_grace: jiff::SignedDuration,
    /// The data directory's lock, held while the store is open.
    _owner: owner::Owner,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.readers.path)
            .finish_non_exhaustive()
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.queue.close();
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir`: `evalmint.db` and, unless
    /// `options.blobs` says otherwise, `blobs/`. One store owns a data directory: while it is
    /// open, opening another on the same directory, in this process or another, fails with
    /// [`StoreError::InUse`].
    pub fn open(data_dir: &Path, options: SqliteOptions) -> Result<Self> {
        crate::private::create_dir_all(data_dir).map_err(|e| {
            StoreError::Internal(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        let owner = owner::Owner::lock(data_dir)?;
        let path = data_dir.join("evalmint.db");
        // SQLite gives the WAL and shared-memory files the database file's permissions.
        crate::private::create_file(&path)
            .map_err(|e| StoreError::Internal(format!("cannot create {}: {e}", path.display())))?;
        let mut conn = Connection::open(&path)?;
        schema::configure_writer(&conn)?;
        schema::migrate(&mut conn)?;
        erasure::key_legacy_audit_rows(&mut conn)?;
        review::version_unversioned_admissions(&mut conn)?;
        let blobs = match options.blobs {
            Some(blobs) => blobs,
            None => BlobStore::open(data_dir.join("blobs")).map_err(internal)?,
        };

        let queue = Arc::new(WriteQueue::new(
            options.write_queue,
            options.bulk_queue_rows,
        ));
        let writer = Writer {
            conn,
            blobs: blobs.clone(),
            clock: options.clock.clone(),
            inline_result_max: options.inline_result_max,
            blob_grace: options.blob_grace,
        };
        let checkpointer = Connection::open(&path)?;
        schema::configure(&checkpointer)?;
        let stop_checkpointing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = stop_checkpointing.clone();
        let writer_queue = queue.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                writer.run(&writer_queue);
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            })
            .map_err(internal)?;
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_until(&checkpointer, &stop_checkpointing))
            .map_err(internal)?;

        Ok(SqliteStore {
            queue,
            readers: Arc::new(ReadPool {
                path,
                idle: Mutex::new(Vec::new()),
                max_idle: options.read_connections.max(1),
            }),
            blobs,
            clock: options.clock,
            blob_grace: options.blob_grace,
            _owner: owner,
        })
    }

    /// Queues a prompt write without waiting for room: a full queue is `Busy`, which callers
    /// turn into back-pressure (HTTP 429) instead of unbounded buffering.
    async fn write<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&Connection, &mut WriteContext<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.enqueue(Lane::Prompt, 1, WhenFull::Refuse, operation)
            .await
    }

    /// Like [`Self::write`] but waits for room: for background work and operator commands, which
    /// must not be refused.
    async fn write_patiently<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&Connection, &mut WriteContext<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.enqueue(Lane::Prompt, 1, WhenFull::Wait, operation)
            .await
    }

    /// Queues `operation` (about `rows` rows) in `lane` and waits for its commit.
    async fn enqueue<T: Send + 'static>(
        &self,
        lane: Lane,
        rows: usize,
        when_full: WhenFull,
        operation: impl FnOnce(&Connection, &mut WriteContext<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .push(lane, rows, when_full, Command::new(operation, reply))
            .await?;
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

/// Splits a batch into chunks of at most `rows` steps; trace-borne feedback rides with the last
/// chunk, so it is stored only once every span of its request is.
fn chunks(batch: IngestBatch, rows: usize) -> Vec<IngestBatch> {
    let count = batch.steps.len().div_ceil(rows).max(1);
    // Each chunk gets a vector of its own size: splitting off the tail instead would copy the
    // rest of the batch once per chunk and leave every chunk holding the whole capacity.
    let mut steps = batch.steps.into_iter();
    let mut chunks: Vec<IngestBatch> = (0..count)
        .map(|_| IngestBatch {
            steps: steps.by_ref().take(rows).collect(),
            feedback: Vec::new(),
            entities: Vec::new(),
        })
        .collect();
    if let Some(last) = chunks.last_mut() {
        last.feedback = batch.feedback;
        last.entities = batch.entities;
    }
    chunks
}

impl SqliteStore {
    fn new_key_record(&self, tenant: &TenantId, name: &str, scopes: ScopeSet) -> Result<ApiKey> {
        Ok(ApiKey {
            id: format!("key_{}", random_hex(8)?),
            tenant: tenant.clone(),
            name: name.to_owned(),
            scopes,
            created_at: self.clock.now(),
            allowed_origins: Vec::new(),
        })
    }
}

type KeyColumns = (String, String, String, String, i64, String);

/// `id, tenant, name, scopes, created_at, allowed_origins` of an `api_keys` row.
fn key_columns(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyColumns> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn key_from_columns((id, tenant, name, scopes, created_at, origins): KeyColumns) -> Result<ApiKey> {
    Ok(ApiKey {
        id,
        tenant: TenantId::new(&tenant).map_err(internal)?,
        name,
        scopes: writer::scopes_from_column(&scopes)?,
        created_at: timestamp(created_at),
        allowed_origins: origins.lines().map(str::to_owned).collect(),
    })
}

fn new_secret() -> Result<String> {
    Ok(format!("em_{}", random_hex(24)?))
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
        let mut step: Step = crate::encoding::decode(&body)?;
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
        // A batch larger than one commit's budget is written in chunks, each its own commit, so
        // feedback can commit between them. Only the first chunk may be refused as `Busy`; once
        // admitted, the batch waits for room. It is acknowledged after its last chunk commits.
        let mut receipt = IngestReceipt::default();
        for (index, chunk) in chunks(batch, BULK_ROWS_PER_COMMAND).into_iter().enumerate() {
            let when_full = if index == 0 {
                WhenFull::Refuse
            } else {
                WhenFull::Wait
            };
            let rows = chunk.steps.len() + chunk.feedback.len();
            let tenant = tenant.clone();
            let written = self
                .enqueue(Lane::Bulk, rows, when_full, move |conn, context| {
                    writer::ingest(conn, context, &tenant, chunk)
                })
                .await?;
            receipt.steps_written += written.steps_written;
            receipt.feedback_created += written.feedback_created;
        }
        Ok(receipt)
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
        let secret = new_secret()?;
        let key = self.new_key_record(tenant, name, scopes)?;
        let secret_sha256 = secret_hash(&secret);
        let key = self
            .write_patiently(move |conn, _| writer::insert_key(conn, key, &secret_sha256))
            .await?;
        Ok(NewApiKey { secret, key })
    }

    async fn create_publishable_key(
        &self,
        tenant: &TenantId,
        name: &str,
        allowed_origins: Vec<String>,
    ) -> Result<NewApiKey> {
        if allowed_origins.is_empty() {
            return Err(StoreError::Internal(
                "a publishable key needs at least one allowed origin".into(),
            ));
        }
        let secret = new_secret()?;
        let mut key =
            self.new_key_record(tenant, name, ScopeSet::default().with(Scope::Feedback))?;
        key.allowed_origins = allowed_origins;
        let secret_sha256 = secret_hash(&secret);
        let key = self
            .write_patiently(move |conn, _| writer::insert_key(conn, key, &secret_sha256))
            .await?;
        Ok(NewApiKey { secret, key })
    }

    async fn replace_named_api_key(
        &self,
        tenant: &TenantId,
        name: &str,
        scopes: ScopeSet,
        secret: &str,
    ) -> Result<ApiKey> {
        let key = self.new_key_record(tenant, name, scopes)?;
        let secret_sha256 = secret_hash(secret);
        self.write_patiently(move |conn, _| writer::replace_named_key(conn, key, &secret_sha256))
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
                    "SELECT id, tenant, name, scopes, created_at, allowed_origins FROM api_keys WHERE secret_sha256 = ?1",
                )?
                .query_row([hash], key_columns)
                .optional()?;
            row.map(key_from_columns).transpose()
        })
        .await
    }

    async fn active_api_key_ids(&self, ids: Vec<String>) -> Result<HashSet<String>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let ids = serde_json::to_string(&ids).map_err(internal)?;
        self.read(move |conn, _| {
            let active = conn
                .prepare_cached(
                    "SELECT id FROM api_keys WHERE id IN (SELECT value FROM json_each(?1))",
                )?
                .query_map([ids], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(active)
        })
        .await
    }

    async fn api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>> {
        let tenant = tenant.clone();
        self.read(move |conn, _| {
            let mut statement = conn.prepare_cached(
                "SELECT id, tenant, name, scopes, created_at, allowed_origins FROM api_keys
                 WHERE tenant = ?1 ORDER BY created_at, rowid",
            )?;
            let rows = statement
                .query_map([tenant.as_str()], key_columns)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter().map(key_from_columns).collect()
        })
        .await
    }

    async fn revoke_api_key(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        let (tenant, id) = (tenant.clone(), id.to_owned());
        self.write_patiently(move |conn, _| writer::delete_key(conn, &tenant, &id))
            .await
    }

    async fn rotate_api_key(&self, tenant: &TenantId, id: &str) -> Result<Option<NewApiKey>> {
        let secret = new_secret()?;
        // Name and scopes are copied from the old key inside the transaction.
        let key = self.new_key_record(tenant, "", ScopeSet::default())?;
        let secret_sha256 = secret_hash(&secret);
        let old_id = id.to_owned();
        let rotated = self
            .write_patiently(move |conn, _| writer::rotate_key(conn, &old_id, key, &secret_sha256))
            .await?;
        Ok(rotated.map(|key| NewApiKey { secret, key }))
    }

    async fn check_ready(&self) -> Result<()> {
        if self.queue.is_closed() {
            return Err(StoreError::Closed);
        }
        self.read(|conn, _| Ok(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
            .await
            .map(|_| ())
    }

    async fn api_key_count(&self) -> Result<u64> {
        self.read(|conn, _| {
            Ok(conn.query_row("SELECT count(*) FROM api_keys", [], |r| r.get::<_, i64>(0))? as u64)
        })
        .await
    }

    async fn create_ui_session(
        &self,
        tenant: &TenantId,
        token_sha256: &[u8],
        key_id: &str,
        csrf: &str,
        ttl: std::time::Duration,
    ) -> Result<()> {
        let now = nanos(self.clock.now());
        let expires_at = now.saturating_add(i64::try_from(ttl.as_nanos()).unwrap_or(i64::MAX));
        let (tenant, token_sha256, key_id, csrf) = (
            tenant.clone(),
            token_sha256.to_vec(),
            key_id.to_owned(),
            csrf.to_owned(),
        );
        self.write_patiently(move |conn, _| {
            writer::insert_ui_session(
                conn,
                &tenant,
                &token_sha256,
                &key_id,
                &csrf,
                now,
                expires_at,
            )
        })
        .await
    }

    async fn ui_session(&self, token_sha256: &[u8]) -> Result<Option<UiSession>> {
        let now = nanos(self.clock.now());
        let token_sha256 = token_sha256.to_vec();
        self.read(move |conn, _| {
            let row = conn
                .prepare_cached(
                    "SELECT k.id, k.tenant, k.name, k.scopes, k.created_at, k.allowed_origins, s.csrf
                     FROM ui_sessions AS s
                     JOIN api_keys AS k ON k.tenant = s.tenant AND k.id = s.key_id
                     WHERE s.token_sha256 = ?1 AND s.expires_at > ?2",
                )?
                .query_row(params![token_sha256, now], |r| {
                    Ok((key_columns(r)?, r.get::<_, String>(6)?))
                })
                .optional()?;
            row.map(|(key, csrf)| {
                Ok(UiSession {
                    key: key_from_columns(key)?,
                    csrf,
                })
            })
            .transpose()
        })
        .await
    }

    async fn end_ui_session(&self, tenant: &TenantId, token_sha256: &[u8]) -> Result<bool> {
        let (tenant, token_sha256) = (tenant.clone(), token_sha256.to_vec());
        self.write_patiently(move |conn, _| writer::delete_ui_session(conn, &tenant, &token_sha256))
            .await
    }

    async fn expire_investigations(&self, cutoff: Timestamp) -> Result<u64> {
        let cutoff_nanos = nanos(cutoff);
        // Retention may delete many rows: it waits in the bulk lane, counted as a full commit.
        self.enqueue(
            Lane::Bulk,
            BULK_ROWS_PER_COMMIT,
            WhenFull::Wait,
            move |conn, context| {
                let expired = writer::expire(conn, cutoff_nanos, &mut context.released_blobs)?;
                catalog::expire(conn, cutoff_nanos)?;
                Ok(expired)
            },
        )
        .await
    }

    async fn collect_garbage(&self) -> Result<u64> {
        let grace = self.blob_grace;
        let grace_nanos = i64::try_from(grace.as_nanos()).unwrap_or(i64::MAX);
        let stored_before = system_time(nanos(self.clock.now()).saturating_sub(grace_nanos));
        // Listing and a first check run off the writer; the writer re-checks only the few
        // candidates, so a blob stored or referenced since is kept.
        let candidates = self
            .read(move |conn, blobs| {
                let mut candidates = Vec::new();
                for (digest, stored) in blobs.list(stored_before).map_err(internal)? {
                    if stored <= stored_before && !writer::blob_referenced(conn, &digest)? {
                        candidates.push(digest);
                    }
                }
                Ok(candidates)
            })
            .await?;
        if candidates.is_empty() {
            return Ok(0);
        }
        self.write_patiently(move |conn, context| {
            writer::remove_unreferenced(conn, context.blobs, &candidates, context.now, grace)
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

    async fn end_unjoined_feedback(&self, received_before: Timestamp, reason: &str) -> Result<u64> {
        let reason = reason.to_owned();
        self.write_patiently(move |conn, _| {
            let ended = conn
                .prepare_cached(
                    "UPDATE feedback SET label_state = 'not_candidate', label_detail = ?2
                     WHERE investigation_id IS NULL AND label_state = 'pending' AND received_at < ?1",
                )?
                .execute(rusqlite::params![nanos(received_before), reason])?;
            Ok(ended as u64)
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
            pipeline::defer_label_job(conn, context, &job, nanos(due_at), error)
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

    async fn erase_user_feedback(
        &self,
        tenant: &TenantId,
        user_id: &str,
        requested_by: &str,
    ) -> Result<Erasure> {
        let (tenant, user_id, requested_by) =
            (tenant.clone(), user_id.to_owned(), requested_by.to_owned());
        self.write_patiently(move |conn, context| {
            let selection = crate::erasure::Selection::User(&user_id);
            erasure::erase(conn, context, &tenant, selection, &requested_by)?
                .ok_or_else(|| StoreError::Internal("an erasure of a user went unrecorded".into()))
        })
        .await
    }

    async fn erase_feedback(
        &self,
        tenant: &TenantId,
        id: FeedbackId,
        requested_by: &str,
    ) -> Result<Option<Erasure>> {
        let (tenant, requested_by) = (tenant.clone(), requested_by.to_owned());
        self.write_patiently(move |conn, context| {
            let selection = crate::erasure::Selection::Feedback(id);
            erasure::erase(conn, context, &tenant, selection, &requested_by)
        })
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

    async fn store_eval_run(&self, tenant: &TenantId, run: EvalRun) -> Result<()> {
        let tenant = tenant.clone();
        self.write_patiently(move |conn, _| eval_runs::store(conn, &tenant, &run))
            .await
    }

    async fn eval_run(&self, tenant: &TenantId, id: &str) -> Result<Option<EvalRun>> {
        let (tenant, id) = (tenant.clone(), id.to_owned());
        self.read(move |conn, _| eval_runs::one(conn, &tenant, &id))
            .await
    }

    async fn eval_runs(&self, tenant: &TenantId, limit: usize) -> Result<Vec<EvalRun>> {
        let tenant = tenant.clone();
        self.read(move |conn, _| eval_runs::newest(conn, &tenant, limit))
            .await
    }

    async fn label_history(
        &self,
        tenant: &TenantId,
        label_id: &str,
        limit: usize,
    ) -> Result<Vec<evalmint_model::LabelRun>> {
        let (tenant, label_id) = (tenant.clone(), label_id.to_owned());
        self.read(move |conn, _| eval_runs::label_history(conn, &tenant, &label_id, limit))
            .await
    }

    async fn erasures(&self, tenant: &TenantId) -> Result<Vec<Erasure>> {
        let tenant = tenant.clone();
        self.read(move |conn, _| erasure::erasures(conn, &tenant))
            .await
    }

    async fn user_erasures(&self, tenant: &TenantId, user_id: &str) -> Result<Vec<Erasure>> {
        let (tenant, user_id) = (tenant.clone(), user_id.to_owned());
        self.read(move |conn, _| erasure::user_erasures(conn, &tenant, &user_id))
            .await
    }
}

#[async_trait]
impl ReviewStore for SqliteStore {
    async fn review_queue(
        &self,
        tenant: &TenantId,
        query: ReviewQuery,
    ) -> Result<(Vec<crate::QueueItem>, u64)> {
        let tenant = tenant.clone();
        self.read(move |conn, _| review::review_queue(conn, &tenant, &query))
            .await
    }

    async fn decide(
        &self,
        tenant: &TenantId,
        candidate_id: &str,
        reviewer: &str,
        decision: ValidDecision,
    ) -> Result<DecisionOutcome> {
        let (tenant, candidate_id, reviewer) =
            (tenant.clone(), candidate_id.to_owned(), reviewer.to_owned());
        self.write(move |conn, context| {
            review::decide(conn, context, &tenant, &candidate_id, &reviewer, decision)
        })
        .await
    }

    async fn label_versions(&self, tenant: &TenantId, trace: TraceId) -> Result<Vec<LabelVersion>> {
        let tenant = tenant.clone();
        self.read(move |conn, _| review::label_versions(conn, &tenant, trace))
            .await
    }

    async fn current_labels(
        &self,
        tenant: &TenantId,
        filters: Vec<Segment>,
    ) -> Result<Vec<LabelVersion>> {
        let tenant = tenant.clone();
        self.read(move |conn, _| review::current_labels(conn, &tenant, &filters))
            .await
    }

    async fn calibration_observations(&self, tenant: &TenantId) -> Result<Vec<Observation>> {
        let tenant = tenant.clone();
        self.read(move |conn, _| review::calibration_observations(conn, &tenant))
            .await
    }

    async fn create_release(
        &self,
        tenant: &TenantId,
        name: &str,
        filters: Vec<Segment>,
    ) -> Result<(Release, bool)> {
        let (tenant, name) = (tenant.clone(), name.to_owned());
        self.write_patiently(move |conn, context| {
            review::create_release(conn, context, &tenant, &name, filters)
        })
        .await
    }

    async fn releases(&self, tenant: &TenantId) -> Result<Vec<Release>> {
        let tenant = tenant.clone();
        self.read(move |conn, _| review::releases(conn, &tenant))
            .await
    }

    async fn release(&self, tenant: &TenantId, id: &str) -> Result<Option<Release>> {
        let (tenant, id) = (tenant.clone(), id.to_owned());
        self.read(move |conn, _| review::release(conn, &tenant, &id))
            .await
    }

    async fn release_labels(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<(ReleaseManifest, Vec<ReleasedLabel>)>> {
        let (tenant, id) = (tenant.clone(), id.to_owned());
        self.read(move |conn, blobs| review::release_labels(conn, blobs, &tenant, &id))
            .await
    }

    async fn import_release(
        &self,
        tenant: &TenantId,
        manifest: ReleaseManifest,
        labels: Vec<ReleasedLabel>,
    ) -> Result<std::result::Result<Release, ImportError>> {
        let tenant = tenant.clone();
        self.write_patiently(move |conn, context| {
            review::import_release(conn, context, &tenant, manifest, labels)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;
    use evalmint_model::{
        AgentInfo, FeedbackOrigin, FeedbackSubmission, SpanId, StepKind, StepStatus,
    };

    fn store(dir: &Path, bulk_queue_rows: usize) -> Arc<SqliteStore> {
        let clock = Arc::new(ManualClock::new("2026-03-01T12:00:00Z".parse().unwrap()));
        Arc::new(
            SqliteStore::open(
                dir,
                SqliteOptions {
                    bulk_queue_rows,
                    clock,
                    ..SqliteOptions::default()
                },
            )
            .unwrap(),
        )
    }

    fn steps(trace: TraceId, count: u64) -> IngestBatch {
        steps_from(trace, 1, count)
    }

    /// `count` steps of `trace` with span ids from `first` on.
    fn steps_from(trace: TraceId, first: u64, count: u64) -> IngestBatch {
        let start: Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
        IngestBatch {
            steps: (first..first + count)
                .map(|n| {
                    let step = Step {
                        span_id: SpanId::from_bytes(&n.to_be_bytes()).unwrap(),
                        parent_span_id: None,
                        name: format!("step {n}"),
                        kind: StepKind::Llm,
                        started_at: start,
                        ended_at: start,
                        status: StepStatus::Ok,
                        status_message: None,
                        agent: AgentInfo::default(),
                        trigger: None,
                        input: None,
                        output: None,
                        tool_call: None,
                    };
                    (trace, step)
                })
                .collect(),
            feedback: vec![],
            entities: vec![],
        }
    }

    fn feedback_on_span(span: u64) -> ValidFeedback {
        let span = SpanId::from_bytes(&span.to_be_bytes()).unwrap();
        serde_json::from_str::<FeedbackSubmission>(&format!(
            r#"{{"span_id":"{span}","verdict":"down"}}"#
        ))
        .unwrap()
        .validate(FeedbackOrigin::Api)
        .unwrap()
    }

    /// Occupies the writer until the returned sender is dropped or sent to.
    async fn hold_writer(store: &Arc<SqliteStore>) -> std::sync::mpsc::Sender<()> {
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (started, running) = oneshot::channel();
        let holder = store.clone();
        tokio::spawn(async move {
            holder
                .write_patiently(move |_, _| {
                    let _ = started.send(());
                    let _ = released.recv();
                    Ok(())
                })
                .await
        });
        running.await.unwrap();
        release
    }

    async fn until_queued(store: &SqliteStore, prompt: usize, bulk: usize) {
        while store.queue.queued() != (prompt, bulk) {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn feedback_queued_behind_span_batches_commits_before_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), 4 * BULK_ROWS_PER_COMMIT);
        let acme = TenantId::new("acme").unwrap();
        let (full, named) = (
            TraceId::from_bytes(&[7; 16]).unwrap(),
            TraceId::from_bytes(&[6; 16]).unwrap(),
        );
        let named_span = 1_000_000;

        let release = hold_writer(&store).await;
        // A span batch, then one holding the span the feedback names, then the feedback: all
        // waiting while the writer is busy.
        let whole_commit = tokio::spawn({
            let (store, acme) = (store.clone(), acme.clone());
            async move {
                store
                    .ingest(&acme, steps(full, BULK_ROWS_PER_COMMAND as u64))
                    .await
            }
        });
        until_queued(&store, 0, 1).await;
        let naming = tokio::spawn({
            let (store, acme) = (store.clone(), acme.clone());
            async move { store.ingest(&acme, steps_from(named, named_span, 1)).await }
        });
        until_queued(&store, 0, 2).await;
        let feedback = tokio::spawn({
            let (store, acme) = (store.clone(), acme.clone());
            async move {
                store
                    .submit_feedback(&acme, feedback_on_span(named_span))
                    .await
            }
        });
        until_queued(&store, 1, 2).await;
        release.send(()).unwrap();

        // The feedback went first: in arrival order the span would have been stored before it
        // and the feedback joined to its trace on insert.
        let receipt = feedback.await.unwrap().unwrap();
        assert_eq!(receipt.feedback().body.investigation_id, None);
        assert_eq!(
            whole_commit.await.unwrap().unwrap().steps_written,
            BULK_ROWS_PER_COMMAND
        );
        assert_eq!(naming.await.unwrap().unwrap().steps_written, 1);
        // The span's arrival joined it afterwards.
        let stored = store
            .feedback(&acme, receipt.feedback().id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.body.investigation_id, Some(named));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_larger_than_one_commit_lets_feedback_in_between_its_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), 4 * BULK_ROWS_PER_COMMIT);
        let acme = TenantId::new("acme").unwrap();
        let trace = TraceId::from_bytes(&[5; 16]).unwrap();
        let rows = 3 * BULK_ROWS_PER_COMMAND as u64;

        let release = hold_writer(&store).await;
        let ingest = tokio::spawn({
            let (store, acme) = (store.clone(), acme.clone());
            async move { store.ingest(&acme, steps(trace, rows)).await }
        });
        until_queued(&store, 0, 1).await;
        let feedback = tokio::spawn({
            let (store, acme) = (store.clone(), acme.clone());
            // The span it names is in the batch's last chunk.
            async move { store.submit_feedback(&acme, feedback_on_span(rows)).await }
        });
        until_queued(&store, 1, 1).await;
        release.send(()).unwrap();

        let receipt = feedback.await.unwrap().unwrap();
        assert_eq!(receipt.feedback().body.investigation_id, None);
        assert_eq!(ingest.await.unwrap().unwrap().steps_written, rows as usize);
        let stored = store
            .feedback(&acme, receipt.feedback().id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.body.investigation_id, Some(trace));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn feedback_arriving_during_a_group_cuts_the_group_short() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), 4 * BULK_ROWS_PER_COMMIT);
        let acme = TenantId::new("acme").unwrap();
        let (first, named) = (
            TraceId::from_bytes(&[4; 16]).unwrap(),
            TraceId::from_bytes(&[3; 16]).unwrap(),
        );
        let named_span = 1_000_000;

        let release = hold_writer(&store).await;
        // Two small span batches that fit one group. While the writer runs the first, a
        // feedback naming a span of the second is submitted.
        let (feedback_sent, feedback) = oneshot::channel();
        let interrupting = tokio::spawn({
            let (store, acme) = (store.clone(), acme.clone());
            let (runtime, submitter, queue) = (
                tokio::runtime::Handle::current(),
                store.clone(),
                store.queue.clone(),
            );
            async move {
                store
                    .enqueue(Lane::Bulk, 1, WhenFull::Refuse, move |conn, context| {
                        let written = writer::ingest(conn, context, &acme, steps(first, 1))?;
                        let submitted = runtime.spawn(async move {
                            submitter
                                .submit_feedback(&acme, feedback_on_span(named_span))
                                .await
                        });
                        while queue.queued().0 == 0 {
                            std::thread::yield_now();
                        }
                        let _ = feedback_sent.send(submitted);
                        Ok(written)
                    })
                    .await
            }
        });
        until_queued(&store, 0, 1).await;
        let naming = tokio::spawn({
            let (store, acme) = (store.clone(), acme.clone());
            async move { store.ingest(&acme, steps_from(named, named_span, 1)).await }
        });
        until_queued(&store, 0, 2).await;
        release.send(()).unwrap();

        // The writer committed after the first batch and let the feedback in before the second.
        let receipt = feedback.await.unwrap().await.unwrap().unwrap();
        assert_eq!(receipt.feedback().body.investigation_id, None);
        assert_eq!(interrupting.await.unwrap().unwrap().steps_written, 1);
        assert_eq!(naming.await.unwrap().unwrap().steps_written, 1);
        let stored = store
            .feedback(&acme, receipt.feedback().id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.body.investigation_id, Some(named));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_span_lane_refuses_ingest_but_not_feedback() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), 10);
        let acme = TenantId::new("acme").unwrap();
        let trace = TraceId::from_bytes(&[8; 16]).unwrap();

        let release = hold_writer(&store).await;
        let first = tokio::spawn({
            let (store, acme) = (store.clone(), acme.clone());
            async move { store.ingest(&acme, steps(trace, 10)).await }
        });
        until_queued(&store, 0, 1).await;
        let refused = store.ingest(&acme, steps(trace, 1)).await;
        assert!(matches!(refused, Err(StoreError::Busy)), "{refused:?}");
        let feedback = tokio::spawn({
            let (store, acme) = (store.clone(), acme.clone());
            async move { store.submit_feedback(&acme, feedback_on_span(1)).await }
        });
        until_queued(&store, 1, 1).await;
        release.send(()).unwrap();

        assert!(feedback.await.unwrap().is_ok());
        assert_eq!(first.await.unwrap().unwrap().steps_written, 10);
        // Once the lane has room again, ingest is accepted.
        assert_eq!(
            store
                .ingest(&acme, steps(trace, 1))
                .await
                .unwrap()
                .steps_written,
            1
        );
    }

    #[test]
    fn chunks_keep_every_step_and_put_feedback_last() {
        let trace = TraceId::from_bytes(&[9; 16]).unwrap();
        let mut batch = steps(trace, 5);
        batch.feedback.push(feedback_on_span(5));
        let split = chunks(batch, 2);
        let sizes: Vec<(usize, usize)> = split
            .iter()
            .map(|c| (c.steps.len(), c.feedback.len()))
            .collect();
        assert_eq!(sizes, vec![(2, 0), (2, 0), (1, 1)]);
        let spans: Vec<SpanId> = split
            .iter()
            .flat_map(|c| c.steps.iter().map(|(_, s)| s.span_id))
            .collect();
        let expected: Vec<SpanId> = steps(trace, 5)
            .steps
            .iter()
            .map(|(_, s)| s.span_id)
            .collect();
        assert_eq!(spans, expected);
        assert_eq!(chunks(IngestBatch::default(), 2).len(), 1);
    }
}
