//! The simulator's reference agents (`sim:v1`, `sim:v2`) as candidate agents. They read the
//! snapshot only through the session's tools, as any agent would, and submit their root cause
//! through `submit_rca`: over the plain HTTP tools by default, or over the session's MCP face
//! (streamable HTTP, rmcp's client) when the spec ends in `+mcp` (`sim:v1+mcp`). Both faces take
//! the same tool names and flat arguments, so the same agent grades the same either way.

use std::sync::Arc;

use evalmint_eval::agent::{Agent, AgentError, AgentFuture, AgentInput};
use evalmint_model::AgentAnswer;
use evalmint_sim::agent::{AgentVersion, Investigator, ReferenceAgent, Trigger};
use evalmint_sim::tools::{ToolError, Tools};
use serde_json::{Value, json};

/// Which of a session's faces an agent calls its tools through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Face {
    /// `POST {tools}/{name}` with flat JSON arguments.
    Http,
    /// MCP `tools/call` over streamable HTTP at the session's `mcp` URL.
    Mcp,
}

/// The agent a `sim:…` spec names (`sim:v1`, `sim:v2`, each optionally `+mcp`).
pub(crate) fn from_spec(
    spec: &str,
    client: reqwest::Client,
    timings: Arc<super::ToolTimings>,
) -> Option<Arc<dyn Agent>> {
    let (version, face) = spec.split_once('+').unwrap_or((spec, "http"));
    let version = match version {
        "sim:v1" => AgentVersion::V1,
        "sim:v2" => AgentVersion::V2,
        _ => return None,
    };
    let face = match face {
        "http" => Face::Http,
        "mcp" => Face::Mcp,
        _ => return None,
    };
    Some(Arc::new(SimAgent {
        version,
        face,
        client,
        timings,
    }))
}

struct SimAgent {
    version: AgentVersion,
    face: Face,
    client: reqwest::Client,
    /// Each tool call's round-trip time is added here.
    timings: Arc<super::ToolTimings>,
}

/// A connected MCP client of one session.
type McpClient = rmcp::service::RunningService<rmcp::RoleClient, ()>;

/// One attempt's connection to the session's tools, through the face the spec chose.
struct SessionTools {
    face: FaceClient,
    timings: Arc<super::ToolTimings>,
}

enum FaceClient {
    Http {
        base: String,
        client: reqwest::Client,
    },
    Mcp(McpClient),
}

fn rfc3339(ms: i64) -> String {
    evalmint_sim::telemetry::rfc3339_ms(ms)
}

impl SessionTools {
    /// Connects to the session through `face`; over MCP this is the client's handshake.
    async fn connect(
        face: Face,
        input: &AgentInput,
        client: &reqwest::Client,
        timings: Arc<super::ToolTimings>,
    ) -> Result<Self, ToolError> {
        let face = match face {
            Face::Http => FaceClient::Http {
                base: input.urls.http.clone(),
                client: client.clone(),
            },
            Face::Mcp => {
                use rmcp::ServiceExt as _;
                use rmcp::transport::StreamableHttpClientTransport;
                use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
                let transport = StreamableHttpClientTransport::with_client(
                    client.clone(),
                    StreamableHttpClientTransportConfig::with_uri(input.urls.mcp.as_str()),
                );
                let running = ()
                    .serve(transport)
                    .await
                    .map_err(|e| ToolError::Transport(format!("MCP handshake: {e}")))?;
                FaceClient::Mcp(running)
            }
        };
        Ok(SessionTools { face, timings })
    }

    async fn call(&self, tool: &str, args: Value) -> Result<Value, ToolError> {
        let started = std::time::Instant::now();
        let answer = match &self.face {
            FaceClient::Http { base, client } => call_http(client, base, tool, args).await,
            FaceClient::Mcp(running) => call_mcp(running, tool, args).await,
        };
        self.timings
            .lock()
            .expect("timings lock")
            .push(started.elapsed());
        answer
    }

    /// Ends an MCP client's connection; a plain HTTP face holds none.
    async fn close(self) {
        if let FaceClient::Mcp(running) = self.face {
            let _ = running.cancel().await;
        }
    }
}

/// One MCP `tools/call`: the answer is the first text block's JSON; a tool error keeps its
/// message as the body, as the HTTP face's error status does.
async fn call_mcp(running: &McpClient, tool: &str, args: Value) -> Result<Value, ToolError> {
    let Value::Object(arguments) = args else {
        return Err(ToolError::Decode("arguments must be a JSON object".into()));
    };
    let result = running
        .call_tool(
            rmcp::model::CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments),
        )
        .await
        .map_err(|e| ToolError::Transport(e.to_string()))?;
    let text: String = result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|t| t.text.as_str()))
        .collect();
    if result.is_error == Some(true) {
        return Err(ToolError::Status {
            status: 400,
            body: text,
        });
    }
    serde_json::from_str(&text).map_err(|e| ToolError::Decode(e.to_string()))
}

async fn call_http(
    client: &reqwest::Client,
    base: &str,
    tool: &str,
    args: Value,
) -> Result<Value, ToolError> {
    let response = client
        .post(format!("{base}/{tool}"))
        .json(&args)
        .send()
        .await
        .map_err(|e| ToolError::Transport(e.without_url().to_string()))?;
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

impl Tools for SessionTools {
    async fn query_metrics(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_secs: i64,
    ) -> Result<Value, ToolError> {
        self.call(
            "query_metrics",
            json!({"query": query, "start": rfc3339(start_ms), "end": rfc3339(end_ms), "step": format!("{step_secs}s")}),
        )
        .await
    }

    async fn search_logs(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        limit: usize,
    ) -> Result<Value, ToolError> {
        self.call(
            "search_logs",
            json!({"query": query, "start": rfc3339(start_ms), "end": rfc3339(end_ms), "limit": limit}),
        )
        .await
    }

    async fn get_events(
        &self,
        services: &[String],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Value, ToolError> {
        self.call(
            "get_events",
            json!({"services": services, "start": rfc3339(start_ms), "end": rfc3339(end_ms)}),
        )
        .await
    }

    async fn get_traces(
        &self,
        service: &str,
        start_ms: i64,
        end_ms: i64,
        errors_only: bool,
    ) -> Result<Value, ToolError> {
        self.call(
            "get_traces",
            json!({"service": service, "start": rfc3339(start_ms), "end": rfc3339(end_ms), "errors": errors_only}),
        )
        .await
    }

    async fn list_services(&self) -> Result<Value, ToolError> {
        self.call("list_services", json!({})).await
    }
}

/// A run key from the label and attempt, so attempts differ and reruns repeat.
fn run_key(label_id: &str, attempt: u32) -> u64 {
    // FNV-1a: stable across builds, unlike the standard library's hasher.
    label_id
        .bytes()
        .chain(attempt.to_be_bytes())
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

impl Agent for SimAgent {
    fn investigate<'a>(&'a self, input: &'a AgentInput) -> AgentFuture<'a> {
        Box::pin(async move {
            let tools = SessionTools::connect(self.face, input, &self.client, self.timings.clone())
                .await
                .map_err(|e| AgentError::Failed(e.to_string()))?;
            let answer = self.investigate_with(&tools, input).await;
            tools.close().await;
            answer
        })
    }
}

impl SimAgent {
    async fn investigate_with(
        &self,
        tools: &SessionTools,
        input: &AgentInput,
    ) -> Result<AgentAnswer, AgentError> {
        let trigger = input
            .trigger
            .as_ref()
            .ok_or_else(|| AgentError::Failed("the label has no trigger".into()))?;
        let fired_at_ms = trigger
            .fired_at
            .map(|t| t.as_millisecond())
            .ok_or_else(|| AgentError::Failed("the trigger has no firing time".into()))?;
        let monitor = trigger.monitor.clone().unwrap_or_default();
        // The alerted service is the monitor's, as the topology says.
        let topology = tools
            .list_services()
            .await
            .map_err(|e| AgentError::Failed(e.to_string()))?;
        let service = topology
            .pointer("/data/monitors")
            .and_then(Value::as_array)
            .and_then(|monitors| {
                monitors
                    .iter()
                    .find(|m| m.get("name").and_then(Value::as_str) == Some(monitor.as_str()))
            })
            .and_then(|m| m.get("service")?.as_str())
            .ok_or_else(|| {
                AgentError::Failed(format!("monitor {monitor:?} is not in the topology"))
            })?
            .to_owned();
        let sim_trigger = Trigger {
            kind: "alert",
            monitor,
            service,
            text: trigger.text.clone(),
            fired_at_ms,
        };
        let agent = ReferenceAgent {
            version: self.version,
        };
        let investigation = agent
            .investigate(tools, &sim_trigger, run_key(&input.label_id, input.attempt))
            .await;
        let mut submission = json!({
            "conclusion": investigation.conclusion,
            "component": investigation.blamed,
        });
        if let Some(onset) = investigation.onset_ms {
            submission["onset"] = json!(rfc3339(onset));
        }
        tools
            .call("submit_rca", submission)
            .await
            .map_err(|e| AgentError::Failed(e.to_string()))?;
        Ok(AgentAnswer {
            conclusion: investigation.conclusion,
            rca: None,
        })
    }
}
