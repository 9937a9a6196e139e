//! Noise expansion: widen a snapshot with related-but-innocent signals so that replay is not an
//! open-book exam. Each added query is one of the agent's own queries pointed at a related entity
//! — a call-graph neighbour, a component of the same team, or one with a similar name — and
//! records why it was added.

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
    let related = related_entities(&queried, evidence);
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

/// Entities related to the queried ones and not queried themselves, closest relations first, each
/// with the reason.
fn related_entities(queried: &BTreeSet<&str>, evidence: &Evidence) -> Vec<(String, String)> {
    let mut related: Vec<(String, String)> = Vec::new();
    let mut add = |entity: &String, reason: String| {
        if !queried.contains(entity.as_str()) && !related.iter().any(|(e, _)| e == entity) {
            related.push((entity.clone(), reason));
        }
    };
    for entity in queried {
        let callees = evidence.calls.get(*entity).into_iter().flatten();
        let callers = evidence
            .calls
            .iter()
            .filter(|(_, callees)| callees.contains(*entity))
            .map(|(caller, _)| caller);
        for neighbour in callees.chain(callers) {
            add(neighbour, format!("call-graph neighbour of {entity}"));
        }
    }
    for entity in queried {
        let Some(team) = evidence.teams.get(*entity) else {
            continue;
        };
        for (other, other_team) in &evidence.teams {
            if other_team == team {
                add(other, format!("same team ({team}) as {entity}"));
            }
        }
    }
    for entity in queried {
        let stem = entity.split(['-', '_']).next().unwrap_or(entity);
        if stem.len() < 3 {
            continue;
        }
        for other in &evidence.entities {
            if other.as_str() != *entity && other.split(['-', '_']).next() == Some(stem) {
                add(other, format!("name similar to {entity}"));
            }
        }
    }
    related
}

#[cfg(test)]
mod tests {
    use super::*;
    use evalmint_model::Timestamp;

    fn agent_query(entity: &str) -> SnapshotQuery {
        let query = format!("cpu_usage_ratio{{service=\"{entity}\"}}");
        SnapshotQuery {
            id: "q-agent".into(),
            source_name: "prom".into(),
            signal: SignalSource::Metrics,
            tool_name: "query_metrics".into(),
            arguments: Some(serde_json::json!({ "query": query }).to_string()),
            query,
            window: None,
            entities: vec![entity.into()],
            origin: QueryOrigin::Agent,
            step: None,
            deadline: Timestamp::UNIX_EPOCH,
            planned_at: Timestamp::UNIX_EPOCH,
            status: CaptureStatus::Captured,
            captured_at: None,
            result_digest: None,
            result_truncated: false,
            attempts: 0,
            last_error: None,
        }
    }

    #[test]
    fn neighbours_teammates_and_namesakes_are_added_with_their_reason() {
        let mut evidence = Evidence::default();
        for e in [
            "checkout",
            "payments",
            "payments-db",
            "checkout-worker",
            "search",
        ] {
            evidence.entities.insert(e.into());
        }
        evidence
            .calls
            .entry("checkout".into())
            .or_default()
            .insert("payments".into());
        evidence.teams.insert("checkout".into(), "shop".into());
        evidence.teams.insert("search".into(), "shop".into());
        let added = expand(
            &[agent_query("checkout")],
            &evidence,
            10,
            Timestamp::UNIX_EPOCH,
        );
        let got: Vec<(String, String, String)> = added
            .iter()
            .map(|q| {
                let QueryOrigin::Noise { reason } = &q.origin else {
                    panic!("noise")
                };
                (q.entities[0].clone(), reason.clone(), q.query.clone())
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "payments".to_owned(),
                    "call-graph neighbour of checkout".to_owned(),
                    "cpu_usage_ratio{service=\"payments\"}".to_owned()
                ),
                (
                    "search".to_owned(),
                    "same team (shop) as checkout".to_owned(),
                    "cpu_usage_ratio{service=\"search\"}".to_owned()
                ),
                (
                    "checkout-worker".to_owned(),
                    "name similar to checkout".to_owned(),
                    "cpu_usage_ratio{service=\"checkout-worker\"}".to_owned()
                ),
            ]
        );
        assert!(
            added
                .iter()
                .all(|q| q.arguments.as_deref().unwrap().contains(&q.entities[0]))
        );
        assert_eq!(
            expand(
                &[agent_query("checkout")],
                &evidence,
                1,
                Timestamp::UNIX_EPOCH
            )
            .len(),
            1
        );
    }
}
