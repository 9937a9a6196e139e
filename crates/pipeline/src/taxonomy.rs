//! The root-cause taxonomy as data: each category's name, description, phrases and parent. A
//! default ships with evalmint (`taxonomy.toml`); `evalmint.toml` may extend or replace it with
//! `[[taxonomy.category]]` entries. Reading text for a category (corrections, conclusions, log
//! lines, events) goes through here, so a tenant's own vocabulary is one config change away.

use evalmint_model::Category;
use serde::Deserialize;

/// The taxonomy evalmint ships with.
const DEFAULT_TAXONOMY: &str = include_str!("taxonomy.toml");

/// Parents are followed at most this deep (a longer chain is a cycle).
const MAX_DEPTH: usize = 8;

/// One category of the taxonomy.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryDef {
    pub category: Category,
    /// A short human name for statements ("connection pool exhaustion").
    pub description: String,
    /// Lowercase phrases with their weight; a phrase matches at the start of a word.
    pub phrases: Vec<(String, f64)>,
    pub parent: Option<Category>,
}

/// The validated set of categories.
#[derive(Debug, Clone, PartialEq)]
pub struct Taxonomy {
    categories: Vec<CategoryDef>,
}

impl Default for Taxonomy {
    fn default() -> Self {
        let raw: RawTaxonomyFile =
            toml::from_str(DEFAULT_TAXONOMY).expect("the shipped taxonomy parses");
        let mut problems = Vec::new();
        let taxonomy = Taxonomy::build(None, raw.category, "taxonomy", &mut problems);
        debug_assert!(problems.is_empty(), "{problems:?}");
        taxonomy
    }
}

/// `[taxonomy]` in `evalmint.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTaxonomy {
    /// Start from an empty taxonomy instead of the shipped one.
    #[serde(default)]
    replace_default: bool,
    #[serde(default)]
    category: Vec<RawCategory>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTaxonomyFile {
    category: Vec<RawCategory>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCategory {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    phrases: Vec<RawPhrase>,
    #[serde(default)]
    parent: Option<String>,
}

/// `"phrase"` (weight 1) or `["phrase", weight]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawPhrase {
    Plain(String),
    Weighted(String, f64),
}

impl RawTaxonomy {
    /// The configured taxonomy: the shipped one with these categories added (a category with a
    /// shipped name replaces it), or only these when `replace_default` is set.
    pub(crate) fn validate(self, problems: &mut Vec<String>) -> Taxonomy {
        let base = (!self.replace_default).then(Taxonomy::default);
        Taxonomy::build(base, self.category, "taxonomy.category", problems)
    }
}

impl Taxonomy {
    fn build(
        base: Option<Taxonomy>,
        raw: Vec<RawCategory>,
        key: &str,
        problems: &mut Vec<String>,
    ) -> Taxonomy {
        let mut taxonomy = base.unwrap_or(Taxonomy {
            categories: Vec::new(),
        });
        let mut parents: Vec<(Category, String, String)> = Vec::new();
        for (index, raw) in raw.into_iter().enumerate() {
            let key = format!("{key}[{index}]");
            let category = match Category::new(raw.name.trim()) {
                Ok(c) => c,
                Err(e) => {
                    problems.push(format!("{key}.name: {e}"));
                    continue;
                }
            };
            let mut phrases = Vec::new();
            for phrase in raw.phrases {
                let (text, weight) = match phrase {
                    RawPhrase::Plain(text) => (text, 1.0),
                    RawPhrase::Weighted(text, weight) => (text, weight),
                };
                let text = text.trim().to_lowercase();
                if text.is_empty() {
                    problems.push(format!("{key}.phrases: an empty phrase"));
                } else if !(weight.is_finite() && weight > 0.0) {
                    problems.push(format!("{key}.phrases: {text:?} needs a positive weight"));
                } else {
                    phrases.push((text, weight));
                }
            }
            if let Some(parent) = raw.parent {
                parents.push((category.clone(), parent, key.clone()));
            }
            let def = CategoryDef {
                description: raw
                    .description
                    .map(|d| d.trim().to_owned())
                    .filter(|d| !d.is_empty())
                    .unwrap_or_else(|| category.as_str().replace(['.', '_'], " ")),
                category,
                phrases,
                parent: None,
            };
            match taxonomy
                .categories
                .iter_mut()
                .find(|c| c.category == def.category)
            {
                Some(existing) => *existing = def,
                None => taxonomy.categories.push(def),
            }
        }
        for (child, parent, key) in parents {
            let parent = match Category::new(parent.trim()) {
                Ok(p) if taxonomy.get(&p).is_some() && p != child => p,
                _ => {
                    problems.push(format!(
                        "{key}.parent: {parent:?} is not another category of the taxonomy"
                    ));
                    continue;
                }
            };
            if let Some(def) = taxonomy.categories.iter_mut().find(|c| c.category == child) {
                def.parent = Some(parent);
            }
        }
        for def in &taxonomy.categories {
            if taxonomy.ancestors(&def.category).count() >= MAX_DEPTH {
                problems.push(format!(
                    "taxonomy: {}'s parents form a cycle or nest deeper than {MAX_DEPTH}",
                    def.category
                ));
            }
        }
        taxonomy
    }

    pub fn categories(&self) -> &[CategoryDef] {
        &self.categories
    }

    pub fn get(&self, category: &Category) -> Option<&CategoryDef> {
        self.categories.iter().find(|c| &c.category == category)
    }

    /// The category's parent, grandparent, … (bounded, so a cycle cannot hang).
    pub fn ancestors<'a>(&'a self, category: &Category) -> impl Iterator<Item = &'a Category> {
        let mut current = self.get(category).and_then(|d| d.parent.as_ref());
        std::iter::from_fn(move || {
            let this = current?;
            current = self.get(this).and_then(|d| d.parent.as_ref());
            Some(this)
        })
        .take(MAX_DEPTH)
    }

    /// Whether two categories say the same thing at different precision: equal, or one is an
    /// ancestor of the other (`resource.cpu.container` agrees with `resource.cpu`).
    pub fn agrees(&self, a: &Category, b: &Category) -> bool {
        a == b || self.ancestors(a).any(|c| c == b) || self.ancestors(b).any(|c| c == a)
    }

    /// A short human name for statements.
    pub fn describe<'a>(&'a self, category: &'a Category) -> &'a str {
        self.get(category)
            .map_or(category.as_str(), |d| d.description.as_str())
    }

    /// Weighted evidence for each category in `text`.
    pub fn weights(&self, text: &str) -> Vec<(Category, f64)> {
        let text = text.to_lowercase();
        self.categories
            .iter()
            .filter_map(|def| {
                let weight: f64 = def
                    .phrases
                    .iter()
                    .filter(|(phrase, _)| starts_a_word(&text, phrase))
                    .map(|(_, w)| w)
                    .sum();
                (weight > 0.0).then(|| (def.category.clone(), weight))
            })
            .collect()
    }

    /// The best-supported category of `text`, if any phrase matched.
    pub fn category_of(&self, text: &str) -> Option<Category> {
        crate::lexicon::best(self.weights(text))
    }

    /// Whether any phrase of any category occurs in `text` (already lowercase) at a word start.
    pub(crate) fn mentions_a_phrase(&self, text: &str) -> bool {
        self.categories
            .iter()
            .flat_map(|d| &d.phrases)
            .any(|(phrase, _)| starts_a_word(text, phrase))
    }
}

/// Whether `phrase` occurs in `text` where a word starts (so `lag` does not match `flag`, while
/// `throttl` matches `throttled`).
fn starts_a_word(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase).any(|(start, _)| {
        text[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_taxonomy_is_valid_and_keeps_the_stable_names() {
        let raw: RawTaxonomyFile = toml::from_str(DEFAULT_TAXONOMY).unwrap();
        let mut problems = Vec::new();
        let taxonomy = Taxonomy::build(None, raw.category, "taxonomy", &mut problems);
        assert_eq!(problems, Vec::<String>::new());
        for stable in [
            Category::RESOURCE_MEMORY,
            Category::RESOURCE_CPU,
            Category::RESOURCE_DISK,
            Category::RESOURCE_CONNECTION_POOL,
            Category::BAD_DEPLOY,
            Category::CONFIG_CHANGE,
            Category::DEPENDENCY_FAILURE,
            Category::NETWORK_LATENCY,
            Category::NETWORK_LOSS,
            Category::NETWORK_DNS,
            Category::TRAFFIC_SPIKE,
            Category::CERT_EXPIRY,
            Category::QUEUE_BACKLOG,
            Category::DATA_ISSUE,
            Category::INFRASTRUCTURE,
        ] {
            assert!(taxonomy.get(&stable).is_some(), "{stable}");
        }
    }

    #[test]
    fn phrases_map_to_the_most_specific_category() {
        let taxonomy = Taxonomy::default();
        for (text, expected) in [
            ("payments-db pods OOM-killed from 14:02", "resource.memory"),
            (
                "FATAL: remaining connection slots are reserved",
                "resource.connection_pool",
            ),
            ("db connection limit", "resource.connection_pool"),
            ("x509: certificate has expired", "cert_expiry"),
            ("dial tcp: lookup payments-db: no such host", "network.dns"),
            ("the 14:02 deploy of cart broke it", "bad_deploy"),
            ("orders consumer lag keeps growing", "queue_backlog"),
            ("container CPU load", "resource.cpu.container"),
            ("high CPU usage", "resource.cpu"),
            ("node cpu saturated", "resource.cpu.node"),
            ("high disk I/O read usage", "resource.disk.read_io"),
            ("disk write i/o was pegged", "resource.disk.write_io"),
            ("high disk space usage", "resource.disk.space"),
            ("network delay", "network.latency"),
            ("network packet loss", "network.loss"),
            ("packet corruption on eth0", "network.corruption"),
            ("tcp retransmissions", "network.retransmission"),
            ("the pod is in CrashLoopBackOff", "process.crash_loop"),
            ("the process was terminated", "process.termination"),
            ("a code defect in the parser", "code_defect"),
        ] {
            assert_eq!(
                taxonomy.category_of(text).as_ref().map(Category::as_str),
                Some(expected),
                "{text}"
            );
        }
        assert_eq!(taxonomy.category_of("it was slow"), None);
        assert_eq!(
            taxonomy.category_of("a feature flag"),
            Some(Category::CONFIG_CHANGE)
        );
        assert!(
            taxonomy
                .weights("the flag")
                .iter()
                .all(|(c, _)| *c != Category::QUEUE_BACKLOG)
        );
    }

    #[test]
    fn hierarchy_decides_agreement() {
        let taxonomy = Taxonomy::default();
        let container = Category::new("resource.cpu.container").unwrap();
        assert!(taxonomy.agrees(&container, &Category::RESOURCE_CPU));
        assert!(taxonomy.agrees(&Category::RESOURCE_CPU, &container));
        assert!(!taxonomy.agrees(&container, &Category::RESOURCE_MEMORY));
        assert_eq!(taxonomy.describe(&container), "container CPU saturation");
    }

    #[test]
    fn configured_categories_extend_or_replace_the_default() {
        let raw: RawTaxonomy = toml::from_str(
            r#"
            [[category]]
            name = "resource.gpu"
            description = "GPU memory exhaustion"
            phrases = ["gpu", ["cuda out of memory", 4.0]]
            [[category]]
            name = "resource.cpu.jvm"
            parent = "resource.cpu"
            phrases = [["gc pause", 3.0]]
            "#,
        )
        .unwrap();
        let mut problems = Vec::new();
        let taxonomy = raw.validate(&mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            taxonomy
                .category_of("CUDA out of memory on the trainer")
                .unwrap()
                .as_str(),
            "resource.gpu"
        );
        let jvm = Category::new("resource.cpu.jvm").unwrap();
        assert!(taxonomy.agrees(&jvm, &Category::RESOURCE_CPU));
        assert_eq!(taxonomy.describe(&jvm), "resource cpu jvm");

        let raw: RawTaxonomy = toml::from_str(
            r#"
            replace_default = true
            [[category]]
            name = "Bad Name"
            [[category]]
            name = "orphan"
            parent = "missing"
            phrases = [["x", -1.0]]
            [[category]]
            name = "a"
            parent = "b"
            [[category]]
            name = "b"
            parent = "a"
            "#,
        )
        .unwrap();
        let mut problems = Vec::new();
        let taxonomy = raw.validate(&mut problems);
        assert!(taxonomy.get(&Category::RESOURCE_CPU).is_none());
        let text = problems.join("\n");
        assert!(text.contains("taxonomy.category[0].name"), "{text}");
        assert!(text.contains("taxonomy.category[1].phrases"), "{text}");
        assert!(text.contains("taxonomy.category[1].parent"), "{text}");
        assert!(text.contains("cycle"), "{text}");
    }
}
