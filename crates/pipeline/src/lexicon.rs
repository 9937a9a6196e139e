//! The category lexicon: words and log phrases that point at each root-cause category, used on
//! corrections, conclusions and snapshot evidence alike.

use evalmint_model::Category;

/// Phrases per category with a weight; more specific phrases weigh more.
const LEXICON: &[(Category, &[(&str, f64)])] = &[
    (
        Category::ResourceMemory,
        &[
            ("oom", 2.0),
            ("out of memory", 2.0),
            ("outofmemory", 2.0),
            ("memory leak", 2.0),
            ("memory", 1.0),
            ("heap", 1.0),
            ("container_memory", 1.5),
            ("memory_", 1.0),
        ],
    ),
    (Category::ResourceCpu, &[("cpu", 2.0), ("throttl", 1.5)]),
    (
        Category::ResourceDisk,
        &[
            ("disk full", 2.0),
            ("no space left", 2.5),
            ("disk", 1.5),
            ("volume", 0.5),
            ("inode", 1.5),
        ],
    ),
    (
        Category::ResourceConnectionPool,
        &[
            ("connection pool", 2.5),
            ("pool exhaust", 2.5),
            ("connection slots", 2.5),
            ("too many connections", 2.5),
            ("pool", 1.5),
        ],
    ),
    (
        Category::BadDeploy,
        &[
            ("deploy", 1.5),
            ("rollout", 1.5),
            ("rolled back", 1.5),
            ("rolling back", 1.5),
            ("release", 1.0),
            ("regression", 1.0),
            ("nullpointer", 1.0),
            ("panic", 0.5),
        ],
    ),
    (
        Category::ConfigChange,
        &[("config", 2.0), ("feature flag", 2.0), ("misconfigur", 2.0)],
    ),
    (
        Category::DependencyFailure,
        &[
            ("dependency", 1.5),
            ("slow responses", 1.5),
            ("upstream timeout", 1.0),
            ("deadline exceeded", 1.0),
        ],
    ),
    (
        Category::NetworkLatency,
        &[
            ("network latency", 2.5),
            ("network delay", 2.5),
            ("rtt", 1.0),
        ],
    ),
    (
        Category::NetworkLoss,
        &[
            ("packet loss", 2.5),
            ("packet", 1.5),
            ("retransmi", 1.5),
            ("connection reset", 1.0),
            ("network", 1.0),
        ],
    ),
    (
        Category::NetworkDns,
        &[
            ("dns", 2.5),
            ("no such host", 2.5),
            ("name resolution", 2.0),
            ("stopped resolving", 2.0),
            ("nxdomain", 2.0),
        ],
    ),
    (
        Category::TrafficSpike,
        &[
            ("traffic spike", 2.5),
            ("spike in traffic", 2.5),
            ("traffic", 1.5),
            ("surge", 1.5),
            ("load spike", 2.0),
        ],
    ),
    (
        Category::CertExpiry,
        &[
            ("certificate", 2.5),
            ("x509", 2.5),
            ("tls", 1.5),
            ("cert", 2.0),
            ("credential", 1.0),
        ],
    ),
    (
        Category::QueueBacklog,
        &[
            ("consumer lag", 2.5),
            ("lag", 1.5),
            ("backlog", 2.0),
            ("kafka", 1.0),
            ("consumergroup", 1.5),
        ],
    ),
    (
        Category::DataIssue,
        &[
            ("corrupt", 2.0),
            ("bad data", 2.0),
            ("migration", 1.5),
            ("schema", 1.0),
            ("constraint", 1.0),
        ],
    ),
    (
        Category::Infrastructure,
        &[
            ("node failure", 2.5),
            ("node", 1.0),
            ("notready", 2.0),
            ("not ready", 1.5),
            ("kernel", 1.0),
            ("hardware", 1.5),
            ("restarts", 0.5),
        ],
    ),
];

/// Weighted evidence for each category in `text`.
pub(crate) fn category_weights(text: &str) -> Vec<(Category, f64)> {
    let text = text.to_ascii_lowercase();
    LEXICON
        .iter()
        .filter_map(|(category, phrases)| {
            let weight: f64 = phrases
                .iter()
                .filter(|(phrase, _)| text.contains(phrase))
                .map(|(_, w)| w)
                .sum();
            (weight > 0.0).then_some((*category, weight))
        })
        .collect()
}

/// The best-supported category of `text`, if any phrase matched.
pub fn category_of(text: &str) -> Option<Category> {
    best(category_weights(text))
}

pub(crate) fn best(weights: Vec<(Category, f64)>) -> Option<Category> {
    weights
        .into_iter()
        .fold(None::<(Category, f64)>, |acc, (c, w)| match acc {
            Some((_, best)) if best >= w => acc,
            _ => Some((c, w)),
        })
        .map(|(c, _)| c)
}

/// What a shifted metric says about the category, by its name and direction.
pub(crate) fn metric_category(metric: &str, rising: bool) -> Option<(Category, f64)> {
    let name = metric.to_ascii_lowercase();
    let has = |word: &str| name.contains(word);
    Some(match (rising, ()) {
        (true, ()) if has("memory") || has("heap") => (Category::ResourceMemory, 2.0),
        (true, ()) if has("cpu") => (Category::ResourceCpu, 1.5),
        (true, ()) if has("disk") || has("filesystem") => (Category::ResourceDisk, 2.0),
        (true, ()) if has("pool") => (Category::ResourceConnectionPool, 2.0),
        (true, ()) if has("lag") || has("backlog") => (Category::QueueBacklog, 2.0),
        (true, ()) if has("request_rate") || has("requests") => (Category::TrafficSpike, 2.0),
        (true, ()) if has("restart") => (Category::Infrastructure, 0.5),
        _ => return None,
    })
}

/// A short human name for a category, for statements.
pub(crate) fn describe(category: Category) -> &'static str {
    match category {
        Category::ResourceMemory => "memory exhaustion",
        Category::ResourceCpu => "CPU saturation",
        Category::ResourceDisk => "disk full",
        Category::ResourceConnectionPool => "connection pool exhaustion",
        Category::BadDeploy => "a bad deploy",
        Category::ConfigChange => "a configuration change",
        Category::DependencyFailure => "a slow or failing dependency",
        Category::NetworkLatency => "network latency",
        Category::NetworkLoss => "packet loss",
        Category::NetworkDns => "DNS resolution failure",
        Category::TrafficSpike => "a traffic spike",
        Category::CertExpiry => "an expired certificate",
        Category::QueueBacklog => "consumer lag",
        Category::DataIssue => "bad data",
        Category::Infrastructure => "an infrastructure failure",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_map_to_categories() {
        for (text, expected) in [
            (
                "payments-db pods OOM-killed from 14:02",
                Category::ResourceMemory,
            ),
            (
                "FATAL: remaining connection slots are reserved",
                Category::ResourceConnectionPool,
            ),
            ("x509: certificate has expired", Category::CertExpiry),
            (
                "dial tcp: lookup payments-db: no such host",
                Category::NetworkDns,
            ),
            ("the 14:02 deploy of cart broke it", Category::BadDeploy),
            ("orders consumer lag keeps growing", Category::QueueBacklog),
        ] {
            assert_eq!(category_of(text), Some(expected), "{text}");
        }
        assert_eq!(category_of("it was slow"), None);
    }
}
