//! A content-addressed blob store on the filesystem: large payloads (tool results) are stored
//! once per distinct content, named by their SHA-256.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Blobs under one directory, fanned out by the first two bytes of the digest.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        crate::private::create_dir_all(&root)?;
        Ok(BlobStore { root })
    }

    pub fn digest(content: &[u8]) -> String {
        hex::encode(Sha256::digest(content))
    }

    fn path(&self, digest: &str) -> Option<PathBuf> {
        let valid = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit());
        valid.then(|| {
            self.root
                .join(&digest[..2])
                .join(&digest[2..4])
                .join(digest)
        })
    }

    /// Stores `content` durably (written, synced, then renamed into place) and returns its
    /// digest. Storing content that is already present costs one `stat`.
    pub fn put(&self, content: &[u8]) -> io::Result<String> {
        let digest = Self::digest(content);
        let path = self
            .path(&digest)
            .expect("a sha-256 hex digest is a valid name");
        if path.exists() {
            return Ok(digest);
        }
        let dir = path.parent().expect("blob paths have a parent");
        crate::private::create_dir_all(dir)?;
        let mut temp = tempfile_in(dir)?;
        temp.1.write_all(content)?;
        temp.1.sync_all()?;
        fs::rename(&temp.0, &path)?;
        fs::File::open(dir)?.sync_all()?;
        Ok(digest)
    }

    pub fn get(&self, digest: &str) -> io::Result<Vec<u8>> {
        let path = self
            .path(digest)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a blob digest"))?;
        fs::read(path)
    }

    pub fn remove(&self, digest: &str) -> io::Result<()> {
        match self.path(digest).map(fs::remove_file) {
            Some(Err(e)) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn tempfile_in(dir: &Path) -> io::Result<(PathBuf, fs::File)> {
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(io::Error::other)?;
    let path = dir.join(format!(".tmp-{}", hex::encode(suffix)));
    let file = crate::private::options()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((path, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_content_is_stored_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path()).unwrap();
        let a = blobs.put(b"series: 42").unwrap();
        let b = blobs.put(b"series: 42").unwrap();
        assert_eq!(a, b);
        assert_eq!(blobs.get(&a).unwrap(), b"series: 42");
        let files = walk(dir.path());
        assert_eq!(files, 1, "one file for one distinct content");
        blobs.remove(&a).unwrap();
        assert!(blobs.get(&a).is_err());
        assert!(blobs.get("../../etc/passwd").is_err());
    }

    fn walk(dir: &Path) -> usize {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| if p.is_dir() { walk(&p) } else { 1 })
            .sum()
    }
}
