//! The built-ins that are plain functions of their arguments: `op`, `math`, `cmp`,
//! `array`, `json` and `debug`, with the reference node's (Nox's) semantics and argument
//! checks; typed as in aqua-lib's `builtin.aqua`.
//!
//! Every function here is linear (or n log n) in its input, except base58, which is
//! quadratic: its inputs are bounded ([`MAX_BASE58_BYTES`]). The node runs them off the
//! async runtime's threads.
//!
//! Where Nox has no defined order (set operations over hash sets) braid keeps the order
//! of the first array; where Nox's `sha256_string` wraps the raw string bytes as if they
//! were a digest, braid hashes them (as the JS client and Nox before 2024 did).

use std::collections::HashSet;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::services::{ServiceError, ServiceResult};

/// The longest input of a base58 encoding (bytes) or decoding (characters). Base58 is
/// quadratic in its input: 16 KiB takes a fraction of a second, 192 KiB took 45 s.
pub(crate) const MAX_BASE58_BYTES: usize = 16 * 1024;

/// The longest base58 text decoded: room for the encoding of [`MAX_BASE58_BYTES`].
pub(crate) const MAX_BASE58_TEXT: usize = MAX_BASE58_BYTES * 3 / 2;

/// Nox's "empty" result: the interpreter receives the JSON string `""`.
pub(crate) fn empty() -> ServiceResult {
    Ok(Value::String(String::new()))
}

/// Runs a pure built-in of `service`, or returns `None` if it has no `function`.
pub(crate) fn call(service: &str, function: &str, args: &[Value]) -> Option<ServiceResult> {
    Some(match (service, function) {
        ("op", "noop") => empty(),
        ("op", "array") => Ok(Value::Array(args.to_vec())),
        ("op", "array_length") => array_length("op array_length", args),
        ("op", "identity") => identity(args),
        ("op", "concat") => concat(args),
        ("op", "concat_strings") => concat_strings(args),
        ("op", "string_to_b58") => string_arg(args, 0, "string")
            .and_then(|s| encode_b58(s.as_bytes()))
            .map(Value::String),
        ("op", "string_from_b58") => string_from_b58(args),
        ("op", "bytes_to_b58") => bytes_to_b58(args),
        ("op", "bytes_from_b58") => string_arg(args, 0, "b58_string")
            .and_then(decode_b58)
            .map(|bytes| json!(bytes)),
        ("op", "sha256_string") => sha256_string(args),
        ("debug", "stringify") => Ok(stringify(args)),
        ("math", _) => return math(function, args),
        ("cmp", _) => return cmp(function, args),
        ("array", _) => return array(function, args),
        ("json", _) => return json_service(function, args),
        _ => return None,
    })
}

/// Base58 of bytes, refused above [`MAX_BASE58_BYTES`].
pub(crate) fn encode_b58(bytes: &[u8]) -> Result<String, ServiceError> {
    if bytes.len() > MAX_BASE58_BYTES {
        return Err(ServiceError::new(format!(
            "cannot encode {} bytes in base58: this node encodes at most {MAX_BASE58_BYTES} bytes (base58 takes time quadratic in its input)",
            bytes.len()
        )));
    }
    Ok(bs58::encode(bytes).into_string())
}

fn identity(args: &[Value]) -> ServiceResult {
    match args {
        [] => empty(),
        [x] => Ok(x.clone()),
        _ => Err(ServiceError::new(format!(
            "identity accepts up to 1 arguments, received {} arguments",
            args.len()
        ))),
    }
}

fn concat(args: &[Value]) -> ServiceResult {
    let mut out = Vec::new();
    for (i, v) in args.iter().enumerate() {
        match v {
            Value::Array(items) => out.extend(items.iter().cloned()),
            _ => {
                return Err(ServiceError::new(format!(
                    "all arguments of 'concat' must be arrays: argument #{i} is not"
                )));
            }
        }
    }
    Ok(Value::Array(out))
}

fn concat_strings(args: &[Value]) -> ServiceResult {
    let mut out = String::new();
    for (i, v) in args.iter().enumerate() {
        match v {
            Value::String(s) => out.push_str(s),
            _ => {
                return Err(ServiceError::new(format!(
                    "all arguments of 'concat_strings' must be strings: argument #{i} is not"
                )));
            }
        }
    }
    Ok(Value::String(out))
}

fn array_length(name: &str, args: &[Value]) -> ServiceResult {
    match args {
        [Value::Array(items)] => Ok(json!(items.len())),
        [_] => Err(ServiceError::new(format!(
            "{name}'s argument must be an array"
        ))),
        _ => Err(ServiceError::new(format!(
            "{name} accepts exactly 1 argument: {} found",
            args.len()
        ))),
    }
}

/// Bytes of a base58 text, refused above [`MAX_BASE58_TEXT`] characters.
pub(crate) fn decode_b58(text: &str) -> Result<Vec<u8>, ServiceError> {
    if text.len() > MAX_BASE58_TEXT {
        return Err(ServiceError::new(format!(
            "cannot decode {} characters of base58: this node decodes at most {MAX_BASE58_TEXT} characters (base58 takes time quadratic in its input)",
            text.len()
        )));
    }
    bs58::decode(text)
        .into_vec()
        .map_err(|e| ServiceError::new(format!("invalid base58 string: {e}")))
}

fn string_from_b58(args: &[Value]) -> ServiceResult {
    let bytes = decode_b58(string_arg(args, 0, "b58_string")?)?;
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|e| ServiceError::new(format!("decoded base58 is not UTF-8: {e}")))
}

fn bytes_to_b58(args: &[Value]) -> ServiceResult {
    let bytes = bytes_arg(args, 0, "bytes")?;
    encode_b58(&bytes).map(Value::String)
}

/// `sha256_string(s, digest_only?, as_bytes?)`: the SHA-256 multihash (code 0x12,
/// length 32, digest) of the string, or only the digest, as base58 or as bytes.
fn sha256_string(args: &[Value]) -> ServiceResult {
    let text = string_arg(args, 0, "string")?;
    let flag = |i: usize, name: &str| match optional(args, i) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(arg_error(name, "a boolean", Some(other))),
    };
    let digest_only = flag(1, "digest_only")?;
    let as_bytes = flag(2, "as_bytes")?;
    let digest = Sha256::digest(text.as_bytes());
    let bytes: Vec<u8> = if digest_only {
        digest.to_vec()
    } else {
        [0x12, 0x20].into_iter().chain(digest).collect()
    };
    Ok(if as_bytes {
        json!(bytes)
    } else {
        json!(bs58::encode(bytes).into_string())
    })
}

/// `debug.stringify`: the JSON text of the argument, of all arguments as an array, or
/// `"<empty argument list>"` (itself JSON) when there are none.
fn stringify(args: &[Value]) -> Value {
    Value::String(match args {
        [] => r#""<empty argument list>""#.to_owned(),
        [x] => x.to_string(),
        _ => Value::Array(args.to_vec()).to_string(),
    })
}

fn math(function: &str, args: &[Value]) -> Option<ServiceResult> {
    let overflow = |op: &str| ServiceError::new(format!("i64 {op} overflow"));
    let ints = || -> Result<(i64, i64), ServiceError> {
        arity(args, 2)?;
        Ok((int_arg(args, 0, "x")?, int_arg(args, 1, "y")?))
    };
    let result = match function {
        "add" => ints().and_then(|(x, y)| x.checked_add(y).ok_or_else(|| overflow("add"))),
        "sub" => ints().and_then(|(x, y)| x.checked_sub(y).ok_or_else(|| overflow("sub"))),
        "mul" => ints().and_then(|(x, y)| x.checked_mul(y).ok_or_else(|| overflow("mul"))),
        "div" => ints().and_then(|(x, y)| x.checked_div(y).ok_or_else(|| overflow("div"))),
        "rem" => ints().and_then(|(x, y)| x.checked_rem(y).ok_or_else(|| overflow("rem"))),
        "pow" => ints().and_then(|(x, y)| {
            let y = u32::try_from(y).map_err(|_| arg_error("y", "a u32", args.get(1)))?;
            x.checked_pow(y).ok_or_else(|| overflow("pow"))
        }),
        "log" => {
            return Some(ints().and_then(|(x, y)| {
                y.checked_ilog(x)
                    .map(|l| json!(l))
                    .ok_or_else(|| overflow("log"))
            }));
        }
        "fmul" => {
            return Some((|| {
                arity(args, 2)?;
                let x = float_arg(args, 0, "x")?;
                let y = float_arg(args, 1, "y")?;
                // `as` saturates, as Nox's does.
                Ok(json!((x * y).floor() as i64))
            })());
        }
        _ => return None,
    };
    Some(result.map(|n| json!(n)))
}

fn cmp(function: &str, args: &[Value]) -> Option<ServiceResult> {
    let ints = || -> Result<(i64, i64), ServiceError> {
        arity(args, 2)?;
        Ok((int_arg(args, 0, "x")?, int_arg(args, 1, "y")?))
    };
    let result = match function {
        "gt" => ints().map(|(x, y)| json!(x > y)),
        "gte" => ints().map(|(x, y)| json!(x >= y)),
        "lt" => ints().map(|(x, y)| json!(x < y)),
        "lte" => ints().map(|(x, y)| json!(x <= y)),
        "cmp" => ints().map(|(x, y)| json!(x.cmp(&y) as i8)),
        _ => return None,
    };
    Some(result)
}

fn array(function: &str, args: &[Value]) -> Option<ServiceResult> {
    let result = match function {
        "length" => array_length("array length", args),
        "sum" => (|| {
            arity(args, 1)?;
            let items = array_arg(args, 0, "xs")?;
            let mut sum = 0i64;
            for (i, v) in items.iter().enumerate() {
                let n = v
                    .as_i64()
                    .ok_or_else(|| arg_error(&format!("xs[{i}]"), "an i64", Some(v)))?;
                sum = sum
                    .checked_add(n)
                    .ok_or_else(|| ServiceError::new("i64 add overflow"))?;
            }
            Ok(json!(sum))
        })(),
        "dedup" => (|| {
            arity(args, 1)?;
            Ok(json!(dedup(strings_arg(args, 0, "xs")?)))
        })(),
        "intersect" | "diff" | "sdiff" => (|| {
            arity(args, 2)?;
            let xs = dedup(strings_arg(args, 0, "xs")?);
            let ys = dedup(strings_arg(args, 1, "ys")?);
            // Hash sets: linear, whatever the sizes.
            let in_xs: HashSet<&str> = xs.iter().copied().collect();
            let in_ys: HashSet<&str> = ys.iter().copied().collect();
            let out: Vec<&str> = match function {
                "intersect" => xs.iter().copied().filter(|x| in_ys.contains(x)).collect(),
                "diff" => xs.iter().copied().filter(|x| !in_ys.contains(x)).collect(),
                _ => xs
                    .iter()
                    .copied()
                    .filter(|x| !in_ys.contains(x))
                    .chain(ys.iter().copied().filter(|y| !in_xs.contains(y)))
                    .collect(),
            };
            Ok(json!(out))
        })(),
        "slice" => slice(args),
        _ => return None,
    };
    Some(result)
}

/// Distinct strings in order of first appearance.
fn dedup(xs: Vec<&str>) -> Vec<&str> {
    let mut seen = HashSet::new();
    xs.into_iter().filter(|x| seen.insert(*x)).collect()
}

fn slice(args: &[Value]) -> ServiceResult {
    let [array, start, end] = args else {
        return Err(ServiceError::new(
            "invalid number of parameters. need array, start index and end index",
        ));
    };
    let items = match array {
        Value::Array(items) => items,
        other => {
            return Err(ServiceError::new(format!(
                "first argument must be an array, was {other}"
            )));
        }
    };
    if items.is_empty() {
        return Ok(json!([]));
    }
    let index = |v: &Value, what: &str| {
        v.as_u64().map(|n| n as usize).ok_or_else(|| {
            ServiceError::new(format!("{what} must be an unsigned integer, was {v}"))
        })
    };
    let start = index(start, "second argument (start index)")?;
    let end = index(end, "third argument (end index)")?;
    if start > end || end > items.len() {
        return Err(ServiceError::new(format!(
            "slice indexes out of bounds. start index: {start}, end index: {end}, array length: {}",
            items.len()
        )));
    }
    Ok(Value::Array(items[start..end].to_vec()))
}

fn json_service(function: &str, args: &[Value]) -> Option<ServiceResult> {
    let result = match function {
        "obj" => put_pairs(Map::new(), args),
        "put" => (|| {
            arity(args, 3)?;
            put_pairs(object_arg(args, 0)?.clone(), &args[1..])
        })(),
        "puts" => (|| {
            if args.len() < 3 {
                return Err(ServiceError::new(format!(
                    "expected an object and at least one key and value, got {} arguments",
                    args.len()
                )));
            }
            put_pairs(object_arg(args, 0)?.clone(), &args[1..])
        })(),
        "parse" => (|| {
            arity(args, 1)?;
            let text = string_arg(args, 0, "json")?;
            serde_json::from_str::<Value>(text)
                .map_err(|e| ServiceError::new(format!("error parsing json {text}: {e}")))
        })(),
        "stringify" => (|| {
            arity(args, 1)?;
            Ok(Value::String(args[0].to_string()))
        })(),
        "obj_pairs" => (|| {
            arity(args, 1)?;
            put_pairs(Map::new(), &flatten_pairs(&args[0])?)
        })(),
        "puts_pairs" => (|| {
            arity(args, 2)?;
            put_pairs(object_arg(args, 0)?.clone(), &flatten_pairs(&args[1])?)
        })(),
        _ => return None,
    };
    Some(result)
}

/// Inserts `key, value, key, value, …` into an object.
fn put_pairs(mut object: Map<String, Value>, kvs: &[Value]) -> ServiceResult {
    for pair in kvs.chunks(2) {
        match pair {
            [Value::String(k), v] => {
                object.insert(k.clone(), v.clone());
            }
            [k] => {
                return Err(ServiceError::new(format!("no value for key {k}")));
            }
            [k, v] => {
                return Err(ServiceError::new(format!(
                    "all keys must be strings; the key of this pair is not: ({k}, {v})"
                )));
            }
            _ => unreachable!("chunks(2) yields one or two items"),
        }
    }
    Ok(Value::Object(object))
}

/// `[[k, v], …]` as `[k, v, …]`.
fn flatten_pairs(v: &Value) -> Result<Vec<Value>, ServiceError> {
    let pairs = v
        .as_array()
        .ok_or_else(|| arg_error("pairs", "an array of [key, value] pairs", Some(v)))?;
    let mut out = Vec::with_capacity(pairs.len() * 2);
    for pair in pairs {
        match pair.as_array().map(Vec::as_slice) {
            Some([k, v]) => out.extend([k.clone(), v.clone()]),
            _ => {
                return Err(arg_error(
                    "pairs",
                    "an array of [key, value] pairs",
                    Some(pair),
                ));
            }
        }
    }
    Ok(out)
}

// Argument helpers. Aqua options arrive as `[]` or `[x]`; a bare value is accepted too.

pub(crate) fn arg_error(name: &str, expected: &str, got: Option<&Value>) -> ServiceError {
    match got {
        Some(v) => ServiceError::new(format!("argument `{name}` must be {expected}, got {v}")),
        None => ServiceError::new(format!("argument `{name}` ({expected}) is missing")),
    }
}

pub(crate) fn arity(args: &[Value], n: usize) -> Result<(), ServiceError> {
    if args.len() == n {
        Ok(())
    } else {
        Err(ServiceError::new(format!(
            "expected {n} argument(s), got {}",
            args.len()
        )))
    }
}

pub(crate) fn optional(args: &[Value], i: usize) -> Option<&Value> {
    match args.get(i) {
        Some(Value::Array(items)) if items.is_empty() => None,
        Some(Value::Array(items)) if items.len() == 1 => items.first(),
        Some(Value::Null) | None => None,
        other => other,
    }
}

pub(crate) fn string_arg<'a>(
    args: &'a [Value],
    i: usize,
    name: &str,
) -> Result<&'a str, ServiceError> {
    args.get(i)
        .and_then(Value::as_str)
        .ok_or_else(|| arg_error(name, "a string", args.get(i)))
}

pub(crate) fn int_arg(args: &[Value], i: usize, name: &str) -> Result<i64, ServiceError> {
    args.get(i)
        .and_then(Value::as_i64)
        .ok_or_else(|| arg_error(name, "an i64", args.get(i)))
}

fn float_arg(args: &[Value], i: usize, name: &str) -> Result<f64, ServiceError> {
    args.get(i)
        .and_then(Value::as_f64)
        .ok_or_else(|| arg_error(name, "a number", args.get(i)))
}

pub(crate) fn array_arg<'a>(
    args: &'a [Value],
    i: usize,
    name: &str,
) -> Result<&'a [Value], ServiceError> {
    args.get(i)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .ok_or_else(|| arg_error(name, "an array", args.get(i)))
}

pub(crate) fn strings_arg<'a>(
    args: &'a [Value],
    i: usize,
    name: &str,
) -> Result<Vec<&'a str>, ServiceError> {
    array_arg(args, i, name)?
        .iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| arg_error(name, "an array of strings", args.get(i)))
        })
        .collect()
}

pub(crate) fn bytes_arg(args: &[Value], i: usize, name: &str) -> Result<Vec<u8>, ServiceError> {
    array_arg(args, i, name)?
        .iter()
        .map(|v| {
            v.as_u64()
                .and_then(|n| u8::try_from(n).ok())
                .ok_or_else(|| arg_error(name, "an array of bytes (0-255)", args.get(i)))
        })
        .collect()
}

pub(crate) fn object_arg(args: &[Value], i: usize) -> Result<&Map<String, Value>, ServiceError> {
    args.get(i)
        .and_then(Value::as_object)
        .ok_or_else(|| arg_error("object", "an object", args.get(i)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(service: &str, function: &str, args: Value) -> ServiceResult {
        let args = args.as_array().expect("test args are an array").clone();
        match call(service, function, &args) {
            Some(r) => r,
            None => panic!("{service}.{function} is not a pure built-in"),
        }
    }

    fn ok(service: &str, function: &str, args: Value) -> Value {
        run(service, function, args.clone())
            .unwrap_or_else(|e| panic!("{service}.{function}({args}) failed: {e}"))
    }

    fn err(service: &str, function: &str, args: Value) -> String {
        match run(service, function, args.clone()) {
            Err(e) => e.to_string(),
            Ok(v) => panic!("{service}.{function}({args}) = {v}, expected an error"),
        }
    }

    #[test]
    fn unknown_functions_are_not_builtins() {
        assert_eq!(call("op", "nope", &[]), None);
        assert_eq!(call("math", "sqrt", &[]), None);
        assert_eq!(call("getDataSrv", "x", &[]), None);
        assert_eq!(call("srv", "list", &[]), None);
    }

    #[test]
    fn op() {
        assert_eq!(ok("op", "noop", json!([1, 2])), json!(""));
        assert_eq!(
            ok("op", "array", json!([1, "a", null])),
            json!([1, "a", null])
        );
        assert_eq!(ok("op", "array", json!([])), json!([]));
        assert_eq!(ok("op", "array_length", json!([[1, 2, 3]])), json!(3));
        assert!(err("op", "array_length", json!([1])).contains("must be an array"));
        assert!(err("op", "array_length", json!([[], []])).contains("exactly 1 argument: 2 found"));
        assert_eq!(ok("op", "identity", json!([{"a": 1}])), json!({"a": 1}));
        assert_eq!(ok("op", "identity", json!([])), json!(""));
        assert!(err("op", "identity", json!([1, 2])).contains("up to 1 arguments, received 2"));
        assert_eq!(
            ok("op", "concat", json!([[1], [], [2, 3]])),
            json!([1, 2, 3])
        );
        assert!(err("op", "concat", json!([[1], 2])).contains("argument #1 is not"));
        assert_eq!(
            ok("op", "concat_strings", json!(["a", "", "bc"])),
            json!("abc")
        );
        assert_eq!(ok("op", "concat_strings", json!([])), json!(""));
        assert!(err("op", "concat_strings", json!(["a", 1])).contains("argument #1 is not"));
    }

    #[test]
    fn op_base58() {
        // Vectors of the Bitcoin alphabet: "hello world" and leading zero bytes.
        assert_eq!(
            ok("op", "string_to_b58", json!(["hello world"])),
            json!("StV1DL6CwTryKyV")
        );
        assert_eq!(
            ok("op", "string_from_b58", json!(["StV1DL6CwTryKyV"])),
            json!("hello world")
        );
        assert_eq!(ok("op", "bytes_to_b58", json!([[0, 0, 1]])), json!("112"));
        assert_eq!(ok("op", "bytes_from_b58", json!(["112"])), json!([0, 0, 1]));
        assert_eq!(ok("op", "bytes_to_b58", json!([[]])), json!(""));
        assert!(err("op", "string_from_b58", json!(["0OIl"])).contains("invalid base58"));
        // 0xff is not UTF-8.
        assert!(err("op", "string_from_b58", json!(["5Q"])).contains("not UTF-8"));
        assert!(err("op", "bytes_to_b58", json!([[256]])).contains("bytes (0-255)"));
        assert!(err("op", "string_to_b58", json!([1])).contains("must be a string"));
        let big = "x".repeat(MAX_BASE58_BYTES + 1);
        assert!(err("op", "string_to_b58", json!([big])).contains("at most 16384 bytes"));
        let long = "x".repeat(MAX_BASE58_TEXT + 1);
        assert!(err("op", "bytes_from_b58", json!([long])).contains("at most 24576 characters"));
        let max = "x".repeat(MAX_BASE58_BYTES);
        let encoded = ok("op", "string_to_b58", json!([max]));
        assert_eq!(ok("op", "string_from_b58", json!([encoded])), json!(max));
    }

    #[test]
    fn op_sha256_string() {
        // SHA-256("abc") = ba7816bf…15ad; its multihash is 0x12 0x20 and the digest.
        let digest = json!([
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
            0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
            0xf2, 0x00, 0x15, 0xad
        ]);
        assert_eq!(
            ok("op", "sha256_string", json!(["abc", [true], [true]])),
            digest
        );
        let mut multihash = vec![json!(0x12), json!(0x20)];
        multihash.extend(digest.as_array().unwrap().iter().cloned());
        assert_eq!(
            ok("op", "sha256_string", json!(["abc", false, true])),
            json!(multihash)
        );
        let b58 = ok("op", "sha256_string", json!(["abc"]));
        assert!(b58.as_str().unwrap().starts_with("Qm"), "{b58}");
        assert_eq!(ok("op", "sha256_string", json!(["abc", [], []])), b58);
        let bytes: Vec<u8> = multihash
            .iter()
            .map(|v| v.as_u64().unwrap() as u8)
            .collect();
        assert_eq!(b58, json!(bs58::encode(bytes).into_string()));
        assert!(err("op", "sha256_string", json!(["abc", "yes"])).contains("boolean"));
    }

    #[test]
    fn math() {
        assert_eq!(ok("math", "add", json!([2, 3])), json!(5));
        assert_eq!(ok("math", "sub", json!([2, 3])), json!(-1));
        assert_eq!(ok("math", "mul", json!([-4, 3])), json!(-12));
        assert_eq!(ok("math", "div", json!([7, 2])), json!(3));
        assert_eq!(ok("math", "div", json!([-7, 2])), json!(-3));
        assert_eq!(ok("math", "rem", json!([7, 3])), json!(1));
        assert_eq!(ok("math", "pow", json!([2, 10])), json!(1024));
        assert_eq!(ok("math", "log", json!([2, 1024])), json!(10));
        assert_eq!(ok("math", "fmul", json!([2.5, 3])), json!(7));
        assert_eq!(ok("math", "fmul", json!([-0.5, 3])), json!(-2));
        assert_eq!(err("math", "div", json!([1, 0])), "i64 div overflow");
        assert_eq!(err("math", "add", json!([i64::MAX, 1])), "i64 add overflow");
        assert_eq!(err("math", "sub", json!([i64::MIN, 1])), "i64 sub overflow");
        assert_eq!(err("math", "pow", json!([10, 30])), "i64 pow overflow");
        assert_eq!(err("math", "log", json!([2, 0])), "i64 log overflow");
        assert!(err("math", "pow", json!([2, -1])).contains("a u32"));
        assert!(err("math", "add", json!([1])).contains("expected 2 argument(s), got 1"));
        assert!(err("math", "add", json!([1.5, 1])).contains("an i64"));
        assert!(err("math", "add", json!(["1", 1])).contains("an i64"));
    }

    #[test]
    fn cmp() {
        assert_eq!(ok("cmp", "gt", json!([2, 1])), json!(true));
        assert_eq!(ok("cmp", "gte", json!([1, 1])), json!(true));
        assert_eq!(ok("cmp", "lt", json!([2, 1])), json!(false));
        assert_eq!(ok("cmp", "lte", json!([1, 2])), json!(true));
        assert_eq!(ok("cmp", "cmp", json!([1, 2])), json!(-1));
        assert_eq!(ok("cmp", "cmp", json!([2, 2])), json!(0));
        assert_eq!(ok("cmp", "cmp", json!([3, 2])), json!(1));
        assert!(err("cmp", "lt", json!([1, "2"])).contains("an i64"));
    }

    #[test]
    fn array() {
        assert_eq!(ok("array", "sum", json!([[1, 2, -3, 10]])), json!(10));
        assert_eq!(
            err("array", "sum", json!([[i64::MAX, 1]])),
            "i64 add overflow"
        );
        assert_eq!(
            ok("array", "dedup", json!([["b", "a", "b", "c", "a"]])),
            json!(["b", "a", "c"])
        );
        assert_eq!(
            ok(
                "array",
                "intersect",
                json!([["a", "b", "c", "b"], ["c", "b", "d"]])
            ),
            json!(["b", "c"])
        );
        assert_eq!(
            ok("array", "diff", json!([["a", "b", "c"], ["b"]])),
            json!(["a", "c"])
        );
        assert_eq!(
            ok("array", "sdiff", json!([["a", "b"], ["b", "c"]])),
            json!(["a", "c"])
        );
        assert_eq!(
            ok("array", "slice", json!([[1, 2, 3, 4], 1, 3])),
            json!([2, 3])
        );
        assert_eq!(ok("array", "slice", json!([[], 5, 9])), json!([]));
        assert!(err("array", "slice", json!([[1], 0, 2])).contains("out of bounds"));
        assert!(err("array", "slice", json!([[1], -1, 1])).contains("unsigned integer"));
        assert_eq!(ok("array", "length", json!([[1, 2]])), json!(2));
        assert!(err("array", "dedup", json!([[1]])).contains("array of strings"));
    }

    #[test]
    fn json() {
        assert_eq!(
            ok("json", "obj", json!(["a", 1, "b", [true]])),
            json!({"a": 1, "b": [true]})
        );
        assert_eq!(ok("json", "obj", json!([])), json!({}));
        assert!(err("json", "obj", json!(["a"])).contains("no value for key \"a\""));
        assert!(err("json", "obj", json!([1, 2])).contains("keys must be strings"));
        assert_eq!(
            ok("json", "put", json!([{"a": 1}, "b", 2])),
            json!({"a": 1, "b": 2})
        );
        assert_eq!(
            ok("json", "put", json!([{"a": 1}, "a", 2])),
            json!({"a": 2})
        );
        assert!(err("json", "put", json!([[], "b", 2])).contains("an object"));
        assert_eq!(
            ok("json", "puts", json!([{}, "a", 1, "b", 2])),
            json!({"a": 1, "b": 2})
        );
        assert!(err("json", "puts", json!([{}])).contains("at least one key"));
        assert_eq!(
            ok("json", "parse", json!([r#"{"x":[1,2]}"#])),
            json!({"x": [1, 2]})
        );
        assert!(err("json", "parse", json!(["{"])).contains("error parsing json {"));
        assert_eq!(
            ok("json", "stringify", json!([{"b": 1, "a": "x"}])),
            json!(r#"{"a":"x","b":1}"#)
        );
        assert_eq!(
            ok("json", "obj_pairs", json!([[["a", 1], ["b", 2]]])),
            json!({"a": 1, "b": 2})
        );
        assert_eq!(
            ok("json", "puts_pairs", json!([{"a": 0}, [["a", 1]]])),
            json!({"a": 1})
        );
    }

    #[test]
    fn debug() {
        assert_eq!(
            ok("debug", "stringify", json!([])),
            json!(r#""<empty argument list>""#)
        );
        assert_eq!(ok("debug", "stringify", json!(["x"])), json!(r#""x""#));
        assert_eq!(
            ok("debug", "stringify", json!([1, {"a": null}])),
            json!(r#"[1,{"a":null}]"#)
        );
    }
}
