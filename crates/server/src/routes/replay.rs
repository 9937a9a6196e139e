//! Replay sessions: `POST /api/v1/replay/sessions` opens one on a label by hand, and every
//! session answers its tools at `/replay/sessions/{sid}/tools/{name}` and the Prometheus API at
//! `/replay/sessions/{sid}/prometheus/api/v1/{query,query_range,series,labels}`. A session id is
//! the agent's credential: an unknown, closed or made-up id is 404. Sessions answer only from
//! their label's world, which holds no ground truth.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use evalmint_eval::session::DEFAULT_CALL_LIMIT;
use evalmint_eval::tools::ToolError;
use evalmint_model::Scope;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::body::{read_capped, read_json};
use crate::error::ApiError;

/// Tool arguments are small.
const MAX_ARGUMENT_BYTES: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OpenSession {
    label_id: String,
}

fn tool_error(e: ToolError) -> ApiError {
    match e {
        ToolError::UnknownTool(_) => ApiError::NotFound("tool"),
        ToolError::Invalid { .. } => ApiError::invalid(e.to_string()),
        ToolError::CallLimit(_) => ApiError::CallLimit(e.to_string()),
    }
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

pub(crate) async fn open(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Review)?;
    let request: OpenSession = read_json(&state, &headers, body, MAX_ARGUMENT_BYTES).await?;
    let candidate = state
        .labels
        .candidate(caller.tenant(), &request.label_id)
        .await?
        .ok_or(ApiError::NotFound("label"))?;
    let label =
        evalmint_eval::labels::from_candidate(&*state.labels, caller.tenant(), candidate).await?;
    let session = state.sessions.open(
        caller.tenant().clone(),
        None,
        label.label_id.clone(),
        label.world.clone(),
        DEFAULT_CALL_LIMIT,
    );
    let urls = evalmint_eval::run::session_urls(&base_url(&headers), &session.id);
    Ok((
        axum::http::StatusCode::CREATED,
        Json(json!({
            "id": session.id,
            "mcp_url": urls.mcp,
            "http_url": urls.http,
            "prometheus_url": urls.prometheus,
            "trigger": label.world.trigger,
        })),
    ))
}

fn session(state: &AppState, sid: &str) -> Result<Arc<evalmint_eval::Session>, ApiError> {
    state.sessions.get(sid).ok_or(ApiError::NotFound("session"))
}

/// Flat JSON arguments from the body (an empty body is no arguments).
async fn arguments(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Map<String, Value>, ApiError> {
    let bytes = read_capped(state, headers, body, MAX_ARGUMENT_BYTES)
        .await?
        .bytes;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid("arguments must be a JSON object")),
        Err(e) => Err(ApiError::invalid(format!("invalid JSON body: {e}"))),
    }
}

pub(crate) async fn tool(
    State(state): State<AppState>,
    Path((sid, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let session = session(&state, &sid)?;
    let args = arguments(&state, &headers, body).await?;
    session.call(&name, &args).map(Json).map_err(tool_error)
}

/// The session's MCP server, streamable HTTP. Stateless: every request stands alone, so nothing
/// outlives the replay session but the session itself. The body is read through the capped reader
/// and handed on whole.
pub(crate) async fn mcp(
    State(state): State<AppState>,
    Path(sid): Path<String>,
    request: axum::extract::Request,
) -> Result<axum::response::Response, ApiError> {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
    };

    let session = session(&state, &sid)?;
    let (parts, body) = request.into_parts();
    let bytes = read_capped(&state, &parts.headers, body, MAX_ARGUMENT_BYTES)
        .await?
        .bytes;
    let request = axum::http::Request::from_parts(parts, Body::from(bytes));
    let tools = crate::mcp::McpTools::new(Arc::new(crate::mcp::LocalSession(session)));
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_owned();
    let service = StreamableHttpService::new(
        move || Ok(tools.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            .with_sse_keep_alive(None)
            // The session id in the path is the credential; any host that reached it may use it.
            .with_allowed_hosts([host]),
    );
    Ok(service.handle(request).await.map(Body::new))
}

/// The tools a session offers.
pub(crate) async fn list_tools(
    State(state): State<AppState>,
    Path(sid): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    session(&state, &sid)?;
    let tools: Vec<Value> = evalmint_eval::tools::TOOLS
        .iter()
        .map(|(name, description, args)| json!({"name": name, "description": description, "arguments": args}))
        .collect();
    Ok(Json(json!({ "tools": tools })))
}

/// Query-string (and form body) parameters, with `match[]` kept apart.
fn prometheus_params(query: Option<&str>, form: &[u8]) -> (Map<String, Value>, Vec<String>) {
    let mut args = Map::new();
    let mut matchers = Vec::new();
    let pairs = query
        .map(|q| url_pairs(q.as_bytes()))
        .unwrap_or_default()
        .into_iter()
        .chain(url_pairs(form));
    for (k, v) in pairs {
        if k == "match[]" {
            matchers.push(v);
        } else {
            args.insert(k, Value::String(v));
        }
    }
    (args, matchers)
}

/// `application/x-www-form-urlencoded` pairs, percent-decoded.
fn url_pairs(text: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| -> String {
        let s = s.replace('+', " ");
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%'
                && i + 2 < bytes.len()
                && let Ok(b) = u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                )
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(text)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

pub(crate) async fn prometheus(
    State(state): State<AppState>,
    Path((sid, endpoint)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let session = session(&state, &sid)?;
    let form = read_capped(&state, &headers, body, MAX_ARGUMENT_BYTES)
        .await?
        .bytes;
    let (args, matchers) = prometheus_params(query.as_deref(), &form);
    match session.prometheus(&endpoint, &args, &matchers) {
        Ok(body) => Ok(Json(body).into_response()),
        // Prometheus clients read errors in Prometheus's own shape.
        Err(ToolError::UnknownTool(_)) => Err(ApiError::NotFound("route")),
        Err(e) => Ok((
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({"status": "error", "errorType": "bad_data", "error": e.to_string()})),
        )
            .into_response()),
    }
}
