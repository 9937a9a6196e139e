//! A content-addressed blob store: large payloads (tool results) are stored once per distinct
//! content, named by their SHA-256. It lives in a directory (`DATA/blobs` by default) or in an
//! S3-compatible bucket (`s3://bucket/prefix`, through the `object_store` crate).
//!
//! A blob's stored time is the last time a writer stored it (storing content that is already
//! present refreshes it). Garbage collection removes a blob only when no row references it *and*
//! it was last stored longer ago than a grace period, so a blob whose row a writer has not
//! committed yet is never removed under it. In a directory the stored time is the file's
//! modification time, set from the caller's clock; in a bucket it is the object's
//! `last_modified`, set by the server (the grace period absorbs the clocks' skew).
//!
//! The methods are synchronous: the SQLite writer is a plain thread and reads run on the blocking
//! pool. Call them from such a thread, not from an async task.

mod directory;
mod object;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use self::directory::Directory;
use self::object::{Objects, S3Location};

/// Where blobs live; cheap to clone (clones share the backend).
#[derive(Debug, Clone)]
pub struct BlobStore {
    backend: Arc<Backend>,
}

#[derive(Debug)]
enum Backend {
    Directory(Directory),
    Objects(Objects),
}

impl BlobStore {
    /// Blobs in the directory `root` (created if missing), fanned out by the first two bytes of
    /// the digest.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        Ok(Self::with(Backend::Directory(Directory::open(
            root.into(),
        )?)))
    }

    /// Blobs where `url` says: `s3://bucket/prefix` (credentials, region and endpoint from
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` and `AWS_ENDPOINT_URL`),
    /// `file:///absolute/path`, or `default_root` when `url` is empty.
    pub fn from_url(url: &str, default_root: &Path) -> io::Result<Self> {
        Self::from_url_with_env(url, default_root, std::env::vars())
    }

    /// Like [`Self::from_url`], with the `AWS_*` settings taken from `env` instead of the
    /// process environment.
    pub fn from_url_with_env(
        url: &str,
        default_root: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> io::Result<Self> {
        let url = url.trim();
        if url.is_empty() {
            return Self::open(default_root);
        }
        if let Some(path) = url.strip_prefix("file://")
            && path.starts_with('/')
        {
            return Self::open(path);
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if !bucket.is_empty() {
                let prefix = prefix.trim_matches('/');
                let objects = Objects::s3(S3Location { bucket, prefix }, env)?;
                return Ok(Self::with(Backend::Objects(objects)));
            }
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "unsupported blob location {url:?}: use s3://bucket/prefix (an S3 or \
                 S3-compatible bucket) or file:///absolute/path (a directory)"
            ),
        ))
    }

    fn with(backend: Backend) -> Self {
        BlobStore {
            backend: Arc::new(backend),
        }
    }

    /// Where the blobs are, for messages: a directory or an `s3://` URL.
    pub fn location(&self) -> String {
        match self.backend.as_ref() {
            Backend::Directory(directory) => directory.root().display().to_string(),
            Backend::Objects(objects) => objects.url().to_owned(),
        }
    }

    pub fn digest(content: &[u8]) -> String {
        hex::encode(Sha256::digest(content))
    }

    /// Stores `content` durably and returns its digest. Storing content that is already present
    /// adds no second copy and refreshes the blob's stored time (to `now` in a directory, to the
    /// server's time in a bucket), which keeps it out of garbage collection until the writer's
    /// row is committed.
    pub fn put(&self, content: &[u8], now: SystemTime) -> io::Result<String> {
        let digest = Self::digest(content);
        match self.backend.as_ref() {
            Backend::Directory(directory) => directory.put(&digest, content, now)?,
            Backend::Objects(objects) => objects.put(&digest, content)?,
        }
        Ok(digest)
    }

    pub fn get(&self, digest: &str) -> io::Result<Vec<u8>> {
        match self.backend.as_ref() {
            Backend::Directory(directory) => directory.get(digest),
            Backend::Objects(objects) => objects.get(digest),
        }
    }

    /// When the blob was last stored; `None` when it does not exist.
    pub fn stored_at(&self, digest: &str) -> io::Result<Option<SystemTime>> {
        match self.backend.as_ref() {
            Backend::Directory(directory) => directory.stored_at(digest),
            Backend::Objects(objects) => objects.stored_at(digest),
        }
    }

    /// Every stored blob's digest with the time it was last stored. Temporary files that a
    /// crashed writer left in a directory and that are older than `stale_before` are removed on
    /// the way (a bucket has none: an object appears whole or not at all).
    pub fn list(&self, stale_before: SystemTime) -> io::Result<Vec<(String, SystemTime)>> {
        match self.backend.as_ref() {
            Backend::Directory(directory) => directory.list(stale_before),
            Backend::Objects(objects) => objects.list(),
        }
    }

    /// Removes the blob; removing one that does not exist is not an error.
    pub fn remove(&self, digest: &str) -> io::Result<()> {
        match self.backend.as_ref() {
            Backend::Directory(directory) => directory.remove(digest),
            Backend::Objects(objects) => objects.remove(digest),
        }
    }
}

/// A SHA-256 hex digest, the only names blobs have (so no name can leave the store's root).
fn valid_digest(digest: &str) -> bool {
    digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_a_bucket_a_directory_or_the_default() {
        let default_root = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let default = BlobStore::from_url("", default_root.path()).unwrap();
        assert_eq!(
            default.location(),
            default_root.path().display().to_string()
        );
        let file_url = format!("file://{}", other.path().display());
        let directory = BlobStore::from_url(&file_url, default_root.path()).unwrap();
        assert_eq!(directory.location(), other.path().display().to_string());

        let env = [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let bucket =
            BlobStore::from_url_with_env("s3://traces/blobs/", default_root.path(), env).unwrap();
        assert_eq!(bucket.location(), "s3://traces/blobs");

        for bad in [
            "s3://",
            "gs://bucket",
            "file://relative/path",
            "/var/lib/evalmint",
        ] {
            let error = BlobStore::from_url(bad, default_root.path()).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{bad}");
            assert!(
                error.to_string().contains("use s3://bucket/prefix"),
                "{bad}: {error}"
            );
        }
    }
}
