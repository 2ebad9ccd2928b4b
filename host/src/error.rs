//! The host's errors: [`HostError`] for the node itself, [`ExecuteError`] for what a
//! script run through [`crate::Node::execute`] can end with.

use braid_wire::Rejection;

/// Something the node itself could not do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The operating system's random number generator failed.
    #[error("cannot read OS randomness: {0}")]
    Randomness(String),
    /// The node was built with an invalid setting.
    #[error("invalid node configuration: {0}")]
    Config(String),
    /// The data store failed.
    #[error("data store: {0}")]
    Store(String),
    /// The node has shut down.
    #[error("the node has shut down")]
    Stopped,
    /// The interpreter backend could not run an invocation.
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    /// The libp2p network failed (to start, listen, dial or deliver).
    #[error("network: {0}")]
    Network(#[from] braid_net::NetworkError),
    /// Internal error, please report.
    #[error("internal error, please report: {0}")]
    Internal(String),
}

/// How a script run by [`crate::Node::execute`] ended without a response.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ExecuteError {
    /// The script sent this to `errorHandlingSrv.error` (its first argument: compiled
    /// Aqua sends the error object).
    #[error("the script reported an error: {0}")]
    Script(serde_json::Value),
    /// No response before the particle's deadline.
    #[error("no response within the particle's ttl of {ttl_ms} ms")]
    Timeout {
        /// The particle's ttl.
        ttl_ms: u32,
    },
    /// The script stopped on this node with an interpreter error, with nothing left to
    /// wait for (no pending calls, never sent to another peer).
    #[error("the interpreter stopped the script: error {code}: {message}")]
    Interpreter {
        /// The reference's error code.
        code: i32,
        /// Its message.
        message: String,
    },
    /// A peer on the particle's way (this node, or another that told this one) gave up
    /// sending it on: no route, refused, or still unreachable when it stopped retrying.
    #[error("the particle could not be delivered from {from} to {to}: {reason}")]
    Undeliverable {
        /// The peer that gave up.
        from: String,
        /// The peer it could not reach.
        to: String,
        /// Why.
        reason: String,
    },
    /// The node did not let the particle in.
    #[error("the particle was rejected: {0}")]
    Rejected(Rejection),
    /// The node could not run it.
    #[error("the node cannot run the particle: {0}")]
    Node(String),
}

impl From<HostError> for ExecuteError {
    fn from(e: HostError) -> Self {
        ExecuteError::Node(e.to_string())
    }
}
