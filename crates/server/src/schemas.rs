//! The shapes of the API's JSON bodies as `/openapi.json` describes them. The domain types live
//! in `model`, `store` and `eval`, which know nothing of the documentation; these `ToSchema` types
//! mirror what the handlers serialise (the top-level fields exactly, deep parts such as a
//! snapshot query or a score's reasons as objects) and are never built at run time.
//! `interop/openapi_check.sh` checks served bodies against them (schemathesis).

#![allow(dead_code)]

use utoipa::ToSchema;

/// Every error: a code, a message, and what is known about the failure.
#[derive(ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
pub(crate) struct ErrorDetail {
    /// `invalid_request`, `not_found`, `stale_version`, `invalid_field`, …
    code: String,
    message: String,
    /// Each bad field, named.
    fields: Option<Vec<FieldError>>,
    /// On `stale_version`: the label's current version and candidate.
    current_version: Option<u32>,
    current_candidate: Option<String>,
}

#[derive(ToSchema)]
pub(crate) struct FieldError {
    field: String,
    message: String,
}

/// `facet=value` of a label or a run: service, category, agent version, difficulty, …
#[derive(ToSchema)]
pub(crate) struct Segment {
    facet: String,
    value: String,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum Route {
    Admit,
    Review,
    Insufficient,
}

/// A scored candidate label, as the pipeline drafted it.
#[derive(ToSchema)]
pub(crate) struct Candidate {
    /// `cand-<trace id>-v<n>`.
    id: String,
    /// The investigation's trace id (32 hex digits).
    investigation_id: String,
    version: u32,
    /// The alert or question that started the investigation.
    trigger: Option<serde_json::Map<String, serde_json::Value>>,
    /// Statement, components, category, onset, causal chain, evidence.
    ground_truth: Option<serde_json::Map<String, serde_json::Value>>,
    /// The snapshot queries with their capture status (results are served by replay only).
    snapshot: Vec<serde_json::Map<String, serde_json::Value>>,
    segments: Vec<Segment>,
    /// Specificity, accuracy and thoroughness, each a value in 0-1 with its reasons.
    scores: serde_json::Map<String, serde_json::Value>,
    route: Route,
    /// An admitted candidate sampled for review.
    audit: bool,
    provenance: serde_json::Map<String, serde_json::Value>,
    #[schema(format = DateTime)]
    created_at: String,
}

/// `GET /api/v1/labels`.
#[derive(ToSchema)]
pub(crate) struct CandidateList {
    labels: Vec<Candidate>,
}

/// One review queue entry: the candidate and the label version a decision must name.
#[derive(ToSchema)]
pub(crate) struct QueueItem {
    #[schema(inline)]
    #[serde(flatten)]
    candidate: Candidate,
    label_version: u32,
}

/// `GET /api/v1/review`.
#[derive(ToSchema)]
pub(crate) struct ReviewQueue {
    queue: Vec<QueueItem>,
    /// Entries matching the filters, beyond this page too.
    total: u64,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum LabelState {
    Active,
    Rejected,
}

/// One immutable label version.
#[derive(ToSchema)]
pub(crate) struct LabelVersion {
    /// `lbl-<trace id>`.
    label_id: String,
    investigation_id: String,
    version: u32,
    state: LabelState,
    ground_truth: Option<serde_json::Map<String, serde_json::Value>>,
    snapshot: Vec<serde_json::Map<String, serde_json::Value>>,
    segments: Vec<Segment>,
    scores: serde_json::Map<String, serde_json::Value>,
    candidate_id: String,
    candidate_version: u32,
    /// Feedback → candidate → decision → this version.
    provenance: serde_json::Map<String, serde_json::Value>,
    /// Who decided, when, on which version; absent for a version the validator admitted.
    decision: Option<serde_json::Map<String, serde_json::Value>>,
    #[schema(format = DateTime)]
    created_at: String,
}

/// One field that differs from the previous version.
#[derive(ToSchema)]
pub(crate) struct FieldChange {
    field: String,
    before: serde_json::Value,
    after: serde_json::Value,
}

/// A label version with what changed from the one before it.
#[derive(ToSchema)]
pub(crate) struct VersionWithChanges {
    #[schema(inline)]
    #[serde(flatten)]
    version: LabelVersion,
    changes: Vec<FieldChange>,
}

/// `GET /api/v1/labels/{id}/versions`.
#[derive(ToSchema)]
pub(crate) struct LabelHistory {
    label_id: String,
    versions: Vec<VersionWithChanges>,
}

/// `GET /api/v1/review/{id}`.
#[derive(ToSchema)]
pub(crate) struct ReviewItem {
    candidate: Candidate,
    /// The label version a decision is made on (0: none yet).
    version: u32,
    versions: Vec<VersionWithChanges>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum DecisionAction {
    Approve,
    Edit,
    Reject,
}

/// `POST /api/v1/review/{id}/decision`.
#[derive(ToSchema)]
pub(crate) struct DecisionRequest {
    action: DecisionAction,
    /// The label version the decision is made on (0 when the label has none yet).
    version: u32,
    /// Defaults to the key's name.
    reviewer: Option<String>,
    /// An edit: the ground-truth fields to change (statement, components, category, onset,
    /// causal_chain).
    ground_truth: Option<serde_json::Map<String, serde_json::Value>>,
    /// An edit: snapshot changes (add a query, mark one as evidence or noise, remove one).
    #[serde(default)]
    snapshot: Vec<serde_json::Map<String, serde_json::Value>>,
    /// A rejection: one of the fixed reasons.
    reason: Option<String>,
    note: Option<String>,
}

/// `POST /api/v1/releases`.
#[derive(ToSchema)]
pub(crate) struct CreateRelease {
    /// 1-200 bytes.
    name: String,
    /// `facet=value`; several on one facet are alternatives.
    #[serde(default)]
    filters: Vec<String>,
}

#[derive(ToSchema)]
pub(crate) struct SegmentCoverage {
    facet: String,
    value: String,
    labels: u64,
    /// Investigations with feedback in this segment over the release's period.
    investigations: u64,
    label_share: f64,
    investigation_share: f64,
}

#[derive(ToSchema)]
pub(crate) struct UnderCovered {
    facet: String,
    value: String,
    /// Investigation share minus label share.
    gap: f64,
    /// Candidates of confirmed investigations in the segment to send to review.
    suggestions: Vec<String>,
}

/// Labels per segment against traffic, and the feedback polarity the labels were born from.
#[derive(ToSchema)]
pub(crate) struct Coverage {
    /// Production investigations first seen over the period (among those still stored).
    investigations: u64,
    /// How many of them had feedback.
    with_feedback: u64,
    segments: Vec<SegmentCoverage>,
    negative: u64,
    positive: u64,
    mixed: u64,
    negative_share: f64,
    positive_share: f64,
    under_covered: Vec<UnderCovered>,
}

/// A named, immutable selection of label versions.
#[derive(ToSchema)]
pub(crate) struct Release {
    /// `rel-` and 24 hex digits of the selection's content hash.
    id: String,
    name: String,
    #[schema(format = DateTime)]
    created_at: String,
    filters: Vec<Segment>,
    /// How many label versions it selected when it was made.
    labels: u64,
    /// How many of them an erasure removed since (absent when none). The release keeps their
    /// items, so its export still proves its id, but no longer holds or exports them.
    erased: Option<u64>,
    /// The earliest and latest creation time of its label versions.
    period: Option<Vec<String>>,
    coverage: Coverage,
}

/// `GET /api/v1/releases`.
#[derive(ToSchema)]
pub(crate) struct ReleaseList {
    releases: Vec<Release>,
}

#[derive(ToSchema)]
pub(crate) struct ChangedLabel {
    label_id: String,
    from_version: u32,
    to_version: u32,
    changes: Vec<FieldChange>,
}

/// `GET /api/v1/releases/{id}/diff/{other}`.
#[derive(ToSchema)]
pub(crate) struct ReleaseDiff {
    from: String,
    to: String,
    /// Label ids only in `to`.
    added: Vec<String>,
    /// Label ids only in `from`.
    removed: Vec<String>,
    changed: Vec<ChangedLabel>,
}

/// `GET /api/v1/calibration`.
#[derive(ToSchema)]
pub(crate) struct CalibrationReport {
    /// Auto-admit precision with its Wilson interval, agreement and Cohen's kappa per score
    /// dimension, the current thresholds and the proposal for the target precision.
    calibration: serde_json::Map<String, serde_json::Value>,
    /// The proposed thresholds as an `evalmint.toml` fragment; null when none reaches the target.
    proposed_config: Option<String>,
}

/// `POST /api/v1/replay/sessions`.
#[derive(ToSchema)]
pub(crate) struct OpenSession {
    /// The candidate id (`cand-…`) whose snapshot the session serves.
    label_id: String,
}

/// An open replay session: its id is the agent's credential.
#[derive(ToSchema)]
pub(crate) struct Session {
    id: String,
    mcp_url: String,
    http_url: String,
    prometheus_url: String,
    trigger: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(ToSchema)]
pub(crate) struct ToolDescription {
    name: String,
    description: String,
    /// Argument name → description.
    arguments: serde_json::Value,
}

/// `GET /replay/sessions/{sid}/tools`.
#[derive(ToSchema)]
pub(crate) struct ToolList {
    tools: Vec<ToolDescription>,
}

/// A Prometheus API answer, in Prometheus's own shape.
#[derive(ToSchema)]
pub(crate) struct PrometheusAnswer {
    /// `success` or `error`.
    status: String,
    data: Option<serde_json::Value>,
    #[schema(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

/// A pass rate with its Wilson 95% interval.
#[derive(ToSchema)]
pub(crate) struct Rate {
    passed: u64,
    total: u64,
    rate: f64,
    low: f64,
    high: f64,
}

/// One segment of a run, against the baseline when there is one.
#[derive(ToSchema)]
pub(crate) struct SegmentRow {
    /// `facet=value`, or `overall`.
    segment: String,
    rate: Rate,
    errors: u64,
    baseline: Option<Rate>,
    lost: Option<u64>,
    gained: Option<u64>,
    p_value: Option<f64>,
    regression: bool,
    improvement: bool,
}

/// A run's statistics.
#[derive(ToSchema)]
pub(crate) struct RunSummary {
    run: String,
    agent: String,
    /// `admitted` or the release id the labels came from.
    label_source: String,
    k: u32,
    labels: u64,
    attempts: u64,
    pass_at_k: f64,
    /// `overall` first.
    segments: Vec<SegmentRow>,
    baseline: Option<String>,
    flips: Vec<String>,
    /// The advisory LLM judge's verdicts, when the run was judged (`eval run --judge`).
    judge: Option<JudgeTally>,
}

/// The LLM judge's verdicts over a run's attempts; they never change an attempt's outcome.
#[derive(ToSchema)]
pub(crate) struct JudgeTally {
    /// `llm:<model>/<prompt version>`.
    judge: String,
    passed: u64,
    failed: u64,
    /// Attempts the judge could not judge (an unusable answer, an HTTP error).
    errors: u64,
    /// Judged attempts whose pass or fail outcome the judge agrees with, of `compared`.
    agreed: u64,
    compared: u64,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum RunStatus {
    Completed,
    Failed,
}

/// One run in the list.
#[derive(ToSchema)]
pub(crate) struct RunListItem {
    id: String,
    agent: String,
    label_source: String,
    k: u32,
    status: RunStatus,
    #[schema(format = DateTime)]
    started_at: String,
    #[schema(format = DateTime)]
    finished_at: String,
    labels: u64,
    pass_rate: f64,
}

/// `GET /api/v1/runs`.
#[derive(ToSchema)]
pub(crate) struct RunList {
    runs: Vec<RunListItem>,
}

/// A stored run: every attempt with its answer, grades and the trace of its tool calls.
#[derive(ToSchema)]
pub(crate) struct Run {
    id: String,
    agent: String,
    label_source: String,
    k: u32,
    status: RunStatus,
    error: Option<String>,
    #[schema(format = DateTime)]
    started_at: String,
    #[schema(format = DateTime)]
    finished_at: String,
    /// The run it was compared with when it ran; the summary compares with it.
    baseline: Option<String>,
    results: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// `GET /api/v1/runs/{id}`.
#[derive(ToSchema)]
pub(crate) struct RunDetail {
    run: Run,
    /// Compared with the run's stored baseline when it has one.
    summary: RunSummary,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum AttemptOutcomeKind {
    Pass,
    Fail,
    Error,
}

/// One grader's verdict on an attempt.
#[derive(ToSchema)]
pub(crate) struct GraderVerdict {
    grader: String,
    passed: bool,
    score: f64,
    reason: String,
}

/// How one attempt on the label went.
#[derive(ToSchema)]
pub(crate) struct LabelAttempt {
    attempt: u32,
    outcome: AttemptOutcomeKind,
    /// The failing grader's reason, or the error.
    reason: String,
    grades: Vec<GraderVerdict>,
}

/// One run's verdict on the label.
#[derive(ToSchema)]
pub(crate) struct LabelHistoryRun {
    run_id: String,
    agent: String,
    /// `admitted` or the release id the run read.
    label_source: String,
    #[schema(format = DateTime)]
    started_at: String,
    /// The label version graded.
    label_version: u32,
    /// At least half the attempts passed.
    passed: bool,
    attempts: Vec<LabelAttempt>,
}

/// `GET /api/v1/labels/{id}/runs`: newest run first.
#[derive(ToSchema)]
pub(crate) struct LabelRunHistory {
    label_id: String,
    /// The label passed in some of these runs and failed in others.
    flaky: bool,
    runs: Vec<LabelHistoryRun>,
}

/// `POST /api/v1/feedback`: at least a verdict, a rating or a correction, on an investigation
/// or a span.
#[derive(ToSchema)]
pub(crate) struct FeedbackSubmission {
    /// The investigation's trace id (32 hex digits).
    investigation_id: Option<String>,
    /// A span id (16 hex digits); the feedback joins its trace when the span arrives.
    span_id: Option<String>,
    /// `up`, `not_quite` or `down`.
    verdict: Option<String>,
    /// 1-5.
    rating: Option<i64>,
    /// What the right answer was.
    correction: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    user_id: Option<String>,
    /// A retry with the same key and body answers the stored feedback (200).
    idempotency_key: Option<String>,
    #[serde(default)]
    metadata: serde_json::Map<String, serde_json::Value>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum Verdict {
    Up,
    NotQuite,
    Down,
}

/// Stored feedback.
#[derive(ToSchema)]
pub(crate) struct Feedback {
    /// A UUID.
    id: String,
    tenant: String,
    #[schema(format = DateTime)]
    received_at: String,
    investigation_id: Option<String>,
    span_id: Option<String>,
    verdict: Option<Verdict>,
    rating: Option<u8>,
    correction: Option<String>,
    tags: Vec<String>,
    user_id: Option<String>,
    idempotency_key: Option<String>,
    metadata: serde_json::Map<String, serde_json::Value>,
    /// `api`, `widget`, `langfuse`, `phoenix`, `langsmith`, `otel_event`,
    /// `openinference_annotation`.
    origin: String,
}

/// `GET /api/v1/feedback/{id}`: the feedback and what the label pipeline made of it.
#[derive(ToSchema)]
pub(crate) struct FeedbackWithLabel {
    #[schema(inline)]
    #[serde(flatten)]
    feedback: Feedback,
    /// `pending`, `candidate` (detail: the candidate id) or `not_candidate` (detail: why).
    label: Option<serde_json::Map<String, serde_json::Value>>,
}
