//! HTTP handlers, one module per resource.

pub(crate) mod catalog;
pub(crate) mod feedback;
pub(crate) mod investigations;
pub(crate) mod keys;
pub(crate) mod labels;
pub(crate) mod ops;
pub(crate) mod otlp;

use std::future::Future;
use std::time::Instant;

use crate::AppState;

/// Runs a store write and records how long it took to become durable.
pub(crate) async fn timed_write<T>(
    state: &AppState,
    operation: &'static str,
    write: impl Future<Output = T>,
) -> T {
    let started = Instant::now();
    let outcome = write.await;
    state.metrics.store_write(operation, started.elapsed());
    outcome
}
