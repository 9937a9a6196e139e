//! Noise expansion: widen a snapshot with related-but-innocent signals so that replay is not an
//! open-book exam. Each added query is one of the agent's own queries pointed at a related entity
//! — a call-graph neighbour, a component of the same team, or one with a similar name — and
//! records why it was added.

use std::collections::BTreeSet;

use evalmint_model::{QueryOrigin, SignalSource, SnapshotQuery};
use promql_parser::label::MatchOp;
use promql_parser::parser::Expr;
use serde_json::Value;

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
            let Some((query, arguments)) = template
                .entities
                .iter()
                .find_map(|original| retarget(template, original, &entity))
            else {
                continue;
            };
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
                arguments,
                window: template.window,
                entities: vec![entity.clone()],
                origin: QueryOrigin::Noise {
                    reason: reason.clone(),
                },
                ..SnapshotQuery::pending(
                    id,
                    template.source_name.clone(),
                    template.signal,
                    template.tool_name.clone(),
                    query,
                    template.deadline,
                    now,
                )
            });
            break;
        }
    }
    added
}

/// The template's query and arguments pointed at `to` instead of `from`, or `None` when `from`
/// does not name what the query selects.
fn retarget(template: &SnapshotQuery, from: &str, to: &str) -> Option<(String, Option<String>)> {
    let query = retarget_query(&template.query, from, to)?;
    let arguments = template.arguments.as_deref().map(|raw| {
        let Ok(mut value) = serde_json::from_str::<Value>(raw) else {
            return retarget_query(raw, from, to).unwrap_or_else(|| raw.to_owned());
        };
        if let Value::Object(map) = &mut value {
            for argument in map.values_mut() {
                match argument {
                    Value::String(s) if *s == template.query => *s = query.clone(),
                    Value::String(s) if s == from => *s = to.to_owned(),
                    Value::Array(items) => {
                        for item in items {
                            if item.as_str() == Some(from) {
                                *item = Value::String(to.to_owned());
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        value.to_string()
    });
    Some((query, arguments))
}

/// `query` with `from` replaced by `to` where it is a selector's value: on the parsed expression
/// for PromQL (label matchers `label="from"` / `label!="from"`; metric and label names and
/// regular expressions are never touched), and as a whole name (not part of a longer name) in
/// other query languages.
fn retarget_query(query: &str, from: &str, to: &str) -> Option<String> {
    match promql_parser::parser::parse(query) {
        Ok(mut expr) => {
            let mut rewrite = MatcherRewrite { from, to, count: 0 };
            let Ok(_) = promql_parser::util::visitor::walk_expr_mut(&mut rewrite, &mut expr);
            (rewrite.count > 0).then(|| expr.to_string())
        }
        Err(_) => replace_whole_name(query, from, to),
    }
}

/// Rewrites equality matchers whose value is `from`.
struct MatcherRewrite<'a> {
    from: &'a str,
    to: &'a str,
    count: usize,
}

impl promql_parser::util::visitor::ExprVisitorMut for MatcherRewrite<'_> {
    type Error = std::convert::Infallible;

    fn pre_visit(&mut self, expr: &mut Expr) -> Result<bool, Self::Error> {
        let selector = match expr {
            Expr::VectorSelector(selector) => selector,
            Expr::MatrixSelector(matrix) => &mut matrix.vs,
            _ => return Ok(true),
        };
        let matchers = &mut selector.matchers;
        for matcher in matchers
            .matchers
            .iter_mut()
            .chain(matchers.or_matchers.iter_mut().flatten())
        {
            let by_value = matches!(matcher.op, MatchOp::Equal | MatchOp::NotEqual);
            if by_value && matcher.name != "__name__" && matcher.value == self.from {
                matcher.value = self.to.to_owned();
                self.count += 1;
            }
        }
        Ok(true)
    }
}

/// `text` with every whole-name occurrence of `from` replaced: one not joined to letters, digits,
/// `-`, `_` or `.` on either side, so `checkout` in `checkout-worker` stays.
fn replace_whole_name(text: &str, from: &str, to: &str) -> Option<String> {
    if from.is_empty() {
        return None;
    }
    let is_name = |c: char| c.is_alphanumeric() || matches!(c, '-' | '_' | '.');
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut replaced = false;
    for (at, _) in text.match_indices(from) {
        let end = at + from.len();
        let joined = text[..at].chars().next_back().is_some_and(is_name)
            || text[end..].chars().next().is_some_and(is_name);
        out.push_str(&text[copied..at]);
        out.push_str(if joined { from } else { to });
        replaced |= !joined;
        copied = end;
    }
    out.push_str(&text[copied..]);
    replaced.then_some(out)
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
    use evalmint_model::{CaptureStatus, Timestamp};

    fn agent_query(entity: &str) -> SnapshotQuery {
        let query = format!("cpu_usage_ratio{{service=\"{entity}\"}}");
        SnapshotQuery {
            arguments: Some(serde_json::json!({ "query": query }).to_string()),
            entities: vec![entity.into()],
            status: CaptureStatus::Captured,
            ..SnapshotQuery::pending(
                "q-agent".into(),
                "prom".into(),
                SignalSource::Metrics,
                "query_metrics".into(),
                query,
                Timestamp::UNIX_EPOCH,
                Timestamp::UNIX_EPOCH,
            )
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

    #[test]
    fn only_selector_values_are_rewritten_never_names_that_contain_the_entity() {
        // `api` is inside the metric name, a label name, another label's value and a regex.
        let query = r#"sum by (api_route) (rate(api_requests_total{service="api", job="api-gateway", pod=~"api-.*"}[5m])) / on(service) group_left up{service!="api"}"#;
        let rewritten = retarget_query(query, "api", "payments").unwrap();
        assert_eq!(
            rewritten,
            r#"sum by (api_route) (rate(api_requests_total{job="api-gateway",pod=~"api-.*",service="payments"}[5m])) / on (service) group_left () up{service!="payments"}"#
        );
        assert_eq!(
            retarget_query(
                r#"api_latency_seconds{job="api-gateway"}"#,
                "api",
                "payments"
            ),
            None,
            "the entity names nothing the query selects"
        );
    }

    #[test]
    fn other_query_languages_have_whole_names_replaced() {
        assert_eq!(
            retarget_query(
                "level:warn service:checkout,checkout-worker",
                "checkout",
                "search"
            )
            .as_deref(),
            Some("level:warn service:search,checkout-worker")
        );
        assert_eq!(
            retarget_query("level:warn service:checkout-worker", "checkout", "search"),
            None
        );
    }

    #[test]
    fn arguments_follow_the_rewritten_query_and_entity() {
        let mut template = agent_query("api");
        template.arguments = Some(
            serde_json::json!({"query": template.query, "services": ["api", "api-gateway"], "step": "api"})
                .to_string(),
        );
        let (query, arguments) = retarget(&template, "api", "payments").unwrap();
        assert_eq!(query, r#"cpu_usage_ratio{service="payments"}"#);
        let arguments: Value = serde_json::from_str(&arguments.unwrap()).unwrap();
        assert_eq!(
            arguments,
            serde_json::json!({"query": query, "services": ["payments", "api-gateway"], "step": "payments"})
        );
    }
}
