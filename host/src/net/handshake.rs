//! The Noise `XX` handshake and its payload, which binds each side's Noise static key
//! to its node key.
//!
//! ```text
//! initiator → responder   e
//! responder → initiator   e, ee, s, es, payload(responder)
//! initiator → responder   s, se, payload(initiator)
//! ```
//!
//! Each payload (`braid_wire::HandshakePayload`) carries the sender's peer id and its
//! ed25519 signature over `braid_wire::binding_message` of the Noise static key it just sent; the other
//! side checks it against the public key the peer id stands for. Noise static keys are
//! fresh for every connection (as in Kinode), and so are the ephemeral keys: a recorded
//! handshake replayed to a node fails, as the node's new ephemeral key changes every
//! key derived after the first message.

use braid_wire::HandshakePayload;
use snow::{HandshakeState, StatelessTransportState};
use tokio::io::{AsyncRead, AsyncWrite};

use super::frame::{NOISE_MAX_MESSAGE, read_handshake, write_handshake};
use super::{NetError, noise_error};
use crate::identity::NodeKey;

/// The Noise protocol of every connection.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
/// The Noise prologue: both sides must agree on it, or the handshake fails.
pub const PROLOGUE: &[u8] = b"braid transport v1";

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
    let keys = b.generate_keypair().map_err(noise_error)?;
    let b = b
        .local_private_key(&keys.private)
        .and_then(|b| b.prologue(PROLOGUE))
        .map_err(noise_error)?;
    let state = if initiator {
        b.build_initiator().map_err(noise_error)?
    } else {
        b.build_responder().map_err(noise_error)?
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
    let n = state.write_message(&[], &mut buf).map_err(noise_error)?;
    write_handshake(io, &buf[..n]).await?;
    let message = read_handshake(io).await?;
    let n = state
        .read_message(&message, &mut buf)
        .map_err(noise_error)?;
    let remote = check_remote(&state, &buf[..n])?;
    let mine = HandshakePayload::new(key, &static_key, listen).encode();
    let n = state.write_message(&mine, &mut buf).map_err(noise_error)?;
    write_handshake(io, &buf[..n]).await?;
    Ok(Established {
        noise: state.into_stateless_transport_mode().map_err(noise_error)?,
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
    state
        .read_message(&message, &mut buf)
        .map_err(noise_error)?;
    let mine = HandshakePayload::new(key, &static_key, listen).encode();
    let n = state.write_message(&mine, &mut buf).map_err(noise_error)?;
    write_handshake(io, &buf[..n]).await?;
    let message = read_handshake(io).await?;
    let n = state
        .read_message(&message, &mut buf)
        .map_err(noise_error)?;
    let remote = check_remote(&state, &buf[..n])?;
    Ok(Established {
        noise: state.into_stateless_transport_mode().map_err(noise_error)?,
        peer_id: remote.peer_id,
        listen: remote.listen,
    })
}
