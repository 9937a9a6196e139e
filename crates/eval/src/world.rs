//! What a replay session may see of a label: its trigger and its frozen snapshot. A world is
//! built from snapshot queries and their frozen results only, so the ground truth, the scores
//! and the feedback text cannot reach a session: they are never handed to it.

use std::sync::Arc;

use evalmint_model::{SnapshotQuery, Trigger};
use serde_json::Value;

use crate::matching;

/// One frozen query, keyed for matching.
#[derive(Debug, Clone)]
pub(crate) struct FrozenQuery {
    pub id: String,
    pub tool: String,
    /// The tool and its arguments without times, normalised.
    pub key: String,
    /// The same before normalisation, to tell an exact match from a normalised one.
    pub raw_key: String,
    /// Captured range in milliseconds.
    pub window: Option<(i64, i64)>,
    pub step_secs: Option<i64>,
    pub result: Arc<Value>,
}

/// A label's frozen world as a session serves it.
#[derive(Debug, Clone, Default)]
pub struct ReplayWorld {
    pub trigger: Option<Trigger>,
    /// The time of the investigation: nothing after it existed.
    pub now_ms: Option<i64>,
    pub(crate) queries: Vec<FrozenQuery>,
}

impl ReplayWorld {
    /// Builds the world from snapshot queries and their frozen results (JSON). Queries without
    /// a result (expired, failed) or whose result is not JSON answer "no data".
    pub fn new(trigger: Option<Trigger>, snapshot: Vec<(SnapshotQuery, Vec<u8>)>) -> Self {
        let mut queries = Vec::new();
        for (query, bytes) in snapshot {
            if !query.status.has_result() {
                continue;
            }
            let Ok(result) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            let arguments: serde_json::Map<String, Value> = query
                .arguments
                .as_deref()
                .and_then(|a| serde_json::from_str(a).ok())
                .unwrap_or_else(|| {
                    let mut map = serde_json::Map::new();
                    if query.tool_name != "list_services" {
                        map.insert("query".into(), Value::String(query.query.clone()));
                    }
                    map
                });
            let window = query
                .window
                .map(|w| (w.start.as_millisecond(), w.end.as_millisecond()))
                .or_else(|| matching::window_of(&arguments));
            queries.push(FrozenQuery {
                id: query.id.clone(),

                key: matching::request_key(&query.tool_name, &arguments, true),
                raw_key: matching::request_key(&query.tool_name, &arguments, false),
                step_secs: arguments.get("step").and_then(matching::parse_step),
                window,
                tool: query.tool_name,
                result: Arc::new(result),
            });
        }
        let now_ms = queries.iter().filter_map(|q| q.window.map(|w| w.1)).max();
        ReplayWorld {
            trigger,
            now_ms,
            queries,
        }
    }

    /// How many frozen queries can answer.
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }
}
