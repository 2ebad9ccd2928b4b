//! Where a node keeps each particle's data between invocations: the interpreter's
//! `prev_data`, keyed like actors by particle id and signature.
//!
//! [`DiskStore`] keeps one file per particle: a header (`BRD1`, the particle's deadline
//! as u64 little-endian) and the data. Every write goes to a fresh temporary file that
//! is synced, then renamed over the old file, and the directory is synced: after a crash
//! a file holds either the old or the new data, never a mix. Opening the store removes
//! files whose deadline has passed (particles that expired while the node was down) and
//! temporary files left by a crash. [`MemoryStore`] keeps data in memory only.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::error::HostError;
use crate::services::BoxFuture;

/// Which particle's data: its id and its init peer's signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoreKey {
    /// Particle id.
    pub particle_id: String,
    /// The init peer's signature.
    pub signature: Vec<u8>,
}

/// Keeps particle data between invocations.
pub trait DataStore: Send + Sync + 'static {
    /// The stored data, or `None` if there is none.
    fn read(&self, key: &StoreKey) -> BoxFuture<Result<Option<Vec<u8>>, HostError>>;
    /// Replaces the data; `deadline_ms` says when it may be removed.
    fn write(
        &self,
        key: &StoreKey,
        deadline_ms: u64,
        data: Vec<u8>,
    ) -> BoxFuture<Result<(), HostError>>;
    /// Removes the data (no error if there is none).
    fn remove(&self, key: &StoreKey) -> BoxFuture<Result<(), HostError>>;
    /// Everything stored (live when the store was opened, or written since), to resume
    /// after a restart.
    fn live(&self) -> BoxFuture<Result<Vec<Vec<u8>>, HostError>>;
}

/// Data in memory: lost when the process ends.
#[derive(Default)]
pub struct MemoryStore {
    data: Mutex<HashMap<StoreKey, Vec<u8>>>,
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StoreKey, Vec<u8>>> {
        self.data.lock().expect("the store lock is never poisoned")
    }
}

impl DataStore for MemoryStore {
    fn read(&self, key: &StoreKey) -> BoxFuture<Result<Option<Vec<u8>>, HostError>> {
        let data = self.lock().get(key).cloned();
        Box::pin(async move { Ok(data) })
    }

    fn write(
        &self,
        key: &StoreKey,
        _deadline_ms: u64,
        data: Vec<u8>,
    ) -> BoxFuture<Result<(), HostError>> {
        self.lock().insert(key.clone(), data);
        Box::pin(async { Ok(()) })
    }

    fn remove(&self, key: &StoreKey) -> BoxFuture<Result<(), HostError>> {
        self.lock().remove(key);
        Box::pin(async { Ok(()) })
    }

    fn live(&self) -> BoxFuture<Result<Vec<Vec<u8>>, HostError>> {
        let all = self.lock().values().cloned().collect();
        Box::pin(async { Ok(all) })
    }
}

const MAGIC: &[u8; 4] = b"BRD1";
const HEADER: usize = 12;

/// One file per particle in a directory, written atomically.
pub struct DiskStore {
    dir: PathBuf,
    temp_counter: AtomicU64,
}

impl DiskStore {
    /// Opens (creating if needed) the store in `dir`, and removes what expired before
    /// `now_ms` and any temporary file a crash left. Returns the store and how many
    /// files it removed.
    pub fn open(dir: impl Into<PathBuf>, now_ms: u64) -> Result<(Self, usize), HostError> {
        let dir = dir.into();
        crate::identity::create_private_dir(&dir).map_err(|e| io_error("create", &dir, &e))?;
        let mut removed = 0;
        let entries = std::fs::read_dir(&dir).map_err(|e| io_error("list", &dir, &e))?;
        for entry in entries {
            let path = entry.map_err(|e| io_error("list", &dir, &e))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let stale = if name.ends_with(".tmp") {
                true
            } else if name.ends_with(".particle") {
                match read_file(&path) {
                    Ok(Some((deadline, _))) => deadline < now_ms,
                    // Not ours or unreadable: a corrupt file is of no use to anyone.
                    Ok(None) | Err(_) => true,
                }
            } else {
                false
            };
            if stale {
                std::fs::remove_file(&path).map_err(|e| io_error("remove", &path, &e))?;
                removed += 1;
            }
        }
        Ok((
            DiskStore {
                dir,
                temp_counter: AtomicU64::new(0),
            },
            removed,
        ))
    }

    /// The file of a particle: the SHA-256 of its id and signature, in hex.
    fn path(&self, key: &StoreKey) -> PathBuf {
        let mut hasher = Sha256::new();
        hasher.update((key.particle_id.len() as u64).to_le_bytes());
        hasher.update(key.particle_id.as_bytes());
        hasher.update(&key.signature);
        let name: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.dir.join(format!("{name}.particle"))
    }
}

impl DataStore for DiskStore {
    fn read(&self, key: &StoreKey) -> BoxFuture<Result<Option<Vec<u8>>, HostError>> {
        let path = self.path(key);
        Box::pin(async move {
            blocking(move || match read_file(&path) {
                Ok(found) => Ok(found.map(|(_, data)| data)),
                Err(e) => Err(io_error("read", &path, &e)),
            })
            .await
        })
    }

    fn write(
        &self,
        key: &StoreKey,
        deadline_ms: u64,
        data: Vec<u8>,
    ) -> BoxFuture<Result<(), HostError>> {
        let path = self.path(key);
        let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        let temp = path.with_extension(format!("{n}.tmp"));
        Box::pin(async move {
            blocking(move || write_atomically(&path, &temp, deadline_ms, &data)).await
        })
    }

    fn remove(&self, key: &StoreKey) -> BoxFuture<Result<(), HostError>> {
        let path = self.path(key);
        Box::pin(async move {
            blocking(move || match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_error("remove", &path, &e)),
            })
            .await
        })
    }

    fn live(&self) -> BoxFuture<Result<Vec<Vec<u8>>, HostError>> {
        let dir = self.dir.clone();
        Box::pin(async move {
            blocking(move || {
                let mut all = Vec::new();
                for entry in std::fs::read_dir(&dir).map_err(|e| io_error("list", &dir, &e))? {
                    let path = entry.map_err(|e| io_error("list", &dir, &e))?.path();
                    if path.extension().is_some_and(|x| x == "particle") {
                        if let Some((_, data)) =
                            read_file(&path).map_err(|e| io_error("read", &path, &e))?
                        {
                            all.push(data);
                        }
                    }
                }
                Ok(all)
            })
            .await
        })
    }
}

/// Temp file, fsync, rename over the old file, fsync the directory.
fn write_atomically(
    path: &Path,
    temp: &Path,
    deadline_ms: u64,
    data: &[u8],
) -> Result<(), HostError> {
    let result = (|| {
        let mut file = std::fs::File::create(temp)?;
        file.write_all(MAGIC)?;
        file.write_all(&deadline_ms.to_le_bytes())?;
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(temp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    result.map_err(|e: std::io::Error| {
        let _ = std::fs::remove_file(temp);
        io_error("write", path, &e)
    })
}

/// The deadline and data of a store file; `None` if it does not exist or is not one.
fn read_file(path: &Path) -> std::io::Result<Option<(u64, Vec<u8>)>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if bytes.len() < HEADER || &bytes[..4] != MAGIC {
        return Ok(None);
    }
    // Invariant: the slice is 8 bytes long.
    let deadline = u64::from_le_bytes(bytes[4..HEADER].try_into().expect("8 bytes"));
    Ok(Some((deadline, bytes[HEADER..].to_vec())))
}

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> HostError {
    HostError::Store(format!("cannot {what} {}: {e}", path.display()))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HostError> + Send + 'static,
) -> Result<T, HostError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HostError::Internal(format!("a store task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> StoreKey {
        StoreKey {
            particle_id: id.to_owned(),
            signature: vec![1, 2, 3],
        }
    }

    #[tokio::test]
    async fn disk_store_writes_reads_replaces_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let (store, removed) = DiskStore::open(dir.path(), 0).unwrap();
        assert_eq!(removed, 0);
        assert_eq!(store.read(&key("a")).await.unwrap(), None);
        store.write(&key("a"), 10, b"one".to_vec()).await.unwrap();
        store.write(&key("a"), 10, b"two".to_vec()).await.unwrap();
        assert_eq!(store.read(&key("a")).await.unwrap(), Some(b"two".to_vec()));
        let other = StoreKey {
            signature: vec![9],
            ..key("a")
        };
        assert_eq!(
            store.read(&other).await.unwrap(),
            None,
            "the signature is part of the key"
        );
        store.remove(&key("a")).await.unwrap();
        store.remove(&key("a")).await.unwrap();
        assert_eq!(store.read(&key("a")).await.unwrap(), None);
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 0, "no temporary files stay behind");
    }

    #[tokio::test]
    async fn opening_removes_expired_data_and_crash_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = DiskStore::open(dir.path(), 0).unwrap();
        store
            .write(&key("old"), 1_000, b"old".to_vec())
            .await
            .unwrap();
        store
            .write(&key("live"), 5_000, b"live".to_vec())
            .await
            .unwrap();
        std::fs::write(dir.path().join("abc.3.tmp"), b"half a write").unwrap();
        std::fs::write(dir.path().join("junk.particle"), b"no header").unwrap();
        std::fs::write(dir.path().join("README"), b"not ours").unwrap();
        drop(store);
        let (store, removed) = DiskStore::open(dir.path(), 2_000).unwrap();
        assert_eq!(removed, 3);
        assert_eq!(store.read(&key("old")).await.unwrap(), None);
        assert_eq!(
            store.read(&key("live")).await.unwrap(),
            Some(b"live".to_vec())
        );
        assert!(dir.path().join("README").exists());
    }

    #[tokio::test]
    async fn memory_store_keeps_data_by_key() {
        let store = MemoryStore::default();
        store.write(&key("a"), 0, vec![1]).await.unwrap();
        assert_eq!(store.read(&key("a")).await.unwrap(), Some(vec![1]));
        store.remove(&key("a")).await.unwrap();
        assert_eq!(store.read(&key("a")).await.unwrap(), None);
    }
}
