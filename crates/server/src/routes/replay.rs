//! Replay sessions: `POST /api/v1/replay/sessions` opens one on a label by hand, and every
//! session answers its tools at `/replay/sessions/{sid}/tools/{name}` and the Prometheus API at
//! `/replay/sessions/{sid}/prometheus/api/v1/{query,query_range,series,labels}`. A session id is
//! the agent's credential: an unknown, closed or made-up id is 404. Sessions answer only from
//! their label's world, which holds no ground truth.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use evalmint_eval::session::DEFAULT_CALL_LIMIT;
use evalmint_eval::tools::ToolError;
use evalmint_model::Scope;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::PathParams;
use crate::AppState;
use crate::auth::Caller;
use crate::body::{read_capped, read_request};
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

#[utoipa::path(
    post,
    path = "/api/v1/replay/sessions",
    tag = "replay",
    summary = "Open a replay session on one label, to debug an agent by hand",
    request_body(content = crate::schemas::OpenSession, content_type = "application/json"),
    responses(
        (status = 201, description = "the session and its URLs", body = crate::schemas::Session),
        (status = 400, description = "malformed JSON", body = crate::schemas::ErrorBody),
        (status = 401, description = "missing or unknown API key", body = crate::schemas::ErrorBody),
        (status = 403, description = "the key lacks the scope", body = crate::schemas::ErrorBody),
        (status = 404, description = "no such object in the caller's tenant", body = crate::schemas::ErrorBody),
        (status = 413, description = "body larger than the limit", body = crate::schemas::ErrorBody),
        (status = 415, description = "wrong content type", body = crate::schemas::ErrorBody),
        (status = 422, description = "well-formed JSON with invalid fields: the error body names each problem in `fields`", body = crate::schemas::ErrorBody),
        (status = 429, description = "saturated; retry after Retry-After seconds", body = crate::schemas::ErrorBody)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn open(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Review)?;
    let request: OpenSession = read_request(&state, &headers, body, MAX_ARGUMENT_BYTES).await?;
    let candidate = state
        .labels
        .candidate(caller.tenant(), &request.label_id)
        .await?
        .ok_or(ApiError::NotFound("label"))?;
    let label = {
        let version = candidate.version;
        evalmint_eval::labels::from_candidate(&*state.labels, caller.tenant(), candidate, version)
            .await?
    };
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

/// The open session `sid`. Its id is the agent's credential, so a request without a key is
/// answered; a request that presents another tenant's key is told the session does not exist,
/// like a made-up id (a key that resolves to nothing is no evidence of a tenant and is ignored).
async fn session(
    state: &AppState,
    sid: &str,
    headers: &HeaderMap,
) -> Result<Arc<evalmint_eval::Session>, ApiError> {
    let session = state
        .sessions
        .get(sid)
        .ok_or(ApiError::NotFound("session"))?;
    if let Some(secret) = crate::auth::presented_secret(headers).filter(|s| !s.is_empty())
        && let Ok(caller) = crate::auth::resolve(state, &secret).await
        && caller.tenant() != &session.tenant
    {
        return Err(ApiError::NotFound("session"));
    }
    Ok(session)
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

#[utoipa::path(
    post,
    path = "/replay/sessions/{sid}/tools/{name}",
    tag = "replay",
    summary = "Call one tool of a session; it answers only from the label's frozen snapshot",
    params(("sid" = String, Path, description = "the session id, the agent's credential"), ("name" = String, Path, description = "query_metrics, search_logs, get_traces, get_events, list_services, get_service_dependencies or submit_rca")),
    request_body(content = Object, description = "the tool's flat JSON arguments", content_type = "application/json"),
    responses(
        (status = 200, description = "the tool's answer (no data when nothing frozen matches)", body = Object),
        (status = 400, description = "invalid request: the JSON error body names each bad field", body = crate::schemas::ErrorBody),
        (status = 404, description = "no such open session or tool", body = crate::schemas::ErrorBody),
        (status = 413, description = "body larger than the limit", body = crate::schemas::ErrorBody),
        (status = 415, description = "wrong content type", body = crate::schemas::ErrorBody),
        (status = 429, description = "the session's call limit is spent", body = crate::schemas::ErrorBody)
    )
)]
pub(crate) async fn tool(
    State(state): State<AppState>,
    PathParams((sid, name)): PathParams<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let session = session(&state, &sid, &headers).await?;
    let args = arguments(&state, &headers, body).await?;
    session.call(&name, &args).map(Json).map_err(tool_error)
}

/// The session's MCP server, streamable HTTP. Stateless: every request stands alone, so nothing
/// outlives the replay session but the session itself. The body is read through the capped reader
/// and handed on whole.
#[utoipa::path(
    method(get, post, delete),
    path = "/replay/sessions/{sid}/mcp",
    tag = "replay",
    summary = "The session's tools as an MCP server (streamable HTTP, stateless, JSON answers)",
    params(("sid" = String, Path, description = "the session id, the agent's credential")),
    request_body(content = Object, description = "a JSON-RPC request", content_type = "application/json"),
    responses(
        (status = 200, description = "a JSON-RPC answer", body = Object),
        (status = 202, description = "a notification, accepted"),
        (status = 405, description = "a method this stateless server does not serve (GET streams, DELETE sessions)"),
        (status = 406, description = "the Accept header does not take application/json and text/event-stream"),
        (status = 400, description = "invalid request: the JSON error body names each bad field", body = crate::schemas::ErrorBody),
        (status = 404, description = "no such object in the caller's tenant", body = crate::schemas::ErrorBody),
        (status = 413, description = "body larger than the limit", body = crate::schemas::ErrorBody),
        (status = 415, description = "wrong content type", body = crate::schemas::ErrorBody)
    )
)]
pub(crate) async fn mcp(
    State(state): State<AppState>,
    PathParams(sid): PathParams<String>,
    request: axum::extract::Request,
) -> Result<axum::response::Response, ApiError> {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
    };

    let session = session(&state, &sid, request.headers()).await?;
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
#[utoipa::path(
    get,
    path = "/replay/sessions/{sid}/tools",
    tag = "replay",
    summary = "The tools of a session",
    params(("sid" = String, Path, description = "the session id, the agent's credential")),
    responses(
        (status = 200, description = "the tools", body = crate::schemas::ToolList),
        (status = 404, description = "no such open session (or a key of another tenant)", body = crate::schemas::ErrorBody)
    )
)]
pub(crate) async fn list_tools(
    State(state): State<AppState>,
    PathParams(sid): PathParams<String>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    session(&state, &sid, &headers).await?;
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

#[utoipa::path(
    method(get, post),
    path = "/replay/sessions/{sid}/prometheus/api/v1/{endpoint}",
    tag = "replay",
    summary = "The Prometheus HTTP API over a session's frozen series",
    params(("sid" = String, Path, description = "the session id, the agent's credential"), ("endpoint" = String, Path, description = "query, query_range, series or labels"), ("query" = Option<String>, Query, description = "PromQL"), ("time" = Option<String>, Query, description = "RFC 3339 or epoch seconds"), ("start" = Option<String>, Query), ("end" = Option<String>, Query), ("step" = Option<String>, Query, description = "a duration or seconds")),
    responses(
        (status = 200, description = "a Prometheus answer", body = crate::schemas::PrometheusAnswer),
        (status = 400, description = "a bad query, in Prometheus's error shape", body = crate::schemas::PrometheusAnswer),
        (status = 404, description = "no such open session or endpoint", body = crate::schemas::ErrorBody),
        (status = 413, description = "body larger than the limit", body = crate::schemas::ErrorBody),
        (status = 415, description = "wrong content type", body = crate::schemas::ErrorBody)
    )
)]
pub(crate) async fn prometheus(
    State(state): State<AppState>,
    PathParams((sid, endpoint)): PathParams<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let session = session(&state, &sid, &headers).await?;
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
