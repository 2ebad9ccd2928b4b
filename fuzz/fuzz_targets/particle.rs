//! A node's intake of particle bytes from the network: decoding and every check.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| braid_fuzz::particle(input));
