//! The node: takes particles in, runs them, calls services, sends them on.
//!
//! Tasks and queues (every queue is bounded; a full one is logged and counted):
//!
//! ```text
//! transport ─► Inbox::deliver ── checks (size, signature, expiry) ──► intake queue
//!                                                                       │
//!        dispatcher: one actor per (particle id, signature) ◄───────────┘
//!            │  (live-particle limit; each actor has a bounded mailbox)
//!            ▼
//!        actor: invoke ─► store data ─► spawn calls ─► send to next peers
//!            ▲     │ (invoke pool: N big-stack threads, bounded queue)
//!            └─────┘ call results, all that are ready, in one invoke
//! ```
//!
//! An actor serializes the invocations of its particle. When its particle has nothing
//! left to do (no call in flight, nothing waiting) the actor ends and the dispatcher
//! keeps only the particle's [`Dormant`] state (its data) until more data arrives, which
//! starts an actor again, or until the particle's deadline (plus the clock skew
//! allowance), when it is forgotten; an actor still running at the deadline cancels the
//! particle's pending calls. Different particles run concurrently, at most as many at
//! once as the invoke pool has threads.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use braid_interpreter::{
    CallRequest, CallResult, Integrity, KeyPair, Limits, RunParams, UncatchableError,
};
use braid_peer::{
    Action, Batching, Dormant, InvokeInput, MachineConfig, ParticleMachine, Persisted, Snapshot,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::backend::{Backend, NativeBackend};
use crate::builtins::{self, Builtins, DeployStore, DirDeployStore, InfoSource};
use crate::db::{Db, DbDeployStore};
use crate::error::{ExecuteError, HostError};
use crate::identity::{NodeKey, random_uuid};
use crate::intake::{CallBytes, Shares, Slots, check_id, escape_id, shrink_after_burst};
use crate::invoke_pool::{InvokePool, Job};
use crate::network::{Network, NoNetwork, SendError};
use crate::network_info::NetworkInfo;
use crate::record::InvokeRecord;
use crate::services::{
    Access, ParticleContext, Quotas, Registry, ServiceCall, ServiceError, ServiceResult, boxed,
    to_call_result,
};
use crate::signature_cache::SignatureSet;
use crate::spells::Spells;
use crate::store::{DataStore, DiskStore, StoreKey};
use crate::workers::Workers;
use braid_wire::{
    self as wire, DEFAULT_CLOCK_SKEW_MS, IntakeLimits, Particle, Rejection, Undeliverable,
};

/// The default cap of an arriving particle's ttl ([`NodeConfig::max_ttl`]): 10 minutes,
/// well over the JS client's 7 s and spells' 120 s.
pub const DEFAULT_MAX_TTL_SECS: u64 = 600;

/// The longest particle id taken in (a UUID has 36 characters).
pub const MAX_PARTICLE_ID_BYTES: usize = 128;

/// The settings of a node. [`Node::builder`] starts from [`NodeConfig::standard`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// Size limits on arriving particles.
    pub intake_limits: IntakeLimits,
    /// Clock skew allowance, ms (see [`DEFAULT_CLOCK_SKEW_MS`]).
    pub clock_skew_ms: u64,
    /// Threads running `invoke`: how many particles are interpreted at once.
    pub invoke_threads: usize,
    /// Stack of each invoke thread, bytes.
    pub invoke_stack_bytes: usize,
    /// Invocations waiting for a thread.
    pub invoke_queue: usize,
    /// Checked particles waiting for the dispatcher.
    pub intake_queue: usize,
    /// Particles of one id and signature waiting for their actor.
    pub mailbox: usize,
    /// Particles alive on the node at once; more are refused ([`Rejection::Busy`]).
    pub max_particles: usize,
    /// Service calls running at once on the node; more wait.
    pub max_calls_in_flight: usize,
    /// How long one service call may take before it fails.
    pub call_timeout: Duration,
    /// How long a send to one peer may take.
    pub send_timeout: Duration,
    /// The ttl of particles started by [`Node::execute`].
    pub default_ttl: Duration,
    /// The node's owner (Nox's management peer id): besides the node itself, the only
    /// init peer whose particles may call the guarded built-ins (`srv.create`,
    /// `dist.add_module`, `peer.connect`, `sig.sign`, …).
    pub owner: Option<String>,
    /// Service calls of one init peer's particles in flight at once; more are answered
    /// with an error.
    pub max_calls_per_init_peer: usize,
    /// Built-in and deployed service calls running at once on tokio's blocking threads;
    /// more wait.
    pub builtin_threads: usize,
    /// The longest ttl an arriving particle may have; a longer one is refused
    /// ([`Rejection::TtlTooLong`]: the ttl is signed, so it cannot be cut to the cap).
    /// Particles this node starts are not held to it.
    pub max_ttl: Duration,
    /// Live particles of one init peer at once (its share of [`Self::max_particles`]);
    /// more are refused ([`Rejection::OverShare`]). The node's own are not counted.
    pub max_particles_per_init_peer: usize,
    /// Live particles that arrived from one peer (the peer at the other end of the
    /// connection, whatever their init peers), at once: a flood of particles of fresh
    /// keys through one connection is bounded by this.
    pub max_particles_per_sender: usize,
    /// The most one particle may make the node hold: its script and data plus the
    /// arguments of its service calls in flight. A call over it is answered with an
    /// error instead of running; an invocation whose call requests alone (with the
    /// script) would be over it fails before they are made, and the particle is
    /// dropped here (logged, counted in [`NodeStats::particles_over_budget`], its init
    /// peer told with an undeliverable notice).
    pub max_particle_bytes: usize,
    /// The arguments of all service calls in flight on the node, bytes; a call over it
    /// is answered with an error instead of running.
    pub max_call_bytes: usize,
    /// The call requests one invocation may produce, bytes (their service ids,
    /// function names, arguments and tetraplets; the interpreter's
    /// `Limits::call_requests_size`, with [`Self::max_particle_bytes`] less the script
    /// when that is less): over it the invocation fails before the requests are made
    /// and the particle is dropped here, as [`Self::max_particle_bytes`] says. It bounds
    /// what one invocation makes the node hold (each invoke thread runs one).
    pub max_invoke_call_bytes: usize,
    /// Bytes of script and data (as they arrived) of all live particles; a particle
    /// over it is refused ([`Rejection::OverMemoryShare`]).
    pub max_live_bytes: usize,
    /// The same, of one init peer's particles (the node's own are not counted).
    pub max_live_bytes_per_init_peer: usize,
    /// The same, of the particles that arrived from one sender.
    pub max_live_bytes_per_sender: usize,
    /// Live particles that arrived over connections from one IP address (whatever
    /// their peers): connections per address are bounded, peer ids are not.
    pub max_particles_per_address: usize,
    /// The same in bytes of script and data.
    pub max_live_bytes_per_address: usize,
}

impl NodeConfig {
    /// Settings for a node of this machine: one invoke thread per core, reference size
    /// limits, a 256 MiB stack per invoke thread (address space, touched only as deep
    /// as scripts nest), 20 s call timeout, 7 s default ttl (as the JS client).
    pub fn standard() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        NodeConfig {
            intake_limits: IntakeLimits::REFERENCE,
            clock_skew_ms: DEFAULT_CLOCK_SKEW_MS,
            invoke_threads: cores,
            invoke_stack_bytes: 256 << 20,
            invoke_queue: 256,
            intake_queue: 1024,
            mailbox: 64,
            max_particles: 16_384,
            max_calls_in_flight: 4096,
            call_timeout: Duration::from_secs(20),
            send_timeout: Duration::from_secs(10),
            default_ttl: Duration::from_secs(7),
            owner: None,
            max_calls_per_init_peer: 1024,
            builtin_threads: cores.max(2),
            max_ttl: Duration::from_secs(DEFAULT_MAX_TTL_SECS),
            max_particles_per_init_peer: 1024,
            max_particles_per_sender: 4096,
            max_particle_bytes: 128 << 20,
            max_call_bytes: 256 << 20,
            max_invoke_call_bytes: 64 << 20,
            max_live_bytes: 320 << 20,
            max_live_bytes_per_init_peer: 128 << 20,
            max_live_bytes_per_sender: 192 << 20,
            max_particles_per_address: 8192,
            max_live_bytes_per_address: 256 << 20,
        }
    }
}

/// Something a node did, for observers ([`NodeBuilder::observer`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum NodeEvent {
    /// A service call ran on this node.
    Call {
        /// The node's peer id.
        peer: String,
        /// The particle.
        particle_id: String,
        /// Service id.
        service: String,
        /// Function name.
        function: String,
        /// Arguments.
        args: Vec<Value>,
        /// The answer.
        result: ServiceResult,
    },
    /// An invocation ended with an interpreter error.
    InvokeFailed {
        /// The node's peer id.
        peer: String,
        /// The particle.
        particle_id: String,
        /// The reference's error code.
        code: i32,
        /// Its message.
        message: String,
    },
    /// A particle was refused at intake.
    Rejected {
        /// The node's peer id.
        peer: String,
        /// The particle, when it could be read.
        particle_id: Option<String>,
        /// Why.
        reason: Rejection,
    },
    /// A particle reached its deadline on this node.
    Expired {
        /// The node's peer id.
        peer: String,
        /// The particle.
        particle_id: String,
        /// Service calls that were still running and were cancelled.
        cancelled_calls: usize,
    },
    /// A particle could not be sent to a peer.
    SendFailed {
        /// The node's peer id.
        peer: String,
        /// The particle.
        particle_id: String,
        /// The peer it was for.
        to: String,
        /// Why.
        error: SendError,
    },
}

/// Counters of a node's activity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Particles let in.
    pub accepted: u64,
    /// Particles refused, by [`Rejection::kind`].
    pub rejected: std::collections::BTreeMap<&'static str, u64>,
    /// Times a full intake queue made a sender wait.
    pub intake_pressure: u64,
    /// Invocations run.
    pub invokes: u64,
    /// Invocations with a non-zero return code.
    pub failed_invokes: u64,
    /// Service calls answered (including failures and timeouts).
    pub calls: u64,
    /// Service calls that timed out.
    pub call_timeouts: u64,
    /// Particles sent to peers.
    pub sent: u64,
    /// Sends that failed.
    pub send_failures: u64,
    /// Particles that reached their deadline here.
    pub expired: u64,
    /// Service calls cancelled because their particle expired.
    pub cancelled_calls: u64,
    /// Failed reads and writes of the data store.
    pub store_failures: u64,
    /// Expired or broken files removed from the data store when the node started.
    pub store_removed_at_start: u64,
    /// Particles alive on the node now (each until its deadline).
    pub live_particles: u64,
    /// Of those, the particles with work under way here now: an invoke, or service
    /// calls in flight. One that waits only for data from other peers or for its
    /// deadline (one that settled here) is live but not working.
    pub working_particles: u64,
    /// Particle signatures (the init peer's) verified on arrival; a particle that
    /// comes back is not verified again.
    pub particle_signatures_verified: u64,
    /// Data signatures verified by this node's invocations (one seen verified
    /// before, or made here, is not verified again). Counted by backends that use the
    /// node's signature cache (the native one; the Wasm module checks every signature
    /// and counts none).
    pub data_signatures_verified: u64,
    /// Data signatures made by this node's invocations (counted as the line above).
    pub data_signatures_made: u64,
    /// Service calls answered with an error, not run, because their arguments were over
    /// the particle's or the node's budget.
    pub calls_over_budget: u64,
    /// Particles dropped here because one invocation's call requests were over their
    /// budget ([`NodeConfig::max_invoke_call_bytes`]).
    pub particles_over_budget: u64,
}

type Observer = Arc<dyn Fn(&NodeEvent) + Send + Sync>;

/// Builds a [`Node`].
pub struct NodeBuilder {
    key: Option<NodeKey>,
    relay: Option<String>,
    network: Arc<dyn Network>,
    config: NodeConfig,
    observer: Option<Observer>,
    store: StoreChoice,
    record_dir: Option<std::path::PathBuf>,
    backend: Arc<dyn Backend>,
    network_info: Option<Arc<dyn NetworkInfo>>,
}

enum StoreChoice {
    Memory,
    Dir(std::path::PathBuf),
    Custom(Arc<dyn DataStore>),
}

impl NodeBuilder {
    /// Keep particle data on disk in `dir` ([`DiskStore`]): what expired while the node
    /// was down is removed at start; live particles continue from their stored data.
    /// Default: each particle's data lives in its actor only, and is lost when the node
    /// stops.
    pub fn data_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.store = StoreChoice::Dir(dir.into());
        self
    }

    /// Write every invocation's inputs and outcome as a JSON file in `dir`
    /// (`<particle id>-<peer>-<n>.json`, see [`crate::InvokeRecord`]); `braid replay`
    /// re-runs them. The files hold the node's secret key: use test keys.
    pub fn record_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.record_dir = Some(dir.into());
        self
    }

    /// Keep particle data in this store.
    pub fn data_store(mut self, store: Arc<dyn DataStore>) -> Self {
        self.store = StoreChoice::Custom(store);
        self
    }

    /// The node's key (default: a fresh random one).
    pub fn key(mut self, key: NodeKey) -> Self {
        self.key = Some(key);
        self
    }

    /// The relay that `getDataSrv.-relay-` answers for particles this node starts
    /// (default: the node itself).
    pub fn relay(mut self, peer_id: impl Into<String>) -> Self {
        self.relay = Some(peer_id.into());
        self
    }

    /// The network to send particles on (default: none, every send fails).
    pub fn network(mut self, network: Arc<dyn Network>) -> Self {
        self.network = network;
        self
    }

    /// What the built-ins `peer` and `kad` learn of the network (default: what the
    /// network's transport tells, [`Network::info`]).
    pub fn network_info(mut self, info: Arc<dyn NetworkInfo>) -> Self {
        self.network_info = Some(info);
        self
    }

    /// The node's owner (see [`NodeConfig::owner`]).
    pub fn owner(mut self, peer_id: impl Into<String>) -> Self {
        self.config.owner = Some(peer_id.into());
        self
    }

    /// Where `invoke` runs (default: [`NativeBackend`]); [`crate::WasmBackend`] runs
    /// it sandboxed.
    pub fn backend(mut self, backend: Arc<dyn Backend>) -> Self {
        self.backend = backend;
        self
    }

    /// All settings at once.
    pub fn config(mut self, config: NodeConfig) -> Self {
        self.config = config;
        self
    }

    /// How long one service call may take.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.config.call_timeout = timeout;
        self
    }

    /// The ttl of particles started by [`Node::execute`].
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.config.default_ttl = ttl;
        self
    }

    /// Called with every [`NodeEvent`], on the node's tasks: keep it quick.
    pub fn observer(mut self, observer: impl Fn(&NodeEvent) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Starts the node's tasks on the current tokio runtime.
    pub fn build(self) -> Result<Node, HostError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| HostError::Config("a node must be built inside a tokio runtime".into()))?;
        let config = self.config;
        if config.default_ttl.as_millis() > u128::from(u32::MAX) {
            return Err(HostError::Config("default_ttl is over u32::MAX ms".into()));
        }
        let key = match self.key {
            Some(key) => key,
            None => NodeKey::generate()?,
        };
        let peer_id = key.peer_id().to_owned();
        // A few signatures and keys a particle: enough for every live particle's.
        let signatures = Arc::new(SignatureSet::new(config.max_particles.saturating_mul(4)));
        let pool = InvokePool::start(
            &peer_id[6..14],
            config.invoke_threads,
            config.invoke_stack_bytes,
            config.invoke_queue,
            self.backend,
            Arc::clone(&signatures),
        )?;
        let mut stats = NodeStats::default();
        // The node's own state (spells, workers, deployed services) lives in its
        // database beside the particle data, or in memory.
        let db = match &self.store {
            StoreChoice::Dir(dir) => Db::open(dir),
            _ => Db::in_memory().map(Arc::new),
        }
        .map_err(|e| HostError::Store(e.to_string()))?;
        let deployed = DbDeployStore(Arc::clone(&db));
        if let StoreChoice::Dir(dir) = &self.store {
            match deployed.import(&DirDeployStore::new(dir.join("deployed"))) {
                Ok(0) => {}
                Ok(modules) => tracing::info!(
                    modules,
                    "imported the deployed services of an older data dir"
                ),
                Err(e) => {
                    tracing::error!("cannot import the deployed services of an older data dir: {e}")
                }
            }
        }
        let deployed: Arc<dyn DeployStore> = Arc::new(deployed);
        let workers = Arc::new(Workers::open(
            Arc::clone(&db),
            peer_id.clone(),
            config.owner.clone(),
        ));
        let spells = Arc::new(Spells::open(
            Arc::clone(&db),
            key.clone(),
            config.owner.clone(),
            Arc::clone(&workers),
            now_ms(),
        ));
        let info = match self.network_info {
            Some(info) => InfoSource::Given(info),
            None => InfoSource::Transport(Arc::clone(&self.network)),
        };
        // The vault's files live beside the particle data, or in memory.
        let vault_dir = match &self.store {
            StoreChoice::Dir(dir) => Some(dir.join("vault")),
            _ => None,
        };
        let builtins = Arc::new(Builtins::new(
            key.clone(),
            config.owner.clone(),
            info,
            deployed,
            vault_dir,
            Arc::clone(&spells),
            config.builtin_threads,
        ));
        let store: Option<Arc<dyn DataStore>> = match self.store {
            StoreChoice::Memory => None,
            StoreChoice::Custom(store) => Some(store),
            StoreChoice::Dir(dir) => {
                let (store, removed) = DiskStore::open(&dir, now_ms())?;
                if removed > 0 {
                    tracing::info!(peer = %peer_id, removed, dir = %dir.display(), "removed expired particle data");
                }
                stats.store_removed_at_start = removed as u64;
                Some(Arc::new(store))
            }
        };
        let monitor = Arc::new(Monitor {
            peer: peer_id.clone(),
            stats: Mutex::new(stats),
            observer: self.observer,
            signatures,
        });
        let (tx, rx) = mpsc::channel(config.intake_queue.max(1));
        let waiting: Arc<WaitingMap> = Arc::default();
        let inbox = Inbox {
            queue: tx,
            limits: config.intake_limits,
            skew_ms: config.clock_skew_ms,
            monitor: Arc::clone(&monitor),
            verified: Arc::new(Verified::new(config.max_particles)),
            waiting: Arc::clone(&waiting),
            spells: Arc::clone(&spells),
            slots: Arc::new(Slots::new(
                Shares {
                    particles: config.max_particles,
                    particles_per_init_peer: config.max_particles_per_init_peer,
                    particles_per_sender: config.max_particles_per_sender,
                    bytes: config.max_live_bytes,
                    bytes_per_init_peer: config.max_live_bytes_per_init_peer,
                    bytes_per_sender: config.max_live_bytes_per_sender,
                    particles_per_address: config.max_particles_per_address,
                    bytes_per_address: config.max_live_bytes_per_address,
                },
                peer_id.clone(),
            )),
            max_ttl_ms: config.max_ttl.as_millis().try_into().unwrap_or(u64::MAX),
            max_particle_bytes: config.max_particle_bytes,
        };
        let shared = Arc::new(Shared {
            relay: self.relay.unwrap_or_else(|| peer_id.clone()),
            invoke_key: KeyPair::ed25519(key.secret()),
            key,
            call_slots: Semaphore::new(config.max_calls_in_flight.max(1)),
            call_bytes: CallBytes::new(config.max_call_bytes),
            quotas: Quotas::new(config.max_calls_per_init_peer),
            builtins,
            workers,
            config,
            network: self.network,
            registry: Registry::default(),
            sessions: Mutex::new(HashMap::new()),
            waiting,
            pool,
            monitor,
            inbox,
            store,
            record_dir: self.record_dir,
        });
        let dispatcher = runtime.spawn(dispatch(Arc::clone(&shared), rx));
        let inbox = shared.inbox.clone();
        let triggers = runtime.spawn(crate::spells::drive(spells, move |particle, scope| {
            let inbox = inbox.clone();
            async move { inbox.admit_spell(particle, scope).await }
        }));
        Ok(Node {
            inner: Arc::new(NodeInner {
                shared,
                dispatcher: dispatcher.abort_handle(),
                triggers: triggers.abort_handle(),
            }),
        })
    }
}

/// A running node. Cheap to clone; the node stops when the last clone is dropped.
#[derive(Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

/// A handle to a node that does not keep it running (for its transport, which the node
/// itself holds).
#[derive(Clone)]
pub struct WeakNode(std::sync::Weak<NodeInner>);

impl WeakNode {
    /// The node, if it still runs.
    pub fn upgrade(&self) -> Option<Node> {
        self.0.upgrade().map(|inner| Node { inner })
    }
}

struct NodeInner {
    shared: Arc<Shared>,
    dispatcher: tokio::task::AbortHandle,
    /// The task that starts the spells' particles.
    triggers: tokio::task::AbortHandle,
}

impl Drop for NodeInner {
    fn drop(&mut self) {
        self.triggers.abort();
        // Dropping the dispatcher drops its actors, which cancels their calls.
        self.dispatcher.abort();
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("peer_id", &self.peer_id())
            .finish_non_exhaustive()
    }
}

impl Node {
    /// A builder with [`NodeConfig::standard`] settings.
    pub fn builder() -> NodeBuilder {
        NodeBuilder {
            key: None,
            relay: None,
            network: Arc::new(NoNetwork),
            config: NodeConfig::standard(),
            observer: None,
            store: StoreChoice::Memory,
            record_dir: None,
            backend: Arc::new(NativeBackend),
            network_info: None,
        }
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> &str {
        self.inner.shared.key.peer_id()
    }

    /// A handle that does not keep the node running.
    pub fn downgrade(&self) -> WeakNode {
        WeakNode(Arc::downgrade(&self.inner))
    }

    /// Where transports hand this node the particles they receive.
    pub fn inbox(&self) -> Inbox {
        self.inner.shared.inbox.clone()
    }

    /// The node's counters.
    pub fn stats(&self) -> NodeStats {
        self.inner.shared.monitor.stats()
    }

    /// Registers a service: every call to `service_id` on this node that no built-in
    /// answers runs `service` (an async closure of the call). Replaces an earlier
    /// service of that id.
    pub fn register_service<F, Fut>(&self, service_id: impl Into<String>, service: F)
    where
        F: Fn(ServiceCall) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ServiceResult> + Send + 'static,
    {
        self.register_service_with_access(service_id, Access::Anyone, service);
    }

    /// [`Node::register_service`] with a rule for who may call it: a call the rule
    /// refuses is answered with its error, and the service does not run.
    pub fn register_service_with_access<F, Fut>(
        &self,
        service_id: impl Into<String>,
        access: Access,
        service: F,
    ) where
        F: Fn(ServiceCall) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ServiceResult> + Send + 'static,
    {
        self.inner
            .shared
            .registry
            .register(service_id.into(), boxed(service), access);
    }

    /// Starts again every particle the node's store holds (what the node had live when
    /// it stopped, by crash or on purpose): the calls each had in flight are made again
    /// and it goes on, with nothing re-delivered. Call it once, after registering the
    /// node's services, so that the calls find them. Without a store it does nothing.
    pub fn resume(&self) {
        if self.inner.shared.store.is_some() {
            tokio::spawn(resume(Arc::clone(&self.inner.shared)));
        }
    }

    /// Removes a registered service; true if there was one.
    pub fn remove_service(&self, service_id: &str) -> bool {
        self.inner.shared.registry.remove(service_id)
    }

    /// Runs `script` as a particle started by this node with the default ttl, and
    /// resolves with what it sends to `callbackSrv.response`: `null` for no argument,
    /// the argument, or an array of several. `args` answer `getDataSrv.<name>`;
    /// `getDataSrv.-relay-` answers the node's relay.
    ///
    /// Fails with what the script sends to `errorHandlingSrv.error`, with a timeout at
    /// the particle's deadline, or with the interpreter's error when the script stopped
    /// on this node with nothing left to wait for. A script that never calls
    /// `callbackSrv.response`, never leaves this node and finishes resolves with `null`.
    pub async fn execute<K: Into<String>>(
        &self,
        script: impl Into<String>,
        args: impl IntoIterator<Item = (K, Value)>,
    ) -> Result<Value, ExecuteError> {
        let ttl = self.inner.shared.config.default_ttl;
        self.execute_with_ttl(script, args, ttl).await
    }

    /// [`Node::execute`] with this ttl.
    pub async fn execute_with_ttl<K: Into<String>>(
        &self,
        script: impl Into<String>,
        args: impl IntoIterator<Item = (K, Value)>,
        ttl: Duration,
    ) -> Result<Value, ExecuteError> {
        let shared = &self.inner.shared;
        let ttl_ms = u32::try_from(ttl.as_millis())
            .map_err(|_| ExecuteError::Node("ttl is over u32::MAX ms".into()))?;
        let particle =
            Particle::new_signed(&shared.key, random_uuid()?, now_ms(), ttl_ms, script.into());
        let key = ActorKey::of(&particle);
        let (reply, answer) = oneshot::channel();
        let session = Arc::new(Session {
            args: args.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            reply: Mutex::new(Some(reply)),
        });
        let _waiting = Waiting::register(shared, &key, &session);
        shared.lock_sessions().insert(key.clone(), session);
        // This node has just signed it: only sizes and expiry are worth checking.
        if let Err(reason) = shared.inbox.admit_own(particle).await {
            shared.lock_sessions().remove(&key);
            return Err(ExecuteError::Rejected(reason));
        }
        // The actor answers, or drops the session at the deadline; the timer here only
        // guards against a node that stopped.
        let guard =
            ttl + Duration::from_millis(shared.config.clock_skew_ms) + Duration::from_secs(1);
        match tokio::time::timeout(guard, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) | Err(_) => {
                shared.lock_sessions().remove(&key);
                Err(ExecuteError::Timeout { ttl_ms })
            }
        }
    }

    /// Takes a notice from the transport that another peer gave up delivering a
    /// particle (`reported_by`: the authenticated peer it arrived from). If this node
    /// started that particle (same id and signature) and an `execute` still waits on it,
    /// the `execute` ends with [`ExecuteError::Undeliverable`] and this returns true;
    /// any other notice is ignored (logged) and this returns false.
    pub fn handle_undeliverable(&self, notice: &Undeliverable, reported_by: &str) -> bool {
        self.inner
            .shared
            .inbox
            .handle_undeliverable(notice, reported_by)
    }
}

/// What the dispatcher takes in.
enum Intake {
    /// A checked particle that arrived (or that this node started).
    Arrived(Particle),
    /// A particle this node persisted before it stopped, to go on with (its data is
    /// in the store).
    Resumed(Particle, Option<String>),
    /// A particle for one of this node's workers (that peer id): it runs as the
    /// worker, with its key.
    Worker(Particle, String),
}

/// Where a node receives encoded particles: checks them and queues them for the node.
#[derive(Clone)]
pub struct Inbox {
    queue: mpsc::Sender<Intake>,
    limits: IntakeLimits,
    skew_ms: u64,
    monitor: Arc<Monitor>,
    verified: Arc<Verified>,
    /// [`Shared::waiting`], for undeliverable notices.
    waiting: Arc<WaitingMap>,
    /// The spells, for connection events.
    spells: Arc<Spells>,
    /// Particle slots, per init peer and per sender ([`NodeConfig::max_particles`]
    /// and its shares).
    slots: Arc<Slots>,
    /// [`NodeConfig::max_ttl`], ms.
    max_ttl_ms: u64,
    /// [`NodeConfig::max_particle_bytes`].
    max_particle_bytes: usize,
}

impl Inbox {
    /// Checks an encoded particle (sizes, signature, expiry) and queues it. Waits while
    /// the intake queue is full (backpressure on the sender; logged and counted). A
    /// refused particle is logged with the reason and counted.
    ///
    /// The same particle (every signed field and the signature alike) arriving again
    /// while it lives, as a particle does when its route comes back here, is not
    /// checked against its signature a second time.
    pub async fn deliver(&self, bytes: Vec<u8>) -> Result<(), Rejection> {
        let (particle, digest) = self
            .check(&bytes)
            .inspect_err(|reason| self.monitor.rejected(None, reason))?;
        self.enqueue_verified(particle, digest, None, None).await
    }

    /// [`Self::deliver`] for a particle a transport has already decoded (braid-net
    /// reads frames up to its own limit): the same checks but the encoded size.
    pub async fn deliver_particle(&self, particle: Particle) -> Result<(), Rejection> {
        self.deliver_from(particle, None, None).await
    }

    /// [`Self::deliver_particle`] for a particle that came from the peer `sender` over
    /// a connection from the IP address `address`: it takes a slot of their shares
    /// too ([`NodeConfig::max_particles_per_sender`],
    /// [`NodeConfig::max_particles_per_address`]). The slot is taken before this
    /// returns, so a refusal for want of one is this call's error.
    pub async fn deliver_from(
        &self,
        particle: Particle,
        sender: Option<&str>,
        address: Option<&str>,
    ) -> Result<(), Rejection> {
        let id = escape_id(&particle.id);
        let (particle, digest) = self
            .check_decoded(particle)
            .inspect_err(|reason| self.monitor.rejected(Some(&id), reason))?;
        self.enqueue_verified(particle, digest, sender, address)
            .await
    }

    /// [`Self::enqueue`], then, once the particle is let in, remembers the digest of a
    /// signature verified for it ([`Verified`]): a refused particle is not remembered,
    /// so a flood of refused particles leaves nothing behind.
    async fn enqueue_verified(
        &self,
        particle: Particle,
        digest: Option<[u8; 32]>,
        sender: Option<&str>,
        address: Option<&str>,
    ) -> Result<(), Rejection> {
        let deadline = particle.deadline().unwrap_or(0);
        self.enqueue(particle, sender, address).await?;
        if let Some(digest) = digest {
            self.verified.insert(digest, deadline, now_ms());
        }
        Ok(())
    }

    /// [`wire::check`]'s checks in its order, with the signature check skipped for a
    /// particle [`Verified`] already; with the digest of a signature verified here.
    fn check(&self, bytes: &[u8]) -> Result<(Particle, Option<[u8; 32]>), Rejection> {
        if bytes.len() > self.limits.wire {
            return Err(Rejection::TooLarge {
                what: "particle",
                actual: bytes.len(),
                limit: self.limits.wire,
            });
        }
        self.check_decoded(Particle::decode(bytes)?)
    }

    fn check_decoded(&self, particle: Particle) -> Result<(Particle, Option<[u8; 32]>), Rejection> {
        wire::check_sizes(&particle, &self.limits)?;
        check_id(&particle.id)?;
        let held = particle.script.len() + particle.data.len();
        if held > self.max_particle_bytes {
            return Err(Rejection::TooLarge {
                what: "script and data",
                actual: held,
                limit: self.max_particle_bytes,
            });
        }
        if u64::from(particle.ttl) > self.max_ttl_ms {
            return Err(Rejection::TtlTooLong {
                ttl_ms: particle.ttl,
                cap_ms: self.max_ttl_ms,
            });
        }
        let now = now_ms();
        let digest = Verified::digest(&particle);
        let verified = if self.verified.contains(&digest, now) {
            None
        } else {
            self.monitor.update(|s| s.particle_signatures_verified += 1);
            wire::check_signature(&particle)?;
            Some(digest)
        };
        wire::check_expiry(&particle, now, self.skew_ms)?;
        Ok((particle, verified))
    }

    /// Queues a particle this node started: checks sizes and expiry, not the signature
    /// it has just made (and remembers it as checked, for when it comes back).
    async fn admit_own(&self, particle: Particle) -> Result<(), Rejection> {
        let now = now_ms();
        self.verified.insert(
            Verified::digest(&particle),
            particle.deadline().unwrap_or(0),
            now,
        );
        let checked = wire::check_sizes(&particle, &self.limits)
            .and_then(|()| wire::check_expiry(&particle, now, self.skew_ms));
        if let Err(reason) = checked {
            self.monitor.rejected(Some(&particle.id), &reason);
            return Err(reason);
        }
        self.enqueue(particle, None, None).await
    }

    /// Starts a particle of a spell's trigger, signed by the scope it runs in (the node
    /// or one of its workers).
    async fn admit_spell(&self, particle: Particle, scope: String) {
        let id = particle.id.clone();
        if scope != self.monitor.peer {
            self.verified.insert(
                Verified::digest(&particle),
                particle.deadline().unwrap_or(0),
                now_ms(),
            );
            if let Err(e) = self.enqueue_worker(particle, scope).await {
                tracing::warn!(particle_id = %id, "the spell's particle was not started: {e}");
            }
            return;
        }
        if let Err(e) = self.admit_own(particle).await {
            tracing::warn!(particle_id = %id, "the spell's particle was not started: {e}");
        }
    }

    /// Tells the node's spells that `peer` connected (`true`) or disconnected: those
    /// subscribed to it run.
    pub fn handle_connection(&self, peer: &str, connected: bool) {
        let spells = Arc::clone(&self.spells);
        let inbox = self.clone();
        let peer = peer.to_owned();
        tokio::spawn(async move {
            let now = now_ms();
            let started =
                tokio::task::spawn_blocking(move || spells.connection(&peer, connected, now))
                    .await
                    .unwrap_or_default();
            for (particle, scope) in started {
                inbox.admit_spell(particle, scope).await;
            }
        });
    }

    /// Queues a particle for one of this node's workers (sent by an actor of this node,
    /// or started by a worker's spell: already checked).
    async fn enqueue_worker(&self, particle: Particle, worker: String) -> Result<(), Rejection> {
        self.queue
            .send(Intake::Worker(particle, worker))
            .await
            .map_err(|_| self.stopped())?;
        self.monitor.update(|s| s.accepted += 1);
        Ok(())
    }

    /// Takes the particle's slot (unless its actor lives) and queues it.
    async fn enqueue(
        &self,
        particle: Particle,
        sender: Option<&str>,
        address: Option<&str>,
    ) -> Result<(), Rejection> {
        if let Err(reason) = self.slots.take(&particle, sender, address, true) {
            self.monitor
                .rejected(Some(&escape_id(&particle.id)), &reason);
            return Err(reason);
        }
        match self.queue.try_send(Intake::Arrived(particle)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(
                Intake::Arrived(particle)
                | Intake::Resumed(particle, _)
                | Intake::Worker(particle, _),
            )) => {
                tracing::warn!(
                    peer = %self.monitor.peer,
                    particle_id = %particle.id,
                    "intake queue full; the sender waits"
                );
                self.monitor.update(|s| s.intake_pressure += 1);
                let (id, signature) = (particle.id.clone(), particle.signature.clone());
                if self.queue.send(Intake::Arrived(particle)).await.is_err() {
                    self.slots.give_back(&id, &signature);
                    return Err(self.stopped());
                }
            }
            Err(mpsc::error::TrySendError::Closed(
                Intake::Arrived(particle)
                | Intake::Resumed(particle, _)
                | Intake::Worker(particle, _),
            )) => {
                self.slots.give_back(&particle.id, &particle.signature);
                return Err(self.stopped());
            }
        }
        self.monitor.update(|s| s.accepted += 1);
        Ok(())
    }

    /// [`Node::handle_undeliverable`], for a transport that holds only the inbox.
    pub fn handle_undeliverable(&self, notice: &Undeliverable, reported_by: &str) -> bool {
        let key = ActorKey {
            id: Arc::from(notice.particle_id.as_str()),
            signature: Arc::from(notice.signature.as_slice()),
            worker: None,
        };
        let session = if notice.init_peer_id == self.monitor.peer {
            lock_waiting(&self.waiting)
                .get(&key)
                .and_then(Weak::upgrade)
        } else {
            None
        };
        let Some(session) = session.filter(|s| s.pending()) else {
            tracing::info!(
                peer = %self.monitor.peer,
                particle_id = %escape_id(&notice.particle_id),
                reported_by = %reported_by,
                "ignored an undeliverable notice for no particle this node waits on"
            );
            return false;
        };
        let mut reason = notice.reason.clone();
        if reported_by != notice.from {
            reason.push_str(&format!(" (reported by {reported_by})"));
        }
        tracing::warn!(
            peer = %self.monitor.peer,
            particle_id = %notice.particle_id,
            from = %notice.from.escape_default(),
            to = %notice.to.escape_default(),
            "a particle this node started could not be delivered: {}",
            reason.escape_default()
        );
        session.resolve(Err(ExecuteError::Undeliverable {
            from: notice.from.clone(),
            to: notice.to.clone(),
            reason,
        }));
        true
    }

    /// A peer says it refused a particle: logged; a particle this node started and
    /// waits on ends with [`ExecuteError::Undeliverable`] and the reason. Returns
    /// whether it was such a particle.
    pub fn handle_refused(&self, notice: &braid_wire::Refused, refused_by: &str) -> bool {
        tracing::warn!(
            peer = %self.monitor.peer,
            particle_id = %escape_id(&notice.particle_id),
            %refused_by,
            kind = %notice.rejection.escape_default(),
            "a peer refused a particle this node sent: {}",
            notice.reason.escape_default()
        );
        if notice.init_peer_id != self.monitor.peer {
            return false;
        }
        let key = ActorKey {
            id: Arc::from(notice.particle_id.as_str()),
            signature: Arc::from(notice.signature.as_slice()),
            worker: None,
        };
        let session = lock_waiting(&self.waiting)
            .get(&key)
            .and_then(Weak::upgrade);
        let Some(session) = session.filter(|s| s.pending()) else {
            return false;
        };
        session.resolve(Err(ExecuteError::Undeliverable {
            from: self.monitor.peer.clone(),
            to: refused_by.to_owned(),
            reason: format!("refused: {}", notice.reason),
        }));
        true
    }

    /// The node's counters ([`Node::stats`]).
    pub fn stats(&self) -> NodeStats {
        self.monitor.stats()
    }

    /// The peer id of the node this inbox feeds.
    pub fn peer_id(&self) -> &str {
        &self.monitor.peer
    }

    fn stopped(&self) -> Rejection {
        let reason = Rejection::Stopped;
        self.monitor.rejected(None, &reason);
        reason
    }
}

/// Particles whose init peer's signature this node checked (or made), until their
/// deadline: at most as many as the node keeps particles alive, so a flood of new ones
/// only stops the caching, never the checking.
struct Verified {
    seen: Mutex<HashMap<[u8; 32], u64>>,
    capacity: usize,
}

impl Verified {
    fn new(capacity: usize) -> Self {
        Verified {
            seen: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// SHA-256 of every field the signature covers, the init peer and the signature,
    /// each with its length: equal digests, equal signed particles.
    fn digest(particle: &Particle) -> [u8; 32] {
        let mut hasher = Sha256::new();
        for field in [
            particle.id.as_bytes(),
            particle.init_peer_id.as_bytes(),
            particle.script.as_bytes(),
            &particle.signature,
        ] {
            hasher.update((field.len() as u64).to_le_bytes());
            hasher.update(field);
        }
        hasher.update(particle.timestamp.to_le_bytes());
        hasher.update(particle.ttl.to_le_bytes());
        hasher.finalize().into()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], u64>> {
        self.seen
            .lock()
            .expect("the verified lock is never poisoned")
    }

    fn contains(&self, digest: &[u8; 32], now: u64) -> bool {
        self.lock()
            .get(digest)
            .is_some_and(|&deadline| deadline >= now)
    }

    fn insert(&self, digest: [u8; 32], deadline: u64, now: u64) {
        let mut seen = self.lock();
        if seen.len() >= self.capacity {
            seen.retain(|_, &mut d| d >= now);
            let kept = seen.len();
            seen.shrink_to(kept * 2);
        }
        if seen.len() < self.capacity {
            seen.insert(digest, deadline);
        }
    }
}

/// Counters, the observer and the log, in one place.
struct Monitor {
    peer: String,
    stats: Mutex<NodeStats>,
    observer: Option<Observer>,
    /// The invoke threads' signature cache, which counts their Ed25519 work.
    signatures: Arc<SignatureSet>,
}

impl Monitor {
    fn update(&self, f: impl FnOnce(&mut NodeStats)) {
        f(&mut self.stats.lock().expect("the stats lock is never poisoned"));
    }

    fn stats(&self) -> NodeStats {
        let mut stats = self
            .stats
            .lock()
            .expect("the stats lock is never poisoned")
            .clone();
        (stats.data_signatures_verified, stats.data_signatures_made) = self.signatures.counts();
        stats
    }

    fn emit(&self, event: impl FnOnce() -> NodeEvent) {
        if let Some(observer) = &self.observer {
            observer(&event());
        }
    }

    fn rejected(&self, particle_id: Option<&str>, reason: &Rejection) {
        tracing::warn!(
            peer = %self.peer,
            particle_id = particle_id.unwrap_or("?"),
            kind = reason.kind(),
            "particle rejected: {reason}"
        );
        self.update(|s| *s.rejected.entry(reason.kind()).or_default() += 1);
        self.emit(|| NodeEvent::Rejected {
            peer: self.peer.clone(),
            particle_id: particle_id.map(str::to_owned),
            reason: reason.clone(),
        });
    }
}

/// What every task of a node shares.
struct Shared {
    key: NodeKey,
    /// The key as the interpreter takes it, with the public half derived once.
    invoke_key: KeyPair,
    relay: String,
    config: NodeConfig,
    network: Arc<dyn Network>,
    registry: Registry,
    sessions: Mutex<HashMap<ActorKey, Arc<Session>>>,
    /// Every particle an `execute` waits on, until it returns: weak, so that the
    /// session still ends when its actor drops it at the deadline.
    waiting: Arc<WaitingMap>,
    pool: InvokePool,
    monitor: Arc<Monitor>,
    call_slots: Semaphore,
    /// Bytes of call arguments in flight ([`NodeConfig::max_call_bytes`]).
    call_bytes: CallBytes,
    /// Calls in flight per init peer.
    quotas: Arc<Quotas>,
    builtins: Arc<Builtins>,
    /// The node's workers: particles sent to them stay here and run as them.
    workers: Arc<Workers>,
    inbox: Inbox,
    /// `None`: the data lives in the actors only (lost when the node stops).
    store: Option<Arc<dyn DataStore>>,
    record_dir: Option<std::path::PathBuf>,
}

impl Shared {
    fn lock_sessions(&self) -> std::sync::MutexGuard<'_, HashMap<ActorKey, Arc<Session>>> {
        self.sessions
            .lock()
            .expect("the sessions lock is never poisoned")
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, HashMap<ActorKey, Weak<Session>>> {
        lock_waiting(&self.waiting)
    }

    /// The run parameters of a particle on this node, or on one of its workers (as
    /// that worker, with its key).
    fn params(&self, particle: &ParticleContext, worker: Option<&NodeKey>) -> RunParams {
        let (current_peer_id, key) = match worker {
            Some(worker) => (
                worker.peer_id().to_owned(),
                KeyPair::ed25519(worker.secret()),
            ),
            None => (self.key.peer_id().to_owned(), self.invoke_key.clone()),
        };
        RunParams {
            init_peer_id: particle.init_peer_id.clone(),
            current_peer_id,
            timestamp: particle.timestamp,
            ttl: particle.ttl,
            particle_id: particle.id.clone(),
            key,
            limits: Limits::REFERENCE_MAXIMA,
            integrity: Integrity {
                check: true,
                trusted_keys: Default::default(),
            },
        }
    }
}

type WaitingMap = Mutex<HashMap<ActorKey, Weak<Session>>>;

fn lock_waiting(
    waiting: &WaitingMap,
) -> std::sync::MutexGuard<'_, HashMap<ActorKey, Weak<Session>>> {
    waiting.lock().expect("the waiting lock is never poisoned")
}

/// A particle's identity on a node: its id and its init peer's signature, so that a
/// reused id with another script or another signer never touches this one's state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct ActorKey {
    /// Shared by the key's copies (the dispatcher keeps one in its slots and one by
    /// deadline for each dormant particle).
    id: Arc<str>,
    signature: Arc<[u8]>,
    /// The worker it runs as; `None`: the node itself.
    worker: Option<String>,
}

impl ActorKey {
    fn of(particle: &Particle) -> Self {
        ActorKey {
            id: Arc::from(particle.id.as_str()),
            signature: Arc::from(particle.signature.as_slice()),
            worker: None,
        }
    }
}

/// A particle started by [`Node::execute`]: its arguments and where its answer goes.
struct Session {
    args: HashMap<String, Value>,
    reply: Mutex<Option<oneshot::Sender<Result<Value, ExecuteError>>>>,
}

impl Session {
    fn resolve(&self, result: Result<Value, ExecuteError>) {
        let reply = self
            .reply
            .lock()
            .expect("the reply lock is never poisoned")
            .take();
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }

    fn pending(&self) -> bool {
        self.reply
            .lock()
            .expect("the reply lock is never poisoned")
            .is_some()
    }
}

/// An `execute`'s entry in [`Shared::waiting`], removed when the `execute` returns or
/// is dropped.
struct Waiting<'a> {
    shared: &'a Shared,
    key: ActorKey,
}

impl<'a> Waiting<'a> {
    fn register(shared: &'a Shared, key: &ActorKey, session: &Arc<Session>) -> Self {
        shared
            .lock_waiting()
            .insert(key.clone(), Arc::downgrade(session));
        Waiting {
            shared,
            key: key.clone(),
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.shared.lock_waiting().remove(&self.key);
    }
}

/// How a particle's actor started.
enum Start {
    /// Its first arrival on this node.
    Arrived,
    /// From the store, after a restart.
    Resumed,
    /// Data arrived for a dormant particle.
    Woken(Asleep),
}

/// How an actor ended.
enum ActorEnd {
    /// The particle expired, or cannot go on.
    Over,
    /// The particle has nothing to do until data arrives: its state, and its mailbox
    /// for what arrived while the actor was ending.
    Asleep(Asleep, mpsc::Receiver<Particle>),
}

/// A dormant particle, kept by the dispatcher until more data arrives or its deadline.
struct Asleep {
    state: Dormant,
    session: Option<Arc<Session>>,
    /// Invocations recorded so far (`record_dir`'s file names go on from here).
    invocations: u32,
    /// Whose particle it is (its vault files are found by it).
    init_peer_id: String,
}

impl Asleep {
    /// The actor's deadline: the particle's plus the clock skew allowance.
    fn deadline(&self) -> u64 {
        self.state.deadline_ms()
    }
}

/// A live particle in the dispatcher: its running actor's mailbox, or its dormant state.
enum Slot {
    Awake(mpsc::Sender<Particle>),
    Asleep(Asleep),
}

/// Routes checked particles to their actors; starts an actor per new particle and
/// again when data arrives for a dormant one; forgets dormant particles at their
/// deadline.
async fn dispatch(shared: Arc<Shared>, mut intake: mpsc::Receiver<Intake>) {
    let mut slots: HashMap<ActorKey, Slot> = HashMap::new();
    let mut actors: JoinSet<ActorEnd> = JoinSet::new();
    let mut actor_keys: HashMap<tokio::task::Id, ActorKey> = HashMap::new();
    // Dormant particles by deadline, and a timer for the first.
    let mut sleepers: BTreeSet<(u64, ActorKey)> = BTreeSet::new();
    let expiry = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(expiry);
    let mut armed: Option<u64> = None;
    let spawn = |actors: &mut JoinSet<ActorEnd>,
                 actor_keys: &mut HashMap<tokio::task::Id, ActorKey>,
                 key: ActorKey,
                 particle: Particle,
                 start: Start,
                 mailbox: Option<(mpsc::Sender<Particle>, mpsc::Receiver<Particle>)>,
                 session: Option<Arc<Session>>| {
        let (tx, rx) = mailbox.unwrap_or_else(|| mpsc::channel(shared.config.mailbox.max(1)));
        let handle = actors.spawn(run_actor(
            Arc::clone(&shared),
            particle,
            start,
            key.worker.clone(),
            rx,
            session,
        ));
        actor_keys.insert(handle.id(), key);
        Slot::Awake(tx)
    };
    loop {
        let first = sleepers.first().map(|(deadline, _)| *deadline);
        if first != armed {
            if let Some(deadline) = first {
                expiry.as_mut().reset(instant_at(deadline));
            }
            armed = first;
        }
        tokio::select! {
            Some(done) = actors.join_next_with_id(), if !actors.is_empty() => {
                let (id, end) = match done {
                    Ok((id, end)) => (id, end),
                    Err(e) => {
                        tracing::error!(peer = %shared.monitor.peer, "a particle actor failed: {e}");
                        (e.id(), ActorEnd::Over)
                    }
                };
                let Some(key) = actor_keys.remove(&id) else { continue };
                shrink_after_burst(&mut actor_keys);
                match end {
                    ActorEnd::Over => {
                        // Unless a particle that came as it ended started a new actor.
                        if matches!(slots.get(&key), Some(Slot::Awake(tx)) if tx.is_closed()) {
                            slots.remove(&key);
                            shrink_after_burst(&mut slots);
                            give_back(&shared, &key);
                        }
                        shared.monitor.update(|s| s.live_particles = s.live_particles.saturating_sub(1));
                    }
                    ActorEnd::Asleep(asleep, mut mailbox) => match mailbox.try_recv() {
                        // Data arrived while the actor was ending: it goes on at once.
                        Ok(particle) => {
                            let Some(Slot::Awake(tx)) = slots.remove(&key) else { continue };
                            let slot = spawn(
                                &mut actors,
                                &mut actor_keys,
                                key.clone(),
                                particle,
                                Start::Woken(asleep),
                                Some((tx, mailbox)),
                                None,
                            );
                            slots.insert(key, slot);
                        }
                        Err(_) => {
                            sleepers.insert((asleep.deadline(), key.clone()));
                            slots.insert(key, Slot::Asleep(asleep));
                        }
                    },
                }
            }
            () = &mut expiry, if armed.is_some() => {
                let now = now_ms();
                while let Some((deadline, _)) = sleepers.first() {
                    if *deadline > now {
                        break;
                    }
                    let Some((_, key)) = sleepers.pop_first() else { break };
                    if let Some(Slot::Asleep(asleep)) = slots.remove(&key) {
                        forget(&shared, key, asleep);
                    }
                }
                shrink_after_burst(&mut slots);
                armed = None;
            }
            received = intake.recv() => {
                let (particle, resumed, worker) = match received {
                    Some(Intake::Arrived(particle)) => (particle, false, None),
                    Some(Intake::Resumed(particle, worker)) => (particle, true, worker),
                    Some(Intake::Worker(particle, worker)) => (particle, false, Some(worker)),
                    None => return,
                };
                let key = ActorKey {
                    worker: worker.clone(),
                    ..ActorKey::of(&particle)
                };
                if resumed && slots.contains_key(&key) {
                    continue; // it arrived again first, and goes on from its stored data
                }
                let particle = match slots.remove(&key) {
                    Some(Slot::Awake(mailbox)) => match mailbox.try_send(particle) {
                        Ok(()) => {
                            slots.insert(key, Slot::Awake(mailbox));
                            continue;
                        }
                        Err(mpsc::error::TrySendError::Full(particle)) => {
                            slots.insert(key, Slot::Awake(mailbox));
                            shared.monitor.rejected(Some(&particle.id), &Rejection::MailboxFull);
                            continue;
                        }
                        // The actor has just ended (its deadline passed): start anew.
                        Err(mpsc::error::TrySendError::Closed(particle)) => particle,
                    },
                    Some(Slot::Asleep(asleep)) => {
                        sleepers.remove(&(asleep.deadline(), key.clone()));
                        let slot = spawn(
                            &mut actors,
                            &mut actor_keys,
                            key.clone(),
                            particle,
                            Start::Woken(asleep),
                            None,
                            None,
                        );
                        slots.insert(key, slot);
                        continue;
                    }
                    None => particle,
                };
                let session = shared.lock_sessions().remove(&key);
                if slots.len() >= shared.config.max_particles {
                    let reason = Rejection::Busy(shared.config.max_particles);
                    give_back(&shared, &key);
                    shared.monitor.rejected(Some(&particle.id), &reason);
                    if let Some(session) = session {
                        session.resolve(Err(ExecuteError::Rejected(reason)));
                    }
                    continue;
                }
                let start = if resumed { Start::Resumed } else { Start::Arrived };
                let slot = spawn(
                    &mut actors,
                    &mut actor_keys,
                    key.clone(),
                    particle,
                    start,
                    None,
                    session,
                );
                slots.insert(key, slot);
                shared.monitor.update(|s| s.live_particles += 1);
            }
        }
    }
}

/// The particle's slot ([`Inbox::slots`]) goes back when its actor ends for good. A
/// worker's run of a particle holds none: the particle came through the node's own
/// intake (or a worker's spell started it), where its slot is counted.
fn give_back(shared: &Shared, key: &ActorKey) {
    if key.worker.is_none() {
        shared.inbox.slots.give_back(&key.id, &key.signature);
    }
}

/// A dormant particle's deadline passed: its stored data and vault files are removed
/// (off the dispatcher), then it is counted and reported as expired.
fn forget(shared: &Arc<Shared>, key: ActorKey, asleep: Asleep) {
    tracing::debug!(peer = %shared.monitor.peer, particle_id = %key.id, "particle expired");
    give_back(shared, &key);
    let particle_id = key.id.to_string();
    let init_peer_id = asleep.init_peer_id.clone();
    let store = shared.store.clone();
    let shared_ = Arc::clone(shared);
    tokio::spawn(async move {
        if let Some(store) = store {
            // As `run_actor` names it: a worker's run of the particle apart from the node's.
            let store_key = StoreKey {
                particle_id: match &key.worker {
                    Some(worker) => format!("{}@{worker}", key.id),
                    None => key.id.to_string(),
                },
                signature: key.signature.to_vec(),
            };
            if let Err(e) = store.remove(&store_key).await {
                tracing::error!(particle_id = %store_key.particle_id, "cannot remove the particle's data: {e}");
                shared_.monitor.update(|s| s.store_failures += 1);
            }
        }
        let scope = key.worker.as_deref().unwrap_or(shared_.key.peer_id());
        shared_
            .builtins
            .forget_particle(&init_peer_id, &key.id, scope)
            .await;
        // Counted and reported once its data and files are gone.
        shared_.monitor.update(|s| s.expired += 1);
        shared_.monitor.emit(|| NodeEvent::Expired {
            peer: shared_.monitor.peer.clone(),
            particle_id,
            cancelled_calls: 0,
        });
    });
    drop(asleep); // an `execute` still waiting on the particle times out
    shared
        .monitor
        .update(|s| s.live_particles = s.live_particles.saturating_sub(1));
}

/// Starts again every particle the store holds (what a node that stopped had live), so
/// that calls that were in flight are made again and the particles finish.
async fn resume(shared: Arc<Shared>) {
    let Some(store) = &shared.store else { return };
    let records = match store.live().await {
        Ok(records) => records,
        Err(e) => {
            tracing::error!(peer = %shared.monitor.peer, "cannot list the stored particles: {e}");
            shared.monitor.update(|s| s.store_failures += 1);
            return;
        }
    };
    let mut resumed = 0usize;
    for bytes in records {
        match StoredParticle::decode(&bytes) {
            Ok(stored) => {
                resumed += 1;
                // Counted, not refused: it was let in before the node stopped.
                let _ = shared.inbox.slots.take(&stored.particle, None, None, false);
                if shared
                    .inbox
                    .queue
                    .send(Intake::Resumed(stored.particle, stored.worker))
                    .await
                    .is_err()
                {
                    return; // the node stopped
                }
            }
            Err(e) => {
                tracing::error!(peer = %shared.monitor.peer, "a stored particle is unreadable: {e}");
                shared.monitor.update(|s| s.store_failures += 1);
            }
        }
    }
    if resumed > 0 {
        tracing::info!(peer = %shared.monitor.peer, resumed, "resumed the particles stored before the node stopped");
    }
}

/// One particle on this node, from its first arrival (or its resumption from the store
/// after a restart) to its deadline: a driver of its [`ParticleMachine`], which decides
/// what runs when; this performs it.
async fn run_actor(
    shared: Arc<Shared>,
    mut template: Particle,
    start: Start,
    worker: Option<String>,
    mut mailbox: mpsc::Receiver<Particle>,
    session: Option<Arc<Session>>,
) -> ActorEnd {
    let deadline = template
        .deadline()
        .unwrap_or(u64::MAX)
        .saturating_add(shared.config.clock_skew_ms);
    let expiry = tokio::time::sleep_until(instant_at(deadline));
    tokio::pin!(expiry);
    // One copy of the script, shared by the invocations and the sends.
    let script: Arc<str> = Arc::from(std::mem::take(&mut template.script));
    // A particle for a worker runs as the worker (its peer id, its key, its scope of
    // spells); its data is kept apart from the node's own run of the same particle.
    let worker_key = match &worker {
        Some(id) => match shared.workers.admit(id, &template.init_peer_id) {
            Ok(w) => Some(w.key),
            Err(why) => {
                tracing::warn!(particle_id = %template.id, worker = %id, "{why}; the particle is dropped");
                return ActorEnd::Over;
            }
        },
        None => None,
    };
    let context = ParticleContext {
        id: template.id.clone(),
        init_peer_id: template.init_peer_id.clone(),
        timestamp: template.timestamp,
        ttl: template.ttl,
        host_id: worker
            .clone()
            .unwrap_or_else(|| shared.key.peer_id().to_owned()),
    };
    let mut params = shared.params(&context, worker_key.as_ref());
    params.limits.call_requests_size = shared
        .config
        .max_particle_bytes
        .saturating_sub(script.len())
        .min(shared.config.max_invoke_call_bytes) as u64;
    let store_key = StoreKey {
        particle_id: match &worker {
            Some(id) => format!("{}@{id}", template.id),
            None => template.id.clone(),
        },
        signature: template.signature.clone(),
    };
    let config = MachineConfig {
        deadline_ms: deadline,
        batching: Batching::AllReady,
        durable: shared.store.is_some(),
    };
    let resumed = matches!(start, Start::Resumed);
    let (mut machine, session, mut invocations) = match start {
        Start::Woken(asleep) => (
            ParticleMachine::wake(asleep.state),
            asleep.session,
            asleep.invocations,
        ),
        // A particle this node ran before a restart continues from its snapshot, and
        // the calls it had in flight are made again.
        Start::Arrived | Start::Resumed => match restore(&shared, &store_key).await {
            Some(snapshot) => (ParticleMachine::restore(config, snapshot), session, 0),
            None => (ParticleMachine::new(config), session, 0),
        },
    };
    let arrived = std::mem::take(&mut template.data);
    if !resumed {
        machine.handle_arrival(Arc::new(arrived));
    }
    // The particle as stored beside its snapshots: what a restarted node resumes.
    let header = if shared.store.is_some() {
        Particle {
            script: script.to_string(),
            ..template.clone()
        }
        .encode()
    } else {
        Vec::new()
    };
    let mut calls: JoinSet<(u32, CallResult, CallHeld)> = JoinSet::new();
    // Bytes of this particle's call arguments in flight and answers not yet invoked
    // with, against its budget (with the node's); the answers' holds, until the invoke
    // that takes them ends.
    let particle_bytes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut ready_holds: Vec<CallHeld> = Vec::new();
    let mut working = Working::start(Arc::clone(&shared.monitor));
    let take = |done: Result<(u32, CallResult, CallHeld), tokio::task::JoinError>,
                machine: &mut ParticleMachine,
                holds: &mut Vec<CallHeld>| match done {
        Ok((id, mut result, mut held)) => {
            if !held.hold_answer(script.len(), result.result.len()) {
                let message = format!(
                    "the answer ({} bytes) is over the memory budget of the particle ({} bytes) or of the node ({} bytes)",
                    result.result.len(),
                    shared.config.max_particle_bytes,
                    shared.config.max_call_bytes,
                );
                shared.monitor.update(|s| s.calls_over_budget += 1);
                result = CallResult::error(1, Value::String(message).to_string());
            }
            holds.push(held);
            machine.handle_call_result(id, result);
        }
        // A call task only ends in error when cancelled, which happens at expiry.
        Err(e) => tracing::error!(particle_id = %context.id, "a call task failed: {e}"),
    };
    loop {
        // Everything that is ready goes in before the machine decides.
        while let Some(done) = calls.try_join_next() {
            take(done, &mut machine, &mut ready_holds);
        }
        while let Ok(particle) = mailbox.try_recv() {
            machine.handle_arrival(Arc::new(particle.data));
        }
        let Some(action) = machine.poll_action() else {
            // Nothing to do until data arrives: the actor ends, the particle's data
            // stays with the dispatcher.
            if let Some(state) = machine.dormant().filter(|_| calls.is_empty()) {
                let asleep = Asleep {
                    state,
                    session,
                    invocations,
                    init_peer_id: context.init_peer_id.clone(),
                };
                return ActorEnd::Asleep(asleep, mailbox);
            }
            // Nothing to do but wait: for call results (working), or only for data or
            // the deadline (not working).
            working.set(!calls.is_empty());
            tokio::select! {
                biased;
                () = &mut expiry => {
                    machine.handle_tick(deadline);
                }
                received = mailbox.recv() => match received {
                    Some(particle) => machine.handle_arrival(Arc::new(particle.data)),
                    None => return ActorEnd::Over, // the node stopped
                },
                Some(done) = calls.join_next(), if !calls.is_empty() => take(done, &mut machine, &mut ready_holds),
            }
            continue;
        };
        working.set(true);
        match action {
            Action::Invoke(input) => {
                // The answers this invoke takes are held until it ends.
                let _answers = std::mem::take(&mut ready_holds);
                tracing::debug!(
                    peer = %shared.monitor.peer,
                    particle_id = %context.id,
                    results = ?input.call_results.keys().collect::<Vec<_>>(),
                    data_bytes = input.data.len(),
                    "invoke"
                );
                let job = Job {
                    script: Arc::clone(&script),
                    prev_data: Arc::clone(&input.prev_data),
                    data: Arc::clone(&input.data),
                    params: params.clone(),
                    results: input.call_results.clone(),
                };
                let outcome = tokio::select! {
                    biased;
                    () = &mut expiry => {
                        machine.handle_tick(deadline);
                        continue;
                    }
                    outcome = shared.pool.invoke(job) => outcome,
                };
                let outcome = match outcome {
                    Ok(outcome) if outcome.ret_code() == UncatchableError::CALL_REQUESTS_SIZE => {
                        // A resource failure (as running out of Wasm memory is for the
                        // reference): the particle is dropped here, nothing stored.
                        let message = outcome.error_message();
                        drop(outcome);
                        drop_over_budget(&shared, &template, session.as_deref(), message).await;
                        machine.handle_invoke_failed();
                        return ActorEnd::Over;
                    }
                    Ok(outcome) => outcome,
                    Err(e) => {
                        // The backend stopped this invoke (a trap, memory, the
                        // deadline): the particle ends here, its stored data kept; the
                        // next particle runs on a fresh instance.
                        tracing::error!(particle_id = %context.id, "cannot run the particle: {e}");
                        shared.monitor.update(|s| s.failed_invokes += 1);
                        machine.handle_invoke_failed();
                        if let Some(session) = &session {
                            session.resolve(Err(ExecuteError::from(e)));
                        }
                        return ActorEnd::Over;
                    }
                };
                if let Some(dir) = &shared.record_dir {
                    invocations += 1;
                    let name = format!(
                        "{}-{}-{invocations:03}",
                        context.id,
                        &context.host_id[6..14]
                    );
                    write_record(dir, name, &script, &params, input, &outcome).await;
                }
                let code = outcome.ret_code();
                shared.monitor.update(|s| {
                    s.invokes += 1;
                    s.failed_invokes += u64::from(code != 0);
                });
                if code != 0 {
                    let message = outcome.error_message();
                    tracing::debug!(particle_id = %context.id, code, "invoke failed: {message}");
                    shared.monitor.emit(|| NodeEvent::InvokeFailed {
                        peer: shared.monitor.peer.clone(),
                        particle_id: context.id.clone(),
                        code,
                        message,
                    });
                }
                machine.handle_invoked(outcome);
            }
            Action::Persist(snapshot) => {
                // Invariant: the machine asks for snapshots only when it is durable,
                // that is, when the node has a store.
                let store = shared
                    .store
                    .as_ref()
                    .expect("a durable particle has a store");
                let record = StoredParticle::encode(&header, &snapshot, worker.as_deref());
                let written = store.write(&store_key, deadline, record).await;
                machine.handle_persisted(match written {
                    Ok(()) => Persisted::Durable,
                    Err(e) => {
                        tracing::error!(
                            particle_id = %context.id,
                            "cannot store the particle's data; dropping this invocation's calls and sends: {e}"
                        );
                        shared.monitor.update(|s| s.store_failures += 1);
                        Persisted::Failed
                    }
                });
            }
            Action::Call(request) => {
                let Some(held) = CallHeld::take(&shared, &particle_bytes, script.len(), &request)
                else {
                    let message = format!(
                        "service call {}.{} refused: its arguments ({} bytes) are over the memory budget of the particle ({} bytes) or of the node ({} bytes)",
                        request.service_id,
                        request.function_name,
                        request.arguments.len(),
                        shared.config.max_particle_bytes,
                        shared.config.max_call_bytes,
                    );
                    tracing::warn!(peer = %shared.monitor.peer, particle_id = %context.id, "{message}");
                    shared.monitor.update(|s| s.calls_over_budget += 1);
                    let id = request.id;
                    drop(request);
                    machine.handle_call_result(
                        id,
                        CallResult::error(1, Value::String(message).to_string()),
                    );
                    continue;
                };
                let call = perform_call(
                    Arc::clone(&shared),
                    session.clone(),
                    context.clone(),
                    request,
                );
                calls.spawn(async move {
                    let (id, result) = call.await;
                    (id, result, held)
                });
            }
            Action::Send { peers, data } => {
                let particle = Particle {
                    data: data.to_vec(),
                    script: script.to_string(),
                    ..template.clone()
                };
                send(&shared, &particle, peers, session.clone());
            }
            Action::Settled(settled) => {
                if let Some(session) = session.as_ref().filter(|s| s.pending()) {
                    session.resolve(if settled.ret_code == 0 {
                        Ok(Value::Null)
                    } else {
                        Err(ExecuteError::Interpreter {
                            code: settled.ret_code,
                            message: settled.error_message,
                        })
                    });
                }
            }
            Action::Expire { .. } => break,
        }
    }
    let cancelled = calls.len();
    calls.abort_all();
    if cancelled > 0 {
        tracing::info!(
            peer = %shared.monitor.peer,
            particle_id = %context.id,
            cancelled_calls = cancelled,
            "particle expired; its pending calls are cancelled"
        );
    } else {
        tracing::debug!(peer = %shared.monitor.peer, particle_id = %context.id, "particle expired");
    }
    let removed = match &shared.store {
        Some(store) => store.remove(&store_key).await,
        None => Ok(()),
    };
    if let Err(e) = removed {
        tracing::error!(particle_id = %context.id, "cannot remove the particle's data: {e}");
        shared.monitor.update(|s| s.store_failures += 1);
    }
    shared
        .builtins
        .forget_particle(&context.init_peer_id, &context.id, &context.host_id)
        .await;
    shared.monitor.update(|s| {
        s.expired += 1;
        s.cancelled_calls += cancelled as u64;
    });
    shared.monitor.emit(|| NodeEvent::Expired {
        peer: shared.monitor.peer.clone(),
        particle_id: context.id.clone(),
        cancelled_calls: cancelled,
    });
    ActorEnd::Over
}

/// A particle's share of [`NodeStats::working_particles`]: counted while set, and no
/// longer once dropped.
struct Working {
    monitor: Arc<Monitor>,
    counted: bool,
}

impl Working {
    fn start(monitor: Arc<Monitor>) -> Self {
        monitor.update(|s| s.working_particles += 1);
        Working {
            monitor,
            counted: true,
        }
    }

    fn set(&mut self, working: bool) {
        if working != self.counted {
            self.counted = working;
            self.monitor.update(|s| {
                if working {
                    s.working_particles += 1;
                } else {
                    s.working_particles = s.working_particles.saturating_sub(1);
                }
            });
        }
    }
}

impl Drop for Working {
    fn drop(&mut self) {
        self.set(false);
    }
}

/// The snapshot this node persisted of a particle before, if any (one that cannot be
/// read is logged and counted, and the particle starts afresh).
async fn restore(shared: &Shared, key: &StoreKey) -> Option<Snapshot> {
    let bytes = match shared.store.as_ref()?.read(key).await {
        Ok(bytes) => bytes?,
        Err(e) => {
            tracing::error!(particle_id = %key.particle_id, "cannot read the particle's data: {e}");
            shared.monitor.update(|s| s.store_failures += 1);
            return None;
        }
    };
    match StoredParticle::decode(&bytes) {
        Ok(stored) => Some(stored.snapshot),
        Err(e) => {
            tracing::error!(particle_id = %key.particle_id, "the particle's stored data is unreadable: {e}");
            shared.monitor.update(|s| s.store_failures += 1);
            None
        }
    }
}

/// What the store holds of a particle: the particle itself (without data) and its
/// last [`Snapshot`], as MessagePack `[1, particle, snapshot]`; a particle that runs
/// on one of the node's workers, `[2, particle, snapshot, worker peer id]`.
struct StoredParticle {
    particle: Particle,
    snapshot: Snapshot,
    worker: Option<String>,
}

impl StoredParticle {
    fn encode(particle: &[u8], snapshot: &Snapshot, worker: Option<&str>) -> Vec<u8> {
        let particle = serde_bytes::Bytes::new(particle);
        let snapshot = serde_bytes::ByteBuf::from(snapshot.encode());
        // Invariant: integers, byte strings and a string always serialize.
        match worker {
            None => rmp_serde::to_vec(&(1u8, particle, snapshot)),
            Some(worker) => rmp_serde::to_vec(&(2u8, particle, snapshot, worker)),
        }
        .expect("a stored particle serializes")
    }

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        type Format1 = (u8, serde_bytes::ByteBuf, serde_bytes::ByteBuf);
        type Format2 = (u8, serde_bytes::ByteBuf, serde_bytes::ByteBuf, String);
        let (version, particle, snapshot, worker) = match rmp_serde::from_slice::<Format2>(bytes) {
            Ok((v, p, s, w)) => (v, p, s, Some(w)),
            Err(_) => {
                let (v, p, s): Format1 = rmp_serde::from_slice(bytes)
                    .map_err(|e| format!("not a stored particle: {e}"))?;
                (v, p, s, None)
            }
        };
        if version != 1 + u8::from(worker.is_some()) {
            return Err(format!(
                "a stored particle of format {version}; this node reads formats 1 and 2"
            ));
        }
        Ok(StoredParticle {
            particle: Particle::decode(&particle).map_err(|e| e.to_string())?,
            snapshot: Snapshot::decode(&snapshot).map_err(|e| e.to_string())?,
            worker,
        })
    }
}

/// Writes one invocation's record (inputs and outcome) to `dir/name.json`, off the
/// runtime's threads.
async fn write_record(
    dir: &std::path::Path,
    name: String,
    script: &str,
    params: &RunParams,
    input: InvokeInput,
    outcome: &braid_interpreter::Outcome,
) {
    let record = InvokeRecord {
        script: script.to_owned(),
        prev_data: input.prev_data.to_vec(),
        data: input.data.to_vec(),
        params: params.clone(),
        call_results: input.call_results,
        outcome: outcome.clone(),
    };
    let dir = dir.to_owned();
    let written = tokio::task::spawn_blocking(move || record.write(&dir, &name)).await;
    if !matches!(written, Ok(Ok(()))) {
        tracing::error!(particle_id = %params.particle_id, "cannot write the invocation record: {written:?}");
    }
}

/// Sends the particle to each peer, concurrently, each with the send timeout; failures
/// are logged and counted, and answer the `execute` call waiting for the particle.
fn send(
    shared: &Arc<Shared>,
    particle: &Particle,
    peers: Vec<String>,
    session: Option<Arc<Session>>,
) {
    let bytes = particle.encode();
    let deadline_ms = particle.deadline().unwrap_or(u64::MAX);
    for to in peers {
        let shared = Arc::clone(shared);
        let bytes = bytes.clone();
        let particle_id = particle.id.clone();
        let (init_peer_id, signature) = (particle.init_peer_id.clone(), particle.signature.clone());
        let session = session.clone();
        let local = shared.workers.contains(&to).then(|| particle.clone());
        tokio::spawn(async move {
            let sent = if to == shared.key.peer_id() {
                shared
                    .inbox
                    .deliver(bytes)
                    .await
                    .map_err(SendError::Refused)
            } else if let Some(particle) = local {
                // One of this node's workers: the particle stays here.
                shared
                    .inbox
                    .enqueue_worker(particle, to.clone())
                    .await
                    .map_err(SendError::Refused)
            } else {
                match tokio::time::timeout(
                    shared.config.send_timeout,
                    shared.network.send(&to, bytes, deadline_ms),
                )
                .await
                {
                    Ok(sent) => sent,
                    Err(_) => Err(SendError::Transport(format!(
                        "timed out after {} ms",
                        shared.config.send_timeout.as_millis()
                    ))),
                }
            };
            match sent {
                Ok(()) => shared.monitor.update(|s| s.sent += 1),
                Err(error) => {
                    tracing::warn!(
                        peer = %shared.monitor.peer,
                        particle_id = %particle_id,
                        to = %to,
                        "particle not sent: {error}"
                    );
                    shared.monitor.update(|s| s.send_failures += 1);
                    if let Some(session) = &session {
                        session.resolve(Err(ExecuteError::Undeliverable {
                            from: shared.key.peer_id().to_owned(),
                            to: to.clone(),
                            reason: error.to_string(),
                        }));
                    }
                    shared.monitor.emit(|| NodeEvent::SendFailed {
                        peer: shared.monitor.peer.clone(),
                        particle_id: particle_id.clone(),
                        to: to.clone(),
                        error: error.clone(),
                    });
                    // Another peer started it: tell that peer, whose `execute` waits.
                    if session.is_none() && init_peer_id != shared.key.peer_id() {
                        notify_init_peer(
                            &shared,
                            init_peer_id,
                            particle_id,
                            signature,
                            &to,
                            error.to_string(),
                        )
                        .await;
                    }
                }
            }
        });
    }
}

/// A particle's invocation asked for more call requests than its budget: logged,
/// counted, and told to its `execute` session or, when another peer started it, to
/// that peer (undeliverable from this node to itself, with the reason).
async fn drop_over_budget(
    shared: &Shared,
    particle: &Particle,
    session: Option<&Session>,
    message: String,
) {
    let reason = format!("dropped: {message}");
    tracing::error!(
        peer = %shared.monitor.peer,
        particle_id = %particle.id,
        init_peer_id = %particle.init_peer_id,
        budget = shared.config.max_particle_bytes,
        "particle dropped, over its memory budget: {message}"
    );
    shared.monitor.update(|s| {
        s.failed_invokes += 1;
        s.particles_over_budget += 1;
    });
    let me = shared.key.peer_id();
    match session {
        Some(session) => session.resolve(Err(ExecuteError::Undeliverable {
            from: me.to_owned(),
            to: me.to_owned(),
            reason,
        })),
        None if particle.init_peer_id != me => {
            notify_init_peer(
                shared,
                particle.init_peer_id.clone(),
                particle.id.clone(),
                particle.signature.clone(),
                me,
                reason,
            )
            .await;
        }
        None => {}
    }
}

/// Tells a particle's init peer that this node could not send it on to `to`, or (with
/// `to` this node) could not run it (best effort: a notice that cannot be sent either
/// is logged).
async fn notify_init_peer(
    shared: &Shared,
    init_peer_id: String,
    particle_id: String,
    signature: Vec<u8>,
    to: &str,
    reason: String,
) {
    let notice = Undeliverable {
        init_peer_id,
        particle_id,
        signature,
        from: shared.key.peer_id().to_owned(),
        to: to.to_owned(),
        reason,
    };
    let init_peer_id = notice.init_peer_id.clone();
    let particle_id = notice.particle_id.clone();
    if let Err(e) = shared.network.notify_undeliverable(notice).await {
        tracing::warn!(
            peer = %shared.monitor.peer,
            particle_id = %particle_id,
            init_peer_id = %init_peer_id,
            "cannot tell the init peer that the particle is undeliverable: {e}"
        );
    }
}

/// A call's arguments counted against its particle's and the node's budgets, until
/// the call ends (or is cancelled).
struct CallHeld {
    shared: Arc<Shared>,
    particle: Arc<std::sync::atomic::AtomicUsize>,
    bytes: usize,
}

impl CallHeld {
    /// Counts `request`'s arguments if they fit both budgets (the particle's counts its
    /// script too); `None` if not.
    fn take(
        shared: &Arc<Shared>,
        particle: &Arc<std::sync::atomic::AtomicUsize>,
        script_bytes: usize,
        request: &CallRequest,
    ) -> Option<Self> {
        use std::sync::atomic::Ordering;
        let bytes = request.arguments.len();
        let limit = shared.config.max_particle_bytes;
        particle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (script_bytes + held + bytes <= limit).then_some(held + bytes)
            })
            .ok()?;
        if !shared.call_bytes.take(bytes) {
            particle.fetch_sub(bytes, Ordering::AcqRel);
            return None;
        }
        Some(CallHeld {
            shared: Arc::clone(shared),
            particle: Arc::clone(particle),
            bytes,
        })
    }
}

impl CallHeld {
    /// Holds an answer of `bytes` instead of the call's arguments, if that fits both
    /// budgets; if not, holds nothing.
    fn hold_answer(&mut self, script_bytes: usize, bytes: usize) -> bool {
        use std::sync::atomic::Ordering;
        let limit = self.shared.config.max_particle_bytes;
        self.particle.fetch_sub(self.bytes, Ordering::AcqRel);
        self.shared.call_bytes.give_back(self.bytes);
        self.bytes = 0;
        if self
            .particle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (script_bytes + held + bytes <= limit).then_some(held + bytes)
            })
            .is_err()
        {
            return false;
        }
        if !self.shared.call_bytes.take(bytes) {
            self.particle.fetch_sub(bytes, Ordering::AcqRel);
            return false;
        }
        self.bytes = bytes;
        true
    }
}

impl Drop for CallHeld {
    fn drop(&mut self) {
        self.particle
            .fetch_sub(self.bytes, std::sync::atomic::Ordering::AcqRel);
        self.shared.call_bytes.give_back(self.bytes);
    }
}

/// Performs one call request: client conventions, built-ins, registered services,
/// deployed services, or "not found"; within the init peer's quota, with the call
/// timeout. `peer.timeout` holds no call slot while it sleeps (at most until the
/// particle's deadline); everything that computes runs off the runtime's threads.
async fn perform_call(
    shared: Arc<Shared>,
    session: Option<Arc<Session>>,
    particle: ParticleContext,
    request: Arc<CallRequest>,
) -> (u32, CallResult) {
    // Big arguments are parsed on the blocking threads (from the request the particle's
    // machine shares: the arguments are never copied).
    let parsed = if request.arguments.len() > 64 * 1024 {
        let request = Arc::clone(&request);
        tokio::task::spawn_blocking(move || parse_arguments(&request.arguments))
            .await
            .unwrap_or_else(|e| Err(format!("internal error: {e}")))
    } else {
        parse_arguments(&request.arguments)
    };
    let args = match parsed {
        Ok(args) => args,
        Err(message) => {
            return (
                request.id,
                CallResult::error(1, Value::String(message).to_string()),
            );
        }
    };
    let call = Arc::new(ServiceCall {
        service_id: request.service_id.clone(),
        function_name: request.function_name.clone(),
        args,
        tetraplets: request.tetraplets.clone(),
        particle,
    });
    let timeout = shared.config.call_timeout;
    let result = match shared.quotas.take(&call.particle.init_peer_id) {
        Err(refused) => Err(refused),
        Ok(_turn) if builtins::sleeps(&call) => answer(&shared, session.as_deref(), &call).await,
        Ok(_turn) => {
            // Invariant: the semaphore is never closed.
            let _slot = shared
                .call_slots
                .acquire()
                .await
                .expect("call slots stay open");
            match tokio::time::timeout(timeout, answer(&shared, session.as_deref(), &call)).await {
                Ok(result) => result,
                Err(_) => {
                    shared.monitor.update(|s| s.call_timeouts += 1);
                    Err(ServiceError::new(format!(
                        "service call {}.{} timed out after {} ms",
                        call.service_id,
                        call.function_name,
                        timeout.as_millis()
                    )))
                }
            }
        }
    };
    shared.monitor.update(|s| s.calls += 1);
    let call_result = to_call_result(&result);
    shared.monitor.emit(|| NodeEvent::Call {
        peer: shared.monitor.peer.clone(),
        particle_id: call.particle.id.clone(),
        service: call.service_id.clone(),
        function: call.function_name.clone(),
        args: call.args.clone(),
        result,
    });
    // The execute call resolves after the call is reported, so that observers have
    // seen every call when it returns.
    if let Some(session) = &session {
        if let Some(outcome) = session_outcome(&call) {
            session.resolve(outcome);
        }
    }
    (request.id, call_result)
}

/// A call's arguments: a JSON array.
fn parse_arguments(arguments: &str) -> Result<Vec<Value>, String> {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Array(args)) => Ok(args),
        _ => Err(format!(
            "internal error: call arguments are not a JSON array: {}",
            arguments.chars().take(200).collect::<String>()
        )),
    }
}

/// What a call of the client conventions tells the `execute` caller: the response, or
/// the script's error.
fn session_outcome(call: &ServiceCall) -> Option<Result<Value, ExecuteError>> {
    match (call.service_id.as_str(), call.function_name.as_str()) {
        ("callbackSrv", "response") => Some(Ok(match call.args.as_slice() {
            [] => Value::Null,
            [one] => one.clone(),
            many => Value::Array(many.to_vec()),
        })),
        ("errorHandlingSrv", "error") => Some(Err(ExecuteError::Script(
            call.args.first().cloned().unwrap_or(Value::Null),
        ))),
        _ => None,
    }
}

/// The service registry, in order.
async fn answer(
    shared: &Shared,
    session: Option<&Session>,
    call: &Arc<ServiceCall>,
) -> ServiceResult {
    let (service, function) = (call.service_id.as_str(), call.function_name.as_str());
    if let Some(session) = session {
        match (service, function) {
            ("getDataSrv", "-relay-") => return Ok(Value::String(shared.relay.clone())),
            ("getDataSrv", name) => {
                if let Some(value) = session.args.get(name) {
                    return Ok(value.clone());
                }
            }
            ("callbackSrv", "response") | ("errorHandlingSrv", "error") => {
                return Ok(Value::Object(Default::default()));
            }
            _ => {}
        }
    }
    if let Some(result) = shared.builtins.answer_spells(call, now_ms()).await {
        return result;
    }
    if let Some(result) = shared.builtins.answer(call, now_ms()).await {
        return result;
    }
    if let Some((service, access)) = shared.registry.find(service) {
        access.allows(call, shared.key.peer_id(), shared.config.owner.as_deref())?;
        return service(ServiceCall::clone(call)).await;
    }
    if let Some(result) = shared.builtins.answer_deployed(call).await {
        return result;
    }
    Err(builtins::unknown(service, function))
}

/// This node's clock: ms since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The tokio instant of a wall-clock time in ms (at most a year ahead).
fn instant_at(ms: u64) -> Instant {
    let ahead = ms.saturating_sub(now_ms()).min(365 * 24 * 3600 * 1000);
    Instant::now() + Duration::from_millis(ahead)
}
