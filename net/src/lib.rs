//! braid's network on libp2p, speaking what the field speaks: TCP and WebSocket
//! transports upgraded with multistream-select, Noise and yamux; identify (protocol
//! version `/fluence/particle/2.0.0`), ping, Kademlia (`/fluence/kad/<network>/1.0.0`,
//! peer routing, server mode, memory store, bootstrap peers), connection limits, the
//! particle protocol `/fluence/particle/2.0.0` (one frame per stream, the frame of
//! `braid_wire::encode_particle_frame`), and braid's own `/braid/notice/1.0.0`.
//!
//! [`Network::start`] gives a [`NetworkHandle`] (send a particle to a peer id, dialing
//! and looking peers up as needed; connect; neighborhood; addresses and connections)
//! and a receiver of [`NetEvent`]s (particles, notices, refused streams, connections).
//! A peer whose identify lacks the particle protocol is disconnected, as Nox does.
//!
//! The crate knows nothing of the node: particles come out format-checked only, and the
//! node runs the intake checks and decides where they go.

mod config;
mod error;
mod ip_limits;
mod network;
mod protocol;

pub use config::{ConnectionLimits, NetConfig};
pub use error::NetworkError;
pub use libp2p::{Multiaddr, PeerId};
pub use network::{NetEvent, NetStats, Network, NetworkHandle, peer_id_of_secret};
