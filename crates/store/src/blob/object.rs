//! Blobs as objects in an S3-compatible bucket, through the `object_store` crate, under the same
//! `ab/cd/abcd…` keys as on disk.
//!
//! `object_store` is async; the blob store's callers are not (the SQLite writer is a plain
//! thread, reads run on tokio's blocking pool), and blocking on a runtime from inside one panics.
//! So the backend owns a small runtime of its own and each call is spawned onto it and waited for
//! on a channel: safe from any thread, whether or not it belongs to another runtime.
//!
//! An object's stored time is its `last_modified`, set by the server on every write. Writing
//! content that is already present therefore uploads it again: that is what refreshes the time
//! (S3 cannot change it otherwise), and the upload replaces the object under the same key, so the
//! bucket still holds one copy.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::TryStreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt};

use super::valid_digest;

pub(super) struct Objects {
    store: Arc<dyn ObjectStore>,
    prefix: Key,
    /// `s3://bucket/prefix`, for messages.
    url: String,
    runtime: BlobRuntime,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Objects").field("url", &self.url).finish()
    }
}

/// Where an `s3://` URL points.
pub(super) struct S3Location<'a> {
    pub bucket: &'a str,
    pub prefix: &'a str,
}

impl Objects {
    /// An S3 bucket configured from `AWS_*` variables in `env` (access key, secret, region,
    /// `AWS_ENDPOINT_URL` for S3-compatible servers; an `http://` endpoint is allowed).
    pub(super) fn s3(
        location: S3Location<'_>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> io::Result<Self> {
        use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
        let mut builder = AmazonS3Builder::new();
        for (name, value) in env {
            if !name.starts_with("AWS_") {
                continue;
            }
            if let Ok(key) = name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(key, value);
            }
        }
        let plain_http = builder
            .get_config_value(&AmazonS3ConfigKey::Endpoint)
            .is_some_and(|endpoint| endpoint.starts_with("http://"));
        let store = builder
            .with_bucket_name(location.bucket)
            .with_allow_http(plain_http)
            .build()
            .map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "cannot use bucket {:?}: {e} (set AWS_ACCESS_KEY_ID, \
                         AWS_SECRET_ACCESS_KEY, AWS_REGION and, for an S3-compatible server, \
                         AWS_ENDPOINT_URL)",
                        location.bucket
                    ),
                )
            })?;
        let url = match location.prefix {
            "" => format!("s3://{}", location.bucket),
            prefix => format!("s3://{}/{prefix}", location.bucket),
        };
        Ok(Objects {
            store: Arc::new(store),
            prefix: Key::from(location.prefix),
            url,
            runtime: BlobRuntime::start()?,
        })
    }

    pub(super) fn url(&self) -> &str {
        &self.url
    }

    fn key(&self, digest: &str) -> Option<Key> {
        valid_digest(digest).then(|| {
            self.prefix
                .clone()
                .join(&digest[..2])
                .join(&digest[2..4])
                .join(digest)
        })
    }

    pub(super) fn put(&self, digest: &str, content: &[u8]) -> io::Result<()> {
        let key = self
            .key(digest)
            .expect("a sha-256 hex digest is a valid name");
        let store = self.store.clone();
        let payload = object_store::PutPayload::from(content.to_vec());
        self.run(async move { store.put(&key, payload).await.map(drop) })
    }

    pub(super) fn get(&self, digest: &str) -> io::Result<Vec<u8>> {
        let key = self
            .key(digest)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a blob digest"))?;
        let store = self.store.clone();
        self.run(async move {
            let bytes = store.get(&key).await?.bytes().await?;
            Ok(bytes.to_vec())
        })
    }

    pub(super) fn stored_at(&self, digest: &str) -> io::Result<Option<SystemTime>> {
        let Some(key) = self.key(digest) else {
            return Ok(None);
        };
        let store = self.store.clone();
        let head = self.run(async move { store.head(&key).await });
        match head {
            Ok(meta) => Ok(Some(stored_time(&meta))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every blob under the prefix; other objects there are left alone.
    pub(super) fn list(&self) -> io::Result<Vec<(String, SystemTime)>> {
        let store = self.store.clone();
        let prefix = self.prefix.clone();
        let listed = self.run(async move {
            store
                .list(Some(&prefix))
                .try_collect::<Vec<object_store::ObjectMeta>>()
                .await
        })?;
        Ok(listed
            .into_iter()
            .filter_map(|meta| {
                let digest = meta.location.filename()?.to_owned();
                (self.key(&digest)? == meta.location).then(|| (digest, stored_time(&meta)))
            })
            .collect())
    }

    pub(super) fn remove(&self, digest: &str) -> io::Result<()> {
        let Some(key) = self.key(digest) else {
            return Ok(());
        };
        let store = self.store.clone();
        match self.run(async move { store.delete(&key).await }) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Runs `request` on the backend's runtime and waits for it, mapping its error to an
    /// `io::Error` that names the bucket (a missing object is `NotFound`).
    fn run<T: Send + 'static>(
        &self,
        request: impl Future<Output = object_store::Result<T>> + Send + 'static,
    ) -> io::Result<T> {
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        self.runtime.handle().spawn(async move {
            let _ = answer.send(request.await);
        });
        let outcome = answered
            .recv()
            .map_err(|_| io::Error::other(format!("the blob store for {} stopped", self.url)))?;
        outcome.map_err(|e| {
            let kind = match e {
                object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
                _ => io::ErrorKind::Other,
            };
            io::Error::new(kind, format!("{}: {e}", self.url))
        })
    }
}

/// When the server last wrote the object.
fn stored_time(meta: &object_store::ObjectMeta) -> SystemTime {
    let micros = meta.last_modified.timestamp_micros();
    let magnitude = Duration::from_micros(micros.unsigned_abs());
    if micros >= 0 {
        SystemTime::UNIX_EPOCH + magnitude
    } else {
        SystemTime::UNIX_EPOCH - magnitude
    }
}

/// The runtime that runs the backend's requests; shut down without waiting when the last clone
/// of the store goes (dropping a runtime the ordinary way panics inside another runtime).
struct BlobRuntime(Option<tokio::runtime::Runtime>);

impl BlobRuntime {
    fn start() -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("blob-io")
            .enable_all()
            .build()?;
        Ok(BlobRuntime(Some(runtime)))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0
            .as_ref()
            .expect("the runtime lives as long as the store")
            .handle()
    }
}

impl Drop for BlobRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}
