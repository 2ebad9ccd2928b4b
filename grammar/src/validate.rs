//! Static validation (air-language.md §8): the checks the reference runs on a parsed
//! script before executing anything, quirks included.
//!
//! The parser records what the checks need as it completes each instruction
//! ([`Facts`]), so no check walks the whole arena again; those that walk parts of it do
//! so without recursion: bottom-up checks read it in order (children come before
//! parents), top-down checks use an explicit stack.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use crate::ast::{Ast, Call, Fail, InstrId, InstrKind, Lens, Value, Var};
use crate::error::{ErrorKind, ParseError};
use crate::span::Span;

/// Runs the checks on a tree and the facts its parser recorded.
pub(crate) fn validate(ast: &Ast<'_>, facts: Facts) -> Result<(), ParseError> {
    let mut errors = Vec::new();
    defined_before_use(ast.source(), &facts, &mut errors);
    if facts.has_scopes {
        fold_scopes(ast, &facts, &mut errors);
    }
    // §8.6, `(fail 0 "…")`: found by the parser, reported after the scope checks.
    errors.extend(
        facts
            .zero_fails
            .iter()
            .map(|&span| (ErrorKind::FailCodeZero, span)),
    );
    // Without a fold over a stream, no candidate can ever be reported.
    if facts.has_stream_fold {
        nothing_after_next(ast, &facts.scoped, &mut errors);
    }
    if errors.is_empty() {
        return Ok(());
    }
    Err(ParseError::many(ast.source(), errors))
}

/// What the checks need from the tree, recorded by the parser as it completes each
/// instruction (while the instruction is still in the cache), so that no check walks
/// the whole arena again.
#[derive(Default)]
pub(crate) struct Facts {
    /// The variables read where §8.1 checks them, with the start of their instruction.
    uses: Vec<Occurrence>,
    /// The names defined, with the start of the defining instruction.
    definitions: Vec<Occurrence>,
    /// Per instruction, whether its subtree holds a `fold`, `next` or `new`: the scope
    /// checks skip the subtrees that hold none, where they have nothing to see. Empty
    /// until the first of them is complete (every instruction before it holds none).
    scoped: Vec<bool>,
    /// The `next` instructions, in arena order.
    nexts: Vec<InstrId>,
    has_scopes: bool,
    has_stream_fold: bool,
    /// The spans of the `(fail 0 "…")` instructions.
    zero_fails: Vec<Span>,
}

/// A variable occurrence in 12 bytes: its name is the script's text at `pos`.
#[derive(Clone, Copy)]
struct Occurrence {
    pos: u32,
    len: u32,
    /// The start of its instruction.
    at: u32,
}

impl Occurrence {
    fn new(var: &Var<'_>, at: u32) -> Self {
        // Names are slices of the script (under 4 GiB), starting at their position.
        Self {
            pos: var.pos,
            len: var.name.len() as u32,
            at,
        }
    }

    fn name<'a>(&self, source: &'a str) -> &'a str {
        &source[self.pos as usize..(self.pos + self.len) as usize]
    }

    fn span(&self) -> Span {
        Span::new(self.pos, self.pos + self.len)
    }
}

impl Facts {
    /// Facts with room for about `instructions` instructions.
    pub(crate) fn with_capacity(instructions: usize) -> Self {
        Self {
            // Most instructions that are no `seq`, `par` or `xor` read or define a name.
            uses: Vec::with_capacity(instructions / 2),
            definitions: Vec::with_capacity(instructions / 2),
            ..Self::default()
        }
    }

    /// Records the instruction `id` (spanning `span`), complete with its children
    /// (which have ids below `id`). Calls go to [`Self::record_call`] instead.
    #[inline(always)]
    pub(crate) fn record(&mut self, id: InstrId, span: Span, kind: &InstrKind<'_>) {
        let at = span.start;
        let mut own_scope = false;
        match kind {
            // The most common instructions, which have nothing to record unless a
            // scope is open below them.
            InstrKind::Seq(a, b) | InstrKind::Par(a, b) | InstrKind::Xor(a, b) => {
                if self.has_scopes {
                    let scoped = self.scoped_at(*a) || self.scoped_at(*b);
                    self.scoped.push(scoped);
                }
                return;
            }
            InstrKind::Ap(ap) => {
                self.value(&ap.arg, at);
                self.definitions.push(Occurrence::new(&ap.result, at));
            }
            // The value of an `ap` to a map is not checked (it waits at run time).
            InstrKind::ApMap(ap) => {
                self.value(&ap.key, at);
                self.definitions.push(Occurrence::new(&ap.map, at));
            }
            // A canon's peer and source are not checked (verified against the
            // reference), nor are `fail`'s operand (an undefined one is error 10003 at
            // run time), `next` and `new`.
            InstrKind::Canon(canon) => self
                .definitions
                .push(Occurrence::new(&canon.target, at)),
            InstrKind::Fold(fold) => {
                self.value(&fold.iterable, at);
                self.definitions.push(Occurrence::new(&fold.iterator, at));
                self.has_stream_fold |= fold.is_over_stream();
                own_scope = true;
            }
            InstrKind::New { var, .. } => {
                self.definitions.push(Occurrence::new(var, at));
                own_scope = true;
            }
            InstrKind::Next(_) => {
                self.nexts.push(id);
                own_scope = true;
            }
            InstrKind::Match(m) | InstrKind::Mismatch(m) => {
                self.value(&m.left, at);
                self.value(&m.right, at);
            }
            InstrKind::Fail(fail) if matches!(**fail, Fail::Literal { code: 0, .. }) => {
                self.zero_fails.push(span);
            }
            _ => {}
        }
        if own_scope && !self.has_scopes {
            self.has_scopes = true;
            self.scoped.resize(id.index(), false);
        }
        if self.has_scopes {
            let scoped = own_scope
                || match kind {
                    InstrKind::New { body, .. } => self.scoped_at(*body),
                    InstrKind::Match(m) | InstrKind::Mismatch(m) => self.scoped_at(m.body),
                    _ => false,
                };
            self.scoped.push(scoped);
        }
    }

    /// Records a call starting at `at`, from its operands (which the tree does not keep).
    #[inline(always)]
    pub(crate) fn record_call(&mut self, at: u32, call: &Call<'_>) {
        self.value(&call.peer, at);
        self.value(&call.service, at);
        self.value(&call.function, at);
        for arg in &call.args {
            self.value(arg, at);
        }
        if let Some(out) = &call.output {
            self.definitions.push(Occurrence::new(out, at));
        }
        // A call holds no fold, `next` or `new`.
        if self.has_scopes {
            self.scoped.push(false);
        }
    }

    fn scoped_at(&self, id: InstrId) -> bool {
        self.scoped[id.index()]
    }

    /// The variables an operand reads: its own, then those of its lens.
    #[inline(always)]
    fn value(&mut self, value: &Value<'_>, at: u32) {
        match value {
            Value::Var(var, None) => self.uses.push(Occurrence::new(var, at)),
            Value::Var(var, Some(lens)) => {
                self.uses.push(Occurrence::new(var, at));
                self.lens(lens, at);
            }
            Value::LastError(Some(lens)) | Value::Error(Some(lens)) => self.lens(lens, at),
            _ => {}
        }
    }

    fn lens(&mut self, lens: &Lens<'_>, at: u32) {
        self.uses
            .extend(lens.vars().map(|var| Occurrence::new(var, at)));
    }
}

type Errors = Vec<(ErrorKind, Span)>;

/// A name as a map key, its bytes packed into two words: names of up to 16 bytes (most
/// of them) compare and hash as integers, without a call to `memcmp`.
#[derive(Clone, Copy)]
struct Name<'a> {
    head: u64,
    tail: u64,
    text: &'a str,
}

impl<'a> Name<'a> {
    fn new(text: &'a str) -> Self {
        let bytes = text.as_bytes();
        let word =
            |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8-byte chunk"));
        let half =
            |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4-byte chunk"));
        let n = bytes.len();
        // The first and the last eight bytes (overlapping below 16), or four, or the
        // first, middle and last byte: with the length, they are all of a short name.
        let (head, tail) = if n >= 8 {
            (word(0), word(n - 8))
        } else if n >= 4 {
            (u64::from(half(0)), u64::from(half(n - 4)))
        } else if n > 0 {
            let three = u64::from(bytes[0]) | u64::from(bytes[n / 2]) << 8;
            (three | u64::from(bytes[n - 1]) << 16, 0)
        } else {
            (0, 0)
        };
        Self { head, tail, text }
    }
}

impl PartialEq for Name<'_> {
    fn eq(&self, other: &Self) -> bool {
        let n = self.text.len();
        self.head == other.head
            && self.tail == other.tail
            && n == other.text.len()
            && (n <= 16 || self.text == other.text)
    }
}

impl Eq for Name<'_> {}

impl Name<'_> {
    /// The bits of the name, folded into one word.
    fn folded(&self) -> u64 {
        self.head ^ self.tail.rotate_left(29) ^ self.text.len() as u64
    }

    /// A line of [`ReadNames`]' cache.
    fn cache_line(&self) -> usize {
        (self.folded().wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize
    }
}

impl Hash for Name<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.folded());
    }
}

/// A small fast hasher for [`Name`]s: validation hashes every variable occurrence, and
/// SipHash showed up as 9% of the reference's parse time. Maps keyed by it are only
/// looked up, never iterated, so the order they would give never reaches the output.
#[derive(Default)]
struct NameHasher(u64);

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn finish(&self) -> u64 {
        // The table indexes by the low bits, which a multiplication leaves poorly mixed.
        self.0 ^ self.0 >> 32
    }
}

type NameMap<'a, V> = HashMap<Name<'a>, V, BuildHasherDefault<NameHasher>>;

fn var_span(var: &Var<'_>) -> Span {
    Span::new(var.pos, var.pos + var.name.len() as u32)
}

/// §8.1: each use needs a definition of the same name in an instruction that starts
/// strictly earlier in the text.
///
/// Only the names that are read matter, and scripts read few names (a fold's iterator,
/// a handful of results) while they may define thousands: the read names get slots,
/// and a definition is hashed only if a cheap filter says its name may be one of them.
fn defined_before_use(source: &str, facts: &Facts, errors: &mut Errors) {
    let mut read = ReadNames::default();
    // The slot of each use, in the order of `facts.uses`.
    let mut slots = Vec::with_capacity(facts.uses.len());
    for occurrence in &facts.uses {
        slots.push(read.slot_or_insert(occurrence.name(source)));
    }
    // The start of the first definition of each read name; none is `u32::MAX`, which
    // no instruction start reaches (scripts are shorter than 4 GiB).
    let mut first_def = vec![u32::MAX; read.map.len()];
    for occurrence in &facts.definitions {
        if let Some(slot) = read.slot(occurrence.name(source)) {
            let def = &mut first_def[slot as usize];
            *def = (*def).min(occurrence.at);
        }
    }
    for (occurrence, &slot) in facts.uses.iter().zip(&slots) {
        if first_def[slot as usize] >= occurrence.at {
            errors.push((
                ErrorKind::UndefinedVariable {
                    name: occurrence.name(source).to_owned(),
                },
                occurrence.span(),
            ));
        }
    }
}

/// The names read by a script, each with a slot (numbered from 0 in order of first
/// use). Scripts read few names many times and define many names: a filter answers
/// most "not read" without hashing, and a small direct-mapped cache answers most of the
/// rest without probing the map.
struct ReadNames<'a> {
    map: NameMap<'a, u32>,
    filter: NameFilter,
    cache: Box<[Option<(Name<'a>, u32)>; 256]>,
}

impl Default for ReadNames<'_> {
    fn default() -> Self {
        Self {
            map: NameMap::default(),
            filter: NameFilter::default(),
            cache: Box::new([None; 256]),
        }
    }
}

impl<'a> ReadNames<'a> {
    fn slot_or_insert(&mut self, text: &'a str) -> u32 {
        let name = Name::new(text);
        let line = name.cache_line();
        if let Some((cached, slot)) = self.cache[line] {
            if cached == name {
                return slot;
            }
        }
        let next = self.map.len() as u32;
        let slot = *self.map.entry(name).or_insert(next);
        if slot == next {
            self.filter.insert(text);
        }
        self.cache[line] = Some((name, slot));
        slot
    }

    fn slot(&mut self, text: &'a str) -> Option<u32> {
        if !self.filter.may_contain(text) {
            return None;
        }
        let name = Name::new(text);
        let line = name.cache_line();
        if let Some((cached, slot)) = self.cache[line] {
            if cached == name {
                return Some(slot);
            }
        }
        let (&key, &slot) = self.map.get_key_value(&name)?;
        self.cache[line] = Some((key, slot));
        Some(slot)
    }
}

/// A set of names that can answer "certainly not in it" from the length and the first
/// and last bytes of a name, without hashing it.
#[derive(Default)]
struct NameFilter([u64; 4]);

impl NameFilter {
    fn bit(name: &str) -> usize {
        let bytes = name.as_bytes();
        let first = bytes.first().copied().unwrap_or(0) as usize;
        let last = bytes.last().copied().unwrap_or(0) as usize;
        (bytes.len().wrapping_mul(37) ^ first.wrapping_mul(7) ^ last.wrapping_mul(131)) & 255
    }

    fn insert(&mut self, name: &str) {
        let bit = Self::bit(name);
        self.0[bit / 64] |= 1 << (bit % 64);
    }

    fn may_contain(&self, name: &str) -> bool {
        let bit = Self::bit(name);
        self.0[bit / 64] & 1 << (bit % 64) != 0
    }
}

/// §8.2–8.5: `next` inside its fold and once per fold, no nested folds over one
/// iterator name, no `new` on an iterator.
fn fold_scopes(ast: &Ast<'_>, facts: &Facts, errors: &mut Errors) {
    let scoped = &facts.scoped;
    // Quirk (§8.2): only the first `next` of each name, in the order the parser
    // completes instructions (the arena's order), is checked for an enclosing fold.
    let mut first_next = NameMap::default();
    for &id in &facts.nexts {
        if let InstrKind::Next(var) = &ast.instr(id).kind {
            first_next.entry(Name::new(var.name)).or_insert(id);
        }
    }
    // Per iterator name, the folds that enclose the current instruction, innermost
    // last, each with how many `next`s of its name it has seen.
    let mut enclosing: NameMap<'_, Vec<(InstrId, u32)>> = NameMap::default();
    enum Step {
        Enter(InstrId),
        Leave(InstrId),
    }
    let mut stack = Vec::new();
    if scoped[ast.root().index()] {
        stack.push(Step::Enter(ast.root()));
    }
    while let Some(step) = stack.pop() {
        let id = match step {
            Step::Enter(id) => id,
            Step::Leave(id) => {
                if let InstrKind::Fold(fold) = &ast.instr(id).kind {
                    enclosing.get_mut(&Name::new(fold.iterator.name)).and_then(Vec::pop);
                }
                continue;
            }
        };
        let instr = ast.instr(id);
        match &instr.kind {
            InstrKind::Fold(fold) => {
                let folds = enclosing.entry(Name::new(fold.iterator.name)).or_default();
                if !folds.is_empty() {
                    errors.push((
                        ErrorKind::MultipleIterable {
                            name: fold.iterator.name.to_owned(),
                        },
                        var_span(&fold.iterator),
                    ));
                }
                folds.push((id, 0));
                stack.push(Step::Leave(id));
            }
            InstrKind::Next(var) => match enclosing.get_mut(&Name::new(var.name)).and_then(|f| f.last_mut()) {
                Some((_, count)) => {
                    *count += 1;
                    if *count == 2 {
                        errors.push((
                            ErrorKind::MultipleNext {
                                name: var.name.to_owned(),
                            },
                            instr.span,
                        ));
                    }
                }
                None if first_next.get(&Name::new(var.name)) == Some(&id) => {
                    errors.push((
                        ErrorKind::UndefinedIterable {
                            name: var.name.to_owned(),
                        },
                        instr.span,
                    ));
                }
                None => {}
            },
            InstrKind::New { var, .. }
                if enclosing.get(&Name::new(var.name)).is_some_and(|f| !f.is_empty()) =>
            {
                errors.push((
                    ErrorKind::NewOnIterator {
                        name: var.name.to_owned(),
                    },
                    var_span(var),
                ));
            }
            _ => {}
        }
        // Children in reverse so the first is visited first; subtrees without folds,
        // `next` or `new` neither report nor change what encloses what.
        for child in instr.kind.children().rev() {
            if scoped[child.index()] {
                stack.push(Step::Enter(child));
            }
        }
    }
}

/// §8.7: in folds over streams and stream maps, `next` must come last. This mirrors the
/// reference's bottom-up state machine, whose quirks (candidates keyed by iterator name,
/// an `xor` of two `next`s switching the check off) are observable.
fn nothing_after_next(ast: &Ast<'_>, scoped: &[bool], errors: &mut Errors) {
    /// What a subtree ends with; a `next` is kept as its id (8 bytes a summary, not a
    /// name's 24: the vector is as long as the arena).
    #[derive(Clone, Copy, PartialEq)]
    enum Summary {
        Other,
        EndsWithNext(InstrId),
    }
    use Summary::{EndsWithNext, Other};
    let name = |id: InstrId| match &ast.instr(id).kind {
        InstrKind::Next(var) => var.name,
        _ => "",
    };
    let mut summaries: Vec<Summary> = Vec::with_capacity(ast.len());
    let mut candidates: NameMap<'_, Span> = NameMap::default();
    let mut enabled = true;
    for (id, instr) in ast.iter() {
        // Without `next` or a fold below, a subtree ends with no `next` and holds no
        // candidate.
        if !scoped[id.index()] {
            summaries.push(Other);
            continue;
        }
        let of = |id: InstrId| summaries[id.index()];
        let summary = match &instr.kind {
            InstrKind::Next(_) => EndsWithNext(id),
            InstrKind::Seq(a, b) | InstrKind::Par(a, b) => match (of(*a), of(*b)) {
                (EndsWithNext(x), EndsWithNext(y)) if name(x) == name(y) => EndsWithNext(x),
                (EndsWithNext(x), _) => {
                    candidates.entry(Name::new(name(x))).or_insert(instr.span);
                    Other
                }
                (Other, right) => right,
            },
            InstrKind::Xor(a, b) => match (of(*a), of(*b)) {
                (EndsWithNext(_), EndsWithNext(_)) => {
                    enabled = false;
                    Other
                }
                (EndsWithNext(x), Other) | (Other, EndsWithNext(x)) => EndsWithNext(x),
                (Other, Other) => Other,
            },
            InstrKind::New { body, .. } => of(*body),
            InstrKind::Match(m) | InstrKind::Mismatch(m) => of(m.body),
            InstrKind::Fold(fold) if fold.is_over_stream() => {
                let iterator = fold.iterator.name;
                if let Some(span) = candidates.remove(&Name::new(iterator)) {
                    if enabled {
                        errors.push((ErrorKind::InstructionAfterNext, span));
                    }
                }
                match of(fold.body) {
                    EndsWithNext(x) if name(x) != iterator => EndsWithNext(x),
                    _ => Other,
                }
            }
            _ => Other,
        };
        summaries.push(summary);
    }
}
