//! An example braid Wasm service, built with
//! `cargo build -p braid-example-service --target wasm32-unknown-unknown --release`
//! (the host's build builds it too, for its tests).
//!
//! Functions: `greet(name: string) -> string` and `sum(numbers: [number]) -> number`.
//! `fixtures/examples/greeter_wasm_service.air` calls `greet`; a node runs the module
//! when its configuration lists it (`fixtures/examples/wasm-service-node.toml`, the
//! host's `WasmServiceConfig`), or by path: `braid run --wasm-service greeter=PATH`
//! and `braid node --wasm-service greeter=PATH`.
//!
//! The ABI (see the host's `wasm_service` module): `braid_service_alloc(len) -> ptr`
//! and `braid_service_call(name_ptr, name_len, args_ptr, args_len) -> (ptr << 32) | len`
//! of `{"ok": value}` or `{"error": value}`, and `braid_service_interface() -> (ptr <<
//! 32) | len` of [`INTERFACE`], which `srv.get_interface` answers.

use serde_json::{Value, json};

/// The service's functions, in the shape of Nox's `Interface` (types in Aqua's
/// notation).
pub const INTERFACE: &str = r#"{"function_signatures":[{"name":"greet","arguments":[["name","string"]],"output_types":["string"]},{"name":"sum","arguments":[["numbers","[]f64"]],"output_types":["f64"]}],"record_types":[]}"#;

/// Calls `function` with `args`: the service itself, independent of the ABI.
pub fn call(function: &str, args: &[Value]) -> Result<Value, Value> {
    match (function, args) {
        ("greet", [Value::String(name)]) => Ok(json!(format!("Hello, {name}!"))),
        ("greet", _) => Err(json!("greet takes one string")),
        ("sum", [Value::Array(numbers)]) => {
            let mut total = 0f64;
            for n in numbers {
                total += n
                    .as_f64()
                    .ok_or_else(|| json!("sum takes an array of numbers"))?;
            }
            Ok(number(total))
        }
        ("sum", _) => Err(json!("sum takes one array of numbers")),
        (other, _) => Err(json!(format!("no function `{other}` (greet, sum)"))),
    }
}

/// A whole number as an integer, as JSON callers expect.
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

/// The JSON answer to a call of `function` with the JSON text `args`.
pub fn answer(function: &[u8], args: &[u8]) -> Vec<u8> {
    let answer = match (
        std::str::from_utf8(function),
        serde_json::from_slice::<Vec<Value>>(args),
    ) {
        (Ok(function), Ok(args)) => match call(function, &args) {
            Ok(value) => json!({ "ok": value }),
            Err(error) => json!({ "error": error }),
        },
        _ => json!({ "error": "the function name or the arguments do not decode" }),
    };
    answer.to_string().into_bytes()
}

#[cfg(target_arch = "wasm32")]
pub mod abi {
    //! The exports: buffers across the module boundary.

    /// Reserves `len` bytes for the host to write.
    #[unsafe(no_mangle)]
    pub extern "C" fn braid_service_alloc(len: u32) -> u32 {
        let mut buf = Vec::<u8>::with_capacity(len as usize);
        let ptr = buf.as_mut_ptr();
        std::mem::forget(buf);
        ptr as u32
    }

    /// Describes the functions: `(ptr << 32) | len` of [`super::INTERFACE`].
    #[unsafe(no_mangle)]
    pub extern "C" fn braid_service_interface() -> u64 {
        let text = super::INTERFACE.as_bytes();
        (u64::from(text.as_ptr() as u32) << 32) | text.len() as u64
    }

    /// Answers a call; the host drops the instance afterwards, so nothing is freed.
    ///
    /// # Safety
    /// Both buffers come from `braid_service_alloc` and are filled with that many bytes.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn braid_service_call(
        name_ptr: u32,
        name_len: u32,
        args_ptr: u32,
        args_len: u32,
    ) -> u64 {
        // SAFETY: the host wrote `name_len` and `args_len` bytes at buffers it reserved.
        let (name, args) = unsafe {
            (
                std::slice::from_raw_parts(name_ptr as *const u8, name_len as usize),
                std::slice::from_raw_parts(args_ptr as *const u8, args_len as usize),
            )
        };
        let answer = std::mem::ManuallyDrop::new(super::answer(name, args).into_boxed_slice());
        (u64::from(answer.as_ptr() as u32) << 32) | answer.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets_and_sums() {
        assert_eq!(call("greet", &[json!("braid")]), Ok(json!("Hello, braid!")));
        assert_eq!(call("sum", &[json!([1, 2, 3.5])]), Ok(json!(6.5)));
        assert_eq!(call("sum", &[json!([1, 2])]), Ok(json!(3)));
        assert!(call("sum", &[json!(["x"])]).is_err());
        assert!(call("nope", &[]).is_err());
    }

    #[test]
    fn the_interface_names_every_function() {
        let interface: Value = serde_json::from_str(INTERFACE).unwrap();
        let names: Vec<&str> = interface["function_signatures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["greet", "sum"]);
        for name in names {
            assert!(
                !call(name, &[])
                    .unwrap_err()
                    .to_string()
                    .contains("no function"),
                "{name}"
            );
        }
    }

    #[test]
    fn answers_are_ok_or_error_objects() {
        assert_eq!(
            answer(b"greet", br#"["a"]"#),
            br#"{"ok":"Hello, a!"}"#.to_vec()
        );
        assert_eq!(
            answer(b"greet", b"not json"),
            br#"{"error":"the function name or the arguments do not decode"}"#.to_vec()
        );
    }
}
