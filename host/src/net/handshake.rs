//! The Noise `XX` handshake and its payload, which binds each side's Noise static key
//! to its node key.
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
use snow::{HandshakeState, StatelessTransportState};
use tokio::io::{AsyncRead, AsyncWrite};

use super::NetError;
use super::frame::{NOISE_MAX_MESSAGE, read_handshake, write_handshake};
use crate::identity::{NodeKey, public_key_of_peer_id};

/// The Noise protocol of every connection.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
/// The Noise prologue: both sides must agree on it, or the handshake fails.
pub const PROLOGUE: &[u8] = b"braid transport v1";
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

/// A finished handshake.
pub(crate) struct Established {
    pub(crate) noise: StatelessTransportState,
    /// The authenticated peer.
    pub(crate) peer_id: String,
    /// Where it accepts connections, as it says.
    pub(crate) listen: Option<String>,
}

fn builder() -> snow::Builder<'static> {
    // Invariant: NOISE_PARAMS is a valid pattern name.
    snow::Builder::new(NOISE_PARAMS.parse().expect("valid noise parameters"))
}

fn start(initiator: bool) -> Result<(HandshakeState, Vec<u8>), NetError> {
    let b = builder();
    let keys = b.generate_keypair()?;
    let b = b.local_private_key(&keys.private)?.prologue(PROLOGUE)?;
    let state = if initiator {
        b.build_initiator()?
    } else {
        b.build_responder()?
    };
    Ok((state, keys.public))
}

fn check_remote(state: &HandshakeState, payload: &[u8]) -> Result<HandshakePayload, NetError> {
    let payload = HandshakePayload::decode(payload)?;
    let remote = state
        .get_remote_static()
        .ok_or_else(|| NetError::Noise("no remote static key".into()))?;
    payload.verify(remote)?;
    Ok(payload)
}

/// Runs the handshake as the side that connected.
pub(crate) async fn initiate(
    io: &mut (impl AsyncRead + AsyncWrite + Unpin),
    key: &NodeKey,
    listen: Option<String>,
) -> Result<Established, NetError> {
    let (mut state, static_key) = start(true)?;
    let mut buf = vec![0u8; NOISE_MAX_MESSAGE];
    let n = state.write_message(&[], &mut buf)?;
    write_handshake(io, &buf[..n]).await?;
    let message = read_handshake(io).await?;
    let n = state.read_message(&message, &mut buf)?;
    let remote = check_remote(&state, &buf[..n])?;
    let mine = HandshakePayload::new(key, &static_key, listen).encode();
    let n = state.write_message(&mine, &mut buf)?;
    write_handshake(io, &buf[..n]).await?;
    Ok(Established {
        noise: state.into_stateless_transport_mode()?,
        peer_id: remote.peer_id,
        listen: remote.listen,
    })
}

/// Runs the handshake as the side that accepted.
pub(crate) async fn respond(
    io: &mut (impl AsyncRead + AsyncWrite + Unpin),
    key: &NodeKey,
    listen: Option<String>,
) -> Result<Established, NetError> {
    let (mut state, static_key) = start(false)?;
    let mut buf = vec![0u8; NOISE_MAX_MESSAGE];
    let message = read_handshake(io).await?;
    state.read_message(&message, &mut buf)?;
    let mine = HandshakePayload::new(key, &static_key, listen).encode();
    let n = state.write_message(&mine, &mut buf)?;
    write_handshake(io, &buf[..n]).await?;
    let message = read_handshake(io).await?;
    let n = state.read_message(&message, &mut buf)?;
    let remote = check_remote(&state, &buf[..n])?;
    Ok(Established {
        noise: state.into_stateless_transport_mode()?,
        peer_id: remote.peer_id,
        listen: remote.listen,
    })
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
