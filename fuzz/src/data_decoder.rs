//! The data decoder and encoder alone: arbitrary previous and current data on a script
//! that executes nothing, so almost all the time goes to decoding, checking and
//! re-encoding data.

use braid_interpreter::CallResults;

use crate::{keeps_data, params};

/// The script: nothing to execute, so only the data's own consistency matters.
pub const SCRIPT: &str = "(null)";

/// The oracle: no panic, the same outcome twice, a refusal keeps the previous data,
/// and data it returns is a fixed point: given back as previous data, it comes back
/// unchanged and accepted.
pub fn data_decoder(prev: &[u8], data: &[u8], check: bool) {
    let params = params("A", check);
    let none = CallResults::new();
    let out = braid_interpreter::invoke(SCRIPT, prev, data, &params, &none);
    let again = braid_interpreter::invoke(SCRIPT, prev, data, &params, &none);
    assert_eq!(out, again, "same inputs, different outcome");
    if keeps_data(out.ret_code()) {
        assert_eq!(
            out.data, prev,
            "a failed invocation must keep the previous data"
        );
        return;
    }
    let replay = braid_interpreter::invoke(SCRIPT, &out.data, &[], &params, &none);
    assert!(
        !keeps_data(replay.ret_code()),
        "own output refused as previous data: {}",
        replay.error_message()
    );
    assert_eq!(
        replay.data, out.data,
        "re-encoding decoded data is not a fixed point"
    );
}
