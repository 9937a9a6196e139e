//! Where a run's label versions come from. A run reads "a list of label versions (label id,
//! version, snapshot, ground truth)": the current admitted label set, or a release's pinned
//! label versions (`release_labels`). Either way a label is named by its label id
//! (`lbl-<trace id>`, as label versions and releases name it), so runs over either source pair
//! on the same labels.

use std::sync::Arc;

use evalmint_model::{CandidateLabel, Catalog, GroundTruth, Route, Segment, TenantId};
use evalmint_store::{CandidateQuery, PipelineStore, ReleasedLabel, ReviewStore};

use crate::world::ReplayWorld;

/// One label version as a run uses it. The world goes to the session; the ground truth stays
/// with the graders.
#[derive(Debug, Clone)]
pub struct LabelVersion {
    pub label_id: String,
    pub version: u32,
    pub world: Arc<ReplayWorld>,
    pub ground_truth: Option<GroundTruth>,
    pub segments: Vec<Segment>,
}

/// The label source of a run over the admitted set; a run over a release records its id.
pub const ADMITTED: &str = "admitted";

/// The most labels a run reads from the admitted set.
const MAX_LABELS: usize = 100_000;

/// Builds a label version from a stored candidate, reading its frozen results. `version` is the
/// label version the candidate stands for.
pub async fn from_candidate(
    store: &dyn PipelineStore,
    tenant: &TenantId,
    label: CandidateLabel,
    version: u32,
) -> evalmint_store::Result<LabelVersion> {
    let mut snapshot = Vec::with_capacity(label.snapshot.len());
    for query in label.snapshot {
        if !query.status.has_result() {
            continue;
        }
        if let Some(bytes) = store
            .snapshot_result(tenant, label.investigation_id, &query.id)
            .await?
        {
            snapshot.push((query, bytes));
        }
    }
    Ok(LabelVersion {
        label_id: evalmint_model::label_id(label.investigation_id),
        version,
        world: Arc::new(ReplayWorld::new(label.trigger, snapshot)),
        ground_truth: label.ground_truth,
        segments: label.segments,
    })
}

/// The tenant's admitted labels, current versions. Each is graded as the label version its
/// candidate made (the validator's admission writes one); when a reviewer's version stands
/// instead, as the label's latest version.
pub async fn admitted(
    store: &dyn ReviewStore,
    tenant: &TenantId,
) -> evalmint_store::Result<Vec<LabelVersion>> {
    let candidates = store
        .candidates(
            tenant,
            CandidateQuery {
                routes: vec![Route::Admit],
                audit_only: false,
                limit: MAX_LABELS,
            },
        )
        .await?;
    let mut labels = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        let versions = store
            .label_versions(tenant, candidate.investigation_id)
            .await?;
        let version = versions
            .iter()
            .rev()
            .find(|v| v.candidate_id == candidate.id)
            .or(versions.last())
            .map_or(candidate.version, |v| v.version);
        labels.push(from_candidate(store, tenant, candidate, version).await?);
    }
    labels.sort_by(|a, b| a.label_id.cmp(&b.label_id));
    Ok(labels)
}

/// The catalog the graders read aliases from.
pub async fn catalog(
    store: &dyn PipelineStore,
    tenant: &TenantId,
) -> evalmint_store::Result<Catalog> {
    store.catalog(tenant).await
}

/// The label versions of release `id` as it pinned them, or None when the tenant has no such
/// release. The trigger comes from the version's candidate when the store still has it (an
/// imported release's labels may have none).
pub async fn release(
    store: &dyn ReviewStore,
    tenant: &TenantId,
    id: &str,
) -> evalmint_store::Result<Option<Vec<LabelVersion>>> {
    let Some((_, released)) = store.release_labels(tenant, id).await? else {
        return Ok(None);
    };
    let mut labels = Vec::with_capacity(released.len());
    for ReleasedLabel { label, results } in released {
        let trigger = store
            .candidate(tenant, &label.candidate_id)
            .await?
            .and_then(|candidate| candidate.trigger);
        let mut results: std::collections::HashMap<String, Vec<u8>> = results.into_iter().collect();
        let snapshot = label
            .snapshot
            .into_iter()
            .filter_map(|query| {
                let bytes = results.remove(&query.id)?;
                Some((query, bytes))
            })
            .collect();
        labels.push(LabelVersion {
            label_id: label.label_id,
            version: label.version,
            world: Arc::new(ReplayWorld::new(trigger, snapshot)),
            ground_truth: label.ground_truth,
            segments: label.segments,
        });
    }
    labels.sort_by(|a, b| a.label_id.cmp(&b.label_id));
    Ok(Some(labels))
}
