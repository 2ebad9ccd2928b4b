//! Conformance scenarios (../shared/conformance/FORMAT.md): reading them, and the
//! deterministic generators of §8 that benchmark scenarios use for scripts and values.
#![warn(missing_docs)]

pub mod generate;
