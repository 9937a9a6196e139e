//! Recognising the entities a piece of text names. First against the catalog — tolerating case,
//! `-`/`_`/space, kind words ("the payments database" → `payments-db`), aliases, instances and
//! their workloads, and a one-letter typo in longer names — then, for what no catalog knows, by
//! shape alone (open vocabulary): identifier-shaped tokens (`redis-cart-0`, `os_021`, `Tomcat01`,
//! `ip-10-0-3-7`) and a noun in front of a kind word ("the ledger database"). Nothing here
//! depends on a particular system's names.

use std::collections::HashMap;
use std::sync::LazyLock;

use evalmint_model::{Catalog, CatalogEntry, EntityProvenance};

use crate::taxonomy::Taxonomy;

/// Longest run of words one catalog name may span ("payments primary db").
const MAX_WINDOW_WORDS: usize = 4;
/// Shortest (squashed) name a one-letter typo is tolerated in.
const MIN_TYPO_LEN: usize = 6;

/// How a mention was recognised; also a label segment (`recognition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum How {
    /// The catalog name as written (any case).
    Exact,
    /// The catalog name with other separators, or with a kind word for its suffix.
    Normalised,
    /// One of the entry's aliases.
    Alias,
    /// The catalog name with one letter wrong.
    Typo,
    /// Not in the catalog: recognised by its shape.
    OpenVocabulary,
}

impl How {
    pub fn as_str(self) -> &'static str {
        match self {
            How::Exact => "catalog_exact",
            How::Normalised => "catalog_normalised",
            How::Alias => "catalog_alias",
            How::Typo => "catalog_typo",
            How::OpenVocabulary => "open_vocabulary",
        }
    }
}

/// One entity mention in a text.
#[derive(Debug, Clone, PartialEq)]
pub struct Mention {
    /// The catalog's canonical name, or the name as written for open vocabulary.
    pub entity: String,
    /// For an instance (pod, host), the workload it belongs to.
    pub workload: Option<String>,
    pub provenance: EntityProvenance,
    pub how: How,
    /// Byte range of the mention in the text.
    pub start: usize,
    pub end: usize,
}

/// Kind words: their canonical part (so `database` and `db` are one) and whether they may end a
/// noun phrase that names an entity ("the ledger database").
const KIND_WORDS: &[(&str, &str)] = &[
    ("database", "db"),
    ("databases", "db"),
    ("db", "db"),
    ("service", "service"),
    ("svc", "service"),
    ("cache", "cache"),
    ("queue", "queue"),
    ("server", "server"),
    ("cluster", "cluster"),
    ("broker", "broker"),
    ("topic", "topic"),
    ("bucket", "bucket"),
    ("gateway", "gateway"),
    ("proxy", "proxy"),
    ("pod", "pod"),
    ("host", "host"),
    ("node", "node"),
    ("instance", "instance"),
    ("container", "container"),
    ("api", "api"),
    ("worker", "worker"),
];

/// Words that introduce a noun phrase ("the ledger database").
const DETERMINERS: &[&str] = &[
    "the", "a", "an", "our", "their", "its", "his", "her", "my", "your", "this", "that",
];
/// Words that describe rather than name ("the wrong service", "the main database").
const DESCRIBING: &[&str] = &[
    "wrong",
    "right",
    "same",
    "other",
    "main",
    "primary",
    "secondary",
    "replica",
    "whole",
    "entire",
    "only",
    "first",
    "second",
    "last",
    "new",
    "old",
    "slow",
    "bad",
    "good",
    "broken",
    "failing",
    "affected",
    "upstream",
    "downstream",
    "shared",
    "internal",
    "external",
    "real",
    "actual",
    "underlying",
    "single",
    "local",
    "remote",
    "backend",
    "database",
    "another",
    "every",
    "each",
    "which",
    "whose",
    "faulty",
    "problematic",
    "culprit",
];
/// Leading parts of hyphenated English words ("follow-up", "re-run", "non-blocking").
const AFFIXES: &[&str] = &[
    "re", "non", "pre", "co", "self", "well", "un", "up", "out", "off", "on", "in", "by", "so",
    "de", "anti", "multi", "semi", "sub", "over", "under", "cross", "half", "long", "short",
    "high", "low", "built", "follow", "one", "two", "three", "first", "second", "end", "top",
    "read", "write", "all", "full", "sign", "opt", "roll", "set", "check", "log", "time",
];
/// File extensions: `config.yaml` is a file, not a component.
const FILE_EXTENSIONS: &[&str] = &[
    "yaml", "yml", "json", "toml", "xml", "txt", "log", "md", "py", "go", "rs", "js", "ts", "java",
    "conf", "cfg", "ini", "sh", "sql", "csv", "html", "env",
];

/// One word of the text: a maximal run of letters, digits and `-`/`_`/`.`, without separators at
/// its ends.
#[derive(Debug, Clone)]
struct Word<'a> {
    text: &'a str,
    start: usize,
    end: usize,
    /// Only whitespace lies between this word and the next (a window may span them).
    joined_to_next: bool,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn words(text: &str) -> Vec<Word<'_>> {
    let mut out: Vec<Word<'_>> = Vec::new();
    let mut iter = text.char_indices().peekable();
    while let Some((start, c)) = iter.next() {
        if !is_word_char(c) {
            if !c.is_whitespace()
                && let Some(last) = out.last_mut()
            {
                last.joined_to_next = false;
            }
            continue;
        }
        let mut end = start + c.len_utf8();
        while let Some(&(i, c)) = iter.peek() {
            if !is_word_char(c) {
                break;
            }
            end = i + c.len_utf8();
            iter.next();
        }
        let raw = &text[start..end];
        let trimmed_start = raw.len() - raw.trim_start_matches(['-', '_', '.']).len();
        let inner = raw.trim_matches(['-', '_', '.']);
        let trailing_dot = raw.ends_with('.');
        if let Some(last) = out.last_mut()
            && (trimmed_start > 0 && raw.starts_with('.'))
        {
            last.joined_to_next = false;
        }
        if inner.is_empty() {
            continue;
        }
        let word_start = start + trimmed_start;
        out.push(Word {
            text: inner,
            start: word_start,
            end: word_start + inner.len(),
            joined_to_next: !trailing_dot,
        });
    }
    out
}

/// The parts of a name, lowercase, with kind words canonical: `Payments_Database` → `paymentsdb`.
fn squash(name: &str) -> String {
    name.split(|c: char| !c.is_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|part| {
            let lower = part.to_lowercase();
            KIND_WORDS
                .iter()
                .find(|(word, _)| *word == lower)
                .map_or(lower, |(_, canonical)| (*canonical).to_owned())
        })
        .collect()
}

/// A catalog key: what a window must squash to, and what it then means.
#[derive(Debug, Clone)]
struct Key {
    entity: String,
    workload: Option<String>,
    provenance: EntityProvenance,
    alias: bool,
}

fn keys(catalog: &Catalog) -> HashMap<String, Key> {
    let mut keys: HashMap<String, Key> = HashMap::new();
    let mut add = |text: &str, key: Key| {
        let squashed = squash(text);
        if !squashed.is_empty() {
            keys.entry(squashed).or_insert(key);
        }
    };
    for entry in catalog.entries() {
        let workload = workload_of(entry);
        add(
            &entry.name,
            Key {
                entity: entry.name.clone(),
                workload: workload.clone(),
                provenance: entry.provenance,
                alias: false,
            },
        );
        for alias in &entry.aliases {
            add(
                alias,
                Key {
                    entity: entry.name.clone(),
                    workload: workload.clone(),
                    provenance: entry.provenance,
                    alias: true,
                },
            );
        }
        // A workload known only through its instances is still a name users say.
        if let Some(workload) = workload {
            add(
                &workload,
                Key {
                    entity: workload.clone(),
                    workload: None,
                    provenance: entry.provenance,
                    alias: false,
                },
            );
        }
    }
    keys
}

/// The workload an instance belongs to, when the catalog knows it.
fn workload_of(entry: &CatalogEntry) -> Option<String> {
    entry.workload.clone().filter(|w| *w != entry.name)
}

/// Whether `a` and `b` differ by exactly one letter inserted, deleted, replaced or swapped with
/// its neighbour. Digits must agree: `tomcat02` is another instance than `tomcat01`, not a typo of it.
fn one_edit_apart(a: &str, b: &str) -> bool {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    a != b && digits(a) == digits(b) && strsim::osa_distance(a, b) == 1
}

/// URLs and redaction placeholders: never names, whatever their shape.
static NOT_NAMES: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"(?i)[a-z][a-z0-9+.-]*://\S+|\[redacted:[a-z_]+\]|\S+@\S+")
        .expect("a valid pattern")
});

/// Every entity `text` names, in order of appearance, without overlaps: catalog names first
/// (longest windows first), then open vocabulary in what remains. Run it on redacted text:
/// URLs, e-mail addresses and placeholders are skipped.
pub fn mentions(text: &str, catalog: &Catalog, taxonomy: &Taxonomy) -> Vec<Mention> {
    let words = words(text);
    let keys = keys(catalog);
    let mut found: Vec<Mention> = Vec::new();
    let skipped: Vec<(usize, usize)> = NOT_NAMES
        .find_iter(text)
        .map(|m| (m.start(), m.end()))
        .collect();
    let mut covered: Vec<bool> = words
        .iter()
        .map(|w| skipped.iter().any(|(s, e)| w.start < *e && *s < w.end))
        .collect();
    for size in (1..=MAX_WINDOW_WORDS).rev() {
        for first in 0..words.len() {
            let last = first + size - 1;
            if last >= words.len()
                || covered[first..=last].iter().any(|c| *c)
                || words[first..last].iter().any(|w| !w.joined_to_next)
            {
                continue;
            }
            let window = &text[words[first].start..words[last].end];
            let squashed = squash(window);
            let (key, how) = match keys.get(&squashed) {
                Some(key) if key.alias => (key, How::Alias),
                Some(key) if window.eq_ignore_ascii_case(&key.entity) => (key, How::Exact),
                Some(key) => (key, How::Normalised),
                None if size == 1 && squashed.chars().count() >= MIN_TYPO_LEN => {
                    let mut near = keys.iter().filter(|(k, _)| {
                        k.chars().count() >= MIN_TYPO_LEN && one_edit_apart(k, &squashed)
                    });
                    match (near.next(), near.next()) {
                        (Some((_, key)), None) => (key, How::Typo),
                        _ => continue,
                    }
                }
                None => continue,
            };
            covered[first..=last].iter_mut().for_each(|c| *c = true);
            found.push(Mention {
                entity: key.entity.clone(),
                workload: key.workload.clone(),
                provenance: key.provenance,
                how,
                start: words[first].start,
                end: words[last].end,
            });
        }
    }
    for (index, word) in words.iter().enumerate() {
        if covered[index] {
            continue;
        }
        let named = if identifier_shaped(word.text, taxonomy) {
            Some(word)
        } else {
            noun_before_kind(&words, index, &covered, taxonomy).then_some(word)
        };
        if let Some(word) = named {
            covered[index] = true;
            found.push(Mention {
                entity: word.text.to_owned(),
                workload: instance_of(word.text, catalog),
                provenance: EntityProvenance::OpenVocabulary,
                how: How::OpenVocabulary,
                start: word.start,
                end: word.end,
            });
        }
    }
    found.sort_by_key(|m| m.start);
    found
}

/// The workload an unknown instance name belongs to: a catalog name followed by instance
/// suffixes with digits (`checkout-7d9f8c6b5-x2k4q`, `payments-db-1`), the usual shape of pod,
/// replica and stateful-set names. `cart-redis` is another component, not an instance of `cart`.
fn instance_of(name: &str, catalog: &Catalog) -> Option<String> {
    let lower = name.to_lowercase();
    let names = catalog
        .entries()
        .iter()
        .flat_map(|e| std::iter::once(&e.name).chain(e.workload.as_ref()));
    names
        .filter(|workload| {
            let workload = workload.to_lowercase();
            lower
                .strip_prefix(&workload)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|rest| {
                    let parts: Vec<&str> = rest.split('-').collect();
                    parts.iter().any(|p| p.bytes().any(|b| b.is_ascii_digit()))
                        && parts.iter().all(|p| {
                            (1..=10).contains(&p.len())
                                && p.bytes().all(|b| b.is_ascii_alphanumeric())
                        })
                })
        })
        .max_by_key(|workload| workload.len())
        .cloned()
}

/// Names with the shape of an identifier: parts joined by `-`, `_` or `.`, or letters with digits
/// (`payments-db`, `redis-cart-0`, `os_021`, `Tomcat01`, `ip-10-0-3-7`, `db1.prod.internal`),
/// but not quantities, versions, file names or hyphenated English words.
fn identifier_shaped(word: &str, taxonomy: &Taxonomy) -> bool {
    let letters = word.chars().filter(|c| c.is_alphabetic()).count();
    let digits = word.chars().filter(|c| c.is_ascii_digit()).count();
    let joined = word.contains(['-', '_', '.']);
    let first = word.chars().next().unwrap_or(' ');
    if letters < 2 || !first.is_alphabetic() || word.chars().count() > 128 {
        return false;
    }
    let lower = word.to_lowercase();
    let parts: Vec<&str> = lower.split(['-', '_', '.']).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return false;
    }
    // Versions (v1.2.3) and single letters with a number (p99, x509, k8s).
    if (first == 'v' || first == 'V')
        && lower[1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    {
        return false;
    }
    if !joined {
        // Letters and digits in one run: a name with a number (`Tomcat01`, `MG02`), not `p99`.
        return digits > 0
            && letters >= 2
            && lower.chars().take_while(|c| c.is_alphabetic()).count() >= 2;
    }
    if lower.contains('.') {
        // `e.g`, `i.e`, `config.yaml`, `1.2`.
        if parts.iter().all(|p| p.chars().count() < 2)
            || parts
                .last()
                .is_some_and(|ext| FILE_EXTENSIONS.contains(ext))
        {
            return false;
        }
    }
    if digits > 0 || lower.contains('_') || lower.contains('.') {
        return true;
    }
    // Hyphenated letters only: a name (`payments-db`) unless it reads as English (`follow-up`,
    // `OOM-killed`, `out-of-memory`).
    parts.iter().all(|p| p.chars().count() >= 2)
        && !AFFIXES.contains(&parts[0])
        && !taxonomy.mentions_a_phrase(&lower)
}

/// A plain word between a determiner and a kind word: "the ledger database", "our billing
/// service". Describing words and taxonomy words ("the memory node") are not names.
fn noun_before_kind(
    words: &[Word<'_>],
    index: usize,
    covered: &[bool],
    taxonomy: &Taxonomy,
) -> bool {
    let (Some(before), Some(after)) = (
        index.checked_sub(1).and_then(|i| words.get(i)),
        words.get(index + 1),
    ) else {
        return false;
    };
    if covered[index + 1] || !before.joined_to_next || !words[index].joined_to_next {
        return false;
    }
    let noun = words[index].text.to_lowercase();
    let kind = after.text.to_lowercase();
    DETERMINERS.contains(&before.text.to_lowercase().as_str())
        && KIND_WORDS.iter().any(|(word, _)| *word == kind)
        && noun.chars().count() >= 3
        && noun.chars().all(|c| c.is_alphabetic())
        && !DESCRIBING.contains(&noun.as_str())
        && !DETERMINERS.contains(&noun.as_str())
        && !KIND_WORDS.iter().any(|(word, _)| *word == noun)
        && !taxonomy.mentions_a_phrase(&noun)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let mut db = CatalogEntry::new("payments-db", EntityProvenance::ToolCall);
        db.kind = Some("postgres".into());
        let mut pod = CatalogEntry::new("frontend-579b9bff58-t2dbm", EntityProvenance::Prometheus);
        pod.workload = Some("frontend".into());
        let mut cart = CatalogEntry::new("cart", EntityProvenance::StaticFile);
        cart.aliases.push("basket service".into());
        Catalog::new(vec![
            db,
            pod,
            cart,
            CatalogEntry::new("checkout", EntityProvenance::Trace),
            CatalogEntry::new("payments", EntityProvenance::ToolCall),
        ])
    }

    fn names(text: &str) -> Vec<(String, &'static str)> {
        mentions(text, &catalog(), &Taxonomy::default())
            .into_iter()
            .map(|m| (m.entity, m.how.as_str()))
            .collect()
    }

    #[test]
    fn catalog_names_are_matched_loosely_but_not_inside_longer_names() {
        for text in [
            "it was payments-db",
            "it was Payments_DB",
            "it was the payments db",
            "it was the payments database",
            "it was paymentsdb",
        ] {
            assert_eq!(names(text)[0].0, "payments-db", "{text}");
        }
        assert_eq!(names("it was payments-db")[0].1, "catalog_exact");
        assert_eq!(names("the payments database")[0].1, "catalog_normalised");
        assert_eq!(
            names("the basket service")[0],
            ("cart".into(), "catalog_alias")
        );
        assert_eq!(
            names("chekout was fine")[0],
            ("checkout".into(), "catalog_typo")
        );
        assert_eq!(
            names("payments was slow"),
            [("payments".into(), "catalog_exact")]
        );
        // A longer identifier is its own name, not a catalog name with a suffix; with an
        // instance's suffix, it belongs to that workload.
        let found = mentions("payments-db-2 died", &catalog(), &Taxonomy::default());
        assert_eq!(found[0].entity, "payments-db-2");
        assert_eq!(found[0].how, How::OpenVocabulary);
        assert_eq!(found[0].workload.as_deref(), Some("payments-db"));
        let found = mentions(
            "checkout-7d9f8c6b5-x2k4q and cart-redis",
            &catalog(),
            &Taxonomy::default(),
        );
        assert_eq!(found[0].workload.as_deref(), Some("checkout"));
        assert_eq!(
            (found[1].entity.as_str(), found[1].workload.as_deref()),
            ("cart-redis", None)
        );
        // Short names tolerate no typo.
        assert!(names("cert expired").iter().all(|(n, _)| n != "cart"));
        // Another number is another instance, not a typo.
        let numbered = Catalog::new(vec![CatalogEntry::new("Tomcat01", EntityProvenance::Trace)]);
        let found = mentions("it was Tomcat02", &numbered, &Taxonomy::default());
        assert_eq!(found[0].entity, "Tomcat02");
        assert_eq!(found[0].how, How::OpenVocabulary);
        let found = mentions("it was Tomcta01", &numbered, &Taxonomy::default());
        assert_eq!(
            (found[0].entity.as_str(), found[0].how),
            ("Tomcat01", How::Typo)
        );
    }

    #[test]
    fn instances_and_workloads_are_both_names() {
        let found = mentions(
            "frontend-579b9bff58-t2dbm restarted",
            &catalog(),
            &Taxonomy::default(),
        );
        assert_eq!(found[0].entity, "frontend-579b9bff58-t2dbm");
        assert_eq!(found[0].workload.as_deref(), Some("frontend"));
        assert_eq!(found[0].provenance, EntityProvenance::Prometheus);
        let found = mentions("the frontend was fine", &catalog(), &Taxonomy::default());
        assert_eq!(found[0].entity, "frontend");
    }

    #[test]
    fn open_vocabulary_reads_shapes_not_words() {
        for (text, expected) in [
            (
                "Not MG02 — it was Tomcat01: container CPU load.",
                vec!["MG02", "Tomcat01"],
            ),
            ("db_003 hit its connection limit", vec!["db_003"]),
            ("node-5 ran out of disk", vec!["node-5"]),
            ("redis-cart-0 was evicting keys", vec!["redis-cart-0"]),
            ("host ip-10-0-3-7 rebooted", vec!["ip-10-0-3-7"]),
            ("it was the ledger database", vec!["ledger"]),
            (
                "db1.prod.internal ran out of memory",
                vec!["db1.prod.internal"],
            ),
            (
                "it was the wrong service, a follow-up re-run at p99 was OOM-killed",
                vec![],
            ),
            (
                "see config.yaml, e.g. the v1.2.3 release, 500ms at 14:05 and x509",
                vec![],
            ),
            ("check the db", vec![]),
            ("the load was high on the memory node", vec![]),
        ] {
            let found: Vec<String> = names(text).into_iter().map(|(n, _)| n).collect();
            assert_eq!(found, expected, "{text}");
        }
        assert!(
            names("payments-db, not checkout")
                .iter()
                .all(|(_, how)| how.starts_with("catalog"))
        );
    }

    #[test]
    fn any_text_is_read_without_panicking() {
        for text in [
            "",
            "—",
            "é-ü_ñ.ø",
            "日本語のサービス-1",
            "🔥redis-0🔥",
            "a.-_b",
            "...",
            "-x-",
            "\u{0}",
        ] {
            let found = mentions(text, &catalog(), &Taxonomy::default());
            for m in found {
                assert!(text.is_char_boundary(m.start) && text.is_char_boundary(m.end));
            }
        }
    }
}
