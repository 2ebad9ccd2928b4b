//! `vault`: files a particle writes (`put(data) -> path`) and reads back (`cat(path)`),
//! or hands to `dist.add_module_from_vault`; each particle sees only its own, and they
//! are gone at the particle's deadline. They are kept in memory, bounded per particle
//! and per node; the paths are Nox's virtual paths, `/tmp/vault/<particle id>/<name>`.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

use super::pure::string_arg;
use crate::identity::random_uuid;
use crate::services::{ServiceCall, ServiceError, ServiceResult};

/// Most bytes one particle may keep in the vault.
pub(crate) const MAX_PARTICLE_BYTES: usize = 64 << 20;
/// Most bytes the vault keeps for all particles.
pub(crate) const MAX_TOTAL_BYTES: usize = 256 << 20;

/// The files of live particles.
#[derive(Default)]
pub(crate) struct Vault {
    /// By init peer and particle id: a particle id reused by another peer is another
    /// directory.
    dirs: Mutex<HashMap<(String, String), Dir>>,
}

struct Dir {
    deadline_ms: u64,
    bytes: usize,
    files: HashMap<String, Vec<u8>>,
}

impl Vault {
    pub(crate) fn call(&self, call: &ServiceCall, now_ms: u64) -> ServiceResult {
        match call.function_name.as_str() {
            "put" => {
                let data = string_arg(&call.args, 0, "data")?;
                self.put(call, data.as_bytes(), now_ms).map(Value::String)
            }
            "cat" => {
                let path = string_arg(&call.args, 0, "path")?;
                let bytes = self.read(call, path, now_ms).ok_or_else(|| {
                    ServiceError::new(format!("Error reading vault file `{path}`"))
                })?;
                String::from_utf8(bytes)
                    .map(Value::String)
                    .map_err(|_| ServiceError::new(format!("vault file `{path}` is not UTF-8")))
            }
            other => Err(ServiceError::new(format!(
                "internal error, please report: vault.{other} is listed but not built"
            ))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Dir>> {
        // Invariant: nothing panics while holding this lock.
        self.dirs.lock().expect("the vault lock is never poisoned")
    }

    /// Stores `data` for the call's particle; its virtual path.
    pub(crate) fn put(
        &self,
        call: &ServiceCall,
        data: &[u8],
        now_ms: u64,
    ) -> Result<String, ServiceError> {
        let name = random_uuid().map_err(|e| ServiceError::new(e.to_string()))?;
        let particle = &call.particle;
        let mut dirs = self.lock();
        dirs.retain(|_, dir| dir.deadline_ms > now_ms);
        let total: usize = dirs.values().map(|d| d.bytes).sum();
        let key = (particle.init_peer_id.clone(), particle.id.clone());
        let dir = dirs.entry(key).or_insert_with(|| Dir {
            deadline_ms: particle.timestamp.saturating_add(u64::from(particle.ttl)),
            bytes: 0,
            files: HashMap::new(),
        });
        if dir.bytes + data.len() > MAX_PARTICLE_BYTES || total + data.len() > MAX_TOTAL_BYTES {
            return Err(ServiceError::new(format!(
                "the vault is full: a particle may keep {MAX_PARTICLE_BYTES} bytes, the node {MAX_TOTAL_BYTES}"
            )));
        }
        dir.bytes += data.len();
        dir.files.insert(name.clone(), data.to_vec());
        Ok(format!("/tmp/vault/{}/{name}", particle.id))
    }

    /// The file at `path`, if it belongs to the call's particle.
    pub(crate) fn read(&self, call: &ServiceCall, path: &str, now_ms: u64) -> Option<Vec<u8>> {
        let prefix = format!("/tmp/vault/{}/", call.particle.id);
        let name = path.strip_prefix(&prefix)?;
        let mut dirs = self.lock();
        dirs.retain(|_, dir| dir.deadline_ms > now_ms);
        let key = (call.particle.init_peer_id.clone(), call.particle.id.clone());
        dirs.get(&key)?.files.get(name).cloned()
    }
}
