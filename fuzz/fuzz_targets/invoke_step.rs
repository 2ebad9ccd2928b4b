//! Every input of one invoke (script, peers, particle, data, call results), from a
//! corpus of real steps. Input layout: `braid_fuzz::Step::decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    braid_fuzz::invoke_step(&braid_fuzz::Step::decode(input));
});
