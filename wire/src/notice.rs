//! braid's notice protocol (`/braid/notice/1.0.0`): what braid peers tell each other
//! about particles beyond the field's particle protocol, which other peers simply do
//! not speak. One notice per stream, framed as an unsigned-varint length and a
//! MessagePack map tagged by `kind`: `{kind: "undeliverable", init_peer_id,
//! particle_id, signature, from, to, reason}`,
//! `{kind: "status_request"}` and `{kind: "status", peer_id, …}` ([`Status`]).

use serde::{Deserialize, Serialize};

use crate::length_prefix::{decode_length_prefix, encode_varint};
use std::collections::BTreeMap;

use crate::Rejection;

/// The libp2p protocol name of braid's notices.
pub const NOTICE_PROTOCOL: &str = "/braid/notice/1.0.0";
/// The largest notice frame read, counted after the length prefix.
pub const MAX_NOTICE_BYTES: usize = 64 << 10;

/// One notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Notice {
    /// A peer gave up delivering a particle (for its init peer).
    Undeliverable(Undeliverable),
    /// Asks the receiving node for its [`Status`] (what `braid status` prints); answered
    /// by a `Status` notice on a stream of its own, or not at all when the node answers
    /// only its owner and the asker is not.
    StatusRequest,
    /// A node's answer to `StatusRequest`.
    Status(Status),
    /// A node did not let in a particle this peer sent it (told to the sender).
    Refused(Refused),
}

/// What [`Notice::Refused`] says: which particle a node refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    /// The particle's init peer.
    pub init_peer_id: String,
    /// The particle's id (escaped and shortened when it was refused for its id).
    pub particle_id: String,
    /// The init peer's signature of the particle.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
    /// `Rejection::kind`: a short stable name (`kind` is the notice's tag).
    pub rejection: String,
    /// Why, in words.
    pub reason: String,
}

/// What [`Notice::Undeliverable`] says: which particle did not get from where to
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

/// What `braid status` shows of a node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The node's peer id.
    pub peer_id: String,
    /// Particles with work under way on the node (an invoke, or service calls in
    /// flight); those alive until their deadline are `counters["live_particles"]`.
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

impl Notice {
    /// The MessagePack map.
    pub fn encode(&self) -> Vec<u8> {
        // Invariant: strings and bytes always serialize.
        rmp_serde::to_vec_named(self).expect("a notice serializes")
    }

    /// Reads the MessagePack map.
    pub fn decode(bytes: &[u8]) -> Result<Self, Rejection> {
        rmp_serde::from_slice(bytes).map_err(|e| Rejection::Malformed(format!("notice: {e}")))
    }

    /// The notice as one frame: its length as an unsigned varint, then the map.
    pub fn encode_frame(&self) -> Vec<u8> {
        let body = self.encode();
        let mut out = Vec::with_capacity(body.len() + 3);
        encode_varint(body.len() as u64, &mut out);
        out.extend_from_slice(&body);
        out
    }

    /// Reads exactly one whole frame of at most [`MAX_NOTICE_BYTES`].
    pub fn decode_frame(frame: &[u8]) -> Result<Self, Rejection> {
        let Some((length, at)) = decode_length_prefix(frame, MAX_NOTICE_BYTES)? else {
            return Err(Rejection::Malformed(
                "the notice ends inside its length prefix".into(),
            ));
        };
        if frame.len() - at != length {
            return Err(Rejection::Malformed(format!(
                "the notice announces {length} bytes but carries {}",
                frame.len() - at
            )));
        }
        Self::decode(&frame[at..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_tagged_by_kind() {
        let notice = Notice::Undeliverable(Undeliverable {
            init_peer_id: "a".into(),
            particle_id: "p-1".into(),
            signature: vec![7; 64],
            from: "b".into(),
            to: "c".into(),
            reason: "no route".into(),
        });
        let bytes = notice.encode();
        assert_eq!(&bytes[1..6], b"\xa4kind");
        assert_eq!(&bytes[6..20], b"\xadundeliverable");
        assert_eq!(Notice::decode(&bytes), Ok(notice.clone()));
        assert_eq!(Notice::decode_frame(&notice.encode_frame()), Ok(notice));
        let request = Notice::StatusRequest;
        assert_eq!(request.encode(), b"\x81\xa4kind\xaestatus_request");
        assert_eq!(Notice::decode_frame(&request.encode_frame()), Ok(request));
        let status = Notice::Status(Status {
            peer_id: "a".into(),
            connected_peers: vec!["b".into()],
            counters: [("accepted".to_owned(), 3)].into(),
            memory_bytes: Some(1 << 20),
            ..Status::default()
        });
        assert_eq!(Notice::decode_frame(&status.encode_frame()), Ok(status));
        let refused = Notice::Refused(Refused {
            init_peer_id: "a".into(),
            particle_id: "p-2".into(),
            signature: vec![1; 64],
            rejection: "ttl_too_long".into(),
            reason: "ttl of 9 ms is over this node's cap of 5 ms".into(),
        });
        assert_eq!(Notice::decode_frame(&refused.encode_frame()), Ok(refused));
        assert!(Notice::decode(b"\x81\xa4kind\xa5other").is_err());
        assert!(Notice::decode_frame(b"\x05\x01").is_err());
    }
}
