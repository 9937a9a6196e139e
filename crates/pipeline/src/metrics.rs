//! The pipeline's self-metrics, registered into the server's registry when both run in one
//! process: capture slack (time left before the data would have expired) and TTL misses per
//! source, candidates by route, and how long claiming work from the store takes (the figure that
//! grows first when several workers contend for one database).

use std::sync::atomic::{AtomicU64, Ordering};

use jiff::SignedDuration;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: &'static str,
}

/// The two kinds of work a worker claims.
#[derive(Debug, Clone, Copy)]
pub enum Queue {
    LabelJobs,
    Captures,
}

#[derive(Debug)]
pub struct PipelineMetrics {
    capture_slack_seconds: Family<SourceLabels, Histogram, fn() -> Histogram>,
    claim_seconds: Family<QueueLabels, Histogram, fn() -> Histogram>,
    ttl_misses: Family<SourceLabels, Counter>,
    expired_before_feedback: Family<SourceLabels, Counter>,
    candidates: Family<RouteLabels, Counter>,
    ttl_miss_total: AtomicU64,
    expired_before_feedback_total: AtomicU64,
}

fn claim_histogram() -> Histogram {
    // From 100 µs to about 6.5 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

fn slack_histogram() -> Histogram {
    // From one second to about a month.
    Histogram::new(exponential_buckets(1.0, 4.0, 13))
}

impl Default for PipelineMetrics {
    fn default() -> Self {
        PipelineMetrics {
            capture_slack_seconds: Family::new_with_constructor(slack_histogram),
            claim_seconds: Family::new_with_constructor(claim_histogram),
            ttl_misses: Family::default(),
            expired_before_feedback: Family::default(),
            candidates: Family::default(),
            ttl_miss_total: AtomicU64::new(0),
            expired_before_feedback_total: AtomicU64::new(0),
        }
    }
}

impl PipelineMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "evalmint_capture_slack_seconds",
            "Time left before the captured data would have expired",
            self.capture_slack_seconds.clone(),
        );
        registry.register(
            "evalmint_capture_ttl_misses",
            "Snapshot queries whose data expired before capture",
            self.ttl_misses.clone(),
        );
        registry.register(
            "evalmint_capture_expired_before_feedback",
            "Snapshot queries whose data had expired before the feedback arrived (unreachable)",
            self.expired_before_feedback.clone(),
        );
        registry.register(
            "evalmint_pipeline_claim_seconds",
            "Time to claim a batch of work from the store, by queue",
            self.claim_seconds.clone(),
        );
        registry.register(
            "evalmint_candidates",
            "Candidate labels drafted, by route",
            self.candidates.clone(),
        );
    }

    pub(crate) fn captured(&self, source: &str, slack: SignedDuration) {
        self.capture_slack_seconds
            .get_or_create(&SourceLabels {
                source: source.to_owned(),
            })
            .observe(slack.as_secs_f64().max(0.0));
    }

    pub(crate) fn claimed(&self, queue: Queue, took: std::time::Duration) {
        let queue = match queue {
            Queue::LabelJobs => "label_jobs",
            Queue::Captures => "captures",
        };
        self.claim_seconds
            .get_or_create(&QueueLabels { queue })
            .observe(took.as_secs_f64());
    }

    pub(crate) fn ttl_miss(&self, source: &str) {
        self.ttl_miss_total.fetch_add(1, Ordering::Relaxed);
        self.ttl_misses
            .get_or_create(&SourceLabels {
                source: source.to_owned(),
            })
            .inc();
        tracing::warn!(source, "snapshot query missed its TTL");
    }

    pub(crate) fn expired_before_feedback(&self, source: &str) {
        self.expired_before_feedback_total
            .fetch_add(1, Ordering::Relaxed);
        self.expired_before_feedback
            .get_or_create(&SourceLabels {
                source: source.to_owned(),
            })
            .inc();
    }

    /// Queries whose data was gone before the feedback arrived, since start.
    pub fn expired_before_feedback_total(&self) -> u64 {
        self.expired_before_feedback_total.load(Ordering::Relaxed)
    }

    pub(crate) fn candidate(&self, route: evalmint_model::Route) {
        self.candidates
            .get_or_create(&RouteLabels {
                route: route.as_str(),
            })
            .inc();
    }

    /// TTL misses since start, for benchmarks.
    pub fn ttl_misses_total(&self) -> u64 {
        self.ttl_miss_total.load(Ordering::Relaxed)
    }
}
