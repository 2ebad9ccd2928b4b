//! The deterministic generators of FORMAT.md §8: scripts described by a scenario's
//! `air_generator` (§8.2), values described by a `generate` reply (§8.3), and the
//! splitmix64 PRNG both draw from (§8.4).
//!
//! Every generator writes straight into one pre-sized `String`, so the 112 MiB
//! `balanced_calls` script of `bench/parser-air-100mb` or a 100 MiB `$hex` costs one
//! allocation and a linear pass. Nothing recurses deeper than the balanced tree it
//! writes (`balanced_calls`) or the template it expands (bounded by the JSON parser's
//! nesting limit); `random_ap_tree`, whose tree may be as deep as it has nodes, uses an
//! explicit stack.

use serde::Deserialize;
use serde_json::Value;

/// Why a generator could not produce its output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    /// A parameter is outside the range §8.2 allows (e.g. `calls < 2`).
    #[error("{kind}: {message}")]
    BadParameter {
        /// The generator kind.
        kind: &'static str,
        /// What is wrong.
        message: &'static str,
    },
    /// A single-key object whose key starts with `$` is not one of the four directives.
    #[error("unknown template directive {0:?}")]
    UnknownDirective(String),
    /// A known directive with a malformed argument.
    #[error("bad argument for template directive {directive}: {argument}")]
    BadDirective {
        /// The directive, e.g. `$hex`.
        directive: &'static str,
        /// Its argument as JSON text.
        argument: String,
    },
    /// The output would not fit in memory (its size overflows `usize` or cannot be reserved).
    #[error("generated output too large")]
    TooLarge,
    /// A scenario has neither a string `air` nor a well-formed `air_generator`.
    #[error("scenario script: {0}")]
    Scenario(String),
}

// ---------------------------------------------------------------------------------------
// §8.4 The PRNG

/// splitmix64 (FORMAT.md §8.4), the only PRNG of the conformance format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose state starts at `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next draw.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `draw mod n` (one draw). `n` must not be 0.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Appends `len` lowercase hex digits: ⌈len/16⌉ draws, each written as 16 digits,
    /// most significant first, the last one cut.
    pub fn push_hex(&mut self, out: &mut String, len: usize) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut left = len;
        let mut chunk = [0u8; 16];
        while left > 0 {
            let x = self.next();
            for (i, c) in chunk.iter_mut().enumerate() {
                *c = DIGITS[((x >> (60 - 4 * i)) & 0xf) as usize];
            }
            let take = left.min(16);
            out.push_str(std::str::from_utf8(&chunk[..take]).expect("hex digits are ASCII"));
            left -= take;
        }
    }
}

// ---------------------------------------------------------------------------------------
// §8.2 Generated scripts

/// A scenario's `air_generator` (FORMAT.md §8.2).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AirGenerator {
    /// `open(0) … open(depth-1) inner close(depth-1) … close(0)`, `{i}` in `open` and
    /// `close` replaced by the level.
    Nest {
        /// Number of levels.
        depth: usize,
        /// Text opening level `{i}`.
        open: String,
        /// Text at the centre.
        inner: String,
        /// Text closing level `{i}`.
        close: String,
    },
    /// A call on `"peer"` followed by a balanced `seq` tree of `calls - 1` calls cycling
    /// through `vars` variables.
    BalancedCalls {
        /// Total number of calls (≥ 2).
        calls: usize,
        /// Number of variables (≥ 2).
        vars: usize,
    },
    /// A fold over a stream whose body is a random binary tree of `nodes` `ap`s with
    /// random names of up to `max_name` letters.
    RandomApTree {
        /// Number of `ap` nodes.
        nodes: usize,
        /// Longest random part of a name (≥ 1).
        max_name: usize,
        /// PRNG seed.
        seed: u64,
    },
}

impl AirGenerator {
    /// The script this generator describes.
    pub fn script(&self) -> Result<String, GenerateError> {
        match self {
            AirGenerator::Nest {
                depth,
                open,
                inner,
                close,
            } => nest(*depth, open, inner, close),
            AirGenerator::BalancedCalls { calls, vars } => balanced_calls(*calls, *vars),
            AirGenerator::RandomApTree {
                nodes,
                max_name,
                seed,
            } => random_ap_tree(*nodes, *max_name, *seed),
        }
    }
}

/// The script `generator` describes (same as [`AirGenerator::script`]).
pub fn generate_air(generator: &AirGenerator) -> Result<String, GenerateError> {
    generator.script()
}

/// The script of a scenario (its JSON object): its `air`, or the script its
/// `air_generator` describes.
pub fn scenario_air(scenario: &Value) -> Result<String, GenerateError> {
    if let Some(air) = scenario.get("air") {
        return air
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| GenerateError::Scenario("`air` is not a string".into()));
    }
    let generator = scenario
        .get("air_generator")
        .ok_or_else(|| GenerateError::Scenario("neither `air` nor `air_generator`".into()))?;
    AirGenerator::deserialize(generator)
        .map_err(|e| GenerateError::Scenario(format!("bad `air_generator`: {e}")))?
        .script()
}

/// Appends the decimal digits of `n`.
fn push_decimal(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buf[i..]).expect("digits are ASCII"));
}

/// A string with room for `capacity` bytes, or [`GenerateError::TooLarge`].
fn with_capacity(capacity: usize) -> Result<String, GenerateError> {
    let mut s = String::new();
    s.try_reserve_exact(capacity)
        .map_err(|_| GenerateError::TooLarge)?;
    Ok(s)
}

/// Checked `a * b + c`.
fn mul_add(a: usize, b: usize, c: usize) -> Result<usize, GenerateError> {
    a.checked_mul(b)
        .and_then(|x| x.checked_add(c))
        .ok_or(GenerateError::TooLarge)
}

/// Checked sum.
fn add(a: usize, b: usize) -> Result<usize, GenerateError> {
    a.checked_add(b).ok_or(GenerateError::TooLarge)
}

/// A text with `{i}` holes, split once so that levels are written without `replace`.
struct Template<'a> {
    pieces: Vec<&'a str>,
}

impl<'a> Template<'a> {
    fn new(text: &'a str) -> Self {
        Template {
            pieces: text.split("{i}").collect(),
        }
    }

    fn holes(&self) -> usize {
        self.pieces.len() - 1
    }

    fn fixed_len(&self) -> usize {
        self.pieces.iter().map(|p| p.len()).sum()
    }

    fn push(&self, out: &mut String, level: usize) {
        let (first, rest) = self
            .pieces
            .split_first()
            .expect("split yields one piece at least");
        out.push_str(first);
        for piece in rest {
            push_decimal(out, level as u64);
            out.push_str(piece);
        }
    }
}

fn nest(depth: usize, open: &str, inner: &str, close: &str) -> Result<String, GenerateError> {
    let (open, close) = (Template::new(open), Template::new(close));
    // Exact size: the fixed text of every level plus the digits of every hole.
    let digits = digit_sum(depth, usize::MAX)?;
    let fixed = mul_add(
        depth,
        add(open.fixed_len(), close.fixed_len())?,
        inner.len(),
    )?;
    let holes = mul_add(digits, add(open.holes(), close.holes())?, fixed)?;
    let mut out = with_capacity(holes)?;
    for k in 0..depth {
        open.push(&mut out, k);
    }
    out.push_str(inner);
    for k in (0..depth).rev() {
        close.push(&mut out, k);
    }
    debug_assert_eq!(out.len(), holes);
    Ok(out)
}

/// `Σ decimal_len(k mod modulus)` for `k < count` (`modulus` ≥ 1).
fn digit_sum(count: usize, modulus: usize) -> Result<usize, GenerateError> {
    // Σ decimal_len(a) for a < n, by decades: [10^d, 10^(d+1)) has d+1 digits.
    let below = |n: usize| -> Result<usize, GenerateError> {
        let mut total = n.min(10);
        let (mut low, mut digits) = (10usize, 2usize);
        while low < n {
            let high = low.saturating_mul(10).min(n);
            total = mul_add(high - low, digits, total)?;
            low = low.saturating_mul(10);
            digits += 1;
        }
        Ok(total)
    };
    let (full, rest) = (count / modulus, count % modulus);
    let cycles = if full == 0 {
        0
    } else {
        full.checked_mul(below(modulus)?)
            .ok_or(GenerateError::TooLarge)?
    };
    add(cycles, below(rest)?)
}

const PEER_CALL_HEAD: &str = "(seq (call \"peer\" (\"serv\" \"func\") [] ";
const CALL_HEAD: &str = "(call var";
const CALL_MIDDLE: &str = " (\"serv\" \"func\") [] var";

fn balanced_calls(calls: usize, vars: usize) -> Result<String, GenerateError> {
    if calls < 2 || vars < 2 {
        return Err(GenerateError::BadParameter {
            kind: "balanced_calls",
            message: "needs calls >= 2 and vars >= 2",
        });
    }
    let statements = calls - 1;
    // Exact size: each statement's fixed text and its two numbers, `(seq ` + ` ` + `)`
    // around each of the statements - 1 inner nodes, and the head and its `)`.
    let a_digits = digit_sum(statements, vars)?;
    // b = (k + 1) mod vars for k < statements: the a-sequence shifted by one.
    let b_digits = digit_sum(statements + 1, vars)? - 1;
    let fixed = CALL_HEAD.len() + CALL_MIDDLE.len() + 1;
    let size = mul_add(statements, fixed, add(a_digits, b_digits)?)?;
    let size = mul_add(statements - 1, "(seq ".len() + 2, size)?;
    let size = add(size, PEER_CALL_HEAD.len() + "var0) ".len() + 1)?;

    let mut out = with_capacity(size)?;
    out.push_str(PEER_CALL_HEAD);
    out.push_str("var0) ");
    balanced(&mut out, 0, statements, vars);
    out.push(')');
    debug_assert_eq!(out.len(), size);
    Ok(out)
}

/// `tree(s(first) … s(first + count - 1))`; recursion depth is ⌈log2 count⌉.
fn balanced(out: &mut String, first: usize, count: usize, vars: usize) {
    if count == 1 {
        out.push_str(CALL_HEAD);
        push_decimal(out, (first % vars) as u64);
        out.push_str(CALL_MIDDLE);
        push_decimal(out, ((first + 1) % vars) as u64);
        out.push(')');
    } else {
        let left = count / 2;
        out.push_str("(seq ");
        balanced(out, first, left, vars);
        out.push(' ');
        balanced(out, first + left, count - left, vars);
        out.push(')');
    }
}

fn random_ap_tree(nodes: usize, max_name: usize, seed: u64) -> Result<String, GenerateError> {
    const ALPHA: &[u8; 52] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const HEAD: &str = "(seq (call \"peer\" (\"serv\" \"func\") [] stream) (fold stream i (seq ";

    /// Work left to do, innermost last.
    enum Task {
        Tree(usize),
        Text(&'static str),
    }

    if max_name < 1 {
        return Err(GenerateError::BadParameter {
            kind: "random_ap_tree",
            message: "needs max_name >= 1",
        });
    }
    // An estimate: names average about max_name / 2 letters; capped, since the size is
    // only a hint here.
    let estimate = nodes
        .saturating_mul(32 + max_name / 2)
        .saturating_add(HEAD.len() + 16)
        .min(1 << 30);
    let mut out = with_capacity(estimate)?;
    out.push_str(HEAD);

    let mut rng = SplitMix64::new(seed);
    let mut index: u64 = 0;
    let mut stack = vec![Task::Tree(nodes)];
    while let Some(task) = stack.pop() {
        match task {
            Task::Text(text) => out.push_str(text),
            Task::Tree(0) => out.push_str("(null)"),
            Task::Tree(n) => {
                let left = rng.below(n as u64) as usize;
                let len = 1 + rng.below(max_name as u64);
                out.push_str("(seq (ap i ");
                for _ in 0..len {
                    out.push(ALPHA[rng.below(52) as usize] as char);
                }
                push_decimal(&mut out, index);
                index += 1;
                out.push_str(") (seq ");
                stack.push(Task::Text("))"));
                stack.push(Task::Tree(n - 1 - left));
                stack.push(Task::Text(" "));
                stack.push(Task::Tree(left));
            }
        }
    }
    out.push_str(" (next i))))");
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// §8.3 Generated values

/// The compact JSON text of `template` expanded with a PRNG seeded with `seed`
/// (FORMAT.md §8.3): the answer of a `{"generate": {"seed": S, "value": T}}` reply.
///
/// The whole template is checked (and the output measured) before anything is drawn, so
/// a malformed directive is an error even where it would be expanded zero times.
pub fn generate_value(seed: u64, template: &Value) -> Result<String, GenerateError> {
    let size = measure(template)?;
    let mut out = with_capacity(size)?;
    expand(template, &mut SplitMix64::new(seed), &mut out);
    debug_assert_eq!(out.len(), size);
    Ok(out)
}

/// The single-key objects a template may contain.
enum Directive<'a> {
    Hex(usize),
    Range(usize),
    Array(usize, &'a Value),
    Strings(usize, &'a str),
}

/// `Some` when `t` is a directive, `None` when it is copied.
fn directive(t: &Value) -> Result<Option<Directive<'_>>, GenerateError> {
    let Some(map) = t.as_object().filter(|m| m.len() == 1) else {
        return Ok(None);
    };
    let (key, arg) = map.iter().next().expect("one entry");
    if !key.starts_with('$') {
        return Ok(None);
    }
    let size = |v: Option<&Value>| {
        v.and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
    };
    let count = || size(arg.get("count"));
    let (name, parsed) = match key.as_str() {
        "$hex" => ("$hex", size(Some(arg)).map(Directive::Hex)),
        "$range" => ("$range", size(Some(arg)).map(Directive::Range)),
        "$array" => (
            "$array",
            count()
                .zip(arg.get("item"))
                .map(|(n, t)| Directive::Array(n, t)),
        ),
        "$strings" => (
            "$strings",
            count()
                .zip(arg.get("prefix").and_then(Value::as_str))
                .map(|(n, p)| Directive::Strings(n, p)),
        ),
        other => return Err(GenerateError::UnknownDirective(other.to_owned())),
    };
    parsed.map(Some).ok_or_else(|| GenerateError::BadDirective {
        directive: name,
        argument: arg.to_string(),
    })
}

/// Length of a JSON string literal (quotes included) as serde_json writes it.
fn json_string_len(s: &str) -> usize {
    s.bytes()
        .map(|b| match b {
            b'"' | b'\\' | 0x08 | 0x0c | b'\n' | b'\r' | b'\t' => 2,
            0..0x20 => 6,
            _ => 1,
        })
        .sum::<usize>()
        + 2
}

/// Appends `s` as a JSON string literal without its closing quote.
fn push_json_string_open(out: &mut String, s: &str) {
    let quoted = serde_json::to_string(s).expect("a string serializes");
    out.push_str(&quoted[..quoted.len() - 1]);
}

/// Exact length of the expansion of `t`; checks every directive on the way.
fn measure(t: &Value) -> Result<usize, GenerateError> {
    match directive(t)? {
        Some(Directive::Hex(n)) => add(n, 2),
        Some(Directive::Range(n)) => {
            // `[` `0,1,…,n-1` `]`: digits plus n-1 commas.
            let digits = digit_sum(n, usize::MAX)?;
            add(digits, n.max(1) + 1)
        }
        Some(Directive::Array(n, item)) => {
            let one = add(measure(item)?, 1)?;
            mul_add(n, one, 1 + usize::from(n == 0))
        }
        Some(Directive::Strings(n, prefix)) => {
            let one = json_string_len(prefix) + 1; // both quotes and a comma
            let digits = digit_sum(n, usize::MAX)?;
            mul_add(n, one, add(digits, 1 + usize::from(n == 0))?)
        }
        None => match t {
            Value::Array(items) => {
                let mut total = 1 + items.len().max(1);
                for item in items {
                    total = add(total, measure(item)?)?;
                }
                Ok(total)
            }
            Value::Object(map) => {
                let mut total = 1 + map.len().max(1);
                for (key, value) in map {
                    total = add(total, json_string_len(key) + 1)?;
                    total = add(total, measure(value)?)?;
                }
                Ok(total)
            }
            other => Ok(other.to_string().len()),
        },
    }
}

/// Writes the expansion of a measured (hence checked) template.
fn expand(t: &Value, rng: &mut SplitMix64, out: &mut String) {
    match directive(t).expect("measured templates are checked") {
        Some(Directive::Hex(n)) => {
            out.push('"');
            rng.push_hex(out, n);
            out.push('"');
        }
        Some(Directive::Range(n)) => {
            out.push('[');
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                push_decimal(out, i as u64);
            }
            out.push(']');
        }
        Some(Directive::Array(n, item)) => {
            out.push('[');
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                expand(item, rng, out);
            }
            out.push(']');
        }
        Some(Directive::Strings(n, prefix)) => {
            let mut open = String::new();
            push_json_string_open(&mut open, prefix);
            out.push('[');
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&open);
                push_decimal(out, i as u64);
                out.push('"');
            }
            out.push(']');
        }
        None => match t {
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    expand(item, rng, out);
                }
                out.push(']');
            }
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                out.push('{');
                for (i, (key, value)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_json_string_open(out, key);
                    out.push_str("\":");
                    expand(value, rng, out);
                }
                out.push('}');
            }
            other => out.push_str(&other.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn splitmix64_seed_0() {
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next(), 0xe220a8397b1dcdaf);
        assert_eq!(rng.next(), 0x6e789e6aa1b965f4);
        assert_eq!(rng.next(), 0x06c45d188009454f);
    }

    #[test]
    fn hex_cuts_the_last_draw() {
        let mut out = String::new();
        SplitMix64::new(0).push_hex(&mut out, 20);
        assert_eq!(out, "e220a8397b1dcdaf6e78");
    }

    #[test]
    fn format_example() {
        let t = json!({"b": {"$hex": 4}, "a": {"$hex": 4}});
        assert_eq!(generate_value(0, &t).unwrap(), r#"{"a":"e220","b":"6e78"}"#);
    }

    #[test]
    fn every_directive() {
        let t = json!([
            {"$strings": {"count": 2, "prefix": "v\"\n"}},
            {"b": {"$hex": 4}, "a": {"$hex": 4}, "B": 1.5, "é": null},
            {"$range": 12},
            {"$array": {"count": 2, "item": {"$hex": 1}}},
            {"$strings": {"count": 0, "prefix": "x"}},
            {"$array": {"count": 0, "item": 1}},
            {"$range": 0},
            {"$hex": 0},
            {},
            [],
            {"$hex": 1, "$other": 2},
            "tab\tand\u{1}"
        ]);
        assert_eq!(
            generate_value(0, &t).unwrap(),
            concat!(
                r#"[["v\"\n0","v\"\n1"],{"B":1.5,"a":"e220","b":"6e78","é":null},"#,
                r#"[0,1,2,3,4,5,6,7,8,9,10,11],["0","f"],[],[],[],"",{},[],"#,
                r#"{"$hex":1,"$other":2},"tab\tand\u0001"]"#
            )
        );
    }

    #[test]
    fn template_errors() {
        assert_eq!(
            generate_value(0, &json!({"x": {"$nope": 1}})),
            Err(GenerateError::UnknownDirective("$nope".into()))
        );
        // checked even where expanded zero times
        let t = json!({"$array": {"count": 0, "item": {"$nope": 1}}});
        assert!(generate_value(0, &t).is_err());
        assert!(matches!(
            generate_value(0, &json!({"$hex": "4"})),
            Err(GenerateError::BadDirective {
                directive: "$hex",
                ..
            })
        ));
        assert!(generate_value(0, &json!({"$strings": {"count": 2}})).is_err());
        assert_eq!(
            generate_value(
                0,
                &json!({"$array": {"count": u64::MAX, "item": {"$hex": 64}}})
            ),
            Err(GenerateError::TooLarge)
        );
    }

    #[test]
    fn nest() {
        let g: AirGenerator = serde_json::from_value(json!(
            {"kind": "nest", "depth": 12, "open": "(a{i}{i} ", "inner": "x", "close": " z{i})"}
        ))
        .unwrap();
        let s = g.script().unwrap();
        assert!(s.starts_with("(a00 (a11 (a22 "));
        assert!(s.contains("(a1111 x z11) z10)"));
        assert!(s.ends_with(" z1) z0)"));
        let g = AirGenerator::Nest {
            depth: 0,
            open: "(".into(),
            inner: "x".into(),
            close: ")".into(),
        };
        assert_eq!(g.script().unwrap(), "x");
    }

    #[test]
    fn balanced_calls_small() {
        let call = |a, b| format!("(call var{a} (\"serv\" \"func\") [] var{b})");
        let g = AirGenerator::BalancedCalls { calls: 4, vars: 2 };
        assert_eq!(
            g.script().unwrap(),
            format!(
                "(seq (call \"peer\" (\"serv\" \"func\") [] var0) (seq {} (seq {} {})))",
                call(0, 1),
                call(1, 0),
                call(0, 1)
            )
        );
        let g = AirGenerator::BalancedCalls { calls: 2, vars: 2 };
        assert_eq!(
            g.script().unwrap(),
            format!(
                "(seq (call \"peer\" (\"serv\" \"func\") [] var0) {})",
                call(0, 1)
            )
        );
        assert!(
            AirGenerator::BalancedCalls { calls: 1, vars: 2 }
                .script()
                .is_err()
        );
        assert!(
            AirGenerator::BalancedCalls { calls: 2, vars: 1 }
                .script()
                .is_err()
        );
        // sizes are computed exactly (checked by the debug assertion) across digit widths
        for (calls, vars) in [
            (3, 2),
            (11, 10),
            (12, 11),
            (1000, 101),
            (1001, 1000),
            (5, 1000),
        ] {
            let s = AirGenerator::BalancedCalls { calls, vars }
                .script()
                .unwrap();
            assert_eq!(s.matches("(call ").count(), calls);
        }
    }

    #[test]
    fn random_ap_tree_shape() {
        let t = AirGenerator::RandomApTree {
            nodes: 3,
            max_name: 4,
            seed: 7,
        }
        .script()
        .unwrap();
        assert_eq!(t.matches("(ap i ").count(), 3);
        assert_eq!(t.matches("(null)").count(), 4);
        let t = AirGenerator::RandomApTree {
            nodes: 0,
            max_name: 1,
            seed: 7,
        }
        .script()
        .unwrap();
        assert_eq!(
            t,
            "(seq (call \"peer\" (\"serv\" \"func\") [] stream) (fold stream i (seq (null) (next i))))"
        );
        // the first node's draws, by hand: left = below(1) = 0, len = 1 + below(1) = 1,
        // then one letter
        let mut rng = SplitMix64::new(5);
        rng.next();
        rng.next();
        let letter =
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[rng.below(52) as usize] as char;
        let t = AirGenerator::RandomApTree {
            nodes: 1,
            max_name: 1,
            seed: 5,
        }
        .script()
        .unwrap();
        assert!(
            t.contains(&format!(
                "(seq (ap i {letter}0) (seq (null) (null))) (next i)"
            )),
            "{t}"
        );
    }

    #[test]
    fn random_ap_tree_deep_does_not_overflow() {
        // max_name 1 and many nodes: whatever the shape, no recursion is involved
        let t = AirGenerator::RandomApTree {
            nodes: 200_000,
            max_name: 1,
            seed: 3,
        }
        .script()
        .unwrap();
        assert_eq!(t.matches("(ap i ").count(), 200_000);
        assert!(t.contains("199999) "));
    }

    #[test]
    fn air_generator_rejects_unknown_fields_and_kinds() {
        assert!(serde_json::from_value::<AirGenerator>(json!({"kind": "nope"})).is_err());
        assert!(
            serde_json::from_value::<AirGenerator>(
                json!({"kind": "balanced_calls", "calls": 3, "vars": 2, "x": 1})
            )
            .is_err()
        );
    }
}
