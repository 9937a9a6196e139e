//! Files and directories readable by their owner only: the database, its WAL, the blobs and the
//! saved admin key hold tenant data and secrets.

use std::fs;
use std::io;
use std::path::Path;

/// Creates `dir` and any missing parents with mode 0700 (existing directories are left as they
/// are: the operator may have chosen their permissions).
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Options that create files with mode 0600.
pub fn options() -> fs::OpenOptions {
    let mut options = fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Creates `path` empty with mode 0600 unless it exists.
pub fn create_file(path: &Path) -> io::Result<()> {
    options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_store_creates_its_files_for_the_owner_only() {
        let parent = tempfile::tempdir().unwrap();
        let data = parent.path().join("data");
        let store = crate::SqliteStore::open(&data, crate::SqliteOptions::default()).unwrap();
        let blobs = crate::BlobStore::open(data.join("blobs")).unwrap();
        let digest = blobs
            .put(b"a tool result", std::time::SystemTime::now())
            .unwrap();
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("blobs")), 0o700);
        assert_eq!(mode(&data.join("blobs").join(&digest[..2])), 0o700);
        for file in ["evalmint.db", "evalmint.db-wal", "evalmint.db-shm"] {
            assert_eq!(mode(&data.join(file)), 0o600, "{file}");
        }
        drop(store);
        let blob = data
            .join("blobs")
            .join(&digest[..2])
            .join(&digest[2..4])
            .join(&digest);
        assert_eq!(mode(&blob), 0o600);
    }
}
