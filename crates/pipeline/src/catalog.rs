//! The tenants' entity catalogs in the label pipeline: what one investigation adds to its tenant's
//! catalog before drafting (tool-call entity tags, the names its results showed), and the
//! scheduled feeding from the configured Prometheus sources' label values and the static catalog
//! file.

use std::sync::Arc;
use std::time::Duration;

use evalmint_model::{
    Catalog, CatalogEntry, CatalogFormat, EntityProvenance, Investigation, TenantId,
    parse_catalog_file, tool_call_entries,
};
use evalmint_store::FullStore;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Connector};
use crate::evidence::Evidence;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The entities an investigation itself names: its tool calls' entity tags and what its frozen
/// results showed (topology kinds, owning teams, calls as dependencies).
pub fn investigation_entries(
    investigation: &Investigation,
    evidence: &Evidence,
) -> Vec<CatalogEntry> {
    let mut entries = tool_call_entries(investigation.tool_calls());
    for name in &evidence.entities {
        let mut entry = CatalogEntry::new(name, EntityProvenance::ToolCall);
        entry.kind = evidence.kind_of(name).map(str::to_owned);
        entry.team = evidence.teams.get(name).cloned();
        entry.depends_on = evidence
            .calls
            .get(name)
            .map(|callees| callees.iter().cloned().collect())
            .unwrap_or_default();
        entries.push(entry);
    }
    entries
}

/// The catalog one investigation is read against: the tenant's stored catalog plus the
/// investigation's own entities, which are also stored for the investigations to come.
pub async fn catalog_for(
    store: &dyn FullStore,
    tenant: &TenantId,
    investigation: &Investigation,
    evidence: &Evidence,
) -> evalmint_store::Result<Catalog> {
    let own = investigation_entries(investigation, evidence);
    let mut catalog = store.catalog(tenant).await?;
    if !own.is_empty() {
        store.upsert_catalog(tenant, own.clone()).await?;
    }
    for entry in own {
        catalog.insert(entry);
    }
    Ok(catalog)
}

/// An entry for one value of a Prometheus label.
pub fn label_value_entry(label: &str, value: &str) -> CatalogEntry {
    let kind = match label {
        "service" | "service_name" => Some("service"),
        "pod" | "pod_name" => Some("pod"),
        "instance" => Some("instance"),
        "namespace" => Some("namespace"),
        "container" | "container_name" => Some("container"),
        "node" => Some("node"),
        _ => None,
    };
    CatalogEntry::instance(value.trim(), kind, EntityProvenance::Prometheus)
}

/// What one refresh read, and what went wrong (a source down is reported, not fatal).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RefreshReport {
    pub entries: usize,
    pub problems: Vec<String>,
}

/// Feeds the configured tenants' catalogs from the Prometheus sources and the static file.
pub struct CatalogFeeder {
    store: Arc<dyn FullStore>,
    config: Arc<Config>,
    http: reqwest::Client,
}

impl CatalogFeeder {
    pub fn new(store: Arc<dyn FullStore>, config: Arc<Config>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap_or_default();
        CatalogFeeder {
            store,
            config,
            http,
        }
    }

    /// Whether there is anything to feed: tenants, and a file or a Prometheus source.
    pub fn has_work(&self) -> bool {
        let catalog = &self.config.catalog;
        !catalog.tenants.is_empty()
            && (catalog.file.is_some() || self.prometheus().next().is_some())
    }

    fn prometheus(&self) -> impl Iterator<Item = (&str, &str)> {
        self.config
            .sources
            .iter()
            .filter_map(|s| match &s.connector {
                Connector::Prometheus { endpoint } => Some((s.name.as_str(), endpoint.as_str())),
                _ => None,
            })
    }

    /// Reads the file and every Prometheus source once and writes what they name.
    pub async fn refresh(&self) -> RefreshReport {
        let mut report = RefreshReport::default();
        let mut entries = Vec::new();
        if let Some(path) = &self.config.catalog.file {
            match read_catalog_file(path).await {
                Ok(found) => entries.extend(found),
                Err(problem) => report.problems.push(problem),
            }
        }
        for (name, endpoint) in self.prometheus() {
            match self.label_values(endpoint).await {
                Ok(found) => entries.extend(found),
                Err(problem) => report.problems.push(format!("source {name}: {problem}")),
            }
        }
        report.entries = entries.len();
        for tenant in &self.config.catalog.tenants {
            if let Err(e) = self.store.upsert_catalog(tenant, entries.clone()).await {
                report
                    .problems
                    .push(format!("tenant {tenant}: cannot store the catalog: {e}"));
            }
        }
        report
    }

    /// Refreshes at once and then every `catalog.refresh`, until shutdown.
    pub async fn run(self, shutdown: CancellationToken) {
        if !self.has_work() {
            return;
        }
        let period = self.config.catalog.refresh.unsigned_abs();
        loop {
            let report = self.refresh().await;
            for problem in &report.problems {
                tracing::warn!(%problem, "catalog refresh");
            }
            tracing::debug!(entries = report.entries, "catalog refreshed");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
        }
    }

    /// Values of the configured labels that the source knows, bounded per label.
    async fn label_values(&self, endpoint: &str) -> Result<Vec<CatalogEntry>, String> {
        let known: Vec<String> = self.get(&format!("{endpoint}/api/v1/labels")).await?;
        let mut entries = Vec::new();
        for label in &self.config.catalog.labels {
            if !known.contains(label) {
                continue;
            }
            let values: Vec<String> = self
                .get(&format!("{endpoint}/api/v1/label/{label}/values"))
                .await?;
            entries.extend(
                values
                    .iter()
                    .filter(|v| !v.trim().is_empty())
                    .take(self.config.catalog.max_values)
                    .map(|value| label_value_entry(label, value)),
            );
        }
        Ok(entries)
    }

    async fn get(&self, url: &str) -> Result<Vec<String>, String> {
        #[derive(Deserialize)]
        struct Answer {
            status: String,
            #[serde(default)]
            data: Vec<String>,
            #[serde(default)]
            error: Option<String>,
        }
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        let answer: Answer = response
            .json()
            .await
            .map_err(|e| format!("{url} answered {status} with an unreadable body: {e}"))?;
        if answer.status != "success" {
            return Err(format!(
                "{url} answered {status}: {}",
                answer.error.unwrap_or_default()
            ));
        }
        Ok(answer.data)
    }
}

async fn read_catalog_file(path: &std::path::Path) -> Result<Vec<CatalogEntry>, String> {
    let shown = path.display();
    let format = CatalogFormat::from_path(&path.to_string_lossy())
        .ok_or_else(|| format!("catalog.file {shown}: name it .yaml, .toml or .json"))?;
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| format!("catalog.file {shown}: {e}"))?;
    parse_catalog_file(&text, format).map_err(|e| format!("catalog.file {shown}: {e}"))
}
