//! The one way request bodies are read: capped before and after decompression, so neither a
//! large upload nor a compression bomb can exhaust memory.

use std::io::Read;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};

use crate::error::ApiError;

/// Reads the whole body, refusing more than `limit` bytes on the wire or after `gzip`.
pub(crate) async fn read_capped(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let encoding = content_encoding(headers)?;
    let raw = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                ApiError::PayloadTooLarge { limit }
            } else {
                ApiError::invalid(format!("could not read the request body: {e}"))
            }
        })?
        .to_bytes();
    match encoding {
        ContentEncoding::Identity => Ok(raw),
        ContentEncoding::Gzip => tokio::task::spawn_blocking(move || gunzip_capped(&raw, limit))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?,
    }
}

enum ContentEncoding {
    Identity,
    Gzip,
}

fn content_encoding(headers: &HeaderMap) -> Result<ContentEncoding, ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(ContentEncoding::Identity);
    };
    match value
        .to_str()
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        Ok("" | "identity") => Ok(ContentEncoding::Identity),
        Ok("gzip" | "x-gzip") => Ok(ContentEncoding::Gzip),
        _ => Err(ApiError::UnsupportedMediaType(
            "unsupported Content-Encoding: use gzip or none".to_owned(),
        )),
    }
}

fn gunzip_capped(compressed: &[u8], limit: usize) -> Result<Bytes, ApiError> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(compressed)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::invalid(format!("invalid gzip body: {e}")))?;
    if out.len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    Ok(Bytes::from(out))
}

/// The media type of the request without parameters, lowercased.
pub(crate) fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
}

/// Reads a JSON request body: JSON content type, capped size, then parsed.
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<T, ApiError> {
    require_json(headers)?;
    parse_json(&read_capped(headers, body, limit).await?)
}

/// Refuses any body that is not JSON.
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    match media_type(headers).as_deref() {
        Some("application/json") => Ok(()),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "expected Content-Type application/json, got {}",
            other.unwrap_or("none")
        ))),
    }
}

/// Parses a JSON body, reporting where it is malformed.
fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn a_compression_bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![0u8; 10 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024);
        assert!(matches!(
            gunzip_capped(&bomb, 1024 * 1024),
            Err(ApiError::PayloadTooLarge { .. })
        ));
        assert_eq!(
            gunzip_capped(&gzip(b"hello"), 5).unwrap(),
            Bytes::from_static(b"hello")
        );
        assert!(matches!(
            gunzip_capped(b"not gzip", 100),
            Err(ApiError::InvalidRequest { .. })
        ));
    }
}
