//! Conformance scenarios (../shared/conformance/FORMAT.md): the scenario format, the
//! fake services, the deterministic FIFO driver that runs a scenario with braid's
//! interpreter, the transcript it writes, and the comparison with the reference's
//! transcript. Also the deterministic generators of §8 that benchmark scenarios use.
//!
//! ```no_run
//! use braid_sim::{KeepInputs, Scenario, run, diff, SHOWN_DIFFERENCES};
//!
//! let scenario = Scenario::load("scenario.json".as_ref())?;
//! let run = run(&scenario, KeepInputs::Nothing)?;
//! println!("{}", serde_json::to_string_pretty(&run.transcript).unwrap());
//! if let Some(expected) = &scenario.expected {
//!     let actual = run.transcript.to_json();
//!     for d in diff(expected, &actual, &scenario.ignore_args, SHOWN_DIFFERENCES) {
//!         println!("{d}");
//!     }
//! }
//! # Ok::<(), braid_sim::SimError>(())
//! ```
//!
//! It neither talks to a network nor times anything: it runs every peer in memory, one
//! invoke after another. The `braid sim` command of `host` is built on it.
#![warn(missing_docs)]

pub mod canonical;
pub mod compare;
pub mod driver;
pub mod error;
pub mod generate;
pub mod pending_answers;
#[cfg(feature = "random")]
pub mod random_runs;
pub mod reference_peer;
pub mod scenario;
pub mod scenario_files;
pub mod service_rules;
pub mod transcript;

pub use canonical::canonical_json;
pub use compare::{Difference, SHOWN_DIFFERENCES, check, check_with, diff, normalize};
pub use driver::{
    Interpreter, KeepInputs, Run, StepRecord, native_invoke, peer_key, run, run_params, run_with,
};
pub use error::SimError;
pub use reference_peer::{OracleServe, PeerSet, mixed};
pub use scenario::Scenario;
pub use scenario_files::scenario_files;
pub use transcript::Transcript;
