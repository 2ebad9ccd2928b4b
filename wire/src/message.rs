//! What peers say to each other once connected: MessagePack of [`Message`], one per
//! frame.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::NetError;

/// One message on a connection. Every request carries a `seq` chosen by its sender;
/// the answer repeats it. Exhaustive on purpose: the host handles every kind, and a new
/// kind must not compile until it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A particle (its wire form) for the receiving node; answered by `Ack`.
    Particle {
        /// Request number.
        seq: u64,
        /// The encoded particle.
        #[serde(with = "serde_bytes")]
        particle: Vec<u8>,
    },
    /// A particle the receiving node sends on to `to` (it relays for a peer that has
    /// no public address); answered by `Ack` once `to` has taken it or it failed.
    Forward {
        /// Request number.
        seq: u64,
        /// The peer it is for.
        to: String,
        /// The encoded particle.
        #[serde(with = "serde_bytes")]
        particle: Vec<u8>,
    },
    /// The answer to `Particle` and `Forward`: taken, or why not.
    Ack {
        /// The request's number.
        seq: u64,
        /// `None`: the node took the particle; otherwise why it did not.
        refused: Option<String>,
    },
    /// Asks for the node's [`Status`].
    StatusRequest {
        /// Request number.
        seq: u64,
    },
    /// The answer to `StatusRequest`.
    Status {
        /// The request's number.
        seq: u64,
        /// The node's state.
        status: Status,
    },
    /// A notice for a particle's init peer that the sender gave up delivering it; not
    /// answered (best effort). A relay passes on a notice whose `from` is the peer it
    /// came from.
    Undeliverable(Undeliverable),
}

/// What [`Message::Undeliverable`] says: which particle did not get from where to
/// where, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undeliverable {
    /// The particle's init peer, whom the notice is for.
    pub init_peer_id: String,
    /// The particle's id.
    pub particle_id: String,
    /// The init peer's signature of the particle: with the id, it names the particle
    /// the init peer started (ids alone may be reused).
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
    /// The peer that gave up.
    pub from: String,
    /// The peer it could not reach.
    pub to: String,
    /// Why, in words.
    pub reason: String,
}

impl Message {
    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        // Invariant: strings, bytes, integers and maps always serialize.
        rmp_serde::to_vec_named(self).expect("a message serializes")
    }

    /// Reads the wire form.
    pub fn decode(bytes: &[u8]) -> Result<Self, NetError> {
        rmp_serde::from_slice(bytes).map_err(|e| NetError::Malformed(e.to_string()))
    }
}

/// What `braid status` shows of a node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The node's peer id.
    pub peer_id: String,
    /// Particles alive on the node (each until its deadline).
    pub particles_in_flight: u64,
    /// Peers with an open connection.
    pub connected_peers: Vec<String>,
    /// The services the node answers.
    pub services: Vec<String>,
    /// Times a full intake queue made a sender wait.
    pub intake_pressure: u64,
    /// Particles being sent (including retries).
    pub sends_in_flight: u64,
    /// Resident memory of the process, bytes, where the system tells.
    pub memory_bytes: Option<u64>,
    /// The node's and the transport's counters.
    pub counters: BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_an_error() {
        let m = Message::Forward {
            seq: 3,
            to: "braid-x".into(),
            particle: vec![1, 2, 3],
        };
        assert_eq!(Message::decode(&m.encode()), Ok(m));
        let notice = Message::Undeliverable(Undeliverable {
            init_peer_id: "braid-a".into(),
            particle_id: "p-1".into(),
            signature: vec![7; 64],
            from: "braid-b".into(),
            to: "braid-c".into(),
            reason: "peer braid-c is unreachable".into(),
        });
        assert_eq!(Message::decode(&notice.encode()), Ok(notice));
        assert!(Message::decode(b"\xc1garbage").is_err());
        assert!(Message::decode(b"").is_err());
    }
}
