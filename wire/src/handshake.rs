//! The payload of the transport's Noise `XX` handshake, which binds each side's Noise
//! static key to its node key (the host runs the handshake itself).
//!
//! ```text
//! initiator → responder   e
//! responder → initiator   e, ee, s, es, payload(responder)
//! initiator → responder   s, se, payload(initiator)
//! ```
//!
//! Each payload ([`HandshakePayload`]) carries the sender's peer id and its ed25519
//! signature over [`binding_message`] of the Noise static key it just sent; the other
//! side checks it against the public key the peer id stands for. Noise static keys are
//! fresh for every connection (as in Kinode), and so are the ephemeral keys: a recorded
//! handshake replayed to a node fails, as the node's new ephemeral key changes every
//! key derived after the first message.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::NetError;
use crate::identity::{NodeKey, public_key_of_peer_id};

/// The handshake payload's version.
pub const PAYLOAD_VERSION: u8 = 1;
/// Domain separation of the binding signature.
const BINDING_CONTEXT: &[u8] = b"braid noise static key v1:";
/// The largest payload read.
const MAX_PAYLOAD: usize = 1024;

/// What each side sends in the handshake: who it is, and its signature binding the Noise
/// static key to that identity. MessagePack `{version, peer_id, signature, listen}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakePayload {
    /// [`PAYLOAD_VERSION`].
    pub version: u8,
    /// The sender's peer id.
    pub peer_id: String,
    /// The ed25519 signature by the sender's node key over
    /// [`binding_message`]`(noise static key)`.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
    /// Where the sender accepts connections, if it does (`host:port`); the other side
    /// adds it to its peer list.
    pub listen: Option<String>,
}

/// What the binding signature covers: a domain-separation string and the Noise static
/// public key.
pub fn binding_message(noise_static: &[u8]) -> Vec<u8> {
    [BINDING_CONTEXT, noise_static].concat()
}

impl HandshakePayload {
    /// The payload of `key` for the Noise static public key `noise_static`.
    pub fn new(key: &NodeKey, noise_static: &[u8], listen: Option<String>) -> Self {
        let signing = SigningKey::from_bytes(key.secret());
        HandshakePayload {
            version: PAYLOAD_VERSION,
            peer_id: key.peer_id().to_owned(),
            signature: signing
                .sign(&binding_message(noise_static))
                .to_bytes()
                .to_vec(),
            listen,
        }
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        // Invariant: strings, bytes and integers always serialize.
        rmp_serde::to_vec_named(self).expect("a handshake payload serializes")
    }

    /// Reads the wire form; checks the format and version, not the signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, NetError> {
        if bytes.len() > MAX_PAYLOAD {
            return Err(NetError::BadPayload(format!(
                "{} bytes, over the limit of {MAX_PAYLOAD}",
                bytes.len()
            )));
        }
        let payload: HandshakePayload =
            rmp_serde::from_slice(bytes).map_err(|e| NetError::BadPayload(e.to_string()))?;
        if payload.version != PAYLOAD_VERSION {
            return Err(NetError::BadPayload(format!(
                "version {} is not supported; this node reads version {PAYLOAD_VERSION}",
                payload.version
            )));
        }
        Ok(payload)
    }

    /// Checks that the peer id's key signed `noise_static`.
    pub fn verify(&self, noise_static: &[u8]) -> Result<(), NetError> {
        let public = public_key_of_peer_id(&self.peer_id).ok_or_else(|| {
            NetError::BadIdentity(format!("`{}` is not a braid peer id", self.peer_id))
        })?;
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| NetError::BadIdentity(format!("`{}` is not a valid key", self.peer_id)))?;
        let signature: [u8; 64] = self.signature.as_slice().try_into().map_err(|_| {
            NetError::BadIdentity(format!(
                "the signature is {} bytes; expected 64",
                self.signature.len()
            ))
        })?;
        key.verify(
            &binding_message(noise_static),
            &Signature::from_bytes(&signature),
        )
        .map_err(|_| {
            NetError::BadIdentity(format!(
                "the signature of {} does not cover this connection's noise key",
                self.peer_id
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_verifies_for_its_own_noise_key_only() {
        let key = NodeKey::from_secret([3; 32]);
        let payload = HandshakePayload::new(&key, &[9; 32], Some("127.0.0.1:1".into()));
        let decoded = HandshakePayload::decode(&payload.encode()).unwrap();
        assert_eq!(decoded, payload);
        assert_eq!(decoded.verify(&[9; 32]), Ok(()));
        assert_eq!(decoded.verify(&[8; 32]).unwrap_err().kind(), "bad_identity");
    }

    #[test]
    fn another_peer_id_with_a_signature_does_not_verify() {
        let signer = NodeKey::from_secret([3; 32]);
        let mut payload = HandshakePayload::new(&signer, &[9; 32], None);
        payload.peer_id = NodeKey::from_secret([4; 32]).peer_id().to_owned();
        assert_eq!(payload.verify(&[9; 32]).unwrap_err().kind(), "bad_identity");
        payload.peer_id = "not-a-peer".into();
        assert_eq!(payload.verify(&[9; 32]).unwrap_err().kind(), "bad_identity");
    }

    #[test]
    fn garbage_payloads_are_errors() {
        for bytes in [&b""[..], b"\xff\xff", &[0x90; 2000], b"\x84\xa7version\x02"] {
            assert!(HandshakePayload::decode(bytes).is_err(), "{bytes:?}");
        }
    }
}
