//! The braid host: the peer that runs AIR particles, and the `braid` command line.
//!
//! A [`Node`] takes particles in (checked: sizes, the init peer's signature, expiry),
//! runs each with the pure interpreter, performs the service calls it asks for, feeds
//! the results back, and sends the particle on to the next peers. Its driving loop, per
//! particle:
//!
//! ```text
//! let out = invoke(&p.script, &prev, &p.data, &params, &results); // on a big-stack thread
//! prev = out.data;                                                 // kept even on error
//! store.write(&key, deadline, &prev).await?;                       // persist first
//! for req in out.call_requests { calls.spawn(req) }                // concurrently, with timeouts
//! net.send(out.next_peers, p.with_data(prev));
//! // results: all that are ready when the particle is next run, in one invoke
//! ```
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use braid_host::Node;
//! use serde_json::json;
//!
//! let node = Node::builder().build().unwrap();
//! let script = r#"
//!   (seq
//!     (call %init_peer_id% ("getDataSrv" "x") [] x)
//!     (seq
//!       (call %init_peer_id% ("math" "add") [x 1] y)
//!       (call %init_peer_id% ("callbackSrv" "response") [y])))"#;
//! assert_eq!(node.execute(script, [("x", json!(41))]).await, Ok(json!(42)));
//! # }
//! ```
//!
//! Particle data lives in each particle's actor, and with [`NodeBuilder::data_dir`] also
//! in a [`DiskStore`] (atomic writes, expired data removed at start), so a restarted
//! node continues live particles. Every invocation can be recorded
//! ([`NodeBuilder::record_dir`]) and replayed ([`InvokeRecord::replay`]). Nodes of one
//! process talk through a [`MemoryNetwork`].
//!
//! Nodes on different machines talk through a [`P2pNetwork`] ([`p2p`]): braid-net's
//! libp2p network (TCP and WebSocket, Noise, yamux, Kademlia), as the field speaks it.

mod backend;
mod builtins;
mod db;
mod error;
mod identity;
mod intake;
mod invoke_pool;
mod network;
mod network_info;
mod node;
pub mod p2p;
mod record;
mod scheduler;
mod services;
mod spells;
mod signature_cache;
mod store;
mod wasm_service;
mod workers;

pub use backend::{
    Backend, BackendError, EPOCH_TICK, Fault, NativeBackend, WASM_MODULE_SOURCE, WasmBackend,
    WasmLimits, backend_by_name,
};
pub use braid_wire::public_key_of_peer_id;
pub use braid_wire::{
    DEFAULT_CLOCK_SKEW_MS, IntakeLimits, Particle, Rejection, Undeliverable, check, check_expiry,
    check_signature, check_sizes,
};
pub use builtins::BUILTIN_SERVICES;
pub use error::{ExecuteError, HostError};
pub use identity::{NodeKey, check_key_file_mode, create_private_dir};
pub use network::{MemoryNetwork, Network, NoNetwork, SendError};
pub use network_info::{Contact, NetworkInfo};
pub use node::{
    DEFAULT_MAX_TTL_SECS, Inbox, MAX_PARTICLE_ID_BYTES, Node, NodeBuilder, NodeConfig, NodeEvent,
    NodeStats, WeakNode,
};
pub use p2p::P2pNetwork;
pub use record::InvokeRecord;
pub use services::{
    Access, AccessCheck, BoxFuture, ParticleContext, ServiceCall, ServiceError, ServiceResult,
};
pub use store::{DataStore, DiskStore, MemoryStore, StoreKey};
pub use wasm_service::{RunnerPolicy, WasmService, WasmServiceConfig};
