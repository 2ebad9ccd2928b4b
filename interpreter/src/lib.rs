//! The pure AIR interpreter.
//!
//! For now this crate only checks that a script parses; `invoke` and its data format
//! arrive with the interpreter issue. It never performs I/O, reads a clock or draws
//! randomness.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub use braid_grammar as grammar;
