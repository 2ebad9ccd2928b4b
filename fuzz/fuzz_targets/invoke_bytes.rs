//! Arbitrary previous and current data on real scripts, with and without checking.
//! Input layout (see `braid_fuzz::split_invoke_input`): script, check, split, bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    if let Some((script, check, prev, data)) = braid_fuzz::split_invoke_input(input) {
        braid_fuzz::invoke_bytes(script, prev, data, check);
    }
});
