//! The names a tenant's world is made of: services, datastores, pods, hosts, queues. The label
//! pipeline reads users' words against this catalog, and every entity it recognises carries where
//! it came from, so precision can be reported per recognition path.

use serde::{Deserialize, Serialize};

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

/// A tenant's entities as the label pipeline sees them for one investigation: the stored catalog
/// plus whatever the investigation itself names. Lookup and matching of text against it live in
/// the pipeline; this type only holds the entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    entries: Vec<CatalogEntry>,
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
        let Some(existing) = self.entries.iter_mut().find(|e| e.name == entry.name) else {
            self.entries.push(entry);
            return;
        };
        existing.kind = existing.kind.take().or(entry.kind);
        existing.workload = existing.workload.take().or(entry.workload);
        existing.team = existing.team.take().or(entry.team);
        for alias in entry.aliases {
            if !existing.aliases.contains(&alias) {
                existing.aliases.push(alias);
            }
        }
        for dependency in entry.depends_on {
            if !existing.depends_on.contains(&dependency) {
                existing.depends_on.push(dependency);
            }
        }
    }

    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    pub fn get(&self, name: &str) -> Option<&CatalogEntry> {
        self.entries.iter().find(|e| e.name == name)
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
}
