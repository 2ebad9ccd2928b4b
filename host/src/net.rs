//! The encrypted TCP transport: how nodes on different machines exchange particles.
//!
//! A connection starts with a Noise `XX` handshake (`Noise_XX_25519_ChaChaPoly_BLAKE2s`,
//! the pattern Kinode uses) whose payloads bind each side's Noise static key to its
//! ed25519 node key ([`HandshakePayload`]), so each side knows the peer id it talks to.
//! Then both sides exchange [`Message`]s, each an encrypted length-prefixed frame
//! ([`frame`] has the wire layout) holding MessagePack. The encodings themselves (frame
//! header, handshake payload, messages, [`NetError`]) live in `braid-wire`, which the
//! fuzz targets use without the host; this module runs the sessions. [`TcpNetwork`]
//! implements [`crate::Network`] over such connections: one per peer pair, reused,
//! dialled again with backoff, closed when idle; a particle is retried within its ttl
//! and every one that cannot be delivered is reported, never dropped silently.
//!
//! Message kinds (see [`Message`]): `Particle` (a particle for the receiving node,
//! answered by `Ack`), `Forward` (a particle the receiving node relays to another peer,
//! answered by `Ack` once that peer has taken it), `StatusRequest` (answered by
//! `Status`, what `braid status` prints), `Undeliverable` (a notice to a particle's init
//! peer that a node gave up sending it on; not answered, passed on once by a relay when
//! it comes from the peer that gave up, and taken by the init peer only for a particle
//! it started and still waits on, whose `execute` then ends at once).
//!
//! Hostile input (garbage, oversized or truncated frames, a wrong identity signature, a
//! replayed handshake, floods of connections) closes that one connection with a logged
//! and counted reason ([`NetStats::closed`]); the node serves everyone else.

mod config;
pub mod frame;
mod handshake;
mod tcp;

pub use braid_wire::{
    HandshakePayload, Message, NetError, PAYLOAD_VERSION, Status, binding_message,
    decode_frame_header,
};
pub use config::{NetConfig, Route};
pub use handshake::{NOISE_PARAMS, PROLOGUE};
pub use tcp::{NetStats, TcpNetwork};

/// Noise failures (a handshake message or frame that does not decrypt) as the
/// connection error that closes the connection.
pub(crate) fn noise_error(e: snow::Error) -> NetError {
    NetError::Noise(e.to_string())
}
