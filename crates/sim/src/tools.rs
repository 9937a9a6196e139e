//! The tools an investigator calls, behind one trait so an agent can run against the live
//! telemetry API over HTTP, against the generated world in process, or (later) against a frozen
//! world snapshot.

use std::future::Future;
use std::sync::Arc;

use serde_json::Value;

use crate::telemetry::{
    EventParams, LogParams, RangeParams, TelemetryService, TraceParams, rfc3339_ms,
};

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("telemetry request failed: {0}")]
    Transport(String),
    #[error("telemetry answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("telemetry answer is not JSON: {0}")]
    Decode(String),
}

/// The telemetry tools of an SRE agent. Results are the telemetry API's JSON answers.
pub trait Tools: Send + Sync {
    /// A PromQL range query (`/api/v1/query_range`); `step_secs` between points.
    fn query_metrics(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_secs: i64,
    ) -> impl Future<Output = Result<Value, ToolError>> + Send;
    /// A log search (`/api/v1/logs`), newest first.
    fn search_logs(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Value, ToolError>> + Send;
    /// Deploy, config, Kubernetes and infrastructure events on `services` (all when empty).
    fn get_events(
        &self,
        services: &[String],
        start_ms: i64,
        end_ms: i64,
    ) -> impl Future<Output = Result<Value, ToolError>> + Send;
    /// Sampled request traces entering at `service`.
    fn get_traces(
        &self,
        service: &str,
        start_ms: i64,
        end_ms: i64,
        errors_only: bool,
    ) -> impl Future<Output = Result<Value, ToolError>> + Send;
    /// The topology: services, datastores, queues, monitors.
    fn list_services(&self) -> impl Future<Output = Result<Value, ToolError>> + Send;
}

/// Tools answered directly from the generated world, for generation-only runs.
#[derive(Debug, Clone)]
pub struct InProcessTools {
    service: Arc<TelemetryService>,
}

impl InProcessTools {
    pub fn new(service: Arc<TelemetryService>) -> Self {
        InProcessTools { service }
    }
}

fn query_error(e: crate::telemetry::QueryError) -> ToolError {
    let status = match e {
        crate::telemetry::QueryError::BadData(_) => 400,
        crate::telemetry::QueryError::NotFound(_) => 404,
        crate::telemetry::QueryError::Internal => 500,
    };
    ToolError::Status {
        status,
        body: e.to_string(),
    }
}

impl Tools for InProcessTools {
    async fn query_metrics(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_secs: i64,
    ) -> Result<Value, ToolError> {
        let params = RangeParams {
            query: Some(query.to_string()),
            start: Some(rfc3339_ms(start_ms)),
            end: Some(rfc3339_ms(end_ms)),
            step: Some(step_secs.to_string()),
        };
        self.service.query_range(&params).map_err(query_error)
    }

    async fn search_logs(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        limit: usize,
    ) -> Result<Value, ToolError> {
        let params = LogParams {
            query: Some(query.to_string()),
            start: Some(rfc3339_ms(start_ms)),
            end: Some(rfc3339_ms(end_ms)),
            limit: Some(limit),
        };
        self.service.search_logs(&params).map_err(query_error)
    }

    async fn get_events(
        &self,
        services: &[String],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Value, ToolError> {
        let params = EventParams {
            service: (!services.is_empty()).then(|| services.join(",")),
            kind: None,
            start: Some(rfc3339_ms(start_ms)),
            end: Some(rfc3339_ms(end_ms)),
            limit: None,
        };
        self.service.events(&params).map_err(query_error)
    }

    async fn get_traces(
        &self,
        service: &str,
        start_ms: i64,
        end_ms: i64,
        errors_only: bool,
    ) -> Result<Value, ToolError> {
        let params = TraceParams {
            service: Some(service.to_string()),
            start: Some(rfc3339_ms(start_ms)),
            end: Some(rfc3339_ms(end_ms)),
            errors: Some(errors_only),
            limit: Some(5),
        };
        self.service.traces(&params).map_err(query_error)
    }

    async fn list_services(&self) -> Result<Value, ToolError> {
        Ok(self.service.services())
    }
}

/// Tools that call a running telemetry API (`evalmint sim telemetry` or the in-process server).
#[derive(Debug, Clone)]
pub struct HttpTools {
    base_url: String,
    client: reqwest::Client,
}

impl HttpTools {
    pub fn new(base_url: &str, client: reqwest::Client) -> Self {
        HttpTools {
            base_url: base_url.trim_end_matches('/').to_string(),
            client,
        }
    }

    async fn get(&self, path: &str, params: &[(&str, String)]) -> Result<Value, ToolError> {
        let response = self
            .client
            .get(format!("{}{path}", self.base_url))
            .query(params)
            .send()
            .await
            .map_err(|e| ToolError::Transport(e.to_string()))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| ToolError::Transport(e.to_string()))?;
        if !status.is_success() {
            return Err(ToolError::Status {
                status: status.as_u16(),
                body,
            });
        }
        serde_json::from_str(&body).map_err(|e| ToolError::Decode(e.to_string()))
    }
}

impl Tools for HttpTools {
    async fn query_metrics(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_secs: i64,
    ) -> Result<Value, ToolError> {
        let params = [
            ("query", query.to_string()),
            ("start", rfc3339_ms(start_ms)),
            ("end", rfc3339_ms(end_ms)),
            ("step", step_secs.to_string()),
        ];
        self.get("/api/v1/query_range", &params).await
    }

    async fn search_logs(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        limit: usize,
    ) -> Result<Value, ToolError> {
        let params = [
            ("query", query.to_string()),
            ("start", rfc3339_ms(start_ms)),
            ("end", rfc3339_ms(end_ms)),
            ("limit", limit.to_string()),
        ];
        self.get("/api/v1/logs", &params).await
    }

    async fn get_events(
        &self,
        services: &[String],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Value, ToolError> {
        let mut params = vec![("start", rfc3339_ms(start_ms)), ("end", rfc3339_ms(end_ms))];
        if !services.is_empty() {
            params.push(("service", services.join(",")));
        }
        self.get("/api/v1/events", &params).await
    }

    async fn get_traces(
        &self,
        service: &str,
        start_ms: i64,
        end_ms: i64,
        errors_only: bool,
    ) -> Result<Value, ToolError> {
        let params = [
            ("service", service.to_string()),
            ("start", rfc3339_ms(start_ms)),
            ("end", rfc3339_ms(end_ms)),
            ("errors", errors_only.to_string()),
            ("limit", "5".to_string()),
        ];
        self.get("/api/v1/traces", &params).await
    }

    async fn list_services(&self) -> Result<Value, ToolError> {
        self.get("/api/v1/services", &[]).await
    }
}
