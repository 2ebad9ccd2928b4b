//! Splits AIR text into tokens: punctuation, string literals and classified bare words.
//!
//! The rules, quirks included, are those of the language spec (air-language.md §2): a
//! string has no escapes and ends at the next `"`; a bare word runs until whitespace or
//! until a `)` or `]` closes more than the word opened; comments run from `;` to the
//! end of the line.

use crate::ast::{Lens, Var, VarKind};
use crate::error::ErrorKind;
use crate::span::Span;
use crate::word;

/// A raw token: what kind, where, and for words what the scanner learnt about them.
/// Words are classified (into numbers, variables, keywords, …) only where the parser
/// reads them, with [`Lexer::classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) raw: Raw,
    /// For a word: its first byte is ASCII and every later byte a name character
    /// (ASCII alphanumeric, `_`, `-`), so it has no lens and no brackets.
    pub(crate) plain: bool,
    pub(crate) span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Raw {
    Open,
    Close,
    OpenSquare,
    CloseSquare,
    /// A string literal; its text is between the quotes.
    String,
    /// A bare word.
    Word,
    End,
}

/// A classified bare word.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind<'a> {
    Keyword(Keyword),
    InitPeerId,
    Timestamp,
    Ttl,
    LastError(Option<Lens<'a>>),
    Error(Option<Lens<'a>>),
    Bool(bool),
    Int(i64),
    Float(f64),
    Var(Var<'a>, Option<Lens<'a>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    Call,
    Canon,
    Ap,
    Seq,
    Par,
    Xor,
    Null,
    Never,
    New,
    Fail,
    Fold,
    Next,
    Match,
    Mismatch,
}

impl Keyword {
    pub(crate) fn from_word(word: &str) -> Option<Self> {
        // Byte patterns: a decision tree on length and bytes, no string comparisons.
        Some(match word.as_bytes() {
            [b'c', b'a', b'l', b'l'] => Self::Call,
            [b'c', b'a', b'n', b'o', b'n'] => Self::Canon,
            [b'a', b'p'] => Self::Ap,
            [b's', b'e', b'q'] => Self::Seq,
            [b'p', b'a', b'r'] => Self::Par,
            [b'x', b'o', b'r'] => Self::Xor,
            [b'n', b'u', b'l', b'l'] => Self::Null,
            [b'n', b'e', b'v', b'e', b'r'] => Self::Never,
            [b'n', b'e', b'w'] => Self::New,
            [b'f', b'a', b'i', b'l'] => Self::Fail,
            [b'f', b'o', b'l', b'd'] => Self::Fold,
            [b'n', b'e', b'x', b't'] => Self::Next,
            [b'm', b'a', b't', b'c', b'h'] => Self::Match,
            [b'm', b'i', b's', b'm', b'a', b't', b'c', b'h'] => Self::Mismatch,
            _ => return None,
        })
    }

    /// The keyword whose letters are the bytes of `letters` (little-endian, zero
    /// beyond the word), for keywords of up to seven letters.
    #[inline(always)]
    fn from_letters(letters: u64) -> Option<Self> {
        const fn word(text: &[u8]) -> u64 {
            let mut bytes = [0u8; 8];
            let mut i = 0;
            while i < text.len() {
                bytes[i] = text[i];
                i += 1;
            }
            u64::from_le_bytes(bytes)
        }
        const SEQ: u64 = word(b"seq");
        const PAR: u64 = word(b"par");
        const XOR: u64 = word(b"xor");
        const AP: u64 = word(b"ap");
        const CALL: u64 = word(b"call");
        const CANON: u64 = word(b"canon");
        const NULL: u64 = word(b"null");
        const NEVER: u64 = word(b"never");
        const NEW: u64 = word(b"new");
        const FAIL: u64 = word(b"fail");
        const FOLD: u64 = word(b"fold");
        const NEXT: u64 = word(b"next");
        const MATCH: u64 = word(b"match");
        Some(match letters {
            SEQ => Self::Seq,
            PAR => Self::Par,
            XOR => Self::Xor,
            AP => Self::Ap,
            CALL => Self::Call,
            CANON => Self::Canon,
            NULL => Self::Null,
            NEVER => Self::Never,
            NEW => Self::New,
            FAIL => Self::Fail,
            FOLD => Self::Fold,
            NEXT => Self::Next,
            MATCH => Self::Match,
            _ => return None,
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Call => "call",
            Self::Canon => "canon",
            Self::Ap => "ap",
            Self::Seq => "seq",
            Self::Par => "par",
            Self::Xor => "xor",
            Self::Null => "null",
            Self::Never => "never",
            Self::New => "new",
            Self::Fail => "fail",
            Self::Fold => "fold",
            Self::Next => "next",
            Self::Match => "match",
            Self::Mismatch => "mismatch",
        }
    }
}

/// A lexer error: what and where.
/// Boxed: errors are rare, and a small `Result` keeps the hot token path cheap.
pub(crate) type LexError = Box<(ErrorKind, Span)>;

/// A pull lexer with one token of look-ahead.
pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    peeked: Option<Token>,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Self {
            src,
            pos: 0,
            peeked: None,
        }
    }

    /// Moves to byte `pos`, which must start a token (or the space before one).
    pub(crate) fn seek(&mut self, pos: usize) {
        self.pos = pos;
        self.peeked = None;
    }

    pub(crate) fn next(&mut self) -> Result<Token, LexError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.scan(),
        }
    }

    pub(crate) fn peek(&mut self) -> Result<Token, LexError> {
        if let Some(token) = self.peeked {
            return Ok(token);
        }
        let token = self.scan()?;
        self.peeked = Some(token);
        Ok(token)
    }

    /// The text of a token (for a string literal, without its quotes).
    #[inline(always)]
    pub(crate) fn text(&self, token: &Token) -> &'a str {
        let (start, end) = (token.span.start as usize, token.span.end as usize);
        match token.raw {
            Raw::String => &self.src[start + 1..end - 1],
            _ => &self.src[start..end],
        }
    }

    /// Where a fast path reads: the offset after trivia, or `None` when a token is
    /// already peeked (the general path must take that one).
    #[inline(always)]
    fn fast_start(&mut self) -> Option<usize> {
        if self.peeked.is_some() {
            return None;
        }
        self.skip_trivia();
        Some(self.pos)
    }

    /// Fast path of the parser: `(` and a keyword written plainly (`(seq `, `(null)`),
    /// without building tokens. `None`, with nothing consumed, for anything else: the
    /// general path then reads it (and reports it).
    #[inline(always)]
    pub(crate) fn instruction_start(&mut self) -> Option<(u32, Keyword)> {
        let open = self.fast_start()?;
        let bytes = self.src.as_bytes();
        if bytes.get(open) != Some(&b'(') {
            return None;
        }
        let mut start = open + 1;
        while bytes.get(start) == Some(&b' ') {
            start += 1;
        }
        // The keyword's letters, eight bytes at once: its length is where the first
        // byte that is no lowercase letter stands.
        let chunk = chunk_at(bytes, start);
        let len = (!lowercase_bytes(chunk) & HIGH_BITS).trailing_zeros() as usize / 8;
        if len == 8 {
            // Only `mismatch` is that long: the general path reads it.
            return None;
        }
        // A bare word ends at a space or at a `)` it did not open.
        if !matches!((chunk >> (8 * len)) as u8, b' ' | b')') {
            return None;
        }
        let keyword = Keyword::from_letters(chunk & ((1 << (8 * len)) - 1))?;
        let end = start + len;
        self.pos = end;
        Some((span(open, open).start, keyword))
    }

    /// Fast path: consumes the punctuation `byte` if it comes next, and gives its offset.
    #[inline(always)]
    pub(crate) fn eat(&mut self, byte: u8) -> Option<u32> {
        let at = self.fast_start()?;
        if self.src.as_bytes().get(at) != Some(&byte) {
            return None;
        }
        self.pos = at + 1;
        Some(span(at, at).start)
    }

    /// Fast path: whether the next token is the punctuation `byte`, without consuming it
    /// (or reporting a lexical error: a `false` sends the parser to the general path,
    /// which does).
    #[inline(always)]
    pub(crate) fn at(&mut self, byte: u8) -> bool {
        if let Some(token) = self.peeked {
            let raw = match byte {
                b'(' => Raw::Open,
                b')' => Raw::Close,
                b'[' => Raw::OpenSquare,
                _ => Raw::CloseSquare,
            };
            return token.raw == raw;
        }
        self.skip_trivia();
        self.src.as_bytes().get(self.pos) == Some(&byte)
    }

    /// Fast path: a plain word (see [`Token::plain`]) that ends at a space, a `)`, a `]`
    /// or the end of the script, as a token, without consuming it.
    #[inline(always)]
    pub(crate) fn plain_word(&mut self) -> Option<Token> {
        let start = self.fast_start()?;
        let bytes = self.src.as_bytes();
        if NAME_START[*bytes.get(start)? as usize] == 0 {
            return None;
        }
        let end = ordinary_run(bytes, start + 1);
        match bytes.get(end) {
            None | Some(b')' | b']') => {}
            Some(&b) if BYTE_CLASS[b as usize] == SPACE => {}
            _ => return None,
        }
        Some(Token {
            raw: Raw::Word,
            plain: true,
            span: span(start, end),
        })
    }

    /// Fast path: a word of ASCII digits only (at most 18, so an `i64` for sure) or
    /// `%init_peer_id%`, ending where a plain word ends: where it ends and what it is
    /// (`Int` or `InitPeerId`), without consuming it.
    #[inline(always)]
    pub(crate) fn simple_literal(&mut self) -> Option<(usize, TokenKind<'a>)> {
        let start = self.fast_start()?;
        let bytes = self.src.as_bytes();
        let (end, kind) = match *bytes.get(start)? {
            b'0'..=b'9' => {
                let mut end = start;
                let mut value = 0i64;
                while let Some(&digit @ b'0'..=b'9') = bytes.get(end) {
                    if end - start == 18 {
                        return None;
                    }
                    value = value * 10 + i64::from(digit - b'0');
                    end += 1;
                }
                (end, TokenKind::Int(value))
            }
            b'%' if bytes[start..].starts_with(b"%init_peer_id%") => {
                (start + "%init_peer_id%".len(), TokenKind::InitPeerId)
            }
            _ => return None,
        };
        match bytes.get(end) {
            None | Some(b')' | b']') => {}
            Some(&b) if BYTE_CLASS[b as usize] == SPACE => {}
            _ => return None,
        }
        Some((end, kind))
    }

    /// Fast path: a string literal, as a token, without consuming it.
    #[inline(always)]
    pub(crate) fn string(&mut self) -> Option<Token> {
        let start = self.fast_start()?;
        let bytes = self.src.as_bytes();
        if bytes.get(start) != Some(&b'"') {
            return None;
        }
        let len = memchr(b'"', &bytes[start + 1..])?;
        Some(Token {
            raw: Raw::String,
            plain: false,
            span: span(start, start + 1 + len + 1),
        })
    }

    /// Consumes a literal found by [`Self::simple_literal`], which ends at `end`.
    #[inline(always)]
    pub(crate) fn skip_to(&mut self, end: usize) {
        self.pos = end;
    }

    /// Consumes a token found by a fast path.
    #[inline(always)]
    pub(crate) fn consume(&mut self, token: &Token) {
        self.pos = token.span.end as usize;
    }

    /// A plain word (see [`Token::plain`]) that is a scalar or stream name, without
    /// the general classifier; `None` for anything else.
    #[inline(always)]
    pub(crate) fn plain_var(&self, token: &Token) -> Option<Var<'a>> {
        if !token.plain {
            return None;
        }
        let text = self.text(token);
        // A table, not ranges: first letters of names are as good as random.
        let kind = match NAME_START[text.as_bytes()[0] as usize] {
            SCALAR_START if !word::is_reserved(text) => VarKind::Scalar,
            STREAM_START if text.len() > 1 => VarKind::Stream,
            _ => return None,
        };
        Some(Var {
            kind,
            name: text,
            pos: token.span.start,
        })
    }

    /// Classifies a word token (air-language.md §2.4–§2.5).
    pub(crate) fn classify(&self, token: &Token) -> Result<TokenKind<'a>, LexError> {
        classify(self.text(token), token.span.start as usize, token.plain)
    }

    fn scan(&mut self) -> Result<Token, LexError> {
        self.skip_trivia();
        let bytes = self.src.as_bytes();
        let start = self.pos;
        let Some(&b) = bytes.get(start) else {
            return Ok(Token {
                raw: Raw::End,
                plain: false,
                span: span(start, start),
            });
        };
        let raw = match b {
            b'(' => Raw::Open,
            b')' => Raw::Close,
            b'[' => Raw::OpenSquare,
            b']' => Raw::CloseSquare,
            b'"' => {
                let Some(len) = memchr(b'"', &bytes[start + 1..]) else {
                    return Err(unclosed_quote(start, self.src.len()));
                };
                let end = start + 1 + len + 1;
                self.pos = end;
                return Ok(Token {
                    raw: Raw::String,
                    plain: false,
                    span: span(start, end),
                });
            }
            _ => {
                let (end, plain) = self.word_end(start);
                self.pos = end;
                return Ok(Token {
                    raw: Raw::Word,
                    plain,
                    span: span(start, end),
                });
            }
        };
        self.pos = start + 1;
        Ok(Token {
            raw,
            plain: false,
            span: span(start, start + 1),
        })
    }

    /// Skips a space; anything rarer (more spaces, comments, other whitespace) is left
    /// to [`Self::skip_trivia_slow`], which keeps this hot path small.
    #[inline(always)]
    fn skip_trivia(&mut self) {
        let bytes = self.src.as_bytes();
        // Without a branch: whether a space comes next is as good as random.
        let pos = self.pos + usize::from(bytes.get(self.pos) == Some(&b' '));
        match bytes.get(pos) {
            Some(&b) if STARTS_TRIVIA[b as usize] => self.skip_trivia_slow(pos),
            _ => self.pos = pos,
        }
    }

    #[cold]
    #[inline(never)]
    fn skip_trivia_slow(&mut self, mut pos: usize) {
        let bytes = self.src.as_bytes();
        while let Some(&b) = bytes.get(pos) {
            match BYTE_CLASS[b as usize] {
                SPACE => pos += 1,
                OTHER if b == b';' => {
                    pos = match memchr(b'\n', &bytes[pos..]) {
                        Some(i) => pos + i + 1,
                        None => bytes.len(),
                    }
                }
                NON_ASCII => {
                    // `pos` is on a char boundary: only whole characters are skipped.
                    let c = self.src[pos..].chars().next().expect("non-empty rest");
                    if !c.is_whitespace() {
                        break;
                    }
                    pos += c.len_utf8();
                }
                _ => break,
            }
        }
        self.pos = pos;
    }

    /// Where the bare word starting at `start` ends (air-language.md §2.3), and whether
    /// it is plain (see [`Token::plain`]).
    #[inline(never)]
    fn word_end(&self, start: usize) -> (usize, bool) {
        let bytes = self.src.as_bytes();
        // The first character is taken whatever it is and is not counted.
        let first_len = utf8_len(bytes[start]);
        let mut plain = bytes[start] < 0x80;
        let mut pos = ordinary_run(bytes, start + first_len);
        let (mut round, mut square) = (0i64, 0i64);
        while let Some(&b) = bytes.get(pos) {
            match BYTE_CLASS[b as usize] {
                SPACE => break,
                OPEN_ROUND => round += 1,
                OPEN_SQUARE => square += 1,
                CLOSE_ROUND => {
                    round -= 1;
                    if round < 0 {
                        break;
                    }
                }
                CLOSE_SQUARE => {
                    square -= 1;
                    if square < 0 {
                        break;
                    }
                }
                NON_ASCII => {
                    let c = self.src[pos..].chars().next().expect("non-empty rest");
                    if c.is_whitespace() {
                        break;
                    }
                    plain = false;
                    pos = ordinary_run(bytes, pos + c.len_utf8());
                    continue;
                }
                _ => {}
            }
            plain = false;
            pos = ordinary_run(bytes, pos + 1);
        }
        (pos, plain)
    }
}

/// The end of the run of ordinary (name) bytes starting at `pos`. The chunk of eight
/// bytes that ends the run is classified at once (see [`name_bytes`]), without a byte
/// loop whose exit would mispredict; the whole chunks of a long run before it are
/// checked with the byte-class table, which takes fewer instructions.
#[inline(always)]
fn ordinary_run(bytes: &[u8], mut pos: usize) -> usize {
    loop {
        // Bytes past the end read as spaces, which end the run: it stays in bounds.
        let stops = !name_bytes(chunk_at(bytes, pos)) & HIGH_BITS;
        if stops != 0 {
            return pos + stops.trailing_zeros() as usize / 8;
        }
        pos += 8;
        while let Some(chunk) = bytes.get(pos..pos + 8) {
            let classes = chunk
                .iter()
                .fold(0u8, |acc, &b| acc | BYTE_CLASS[b as usize]);
            if classes != ORDINARY {
                break;
            }
            pos += 8;
        }
    }
}

/// The high bit of each byte of `x` that is a name character (ASCII alphanumeric, `_`,
/// `-`), all eight bytes at once; exact in every byte, as [`lowercase_bytes`].
#[inline(always)]
fn name_bytes(x: u64) -> u64 {
    let low = x & !HIGH_BITS;
    let at_least = |v: u64, c: u8| (v | HIGH_BITS).wrapping_sub(LOW_BITS * u64::from(c));
    let at_most = |v: u64, c: u8| (LOW_BITS * u64::from(c | 0x80)).wrapping_sub(v);
    let equal = |v: u64, c: u8| !at_least(v ^ (LOW_BITS * u64::from(c)), 1);
    let lower = low | (LOW_BITS * 0x20);
    let letters = at_least(lower, b'a') & at_most(lower, b'z');
    let digits = at_least(low, b'0') & at_most(low, b'9');
    (letters | digits | equal(low, b'_') | equal(low, b'-')) & !x & HIGH_BITS
}

const ORDINARY: u8 = 0;
const SPACE: u8 = 1;
const DOT: u8 = 2;
const OPEN_ROUND: u8 = 3;
const CLOSE_ROUND: u8 = 4;
const OPEN_SQUARE: u8 = 5;
const CLOSE_SQUARE: u8 = 6;
const NON_ASCII: u8 = 7;
const OTHER: u8 = 8;

/// Bytes that may start whitespace or a comment: the ASCII spaces, `;`, and the first
/// bytes of all non-ASCII characters (a few of which are whitespace).
static STARTS_TRIVIA: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = matches!(BYTE_CLASS[b], SPACE | NON_ASCII) || b == b';' as usize;
        b += 1;
    }
    t
};

/// The eight bytes at `pos` as a little-endian word; past the end of `bytes`, spaces.
#[inline(always)]
fn chunk_at(bytes: &[u8], pos: usize) -> u64 {
    match bytes.get(pos..pos + 8) {
        Some(chunk) => u64::from_le_bytes(chunk.try_into().expect("8-byte chunk")),
        None => {
            let mut padded = [b' '; 8];
            let rest = bytes.get(pos..).unwrap_or_default();
            padded[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(padded)
        }
    }
}

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `x` that is an ASCII lowercase letter, all eight bytes
/// at once. The byte-wise comparisons work on 7-bit values with the high bit set or
/// cleared first, so they never borrow across bytes and each byte's answer is exact.
#[inline(always)]
fn lowercase_bytes(x: u64) -> u64 {
    let low = x & !HIGH_BITS;
    let at_least_a = (low | HIGH_BITS).wrapping_sub(LOW_BITS * u64::from(b'a'));
    let at_most_z = (LOW_BITS * u64::from(b'z' | 0x80)).wrapping_sub(low);
    at_least_a & at_most_z & !x & HIGH_BITS
}

const SCALAR_START: u8 = 1;
const STREAM_START: u8 = 2;

/// How a plain name starts: a letter or `_` (a scalar), `$` (a stream), or neither.
static NAME_START: [u8; 256] = {
    let mut t = [0; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = match b as u8 {
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => SCALAR_START,
            b'$' => STREAM_START,
            _ => 0,
        };
        b += 1;
    }
    t
};

/// Byte classes for the word scanner: name characters (ASCII alphanumerics, `_`, `-`)
/// are ordinary; everything the scanner must look at has its own class.
static BYTE_CLASS: [u8; 256] = {
    let mut t = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' => ORDINARY,
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => SPACE,
            b'.' => DOT,
            b'(' => OPEN_ROUND,
            b')' => CLOSE_ROUND,
            b'[' => OPEN_SQUARE,
            b']' => CLOSE_SQUARE,
            0x80.. => NON_ASCII,
            _ => OTHER,
        };
        b += 1;
    }
    t
};

fn classify(text: &str, start: usize, plain: bool) -> Result<TokenKind<'_>, LexError> {
    let at = span(start, start + text.len());
    // Fast path: a plain scalar name such as `result-0_flat` (no keyword can be here
    // only if it is no keyword, `true` or `false`, which `plain_scalar` checks).
    if plain {
        if let Some(kind) = word::plain_scalar(text, start) {
            return Ok(kind);
        }
    }
    if let Some(keyword) = Keyword::from_word(text) {
        return Ok(TokenKind::Keyword(keyword));
    }
    match text {
        "%init_peer_id%" => return Ok(TokenKind::InitPeerId),
        "%timestamp%" => return Ok(TokenKind::Timestamp),
        "%ttl%" => return Ok(TokenKind::Ttl),
        "true" => return Ok(TokenKind::Bool(true)),
        "false" => return Ok(TokenKind::Bool(false)),
        _ => {}
    }
    if let Some(rest) = text.strip_prefix(":error:") {
        let lens =
            word::error_lens(text, rest, start + ":error:".len()).map_err(|k| Box::new((k, at)))?;
        return Ok(TokenKind::Error(lens));
    }
    if let Some(rest) = text.strip_prefix("%last_error%") {
        let lens = word::error_lens(text, rest, start + "%last_error%".len())
            .map_err(|k| Box::new((k, at)))?;
        return Ok(TokenKind::LastError(lens));
    }
    word::number_or_var(text, start).map_err(|k| Box::new((k, at)))
}

#[cold]
#[inline(never)]
fn unclosed_quote(start: usize, len: usize) -> LexError {
    Box::new((ErrorKind::UnclosedQuote, span(start, len)))
}

fn span(start: usize, end: usize) -> Span {
    // The parser refuses scripts of 4 GiB or more before lexing.
    Span::new(start as u32, end as u32)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks a byte-class mask over eight bytes against the class byte by byte: every
    /// byte value at every position, beside every other byte value, so a borrow from
    /// one byte into the next would show.
    fn assert_mask_is_exact(mask: fn(u64) -> u64, in_class: impl Fn(u8) -> bool) {
        for b in 0..=255u8 {
            for other in 0..=255u8 {
                for at in 0..8 {
                    let mut chunk = [other; 8];
                    chunk[at] = b;
                    let found = mask(u64::from_le_bytes(chunk));
                    for (i, &byte) in chunk.iter().enumerate() {
                        let bit = found >> (i * 8 + 7) & 1 == 1;
                        assert_eq!(bit, in_class(byte), "{chunk:?} at {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn lowercase_bytes_is_exact_in_every_byte() {
        assert_mask_is_exact(lowercase_bytes, |byte| byte.is_ascii_lowercase());
    }

    #[test]
    fn name_bytes_is_exact_in_every_byte() {
        assert_mask_is_exact(name_bytes, |byte| BYTE_CLASS[byte as usize] == ORDINARY);
    }

    #[test]
    fn ordinary_runs_end_where_byte_by_byte_scans_end() {
        let text = "abc_-09XYZ.def(g)h[i]j k\tl\u{e9}m;n\"o$p%q#r".as_bytes();
        for start in 0..text.len() {
            for end in start..=text.len() {
                let bytes = &text[..end];
                let expected = (start..end)
                    .find(|&i| BYTE_CLASS[bytes[i] as usize] != ORDINARY)
                    .unwrap_or(end);
                assert_eq!(ordinary_run(bytes, start), expected, "{start}..{end}");
            }
        }
    }

    #[test]
    fn keywords_by_letters_and_by_word_agree() {
        for keyword in [
            "call", "canon", "ap", "seq", "par", "xor", "null", "never", "new", "fail", "fold",
            "next", "match",
        ] {
            let mut bytes = [0u8; 8];
            bytes[..keyword.len()].copy_from_slice(keyword.as_bytes());
            let by_letters = Keyword::from_letters(u64::from_le_bytes(bytes));
            assert_eq!(by_letters, Keyword::from_word(keyword));
            assert_eq!(by_letters.map(Keyword::as_str), Some(keyword));
        }
    }

    #[test]
    fn fast_instruction_start_reads_what_tokens_read() {
        for (text, expected) in [
            ("(seq (null) (null))", Some(Keyword::Seq)),
            ("(null)", Some(Keyword::Null)),
            ("( ap x y)", Some(Keyword::Ap)),
            ("(null", Some(Keyword::Null)),
            ("(seqx)", None),
            ("(seq-)", None),
            ("(Seq)", None),
            ("(mismatch a b (null))", None),
            ("(seq\t(null))", None),
            ("(se", None),
            ("()", None),
        ] {
            let mut lexer = Lexer::new(text);
            let found = lexer.instruction_start().map(|(_, keyword)| keyword);
            assert_eq!(found, expected, "{text}");
        }
    }
}
