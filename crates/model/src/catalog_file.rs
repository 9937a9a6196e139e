//! Static catalog files an operator writes or already has: evalmint's own list of entities
//! (YAML, TOML or JSON) and Backstage `catalog-info.yaml` documents (Component, Resource,
//! System). Parsing only; reading the file is the caller's business.

use serde::Deserialize;

use crate::catalog::{CatalogEntry, EntityProvenance};

/// How a catalog file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogFormat {
    /// One or more YAML documents: evalmint's format or Backstage entities (JSON is YAML too).
    Yaml,
    Toml,
    Json,
}

impl CatalogFormat {
    /// The format a file name's extension says, if any.
    pub fn from_path(path: &str) -> Option<Self> {
        let extension = path.rsplit_once('.')?.1.to_ascii_lowercase();
        match extension.as_str() {
            "yaml" | "yml" => Some(CatalogFormat::Yaml),
            "toml" => Some(CatalogFormat::Toml),
            "json" => Some(CatalogFormat::Json),
            _ => None,
        }
    }

    /// The format a `Content-Type` names, ignoring parameters.
    pub fn from_media_type(content_type: &str) -> Option<Self> {
        let media_type = content_type.split(';').next()?.trim().to_ascii_lowercase();
        match media_type.as_str() {
            "application/yaml" | "application/x-yaml" | "text/yaml" => Some(CatalogFormat::Yaml),
            "application/toml" => Some(CatalogFormat::Toml),
            "application/json" => Some(CatalogFormat::Json),
            _ => None,
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            CatalogFormat::Yaml => "application/yaml",
            CatalogFormat::Toml => "application/toml",
            CatalogFormat::Json => "application/json",
        }
    }
}

/// Why a catalog file was refused, naming the document and entry at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CatalogFileError(String);

/// Longest accepted entity name (a DNS name's limit).
const MAX_NAME: usize = 253;

/// evalmint's own entry format.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    name: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    workload: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    team: Option<String>,
    #[serde(default)]
    depends_on: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDocument {
    entities: Vec<serde_json::Value>,
}

/// The parts of a Backstage entity evalmint reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BackstageEntity {
    kind: String,
    metadata: BackstageMetadata,
    #[serde(default)]
    spec: BackstageSpec,
}

#[derive(Debug, Deserialize)]
struct BackstageMetadata {
    name: String,
    #[serde(default)]
    title: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BackstageSpec {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    depends_on: Vec<String>,
}

/// Parses a catalog file into entries of provenance `static_file`. Backstage kinds other than
/// Component, Resource and System (API, Group, User, Location, …) name no runtime entity and are
/// skipped.
pub fn parse_catalog_file(
    text: &str,
    format: CatalogFormat,
) -> Result<Vec<CatalogEntry>, CatalogFileError> {
    let documents: Vec<serde_json::Value> = match format {
        CatalogFormat::Json => vec![
            serde_json::from_str(text)
                .map_err(|e| CatalogFileError(format!("invalid JSON: {e}")))?,
        ],
        CatalogFormat::Toml => {
            vec![toml::from_str(text).map_err(|e| CatalogFileError(format!("invalid TOML: {e}")))?]
        }
        CatalogFormat::Yaml => serde_yaml_ng::Deserializer::from_str(text)
            .enumerate()
            .map(|(index, document)| {
                serde_json::Value::deserialize(document).map_err(|e| {
                    CatalogFileError(format!("document {}: invalid YAML: {e}", index + 1))
                })
            })
            .filter(|document| !matches!(document, Ok(serde_json::Value::Null)))
            .collect::<Result<_, _>>()?,
    };
    let several = documents.len() > 1;
    let mut entries = Vec::new();
    for (index, document) in documents.into_iter().enumerate() {
        let place = |what: String| {
            if several {
                CatalogFileError(format!("document {}: {what}", index + 1))
            } else {
                CatalogFileError(what)
            }
        };
        entries.extend(document_entries(document).map_err(place)?);
    }
    if entries.is_empty() {
        return Err(CatalogFileError(
            "the file names no entities (expected `entities: [...]` or Backstage Component, Resource or System documents)".into(),
        ));
    }
    Ok(entries)
}

fn document_entries(document: serde_json::Value) -> Result<Vec<CatalogEntry>, String> {
    let is_backstage = document
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .is_some_and(|v| v.starts_with("backstage.io/"));
    if is_backstage {
        let entity: BackstageEntity =
            serde_json::from_value(document).map_err(|e| format!("Backstage entity: {e}"))?;
        return Ok(backstage_entry(entity).into_iter().collect());
    }
    let listed: Vec<serde_json::Value> = if document.is_array() {
        serde_json::from_value(document)
    } else {
        serde_json::from_value::<FileDocument>(document).map(|d| d.entities)
    }
    .map_err(|e| format!("not a list of entities: {e}"))?;
    listed
        .into_iter()
        .enumerate()
        .map(|(index, entry)| {
            serde_json::from_value::<FileEntry>(entry)
                .map_err(|e| e.to_string())
                .and_then(file_entry)
                .map_err(|e| format!("entity {}: {e}", index + 1))
        })
        .collect()
}

fn file_entry(entry: FileEntry) -> Result<CatalogEntry, String> {
    let name = valid_name(&entry.name)?;
    Ok(CatalogEntry {
        kind: non_empty(entry.kind),
        workload: non_empty(entry.workload),
        aliases: names(entry.aliases, "alias")?,
        team: non_empty(entry.team),
        depends_on: names(entry.depends_on, "dependency")?,
        ..CatalogEntry::new(name, EntityProvenance::StaticFile)
    })
}

fn backstage_entry(entity: BackstageEntity) -> Option<CatalogEntry> {
    let default_kind = match entity.kind.as_str() {
        "Component" => "service",
        "Resource" => "resource",
        "System" => "system",
        _ => return None,
    };
    let name = entity.metadata.name.trim().to_owned();
    let aliases = entity
        .metadata
        .title
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty() && *t != name)
        .into_iter()
        .collect();
    Some(CatalogEntry {
        kind: Some(non_empty(entity.spec.kind).unwrap_or_else(|| default_kind.to_owned())),
        aliases,
        team: entity.spec.owner.as_deref().map(entity_ref_name),
        depends_on: entity
            .spec
            .depends_on
            .iter()
            .map(|r| entity_ref_name(r))
            .collect(),
        ..CatalogEntry::new(name, EntityProvenance::StaticFile)
    })
}

/// The name in a Backstage entity reference: `resource:default/payments-db` → `payments-db`.
fn entity_ref_name(reference: &str) -> String {
    let without_kind = reference
        .split_once(':')
        .map_or(reference, |(_, rest)| rest);
    let name = without_kind
        .rsplit_once('/')
        .map_or(without_kind, |(_, name)| name);
    name.trim().to_owned()
}

fn valid_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("name is empty".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "name {:?}… is longer than {MAX_NAME} bytes",
            &name[..32]
        ));
    }
    Ok(name.to_owned())
}

fn names(list: Vec<String>, what: &str) -> Result<Vec<String>, String> {
    list.iter()
        .map(|name| valid_name(name).map_err(|e| format!("{what}: {e}")))
        .collect()
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    fn check(text: &str, format: CatalogFormat, expected: Expect) {
        let rendered = match parse_catalog_file(text, format) {
            Ok(entries) => entries
                .iter()
                .map(|e| serde_json::to_string(e).unwrap() + "\n")
                .collect::<String>(),
            Err(e) => format!("error: {e}\n"),
        };
        expected.assert_eq(&rendered);
    }

    #[test]
    fn evalmint_format_in_yaml_toml_and_json() {
        check(
            "entities:\n  - name: payments-db\n    kind: database\n    aliases: [paydb, payments database]\n    team: payments\n    depends_on: [disk-1]\n  - name: checkout\n",
            CatalogFormat::Yaml,
            expect![[r#"
                {"name":"payments-db","kind":"database","aliases":["paydb","payments database"],"team":"payments","depends_on":["disk-1"],"provenance":"static_file"}
                {"name":"checkout","provenance":"static_file"}
            "#]],
        );
        check(
            "[[entities]]\nname = \"payments-db\"\nkind = \"database\"\n",
            CatalogFormat::Toml,
            expect![[r#"
                {"name":"payments-db","kind":"database","provenance":"static_file"}
            "#]],
        );
        check(
            r#"[{"name": " cart ", "workload": "cart-svc"}]"#,
            CatalogFormat::Json,
            expect![[r#"
                {"name":"cart","workload":"cart-svc","provenance":"static_file"}
            "#]],
        );
    }

    #[test]
    fn backstage_documents_become_entries() {
        check(
            r#"apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout
  title: Checkout Service
  annotations: {github.com/project-slug: acme/checkout}
spec:
  type: service
  lifecycle: production
  owner: group:default/shop-team
  system: shop
  dependsOn: [resource:default/payments-db, component:cart]
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata: {name: payments-db}
spec: {type: database, owner: payments}
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata: {name: shop}
spec: {owner: shop-team}
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata: {name: checkout-api}
spec: {type: openapi}
---
"#,
            CatalogFormat::Yaml,
            expect![[r#"
                {"name":"checkout","kind":"service","aliases":["Checkout Service"],"team":"shop-team","depends_on":["payments-db","cart"],"provenance":"static_file"}
                {"name":"payments-db","kind":"database","team":"payments","provenance":"static_file"}
                {"name":"shop","kind":"system","team":"shop-team","provenance":"static_file"}
            "#]],
        );
    }

    #[test]
    fn bad_files_name_their_problem() {
        check(
            "entities:\n  - name: a\n  - kind: database\n",
            CatalogFormat::Yaml,
            expect![[r#"
                error: entity 2: missing field `name`
            "#]],
        );
        check(
            "entities:\n  - name: a\n  - name: '  '\n",
            CatalogFormat::Yaml,
            expect![[r#"
                error: entity 2: name is empty
            "#]],
        );
        check(
            "entities:\n  - name: a\n    owner: x\n",
            CatalogFormat::Yaml,
            expect![[r#"
                error: entity 1: unknown field `owner`, expected one of `name`, `kind`, `workload`, `aliases`, `team`, `depends_on`
            "#]],
        );
        check(
            "name: a\n---\nentities: [\n",
            CatalogFormat::Yaml,
            expect![[r#"
                error: document 2: invalid YAML: did not find expected node content at line 4 column 1, while parsing a flow node
            "#]],
        );
        check(
            "entities = 3",
            CatalogFormat::Toml,
            expect![[r#"
                error: not a list of entities: invalid type: integer `3`, expected a sequence
            "#]],
        );
        check(
            "{",
            CatalogFormat::Json,
            expect![[r#"
            error: invalid JSON: EOF while parsing an object at line 1 column 1
        "#]],
        );
        check(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nspec: {}\n",
            CatalogFormat::Yaml,
            expect![[r#"
                error: Backstage entity: missing field `metadata`
            "#]],
        );
        check(
            "",
            CatalogFormat::Yaml,
            expect![[r#"
            error: the file names no entities (expected `entities: [...]` or Backstage Component, Resource or System documents)
        "#]],
        );
    }

    #[test]
    fn formats_follow_extensions_and_media_types() {
        assert_eq!(
            CatalogFormat::from_path("catalog-info.YML"),
            Some(CatalogFormat::Yaml)
        );
        assert_eq!(
            CatalogFormat::from_path("entities.toml"),
            Some(CatalogFormat::Toml)
        );
        assert_eq!(CatalogFormat::from_path("README"), None);
        for format in [
            CatalogFormat::Yaml,
            CatalogFormat::Toml,
            CatalogFormat::Json,
        ] {
            assert_eq!(
                CatalogFormat::from_media_type(format.media_type()),
                Some(format)
            );
        }
        assert_eq!(
            CatalogFormat::from_media_type("application/json; charset=utf-8"),
            Some(CatalogFormat::Json)
        );
    }
}
