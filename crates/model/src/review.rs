//! Human review of candidate labels: the decisions a reviewer makes (approve, edit, reject), their
//! validation, and the immutable label versions they create, with the diff between versions.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::feedback::FieldError;
use crate::investigation::SignalSource;
use crate::label::{
    CandidateLabel, CaptureStatus, Category, GroundTruth, Provenance, QueryOrigin, Route, Scores,
    Segment, SnapshotQuery,
};

/// Why a reviewer rejects a candidate: a fixed list, so rejections can be counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The drafted root cause is wrong and cannot be fixed from what is known.
    WrongRootCause,
    /// The snapshot does not hold the evidence a label needs.
    InsufficientEvidence,
    /// The feedback is unreliable (a mis-click, a joke, a different incident).
    UnreliableFeedback,
    /// Another label covers the same incident.
    Duplicate,
    /// Not an incident at all.
    NotAnIncident,
    Other,
}

impl RejectReason {
    pub const ALL: [RejectReason; 6] = [
        RejectReason::WrongRootCause,
        RejectReason::InsufficientEvidence,
        RejectReason::UnreliableFeedback,
        RejectReason::Duplicate,
        RejectReason::NotAnIncident,
        RejectReason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::WrongRootCause => "wrong_root_cause",
            RejectReason::InsufficientEvidence => "insufficient_evidence",
            RejectReason::UnreliableFeedback => "unreliable_feedback",
            RejectReason::Duplicate => "duplicate",
            RejectReason::NotAnIncident => "not_an_incident",
            RejectReason::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// What a reviewer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionAction {
    Approve,
    Edit,
    Reject,
}

impl DecisionAction {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionAction::Approve => "approve",
            DecisionAction::Edit => "edit",
            DecisionAction::Reject => "reject",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            DecisionAction::Approve,
            DecisionAction::Edit,
            DecisionAction::Reject,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// Changed ground-truth fields of an edit, as sent; absent fields stay as drafted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroundTruthEdit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causal_chain: Option<Vec<String>>,
}

impl GroundTruthEdit {
    pub fn is_empty(&self) -> bool {
        *self == GroundTruthEdit::default()
    }
}

/// One change to a label's snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum SnapshotChange {
    /// A query the agent did not run but the label needs, with the source it reads.
    Add {
        source: String,
        #[serde(default)]
        signal: Option<SignalSource>,
        #[serde(default)]
        tool: Option<String>,
        query: String,
    },
    /// The query supports the ground truth.
    Evidence { query_id: String },
    /// The query does not support it (it stays in the snapshot as a distractor).
    Noise { query_id: String },
    /// The query leaves the label's snapshot.
    Remove { query_id: String },
}

/// A decision as it arrives (API JSON or a form), before validation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// `approve`, `edit` or `reject`.
    pub action: String,
    /// The label version the reviewer saw (0 when the label has none yet).
    pub version: u32,
    /// Who decided, when the key is shared; defaults to the key's name.
    #[serde(default)]
    pub reviewer: Option<String>,
    #[serde(default)]
    pub ground_truth: Option<GroundTruthEdit>,
    #[serde(default)]
    pub snapshot: Vec<SnapshotChange>,
    /// A reject's reason, one of [`RejectReason`].
    #[serde(default)]
    pub reason: Option<String>,
    /// Free text beside the reason.
    #[serde(default)]
    pub note: Option<String>,
}

/// A decision that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidDecision {
    pub action: DecisionAction,
    pub version: u32,
    pub reviewer: Option<String>,
    pub ground_truth: GroundTruthEdit,
    pub onset: Option<Timestamp>,
    pub category: Option<Category>,
    pub snapshot: Vec<SnapshotChange>,
    pub reason: Option<RejectReason>,
    pub note: Option<String>,
}

const MAX_TEXT: usize = 4_000;

fn field(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

impl DecisionRequest {
    /// Checks every field against the known categories and the current time, reporting every
    /// problem at once with its field.
    pub fn validate(
        self,
        categories: &[Category],
        now: Timestamp,
    ) -> Result<ValidDecision, Vec<FieldError>> {
        let mut problems = Vec::new();
        let action = DecisionAction::parse(&self.action);
        if action.is_none() {
            problems.push(field(
                "action",
                format!("{:?} is not one of approve, edit, reject", self.action),
            ));
        }
        let reviewer = self
            .reviewer
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        if reviewer.as_ref().is_some_and(|r| r.len() > 200) {
            problems.push(field("reviewer", "longer than 200 bytes"));
        }
        let truth = self.ground_truth.unwrap_or_default();
        let mut category = None;
        let mut onset = None;
        if action == Some(DecisionAction::Edit) {
            if truth.is_empty() && self.snapshot.is_empty() {
                problems.push(field("ground_truth", "an edit changes at least one field"));
            }
            if let Some(statement) = &truth.statement {
                if statement.trim().is_empty() {
                    problems.push(field("ground_truth.statement", "empty"));
                } else if statement.len() > MAX_TEXT {
                    problems.push(field("ground_truth.statement", "longer than 4000 bytes"));
                }
            }
            if let Some(components) = &truth.components
                && components
                    .iter()
                    .any(|c| c.trim().is_empty() || c.len() > 200)
            {
                problems.push(field(
                    "ground_truth.components",
                    "a component is empty or longer than 200 bytes",
                ));
            }
            if let Some(name) = truth.category.as_deref().filter(|c| !c.is_empty()) {
                match Category::new(name) {
                    Ok(c) if categories.contains(&c) => category = Some(c),
                    _ => problems.push(field(
                        "ground_truth.category",
                        format!("{name:?} is not a category of the taxonomy"),
                    )),
                }
            }
            if let Some(text) = truth.onset.as_deref().filter(|o| !o.is_empty()) {
                match text.parse::<Timestamp>() {
                    Ok(t) if t <= now => onset = Some(t),
                    Ok(_) => problems.push(field("ground_truth.onset", "is in the future")),
                    Err(_) => problems.push(field(
                        "ground_truth.onset",
                        format!("{text:?} is not an RFC 3339 time"),
                    )),
                }
            }
            if let Some(chain) = &truth.causal_chain
                && chain.iter().any(|c| c.len() > MAX_TEXT)
            {
                problems.push(field("ground_truth.causal_chain", "a link is too long"));
            }
            for change in &self.snapshot {
                if let SnapshotChange::Add { source, query, .. } = change
                    && (source.trim().is_empty() || query.trim().is_empty())
                {
                    problems.push(field(
                        "snapshot",
                        "an added query names its source and query",
                    ));
                }
            }
        } else if !truth.is_empty() || !self.snapshot.is_empty() {
            problems.push(field("ground_truth", "only an edit changes the label"));
        }
        let mut reason = None;
        if action == Some(DecisionAction::Reject) {
            match self.reason.as_deref().map(RejectReason::parse) {
                Some(Some(r)) => reason = Some(r),
                _ => problems.push(field(
                    "reason",
                    format!(
                        "a rejection names one of {}",
                        RejectReason::ALL.map(RejectReason::as_str).join(", ")
                    ),
                )),
            }
        }
        let note = self.note.filter(|n| !n.trim().is_empty());
        if note.as_ref().is_some_and(|n| n.len() > MAX_TEXT) {
            problems.push(field("note", "longer than 4000 bytes"));
        }
        match action {
            Some(action) if problems.is_empty() => Ok(ValidDecision {
                action,
                version: self.version,
                reviewer,
                ground_truth: truth,
                onset,
                category,
                snapshot: self.snapshot,
                reason,
                note,
            }),
            _ => Err(problems),
        }
    }
}

/// Whether a label version stands or was withdrawn by a rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelState {
    Active,
    Rejected,
}

/// A recorded decision: who, when, on which version, and how it compares with the validator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub action: DecisionAction,
    pub reviewer: String,
    pub decided_at: Timestamp,
    /// The label version the decision was made on (0: none yet).
    pub on_version: u32,
    pub candidate_id: String,
    pub candidate_route: Route,
    /// The candidate was an admitted one sampled for audit.
    pub audit: bool,
    /// For an audit-sample decision: whether the reviewer agreed with the validator (approved
    /// unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agrees_with_validator: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One immutable version of a label. Approving, editing or rejecting makes a new one; the
/// validator's admission makes the first of an admitted label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelVersion {
    /// `lbl-<trace id>`: one label per investigation.
    pub label_id: String,
    pub investigation_id: crate::TraceId,
    pub version: u32,
    pub state: LabelState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ground_truth: Option<GroundTruth>,
    pub snapshot: Vec<SnapshotQuery>,
    pub segments: Vec<Segment>,
    pub scores: Scores,
    pub candidate_id: String,
    pub candidate_version: u32,
    /// Feedback → candidate → decision → this version.
    pub provenance: Provenance,
    /// None for a version the validator admitted on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    pub created_at: Timestamp,
}

/// The id of the label an investigation's candidates become.
pub fn label_id(trace: crate::TraceId) -> String {
    format!("lbl-{trace}")
}

/// The investigation a label id names, if it is one ([`label_id`] read back).
pub fn label_trace(label_id: &str) -> Option<crate::TraceId> {
    label_id.strip_prefix("lbl-")?.parse().ok()
}

/// One field that differs between two versions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
}

impl LabelVersion {
    /// The first version of an admitted candidate, admitted by the validator.
    pub fn admitted(candidate: &CandidateLabel, version: u32) -> Self {
        LabelVersion {
            label_id: label_id(candidate.investigation_id),
            investigation_id: candidate.investigation_id,
            version,
            state: LabelState::Active,
            ground_truth: candidate.ground_truth.clone(),
            snapshot: candidate.snapshot.clone(),
            segments: candidate.segments.clone(),
            scores: candidate.scores.clone(),
            candidate_id: candidate.id.clone(),
            candidate_version: candidate.version,
            provenance: candidate.provenance.clone(),
            decision: None,
            created_at: candidate.created_at,
        }
    }

    /// What changed from `before` (none: the first version) to this version, field by field.
    pub fn diff(&self, before: Option<&LabelVersion>) -> Vec<FieldChange> {
        let null = serde_json::Value::Null;
        let mut changes = Vec::new();
        let mut compare = |name: &str, a: serde_json::Value, b: serde_json::Value| {
            if a != b {
                changes.push(FieldChange {
                    field: name.to_owned(),
                    before: a,
                    after: b,
                });
            }
        };
        let json = |v: &dyn erased::Json| v.json();
        let truth_before = before.and_then(|b| b.ground_truth.as_ref());
        let truth_after = self.ground_truth.as_ref();
        compare(
            "state",
            before.map_or(null.clone(), |b| json(&b.state)),
            json(&self.state),
        );
        for (name, pick) in erased::TRUTH_FIELDS {
            compare(
                &format!("ground_truth.{name}"),
                truth_before.map_or(null.clone(), pick),
                truth_after.map_or(null.clone(), pick),
            );
        }
        let ids = |v: &LabelVersion| {
            serde_json::Value::from(v.snapshot.iter().map(|q| q.id.clone()).collect::<Vec<_>>())
        };
        compare("snapshot", before.map_or(null.clone(), ids), ids(self));
        changes
    }
}

/// Field access for diffs, by name.
mod erased {
    use crate::label::GroundTruth;

    pub(super) trait Json {
        fn json(&self) -> serde_json::Value;
    }

    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }

    type Pick = fn(&GroundTruth) -> serde_json::Value;

    pub(super) const TRUTH_FIELDS: [(&str, Pick); 6] = [
        ("statement", |t| t.statement.json()),
        ("components", |t| t.components.json()),
        ("category", |t| t.category.json()),
        ("onset", |t| t.onset.json()),
        ("causal_chain", |t| t.causal_chain.json()),
        ("evidence", |t| t.evidence.json()),
    ];
}

/// Applies a validated edit to a drafted ground truth and snapshot. An insufficient candidate
/// (no ground truth) is completed only by an edit that gives at least a statement and a
/// component.
pub fn apply_edit(
    truth: Option<GroundTruth>,
    mut snapshot: Vec<SnapshotQuery>,
    edit: &ValidDecision,
    now: Timestamp,
) -> Result<(GroundTruth, Vec<SnapshotQuery>), Vec<FieldError>> {
    let change = &edit.ground_truth;
    let mut problems = Vec::new();
    let mut truth = match truth {
        Some(t) => t,
        None => {
            if change.statement.is_none() {
                problems.push(field(
                    "ground_truth.statement",
                    "this candidate has no ground truth yet: an edit must give a statement",
                ));
            }
            if change.components.as_ref().is_none_or(Vec::is_empty) {
                problems.push(field(
                    "ground_truth.components",
                    "this candidate has no ground truth yet: an edit must name a component",
                ));
            }
            GroundTruth {
                statement: String::new(),
                components: Vec::new(),
                category: None,
                onset: None,
                causal_chain: Vec::new(),
                evidence: Vec::new(),
                reason: None,
                entities: Vec::new(),
            }
        }
    };
    if let Some(statement) = &change.statement {
        truth.statement = statement.trim().to_owned();
    }
    if let Some(components) = &change.components {
        truth.components = components.iter().map(|c| c.trim().to_owned()).collect();
        truth
            .entities
            .retain(|e| truth.components.contains(&e.name));
    }
    if change.category.is_some() {
        truth.category = edit.category.clone();
    }
    if change.onset.is_some() {
        truth.onset = edit.onset;
    }
    if let Some(chain) = &change.causal_chain {
        truth.causal_chain = chain.clone();
    }
    for op in &edit.snapshot {
        let known = |id: &str, snapshot: &[SnapshotQuery]| snapshot.iter().any(|q| q.id == id);
        match op {
            SnapshotChange::Add {
                source,
                signal,
                tool,
                query,
            } => {
                let id = format!("rev-{:016x}", fnv(&[source, query]));
                if !known(&id, &snapshot) {
                    let mut added = SnapshotQuery::pending(
                        id,
                        source.trim().to_owned(),
                        signal.unwrap_or(SignalSource::Unknown),
                        tool.clone().unwrap_or_else(|| "reviewer".to_owned()),
                        query.trim().to_owned(),
                        now,
                        now,
                    );
                    added.origin = QueryOrigin::Reviewer;
                    added.status = CaptureStatus::Pending;
                    snapshot.push(added);
                }
            }
            SnapshotChange::Evidence { query_id } => {
                if !known(query_id, &snapshot) {
                    problems.push(field("snapshot", format!("no query {query_id:?}")));
                } else if !truth.evidence.contains(query_id) {
                    truth.evidence.push(query_id.clone());
                }
            }
            SnapshotChange::Noise { query_id } => {
                if !known(query_id, &snapshot) {
                    problems.push(field("snapshot", format!("no query {query_id:?}")));
                }
                truth.evidence.retain(|e| e != query_id);
            }
            SnapshotChange::Remove { query_id } => {
                if !known(query_id, &snapshot) {
                    problems.push(field("snapshot", format!("no query {query_id:?}")));
                }
                snapshot.retain(|q| &q.id != query_id);
                truth.evidence.retain(|e| e != query_id);
            }
        }
    }
    if problems.is_empty() {
        Ok((truth, snapshot))
    } else {
        Err(problems)
    }
}

/// A stable 64-bit FNV-1a digest, for ids derived from content without a hashing dependency.
fn fnv(parts: &[&String]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-03-01T12:00:00Z".parse().unwrap()
    }

    fn request(json: &str) -> DecisionRequest {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn an_edit_names_each_bad_field() {
        let problems = request(
            r#"{"action":"edit","version":1,
                "ground_truth":{"category":"resource.nonsense","onset":"yesterday"}}"#,
        )
        .validate(&[Category::RESOURCE_MEMORY], now())
        .unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field).collect();
        assert_eq!(fields, ["ground_truth.category", "ground_truth.onset"]);
        let future = request(
            r#"{"action":"edit","version":1,"ground_truth":{"onset":"2027-01-01T00:00:00Z"}}"#,
        )
        .validate(&[], now())
        .unwrap_err();
        assert_eq!(future[0].field, "ground_truth.onset");
    }

    #[test]
    fn a_rejection_needs_a_reason_from_the_list() {
        let problems = request(r#"{"action":"reject","version":0,"reason":"meh"}"#)
            .validate(&[], now())
            .unwrap_err();
        assert_eq!(problems[0].field, "reason");
        let ok = request(r#"{"action":"reject","version":0,"reason":"duplicate","note":"x"}"#)
            .validate(&[], now())
            .unwrap();
        assert_eq!(ok.reason, Some(RejectReason::Duplicate));
    }

    #[test]
    fn an_insufficient_candidate_is_completed_only_with_statement_and_component() {
        let partial = request(r#"{"action":"edit","version":0,"ground_truth":{"statement":"x"}}"#)
            .validate(&[], now())
            .unwrap();
        let problems = apply_edit(None, vec![], &partial, now()).unwrap_err();
        assert_eq!(problems[0].field, "ground_truth.components");
        let full = request(
            r#"{"action":"edit","version":0,"ground_truth":{"statement":"pool exhausted",
                "components":["payments-db"],"category":"resource.memory"}}"#,
        )
        .validate(&[Category::RESOURCE_MEMORY], now())
        .unwrap();
        let (truth, _) = apply_edit(None, vec![], &full, now()).unwrap();
        assert_eq!(truth.components, ["payments-db"]);
        assert_eq!(truth.category, Some(Category::RESOURCE_MEMORY));
    }

    #[test]
    fn snapshot_changes_add_mark_and_remove_queries() {
        let edit = request(
            r#"{"action":"edit","version":1,"snapshot":[
                {"op":"add","source":"prom","query":"rate(errors[5m])"},
                {"op":"remove","query_id":"nope"}]}"#,
        )
        .validate(&[], now())
        .unwrap();
        let problems = apply_edit(None, vec![], &edit, now()).unwrap_err();
        assert!(problems.iter().any(|p| p.field == "snapshot"));
    }
}
