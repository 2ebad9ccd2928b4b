//! A peer's handshake payload, after the 32-byte Noise static key it must be bound to.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| braid_fuzz::handshake(input));
