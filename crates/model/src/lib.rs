//! The domain of evalmint, free of IO: who owns data (tenants, scopes), what an agent did
//! (investigations assembled from steps) and what users said about it (feedback).
//!
//! Wire formats (OTLP, API JSON, database rows) live in the edge crates and convert into these types.

mod auth;
pub mod calibration;
mod catalog;
mod catalog_file;
mod eval;
mod feedback;
mod ids;
mod investigation;
mod label;
pub mod release;
mod review;

pub use auth::{MIN_SECRET_LEN, Scope, ScopeSet, check_chosen_secret};
pub use catalog::{Catalog, CatalogEntry, EntityProvenance, tool_call_entries, workload_of};
pub use catalog_file::{CatalogFileError, CatalogFormat, parse_catalog_file};
pub use eval::{
    AgentAnswer, AttemptOutcome, EvalResult, EvalRun, Grade, LabelRun, Outcome, RcaAnswer,
    RunStatus, is_flaky,
};
pub use feedback::{
    Feedback, FeedbackOrigin, FeedbackSubmission, FieldError, ValidFeedback, Verdict,
};
pub use ids::{FeedbackId, IdError, SpanId, TenantId, TraceId};
pub use investigation::{
    AgentInfo, Investigation, SignalSource, Step, StepKind, StepStatus, TimeWindow, ToolCall,
    Trigger, TriggerKind,
};
pub use label::{
    CandidateLabel, CaptureStatus, Category, EntityRef, GroundTruth, InvalidCategory, Provenance,
    QueryOrigin, Route, Score, Scores, Segment, SnapshotQuery,
};
pub use review::{
    Decision, DecisionAction, DecisionRequest, FieldChange, GroundTruthEdit, LabelState,
    LabelVersion, RejectReason, SnapshotChange, ValidDecision, apply_edit, label_id, label_trace,
};

/// A point in time with nanosecond precision, UTC.
pub type Timestamp = jiff::Timestamp;

/// Parses a duration such as `30s`, `15m`, `2h`, `7d`, `1w` or `1h30m` (humantime's grammar: a
/// number with a unit, repeated). The one duration grammar of evalmint: configuration, CLI flags
/// and tool-call arguments all go through it. A bare number has no unit and is refused.
pub fn parse_duration(text: &str) -> Option<jiff::SignedDuration> {
    let std = humantime::parse_duration(text.trim()).ok()?;
    jiff::SignedDuration::try_from(std).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_only() {
        assert_eq!(
            parse_duration("15m"),
            Some(jiff::SignedDuration::from_secs(900))
        );
        assert_eq!(
            parse_duration("14d"),
            Some(jiff::SignedDuration::from_hours(336))
        );
        assert_eq!(
            parse_duration("1h30m"),
            Some(jiff::SignedDuration::from_mins(90))
        );
        assert_eq!(
            parse_duration(" 1h 30m "),
            Some(jiff::SignedDuration::from_mins(90))
        );
        assert_eq!(
            parse_duration("1w"),
            Some(jiff::SignedDuration::from_hours(168))
        );
        for refused in ["15", "m", "", "3 parsecs", "-5m"] {
            assert_eq!(parse_duration(refused), None, "{refused:?}");
        }
    }
}
