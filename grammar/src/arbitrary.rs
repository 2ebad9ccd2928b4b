//! Proptest strategies for valid AIR scripts, shared by property tests and fuzzing.
//!
//! A generated [`Script`] is an owned tree that always passes static validation: every
//! variable it reads is defined by a prelude that runs first, fold iterators get unique
//! names, and each fold's `next` sits where the rules of air-language.md §8 allow. It
//! renders as AIR text in random layouts (whitespace, comments, optional lens dots), so
//! the same tree tests the lexer's handling of layout.

use std::fmt::Write as _;

use proptest::prelude::*;

/// A generated script: a tree of instructions plus the layout to write it in.
#[derive(Debug, Clone)]
pub struct Script {
    body: Node,
    layout: Vec<u8>,
}

/// Instructions of a generated script.
#[derive(Debug, Clone)]
enum Node {
    Call {
        peer: Operand,
        service: Operand,
        function: Operand,
        args: Vec<Operand>,
        output: Output,
    },
    Ap {
        arg: Operand,
        output: Output,
    },
    ApMap {
        key: Operand,
        value: Operand,
    },
    Canon {
        peer: Operand,
        to_scalar: bool,
        of_map: bool,
    },
    Pair(&'static str, Box<Node>, Box<Node>),
    New(&'static str, Box<Node>),
    Match {
        negate: bool,
        left: Operand,
        right: Operand,
        body: Box<Node>,
    },
    Fold {
        iterable: Iterable,
        body: Box<Node>,
        next: NextPlace,
        last: Option<Box<Node>>,
    },
    Fail(FailForm),
    Null,
    Never,
}

#[derive(Debug, Clone, Copy)]
enum Iterable {
    Scalar,
    ScalarLens,
    Canon,
    CanonMap,
    Empty,
    Stream,
    StreamMap,
}

/// Where the fold's `next` goes.
#[derive(Debug, Clone, Copy)]
enum NextPlace {
    SeqLast,
    ParLast,
    /// `(seq (next i) body)`: a right fold; only for folds over scalars and canons.
    SeqFirst,
}

#[derive(Debug, Clone)]
enum FailForm {
    Literal(i64, String),
    Scalar,
    ScalarLens,
    CanonLens,
    LastError,
    Error,
}

#[derive(Debug, Clone, Copy)]
enum Output {
    None,
    Scalar(u8),
    Stream,
}

/// Operands. `Iterator` reads the innermost enclosing fold's iterator (or a prelude
/// scalar outside any fold).
#[derive(Debug, Clone)]
enum Operand {
    InitPeerId,
    Timestamp,
    Ttl,
    LastError(Option<Lens>),
    Error(Option<Lens>),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    EmptyArray,
    Scalar(u8, Option<Lens>),
    Canon(Option<Lens>),
    CanonMap(Option<Lens>),
    Iterator,
}

#[derive(Debug, Clone)]
enum Lens {
    Length,
    Path(Vec<Accessor>),
}

#[derive(Debug, Clone)]
enum Accessor {
    Index(u32),
    Field(String),
    ByScalar(u8),
}

/// Number of prelude scalars `v0`…
const SCALARS: u8 = 4;

/// Valid scripts of up to `depth` levels of nested instructions.
pub fn arb_script(depth: u32) -> impl Strategy<Value = Script> {
    (
        arb_node(depth),
        proptest::collection::vec(any::<u8>(), 1..64),
    )
        .prop_map(|(body, layout)| Script { body, layout })
}

impl Script {
    /// The script as AIR text.
    pub fn text(&self) -> String {
        let mut w = Writer {
            out: String::new(),
            layout: &self.layout,
            at: 0,
            iterators: Vec::new(),
            next_iter: 0,
        };
        w.out.push_str("(seq");
        w.sep();
        w.prelude();
        w.sep();
        w.node(&self.body);
        w.sep();
        w.out.push(')');
        w.out
    }
}

impl std::fmt::Display for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

fn arb_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_-]{0,6}",
        Just("é".to_owned()),
        Just("length".to_owned()),
    ]
}

fn arb_lens() -> impl Strategy<Value = Lens> {
    prop_oneof![
        1 => Just(Lens::Length),
        4 => proptest::collection::vec(
            prop_oneof![
                (0u32..5).prop_map(Accessor::Index),
                Just(Accessor::Index(u32::MAX)),
                arb_name().prop_map(Accessor::Field),
                (0..SCALARS).prop_map(Accessor::ByScalar),
            ],
            1..4
        )
        .prop_map(Lens::Path),
    ]
}

fn arb_string() -> impl Strategy<Value = String> {
    // Anything but `"`: literals have no escapes.
    prop_oneof![
        "[^\"]{0,8}",
        Just(String::new()),
        Just("a;b (c) [d]\n\\".to_owned())
    ]
}

fn arb_float() -> impl Strategy<Value = f64> {
    // Floats the lexer accepts: at most 11 characters with a dot.
    (-99_999i64..99_999, 0u32..5).prop_map(|(n, scale)| n as f64 / 10f64.powi(scale as i32))
}

fn arb_value() -> impl Strategy<Value = Operand> {
    prop_oneof![
        Just(Operand::InitPeerId),
        Just(Operand::Timestamp),
        Just(Operand::Ttl),
        proptest::option::of(arb_lens()).prop_map(Operand::LastError),
        proptest::option::of(arb_lens()).prop_map(Operand::Error),
        arb_string().prop_map(Operand::Str),
        any::<i64>().prop_map(Operand::Int),
        arb_float().prop_map(Operand::Float),
        any::<bool>().prop_map(Operand::Bool),
        Just(Operand::EmptyArray),
        (0..SCALARS, proptest::option::of(arb_lens())).prop_map(|(i, l)| Operand::Scalar(i, l)),
        proptest::option::of(arb_lens()).prop_map(Operand::Canon),
        arb_lens().prop_map(|l| Operand::CanonMap(Some(l))),
        Just(Operand::CanonMap(None)),
        Just(Operand::Iterator),
    ]
}

/// Values allowed as an `ap` argument (no canon map without lens).
fn arb_ap_arg() -> impl Strategy<Value = Operand> {
    arb_value().prop_map(|v| match v {
        Operand::CanonMap(None) => Operand::Canon(None),
        v => v,
    })
}

fn arb_peer() -> impl Strategy<Value = Operand> {
    prop_oneof![
        Just(Operand::InitPeerId),
        arb_string().prop_map(Operand::Str),
        (0..SCALARS, proptest::option::of(arb_lens())).prop_map(|(i, l)| Operand::Scalar(i, l)),
        arb_lens().prop_map(|l| Operand::Canon(Some(l))),
        arb_lens().prop_map(|l| Operand::CanonMap(Some(l))),
        Just(Operand::Iterator),
    ]
}

fn arb_triplet_part() -> impl Strategy<Value = Operand> {
    arb_peer().prop_map(|p| match p {
        Operand::InitPeerId => Operand::Str("s".to_owned()),
        p => p,
    })
}

fn arb_map_key() -> impl Strategy<Value = Operand> {
    prop_oneof![
        arb_string().prop_map(Operand::Str),
        any::<i64>().prop_map(Operand::Int),
        (0..SCALARS, proptest::option::of(arb_lens())).prop_map(|(i, l)| Operand::Scalar(i, l)),
        arb_lens().prop_map(|l| Operand::Canon(Some(l))),
        Just(Operand::Iterator),
    ]
}

fn arb_output() -> impl Strategy<Value = Output> {
    prop_oneof![
        Just(Output::None),
        (0..SCALARS).prop_map(Output::Scalar),
        Just(Output::Stream)
    ]
}

fn arb_leaf() -> impl Strategy<Value = Node> {
    prop_oneof![
        4 => (arb_peer(), arb_triplet_part(), arb_triplet_part(), proptest::collection::vec(arb_value(), 0..4), arb_output())
            .prop_map(|(peer, service, function, args, output)| Node::Call { peer, service, function, args, output }),
        2 => (arb_ap_arg(), prop_oneof![(0..SCALARS).prop_map(Output::Scalar), Just(Output::Stream)])
            .prop_map(|(arg, output)| Node::Ap { arg, output }),
        1 => (arb_map_key(), arb_ap_arg()).prop_map(|(key, value)| Node::ApMap { key, value }),
        1 => (arb_peer(), any::<bool>(), any::<bool>())
            .prop_map(|(peer, of_map, to_scalar)| Node::Canon { peer, of_map, to_scalar }),
        1 => prop_oneof![
            (any::<i64>().prop_filter("fail code 0 is refused", |c| *c != 0), arb_string())
                .prop_map(|(c, m)| FailForm::Literal(c, m)),
            Just(FailForm::Scalar),
            Just(FailForm::ScalarLens),
            Just(FailForm::CanonLens),
            Just(FailForm::LastError),
            Just(FailForm::Error),
        ].prop_map(Node::Fail),
        1 => Just(Node::Null),
        1 => Just(Node::Never),
    ]
}

fn arb_node(depth: u32) -> impl Strategy<Value = Node> {
    arb_leaf().prop_recursive(depth, 64, 2, |inner| {
        let iterable = prop_oneof![
            Just(Iterable::Scalar),
            Just(Iterable::ScalarLens),
            Just(Iterable::Canon),
            Just(Iterable::CanonMap),
            Just(Iterable::Empty),
            Just(Iterable::Stream),
            Just(Iterable::StreamMap),
        ];
        let place = prop_oneof![Just(NextPlace::SeqLast), Just(NextPlace::ParLast), Just(NextPlace::SeqFirst)];
        prop_oneof![
            3 => (prop_oneof![Just("seq"), Just("par"), Just("xor")], inner.clone(), inner.clone())
                .prop_map(|(k, a, b)| Node::Pair(k, Box::new(a), Box::new(b))),
            1 => (prop_oneof![Just("v0"), Just("$s0"), Just("%m0"), Just("#$c0"), Just("#%m0"), Just("fresh")], inner.clone())
                .prop_map(|(v, b)| Node::New(v, Box::new(b))),
            1 => (any::<bool>(), arb_value(), arb_value(), inner.clone())
                .prop_map(|(negate, left, right, body)| Node::Match { negate, left, right, body: Box::new(body) }),
            2 => (iterable, inner.clone(), place, proptest::option::of(inner))
                .prop_map(|(iterable, body, next, last)| Node::Fold {
                    iterable,
                    body: Box::new(body),
                    next,
                    last: last.map(Box::new),
                }),
        ]
    })
}

struct Writer<'l> {
    out: String,
    layout: &'l [u8],
    at: usize,
    /// Iterator names of the enclosing folds, innermost last.
    iterators: Vec<String>,
    next_iter: usize,
}

impl Writer<'_> {
    /// A token separator, drawn from the layout bytes.
    fn sep(&mut self) {
        let b = self.layout[self.at % self.layout.len()];
        self.at += 1;
        let s = match b % 16 {
            0 => "\n ",
            1 => "\t",
            2 => "  ",
            3 => " ; a comment (with brackets] and \"quotes\n",
            4 => "\u{a0}",
            5 => "\r\n",
            6 => "\u{2028}",
            _ => " ",
        };
        self.out.push_str(s);
    }

    /// Defines every variable the generated body may read.
    fn prelude(&mut self) {
        let mut p = String::new();
        for i in 0..SCALARS {
            let _ = write!(p, "(seq (call \"A\" (\"s\" \"f\") [] v{i}) ");
        }
        p.push_str("(seq (ap 1 $s0) (seq (canon \"A\" $s0 #$c0) (seq (ap (\"k\" 1) %m0) (canon \"A\" %m0 #%m0))))");
        for _ in 0..SCALARS {
            p.push(')');
        }
        self.out.push_str(&p);
    }

    fn node(&mut self, node: &Node) {
        match node {
            Node::Call {
                peer,
                service,
                function,
                args,
                output,
            } => {
                self.out.push_str("(call");
                self.sep();
                self.operand(peer);
                self.sep();
                self.out.push('(');
                self.operand(service);
                self.sep();
                self.operand(function);
                self.out.push(')');
                self.sep();
                self.out.push('[');
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        self.sep();
                    }
                    self.operand(arg);
                }
                self.out.push(']');
                self.output(*output);
                self.out.push(')');
            }
            Node::Ap { arg, output } => {
                self.out.push_str("(ap ");
                self.operand(arg);
                self.output(*output);
                self.out.push(')');
            }
            Node::ApMap { key, value } => {
                self.out.push_str("(ap (");
                self.operand(key);
                self.sep();
                self.operand(value);
                self.out.push_str(") %m0)");
            }
            Node::Canon {
                peer,
                of_map,
                to_scalar,
            } => {
                self.out.push_str("(canon ");
                self.operand(peer);
                self.out.push_str(match (of_map, to_scalar) {
                    (false, _) => " $s0 #$c0)",
                    (true, false) => " %m0 #%m0)",
                    (true, true) => " %m0 v1)",
                });
            }
            Node::Pair(keyword, a, b) => {
                let _ = write!(self.out, "({keyword}");
                self.sep();
                self.node(a);
                self.sep();
                self.node(b);
                self.out.push(')');
            }
            Node::New(var, body) => {
                // `new` must not name an enclosing iterator; prelude names never do.
                let var = if *var == "fresh" { "fresh-var" } else { var };
                let _ = write!(self.out, "(new {var}");
                self.sep();
                self.node(body);
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
                self.operand(left);
                self.sep();
                self.operand(right);
                self.sep();
                self.node(body);
                self.out.push(')');
            }
            Node::Fold {
                iterable,
                body,
                next,
                last,
            } => {
                let name = format!("it{}", self.next_iter);
                self.next_iter += 1;
                let stream_like = matches!(iterable, Iterable::Stream | Iterable::StreamMap);
                self.out.push_str("(fold ");
                self.out.push_str(match iterable {
                    Iterable::Scalar => "v0",
                    Iterable::ScalarLens => "v0.$.list",
                    Iterable::Canon => "#$c0",
                    Iterable::CanonMap => "#%m0",
                    Iterable::Empty => "[]",
                    Iterable::Stream => "$s0",
                    Iterable::StreamMap => "%m0",
                });
                let _ = write!(self.out, " {name}");
                self.sep();
                self.iterators.push(name.clone());
                let place = match next {
                    NextPlace::SeqFirst if stream_like => NextPlace::SeqLast,
                    place => *place,
                };
                match place {
                    NextPlace::SeqLast | NextPlace::ParLast => {
                        let k = if matches!(place, NextPlace::SeqLast) {
                            "seq"
                        } else {
                            "par"
                        };
                        let _ = write!(self.out, "({k} ");
                        self.node(body);
                        let _ = write!(self.out, " (next {name}))");
                    }
                    NextPlace::SeqFirst => {
                        let _ = write!(self.out, "(seq (next {name}) ");
                        self.node(body);
                        self.out.push(')');
                    }
                }
                if let Some(last) = last {
                    self.sep();
                    self.node(last);
                }
                self.iterators.pop();
                self.out.push(')');
            }
            Node::Fail(form) => {
                self.out.push_str("(fail ");
                match form {
                    FailForm::Literal(code, message) => {
                        let _ = write!(self.out, "{code} \"{message}\"");
                    }
                    FailForm::Scalar => self.out.push_str("v2"),
                    FailForm::ScalarLens => self.out.push_str("v2.$.error"),
                    FailForm::CanonLens => self.out.push_str("#$c0.$.[0]"),
                    FailForm::LastError => self.out.push_str("%last_error%"),
                    FailForm::Error => self.out.push_str(":error:"),
                }
                self.out.push(')');
            }
            Node::Null => self.out.push_str("(null)"),
            Node::Never => self.out.push_str("(never)"),
        }
    }

    fn output(&mut self, output: Output) {
        match output {
            Output::None => {}
            Output::Scalar(i) => {
                let _ = write!(self.out, " v{i}");
            }
            Output::Stream => self.out.push_str(" $s0"),
        }
    }

    fn operand(&mut self, operand: &Operand) {
        match operand {
            Operand::InitPeerId => self.out.push_str("%init_peer_id%"),
            Operand::Timestamp => self.out.push_str("%timestamp%"),
            Operand::Ttl => self.out.push_str("%ttl%"),
            Operand::LastError(lens) => {
                self.out.push_str("%last_error%");
                self.lens(lens.as_ref());
            }
            Operand::Error(lens) => {
                self.out.push_str(":error:");
                self.lens(lens.as_ref());
            }
            Operand::Str(s) => {
                let _ = write!(self.out, "\"{s}\"");
            }
            Operand::Int(i) => {
                // `+` is an accepted sign for positive numbers.
                let plus = if *i >= 0 && self.layout.len() % 2 == 0 {
                    "+"
                } else {
                    ""
                };
                let _ = write!(self.out, "{plus}{i}");
            }
            Operand::Float(x) => {
                let text = x.to_string();
                self.out.push_str(&text);
                if !text.contains('.') {
                    self.out.push('.');
                }
            }
            Operand::Bool(b) => {
                let _ = write!(self.out, "{b}");
            }
            Operand::EmptyArray => self.out.push_str("[ ]"),
            Operand::Scalar(i, lens) => {
                let _ = write!(self.out, "v{i}");
                self.lens(lens.as_ref());
            }
            Operand::Canon(lens) => {
                self.out.push_str("#$c0");
                self.lens(lens.as_ref());
            }
            Operand::CanonMap(lens) => {
                self.out.push_str("#%m0");
                self.lens(lens.as_ref());
            }
            Operand::Iterator => match self.iterators.last() {
                Some(name) => {
                    let name = name.clone();
                    self.out.push_str(&name);
                }
                None => self.out.push_str("v3"),
            },
        }
    }

    fn lens(&mut self, lens: Option<&Lens>) {
        let Some(lens) = lens else { return };
        match lens {
            Lens::Length => self.out.push_str(".length"),
            Lens::Path(accessors) => {
                self.out.push_str(".$");
                let n = accessors.len();
                for (k, accessor) in accessors.iter().enumerate() {
                    // The dot before `[` is optional; the layout decides.
                    let dot = if self.layout[(self.at + k) % self.layout.len()] % 2 == 0 {
                        "."
                    } else {
                        ""
                    };
                    match accessor {
                        Accessor::Index(i) => {
                            let _ = write!(self.out, "{dot}[{i}]");
                        }
                        Accessor::Field(f) => {
                            let _ = write!(self.out, ".{f}");
                        }
                        Accessor::ByScalar(i) => {
                            let _ = write!(self.out, "{dot}[v{i}]");
                        }
                    }
                    if k + 1 == n && self.layout.len() % 3 == 0 {
                        self.out.push('!');
                    }
                }
            }
        }
    }
}
