//! Byte spans into the script and their line/column form for messages.

use std::fmt;

/// A half-open byte range `[start, end)` into the script text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Span {
    /// Offset of the first byte.
    pub start: u32,
    /// Offset one past the last byte.
    pub end: u32,
}

impl Span {
    /// Creates a span; `start <= end` is the caller's invariant.
    pub const fn new(start: u32, end: u32) -> Self {
        Self { start, end }
    }

    /// Length in bytes.
    pub const fn len(&self) -> u32 {
        self.end - self.start
    }

    /// True for an empty span (used for end-of-input positions).
    pub const fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// True if `offset` lies strictly inside the span (`start < offset < end`), the test
    /// that `new` scoping uses.
    pub const fn strictly_contains(&self, offset: u32) -> bool {
        self.start < offset && offset < self.end
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// 1-based line number.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
}

impl Location {
    /// Finds the line and column of byte `offset` in `source`. Offsets past the end or
    /// inside a multi-byte character are clamped to the previous character boundary.
    pub fn of(source: &str, offset: u32) -> Self {
        let mut offset = (offset as usize).min(source.len());
        while !source.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &source[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let column = before[line_start..].chars().count() + 1;
        Self {
            line: saturate(line),
            column: saturate(column),
        }
    }
}

impl Location {
    /// Locates increasing offsets in one pass over `source`.
    pub(crate) fn cursor(source: &str) -> LocationCursor<'_> {
        LocationCursor {
            source,
            offset: 0,
            location: Location { line: 1, column: 1 },
        }
    }
}

/// See [`Location::cursor`].
pub(crate) struct LocationCursor<'a> {
    source: &'a str,
    offset: usize,
    location: Location,
}

impl LocationCursor<'_> {
    /// The location of `offset`, which must not be smaller than the previous one.
    pub(crate) fn advance_to(&mut self, offset: u32) -> Location {
        let mut target = (offset as usize).min(self.source.len());
        while !self.source.is_char_boundary(target) {
            target -= 1;
        }
        if target < self.offset {
            return Location::of(self.source, offset);
        }
        for c in self.source[self.offset..target].chars() {
            if c == '\n' {
                self.location.line = self.location.line.saturating_add(1);
                self.location.column = 1;
            } else {
                self.location.column = self.location.column.saturating_add(1);
            }
        }
        self.offset = target;
        self.location
    }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}
