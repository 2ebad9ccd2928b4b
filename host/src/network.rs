//! How nodes reach each other. A [`Network`] sends an encoded particle to a peer id; a
//! node receives through its [`crate::Inbox`]. [`MemoryNetwork`] connects nodes of one
//! process through their inboxes (for tests and `braid run --peers N`); the libp2p
//! transport ([`crate::p2p::P2pNetwork`]) implements the same trait.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::network_info::NetworkInfo;
use crate::node::{Inbox, Node, WeakNode};
use crate::services::BoxFuture;
use braid_wire::{Rejection, Undeliverable};

/// Sends encoded particles to peers.
pub trait Network: Send + Sync + 'static {
    /// Sends `particle` (the wire form) to the peer `to`. Resolves when the peer has
    /// taken it (or the transport has), or with why it could not be delivered; a
    /// transport that retries stops at `deadline_ms` (the particle's deadline, Unix ms).
    fn send(
        &self,
        to: &str,
        particle: Vec<u8>,
        deadline_ms: u64,
    ) -> BoxFuture<Result<(), SendError>>;

    /// Tells a particle's init peer (`notice.init_peer_id`) that this node gave up
    /// sending it on, so that an `execute` waiting there ends at once (the receiving
    /// transport hands it to [`Node::handle_undeliverable`]). Best effort: nothing
    /// answers a notice. The default carries no notices and says so.
    /// What this transport knows of the network, for the built-ins `peer` and `kad`.
    /// The default knows nothing.
    fn info(&self) -> &dyn NetworkInfo {
        &NoNetwork
    }

    fn notify_undeliverable(&self, notice: Undeliverable) -> BoxFuture<Result<(), SendError>> {
        Box::pin(async move {
            Err(SendError::Transport(format!(
                "this network carries no notices (for {})",
                notice.init_peer_id
            )))
        })
    }
}

/// Why a particle did not reach a peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The network knows no route to that peer.
    #[error("peer {0} is unreachable")]
    Unreachable(String),
    /// The peer refused the particle.
    #[error("peer refused the particle: {0}")]
    Refused(Rejection),
    /// The transport failed.
    #[error("transport error: {0}")]
    Transport(String),
}

/// No network: every send fails (a node on its own).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoNetwork;

impl Network for NoNetwork {
    fn send(&self, to: &str, _particle: Vec<u8>, _: u64) -> BoxFuture<Result<(), SendError>> {
        let to = to.to_owned();
        Box::pin(async move { Err(SendError::Unreachable(to)) })
    }
}

/// Nodes of one process, connected by their inboxes.
#[derive(Default)]
pub struct MemoryNetwork {
    inboxes: RwLock<HashMap<String, Inbox>>,
    nodes: RwLock<HashMap<String, WeakNode>>,
}

impl MemoryNetwork {
    /// An empty network.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Makes `node` reachable by its peer id.
    pub fn attach(&self, node: &Node) {
        self.inboxes
            .write()
            .expect("the inbox table lock is never poisoned")
            .insert(node.peer_id().to_owned(), node.inbox());
        self.nodes
            .write()
            .expect("the node table lock is never poisoned")
            .insert(node.peer_id().to_owned(), node.downgrade());
    }

    /// The peers attached now, sorted.
    pub(crate) fn peers(&self) -> Vec<String> {
        let mut peers: Vec<String> = self
            .inboxes
            .read()
            .expect("the inbox table lock is never poisoned")
            .keys()
            .cloned()
            .collect();
        peers.sort();
        peers
    }

    /// Makes a peer unreachable (as if it went offline).
    pub fn detach(&self, peer_id: &str) {
        self.inboxes
            .write()
            .expect("the inbox table lock is never poisoned")
            .remove(peer_id);
        self.nodes
            .write()
            .expect("the node table lock is never poisoned")
            .remove(peer_id);
    }
}

impl Network for MemoryNetwork {
    fn info(&self) -> &dyn NetworkInfo {
        self
    }

    fn send(&self, to: &str, particle: Vec<u8>, _: u64) -> BoxFuture<Result<(), SendError>> {
        let inbox = self
            .inboxes
            .read()
            .expect("the inbox table lock is never poisoned")
            .get(to)
            .cloned();
        let to = to.to_owned();
        Box::pin(async move {
            let inbox = inbox.ok_or(SendError::Unreachable(to))?;
            inbox.deliver(particle).await.map_err(SendError::Refused)
        })
    }

    fn notify_undeliverable(&self, notice: Undeliverable) -> BoxFuture<Result<(), SendError>> {
        let node = self
            .nodes
            .read()
            .expect("the node table lock is never poisoned")
            .get(&notice.init_peer_id)
            .and_then(WeakNode::upgrade);
        Box::pin(async move {
            let node = node.ok_or_else(|| SendError::Unreachable(notice.init_peer_id.clone()))?;
            // In one process the sender is known: the notice's `from` is the reporter.
            node.handle_undeliverable(&notice, &notice.from);
            Ok(())
        })
    }
}
