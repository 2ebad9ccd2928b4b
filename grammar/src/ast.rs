//! The AIR syntax tree: an arena of instructions that borrows names and literals from the
//! script text.
//!
//! Instructions live in one `Vec`, in the order the parser completes them (post-order:
//! children before their parent), and refer to their children by [`InstrId`]. The arena
//! keeps deep scripts (100,000 nested `seq`) cheap to build, walk and drop: nothing in
//! the tree is recursive, so no traversal needs the call stack.
//!
//! An instruction takes 24 bytes. The operands of a `call`, the most numerous
//! instruction and the largest (192 bytes), are kept by the parser for the first 4,096
//! calls of a script only, which covers real scripts. Past those, the parser checks
//! them, records what validation needs and leaves them in the text: [`Ast::call`]
//! parses them again the first time they are asked for, and keeps them. A generated
//! script of millions of calls then costs about its own size again, not five times
//! it, and an invoke pays for the operands of the calls it reaches only.

use std::cell::OnceCell;
use std::fmt;

use crate::span::Span;

/// The parsed and validated script. It can move to another thread but not be shared
/// between threads: [`Ast::call`] fills its cache of call operands through `&self`.
#[derive(Debug, Clone)]
pub struct Ast<'a> {
    pub(crate) source: &'a str,
    pub(crate) instrs: Vec<Instr<'a>>,
    pub(crate) root: InstrId,
}

impl<'a> Ast<'a> {
    /// The script text this tree borrows from.
    pub fn source(&self) -> &'a str {
        self.source
    }

    /// The top-level instruction.
    pub fn root(&self) -> InstrId {
        self.root
    }

    /// The instruction with this id. Ids come from this tree; ids of another tree may
    /// point elsewhere or panic.
    pub fn instr(&self, id: InstrId) -> &Instr<'a> {
        &self.instrs[id.index()]
    }

    /// The operands of the call `id`, or `None` when `id` is another instruction. They
    /// are parsed from the script text on the first request and kept for the next.
    pub fn call(&self, id: InstrId) -> Option<&Call<'a>> {
        let instr = self.instr(id);
        let InstrKind::Call(lazy) = &instr.kind else {
            return None;
        };
        Some(lazy.0.get_or_init(|| {
            // The parser has read these operands once already, from the same text.
            let call = crate::parser::parse_call(self.source, instr.span.start)
                .expect("a parsed call parses again");
            Box::new(call)
        }))
    }

    /// Parses the operands of every call, so that trees compare by what they say.
    fn parse_calls(&self) {
        for (id, instr) in self.iter() {
            if matches!(instr.kind, InstrKind::Call(_)) {
                self.call(id);
            }
        }
    }

    /// Number of instructions.
    pub fn len(&self) -> usize {
        self.instrs.len()
    }

    /// Always false: a script holds at least one instruction.
    pub fn is_empty(&self) -> bool {
        self.instrs.is_empty()
    }

    /// All instructions in post-order (every child before its parent), with their ids.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (InstrId, &Instr<'a>)> {
        self.instrs
            .iter()
            .enumerate()
            .map(|(i, instr)| (InstrId::from_index(i), instr))
    }

    /// Compares two trees ignoring spans and operand positions: true when both scripts
    /// say the same thing, however they were laid out.
    pub fn eq_ignoring_positions(&self, other: &Ast<'a>) -> bool {
        self.parse_calls();
        other.parse_calls();
        let mut a = self.clone();
        let mut b = other.clone();
        a.clear_positions();
        b.clear_positions();
        a.root == b.root && a.instrs == b.instrs
    }

    fn clear_positions(&mut self) {
        self.source = "";
        for instr in &mut self.instrs {
            instr.span = Span::default();
            instr.kind.for_each_var_mut(&mut |var| var.pos = 0);
        }
    }
}

impl PartialEq for Ast<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.parse_calls();
        other.parse_calls();
        self.source == other.source && self.root == other.root && self.instrs == other.instrs
    }
}

/// Index of an instruction in its [`Ast`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstrId(u32);

impl InstrId {
    /// The position in the arena.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    pub(crate) fn from_index(index: usize) -> Self {
        // The parser refuses scripts over 4 GiB, so an index always fits.
        Self(u32::try_from(index).expect("instruction index fits in u32"))
    }
}

/// One instruction and where it stands in the script.
#[derive(Debug, Clone, PartialEq)]
pub struct Instr<'a> {
    /// From its `(` to just after its `)`.
    pub span: Span,
    /// What it is.
    pub kind: InstrKind<'a>,
}

/// The instructions of AIR.
#[derive(Debug, Clone, PartialEq)]
pub enum InstrKind<'a> {
    /// `(call PEER (SERVICE FUNCTION) [ARGS] OUTPUT?)`: its operands are [`Ast::call`].
    Call(LazyCall<'a>),
    /// `(canon PEER SOURCE TARGET)`
    Canon(Box<Canon<'a>>),
    /// `(ap ARG RESULT)`
    Ap(Box<Ap<'a>>),
    /// `(ap (KEY VALUE) %MAP)`
    ApMap(Box<ApMap<'a>>),
    /// `(seq A B)`
    Seq(InstrId, InstrId),
    /// `(par A B)`
    Par(InstrId, InstrId),
    /// `(xor A B)`
    Xor(InstrId, InstrId),
    /// `(null)`
    Null,
    /// `(never)`
    Never,
    /// `(new VAR BODY)`
    New {
        /// The variable given a fresh scope (any kind, without lens).
        var: Box<Var<'a>>,
        /// The scope.
        body: InstrId,
    },
    /// `(fail …)`
    Fail(Box<Fail<'a>>),
    /// `(fold ITERABLE ITERATOR BODY LAST?)`
    Fold(Box<Fold<'a>>),
    /// `(next ITERATOR)`
    Next(Box<Var<'a>>),
    /// `(match A B BODY)`
    Match(Box<Match<'a>>),
    /// `(mismatch A B BODY)`
    Mismatch(Box<Match<'a>>),
}

impl<'a> InstrKind<'a> {
    /// The instruction's keyword.
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::Call(_) => "call",
            Self::Canon(_) => "canon",
            Self::Ap(_) | Self::ApMap(_) => "ap",
            Self::Seq(..) => "seq",
            Self::Par(..) => "par",
            Self::Xor(..) => "xor",
            Self::Null => "null",
            Self::Never => "never",
            Self::New { .. } => "new",
            Self::Fail(_) => "fail",
            Self::Fold(_) => "fold",
            Self::Next(_) => "next",
            Self::Match(_) => "match",
            Self::Mismatch(_) => "mismatch",
        }
    }

    /// The child instructions, in script order.
    pub fn children(&self) -> Children {
        match self {
            Self::Seq(a, b) | Self::Par(a, b) | Self::Xor(a, b) => Children::two(*a, *b),
            Self::New { body, .. } => Children::one(*body),
            Self::Match(m) | Self::Mismatch(m) => Children::one(m.body),
            Self::Fold(f) => match f.last {
                Some(last) => Children::two(f.body, last),
                None => Children::one(f.body),
            },
            _ => Children::none(),
        }
    }

    /// Calls `f` on every variable occurrence of this instruction (not of its children),
    /// including by-variable lens accessors, mutably.
    pub(crate) fn for_each_var_mut(&mut self, f: &mut dyn FnMut(&mut Var<'a>)) {
        let value = |v: &mut Value<'a>, f: &mut dyn FnMut(&mut Var<'a>)| v.for_each_var_mut(f);
        match self {
            // Only parsed operands: the text they come from stays as it was.
            Self::Call(LazyCall(cell)) => {
                let Some(c) = cell.get_mut() else { return };
                value(&mut c.peer, f);
                value(&mut c.service, f);
                value(&mut c.function, f);
                for arg in &mut c.args {
                    value(arg, f);
                }
                if let Some(out) = &mut c.output {
                    f(out);
                }
            }
            Self::Canon(c) => {
                value(&mut c.peer, f);
                f(&mut c.source);
                f(&mut c.target);
            }
            Self::Ap(ap) => {
                value(&mut ap.arg, f);
                f(&mut ap.result);
            }
            Self::ApMap(ap) => {
                value(&mut ap.key, f);
                value(&mut ap.value, f);
                f(&mut ap.map);
            }
            Self::New { var, .. } | Self::Next(var) => f(var),
            Self::Fail(fail) => {
                if let Fail::Var(var, lens) = &mut **fail {
                    f(var);
                    if let Some(lens) = lens {
                        lens.for_each_var_mut(f);
                    }
                }
            }
            Self::Fold(fold) => {
                value(&mut fold.iterable, f);
                f(&mut fold.iterator);
            }
            Self::Match(m) | Self::Mismatch(m) => {
                value(&mut m.left, f);
                value(&mut m.right, f);
            }
            Self::Seq(..) | Self::Par(..) | Self::Xor(..) | Self::Null | Self::Never => {}
        }
    }
}

/// Where the operands of a call are kept once [`Ast::call`] has parsed them.
#[derive(Clone, Default)]
pub struct LazyCall<'a>(OnceCell<Box<Call<'a>>>);

impl<'a> LazyCall<'a> {
    /// Operands known already, for trees built by hand or generated.
    pub fn new(call: Call<'a>) -> Self {
        Self(OnceCell::from(Box::new(call)))
    }

    /// Operands still in the text.
    pub(crate) fn deferred() -> Self {
        Self(OnceCell::new())
    }
}

impl PartialEq for LazyCall<'_> {
    /// Equal when both are parsed and equal: operands still in the text compare unequal
    /// (compare whole trees, whose `==` parses them first).
    fn eq(&self, other: &Self) -> bool {
        matches!((self.0.get(), other.0.get()), (Some(a), Some(b)) if a == b)
    }
}

impl fmt::Debug for LazyCall<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.get() {
            Some(call) => call.fmt(f),
            None => f.write_str("Call(not parsed yet)"),
        }
    }
}

/// Up to two child ids, without allocating.
#[derive(Debug, Clone)]
pub struct Children {
    ids: [Option<InstrId>; 2],
    next: usize,
}

impl Children {
    fn none() -> Self {
        Self {
            ids: [None, None],
            next: 0,
        }
    }
    fn one(a: InstrId) -> Self {
        Self {
            ids: [Some(a), None],
            next: 0,
        }
    }
    fn two(a: InstrId, b: InstrId) -> Self {
        Self {
            ids: [Some(a), Some(b)],
            next: 0,
        }
    }
}

impl Iterator for Children {
    type Item = InstrId;
    fn next(&mut self) -> Option<InstrId> {
        let id = self.ids.get(self.next).copied().flatten()?;
        self.next += 1;
        Some(id)
    }
}

impl DoubleEndedIterator for Children {
    fn next_back(&mut self) -> Option<InstrId> {
        let last = self.ids.iter().rposition(Option::is_some)?;
        if last < self.next {
            return None;
        }
        self.ids[last].take()
    }
}

/// `(call PEER (SERVICE FUNCTION) [ARGS] OUTPUT?)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Call<'a> {
    /// `%init_peer_id%`, a string, a scalar (with or without lens) or a canon stream or
    /// canon map with lens.
    pub peer: Value<'a>,
    /// A string, a scalar (with or without lens) or a canon or canon map with lens.
    pub service: Value<'a>,
    /// Same forms as `service`.
    pub function: Value<'a>,
    /// The arguments.
    pub args: Vec<Value<'a>>,
    /// A scalar or a stream, without lens.
    pub output: Option<Var<'a>>,
}

/// `(canon PEER SOURCE TARGET)`: a stream to a canon stream, a stream map to a canon
/// map, or a stream map to a scalar.
#[derive(Debug, Clone, PartialEq)]
pub struct Canon<'a> {
    /// Same forms as a call's peer.
    pub peer: Value<'a>,
    /// A stream or a stream map.
    pub source: Var<'a>,
    /// A canon stream (for a stream), or a canon map or a scalar (for a stream map).
    pub target: Var<'a>,
}

/// `(ap ARG RESULT)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ap<'a> {
    /// Any value except a canon map without lens.
    pub arg: Value<'a>,
    /// A scalar or a stream, without lens.
    pub result: Var<'a>,
}

/// `(ap (KEY VALUE) %MAP)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApMap<'a> {
    /// A string, an integer, a scalar (with or without lens) or a canon with lens.
    pub key: Value<'a>,
    /// Any value except a canon map without lens.
    pub value: Value<'a>,
    /// The stream map.
    pub map: Var<'a>,
}

/// The forms of `fail`.
#[derive(Debug, Clone, PartialEq)]
pub enum Fail<'a> {
    /// `(fail x)`, `(fail x.$.lens)`, `(fail #c.$.lens)`: an error object from a variable.
    Var(Var<'a>, Option<Lens<'a>>),
    /// `(fail CODE "MESSAGE")`.
    Literal {
        /// The error code; never 0 after validation.
        code: i64,
        /// The message, as written.
        message: &'a str,
    },
    /// `(fail %last_error%)`.
    LastError,
    /// `(fail :error:)`.
    Error,
}

/// `(fold ITERABLE ITERATOR BODY LAST?)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fold<'a> {
    /// `[]`, a scalar (with or without lens), a canon stream (without lens), a canon map
    /// (with or without lens), a stream or a stream map (both without lens).
    pub iterable: Value<'a>,
    /// The iterator: a scalar.
    pub iterator: Var<'a>,
    /// Runs once per element.
    pub body: InstrId,
    /// Runs when the iteration is over.
    pub last: Option<InstrId>,
}

impl Fold<'_> {
    /// True when the fold iterates over a stream or a stream map, whose folds follow the
    /// stream rules (generations, no instructions after `next`).
    pub fn is_over_stream(&self) -> bool {
        matches!(
            &self.iterable,
            Value::Var(
                Var {
                    kind: VarKind::Stream | VarKind::StreamMap,
                    ..
                },
                _
            )
        )
    }
}

/// `(match LEFT RIGHT BODY)` and `(mismatch LEFT RIGHT BODY)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Match<'a> {
    /// Left operand.
    pub left: Value<'a>,
    /// Right operand.
    pub right: Value<'a>,
    /// Runs when the comparison holds.
    pub body: InstrId,
}

/// An operand.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// `%init_peer_id%`
    InitPeerId,
    /// `%timestamp%`
    Timestamp,
    /// `%ttl%`
    Ttl,
    /// `%last_error%` with an optional lens.
    LastError(Option<Lens<'a>>),
    /// `:error:` with an optional lens.
    Error(Option<Lens<'a>>),
    /// A string literal: the text between the quotes, as written (there are no escapes).
    String(&'a str),
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
    /// `[]`
    EmptyArray,
    /// A variable with an optional lens. Where a value is read this is a scalar, a
    /// canon stream or a canon map; fold iterables may also be streams and stream maps.
    Var(Var<'a>, Option<Lens<'a>>),
}

impl<'a> Value<'a> {
    /// The variable this operand reads, if any.
    pub fn var(&self) -> Option<&Var<'a>> {
        match self {
            Self::Var(var, _) => Some(var),
            _ => None,
        }
    }

    /// The operand's lens, if any.
    pub fn lens(&self) -> Option<&Lens<'a>> {
        match self {
            Self::Var(_, lens) | Self::LastError(lens) | Self::Error(lens) => lens.as_ref(),
            _ => None,
        }
    }

    pub(crate) fn for_each_var_mut(&mut self, f: &mut dyn FnMut(&mut Var<'a>)) {
        if let Self::Var(var, _) = self {
            f(var);
        }
        if let Self::Var(_, Some(lens)) | Self::LastError(Some(lens)) | Self::Error(Some(lens)) =
            self
        {
            lens.for_each_var_mut(f);
        }
    }
}

/// The kinds of variables, told apart by their sigils.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VarKind {
    /// No sigil: `x`.
    Scalar,
    /// `$s`
    Stream,
    /// `%m`
    StreamMap,
    /// `#$c`, and (a quirk of the language) `#c`.
    Canon,
    /// `#%c`, and (a quirk) any name whose second character is `%`.
    CanonMap,
}

impl VarKind {
    /// A name for messages: "scalar", "stream", …
    pub fn describe(self) -> &'static str {
        match self {
            Self::Scalar => "scalar",
            Self::Stream => "stream",
            Self::StreamMap => "stream map",
            Self::Canon => "canon stream",
            Self::CanonMap => "canon stream map",
        }
    }
}

/// A variable occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Var<'a> {
    /// Its kind.
    pub kind: VarKind,
    /// The full name, sigils included (`$s` and `#$s` are different variables).
    pub name: &'a str,
    /// Byte offset of the occurrence in the script.
    pub pos: u32,
}

/// A lens applied to a value: `.length` or a path `.$.a.[0]`.
#[derive(Debug, Clone, PartialEq)]
pub enum Lens<'a> {
    /// `.length`
    Length,
    /// `.$` followed by one or more accessors.
    Path(Box<[Accessor<'a>]>),
}

impl<'a> Lens<'a> {
    fn for_each_var_mut(&mut self, f: &mut dyn FnMut(&mut Var<'a>)) {
        if let Self::Path(accessors) = self {
            for accessor in accessors.iter_mut() {
                if let Accessor::Var(var) = accessor {
                    f(var);
                }
            }
        }
    }

    /// The scalars named in by-variable accessors (`[name]`).
    pub fn vars(&self) -> impl Iterator<Item = &Var<'a>> {
        let accessors: &[Accessor<'a>] = match self {
            Self::Length => &[],
            Self::Path(accessors) => accessors,
        };
        accessors.iter().filter_map(|a| match a {
            Accessor::Var(var) => Some(var),
            _ => None,
        })
    }
}

/// One step of a lens path.
#[derive(Debug, Clone, PartialEq)]
pub enum Accessor<'a> {
    /// `[0]`
    Index(u32),
    /// `.field`
    Field(&'a str),
    /// `[name]`: an index (number) or field (string) taken from a scalar.
    Var(Var<'a>),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The arena's size is most of a tree's: a 100 MB script has 5.6 million
    /// instructions (see the module's documentation).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_instruction_takes_24_bytes() {
        assert_eq!(std::mem::size_of::<Instr<'_>>(), 24);
        assert_eq!(std::mem::size_of::<InstrKind<'_>>(), 16);
    }

    /// A script of `(seq CALL (seq CALL … (null)))` with the parser's kept calls first,
    /// then `lazy`, whose operands are left in the text.
    fn script_with_late_calls(lazy: &[&str]) -> String {
        let early = r#"(call "p" ("s" "f") [] x)"#;
        let calls: Vec<&str> = std::iter::repeat_n(early, crate::parser::KEPT_CALLS as usize)
            .chain(lazy.iter().copied())
            .collect();
        let mut script = String::new();
        for call in &calls {
            script.push_str("(seq ");
            script.push_str(call);
            script.push(' ');
        }
        script.push_str("(null)");
        script.push_str(&")".repeat(calls.len()));
        script
    }

    #[test]
    fn late_call_operands_are_parsed_on_request_and_kept() {
        let late = [
            r#"(call "p" ("s" "f") [x.$.a 1 #$c.$.[0]] $out)"#,
            r#"(call x.$.peer (#%m.$.k.[i] "g") [%init_peer_id% :error:.$.message])"#,
        ];
        let script = script_with_late_calls(&late);
        let ast = crate::parse_unvalidated(&script).unwrap();
        let calls: Vec<InstrId> = ast
            .iter()
            .filter(|(_, instr)| matches!(instr.kind, InstrKind::Call(_)))
            .map(|(id, _)| id)
            .collect();
        let [.., first, second] = calls[..] else {
            panic!("two late calls");
        };
        let InstrKind::Call(LazyCall(cell)) = &ast.instr(first).kind else {
            panic!("a call");
        };
        assert!(cell.get().is_none(), "the operands wait in the text");
        let call = ast.call(first).unwrap();
        assert_eq!(call.peer, Value::String("p"));
        assert_eq!(call.args.len(), 3);
        let out = call.output.unwrap();
        assert_eq!(&script[out.pos as usize..][..4], "$out");
        assert_eq!((out.name, out.kind), ("$out", VarKind::Stream));
        assert!(std::ptr::eq(call, ast.call(first).unwrap()), "kept");
        let call = ast.call(second).unwrap();
        assert_eq!(call.peer.var().map(|v| v.name), Some("x"));
        assert_eq!(call.service.var().map(|v| v.kind), Some(VarKind::CanonMap));
        assert_eq!(call.output, None);
        assert_eq!(
            ast.display(second).to_string(),
            r#"call x.$.peer (#%m.$.k.[i] "g") [%init_peer_id% :error:.$.message] "#
        );
        assert!(ast.call(ast.root()).is_none());
    }

    #[test]
    fn late_calls_print_and_parse_back() {
        let late = [
            r#"(call "p" ("s" "f") [x.$.a 1 2.5 true "t" []] $out)"#,
            r#"(call %init_peer_id% (x.$.s "f") [%last_error%.$.code %timestamp% %ttl%] y)"#,
        ];
        let script = script_with_late_calls(&late);
        let ast = crate::parse_unvalidated(&script).unwrap();
        let printed = ast.to_string();
        let again = crate::parse_unvalidated(&printed).unwrap();
        assert!(ast.eq_ignoring_positions(&again));
        assert!(printed.contains(r#"(call %init_peer_id% (x.$.s "f") [%last_error%.$.code %timestamp% %ttl%] y)"#));
    }

    #[test]
    fn trees_compare_by_their_operands_whether_parsed_or_not() {
        let text = script_with_late_calls(&[r#"(call "p" ("s" "f") [] x)"#]);
        let other_text = script_with_late_calls(&[r#"(call "p" ("s" "f") [] y)"#]);
        let one = crate::parse_unvalidated(&text).unwrap();
        let two = crate::parse_unvalidated(&text).unwrap();
        let other = crate::parse_unvalidated(&other_text).unwrap();
        // The late call's operands are parsed in `one` only.
        let late = InstrId::from_index(crate::parser::KEPT_CALLS as usize);
        assert!(one.call(late).is_some());
        let InstrKind::Call(LazyCall(cell)) = &two.instr(late).kind else {
            panic!("a call");
        };
        assert!(cell.get().is_none());
        assert_eq!(one, two);
        assert!(one.eq_ignoring_positions(&two));
        assert!(!one.eq_ignoring_positions(&other));
    }
}
