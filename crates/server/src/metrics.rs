//! Self-telemetry in Prometheus text format. Names follow `evalmint_<noun>_<unit>_total`; every
//! label has a bounded set of values (routes are matched paths, never raw URLs).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OriginLabels {
    origin: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RouteLabels, Counter>,
    spans_accepted: Counter,
    spans_rejected: Counter,
    feedback_accepted: Family<OriginLabels, Counter>,
    store_write_seconds: Family<OperationLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RouteLabels, Counter>::default();
        registry.register(
            "evalmint_http_requests",
            "HTTP requests by matched route and status code",
            requests.clone(),
        );
        let spans_accepted = Counter::default();
        registry.register(
            "evalmint_spans_accepted",
            "Spans stored from OTLP and native ingest",
            spans_accepted.clone(),
        );
        let spans_rejected = Counter::default();
        registry.register(
            "evalmint_spans_rejected",
            "Spans refused as invalid (reported to clients as OTLP partial success)",
            spans_rejected.clone(),
        );
        let feedback_accepted = Family::<OriginLabels, Counter>::default();
        registry.register(
            "evalmint_feedback_accepted",
            "Feedback records durably stored, by origin",
            feedback_accepted.clone(),
        );
        let store_write_seconds =
            Family::<OperationLabels, Histogram>::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0005, 2.0, 14))
            });
        registry.register(
            "evalmint_store_write_seconds",
            "Time from queueing a write to its durable commit",
            store_write_seconds.clone(),
        );
        Metrics {
            registry,
            requests,
            spans_accepted,
            spans_rejected,
            feedback_accepted,
            store_write_seconds,
        }
    }
}

impl Metrics {
    /// The registry, for other components to register their metrics before serving starts.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    pub(crate) fn request(&self, route: &str, status: u16) {
        self.requests
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
                status,
            })
            .inc();
    }

    pub(crate) fn spans(&self, accepted: usize, rejected: usize) {
        self.spans_accepted.inc_by(accepted as u64);
        self.spans_rejected.inc_by(rejected as u64);
        if rejected > 0 {
            tracing::debug!(accepted, rejected, "spans rejected");
        }
    }

    pub(crate) fn feedback(&self, origin: evalmint_model::FeedbackOrigin, count: usize) {
        self.feedback_accepted
            .get_or_create(&OriginLabels {
                origin: origin.as_str(),
            })
            .inc_by(count as u64);
    }

    pub(crate) fn store_write(&self, operation: &'static str, took: Duration) {
        self.store_write_seconds
            .get_or_create(&OperationLabels { operation })
            .observe(took.as_secs_f64());
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
