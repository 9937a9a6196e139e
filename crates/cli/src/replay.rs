//! `evalmint replay mcp --session SID`: a replay session's tools as an MCP server on stdio, for
//! agents that only speak MCP over stdio. Calls go to the session on a running server.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::Context;
use evalmint_server::mcp::{McpTools, ToolBackend};
use rmcp::ServiceExt;
use serde_json::{Map, Value};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ReplayCommand {
    /// Serve a session's tools as MCP on stdin/stdout.
    Mcp {
        /// The session id (`POST /api/v1/replay/sessions` returns it).
        #[arg(long)]
        session: String,
        /// The server holding the session.
        #[arg(long, env = "EVALMINT_URL", default_value = "http://127.0.0.1:4318")]
        server: String,
    },
}

/// Forwards each call to `POST {server}/replay/sessions/{sid}/tools/{name}`.
struct RemoteSession {
    tools_url: String,
    client: reqwest::Client,
}

impl ToolBackend for RemoteSession {
    fn call<'a>(
        &'a self,
        tool: &'a str,
        args: Map<String, Value>,
    ) -> Pin<Box<dyn Future<Output = Result<Value, String>> + Send + 'a>> {
        Box::pin(async move {
            let response = self
                .client
                .post(format!("{}/{tool}", self.tools_url))
                .json(&args)
                .send()
                .await
                .map_err(|e| e.without_url().to_string())?;
            let status = response.status();
            let body: Value = response
                .json()
                .await
                .map_err(|e| e.without_url().to_string())?;
            if status.is_success() {
                Ok(body)
            } else {
                Err(body
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("the server answered {status}"), str::to_owned))
            }
        })
    }
}

pub(crate) async fn run(command: ReplayCommand) -> anyhow::Result<()> {
    match command {
        ReplayCommand::Mcp { session, server } => {
            let backend = RemoteSession {
                tools_url: format!(
                    "{}/replay/sessions/{session}/tools",
                    server.trim_end_matches('/')
                ),
                client: reqwest::Client::new(),
            };
            let running = McpTools::new(Arc::new(backend))
                .serve(rmcp::transport::stdio())
                .await
                .context("starting the MCP server on stdio")?;
            running.waiting().await.context("serving MCP on stdio")?;
            Ok(())
        }
    }
}
