//! An investigation is one agent run, assembled from steps that may arrive in any order and in
//! several batches. Assembly is a pure function of the steps seen so far, so it can be redone
//! whenever a late span arrives.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::feedback::Feedback;
use crate::ids::{SpanId, TraceId};

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// The agent invocation itself: carries the trigger and the conclusion.
    Agent,
    /// A tool call, usually a query against the world.
    Tool,
    /// A model call.
    Llm,
    /// Anything else in the trace (HTTP client spans, chains, …).
    Other,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Agent => "agent",
            StepKind::Tool => "tool",
            StepKind::Llm => "llm",
            StepKind::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            StepKind::Agent,
            StepKind::Tool,
            StepKind::Llm,
            StepKind::Other,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    #[default]
    Unset,
    Ok,
    Error,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Unset => "unset",
            StepStatus::Ok => "ok",
            StepStatus::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [StepStatus::Unset, StepStatus::Ok, StepStatus::Error]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Which kind of telemetry a tool call read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalSource {
    Metrics,
    Logs,
    Traces,
    Events,
    Infra,
    Unknown,
}

impl SignalSource {
    pub const ALL: [SignalSource; 6] = [
        SignalSource::Metrics,
        SignalSource::Logs,
        SignalSource::Traces,
        SignalSource::Events,
        SignalSource::Infra,
        SignalSource::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SignalSource::Metrics => "metrics",
            SignalSource::Logs => "logs",
            SignalSource::Traces => "traces",
            SignalSource::Events => "events",
            SignalSource::Infra => "infra",
            SignalSource::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        SignalSource::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The span of time a query read. `start <= end` is enforced by [`TimeWindow::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeWindow {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl TimeWindow {
    pub fn new(start: Timestamp, end: Timestamp) -> Option<Self> {
        (start <= end).then_some(TimeWindow { start, end })
    }
}

/// A step that read the world.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub tool_name: String,
    pub source: SignalSource,
    /// The query text the tool ran (PromQL, a log search, …), or the raw arguments.
    pub query: String,
    /// The arguments as the agent sent them, usually JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<TimeWindow>,
    /// Services, pods, hosts, databases, topics the query named.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<String>,
    /// The result the agent saw, as recorded in the trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// True when the recorded result is known to be cut short.
    #[serde(default)]
    pub result_truncated: bool,
}

/// Who the agent was.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
}

impl AgentInfo {
    /// Fills each missing field from `other`.
    fn fill_from(&mut self, other: &AgentInfo) {
        fn fill(slot: &mut Option<String>, value: &Option<String>) {
            if slot.is_none() {
                slot.clone_from(value);
            }
        }
        fill(&mut self.name, &other.name);
        fill(&mut self.version, &other.version);
        fill(&mut self.model, &other.model);
        fill(&mut self.config_hash, &other.config_hash);
    }

    pub fn is_empty(&self) -> bool {
        self == &AgentInfo::default()
    }
}

/// What started the investigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// An alert or monitor fired.
    Alert,
    /// A person asked a question.
    Question,
    #[default]
    Other,
}

impl TriggerKind {
    pub fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "alert" | "monitor" => TriggerKind::Alert,
            "question" | "user" | "chat" => TriggerKind::Question,
            _ => TriggerKind::Other,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    #[serde(default)]
    pub kind: TriggerKind,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_at: Option<Timestamp>,
}

/// One span of an investigation, as mapped from OTLP or native JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub span_id: SpanId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<SpanId>,
    pub name: String,
    pub kind: StepKind,
    pub started_at: Timestamp,
    pub ended_at: Timestamp,
    #[serde(default)]
    pub status: StepStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// Agent identity attributes found on this span, merged during assembly.
    #[serde(default, skip_serializing_if = "AgentInfo::is_empty")]
    pub agent: AgentInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call: Option<ToolCall>,
}

/// One agent run with everything known about it so far.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Investigation {
    pub id: TraceId,
    pub agent: AgentInfo,
    pub trigger: Option<Trigger>,
    pub conclusion: Option<String>,
    pub started_at: Timestamp,
    pub ended_at: Timestamp,
    /// Steps in start order.
    pub steps: Vec<Step>,
    pub feedback: Vec<Feedback>,
}

impl Investigation {
    /// Builds the investigation from the steps seen so far. Returns `None` without steps: an
    /// investigation exists once one of its spans has arrived.
    ///
    /// The root is the outermost agent step (no parent inside the trace, else the earliest). Its
    /// trigger and output win; without them the trigger falls back to its input and the conclusion
    /// to the last model output.
    pub fn assemble(id: TraceId, mut steps: Vec<Step>, feedback: Vec<Feedback>) -> Option<Self> {
        steps.sort_by(|a, b| {
            a.started_at
                .cmp(&b.started_at)
                .then(a.span_id.cmp(&b.span_id))
        });
        let started_at = steps.iter().map(|s| s.started_at).min()?;
        let ended_at = steps.iter().map(|s| s.ended_at).max()?;

        let in_trace =
            |parent: &Option<SpanId>| parent.is_some_and(|p| steps.iter().any(|s| s.span_id == p));
        let root = steps
            .iter()
            .filter(|s| s.kind == StepKind::Agent)
            .min_by_key(|s| (in_trace(&s.parent_span_id), s.started_at));

        let mut agent = root.map(|r| r.agent.clone()).unwrap_or_default();
        for step in &steps {
            agent.fill_from(&step.agent);
        }

        let trigger = root
            .and_then(|r| r.trigger.clone())
            .or_else(|| steps.iter().find_map(|s| s.trigger.clone()))
            .or_else(|| {
                root.and_then(|r| r.input.clone()).map(|text| Trigger {
                    kind: TriggerKind::Question,
                    text,
                    monitor: None,
                    fired_at: None,
                })
            });

        let conclusion = root.and_then(|r| r.output.clone()).or_else(|| {
            steps
                .iter()
                .filter(|s| s.kind == StepKind::Llm && s.output.is_some())
                .max_by_key(|s| s.ended_at)
                .and_then(|s| s.output.clone())
        });

        Some(Investigation {
            id,
            agent,
            trigger,
            conclusion,
            started_at,
            ended_at,
            steps,
            feedback,
        })
    }

    pub fn tool_calls(&self) -> impl Iterator<Item = &ToolCall> {
        self.steps.iter().filter_map(|s| s.tool_call.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(1_767_000_000 + secs).unwrap()
    }

    fn step(id: u8, parent: Option<u8>, kind: StepKind, start: i64) -> Step {
        Step {
            span_id: SpanId::from_bytes(&[id; 8]).unwrap(),
            parent_span_id: parent.map(|p| SpanId::from_bytes(&[p; 8]).unwrap()),
            name: format!("step-{id}"),
            kind,
            started_at: ts(start),
            ended_at: ts(start + 5),
            status: StepStatus::Ok,
            status_message: None,
            agent: AgentInfo::default(),
            trigger: None,
            input: None,
            output: None,
            tool_call: None,
        }
    }

    #[test]
    fn assembly_does_not_depend_on_arrival_order() {
        let trace = TraceId::from_bytes(&[7; 16]).unwrap();
        let mut root = step(1, None, StepKind::Agent, 0);
        root.agent.name = Some("sre-agent".into());
        root.input = Some("checkout latency alert".into());
        root.output = Some("payments-db pool exhausted".into());
        let mut llm = step(3, Some(1), StepKind::Llm, 20);
        llm.agent.model = Some("gpt-x".into());
        llm.output = Some("thinking".into());
        let tool = step(2, Some(1), StepKind::Tool, 10);
        let steps = vec![root, tool, llm];

        let forward = Investigation::assemble(trace, steps.clone(), vec![]).unwrap();
        let mut reversed_steps = steps;
        reversed_steps.reverse();
        let reversed = Investigation::assemble(trace, reversed_steps, vec![]).unwrap();
        assert_eq!(forward, reversed);
        assert_eq!(forward.agent.name.as_deref(), Some("sre-agent"));
        assert_eq!(forward.agent.model.as_deref(), Some("gpt-x"));
        assert_eq!(
            forward.conclusion.as_deref(),
            Some("payments-db pool exhausted")
        );
        assert_eq!(
            forward.trigger.map(|t| t.text).as_deref(),
            Some("checkout latency alert")
        );
        assert_eq!(forward.started_at, ts(0));
        assert_eq!(forward.ended_at, ts(25));
    }

    #[test]
    fn conclusion_falls_back_to_last_model_output_until_the_agent_span_arrives() {
        let trace = TraceId::from_bytes(&[7; 16]).unwrap();
        let mut first = step(3, Some(1), StepKind::Llm, 20);
        first.output = Some("early draft".into());
        let mut last = step(4, Some(1), StepKind::Llm, 30);
        last.output = Some("final answer".into());
        let partial = Investigation::assemble(trace, vec![last, first], vec![]).unwrap();
        assert_eq!(partial.conclusion.as_deref(), Some("final answer"));
        assert!(Investigation::assemble(trace, vec![], vec![]).is_none());
    }
}
