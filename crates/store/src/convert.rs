//! Conversions both backends store the same way: times as integer nanoseconds since the epoch,
//! and failures as `StoreError::Internal`.

use evalmint_model::Timestamp;

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

/// A duration in nanoseconds, saturating.
pub(crate) fn duration_nanos(d: jiff::SignedDuration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}
