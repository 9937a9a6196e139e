//! Replay sessions: one per (label, attempt), each holding only its label's world. A session
//! counts its tool calls against a limit, records every call as an investigation step (the
//! run's trace) and keeps the root cause the agent submitted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use evalmint_model::{
    AgentAnswer, RcaAnswer, SignalSource, SpanId, Step, StepKind, StepStatus, TenantId, TimeWindow,
    ToolCall,
};
use serde_json::{Map, Value, json};

use crate::matching::{Found, MatchKind};
use crate::tools::{self, ToolError};
use crate::world::ReplayWorld;

/// Tool calls one session may make.
pub const DEFAULT_CALL_LIMIT: u32 = 200;

/// One open session.
#[derive(Debug)]
pub struct Session {
    pub id: String,
    pub tenant: TenantId,
    /// The run it belongs to; `None` for a session opened by hand.
    pub run_id: Option<String>,
    pub label_id: String,
    pub world: Arc<ReplayWorld>,
    call_limit: u32,
    state: Mutex<SessionState>,
}

#[derive(Debug, Default)]
struct SessionState {
    calls: u32,
    trace: Vec<Step>,
    /// Frozen query ids the agent's calls were answered from.
    hits: Vec<String>,
    submitted: Option<AgentAnswer>,
}

/// What a closed session leaves for grading.
#[derive(Debug, Clone, Default)]
pub struct SessionRecord {
    pub calls: u32,
    pub trace: Vec<Step>,
    pub hits: Vec<String>,
    pub submitted: Option<AgentAnswer>,
}

fn signal_of(tool: &str) -> SignalSource {
    match tool {
        "query_metrics" => SignalSource::Metrics,
        "search_logs" => SignalSource::Logs,
        "get_traces" => SignalSource::Traces,
        "get_events" => SignalSource::Events,
        "list_services" | "get_service_dependencies" => SignalSource::Infra,
        _ => SignalSource::Unknown,
    }
}

impl Session {
    /// Counts one call; past the limit the call is refused.
    fn count(&self) -> Result<(), ToolError> {
        let mut state = self.state.lock().expect("session lock");
        if state.calls >= self.call_limit {
            return Err(ToolError::CallLimit(self.call_limit));
        }
        state.calls += 1;
        Ok(())
    }

    fn record(
        &self,
        tool: &str,
        args: &Map<String, Value>,
        outcome: Result<&Found, &ToolError>,
        started: jiff::Timestamp,
    ) {
        let ended = jiff::Timestamp::now();
        let mut state = self.state.lock().expect("session lock");
        let n = state.trace.len() as u64 + 1;
        let (status, message, result) = match outcome {
            Ok(found) => {
                if let Some(id) = &found.query_id
                    && !state.hits.contains(id)
                {
                    state.hits.push(id.clone());
                }
                (StepStatus::Ok, None, Some(found.kind.as_str().to_owned()))
            }
            Err(e) => (StepStatus::Error, Some(e.to_string()), None),
        };
        let window = crate::matching::window_of(args).and_then(|(s, e)| {
            TimeWindow::new(
                jiff::Timestamp::from_millisecond(s).ok()?,
                jiff::Timestamp::from_millisecond(e).ok()?,
            )
        });
        let query = args
            .get("query")
            .and_then(Value::as_str)
            .map_or_else(|| tool.to_owned(), str::to_owned);
        state.trace.push(Step {
            span_id: SpanId::from_bytes(&n.to_be_bytes()).expect("8 bytes, not zero"),
            parent_span_id: None,
            name: tool.to_owned(),
            kind: StepKind::Tool,
            started_at: started,
            ended_at: ended.max(started),
            status,
            status_message: message,
            agent: Default::default(),
            trigger: None,
            input: None,
            output: None,
            tool_call: Some(ToolCall {
                tool_name: tool.to_owned(),
                source: signal_of(tool),
                query,
                arguments: Some(Value::Object(args.clone()).to_string()),
                window,
                entities: Vec::new(),
                // Which kind of match answered, not the result: the result is in the snapshot.
                result,
                result_truncated: false,
            }),
        });
    }

    /// Calls one tool (including `submit_rca`) and records it.
    pub fn call(&self, tool: &str, args: &Map<String, Value>) -> Result<Value, ToolError> {
        let started = jiff::Timestamp::now();
        if let Err(e) = self.count() {
            self.record(tool, args, Err(&e), started);
            return Err(e);
        }
        if tool == "submit_rca" {
            let outcome = self.submit(args);
            let found = Found {
                kind: MatchKind::Exact,
                query_id: None,
                result: Value::Null,
            };
            self.record(tool, args, outcome.as_ref().map(|_| &found), started);
            return outcome;
        }
        let outcome = tools::answer(&self.world, tool, args);
        self.record(tool, args, outcome.as_ref(), started);
        outcome.map(|found| tools::to_json(&found))
    }

    /// A Prometheus API call, counted and recorded like a tool call.
    pub fn prometheus(
        &self,
        endpoint: &str,
        args: &Map<String, Value>,
        matchers: &[String],
    ) -> Result<Value, ToolError> {
        let started = jiff::Timestamp::now();
        if let Err(e) = self.count() {
            self.record(endpoint, args, Err(&e), started);
            return Err(e);
        }
        let outcome = match endpoint {
            "query" => tools::prometheus_instant(&self.world, args),
            "query_range" => tools::prometheus_range(&self.world, args),
            "series" => Ok((no_match(), tools::prometheus_series(&self.world, matchers))),
            "labels" => Ok((no_match(), tools::prometheus_labels(&self.world))),
            other => Err(ToolError::UnknownTool(other.to_owned())),
        };
        let name = format!("prometheus_{endpoint}");
        self.record(&name, args, outcome.as_ref().map(|(f, _)| f), started);
        outcome.map(|(_, body)| body)
    }

    fn submit(&self, args: &Map<String, Value>) -> Result<Value, ToolError> {
        let text = |field: &str| -> Result<Option<String>, ToolError> {
            match args.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ToolError::Invalid {
                    field: field.to_owned(),
                    message: "must be a string".to_owned(),
                }),
            }
        };
        let onset = match args.get("onset") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                crate::matching::parse_time(v)
                    .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
                    .ok_or_else(|| ToolError::Invalid {
                        field: "onset".into(),
                        message: "is not an RFC 3339 time or epoch seconds".into(),
                    })?,
            ),
        };
        let answer = AgentAnswer {
            conclusion: text("conclusion")?.unwrap_or_default(),
            rca: Some(RcaAnswer {
                component: text("component")?,
                category: text("category")?,
                onset,
            }),
        };
        self.state.lock().expect("session lock").submitted = Some(answer);
        Ok(json!({"status": "accepted"}))
    }

    fn close(&self) -> SessionRecord {
        let mut state = self.state.lock().expect("session lock");
        SessionRecord {
            calls: state.calls,
            trace: std::mem::take(&mut state.trace),
            hits: std::mem::take(&mut state.hits),
            submitted: state.submitted.take(),
        }
    }
}

fn no_match() -> Found {
    Found {
        kind: MatchKind::NoData,
        query_id: None,
        result: Value::Null,
    }
}

/// Every open session, by id. Ids are random (128 bits): a session id is the agent's only
/// credential, and another run's or tenant's id is as unknown as a made-up one.
#[derive(Debug, Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Arc<Session>>>,
}

/// A random session id.
fn new_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the system's random source");
    format!("s-{}", hex::encode(bytes))
}

impl Sessions {
    pub fn open(
        &self,
        tenant: TenantId,
        run_id: Option<String>,
        label_id: String,
        world: Arc<ReplayWorld>,
        call_limit: u32,
    ) -> Arc<Session> {
        let session = Arc::new(Session {
            id: new_id(),
            tenant,
            run_id,
            label_id,
            world,
            call_limit,
            state: Mutex::default(),
        });
        self.open
            .lock()
            .expect("sessions lock")
            .insert(session.id.clone(), session.clone());
        session
    }

    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.open.lock().expect("sessions lock").get(id).cloned()
    }

    /// Ends a session: its id stops answering and its record is handed back.
    pub fn close(&self, id: &str) -> Option<SessionRecord> {
        let session = self.open.lock().expect("sessions lock").remove(id)?;
        Some(session.close())
    }

    pub fn len(&self) -> usize {
        self.open.lock().expect("sessions lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
