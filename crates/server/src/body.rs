//! The one way request bodies are read: capped before and after decompression, within a total
//! time, and within a byte budget shared by all requests, so that neither a large upload, a
//! compression bomb, many of them at once nor a client that trickles its body can exhaust memory
//! or hold a request open for long.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;
use crate::{AppState, ServerConfig};

/// Bodies are decompressed this many bytes at a time.
const INFLATE_CHUNK: usize = 64 * 1024;

/// A body at least this large takes a turn before it is decoded (see [`BodyBudget::decode_turn`]).
pub(crate) const LARGE_BODY: usize = 1024 * 1024;

/// The memory all request bodies may hold at once, and the turns at decompressing and decoding.
pub(crate) struct BodyBudget {
    bytes: Arc<Semaphore>,
    decompressions: Arc<Semaphore>,
    large_decodes: Arc<Semaphore>,
    read_timeout: Duration,
}

impl std::fmt::Debug for BodyBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyBudget")
            .field("bytes_available", &self.bytes.available_permits())
            .finish_non_exhaustive()
    }
}

impl BodyBudget {
    pub(crate) fn new(config: &ServerConfig) -> Self {
        BodyBudget {
            bytes: Arc::new(Semaphore::new(
                config.max_in_flight_bytes.clamp(1, Semaphore::MAX_PERMITS),
            )),
            decompressions: Arc::new(Semaphore::new(config.max_decompressions.max(1))),
            large_decodes: Arc::new(Semaphore::new(config.max_large_decodes.max(1))),
            read_timeout: config.body_read_timeout,
        }
    }

    /// Waits for a turn to decode a body of `len` bytes, if it is large. Decoding a large export
    /// takes a core for a second or more; letting only a few run at once leaves the other cores
    /// to the requests (feedback above all) and the writer that would otherwise queue behind
    /// them. Small bodies decode at once.
    pub(crate) async fn decode_turn(
        &self,
        len: usize,
    ) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
        if len < LARGE_BODY {
            return Ok(None);
        }
        let turn = self.large_decodes.clone().acquire_owned().await;
        turn.map(Some)
            .map_err(|e| ApiError::Internal(e.to_string()))
    }
}

/// A body read into memory, holding its share of the byte budget until dropped.
#[derive(Debug)]
pub(crate) struct ReadBody {
    pub bytes: Bytes,
    _reserved: Reserved,
}

/// Bytes taken from the budget; given back when dropped.
#[derive(Debug, Default)]
struct Reserved(Option<OwnedSemaphorePermit>);

impl Reserved {
    /// Takes `more` bytes from the budget without waiting: an exhausted budget is 429.
    fn grow(&mut self, budget: &Arc<Semaphore>, more: usize) -> Result<(), ApiError> {
        if more == 0 {
            return Ok(());
        }
        let permit = u32::try_from(more)
            .ok()
            .and_then(|n| budget.clone().try_acquire_many_owned(n).ok())
            .ok_or(ApiError::Busy {
                retry_after_secs: 1,
            })?;
        match &mut self.0 {
            Some(held) => held.merge(permit),
            None => self.0 = Some(permit),
        }
        Ok(())
    }
}

/// A buffer whose capacity is paid for from the budget and never grows past `limit`.
struct BudgetedBuffer<'a> {
    data: Vec<u8>,
    reserved: Reserved,
    budget: &'a Arc<Semaphore>,
    limit: usize,
}

impl<'a> BudgetedBuffer<'a> {
    fn new(budget: &'a Arc<Semaphore>, limit: usize, expected: usize) -> Result<Self, ApiError> {
        let mut buffer = BudgetedBuffer {
            data: Vec::new(),
            reserved: Reserved::default(),
            budget,
            limit,
        };
        buffer.reserve_total(expected.min(limit))?;
        Ok(buffer)
    }

    fn reserve_total(&mut self, capacity: usize) -> Result<(), ApiError> {
        let more = capacity.saturating_sub(self.data.capacity());
        if more > 0 {
            self.reserved.grow(self.budget, more)?;
            self.data.reserve_exact(capacity - self.data.len());
        }
        Ok(())
    }

    fn extend(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        let needed = self.data.len() + chunk.len();
        if needed > self.limit {
            return Err(ApiError::PayloadTooLarge { limit: self.limit });
        }
        if needed > self.data.capacity() {
            let doubled = (self.data.capacity() * 2).max(INFLATE_CHUNK);
            self.reserve_total(doubled.clamp(needed, self.limit))?;
        }
        self.data.extend_from_slice(chunk);
        Ok(())
    }

    fn finish(self) -> ReadBody {
        ReadBody {
            bytes: Bytes::from(self.data),
            _reserved: self.reserved,
        }
    }
}

/// Reads the whole body, refusing more than `limit` bytes on the wire or after `gzip`, a body
/// that takes longer than the read timeout, and any body the byte budget has no room for.
pub(crate) async fn read_capped(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<ReadBody, ApiError> {
    // A body larger than the whole budget could never be read: too large, not "retry later".
    let limit = limit.min(state.config.max_in_flight_bytes);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let encoding = content_encoding(headers)?;
    let budget = &state.bodies;
    let expected = declared.map_or(0, |len| len as usize);
    let raw = tokio::time::timeout(
        budget.read_timeout,
        collect(body, BudgetedBuffer::new(&budget.bytes, limit, expected)?),
    )
    .await
    .map_err(|_| ApiError::RequestTimeout {
        secs: budget.read_timeout.as_secs(),
    })??;
    match encoding {
        ContentEncoding::Identity => Ok(raw),
        ContentEncoding::Gzip => {
            let _turn = budget
                .decompressions
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let bytes = budget.bytes.clone();
            tokio::task::spawn_blocking(move || gunzip_capped(&raw.bytes, &bytes, limit))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?
        }
    }
}

async fn collect(mut body: Body, mut buffer: BudgetedBuffer<'_>) -> Result<ReadBody, ApiError> {
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::invalid(format!("could not read the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            buffer.extend(&data)?;
        }
    }
    Ok(buffer.finish())
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

/// Inflates chunk by chunk into a budgeted buffer, so a bomb stops at `limit` (413) or when the
/// shared budget runs out (429), whichever comes first.
fn gunzip_capped(
    compressed: &[u8],
    budget: &Arc<Semaphore>,
    limit: usize,
) -> Result<ReadBody, ApiError> {
    let mut decoder = flate2::read::MultiGzDecoder::new(compressed);
    let mut out = BudgetedBuffer::new(budget, limit, compressed.len().saturating_mul(4))?;
    let mut chunk = vec![0u8; INFLATE_CHUNK];
    loop {
        let n = match decoder.read(&mut chunk) {
            Ok(0) => return Ok(out.finish()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ApiError::invalid(format!("invalid gzip body: {e}"))),
        };
        out.extend(&chunk[..n])?;
    }
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
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<T, ApiError> {
    require_json(headers)?;
    parse_json(&read_capped(state, headers, body, limit).await?.bytes)
}

/// Reads a native endpoint's JSON body: malformed JSON is a 400, but a well-formed document that
/// does not fit the request (an unknown or missing field, a wrong type) is a 422 saying which.
pub(crate) async fn read_request<T: serde::de::DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<T, ApiError> {
    let document: serde_json::Value = read_json(state, headers, body, limit).await?;
    serde_json::from_value(document).map_err(|e| {
        ApiError::unprocessable(vec![evalmint_model::FieldError {
            field: "body",
            message: e.to_string(),
        }])
    })
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

    fn budget(bytes: usize) -> Arc<Semaphore> {
        Arc::new(Semaphore::new(bytes))
    }

    #[test]
    fn a_compression_bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![0u8; 10 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024);
        let plenty = budget(64 * 1024 * 1024);
        assert!(matches!(
            gunzip_capped(&bomb, &plenty, 1024 * 1024),
            Err(ApiError::PayloadTooLarge { .. })
        ));
        assert_eq!(
            gunzip_capped(&gzip(b"hello"), &plenty, 5).unwrap().bytes,
            Bytes::from_static(b"hello")
        );
        assert!(matches!(
            gunzip_capped(b"not gzip", &plenty, 100),
            Err(ApiError::InvalidRequest { .. })
        ));
        assert_eq!(
            plenty.available_permits(),
            64 * 1024 * 1024,
            "refused and dropped bodies give their bytes back"
        );
    }

    #[test]
    fn inflating_stops_when_the_shared_budget_runs_out() {
        let bomb = gzip(&vec![0u8; 4 * 1024 * 1024]);
        let small = budget(1024 * 1024);
        assert!(matches!(
            gunzip_capped(&bomb, &small, 8 * 1024 * 1024),
            Err(ApiError::Busy { .. })
        ));
        assert_eq!(small.available_permits(), 1024 * 1024);
    }

    #[test]
    fn a_held_body_keeps_its_bytes_until_dropped() {
        let shared = budget(1024 * 1024);
        let body = gunzip_capped(&gzip(&[7u8; 100_000]), &shared, 1024 * 1024).unwrap();
        assert_eq!(body.bytes.len(), 100_000);
        let held = 1024 * 1024 - shared.available_permits();
        assert!((100_000..=1024 * 1024).contains(&held), "held {held}");
        drop(body);
        assert_eq!(shared.available_permits(), 1024 * 1024);
    }
}
