//! The shared store: Postgres through a deadpool connection pool, for any number of servers and
//! workers on one database. Every write is one transaction; what the embedded store gets from its
//! single writer (no two writes to one investigation interleave) comes here from row locks,
//! `FOR UPDATE SKIP LOCKED` claims, per-investigation advisory locks and unique constraints.

mod catalog;
mod pipeline;
mod review;
mod schema;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use evalmint_model::calibration::Observation;
use evalmint_model::release::Release;
use evalmint_model::{
    CandidateLabel, Catalog, CatalogEntry, EvalRun, Feedback, FeedbackId, Investigation,
    LabelVersion, Scope, ScopeSet, Segment, SnapshotQuery, Step, TenantId, Timestamp, TraceId,
    ValidDecision, ValidFeedback,
};
use tokio_postgres::NoTls;

use crate::convert::{duration_nanos, internal, nanos, system_time, timestamp};
use crate::erasure::Selection;
use crate::{
    ApiKey, BlobStore, CandidateQuery, CaptureOrder, CaptureOutcome, CaptureTask, CatalogQuery,
    Clock, DecisionOutcome, Erasure, FeedbackLabelState, FeedbackReceipt, ImportError, IngestBatch,
    IngestReceipt, LabelJob, LabelOutcome, NewApiKey, PipelineStats, PipelineStore,
    ReleaseManifest, ReleasedLabel, Result, ReviewQuery, ReviewStore, Store, StoreError,
    StoredCatalogEntry, SystemClock, UiSession,
};

pub use self::schema::MigrationReport;
use self::schema::pg_error;

/// Tuning of the shared store.
#[derive(Clone)]
pub struct PostgresOptions {
    pub clock: Arc<dyn Clock>,
    /// Results longer than this many bytes go to the blob store.
    pub inline_result_max: usize,
    /// Connections the pool keeps open at most.
    pub pool_size: usize,
    /// Where results larger than `inline_result_max` are kept; every process sharing the
    /// database must share it too.
    pub blobs: BlobStore,
    /// The schema every connection works in (created if missing); `None`: the server's default
    /// search path (`public`). Letters, digits and `_` only.
    pub schema: Option<String>,
    /// How long a request waits for a free connection before it is refused as `Busy`.
    pub pool_wait: Duration,
    /// A blob stored more recently than this is never garbage-collected: it may belong to a
    /// write that has not committed its row yet.
    pub blob_grace: jiff::SignedDuration,
}

impl PostgresOptions {
    /// Defaults around the blob store the processes share.
    pub fn new(blobs: BlobStore) -> Self {
        PostgresOptions {
            clock: Arc::new(SystemClock),
            inline_result_max: 4096,
            pool_size: 16,
            blobs,
            schema: None,
            pool_wait: Duration::from_millis(500),
            blob_grace: jiff::SignedDuration::from_mins(10),
        }
    }
}

impl std::fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("inline_result_max", &self.inline_result_max)
            .field("pool_size", &self.pool_size)
            .field("blobs", &self.blobs)
            .field("schema", &self.schema)
            .field("pool_wait", &self.pool_wait)
            .field("blob_grace", &self.blob_grace)
            .finish_non_exhaustive()
    }
}

/// The shared store.
pub struct PostgresStore {
    pool: Pool,
    blobs: BlobStore,
    clock: Arc<dyn Clock>,
    inline_result_max: usize,
    blob_grace: jiff::SignedDuration,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool.status())
            .field("blobs", &self.blobs)
            .finish_non_exhaustive()
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        pg_error(e)
    }
}

fn check_schema_name(schema: &str) -> Result<()> {
    let valid = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::Internal(format!(
            "schema name {schema:?}: use letters, digits and _ only (at most 63)"
        )))
    }
}

fn parse_url(url: &str) -> Result<tokio_postgres::Config> {
    url.parse().map_err(|e| {
        StoreError::Internal(format!(
            "database URL is not a Postgres connection string (postgres://user@host:port/db): {e}"
        ))
    })
}

/// One connection outside the pool, for migrations.
async fn connect_once(config: &tokio_postgres::Config) -> Result<tokio_postgres::Client> {
    let (client, connection) = config.connect(NoTls).await.map_err(|e| {
        StoreError::Internal(format!(
            "cannot connect to Postgres: {e} (is the server running and the URL right?)"
        ))
    })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "postgres connection ended");
        }
    });
    Ok(client)
}

impl PostgresStore {
    /// Connects to the database at `url`, applies pending migrations and opens the pool.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self> {
        Self::migrate(url, options.schema.as_deref()).await?;
        let mut config = parse_url(url)?;
        if let Some(schema) = &options.schema {
            config.options(format!("-c search_path={schema}"));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .wait_timeout(Some(options.pool_wait))
            .create_timeout(Some(Duration::from_secs(5)))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(internal)?;
        let store = PostgresStore {
            pool,
            blobs: options.blobs,
            clock: options.clock,
            inline_result_max: options.inline_result_max,
            blob_grace: options.blob_grace,
        };
        store.version_unversioned_admissions().await?;
        Ok(store)
    }

    /// Gives version 1 to labels admitted before label versions existed (see
    /// [`review::version_unversioned_admissions`]), one connecting server at a time.
    async fn version_unversioned_admissions(&self) -> Result<usize> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('evalmint unversioned admissions', 0))",
            &[],
        )
        .await?;
        let versioned = review::version_unversioned_admissions(&tx).await?;
        tx.commit().await?;
        Ok(versioned)
    }

    /// Applies pending migrations to the database at `url` (in `schema`, created if missing):
    /// what `connect` does first, and `evalmint migrate` alone.
    pub async fn migrate(url: &str, schema: Option<&str>) -> Result<MigrationReport> {
        if let Some(schema) = schema {
            check_schema_name(schema)?;
        }
        let config = parse_url(url)?;
        let mut client = connect_once(&config).await?;
        schema::migrate(&mut client, schema).await
    }

    /// A pooled connection; `Busy` when none frees up within the pool's wait.
    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => StoreError::Busy,
            PoolError::Closed => StoreError::Closed,
            PoolError::Backend(e) => pg_error(e),
            other => StoreError::Internal(format!("postgres pool: {other}")),
        })
    }

    fn now(&self) -> i64 {
        nanos(self.clock.now())
    }

    /// Stores each result longer than the inline limit in the blob store (off the async
    /// threads); returns the digests, `None` for results kept inline.
    async fn put_blobs(
        &self,
        results: Vec<Option<Vec<u8>>>,
        now: i64,
    ) -> Result<Vec<Option<String>>> {
        let (blobs, max) = (self.blobs.clone(), self.inline_result_max);
        if results.iter().flatten().all(|r| r.len() <= max) {
            return Ok(vec![None; results.len()]);
        }
        tokio::task::spawn_blocking(move || {
            results
                .iter()
                .map(|result| match result {
                    Some(bytes) if bytes.len() > max => blobs
                        .put(bytes, system_time(now))
                        .map(Some)
                        .map_err(internal),
                    _ => Ok(None),
                })
                .collect()
        })
        .await
        .map_err(internal)?
    }

    async fn read_blob(&self, digest: String) -> Result<Vec<u8>> {
        let blobs = self.blobs.clone();
        tokio::task::spawn_blocking(move || {
            blobs
                .get(&digest)
                .map_err(|e| StoreError::Internal(format!("blob {digest} is unreadable: {e}")))
        })
        .await
        .map_err(internal)?
    }

    /// Removes the blobs among `digests` that no row references and that were last stored
    /// before `now - grace`; returns how many were removed. Called after the commit that
    /// released them; the grace period covers a writer (of any process) that stored a blob but
    /// has not committed the row that references it yet.
    async fn remove_unreferenced(&self, digests: Vec<String>) -> Result<u64> {
        let distinct: Vec<String> = digests
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if distinct.is_empty() {
            return Ok(0);
        }
        let client = self.client().await?;
        let unreferenced = unreferenced_blobs(&client, &distinct).await?;
        drop(client);
        let old_enough = system_time(self.now().saturating_sub(duration_nanos(self.blob_grace)));
        let blobs = self.blobs.clone();
        tokio::task::spawn_blocking(move || {
            let mut removed = 0;
            for digest in unreferenced {
                match blobs.stored_at(&digest).map_err(internal)? {
                    Some(stored) if stored <= old_enough => {
                        blobs.remove(&digest).map_err(internal)?;
                        removed += 1;
                    }
                    _ => {}
                }
            }
            Ok(removed)
        })
        .await
        .map_err(internal)?
    }

    /// Removes blobs released by a committed write, logging instead of failing it.
    async fn release_blobs(&self, digests: Vec<String>) {
        if let Err(e) = self.remove_unreferenced(digests).await {
            tracing::warn!(error = %e, "could not remove unreferenced blobs");
        }
    }

    /// Erases the selected feedback in one transaction, then removes the blobs it released.
    async fn erase(
        &self,
        tenant: &TenantId,
        selection: Selection<'_>,
        requested_by: &str,
    ) -> Result<Option<Erasure>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut released = Vec::new();
        let erasure = pipeline::erase(
            &tx,
            tenant,
            selection,
            requested_by,
            self.now(),
            &mut released,
        )
        .await?;
        tx.commit().await?;
        drop(client);
        self.release_blobs(released).await;
        Ok(erasure)
    }

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

    /// Stores a key in its own transaction; `replace_named` first revokes the tenant's other keys
    /// of the same name (see `Store::replace_named_api_key`).
    async fn store_key(&self, key: ApiKey, secret: &str, replace_named: bool) -> Result<ApiKey> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let hash = secret_hash(secret);
        if replace_named {
            tx.execute(
                "DELETE FROM api_keys WHERE tenant = $1 AND name = $2 AND secret_sha256 <> $3",
                &[&key.tenant.as_str(), &key.name, &hash],
            )
            .await?;
        }
        let key = insert_key(&tx, key, &hash).await?;
        tx.commit().await?;
        Ok(key)
    }
}

/// The digests among `digests` that no step and no snapshot query references.
async fn unreferenced_blobs(db: &impl GenericClient, digests: &[String]) -> Result<Vec<String>> {
    Ok(db
        .query(
            &db.prepare_cached(
                "SELECT d FROM unnest($1::text[]) AS d
             WHERE NOT EXISTS (SELECT 1 FROM steps WHERE result_blob = d)
               AND NOT EXISTS (SELECT 1 FROM snapshot_queries WHERE result_blob = d)",
            )
            .await?,
            &[&digests],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Serialises writes to one investigation across every process: held until the transaction ends.
pub(crate) async fn lock_investigation(
    db: &impl GenericClient,
    tenant: &TenantId,
    trace: TraceId,
) -> Result<()> {
    db.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1 || ' ' || encode($2, 'hex'), 1))",
        &[&tenant.as_str(), &&trace.as_bytes()[..]],
    )
    .await?;
    Ok(())
}

fn new_secret() -> Result<String> {
    Ok(format!("em_{}", random_hex(24)?))
}

fn secret_hash(secret: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(secret.as_bytes()).to_vec()
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(internal)?;
    Ok(hex::encode(buf))
}

fn trace_of(bytes: &[u8]) -> Result<TraceId> {
    TraceId::from_bytes(bytes).map_err(internal)
}

fn tenant_of(name: &str) -> Result<TenantId> {
    TenantId::new(name).map_err(internal)
}

const KEY_COLUMNS: &str = "id, tenant, name, scopes, created_at, allowed_origins";

fn key_of(row: &tokio_postgres::Row) -> Result<ApiKey> {
    let origins: String = row.get(5);
    Ok(ApiKey {
        id: row.get(0),
        tenant: tenant_of(row.get(1))?,
        name: row.get(2),
        scopes: ScopeSet::parse_list(row.get(3)).map_err(StoreError::Internal)?,
        created_at: timestamp(row.get(4)),
        allowed_origins: origins.lines().map(str::to_owned).collect(),
    })
}

async fn insert_key(db: &impl GenericClient, key: ApiKey, secret_sha256: &[u8]) -> Result<ApiKey> {
    let inserted = db
        .execute(
            "INSERT INTO api_keys (id, tenant, name, scopes, secret_sha256, created_at, allowed_origins)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (secret_sha256) DO NOTHING",
            &[
                &key.id,
                &key.tenant.as_str(),
                &key.name,
                &key.scopes.to_list(),
                &secret_sha256,
                &nanos(key.created_at),
                &key.allowed_origins.join("\n"),
            ],
        )
        .await?;
    if inserted == 1 {
        return Ok(key);
    }
    let owner: String = db
        .query_one(
            "SELECT tenant FROM api_keys WHERE secret_sha256 = $1",
            &[&secret_sha256],
        )
        .await?
        .get(0);
    if owner == key.tenant.as_str() {
        // The operator's key is already registered; keep the original record.
        Ok(key)
    } else {
        // A secret names one tenant's key; registering it for another would hand that tenant's
        // data to whoever holds it.
        Err(StoreError::KeyTaken)
    }
}

/// A feedback row (`id, received_at, body, investigation_id`): the body exactly as submitted,
/// for idempotency checks, and the feedback as served, with its joined trace.
fn feedback_row(tenant: &TenantId, row: &tokio_postgres::Row) -> Result<(ValidFeedback, Feedback)> {
    let id: Vec<u8> = row.get(0);
    let submitted: ValidFeedback = crate::encoding::decode(row.get(2))?;
    let mut served = submitted.clone();
    if let Some(trace) = row
        .get::<_, Option<Vec<u8>>>(3)
        .and_then(|b| TraceId::from_bytes(&b).ok())
    {
        served.investigation_id = Some(trace);
    }
    Ok((
        submitted,
        Feedback {
            id: FeedbackId::from_uuid(uuid::Uuid::from_slice(&id).map_err(internal)?),
            tenant: tenant.clone(),
            received_at: timestamp(row.get(1)),
            body: served,
        },
    ))
}

/// The stored feedback with this idempotency key: a replay when the content matches, a
/// conflict when it does not.
async fn replay_of(
    db: &impl GenericClient,
    tenant: &TenantId,
    key: &str,
    feedback: &ValidFeedback,
) -> Result<Option<FeedbackReceipt>> {
    let row = db
        .query_opt(
            &db.prepare_cached(
                "SELECT id, received_at, body, investigation_id FROM feedback
             WHERE tenant = $1 AND idempotency_key = $2",
            )
            .await?,
            &[&tenant.as_str(), &key],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let (submitted, stored) = feedback_row(tenant, &row)?;
    if submitted == *feedback {
        Ok(Some(FeedbackReceipt::Replayed(stored)))
    } else {
        Err(StoreError::IdempotencyConflict(key.to_owned()))
    }
}

/// Stores one feedback. The insert comes first: a reused idempotency key (a retry, or the same
/// submission racing through two servers) is refused by the unique constraint, and only then is
/// the stored row read to tell a replay from a conflict.
async fn insert_feedback(
    db: &impl GenericClient,
    tenant: &TenantId,
    feedback: ValidFeedback,
    now: i64,
) -> Result<FeedbackReceipt> {
    let joined = match (feedback.investigation_id, feedback.span_id) {
        (Some(trace), _) => Some(trace),
        (None, Some(span)) => db
            .query_opt(
                &db.prepare_cached(
                    "SELECT trace_id FROM steps WHERE tenant = $1 AND span_id = $2 LIMIT 1",
                )
                .await?,
                &[&tenant.as_str(), &&span.as_bytes()[..]],
            )
            .await?
            .and_then(|r| TraceId::from_bytes(r.get::<_, &[u8]>(0)).ok()),
        (None, None) => None,
    };
    if let Some(key) = &feedback.idempotency_key {
        // An erased feedback's key has no row left: only its tombstone tells a retry apart.
        pipeline::check_not_erased(db, tenant, key).await?;
    }
    let id = FeedbackId::from_uuid(uuid::Uuid::now_v7());
    let body = crate::encoding::encode(&feedback)?;
    let inserted = db
        .execute(
            &db.prepare_cached(
            "INSERT INTO feedback
                 (id, tenant, investigation_id, span_id, received_at, body, idempotency_key, user_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (tenant, idempotency_key) DO NOTHING",
            ).await?,
            &[
                &&id.as_uuid().as_bytes()[..],
                &tenant.as_str(),
                &joined.map(|t| t.as_bytes().to_vec()),
                &feedback.span_id.map(|s| s.as_bytes().to_vec()),
                &now,
                &body,
                &feedback.idempotency_key,
                &feedback.user_id,
            ],
        )
        .await?;
    if inserted == 0 {
        let key = feedback.idempotency_key.as_deref().unwrap_or_default();
        return replay_of(db, tenant, key, &feedback)
            .await?
            .ok_or_else(|| StoreError::Internal("a conflicting feedback row vanished".into()));
    }
    if let Some(trace) = joined {
        pipeline::enqueue_label_job(db, tenant, trace, now).await?;
    }
    let mut served = feedback;
    served.investigation_id = joined;
    Ok(FeedbackReceipt::Created(Feedback {
        id,
        tenant: tenant.clone(),
        received_at: timestamp(now),
        body: served,
    }))
}

/// A step as its row stores it, its result inline or in the blob store.
struct StepRow {
    trace: Vec<u8>,
    span: Vec<u8>,
    body: String,
    inline: Option<String>,
    blob: Option<String>,
}

/// Writes the steps of one batch: one multi-row insert; only spans already stored (re-sent) are
/// read and updated, one by one, releasing their old blob when the result changed.
async fn write_steps(
    db: &impl GenericClient,
    tenant: &TenantId,
    rows: &[StepRow],
    released: &mut Vec<String>,
) -> Result<()> {
    let column =
        |f: fn(&StepRow) -> Option<&[u8]>| -> Vec<&[u8]> { rows.iter().filter_map(f).collect() };
    let traces = column(|r| Some(&r.trace));
    let spans = column(|r| Some(&r.span));
    let bodies: Vec<&str> = rows.iter().map(|r| r.body.as_str()).collect();
    let inline: Vec<Option<&str>> = rows.iter().map(|r| r.inline.as_deref()).collect();
    let blobs: Vec<Option<&str>> = rows.iter().map(|r| r.blob.as_deref()).collect();
    let resent = db
        .query(
            &db.prepare_cached(
                "WITH input AS (
                 SELECT * FROM unnest($2::bytea[], $3::bytea[], $4::text[], $5::text[], $6::text[])
                     AS t (trace_id, span_id, body, result_inline, result_blob)
             ), inserted AS (
                 INSERT INTO steps (tenant, trace_id, span_id, body, result_inline, result_blob)
                 SELECT $1, trace_id, span_id, body, result_inline, result_blob FROM input
                 ON CONFLICT (tenant, trace_id, span_id) DO NOTHING
                 RETURNING trace_id, span_id
             )
             SELECT i.trace_id, i.span_id FROM input i
             WHERE NOT EXISTS (SELECT 1 FROM inserted n
                               WHERE n.trace_id = i.trace_id AND n.span_id = i.span_id)",
            )
            .await?,
            &[&tenant.as_str(), &traces, &spans, &bodies, &inline, &blobs],
        )
        .await?;
    if resent.is_empty() {
        return Ok(());
    }
    let resent: BTreeSet<(Vec<u8>, Vec<u8>)> =
        resent.iter().map(|r| (r.get(0), r.get(1))).collect();
    for row in rows
        .iter()
        .filter(|r| resent.contains(&(r.trace.clone(), r.span.clone())))
    {
        let previous: Option<String> = db
            .query_one(
                &db.prepare_cached(
                "SELECT result_blob FROM steps WHERE tenant = $1 AND trace_id = $2 AND span_id = $3
                 FOR UPDATE",
                ).await?,
                &[&tenant.as_str(), &row.trace, &row.span],
            )
            .await?
            .get(0);
        if let Some(previous) = previous
            && Some(&previous) != row.blob.as_ref()
        {
            released.push(previous);
        }
        db.execute(
            &db.prepare_cached(
                "UPDATE steps SET body = $4, result_inline = $5, result_blob = $6
             WHERE tenant = $1 AND trace_id = $2 AND span_id = $3",
            )
            .await?,
            &[
                &tenant.as_str(),
                &row.trace,
                &row.span,
                &row.body,
                &row.inline,
                &row.blob,
            ],
        )
        .await?;
    }
    Ok(())
}

async fn read_steps(
    store: &PostgresStore,
    db: &impl GenericClient,
    tenant: &TenantId,
    trace: TraceId,
) -> Result<Vec<Step>> {
    let rows = db
        .query(
            "SELECT body, result_inline, result_blob FROM steps WHERE tenant = $1 AND trace_id = $2
             ORDER BY span_id",
            &[&tenant.as_str(), &&trace.as_bytes()[..]],
        )
        .await?;
    let mut steps = Vec::with_capacity(rows.len());
    for row in rows {
        let mut step: Step = crate::encoding::decode(row.get(0))?;
        if let Some(call) = step.tool_call.as_mut() {
            call.result = match (
                row.get::<_, Option<String>>(1),
                row.get::<_, Option<String>>(2),
            ) {
                (Some(text), _) => Some(text),
                (None, Some(digest)) => {
                    let bytes = store.read_blob(digest).await?;
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
impl Store for PostgresStore {
    async fn ingest(&self, tenant: &TenantId, batch: IngestBatch) -> Result<IngestReceipt> {
        if batch.steps.is_empty() && batch.feedback.is_empty() && batch.entities.is_empty() {
            return Ok(IngestReceipt::default());
        }
        let now = self.now();
        let steps_written = batch.steps.len();
        let agent_versions = batch.agent_versions();
        let mut entities = batch.entities;
        entities.extend(evalmint_model::tool_call_entries(
            batch
                .steps
                .iter()
                .filter_map(|(_, step)| step.tool_call.as_ref()),
        ));
        // A span sent twice in one batch: the later one wins, as it would one request later.
        // Rows go in key order, so concurrent batches lock shared keys in the same order.
        let mut latest: std::collections::BTreeMap<(Vec<u8>, Vec<u8>), Step> = Default::default();
        for (trace, step) in batch.steps {
            latest.insert(
                (trace.as_bytes().to_vec(), step.span_id.as_bytes().to_vec()),
                step,
            );
        }
        let mut rows = Vec::with_capacity(latest.len());
        let mut results = Vec::with_capacity(latest.len());
        for ((trace, span), mut step) in latest {
            let result = step.tool_call.as_mut().and_then(|call| call.result.take());
            let body = crate::encoding::encode(&step)?;
            // Only results headed for the blob store are copied for it.
            results.push(
                result
                    .as_ref()
                    .filter(|r| r.len() > self.inline_result_max)
                    .map(|r| r.as_bytes().to_vec()),
            );
            rows.push(StepRow {
                trace,
                span,
                body,
                inline: result,
                blob: None,
            });
        }
        let digests = self.put_blobs(results, now).await?;
        for (row, digest) in rows.iter_mut().zip(digests) {
            if digest.is_some() {
                row.inline = None;
                row.blob = digest;
            }
        }
        let traces: Vec<Vec<u8>> = rows
            .iter()
            .map(|r| r.trace.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let versions: Vec<Option<&str>> = traces
            .iter()
            .map(|t| {
                TraceId::from_bytes(t)
                    .ok()
                    .and_then(|id| agent_versions.get(&id))
                    .map(String::as_str)
            })
            .collect();

        let mut released = Vec::new();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        catalog::upsert(&tx, tenant, entities, now).await?;
        if !rows.is_empty() {
            write_steps(&tx, tenant, &rows, &mut released).await?;
            tx.execute(
                "INSERT INTO investigations (tenant, trace_id, first_seen, last_seen, agent_version)
                 SELECT $1, t, $3, $3, v FROM unnest($2::bytea[], $4::text[]) AS i (t, v)
                 ON CONFLICT (tenant, trace_id) DO UPDATE SET last_seen = excluded.last_seen,
                     agent_version = coalesce(investigations.agent_version,
                                              excluded.agent_version)",
                &[&tenant.as_str(), &traces, &now, &versions],
            )
            .await?;
            // Feedback may have been waiting for these traces.
            tx.execute(
                "UPDATE label_jobs SET due_at = $3
                 WHERE tenant = $1 AND trace_id = ANY($2) AND state = 'pending' AND due_at > $3",
                &[&tenant.as_str(), &traces, &now],
            )
            .await?;
            // Span-only feedback whose span just arrived joins its trace.
            let span_traces: Vec<&[u8]> = rows.iter().map(|r| r.trace.as_slice()).collect();
            let spans: Vec<&[u8]> = rows.iter().map(|r| r.span.as_slice()).collect();
            let joined = tx
                .query(
                    "UPDATE feedback f SET investigation_id = s.trace_id
                     FROM unnest($2::bytea[], $3::bytea[]) AS s (trace_id, span_id)
                     WHERE f.tenant = $1 AND f.investigation_id IS NULL AND f.span_id = s.span_id
                     RETURNING f.investigation_id",
                    &[&tenant.as_str(), &span_traces, &spans],
                )
                .await?;
            let joined: BTreeSet<Vec<u8>> = joined.iter().map(|r| r.get(0)).collect();
            for trace in joined {
                pipeline::enqueue_label_job(&tx, tenant, trace_of(&trace)?, now).await?;
            }
        }
        let mut feedback_created = 0;
        for feedback in batch.feedback {
            match insert_feedback(&tx, tenant, feedback, now).await {
                Ok(FeedbackReceipt::Created(_)) => feedback_created += 1,
                // A re-sent span event is stored once; one whose feedback was erased, never again.
                Ok(FeedbackReceipt::Replayed(_))
                | Err(StoreError::IdempotencyConflict(_) | StoreError::Erased(_)) => {}
                Err(e) => return Err(e),
            }
        }
        tx.commit().await?;
        drop(client);
        self.release_blobs(released).await;
        Ok(IngestReceipt {
            steps_written,
            feedback_created,
        })
    }

    async fn submit_feedback(
        &self,
        tenant: &TenantId,
        feedback: ValidFeedback,
    ) -> Result<FeedbackReceipt> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let receipt = insert_feedback(&tx, tenant, feedback, self.now()).await?;
        tx.commit().await?;
        Ok(receipt)
    }

    async fn feedback(&self, tenant: &TenantId, id: FeedbackId) -> Result<Option<Feedback>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT id, received_at, body, investigation_id FROM feedback
                 WHERE tenant = $1 AND id = $2",
                &[&tenant.as_str(), &&id.as_uuid().as_bytes()[..]],
            )
            .await?;
        row.map(|row| feedback_row(tenant, &row).map(|(_, served)| served))
            .transpose()
    }

    async fn investigation(&self, tenant: &TenantId, id: TraceId) -> Result<Option<Investigation>> {
        let mut client = self.client().await?;
        // One snapshot for steps and feedback.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let steps = read_steps(self, &tx, tenant, id).await?;
        if steps.is_empty() {
            return Ok(None);
        }
        let rows = tx
            .query(
                "SELECT id, received_at, body, investigation_id FROM feedback
                 WHERE tenant = $1 AND investigation_id = $2 ORDER BY id",
                &[&tenant.as_str(), &&id.as_bytes()[..]],
            )
            .await?;
        tx.commit().await?;
        let feedback = rows
            .iter()
            .map(|row| feedback_row(tenant, row).map(|(_, served)| served))
            .collect::<Result<Vec<_>>>()?;
        Ok(Investigation::assemble(id, steps, feedback))
    }

    async fn create_api_key(
        &self,
        tenant: &TenantId,
        name: &str,
        scopes: ScopeSet,
    ) -> Result<NewApiKey> {
        let secret = new_secret()?;
        let key = self.new_key_record(tenant, name, scopes)?;
        let key = self.store_key(key, &secret, false).await?;
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
        self.store_key(key, secret, true).await?;
        self.authenticate(secret)
            .await?
            .ok_or_else(|| StoreError::Internal("a key just written cannot be read".into()))
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
        let key = self.store_key(key, &secret, false).await?;
        Ok(NewApiKey { secret, key })
    }

    async fn authenticate(&self, secret: &str) -> Result<Option<ApiKey>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE secret_sha256 = $1"),
                &[&secret_hash(secret)],
            )
            .await?;
        row.as_ref().map(key_of).transpose()
    }

    async fn active_api_key_ids(&self, ids: Vec<String>) -> Result<HashSet<String>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let client = self.client().await?;
        let rows = client
            .query("SELECT id FROM api_keys WHERE id = ANY($1)", &[&ids])
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>> {
        let client = self.client().await?;
        client
            .query(
                &format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant = $1
                     ORDER BY created_at, position"
                ),
                &[&tenant.as_str()],
            )
            .await?
            .iter()
            .map(key_of)
            .collect()
    }

    async fn revoke_api_key(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        let client = self.client().await?;
        let deleted = client
            .execute(
                "DELETE FROM api_keys WHERE tenant = $1 AND id = $2",
                &[&tenant.as_str(), &id],
            )
            .await?;
        Ok(deleted > 0)
    }

    async fn rotate_api_key(&self, tenant: &TenantId, id: &str) -> Result<Option<NewApiKey>> {
        let secret = new_secret()?;
        let mut key = self.new_key_record(tenant, "", ScopeSet::default())?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Name, scopes and origins are copied from the old key, which goes in the same
        // transaction.
        let old = tx
            .query_opt(
                "DELETE FROM api_keys WHERE tenant = $1 AND id = $2
                 RETURNING name, scopes, allowed_origins",
                &[&tenant.as_str(), &id],
            )
            .await?;
        let Some(old) = old else {
            return Ok(None);
        };
        key.name = old.get(0);
        key.scopes = ScopeSet::parse_list(old.get(1)).map_err(StoreError::Internal)?;
        key.allowed_origins = old.get::<_, &str>(2).lines().map(str::to_owned).collect();
        let key = insert_key(&tx, key, &secret_hash(&secret)).await?;
        tx.commit().await?;
        Ok(Some(NewApiKey { secret, key }))
    }

    async fn create_ui_session(
        &self,
        tenant: &TenantId,
        token_sha256: &[u8],
        key_id: &str,
        csrf: &str,
        ttl: Duration,
    ) -> Result<()> {
        let now = self.now();
        let expires_at = now.saturating_add(i64::try_from(ttl.as_nanos()).unwrap_or(i64::MAX));
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "DELETE FROM ui_sessions AS s
             WHERE s.expires_at <= $1
                OR NOT EXISTS (SELECT 1 FROM api_keys AS k
                               WHERE k.tenant = s.tenant AND k.id = s.key_id)",
            &[&now],
        )
        .await?;
        tx.execute(
            "INSERT INTO ui_sessions (token_sha256, tenant, key_id, csrf, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &token_sha256,
                &tenant.as_str(),
                &key_id,
                &csrf,
                &now,
                &expires_at,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn ui_session(&self, token_sha256: &[u8]) -> Result<Option<UiSession>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT k.id, k.tenant, k.name, k.scopes, k.created_at, k.allowed_origins, s.csrf
                 FROM ui_sessions AS s
                 JOIN api_keys AS k ON k.tenant = s.tenant AND k.id = s.key_id
                 WHERE s.token_sha256 = $1 AND s.expires_at > $2",
                &[&token_sha256, &self.now()],
            )
            .await?;
        row.map(|row| {
            Ok(UiSession {
                key: key_of(&row)?,
                csrf: row.get(6),
            })
        })
        .transpose()
    }

    async fn end_ui_session(&self, tenant: &TenantId, token_sha256: &[u8]) -> Result<bool> {
        let client = self.client().await?;
        let deleted = client
            .execute(
                "DELETE FROM ui_sessions WHERE tenant = $1 AND token_sha256 = $2",
                &[&tenant.as_str(), &token_sha256],
            )
            .await?;
        Ok(deleted > 0)
    }

    async fn api_key_count(&self) -> Result<u64> {
        let client = self.client().await?;
        let count: i64 = client
            .query_one("SELECT count(*) FROM api_keys", &[])
            .await?
            .get(0);
        Ok(count as u64)
    }

    async fn expire_investigations(&self, cutoff: Timestamp) -> Result<u64> {
        let cutoff = nanos(cutoff);
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_one(
                "WITH doomed AS (
                     SELECT tenant, trace_id FROM investigations AS i
                     WHERE last_seen < $1
                       AND NOT EXISTS (SELECT 1 FROM feedback AS f
                                       WHERE f.tenant = i.tenant AND f.investigation_id = i.trace_id)
                     FOR UPDATE
                 ), gone_steps AS (
                     DELETE FROM steps AS s USING doomed AS d
                     WHERE s.tenant = d.tenant AND s.trace_id = d.trace_id
                     RETURNING s.result_blob
                 ), gone AS (
                     DELETE FROM investigations AS i USING doomed AS d
                     WHERE i.tenant = d.tenant AND i.trace_id = d.trace_id
                     RETURNING 1
                 )
                 SELECT (SELECT count(*) FROM gone),
                        (SELECT coalesce(array_agg(result_blob), '{}') FROM gone_steps
                         WHERE result_blob IS NOT NULL)",
                &[&cutoff],
            )
            .await?;
        catalog::expire(&tx, cutoff).await?;
        tx.commit().await?;
        drop(client);
        let expired: i64 = row.get(0);
        self.release_blobs(row.get(1)).await;
        Ok(expired as u64)
    }

    async fn collect_garbage(&self) -> Result<u64> {
        let stored_before = system_time(self.now().saturating_sub(duration_nanos(self.blob_grace)));
        let blobs = self.blobs.clone();
        let listed = tokio::task::spawn_blocking(move || blobs.list(stored_before))
            .await
            .map_err(internal)?
            .map_err(internal)?;
        let old: Vec<String> = listed
            .into_iter()
            .filter(|(_, stored)| *stored <= stored_before)
            .map(|(digest, _)| digest)
            .collect();
        self.remove_unreferenced(old).await
    }

    async fn check_ready(&self) -> Result<()> {
        self.check_ready().await
    }
}

impl PostgresStore {
    /// Answers whether the database answers through the pool: `SELECT 1`, for `/readyz`.
    pub async fn check_ready(&self) -> Result<()> {
        let client = self.client().await?;
        client.query_one("SELECT 1", &[]).await?;
        Ok(())
    }
}

#[async_trait]
impl PipelineStore for PostgresStore {
    async fn claim_label_jobs(
        &self,
        lease: jiff::SignedDuration,
        limit: usize,
    ) -> Result<Vec<LabelJob>> {
        let client = self.client().await?;
        pipeline::claim_label_jobs(&client, self.now(), duration_nanos(lease), limit).await
    }

    async fn release_leases(&self) -> Result<u64> {
        // Other processes' workers may hold live leases: they expire instead (see the trait).
        Ok(0)
    }

    async fn end_unjoined_feedback(&self, received_before: Timestamp, reason: &str) -> Result<u64> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "UPDATE feedback SET label_state = 'not_candidate', label_detail = $2
                 WHERE investigation_id IS NULL AND label_state = 'pending' AND received_at < $1",
                &[&nanos(received_before), &reason],
            )
            .await?)
    }

    async fn defer_label_job(
        &self,
        job: &LabelJob,
        due_at: Timestamp,
        error: Option<String>,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut released = Vec::new();
        pipeline::defer_label_job(&tx, job, nanos(due_at), error, self.now(), &mut released)
            .await?;
        tx.commit().await?;
        drop(client);
        self.release_blobs(released).await;
        Ok(())
    }

    async fn finish_label_job(&self, job: &LabelJob, outcome: LabelOutcome) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        pipeline::finish_label_job(&tx, job, outcome, self.now()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn plan_snapshot(
        &self,
        tenant: &TenantId,
        trace_id: TraceId,
        queries: Vec<SnapshotQuery>,
    ) -> Result<()> {
        let client = self.client().await?;
        pipeline::plan_snapshot(&client, tenant, trace_id, &queries, self.now()).await
    }

    async fn snapshot(&self, tenant: &TenantId, trace_id: TraceId) -> Result<Vec<SnapshotQuery>> {
        let client = self.client().await?;
        pipeline::snapshot(&client, tenant, trace_id).await
    }

    async fn snapshot_result(
        &self,
        tenant: &TenantId,
        trace_id: TraceId,
        query_id: &str,
    ) -> Result<Option<Vec<u8>>> {
        let client = self.client().await?;
        let stored = pipeline::snapshot_result(&client, tenant, trace_id, query_id).await?;
        drop(client);
        match stored {
            Some(pipeline::StoredResult::Inline(bytes)) => Ok(Some(bytes)),
            Some(pipeline::StoredResult::Blob(digest)) => self.read_blob(digest).await.map(Some),
            None => Ok(None),
        }
    }

    async fn claim_captures(
        &self,
        order: CaptureOrder,
        lease: jiff::SignedDuration,
        limit: usize,
    ) -> Result<Vec<CaptureTask>> {
        let client = self.client().await?;
        pipeline::claim_captures(&client, order, self.now(), duration_nanos(lease), limit).await
    }

    async fn record_capture(&self, task: CaptureTask, outcome: CaptureOutcome) -> Result<()> {
        let now = self.now();
        // Small results stay in the row; large ones go to the blob store first.
        let digest = outcome.result.as_deref().map(BlobStore::digest);
        let blob = self
            .put_blobs(vec![outcome.result.clone()], now)
            .await?
            .remove(0);
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let recorded =
            pipeline::record_capture(&tx, &task, &outcome, digest, blob.clone(), now).await?;
        tx.commit().await?;
        drop(client);
        if !recorded && let Some(blob) = blob {
            self.release_blobs(vec![blob]).await;
        }
        Ok(())
    }

    async fn candidates(
        &self,
        tenant: &TenantId,
        query: CandidateQuery,
    ) -> Result<Vec<CandidateLabel>> {
        let client = self.client().await?;
        pipeline::candidates(&client, tenant, &query).await
    }

    async fn candidate(&self, tenant: &TenantId, id: &str) -> Result<Option<CandidateLabel>> {
        let client = self.client().await?;
        pipeline::candidate(&client, tenant, id).await
    }

    async fn feedback_label_state(
        &self,
        tenant: &TenantId,
        id: FeedbackId,
    ) -> Result<Option<FeedbackLabelState>> {
        let client = self.client().await?;
        pipeline::feedback_label_state(&client, tenant, id).await
    }

    async fn pipeline_stats(&self, tenant: &TenantId) -> Result<PipelineStats> {
        let client = self.client().await?;
        pipeline::pipeline_stats(&client, tenant).await
    }

    async fn erase_user_feedback(
        &self,
        tenant: &TenantId,
        user_id: &str,
        requested_by: &str,
    ) -> Result<Erasure> {
        self.erase(tenant, Selection::User(user_id), requested_by)
            .await?
            .ok_or_else(|| StoreError::Internal("an erasure of a user went unrecorded".into()))
    }

    async fn erase_feedback(
        &self,
        tenant: &TenantId,
        id: FeedbackId,
        requested_by: &str,
    ) -> Result<Option<Erasure>> {
        self.erase(tenant, Selection::Feedback(id), requested_by)
            .await
    }

    async fn erasures(&self, tenant: &TenantId) -> Result<Vec<Erasure>> {
        let client = self.client().await?;
        pipeline::erasures(&client, tenant).await
    }

    async fn user_erasures(&self, tenant: &TenantId, user_id: &str) -> Result<Vec<Erasure>> {
        let client = self.client().await?;
        pipeline::user_erasures(&client, tenant, user_id).await
    }

    async fn upsert_catalog(&self, tenant: &TenantId, entries: Vec<CatalogEntry>) -> Result<usize> {
        if entries.is_empty() {
            return Ok(0);
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let written = catalog::upsert(&tx, tenant, entries, self.now()).await?;
        tx.commit().await?;
        Ok(written)
    }

    async fn catalog(&self, tenant: &TenantId) -> Result<Catalog> {
        let client = self.client().await?;
        let entries = catalog::query(
            &client,
            tenant,
            &CatalogQuery {
                limit: usize::MAX,
                ..CatalogQuery::default()
            },
        )
        .await?;
        Ok(Catalog::new(entries.into_iter().map(|e| e.entry).collect()))
    }

    async fn catalog_entries(
        &self,
        tenant: &TenantId,
        query: CatalogQuery,
    ) -> Result<Vec<StoredCatalogEntry>> {
        let client = self.client().await?;
        catalog::query(&client, tenant, &query).await
    }

    async fn store_eval_run(&self, tenant: &TenantId, run: EvalRun) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        review::store_eval_run(&tx, tenant, &run).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn eval_run(&self, tenant: &TenantId, id: &str) -> Result<Option<EvalRun>> {
        let client = self.client().await?;
        review::eval_run(&client, tenant, id).await
    }

    async fn eval_runs(&self, tenant: &TenantId, limit: usize) -> Result<Vec<EvalRun>> {
        let client = self.client().await?;
        review::eval_runs(&client, tenant, limit).await
    }

    async fn label_history(
        &self,
        tenant: &TenantId,
        label_id: &str,
        limit: usize,
    ) -> Result<Vec<evalmint_model::LabelRun>> {
        let client = self.client().await?;
        review::label_history(&client, tenant, label_id, limit).await
    }
}

#[async_trait]
impl ReviewStore for PostgresStore {
    async fn review_queue(
        &self,
        tenant: &TenantId,
        query: ReviewQuery,
    ) -> Result<(Vec<crate::QueueItem>, u64)> {
        let client = self.client().await?;
        review::review_queue(&client, tenant, &query).await
    }

    async fn decide(
        &self,
        tenant: &TenantId,
        candidate_id: &str,
        reviewer: &str,
        decision: ValidDecision,
    ) -> Result<DecisionOutcome> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let outcome =
            review::decide(&tx, tenant, candidate_id, reviewer, decision, self.now()).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn label_versions(&self, tenant: &TenantId, trace: TraceId) -> Result<Vec<LabelVersion>> {
        let client = self.client().await?;
        review::label_versions(&client, tenant, trace).await
    }

    async fn current_labels(
        &self,
        tenant: &TenantId,
        filters: Vec<Segment>,
    ) -> Result<Vec<LabelVersion>> {
        let client = self.client().await?;
        review::current_labels(&client, tenant, &filters).await
    }

    async fn calibration_observations(&self, tenant: &TenantId) -> Result<Vec<Observation>> {
        let client = self.client().await?;
        review::calibration_observations(&client, tenant).await
    }

    async fn create_release(
        &self,
        tenant: &TenantId,
        name: &str,
        filters: Vec<Segment>,
    ) -> Result<(Release, bool)> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let created = review::create_release(&tx, tenant, name, filters, self.now()).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn releases(&self, tenant: &TenantId) -> Result<Vec<Release>> {
        let client = self.client().await?;
        review::releases(&client, tenant).await
    }

    async fn release(&self, tenant: &TenantId, id: &str) -> Result<Option<Release>> {
        let client = self.client().await?;
        review::release(&client, tenant, id).await
    }

    async fn release_labels(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<(ReleaseManifest, Vec<ReleasedLabel>)>> {
        let client = self.client().await?;
        let Some((manifest, labels, stored)) = review::release_labels(&client, tenant, id).await?
        else {
            return Ok(None);
        };
        drop(client);
        let mut released = Vec::with_capacity(labels.len());
        for (label, results) in labels.into_iter().zip(stored) {
            let mut read = Vec::with_capacity(results.len());
            for (query_id, result) in results {
                let bytes = match result {
                    pipeline::StoredResult::Inline(bytes) => bytes,
                    pipeline::StoredResult::Blob(digest) => self.read_blob(digest).await?,
                };
                read.push((query_id, bytes));
            }
            released.push(ReleasedLabel {
                label,
                results: read,
            });
        }
        Ok(Some((manifest, released)))
    }

    async fn import_release(
        &self,
        tenant: &TenantId,
        manifest: ReleaseManifest,
        labels: Vec<ReleasedLabel>,
    ) -> Result<std::result::Result<Release, ImportError>> {
        let now = self.now();
        // Results go to the blob store before the transaction, as every write does.
        let results: Vec<Vec<(String, Vec<u8>)>> =
            labels.iter().map(|l| l.results.clone()).collect();
        let mut stored = Vec::with_capacity(results.len());
        for label_results in results {
            let (ids, bytes): (Vec<String>, Vec<Vec<u8>>) = label_results.into_iter().unzip();
            let digests = self
                .put_blobs(bytes.iter().cloned().map(Some).collect(), now)
                .await?;
            stored.push(
                ids.into_iter()
                    .zip(bytes)
                    .zip(digests)
                    .map(|((id, bytes), digest)| match digest {
                        Some(digest) => (id, pipeline::StoredResult::Blob(digest)),
                        None => (id, pipeline::StoredResult::Inline(bytes)),
                    })
                    .collect::<Vec<_>>(),
            );
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let imported = review::import_release(&tx, tenant, manifest, labels, stored, now).await?;
        tx.commit().await?;
        Ok(imported)
    }
}
