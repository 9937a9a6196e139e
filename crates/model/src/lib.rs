//! The domain of evalmint, free of IO: who owns data (tenants, scopes), what an agent did
//! (investigations assembled from steps) and what users said about it (feedback).
//!
//! Wire formats (OTLP, API JSON, database rows) live in the edge crates and convert into these types.

mod auth;
mod catalog;
mod catalog_file;
mod feedback;
mod ids;
mod investigation;
mod label;

pub use auth::{Scope, ScopeSet};
pub use catalog::{Catalog, CatalogEntry, EntityProvenance, tool_call_entries, workload_of};
pub use catalog_file::{CatalogFileError, CatalogFormat, parse_catalog_file};
pub use feedback::{
    Feedback, FeedbackOrigin, FeedbackSubmission, FieldError, ValidFeedback, Verdict,
};
pub use ids::{FeedbackId, IdError, SpanId, TenantId, TraceId};
pub use investigation::{
    AgentInfo, Investigation, SignalSource, Step, StepKind, StepStatus, TimeWindow, ToolCall,
    Trigger, TriggerKind,
};
pub use label::{
    CandidateLabel, CaptureStatus, Category, GroundTruth, Provenance, QueryOrigin, Route, Score,
    Scores, Segment, SnapshotQuery,
};

/// A point in time with nanosecond precision, UTC.
pub type Timestamp = jiff::Timestamp;

/// Parses a duration such as `30s`, `15m`, `2h`, `7d` or `1w`.
pub fn parse_duration(text: &str) -> Option<jiff::SignedDuration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let amount: i64 = digits.parse().ok()?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    Some(jiff::SignedDuration::from_secs(
        amount.checked_mul(seconds)?,
    ))
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
        assert_eq!(parse_duration("15"), None);
        assert_eq!(parse_duration("3y"), None);
        assert_eq!(parse_duration("m"), None);
    }
}
