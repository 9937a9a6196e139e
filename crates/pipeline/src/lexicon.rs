//! What metric names say about a root-cause category, and picking the best-supported category
//! from weighted evidence. The phrases for text live in the configurable [`crate::taxonomy`].

use evalmint_model::Category;

use crate::taxonomy::Taxonomy;

/// The heaviest category; on a tie, the first seen.
pub(crate) fn best(weights: Vec<(Category, f64)>) -> Option<Category> {
    weights
        .into_iter()
        .fold(None::<(Category, f64)>, |acc, (c, w)| match acc {
            Some((_, best)) if best >= w => acc,
            _ => Some((c, w)),
        })
        .map(|(c, _)| c)
}

/// What a shifted metric says about the category, by its name and direction; only categories
/// the taxonomy has.
pub(crate) fn metric_category(
    taxonomy: &Taxonomy,
    metric: &str,
    rising: bool,
) -> Option<(Category, f64)> {
    if !rising {
        return None;
    }
    let name = metric.to_ascii_lowercase();
    let has = |word: &str| name.contains(word);
    let (category, weight) = if has("memory") || has("heap") {
        (Category::RESOURCE_MEMORY, 2.0)
    } else if has("cpu") {
        (Category::RESOURCE_CPU, 1.5)
    } else if has("disk") || has("filesystem") {
        (Category::RESOURCE_DISK, 2.0)
    } else if has("pool") {
        (Category::RESOURCE_CONNECTION_POOL, 2.0)
    } else if has("lag") || has("backlog") {
        (Category::QUEUE_BACKLOG, 2.0)
    } else if has("request_rate") || has("requests") {
        (Category::TRAFFIC_SPIKE, 2.0)
    } else if has("restart") {
        (Category::INFRASTRUCTURE, 0.5)
    } else {
        return None;
    };
    taxonomy
        .get(&category)
        .is_some()
        .then_some((category, weight))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_point_at_categories_only_when_rising_and_known() {
        let taxonomy = Taxonomy::default();
        assert_eq!(
            metric_category(&taxonomy, "container_memory_working_set_bytes", true),
            Some((Category::RESOURCE_MEMORY, 2.0))
        );
        assert_eq!(
            metric_category(&taxonomy, "container_memory_working_set_bytes", false),
            None
        );
        assert_eq!(metric_category(&taxonomy, "http_errors_total", true), None);
        assert_eq!(
            best(vec![
                (Category::RESOURCE_CPU, 1.0),
                (Category::RESOURCE_DISK, 2.0)
            ]),
            Some(Category::RESOURCE_DISK)
        );
    }
}
