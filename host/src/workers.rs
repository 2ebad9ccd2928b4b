//! Workers: virtual peers on a node, each with its own Ed25519 key (and so its own
//! peer id), its own spells and its own aliases, as Nox's workers. The `worker` service
//! makes and removes them (`create`, `get_worker_id`, `remove`, `list`); their records
//! and secret keys live in the node's database (`db.rs`, a file only the node's user
//! can read). A particle the node sends to a worker's peer id stays on the node and
//! runs as that worker: its key signs the worker's results (`node.rs`).
//!
//! A worker is active or not (`activate`, `deactivate`, `is_active`; Nox PRs #1889,
//! #1968): only the host and its management peer switch it (the stricter reading of
//! Nox, whose notes say no more), the state is kept in the database, an inactive
//! worker's spells do not fire (`spells.rs` unsubscribes them, and subscribes them
//! again when it is activated), and it runs particles of the host and the management
//! peer only: any other particle addressed to it is dropped, as Nox drops it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::db::{Db, Table};
use crate::identity::NodeKey;
use crate::services::{ServiceCall, ServiceError, ServiceResult};

/// A worker as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WorkerRecord {
    id: String,
    /// The deal (or any name) it was made for; `get_worker_id` finds it by this.
    deal_id: String,
    /// The init peer of the particle that made it.
    creator: String,
    /// The worker's Ed25519 secret, hex.
    secret: String,
    created_ms: u64,
    /// Whether it runs (a record saved before workers could be deactivated is active).
    #[serde(default = "active_by_default")]
    active: bool,
}

fn active_by_default() -> bool {
    true
}

/// A worker on this node.
#[derive(Clone)]
pub(crate) struct Worker {
    pub(crate) key: NodeKey,
    pub(crate) creator: String,
    deal_id: String,
    pub(crate) active: bool,
}

/// The answer to a call by anyone but the host, its owner, the worker's creator or the
/// worker itself.
const NOT_ALLOWED: &str =
    "Only the host, its management peer, the worker's creator or the worker itself may remove it";

/// The workers of a node.
pub(crate) struct Workers {
    db: Arc<Db>,
    host: String,
    owner: Option<String>,
    workers: Mutex<BTreeMap<String, Worker>>,
}

impl Workers {
    /// The workers `db` holds (a record that cannot be read is logged and left out).
    pub(crate) fn open(db: Arc<Db>, host: String, owner: Option<String>) -> Self {
        let mut workers = BTreeMap::new();
        match db.all(Table::Workers) {
            Ok(records) => {
                for (id, bytes) in records {
                    match serde_json::from_slice::<WorkerRecord>(&bytes)
                        .map_err(|e| e.to_string())
                        .and_then(|r| Ok((key_of_hex(&r.secret)?, r)))
                    {
                        Ok((key, record)) if key.peer_id() == id => {
                            workers.insert(
                                id,
                                Worker {
                                    key,
                                    creator: record.creator,
                                    deal_id: record.deal_id,
                                    active: record.active,
                                },
                            );
                        }
                        Ok(_) => {
                            tracing::error!(worker = %id, "a worker's key does not match its id; left out")
                        }
                        Err(e) => {
                            tracing::error!(worker = %id, "a worker's record is unreadable; left out: {e}")
                        }
                    }
                }
            }
            Err(e) => tracing::error!("cannot read the workers; starting with none: {e}"),
        }
        Workers {
            db,
            host,
            owner,
            workers: Mutex::new(workers),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Worker>> {
        // Invariant: nothing panics while holding this lock.
        self.workers
            .lock()
            .expect("the workers lock is never poisoned")
    }

    /// The worker of this peer id, if it is one of this node's.
    pub(crate) fn get(&self, peer_id: &str) -> Option<Worker> {
        self.lock().get(peer_id).cloned()
    }

    /// Whether `peer_id` is one of this node's workers.
    pub(crate) fn contains(&self, peer_id: &str) -> bool {
        self.lock().contains_key(peer_id)
    }

    fn privileged(&self, init: &str) -> bool {
        init == self.host || self.owner.as_deref() == Some(init)
    }

    /// The worker `id` if it runs a particle started by `init`: an inactive worker
    /// runs only the host's and its management peer's. `Err` says why not.
    pub(crate) fn admit(&self, id: &str, init: &str) -> Result<Worker, &'static str> {
        match self.get(id) {
            None => Err("no such worker here"),
            Some(w) if !w.active && !self.privileged(init) => Err(
                "the worker is inactive and runs only the host's and its management peer's particles",
            ),
            Some(w) => Ok(w),
        }
    }

    /// Switches worker `id` on or off, durably; whether it changed.
    fn set_active(&self, id: &str, active: bool) -> Result<bool, ServiceError> {
        let bytes = self
            .db
            .get(Table::Workers, id)
            .map_err(|e| ServiceError::new(e.to_string()))?
            .ok_or_else(|| ServiceError::new(format!("Worker {id} not found")))?;
        let mut record: WorkerRecord = serde_json::from_slice(&bytes)
            .map_err(|e| ServiceError::new(format!("worker {id}'s record is unreadable: {e}")))?;
        if record.active == active {
            return Ok(false);
        }
        record.active = active;
        let bytes = serde_json::to_vec(&record)
            .map_err(|e| ServiceError::new(format!("cannot encode the worker: {e}")))?;
        self.db
            .put(Table::Workers, id, &bytes)
            .map_err(|e| ServiceError::new(e.to_string()))?;
        if let Some(worker) = self.lock().get_mut(id) {
            worker.active = active;
        }
        tracing::info!(worker = %id, active, "worker switched");
        Ok(true)
    }

    /// Answers a call to the `worker` service.
    pub(crate) fn call(&self, call: &ServiceCall, now_ms: u64) -> ServiceResult {
        let init = call.particle.init_peer_id.as_str();
        match call.function_name.as_str() {
            // A worker belongs to a deal, or (no deal given) to the init peer: aqua-lib's
            // `DealWorker` and `Worker`.
            "create" => {
                if !self.privileged(init) {
                    return Err(ServiceError::new(crate::builtins::GUARD_MESSAGE));
                }
                let deal_id = optional_string(call.args.first(), "deal_id")?
                    .unwrap_or_else(|| init.to_owned());
                self.create(&deal_id, init, now_ms)
            }
            "get_worker_id" | "get_peer_id" => {
                let deal_id = optional_string(call.args.first(), "deal_id")?
                    .unwrap_or_else(|| init.to_owned());
                let found = self
                    .lock()
                    .iter()
                    .find(|(_, w)| w.deal_id == deal_id)
                    .map(|(id, _)| id.clone());
                match (call.function_name.as_str(), found) {
                    ("get_peer_id", Some(id)) => Ok(Value::String(id)),
                    ("get_peer_id", None) => {
                        Err(ServiceError::new(format!("Worker for {deal_id} not found")))
                    }
                    (_, found) => Ok(json!(found.into_iter().collect::<Vec<_>>())),
                }
            }
            "list" => Ok(json!(self.lock().keys().collect::<Vec<_>>())),
            "is_active" => {
                let id = worker_id(call)?;
                self.get(id)
                    .map(|w| json!(w.active))
                    .ok_or_else(|| ServiceError::new(format!("Worker {id} not found")))
            }
            "activate" | "deactivate" => {
                if !self.privileged(init) {
                    return Err(ServiceError::new(
                        "Only the host and its management peer may activate or deactivate a worker",
                    ));
                }
                let id = worker_id(call)?;
                self.set_active(id, call.function_name == "activate")?;
                Ok(Value::String(String::new()))
            }
            "remove" => {
                let id = worker_id(call)?;
                let worker = self
                    .get(id)
                    .ok_or_else(|| ServiceError::new(format!("Worker {id} not found")))?;
                if !self.privileged(init) && worker.creator != init && init != id {
                    return Err(ServiceError::new(NOT_ALLOWED));
                }
                self.db
                    .delete(Table::Workers, id)
                    .map_err(|e| ServiceError::new(e.to_string()))?;
                self.lock().remove(id);
                Ok(Value::String(String::new()))
            }
            other => Err(ServiceError::new(format!(
                "the node's service worker has no function {other}"
            ))),
        }
    }

    fn create(&self, deal_id: &str, creator: &str, now_ms: u64) -> ServiceResult {
        if !deal_id.is_empty() && self.lock().values().any(|w| w.deal_id == deal_id) {
            return Err(ServiceError::new(format!(
                "Worker for deal_id {deal_id} already exists"
            )));
        }
        let key = NodeKey::generate().map_err(|e| ServiceError::new(e.to_string()))?;
        let id = key.peer_id().to_owned();
        let record = WorkerRecord {
            id: id.clone(),
            deal_id: deal_id.to_owned(),
            creator: creator.to_owned(),
            secret: key.secret().iter().map(|b| format!("{b:02x}")).collect(),
            created_ms: now_ms,
            active: true,
        };
        let bytes = serde_json::to_vec(&record)
            .map_err(|e| ServiceError::new(format!("cannot encode the worker: {e}")))?;
        self.db
            .put(Table::Workers, &id, &bytes)
            .map_err(|e| ServiceError::new(e.to_string()))?;
        self.lock().insert(
            id.clone(),
            Worker {
                key,
                creator: creator.to_owned(),
                deal_id: deal_id.to_owned(),
                active: true,
            },
        );
        tracing::info!(worker = %id, deal_id, creator, "worker created");
        Ok(Value::String(id))
    }
}

/// The worker id a call names, its first argument.
fn worker_id(call: &ServiceCall) -> Result<&str, ServiceError> {
    match call.args.first() {
        Some(Value::String(id)) => Ok(id),
        _ => Err(ServiceError::new(format!(
            "worker.{} takes the worker id, a string",
            call.function_name
        ))),
    }
}

/// An Aqua option of a string (`[]`, `[s]`) or a bare string.
fn optional_string(arg: Option<&Value>, name: &str) -> Result<Option<String>, ServiceError> {
    match arg {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Array(items)) if items.is_empty() => Ok(None),
        Some(Value::Array(items)) if items.len() == 1 => match &items[0] {
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(ServiceError::new(format!("{name} must be a string"))),
        },
        Some(_) => Err(ServiceError::new(format!(
            "{name} must be a string or an option of one"
        ))),
    }
}

fn key_of_hex(hex: &str) -> Result<NodeKey, String> {
    if hex.len() != 64 || !hex.is_ascii() {
        return Err("the secret is not 64 hex digits".into());
    }
    let mut secret = [0u8; 32];
    for (i, byte) in secret.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| "the secret is not hex".to_owned())?;
    }
    Ok(NodeKey::from_secret(secret))
}
