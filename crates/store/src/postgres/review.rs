//! Review decisions, immutable label versions, releases and evaluation runs on Postgres. A
//! decision takes its investigation's advisory lock, so it and the validator's admission never
//! number a version twice.

use deadpool_postgres::GenericClient;
use evalmint_model::calibration::Observation;
use evalmint_model::release::{self, Production, Release, Traffic};
use evalmint_model::{
    CandidateLabel, DecisionAction, EvalRun, LabelRun, LabelState, LabelVersion, Route, RunStatus,
    Segment, TenantId, TraceId, ValidDecision,
};
use tokio_postgres::types::ToSql;

use super::lock_investigation;
use super::pipeline::StoredResult;
use crate::convert::{internal, nanos, timestamp};
use crate::encoding::{decode, encode};
use crate::labels::{
    check_export, coverage_since, decided_version, item_trace, items_of, release_id, release_of,
    released_item, reviewer_queries, traffic, version_digest,
};
use crate::{DecisionOutcome, ImportError, ReleaseManifest, ReleasedLabel, Result, ReviewQuery};

async fn insert_version(
    db: &impl GenericClient,
    tenant: &TenantId,
    version: &LabelVersion,
) -> Result<()> {
    let decision = version.decision.as_ref();
    let number = i32::try_from(version.version).unwrap_or(i32::MAX);
    db.execute(
        "INSERT INTO label_versions (tenant, trace_id, version, state, candidate_id, decided,
             action, audit, agrees, created_at, digest, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            &tenant.as_str(),
            &&version.investigation_id.as_bytes()[..],
            &number,
            &match version.state {
                LabelState::Active => "active",
                LabelState::Rejected => "rejected",
            },
            &version.candidate_id,
            &decision.is_some(),
            &decision.map(|d| d.action.as_str()),
            &decision.is_some_and(|d| d.audit),
            &decision.and_then(|d| d.agrees_with_validator),
            &nanos(version.created_at),
            &version_digest(version)?,
            &encode(version)?,
        ],
    )
    .await?;
    Ok(())
}

async fn latest_version(
    db: &impl GenericClient,
    tenant: &TenantId,
    trace: TraceId,
) -> Result<Option<LabelVersion>> {
    db.query_opt(
        "SELECT body FROM label_versions WHERE tenant = $1 AND trace_id = $2
         ORDER BY version DESC LIMIT 1",
        &[&tenant.as_str(), &&trace.as_bytes()[..]],
    )
    .await?
    .map(|r| decode(r.get(0)))
    .transpose()
}

/// The validator admitted a candidate: its first label version, unless a reviewer has decided on
/// the label already. The caller holds the investigation's lock.
pub(crate) async fn admit(
    db: &impl GenericClient,
    tenant: &TenantId,
    candidate: &CandidateLabel,
) -> Result<()> {
    let trace = candidate.investigation_id;
    let reviewed: bool = db
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM label_versions
                            WHERE tenant = $1 AND trace_id = $2 AND decided)",
            &[&tenant.as_str(), &&trace.as_bytes()[..]],
        )
        .await?
        .get(0);
    if reviewed {
        return Ok(());
    }
    let next = latest_version(db, tenant, trace)
        .await?
        .map_or(1, |v| v.version + 1);
    insert_version(db, tenant, &LabelVersion::admitted(candidate, next)).await
}

/// Gives version 1 to every admitted label that has no version: candidates the validator admitted
/// before label versions existed (migration 0007), which releases would otherwise leave out. Runs
/// when a store connects; a second run finds nothing to do.
pub(crate) async fn version_unversioned_admissions(db: &impl GenericClient) -> Result<usize> {
    let unversioned = db
        .query(
            "SELECT c.tenant, c.body FROM candidates c
             WHERE c.current AND c.route = 'admit'
               AND NOT EXISTS (SELECT 1 FROM label_versions v
                               WHERE v.tenant = c.tenant AND v.trace_id = c.trace_id)",
            &[],
        )
        .await?;
    for row in &unversioned {
        let tenant = super::tenant_of(row.get(0))?;
        let candidate: CandidateLabel = decode(row.get(1))?;
        insert_version(db, &tenant, &LabelVersion::admitted(&candidate, 1)).await?;
    }
    Ok(unversioned.len())
}

/// The candidate's segments as rows of `candidate_segments`, which the queue's segment filter
/// reads instead of the body.
pub(crate) async fn insert_candidate_segments(
    db: &impl GenericClient,
    tenant: &TenantId,
    candidate: &CandidateLabel,
) -> Result<()> {
    let facets: Vec<&str> = candidate
        .segments
        .iter()
        .map(|s| s.facet.as_str())
        .collect();
    let values: Vec<&str> = candidate
        .segments
        .iter()
        .map(|s| s.value.as_str())
        .collect();
    db.execute(
        "INSERT INTO candidate_segments (tenant, candidate_id, facet, value)
         SELECT $1, $2, facet, value FROM unnest($3::text[], $4::text[]) AS s (facet, value)
         ON CONFLICT DO NOTHING",
        &[&tenant.as_str(), &candidate.id, &facets, &values],
    )
    .await?;
    Ok(())
}

pub(crate) async fn review_queue(
    db: &impl GenericClient,
    tenant: &TenantId,
    query: &ReviewQuery,
) -> Result<(Vec<crate::QueueItem>, u64)> {
    let routes: Vec<&str> = query.routes.iter().map(|r| r.as_str()).collect();
    let facet = query.segment.as_ref().map(|s| s.facet.clone());
    let value = query.segment.as_ref().map(|s| s.value.clone());
    let filter = " FROM candidates c WHERE c.tenant = $1 AND c.current
          AND (c.route IN ('review', 'insufficient') OR c.audit)
          AND NOT EXISTS (SELECT 1 FROM label_versions v
                          WHERE v.tenant = c.tenant AND v.candidate_id = c.id AND v.decided)
          AND (cardinality($2::text[]) = 0 OR c.route = ANY($2))
          AND ($3::text IS NULL OR c.id IN (
                SELECT s.candidate_id FROM candidate_segments s
                WHERE s.tenant = $1 AND s.facet = $3 AND s.value = $4::text))
          AND ($5::float8 IS NULL OR c.lowest_score >= $5)
          AND ($6::float8 IS NULL OR c.lowest_score <= $6)";
    let params: [&(dyn ToSql + Sync); 6] = [
        &tenant.as_str(),
        &routes,
        &facet,
        &value,
        &query.min_score,
        &query.max_score,
    ];
    let total: i64 = db
        .query_one(&format!("SELECT count(*){filter}"), &params)
        .await?
        .get(0);
    let rows = db
        .query(
            &format!(
                "SELECT c.body, (SELECT max(v.version) FROM label_versions v
                                 WHERE v.tenant = c.tenant AND v.trace_id = c.trace_id){filter}
                 ORDER BY c.created_at DESC, c.id COLLATE \"C\" LIMIT {} OFFSET {}",
                query.limit.max(1),
                query.offset
            ),
            &params,
        )
        .await?;
    let items = rows
        .iter()
        .map(|r| {
            Ok(crate::QueueItem {
                candidate: decode(r.get(0))?,
                label_version: r
                    .get::<_, Option<i32>>(1)
                    .and_then(|v| u32::try_from(v).ok())
                    .unwrap_or(0),
            })
        })
        .collect::<Result<_>>()?;
    Ok((items, u64::try_from(total).unwrap_or(0)))
}

pub(crate) async fn decide(
    db: &impl GenericClient,
    tenant: &TenantId,
    candidate_id: &str,
    reviewer: &str,
    decision: ValidDecision,
    now: i64,
) -> Result<DecisionOutcome> {
    let trace = db
        .query_opt(
            "SELECT trace_id FROM candidates WHERE tenant = $1 AND id = $2",
            &[&tenant.as_str(), &candidate_id],
        )
        .await?;
    let Some(trace) = trace else {
        return Ok(DecisionOutcome::NotFound);
    };
    let trace = super::trace_of(trace.get(0))?;
    lock_investigation(db, tenant, trace).await?;
    // Read again under the lock: a new draft may have replaced it meanwhile.
    let row = db
        .query_opt(
            "SELECT body, current FROM candidates WHERE tenant = $1 AND id = $2",
            &[&tenant.as_str(), &candidate_id],
        )
        .await?;
    let Some(row) = row else {
        return Ok(DecisionOutcome::NotFound);
    };
    let candidate: CandidateLabel = decode(row.get(0))?;
    let current: bool = row.get(1);
    let latest = latest_version(db, tenant, trace).await?;
    let current_version = latest.as_ref().map_or(0, |v| v.version);
    if !current || decision.version != current_version {
        let current_candidate = db
            .query_opt(
                "SELECT id FROM candidates WHERE tenant = $1 AND trace_id = $2 AND current",
                &[&tenant.as_str(), &&trace.as_bytes()[..]],
            )
            .await?
            .map(|r| r.get(0))
            .unwrap_or_default();
        return Ok(DecisionOutcome::Stale {
            current_version,
            current_candidate,
        });
    }
    let version = match decided_version(&candidate, latest, decision, reviewer, timestamp(now)) {
        Ok(version) => version,
        Err(problems) => return Ok(DecisionOutcome::Invalid(problems)),
    };
    super::pipeline::plan_snapshot(db, tenant, trace, &reviewer_queries(&version), now).await?;
    insert_version(db, tenant, &version).await?;
    Ok(DecisionOutcome::Recorded(Box::new(version)))
}

fn decode_all(rows: &[tokio_postgres::Row]) -> Result<Vec<LabelVersion>> {
    rows.iter().map(|r| decode(r.get(0))).collect()
}

pub(crate) async fn label_versions(
    db: &impl GenericClient,
    tenant: &TenantId,
    trace: TraceId,
) -> Result<Vec<LabelVersion>> {
    let rows = db
        .query(
            "SELECT body FROM label_versions WHERE tenant = $1 AND trace_id = $2 ORDER BY version",
            &[&tenant.as_str(), &&trace.as_bytes()[..]],
        )
        .await?;
    decode_all(&rows)
}

pub(crate) async fn current_labels(
    db: &impl GenericClient,
    tenant: &TenantId,
    filters: &[Segment],
) -> Result<Vec<LabelVersion>> {
    let rows = db
        .query(
            "SELECT v.body FROM label_versions v
             WHERE v.tenant = $1 AND v.state = 'active'
               AND v.version = (SELECT max(w.version) FROM label_versions w
                                WHERE w.tenant = v.tenant AND w.trace_id = v.trace_id)
             ORDER BY v.trace_id",
            &[&tenant.as_str()],
        )
        .await?;
    let mut labels = decode_all(&rows)?;
    labels.retain(|l| release::matches(&l.segments, filters));
    labels.sort_by(|a, b| a.label_id.cmp(&b.label_id));
    Ok(labels)
}

pub(crate) async fn calibration_observations(
    db: &impl GenericClient,
    tenant: &TenantId,
) -> Result<Vec<Observation>> {
    let rows = db
        .query(
            "SELECT body FROM label_versions WHERE tenant = $1 AND decided
             ORDER BY created_at, trace_id, version",
            &[&tenant.as_str()],
        )
        .await?;
    Ok(decode_all(&rows)?
        .into_iter()
        .filter_map(|v| {
            let d = v.decision?;
            Some(Observation {
                scores: [
                    v.scores.specificity.value,
                    v.scores.accuracy.value,
                    v.scores.thoroughness.value,
                ],
                admitted: d.candidate_route == Route::Admit,
                audit: d.audit,
                accepted: d.action == DecisionAction::Approve,
            })
        })
        .collect())
}

/// The tenant's current candidates created from the earliest of `labels` to `until`, which a
/// release's coverage counts.
async fn traffic_of(
    db: &impl GenericClient,
    tenant: &TenantId,
    labels: &[LabelVersion],
    until: i64,
) -> Result<Vec<Traffic>> {
    db.query(
        "SELECT id, trace_id, (body::jsonb -> 'segments')::text FROM candidates
         WHERE tenant = $1 AND current AND created_at >= $2 AND created_at <= $3",
        &[&tenant.as_str(), &coverage_since(labels), &until],
    )
    .await?
    .iter()
    .map(|r| traffic(r.get(0), r.get(1), r.get(2)))
    .collect()
}

/// Every investigation of the tenant first seen from the earliest of `labels` to `until`.
async fn production_of(
    db: &impl GenericClient,
    tenant: &TenantId,
    labels: &[LabelVersion],
    until: i64,
) -> Result<Production> {
    let since = coverage_since(labels);
    let period: [&(dyn ToSql + Sync); 3] = [&tenant.as_str(), &since, &until];
    let totals = db
        .query_one(
            "SELECT count(*),
                    count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM feedback f
                                                       WHERE f.tenant = i.tenant
                                                         AND f.investigation_id = i.trace_id))
             FROM investigations i
             WHERE i.tenant = $1 AND i.first_seen >= $2 AND i.first_seen <= $3",
            &period,
        )
        .await?;
    let by_agent_version = db
        .query(
            "SELECT agent_version, count(*) FROM investigations
             WHERE tenant = $1 AND first_seen >= $2 AND first_seen <= $3
               AND agent_version IS NOT NULL
             GROUP BY agent_version ORDER BY agent_version COLLATE \"C\"",
            &period,
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
        .collect();
    Ok(Production {
        investigations: totals.get::<_, i64>(0) as u64,
        without_feedback: totals.get::<_, i64>(1) as u64,
        by_agent_version,
    })
}

/// Stores a release and its items; when another process stored the same release (same id)
/// first, returns that one and false.
async fn store_release(
    db: &impl GenericClient,
    tenant: &TenantId,
    manifest: &ReleaseManifest,
    labels: &[LabelVersion],
    now: i64,
) -> Result<(Release, bool)> {
    let until = now.max(nanos(manifest.created_at));
    let traffic = traffic_of(db, tenant, labels, until).await?;
    let production = production_of(db, tenant, labels, until).await?;
    let release = release_of(manifest, labels, &traffic, &production);
    let inserted = db
        .execute(
            "INSERT INTO releases (tenant, id, created_at, body) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant, id) DO NOTHING",
            &[
                &tenant.as_str(),
                &release.id,
                &nanos(release.created_at),
                &encode(&release)?,
            ],
        )
        .await?;
    if inserted == 0 {
        let existing = self::release(db, tenant, &release.id)
            .await?
            .ok_or_else(|| crate::StoreError::Internal("a stored release vanished".into()))?;
        return Ok((existing, false));
    }
    let mut traces = Vec::with_capacity(manifest.items.len());
    for item in &manifest.items {
        traces.push(item_trace(item)?.as_bytes().to_vec());
    }
    let versions: Vec<i32> = manifest
        .items
        .iter()
        .map(|i| i32::try_from(i.version).unwrap_or(i32::MAX))
        .collect();
    let digests: Vec<&str> = manifest.items.iter().map(|i| i.digest.as_str()).collect();
    let erased_at: Vec<Option<i64>> = manifest
        .items
        .iter()
        .map(|i| i.erased.then_some(now))
        .collect();
    db.execute(
        "INSERT INTO release_items (tenant, release_id, trace_id, version, digest, erased_at)
         SELECT $1, $2, t, v, d, e
         FROM unnest($3::bytea[], $4::int4[], $5::text[], $6::int8[]) AS i (t, v, d, e)",
        &[
            &tenant.as_str(),
            &release.id,
            &traces,
            &versions,
            &digests,
            &erased_at,
        ],
    )
    .await?;
    Ok((release, true))
}

pub(crate) async fn create_release(
    db: &impl GenericClient,
    tenant: &TenantId,
    name: &str,
    filters: Vec<Segment>,
    now: i64,
) -> Result<(Release, bool)> {
    let labels = current_labels(db, tenant, &filters).await?;
    let items = items_of(&labels)?;
    let id = release_id(&items);
    if let Some(existing) = release(db, tenant, &id).await? {
        return Ok((existing, false));
    }
    let manifest = ReleaseManifest {
        id,
        name: name.to_owned(),
        created_at: timestamp(now),
        filters,
        items,
    };
    store_release(db, tenant, &manifest, &labels, now).await
}

/// A release's body with the count of its items erased since it was made, read in the same
/// statement.
const RELEASE_WITH_ERASURES: &str = "SELECT body, (SELECT count(*) FROM release_items i
                   WHERE i.tenant = r.tenant AND i.release_id = r.id
                     AND i.erased_at IS NOT NULL)
     FROM releases r";

/// The release as shown: its stored body and how many of its items were erased since.
fn release_with_erasures(row: &tokio_postgres::Row) -> Result<Release> {
    let mut release: Release = decode(row.get(0))?;
    release.erased = row.get::<_, i64>(1) as u64;
    Ok(release)
}

pub(crate) async fn releases(db: &impl GenericClient, tenant: &TenantId) -> Result<Vec<Release>> {
    db.query(
        &format!(
            "{RELEASE_WITH_ERASURES} WHERE r.tenant = $1
             ORDER BY r.created_at DESC, r.id COLLATE \"C\""
        ),
        &[&tenant.as_str()],
    )
    .await?
    .iter()
    .map(release_with_erasures)
    .collect()
}

pub(crate) async fn release(
    db: &impl GenericClient,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<Release>> {
    db.query_opt(
        &format!("{RELEASE_WITH_ERASURES} WHERE r.tenant = $1 AND r.id = $2"),
        &[&tenant.as_str(), &id],
    )
    .await?
    .as_ref()
    .map(release_with_erasures)
    .transpose()
}

/// A release's labels with where each of their frozen results is (read by the caller).
type LabelsWithResults = (
    ReleaseManifest,
    Vec<LabelVersion>,
    Vec<Vec<(String, StoredResult)>>,
);

pub(crate) async fn release_labels(
    db: &impl GenericClient,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<LabelsWithResults>> {
    let Some(release) = release(db, tenant, id).await? else {
        return Ok(None);
    };
    let rows = db
        .query(
            "SELECT i.trace_id, i.version, i.digest, i.erased_at IS NOT NULL, v.body
             FROM release_items i
             LEFT JOIN label_versions v ON v.tenant = i.tenant AND v.trace_id = i.trace_id
                                       AND v.version = i.version
             WHERE i.tenant = $1 AND i.release_id = $2",
            &[&tenant.as_str(), &id],
        )
        .await?;
    let mut items = Vec::with_capacity(rows.len());
    let mut labels = Vec::with_capacity(rows.len());
    for row in &rows {
        let trace = TraceId::from_bytes(row.get(0)).map_err(internal)?;
        let version = u32::try_from(row.get::<_, i32>(1)).map_err(internal)?;
        let erased: bool = row.get(3);
        let body: Option<&str> = row.get(4);
        items.push(released_item(
            trace,
            version,
            row.get(2),
            erased,
            body.is_some(),
        )?);
        if let Some(body) = body.filter(|_| !erased) {
            labels.push(decode::<LabelVersion>(body)?);
        }
    }
    items.sort();
    labels.sort_by(|a, b| a.label_id.cmp(&b.label_id));
    let mut stored = Vec::with_capacity(labels.len());
    for label in &labels {
        let mut results = Vec::new();
        for query in &label.snapshot {
            if let Some(result) =
                super::pipeline::snapshot_result(db, tenant, label.investigation_id, &query.id)
                    .await?
            {
                results.push((query.id.clone(), result));
            }
        }
        stored.push(results);
    }
    let manifest = ReleaseManifest {
        items,
        id: release.id,
        name: release.name,
        created_at: release.created_at,
        filters: release.filters,
    };
    Ok(Some((manifest, labels, stored)))
}

/// Stores an exported release; `stored` says where each label's results were put (inline or a
/// blob already in the blob store), in the order of `labels`.
pub(crate) async fn import_release(
    db: &impl GenericClient,
    tenant: &TenantId,
    manifest: ReleaseManifest,
    labels: Vec<ReleasedLabel>,
    stored: Vec<Vec<(String, StoredResult)>>,
    now: i64,
) -> Result<std::result::Result<Release, ImportError>> {
    let versions: Vec<LabelVersion> = labels.iter().map(|l| l.label.clone()).collect();
    if let Err(refused) = check_export(&manifest, &versions)? {
        return Ok(Err(refused));
    }
    if let Some(existing) = release(db, tenant, &manifest.id).await? {
        return Ok(Ok(existing));
    }
    for (label, results) in labels.iter().zip(&stored) {
        let version = &label.label;
        lock_investigation(db, tenant, version.investigation_id).await?;
        let trace = &version.investigation_id.as_bytes()[..];
        let number = i32::try_from(version.version).unwrap_or(i32::MAX);
        let existing: Option<String> = db
            .query_opt(
                "SELECT digest FROM label_versions
                 WHERE tenant = $1 AND trace_id = $2 AND version = $3",
                &[&tenant.as_str(), &trace, &number],
            )
            .await?
            .map(|r| r.get(0));
        let digest = version_digest(version)?;
        match existing {
            Some(d) if d == digest => {}
            Some(_) => {
                return Ok(Err(ImportError::Conflict(format!(
                    "{} version {} already exists here with different content",
                    version.label_id, version.version
                ))));
            }
            None => insert_version(db, tenant, version).await?,
        }
        for query in &version.snapshot {
            let (inline, blob) = match results.iter().find(|(id, _)| *id == query.id) {
                Some((_, StoredResult::Inline(bytes))) => (Some(bytes.clone()), None),
                Some((_, StoredResult::Blob(digest))) => (None, Some(digest.clone())),
                None => (None, None),
            };
            db.execute(
                "INSERT INTO snapshot_queries
                     (tenant, trace_id, query_id, deadline, status, planned_at, due_at,
                      result_blob, result_inline, body)
                 VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9)
                 ON CONFLICT (tenant, trace_id, query_id) DO NOTHING",
                &[
                    &tenant.as_str(),
                    &trace,
                    &query.id,
                    &nanos(query.deadline),
                    &query.status.as_str(),
                    &nanos(query.planned_at),
                    &blob,
                    &inline,
                    &encode(query)?,
                ],
            )
            .await?;
        }
    }
    let (release, _) = store_release(db, tenant, &manifest, &versions, now).await?;
    Ok(Ok(release))
}

pub(crate) async fn store_eval_run(
    db: &impl GenericClient,
    tenant: &TenantId,
    run: &EvalRun,
) -> Result<()> {
    let status = match run.status {
        RunStatus::Completed => "completed",
        RunStatus::Failed => "failed",
    };
    db.execute(
        "INSERT INTO eval_runs (tenant, id, started_at, agent, status, body)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (tenant, id) DO UPDATE SET
             started_at = excluded.started_at, agent = excluded.agent,
             status = excluded.status, body = excluded.body",
        &[
            &tenant.as_str(),
            &run.id,
            &nanos(run.started_at),
            &run.agent,
            &status,
            &encode(run)?,
        ],
    )
    .await?;
    db.execute(
        "DELETE FROM eval_label_runs WHERE tenant = $1 AND run_id = $2",
        &[&tenant.as_str(), &run.id],
    )
    .await?;
    for (label_id, entry) in run.label_runs() {
        let version = i32::try_from(entry.label_version).unwrap_or(i32::MAX);
        db.execute(
            "INSERT INTO eval_label_runs
                 (tenant, label_id, started_at, run_id, agent, label_source, label_version,
                  attempts)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &tenant.as_str(),
                &label_id,
                &nanos(entry.started_at),
                &entry.run_id,
                &entry.agent,
                &entry.label_source,
                &version,
                &crate::labels::encode_attempts(&entry.attempts)?,
            ],
        )
        .await?;
    }
    Ok(())
}

pub(crate) async fn label_history(
    db: &impl GenericClient,
    tenant: &TenantId,
    label_id: &str,
    limit: usize,
) -> Result<Vec<LabelRun>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    db.query(
        "SELECT run_id, agent, label_source, started_at, label_version, attempts
         FROM eval_label_runs WHERE tenant = $1 AND label_id = $2
         ORDER BY started_at DESC, run_id COLLATE \"C\" DESC LIMIT $3",
        &[&tenant.as_str(), &label_id, &limit],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(LabelRun {
            run_id: r.get(0),
            agent: r.get(1),
            label_source: r.get(2),
            started_at: timestamp(r.get(3)),
            label_version: u32::try_from(r.get::<_, i32>(4)).unwrap_or(0),
            attempts: crate::labels::decode_attempts(r.get(5))?,
        })
    })
    .collect()
}

pub(crate) async fn eval_run(
    db: &impl GenericClient,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<EvalRun>> {
    db.query_opt(
        "SELECT body FROM eval_runs WHERE tenant = $1 AND id = $2",
        &[&tenant.as_str(), &id],
    )
    .await?
    .map(|r| decode(r.get(0)))
    .transpose()
}

pub(crate) async fn eval_runs(
    db: &impl GenericClient,
    tenant: &TenantId,
    limit: usize,
) -> Result<Vec<EvalRun>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    db.query(
        "SELECT body FROM eval_runs WHERE tenant = $1
         ORDER BY started_at DESC, id COLLATE \"C\" DESC LIMIT $2",
        &[&tenant.as_str(), &limit],
    )
    .await?
    .iter()
    .map(|r| decode(r.get(0)))
    .collect()
}
