//! Comparing two transcripts (FORMAT.md §5): both are normalized, then compared value
//! by value, each difference reported at its JSON path.

use std::fmt;

use serde_json::Value;

use crate::canonical::canonical_json;
use crate::driver::{Interpreter, KeepInputs, native_invoke, run_with};
use crate::error::SimError;
use crate::scenario::{IgnoreArg, Scenario};

/// What replaces text that is not compared.
pub const IGNORED: &str = "<ignored>";

/// How many differences `braid sim --check` and the conformance tests show per scenario.
pub const SHOWN_DIFFERENCES: usize = 20;

/// One difference between an expected and an actual transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The JSON path, e.g. `/steps/3/call_requests/0/arguments/1` (array indexes 0-based).
    pub path: String,
    /// What differs there, e.g. `expected 2, got 3`.
    pub detail: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.detail)
    }
}

/// Runs `scenario` and compares its transcript with `expected`: the differences, at
/// most `limit` of them (none: the scenario passes).
pub fn check(scenario: &Scenario, limit: usize) -> Result<Vec<Difference>, SimError> {
    check_with(scenario, limit, &native_invoke)
}

/// [`check`] with another interpreter (see [`run_with`]).
pub fn check_with(
    scenario: &Scenario,
    limit: usize,
    interpreter: &Interpreter<'_>,
) -> Result<Vec<Difference>, SimError> {
    let expected = scenario.expected.as_ref().ok_or(SimError::NoExpected)?;
    let actual = run_with(scenario, KeepInputs::Nothing, interpreter)?
        .transcript
        .to_json();
    Ok(diff(expected, &actual, &scenario.ignore_args, limit))
}

/// The differences between two normalized transcripts, at most `limit`, in document
/// order (object keys sorted).
pub fn diff(
    expected: &Value,
    actual: &Value,
    ignore: &[IgnoreArg],
    limit: usize,
) -> Vec<Difference> {
    let (expected, actual) = (normalize(expected, ignore), normalize(actual, ignore));
    let mut out = Vec::new();
    walk(&expected, &actual, &mut String::new(), &mut out, limit);
    out
}

/// A transcript normalized for comparison: no `error_message`, error objects'
/// `message` and `instruction` ignored, `ignore_args` applied, call requests re-sorted.
pub fn normalize(transcript: &Value, ignore: &[IgnoreArg]) -> Value {
    let mut t = transcript.clone();
    let Some(steps) = t.get_mut("steps").and_then(Value::as_array_mut) else {
        return t;
    };
    for step in steps {
        if let Some(map) = step.as_object_mut() {
            map.remove("error_message");
        }
        let Some(requests) = step.get_mut("call_requests").and_then(Value::as_array_mut) else {
            continue;
        };
        for request in requests.iter_mut() {
            if let Some(args) = request.get_mut("arguments") {
                ignore_error_texts(args);
            }
            apply_ignore_args(request, ignore);
        }
        requests.sort_by_cached_key(canonical_json);
    }
    t
}

/// Replaces `message` and `instruction` of every object with an `error_code` key.
fn ignore_error_texts(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.contains_key("error_code") {
                for key in ["message", "instruction"] {
                    if let Some(text) = map.get_mut(key) {
                        *text = Value::String(IGNORED.into());
                    }
                }
            }
            map.values_mut().for_each(ignore_error_texts);
        }
        Value::Array(items) => items.iter_mut().for_each(ignore_error_texts),
        _ => {}
    }
}

/// Replaces the selected arguments, and the result, of a call `ignore` selects.
fn apply_ignore_args(request: &mut Value, ignore: &[IgnoreArg]) {
    let text = |key: &str| request.get(key).and_then(Value::as_str).map(str::to_owned);
    let (service, function) = (text("service"), text("function"));
    for rule in ignore {
        let selects = |want: &Option<String>, have: &Option<String>| want.is_none() || want == have;
        if !selects(&rule.service, &service) || !selects(&rule.function, &function) {
            continue;
        }
        if let Some(args) = request.get_mut("arguments").and_then(Value::as_array_mut) {
            for (i, arg) in args.iter_mut().enumerate() {
                if rule.index.is_none_or(|n| n == i) {
                    *arg = Value::String(IGNORED.into());
                }
            }
        }
        if let Some(map) = request.as_object_mut() {
            map.insert("result".into(), Value::String(IGNORED.into()));
        }
    }
}

fn walk(
    expected: &Value,
    actual: &Value,
    path: &mut String,
    out: &mut Vec<Difference>,
    limit: usize,
) {
    if out.len() >= limit {
        return;
    }
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let mut keys: Vec<&String> = e.keys().chain(a.keys()).collect();
            keys.sort_unstable();
            keys.dedup();
            for key in keys {
                let len = path.len();
                path.push('/');
                path.push_str(key);
                match (e.get(key), a.get(key)) {
                    (Some(x), Some(y)) => walk(x, y, path, out, limit),
                    (Some(x), None) => {
                        report(out, limit, path, format!("missing (expected {})", short(x)))
                    }
                    (None, Some(y)) => report(out, limit, path, format!("unexpected {}", short(y))),
                    (None, None) => {}
                }
                path.truncate(len);
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            for (i, (x, y)) in e.iter().zip(a).enumerate() {
                let len = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                walk(x, y, path, out, limit);
                path.truncate(len);
            }
            if e.len() != a.len() {
                report(
                    out,
                    limit,
                    path,
                    format!("expected {} items, got {}", e.len(), a.len()),
                );
            }
        }
        (Value::Number(x), Value::Number(y)) if numerically_equal(x, y) => {}
        _ if expected == actual => {}
        _ => report(
            out,
            limit,
            path,
            format!("expected {}, got {}", short(expected), short(actual)),
        ),
    }
}

fn report(out: &mut Vec<Difference>, limit: usize, path: &str, detail: String) {
    if out.len() < limit {
        out.push(Difference {
            path: path.to_owned(),
            detail,
        });
    }
}

/// `1` = `1.0`. Two integers are compared exactly, anything else as `f64`.
fn numerically_equal(x: &serde_json::Number, y: &serde_json::Number) -> bool {
    let integer = |n: &serde_json::Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    match (integer(x), integer(y)) {
        (Some(a), Some(b)) => a == b,
        _ => x.as_f64().is_some() && x.as_f64() == y.as_f64(),
    }
}

/// Canonical text of `value`, cut to 200 characters.
fn short(value: &Value) -> String {
    let text = canonical_json(value);
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}
