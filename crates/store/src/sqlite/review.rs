//! Review decisions, immutable label versions and releases: the tables of migration 0007.

use evalmint_model::calibration::Observation;
use evalmint_model::release::{self, Production, Release, Traffic};
use evalmint_model::{
    CandidateLabel, DecisionAction, LabelState, LabelVersion, Route, Segment, TenantId, TraceId,
    ValidDecision,
};
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{internal, nanos, timestamp};
use super::writer::WriteContext;
use crate::labels::{
    check_export, coverage_since, decided_version, item_trace, items_of, release_id, release_of,
    released_item, reviewer_queries, traffic, version_digest,
};
use crate::{
    BlobStore, DecisionOutcome, ImportError, ReleaseManifest, ReleasedLabel, Result, ReviewQuery,
};

fn insert_version(conn: &Connection, tenant: &TenantId, version: &LabelVersion) -> Result<()> {
    let decision = version.decision.as_ref();
    conn.prepare_cached(
        "INSERT INTO label_versions (tenant, trace_id, version, state, candidate_id, decided,
             action, audit, agrees, created_at, digest, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        tenant.as_str(),
        &version.investigation_id.as_bytes()[..],
        version.version,
        match version.state {
            LabelState::Active => "active",
            LabelState::Rejected => "rejected",
        },
        version.candidate_id,
        decision.is_some(),
        decision.map(|d| d.action.as_str()),
        decision.is_some_and(|d| d.audit),
        decision.and_then(|d| d.agrees_with_validator),
        nanos(version.created_at),
        version_digest(version)?,
        crate::encoding::encode(version)?
    ])?;
    Ok(())
}

fn latest_version(
    conn: &Connection,
    tenant: &TenantId,
    trace: TraceId,
) -> Result<Option<LabelVersion>> {
    conn.prepare_cached(
        "SELECT body FROM label_versions WHERE tenant = ?1 AND trace_id = ?2
         ORDER BY version DESC LIMIT 1",
    )?
    .query_row(params![tenant.as_str(), &trace.as_bytes()[..]], |r| {
        r.get::<_, String>(0)
    })
    .optional()?
    .map(|b| crate::encoding::decode(&b))
    .transpose()
}

/// Called when the validator admits a candidate: its first label version, unless a reviewer has
/// decided on the label already (a reviewer's version is never superseded by the validator).
pub(crate) fn admit(
    conn: &Connection,
    tenant: &TenantId,
    candidate: &CandidateLabel,
) -> Result<()> {
    let trace = candidate.investigation_id;
    let reviewed: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM label_versions
                            WHERE tenant = ?1 AND trace_id = ?2 AND decided = 1)",
        )?
        .query_row(params![tenant.as_str(), &trace.as_bytes()[..]], |r| {
            r.get(0)
        })?;
    if reviewed {
        return Ok(());
    }
    let next = latest_version(conn, tenant, trace)?.map_or(1, |v| v.version + 1);
    insert_version(conn, tenant, &LabelVersion::admitted(candidate, next))
}

/// Gives version 1 to every admitted label that has no version: candidates the validator admitted
/// before label versions existed (migration 0007), which releases would otherwise leave out. Runs
/// when the store opens, before anything else writes; a second run finds nothing to do.
pub(crate) fn version_unversioned_admissions(conn: &mut Connection) -> Result<usize> {
    let tx = conn.transaction()?;
    let unversioned: Vec<(String, String)> = tx
        .prepare(
            "SELECT c.tenant, c.body FROM candidates c
             WHERE c.current = 1 AND c.route = 'admit'
               AND NOT EXISTS (SELECT 1 FROM label_versions v
                               WHERE v.tenant = c.tenant AND v.trace_id = c.trace_id)",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (tenant, body) in &unversioned {
        let tenant = TenantId::new(tenant).map_err(internal)?;
        let candidate: CandidateLabel = crate::encoding::decode(body)?;
        insert_version(&tx, &tenant, &LabelVersion::admitted(&candidate, 1))?;
    }
    tx.commit()?;
    Ok(unversioned.len())
}

/// Label versions of withdrawn candidate versions go with them (erasure); the releases that
/// selected one keep its item, marked erased at `now`.
pub(crate) fn delete_versions_of_candidate(
    conn: &Connection,
    tenant: &TenantId,
    candidate_id: &str,
    now: i64,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE release_items SET erased_at = ?3
         WHERE tenant = ?1 AND erased_at IS NULL
           AND (trace_id, version) IN (SELECT trace_id, version FROM label_versions
                                       WHERE tenant = ?1 AND candidate_id = ?2)",
    )?
    .execute(params![tenant.as_str(), candidate_id, now])?;
    conn.prepare_cached("DELETE FROM label_versions WHERE tenant = ?1 AND candidate_id = ?2")?
        .execute(params![tenant.as_str(), candidate_id])?;
    Ok(())
}

/// The candidate's segments as rows of `candidate_segments`, which the queue's segment filter
/// reads instead of the body.
pub(crate) fn insert_candidate_segments(
    conn: &Connection,
    tenant: &TenantId,
    candidate: &CandidateLabel,
) -> Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO candidate_segments (tenant, candidate_id, facet, value)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for segment in &candidate.segments {
        insert.execute(params![
            tenant.as_str(),
            candidate.id,
            segment.facet,
            segment.value
        ])?;
    }
    Ok(())
}

pub(crate) fn review_queue(
    conn: &Connection,
    tenant: &TenantId,
    query: &ReviewQuery,
) -> Result<(Vec<crate::QueueItem>, u64)> {
    // Without `INDEXED BY` the planner scans the tenant's versions for every candidate, and
    // prefers the route index, which sends it to every candidate's row for the rest.
    let mut filter = String::from(
        " FROM candidates c INDEXED BY candidates_review_queue
          WHERE c.tenant = ?1 AND c.current = 1
          AND (c.route IN ('review', 'insufficient') OR c.audit = 1)
          AND NOT EXISTS (SELECT 1 FROM label_versions v INDEXED BY label_versions_by_candidate
                          WHERE v.tenant = c.tenant AND v.candidate_id = c.id AND v.decided = 1)",
    );
    let mut values: Vec<rusqlite::types::Value> = vec![tenant.as_str().to_owned().into()];
    let push = |values: &mut Vec<rusqlite::types::Value>, v: rusqlite::types::Value| {
        values.push(v);
        format!("?{}", values.len())
    };
    if !query.routes.is_empty() {
        let routes: Vec<String> = query
            .routes
            .iter()
            .map(|r| push(&mut values, r.as_str().to_owned().into()))
            .collect();
        filter += &format!(" AND c.route IN ({})", routes.join(", "));
    }
    if let Some(segment) = &query.segment {
        let facet = push(&mut values, segment.facet.clone().into());
        let value = push(&mut values, segment.value.clone().into());
        filter += &format!(
            " AND c.id IN (SELECT s.candidate_id FROM candidate_segments s
                           WHERE s.tenant = ?1 AND s.facet = {facet} AND s.value = {value})"
        );
    }
    if let Some(min) = query.min_score {
        filter += &format!(" AND c.lowest_score >= {}", push(&mut values, min.into()));
    }
    if let Some(max) = query.max_score {
        filter += &format!(" AND c.lowest_score <= {}", push(&mut values, max.into()));
    }
    let total: i64 = conn
        .prepare_cached(&format!("SELECT count(*){filter}"))?
        .query_row(rusqlite::params_from_iter(values.iter()), |r| r.get(0))?;
    // Ids first, bodies after: sorting only ids and times keeps the bodies out of the sorter.
    let sql = format!(
        "SELECT c.id, (SELECT max(v.version) FROM label_versions v
                       WHERE v.tenant = c.tenant AND v.trace_id = c.trace_id){filter}
         ORDER BY c.created_at DESC, c.id LIMIT {} OFFSET {}",
        query.limit.max(1),
        query.offset
    );
    let rows: Vec<(String, Option<u32>)> = conn
        .prepare_cached(&sql)?
        .query_map(rusqlite::params_from_iter(values.iter()), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut body =
        conn.prepare_cached("SELECT body FROM candidates WHERE tenant = ?1 AND id = ?2")?;
    let candidates = rows
        .iter()
        .map(|(id, version)| {
            let text: String = body.query_row(params![tenant.as_str(), id], |r| r.get(0))?;
            Ok(crate::QueueItem {
                candidate: crate::encoding::decode(&text)?,
                label_version: version.unwrap_or(0),
            })
        })
        .collect::<Result<_>>()?;
    Ok((candidates, u64::try_from(total).unwrap_or(0)))
}

fn current_candidate_id(conn: &Connection, tenant: &TenantId, trace: TraceId) -> Result<String> {
    Ok(conn
        .prepare_cached(
            "SELECT id FROM candidates WHERE tenant = ?1 AND trace_id = ?2 AND current = 1",
        )?
        .query_row(params![tenant.as_str(), &trace.as_bytes()[..]], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or_default())
}

pub(crate) fn decide(
    conn: &Connection,
    context: &mut WriteContext<'_>,
    tenant: &TenantId,
    candidate_id: &str,
    reviewer: &str,
    decision: ValidDecision,
) -> Result<DecisionOutcome> {
    let row: Option<(String, bool)> = conn
        .prepare_cached("SELECT body, current FROM candidates WHERE tenant = ?1 AND id = ?2")?
        .query_row(params![tenant.as_str(), candidate_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let Some((body, current)) = row else {
        return Ok(DecisionOutcome::NotFound);
    };
    let candidate: CandidateLabel = crate::encoding::decode(&body)?;
    let trace = candidate.investigation_id;
    let latest = latest_version(conn, tenant, trace)?;
    let current_version = latest.as_ref().map_or(0, |v| v.version);
    if !current || decision.version != current_version {
        return Ok(DecisionOutcome::Stale {
            current_version,
            current_candidate: current_candidate_id(conn, tenant, trace)?,
        });
    }
    let version = match decided_version(
        &candidate,
        latest,
        decision,
        reviewer,
        timestamp(context.now),
    ) {
        Ok(version) => version,
        Err(problems) => return Ok(DecisionOutcome::Invalid(problems)),
    };
    super::pipeline::plan_snapshot(conn, tenant, trace, reviewer_queries(&version), context.now)?;
    insert_version(conn, tenant, &version)?;
    Ok(DecisionOutcome::Recorded(Box::new(version)))
}

fn decode_all(bodies: Vec<String>) -> Result<Vec<LabelVersion>> {
    bodies.iter().map(|b| crate::encoding::decode(b)).collect()
}

pub(crate) fn label_versions(
    conn: &Connection,
    tenant: &TenantId,
    trace: TraceId,
) -> Result<Vec<LabelVersion>> {
    let bodies = conn
        .prepare_cached(
            "SELECT body FROM label_versions WHERE tenant = ?1 AND trace_id = ?2 ORDER BY version",
        )?
        .query_map(params![tenant.as_str(), &trace.as_bytes()[..]], |r| {
            r.get(0)
        })?
        .collect::<rusqlite::Result<_>>()?;
    decode_all(bodies)
}

pub(crate) fn current_labels(
    conn: &Connection,
    tenant: &TenantId,
    filters: &[Segment],
) -> Result<Vec<LabelVersion>> {
    let bodies = conn
        .prepare_cached(
            "SELECT v.body FROM label_versions v
             WHERE v.tenant = ?1 AND v.state = 'active'
               AND v.version = (SELECT max(w.version) FROM label_versions w
                                WHERE w.tenant = v.tenant AND w.trace_id = v.trace_id)
             ORDER BY v.trace_id",
        )?
        .query_map([tenant.as_str()], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut labels = decode_all(bodies)?;
    labels.retain(|l| release::matches(&l.segments, filters));
    labels.sort_by(|a, b| a.label_id.cmp(&b.label_id));
    Ok(labels)
}

pub(crate) fn calibration_observations(
    conn: &Connection,
    tenant: &TenantId,
) -> Result<Vec<Observation>> {
    let bodies = conn
        .prepare_cached(
            "SELECT body FROM label_versions WHERE tenant = ?1 AND decided = 1
             ORDER BY created_at, trace_id, version",
        )?
        .query_map([tenant.as_str()], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(decode_all(bodies)?
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
fn traffic_of(
    conn: &Connection,
    tenant: &TenantId,
    labels: &[LabelVersion],
    until: i64,
) -> Result<Vec<Traffic>> {
    let since = coverage_since(labels);
    let rows: Vec<(String, Vec<u8>, String)> = conn
        .prepare_cached(
            "SELECT id, trace_id, json_extract(body, '$.segments') FROM candidates
             WHERE tenant = ?1 AND current = 1 AND created_at >= ?2 AND created_at <= ?3",
        )?
        .query_map(params![tenant.as_str(), since, until], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    rows.into_iter()
        .map(|(id, trace, segments)| traffic(id, &trace, &segments))
        .collect()
}

/// Every investigation of the tenant first seen from the earliest of `labels` to `until`.
fn production_of(
    conn: &Connection,
    tenant: &TenantId,
    labels: &[LabelVersion],
    until: i64,
) -> Result<Production> {
    let period = params![tenant.as_str(), coverage_since(labels), until];
    let (investigations, without_feedback): (i64, i64) = conn
        .prepare_cached(
            "SELECT count(*),
                    coalesce(sum(NOT EXISTS (SELECT 1 FROM feedback f
                                             WHERE f.tenant = i.tenant
                                               AND f.investigation_id = i.trace_id)), 0)
             FROM investigations i
             WHERE i.tenant = ?1 AND i.first_seen >= ?2 AND i.first_seen <= ?3",
        )?
        .query_row(period, |r| Ok((r.get(0)?, r.get(1)?)))?;
    let by_agent_version = conn
        .prepare_cached(
            "SELECT agent_version, count(*) FROM investigations
             WHERE tenant = ?1 AND first_seen >= ?2 AND first_seen <= ?3
               AND agent_version IS NOT NULL
             GROUP BY agent_version ORDER BY agent_version",
        )?
        .query_map(period, |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Production {
        investigations: investigations as u64,
        without_feedback: without_feedback as u64,
        by_agent_version,
    })
}

fn store_release(
    conn: &Connection,
    tenant: &TenantId,
    manifest: &ReleaseManifest,
    labels: &[LabelVersion],
    now: i64,
) -> Result<Release> {
    let until = now.max(nanos(manifest.created_at));
    let traffic = traffic_of(conn, tenant, labels, until)?;
    let production = production_of(conn, tenant, labels, until)?;
    let release = release_of(manifest, labels, &traffic, &production);
    conn.prepare_cached(
        "INSERT INTO releases (tenant, id, created_at, body) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        tenant.as_str(),
        release.id,
        nanos(release.created_at),
        crate::encoding::encode(&release)?
    ])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO release_items (tenant, release_id, trace_id, version, digest, erased_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for item in &manifest.items {
        insert.execute(params![
            tenant.as_str(),
            release.id,
            &item_trace(item)?.as_bytes()[..],
            item.version,
            item.digest,
            item.erased.then_some(now),
        ])?;
    }
    Ok(release)
}

pub(crate) fn create_release(
    conn: &Connection,
    context: &WriteContext<'_>,
    tenant: &TenantId,
    name: &str,
    filters: Vec<Segment>,
) -> Result<(Release, bool)> {
    let labels = current_labels(conn, tenant, &filters)?;
    let items = items_of(&labels)?;
    let id = release_id(&items);
    if let Some(existing) = release(conn, tenant, &id)? {
        return Ok((existing, false));
    }
    let manifest = ReleaseManifest {
        id,
        name: name.to_owned(),
        created_at: timestamp(context.now),
        filters,
        items,
    };
    Ok((
        store_release(conn, tenant, &manifest, &labels, context.now)?,
        true,
    ))
}

/// A release's body with the count of its items erased since it was made, read in the same
/// statement.
const RELEASE_WITH_ERASURES: &str = "SELECT body, (SELECT count(*) FROM release_items i
                   WHERE i.tenant = r.tenant AND i.release_id = r.id
                     AND i.erased_at IS NOT NULL)
     FROM releases r";

fn read_release(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, i64)> {
    Ok((row.get(0)?, row.get(1)?))
}

/// The release as shown: its stored body and how many of its items were erased since.
fn release_with_erasures((body, erased): (String, i64)) -> Result<Release> {
    let mut release: Release = crate::encoding::decode(&body)?;
    release.erased = erased as u64;
    Ok(release)
}

pub(crate) fn releases(conn: &Connection, tenant: &TenantId) -> Result<Vec<Release>> {
    let rows: Vec<(String, i64)> = conn
        .prepare_cached(&format!(
            "{RELEASE_WITH_ERASURES} WHERE r.tenant = ?1 ORDER BY r.created_at DESC, r.id"
        ))?
        .query_map([tenant.as_str()], read_release)?
        .collect::<rusqlite::Result<_>>()?;
    rows.into_iter().map(release_with_erasures).collect()
}

pub(crate) fn release(conn: &Connection, tenant: &TenantId, id: &str) -> Result<Option<Release>> {
    conn.prepare_cached(&format!(
        "{RELEASE_WITH_ERASURES} WHERE r.tenant = ?1 AND r.id = ?2"
    ))?
    .query_row(params![tenant.as_str(), id], read_release)
    .optional()?
    .map(release_with_erasures)
    .transpose()
}

/// A release item as read: trace, version, digest, whether it was erased, and the version's body
/// (gone for an erased one).
type ItemRow = (Vec<u8>, u32, String, bool, Option<String>);

pub(crate) fn release_labels(
    conn: &Connection,
    blobs: &BlobStore,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<(ReleaseManifest, Vec<ReleasedLabel>)>> {
    let Some(release) = release(conn, tenant, id)? else {
        return Ok(None);
    };
    let rows: Vec<ItemRow> = conn
        .prepare_cached(
            "SELECT i.trace_id, i.version, i.digest, i.erased_at IS NOT NULL, v.body
             FROM release_items i
             LEFT JOIN label_versions v ON v.tenant = i.tenant AND v.trace_id = i.trace_id
                                       AND v.version = i.version
             WHERE i.tenant = ?1 AND i.release_id = ?2",
        )?
        .query_map(params![tenant.as_str(), id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut items = Vec::with_capacity(rows.len());
    let mut bodies = Vec::with_capacity(rows.len());
    for (trace, version, digest, erased, body) in rows {
        let trace = TraceId::from_bytes(&trace).map_err(internal)?;
        items.push(released_item(
            trace,
            version,
            digest,
            erased,
            body.is_some(),
        )?);
        bodies.extend(body.filter(|_| !erased));
    }
    items.sort();
    let mut labels = decode_all(bodies)?;
    labels.sort_by(|a, b| a.label_id.cmp(&b.label_id));
    let mut released = Vec::with_capacity(labels.len());
    for label in labels {
        let mut results = Vec::new();
        for query in &label.snapshot {
            let stored =
                super::pipeline::snapshot_result(conn, tenant, label.investigation_id, &query.id)?;
            let bytes = match stored {
                Some(super::pipeline::StoredResult::Inline(bytes)) => bytes,
                Some(super::pipeline::StoredResult::Blob(digest)) => {
                    blobs.get(&digest).map_err(internal)?
                }
                None => continue,
            };
            results.push((query.id.clone(), bytes));
        }
        released.push(ReleasedLabel { label, results });
    }
    let manifest = ReleaseManifest {
        items,
        id: release.id,
        name: release.name,
        created_at: release.created_at,
        filters: release.filters,
    };
    Ok(Some((manifest, released)))
}

pub(crate) fn import_release(
    conn: &Connection,
    context: &mut WriteContext<'_>,
    tenant: &TenantId,
    manifest: ReleaseManifest,
    labels: Vec<ReleasedLabel>,
) -> Result<std::result::Result<Release, ImportError>> {
    let versions: Vec<LabelVersion> = labels.iter().map(|l| l.label.clone()).collect();
    if let Err(refused) = check_export(&manifest, &versions)? {
        return Ok(Err(refused));
    }
    if let Some(existing) = release(conn, tenant, &manifest.id)? {
        return Ok(Ok(existing));
    }
    for label in &labels {
        let version = &label.label;
        let stored: Option<String> = conn
            .prepare_cached(
                "SELECT digest FROM label_versions WHERE tenant = ?1 AND trace_id = ?2 AND version = ?3",
            )?
            .query_row(
                params![
                    tenant.as_str(),
                    &version.investigation_id.as_bytes()[..],
                    version.version
                ],
                |r| r.get(0),
            )
            .optional()?;
        let digest = version_digest(version)?;
        match stored {
            Some(d) if d == digest => {}
            Some(_) => {
                return Ok(Err(ImportError::Conflict(format!(
                    "{} version {} already exists here with different content",
                    version.label_id, version.version
                ))));
            }
            None => insert_version(conn, tenant, version)?,
        }
        for query in &version.snapshot {
            let result = label.results.iter().find(|(id, _)| *id == query.id);
            let (inline, blob) = match result {
                Some((_, bytes)) if bytes.len() <= context.inline_result_max => {
                    (Some(bytes.clone()), None)
                }
                Some((_, bytes)) => (
                    None,
                    Some(
                        context
                            .blobs
                            .put(bytes, super::rows::system_time(context.now))
                            .map_err(internal)?,
                    ),
                ),
                None => (None, None),
            };
            conn.prepare_cached(
                "INSERT OR IGNORE INTO snapshot_queries
                     (tenant, trace_id, query_id, deadline, status, planned_at, due_at,
                      result_blob, result_inline, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                tenant.as_str(),
                &version.investigation_id.as_bytes()[..],
                query.id,
                nanos(query.deadline),
                query.status.as_str(),
                nanos(query.planned_at),
                blob,
                inline,
                crate::encoding::encode(query)?
            ])?;
        }
    }
    Ok(Ok(store_release(
        conn,
        tenant,
        &manifest,
        &versions,
        context.now,
    )?))
}
