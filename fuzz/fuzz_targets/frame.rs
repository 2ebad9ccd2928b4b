//! A decrypted transport frame: its 4-byte header, then the message it carries.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| braid_fuzz::frame(input));
