//! braid's wire formats: what nodes and clients put on the wire, and the checks a node
//! makes on what it reads. Pure: no IO, no clock, no randomness, no async.
//!
//! - [`Particle`]: the particle's MessagePack wire form and the intake checks
//!   ([`check`]: sizes, format, the init peer's signature, expiry against a `now` the
//!   caller passes in), with [`Rejection`] saying why one was refused.
//! - [`NodeKey`]: an Ed25519 key pair and its peer id (`braid-` and the public key in
//!   hex); [`public_key_of_peer_id`] reads the key back out of a peer id.
//! - The TCP transport's encodings: the frame header ([`frame`]), the handshake payload
//!   binding a Noise static key to a node key ([`HandshakePayload`]), and the messages of
//!   a connection ([`Message`]), whose decoding errors are [`NetError`]s.
//!
//! ```
//! use braid_wire::{DEFAULT_CLOCK_SKEW_MS, IntakeLimits, NodeKey, Particle, check};
//!
//! let key = NodeKey::from_secret([7; 32]);
//! let now = 1_700_000_000_000;
//! let particle = Particle::new_signed(&key, "p-1".into(), now, 10_000, "(null)".into());
//! let bytes = particle.encode();
//! assert_eq!(check(&bytes, &IntakeLimits::REFERENCE, now, DEFAULT_CLOCK_SKEW_MS), Ok(particle));
//! ```
//!
//! What it does not do: generate keys, read sockets, run the Noise session or encrypt
//! frames; `braid-host` does all of that. This crate exists so that the fuzz targets can
//! reach every decoder of untrusted bytes without depending on the host.

#![warn(missing_docs)]

pub mod frame;
mod handshake;
mod identity;
mod message;
mod net_error;
mod particle;

pub use frame::decode_frame_header;
pub use handshake::{HandshakePayload, PAYLOAD_VERSION, binding_message};
pub use identity::{NodeKey, public_key_of_peer_id};
pub use message::{Message, Status, Undeliverable};
pub use net_error::NetError;
pub use particle::{
    DEFAULT_CLOCK_SKEW_MS, FORMAT_VERSION, IntakeLimits, Particle, Rejection, check, check_expiry,
    check_signature, check_sizes,
};
