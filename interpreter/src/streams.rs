//! Streams and stream maps: append-only, ordered by generation (streams-canon-maps.md
//! §2): values known from the previous data first, then values from the current data,
//! then values produced now; scoped by `new` textually.

use std::collections::BTreeMap;
use std::rc::Rc;

use braid_grammar::Span;

use crate::merge::Source;
use crate::value::Val;

/// The largest number of values a stream may hold (the 1024th is refused).
pub(crate) const MAX_STREAM_VALUES: usize = 1023;

/// A value in a stream and the result-trace position of the state that produced it.
#[derive(Debug, Clone)]
pub(crate) struct StreamValue<'a> {
    pub(crate) val: Val<'a>,
    pub(crate) trace_pos: u32,
}

/// A generation's place in the stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Generation {
    /// Known from the previous data, with its recorded number.
    Prev(u32),
    /// Learnt from the current data, with the sender's number.
    Current(u32),
    /// Produced in this invocation: the n-th new generation.
    New(u32),
}

impl Generation {
    pub(crate) fn recorded(source: Source, generation: u32) -> Self {
        match source {
            Source::Prev => Self::Prev(generation),
            Source::Current => Self::Current(generation),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Stream<'a> {
    /// Generations in stream order (the enum's order is the stream order).
    generations: BTreeMap<Generation, Vec<StreamValue<'a>>>,
    /// Number of new generations opened so far.
    new_count: u32,
    len: usize,
}

/// The stream size limit was reached.
pub(crate) struct StreamFull;

/// How far a fold over a stream has got, per class of generations: how many
/// non-empty generations of the class its next round skips. The reference counts
/// generations one way and skips them another: a round skips this many *non-empty*
/// generations, but afterwards the number is set to the count of *all* generations of
/// the class (recorded ones up to the highest number, new ones opened so far except an
/// empty last one). Every empty generation that is not the last new one therefore makes
/// later rounds skip one non-empty generation too many, whose values this fold never
/// visits (streams-canon-maps.md §2.4).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Seen {
    prev: usize,
    current: usize,
    new: usize,
}

impl<'a> Stream<'a> {
    /// Appends a value to a generation (`None`: the last opened new generation).
    pub(crate) fn append(
        &mut self,
        value: StreamValue<'a>,
        generation: Option<Generation>,
    ) -> Result<(), StreamFull> {
        let generation = generation.unwrap_or_else(|| self.current_new());
        self.generations.entry(generation).or_default().push(value);
        self.len += 1;
        if self.len > MAX_STREAM_VALUES {
            return Err(StreamFull);
        }
        Ok(())
    }

    fn current_new(&mut self) -> Generation {
        if self.new_count == 0 {
            self.new_count = 1;
        }
        Generation::New(self.new_count - 1)
    }

    /// Opens a fresh new generation, even if the last one is still empty, unless the
    /// stream holds no value at all: a fold over the stream starts.
    pub(crate) fn open_generation(&mut self) {
        if self.len > 0 {
            self.new_count += 1;
        }
    }

    /// Opens a fresh new generation unless the last one is still empty: a further round
    /// of a fold over the stream starts.
    pub(crate) fn open_generation_if_used(&mut self) {
        if !self.last_is_empty() {
            self.new_count += 1;
        }
    }

    /// Whether the last generation is an empty new one (opened and not written yet).
    fn last_is_empty(&self) -> bool {
        self.new_count > 0
            && !self
                .generations
                .contains_key(&Generation::New(self.new_count - 1))
    }

    /// All values in stream order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &StreamValue<'a>> {
        self.generations.values().flatten()
    }

    /// The next round of a fold over this stream, whose earlier rounds left `seen`: per
    /// class of generations (previous, current, new), the non-empty generations of the
    /// class minus the first ones as counted by `seen`, in stream order, with their
    /// values as they are now. Then `seen` counts all generations of each class, empty
    /// ones included (see [`Seen`]).
    pub(crate) fn round(&self, seen: &mut Seen) -> Vec<Vec<StreamValue<'a>>> {
        let mut round = Vec::new();
        for (class, skip) in [
            (Generation::Prev as fn(u32) -> Generation, seen.prev),
            (Generation::Current, seen.current),
            (Generation::New, seen.new),
        ] {
            round.extend(
                self.generations
                    .range(class(0)..=class(u32::MAX))
                    .map(|(_, values)| values)
                    .filter(|values| !values.is_empty())
                    .skip(skip)
                    .cloned(),
            );
        }
        *seen = Seen {
            prev: self.recorded_count(Generation::Prev),
            current: self.recorded_count(Generation::Current),
            new: self.new_count as usize - usize::from(self.last_is_empty()),
        };
        round
    }

    /// The number of generations of a recorded class: its highest number plus one, so
    /// holes in the recorded numbering count as generations.
    fn recorded_count(&self, class: fn(u32) -> Generation) -> usize {
        self.generations
            .range(class(0)..=class(u32::MAX))
            .next_back()
            .map_or(0, |(g, _)| match g {
                Generation::Prev(n) | Generation::Current(n) | Generation::New(n) => {
                    *n as usize + 1
                }
            })
    }

    /// The final numbering: non-empty generations renumbered from 0 in stream order,
    /// as (trace position, new number) for every value.
    pub(crate) fn renumbering(&self) -> Vec<(u32, u32)> {
        let mut out = Vec::with_capacity(self.len);
        let mut number = 0;
        for values in self.generations.values() {
            if values.is_empty() {
                continue;
            }
            out.extend(values.iter().map(|v| (v.trace_pos, number)));
            number += 1;
        }
        out
    }
}

/// All streams (or all stream maps) of an invocation: global ones and `new` scopes.
#[derive(Debug, Default)]
pub(crate) struct Streams<'a> {
    global: BTreeMap<Rc<str>, Stream<'a>>,
    scoped: BTreeMap<Rc<str>, Vec<(Span, Stream<'a>)>>,
}

impl<'a> Streams<'a> {
    /// The stream an occurrence of `name` at byte `pos` refers to, if it exists.
    pub(crate) fn get(&self, name: &str, pos: u32) -> Option<&Stream<'a>> {
        if let Some(scopes) = self.scoped.get(name) {
            if let Some((_, s)) = scopes
                .iter()
                .rev()
                .find(|(span, _)| span.strictly_contains(pos))
            {
                return Some(s);
            }
        }
        self.global.get(name)
    }

    /// The same, created if it does not exist yet.
    pub(crate) fn get_or_create(&mut self, name: &str, pos: u32) -> &mut Stream<'a> {
        if let Some(scopes) = self.scoped.get_mut(name) {
            if let Some(i) = scopes
                .iter()
                .rposition(|(span, _)| span.strictly_contains(pos))
            {
                return &mut scopes[i].1;
            }
        }
        self.global.entry(Rc::from(name)).or_default()
    }

    /// `new` opens a scope over `span`.
    pub(crate) fn push_scope(&mut self, name: &str, span: Span) {
        self.scoped
            .entry(Rc::from(name))
            .or_default()
            .push((span, Stream::default()));
    }

    /// The scope closes; its stream is returned so its generations can be renumbered.
    pub(crate) fn pop_scope(&mut self, name: &str) -> Option<Stream<'a>> {
        self.scoped.get_mut(name).and_then(Vec::pop).map(|(_, s)| s)
    }

    /// Every stream still alive (global and open scopes), for the final renumbering.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Stream<'a>> {
        self.global
            .values()
            .chain(self.scoped.values().flatten().map(|(_, s)| s))
    }
}
