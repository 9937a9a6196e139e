//! The rules both backends apply the same way around labels: the digests and ids that make
//! releases content-addressed, the label version a review decision makes, the numbering of a
//! drafted candidate, what a capture attempt does to its query and how a label history row keeps
//! its attempts. Only the reads and writes around them differ per backend.

use evalmint_model::release::{self, Production, Release, ReleaseItem, Traffic};
use evalmint_model::{
    CandidateLabel, Decision, DecisionAction, FieldError, LabelState, LabelVersion, QueryOrigin,
    Route, Segment, SnapshotQuery, Timestamp, TraceId, ValidDecision, apply_edit, label_id,
    label_trace,
};
use sha2::{Digest, Sha256};

use crate::convert::{internal, nanos, timestamp};
use crate::{CaptureOutcome, ImportError, ReleaseManifest, Result};

/// The SHA-256 of a version's JSON: what a release's id is made from.
pub(crate) fn version_digest(version: &LabelVersion) -> Result<String> {
    let json = serde_json::to_string(version).map_err(internal)?;
    Ok(hex::encode(Sha256::digest(json.as_bytes())))
}

/// A release's id: the SHA-256 of its sorted items.
pub(crate) fn release_id(items: &[ReleaseItem]) -> String {
    let mut hasher = Sha256::new();
    for item in items {
        hasher.update(format!(
            "{} {} {}\n",
            item.label_id, item.version, item.digest
        ));
    }
    format!("rel-{}", &hex::encode(hasher.finalize())[..24])
}

/// Whether an exported release's labels are exactly its manifest's: the items hash to the id,
/// and the labels are the items not marked erased. An erased item carries only its digest (the
/// version is gone), so it must name an investigation for the importing store to record it.
pub(crate) fn check_export(
    manifest: &ReleaseManifest,
    labels: &[LabelVersion],
) -> Result<std::result::Result<(), ImportError>> {
    let mismatch = |message: &str| Ok(Err(ImportError::Mismatch(message.to_owned())));
    if release_id(&manifest.items) != manifest.id {
        return mismatch("the manifest's items do not hash to the release's id: it was changed");
    }
    let live: Vec<ReleaseItem> = manifest
        .items
        .iter()
        .filter(|i| !i.erased)
        .cloned()
        .collect();
    if items_of(labels)? != live {
        return mismatch(
            "the labels are not the manifest's items: the export was changed or is incomplete",
        );
    }
    if manifest
        .items
        .iter()
        .any(|i| i.erased && label_trace(&i.label_id).is_none())
    {
        return mismatch("an erased item does not name a label id");
    }
    Ok(Ok(()))
}

/// The investigation a release item's label belongs to.
pub(crate) fn item_trace(item: &ReleaseItem) -> Result<TraceId> {
    label_trace(&item.label_id)
        .ok_or_else(|| internal(format!("{} is not a label id", item.label_id)))
}

/// A stored release item as its manifest names it. An item that is not marked erased must
/// still have its version: an erasure marks every item whose version it deletes.
pub(crate) fn released_item(
    trace: TraceId,
    version: u32,
    digest: String,
    erased: bool,
    version_present: bool,
) -> Result<ReleaseItem> {
    if !erased && !version_present {
        return Err(internal(format!(
            "{} version {version} is selected by a release but no longer stored",
            label_id(trace)
        )));
    }
    Ok(ReleaseItem {
        label_id: label_id(trace),
        version,
        digest,
        erased,
    })
}

/// The sorted items of a selection of label versions.
pub(crate) fn items_of(labels: &[LabelVersion]) -> Result<Vec<ReleaseItem>> {
    let mut items = labels
        .iter()
        .map(|l| {
            Ok(ReleaseItem {
                label_id: l.label_id.clone(),
                version: l.version,
                digest: version_digest(l)?,
                erased: false,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    items.sort();
    Ok(items)
}

/// The lowest of a candidate's three scores: what the review queue's score range filters on,
/// stored beside the candidate's body.
pub(crate) fn lowest_score(candidate: &CandidateLabel) -> f64 {
    let scores = &candidate.scores;
    scores
        .specificity
        .value
        .min(scores.accuracy.value)
        .min(scores.thoroughness.value)
}

/// The creation time from which a release's coverage counts traffic: its earliest label's.
pub(crate) fn coverage_since(labels: &[LabelVersion]) -> i64 {
    labels
        .iter()
        .map(|l| nanos(l.created_at))
        .min()
        .unwrap_or(0)
}

/// One current candidate as coverage counts it: its id, trace and segments (JSON).
pub(crate) fn traffic(candidate_id: String, trace: &[u8], segments: &str) -> Result<Traffic> {
    Ok(Traffic {
        candidate_id,
        label_id: label_id(TraceId::from_bytes(trace).map_err(internal)?),
        segments: serde_json::from_str(segments).map_err(internal)?,
    })
}

/// The release as shown: the manifest's selection with its period and coverage.
pub(crate) fn release_of(
    manifest: &ReleaseManifest,
    labels: &[LabelVersion],
    traffic: &[Traffic],
    production: &Production,
) -> Release {
    let period = labels
        .iter()
        .map(|l| l.created_at)
        .min()
        .zip(labels.iter().map(|l| l.created_at).max());
    let released: Vec<(&str, &[Segment])> = labels
        .iter()
        .map(|l| (l.label_id.as_str(), l.segments.as_slice()))
        .collect();
    Release {
        id: manifest.id.clone(),
        name: manifest.name.clone(),
        created_at: manifest.created_at,
        filters: manifest.filters.clone(),
        labels: manifest.items.len() as u64,
        erased: manifest.items.iter().filter(|i| i.erased).count() as u64,
        period,
        coverage: release::coverage(&released, traffic, production),
    }
}

/// The label version a decision on `candidate` makes, given the label's `latest` version (which
/// the caller checked the decision names), or the problems that keep it from applying.
pub(crate) fn decided_version(
    candidate: &CandidateLabel,
    latest: Option<LabelVersion>,
    decision: ValidDecision,
    reviewer: &str,
    now: Timestamp,
) -> std::result::Result<LabelVersion, Vec<FieldError>> {
    let trace = candidate.investigation_id;
    let current_version = latest.as_ref().map_or(0, |v| v.version);
    // An edit builds on the latest version of this candidate (earlier edits stand); a new draft
    // starts again from the draft.
    let (truth, snapshot) = match latest.filter(|v| v.candidate_id == candidate.id) {
        Some(v) => (v.ground_truth, v.snapshot),
        None => (candidate.ground_truth.clone(), candidate.snapshot.clone()),
    };
    let (state, truth, snapshot) = match decision.action {
        DecisionAction::Approve => match truth {
            Some(truth) => (LabelState::Active, Some(truth), snapshot),
            None => {
                return Err(vec![FieldError {
                    field: "ground_truth",
                    message: "this candidate has no ground truth to approve: complete it with an \
                              edit"
                        .into(),
                }]);
            }
        },
        DecisionAction::Edit => {
            let (truth, snapshot) = apply_edit(truth, snapshot, &decision, now)?;
            (LabelState::Active, Some(truth), snapshot)
        }
        DecisionAction::Reject => (LabelState::Rejected, truth, snapshot),
    };
    let audit = candidate.audit && candidate.route == Route::Admit;
    Ok(LabelVersion {
        label_id: label_id(trace),
        investigation_id: trace,
        version: current_version + 1,
        state,
        ground_truth: truth,
        snapshot,
        segments: candidate.segments.clone(),
        scores: candidate.scores.clone(),
        candidate_id: candidate.id.clone(),
        candidate_version: candidate.version,
        provenance: candidate.provenance.clone(),
        decision: Some(Decision {
            action: decision.action,
            reviewer: decision.reviewer.unwrap_or_else(|| reviewer.to_owned()),
            decided_at: now,
            on_version: current_version,
            candidate_id: candidate.id.clone(),
            candidate_route: candidate.route,
            audit,
            agrees_with_validator: audit.then_some(decision.action == DecisionAction::Approve),
            reason: decision.reason,
            note: decision.note,
        }),
        created_at: now,
    })
}

/// The queries a reviewer's edit added to a version's snapshot, to be planned for capture.
pub(crate) fn reviewer_queries(version: &LabelVersion) -> Vec<SnapshotQuery> {
    version
        .snapshot
        .iter()
        .filter(|q| q.origin == QueryOrigin::Reviewer)
        .cloned()
        .collect()
}

/// Gives a drafted candidate its number, id and creation time.
pub(crate) fn number_candidate(
    candidate: &mut CandidateLabel,
    trace: TraceId,
    version: i64,
    now: i64,
) {
    candidate.version = u32::try_from(version).unwrap_or(u32::MAX);
    candidate.id = format!("cand-{trace}-v{version}");
    candidate.created_at = timestamp(now);
}

/// A capture attempt applied to its query: the query as it is stored afterwards and when it is
/// due again (for a retry).
pub(crate) fn captured_query(
    mut query: SnapshotQuery,
    outcome: &CaptureOutcome,
    digest: Option<String>,
    now: i64,
) -> (SnapshotQuery, i64) {
    query.status = outcome.status;
    query.attempts = query.attempts.saturating_add(1);
    query.last_error = outcome.error.clone();
    if outcome.status.is_terminal() {
        query.captured_at = Some(timestamp(now));
        query.result_digest = digest;
        query.result_truncated = outcome.truncated;
    }
    let due_at = outcome.retry_at.map_or(now, nanos);
    (query, due_at)
}

/// The lease end a new claim of a capture records: `now + lease`, but always past the previous
/// claim's, so it tells every claim of the query apart (see [`crate::CaptureTask::lease_token`]).
pub(crate) fn next_lease_token(now: i64, lease_nanos: i64, previous: Option<i64>) -> i64 {
    now.saturating_add(lease_nanos)
        .max(previous.map_or(i64::MIN, |p| p.saturating_add(1)))
}

/// A label history row's attempts as stored in `eval_label_runs.attempts`: a JSON array of
/// attempt outcomes (the migration that created the table writes the same shape).
pub(crate) fn encode_attempts(attempts: &[evalmint_model::AttemptOutcome]) -> Result<String> {
    serde_json::to_string(attempts).map_err(internal)
}

pub(crate) fn decode_attempts(text: &str) -> Result<Vec<evalmint_model::AttemptOutcome>> {
    let mut attempts: Vec<evalmint_model::AttemptOutcome> = serde_json::from_str(text)
        .map_err(|e| crate::StoreError::Internal(format!("a label history row: {e}")))?;
    attempts.sort_by_key(|a| a.attempt);
    Ok(attempts)
}
