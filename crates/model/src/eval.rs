//! Evaluation runs: a candidate agent replayed on a list of label versions, k attempts each, with
//! every attempt's answer, grades and the trace of its tool calls. Pure data; the replay, the
//! graders and the statistics live in the `eval` crate.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::investigation::Step;
use crate::label::Segment;

/// How one attempt on one label ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    /// The agent crashed, hung, flooded the tools or answered something unreadable.
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Error => "error",
        }
    }
}

/// One grader's verdict, always with its reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grade {
    pub grader: String,
    pub passed: bool,
    /// In [0, 1].
    pub score: f64,
    pub reason: String,
    /// The grader could not judge (an LLM judge whose answer was unusable or unreachable):
    /// `passed` is then false and `reason` says why; it is neither a pass nor a fail.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub errored: bool,
}

/// The structured part of an agent's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RcaAnswer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onset: Option<Timestamp>,
}

/// What a candidate agent answered for one label.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentAnswer {
    pub conclusion: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rca: Option<RcaAnswer>,
}

/// One attempt of one label version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    pub label_id: String,
    pub label_version: u32,
    pub attempt: u32,
    pub outcome: Outcome,
    /// Why: the failing grader's reason, or the error.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grades: Vec<Grade>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<Segment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<AgentAnswer>,
    /// Every tool call of the session, as investigation steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trace: Vec<Step>,
    pub duration_ms: u64,
}

/// Whether a run finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Completed,
    /// The run itself failed (no labels, the replay server could not start, …).
    Failed,
}

/// A candidate agent replayed on a list of label versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRun {
    pub id: String,
    /// The agent spec (`sim:v1`, `http://…`, `cmd:…`).
    pub agent: String,
    /// Where the label versions came from (`admitted`, later a release id).
    pub label_source: String,
    pub k: u32,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub results: Vec<EvalResult>,
}
