//! The bytes of one particle-protocol stream: the length prefix, the multicodec and
//! the particle's MessagePack map.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| braid_fuzz::particle_frame(input));
