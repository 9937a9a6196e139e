//! The one place that turns failures into HTTP statuses and the JSON error body. Internal detail
//! (SQL, paths) is logged here and never sent to a client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use evalmint_model::FieldError;
use evalmint_store::StoreError;
use serde::Serialize;

/// An API failure, by what the client should do about it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("this key lacks the {0:?} scope")]
    Forbidden(&'static str),
    #[error("this publishable key does not answer to origin {0:?}")]
    OriginNotAllowed(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("this method is not allowed on this route")]
    MethodNotAllowed,
    #[error("{message}")]
    InvalidRequest {
        message: String,
        fields: Vec<FieldError>,
    },
    #[error("{0}")]
    Conflict(String),
    /// The request names something that was erased and will not come back.
    #[error("{0}")]
    Gone(String),
    /// A write made on a version that is no longer current.
    #[error("stale: the label is at version {current_version} now")]
    Stale {
        current_version: u32,
        current_candidate: String,
    },
    /// Well-formed but semantically invalid fields (an unknown category, an invalid time).
    #[error("{message}")]
    Unprocessable {
        message: String,
        fields: Vec<FieldError>,
    },
    #[error("request body larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the request body did not arrive within {secs} s")]
    RequestTimeout { secs: u64 },
    #[error("the server is saturated; retry after {retry_after_secs} s")]
    Busy { retry_after_secs: u32 },
    #[error("the server is shutting down")]
    Unavailable,
    /// A replay session made more tool calls than it may.
    #[error("{0}")]
    CallLimit(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::InvalidRequest {
            message: message.into(),
            fields: Vec::new(),
        }
    }

    pub fn invalid_fields(fields: Vec<FieldError>) -> Self {
        let message = fields
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        ApiError::InvalidRequest { message, fields }
    }

    /// 422 naming each bad field.
    pub fn unprocessable(fields: Vec<FieldError>) -> Self {
        let message = fields
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        ApiError::Unprocessable { message, fields }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::OriginNotAllowed(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) | ApiError::Stale { .. } => StatusCode::CONFLICT,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::CallLimit(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::OriginNotAllowed(_) => "origin_not_allowed",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::InvalidRequest { .. } => "invalid_request",
            ApiError::Conflict(_) => "conflict",
            ApiError::Gone(_) => "erased",
            ApiError::Stale { .. } => "stale_version",
            ApiError::Unprocessable { .. } => "invalid_field",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::RequestTimeout { .. } => "request_timeout",
            ApiError::Busy { .. } => "busy",
            ApiError::Unavailable => "unavailable",
            ApiError::CallLimit(_) => "call_limit",
            ApiError::Internal(_) => "internal",
        }
    }

    /// Headers the status needs: `Retry-After` for back-pressure.
    pub fn retry_after(&self) -> Option<HeaderValue> {
        match self {
            ApiError::Busy { retry_after_secs } => Some(HeaderValue::from(*retry_after_secs)),
            ApiError::Unavailable => Some(HeaderValue::from(5)),
            _ => None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Busy => ApiError::Busy {
                retry_after_secs: 1,
            },
            StoreError::Closed => ApiError::Unavailable,
            StoreError::KeyTaken => {
                ApiError::Conflict("this key secret is already registered".to_owned())
            }
            StoreError::IdempotencyConflict(key) => ApiError::Conflict(format!(
                "idempotency key {key:?} was already used for different feedback"
            )),
            StoreError::Erased(key) => ApiError::Gone(format!(
                "the feedback of idempotency key {key:?} was erased on request and is not stored \
                 again; send new feedback with a new idempotency key"
            )),
            StoreError::Internal(detail) => ApiError::Internal(detail),
            in_use @ StoreError::InUse { .. } => ApiError::Internal(in_use.to_string()),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    fields: &'a [FieldError],
    #[serde(skip_serializing_if = "Option::is_none")]
    current_version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    current_candidate: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(detail = %detail, "request failed");
        }
        let fields = match &self {
            ApiError::InvalidRequest { fields, .. } | ApiError::Unprocessable { fields, .. } => {
                fields.as_slice()
            }
            _ => &[],
        };
        let (current_version, current_candidate) = match &self {
            ApiError::Stale {
                current_version,
                current_candidate,
            } => (Some(*current_version), Some(current_candidate.as_str())),
            _ => (None, None),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
                fields,
                current_version,
                current_candidate,
            },
        };
        let mut response = (self.status(), axum::Json(body)).into_response();
        if let Some(value) = self.retry_after() {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if let ApiError::OriginNotAllowed(_) = &self {
            response.extensions_mut().insert(OriginRefused);
        }
        response
    }
}

/// Marks a response refused for its origin: CORS must not let the page read it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OriginRefused;

/// The error body a compatible client library expects (see `routes/compat`): Langfuse reads
/// `{"message", "error"}`, Phoenix and LangSmith (FastAPI servers) read `{"detail"}` and answer
/// invalid input with 422.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorShape {
    Langfuse,
    Phoenix,
    LangSmith,
}

impl ApiError {
    /// This error as the client library of `shape` expects it.
    pub(crate) fn shaped(self, shape: ErrorShape) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(detail = %detail, "request failed");
        }
        let status = match (&self, shape) {
            (ApiError::InvalidRequest { .. }, ErrorShape::Phoenix | ErrorShape::LangSmith) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            _ => self.status(),
        };
        let body = match shape {
            ErrorShape::Langfuse => {
                serde_json::json!({ "message": self.to_string(), "error": self.code() })
            }
            ErrorShape::Phoenix | ErrorShape::LangSmith => {
                serde_json::json!({ "detail": self.to_string() })
            }
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(value) = self.retry_after() {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}
