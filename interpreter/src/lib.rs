//! The pure AIR interpreter.
//!
//! [`invoke`] runs one step of a particle on one peer: it merges the data this peer
//! stored with the data that arrived, replays the script over it, executes what can run
//! here now, and returns the new data, the service calls the host must make and the
//! peers to send the data to.
//!
//! It is a function of its arguments: no I/O, no clock, no randomness, no threads, no
//! async. The same inputs give the same bytes out on every platform, wasm32 included.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod outcome;
mod params;

pub use braid_grammar as grammar;
pub use error::{CatchableError, DataSide, InterpreterError, SizeLimit, UncatchableError};
pub use outcome::Outcome;
pub use params::{CallRequest, CallResult, CallResults, KeyPair, LimitFlags, Limits, RunParams, Tetraplet};

/// Runs one step of a particle. Pure: no I/O, no clock, no randomness.
pub fn invoke(
    script: &str,
    prev_data: &[u8],
    data: &[u8],
    params: &RunParams,
    call_results: &CallResults,
) -> Outcome {
    let _ = (script, data, params, call_results);
    Outcome {
        data: prev_data.to_vec(),
        call_requests: Vec::new(),
        next_peers: Vec::new(),
        error: Some(InterpreterError::Parse("not implemented yet".to_owned())),
        limits_exceeded: LimitFlags::default(),
    }
}
