//! Conversions between domain values and SQLite columns.

use evalmint_model::{Feedback, FeedbackId, TenantId, Timestamp, TraceId, ValidFeedback};
use rusqlite::Row;

use crate::StoreError;

pub(crate) fn nanos(t: Timestamp) -> i64 {
    i64::try_from(t.as_nanosecond()).unwrap_or(i64::MAX)
}

pub(crate) fn timestamp(nanos: i64) -> Timestamp {
    Timestamp::from_nanosecond(i128::from(nanos)).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A store time (nanoseconds) as a file time.
pub(crate) fn system_time(nanos: i64) -> std::time::SystemTime {
    let since_epoch = std::time::Duration::from_nanos(nanos.unsigned_abs());
    if nanos >= 0 {
        std::time::UNIX_EPOCH + since_epoch
    } else {
        std::time::UNIX_EPOCH - since_epoch
    }
}

pub(crate) fn internal(e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(e.to_string())
}

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
        super::encoding::decode(&body).map_err(|e| to_sql_err(e.to_string()))?;
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
