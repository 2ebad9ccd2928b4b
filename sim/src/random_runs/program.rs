//! Random small multi-peer AIR programs. A generated [`Program`] is a tree over abstract
//! references ("the k-th scalar defined so far", "the innermost iterator"), resolved to
//! names when it is printed, so every printed program passes static validation and
//! shrinking never makes it invalid.
//!
//! The printed script uses the peers `A`–`D` (as literals, `%init_peer_id%`, scalars and
//! fold iterators), the services `s0`–`s2` with function `f`, the streams `$s0` and `$s1`,
//! fresh scalars `v0, v1, …`, canon streams `#c0, #c1, …` and iterators `i0, i1, …`.
//! Folds are over scalars and canon streams only, with `next` last in a `seq` or `par`,
//! or first (a right fold); `fail` appears only inside an `xor`; a canon runs on a
//! literal peer or `%init_peer_id%`, never a variable (see `arb_canon_peer`).

use std::fmt::Write as _;

use proptest::prelude::*;

/// The peer names programs and scenarios draw from.
pub const PEER_NAMES: [&str; 4] = ["A", "B", "C", "D"];

/// The literal strings arguments and matches draw from: peer names and one other word.
const WORDS: [&str; 5] = ["A", "B", "C", "D", "x"];

/// A generated program.
#[derive(Debug, Clone)]
pub struct Program {
    body: Node,
}

#[derive(Debug, Clone)]
enum Node {
    Call {
        peer: PeerRef,
        service: u8,
        args: Vec<Arg>,
        output: CallOutput,
    },
    Ap {
        arg: Arg,
        output: ApOutput,
    },
    Canon {
        peer: PeerRef,
        stream: u8,
    },
    Seq(Box<Node>, Box<Node>),
    Par(Box<Node>, Box<Node>),
    Xor(Box<Node>, Box<Node>),
    /// `(xor (seq body (fail code "boom")) catch)`.
    Fail {
        body: Box<Node>,
        code: u8,
        catch: Box<Node>,
    },
    /// `(new $sN body)`.
    New {
        stream: u8,
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
}

/// Where a call runs.
#[derive(Debug, Clone, Copy)]
enum PeerRef {
    /// `PEER_NAMES[n % peers]`.
    Literal(u8),
    InitPeer,
    /// The n-th innermost fold iterator; `%init_peer_id%` outside folds.
    Iterator(u8),
    /// The n-th visible scalar (modulo their number); `"A"` when none is visible.
    Scalar(u8),
}

/// A call argument, `ap` argument or `match` operand.
#[derive(Debug, Clone, Copy)]
enum Arg {
    Word(u8),
    Number(u8),
    InitPeer,
    Scalar(u8),
    Canon(u8),
    Iterator(u8),
}

#[derive(Debug, Clone, Copy)]
enum CallOutput {
    None,
    Scalar,
    Stream(u8),
}

#[derive(Debug, Clone, Copy)]
enum ApOutput {
    Scalar,
    Stream(u8),
}

/// What a fold iterates over.
#[derive(Debug, Clone, Copy)]
enum FoldOver {
    /// A visible scalar, else a canon stream, else a fresh list.
    Scalar(u8),
    /// A visible canon stream, else a scalar, else a fresh list.
    Canon(u8),
    /// `(seq (call PEER ("list" "f") [] vN) (fold vN …))`: a list of peers or numbers.
    List(PeerRef),
    /// `(seq (canon PEER $sK #cN) (fold #cN …))`.
    FreshCanon(PeerRef, u8),
}

#[derive(Debug, Clone, Copy)]
enum NextPlace {
    SeqLast,
    ParLast,
    SeqFirst,
}

/// Programs of at most `depth + 1` levels of generated instructions, the root always a
/// `seq` or `par`. A fold adds the `seq` or `par` that holds its `next`, and a fold over
/// a fresh list or canon the `seq` that computes it first.
pub fn arb_program(depth: u32) -> impl Strategy<Value = Program> {
    let inner = || arb_node(depth.saturating_sub(1)).prop_map(Box::new);
    prop_oneof![
        1 => (inner(), inner()).prop_map(|(a, b)| Node::Seq(a, b)),
        1 => (inner(), inner()).prop_map(|(a, b)| Node::Par(a, b)),
    ]
    .prop_map(|body| Program { body })
}

impl Program {
    /// The program as AIR text for a network of the first `peers` of [`PEER_NAMES`]
    /// (1–4): literal peers are taken modulo their number, so every literal is reachable.
    pub fn text_for(&self, peers: usize) -> String {
        let mut w = Writer {
            peers: peers.clamp(1, PEER_NAMES.len()),
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
        6 => (0u8..4).prop_map(PeerRef::Literal),
        2 => Just(PeerRef::InitPeer),
        2 => (0u8..2).prop_map(PeerRef::Iterator),
        1 => (0u8..4).prop_map(PeerRef::Scalar),
    ]
}

/// Where a canon runs: a literal or `%init_peer_id%`, never a variable. A canon reads its
/// trace state before it evaluates its peer (as the reference does), so one whose peer
/// fails to evaluate consumes a state that belongs to the next instruction and breaks
/// every replay (fixtures `laws/canon_peer_error_*`); that is documented there, not left
/// to fail the laws at random.
fn arb_canon_peer() -> impl Strategy<Value = PeerRef> {
    prop_oneof![
        3 => (0u8..4).prop_map(PeerRef::Literal),
        1 => Just(PeerRef::InitPeer),
    ]
}

fn arb_arg() -> impl Strategy<Value = Arg> {
    prop_oneof![
        2 => (0u8..WORDS.len() as u8).prop_map(Arg::Word),
        1 => (0u8..3).prop_map(Arg::Number),
        1 => Just(Arg::InitPeer),
        3 => (0u8..4).prop_map(Arg::Scalar),
        1 => (0u8..2).prop_map(Arg::Canon),
        2 => (0u8..2).prop_map(Arg::Iterator),
    ]
}

fn arb_leaf() -> impl Strategy<Value = Node> {
    let call_output = prop_oneof![
        1 => Just(CallOutput::None),
        2 => Just(CallOutput::Scalar),
        2 => (0u8..2).prop_map(CallOutput::Stream),
    ];
    let ap_output = prop_oneof![
        1 => Just(ApOutput::Scalar),
        2 => (0u8..2).prop_map(ApOutput::Stream),
    ];
    prop_oneof![
        6 => (arb_peer(), 0u8..3, proptest::collection::vec(arb_arg(), 0..3), call_output)
            .prop_map(|(peer, service, args, output)| Node::Call { peer, service, args, output }),
        2 => (arb_arg(), ap_output).prop_map(|(arg, output)| Node::Ap { arg, output }),
        2 => (arb_canon_peer(), 0u8..2).prop_map(|(peer, stream)| Node::Canon { peer, stream }),
        1 => Just(Node::Null),
    ]
}

fn arb_node(depth: u32) -> impl Strategy<Value = Node> {
    arb_leaf().prop_recursive(depth, 12, 2, |inner| {
        let boxed = inner.clone().prop_map(Box::new);
        let next = prop_oneof![
            3 => Just(NextPlace::SeqLast),
            2 => Just(NextPlace::ParLast),
            1 => Just(NextPlace::SeqFirst),
        ];
        let over = prop_oneof![
            2 => (0u8..4).prop_map(FoldOver::Scalar),
            1 => (0u8..2).prop_map(FoldOver::Canon),
            2 => arb_peer().prop_map(FoldOver::List),
            2 => (arb_canon_peer(), 0u8..2).prop_map(|(p, s)| FoldOver::FreshCanon(p, s)),
        ];
        prop_oneof![
            4 => (boxed.clone(), boxed.clone()).prop_map(|(a, b)| Node::Seq(a, b)),
            4 => (boxed.clone(), boxed.clone()).prop_map(|(a, b)| Node::Par(a, b)),
            1 => (boxed.clone(), boxed.clone()).prop_map(|(a, b)| Node::Xor(a, b)),
            1 => (boxed.clone(), 1u8..4, boxed.clone())
                .prop_map(|(body, code, catch)| Node::Fail { body, code, catch }),
            1 => (0u8..2, boxed.clone()).prop_map(|(stream, body)| Node::New { stream, body }),
            1 => (any::<bool>(), arb_arg(), arb_arg(), boxed.clone())
                .prop_map(|(negate, left, right, body)| Node::Match { negate, left, right, body }),
            3 => (over, boxed.clone(), next, proptest::option::weighted(0.2, boxed))
                .prop_map(|(over, body, next, last)| Node::Fold { over, body, next, last }),
        ]
    })
}

/// Prints a program, resolving references against what is defined so far.
#[derive(Default)]
struct Writer {
    out: String,
    /// How many of `PEER_NAMES` literals may name.
    peers: usize,
    /// Scalars visible here, in definition order.
    scalars: Vec<String>,
    /// Canon streams visible here, in definition order.
    canons: Vec<String>,
    /// Iterators of the enclosing folds, innermost last.
    iterators: Vec<String>,
    fresh_scalar: usize,
    fresh_canon: usize,
    fresh_iterator: usize,
}

impl Writer {
    fn indent(&mut self, level: usize) {
        self.out.push('\n');
        for _ in 0..level {
            self.out.push(' ');
        }
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
                let _ = write!(self.out, " (\"s{service}\" \"f\") [");
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        self.out.push(' ');
                    }
                    self.arg(*arg);
                }
                self.out.push(']');
                match output {
                    CallOutput::None => {}
                    CallOutput::Scalar => {
                        self.out.push(' ');
                        let _ = self.define_scalar();
                    }
                    CallOutput::Stream(s) => {
                        let _ = write!(self.out, " $s{s}");
                    }
                }
                self.out.push(')');
            }
            Node::Ap { arg, output } => {
                self.out.push_str("(ap ");
                self.arg(*arg);
                self.out.push(' ');
                match output {
                    ApOutput::Scalar => {
                        let _ = self.define_scalar();
                    }
                    ApOutput::Stream(s) => {
                        let _ = write!(self.out, "$s{s}");
                    }
                }
                self.out.push(')');
            }
            Node::Canon { peer, stream } => {
                self.out.push_str("(canon ");
                self.peer(*peer);
                let name = self.fresh_canon_name();
                let _ = write!(self.out, " $s{stream} {name})");
            }
            Node::Seq(a, b) => self.pair("seq", a, b, level),
            Node::Par(a, b) => self.pair("par", a, b, level),
            Node::Xor(a, b) => self.pair("xor", a, b, level),
            Node::Fail { body, code, catch } => {
                self.out.push_str("(xor");
                self.indent(level + 1);
                self.out.push_str("(seq");
                self.node(body, level + 2);
                self.indent(level + 2);
                let _ = write!(self.out, "(fail {code} \"boom\"))");
                self.node(catch, level + 1);
                self.out.push(')');
            }
            Node::New { stream, body } => {
                let _ = write!(self.out, "(new $s{stream}");
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
                self.arg(*left);
                self.out.push(' ');
                self.arg(*right);
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
        }
    }

    fn pair(&mut self, keyword: &str, a: &Node, b: &Node, level: usize) {
        let _ = write!(self.out, "({keyword}");
        self.node(a, level + 1);
        self.node(b, level + 1);
        self.out.push(')');
    }

    fn fold(
        &mut self,
        over: FoldOver,
        body: &Node,
        next: NextPlace,
        last: Option<&Node>,
        level: usize,
    ) {
        let pick = |names: &[String], k: u8| {
            (!names.is_empty()).then(|| names[k as usize % names.len()].clone())
        };
        let existing = match over {
            FoldOver::Scalar(k) => pick(&self.scalars, k).or_else(|| pick(&self.canons, k)),
            FoldOver::Canon(k) => pick(&self.canons, k).or_else(|| pick(&self.scalars, k)),
            FoldOver::List(_) | FoldOver::FreshCanon(..) => None,
        };
        let (iterable, level, wrapped) = match (existing, over) {
            (Some(name), _) => (name, level, false),
            (None, FoldOver::FreshCanon(peer, stream)) => {
                self.out.push_str("(seq");
                self.indent(level + 1);
                self.out.push_str("(canon ");
                self.peer(peer);
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
        let (scalars, canons) = (self.scalars.len(), self.canons.len());
        self.iterators.push(iterator.clone());
        let next_text = format!("(next {iterator})");
        match next {
            NextPlace::SeqFirst => {
                self.indent(level + 1);
                self.out.push_str("(seq");
                self.indent(level + 2);
                self.out.push_str(&next_text);
                self.node(body, level + 2);
                self.out.push(')');
            }
            NextPlace::SeqLast | NextPlace::ParLast => {
                self.indent(level + 1);
                self.out.push_str(match next {
                    NextPlace::ParLast => "(par",
                    _ => "(seq",
                });
                self.node(body, level + 2);
                self.indent(level + 2);
                self.out.push_str(&next_text);
                self.out.push(')');
            }
        }
        self.scalars.truncate(scalars);
        self.canons.truncate(canons);
        if let Some(last) = last {
            self.node(last, level + 1);
            self.scalars.truncate(scalars);
            self.canons.truncate(canons);
        }
        self.iterators.pop();
        self.out.push(')');
        if wrapped {
            self.out.push(')');
        }
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

    fn iterator(&self, k: u8) -> Option<&str> {
        let n = self.iterators.len();
        (n > 0).then(|| self.iterators[n - 1 - k as usize % n].as_str())
    }

    fn peer(&mut self, peer: PeerRef) {
        let text = match peer {
            PeerRef::Literal(n) => format!("\"{}\"", PEER_NAMES[n as usize % self.peers]),
            PeerRef::InitPeer => "%init_peer_id%".to_owned(),
            PeerRef::Iterator(k) => self.iterator(k).unwrap_or("%init_peer_id%").to_owned(),
            PeerRef::Scalar(k) if !self.scalars.is_empty() => {
                self.scalars[k as usize % self.scalars.len()].clone()
            }
            PeerRef::Scalar(_) => "\"A\"".to_owned(),
        };
        self.out.push_str(&text);
    }

    fn arg(&mut self, arg: Arg) {
        let text = match arg {
            Arg::Word(n) => format!("\"{}\"", WORDS[n as usize % WORDS.len()]),
            Arg::Number(n) => n.to_string(),
            Arg::InitPeer => "%init_peer_id%".to_owned(),
            Arg::Scalar(k) if !self.scalars.is_empty() => {
                self.scalars[k as usize % self.scalars.len()].clone()
            }
            Arg::Canon(k) if !self.canons.is_empty() => {
                self.canons[k as usize % self.canons.len()].clone()
            }
            Arg::Iterator(k) if !self.iterators.is_empty() => {
                self.iterator(k).unwrap_or("\"x\"").to_owned()
            }
            Arg::Scalar(k) | Arg::Canon(k) | Arg::Iterator(k) => {
                format!("\"{}\"", WORDS[k as usize % WORDS.len()])
            }
        };
        self.out.push_str(&text);
    }
}
