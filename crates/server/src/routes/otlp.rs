//! `POST /v1/traces`: OTLP/HTTP trace export, protobuf or JSON, optionally gzipped. Errors to
//! protobuf clients are `google.rpc.Status` messages, as OTLP/HTTP specifies; JSON clients get the
//! usual JSON error body.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use evalmint_model::{FeedbackOrigin, Scope};
use evalmint_otlp::{Encoding, MappedBatch};
use evalmint_store::IngestBatch;

use super::timed_write;
use crate::AppState;
use crate::auth::Caller;
use crate::body::{media_type, read_capped};
use crate::error::ApiError;

#[utoipa::path(
    post,
    path = "/v1/traces",
    tag = "ingest",
    summary = "OTLP/HTTP trace export (protobuf or JSON, optionally gzipped)",
    request_body(content = Object, content_type = "application/json", description = "an OTLP ExportTraceServiceRequest; application/x-protobuf is also taken"),
    responses(
        (status = 200, description = "stored; partial success names rejected spans", body = Object),
        (status = 400, description = "invalid request: the JSON error body names each bad field", body = Object),
        (status = 401, description = "missing or unknown API key", body = Object),
        (status = 403, description = "the key lacks the scope", body = Object),
        (status = 413, description = "body larger than the limit", body = Object),
        (status = 415, description = "wrong content type", body = Object),
        (status = 429, description = "saturated; retry after Retry-After seconds", body = Object)
    ),
    security(("api_key" = []))
)]
pub(crate) async fn export(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(encoding) = media_type(&headers)
        .as_deref()
        .and_then(Encoding::from_content_type)
    else {
        return ApiError::UnsupportedMediaType(
            "OTLP/HTTP accepts application/x-protobuf or application/json".to_owned(),
        )
        .into_response();
    };
    match export_inner(&state, caller, &headers, body, encoding).await {
        Ok(response) => response,
        Err(error) if encoding == Encoding::Protobuf => protobuf_error(error),
        Err(error) => error.into_response(),
    }
}

async fn export_inner(
    state: &AppState,
    caller: Result<Caller, ApiError>,
    headers: &HeaderMap,
    body: Body,
    encoding: Encoding,
) -> Result<Response, ApiError> {
    let caller = caller?;
    caller.require(Scope::Ingest)?;
    // The body keeps its share of the byte budget until the batch is stored.
    let body = read_capped(state, headers, body, state.config.max_body_bytes).await?;
    let bytes = body.bytes.clone();
    let turn = state.bodies.decode_turn(bytes.len()).await?;
    let mapped = tokio::task::spawn_blocking(move || {
        evalmint_otlp::decode_request(&bytes, encoding).map(|request| {
            (
                evalmint_otlp::map_request(&request),
                evalmint_otlp::catalog_entries(&request),
            )
        })
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| ApiError::invalid(e.to_string()))?;
    drop(turn);

    let (mapped, entities) = mapped;
    let rejected = mapped.rejected_spans;
    let message = mapped.rejection_message();
    let origins = feedback_origins(&mapped);
    let batch = IngestBatch {
        steps: mapped
            .steps
            .into_iter()
            .map(|m| (m.trace_id, m.step))
            .collect(),
        feedback: mapped.feedback.into_iter().map(|m| m.feedback).collect(),
        entities,
    };
    let receipt = timed_write(state, "ingest", state.store.ingest(caller.tenant(), batch)).await?;
    drop(body);
    state.metrics.spans(receipt.steps_written, rejected);
    if receipt.feedback_created > 0 {
        for (origin, count) in origins {
            state
                .metrics
                .feedback(origin, count.min(receipt.feedback_created));
        }
    }

    let mut response = (
        StatusCode::OK,
        evalmint_otlp::encode_response(rejected, &message, encoding),
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    Ok(response)
}

fn feedback_origins(mapped: &MappedBatch) -> HashMap<FeedbackOrigin, usize> {
    let mut counts = HashMap::new();
    for m in &mapped.feedback {
        *counts.entry(m.feedback.origin).or_insert(0) += 1;
    }
    counts
}

fn protobuf_error(error: ApiError) -> Response {
    // google.rpc.Code values closest to each HTTP status.
    let code = match error.status() {
        StatusCode::UNAUTHORIZED => 16,
        StatusCode::FORBIDDEN => 7,
        StatusCode::PAYLOAD_TOO_LARGE => 8,
        StatusCode::REQUEST_TIMEOUT => 4,
        StatusCode::TOO_MANY_REQUESTS => 8,
        StatusCode::SERVICE_UNAVAILABLE => 14,
        StatusCode::INTERNAL_SERVER_ERROR => 13,
        _ => 3,
    };
    if let ApiError::Internal(detail) = &error {
        tracing::error!(detail = %detail, "trace export failed");
    }
    let message = error.to_string();
    let mut response =
        (error.status(), evalmint_otlp::encode_status(code, &message)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    );
    if let Some(retry_after) = error.retry_after() {
        headers.insert(header::RETRY_AFTER, retry_after);
    }
    response
}
