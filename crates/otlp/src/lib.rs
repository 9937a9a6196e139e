//! OTLP/HTTP trace payloads in and out: decoding protobuf and JSON export requests, mapping their
//! spans onto investigation steps (OTel GenAI and OpenInference conventions), and encoding the
//! export response with its partial-success counts. Transport concerns (body limits,
//! compression, content types) belong to the server.

mod attributes;
mod entities;
mod map;
mod tool_call;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

pub use entities::catalog_entries;
pub use map::{MappedBatch, MappedFeedback, MappedStep, map_request};

/// How an OTLP/HTTP body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// The encoding for a `Content-Type` header value, ignoring parameters such as `charset`.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let media_type = content_type.split(';').next()?.trim().to_ascii_lowercase();
        match media_type.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// A body that is not an OTLP trace export request.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid protobuf ExportTraceServiceRequest: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("invalid OTLP JSON ExportTraceServiceRequest: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid OTLP JSON ExportTraceServiceRequest: expected an object with resourceSpans")]
    JsonNotAnObject,
}

/// Decodes an export request. The body must already be decompressed.
pub fn decode_request(
    body: &[u8],
    encoding: Encoding,
) -> Result<ExportTraceServiceRequest, DecodeError> {
    Ok(match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(body)?,
        Encoding::Json => {
            // serde would read a struct from a JSON array too; OTLP JSON is always an object.
            if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                return Err(DecodeError::JsonNotAnObject);
            }
            serde_json::from_slice(body)?
        }
    })
}

/// Encodes the export response; `partial_success` is set only when something was rejected. In
/// JSON the 64-bit count is a string, as the OTLP JSON mapping specifies.
pub fn encode_response(rejected_spans: usize, error_message: &str, encoding: Encoding) -> Vec<u8> {
    let partial = rejected_spans > 0 || !error_message.is_empty();
    match encoding {
        Encoding::Protobuf => ExportTraceServiceResponse {
            partial_success: partial.then(|| ExportTracePartialSuccess {
                rejected_spans: i64::try_from(rejected_spans).unwrap_or(i64::MAX),
                error_message: error_message.to_owned(),
            }),
        }
        .encode_to_vec(),
        Encoding::Json if partial => serde_json::json!({
            "partialSuccess": {
                "rejectedSpans": rejected_spans.to_string(),
                "errorMessage": error_message,
            }
        })
        .to_string()
        .into_bytes(),
        Encoding::Json => b"{}".to_vec(),
    }
}

/// `google.rpc.Status`, the body OTLP/HTTP specifies for error responses to protobuf requests.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// Encodes an error status as protobuf.
pub fn encode_status(code: i32, message: &str) -> Vec<u8> {
    RpcStatus {
        code,
        message: message.to_owned(),
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_matched_without_parameters() {
        assert_eq!(
            Encoding::from_content_type("application/json; charset=utf-8"),
            Some(Encoding::Json)
        );
        assert_eq!(
            Encoding::from_content_type("Application/X-Protobuf"),
            Some(Encoding::Protobuf)
        );
        assert_eq!(Encoding::from_content_type("text/plain"), None);
    }

    #[test]
    fn garbage_is_a_decode_error_not_a_panic() {
        assert!(decode_request(b"\xff\xff\xff", Encoding::Protobuf).is_err());
        assert!(decode_request(b"{\"resourceSpans\": 5}", Encoding::Json).is_err());
        assert!(decode_request(b"", Encoding::Protobuf).is_ok());
    }

    #[test]
    fn otlp_json_must_be_an_object() {
        for body in [&b"[]"[..], b" [ ]", b"null", b"\"x\"", b""] {
            assert!(
                matches!(
                    decode_request(body, Encoding::Json),
                    Err(DecodeError::JsonNotAnObject)
                ),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(decode_request(b" {}", Encoding::Json).is_ok());
    }

    #[test]
    fn responses_report_partial_success_only_when_needed() {
        assert_eq!(encode_response(0, "", Encoding::Json), b"{}");
        let json = String::from_utf8(encode_response(2, "bad ids", Encoding::Json)).unwrap();
        assert_eq!(
            json,
            r#"{"partialSuccess":{"errorMessage":"bad ids","rejectedSpans":"2"}}"#
        );
    }
}
