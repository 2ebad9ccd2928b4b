//! Random small multi-peer AIR programs. A generated [`Program`] is a tree over abstract
//! references ("the k-th scalar defined so far", "the innermost iterator"), resolved to
//! names when it is printed, so every printed program passes static validation and
//! shrinking never makes it invalid.
//!
//! The printed script uses the peers `A`–`D` (as literals, `%init_peer_id%`, scalars,
//! lenses and fold iterators), the services `s0`–`s2`, `list` and `err` with function
//! `f` (and service names read from scalars), the streams `$s0`, `$s1` and stream maps
//! `%m0`, `%m1`, fresh scalars `v0, v1, …`, error objects `e0, e1, …`, canon streams
//! `#c0, …`, canon maps `#%k0, …` and iterators `i0, i1, …`. It reaches every
//! instruction: calls (whose arguments may wait or fail in any order), `ap` of every
//! operand kind into scalars, streams and stream maps, `canon` of streams and maps (to a
//! canon map or a scalar), `new` of every variable kind, `match`, `mismatch`, `fail` in
//! all four forms (also outside any `xor`), `never`, and folds over scalars (with
//! lenses), canons, canon maps, streams, stream maps and `[]`, with `next` last in a
//! `seq`, `par` or `xor`, first in a `seq` or `par` (folds over scalars and canons), or
//! absent.
//!
//! What it avoids: error objects (which carry message texts, compared nowhere) reach only
//! the service `err` (always answered `1`) and `fail`, never a stream, a map or another
//! service; map keys are words, small integers and values of those kinds, never a
//! string of digits, so no canon map holds both key `1` and key `"1"` (the reference
//! is not deterministic there). [`Program::replay_stable`] narrows it further for the
//! merge laws.

use std::fmt::Write as _;

use proptest::prelude::*;

/// The peer names programs and scenarios draw from.
pub const PEER_NAMES: [&str; 4] = ["A", "B", "C", "D"];

/// The literal strings arguments, matches and map keys draw from: peer names and two
/// other words (`k` is the field of the object services answer with).
const WORDS: [&str; 6] = ["A", "B", "C", "D", "x", "k"];

/// A generated program.
#[derive(Debug, Clone)]
pub struct Program {
    body: Node,
    /// Printed as [`Program::replay_stable`] says.
    replay_stable: bool,
}

#[derive(Debug, Clone)]
enum Node {
    Call {
        peer: PeerRef,
        service: Service,
        args: Vec<Arg>,
        output: Output,
    },
    Ap {
        arg: Arg,
        output: Output,
    },
    /// `(ap (KEY VALUE) %mN)`.
    ApMap {
        key: Key,
        value: Arg,
        map: u8,
    },
    /// `(ap :error: eN)` or `(ap %last_error% eN)`: an error object kept for `err` and
    /// `fail`.
    ApError {
        last: bool,
    },
    Canon {
        peer: PeerRef,
        form: CanonForm,
    },
    Seq(Box<Node>, Box<Node>),
    Par(Box<Node>, Box<Node>),
    Xor(Box<Node>, Box<Node>),
    /// `(xor (seq body (fail code "boom")) catch)`.
    Catch {
        body: Box<Node>,
        code: u8,
        catch: Box<Node>,
    },
    Fail(FailForm),
    New {
        var: NewVar,
        body: Box<Node>,
    },
    Match {
        negate: bool,
        left: Arg,
        right: Arg,
        body: Box<Node>,
    },
    Fold {
        over: FoldOver,
        body: Box<Node>,
        next: NextPlace,
        last: Option<Box<Node>>,
    },
    Null,
    Never,
}

/// Where a call or canon runs.
#[derive(Debug, Clone, Copy)]
enum PeerRef {
    /// `PEER_NAMES[n % peers]`.
    Literal(u8),
    InitPeer,
    /// The n-th innermost fold iterator; `%init_peer_id%` outside folds.
    Iterator(u8),
    /// The n-th visible scalar (modulo their number); `"A"` when none is visible.
    Scalar(u8),
    /// The n-th visible scalar with lens `.$.k` (an object's peer); `"B"` when none.
    ScalarField(u8),
    /// An element of the n-th canon stream, `#c.$.[0]`; `"C"` when none.
    CanonElement(u8),
}

/// A call's service.
#[derive(Debug, Clone, Copy)]
enum Service {
    /// `s0`–`s2`.
    Plain(u8),
    /// `list`: lists of peers or numbers.
    List,
    /// `err`: takes error objects, answers `1`.
    Err,
    /// The n-th visible scalar (not a string: 10011).
    Scalar(u8),
}

/// A call argument, `ap` argument, map value or `match` operand.
#[derive(Debug, Clone, Copy)]
enum Arg {
    Word(u8),
    Number(u8),
    Bool(bool),
    EmptyArray,
    InitPeer,
    Timestamp,
    Ttl,
    /// `1.5`: a float (a bad map key).
    Float,
    Scalar(u8, ScalarLens),
    Iterator(u8, ScalarLens),
    Canon(u8, CanonLens),
    CanonMap(u8, MapLens),
    /// `:error:` (`last`: `%last_error%`) with `.$.error_code`, `.$.peer_id` or, for the
    /// service `err` only, no lens.
    Error {
        last: bool,
        lens: ErrorLens,
    },
    /// An error object kept by `ApError` (for `err`), else its `.$.error_code`.
    ErrorScalar(u8),
}

#[derive(Debug, Clone, Copy)]
enum ScalarLens {
    None,
    /// `.$.k`
    Field,
    /// `.$.[0]`
    First,
    /// `.$.[2]`
    Third,
    /// `.length`
    Length,
    /// `.$.[vN]`: an index (or field) read from another scalar.
    ByScalar(u8),
}

#[derive(Debug, Clone, Copy)]
enum CanonLens {
    None,
    Length,
    /// `.$.[n]`
    Index(u8),
    /// `.$.[0].k`
    IndexField,
    /// `.$.[vN]`
    ByScalar(u8),
}

#[derive(Debug, Clone, Copy)]
enum MapLens {
    None,
    Length,
    /// `.$.WORD`
    Key(u8),
    /// `.$.[n]`: an integer key.
    IntKey(u8),
    /// `.$.WORD.[0]`
    KeyIndex(u8),
    /// `.$.WORD.[0].k`
    KeyIndexField(u8),
    /// `.$.[vN]`
    ByScalar(u8),
}

#[derive(Debug, Clone, Copy)]
enum ErrorLens {
    None,
    Code,
    PeerId,
}

/// A stream-map key.
#[derive(Debug, Clone, Copy)]
enum Key {
    Word(u8),
    Int(u8),
    Scalar(u8),
    Iterator(u8),
    /// `#cN.$.[0]`
    CanonElement(u8),
}

#[derive(Debug, Clone, Copy)]
enum Output {
    None,
    /// A fresh scalar.
    Scalar,
    Stream(u8),
    /// The n-th visible scalar again (20007 at the global level).
    Existing(u8),
    /// The innermost iterator's name (20004 for a call).
    Iterator,
}

#[derive(Debug, Clone, Copy)]
enum CanonForm {
    /// `(canon P $sN #cK)`
    Stream(u8),
    /// `(canon P %mN #%kK)`
    Map(u8),
    /// `(canon P %mN vK)`
    MapToScalar(u8),
}

#[derive(Debug, Clone, Copy)]
enum FailForm {
    Literal(u8),
    Error,
    LastError,
    /// `(fail vN)`: rarely an error object (10008).
    Scalar(u8),
    /// `(fail vN.$.k)`
    ScalarField(u8),
    /// `(fail eN)`: an error object kept by `ApError`.
    ErrorScalar(u8),
    /// `(fail #c.$.[0])`
    CanonElement(u8),
}

#[derive(Debug, Clone, Copy)]
enum NewVar {
    Stream(u8),
    Map(u8),
    /// A visible scalar (10009 when read before it is set again).
    Scalar(u8),
    Canon(u8),
}

/// What a fold iterates over.
#[derive(Debug, Clone, Copy)]
enum FoldOver {
    /// A visible scalar (with a lens), else a canon stream, else a fresh list.
    Scalar(u8, ScalarLens),
    /// A visible canon stream, else a scalar, else a fresh list.
    Canon(u8),
    /// A visible canon map (with `None`, `Key` or `IntKey` lens), else a fresh list.
    CanonMap(u8, MapLens),
    /// `(seq (call PEER ("list" "f") [] vN) (fold vN …))`: a list of peers or numbers.
    List(PeerRef),
    /// `(seq (canon PEER $sK #cN) (fold #cN …))`.
    FreshCanon(PeerRef, u8),
    /// `$sN`
    Stream(u8),
    /// `%mN`
    Map(u8),
    /// `[]`
    Empty,
}

#[derive(Debug, Clone, Copy)]
enum NextPlace {
    SeqLast,
    ParLast,
    /// `(xor body (next i))`
    XorLast,
    /// A right fold; for streams, `SeqLast`.
    SeqFirst,
    /// `(par (next i) body)`; for streams, `ParLast`.
    ParFirst,
    /// No `next`: only the first element (of each generation).
    Absent,
    /// In the first fold over a scalar or canon nested in the body, as
    /// `(seq (next OUTER) (next INNER))` there (an iteration of the outer fold restarts
    /// the inner one while it runs: 20005); after the body when no such fold takes it.
    Inner,
}

/// Programs of at most `depth + 1` levels of generated instructions, the root always a
/// `seq` or `par`. A fold adds the `seq`, `par` or `xor` that holds its `next`, and a
/// fold over a fresh list or canon the `seq` that computes it first.
pub fn arb_program(depth: u32) -> impl Strategy<Value = Program> {
    let inner = || arb_node(depth.saturating_sub(1)).prop_map(Box::new);
    prop_oneof![
        1 => (inner(), inner()).prop_map(|(a, b)| Node::Seq(a, b)),
        1 => (inner(), inner()).prop_map(|(a, b)| Node::Par(a, b)),
    ]
    .prop_map(|body| Program {
        body,
        replay_stable: false,
    })
}

impl Program {
    /// The same program without the two constructs whose replay by the peer that ran
    /// them can differ from the run itself, in the reference as in braid, so that
    /// `merge(x, x) = x` does not hold (the merge-law tests use this):
    /// - recursive streams: what a stream fold's body (or last instruction) would write
    ///   to the stream or map it folds goes to a fresh scalar instead (new values that
    ///   arrive in later invocations are visited differently on replay);
    /// - errors ending a stream-fold pass: the body before `next` and the last
    ///   instruction run inside `(xor … (null))` (a service failure processed now leaves
    ///   the pass complete, the same failure replayed makes it incomplete:
    ///   execution-model.md §5.13.4).
    pub fn replay_stable(mut self) -> Self {
        self.replay_stable = true;
        self
    }

    /// The program as AIR text for a network of the first `peers` of [`PEER_NAMES`]
    /// (1–4): literal peers are taken modulo their number, so every literal is reachable.
    pub fn text_for(&self, peers: usize) -> String {
        let mut w = Writer {
            peers: peers.clamp(1, PEER_NAMES.len()),
            replay_stable: self.replay_stable,
            ..Writer::default()
        };
        w.node(&self.body, 0);
        w.out
    }

    /// The program as AIR text for all four peers.
    pub fn text(&self) -> String {
        self.text_for(PEER_NAMES.len())
    }
}

impl std::fmt::Display for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

fn arb_peer() -> impl Strategy<Value = PeerRef> {
    prop_oneof![
        12 => (0u8..4).prop_map(PeerRef::Literal),
        4 => Just(PeerRef::InitPeer),
        4 => (0u8..2).prop_map(PeerRef::Iterator),
        2 => (0u8..4).prop_map(PeerRef::Scalar),
        1 => (0u8..4).prop_map(PeerRef::ScalarField),
        1 => (0u8..2).prop_map(PeerRef::CanonElement),
    ]
}

/// Where a canon runs: mostly a literal or `%init_peer_id%`, sometimes a variable. A
/// canon reads its trace state before it evaluates its peer (as the reference does), so
/// one whose peer fails to evaluate consumes a state that belongs to the next
/// instruction and breaks every replay (fixtures `laws/canon_peer_error_*`); that is
/// documented there, so replay-stable programs print variable canon peers as literals.
fn arb_canon_peer() -> impl Strategy<Value = PeerRef> {
    prop_oneof![
        6 => (0u8..4).prop_map(PeerRef::Literal),
        2 => Just(PeerRef::InitPeer),
        1 => arb_peer(),
    ]
}

fn arb_scalar_lens() -> impl Strategy<Value = ScalarLens> {
    prop_oneof![
        12 => Just(ScalarLens::None),
        2 => Just(ScalarLens::Field),
        2 => Just(ScalarLens::First),
        1 => Just(ScalarLens::Third),
        1 => Just(ScalarLens::Length),
        1 => (0u8..4).prop_map(ScalarLens::ByScalar),
    ]
}

fn arb_canon_lens() -> impl Strategy<Value = CanonLens> {
    prop_oneof![
        4 => Just(CanonLens::None),
        1 => Just(CanonLens::Length),
        2 => (0u8..2).prop_map(CanonLens::Index),
        1 => Just(CanonLens::IndexField),
        1 => (0u8..4).prop_map(CanonLens::ByScalar),
    ]
}

fn arb_map_lens() -> impl Strategy<Value = MapLens> {
    prop_oneof![
        2 => Just(MapLens::None),
        1 => Just(MapLens::Length),
        3 => (0u8..6).prop_map(MapLens::Key),
        1 => (0u8..3).prop_map(MapLens::IntKey),
        2 => (0u8..6).prop_map(MapLens::KeyIndex),
        1 => (0u8..6).prop_map(MapLens::KeyIndexField),
        1 => (0u8..4).prop_map(MapLens::ByScalar),
    ]
}

fn arb_error_lens() -> impl Strategy<Value = ErrorLens> {
    prop_oneof![
        2 => Just(ErrorLens::None),
        2 => Just(ErrorLens::Code),
        1 => Just(ErrorLens::PeerId),
    ]
}

fn arb_arg() -> impl Strategy<Value = Arg> {
    prop_oneof![
        4 => (0u8..WORDS.len() as u8).prop_map(Arg::Word),
        2 => (0u8..3).prop_map(Arg::Number),
        1 => any::<bool>().prop_map(Arg::Bool),
        1 => Just(Arg::EmptyArray),
        2 => Just(Arg::InitPeer),
        1 => Just(Arg::Timestamp),
        1 => Just(Arg::Ttl),
        1 => Just(Arg::Float),
        8 => (0u8..4, arb_scalar_lens()).prop_map(|(k, l)| Arg::Scalar(k, l)),
        4 => (0u8..2, arb_scalar_lens()).prop_map(|(k, l)| Arg::Iterator(k, l)),
        3 => (0u8..2, arb_canon_lens()).prop_map(|(k, l)| Arg::Canon(k, l)),
        3 => (0u8..2, arb_map_lens()).prop_map(|(k, l)| Arg::CanonMap(k, l)),
        2 => (any::<bool>(), arb_error_lens()).prop_map(|(last, lens)| Arg::Error { last, lens }),
        1 => (0u8..2).prop_map(Arg::ErrorScalar),
    ]
}

fn arb_key() -> impl Strategy<Value = Key> {
    prop_oneof![
        4 => (0u8..WORDS.len() as u8).prop_map(Key::Word),
        2 => (0u8..3).prop_map(Key::Int),
        2 => (0u8..4).prop_map(Key::Scalar),
        2 => (0u8..2).prop_map(Key::Iterator),
        1 => (0u8..2).prop_map(Key::CanonElement),
    ]
}

fn arb_output(
    fresh: u32,
    stream: u32,
    existing: u32,
    iterator: u32,
) -> impl Strategy<Value = Output> {
    prop_oneof![
        2 => Just(Output::None),
        fresh => Just(Output::Scalar),
        stream => (0u8..2).prop_map(Output::Stream),
        existing => (0u8..4).prop_map(Output::Existing),
        iterator => Just(Output::Iterator),
    ]
}

fn arb_service() -> impl Strategy<Value = Service> {
    prop_oneof![
        16 => (0u8..3).prop_map(Service::Plain),
        1 => Just(Service::List),
        2 => Just(Service::Err),
        1 => (0u8..4).prop_map(Service::Scalar),
    ]
}

fn arb_leaf() -> impl Strategy<Value = Node> {
    let call_output = arb_output(4, 4, 1, 1);
    let ap_output = arb_output(3, 4, 1, 1).prop_map(|o| match o {
        Output::None => Output::Scalar,
        o => o,
    });
    let canon_form = prop_oneof![
        3 => (0u8..2).prop_map(CanonForm::Stream),
        2 => (0u8..2).prop_map(CanonForm::Map),
        1 => (0u8..2).prop_map(CanonForm::MapToScalar),
    ];
    let fail = prop_oneof![
        2 => (1u8..4).prop_map(FailForm::Literal),
        2 => Just(FailForm::Error),
        2 => Just(FailForm::LastError),
        1 => (0u8..4).prop_map(FailForm::Scalar),
        1 => (0u8..4).prop_map(FailForm::ScalarField),
        1 => (0u8..2).prop_map(FailForm::ErrorScalar),
        1 => (0u8..2).prop_map(FailForm::CanonElement),
    ];
    prop_oneof![
        12 => (arb_peer(), arb_service(), proptest::collection::vec(arb_arg(), 0..4), call_output)
            .prop_map(|(peer, service, args, output)| Node::Call { peer, service, args, output }),
        4 => (arb_arg(), ap_output).prop_map(|(arg, output)| Node::Ap { arg, output }),
        3 => (arb_key(), arb_arg(), 0u8..2).prop_map(|(key, value, map)| Node::ApMap { key, value, map }),
        1 => any::<bool>().prop_map(|last| Node::ApError { last }),
        4 => (arb_canon_peer(), canon_form).prop_map(|(peer, form)| Node::Canon { peer, form }),
        1 => fail.prop_map(Node::Fail),
        2 => Just(Node::Null),
        1 => Just(Node::Never),
    ]
}

fn arb_node(depth: u32) -> impl Strategy<Value = Node> {
    arb_leaf().prop_recursive(depth, 16, 2, |inner| {
        let boxed = inner.clone().prop_map(Box::new);
        let next = prop_oneof![
            6 => Just(NextPlace::SeqLast),
            4 => Just(NextPlace::ParLast),
            1 => Just(NextPlace::XorLast),
            2 => Just(NextPlace::SeqFirst),
            1 => Just(NextPlace::ParFirst),
            1 => Just(NextPlace::Absent),
            1 => Just(NextPlace::Inner),
        ];
        let over = prop_oneof![
            2 => (0u8..4, arb_scalar_lens()).prop_map(|(k, l)| FoldOver::Scalar(k, l)),
            1 => (0u8..2).prop_map(FoldOver::Canon),
            1 => (0u8..2, prop_oneof![Just(MapLens::None), (0u8..6).prop_map(MapLens::Key), (0u8..3).prop_map(MapLens::IntKey)])
                .prop_map(|(k, l)| FoldOver::CanonMap(k, l)),
            2 => arb_peer().prop_map(FoldOver::List),
            2 => (arb_canon_peer(), 0u8..2).prop_map(|(p, s)| FoldOver::FreshCanon(p, s)),
            3 => (0u8..2).prop_map(FoldOver::Stream),
            1 => (0u8..2).prop_map(FoldOver::Map),
            1 => Just(FoldOver::Empty),
        ];
        let new_var = prop_oneof![
            3 => (0u8..2).prop_map(NewVar::Stream),
            1 => (0u8..2).prop_map(NewVar::Map),
            1 => (0u8..4).prop_map(NewVar::Scalar),
            1 => (0u8..2).prop_map(NewVar::Canon),
        ];
        prop_oneof![
            5 => (boxed.clone(), boxed.clone()).prop_map(|(a, b)| Node::Seq(a, b)),
            4 => (boxed.clone(), boxed.clone()).prop_map(|(a, b)| Node::Par(a, b)),
            2 => (boxed.clone(), boxed.clone()).prop_map(|(a, b)| Node::Xor(a, b)),
            1 => (boxed.clone(), 1u8..4, boxed.clone())
                .prop_map(|(body, code, catch)| Node::Catch { body, code, catch }),
            1 => (new_var, boxed.clone()).prop_map(|(var, body)| Node::New { var, body }),
            1 => (any::<bool>(), arb_arg(), arb_arg(), boxed.clone())
                .prop_map(|(negate, left, right, body)| Node::Match { negate, left, right, body }),
            4 => (over, boxed.clone(), next, proptest::option::weighted(0.2, boxed))
                .prop_map(|(over, body, next, last)| Node::Fold { over, body, next, last }),
        ]
    })
}

/// What a stream fold may write to the stream it folds: operands that hold one value of
/// bounded size. A whole canon (or a scalar that may hold one) appended to the stream
/// it was taken from, once per element, doubles both the values and their size with
/// every pass, and neither implementation finishes before the size limit.
fn flat(arg: Arg) -> Arg {
    match arg {
        Arg::Canon(k, CanonLens::None | CanonLens::ByScalar(_)) => Arg::Canon(k, CanonLens::Length),
        Arg::CanonMap(
            k,
            MapLens::None | MapLens::Key(_) | MapLens::IntKey(_) | MapLens::ByScalar(_),
        ) => Arg::CanonMap(k, MapLens::Length),
        Arg::Scalar(k, _) => Arg::Scalar(k, ScalarLens::Length),
        other => other,
    }
}

/// Prints a program, resolving references against what is defined so far.
#[derive(Default)]
struct Writer {
    out: String,
    /// How many of `PEER_NAMES` literals may name.
    peers: usize,
    /// Scalars visible here, in definition order.
    scalars: Vec<String>,
    /// Error objects kept by `ap`, visible here.
    errors: Vec<String>,
    /// Canon streams visible here, in definition order.
    canons: Vec<String>,
    /// Canon maps visible here, in definition order.
    canon_maps: Vec<String>,
    /// Iterators of the enclosing folds, innermost last.
    iterators: Vec<String>,
    /// Streams and stream maps written so far in the text: a fold may iterate only over
    /// those (air-language.md §8.1).
    written: Vec<String>,
    /// Streams and maps of the enclosing stream folds.
    folded: Vec<String>,
    /// The iterator of an enclosing fold whose `next` the next nested scalar fold takes
    /// (`NextPlace::Inner`).
    outer_next: Option<String>,
    replay_stable: bool,
    fresh_scalar: usize,
    fresh_error: usize,
    fresh_canon: usize,
    fresh_canon_map: usize,
    fresh_iterator: usize,
}

/// How many names of each kind were visible: what leaving a fold body restores.
type Visible = (usize, usize, usize, usize);

impl Writer {
    fn indent(&mut self, level: usize) {
        self.out.push('\n');
        for _ in 0..level {
            self.out.push(' ');
        }
    }

    fn visible(&self) -> Visible {
        (
            self.scalars.len(),
            self.errors.len(),
            self.canons.len(),
            self.canon_maps.len(),
        )
    }

    fn restore(&mut self, (s, e, c, m): Visible) {
        self.scalars.truncate(s);
        self.errors.truncate(e);
        self.canons.truncate(c);
        self.canon_maps.truncate(m);
    }

    fn node(&mut self, node: &Node, level: usize) {
        if level > 0 {
            self.indent(level);
        }
        match node {
            Node::Call {
                peer,
                service,
                args,
                output,
            } => {
                self.out.push_str("(call ");
                self.peer(*peer);
                self.out.push_str(" (");
                let errors_allowed = matches!(service, Service::Err);
                match service {
                    Service::Plain(n) => {
                        let _ = write!(self.out, "\"s{n}\"");
                    }
                    Service::List => self.out.push_str("\"list\""),
                    Service::Err => self.out.push_str("\"err\""),
                    Service::Scalar(k) => {
                        let name = self.pick_scalar(*k).unwrap_or_else(|| "\"s0\"".into());
                        self.out.push_str(&name);
                    }
                }
                self.out.push_str(" \"f\") [");
                let recursive =
                    matches!(output, Output::Stream(s) if self.folding(&format!("$s{s}")));
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        self.out.push(' ');
                    }
                    let arg = if recursive { flat(*arg) } else { *arg };
                    self.arg(arg, errors_allowed);
                }
                self.out.push(']');
                self.output(*output, true);
                self.out.push(')');
            }
            Node::Ap { arg, output } => {
                self.out.push_str("(ap ");
                let arg = match output {
                    Output::Stream(s) if self.folding(&format!("$s{s}")) => flat(*arg),
                    _ => *arg,
                };
                self.ap_arg(arg);
                self.output(*output, false);
                self.out.push(')');
            }
            Node::ApMap { key, value, map } if self.forbidden(&format!("%m{map}")) => {
                self.out.push_str("(ap ");
                self.ap_arg(*value);
                self.out.push(' ');
                let _ = self.define_scalar();
                self.out.push(')');
                let _ = key;
            }
            Node::ApMap { key, value, map } => {
                self.out.push_str("(ap (");
                self.key(*key);
                self.out.push(' ');
                let value = if self.folding(&format!("%m{map}")) {
                    flat(*value)
                } else {
                    *value
                };
                self.ap_arg(value);
                let _ = write!(self.out, ") %m{map})");
                self.written.push(format!("%m{map}"));
            }
            Node::ApError { last } => {
                let name = format!("e{}", self.fresh_error);
                self.fresh_error += 1;
                let source = if *last { "%last_error%" } else { ":error:" };
                let _ = write!(self.out, "(ap {source} {name})");
                self.errors.push(name);
            }
            Node::Canon { peer, form } => {
                self.out.push_str("(canon ");
                self.canon_peer(*peer);
                match form {
                    CanonForm::Stream(s) => {
                        let name = self.fresh_canon_name();
                        let _ = write!(self.out, " $s{s} {name})");
                    }
                    CanonForm::Map(m) => {
                        let name = format!("#%k{}", self.fresh_canon_map);
                        self.fresh_canon_map += 1;
                        let _ = write!(self.out, " %m{m} {name})");
                        self.canon_maps.push(name);
                    }
                    CanonForm::MapToScalar(m) => {
                        let _ = write!(self.out, " %m{m} ");
                        let _ = self.define_scalar();
                        self.out.push(')');
                    }
                }
            }
            Node::Seq(a, b) => self.pair("seq", a, b, level),
            Node::Par(a, b) => self.pair("par", a, b, level),
            Node::Xor(a, b) => self.pair("xor", a, b, level),
            Node::Catch { body, code, catch } => {
                self.out.push_str("(xor");
                self.indent(level + 1);
                self.out.push_str("(seq");
                self.node(body, level + 2);
                self.indent(level + 2);
                let _ = write!(self.out, "(fail {code} \"boom\"))");
                self.node(catch, level + 1);
                self.out.push(')');
            }
            Node::Fail(form) => self.fail(*form),
            Node::New { var, body } => {
                self.out.push_str("(new ");
                let name = match var {
                    NewVar::Stream(s) => format!("$s{s}"),
                    NewVar::Map(m) => format!("%m{m}"),
                    NewVar::Scalar(k) => self.pick_scalar(*k).unwrap_or_else(|| "v_new".into()),
                    NewVar::Canon(k) => self
                        .pick(&self.canons, *k)
                        .unwrap_or_else(|| "#c_new".into()),
                };
                self.out.push_str(&name);
                if matches!(var, NewVar::Stream(_) | NewVar::Map(_)) {
                    self.written.push(name.clone());
                }
                self.node(body, level + 1);
                self.out.push(')');
            }
            Node::Match {
                negate,
                left,
                right,
                body,
            } => {
                self.out
                    .push_str(if *negate { "(mismatch " } else { "(match " });
                self.arg(*left, false);
                self.out.push(' ');
                self.arg(*right, false);
                self.node(body, level + 1);
                self.out.push(')');
            }
            Node::Fold {
                over,
                body,
                next,
                last,
            } => self.fold(*over, body, *next, last.as_deref(), level),
            Node::Null => self.out.push_str("(null)"),
            Node::Never => self.out.push_str("(never)"),
        }
    }

    fn pair(&mut self, keyword: &str, a: &Node, b: &Node, level: usize) {
        let _ = write!(self.out, "({keyword}");
        self.node(a, level + 1);
        self.node(b, level + 1);
        self.out.push(')');
    }

    fn fail(&mut self, form: FailForm) {
        let text = match form {
            FailForm::Literal(code) => format!("{code} \"failed\""),
            FailForm::Error => ":error:".into(),
            FailForm::LastError => "%last_error%".into(),
            FailForm::Scalar(k) => self.pick_scalar(k).unwrap_or_else(|| ":error:".into()),
            FailForm::ScalarField(k) => self
                .pick_scalar(k)
                .map_or_else(|| ":error:".into(), |v| format!("{v}.$.k")),
            FailForm::ErrorScalar(k) => self
                .pick(&self.errors, k)
                .unwrap_or_else(|| "%last_error%".into()),
            FailForm::CanonElement(k) => self
                .pick(&self.canons, k)
                .map_or_else(|| "%last_error%".into(), |c| format!("{c}.$.[0]")),
        };
        let _ = write!(self.out, "(fail {text})");
    }

    fn output(&mut self, output: Output, call: bool) {
        self.out.push(' ');
        match output {
            Output::None if call => {
                self.out.pop();
            }
            Output::None | Output::Scalar => {
                let _ = self.define_scalar();
            }
            Output::Stream(s) if self.forbidden(&format!("$s{s}")) => {
                let _ = self.define_scalar();
            }
            Output::Stream(s) => {
                let _ = write!(self.out, "$s{s}");
                self.written.push(format!("$s{s}"));
            }
            Output::Existing(k) => match self.pick_scalar(k) {
                Some(name) => self.out.push_str(&name),
                None => {
                    let _ = self.define_scalar();
                }
            },
            Output::Iterator => match self.iterator(0) {
                Some(name) if call => {
                    let name = name.to_owned();
                    self.out.push_str(&name);
                }
                _ => {
                    let _ = self.define_scalar();
                }
            },
        }
    }

    #[allow(clippy::too_many_lines)]
    fn fold(
        &mut self,
        over: FoldOver,
        body: &Node,
        next: NextPlace,
        last: Option<&Node>,
        level: usize,
    ) {
        let existing = match over {
            FoldOver::Scalar(k, lens) => self
                .pick_scalar(k)
                .map(|name| format!("{name}{}", self.fold_lens(lens)))
                .or_else(|| self.pick(&self.canons, k)),
            FoldOver::Canon(k) => self.pick(&self.canons, k).or_else(|| self.pick_scalar(k)),
            FoldOver::CanonMap(k, lens) => self.pick(&self.canon_maps, k).map(|name| {
                let lens = match lens {
                    MapLens::Key(w) => format!(".$.{}", WORDS[w as usize % WORDS.len()]),
                    MapLens::IntKey(n) => format!(".$.[{n}]"),
                    _ => String::new(),
                };
                format!("{name}{lens}")
            }),
            FoldOver::Stream(s) => Some(format!("$s{s}")),
            FoldOver::Map(m) => Some(format!("%m{m}")),
            FoldOver::Empty => Some("[]".into()),
            FoldOver::List(_) | FoldOver::FreshCanon(..) => None,
        };
        let stream = matches!(over, FoldOver::Stream(_) | FoldOver::Map(_));
        let (iterable, level, wrapped) = match (existing, over) {
            (Some(name), _) if stream && !self.written.contains(&name) => {
                // Write the stream first: a fold may not come before any write.
                self.out.push_str("(seq");
                self.indent(level + 1);
                let value = if name.starts_with('%') {
                    "(\"k\" \"A\")"
                } else {
                    "\"A\""
                };
                let _ = write!(self.out, "(ap {value} {name})");
                self.written.push(name.clone());
                self.indent(level + 1);
                (name, level + 1, true)
            }
            (Some(name), _) => (name, level, false),
            (None, FoldOver::FreshCanon(peer, stream)) => {
                self.out.push_str("(seq");
                self.indent(level + 1);
                self.out.push_str("(canon ");
                self.canon_peer(peer);
                let name = self.fresh_canon_name();
                let _ = write!(self.out, " $s{stream} {name})");
                self.indent(level + 1);
                (name, level + 1, true)
            }
            (None, over) => {
                let peer = match over {
                    FoldOver::List(peer) => peer,
                    _ => PeerRef::InitPeer,
                };
                self.out.push_str("(seq");
                self.indent(level + 1);
                self.out.push_str("(call ");
                self.peer(peer);
                self.out.push_str(" (\"list\" \"f\") [] ");
                let name = self.define_scalar();
                self.out.push(')');
                self.indent(level + 1);
                (name, level + 1, true)
            }
        };
        let iterator = format!("i{}", self.fresh_iterator);
        self.fresh_iterator += 1;
        let _ = write!(self.out, "(fold {iterable} {iterator}");
        // Whatever the body defines lives only in one iteration.
        let visible = self.visible();
        self.iterators.push(iterator.clone());
        if stream {
            self.folded.push(iterable.clone());
        }
        let mut next_text = format!("(next {iterator})");
        if !stream {
            if let Some(outer) = self.outer_next.take() {
                next_text = format!("(seq (next {outer}) {next_text})");
            }
        }
        // Folds over streams allow nothing after `next`.
        let next = match next {
            NextPlace::SeqFirst if stream => NextPlace::SeqLast,
            NextPlace::ParFirst if stream => NextPlace::ParLast,
            NextPlace::Inner if stream => NextPlace::SeqLast,
            other => other,
        };
        match next {
            NextPlace::Inner => {
                let outer = self.outer_next.replace(iterator.clone());
                self.indent(level + 1);
                self.out.push_str("(seq");
                self.node(body, level + 2);
                self.indent(level + 2);
                let taken = self.outer_next.take().is_none();
                self.out
                    .push_str(if taken { "(null))" } else { next_text.as_str() });
                if !taken {
                    self.out.push(')');
                }
                self.outer_next = outer;
            }
            NextPlace::SeqFirst | NextPlace::ParFirst => {
                self.indent(level + 1);
                self.out.push_str(if matches!(next, NextPlace::SeqFirst) {
                    "(seq"
                } else {
                    "(par"
                });
                self.indent(level + 2);
                self.out.push_str(&next_text);
                self.node(body, level + 2);
                self.out.push(')');
            }
            NextPlace::SeqLast | NextPlace::ParLast | NextPlace::XorLast => {
                self.indent(level + 1);
                self.out.push_str(match next {
                    NextPlace::ParLast => "(par",
                    NextPlace::XorLast => "(xor",
                    _ => "(seq",
                });
                self.guarded(body, level + 2, stream);
                self.indent(level + 2);
                self.out.push_str(&next_text);
                self.out.push(')');
            }
            NextPlace::Absent => self.guarded(body, level + 1, stream),
        }
        self.restore(visible);
        if let Some(last) = last {
            self.guarded(last, level + 1, stream);
            self.restore(visible);
        }
        self.iterators.pop();
        if stream {
            self.folded.pop();
        }
        self.out.push(')');
        if wrapped {
            self.out.push(')');
        }
    }

    fn fold_lens(&self, lens: ScalarLens) -> String {
        match lens {
            ScalarLens::Field => ".$.k".into(),
            ScalarLens::First => ".$.[0]".into(),
            ScalarLens::Third => ".$.[2]".into(),
            _ => String::new(),
        }
    }

    /// A stream fold's body or last instruction, in `(xor … (null))` when the program
    /// is replay-stable.
    fn guarded(&mut self, node: &Node, level: usize, stream_fold: bool) {
        if !(stream_fold && self.replay_stable) {
            self.node(node, level);
            return;
        }
        self.indent(level);
        self.out.push_str("(xor");
        self.node(node, level + 1);
        self.indent(level + 1);
        self.out.push_str("(null))");
    }

    /// Whether a fold over `stream` encloses this point.
    fn folding(&self, stream: &str) -> bool {
        self.folded.iter().any(|f| f == stream)
    }

    /// Whether writing `stream` here would make a recursive stream that
    /// `replay_stable` forbids.
    fn forbidden(&self, stream: &str) -> bool {
        self.replay_stable && self.folded.iter().any(|f| f == stream)
    }

    fn fresh_canon_name(&mut self) -> String {
        let name = format!("#c{}", self.fresh_canon);
        self.fresh_canon += 1;
        self.canons.push(name.clone());
        name
    }

    fn define_scalar(&mut self) -> String {
        let name = format!("v{}", self.fresh_scalar);
        self.fresh_scalar += 1;
        self.out.push_str(&name);
        self.scalars.push(name.clone());
        name
    }

    fn pick(&self, names: &[String], k: u8) -> Option<String> {
        (!names.is_empty()).then(|| names[k as usize % names.len()].clone())
    }

    fn pick_scalar(&self, k: u8) -> Option<String> {
        self.pick(&self.scalars, k)
    }

    fn iterator(&self, k: u8) -> Option<&str> {
        let n = self.iterators.len();
        (n > 0).then(|| self.iterators[n - 1 - k as usize % n].as_str())
    }

    /// A canon's peer: a variable one only when the program need not be replay-stable.
    fn canon_peer(&mut self, peer: PeerRef) {
        match peer {
            PeerRef::Literal(_) | PeerRef::InitPeer => self.peer(peer),
            _ if self.replay_stable => self.peer(PeerRef::Literal(0)),
            _ => self.peer(peer),
        }
    }

    fn peer(&mut self, peer: PeerRef) {
        let text = match peer {
            PeerRef::Literal(n) => format!("\"{}\"", PEER_NAMES[n as usize % self.peers]),
            PeerRef::InitPeer => "%init_peer_id%".to_owned(),
            PeerRef::Iterator(k) => self.iterator(k).unwrap_or("%init_peer_id%").to_owned(),
            PeerRef::Scalar(k) => self.pick_scalar(k).unwrap_or_else(|| "\"A\"".into()),
            PeerRef::ScalarField(k) => self
                .pick_scalar(k)
                .map_or_else(|| "\"B\"".into(), |s| format!("{s}.$.k")),
            PeerRef::CanonElement(k) => self
                .pick(&self.canons, k)
                .map_or_else(|| "\"C\"".into(), |c| format!("{c}.$.[0]")),
        };
        self.out.push_str(&text);
    }

    fn key(&mut self, key: Key) {
        let text = match key {
            Key::Word(n) => format!("\"{}\"", WORDS[n as usize % WORDS.len()]),
            Key::Int(n) => n.to_string(),
            Key::Scalar(k) => self.pick_scalar(k).unwrap_or_else(|| "\"k\"".into()),
            Key::Iterator(k) => self.iterator(k).unwrap_or("1").to_owned(),
            Key::CanonElement(k) => self
                .pick(&self.canons, k)
                .map_or_else(|| "2".into(), |c| format!("{c}.$.[0]")),
        };
        self.out.push_str(&text);
    }

    /// An `ap` argument: any operand but a canon map without lens and an error object.
    fn ap_arg(&mut self, arg: Arg) {
        let arg = match arg {
            Arg::CanonMap(k, MapLens::None) => Arg::CanonMap(k, MapLens::Key(k)),
            other => other,
        };
        self.arg(arg, false);
    }

    /// An operand. Error objects only where `errors` allows them (the service `err`);
    /// elsewhere they are read with `.$.error_code`.
    fn arg(&mut self, arg: Arg, errors: bool) {
        let word = |n: u8| format!("\"{}\"", WORDS[n as usize % WORDS.len()]);
        let text = match arg {
            Arg::Word(n) => word(n),
            Arg::Number(n) => n.to_string(),
            Arg::Bool(b) => b.to_string(),
            Arg::EmptyArray => "[]".into(),
            Arg::InitPeer => "%init_peer_id%".to_owned(),
            Arg::Timestamp => "%timestamp%".to_owned(),
            Arg::Ttl => "%ttl%".to_owned(),
            Arg::Float => "1.5".to_owned(),
            Arg::Scalar(k, lens) => match self.pick_scalar(k) {
                Some(name) => format!("{name}{}", self.scalar_lens(lens)),
                None => word(k),
            },
            Arg::Iterator(k, lens) => match self.iterator(k) {
                Some(name) => format!("{name}{}", self.scalar_lens(lens)),
                None => word(k),
            },
            Arg::Canon(k, lens) => match self.pick(&self.canons, k) {
                Some(name) => format!("{name}{}", self.canon_lens(lens)),
                None => word(k),
            },
            Arg::CanonMap(k, lens) => match self.pick(&self.canon_maps, k) {
                Some(name) => format!("{name}{}", self.map_lens(lens)),
                None => word(k),
            },
            Arg::Error { last, lens } => {
                let source = if last { "%last_error%" } else { ":error:" };
                let lens = match lens {
                    ErrorLens::None if errors => "",
                    ErrorLens::PeerId => ".$.peer_id",
                    _ => ".$.error_code",
                };
                format!("{source}{lens}")
            }
            Arg::ErrorScalar(k) => match self.pick(&self.errors, k) {
                Some(name) if errors => name,
                Some(name) => format!("{name}.$.error_code"),
                None => word(k),
            },
        };
        self.out.push_str(&text);
    }

    fn scalar_lens(&self, lens: ScalarLens) -> String {
        match lens {
            ScalarLens::None => String::new(),
            ScalarLens::Length => ".length".into(),
            ScalarLens::ByScalar(k) => match self.pick_scalar(k) {
                Some(name) => format!(".$.[{name}]"),
                None => ".$.[1]".into(),
            },
            other => self.fold_lens(other),
        }
    }

    fn canon_lens(&self, lens: CanonLens) -> String {
        match lens {
            CanonLens::None => String::new(),
            CanonLens::Length => ".length".into(),
            CanonLens::Index(n) => format!(".$.[{n}]"),
            CanonLens::IndexField => ".$.[0].k".into(),
            CanonLens::ByScalar(k) => match self.pick_scalar(k) {
                Some(name) => format!(".$.[{name}]"),
                None => ".$.[1]".into(),
            },
        }
    }

    fn map_lens(&self, lens: MapLens) -> String {
        let word = |n: u8| WORDS[n as usize % WORDS.len()];
        match lens {
            MapLens::None => String::new(),
            MapLens::Length => ".length".into(),
            MapLens::Key(n) => format!(".$.{}", word(n)),
            MapLens::IntKey(n) => format!(".$.[{n}]"),
            MapLens::KeyIndex(n) => format!(".$.{}.[0]", word(n)),
            MapLens::KeyIndexField(n) => format!(".$.{}.[0].k", word(n)),
            MapLens::ByScalar(k) => match self.pick_scalar(k) {
                Some(name) => format!(".$.[{name}]"),
                None => ".$.[1]".into(),
            },
        }
    }
}
