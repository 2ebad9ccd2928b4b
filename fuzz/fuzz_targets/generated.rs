//! Valid multi-peer programs of the property-test generator, driven by the input bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| braid_fuzz::generated_run(input));
