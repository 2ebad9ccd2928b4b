//! What can go wrong on a transport connection: reading frames, handshake payloads and
//! messages, and (filled in by the host) the socket and the Noise session.

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
    /// A message is not MessagePack of a [`Message`](crate::Message).
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
