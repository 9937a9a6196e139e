//! The domain of evalmint, free of IO: who owns data (tenants, scopes), what an agent did
//! (investigations assembled from steps) and what users said about it (feedback).
//!
//! Wire formats (OTLP, API JSON, database rows) live in the edge crates and convert into these types.

mod auth;
mod feedback;
mod ids;
mod investigation;

pub use auth::{Scope, ScopeSet};
pub use feedback::{
    Feedback, FeedbackOrigin, FeedbackSubmission, FieldError, ValidFeedback, Verdict,
};
pub use ids::{FeedbackId, IdError, SpanId, TenantId, TraceId};
pub use investigation::{
    AgentInfo, Investigation, SignalSource, Step, StepKind, StepStatus, TimeWindow, ToolCall,
    Trigger, TriggerKind,
};

/// A point in time with nanosecond precision, UTC.
pub type Timestamp = jiff::Timestamp;
