//! Static validation (air-language.md §8): the checks the reference runs on a parsed
//! script before executing anything, quirks included.
//!
//! Every check walks the arena without recursion: bottom-up checks read it in order
//! (children come before parents), top-down checks use an explicit stack.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::ast::{Ast, Fail, InstrId, InstrKind, Value, Var};
use crate::error::{ErrorKind, ParseError};
use crate::span::Span;

pub(crate) fn validate(ast: &Ast<'_>) -> Result<(), ParseError> {
    let mut errors = Vec::new();
    let (mut has_scopes, mut has_stream_fold) = (false, false);
    // §8.6, `(fail 0 "…")`: found here, reported after the scope checks.
    let mut zero_fails = Vec::new();
    let mut definitions = 0;
    for (_, instr) in ast.iter() {
        match &instr.kind {
            InstrKind::Call(call) => definitions += usize::from(call.output.is_some()),
            InstrKind::Ap(_) | InstrKind::ApMap(_) | InstrKind::Canon(_) => definitions += 1,
            InstrKind::Fold(fold) => {
                definitions += 1;
                has_scopes = true;
                has_stream_fold |= fold.is_over_stream();
            }
            InstrKind::New { .. } => {
                definitions += 1;
                has_scopes = true;
            }
            InstrKind::Next(_) => has_scopes = true,
            InstrKind::Fail(fail) if matches!(**fail, Fail::Literal { code: 0, .. }) => {
                zero_fails.push((ErrorKind::FailCodeZero, instr.span));
            }
            _ => {}
        }
    }
    defined_before_use(ast, definitions, &mut errors);
    if has_scopes {
        let scoped = scoped_subtrees(ast);
        fold_scopes(ast, &scoped, &mut errors);
        errors.append(&mut zero_fails);
        // Without a fold over a stream, no candidate can ever be reported.
        if has_stream_fold {
            nothing_after_next(ast, &scoped, &mut errors);
        }
    } else {
        errors.append(&mut zero_fails);
    }
    if errors.is_empty() {
        return Ok(());
    }
    Err(ParseError::many(ast.source(), errors))
}

/// For each instruction, whether its subtree holds a `fold`, `next` or `new`: the
/// scope checks skip the subtrees that hold none, where they have nothing to see.
fn scoped_subtrees(ast: &Ast<'_>) -> Vec<bool> {
    let mut scoped = Vec::with_capacity(ast.len());
    for (_, instr) in ast.iter() {
        let own = matches!(
            instr.kind,
            InstrKind::Fold(_) | InstrKind::Next(_) | InstrKind::New { .. }
        );
        // Children come before their parent in the arena.
        let below = instr.kind.children().any(|child| scoped[child.index()]);
        scoped.push(own || below);
    }
    scoped
}

type Errors = Vec<(ErrorKind, Span)>;

/// A small fast hasher for names: validation hashes every variable occurrence, and
/// SipHash showed up as 9% of the reference's parse time. Maps keyed by it are only
/// looked up, never iterated, so the order they would give never reaches the output.
#[derive(Default)]
struct NameHasher(u64);

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8-byte chunk")));
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(tail) ^ rest.len() as u64);
    }
    fn write_u8(&mut self, b: u8) {
        self.add(u64::from(b));
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl NameHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type NameMap<'a, V> = HashMap<&'a str, V, BuildHasherDefault<NameHasher>>;

fn var_span(var: &Var<'_>) -> Span {
    Span::new(var.pos, var.pos + var.name.len() as u32)
}

/// §8.1: each use needs a definition of the same name in an instruction that starts
/// strictly earlier in the text.
/// `definitions`: how many instructions define a name, an upper bound of the names.
fn defined_before_use<'a>(ast: &Ast<'a>, definitions: usize, errors: &mut Errors) {
    let mut first_def: NameMap<'a, u32> =
        NameMap::with_capacity_and_hasher(definitions, Default::default());
    let mut define = |var: &Var<'a>, at: u32| {
        first_def
            .entry(var.name)
            .and_modify(|p| *p = (*p).min(at))
            .or_insert(at);
    };
    for (_, instr) in ast.iter() {
        let at = instr.span.start;
        match &instr.kind {
            InstrKind::Call(call) => {
                if let Some(out) = &call.output {
                    define(out, at);
                }
            }
            InstrKind::Ap(ap) => define(&ap.result, at),
            InstrKind::ApMap(ap) => define(&ap.map, at),
            InstrKind::Canon(canon) => define(&canon.target, at),
            InstrKind::New { var, .. } => define(var, at),
            InstrKind::Fold(fold) => define(&fold.iterator, at),
            _ => {}
        }
    }
    for (_, instr) in ast.iter() {
        let at = instr.span.start;
        let mut check = |var: &Var<'_>| {
            if first_def.get(var.name).is_none_or(|&def| def >= at) {
                errors.push((
                    ErrorKind::UndefinedVariable {
                        name: var.name.to_owned(),
                    },
                    var_span(var),
                ));
            }
        };
        let mut check_value = |value: &Value<'_>| {
            if let Some(var) = value.var() {
                check(var);
            }
            if let Some(lens) = value.lens() {
                lens.vars().for_each(&mut check);
            }
        };
        match &instr.kind {
            InstrKind::Call(call) => {
                check_value(&call.peer);
                check_value(&call.service);
                check_value(&call.function);
                call.args.iter().for_each(&mut check_value);
            }
            InstrKind::Ap(ap) => check_value(&ap.arg),
            // The value of an `ap` to a map is not checked (it waits at run time).
            InstrKind::ApMap(ap) => check_value(&ap.key),
            InstrKind::Fold(fold) => check_value(&fold.iterable),
            InstrKind::Match(m) | InstrKind::Mismatch(m) => {
                check_value(&m.left);
                check_value(&m.right);
            }
            // Not checked (verified against the reference): a canon's peer and source,
            // `fail`'s operand (an undefined one is error 10003 at run time), `next`, `new`.
            _ => {}
        }
    }
}

/// §8.2–8.5: `next` inside its fold and once per fold, no nested folds over one
/// iterator name, no `new` on an iterator.
fn fold_scopes(ast: &Ast<'_>, scoped: &[bool], errors: &mut Errors) {
    // Quirk (§8.2): only the first `next` of each name, in the order the parser
    // completes instructions (the arena's order), is checked for an enclosing fold.
    let mut checked_next = vec![false; ast.len()];
    let mut seen: NameMap<'_, ()> = NameMap::default();
    for (id, instr) in ast.iter() {
        if let InstrKind::Next(var) = &instr.kind {
            if seen.insert(var.name, ()).is_none() {
                checked_next[id.index()] = true;
            }
        }
    }
    let mut enclosing: NameMap<'_, Vec<InstrId>> = NameMap::default();
    let mut nexts_per_fold = vec![0u32; ast.len()];
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
                    enclosing.get_mut(fold.iterator.name).and_then(Vec::pop);
                }
                continue;
            }
        };
        let instr = ast.instr(id);
        match &instr.kind {
            InstrKind::Fold(fold) => {
                let folds = enclosing.entry(fold.iterator.name).or_default();
                if !folds.is_empty() {
                    errors.push((
                        ErrorKind::MultipleIterable {
                            name: fold.iterator.name.to_owned(),
                        },
                        var_span(&fold.iterator),
                    ));
                }
                folds.push(id);
                stack.push(Step::Leave(id));
            }
            InstrKind::Next(var) => match enclosing.get(var.name).and_then(|f| f.last()) {
                Some(fold) => {
                    let count = &mut nexts_per_fold[fold.index()];
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
                None if checked_next[id.index()] => {
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
                if enclosing.get(var.name).is_some_and(|f| !f.is_empty()) =>
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
                    candidates.entry(name(x)).or_insert(instr.span);
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
                if let Some(span) = candidates.remove(iterator) {
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
