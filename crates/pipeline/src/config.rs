//! `evalmint.toml`: telemetry sources with their retention, and the pipeline's thresholds. Parsed
//! strictly (unknown keys are errors) and validated in one place that reports every problem with
//! its key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use evalmint_model::{SignalSource, TenantId};
use jiff::SignedDuration;
use serde::Deserialize;

use crate::taxonomy::{RawTaxonomy, Taxonomy};

/// How a source is queried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connector {
    /// The result recorded in the trace; nothing is re-run.
    Recorded,
    /// The Prometheus HTTP API (`/api/v1/query_range`) at `endpoint`.
    Prometheus { endpoint: String },
    /// `GET endpoint` with the tool call's arguments as query parameters, optionally renamed.
    HttpJson {
        endpoint: String,
        rename: BTreeMap<String, String>,
    },
}

/// A named telemetry backend the agent queries.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub name: String,
    pub signal: SignalSource,
    pub connector: Connector,
    /// Data older than this is gone from the source.
    pub ttl: SignedDuration,
    /// Tool names that read from this source; empty means "any tool of this signal".
    pub tools: Vec<String>,
    /// Captures in flight against this source, at most.
    pub concurrency: usize,
}

/// Which tenants' feedback may become labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Labelling {
    AllTenants,
    Tenants(Vec<TenantId>),
}

impl Labelling {
    pub fn allows(&self, tenant: &TenantId) -> bool {
        match self {
            Labelling::AllTenants => true,
            Labelling::Tenants(list) => list.contains(tenant),
        }
    }
}

/// Minimum score per dimension for admission.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub specificity: f64,
    pub accuracy: f64,
    pub thoroughness: f64,
}

/// The optional LLM drafter: any OpenAI-compatible chat-completions endpoint (see [`crate::llm`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmConfig {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:8000/v1`.
    pub endpoint: String,
    pub model: String,
    /// Name of the environment variable that holds the API key; `None` sends no key (local servers).
    pub api_key_env: Option<String>,
    /// For the whole request, answer included.
    pub timeout: SignedDuration,
    /// Also ask the model for a second opinion on deterministic drafts, which feeds accuracy.
    pub validate: bool,
    /// A PEM bundle of extra certificate authorities to trust besides the system's (a private CA
    /// in front of a self-hosted model).
    pub ca_file: Option<PathBuf>,
}

/// What feeds the tenants' entity catalogs besides ingest: label values of the Prometheus
/// sources, refreshed on a schedule, and an optional static catalog file.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogConfig {
    /// Tenants whose catalog the sources and the file describe. Defaults to the labelling
    /// tenants when those are listed; with none, only ingest feeds catalogs.
    pub tenants: Vec<TenantId>,
    /// An entity list (YAML, TOML or JSON) or Backstage `catalog-info.yaml`.
    pub file: Option<PathBuf>,
    /// How often the file and the Prometheus label values are read again.
    pub refresh: SignedDuration,
    /// Prometheus labels whose values name entities.
    pub labels: Vec<String>,
    /// Values read per label and source, at most (bounds a high-cardinality label).
    pub max_values: usize,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            tenants: Vec::new(),
            file: None,
            refresh: SignedDuration::from_mins(15),
            labels: [
                "service",
                "job",
                "pod",
                "instance",
                "namespace",
                "container",
            ]
            .map(str::to_owned)
            .to_vec(),
            max_values: 10_000,
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub sources: Vec<Source>,
    pub thresholds: Thresholds,
    /// Share of admitted candidates also sent to review, to measure admission precision.
    pub audit_fraction: f64,
    pub labelling: Labelling,
    /// How long feedback waits for its trace before it is declared a non-candidate.
    pub trace_wait: SignedDuration,
    /// Capture attempts per query before falling back to the recorded result.
    pub capture_attempts: u32,
    /// Noise queries added per snapshot, at most.
    pub noise_queries: usize,
    /// How long a claimed label job belongs to its worker. A worker that dies holds its jobs
    /// this long; one that outlives its lease finds its job claimed again and writes nothing.
    pub job_lease: SignedDuration,
    /// The same for a claimed snapshot capture.
    pub capture_lease: SignedDuration,
    /// The LLM drafter; `None` (the default) when `[llm]` is absent or not enabled.
    pub llm: Option<LlmConfig>,
    /// The root-cause categories drafting chooses from (`[taxonomy]`; the shipped one by default).
    pub taxonomy: Taxonomy,
    pub catalog: CatalogConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sources: Vec::new(),
            thresholds: Thresholds {
                specificity: 0.6,
                accuracy: 0.6,
                thoroughness: 0.5,
            },
            audit_fraction: 0.1,
            labelling: Labelling::AllTenants,
            trace_wait: SignedDuration::from_hours(1),
            capture_attempts: 5,
            noise_queries: 6,
            job_lease: SignedDuration::from_secs(120),
            capture_lease: SignedDuration::from_secs(60),
            llm: None,
            taxonomy: Taxonomy::default(),
            catalog: CatalogConfig::default(),
        }
    }
}

impl Config {
    /// The source a tool call reads: by tool name, then by signal; `None` means only the recorded
    /// result is available.
    pub fn source_for(&self, tool_name: &str, signal: SignalSource) -> Option<&Source> {
        self.sources
            .iter()
            .find(|s| s.tools.iter().any(|t| t == tool_name))
            .or_else(|| {
                self.sources
                    .iter()
                    .find(|s| s.tools.is_empty() && s.signal == signal)
            })
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            problems: vec![format!("cannot read {}: {e}", path.display())],
        })?;
        Self::parse(&text)
    }

    /// Parses and validates, reporting every problem at once.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
            problems: vec![e.to_string()],
        })?;
        raw.validate()
    }
}

/// Everything wrong with a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration:\n  {}", problems.join("\n  "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    sources: Vec<RawSource>,
    #[serde(default)]
    pipeline: RawPipeline,
    #[serde(default)]
    llm: Option<RawLlm>,
    #[serde(default)]
    taxonomy: Option<RawTaxonomy>,
    #[serde(default)]
    catalog: RawCatalog,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    tenants: Option<Vec<String>>,
    file: Option<PathBuf>,
    refresh: Option<String>,
    labels: Option<Vec<String>>,
    max_values: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: String,
    signal: String,
    connector: String,
    #[serde(default)]
    endpoint: Option<String>,
    ttl: String,
    #[serde(default)]
    tools: Vec<String>,
    #[serde(default)]
    concurrency: Option<usize>,
    #[serde(default)]
    rename: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    specificity: Option<f64>,
    accuracy: Option<f64>,
    thoroughness: Option<f64>,
    audit_fraction: Option<f64>,
    /// Tenant names, or `["*"]` for all.
    labelling_tenants: Option<Vec<String>>,
    trace_wait: Option<String>,
    capture_attempts: Option<u32>,
    noise_queries: Option<usize>,
    job_lease: Option<String>,
    capture_lease: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLlm {
    #[serde(default)]
    enabled: bool,
    endpoint: Option<String>,
    model: Option<String>,
    api_key_env: Option<String>,
    timeout: Option<String>,
    #[serde(default)]
    validate: bool,
    ca_file: Option<PathBuf>,
}

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let mut config = Config::default();
        for (index, raw) in self.sources.into_iter().enumerate() {
            let key = format!("sources[{index}] ({})", raw.name);
            if let Some(source) = raw.validate(&key, &mut problems) {
                if config.sources.iter().any(|s| s.name == source.name) {
                    problems.push(format!("{key}.name: duplicate source name"));
                }
                config.sources.push(source);
            }
        }
        let p = self.pipeline;
        let mut unit = |key: &str, value: Option<f64>, slot: &mut f64| {
            if let Some(v) = value {
                if (0.0..=1.0).contains(&v) {
                    *slot = v;
                } else {
                    problems.push(format!("pipeline.{key}: {v} is outside 0-1"));
                }
            }
        };
        unit(
            "specificity",
            p.specificity,
            &mut config.thresholds.specificity,
        );
        unit("accuracy", p.accuracy, &mut config.thresholds.accuracy);
        unit(
            "thoroughness",
            p.thoroughness,
            &mut config.thresholds.thoroughness,
        );
        unit(
            "audit_fraction",
            p.audit_fraction,
            &mut config.audit_fraction,
        );
        if let Some(tenants) = p.labelling_tenants {
            if tenants.iter().any(|t| t == "*") {
                config.labelling = Labelling::AllTenants;
            } else {
                let mut valid = Vec::new();
                for t in tenants {
                    match TenantId::new(&t) {
                        Ok(id) => valid.push(id),
                        Err(e) => problems.push(format!("pipeline.labelling_tenants: {t:?}: {e}")),
                    }
                }
                config.labelling = Labelling::Tenants(valid);
            }
        }
        for (key, text, field) in [
            ("trace_wait", p.trace_wait, &mut config.trace_wait),
            ("job_lease", p.job_lease, &mut config.job_lease),
            ("capture_lease", p.capture_lease, &mut config.capture_lease),
        ] {
            let Some(text) = text else { continue };
            match evalmint_model::parse_duration(&text) {
                Some(d) if d.is_positive() => *field = d,
                _ => problems.push(format!(
                    "pipeline.{key}: {text:?} is not a positive duration like 1h or 90s"
                )),
            }
        }
        if let Some(attempts) = p.capture_attempts {
            if attempts == 0 {
                problems.push("pipeline.capture_attempts: must be at least 1".to_owned());
            } else {
                config.capture_attempts = attempts;
            }
        }
        if let Some(n) = p.noise_queries {
            config.noise_queries = n;
        }
        if let Some(llm) = self.llm {
            config.llm = llm.validate(&mut problems);
        }
        if let Some(taxonomy) = self.taxonomy {
            config.taxonomy = taxonomy.validate(&mut problems);
        }
        config.catalog = self.catalog.validate(&config.labelling, &mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems })
        }
    }
}

impl RawLlm {
    /// Checks every value that is present, even when disabled, so a typo does not wait for the
    /// day the section is switched on; `endpoint` and `model` are required only when enabled.
    fn validate(self, problems: &mut Vec<String>) -> Option<LlmConfig> {
        let before = problems.len();
        let endpoint = match self.endpoint.as_deref().map(str::trim) {
            Some(e) if !(e.starts_with("http://") || e.starts_with("https://")) => {
                problems.push(format!("llm.endpoint: {e:?} is not an http(s) URL"));
                None
            }
            Some(e) if url_has_credentials(e) => {
                problems.push(
                    "llm.endpoint: must not carry credentials; name the key's variable in llm.api_key_env"
                        .to_owned(),
                );
                None
            }
            Some(e) => Some(e.trim_end_matches('/').to_owned()),
            None if self.enabled => {
                problems.push("llm.endpoint: required when llm.enabled = true".to_owned());
                None
            }
            None => None,
        };
        let model = match self.model.as_deref().map(str::trim) {
            Some("") => {
                problems.push("llm.model: must not be empty".to_owned());
                None
            }
            Some(m) => Some(m.to_owned()),
            None if self.enabled => {
                problems.push("llm.model: required when llm.enabled = true".to_owned());
                None
            }
            None => None,
        };
        if let Some(var) = &self.api_key_env
            && !is_env_var_name(var)
        {
            problems.push(
                "llm.api_key_env: must be the name of an environment variable (like OPENAI_API_KEY), not the key itself"
                    .to_owned(),
            );
        }
        let timeout = match &self.timeout {
            None => SignedDuration::from_secs(30),
            Some(t) => match evalmint_model::parse_duration(t) {
                Some(d) if d.is_positive() => d,
                _ => {
                    problems.push(format!("llm.timeout: {t:?} is not a duration like 30s"));
                    SignedDuration::ZERO
                }
            },
        };
        if !self.enabled || problems.len() > before {
            return None;
        }
        Some(LlmConfig {
            endpoint: endpoint?,
            model: model?,
            api_key_env: self.api_key_env,
            timeout,
            validate: self.validate,
            ca_file: self.ca_file,
        })
    }
}

impl RawCatalog {
    fn validate(self, labelling: &Labelling, problems: &mut Vec<String>) -> CatalogConfig {
        let mut catalog = CatalogConfig::default();
        match self.tenants {
            Some(tenants) => {
                for t in tenants {
                    match TenantId::new(&t) {
                        Ok(id) => catalog.tenants.push(id),
                        Err(e) => problems.push(format!("catalog.tenants: {t:?}: {e}")),
                    }
                }
            }
            None => {
                if let Labelling::Tenants(list) = labelling {
                    catalog.tenants = list.clone();
                }
            }
        }
        catalog.file = self.file;
        if let Some(refresh) = self.refresh {
            match evalmint_model::parse_duration(&refresh) {
                Some(d) if d.is_positive() => catalog.refresh = d,
                _ => problems.push(format!(
                    "catalog.refresh: {refresh:?} is not a duration like 15m"
                )),
            }
        }
        if let Some(labels) = self.labels {
            if labels.iter().any(|l| !is_label_name(l)) {
                problems.push(format!(
                    "catalog.labels: {labels:?} holds a name that is not a Prometheus label name"
                ));
            }
            catalog.labels = labels;
        }
        match self.max_values {
            Some(0) => problems.push("catalog.max_values: must be at least 1".to_owned()),
            Some(n) => catalog.max_values = n,
            None => {}
        }
        catalog
    }
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_label_name(name: &str) -> bool {
    is_env_var_name(name)
}

/// `user:pass@` (or `token@`) before the host.
fn url_has_credentials(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.contains('@')
}

/// A portable environment variable name: letters, digits and `_`, not starting with a digit.
fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl RawSource {
    fn validate(self, key: &str, problems: &mut Vec<String>) -> Option<Source> {
        let before = problems.len();
        if self.name.trim().is_empty() {
            problems.push(format!("{key}.name: must not be empty"));
        }
        let signal = SignalSource::parse(&self.signal).unwrap_or_else(|| {
            problems.push(format!(
                "{key}.signal: {:?} is not one of metrics, logs, traces, events, infra",
                self.signal
            ));
            SignalSource::Unknown
        });
        let ttl = evalmint_model::parse_duration(&self.ttl)
            .filter(|d| d.is_positive())
            .unwrap_or_else(|| {
                problems.push(format!(
                    "{key}.ttl: {:?} is not a duration like 15d",
                    self.ttl
                ));
                SignedDuration::ZERO
            });
        let mut endpoint = || -> Option<String> {
            match self.endpoint.as_deref().map(str::trim) {
                Some(e) if e.starts_with("http://") || e.starts_with("https://") => {
                    Some(e.trim_end_matches('/').to_owned())
                }
                Some(e) => {
                    problems.push(format!("{key}.endpoint: {e:?} is not an http(s) URL"));
                    None
                }
                None => {
                    problems.push(format!(
                        "{key}.endpoint: required for connector {:?}",
                        self.connector
                    ));
                    None
                }
            }
        };
        let connector = match self.connector.as_str() {
            "recorded" => Some(Connector::Recorded),
            "prometheus" => endpoint().map(|endpoint| Connector::Prometheus { endpoint }),
            "http_json" => endpoint().map(|endpoint| Connector::HttpJson {
                endpoint,
                rename: self.rename.clone(),
            }),
            other => {
                problems.push(format!(
                    "{key}.connector: {other:?} is not one of recorded, prometheus, http_json"
                ));
                None
            }
        };
        let concurrency = self.concurrency.unwrap_or(4);
        if concurrency == 0 {
            problems.push(format!("{key}.concurrency: must be at least 1"));
        }
        if problems.len() > before {
            return None;
        }
        Some(Source {
            name: self.name,
            signal,
            connector: connector?,
            ttl,
            tools: self.tools,
            concurrency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses() {
        let config = Config::parse(
            r#"
            [[sources]]
            name = "prom"
            signal = "metrics"
            connector = "prometheus"
            endpoint = "http://127.0.0.1:9090/"
            ttl = "15d"
            tools = ["query_metrics"]

            [[sources]]
            name = "logs"
            signal = "logs"
            connector = "http_json"
            endpoint = "http://127.0.0.1:9100/api/v1/logs"
            ttl = "7d"
            rename = { services = "service" }

            [pipeline]
            specificity = 0.7
            audit_fraction = 0.05
            labelling_tenants = ["acme"]
            job_lease = "5s"
            "#,
        )
        .unwrap();
        assert_eq!(config.sources.len(), 2);
        assert_eq!(config.job_lease, SignedDuration::from_secs(5));
        assert_eq!(
            config.capture_lease,
            Config::default().capture_lease,
            "an absent key keeps its default"
        );
        assert_eq!(
            config.sources[0].connector,
            Connector::Prometheus {
                endpoint: "http://127.0.0.1:9090".into()
            }
        );
        assert_eq!(config.thresholds.specificity, 0.7);
        assert!(config.labelling.allows(&TenantId::new("acme").unwrap()));
        assert!(!config.labelling.allows(&TenantId::new("globex").unwrap()));
        assert_eq!(
            config
                .source_for("query_metrics", SignalSource::Metrics)
                .unwrap()
                .name,
            "prom"
        );
        assert_eq!(
            config
                .source_for("search_logs", SignalSource::Logs)
                .unwrap()
                .name,
            "logs"
        );
        assert!(
            config
                .source_for("get_events", SignalSource::Events)
                .is_none()
        );
    }

    #[test]
    fn the_example_file_for_the_simulator_is_valid() {
        let text = include_str!("../../../examples/evalmint-sim.toml");
        let config = Config::parse(text).unwrap();
        assert_eq!(config.sources.len(), 5);
        assert!(
            config.llm.is_none(),
            "the LLM backend is off unless enabled"
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let error = Config::parse(
            r#"
            [[sources]]
            name = "x"
            signal = "smoke"
            connector = "prometheus"
            ttl = "forever"

            [pipeline]
            accuracy = 1.5
            capture_lease = "-3s"
            "#,
        )
        .unwrap_err();
        assert_eq!(
            error.problems,
            [
                "sources[0] (x).signal: \"smoke\" is not one of metrics, logs, traces, events, infra",
                "sources[0] (x).ttl: \"forever\" is not a duration like 15d",
                "sources[0] (x).endpoint: required for connector \"prometheus\"",
                "pipeline.accuracy: 1.5 is outside 0-1",
                "pipeline.capture_lease: \"-3s\" is not a positive duration like 1h or 90s",
            ]
        );
        assert!(
            Config::parse("[pipeline]\nspecifity = 0.5").is_err(),
            "typos are errors"
        );
    }

    #[test]
    fn the_taxonomy_is_configured_and_checked_in_evalmint_toml() {
        let config = Config::parse(
            r#"
            [[taxonomy.category]]
            name = "resource.gpu"
            phrases = [["cuda out of memory", 4.0]]
            "#,
        )
        .unwrap();
        assert_eq!(
            config
                .taxonomy
                .category_of("CUDA out of memory")
                .unwrap()
                .as_str(),
            "resource.gpu"
        );
        assert!(
            config
                .taxonomy
                .get(&evalmint_model::Category::RESOURCE_CPU)
                .is_some(),
            "the shipped categories stay"
        );
        let error = Config::parse(
            r#"
            [taxonomy]
            colour = "red"
            "#,
        )
        .unwrap_err();
        assert!(error.problems[0].contains("colour"), "{error}");
        let error = Config::parse(
            r#"
            [[taxonomy.category]]
            name = "GPU!"
            "#,
        )
        .unwrap_err();
        assert!(
            error.problems[0].starts_with("taxonomy.category[0].name"),
            "{error}"
        );
    }

    #[test]
    fn the_llm_section_is_off_unless_enabled() {
        let config = Config::parse(
            r#"
            [llm]
            enabled = true
            endpoint = "http://127.0.0.1:8000/v1/"
            model = "qwen2.5-7b-instruct"
            api_key_env = "EVALMINT_LLM_KEY"
            timeout = "45s"
            ca_file = "/etc/evalmint/llm-ca.pem"
            validate = true
            "#,
        )
        .unwrap();
        assert_eq!(
            config.llm,
            Some(LlmConfig {
                endpoint: "http://127.0.0.1:8000/v1".into(),
                model: "qwen2.5-7b-instruct".into(),
                api_key_env: Some("EVALMINT_LLM_KEY".into()),
                timeout: SignedDuration::from_secs(45),
                validate: true,
                ca_file: Some("/etc/evalmint/llm-ca.pem".into()),
            })
        );
        let defaults = Config::parse(
            "[llm]\nenabled = true\nendpoint = \"http://llm:8000/v1\"\nmodel = \"m\"",
        )
        .unwrap()
        .llm
        .unwrap();
        assert_eq!(defaults.timeout, SignedDuration::from_secs(30));
        assert_eq!(defaults.api_key_env, None);

        assert_eq!(Config::parse("").unwrap().llm, None, "absent");
        assert_eq!(
            Config::parse("[llm]\nendpoint = \"http://llm:8000/v1\"\nmodel = \"m\"")
                .unwrap()
                .llm,
            None,
            "disabled by default"
        );
        assert!(
            Config::parse("[llm]\nenabled = true\napi_key = \"sk-1\"").is_err(),
            "unknown keys are errors"
        );
    }

    #[test]
    fn bad_llm_values_are_reported_with_their_keys() {
        let error = Config::parse(
            r#"
            [llm]
            enabled = true
            endpoint = "127.0.0.1:8000/v1"
            model = " "
            api_key_env = "sk-live-0123456789abcdef"
            timeout = "soon"

            [pipeline]
            capture_attempts = 0
            "#,
        )
        .unwrap_err();
        assert_eq!(
            error.problems,
            [
                "pipeline.capture_attempts: must be at least 1",
                "llm.endpoint: \"127.0.0.1:8000/v1\" is not an http(s) URL",
                "llm.model: must not be empty",
                "llm.api_key_env: must be the name of an environment variable (like OPENAI_API_KEY), not the key itself",
                "llm.timeout: \"soon\" is not a duration like 30s",
            ]
        );
        assert_eq!(
            Config::parse(
                "[llm]\nenabled = true\nendpoint = \"https://user:hunter2@llm.example/v1\""
            )
            .unwrap_err()
            .problems,
            [
                "llm.endpoint: must not carry credentials; name the key's variable in llm.api_key_env",
                "llm.model: required when llm.enabled = true",
            ]
        );
        assert_eq!(
            Config::parse("[llm]\ntimeout = \"0s\"")
                .unwrap_err()
                .problems,
            ["llm.timeout: \"0s\" is not a duration like 30s"],
            "checked even while disabled"
        );
    }

    #[test]
    fn the_catalog_section_defaults_to_the_labelling_tenants() {
        let config = Config::parse(
            r#"
            [pipeline]
            labelling_tenants = ["acme"]
            [catalog]
            file = "catalog-info.yaml"
            refresh = "5m"
            labels = ["service", "k8s_pod"]
            "#,
        )
        .unwrap();
        assert_eq!(config.catalog.tenants, [TenantId::new("acme").unwrap()]);
        assert_eq!(
            config.catalog.file.as_deref(),
            Some(Path::new("catalog-info.yaml"))
        );
        assert_eq!(config.catalog.refresh, SignedDuration::from_mins(5));
        assert_eq!(config.catalog.labels, ["service", "k8s_pod"]);
        assert!(Config::default().catalog.tenants.is_empty());

        let error = Config::parse(
            r#"
            [catalog]
            tenants = ["bad tenant"]
            refresh = "soon"
            labels = ["pod-name"]
            max_values = 0
            "#,
        )
        .unwrap_err();
        let keys: Vec<&str> = error
            .problems
            .iter()
            .map(|p| p.split(':').next().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "catalog.tenants",
                "catalog.refresh",
                "catalog.labels",
                "catalog.max_values"
            ],
            "{error}"
        );
    }
}
