//! The data decoder and encoder: arbitrary previous and current data on a script that
//! executes nothing. Input layout as `invoke_bytes` (the script byte is unused).
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    if let Some((_, check, prev, data)) = braid_fuzz::split_invoke_input(input) {
        braid_fuzz::data_decoder(prev, data, check);
    }
});
