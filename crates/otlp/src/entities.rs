//! The names an export request carries in its resource and span attributes (services, pods,
//! nodes, hosts, databases, queues, peers), for the tenant's entity catalog. One pass over the
//! attributes, deduplicated per request, so the ingest path pays little for it.

use std::collections::HashMap;

use evalmint_model::{CatalogEntry, EntityProvenance, workload_of};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;

/// Resource attributes that name a workload, and the kind of workload.
const WORKLOAD_KEYS: &[(&str, &str)] = &[
    ("k8s.deployment.name", "deployment"),
    ("k8s.statefulset.name", "statefulset"),
    ("k8s.daemonset.name", "daemonset"),
    ("k8s.job.name", "job"),
    ("k8s.cronjob.name", "cronjob"),
];

/// Every entity the request names, one entry per name.
pub fn catalog_entries(request: &ExportTraceServiceRequest) -> Vec<CatalogEntry> {
    let mut found = Found::default();
    for resource_spans in &request.resource_spans {
        let resource: &[KeyValue] = resource_spans
            .resource
            .as_ref()
            .map_or(&[], |r| &r.attributes[..]);
        let text = |key: &str| attribute(resource, key);
        let spans = resource_spans.scope_spans.iter().flat_map(|s| &s.spans);
        // An agent's own service is the agent, not part of the world it investigates.
        let is_agent = spans.clone().any(|span| {
            span.attributes
                .iter()
                .any(|kv| kv.key == "gen_ai.operation.name" || kv.key == "openinference.span.kind")
        });
        let service = text("service.name").filter(|name| !name.starts_with("unknown_service"));
        if let Some(service) = service {
            found.add(CatalogEntry {
                kind: Some(if is_agent { "agent" } else { "service" }.into()),
                ..entry(service)
            });
        }
        let workload = WORKLOAD_KEYS
            .iter()
            .find_map(|(key, kind)| Some((text(key)?, *kind)));
        if let Some((name, kind)) = &workload {
            found.add(CatalogEntry {
                kind: Some((*kind).into()),
                ..entry(name)
            });
        }
        if let Some(pod) = text("k8s.pod.name") {
            let mut entry = instance(pod, "pod");
            if let Some((name, _)) = workload {
                entry.workload = Some(name.to_owned());
            }
            found.add(entry);
        }
        for (key, kind) in [
            ("k8s.namespace.name", "namespace"),
            ("k8s.node.name", "node"),
        ] {
            if let Some(name) = text(key) {
                found.add(CatalogEntry {
                    kind: Some(kind.into()),
                    ..entry(name)
                });
            }
        }
        if let Some(host) = text("host.name").filter(|h| !is_generated_id(h)) {
            found.add(instance(host, "host"));
        }
        let caller = service.filter(|_| !is_agent);
        for span in spans {
            let dependencies = span_entities(&span.attributes, &mut found);
            if let Some(caller) = caller {
                found.depends(caller, dependencies);
            }
        }
    }
    found.into_entries()
}

/// The entities one span's attributes name (databases and their servers, queues, peer
/// services); returns the names the span's service depends on.
fn span_entities(attributes: &[KeyValue], found: &mut Found) -> Vec<String> {
    let text = |key: &str| attribute(attributes, key);
    let mut dependencies = Vec::new();
    if let Some(system) = text("db.system.name").or_else(|| text("db.system")) {
        let server = text("server.address").or_else(|| text("net.peer.name"));
        let database = text("db.namespace").or_else(|| text("db.name"));
        if let Some(server) = server.filter(|s| !is_address(s)) {
            let mut host = instance(server, "database");
            host.workload = workload_of(server, Some("host"));
            dependencies.push(host.workload.clone().unwrap_or_else(|| server.to_owned()));
            found.add(host);
        }
        if let Some(database) = database {
            let mut entry = entry(database);
            entry.kind = Some("database".into());
            entry.aliases = vec![format!("{system} {database}")];
            dependencies.push(database.to_owned());
            found.add(entry);
        }
    }
    if let Some(destination) = text("messaging.destination.name") {
        found.add(CatalogEntry {
            kind: Some("queue".into()),
            ..entry(destination)
        });
        dependencies.push(destination.to_owned());
    }
    if let Some(peer) = text("peer.service") {
        found.add(CatalogEntry {
            kind: Some("service".into()),
            ..entry(peer)
        });
        dependencies.push(peer.to_owned());
    }
    dependencies
}

#[derive(Default)]
struct Found {
    by_name: HashMap<String, CatalogEntry>,
}

impl Found {
    fn add(&mut self, entry: CatalogEntry) {
        if entry.name.is_empty() {
            return;
        }
        match self.by_name.get_mut(&entry.name) {
            Some(existing) => existing.merge(entry),
            None => {
                self.by_name.insert(entry.name.clone(), entry);
            }
        }
    }

    fn depends(&mut self, caller: &str, on: Vec<String>) {
        let Some(entry) = self.by_name.get_mut(caller) else {
            return;
        };
        for dependency in on {
            if dependency != caller && !entry.depends_on.contains(&dependency) {
                entry.depends_on.push(dependency);
            }
        }
    }

    fn into_entries(self) -> Vec<CatalogEntry> {
        let mut entries: Vec<CatalogEntry> = self.by_name.into_values().collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries
    }
}

fn entry(name: &str) -> CatalogEntry {
    CatalogEntry::new(name, EntityProvenance::Trace)
}

fn instance(name: &str, kind: &str) -> CatalogEntry {
    CatalogEntry::instance(name, Some(kind), EntityProvenance::Trace)
}

/// A string attribute's value, trimmed; other value types do not name entities.
fn attribute<'a>(list: &'a [KeyValue], key: &str) -> Option<&'a str> {
    list.iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.trim()),
            _ => None,
        })
        .filter(|s| !s.is_empty())
}

fn is_address(text: &str) -> bool {
    text.parse::<std::net::IpAddr>().is_ok()
}

/// Container ids and similar generated host names name nothing a user would say.
fn is_generated_id(text: &str) -> bool {
    text.len() >= 12 && text.bytes().all(|b| b.is_ascii_hexdigit())
}
