//! Where a run's label versions come from. A run reads "a list of label versions (label id,
//! version, snapshot, ground truth)"; today the admitted label set is the one source, a release
//! will be another.

use std::sync::Arc;

use evalmint_model::{CandidateLabel, Catalog, GroundTruth, Route, Segment, TenantId};
use evalmint_store::{CandidateQuery, PipelineStore};

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

/// The most labels a run reads from the admitted set.
const MAX_LABELS: usize = 100_000;

/// Builds a label version from a stored candidate, reading its frozen results.
pub async fn from_candidate(
    store: &dyn PipelineStore,
    tenant: &TenantId,
    label: CandidateLabel,
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
        label_id: label.id,
        version: label.version,
        world: Arc::new(ReplayWorld::new(label.trigger, snapshot)),
        ground_truth: label.ground_truth,
        segments: label.segments,
    })
}

/// The tenant's admitted labels, current versions.
pub async fn admitted(
    store: &dyn PipelineStore,
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
        labels.push(from_candidate(store, tenant, candidate).await?);
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
