//! JSON values as the interpreter holds them: canonical text where a value came as
//! text (borrowed from the invocation's inputs, never copied), a tree only where the
//! interpreter built one or needs one, and arrays and objects of other values for what
//! it composes (canons, map entries), which are never copied into a new text.
//!
//! Canonical text is what `serde_json` writes for a `serde_json::Value`: compact, keys
//! sorted and unique, its escapes. Two equal values have the same canonical text, so
//! text is compared, hashed into content ids and written into data as it is.

use std::borrow::Cow;
use std::cell::{Cell, OnceCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::Value as JValue;

/// A content id: the blake3 hash of a value's canonical text.
pub(crate) type Cid = [u8; 32];

/// A value. Cheap to share (`Rc<Json>`); its tree and content id are computed once.
pub(crate) struct Json<'a> {
    repr: Repr<'a>,
    tree: OnceCell<JValue>,
    cid: Cell<Option<Cid>>,
}

enum Repr<'a> {
    /// Canonical text, checked.
    Text(&'a str),
    /// A tree built here (in `tree`).
    Tree,
    /// A string borrowed from the script (a literal).
    Str(&'a str),
    /// An array of other values.
    Array(Vec<Rc<Json<'a>>>),
    /// An object of other values, keys sorted and unique.
    Object(Vec<(Cow<'static, str>, Rc<Json<'a>>)>),
}

/// The outcome of a lens step on a value.
pub(crate) enum Access<'a> {
    Found(Rc<Json<'a>>),
    /// The value is an array (object) but has no such element (field).
    Missing,
    /// The value is not an array (object).
    WrongType,
}

impl std::fmt::Debug for Json<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

impl PartialEq for Json<'_> {
    fn eq(&self, other: &Self) -> bool {
        if std::ptr::eq(self, other) {
            return true;
        }
        // Known content ids were computed here, checked on arrival, or stored in this
        // peer's own data: equal ids are equal texts.
        if let (Some(a), Some(b)) = (self.cid.get(), other.cid.get()) {
            return a == b;
        }
        match (&self.repr, &other.repr) {
            (Repr::Text(a), Repr::Text(b)) => a == b,
            (Repr::Tree, Repr::Tree) => self.tree() == other.tree(),
            (Repr::Str(a), Repr::Str(b)) => a == b,
            (Repr::Array(a), Repr::Array(b)) => a == b,
            (Repr::Object(a), Repr::Object(b)) => a == b,
            _ => self.text() == other.text(),
        }
    }
}

impl From<JValue> for Json<'_> {
    fn from(value: JValue) -> Self {
        Self::with_repr(Repr::Tree, OnceCell::from(value))
    }
}

impl<'a> Json<'a> {
    fn with_repr(repr: Repr<'a>, tree: OnceCell<JValue>) -> Self {
        Self {
            repr,
            tree,
            cid: Cell::new(None),
        }
    }

    /// A service's result text: kept as it is when canonical, else parsed (the error is
    /// `serde_json`'s).
    pub(crate) fn parse_result(text: &'a str) -> Result<Self, serde_json::Error> {
        if scan::canonical(text) {
            return Ok(Self::with_repr(Repr::Text(text), OnceCell::new()));
        }
        serde_json::from_str::<JValue>(text).map(Self::from)
    }

    /// A value stored in data: it must be canonical text.
    pub(crate) fn stored(text: &'a str) -> Result<Self, &'static str> {
        if !scan::canonical(text) {
            // The scan is strict (floats, rare escapes and deep nesting are left to
            // serde_json); canonical is what serde_json writes back unchanged.
            let tree: JValue =
                serde_json::from_str(text).map_err(|_| "a value is not valid JSON")?;
            if serde_json::to_string(&tree).ok().as_deref() != Some(text) {
                return Err("a value is not in canonical form (compact, keys sorted)");
            }
            return Ok(Self::with_repr(Repr::Text(text), OnceCell::from(tree)));
        }
        Ok(Self::with_repr(Repr::Text(text), OnceCell::new()))
    }

    /// A string literal of the script.
    pub(crate) fn str(s: &'a str) -> Self {
        Self::with_repr(Repr::Str(s), OnceCell::new())
    }

    /// An array of values.
    pub(crate) fn array(items: Vec<Rc<Json<'a>>>) -> Self {
        Self::with_repr(Repr::Array(items), OnceCell::new())
    }

    /// An object of values.
    pub(crate) fn object(fields: BTreeMap<String, Rc<Json<'a>>>) -> Self {
        let fields = fields
            .into_iter()
            .map(|(k, v)| (Cow::Owned(k), v))
            .collect();
        Self::with_repr(Repr::Object(fields), OnceCell::new())
    }

    /// A stream map entry, `{"key": key, "value": value}`.
    pub(crate) fn entry(key: Rc<Json<'a>>, value: Rc<Json<'a>>) -> Self {
        let fields = vec![(Cow::Borrowed("key"), key), (Cow::Borrowed("value"), value)];
        Self::with_repr(Repr::Object(fields), OnceCell::new())
    }

    /// The value as a tree, built on first use.
    pub(crate) fn tree(&self) -> &JValue {
        self.tree.get_or_init(|| match &self.repr {
            // Checked when the value was made: it parses (`Null` is never reached).
            Repr::Text(text) => serde_json::from_str(text).unwrap_or(JValue::Null),
            Repr::Tree => JValue::Null,
            Repr::Str(s) => JValue::String((*s).to_owned()),
            Repr::Array(items) => JValue::Array(items.iter().map(|v| v.tree().clone()).collect()),
            Repr::Object(fields) => JValue::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.tree().clone()))
                    .collect(),
            ),
        })
    }

    /// The canonical text.
    pub(crate) fn text(&self) -> std::borrow::Cow<'_, str> {
        match &self.repr {
            Repr::Text(text) => std::borrow::Cow::Borrowed(text),
            _ => {
                let mut out = Vec::new();
                self.write(&mut out);
                // Only JSON text was written.
                std::borrow::Cow::Owned(String::from_utf8(out).unwrap_or_default())
            }
        }
    }

    /// Whether both values are texts (as decoded from data) and the same text.
    pub(crate) fn same_text(&self, other: &Self) -> bool {
        matches!((&self.repr, &other.repr), (Repr::Text(a), Repr::Text(b)) if a == b)
    }

    /// The length of the canonical text, for sizing buffers: exact for texts and for
    /// arrays and objects of them (a buffer sized short of a big composed value would
    /// double), a lower bound for a string literal (escapes), a small guess for a tree.
    pub(crate) fn text_len_hint(&self) -> usize {
        match &self.repr {
            Repr::Text(text) => text.len(),
            Repr::Tree => 64,
            Repr::Str(s) => s.len() + 2,
            Repr::Array(items) => {
                1 + items.len().max(1) + items.iter().map(|i| i.text_len_hint()).sum::<usize>()
            }
            Repr::Object(fields) => {
                1 + fields.len().max(1)
                    + fields
                        .iter()
                        .map(|(k, v)| k.len() + 3 + v.text_len_hint())
                        .sum::<usize>()
            }
        }
    }

    /// Writes the canonical text.
    pub(crate) fn write(&self, out: &mut impl Sink) {
        match &self.repr {
            Repr::Text(text) => out.put(text.as_bytes()),
            Repr::Tree => {
                // Writing a tree into a sink cannot fail.
                let _ = serde_json::to_writer(SinkWriter(out), self.tree());
            }
            Repr::Str(s) => {
                let _ = serde_json::to_writer(SinkWriter(out), s);
            }
            Repr::Array(items) => {
                out.put(b"[");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.put(b",");
                    }
                    item.write(out);
                }
                out.put(b"]");
            }
            Repr::Object(fields) => {
                out.put(b"{");
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.put(b",");
                    }
                    let _ = serde_json::to_writer(SinkWriter(out), &**key);
                    out.put(b":");
                    value.write(out);
                }
                out.put(b"}");
            }
        }
    }

    /// The content id: blake3 of the canonical text, computed once.
    pub(crate) fn cid(&self) -> Cid {
        if let Some(cid) = self.cid.get() {
            return cid;
        }
        let mut hasher = blake3::Hasher::new();
        self.write(&mut hasher);
        let cid = *hasher.finalize().as_bytes();
        self.cid.set(Some(cid));
        cid
    }

    /// Records the content id stored with the value in data.
    pub(crate) fn know_cid(&self, cid: Cid) {
        self.cid.set(Some(cid));
    }

    /// The element `index` of an array.
    pub(crate) fn index(&self, index: usize) -> Access<'a> {
        match &self.repr {
            Repr::Text(text) if self.tree.get().is_none() => {
                scan::elements(text).map_or(Access::WrongType, |mut elements| {
                    elements
                        .nth(index)
                        .map_or(Access::Missing, |t| Access::Found(Rc::new(Self::sub(t))))
                })
            }
            Repr::Array(items) => items
                .get(index)
                .map_or(Access::Missing, |v| Access::Found(v.clone())),
            _ => match self.tree() {
                JValue::Array(items) => items.get(index).map_or(Access::Missing, |v| {
                    Access::Found(Rc::new(Self::from(v.clone())))
                }),
                _ => Access::WrongType,
            },
        }
    }

    /// The field `name` of an object.
    pub(crate) fn field(&self, name: &str) -> Access<'a> {
        match &self.repr {
            Repr::Text(text) if self.tree.get().is_none() => match scan::field(text, name) {
                scan::Field::Found(t) => Access::Found(Rc::new(Self::sub(t))),
                scan::Field::Missing => Access::Missing,
                scan::Field::NotObject => Access::WrongType,
                scan::Field::Escaped => self.tree_field(name),
            },
            Repr::Object(fields) => fields
                .binary_search_by(|(k, _)| (**k).cmp(name))
                .map_or(Access::Missing, |i| Access::Found(fields[i].1.clone())),
            _ => self.tree_field(name),
        }
    }

    fn tree_field(&self, name: &str) -> Access<'a> {
        match self.tree() {
            JValue::Object(fields) => fields.get(name).map_or(Access::Missing, |v| {
                Access::Found(Rc::new(Self::from(v.clone())))
            }),
            _ => Access::WrongType,
        }
    }

    /// A part of canonical text is canonical text.
    fn sub(text: &'a str) -> Self {
        Self::with_repr(Repr::Text(text), OnceCell::new())
    }

    /// The elements of an array, `None` for anything else.
    pub(crate) fn items(&self) -> Option<Vec<Rc<Json<'a>>>> {
        match &self.repr {
            Repr::Text(text) if self.tree.get().is_none() => {
                scan::elements(text).map(|items| items.map(|t| Rc::new(Self::sub(t))).collect())
            }
            Repr::Array(items) => Some(items.clone()),
            _ => match self.tree() {
                JValue::Array(items) => Some(
                    items
                        .iter()
                        .map(|v| Rc::new(Self::from(v.clone())))
                        .collect(),
                ),
                _ => None,
            },
        }
    }

    /// The length of an array, `None` for anything else.
    pub(crate) fn array_len(&self) -> Option<usize> {
        match &self.repr {
            Repr::Text(text) if self.tree.get().is_none() => {
                scan::elements(text).map(Iterator::count)
            }
            Repr::Array(items) => Some(items.len()),
            _ => self.tree().as_array().map(Vec::len),
        }
    }

    /// Whether the value is an array or an object.
    pub(crate) fn is_container(&self) -> bool {
        match &self.repr {
            Repr::Text(text) => text.starts_with(['[', '{']),
            Repr::Array(_) | Repr::Object(_) => true,
            Repr::Tree => matches!(self.tree(), JValue::Array(_) | JValue::Object(_)),
            Repr::Str(_) => false,
        }
    }

    /// The string, for a string value.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.repr {
            Repr::Array(_) | Repr::Object(_) => None,
            Repr::Str(s) => Some(s),
            Repr::Text(text) if !text.starts_with('"') => None,
            _ => self.tree().as_str(),
        }
    }
}

/// Where canonical text goes: a buffer, a hasher, a counter.
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for blake3::Hasher {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

struct SinkWriter<'s, S: Sink>(&'s mut S);

impl<S: Sink> std::io::Write for SinkWriter<'_, S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.put(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Scanning canonical JSON text without building a tree.
mod scan {
    /// Deeper nesting is left to serde_json (whose limit is 128).
    const MAX_DEPTH: usize = 100;

    /// Whether `text` is one value in canonical form. `false` also for what this strict
    /// scan leaves to serde_json: floats, integers out of the 64-bit ranges, escapes
    /// other than serde_json's, escaped keys, nesting deeper than `MAX_DEPTH`.
    pub(super) fn canonical(text: &str) -> bool {
        let bytes = text.as_bytes();
        matches!(value(bytes, 0, 0), Some(end) if end == bytes.len())
    }

    fn value(b: &[u8], at: usize, depth: usize) -> Option<usize> {
        match *b.get(at)? {
            b'"' => string(b, at).map(|(end, _)| end),
            b'{' => object(b, at, depth + 1),
            b'[' => array(b, at, depth + 1),
            b't' => literal(b, at, b"true"),
            b'f' => literal(b, at, b"false"),
            b'n' => literal(b, at, b"null"),
            b'-' | b'0'..=b'9' => integer(b, at),
            _ => None,
        }
    }

    fn literal(b: &[u8], at: usize, word: &[u8]) -> Option<usize> {
        b[at..].starts_with(word).then_some(at + word.len())
    }

    fn integer(b: &[u8], at: usize) -> Option<usize> {
        let negative = b[at] == b'-';
        let digits_start = at + usize::from(negative);
        let mut end = digits_start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        let digits = &b[digits_start..end];
        if digits.is_empty()
            || (digits[0] == b'0' && (digits.len() > 1 || negative))
            || matches!(b.get(end), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        // ASCII digits.
        let text = std::str::from_utf8(&b[at..end]).ok()?;
        let fits = if negative {
            text.parse::<i64>().is_ok()
        } else {
            text.parse::<u64>().is_ok()
        };
        fits.then_some(end)
    }

    /// A string in canonical form; also whether it has escapes.
    fn string(b: &[u8], at: usize) -> Option<(usize, bool)> {
        let mut i = at + 1;
        let mut escaped = false;
        loop {
            i = plain_run(b, i);
            match *b.get(i)? {
                b'"' => return Some((i + 1, escaped)),
                b'\\' => {
                    escaped = true;
                    match *b.get(i + 1)? {
                        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                        b'u' => {
                            // serde_json writes `\u00xx`, lowercase, for the other
                            // control characters only.
                            let hex = b.get(i + 2..i + 6)?;
                            let code = match hex {
                                [b'0', b'0', h, l] => hex_digit(*h)? * 16 + hex_digit(*l)?,
                                _ => return None,
                            };
                            if code >= 0x20 || matches!(code, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                                return None;
                            }
                            i += 6;
                        }
                        _ => return None,
                    }
                }
                // A raw control character.
                _ => return None,
            }
        }
    }

    fn hex_digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }

    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;

    /// Nonzero where a byte of `w` equals `byte` (the lowest such byte is exact).
    fn has(w: u64, byte: u8) -> u64 {
        let x = w ^ (ONES * u64::from(byte));
        x.wrapping_sub(ONES) & !x & HIGHS
    }

    /// The end of a run of string bytes that need no attention: not `"`, `\` or a
    /// control character.
    fn plain_run(b: &[u8], mut i: usize) -> usize {
        while let Some(chunk) = b.get(i..i + 8) {
            let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
            let stop = has(w, b'"') | has(w, b'\\') | (w.wrapping_sub(ONES * 0x20) & !w & HIGHS);
            if stop != 0 {
                return i + (stop.trailing_zeros() / 8) as usize;
            }
            i += 8;
        }
        while i < b.len() && b[i] != b'"' && b[i] != b'\\' && b[i] >= 0x20 {
            i += 1;
        }
        i
    }

    fn object(b: &[u8], at: usize, depth: usize) -> Option<usize> {
        if depth > MAX_DEPTH {
            return None;
        }
        let mut i = at + 1;
        if *b.get(i)? == b'}' {
            return Some(i + 1);
        }
        let mut previous: Option<&[u8]> = None;
        loop {
            if *b.get(i)? != b'"' {
                return None;
            }
            let (key_end, escaped) = string(b, i)?;
            let key = &b[i + 1..key_end - 1];
            if escaped || previous.is_some_and(|p| p >= key) {
                return None;
            }
            previous = Some(key);
            if *b.get(key_end)? != b':' {
                return None;
            }
            i = value(b, key_end + 1, depth)?;
            match *b.get(i)? {
                b',' => i += 1,
                b'}' => return Some(i + 1),
                _ => return None,
            }
        }
    }

    fn array(b: &[u8], at: usize, depth: usize) -> Option<usize> {
        if depth > MAX_DEPTH {
            return None;
        }
        let mut i = at + 1;
        if *b.get(i)? == b']' {
            return Some(i + 1);
        }
        loop {
            i = value(b, i, depth)?;
            match *b.get(i)? {
                b',' => i += 1,
                b']' => return Some(i + 1),
                _ => return None,
            }
        }
    }

    // ----- navigation in text already known to be valid and compact -----

    /// The end of the value starting at `at`.
    fn skip(b: &[u8], at: usize) -> usize {
        match b[at] {
            b'"' => skip_string(b, at),
            b'{' | b'[' => {
                let mut depth = 0usize;
                let mut i = at;
                while i < b.len() {
                    match b[i] {
                        b'"' => {
                            i = skip_string(b, i);
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                return i + 1;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                b.len()
            }
            _ => {
                let mut i = at;
                while i < b.len() && !matches!(b[i], b',' | b']' | b'}') {
                    i += 1;
                }
                i
            }
        }
    }

    fn skip_string(b: &[u8], at: usize) -> usize {
        let mut i = at + 1;
        loop {
            i = plain_run(b, i);
            match b.get(i) {
                Some(b'"') => return i + 1,
                Some(b'\\') => i += 2,
                Some(_) => i += 1,
                None => return b.len(),
            }
        }
    }

    /// The elements of an array, in order; `None` if the text is not an array.
    pub(super) fn elements(text: &str) -> Option<impl Iterator<Item = &str>> {
        let b = text.as_bytes();
        if b.first() != Some(&b'[') {
            return None;
        }
        let mut i = if b.get(1) == Some(&b']') { b.len() } else { 1 };
        Some(std::iter::from_fn(move || {
            if i >= b.len() {
                return None;
            }
            let end = skip(b, i);
            let element = text.get(i..end);
            i = end + 1;
            element
        }))
    }

    pub(super) enum Field<'t> {
        Found(&'t str),
        Missing,
        NotObject,
        /// An escaped key was met: look it up in the tree.
        Escaped,
    }

    pub(super) fn field<'t>(text: &'t str, name: &str) -> Field<'t> {
        let b = text.as_bytes();
        if b.first() != Some(&b'{') {
            return Field::NotObject;
        }
        if b.get(1) == Some(&b'}') {
            return Field::Missing;
        }
        let mut i = 1;
        while i < b.len() {
            let key_end = skip_string(b, i);
            let key = &b[i + 1..key_end - 1];
            if key.contains(&b'\\') {
                return Field::Escaped;
            }
            let value_end = skip(b, key_end + 1);
            match key.cmp(name.as_bytes()) {
                std::cmp::Ordering::Equal => {
                    return text
                        .get(key_end + 1..value_end)
                        .map_or(Field::Missing, Field::Found);
                }
                // Keys are sorted.
                std::cmp::Ordering::Greater => return Field::Missing,
                std::cmp::Ordering::Less => {}
            }
            i = value_end + 1;
        }
        Field::Missing
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn canonical_is_what_serde_json_writes_back() {
            for text in [
                "null",
                "true",
                "false",
                "0",
                "-1",
                "18446744073709551615",
                "-9223372036854775808",
                r#""""#,
                r#""a\"b\\c\n\u001f""#,
                "[]",
                "{}",
                r#"{"a":[1,{"b":null}],"b":"x"}"#,
                "[[[]]]",
                r#""é😀""#,
            ] {
                assert!(canonical(text), "{text}");
                let tree: serde_json::Value = serde_json::from_str(text).unwrap();
                assert_eq!(serde_json::to_string(&tree).unwrap(), text);
            }
        }

        #[test]
        fn anything_else_is_left_to_serde_json() {
            for text in [
                "",
                " 1",
                "1 ",
                "01",
                "-0",
                "1.5",
                "1e3",
                "18446744073709551616",
                "-9223372036854775809",
                r#""\/""#,
                r#""\u0041""#,
                r#""\u001F""#,
                r#""\u000a""#,
                "\"a\u{1}\"",
                r#"{"b":1,"a":2}"#,
                r#"{"a":1,"a":2}"#,
                r#"{"\n":1}"#,
                "[1,]",
                "[1 ,2]",
                "{\"a\" :1}",
                "nul",
                "[",
                r#""abc"#,
                "tru",
                "[1]]",
                "{}{}",
            ] {
                assert!(!canonical(text), "{text:?}");
            }
            let deep = format!("{}{}", "[".repeat(101), "]".repeat(101));
            assert!(!canonical(&deep));
            let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
            assert!(canonical(&ok));
        }

        #[test]
        fn navigation_finds_parts() {
            let text = r#"[{"a":"x,]}\"","b":[1,2]},3,"s"]"#;
            assert!(canonical(text));
            let index = |text, i| elements(text).map(|mut e| e.nth(i));
            assert_eq!(
                elements(text).unwrap().collect::<Vec<_>>(),
                [r#"{"a":"x,]}\"","b":[1,2]}"#, "3", r#""s""#]
            );
            assert_eq!(index(text, 2), Some(Some(r#""s""#)));
            assert_eq!(index(text, 3), Some(None));
            assert_eq!(index("{}", 0), None);
            assert_eq!(elements("[]").unwrap().count(), 0);
            let obj = r#"{"a":"x,]}\"","b":[1,2]}"#;
            assert!(matches!(field(obj, "b"), Field::Found("[1,2]")));
            assert!(matches!(field(obj, "a"), Field::Found(r#""x,]}\"""#)));
            assert!(matches!(field(obj, "c"), Field::Missing));
            assert!(matches!(field(obj, "0"), Field::Missing));
            assert!(matches!(field("[1]", "a"), Field::NotObject));
        }
    }
}
