//! What can go wrong in braid-net, as one error type.

use libp2p::{Multiaddr, PeerId};

/// An error of the network.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// An invalid setting.
    #[error("invalid network configuration: {0}")]
    Config(String),
    /// Building the transports failed.
    #[error("setting up the transports failed: {0}")]
    Transport(String),
    /// An address could not be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        #[source]
        source: libp2p::TransportError<std::io::Error>,
    },
    /// A dial of [`crate::NetworkHandle::connect`] failed (refused, unreachable, or
    /// another peer than the `/p2p/` one answered).
    #[error("dialing {addr} failed: {reason}")]
    Dial {
        /// The address.
        addr: Multiaddr,
        /// Why, in words (libp2p's dial error, which is not `Clone`).
        reason: String,
    },
    /// A particle or notice could not be delivered before its deadline.
    #[error("could not deliver to {peer} after {attempts} attempt(s): {reason}")]
    Undeliverable {
        /// The peer.
        peer: PeerId,
        /// Attempts made.
        attempts: u32,
        /// Why the last one failed.
        reason: String,
    },
    /// A Kademlia query failed.
    #[error("kademlia lookup failed: {0}")]
    Lookup(String),
    /// The network's loop has stopped (every handle dropped, or the runtime shut down).
    #[error("the network has stopped")]
    Stopped,
}
