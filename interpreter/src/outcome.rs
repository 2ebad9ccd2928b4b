//! The result of one invocation.

use crate::error::InterpreterError;
use crate::params::{CallRequest, LimitFlags};

/// What an invocation produced. Not a `Result`: a failed invocation still returns data
/// the host must store (the new data after a catchable error, or the previous data
/// unchanged after any other error).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Outcome {
    /// The data to store and to send on; stored even when `error` is set.
    pub data: Vec<u8>,
    /// Service calls to perform, by increasing id.
    pub call_requests: Vec<CallRequest>,
    /// Peers to send the data to, sorted, without duplicates.
    pub next_peers: Vec<String>,
    /// Why the invocation failed, if it did.
    pub error: Option<InterpreterError>,
    /// Soft limits that were exceeded.
    pub limits_exceeded: LimitFlags,
}

impl Outcome {
    /// The reference's return code: 0 for success, else the error's code.
    pub fn ret_code(&self) -> i32 {
        self.error.as_ref().map_or(0, InterpreterError::code)
    }

    /// The reference's error message: empty for success.
    pub fn error_message(&self) -> String {
        self.error
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
    }
}
