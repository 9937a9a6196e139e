//! Noise expansion: widen a snapshot with related-but-innocent signals so that replay is not an
//! open-book exam. Each added query is one of the agent's own queries pointed at a related entity
//! (a call-graph neighbour, or a component of the same kind), and records why it was added.

use std::collections::BTreeSet;

use evalmint_model::{CaptureStatus, QueryOrigin, SignalSource, SnapshotQuery};

use crate::capture::query_id;
use crate::evidence::Evidence;

/// Up to `limit` noise queries derived from the agent's queries in `snapshot`.
pub fn expand(
    snapshot: &[SnapshotQuery],
    evidence: &Evidence,
    limit: usize,
    now: evalmint_model::Timestamp,
) -> Vec<SnapshotQuery> {
    let agent_queries: Vec<&SnapshotQuery> = snapshot
        .iter()
        .filter(|q| q.origin == QueryOrigin::Agent)
        .filter(|q| matches!(q.signal, SignalSource::Metrics | SignalSource::Logs))
        .collect();
    let queried: BTreeSet<&str> = agent_queries
        .iter()
        .flat_map(|q| q.entities.iter().map(String::as_str))
        .collect();
    let mut related: Vec<(String, String)> = Vec::new();
    for entity in &queried {
        let mut neighbours: BTreeSet<&String> =
            evidence.calls.get(*entity).into_iter().flatten().collect();
        neighbours.extend(
            evidence
                .calls
                .iter()
                .filter(|(_, callees)| callees.contains(*entity))
                .map(|(caller, _)| caller),
        );
        for neighbour in neighbours {
            if !queried.contains(neighbour.as_str()) && !related.iter().any(|(n, _)| n == neighbour)
            {
                related.push((
                    neighbour.clone(),
                    format!("call-graph neighbour of {entity}"),
                ));
            }
        }
    }
    let mut added: Vec<SnapshotQuery> = Vec::new();
    let existing: BTreeSet<&str> = snapshot.iter().map(|q| q.id.as_str()).collect();
    'entities: for (entity, reason) in related {
        for template in &agent_queries {
            if added.len() >= limit {
                break 'entities;
            }
            let Some(original) = template
                .entities
                .iter()
                .find(|e| template.query.contains(e.as_str()))
            else {
                continue;
            };
            let swap = |text: &str| text.replace(original.as_str(), &entity);
            let query = swap(&template.query);
            let arguments = template.arguments.as_deref().map(swap);
            let id = query_id(
                &template.source_name,
                &template.tool_name,
                arguments.as_deref().unwrap_or(&query),
                template.window,
            );
            if existing.contains(id.as_str()) || added.iter().any(|q| q.id == id) {
                continue;
            }
            added.push(SnapshotQuery {
                id,
                query,
                arguments,
                entities: vec![entity.clone()],
                origin: QueryOrigin::Noise {
                    reason: reason.clone(),
                },
                step: None,
                planned_at: now,
                status: CaptureStatus::Pending,
                captured_at: None,
                result_digest: None,
                result_truncated: false,
                attempts: 0,
                last_error: None,
                ..(*template).clone()
            });
            break;
        }
    }
    added
}
