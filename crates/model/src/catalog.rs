//! The names a tenant's world is made of: services, datastores, pods, hosts, queues. The label
//! pipeline reads users' words against this catalog, and every entity it recognises carries where
//! it came from, so precision can be reported per recognition path.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::ToolCall;

/// Where evalmint learned an entity's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityProvenance {
    /// Resource or span attributes of an ingested trace (`service.name`, `k8s.*`, `db.*`, …).
    Trace,
    /// The arguments or result of an agent's tool call.
    ToolCall,
    /// Label values of a configured Prometheus source.
    Prometheus,
    /// An operator's static catalog file (including Backstage `catalog-info.yaml`).
    StaticFile,
    /// A name a reviewer confirmed.
    Reviewer,
    /// Read from the text itself; no catalog knew it (unverified).
    OpenVocabulary,
}

impl EntityProvenance {
    pub const ALL: [EntityProvenance; 6] = [
        EntityProvenance::Trace,
        EntityProvenance::ToolCall,
        EntityProvenance::Prometheus,
        EntityProvenance::StaticFile,
        EntityProvenance::Reviewer,
        EntityProvenance::OpenVocabulary,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntityProvenance::Trace => "trace",
            EntityProvenance::ToolCall => "tool_call",
            EntityProvenance::Prometheus => "prometheus",
            EntityProvenance::StaticFile => "static_file",
            EntityProvenance::Reviewer => "reviewer",
            EntityProvenance::OpenVocabulary => "open_vocabulary",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// Whether an entity of this provenance is known to exist, rather than read from free text.
    pub fn is_verified(self) -> bool {
        self != EntityProvenance::OpenVocabulary
    }
}

/// One named thing in a tenant's world.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    /// The canonical name (`payments-db`, `frontend-579b9bff58-t2dbm`).
    pub name: String,
    /// `service`, `database`, `cache`, `queue`, `pod`, `host`, `node`, … when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// For an instance (pod, replica, host), the workload it belongs to (`frontend`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    pub provenance: EntityProvenance,
}

impl CatalogEntry {
    pub fn new(name: impl Into<String>, provenance: EntityProvenance) -> Self {
        CatalogEntry {
            name: name.into(),
            kind: None,
            workload: None,
            aliases: Vec::new(),
            team: None,
            depends_on: Vec::new(),
            provenance,
        }
    }
}

impl CatalogEntry {
    /// An entry for an instance (pod, replica, host) with the workload it belongs to, when its
    /// name shows one (see [`workload_of`]).
    pub fn instance(
        name: impl Into<String>,
        kind: Option<&str>,
        provenance: EntityProvenance,
    ) -> Self {
        let name = name.into();
        let workload = workload_of(&name, kind);
        CatalogEntry {
            kind: kind.map(str::to_owned),
            workload,
            ..CatalogEntry::new(name, provenance)
        }
    }

    /// Folds `other` (the same name, seen again) into this entry. The more authoritative
    /// provenance (a reviewer over a static file over observed telemetry over tool calls over
    /// free text) decides kind, workload and team where both know one, and becomes the entry's
    /// provenance; aliases and dependencies are unioned.
    pub fn merge(&mut self, other: CatalogEntry) {
        debug_assert_eq!(self.name, other.name);
        let other_wins = other.provenance.authority() > self.provenance.authority();
        let pick = |mine: &mut Option<String>, theirs: Option<String>| {
            if other_wins && theirs.is_some() || mine.is_none() {
                *mine = theirs.or(mine.take());
            }
        };
        pick(&mut self.kind, other.kind);
        pick(&mut self.workload, other.workload);
        pick(&mut self.team, other.team);
        if other_wins {
            self.provenance = other.provenance;
        }
        union_into(&mut self.aliases, other.aliases);
        union_into(&mut self.depends_on, other.depends_on);
        self.aliases.retain(|alias| *alias != self.name);
    }
}

fn union_into(into: &mut Vec<String>, more: Vec<String>) {
    for item in more {
        if !item.is_empty() && !into.contains(&item) {
            into.push(item);
        }
    }
}

impl EntityProvenance {
    /// How much an entry from this provenance is trusted over another's when they disagree.
    pub fn authority(self) -> u8 {
        match self {
            EntityProvenance::Reviewer => 5,
            EntityProvenance::StaticFile => 4,
            EntityProvenance::Trace | EntityProvenance::Prometheus => 3,
            EntityProvenance::ToolCall => 2,
            EntityProvenance::OpenVocabulary => 1,
        }
    }
}

/// The entities tool calls' arguments named (their entity tags), as catalog entries: one per
/// distinct name, however many calls named it.
pub fn tool_call_entries<'a>(calls: impl IntoIterator<Item = &'a ToolCall>) -> Vec<CatalogEntry> {
    let mut seen = HashSet::new();
    calls
        .into_iter()
        .flat_map(|call| call.entities.iter())
        .map(|name| name.trim())
        .filter(|name| !name.is_empty() && seen.insert(*name))
        .map(|name| CatalogEntry::instance(name, None, EntityProvenance::ToolCall))
        .collect()
}

/// Characters Kubernetes uses for generated name suffixes (no vowels, no look-alike digits).
const GENERATED_ALPHABET: &str = "bcdfghjklmnpqrstvwxz2456789";

fn is_generated(text: &str, lengths: std::ops::RangeInclusive<usize>) -> bool {
    lengths.contains(&text.len()) && text.chars().all(|c| GENERATED_ALPHABET.contains(c))
}

/// A ReplicaSet's pod-template hash: generated characters, or decimal digits in older clusters.
fn is_template_hash(text: &str) -> bool {
    is_generated(text, 6..=10)
        || ((6..=10).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()))
}

fn is_ipv4(text: &str) -> bool {
    text.parse::<core::net::Ipv4Addr>().is_ok()
}

/// Cloud host names that spell an address (`ip-10-0-3-7`): a host, never an instance of a workload.
fn is_address_host(text: &str) -> bool {
    text.strip_prefix("ip-")
        .is_some_and(|rest| is_ipv4(&rest.replace('-', ".")))
}

/// The workload an instance's name belongs to, read from its shape alone:
///
/// - a Deployment's pod, `frontend-579b9bff58-t2dbm` → `frontend` (also CronJob pods);
/// - a StatefulSet's replica, `redis-cart-0` → `redis-cart`;
/// - a DaemonSet's or Job's pod, `fluentd-x7k2p` → `fluentd` (when the suffix holds a digit, or
///   `kind` says it is a pod);
/// - a fully qualified host, `db-03.prod` → `db-03`; an `instance` label, `cart:8080` → `cart`.
///
/// Hosts that spell an address (`ip-10-0-3-7`, `10.0.3.7`) and names of workload kinds
/// (`service`, `database`, …) have none. `kind` is what the name is known to be, if anything.
pub fn workload_of(name: &str, kind: Option<&str>) -> Option<String> {
    let name = name.trim();
    let kind = kind.map(str::to_ascii_lowercase);
    let kind = kind.as_deref();
    let instance_kinds = ["pod", "instance", "replica", "container", "host", "node"];
    if kind.is_some_and(|k| !instance_kinds.contains(&k)) || name.is_empty() {
        return None;
    }
    // `host:port`, as Prometheus' `instance` label has it.
    if let Some((host, port)) = name.rsplit_once(':')
        && !host.is_empty()
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
    {
        if is_ipv4(host) || is_address_host(host) {
            return None;
        }
        return workload_of(host, kind).or_else(|| Some(host.to_owned()));
    }
    if is_ipv4(name) {
        return None;
    }
    if let Some((short, domain)) = name.split_once('.') {
        if short.is_empty() || domain.is_empty() || !domain.chars().any(char::is_alphabetic) {
            return None;
        }
        return Some(short.to_owned());
    }
    if is_address_host(name) || matches!(kind, Some("host" | "node")) {
        return None;
    }
    let parts: Vec<&str> = name.split('-').collect();
    if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let last = parts[parts.len() - 1];
    let base = |keep: usize| Some(parts[..keep].join("-"));
    if parts.len() >= 3 && is_generated(last, 5..=5) && is_template_hash(parts[parts.len() - 2]) {
        return base(parts.len() - 2);
    }
    let ordinal = last.bytes().all(|b| b.is_ascii_digit())
        && last.len() <= 4
        && (last == "0" || !last.starts_with('0'));
    if ordinal {
        return base(parts.len() - 1);
    }
    let pod_suffix = is_generated(last, 5..=5)
        && (kind == Some("pod") || last.bytes().any(|b| b.is_ascii_digit()));
    if pod_suffix {
        return base(parts.len() - 1);
    }
    None
}

/// A tenant's entities as the label pipeline sees them for one investigation: the stored catalog
/// plus whatever the investigation itself names. Lookup and matching of text against it live in
/// the pipeline; this type only holds the entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    entries: Vec<CatalogEntry>,
    /// Where each name sits in `entries`, so building a catalog of n names is O(n).
    positions: HashMap<String, usize>,
}

impl Catalog {
    pub fn new(entries: Vec<CatalogEntry>) -> Self {
        let mut catalog = Catalog::default();
        for entry in entries {
            catalog.insert(entry);
        }
        catalog
    }

    /// Adds an entry; an entry with the same name is merged (aliases and dependencies unioned,
    /// missing fields filled, the earlier provenance kept).
    pub fn insert(&mut self, entry: CatalogEntry) {
        let Some(&position) = self.positions.get(&entry.name) else {
            self.positions
                .insert(entry.name.clone(), self.entries.len());
            self.entries.push(entry);
            return;
        };
        let existing = &mut self.entries[position];
        existing.kind = existing.kind.take().or(entry.kind);
        existing.workload = existing.workload.take().or(entry.workload);
        existing.team = existing.team.take().or(entry.team);
        union_into(&mut existing.aliases, entry.aliases);
        union_into(&mut existing.depends_on, entry.depends_on);
    }

    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    pub fn get(&self, name: &str) -> Option<&CatalogEntry> {
        self.positions.get(name).map(|&i| &self.entries[i])
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserting_a_known_name_merges_instead_of_duplicating() {
        let mut first = CatalogEntry::new("payments-db", EntityProvenance::Trace);
        first.aliases.push("payments database".into());
        let mut second = CatalogEntry::new("payments-db", EntityProvenance::StaticFile);
        second.kind = Some("database".into());
        second.aliases.push("paydb".into());
        let catalog = Catalog::new(vec![first, second]);
        assert_eq!(catalog.len(), 1);
        let entry = catalog.get("payments-db").unwrap();
        assert_eq!(entry.kind.as_deref(), Some("database"));
        assert_eq!(entry.aliases, ["payments database", "paydb"]);
        assert_eq!(entry.provenance, EntityProvenance::Trace);
    }

    #[test]
    fn provenance_names_round_trip() {
        for provenance in EntityProvenance::ALL {
            assert_eq!(
                EntityProvenance::parse(provenance.as_str()),
                Some(provenance)
            );
        }
        assert!(!EntityProvenance::OpenVocabulary.is_verified());
    }

    #[test]
    fn instances_map_to_their_workload() {
        // (name, what it is known to be, the workload expected)
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            ("frontend-579b9bff58-t2dbm", None, Some("frontend")),
            (
                "checkout-service-6d8f7c9b5d-x2x7q",
                Some("pod"),
                Some("checkout-service"),
            ),
            ("payments-api-3866134158-5k2jz", None, Some("payments-api")),
            (
                "nightly-report-28911340-wk5zp",
                None,
                Some("nightly-report"),
            ),
            ("redis-cart-0", None, Some("redis-cart")),
            ("kafka-12", Some("pod"), Some("kafka")),
            ("fluentd-x7k2p", None, Some("fluentd")),
            ("fluentd-xqkbp", Some("pod"), Some("fluentd")),
            ("fluentd-xqkbp", None, None),
            ("db-03.prod", None, Some("db-03")),
            ("db-03.prod", Some("host"), Some("db-03")),
            ("db-03", None, None),
            ("cart:8080", None, Some("cart")),
            ("cart-7d4f8b6c9d-bcd45:8080", None, Some("cart")),
            ("ip-10-0-3-7", None, None),
            ("ip-10-0-3-7", Some("host"), None),
            ("10.0.3.7", None, None),
            ("10.0.3.7:9100", None, None),
            (
                "ip-10-0-3-7.ec2.internal",
                Some("host"),
                Some("ip-10-0-3-7"),
            ),
            ("worker-1", Some("node"), None),
            ("payments-db", None, None),
            ("checkout", None, None),
            ("api-gw", None, None),
            ("redis-cart-0", Some("service"), None),
            ("v1.2", None, None),
            ("-0", None, None),
            ("", None, None),
            ("a:", None, None),
        ];
        for (name, kind, expected) in cases {
            assert_eq!(
                workload_of(name, *kind).as_deref(),
                *expected,
                "workload of {name:?} known as {kind:?}"
            );
        }
    }

    #[test]
    fn a_more_authoritative_source_decides_the_fields_it_knows() {
        let mut seen = CatalogEntry::new("payments-db", EntityProvenance::Trace);
        seen.kind = Some("service".into());
        seen.team = Some("payments".into());
        let mut declared = CatalogEntry::new("payments-db", EntityProvenance::StaticFile);
        declared.kind = Some("database".into());
        declared.aliases = vec!["paydb".into(), "payments-db".into()];
        seen.merge(declared);
        assert_eq!(seen.kind.as_deref(), Some("database"));
        assert_eq!(
            seen.team.as_deref(),
            Some("payments"),
            "kept where the file is silent"
        );
        assert_eq!(seen.provenance, EntityProvenance::StaticFile);
        assert_eq!(seen.aliases, ["paydb"], "a name is not its own alias");

        let mut later = CatalogEntry::new("payments-db", EntityProvenance::ToolCall);
        later.kind = Some("cache".into());
        later.depends_on = vec!["disk".into()];
        seen.merge(later);
        assert_eq!(seen.kind.as_deref(), Some("database"));
        assert_eq!(seen.provenance, EntityProvenance::StaticFile);
        assert_eq!(seen.depends_on, ["disk"]);
    }

    #[test]
    fn an_instance_entry_carries_its_workload() {
        let pod = CatalogEntry::instance(
            "frontend-579b9bff58-t2dbm",
            Some("pod"),
            EntityProvenance::Trace,
        );
        assert_eq!(pod.workload.as_deref(), Some("frontend"));
        assert_eq!(pod.kind.as_deref(), Some("pod"));
    }
}
