//! Blobs as files under one directory, fanned out by the first two bytes of the digest
//! (`ab/cd/abcd…`). Kept apart from the object-store backend because a file can do what an object
//! cannot: be created for its owner only (mode 0600), and have its modification time set to the
//! store's clock, so storing content that is already present costs one `open`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::valid_digest;

#[derive(Debug)]
pub(super) struct Directory {
    root: PathBuf,
}

impl Directory {
    pub(super) fn open(root: PathBuf) -> io::Result<Self> {
        crate::private::create_dir_all(&root)?;
        Ok(Directory { root })
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, digest: &str) -> Option<PathBuf> {
        valid_digest(digest).then(|| {
            self.root
                .join(&digest[..2])
                .join(&digest[2..4])
                .join(digest)
        })
    }

    /// Written, synced, then renamed into place; content already present only has its
    /// modification time set to `now`.
    pub(super) fn put(&self, digest: &str, content: &[u8], now: SystemTime) -> io::Result<()> {
        let path = self
            .path(digest)
            .expect("a sha-256 hex digest is a valid name");
        match fs::File::options().write(true).open(&path) {
            Ok(existing) => return existing.set_modified(now),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let dir = path.parent().expect("blob paths have a parent");
        crate::private::create_dir_all(dir)?;
        let mut temp = tempfile_in(dir)?;
        temp.1.write_all(content)?;
        temp.1.set_modified(now)?;
        temp.1.sync_all()?;
        fs::rename(&temp.0, &path)?;
        fs::File::open(dir)?.sync_all()
    }

    pub(super) fn get(&self, digest: &str) -> io::Result<Vec<u8>> {
        let path = self
            .path(digest)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a blob digest"))?;
        fs::read(path)
    }

    pub(super) fn stored_at(&self, digest: &str) -> io::Result<Option<SystemTime>> {
        let Some(path) = self.path(digest) else {
            return Ok(None);
        };
        match fs::metadata(path) {
            Ok(meta) => meta.modified().map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Temporary files that a crashed writer left behind and that are older than
    /// `stale_before` are removed on the way.
    pub(super) fn list(&self, stale_before: SystemTime) -> io::Result<Vec<(String, SystemTime)>> {
        let mut found = Vec::new();
        for first in read_dirs(&self.root)? {
            for second in read_dirs(&first)? {
                for entry in fs::read_dir(&second)? {
                    let entry = entry?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let modified = entry.metadata()?.modified()?;
                    if name.starts_with(".tmp-") {
                        if modified < stale_before {
                            let _ = fs::remove_file(entry.path());
                        }
                    } else if self.path(&name).is_some() {
                        found.push((name, modified));
                    }
                }
            }
        }
        Ok(found)
    }

    pub(super) fn remove(&self, digest: &str) -> io::Result<()> {
        match self.path(digest).map(fs::remove_file) {
            Some(Err(e)) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn read_dirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            dirs.push(entry.path());
        }
    }
    Ok(dirs)
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
    use crate::BlobStore;

    #[test]
    fn identical_content_is_stored_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path()).unwrap();
        let a = blobs.put(b"series: 42", SystemTime::now()).unwrap();
        let b = blobs.put(b"series: 42", SystemTime::now()).unwrap();
        assert_eq!(a, b);
        assert_eq!(blobs.get(&a).unwrap(), b"series: 42");
        let files = walk(dir.path());
        assert_eq!(files, 1, "one file for one distinct content");
        blobs.remove(&a).unwrap();
        assert!(blobs.get(&a).is_err());
        assert!(blobs.get("../../etc/passwd").is_err());
    }

    #[test]
    fn storing_again_refreshes_the_stored_time_and_listing_drops_stale_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path()).unwrap();
        let long_ago = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        let later = long_ago + std::time::Duration::from_secs(3600);
        let digest = blobs.put(b"rows", long_ago).unwrap();
        assert_eq!(blobs.stored_at(&digest).unwrap(), Some(long_ago));
        blobs.put(b"rows", later).unwrap();
        assert_eq!(blobs.stored_at(&digest).unwrap(), Some(later));

        let (temp, file) = tempfile_in(&dir.path().join(&digest[..2]).join(&digest[2..4])).unwrap();
        file.set_modified(long_ago).unwrap();
        drop(file);
        let listed = blobs.list(later).unwrap();
        assert_eq!(listed, [(digest.clone(), later)]);
        assert!(
            !temp.exists(),
            "a crashed writer's old temporary file is removed"
        );
        assert_eq!(blobs.stored_at(&"0".repeat(64)).unwrap(), None);
    }

    fn walk(dir: &Path) -> usize {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| if p.is_dir() { walk(&p) } else { 1 })
            .sum()
    }
}
