//! `vault`: files a particle writes (`put(data) -> path`) and reads back (`cat(path)`),
//! or hands to `dist.add_module_from_vault`; each particle sees only its own. The paths
//! are Nox's virtual paths, `/tmp/vault/<particle id>/<name>`, which compiled Aqua
//! passes around as text.
//!
//! A node with a data dir keeps the files there, as Nox does: a directory per particle
//! under `<data dir>/vault/`, named `<deadline ms>-<hash>` (the hash is the SHA-256 of
//! the init peer, the particle id and the scope it runs in, the host or a worker: a
//! particle's run on the host and its run on a worker of the same node have a
//! directory each, and one ending does not take the other's files; no text from the
//! network becomes a path), and
//! files named by the vault (a UUID); a name read back is checked before it touches the
//! disk, so no path leaves its directory. A node without one keeps them in memory.
//! Either way they are bounded (bytes and files per particle and per node) and removed
//! with the particle: when its actor ends ([`Vault::remove`]), and by the sweep of
//! expired directories that runs at every `put` and when the node starts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::pure::string_arg;
use crate::identity::random_uuid;
use crate::services::{ServiceCall, ServiceError, ServiceResult};

/// Most bytes one particle may keep in the vault.
pub(crate) const MAX_PARTICLE_BYTES: usize = 64 << 20;
/// Most files one particle may keep in the vault.
pub(crate) const MAX_PARTICLE_FILES: usize = 1024;
/// Most bytes the vault keeps for all particles, in memory.
pub(crate) const MAX_TOTAL_BYTES_IN_MEMORY: usize = 256 << 20;
/// Most bytes the vault keeps for all particles, on disk.
pub(crate) const MAX_TOTAL_BYTES_ON_DISK: usize = 1 << 30;
/// Most files the vault keeps for all particles.
pub(crate) const MAX_TOTAL_FILES: usize = 65_536;
/// The longest file name `cat` takes.
const MAX_NAME_LEN: usize = 128;

/// The files of live particles.
pub(crate) struct Vault {
    /// `<data dir>/vault`, or `None`: in memory.
    root: Option<PathBuf>,
    /// By [`dir_key`] of the init peer, particle id and scope: a particle id reused by
    /// another peer, or run by a worker, is another directory.
    dirs: Mutex<HashMap<String, Dir>>,
}

struct Dir {
    deadline_ms: u64,
    bytes: usize,
    count: usize,
    /// The files, in memory (empty on disk).
    files: HashMap<String, Vec<u8>>,
}

impl Vault {
    /// A vault in memory.
    pub(crate) fn in_memory() -> Self {
        Vault {
            root: None,
            dirs: Mutex::new(HashMap::new()),
        }
    }

    /// A vault in `root` (made at the first `put`): the directories of particles that expired
    /// before `now_ms`, and whatever else is there, are removed; the others are kept
    /// for their particles, which a restarted node resumes.
    pub(crate) fn on_disk(root: PathBuf, now_ms: u64) -> Self {
        let mut dirs = HashMap::new();
        for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let kept = name
                .to_str()
                .and_then(parse_dir_name)
                .and_then(|(deadline, key)| {
                    (deadline > now_ms && path.is_dir()).then(|| (deadline, key.to_owned()))
                });
            match kept {
                Some((deadline_ms, key)) => {
                    let (mut bytes, mut count) = (0, 0);
                    for file in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                        bytes += file.metadata().map_or(0, |m| m.len() as usize);
                        count += 1;
                    }
                    dirs.insert(
                        key,
                        Dir {
                            deadline_ms,
                            bytes,
                            count,
                            files: HashMap::new(),
                        },
                    );
                }
                None => remove_path(&path),
            }
        }
        Vault {
            root: Some(root),
            dirs: Mutex::new(dirs),
        }
    }

    /// Whether the files are in memory (so `put` and `cat` never touch the disk).
    pub(crate) fn is_in_memory(&self) -> bool {
        self.root.is_none()
    }

    pub(crate) fn call(&self, call: &ServiceCall, now_ms: u64) -> ServiceResult {
        match call.function_name.as_str() {
            "put" => {
                let data = string_arg(&call.args, 0, "data")?;
                self.put(call, data.as_bytes(), now_ms).map(Value::String)
            }
            "cat" => {
                let path = string_arg(&call.args, 0, "path")?;
                let bytes = self.read(call, path, now_ms)?;
                String::from_utf8(bytes)
                    .map(Value::String)
                    .map_err(|_| ServiceError::new(format!("vault file `{path}` is not UTF-8")))
            }
            other => Err(ServiceError::new(format!(
                "internal error, please report: vault.{other} is listed but not built"
            ))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Dir>> {
        // Invariant: nothing panics while holding this lock.
        self.dirs.lock().expect("the vault lock is never poisoned")
    }

    /// Forgets the directories whose particle expired, and removes them from disk.
    fn sweep(&self, dirs: &mut HashMap<String, Dir>, now_ms: u64) {
        dirs.retain(|key, dir| {
            let live = dir.deadline_ms > now_ms;
            if !live {
                if let Some(root) = &self.root {
                    remove_path(&root.join(dir_name(dir.deadline_ms, key)));
                }
            }
            live
        });
    }

    /// Stores `data` for the call's particle; its virtual path.
    pub(crate) fn put(
        &self,
        call: &ServiceCall,
        data: &[u8],
        now_ms: u64,
    ) -> Result<String, ServiceError> {
        let particle = &call.particle;
        let deadline_ms = particle.timestamp.saturating_add(u64::from(particle.ttl));
        if deadline_ms <= now_ms {
            return Err(ServiceError::new(
                "the particle has expired: its vault is gone",
            ));
        }
        let name = random_uuid().map_err(|e| ServiceError::new(e.to_string()))?;
        let key = dir_key(&particle.init_peer_id, &particle.id, &particle.host_id);
        let max_total = match self.root {
            Some(_) => MAX_TOTAL_BYTES_ON_DISK,
            None => MAX_TOTAL_BYTES_IN_MEMORY,
        };
        // Reserve the room under the lock; a file on disk is written outside it.
        {
            let mut dirs = self.lock();
            self.sweep(&mut dirs, now_ms);
            let total: usize = dirs.values().map(|d| d.bytes).sum();
            let files: usize = dirs.values().map(|d| d.count).sum();
            let dir = dirs.entry(key.clone()).or_insert_with(|| Dir {
                deadline_ms,
                bytes: 0,
                count: 0,
                files: HashMap::new(),
            });
            if dir.bytes + data.len() > MAX_PARTICLE_BYTES || total + data.len() > max_total {
                return Err(ServiceError::new(format!(
                    "the vault is full: a particle may keep {MAX_PARTICLE_BYTES} bytes, the node {max_total}"
                )));
            }
            if dir.count >= MAX_PARTICLE_FILES || files >= MAX_TOTAL_FILES {
                return Err(ServiceError::new(format!(
                    "the vault is full: a particle may keep {MAX_PARTICLE_FILES} files, the node {MAX_TOTAL_FILES}"
                )));
            }
            dir.bytes += data.len();
            dir.count += 1;
            if self.root.is_none() {
                dir.files.insert(name.clone(), data.to_vec());
            }
        }
        if let Some(root) = &self.root {
            let dir = root.join(dir_name(deadline_ms, &key));
            let written =
                std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join(&name), data));
            if let Err(e) = written {
                if let Some(d) = self.lock().get_mut(&key) {
                    d.bytes -= data.len().min(d.bytes);
                    d.count = d.count.saturating_sub(1);
                }
                tracing::error!(dir = %dir.display(), "cannot write a vault file: {e}");
                return Err(ServiceError::new(format!(
                    "cannot write the vault file: {e}"
                )));
            }
            // The particle ended while this was written: its directory goes too.
            if !self.lock().contains_key(&key) {
                remove_path(&dir);
            }
        }
        Ok(format!("/tmp/vault/{}/{name}", particle.id))
    }

    /// The file at `path`, if it belongs to the call's particle.
    pub(crate) fn read(
        &self,
        call: &ServiceCall,
        path: &str,
        now_ms: u64,
    ) -> Result<Vec<u8>, ServiceError> {
        let missing = || ServiceError::new(format!("Error reading vault file `{path}`"));
        let prefix = format!("/tmp/vault/{}/", call.particle.id);
        let name = path.strip_prefix(&prefix).ok_or_else(missing)?;
        if !valid_name(name) {
            return Err(ServiceError::new(format!(
                "Error reading vault file `{path}`: not a name the vault gives"
            )));
        }
        let key = dir_key(
            &call.particle.init_peer_id,
            &call.particle.id,
            &call.particle.host_id,
        );
        let deadline_ms = {
            let dirs = self.lock();
            let dir = dirs
                .get(&key)
                .filter(|d| d.deadline_ms > now_ms)
                .ok_or_else(missing)?;
            if self.root.is_none() {
                return dir.files.get(name).cloned().ok_or_else(missing);
            }
            dir.deadline_ms
        };
        let Some(root) = &self.root else {
            return Err(missing());
        };
        let file = root.join(dir_name(deadline_ms, &key)).join(name);
        std::fs::read(&file).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => missing(),
            _ => ServiceError::new(format!("Error reading vault file `{path}`: {e}")),
        })
    }

    /// Removes the files of a particle's run in `scope` (the host's or a worker's peer
    /// id) that ended (blocking: it may touch the disk).
    pub(crate) fn remove(&self, init_peer_id: &str, particle_id: &str, scope: &str) {
        let key = dir_key(init_peer_id, particle_id, scope);
        let removed = self.lock().remove(&key);
        if let (Some(dir), Some(root)) = (removed, &self.root) {
            remove_path(&root.join(dir_name(dir.deadline_ms, &key)));
        }
    }
}

/// The key of a particle's directory in a scope: the SHA-256 of its init peer, id and
/// scope (peer ids and UUIDs have no NUL, which separates them), in hex.
fn dir_key(init_peer_id: &str, particle_id: &str, scope: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(init_peer_id.as_bytes());
    hasher.update([0]);
    hasher.update(particle_id.as_bytes());
    hasher.update([0]);
    hasher.update(scope.as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn dir_name(deadline_ms: u64, key: &str) -> String {
    format!("{deadline_ms}-{key}")
}

/// `<deadline>-<key>`, as [`dir_name`] writes it.
fn parse_dir_name(name: &str) -> Option<(u64, &str)> {
    let (deadline, key) = name.split_once('-')?;
    let deadline = deadline.parse().ok()?;
    (key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit())).then_some((deadline, key))
}

/// A name the vault could have given: letters, digits, `-`, `_` and `.`, not starting
/// with a dot, so never `..`, a separator or a hidden file.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Removes a file or a directory with everything in it, logging a failure.
fn remove_path(path: &Path) {
    let removed = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match removed {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::error!(path = %path.display(), "cannot remove a vault directory: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::ParticleContext;

    fn call(id: &str, timestamp: u64) -> ServiceCall {
        call_in(id, timestamp, "host")
    }

    fn call_in(id: &str, timestamp: u64, scope: &str) -> ServiceCall {
        ServiceCall {
            service_id: "vault".into(),
            function_name: "put".into(),
            args: vec![],
            tetraplets: vec![],
            particle: ParticleContext {
                id: id.into(),
                init_peer_id: "init".into(),
                timestamp,
                ttl: 1000,
                host_id: scope.into(),
            },
        }
    }

    #[test]
    fn names_that_leave_the_directory_are_refused() {
        for bad in [
            "",
            "..",
            ".",
            "../x",
            "a/b",
            ".hidden",
            "a\\b",
            "a\0b",
            &"x".repeat(200),
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert!(valid_name("0f9e2c1a-8d1b-4f7e-9a4e-1b2c3d4e5f60"));
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::on_disk(dir.path().join("vault"), 0);
        let c = call("p/../../etc", 10);
        let path = vault.put(&c, b"data", 10).unwrap();
        assert_eq!(vault.read(&c, &path, 11).unwrap(), b"data");
        let escape = "/tmp/vault/p/../../etc/../../../../etc/passwd";
        let e = vault.read(&c, escape, 11).unwrap_err().to_string();
        assert!(e.contains("not a name the vault gives"), "{e}");
    }

    #[test]
    fn a_particle_keeps_a_bounded_number_of_files() {
        let vault = Vault::in_memory();
        let c = call("many", 0);
        for _ in 0..MAX_PARTICLE_FILES {
            vault.put(&c, b"", 1).unwrap();
        }
        let e = vault.put(&c, b"", 1).unwrap_err().to_string();
        assert!(e.contains("1024 files"), "{e}");
        // Another particle has its own room; an expired one none.
        assert!(vault.put(&call("other", 0), b"x", 1).is_ok());
        assert!(vault.put(&call("old", 0), b"x", 1000).is_err());
    }

    #[test]
    fn a_disk_vault_keeps_live_particles_across_a_restart_and_drops_expired_ones() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("vault");
        let vault = Vault::on_disk(root.clone(), 0);
        let (early, late) = (call("early", 0), call("late", 5000));
        let early_path = vault.put(&early, b"e", 10).unwrap();
        let late_path = vault.put(&late, b"l", 10).unwrap();
        std::fs::write(root.join("stray"), b"not ours").unwrap();
        drop(vault);
        // Restarted at 2000: `early` (deadline 1000) is gone, `late` (6000) is kept.
        let vault = Vault::on_disk(root.clone(), 2000);
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 1);
        assert!(vault.read(&early, &early_path, 2000).is_err());
        assert_eq!(vault.read(&late, &late_path, 2000).unwrap(), b"l");
        vault.remove("init", "late", "host");
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
        assert!(vault.read(&late, &late_path, 2000).is_err());
    }

    #[test]
    fn a_particles_runs_on_the_host_and_on_a_worker_have_their_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::on_disk(dir.path().join("vault"), 0);
        let (host, worker) = (call_in("p", 0, "host"), call_in("p", 0, "worker"));
        let host_path = vault.put(&host, b"h", 1).unwrap();
        let worker_path = vault.put(&worker, b"w", 1).unwrap();
        // Each scope reads its own files only.
        assert!(vault.read(&worker, &host_path, 1).is_err());
        assert!(vault.read(&host, &worker_path, 1).is_err());
        // The worker's run ends: the host's run keeps its files.
        vault.remove("init", "p", "worker");
        assert!(vault.read(&worker, &worker_path, 1).is_err());
        assert_eq!(vault.read(&host, &host_path, 1).unwrap(), b"h");
    }
}
