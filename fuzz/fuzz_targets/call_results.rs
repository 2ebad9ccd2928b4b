//! Arbitrary call results answering a real script's requests.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: (u8, Vec<(u32, i32, String)>)| {
    braid_fuzz::call_results(input.0 as usize, &input.1);
});
