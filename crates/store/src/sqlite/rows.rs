//! Conversions between domain values and SQLite columns.

use evalmint_model::{Feedback, FeedbackId, TenantId, TraceId, ValidFeedback};
use rusqlite::Row;

use crate::StoreError;

pub(crate) use crate::convert::{internal, nanos, system_time, timestamp};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Internal(format!("sqlite: {e}"))
    }
}

/// A feedback row (`id, received_at, body, investigation_id`) as stored: the body exactly as
/// submitted, for idempotency checks, and the feedback as served, with its joined trace.
pub(crate) struct FeedbackRow {
    pub submitted: ValidFeedback,
    pub feedback: Feedback,
}

pub(crate) fn feedback_row(tenant: &TenantId, row: &Row<'_>) -> rusqlite::Result<FeedbackRow> {
    let id: Vec<u8> = row.get(0)?;
    let received_at: i64 = row.get(1)?;
    let body: String = row.get(2)?;
    let joined: Option<Vec<u8>> = row.get(3)?;
    let to_sql_err = |e: String| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, e.into())
    };
    let submitted: ValidFeedback =
        crate::encoding::decode(&body).map_err(|e| to_sql_err(e.to_string()))?;
    let id = uuid::Uuid::from_slice(&id).map_err(|e| to_sql_err(e.to_string()))?;
    let mut served = submitted.clone();
    if let Some(trace) = joined.and_then(|b| TraceId::from_bytes(&b).ok()) {
        served.investigation_id = Some(trace);
    }
    Ok(FeedbackRow {
        submitted,
        feedback: Feedback {
            id: FeedbackId::from_uuid(id),
            tenant: tenant.clone(),
            received_at: timestamp(received_at),
            body: served,
        },
    })
}
