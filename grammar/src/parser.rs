//! The instruction grammar (air-language.md §6) over the token stream.
//!
//! Nesting is handled with an explicit stack of open instructions rather than recursion,
//! so the depth of a script is limited by memory, never by the call stack.

use crate::ast::{
    Ap, ApMap, Ast, Call, Canon, Fail, Fold, Instr, InstrId, InstrKind, LazyCall, Match, Value,
    Var, VarKind,
};
use crate::error::{ErrorKind, ParseError};
use crate::lexer::{Keyword, LexError, Lexer, Raw, Token, TokenKind};
use crate::span::Span;
use crate::validate::Facts;

/// Parses the text of one instruction into a tree, without static validation, and
/// records on the way what validation needs to know about the tree.
pub(crate) fn parse_syntax(source: &str) -> Result<(Ast<'_>, Facts), ParseError> {
    if source.len() >= u32::MAX as usize {
        return Err(ParseError::single(
            "",
            ErrorKind::TooLarge { size: source.len() },
            Span::default(),
        ));
    }
    // Dense scripts (generated ones: no indentation) take about 20 bytes per
    // instruction; reserving that much spares the arena a copy while it grows.
    let instructions = source.len() / 20;
    let mut parser = Parser {
        source,
        lexer: Lexer::new(source),
        instrs: Vec::with_capacity(instructions),
        stack: Vec::new(),
        operands: Vec::new(),
        current: None,
        facts: Facts::with_capacity(instructions),
        kept_calls: 0,
    };
    match parser.run() {
        Ok(ast) => Ok((ast, parser.facts)),
        Err(e) => Err(ParseError::single(source, e.0, e.1)),
    }
}

/// Parses again the operands of the call whose `(` is at `open` in `source`.
pub(crate) fn parse_call(source: &str, open: u32) -> Result<Call<'_>, ParseError> {
    let mut lexer = Lexer::new(source);
    lexer.seek(open as usize);
    let mut parser = Parser {
        source,
        lexer,
        instrs: Vec::new(),
        stack: Vec::new(),
        operands: Vec::new(),
        current: None,
        facts: Facts::default(),
        kept_calls: 0,
    };
    let call = match parser.instruction_start() {
        Ok((_, Keyword::Call)) => parser.call(),
        Ok((at, _)) => Err(Box::new((
            ErrorKind::Unexpected {
                found: "another instruction".to_owned(),
                expected: "a call",
            },
            Span::new(at, at + 1),
        ))),
        Err(e) => Err(e),
    };
    call.map_err(|e| ParseError::single(source, e.0, e.1))
}

type PResult<T> = Result<T, LexError>;

/// Operand forms, as bits, so each position lists what it accepts.
mod form {
    pub(super) const INIT_PEER_ID: u32 = 1 << 0;
    pub(super) const TIMESTAMP: u32 = 1 << 1;
    pub(super) const TTL: u32 = 1 << 2;
    pub(super) const LAST_ERROR: u32 = 1 << 3;
    pub(super) const LAST_ERROR_LENS: u32 = 1 << 4;
    pub(super) const ERROR: u32 = 1 << 5;
    pub(super) const ERROR_LENS: u32 = 1 << 6;
    pub(super) const STRING: u32 = 1 << 7;
    pub(super) const INT: u32 = 1 << 8;
    pub(super) const FLOAT: u32 = 1 << 9;
    pub(super) const BOOL: u32 = 1 << 10;
    pub(super) const EMPTY_ARRAY: u32 = 1 << 11;
    pub(super) const SCALAR: u32 = 1 << 12;
    pub(super) const SCALAR_LENS: u32 = 1 << 13;
    pub(super) const CANON: u32 = 1 << 14;
    pub(super) const CANON_LENS: u32 = 1 << 15;
    pub(super) const CANON_MAP: u32 = 1 << 16;
    pub(super) const CANON_MAP_LENS: u32 = 1 << 17;
    pub(super) const STREAM: u32 = 1 << 18;
    pub(super) const STREAM_MAP: u32 = 1 << 19;

    /// Any value that can be read: call arguments, match operands.
    pub(super) const VALUE: u32 = INIT_PEER_ID
        | TIMESTAMP
        | TTL
        | LAST_ERROR
        | LAST_ERROR_LENS
        | ERROR
        | ERROR_LENS
        | STRING
        | INT
        | FLOAT
        | BOOL
        | EMPTY_ARRAY
        | SCALAR
        | SCALAR_LENS
        | CANON
        | CANON_LENS
        | CANON_MAP
        | CANON_MAP_LENS;
    pub(super) const PEER: u32 =
        INIT_PEER_ID | STRING | SCALAR | SCALAR_LENS | CANON_LENS | CANON_MAP_LENS;
    pub(super) const TRIPLET_PART: u32 = PEER & !INIT_PEER_ID;
    pub(super) const AP_ARG: u32 = VALUE & !CANON_MAP;
    pub(super) const MAP_KEY: u32 = STRING | INT | SCALAR | SCALAR_LENS | CANON_LENS;
    pub(super) const ITERABLE: u32 = SCALAR
        | SCALAR_LENS
        | CANON
        | CANON_MAP
        | CANON_MAP_LENS
        | EMPTY_ARRAY
        | STREAM
        | STREAM_MAP;
    pub(super) const FAIL: u32 = SCALAR | SCALAR_LENS | CANON_LENS | LAST_ERROR | ERROR;
}

const EXPECT_INSTRUCTION: &str = "an instruction such as `(call …)`, `(seq …)` or `(null)`";
const EXPECT_KEYWORD: &str = "an instruction name: call, canon, ap, seq, par, xor, null, never, new, fail, fold, next, match or mismatch";
const EXPECT_CLOSE: &str = "`)`";
const EXPECT_PEER: &str = "a peer: `%init_peer_id%`, a string, or a scalar or canon with lens";
const EXPECT_TRIPLET_PART: &str =
    "a service or function name: a string, or a scalar or canon with lens";
const EXPECT_ARG: &str = "an argument: a literal, `%init_peer_id%`, an error object, a scalar, a canon stream or a canon map";
const EXPECT_OUTPUT: &str = "a scalar or a stream (without lens) for the result, or `)`";
const EXPECT_AP_ARG: &str = "a value to apply: a literal, an error object, a scalar, a canon stream or a canon map with lens";
const EXPECT_AP_RESULT: &str = "a scalar or a stream (without lens)";
const EXPECT_MAP_KEY: &str = "a map key: a string, an integer, a scalar or a canon with lens";
const EXPECT_MAP: &str = "a stream map such as `%m` (without lens)";
const EXPECT_CANON_SOURCE: &str = "a stream `$s` or a stream map `%m` (without lens)";
const EXPECT_CANON_TARGET: &str = "a canon stream such as `#$c` (without lens)";
const EXPECT_CANON_MAP_TARGET: &str = "a canon map such as `#%c` or a scalar (without lens)";
const EXPECT_NEW_VAR: &str = "a variable without lens";
const EXPECT_FAIL: &str =
    "`CODE \"message\"`, `%last_error%`, `:error:`, a scalar, or a canon with lens";
const EXPECT_FAIL_MESSAGE: &str = "a string message after the error code";
const EXPECT_ITERABLE: &str = "an iterable: `[]`, a scalar, a canon stream (without lens), a canon map, a stream or a stream map";
const EXPECT_ITERATOR: &str = "an iterator name (a scalar without lens)";
const EXPECT_VALUE: &str = "a value: a literal, `%init_peer_id%`, an error object, a scalar, a canon stream or a canon map";
const EXPECT_CLOSE_SQUARE: &str = "`]` (only the empty array `[]` can be written)";
const EXPECT_OPEN_TRIPLET: &str = "`(` opening the service and function names";
const EXPECT_OPEN_ARGS: &str = "`[` opening the argument list";
const EXPECT_END: &str = "the end of the script (a script is exactly one instruction)";

/// How many calls keep the operands the parser read. The later ones are parsed again
/// when an invoke reaches them ([`Ast::call`]): real scripts have far fewer calls and
/// never pay for a second parse, while a generated 100 MB script with millions of calls
/// does not hold five times its size in operands, most of which it never runs.
pub(crate) const KEPT_CALLS: u32 = 4096;

struct Parser<'a> {
    source: &'a str,
    lexer: Lexer<'a>,
    instrs: Vec<Instr<'a>>,
    stack: Vec<Frame>,
    operands: Vec<Operands<'a>>,
    /// The `(` of the instruction whose operands are being read.
    current: Option<u32>,
    facts: Facts,
    /// Calls whose operands are kept so far.
    kept_calls: u32,
}

/// An instruction whose children are still being parsed: small, because every `seq`,
/// `par` and `xor` pushes one. The operands of `new`, `match` and `fold` wait in
/// [`Parser::operands`].
struct Frame {
    open: u32,
    pending: Pending,
    /// The first child of a pair, the body of a fold, once parsed.
    first: Option<InstrId>,
}

#[derive(Clone, Copy)]
enum Pending {
    Seq,
    Par,
    Xor,
    New,
    Match,
    Mismatch,
    Fold,
}

/// The two forms of `ap`.
enum ApKind<'a> {
    Ap(Box<Ap<'a>>),
    Map(Box<ApMap<'a>>),
}

/// The operands of an open `new`, `match`, `mismatch` or `fold`, in the order of their
/// frames.
enum Operands<'a> {
    New(Var<'a>),
    Match(Value<'a>, Value<'a>),
    Fold(Value<'a>, Var<'a>),
}

impl<'a> Parser<'a> {
    fn run(&mut self) -> PResult<Ast<'a>> {
        let root = 'script: loop {
            let (open, keyword) = self.instruction_start()?;
            // Each kind is closed in its own arm, where `close` (inlined) knows which
            // kind it stores: what it records for validation takes no second dispatch.
            let mut done = match keyword {
                Keyword::Call => {
                    let call = self.call()?;
                    self.close_call(open, call)?
                }
                Keyword::Canon => {
                    let canon = self.canon()?;
                    self.close(open, InstrKind::Canon(canon))?
                }
                Keyword::Ap => match self.ap()? {
                    ApKind::Ap(ap) => self.close(open, InstrKind::Ap(ap))?,
                    ApKind::Map(ap) => self.close(open, InstrKind::ApMap(ap))?,
                },
                Keyword::Null => self.close(open, InstrKind::Null)?,
                Keyword::Never => self.close(open, InstrKind::Never)?,
                Keyword::Fail => {
                    let fail = Box::new(self.fail()?);
                    self.close(open, InstrKind::Fail(fail))?
                }
                Keyword::Next => {
                    let var = self.var(&[VarKind::Scalar], EXPECT_ITERATOR)?;
                    self.close(open, InstrKind::Next(Box::new(var)))?
                }
                Keyword::Seq | Keyword::Par | Keyword::Xor => {
                    let pending = match keyword {
                        Keyword::Seq => Pending::Seq,
                        Keyword::Par => Pending::Par,
                        _ => Pending::Xor,
                    };
                    self.open(open, pending);
                    continue;
                }
                Keyword::New => {
                    let var = self.var(
                        &[
                            VarKind::Scalar,
                            VarKind::Stream,
                            VarKind::StreamMap,
                            VarKind::Canon,
                            VarKind::CanonMap,
                        ],
                        EXPECT_NEW_VAR,
                    )?;
                    self.operands.push(Operands::New(var));
                    self.open(open, Pending::New);
                    continue;
                }
                Keyword::Match | Keyword::Mismatch => {
                    let left = self.operand(form::VALUE, EXPECT_VALUE)?;
                    let right = self.operand(form::VALUE, EXPECT_VALUE)?;
                    self.operands.push(Operands::Match(left, right));
                    let pending = match keyword {
                        Keyword::Match => Pending::Match,
                        _ => Pending::Mismatch,
                    };
                    self.open(open, pending);
                    continue;
                }
                Keyword::Fold => {
                    let iterable = self.operand(form::ITERABLE, EXPECT_ITERABLE)?;
                    let iterator = self.var(&[VarKind::Scalar], EXPECT_ITERATOR)?;
                    self.operands.push(Operands::Fold(iterable, iterator));
                    self.open(open, Pending::Fold);
                    continue;
                }
            };
            // Hand the finished instruction to the open ones, closing those it completes.
            loop {
                let Some(frame) = self.stack.last_mut() else {
                    break 'script done;
                };
                match (frame.pending, frame.first) {
                    (Pending::Seq | Pending::Par | Pending::Xor, None) => {
                        frame.first = Some(done);
                        continue 'script;
                    }
                    (Pending::Fold, None) => {
                        frame.first = Some(done);
                        if self.lexer.at(b'(') {
                            continue 'script;
                        }
                        let frame = self.stack.pop().expect("frame seen above");
                        done = self.close_frame(frame, None)?;
                    }
                    _ => {
                        let frame = self.stack.pop().expect("frame seen above");
                        done = self.close_frame(frame, Some(done))?;
                    }
                }
            }
        };
        let token = self.lexer.next()?;
        if token.raw != Raw::End {
            return Err(self.unexpected(&token, EXPECT_END));
        }
        Ok(Ast {
            source: self.source,
            instrs: std::mem::take(&mut self.instrs),
            root,
        })
    }

    /// Opens an instruction whose children come next.
    #[inline(always)]
    fn open(&mut self, open: u32, pending: Pending) {
        self.stack.push(Frame {
            open,
            pending,
            first: None,
        });
    }

    /// `(` and a keyword.
    #[inline(always)]
    fn instruction_start(&mut self) -> PResult<(u32, Keyword)> {
        if let Some((open, keyword)) = self.lexer.instruction_start() {
            self.current = Some(open);
            return Ok((open, keyword));
        }
        self.instruction_start_slow()
    }

    #[inline(never)]
    fn instruction_start_slow(&mut self) -> PResult<(u32, Keyword)> {
        let token = self.lexer.next()?;
        if token.raw != Raw::Open {
            return Err(self.unexpected(&token, EXPECT_INSTRUCTION));
        }
        let open = token.span.start;
        self.current = Some(open);
        let token = self.lexer.next()?;
        if token.raw == Raw::Word {
            if let Some(keyword) = Keyword::from_word(self.lexer.text(&token)) {
                return Ok((open, keyword));
            }
        }
        Err(self.unexpected_at(&token, EXPECT_KEYWORD, open))
    }

    /// Builds the instruction of a frame whose children are all there.
    #[inline(always)]
    fn close_frame(&mut self, frame: Frame, child: Option<InstrId>) -> PResult<InstrId> {
        // `child` is None only for a fold without a last instruction.
        match frame.pending {
            Pending::Seq | Pending::Par | Pending::Xor => {
                let (a, b) = (
                    frame.first.expect("pair has its first child"),
                    child.expect("second child"),
                );
                let kind = match frame.pending {
                    Pending::Seq => InstrKind::Seq(a, b),
                    Pending::Par => InstrKind::Par(a, b),
                    _ => InstrKind::Xor(a, b),
                };
                self.close(frame.open, kind)
            }
            Pending::New | Pending::Match | Pending::Mismatch | Pending::Fold => {
                let kind = self.close_scope(frame.pending, frame.first, child);
                self.close_rare(frame.open, kind)
            }
        }
    }

    /// [`Self::close`] out of line, for the rarer instructions.
    #[inline(never)]
    fn close_rare(&mut self, open: u32, kind: InstrKind<'a>) -> PResult<InstrId> {
        self.close(open, kind)
    }

    /// The instruction of a `new`, `match`, `mismatch` or `fold` frame, with its
    /// operands.
    fn close_scope(
        &mut self,
        pending: Pending,
        first: Option<InstrId>,
        child: Option<InstrId>,
    ) -> InstrKind<'a> {
        let operands = self.operands.pop().expect("scope frames have operands");
        match (pending, operands) {
            (Pending::New, Operands::New(var)) => InstrKind::New {
                var: Box::new(var),
                body: child.expect("new has a body"),
            },
            (Pending::Fold, Operands::Fold(iterable, iterator)) => {
                InstrKind::Fold(Box::new(Fold {
                    iterable,
                    iterator,
                    body: first.expect("fold has a body"),
                    last: child,
                }))
            }
            (pending, Operands::Match(left, right)) => {
                let m = Box::new(Match {
                    left,
                    right,
                    body: child.expect("match has a body"),
                });
                if matches!(pending, Pending::Mismatch) {
                    InstrKind::Mismatch(m)
                } else {
                    InstrKind::Match(m)
                }
            }
            _ => unreachable!("operands are pushed with their frame"),
        }
    }

    /// Expects the `)` of the instruction opened at `open` and stores the instruction.
    #[inline(always)]
    fn close(&mut self, open: u32, kind: InstrKind<'a>) -> PResult<InstrId> {
        let span = Span::new(open, self.close_paren(open)?);
        let id = InstrId::from_index(self.instrs.len());
        self.facts.record(id, span, &kind);
        self.instrs.push(Instr { span, kind });
        Ok(id)
    }

    /// [`Self::close`] for a call, whose operands are recorded for validation, then kept
    /// for the first [`KEPT_CALLS`] calls and left in the text for the others.
    #[inline(always)]
    fn close_call(&mut self, open: u32, call: Call<'a>) -> PResult<InstrId> {
        let end = self.close_paren(open)?;
        let id = InstrId::from_index(self.instrs.len());
        self.facts.record_call(open, &call);
        let kind = if self.kept_calls < KEPT_CALLS {
            self.kept_calls += 1;
            LazyCall::new(call)
        } else {
            LazyCall::deferred()
        };
        self.instrs.push(Instr {
            span: Span::new(open, end),
            kind: InstrKind::Call(kind),
        });
        Ok(id)
    }

    /// Expects the `)` of the instruction opened at `open`: the end of its span.
    #[inline(always)]
    fn close_paren(&mut self, open: u32) -> PResult<u32> {
        let end = match self.lexer.eat(b')') {
            Some(at) => at + 1,
            None => self.close_slow(open)?,
        };
        self.current = None;
        Ok(end)
    }

    #[inline(never)]
    fn close_slow(&mut self, open: u32) -> PResult<u32> {
        let token = self.lexer.next()?;
        if token.raw != Raw::Close {
            return Err(self.unexpected_at(&token, EXPECT_CLOSE, open));
        }
        Ok(token.span.end)
    }

    // Inlined: a call is 192 bytes, returned out of line it is copied twice.
    #[inline(always)]
    fn call(&mut self) -> PResult<Call<'a>> {
        let peer = self.operand(form::PEER, EXPECT_PEER)?;
        self.expect(b'(', EXPECT_OPEN_TRIPLET)?;
        let service = self.operand(form::TRIPLET_PART, EXPECT_TRIPLET_PART)?;
        let function = self.operand(form::TRIPLET_PART, EXPECT_TRIPLET_PART)?;
        self.expect(b')', EXPECT_CLOSE)?;
        self.expect(b'[', EXPECT_OPEN_ARGS)?;
        let mut args = Vec::new();
        while !self.lexer.at(b']') {
            args.push(self.operand(form::VALUE, EXPECT_ARG)?);
        }
        if self.lexer.eat(b']').is_none() {
            self.lexer.next()?;
        }
        let output = if self.lexer.at(b')') {
            None
        } else {
            Some(self.var(&[VarKind::Scalar, VarKind::Stream], EXPECT_OUTPUT)?)
        };
        Ok(Call {
            peer,
            service,
            function,
            args,
            output,
        })
    }

    fn canon(&mut self) -> PResult<Box<Canon<'a>>> {
        let peer = self.operand(form::PEER, EXPECT_PEER)?;
        let source = self.var(&[VarKind::Stream, VarKind::StreamMap], EXPECT_CANON_SOURCE)?;
        let target = if source.kind == VarKind::Stream {
            self.var(&[VarKind::Canon], EXPECT_CANON_TARGET)?
        } else {
            self.var(
                &[VarKind::CanonMap, VarKind::Scalar],
                EXPECT_CANON_MAP_TARGET,
            )?
        };
        Ok(Box::new(Canon {
            peer,
            source,
            target,
        }))
    }

    fn ap(&mut self) -> PResult<ApKind<'a>> {
        if self.lexer.at(b'(') {
            self.lexer.next()?;
            let key = self.operand(form::MAP_KEY, EXPECT_MAP_KEY)?;
            let value = self.operand(form::AP_ARG, EXPECT_AP_ARG)?;
            self.expect(b')', EXPECT_CLOSE)?;
            let map = self.var(&[VarKind::StreamMap], EXPECT_MAP)?;
            return Ok(ApKind::Map(Box::new(ApMap { key, value, map })));
        }
        let arg = self.operand(form::AP_ARG, EXPECT_AP_ARG)?;
        let result = self.var(&[VarKind::Scalar, VarKind::Stream], EXPECT_AP_RESULT)?;
        Ok(ApKind::Ap(Box::new(Ap { arg, result })))
    }

    fn fail(&mut self) -> PResult<Fail<'a>> {
        let peeked = self.lexer.peek()?;
        if peeked.raw == Raw::Word {
            if let Ok(TokenKind::Int(code)) = self.lexer.classify(&peeked) {
                self.lexer.next()?;
                let token = self.lexer.next()?;
                if token.raw != Raw::String {
                    return Err(self.unexpected(&token, EXPECT_FAIL_MESSAGE));
                }
                return Ok(Fail::Literal {
                    code,
                    message: self.lexer.text(&token),
                });
            }
        }
        Ok(match self.operand(form::FAIL, EXPECT_FAIL)? {
            Value::LastError(None) => Fail::LastError,
            Value::Error(None) => Fail::Error,
            Value::Var(var, lens) => Fail::Var(var, lens),
            _ => unreachable!("form::FAIL admits only errors and variables"),
        })
    }

    /// One operand among the `allowed` forms.
    #[inline(always)]
    fn operand(&mut self, allowed: u32, expected: &'static str) -> PResult<Value<'a>> {
        if let Some(token) = self.lexer.plain_word() {
            if let Some(var) = self.lexer.plain_var(&token) {
                let form = match var.kind {
                    VarKind::Scalar => form::SCALAR,
                    _ => form::STREAM,
                };
                if allowed & form != 0 {
                    self.lexer.consume(&token);
                    return Ok(Value::Var(var, None));
                }
            }
        } else if allowed & form::STRING != 0 {
            if let Some(token) = self.lexer.string() {
                self.lexer.consume(&token);
                return Ok(Value::String(self.lexer.text(&token)));
            }
        }
        self.operand_slow(allowed, expected)
    }

    #[inline(never)]
    fn operand_slow(&mut self, allowed: u32, expected: &'static str) -> PResult<Value<'a>> {
        // Integers and `%init_peer_id%` without the token path and its classifier.
        if let Some((end, kind)) = self.lexer.simple_literal() {
            let value = match kind {
                TokenKind::Int(i) => Value::Int(i),
                _ => Value::InitPeerId,
            };
            if form_of(&kind) & allowed != 0 {
                self.lexer.skip_to(end);
                return Ok(value);
            }
        }
        let token = self.lexer.next()?;
        if let Some(var) = self.lexer.plain_var(&token) {
            let form = match var.kind {
                VarKind::Scalar => form::SCALAR,
                _ => form::STREAM,
            };
            if allowed & form == 0 {
                return Err(self.unexpected(&token, expected));
            }
            return Ok(Value::Var(var, None));
        }
        let value = match token.raw {
            Raw::String if allowed & form::STRING != 0 => Value::String(self.lexer.text(&token)),
            Raw::OpenSquare if allowed & form::EMPTY_ARRAY != 0 => {
                self.expect(b']', EXPECT_CLOSE_SQUARE)?;
                Value::EmptyArray
            }
            Raw::Word => {
                let kind = self.lexer.classify(&token)?;
                if form_of(&kind) & allowed == 0 {
                    return Err(self.unexpected(&token, expected));
                }
                match kind {
                    TokenKind::Int(i) => Value::Int(i),
                    TokenKind::Float(f) => Value::Float(f),
                    TokenKind::Bool(b) => Value::Bool(b),
                    TokenKind::InitPeerId => Value::InitPeerId,
                    TokenKind::Timestamp => Value::Timestamp,
                    TokenKind::Ttl => Value::Ttl,
                    TokenKind::LastError(lens) => Value::LastError(lens),
                    TokenKind::Error(lens) => Value::Error(lens),
                    TokenKind::Var(var, lens) => Value::Var(var, lens),
                    TokenKind::Keyword(_) => unreachable!("form_of gives keywords no form"),
                }
            }
            _ => return Err(self.unexpected(&token, expected)),
        };
        Ok(value)
    }

    /// A variable of one of `kinds`, without lens.
    #[inline(always)]
    fn var(&mut self, kinds: &[VarKind], expected: &'static str) -> PResult<Var<'a>> {
        if let Some(token) = self.lexer.plain_word() {
            if let Some(var) = self.lexer.plain_var(&token) {
                if kinds.contains(&var.kind) {
                    self.lexer.consume(&token);
                    return Ok(var);
                }
            }
        }
        self.var_slow(kinds, expected)
    }

    #[inline(never)]
    fn var_slow(&mut self, kinds: &[VarKind], expected: &'static str) -> PResult<Var<'a>> {
        let token = self.lexer.next()?;
        if let Some(var) = self.lexer.plain_var(&token) {
            if kinds.contains(&var.kind) {
                return Ok(var);
            }
        } else if token.raw == Raw::Word {
            if let TokenKind::Var(var, None) = self.lexer.classify(&token)? {
                if kinds.contains(&var.kind) {
                    return Ok(var);
                }
            }
        }
        Err(self.unexpected(&token, expected))
    }

    /// The punctuation `byte` (`(`, `)`, `[` or `]`).
    #[inline(always)]
    fn expect(&mut self, byte: u8, expected: &'static str) -> PResult<()> {
        if self.lexer.eat(byte).is_some() {
            return Ok(());
        }
        self.expect_slow(byte, expected)
    }

    #[inline(never)]
    fn expect_slow(&mut self, byte: u8, expected: &'static str) -> PResult<()> {
        let raw = match byte {
            b'(' => Raw::Open,
            b')' => Raw::Close,
            b'[' => Raw::OpenSquare,
            _ => Raw::CloseSquare,
        };
        let token = self.lexer.next()?;
        if token.raw != raw {
            return Err(self.unexpected(&token, expected));
        }
        Ok(())
    }

    /// The error for `token` where `expected` was needed.
    fn unexpected(&self, token: &Token, expected: &'static str) -> LexError {
        let open = self.current.or_else(|| self.stack.last().map(|f| f.open));
        self.unexpected_inner(token, expected, open)
    }

    /// Same, inside the instruction opened at `open`.
    fn unexpected_at(&self, token: &Token, expected: &'static str, open: u32) -> LexError {
        self.unexpected_inner(token, expected, Some(open))
    }

    fn unexpected_inner(
        &self,
        token: &Token,
        expected: &'static str,
        open: Option<u32>,
    ) -> LexError {
        if token.raw == Raw::End {
            return match open {
                Some(open) => Box::new((ErrorKind::Unclosed, Span::new(open, open + 1))),
                None => Box::new((ErrorKind::UnexpectedEnd { expected }, token.span)),
            };
        }
        // A word that is not even a valid token is reported as such.
        let kind = match token.raw {
            Raw::Word => match self.lexer.classify(token) {
                Ok(kind) => Some(kind),
                Err(lexical) => return lexical,
            },
            _ => None,
        };
        let found = describe(self.source, token, kind.as_ref());
        Box::new((ErrorKind::Unexpected { found, expected }, token.span))
    }
}

/// The operand form of a token, 0 if it is not an operand.
fn form_of(kind: &TokenKind<'_>) -> u32 {
    match kind {
        TokenKind::Int(_) => form::INT,
        TokenKind::Float(_) => form::FLOAT,
        TokenKind::Bool(_) => form::BOOL,
        TokenKind::InitPeerId => form::INIT_PEER_ID,
        TokenKind::Timestamp => form::TIMESTAMP,
        TokenKind::Ttl => form::TTL,
        TokenKind::LastError(None) => form::LAST_ERROR,
        TokenKind::LastError(Some(_)) => form::LAST_ERROR_LENS,
        TokenKind::Error(None) => form::ERROR,
        TokenKind::Error(Some(_)) => form::ERROR_LENS,
        TokenKind::Var(var, lens) => match (var.kind, lens.is_some()) {
            (VarKind::Scalar, false) => form::SCALAR,
            (VarKind::Scalar, true) => form::SCALAR_LENS,
            (VarKind::Canon, false) => form::CANON,
            (VarKind::Canon, true) => form::CANON_LENS,
            (VarKind::CanonMap, false) => form::CANON_MAP,
            (VarKind::CanonMap, true) => form::CANON_MAP_LENS,
            (VarKind::Stream, false) => form::STREAM,
            (VarKind::StreamMap, false) => form::STREAM_MAP,
            // Streams and stream maps never take a lens.
            (VarKind::Stream | VarKind::StreamMap, true) => 0,
        },
        _ => 0,
    }
}

/// How a token is named in messages.
fn describe(source: &str, token: &Token, kind: Option<&TokenKind<'_>>) -> String {
    let text = &source[token.span.start as usize..token.span.end as usize];
    let shown: String = text.chars().take(40).collect();
    let ellipsis = if shown.len() < text.len() { "…" } else { "" };
    let what = match (token.raw, kind) {
        (_, Some(TokenKind::Keyword(k))) => return format!("keyword `{}`", k.as_str()),
        (Raw::String, _) => "string",
        (_, Some(TokenKind::Int(_))) => "integer",
        (_, Some(TokenKind::Float(_))) => "float",
        (_, Some(TokenKind::Bool(_))) => "boolean",
        (_, Some(TokenKind::Var(var, lens))) => {
            let kind = var.kind.describe();
            return match lens {
                Some(_) => format!("{kind} with lens `{shown}{ellipsis}`"),
                None => format!("{kind} `{shown}{ellipsis}`"),
            };
        }
        _ => return format!("`{shown}{ellipsis}`"),
    };
    format!("{what} `{shown}{ellipsis}`")
}
