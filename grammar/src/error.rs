//! `ParseError`: everything that can be wrong with a script, with where it is.

use std::fmt::{self, Write as _};

use crate::span::{Location, Span};

/// Why a script was rejected: one diagnostic for a syntax error, or every failed check
/// of static validation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ParseError {
    diagnostics: Vec<Diagnostic>,
}

impl ParseError {
    pub(crate) fn new(diagnostics: Vec<Diagnostic>) -> Self {
        debug_assert!(!diagnostics.is_empty());
        Self { diagnostics }
    }

    pub(crate) fn single(source: &str, kind: ErrorKind, span: Span) -> Self {
        Self::new(vec![Diagnostic::new(source, kind, span)])
    }

    /// Many problems, located in one pass over the source (sorted by position).
    pub(crate) fn many(source: &str, mut found: Vec<(ErrorKind, Span)>) -> Self {
        found.sort_by_key(|(_, span)| span.start);
        found.dedup();
        let mut cursor = Location::cursor(source);
        Self::new(
            found
                .into_iter()
                .map(|(kind, span)| Diagnostic {
                    kind,
                    location: cursor.advance_to(span.start),
                    span,
                })
                .collect(),
        )
    }

    /// Every problem found, in script order; never empty.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// A report for people: each problem with its position, the line of the script and
    /// a caret under the spot. `name` is how to call the script (a file path, `<stdin>`).
    pub fn render(&self, source: &str, name: &str) -> String {
        let mut out = String::new();
        for d in &self.diagnostics {
            d.render_into(&mut out, source, name);
        }
        out
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `new` guarantees at least one diagnostic.
        let first = &self.diagnostics[0];
        write!(f, "{first}")?;
        match self.diagnostics.len() {
            1 => Ok(()),
            2 => write!(f, " (and 1 more error)"),
            n => write!(f, " (and {} more errors)", n - 1),
        }
    }
}

/// One problem at one place of the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// What is wrong.
    pub kind: ErrorKind,
    /// Where, in bytes.
    pub span: Span,
    /// Where, as line and column of the span's start.
    pub location: Location,
}

impl Diagnostic {
    pub(crate) fn new(source: &str, kind: ErrorKind, span: Span) -> Self {
        Self {
            kind,
            location: Location::of(source, span.start),
            span,
        }
    }

    fn render_into(&self, out: &mut String, source: &str, name: &str) {
        let Location { line, column } = self.location;
        let _ = writeln!(out, "error: {}", self.kind);
        let _ = writeln!(out, " --> {name}:{line}:{column}");
        let text = source.lines().nth(line as usize - 1).unwrap_or("");
        // Long lines (a 100 MB script on one line) are cut around the spot.
        let (shown, caret_col) = excerpt(text, column as usize - 1);
        let gutter = line.to_string();
        let pad = " ".repeat(gutter.len());
        let width = {
            let start = self.span.start as usize;
            let end = (self.span.end as usize).min(source.len());
            let span_text = source.get(start..end).unwrap_or("");
            span_text
                .split('\n')
                .next()
                .unwrap_or("")
                .chars()
                .count()
                .clamp(1, 80)
        };
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{gutter} | {shown}");
        let _ = writeln!(
            out,
            "{pad} | {}{}",
            " ".repeat(caret_col),
            "^".repeat(width)
        );
    }
}

const EXCERPT_CHARS: usize = 100;

/// The part of `line` to show around character `col`, and the caret's column in it.
fn excerpt(line: &str, col: usize) -> (String, usize) {
    let chars: Vec<char> = line
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .collect();
    if chars.len() <= EXCERPT_CHARS {
        return (chars.into_iter().collect(), col);
    }
    let start = col.saturating_sub(EXCERPT_CHARS / 2);
    let end = (start + EXCERPT_CHARS).min(chars.len());
    let mut shown = String::new();
    if start > 0 {
        shown.push('…');
    }
    shown.extend(&chars[start..end]);
    if end < chars.len() {
        shown.push('…');
    }
    (shown, col - start + usize::from(start > 0))
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.kind)
    }
}

/// What is wrong. Texts that the reference also produces are kept word for word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    // --- lexical ---
    /// A `"` without its closing `"`.
    #[error("this string literal has unclosed quote")]
    UnclosedQuote,
    /// A number or a lens starting with `.`, or `+.5`.
    #[error("leading dot in `{word}`; a number starts with a digit and a lens follows a name")]
    LeadingDot {
        /// The word.
        word: String,
    },
    /// `1.2.3`, `1.5e3`.
    #[error("`{word}`: a digit could contain only digits or one dot")]
    InvalidNumber {
        /// The word.
        word: String,
    },
    /// A float literal longer than 11 characters.
    #[error("`{word}`: this float is too big, a float could contain less than 12 digits")]
    FloatTooBig {
        /// The word.
        word: String,
    },
    /// An integer that is not a signed 64-bit number, or a lone sign.
    #[error("`{word}` is not a valid integer (signed 64-bit)")]
    InvalidInteger {
        /// The word.
        word: String,
    },
    /// `$`, `%` or `#` alone.
    #[error("`{word}`: a tagged name should be non empty")]
    EmptyTaggedName {
        /// The word.
        word: String,
    },
    /// `#$`, `#%`, `x%`, or a lens starting right after a sigil.
    #[error("`{word}`: a canon name should be non empty")]
    EmptyCanonName {
        /// The word.
        word: String,
    },
    /// A name with a character other than alphanumerics, `_` and `-`.
    #[error(
        "`{word}`: only alphanumeric, '_', and '-' characters are allowed in this position (found {found:?})"
    )]
    InvalidNameChar {
        /// The word.
        word: String,
        /// The offending character.
        found: char,
    },
    /// A character that cannot appear in a lens.
    #[error("`{word}`: invalid character in lambda: {found:?}")]
    InvalidLensChar {
        /// The word.
        word: String,
        /// The offending character.
        found: char,
    },
    /// `.$` with nothing after it.
    #[error("`{word}`: provided lambda expression doesn't contain any accessor")]
    EmptyLens {
        /// The word.
        word: String,
    },
    /// A lens that does not follow the lens grammar.
    #[error("`{word}`: invalid lens at {at:?}; expected {expected}")]
    InvalidLens {
        /// The word.
        word: String,
        /// The rest of the lens where parsing stopped.
        at: String,
        /// What would have been accepted there.
        expected: &'static str,
    },
    /// An array index over `u32::MAX`.
    #[error("`{word}`: array index {index} is too big (at most 4294967295)")]
    IndexTooBig {
        /// The word.
        word: String,
        /// The index as written.
        index: String,
    },
    /// A script nested deeper than the parser allows.
    #[error("the script is nested deeper than {limit} instructions")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// A script over 4 GiB.
    #[error("the script is {size} bytes; at most 4294967295 are supported")]
    TooLarge {
        /// Its size.
        size: usize,
    },

    // --- syntax ---
    /// A token where another was needed.
    #[error("unexpected {found}; expected {expected}")]
    Unexpected {
        /// The token found, described (`` `)` ``, `the stream `$s``, …).
        found: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// The script ended too early.
    #[error("unexpected end of script; expected {expected}")]
    UnexpectedEnd {
        /// What would have been accepted.
        expected: &'static str,
    },
    /// `(` left open at the end of the script.
    #[error("unclosed `(`: the instruction opened here is never closed; add the matching `)`")]
    Unclosed,

    // --- static validation ---
    /// A variable used before any definition in the script text.
    #[error("variable '{name}' wasn't defined")]
    UndefinedVariable {
        /// The variable's full name.
        name: String,
    },
    /// A `next` outside a fold over its iterator.
    #[error("iterable '{name}' wasn't defined")]
    UndefinedIterable {
        /// The iterator's name.
        name: String,
    },
    /// Two `next` for one fold.
    #[error(
        "multiple next instructions for iterator '{name}' found for one fold, that is prohibited"
    )]
    MultipleNext {
        /// The iterator's name.
        name: String,
    },
    /// A fold nested in a fold with the same iterator.
    #[error("multiple iterable values found for iterator name '{name}'")]
    MultipleIterable {
        /// The iterator's name.
        name: String,
    },
    /// `(new it …)` inside a fold over `it`.
    #[error("new can't be applied to a '{name}' because it's an iterator")]
    NewOnIterator {
        /// The iterator's name.
        name: String,
    },
    /// `(fail 0 "…")`.
    #[error("error code 0 with fail is unsupported")]
    FailCodeZero,
    /// An instruction after `next` in a fold over a stream or stream map.
    #[error("fold can not have instructions after next")]
    InstructionAfterNext,
}
