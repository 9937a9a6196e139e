//! One process owns a data directory. Two writers on one SQLite file would not corrupt it, but
//! two label pipelines would release each other's leases and redo each other's work, and a key
//! revoked by one process would stay cached in the other. So the store holds an exclusive lock
//! on `DATA/evalmint.lock` while it is open; the operating system drops it when the process ends,
//! however it ends.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::{Result, StoreError};

/// The held lock; dropping it releases the directory.
#[derive(Debug)]
pub(super) struct Owner {
    _locked: File,
}

impl Owner {
    /// Takes the lock at once or fails with [`StoreError::InUse`], naming the process that holds
    /// it when the lock file says.
    pub(super) fn lock(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join("evalmint.lock");
        let cannot = |e: std::io::Error| {
            StoreError::Internal(format!("cannot lock {}: {e}", path.display()))
        };
        let mut file = crate::private::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(cannot)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "another process".to_owned(),
                    holder => holder.to_owned(),
                };
                return Err(StoreError::InUse {
                    dir: data_dir.display().to_string(),
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(cannot(e)),
        }
        // Who holds it, for the message a second opener gets.
        let holder = format!("pid {} ({})", std::process::id(), command_line());
        file.set_len(0).map_err(cannot)?;
        file.rewind().map_err(cannot)?;
        file.write_all(holder.as_bytes()).map_err(cannot)?;
        Ok(Owner { _locked: file })
    }
}

/// The program's name and its first argument (`evalmint serve`).
fn command_line() -> String {
    let mut args = std::env::args();
    let program = args
        .next()
        .map(|program| {
            Path::new(&program)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or(program)
        })
        .unwrap_or_default();
    match args.next() {
        Some(command) => format!("{program} {command}"),
        None => program,
    }
}

#[cfg(test)]
mod tests {
    use crate::{SqliteOptions, SqliteStore, StoreError};

    #[test]
    fn a_second_store_on_one_directory_is_refused_until_the_first_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let first = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
        let second = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap_err();
        let StoreError::InUse { dir: named, holder } = &second else {
            panic!("expected InUse, got {second:?}");
        };
        assert_eq!(named, &dir.path().display().to_string());
        assert!(
            holder.starts_with(&format!("pid {} (", std::process::id())),
            "{holder}"
        );
        assert!(
            second.to_string().contains("is in use by"),
            "the message says what happened: {second}"
        );
        drop(first);
        SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    }
}
