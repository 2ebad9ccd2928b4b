//! What the built-in services `peer` and `kad` may learn from the node's transport:
//! its addresses, who it is connected to, how to reach a peer, and which peers are
//! closest to a key. [`NetworkInfo`] is that small interface; the in-memory network
//! answers what it can; the libp2p transport (`p2p.rs`) answers with its DHT.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::network::{MemoryNetwork, NoNetwork};
use crate::services::BoxFuture;

/// How to reach a peer: its id and the addresses it is known by (Nox's `Contact`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact {
    /// The peer id.
    pub peer_id: String,
    /// Its addresses (multiaddrs, or whatever the transport dials).
    pub addresses: Vec<String>,
}

/// The node's view of the network, for `peer.identify`, `peer.is_connected`,
/// `peer.connect`, `peer.get_contact` and `kad.*`. Every method has a default that knows
/// nothing, so a transport implements what it can answer.
pub trait NetworkInfo: Send + Sync + 'static {
    /// The addresses this node listens on.
    fn listen_addresses(&self) -> Vec<String> {
        Vec::new()
    }

    /// The addresses others reach this node by (configured or observed).
    fn external_addresses(&self) -> Vec<String> {
        Vec::new()
    }

    /// Whether this node has a connection to the peer now.
    fn is_connected(&self, _peer_id: &str) -> bool {
        false
    }

    /// Connects to the peer (at these addresses, if given); true when connected.
    fn connect(&self, _peer_id: &str, _addresses: Vec<String>) -> BoxFuture<bool> {
        Box::pin(async { false })
    }

    /// How to reach the peer, if this node knows.
    fn contact(&self, _peer_id: &str) -> BoxFuture<Option<Contact>> {
        Box::pin(async { None })
    }

    /// Up to `count` known peers closest to `key` (a multihash) by XOR distance.
    fn neighborhood(&self, _key: Vec<u8>, _count: usize) -> BoxFuture<Vec<String>> {
        Box::pin(async { Vec::new() })
    }
}

/// The Kademlia distance key of a byte string: its SHA-256 (as libp2p's `KBucketKey`).
pub(crate) fn kad_key(preimage: &[u8]) -> [u8; 32] {
    Sha256::digest(preimage).into()
}

/// XOR distance of two keys, comparable as a big-endian number.
pub(crate) fn distance(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut d = [0u8; 32];
    for (i, out) in d.iter_mut().enumerate() {
        *out = a[i] ^ b[i];
    }
    d
}

/// The `count` peers closest to `key` (a multihash), each peer keyed by the SHA-256 of
/// its id's text.
pub(crate) fn closest(key: &[u8], peers: Vec<String>, count: usize) -> Vec<String> {
    let target = kad_key(key);
    let mut keyed: Vec<([u8; 32], String)> = peers
        .into_iter()
        .map(|p| (distance(&target, &kad_key(p.as_bytes())), p))
        .collect();
    keyed.sort();
    keyed.dedup_by(|a, b| a.1 == b.1);
    keyed.into_iter().take(count).map(|(_, p)| p).collect()
}

impl NetworkInfo for NoNetwork {}

impl NetworkInfo for MemoryNetwork {
    fn is_connected(&self, peer_id: &str) -> bool {
        self.peers().iter().any(|p| p == peer_id)
    }

    fn connect(&self, peer_id: &str, _addresses: Vec<String>) -> BoxFuture<bool> {
        let known = self.is_connected(peer_id);
        Box::pin(async move { known })
    }

    fn contact(&self, peer_id: &str) -> BoxFuture<Option<Contact>> {
        let contact = self.is_connected(peer_id).then(|| Contact {
            peer_id: peer_id.to_owned(),
            addresses: Vec::new(),
        });
        Box::pin(async move { contact })
    }

    fn neighborhood(&self, key: Vec<u8>, count: usize) -> BoxFuture<Vec<String>> {
        let peers = self.peers();
        Box::pin(async move { closest(&key, peers, count) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_orders_by_xor_distance_and_dedups() {
        let peers: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
        let mut doubled = peers.clone();
        doubled.extend(peers.clone());
        let near = closest(b"key", doubled, 3);
        assert_eq!(near.len(), 3);
        let target = kad_key(b"key");
        let mut all: Vec<_> = peers
            .iter()
            .map(|p| (distance(&target, &kad_key(p.as_bytes())), p.clone()))
            .collect();
        all.sort();
        let expected: Vec<String> = all.into_iter().take(3).map(|(_, p)| p).collect();
        assert_eq!(near, expected);
    }
}
