//! The encrypted TCP transport: how nodes on different machines exchange particles.
//!
//! A connection starts with a Noise `XX` handshake (`Noise_XX_25519_ChaChaPoly_BLAKE2s`,
//! the pattern Kinode uses) whose payloads bind each side's Noise static key to its
//! ed25519 node key ([`HandshakePayload`]), so each side knows the peer id it talks to.
//! Then both sides exchange [`Message`]s, each an encrypted length-prefixed frame
//! ([`frame`] has the wire layout) holding MessagePack. [`TcpNetwork`] implements
//! [`crate::Network`] over such connections: one per peer pair, reused, dialled again
//! with backoff, closed when idle; a particle is retried within its ttl and every one
//! that cannot be delivered is reported, never dropped silently.
//!
//! Message kinds (see [`Message`]): `Particle` (a particle for the receiving node,
//! answered by `Ack`), `Forward` (a particle the receiving node relays to another peer,
//! answered by `Ack` once that peer has taken it), `StatusRequest` (answered by
//! `Status`, what `braid status` prints).
//!
//! Hostile input (garbage, oversized or truncated frames, a wrong identity signature, a
//! replayed handshake, floods of connections) closes that one connection with a logged
//! and counted reason ([`NetStats::closed`]); the node serves everyone else.

mod config;
pub mod frame;
mod handshake;
mod message;
mod tcp;

pub use config::{NetConfig, NodeSettings, Route, parse_peer};
pub use frame::decode_frame_header;
pub use handshake::{HandshakePayload, NOISE_PARAMS, PAYLOAD_VERSION, PROLOGUE, binding_message};
pub use message::{Message, Status};
pub use tcp::{NetStats, TcpNetwork};

/// What can go wrong on a connection; each closes that connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(String),
    /// The peer closed the connection.
    #[error("the peer closed the connection")]
    Closed,
    /// The peer closed the connection in the middle of a frame.
    #[error("the connection ended in the middle of a frame")]
    Truncated,
    /// Nothing arrived for the idle timeout.
    #[error("idle for {0} ms")]
    Idle(u64),
    /// A step took longer than allowed.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// A frame header announced more than the limit.
    #[error("frame of {size} bytes is over the limit of {limit}")]
    FrameTooLarge {
        /// The announced size.
        size: u64,
        /// The limit.
        limit: usize,
    },
    /// A frame header is not 4 bytes.
    #[error("frame header is {0} bytes; expected 4")]
    BadHeader(usize),
    /// Noise failed: a handshake message or frame did not decrypt (garbage, tampering,
    /// a replayed handshake).
    #[error("noise: {0}")]
    Noise(String),
    /// The handshake payload is not one braid reads.
    #[error("bad handshake payload: {0}")]
    BadPayload(String),
    /// The handshake payload's signature does not bind the Noise key to the peer id.
    #[error("identity check failed: {0}")]
    BadIdentity(String),
    /// The peer is not the one dialled.
    #[error("expected peer {expected}, but {actual} answered")]
    UnexpectedPeer {
        /// The peer id dialled.
        expected: String,
        /// The peer id that answered.
        actual: String,
    },
    /// A message is not MessagePack of a [`Message`].
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Too many connections at once.
    #[error("too many connections ({0})")]
    TooManyConnections(&'static str),
    /// An invalid setting.
    #[error("invalid network configuration: {0}")]
    Config(String),
}

impl NetError {
    /// A short stable name for counters and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            NetError::Io(_) => "io",
            NetError::Closed => "closed",
            NetError::Truncated => "truncated",
            NetError::Idle(_) => "idle",
            NetError::Timeout(_) => "timeout",
            NetError::FrameTooLarge { .. } => "frame_too_large",
            NetError::BadHeader(_) => "bad_header",
            NetError::Noise(_) => "noise",
            NetError::BadPayload(_) => "bad_payload",
            NetError::BadIdentity(_) => "bad_identity",
            NetError::UnexpectedPeer { .. } => "unexpected_peer",
            NetError::Malformed(_) => "malformed",
            NetError::TooManyConnections(_) => "too_many_connections",
            NetError::Config(_) => "config",
        }
    }
}

impl From<std::io::Error> for NetError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::UnexpectedEof => NetError::Truncated,
            _ => NetError::Io(e.to_string()),
        }
    }
}

impl From<snow::Error> for NetError {
    fn from(e: snow::Error) -> Self {
        NetError::Noise(e.to_string())
    }
}
