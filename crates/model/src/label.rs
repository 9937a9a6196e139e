//! Evaluation labels in the making: the world snapshot a label needs (queries with their frozen
//! results), the ground truth drafted from feedback, its confidence scores and where it was routed.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::ids::{FeedbackId, SpanId, TraceId};
use crate::investigation::{SignalSource, TimeWindow, Trigger};

/// The root-cause taxonomy. Names are stable: they appear in labels, segments and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Category {
    #[serde(rename = "resource.memory")]
    ResourceMemory,
    #[serde(rename = "resource.cpu")]
    ResourceCpu,
    #[serde(rename = "resource.disk")]
    ResourceDisk,
    #[serde(rename = "resource.connection_pool")]
    ResourceConnectionPool,
    #[serde(rename = "bad_deploy")]
    BadDeploy,
    #[serde(rename = "config_change")]
    ConfigChange,
    #[serde(rename = "dependency_failure")]
    DependencyFailure,
    #[serde(rename = "network.latency")]
    NetworkLatency,
    #[serde(rename = "network.loss")]
    NetworkLoss,
    #[serde(rename = "network.dns")]
    NetworkDns,
    #[serde(rename = "traffic_spike")]
    TrafficSpike,
    #[serde(rename = "cert_expiry")]
    CertExpiry,
    #[serde(rename = "queue_backlog")]
    QueueBacklog,
    #[serde(rename = "data_issue")]
    DataIssue,
    #[serde(rename = "infrastructure")]
    Infrastructure,
}

impl Category {
    pub const ALL: [Category; 15] = [
        Category::ResourceMemory,
        Category::ResourceCpu,
        Category::ResourceDisk,
        Category::ResourceConnectionPool,
        Category::BadDeploy,
        Category::ConfigChange,
        Category::DependencyFailure,
        Category::NetworkLatency,
        Category::NetworkLoss,
        Category::NetworkDns,
        Category::TrafficSpike,
        Category::CertExpiry,
        Category::QueueBacklog,
        Category::DataIssue,
        Category::Infrastructure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::ResourceMemory => "resource.memory",
            Category::ResourceCpu => "resource.cpu",
            Category::ResourceDisk => "resource.disk",
            Category::ResourceConnectionPool => "resource.connection_pool",
            Category::BadDeploy => "bad_deploy",
            Category::ConfigChange => "config_change",
            Category::DependencyFailure => "dependency_failure",
            Category::NetworkLatency => "network.latency",
            Category::NetworkLoss => "network.loss",
            Category::NetworkDns => "network.dns",
            Category::TrafficSpike => "traffic_spike",
            Category::CertExpiry => "cert_expiry",
            Category::QueueBacklog => "queue_backlog",
            Category::DataIssue => "data_issue",
            Category::Infrastructure => "infrastructure",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Why a query is in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QueryOrigin {
    /// The agent ran it during the investigation.
    Agent,
    /// A reviewer added it.
    Reviewer,
    /// Added so replay is not an open-book exam: related but innocent.
    Noise { reason: String },
}

/// What happened when evalmint tried to freeze a query's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureStatus {
    /// Not captured yet.
    Pending,
    /// Re-run against the source: full fidelity.
    Captured,
    /// The source no longer had the data (or could not be reached in time); the result recorded
    /// in the trace, possibly truncated, stands in.
    Recorded,
    /// The data expired before capture and the trace recorded no result: there is no result.
    Expired,
    /// The source kept failing and the trace recorded no result.
    Failed,
}

impl CaptureStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureStatus::Pending => "pending",
            CaptureStatus::Captured => "captured",
            CaptureStatus::Recorded => "recorded",
            CaptureStatus::Expired => "expired",
            CaptureStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            CaptureStatus::Pending,
            CaptureStatus::Captured,
            CaptureStatus::Recorded,
            CaptureStatus::Expired,
            CaptureStatus::Failed,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        self != CaptureStatus::Pending
    }

    /// True when a result is available for replay.
    pub fn has_result(self) -> bool {
        matches!(self, CaptureStatus::Captured | CaptureStatus::Recorded)
    }
}

/// One query of a world snapshot and its frozen result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotQuery {
    /// Stable within the investigation: a digest of source, query and window.
    pub id: String,
    /// The configured telemetry source it reads.
    pub source_name: String,
    pub signal: SignalSource,
    pub tool_name: String,
    pub query: String,
    /// The tool call's arguments, replayed against the source on capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<TimeWindow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<String>,
    pub origin: QueryOrigin,
    /// The step whose recorded result is the fallback when the source cannot answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<SpanId>,
    /// Capture must happen before this: the earliest expiry of the data the query touches.
    pub deadline: Timestamp,
    /// When the query joined the snapshot; a deadline already past then was never reachable.
    pub planned_at: Timestamp,
    pub status: CaptureStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured_at: Option<Timestamp>,
    /// Content digest of the frozen result in the blob store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_digest: Option<String>,
    #[serde(default)]
    pub result_truncated: bool,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl SnapshotQuery {
    /// A query just planned: an agent query, pending, never attempted, with no arguments, window,
    /// entities or step. Set the rest with struct update syntax.
    pub fn pending(
        id: String,
        source_name: String,
        signal: SignalSource,
        tool_name: String,
        query: String,
        deadline: Timestamp,
        planned_at: Timestamp,
    ) -> Self {
        SnapshotQuery {
            id,
            source_name,
            signal,
            tool_name,
            query,
            arguments: None,
            window: None,
            entities: Vec::new(),
            origin: QueryOrigin::Agent,
            step: None,
            deadline,
            planned_at,
            status: CaptureStatus::Pending,
            captured_at: None,
            result_digest: None,
            result_truncated: false,
            attempts: 0,
            last_error: None,
        }
    }
}

/// A score in [0, 1] with the reason for every point given or withheld.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub value: f64,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub specificity: Score,
    pub accuracy: Score,
    pub thoroughness: Score,
}

/// The drafted ground truth of a label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// A precise root-cause statement.
    pub statement: String,
    pub components: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onset: Option<Timestamp>,
    /// From the trigger's symptom down to the cause.
    pub causal_chain: Vec<String>,
    /// Snapshot query ids that support the statement.
    pub evidence: Vec<String>,
}

/// Where a candidate went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// Confident: admitted to the label set.
    Admit,
    /// Needs a human.
    Review,
    /// Not enough to draft a ground truth (e.g. a thumbs-down without text); a reviewer may
    /// complete it.
    Insufficient,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Admit => "admit",
            Route::Review => "review",
            Route::Insufficient => "insufficient",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Route::Admit, Route::Review, Route::Insufficient]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// Who drafted a candidate and from what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub feedback_ids: Vec<FeedbackId>,
    pub drafter: String,
    pub drafter_version: String,
    /// Where the ground truth came from: `correction`, `confirmed_conclusion`, or `none`.
    pub basis: String,
}

/// One facet value used to slice results.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Segment {
    pub facet: String,
    pub value: String,
}

/// A scored candidate evaluation label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateLabel {
    pub id: String,
    pub investigation_id: TraceId,
    /// Increases each time new feedback re-drafts the candidate.
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ground_truth: Option<GroundTruth>,
    pub snapshot: Vec<SnapshotQuery>,
    pub segments: Vec<Segment>,
    pub scores: Scores,
    pub route: Route,
    /// An admitted candidate sampled for review, to measure admission precision.
    pub audit: bool,
    pub provenance: Provenance,
    pub created_at: Timestamp,
}
