//! Where evalmint keeps its data. The [`Store`] trait is the one interface the rest of the
//! system uses; [`SqliteStore`] is the embedded default (one file plus a blob directory),
//! [`PostgresStore`] the shared one for several servers and workers on one database. Only this
//! crate knows SQL.

mod blob;
mod clock;
mod convert;
mod encoding;
mod erasure;
mod labels;
mod postgres;
pub mod private;
mod sqlite;

use std::collections::HashSet;

use async_trait::async_trait;
use evalmint_model::calibration::Observation;
use evalmint_model::release::{Release, ReleaseItem};
use evalmint_model::{
    CandidateLabel, CaptureStatus, Catalog, CatalogEntry, EntityProvenance, EvalRun, Feedback,
    FeedbackId, FieldError, Investigation, LabelRun, LabelVersion, Route, ScopeSet, Segment,
    SnapshotQuery, Step, TenantId, Timestamp, TraceId, ValidDecision, ValidFeedback,
};

pub use blob::BlobStore;
pub use clock::{Clock, ManualClock, SystemClock};
pub use postgres::{MigrationReport, PostgresOptions, PostgresStore};
pub use sqlite::engine;
pub use sqlite::{SqliteOptions, SqliteStore};

/// The schema version this build's migrations produce (the same on both backends).
pub fn schema_version() -> i64 {
    sqlite::MIGRATIONS
        .last()
        .map_or(0, |(name, _)| sqlite::version_of(name))
}

/// What can go wrong in the store, by what the caller should do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The write path is saturated; retry later.
    #[error("the write queue is full")]
    Busy,
    /// The idempotency key was used before with different content.
    #[error("idempotency key {0:?} was already used for different feedback")]
    IdempotencyConflict(String),
    /// The idempotency key named feedback that was erased since: nothing is stored again.
    #[error("the feedback of idempotency key {0:?} was erased; it is not stored again")]
    Erased(String),
    /// The API key secret is already registered for another tenant.
    #[error("this key secret is already registered")]
    KeyTaken,
    /// Another store holds the data directory (one process owns a data directory).
    #[error(
        "the data directory {dir} is in use by {holder}: one process owns a data directory; \
         stop that process first, or go through its API (`--server URL` on client commands)"
    )]
    InUse { dir: String, holder: String },
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
    /// Names the request's resource and span attributes carried, for the tenant's catalog. The
    /// entity tags of the steps' tool calls are added by the store itself.
    pub entities: Vec<CatalogEntry>,
}

impl IngestBatch {
    /// The agent version each trace of the batch reported (on any of its spans), which its
    /// investigation keeps for release coverage.
    pub(crate) fn agent_versions(&self) -> std::collections::HashMap<TraceId, String> {
        let mut versions = std::collections::HashMap::new();
        for (trace, step) in &self.steps {
            if let Some(version) = &step.agent.version {
                versions.entry(*trace).or_insert_with(|| version.clone());
            }
        }
        versions
    }
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
    /// Web origins a publishable key answers to (`https://app.example.com`); empty for every
    /// other key. A publishable key has the `feedback` scope only.
    pub allowed_origins: Vec<String>,
}

/// A freshly created key: the only time its secret is visible.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub secret: String,
    pub key: ApiKey,
}

/// A signed-in web UI session as the store finds it: the key it was signed in with, as that
/// key is now, and the session's CSRF token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiSession {
    pub key: ApiKey,
    pub csrf: String,
}

/// Everything evalmint persists. Every method on one tenant's data takes the tenant and never
/// returns another tenant's data; `authenticate`, `active_api_key_ids`, `api_key_count`,
/// `ui_session` and `expire_investigations` work across tenants by design (a session, like a
/// key's secret, names its tenant).
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

    /// Registers a key whose secret the operator chose (`--admin-key`) under `name`, and revokes
    /// every other key of the tenant with that name: a new operator key retires the previous
    /// one. Registering the same secret again changes nothing.
    async fn replace_named_api_key(
        &self,
        tenant: &TenantId,
        name: &str,
        scopes: ScopeSet,
        secret: &str,
    ) -> Result<ApiKey>;

    /// Creates a publishable key: `feedback` scope only, answering only to `allowed_origins`
    /// (at least one), safe to embed in a web page.
    async fn create_publishable_key(
        &self,
        tenant: &TenantId,
        name: &str,
        allowed_origins: Vec<String>,
    ) -> Result<NewApiKey>;

    async fn authenticate(&self, secret: &str) -> Result<Option<ApiKey>>;

    /// Which of `ids` still name a key (of any tenant; key ids are unique across tenants). A
    /// server re-checks the keys it has cached with one such call at most once a second, so a
    /// key revoked anywhere stops working everywhere within about a second.
    async fn active_api_key_ids(&self, ids: Vec<String>) -> Result<HashSet<String>>;

    /// The tenant's keys, oldest first; secrets are never stored, so never shown.
    async fn api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>>;

    /// Revokes one of the tenant's keys; false when the tenant has no key with that id.
    async fn revoke_api_key(&self, tenant: &TenantId, id: &str) -> Result<bool>;

    /// Replaces one of the tenant's keys by a new one with the same name and scopes, revoking
    /// the old one in the same transaction; `None` when the tenant has no key with that id.
    async fn rotate_api_key(&self, tenant: &TenantId, id: &str) -> Result<Option<NewApiKey>>;

    async fn api_key_count(&self) -> Result<u64>;

    /// Starts a web UI session of the tenant's key `key_id`, named by the SHA-256 of its token
    /// (the token itself is never stored, nor the key's secret), ending `ttl` after now by the
    /// store's clock. Deletes expired sessions, and sessions whose key is gone, as it goes.
    async fn create_ui_session(
        &self,
        tenant: &TenantId,
        token_sha256: &[u8],
        key_id: &str,
        csrf: &str,
        ttl: std::time::Duration,
    ) -> Result<()>;

    /// The session named by the SHA-256 of its token, with its key as the keys table has it now:
    /// `None` once it expired (by the store's clock), was ended, or its key was revoked or
    /// rotated, on every server sharing the store at once.
    async fn ui_session(&self, token_sha256: &[u8]) -> Result<Option<UiSession>>;

    /// Ends one of the tenant's sessions (signing out); false when there was none.
    async fn end_ui_session(&self, tenant: &TenantId, token_sha256: &[u8]) -> Result<bool>;

    /// Deletes investigations last seen before `cutoff` that have no feedback; feedback pins an
    /// investigation. Observed catalog names (from traces, tool calls, Prometheus) not seen
    /// since `cutoff` go too; declared and confirmed ones stay. Returns how many investigations
    /// were deleted.
    async fn expire_investigations(&self, cutoff: Timestamp) -> Result<u64>;

    /// Removes stored blobs that no row references and that were last stored longer ago than
    /// the store's grace period (so a blob whose row is not committed yet survives). Returns
    /// how many were removed.
    async fn collect_garbage(&self) -> Result<u64>;

    /// Answers whether the store can serve reads and take writes now (the database answers, the
    /// write path is open): what `/readyz` reports.
    async fn check_ready(&self) -> Result<()>;
}

/// What erasing feedback did; also the audit record, which keeps no erased text and names a user
/// only by a keyed hash (see [`ErasureSubject::User`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Erasure {
    pub id: String,
    /// The id of the API key that asked.
    pub requested_by: String,
    pub requested_at: Timestamp,
    #[serde(flatten)]
    pub subject: ErasureSubject,
    pub feedback_erased: u64,
    /// Labels that rested only on the erased feedback, removed with every version.
    pub labels_withdrawn: u64,
    /// Labels that rested on it in part: their versions that read it are removed and the label
    /// is drafted again without it.
    pub labels_redrafted: u64,
    /// Snapshot queries of withdrawn labels, removed with their frozen results.
    pub queries_removed: u64,
    /// Blobs that no row references any more; removed once the grace period has passed.
    pub blobs_released: u64,
}

/// What an erasure was asked to erase.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "subject", rename_all = "snake_case")]
pub enum ErasureSubject {
    /// Every feedback of one user. The user id is kept only as HMAC-SHA256 (hex) under a secret
    /// of this installation that the store creates on first use and keeps: whoever holds the
    /// store can still ask whether a user was erased ([`PipelineStore::user_erasures`]), the log
    /// alone cannot be reversed by hashing guessed ids.
    User { user_id_hmac: String },
    /// One feedback, by its id (feedback without a user id can be erased only this way).
    Feedback { feedback_id: FeedbackId },
}

/// An investigation whose feedback awaits labelling, claimed by one worker for a lease.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelJob {
    pub tenant: TenantId,
    pub trace_id: TraceId,
    /// Feedback arrivals so far; finishing against an older generation re-queues the job.
    pub generation: i64,
    /// Claims of the job so far, this one included. It fences the claim: once the lease ran out
    /// and another worker claimed the job, finishing or deferring under this claim changes
    /// nothing, so no job is done twice.
    pub attempts: u32,
    pub first_queued_at: Timestamp,
}

/// How a label job ended for the feedback of its investigation.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelOutcome {
    /// The candidate (of any route) that now stands for the investigation's feedback, or the
    /// reason there is none.
    pub result: std::result::Result<Box<CandidateLabel>, String>,
    /// Feedback kept out of the candidate, such as feedback whose author opted out of labelling,
    /// with the reason.
    pub excluded: Vec<(FeedbackId, String)>,
}

/// Where one feedback ended in the label pipeline.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum FeedbackLabelState {
    Pending,
    Candidate(String),
    NotCandidate(String),
}

/// One snapshot query to capture, claimed by one worker for a lease.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureTask {
    pub tenant: TenantId,
    pub trace_id: TraceId,
    pub query: SnapshotQuery,
    /// Names this claim (the lease's end, in nanoseconds, made strictly larger than any earlier
    /// claim's): a capture recorded under a claim whose lease ran out and was claimed again
    /// changes nothing.
    pub lease_token: i64,
}

/// The result of one capture attempt. `status` `Pending` means "retry at `retry_at`".
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureOutcome {
    pub status: CaptureStatus,
    pub result: Option<Vec<u8>>,
    pub truncated: bool,
    pub error: Option<String>,
    pub retry_at: Option<Timestamp>,
}

/// The order in which pending captures are claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaptureOrder {
    /// Earliest deadline first: what evalmint does.
    #[default]
    EarliestDeadline,
    /// First planned, first captured: the baseline EDF is measured against.
    FirstInFirstOut,
}

/// A filter over current candidates.
#[derive(Debug, Clone, Default)]
pub struct CandidateQuery {
    pub routes: Vec<Route>,
    /// Only admitted candidates sampled for audit.
    pub audit_only: bool,
    pub limit: usize,
}

/// A catalog entry with when evalmint first and last learned of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredCatalogEntry {
    #[serde(flatten)]
    pub entry: CatalogEntry,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

/// A filter over a tenant's catalog, one page at a time, ordered by name.
#[derive(Debug, Clone, Default)]
pub struct CatalogQuery {
    pub kind: Option<String>,
    pub provenance: Option<EntityProvenance>,
    /// Only names after this one (the last name of the previous page).
    pub after: Option<String>,
    pub limit: usize,
}

/// Counts over the label pipeline of one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PipelineStats {
    pub feedback_pending: u64,
    pub feedback_candidate: u64,
    pub feedback_not_candidate: u64,
    pub candidates_admitted: u64,
    pub candidates_review: u64,
    pub candidates_insufficient: u64,
    pub candidates_audit: u64,
    pub queries_pending: u64,
    pub queries_captured: u64,
    pub queries_recorded: u64,
    pub queries_expired: u64,
    pub queries_failed: u64,
}

/// The label pipeline's durable state: jobs, snapshots and candidates. Kept apart from [`Store`]
/// so the ingest path's interface stays small; every store implements both. The claims and
/// `release_leases` hand out work across tenants (each job and task carries its tenant); every
/// other method takes the tenant, or a job or task that names it.
#[async_trait]
pub trait PipelineStore: Send + Sync + 'static {
    /// Claims due label jobs for `lease`; a crashed worker's jobs become due again after it.
    async fn claim_label_jobs(
        &self,
        lease: jiff::SignedDuration,
        limit: usize,
    ) -> Result<Vec<LabelJob>>;

    /// Releases every lease: called when the only worker of an embedded store starts, since any
    /// lease then belongs to a worker that died. The caller makes sure it is the only worker (the
    /// CLI holds a lock file in the data directory). On a database shared by several workers
    /// (Postgres) it releases nothing and returns 0: a lease may belong to a live worker of
    /// another process, so leases only expire.
    async fn release_leases(&self) -> Result<u64>;

    /// Ends feedback that named only a span, received before `received_before`, whose trace
    /// never arrived: it becomes `not_candidate` with `reason`. Returns how many ended.
    async fn end_unjoined_feedback(&self, received_before: Timestamp, reason: &str) -> Result<u64>;

    /// Releases a job to run again at `due_at` (waiting for its trace or its captures).
    async fn defer_label_job(
        &self,
        job: &LabelJob,
        due_at: Timestamp,
        error: Option<String>,
    ) -> Result<()>;

    /// Records the outcome for every feedback of the investigation, atomically with the
    /// candidate; re-queues the job if feedback arrived meanwhile. A job claimed again since
    /// (its lease ran out) is left to its new claim: nothing is written.
    async fn finish_label_job(&self, job: &LabelJob, outcome: LabelOutcome) -> Result<()>;

    /// Adds queries to an investigation's snapshot; queries already planned are left as they are.
    async fn plan_snapshot(
        &self,
        tenant: &TenantId,
        trace_id: TraceId,
        queries: Vec<SnapshotQuery>,
    ) -> Result<()>;

    async fn snapshot(&self, tenant: &TenantId, trace_id: TraceId) -> Result<Vec<SnapshotQuery>>;

    /// The frozen result of one snapshot query.
    async fn snapshot_result(
        &self,
        tenant: &TenantId,
        trace_id: TraceId,
        query_id: &str,
    ) -> Result<Option<Vec<u8>>>;

    /// Claims due pending captures for `lease`, in `order`.
    async fn claim_captures(
        &self,
        order: CaptureOrder,
        lease: jiff::SignedDuration,
        limit: usize,
    ) -> Result<Vec<CaptureTask>>;

    /// Stores a capture attempt's outcome; when the investigation has no pending query left,
    /// its label job becomes due. A task claimed again since (its lease ran out), or already
    /// finished by another claim, is left alone: nothing is written.
    async fn record_capture(&self, task: CaptureTask, outcome: CaptureOutcome) -> Result<()>;

    async fn candidates(
        &self,
        tenant: &TenantId,
        query: CandidateQuery,
    ) -> Result<Vec<CandidateLabel>>;

    async fn candidate(&self, tenant: &TenantId, id: &str) -> Result<Option<CandidateLabel>>;

    async fn feedback_label_state(
        &self,
        tenant: &TenantId,
        id: FeedbackId,
    ) -> Result<Option<FeedbackLabelState>>;

    async fn pipeline_stats(&self, tenant: &TenantId) -> Result<PipelineStats>;

    /// Erases every feedback of `user_id` in `tenant`: labels that rested only on it are
    /// withdrawn (with their snapshots), labels that rested on it in part are drafted again
    /// without it, the erased feedback's idempotency keys are remembered (keyed hashes) so a
    /// retry cannot store it again ([`StoreError::Erased`]), and the request is recorded in the
    /// audit log. `requested_by` names the caller.
    async fn erase_user_feedback(
        &self,
        tenant: &TenantId,
        user_id: &str,
        requested_by: &str,
    ) -> Result<Erasure>;

    /// Erases one feedback of `tenant` by its id, with the same consequences for its labels,
    /// snapshot and audit log as [`Self::erase_user_feedback`]; `None` (nothing recorded) when the
    /// tenant has no such feedback.
    async fn erase_feedback(
        &self,
        tenant: &TenantId,
        id: FeedbackId,
        requested_by: &str,
    ) -> Result<Option<Erasure>>;

    /// The tenant's erasure audit log, oldest first.
    async fn erasures(&self, tenant: &TenantId) -> Result<Vec<Erasure>>;

    /// The audit records of the erasures of `user_id`'s feedback in `tenant`, oldest first:
    /// answers "was this user erased?" by keying the id with the installation's secret.
    async fn user_erasures(&self, tenant: &TenantId, user_id: &str) -> Result<Vec<Erasure>>;

    /// Merges entries into the tenant's entity catalog, one row per name: the more
    /// authoritative provenance decides the fields both know (see [`CatalogEntry::merge`]),
    /// lists are unioned, and every name's `last_seen` becomes now. Returns the names written.
    async fn upsert_catalog(&self, tenant: &TenantId, entries: Vec<CatalogEntry>) -> Result<usize>;

    /// Records names a reviewer confirmed; they outrank every other source.
    async fn confirm_catalog_entries(
        &self,
        tenant: &TenantId,
        entries: Vec<CatalogEntry>,
    ) -> Result<usize> {
        let confirmed = entries
            .into_iter()
            .map(|entry| CatalogEntry {
                provenance: EntityProvenance::Reviewer,
                ..entry
            })
            .collect();
        self.upsert_catalog(tenant, confirmed).await
    }

    /// The tenant's whole catalog, as the label pipeline reads text against it.
    async fn catalog(&self, tenant: &TenantId) -> Result<Catalog>;

    /// One page of the tenant's catalog.
    async fn catalog_entries(
        &self,
        tenant: &TenantId,
        query: CatalogQuery,
    ) -> Result<Vec<StoredCatalogEntry>>;

    /// Stores a finished evaluation run (its results, grades and traces); storing a run with
    /// the same id again replaces it.
    async fn store_eval_run(&self, tenant: &TenantId, run: EvalRun) -> Result<()>;

    async fn eval_run(&self, tenant: &TenantId, id: &str) -> Result<Option<EvalRun>>;

    /// The tenant's runs, newest first, at most `limit`.
    async fn eval_runs(&self, tenant: &TenantId, limit: usize) -> Result<Vec<EvalRun>>;

    /// The label's history: what each run that graded label `label_id` (`lbl-<trace id>`)
    /// said about it, newest run first, at most `limit` runs.
    async fn label_history(
        &self,
        tenant: &TenantId,
        label_id: &str,
        limit: usize,
    ) -> Result<Vec<LabelRun>>;
}

/// A filter over the review queue: current candidates routed to review or insufficient, and the
/// audit sample of admitted ones, that no reviewer has decided yet; newest first.
#[derive(Debug, Clone, Default)]
pub struct ReviewQuery {
    /// Empty: every route. `admit` selects the audit sample.
    pub routes: Vec<Route>,
    /// Only candidates with this segment.
    pub segment: Option<Segment>,
    /// Only candidates whose lowest score is at least / at most this.
    pub min_score: Option<f64>,
    pub max_score: Option<f64>,
    pub limit: usize,
    pub offset: usize,
}

/// One review queue entry: the candidate and the label version a decision on it must name.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueueItem {
    #[serde(flatten)]
    pub candidate: CandidateLabel,
    /// The label's latest version (0: none yet).
    pub label_version: u32,
}

/// What became of a decision.
#[derive(Debug, Clone, PartialEq)]
pub enum DecisionOutcome {
    /// Recorded as the label's next version.
    Recorded(Box<LabelVersion>),
    /// No such candidate for this tenant.
    NotFound,
    /// The decision was made on a version that is no longer current: nothing was written.
    Stale {
        current_version: u32,
        current_candidate: String,
    },
    /// The edit does not apply to this candidate (e.g. it leaves an insufficient one without a
    /// statement); nothing was written.
    Invalid(Vec<FieldError>),
}

/// A label version of a release with the frozen results of its snapshot. Replay serves
/// `label.snapshot` and `results` only: the ground truth stays in `label.ground_truth`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleasedLabel {
    pub label: LabelVersion,
    /// Query id → frozen result, for the queries that have one.
    pub results: Vec<(String, Vec<u8>)>,
}

/// What identifies a release across stores: everything but its coverage, which depends on the
/// store's traffic.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReleaseManifest {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
    pub filters: Vec<Segment>,
    pub items: Vec<ReleaseItem>,
}

/// Why an import was refused (nothing was written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Mismatch(String),
    #[error("{0}")]
    Conflict(String),
}

/// Review decisions, label versions, releases and calibration data. Extends [`PipelineStore`]:
/// a decision reads and writes candidates, snapshots and label versions in one transaction.
#[async_trait]
pub trait ReviewStore: PipelineStore {
    /// One page of the review queue and the number of items matching the filter.
    async fn review_queue(
        &self,
        tenant: &TenantId,
        query: ReviewQuery,
    ) -> Result<(Vec<QueueItem>, u64)>;

    /// Records a decision on a candidate as the label's next version, if `decision.version` is
    /// still the label's latest version and the candidate still the investigation's current
    /// one. An edit's added queries join the investigation's snapshot for capture.
    async fn decide(
        &self,
        tenant: &TenantId,
        candidate_id: &str,
        reviewer: &str,
        decision: ValidDecision,
    ) -> Result<DecisionOutcome>;

    /// Every version of the investigation's label, oldest first.
    async fn label_versions(&self, tenant: &TenantId, trace: TraceId) -> Result<Vec<LabelVersion>>;

    /// The latest version of every label whose latest is active and matches the filters.
    async fn current_labels(
        &self,
        tenant: &TenantId,
        filters: Vec<Segment>,
    ) -> Result<Vec<LabelVersion>>;

    /// Every decided label version's scores against the reviewer's verdict, for calibration.
    async fn calibration_observations(&self, tenant: &TenantId) -> Result<Vec<Observation>>;

    /// Creates (or finds: the id is the selection's content hash) the release of the tenant's
    /// current labels that match `filters`. The bool is true when it was new.
    async fn create_release(
        &self,
        tenant: &TenantId,
        name: &str,
        filters: Vec<Segment>,
    ) -> Result<(Release, bool)>;

    /// The tenant's releases, newest first.
    async fn releases(&self, tenant: &TenantId) -> Result<Vec<Release>>;

    async fn release(&self, tenant: &TenantId, id: &str) -> Result<Option<Release>>;

    /// A release's manifest and its label versions with their frozen results, by label id.
    async fn release_labels(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<(ReleaseManifest, Vec<ReleasedLabel>)>>;

    /// Stores an exported release: its label versions, their snapshots and results, and the
    /// release itself. The manifest's id must be the content hash of the labels given.
    async fn import_release(
        &self,
        tenant: &TenantId,
        manifest: ReleaseManifest,
        labels: Vec<ReleasedLabel>,
    ) -> Result<std::result::Result<Release, ImportError>>;
}

/// Every interface at once, for components (the pipeline worker, the binary) that need them.
pub trait FullStore: Store + ReviewStore {}

impl<T: Store + ReviewStore> FullStore for T {}
