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
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) | ApiError::Stale { .. } => StatusCode::CONFLICT,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::InvalidRequest { .. } => "invalid_request",
            ApiError::Conflict(_) => "conflict",
            ApiError::Stale { .. } => "stale_version",
            ApiError::Unprocessable { .. } => "invalid_field",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::RequestTimeout { .. } => "request_timeout",
            ApiError::Busy { .. } => "busy",
            ApiError::Unavailable => "unavailable",
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
            StoreError::Internal(detail) => ApiError::Internal(detail),
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
        response
    }
}
