//! The MCP face of a replay session (the `rmcp` crate): the session's tools as MCP tools, over
//! streamable HTTP at `/replay/sessions/{sid}/mcp` and, through [`McpTools`] with another
//! backend, over stdio (`evalmint replay mcp`). Tool failures are MCP tool errors, which an
//! agent reads like any tool output.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rmcp::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use serde_json::{Map, Value, json};

/// Where MCP tool calls go: a session in this process, or a session on a server over HTTP.
pub trait ToolBackend: Send + Sync + 'static {
    fn call<'a>(
        &'a self,
        tool: &'a str,
        args: Map<String, Value>,
    ) -> Pin<Box<dyn Future<Output = Result<Value, String>> + Send + 'a>>;
}

/// A replay session of this process.
pub(crate) struct LocalSession(pub Arc<evalmint_eval::Session>);

impl ToolBackend for LocalSession {
    fn call<'a>(
        &'a self,
        tool: &'a str,
        args: Map<String, Value>,
    ) -> Pin<Box<dyn Future<Output = Result<Value, String>> + Send + 'a>> {
        Box::pin(async move { self.0.call(tool, &args).map_err(|e| e.to_string()) })
    }
}

/// An MCP server whose tools are a replay session's.
#[derive(Clone)]
pub struct McpTools {
    backend: Arc<dyn ToolBackend>,
}

impl McpTools {
    pub fn new(backend: Arc<dyn ToolBackend>) -> Self {
        McpTools { backend }
    }
}

/// The JSON Schema of a tool's flat arguments.
fn schema(arguments: &[&str]) -> Map<String, Value> {
    let properties: Map<String, Value> = arguments
        .iter()
        .map(|name| {
            let kind = match *name {
                "services" => json!({"type": ["array", "string"], "items": {"type": "string"}}),
                "errors" => json!({"type": "boolean"}),
                "limit" => json!({"type": "integer"}),
                "start" | "end" | "onset" | "step" => json!({"type": ["string", "number"]}),
                _ => json!({"type": "string"}),
            };
            ((*name).to_owned(), kind)
        })
        .collect();
    let required: Vec<&str> = arguments
        .iter()
        .copied()
        .filter(|a| matches!(*a, "query" | "service"))
        .collect();
    let mut object = Map::new();
    object.insert("type".into(), json!("object"));
    object.insert("properties".into(), Value::Object(properties));
    object.insert("required".into(), json!(required));
    object
}

impl ServerHandler for McpTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_instructions(
            "Tools over one incident's frozen telemetry. Submit your root cause with submit_rca.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, rmcp::ErrorData> {
        let tools = evalmint_eval::tools::TOOLS
            .iter()
            .map(|(name, description, arguments)| Tool::new(*name, *description, schema(arguments)))
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, rmcp::ErrorData> {
        let args = request.arguments.unwrap_or_default();
        let result = match self.backend.call(&request.name, args).await {
            Ok(value) => CallToolResult::success(vec![ContentBlock::text(value.to_string())]),
            Err(message) => CallToolResult::error(vec![ContentBlock::text(message)]),
        };
        Ok(result.into())
    }
}
