//! Where evalmint keeps its data. The [`Store`] trait is the one interface the rest of the
//! system uses; [`SqliteStore`] is the embedded default (one file plus a blob directory). Only
//! this crate knows SQL.

mod blob;
mod clock;
mod sqlite;

use async_trait::async_trait;
use evalmint_model::{
    Feedback, FeedbackId, Investigation, ScopeSet, Step, TenantId, Timestamp, TraceId,
    ValidFeedback,
};

pub use blob::BlobStore;
pub use clock::{Clock, ManualClock, SystemClock};
pub use sqlite::{SqliteOptions, SqliteStore};

/// What can go wrong in the store, by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The write path is saturated; retry later.
    #[error("the write queue is full")]
    Busy,
    /// The idempotency key was used before with different content.
    #[error("idempotency key {0:?} was already used for different feedback")]
    IdempotencyConflict(String),
    /// The store is shutting down or its writer died.
    #[error("the store is closed")]
    Closed,
    /// Anything else: disk, corruption, a bug. Details are for the log, not for clients.
    #[error("storage failure: {0}")]
    Internal(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Steps and trace-borne feedback from one ingest request, written atomically.
#[derive(Debug, Default, Clone)]
pub struct IngestBatch {
    pub steps: Vec<(TraceId, Step)>,
    pub feedback: Vec<ValidFeedback>,
}

/// What an ingest wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IngestReceipt {
    pub steps_written: usize,
    pub feedback_created: usize,
}

/// The outcome of submitting feedback.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedbackReceipt {
    /// Newly stored.
    Created(Feedback),
    /// A retry of an earlier submission with the same idempotency key and content.
    Replayed(Feedback),
}

impl FeedbackReceipt {
    pub fn feedback(&self) -> &Feedback {
        match self {
            FeedbackReceipt::Created(f) | FeedbackReceipt::Replayed(f) => f,
        }
    }
}

/// An API key as stored (the secret itself is never stored, only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub tenant: TenantId,
    pub name: String,
    pub scopes: ScopeSet,
    pub created_at: Timestamp,
}

/// A freshly created key: the only time its secret is visible.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub secret: String,
    pub key: ApiKey,
}

/// Everything evalmint persists. Every method that touches tenant data takes the tenant, and no
/// method returns another tenant's data.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Writes spans (upserting re-sent ones) and trace-borne feedback in one transaction. Feedback
    /// that named only a span is joined to its trace here.
    async fn ingest(&self, tenant: &TenantId, batch: IngestBatch) -> Result<IngestReceipt>;

    /// Stores feedback durably before returning. A reused idempotency key returns the original.
    async fn submit_feedback(
        &self,
        tenant: &TenantId,
        feedback: ValidFeedback,
    ) -> Result<FeedbackReceipt>;

    async fn feedback(&self, tenant: &TenantId, id: FeedbackId) -> Result<Option<Feedback>>;

    /// The investigation assembled from every step seen so far, with its feedback.
    async fn investigation(&self, tenant: &TenantId, id: TraceId) -> Result<Option<Investigation>>;

    async fn create_api_key(
        &self,
        tenant: &TenantId,
        name: &str,
        scopes: ScopeSet,
    ) -> Result<NewApiKey>;

    /// Registers a key whose secret the operator chose (`--admin-key`); a no-op if it exists.
    async fn ensure_api_key(
        &self,
        tenant: &TenantId,
        name: &str,
        scopes: ScopeSet,
        secret: &str,
    ) -> Result<ApiKey>;

    async fn authenticate(&self, secret: &str) -> Result<Option<ApiKey>>;

    async fn api_key_count(&self) -> Result<u64>;

    /// Deletes investigations last seen before `cutoff` that have no feedback; feedback pins an
    /// investigation. Returns how many were deleted.
    async fn expire_investigations(&self, cutoff: Timestamp) -> Result<u64>;
}
