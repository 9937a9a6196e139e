//! Evaluation labels in the making: the world snapshot a label needs (queries with their frozen
//! results), the ground truth drafted from feedback, its confidence scores and where it was routed.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::catalog::EntityProvenance;
use crate::ids::{FeedbackId, SpanId, TraceId};
use crate::investigation::{SignalSource, TimeWindow, Trigger};

/// A root-cause category: a validated name from the taxonomy (`resource.memory`,
/// `network.loss`, …). The taxonomy itself — descriptions, phrases, parents — is configuration
/// (see the pipeline's `taxonomy`); this type only guarantees a well-formed, stable name, so
/// stored labels, segments and reports keep their meaning when the taxonomy grows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Category(Cow<'static, str>);

/// Why a string is not a category name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a category name: use 1-64 lowercase letters, digits and `_`, in `.`-separated parts"
)]
pub struct InvalidCategory(pub String);

impl Category {
    pub const RESOURCE_MEMORY: Category = Category::builtin("resource.memory");
    pub const RESOURCE_CPU: Category = Category::builtin("resource.cpu");
    pub const RESOURCE_DISK: Category = Category::builtin("resource.disk");
    pub const RESOURCE_CONNECTION_POOL: Category = Category::builtin("resource.connection_pool");
    pub const BAD_DEPLOY: Category = Category::builtin("bad_deploy");
    pub const CONFIG_CHANGE: Category = Category::builtin("config_change");
    pub const DEPENDENCY_FAILURE: Category = Category::builtin("dependency_failure");
    pub const NETWORK_LATENCY: Category = Category::builtin("network.latency");
    pub const NETWORK_LOSS: Category = Category::builtin("network.loss");
    pub const NETWORK_DNS: Category = Category::builtin("network.dns");
    pub const TRAFFIC_SPIKE: Category = Category::builtin("traffic_spike");
    pub const CERT_EXPIRY: Category = Category::builtin("cert_expiry");
    pub const QUEUE_BACKLOG: Category = Category::builtin("queue_backlog");
    pub const DATA_ISSUE: Category = Category::builtin("data_issue");
    pub const INFRASTRUCTURE: Category = Category::builtin("infrastructure");

    /// The categories every taxonomy starts from.
    pub const BUILTIN: [Category; 15] = [
        Category::RESOURCE_MEMORY,
        Category::RESOURCE_CPU,
        Category::RESOURCE_DISK,
        Category::RESOURCE_CONNECTION_POOL,
        Category::BAD_DEPLOY,
        Category::CONFIG_CHANGE,
        Category::DEPENDENCY_FAILURE,
        Category::NETWORK_LATENCY,
        Category::NETWORK_LOSS,
        Category::NETWORK_DNS,
        Category::TRAFFIC_SPIKE,
        Category::CERT_EXPIRY,
        Category::QUEUE_BACKLOG,
        Category::DATA_ISSUE,
        Category::INFRASTRUCTURE,
    ];

    /// A name known to be valid at compile time.
    const fn builtin(name: &'static str) -> Self {
        Category(Cow::Borrowed(name))
    }

    /// Validates a category name.
    pub fn new(name: &str) -> Result<Self, InvalidCategory> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            });
        if valid {
            Ok(Category(Cow::Owned(name.to_owned())))
        } else {
            Err(InvalidCategory(name.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The category named `name`, if it is a valid name.
    pub fn parse(name: &str) -> Option<Self> {
        Category::new(name).ok()
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Category {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Category {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Category::new(&name).map_err(serde::de::Error::custom)
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
    /// The user's (or the confirmed agent's) own words for the reason, verbatim beside the
    /// category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where each component's name was recognised; an `open_vocabulary` entity is unverified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<EntityRef>,
}

/// A component of a ground truth with the path by which its name was recognised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityRef {
    pub name: String,
    pub provenance: EntityProvenance,
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
