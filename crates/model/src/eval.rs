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
    /// `lbl-<trace id>`, the identity label versions and releases use, whatever the run's label
    /// source: runs over the admitted set and over a release pair on it.
    pub label_id: String,
    /// The label version graded.
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
    /// The run this one was compared with when it ran; reports compare with it by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    pub results: Vec<EvalResult>,
}

impl EvalRun {
    /// What this run says about each label it graded, in label id order: the per-label rows
    /// of the label history.
    pub fn label_runs(&self) -> Vec<(String, LabelRun)> {
        let mut by_label: std::collections::BTreeMap<&str, LabelRun> =
            std::collections::BTreeMap::new();
        for result in &self.results {
            let entry = by_label
                .entry(&result.label_id)
                .or_insert_with(|| LabelRun {
                    run_id: self.id.clone(),
                    agent: self.agent.clone(),
                    label_source: self.label_source.clone(),
                    started_at: self.started_at,
                    label_version: result.label_version,
                    attempts: Vec::new(),
                });
            entry.attempts.push(AttemptOutcome {
                attempt: result.attempt,
                outcome: result.outcome,
                reason: result.reason.clone(),
                grades: result.grades.clone(),
            });
        }
        by_label
            .into_iter()
            .map(|(label, mut run)| {
                run.attempts.sort_by_key(|a| a.attempt);
                (label.to_owned(), run)
            })
            .collect()
    }
}

/// One run's verdict on one label: an entry of the label's history across runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelRun {
    pub run_id: String,
    pub agent: String,
    pub label_source: String,
    pub started_at: Timestamp,
    /// The label version the run graded.
    pub label_version: u32,
    /// In attempt order.
    pub attempts: Vec<AttemptOutcome>,
}

impl LabelRun {
    pub fn passes(&self) -> usize {
        self.attempts
            .iter()
            .filter(|a| a.outcome == Outcome::Pass)
            .count()
    }

    /// Whether the label passed in this run: at least half its attempts, and at least one.
    pub fn passed(&self) -> bool {
        let passes = self.passes();
        passes > 0 && passes * 2 >= self.attempts.len()
    }
}

/// How one attempt went, with every grader's verdict and reason (the answer and the trace stay
/// in the run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptOutcome {
    pub attempt: u32,
    pub outcome: Outcome,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grades: Vec<Grade>,
}

/// Whether a label's history shows it both passing and failing across runs.
pub fn is_flaky(history: &[LabelRun]) -> bool {
    history.iter().any(LabelRun::passed) && history.iter().any(|run| !run.passed())
}
