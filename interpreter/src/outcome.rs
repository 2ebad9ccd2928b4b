//! The result of one invocation.

use crate::error::InterpreterError;
use crate::params::{CallRequest, LimitFlags};

/// What an invocation produced. Not a `Result`: a failed invocation still returns data
/// the host must store (the new data after a catchable error, or the previous data
/// unchanged after any other error).
///
/// Every backend of the interpreter (native, the Wasm module) and every record gives
/// this one type. Two outcomes are equal when everything a host observes is: data,
/// call requests, next peers, exceeded limits, and the error's code and message.
#[derive(Debug, Clone)]
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

impl PartialEq for Outcome {
    fn eq(&self, other: &Self) -> bool {
        self.data == other.data
            && self.call_requests == other.call_requests
            && self.next_peers == other.next_peers
            && self.limits_exceeded == other.limits_exceeded
            && self.ret_code() == other.ret_code()
            && self.error_message() == other.error_message()
    }
}

impl Outcome {
    /// An outcome that another run of the interpreter reported by its parts (the Wasm
    /// module's output, a record): an error as [`InterpreterError::Reported`], `None`
    /// when `ret_code` is 0.
    pub fn reported(
        data: Vec<u8>,
        call_requests: Vec<CallRequest>,
        next_peers: Vec<String>,
        ret_code: i32,
        error_message: String,
        limits_exceeded: LimitFlags,
    ) -> Self {
        Outcome {
            data,
            call_requests,
            next_peers,
            error: (ret_code != 0).then_some(InterpreterError::Reported {
                code: ret_code,
                message: error_message,
            }),
            limits_exceeded,
        }
    }

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
