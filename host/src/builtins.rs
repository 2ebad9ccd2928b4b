//! The built-in services of a node, with the reference node's (Nox's) semantics: `peer`,
//! `kad`, `srv`, `dist`, `op`, `debug`, `stat`, `math`, `cmp`, `array`, `sig`, `json`,
//! `vault` and `run-console` ([`BUILTIN_SERVICES`] lists every function, and is the one
//! list the node dispatches from). `worker` and `spell`, and the spells' own services,
//! are `spells.rs`'s, reached through [`Builtins::answer_spells`].
//!
//! Safe by construction: whatever computes or touches the disk runs on tokio's blocking
//! threads behind a bounded semaphore ([`Builtins::blocking`]), never on the runtime's
//! own threads; quadratic work (base58) has bounded inputs; `peer.timeout` sleeps at most
//! until the particle's deadline, and the node does not hold a call slot while it
//! sleeps. The guarded functions answer only the host itself and its owner (the
//! management peer): "This function is only available to the host or worker spells".

mod deploy;
mod peer;
mod pure;
mod sig;
mod vault;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Semaphore;

pub(crate) use deploy::{DeployStore, DirDeployStore};

use crate::identity::NodeKey;
use crate::network::Network;
use crate::network_info::NetworkInfo;
use crate::services::{ServiceCall, ServiceError, ServiceResult};

/// Every built-in service of a node and its functions, in the order Nox lists them.
/// `braid builtins --json` prints this list; the node dispatches from it.
pub const BUILTIN_SERVICES: &[(&str, &[&str])] = &[
    (
        "peer",
        &[
            "identify",
            "timestamp_ms",
            "timestamp_sec",
            "is_connected",
            "connect",
            "get_contact",
            "timeout",
        ],
    ),
    ("kad", &["neighborhood", "neigh_with_addrs", "merge"]),
    (
        "srv",
        &[
            "list",
            "create",
            "get_interface",
            "resolve_alias",
            "resolve_alias_opt",
            "add_alias",
            "remove",
            "info",
        ],
    ),
    (
        "dist",
        &[
            "add_module_from_vault",
            "add_module",
            "add_module_bytes_from_vault",
            "add_blueprint",
            "make_module_config",
            "load_module_config",
            "default_module_config",
            "make_blueprint",
            "load_blueprint",
            "list_modules",
            "get_module_interface",
            "list_blueprints",
            "get_blueprint",
        ],
    ),
    (
        "op",
        &[
            "noop",
            "array",
            "array_length",
            "concat",
            "string_to_b58",
            "string_from_b58",
            "bytes_from_b58",
            "bytes_to_b58",
            "sha256_string",
            "concat_strings",
            "identity",
        ],
    ),
    ("debug", &["stringify"]),
    ("stat", &["service_memory", "service_stat"]),
    (
        "math",
        &["add", "sub", "mul", "fmul", "div", "rem", "pow", "log"],
    ),
    ("cmp", &["gt", "gte", "lt", "lte", "cmp"]),
    (
        "array",
        &[
            "sum",
            "dedup",
            "intersect",
            "diff",
            "sdiff",
            "slice",
            "length",
        ],
    ),
    ("sig", &["sign", "verify", "get_peer_id"]),
    (
        "json",
        &[
            "obj",
            "put",
            "puts",
            "parse",
            "stringify",
            "obj_pairs",
            "puts_pairs",
        ],
    ),
    ("vault", &["put", "cat"]),
    ("run-console", &["print"]),
];

/// The functions of a built-in service, if `service` is one.
pub(crate) fn functions_of(service: &str) -> Option<&'static [&'static str]> {
    BUILTIN_SERVICES
        .iter()
        .find(|(name, _)| *name == service)
        .map(|(_, functions)| *functions)
}

/// Nox's answer to a guarded function called by anyone but the host and its owner.
pub(crate) const GUARD_MESSAGE: &str =
    "This function is only available to the host or worker spells";

/// Where the built-ins learn about the network.
pub(crate) enum InfoSource {
    /// From the node's transport.
    Transport(Arc<dyn Network>),
    /// Given by whoever built the node.
    Given(Arc<dyn NetworkInfo>),
}

/// The built-ins of one node, with what they need of it.
pub(crate) struct Builtins {
    key: NodeKey,
    owner: Option<String>,
    info: InfoSource,
    vault: vault::Vault,
    deploy: deploy::Deploy,
    spells: Arc<crate::spells::Spells>,
    /// Built-ins running on the blocking threads at once.
    cpu: Arc<Semaphore>,
    /// Each init peer's share of `cpu`: at most this many of its calls wait for or hold
    /// a blocking slot, so one peer's queue never stands before everyone else's.
    shares: std::sync::Mutex<HashMap<String, Arc<Semaphore>>>,
    share: usize,
}

impl Builtins {
    /// The built-ins of the node of `key`; deployed services come back from `store`,
    /// and the vault keeps its files in `vault_dir` (else in memory).
    pub(crate) fn new(
        key: NodeKey,
        owner: Option<String>,
        info: InfoSource,
        store: Arc<dyn DeployStore>,
        vault_dir: Option<std::path::PathBuf>,
        spells: Arc<crate::spells::Spells>,
        threads: usize,
    ) -> Self {
        let host = key.peer_id().to_owned();
        let vault = match vault_dir {
            Some(dir) => vault::Vault::on_disk(dir, crate::node::now_ms()),
            None => vault::Vault::in_memory(),
        };
        Builtins {
            key,
            owner,
            info,
            vault,
            deploy: deploy::Deploy::open(store, host),
            spells,
            cpu: Arc::new(Semaphore::new(threads.max(1))),
            shares: std::sync::Mutex::new(HashMap::new()),
            share: (threads / 2).max(1),
        }
    }

    fn info(&self) -> &dyn NetworkInfo {
        match &self.info {
            InfoSource::Transport(network) => network.info(),
            InfoSource::Given(info) => info.as_ref(),
        }
    }

    /// Whether the call's particle comes from the host itself, its owner, or a worker's
    /// `worker-spell`.
    fn guard(&self, call: &ServiceCall) -> Result<(), ServiceError> {
        let init = call.particle.init_peer_id.as_str();
        if init == self.key.peer_id()
            || self.owner.as_deref() == Some(init)
            || self.spells.is_worker_spell(call)
        {
            Ok(())
        } else {
            Err(ServiceError::new(GUARD_MESSAGE))
        }
    }

    /// Runs `f` for `call`: at once when it is `cheap` and its arguments are small
    /// (every pure built-in is linear, or bounded, in its input), else on tokio's blocking
    /// threads, at most as many at once as the node allows and at most its share of
    /// them for the call's init peer (waiting for a turn meanwhile). A panic is an
    /// error answer.
    async fn blocking<F>(&self, call: &ServiceCall, cheap: bool, f: F) -> ServiceResult
    where
        F: FnOnce() -> ServiceResult + Send + 'static,
    {
        if cheap && small(&call.args, INLINE_ARGUMENT_BYTES) {
            return f();
        }
        let peer = call.particle.init_peer_id.clone();
        let share = {
            let mut shares = self.lock_shares();
            Arc::clone(
                shares
                    .entry(peer.clone())
                    .or_insert_with(|| Arc::new(Semaphore::new(self.share))),
            )
        };
        // Invariant: these semaphores are never closed.
        let turn = Arc::clone(&share)
            .acquire_owned()
            .await
            .expect("the built-in shares stay open");
        let permit = Arc::clone(&self.cpu)
            .acquire_owned()
            .await
            .expect("the built-in slots stay open");
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _turn = turn;
            f()
        })
        .await
        .unwrap_or_else(|e| Err(ServiceError::new(format!("the built-in failed: {e}"))));
        drop(share);
        let mut shares = self.lock_shares();
        if shares.get(&peer).is_some_and(|s| Arc::strong_count(s) == 1) {
            shares.remove(&peer);
        }
        result
    }

    fn lock_shares(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Semaphore>>> {
        // Invariant: nothing panics while holding this lock.
        self.shares
            .lock()
            .expect("the built-in shares lock is never poisoned")
    }

    /// Answers a call to a built-in function, or `None` if it is none (a service the
    /// embedding program registered under a built-in's id may serve the functions the
    /// built-in lacks, as in Nox; else [`unknown`] answers).
    pub(crate) async fn answer(
        self: &Arc<Self>,
        call: &Arc<ServiceCall>,
        now_ms: u64,
    ) -> Option<ServiceResult> {
        let service = call.service_id.as_str();
        let function = call.function_name.as_str();
        if !functions_of(service)?.contains(&function) {
            return None;
        }
        let me = Arc::clone(self);
        let owned = Arc::clone(call);
        Some(match service {
            "peer" if function == "timeout" => match peer::timeout(&call.args) {
                Ok((delay, message)) => {
                    tokio::time::sleep(capped_delay(call, delay, now_ms)).await;
                    Ok(message)
                }
                Err(e) => Err(e),
            },
            "peer" => peer::peer(self, call, now_ms).await,
            "kad" if function == "merge" => {
                self.blocking(call, true, move || peer::merge(&owned.args))
                    .await
            }
            "kad" => peer::kad(self, call).await,
            "run-console" => self.guard(call).map(|()| {
                let line = Value::Array(call.args.clone()).to_string();
                tracing::info!(target: "run-console", host = self.key.peer_id(), "{line}");
                Value::String(String::new())
            }),
            "sig" => {
                self.blocking(call, true, move || sig::call(&me, &owned))
                    .await
            }
            "vault" => {
                // On disk, the vault's files are read and written on the blocking threads.
                let cheap = self.vault.is_in_memory();
                self.blocking(call, cheap, move || me.vault.call(&owned, now_ms))
                    .await
            }
            "srv" | "dist" | "stat" => {
                self.blocking(call, false, move || me.deploy.call(&me, &owned))
                    .await
            }
            _ => {
                self.blocking(call, true, move || {
                    pure::call(&owned.service_id, &owned.function_name, &owned.args).unwrap_or_else(
                        || {
                            Err(ServiceError::new(format!(
                                "internal error, please report: {}.{} is listed but not built",
                                owned.service_id, owned.function_name
                            )))
                        },
                    )
                })
                .await
            }
        })
    }

    /// Removes the vault files of a particle's run that ended on this node, in `scope`
    /// (the host's peer id, or the worker's it ran as).
    pub(crate) async fn forget_particle(
        self: &Arc<Self>,
        init_peer_id: &str,
        particle_id: &str,
        scope: &str,
    ) {
        let me = Arc::clone(self);
        let (init, id, scope) = (
            init_peer_id.to_owned(),
            particle_id.to_owned(),
            scope.to_owned(),
        );
        if let Err(e) =
            tokio::task::spawn_blocking(move || me.vault.remove(&init, &id, &scope)).await
        {
            tracing::error!(particle_id, "cannot remove the particle's vault files: {e}");
        }
    }

    /// Answers a call for the spells (`spell`, `worker`, a spell's own service, the
    /// conventions of a spell's particle, `srv` on a spell's alias), or `None`.
    pub(crate) async fn answer_spells(
        self: &Arc<Self>,
        call: &Arc<ServiceCall>,
        now_ms: u64,
    ) -> Option<ServiceResult> {
        if !self.spells.serves(call) {
            return None;
        }
        let me = Arc::clone(self);
        let owned = Arc::clone(call);
        Some(
            self.blocking(call, false, move || {
                let answer = me.spells.call(&owned, now_ms)?;
                let args = &owned.args;
                let first = args.first().and_then(Value::as_str);
                match (owned.service_id.as_str(), owned.function_name.as_str()) {
                    // A worker's services go with it (its spells, `spells.rs` removes).
                    ("worker", "remove") => {
                        if let Some(worker) = first {
                            me.deploy.remove_worker(worker)?;
                        }
                    }
                    // An alias given to a spell moves from the scope's service that had
                    // it (given as a bare string or an Aqua option at install).
                    ("srv", "add_alias") => {
                        if let Some(alias) = first {
                            me.deploy.release_alias(&owned, alias)?;
                        }
                    }
                    ("spell", "install") => {
                        let alias = match args.get(3) {
                            Some(Value::Array(items)) => items.first(),
                            other => other,
                        };
                        if let Some(alias) = alias.and_then(Value::as_str) {
                            me.deploy.release_alias(&owned, alias)?;
                        }
                    }
                    _ => {}
                }
                Ok(answer)
            })
            .await,
        )
    }

    /// Answers a call to a service deployed on this node (by id or alias), or `None`.
    pub(crate) async fn answer_deployed(&self, call: &Arc<ServiceCall>) -> Option<ServiceResult> {
        let (service_id, service) = self.deploy.find_for(call)?;
        let owned = Arc::clone(call);
        let started = std::time::Instant::now();
        let result = self
            .blocking(call, false, move || service.call(&owned))
            .await;
        self.deploy
            .record_call(&service_id, &call.function_name, &result, started.elapsed());
        Some(result)
    }
}

/// Arguments up to this size (about, as JSON) run a pure built-in on the calling task.
const INLINE_ARGUMENT_BYTES: usize = 4096;

/// Whether `args` take less than `budget` bytes, roughly as JSON (stops counting early).
fn small(args: &[Value], budget: usize) -> bool {
    let mut left = budget;
    let mut stack: Vec<&Value> = args.iter().collect();
    while let Some(v) = stack.pop() {
        let cost = match v {
            Value::String(s) => s.len() + 2,
            Value::Array(items) => {
                stack.extend(items);
                2
            }
            Value::Object(map) => {
                for (k, item) in map {
                    left = left.saturating_sub(k.len() + 3);
                    stack.push(item);
                }
                2
            }
            _ => 8,
        };
        left = match left.checked_sub(cost) {
            Some(l) if l > 0 => l,
            _ => return false,
        };
    }
    true
}

/// The answer to a call nothing serves: a built-in service without that function says
/// so; any other service is not found, in the reference hosts' words.
pub(crate) fn unknown(service: &str, function: &str) -> ServiceError {
    if functions_of(service).is_some() {
        ServiceError::new(format!(
            "the node's service {service} has no function {function}"
        ))
    } else {
        crate::services::not_found(service, function)
    }
}

/// Whether a call is `peer.timeout`, which sleeps: the node does not hold a call slot
/// for it.
pub(crate) fn sleeps(call: &ServiceCall) -> bool {
    call.service_id == "peer" && call.function_name == "timeout"
}

/// `peer.timeout`'s delay, capped at the particle's remaining ttl (Nox has no cap).
fn capped_delay(call: &ServiceCall, delay: Duration, now_ms: u64) -> Duration {
    let deadline = call
        .particle
        .timestamp
        .saturating_add(u64::from(call.particle.ttl));
    delay.min(Duration::from_millis(deadline.saturating_sub(now_ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_has_no_duplicates() {
        let mut services: Vec<&str> = BUILTIN_SERVICES.iter().map(|(s, _)| *s).collect();
        services.sort();
        services.dedup();
        assert_eq!(services.len(), BUILTIN_SERVICES.len());
        for (service, functions) in BUILTIN_SERVICES {
            let mut sorted = functions.to_vec();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), functions.len(), "{service}");
        }
    }

    #[test]
    fn every_pure_function_listed_is_built() {
        for (service, functions) in BUILTIN_SERVICES {
            if matches!(*service, "op" | "debug" | "math" | "cmp" | "array" | "json") {
                for function in *functions {
                    assert!(
                        pure::call(service, function, &[]).is_some(),
                        "{service}.{function}"
                    );
                }
            }
        }
    }
}
