//! The one error type of the crate: why a scenario could not be read or run.

use std::path::PathBuf;

use crate::generate::GenerateError;

/// Why a scenario could not be loaded, run or checked. A transcript that differs from
/// the expected one is not an error: see [`crate::compare::diff`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A file or folder could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The scenario is not valid JSON or does not follow FORMAT.md §1 (unknown field,
    /// unknown result kind, wrong type).
    #[error("bad scenario: {0}")]
    Json(#[from] serde_json::Error),
    /// The scenario parses but breaks a rule of FORMAT.md (e.g. the init peer is not one
    /// of `peers`, a sequence inside a sequence).
    #[error("bad scenario: {0}")]
    Invalid(String),
    /// A generator of FORMAT.md §8 failed (the script or a `generate` reply).
    #[error("{0}")]
    Generate(#[from] GenerateError),
    /// An `inject` entry refers to a step that has not run yet.
    #[error("inject refers to step {step}, which has not run yet")]
    InjectTooEarly {
        /// The step it refers to.
        step: usize,
    },
    /// The interpreter returned call arguments that are not a JSON array.
    #[error("step {step}: call request {id} has arguments that are not a JSON array: {text}")]
    BadArguments {
        /// The step.
        step: usize,
        /// The call request id.
        id: u32,
        /// The text, cut to 200 characters.
        text: String,
    },
    /// The interpreter panicked.
    #[error("step {step}: the interpreter panicked on peer {peer}: {message}")]
    Panicked {
        /// The step being run.
        step: usize,
        /// The peer being invoked.
        peer: String,
        /// The panic message.
        message: String,
    },
    /// The interpreter backend could not run an invoke.
    #[error("step {step}: the interpreter backend failed on peer {peer}: {message}")]
    Backend {
        /// The step being run.
        step: usize,
        /// The peer being invoked.
        peer: String,
        /// Why.
        message: String,
    },
    /// The scenario has no `expected` transcript to compare with.
    #[error("the scenario has no expected transcript")]
    NoExpected,
    /// A bug of the driver itself.
    #[error("internal error, please report: {0}")]
    Internal(String),
}
