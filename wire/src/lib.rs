//! braid's wire formats: what nodes and clients put on the wire, and the checks a node
//! makes on what it reads. Pure: no IO, no clock, no randomness, no async.
//!
//! - [`Particle`]: the particle's wire form, the field's (Nox's and the JS client's)
//!   MessagePack map, its signature scheme, and the intake checks ([`check`]: sizes,
//!   format, the init peer's signature, expiry against a `now` the caller passes in),
//!   with [`Rejection`] saying why one was refused.
//! - The libp2p particle protocol's frame ([`encode_particle_frame`],
//!   [`decode_particle_frame`]: a varint length, the multicodec 0x0201, the map), the
//!   varint length prefix read before any allocation ([`decode_length_prefix`]), and
//!   braid's own [`Notice`]s (`/braid/notice/1.0.0`: undeliverable particles,
//!   status requests and answers).
//! - [`NodeKey`]: an Ed25519 key pair and its peer id (`braid-` and the public key in
//!   hex); [`public_key_of_peer_id`] reads the key back out of a peer id.
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
//! What it does not do: generate keys or read sockets; `braid-net` and `braid-host`
//! do. This crate exists so that the fuzz targets can
//! reach every decoder of untrusted bytes without depending on the host.

#![warn(missing_docs)]

mod identity;
mod length_prefix;
mod notice;
mod particle;
mod particle_frame;

pub use identity::{NodeKey, public_key_of_peer_id};
pub use length_prefix::{MAX_VARINT_BYTES, decode_length_prefix, encode_varint};
pub use notice::{MAX_NOTICE_BYTES, NOTICE_PROTOCOL, Notice, Refused, Status, Undeliverable};
pub use particle::{
    DEFAULT_CLOCK_SKEW_MS, IntakeLimits, PARTICLE_ACTION, Particle, Rejection, check, check_expiry,
    check_signature, check_sizes,
};
pub use particle_frame::{
    DEFAULT_MAX_FRAME_BYTES, PARTICLE_MULTICODEC, PARTICLE_PROTOCOL, PARTICLE_STREAM_PROTOCOL,
    decode_particle_frame, encode_particle_frame, frame_of_encoded, particle_of_frame_body,
};
