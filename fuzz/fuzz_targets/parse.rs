//! Any text: the parser returns a tree or an error, never panics, and a tree it
//! returns prints as canonical AIR that parses back to the same tree.
#![no_main]

libfuzzer_sys::fuzz_target!(|src: &str| braid_fuzz::parse(src));
