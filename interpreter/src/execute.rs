//! Executing a script over the merged traces: the semantics of every instruction
//! (execution-model.md §5–§11, errors.md §2–§3).

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use braid_grammar::{
    Accessor, Ast, Call, Canon, Fail, Fold, InstrId, InstrKind, Lens, Match, Value, Var, VarKind,
};
use serde_json::Value as JValue;

use crate::error::{CatchableError, UncatchableError};
use crate::inspect::{ExecEvent, FaultView, TracePoint};
use crate::json::{Access, Json};
use crate::merge::{Conflict, Cursor, Merger, Origin, Source};
use crate::mixhash::MixMap;
use crate::params::{CallRequest, CallResults, RunParams, Tetraplet};
use crate::scopes::{AssignError, Lookup, Scopes, Variable};
use crate::streams::{Generation, Seen, Stream, StreamValue, Streams};
use crate::trace::{
    CallState, CanonResult, CanonState, IterationRecord, Output, ServiceResult, State, Subtrace,
    argument_hash,
};
use crate::value::{
    CanonMap, CanonStream, MapKey, Val, compact, literal_tetraplet, peer_tetraplet,
};

/// Deepest nesting of instructions (including fold recursion) braid executes.
pub(crate) const MAX_DEPTH: usize = 20_000;

/// How an instruction failed.
#[derive(Debug)]
pub(crate) enum Fault {
    Catchable(CatchableError),
    Uncatchable(UncatchableError, InstrId),
}

type Exec = Result<(), Fault>;

/// An evaluated operand: its JSON, one tetraplet per value it stands for (one per
/// element for a canon), and the tetraplet it carries when stored.
struct Evaluated<'a> {
    json: Rc<Json<'a>>,
    /// One tetraplet per element of a canon; `None` when the operand is one value
    /// (its tetraplet is `single`).
    each: Option<Vec<Rc<Tetraplet>>>,
    single: Rc<Tetraplet>,
    /// The value (for `.length`: the measured value) started as a literal.
    literal: bool,
}

impl<'a> Evaluated<'a> {
    fn one(json: Rc<Json<'a>>, tetraplet: Rc<Tetraplet>) -> Self {
        Self {
            json,
            each: None,
            single: tetraplet,
            literal: false,
        }
    }

    fn literal(mut self, literal: bool) -> Self {
        self.literal = literal;
        self
    }
}

/// Evaluated call arguments: the JSON text of the array and each one's tetraplets (as
/// in `Evaluated`). The tetraplets are copied out only for a call request.
type Arguments = (String, Vec<(Option<Vec<Rc<Tetraplet>>>, Rc<Tetraplet>)>);

/// Recorded iterations of a stream fold by value position: widened `before` and
/// `after` parts.
type Lore = BTreeMap<u32, (Subtrace, Subtrace)>;

/// `Ok(None)`: a variable is missing, the instruction waits.
type Eval<T> = Result<Option<T>, CatchableError>;

#[derive(Debug, Clone)]
struct Slot<'a> {
    object: Rc<Json<'a>>,
    tetraplet: Option<Rc<Tetraplet>>,
    open: bool,
}

impl Slot<'_> {
    fn empty() -> Self {
        Self {
            object: Rc::new(Json::from(no_error())),
            tetraplet: None,
            open: true,
        }
    }
}

fn no_error() -> JValue {
    serde_json::json!({"error_code": 0, "message": ""})
}

struct ErrorSlots<'a> {
    last: Slot<'a>,
    current: Slot<'a>,
    /// The error an `xor` caught, for `(fail :error:)`: it belongs to the object the
    /// `xor` left in `current` and goes with it, at the next write of that slot
    /// (errors.md §3.2, last paragraph).
    original: Option<CatchableError>,
}

/// What an error object says about where the error happened.
struct ErrorOrigin<'o> {
    /// `peer_id` of the objects.
    peer_id: &'o str,
    /// True for call and canon errors: only those put `peer_id` into `:error:`.
    peer_in_current: bool,
    /// The call's tetraplet, for call errors after its triplet was resolved.
    tetraplet: Option<Rc<Tetraplet>>,
}

enum FoldKind {
    Scalar,
    Stream(Box<StreamFold>),
}

/// The trace bookkeeping of a fold over a stream.
struct StreamFold {
    /// Recorded iterations of each side, by value position, with widened lengths.
    lores: [Lore; 2],
    /// Per element of the running pass: its recorded iterations on each side.
    taken: Vec<[Option<(Subtrace, Subtrace)>; 2]>,
    /// Per element of the running pass: the record being built, once it started.
    records: Vec<Option<RecordBuild>>,
}

#[derive(Clone, Copy)]
struct RecordBuild {
    value_pos: u32,
    before_begin: u32,
    before_len: Option<u32>,
    after_begin: Option<u32>,
    after_len: Option<u32>,
}

struct ActiveFold<'a> {
    iterator: &'a str,
    elements: Rc<[(Val<'a>, u32)]>,
    index: usize,
    body: InstrId,
    last: Option<InstrId>,
    /// The scope level of the running iteration.
    frame: usize,
    kind: FoldKind,
}

pub(crate) struct Execution<'t, 'a> {
    ast: &'t Ast<'a>,
    params: &'t RunParams,
    results: &'a CallResults,
    pub(crate) consumed: BTreeSet<u32>,
    pub(crate) merger: Merger<'a>,
    scopes: Scopes<'a>,
    streams: Streams<'a>,
    maps: Streams<'a>,
    errors: ErrorSlots<'a>,
    complete: bool,
    pub(crate) next_peers: BTreeSet<String>,
    pub(crate) requests: Vec<CallRequest>,
    /// The bytes of `requests`, against [`crate::Limits::call_requests_size`].
    requests_size: u64,
    pub(crate) last_call_id: u32,
    folds: Vec<ActiveFold<'a>>,
    /// Scalar arrays folded so far, by the addresses of the array and its tetraplet:
    /// `None` after the first fold, the elements from the second on (a fold nested in
    /// another visits the same array once per outer iteration; most arrays are folded
    /// once). Kept elements hold the array and tetraplet, so those addresses stay
    /// theirs; a stale `None` only makes an array kept that is not folded again.
    folded_arrays: MixMap<(usize, usize, bool), Option<FoldedArray<'a>>>,
    depth: usize,
    literal: Rc<Tetraplet>,
    /// The execution log of `invoke_inspected`; `None` in `invoke`.
    pub(crate) log: Option<Vec<ExecEvent>>,
}

impl<'t, 'a> Execution<'t, 'a> {
    pub(crate) fn new(
        ast: &'t Ast<'a>,
        params: &'t RunParams,
        results: &'a CallResults,
        merger: Merger<'a>,
        last_call_id: u32,
    ) -> Self {
        Self {
            ast,
            params,
            results,
            consumed: BTreeSet::new(),
            merger,
            scopes: Scopes::new(),
            streams: Streams::default(),
            maps: Streams::default(),
            errors: ErrorSlots {
                last: Slot::empty(),
                current: Slot::empty(),
                original: None,
            },
            complete: true,
            next_peers: BTreeSet::new(),
            requests: Vec::new(),
            requests_size: 0,
            last_call_id,
            folds: Vec::new(),
            folded_arrays: MixMap::default(),
            depth: 0,
            literal: Rc::new(literal_tetraplet(&params.init_peer_id)),
            log: None,
        }
    }

    pub(crate) fn run(&mut self) -> Exec {
        self.exec(self.ast.root())
    }

    /// Renumbers the generations of every live stream and map in the result trace.
    pub(crate) fn finish_generations(&mut self) {
        let mut renumbering = Vec::new();
        for s in self.streams.all().chain(self.maps.all()) {
            renumbering.extend(s.renumbering());
        }
        self.apply_renumbering(&renumbering);
    }

    fn apply_renumbering(&mut self, renumbering: &[(u32, u32)]) {
        for &(pos, number) in renumbering {
            match self.merger.result.get_mut(pos as usize) {
                Some(State::Ap { generation }) => *generation = number,
                Some(State::Call(CallState::Executed {
                    output: Output::Stream { generation },
                    ..
                })) => {
                    *generation = number;
                }
                _ => {}
            }
        }
    }

    /// Borrowed from the parameters rather than from `self`, so that it can be held
    /// across `&mut self` calls.
    fn current_peer(&self) -> &'t str {
        let params: &'t RunParams = self.params;
        &params.current_peer_id
    }

    // ----- the instructions -----

    fn exec(&mut self, id: InstrId) -> Exec {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.depth -= 1;
            return Err(Fault::Uncatchable(UncatchableError::TooDeep(MAX_DEPTH), id));
        }
        if self.log.is_none() {
            let result = self.exec_kind(id);
            self.depth -= 1;
            return result;
        }
        self.log_enter(id);
        let result = self.exec_kind(id);
        self.log_leave(id, &result);
        self.depth -= 1;
        result
    }

    fn trace_point(&self) -> TracePoint {
        TracePoint {
            result: self.merger.result_len(),
            prev: self.merger.prev_cursor.pos,
            current: self.merger.current_cursor.pos,
        }
    }

    fn log_enter(&mut self, instr: InstrId) {
        let iteration = self
            .folds
            .iter()
            .rfind(|f| f.body == instr)
            .and_then(|f| Some((f.index, f.elements.get(f.index)?.0.json.tree().clone())));
        let at = self.trace_point();
        if let Some(log) = &mut self.log {
            log.push(ExecEvent::Enter {
                instr,
                at,
                iteration,
            });
        }
    }

    fn log_leave(&mut self, instr: InstrId, result: &Exec) {
        let fault = match result {
            Ok(()) => None,
            Err(Fault::Catchable(e)) => Some(FaultView {
                code: e.code(),
                message: e.to_string(),
                catchable: true,
            }),
            Err(Fault::Uncatchable(e, _)) => Some(FaultView {
                code: e.code(),
                message: e.to_string(),
                catchable: false,
            }),
        };
        let (at, complete) = (self.trace_point(), self.complete);
        if let Some(log) = &mut self.log {
            log.push(ExecEvent::Leave {
                instr,
                at,
                complete,
                fault,
            });
        }
    }

    fn exec_kind(&mut self, id: InstrId) -> Exec {
        let ast = self.ast;
        match &ast.instr(id).kind {
            InstrKind::Call(_) => self.call(id, ast.call(id).expect("a call")),
            InstrKind::Canon(canon) => self.canon(id, canon),
            InstrKind::Ap(ap) => self.ap(id, &ap.arg, &ap.result),
            InstrKind::ApMap(ap) => self.ap_map(id, &ap.key, &ap.value, &ap.map),
            InstrKind::Seq(a, b) => {
                self.complete = true;
                self.exec(*a)?;
                if self.complete {
                    self.exec(*b)?;
                }
                Ok(())
            }
            InstrKind::Par(a, b) => self.par(id, *a, *b),
            InstrKind::Xor(a, b) => self.xor(*a, *b),
            InstrKind::Null => Ok(()),
            InstrKind::Never => {
                self.complete = false;
                Ok(())
            }
            InstrKind::New { var, body } => self.new_scope(id, var, *body),
            InstrKind::Fail(fail) => self.fail(id, fail),
            InstrKind::Fold(fold) => {
                if fold.is_over_stream() {
                    self.stream_fold(id, fold)
                } else {
                    self.scalar_fold(id, fold)
                }
            }
            InstrKind::Next(var) => self.next(id, var),
            InstrKind::Match(m) => self.compare(id, m, true),
            InstrKind::Mismatch(m) => self.compare(id, m, false),
        }
    }

    fn trace_error(&self, id: InstrId, detail: Conflict) -> Fault {
        Fault::Uncatchable(
            UncatchableError::Trace {
                instruction: self.ast.display(id).to_string(),
                detail,
            },
            id,
        )
    }

    fn par(&mut self, id: InstrId, left: InstrId, right: InstrId) -> Exec {
        let mut frame = self
            .merger
            .par_start()
            .map_err(|c| self.trace_error(id, c))?;
        let is_next = |i: InstrId| matches!(self.ast.instr(i).kind, InstrKind::Next(_));
        self.complete = !is_next(left);
        let left_result = self.exec(left);
        if let Err(Fault::Uncatchable(..)) = left_result {
            return left_result;
        }
        let left_complete = self.complete && left_result.is_ok();
        self.merger.par_middle(&mut frame);
        self.complete = !is_next(right);
        let right_result = self.exec(right);
        if let Err(Fault::Uncatchable(..)) = right_result {
            return right_result;
        }
        let right_complete = self.complete && right_result.is_ok();
        self.merger.par_end(frame);
        self.complete = left_complete || right_complete;
        if left_result.is_ok() || right_result.is_ok() {
            self.errors.last.open = true;
            return Ok(());
        }
        right_result
    }

    fn xor(&mut self, left: InstrId, right: InstrId) -> Exec {
        self.complete = true;
        match self.exec(left) {
            Err(Fault::Catchable(error)) => {
                self.errors.last.open = true;
                self.errors.original = Some(error);
                self.errors.current.open = true;
                self.complete = true;
                let result = self.exec(right);
                if self.errors.current.open {
                    self.errors.current = Slot::empty();
                    self.errors.original = None;
                }
                if result.is_ok() {
                    self.errors.current.open = true;
                }
                result
            }
            other => other,
        }
    }

    fn new_scope(&mut self, id: InstrId, var: &Var<'a>, body: InstrId) -> Exec {
        let span = self.ast.instr(id).span;
        match var.kind {
            VarKind::Stream | VarKind::StreamMap => {
                let streams = if var.kind == VarKind::Stream {
                    &mut self.streams
                } else {
                    &mut self.maps
                };
                streams.push_scope(var.name, span);
                let result = self.exec(body);
                let streams = if var.kind == VarKind::Stream {
                    &mut self.streams
                } else {
                    &mut self.maps
                };
                if let Some(stream) = streams.pop_scope(var.name) {
                    let renumbering = stream.renumbering();
                    self.apply_renumbering(&renumbering);
                }
                result
            }
            _ => {
                self.scopes.push_marker(var.name);
                let result = self.exec(body);
                if !self.scopes.pop_marker(var.name) && result.is_ok() {
                    return Err(Fault::Uncatchable(
                        UncatchableError::ScalarsStateCorrupted(var.name.to_owned()),
                        id,
                    ));
                }
                result
            }
        }
    }

    fn compare(&mut self, id: InstrId, m: &Match<'a>, equal_wanted: bool) -> Exec {
        let origin = self.plain_origin();
        let Some(left) = self.eval(&m.left).map_err(|e| self.raise(id, e, &origin))? else {
            return self.wait();
        };
        let Some(right) = self
            .eval(&m.right)
            .map_err(|e| self.raise(id, e, &origin))?
        else {
            return self.wait();
        };
        let equal = left.json == right.json;
        if equal == equal_wanted {
            return self.exec(m.body);
        }
        let error = if equal_wanted {
            CatchableError::MatchValuesNotEqual
        } else {
            CatchableError::MismatchValuesEqual
        };
        Err(self.raise(id, error, &origin))
    }

    fn wait(&mut self) -> Exec {
        self.complete = false;
        Ok(())
    }

    // ----- errors -----

    fn plain_origin(&self) -> ErrorOrigin<'t> {
        ErrorOrigin {
            peer_id: self.current_peer(),
            peer_in_current: false,
            tetraplet: None,
        }
    }

    fn error_object(&self, id: InstrId, error: &CatchableError, peer_id: Option<&str>) -> JValue {
        let mut obj = serde_json::Map::new();
        obj.insert("error_code".into(), error.code().into());
        obj.insert(
            "instruction".into(),
            self.ast.display(id).to_string().into(),
        );
        obj.insert("message".into(), error.to_string().into());
        if let Some(peer) = peer_id {
            obj.insert("peer_id".into(), peer.into());
        }
        JValue::Object(obj)
    }

    /// Records a catchable error raised by instruction `id` in the error slots
    /// (errors.md §3.1) and returns it as a fault.
    fn raise(&mut self, id: InstrId, error: CatchableError, origin: &ErrorOrigin) -> Fault {
        let is_match = matches!(
            error,
            CatchableError::MatchValuesNotEqual | CatchableError::MismatchValuesEqual
        );
        if self.errors.last.open && !is_match {
            self.errors.last = Slot {
                object: Rc::new(Json::from(self.error_object(
                    id,
                    &error,
                    Some(origin.peer_id),
                ))),
                tetraplet: origin.tetraplet.clone(),
                open: false,
            };
        }
        self.set_current(id, &error, origin);
        Fault::Catchable(error)
    }

    fn set_current(&mut self, id: InstrId, error: &CatchableError, origin: &ErrorOrigin) {
        if self.errors.current.open {
            let peer = origin.peer_in_current.then_some(origin.peer_id);
            self.errors.current = Slot {
                object: Rc::new(Json::from(self.error_object(id, error, peer))),
                tetraplet: origin.tetraplet.clone(),
                open: false,
            };
            self.errors.original = None;
        }
        self.errors.current.open = false;
    }

    fn fail(&mut self, id: InstrId, fail: &Fail<'a>) -> Exec {
        let origin = self.plain_origin();
        let (object, tetraplet) = match fail {
            Fail::Literal { code, message } => {
                let mut obj = serde_json::Map::new();
                obj.insert("error_code".into(), (*code).into());
                obj.insert(
                    "instruction".into(),
                    self.ast.display(id).to_string().into(),
                );
                obj.insert("message".into(), (*message).into());
                obj.insert("peer_id".into(), self.params.init_peer_id.clone().into());
                (
                    Rc::new(Json::from(JValue::Object(obj))),
                    self.literal.clone(),
                )
            }
            Fail::Var(var, lens) => {
                let value = Value::Var(*var, lens.clone());
                match self.eval(&value) {
                    Ok(Some(v)) => (v.json, v.single),
                    Ok(None) => {
                        let error = CatchableError::VariableNotFound(var.name.to_owned());
                        return Err(self.raise(id, error, &origin));
                    }
                    Err(e) => return Err(self.raise(id, e, &origin)),
                }
            }
            Fail::LastError => {
                let slot = &self.errors.last;
                (
                    slot.object.clone(),
                    slot.tetraplet
                        .clone()
                        .unwrap_or_else(|| self.literal.clone()),
                )
            }
            Fail::Error => {
                let slot = &self.errors.current;
                (
                    slot.object.clone(),
                    slot.tetraplet
                        .clone()
                        .unwrap_or_else(|| self.literal.clone()),
                )
            }
        };
        if let Err(message) = check_error_object(object.tree()) {
            return Err(self.raise(id, CatchableError::InvalidErrorObject(message), &origin));
        }
        self.errors.last = Slot {
            object: object.clone(),
            tetraplet: Some(tetraplet),
            open: false,
        };
        self.complete = false;
        if matches!(fail, Fail::Error) {
            if let Some(original) = self.errors.original.clone() {
                self.errors.current.open = false;
                return Err(Fault::Catchable(original));
            }
        }
        let error = CatchableError::User(object.text().into_owned());
        self.set_current(id, &error, &origin);
        Err(Fault::Catchable(error))
    }

    // ----- operands -----

    fn iterator(&self, name: &str) -> Option<&Val<'a>> {
        self.folds
            .iter()
            .rev()
            .find(|f| f.iterator == name)
            .map(|f| &f.elements[f.index].0)
    }

    /// The value of a scalar (an iterator first).
    fn scalar(&self, name: &str) -> Eval<Val<'a>> {
        if let Some(v) = self.iterator(name) {
            return Ok(Some(v.clone()));
        }
        match self.scopes.lookup(name) {
            Lookup::Value(Variable::Scalar(v)) => Ok(Some(v.clone())),
            Lookup::Value(_) | Lookup::Missing => Ok(None),
            Lookup::Uninitialized => Err(CatchableError::NotInitializedAfterNew(name.to_owned())),
        }
    }

    fn variable(&self, name: &str) -> Eval<Variable<'a>> {
        match self.scopes.lookup(name) {
            Lookup::Value(v) => Ok(Some(v.clone())),
            Lookup::Missing => Ok(None),
            Lookup::Uninitialized => Err(CatchableError::NotInitializedAfterNew(name.to_owned())),
        }
    }

    fn eval(&self, value: &Value<'a>) -> Eval<Evaluated<'a>> {
        let literal = |json: Json<'a>| {
            Ok(Some(
                Evaluated::one(Rc::new(json), self.literal.clone()).literal(true),
            ))
        };
        let tree = |json: JValue| literal(Json::from(json));
        match value {
            Value::InitPeerId => tree(self.params.init_peer_id.clone().into()),
            Value::Timestamp => tree(self.params.timestamp.into()),
            Value::Ttl => tree(self.params.ttl.into()),
            Value::String(s) => literal(Json::str(s)),
            Value::Int(i) => tree((*i).into()),
            Value::Float(f) => {
                tree(serde_json::Number::from_f64(*f).map_or(JValue::Null, JValue::Number))
            }
            Value::Bool(b) => tree((*b).into()),
            Value::EmptyArray => tree(JValue::Array(Vec::new())),
            Value::LastError(lens) | Value::Error(lens) => {
                let slot = if matches!(value, Value::LastError(_)) {
                    &self.errors.last
                } else {
                    &self.errors.current
                };
                let tetraplet = slot
                    .tetraplet
                    .clone()
                    .unwrap_or_else(|| self.literal.clone());
                let json = match lens {
                    None => slot.object.clone(),
                    Some(Lens::Length) => {
                        return Err(CatchableError::LengthOnNonArray(
                            slot.object.text().into_owned(),
                        ));
                    }
                    Some(Lens::Path(accessors)) => {
                        match self.apply_path(&slot.object, accessors)? {
                            Some(j) => j,
                            None => return Ok(None),
                        }
                    }
                };
                Ok(Some(Evaluated::one(json, tetraplet).literal(true)))
            }
            Value::Var(var, lens) => match var.kind {
                VarKind::Scalar => self.eval_scalar(var, lens.as_ref()),
                VarKind::Canon => match self.variable(var.name)? {
                    Some(Variable::Canon(c)) => self.eval_canon(&c, lens.as_ref()),
                    _ => Ok(None),
                },
                VarKind::CanonMap => match self.variable(var.name)? {
                    Some(Variable::CanonMap(m)) => self.eval_canon_map(&m, lens.as_ref()),
                    _ => Ok(None),
                },
                // The grammar never lets streams be read as values.
                VarKind::Stream | VarKind::StreamMap => Ok(None),
            },
        }
    }

    fn eval_scalar(&self, var: &Var<'a>, lens: Option<&Lens<'a>>) -> Eval<Evaluated<'a>> {
        let Some(v) = self.scalar(var.name)? else {
            return Ok(None);
        };
        let literal = v.literal;
        match lens {
            None => Ok(Some(Evaluated::one(v.json, v.tetraplet).literal(literal))),
            Some(Lens::Length) => match v.json.array_len() {
                Some(len) => Ok(Some(
                    Evaluated::one(
                        Rc::new(Json::from(JValue::from(len))),
                        Rc::new(Tetraplet {
                            lens: ".length".into(),
                            ..Tetraplet::default()
                        }),
                    )
                    .literal(literal),
                )),
                None => Err(CatchableError::LengthOnNonArray(v.json.text().into_owned())),
            },
            Some(l @ Lens::Path(accessors)) => {
                let Some(json) = self.apply_path(&v.json, accessors)? else {
                    return Ok(None);
                };
                let tetraplet = Tetraplet {
                    lens: format!("{}{l}", v.tetraplet.lens),
                    ..(*v.tetraplet).clone()
                };
                Ok(Some(
                    Evaluated::one(json, Rc::new(tetraplet)).literal(literal),
                ))
            }
        }
    }

    fn eval_canon(&self, c: &Rc<CanonStream<'a>>, lens: Option<&Lens<'a>>) -> Eval<Evaluated<'a>> {
        match lens {
            None => Ok(Some(Evaluated {
                json: Rc::new(c.to_json()),
                each: Some(c.elements.iter().map(|e| e.tetraplet.clone()).collect()),
                single: c.tetraplet.clone(),
                literal: false,
            })),
            Some(Lens::Length) => Ok(Some(Evaluated::one(
                Rc::new(Json::from(JValue::from(c.elements.len()))),
                Rc::new(Tetraplet {
                    peer_pk: self.current_peer().to_owned(),
                    service_id: ".length".into(),
                    ..Tetraplet::default()
                }),
            ))),
            Some(Lens::Path(accessors)) => {
                let Some(element) = self.select_element(&c.elements, &accessors[0])? else {
                    return Ok(None);
                };
                let Some(json) = self.apply_path(&element.json, &accessors[1..])? else {
                    return Ok(None);
                };
                Ok(Some(
                    Evaluated::one(json, element.tetraplet.clone()).literal(element.literal),
                ))
            }
        }
    }

    /// The first accessor of a lens on a canon stream (or on a canon map key's values):
    /// an index.
    fn select_element<'v>(
        &self,
        elements: &'v [Val<'a>],
        accessor: &Accessor<'a>,
    ) -> Eval<&'v Val<'a>> {
        let index = match accessor {
            Accessor::Index(i) => *i,
            Accessor::Field(f) => {
                return Err(CatchableError::Lens(format!(
                    "field accessor (with field name = '{f}') can't be applied to a stream"
                )));
            }
            Accessor::Var(var) => {
                let Some(v) = self.scalar(var.name)? else {
                    return Ok(None);
                };
                match v.json.tree() {
                    JValue::Number(n) => to_u32(n)?,
                    _ => {
                        return Err(CatchableError::Lens(format!(
                            "stream accessor `{}` should has number (u32) type",
                            v.json.text()
                        )));
                    }
                }
            }
        };
        elements.get(index as usize).map(Some).ok_or_else(|| {
            CatchableError::Lens(format!(
                "lambda is applied to a stream that have only '{}' elements, but '{index}' requested",
                elements.len()
            ))
        })
    }

    fn eval_canon_map(&self, m: &Rc<CanonMap<'a>>, lens: Option<&Lens<'a>>) -> Eval<Evaluated<'a>> {
        let accessors = match lens {
            None => {
                return Ok(Some(Evaluated {
                    json: Rc::new(m.to_json()),
                    each: Some(m.entries.iter().map(|e| e.tetraplet.clone()).collect()),
                    single: m.tetraplet.clone(),
                    literal: false,
                }));
            }
            Some(Lens::Length) => {
                return Ok(Some(Evaluated::one(
                    Rc::new(Json::from(JValue::from(m.entries.len()))),
                    Rc::new(Tetraplet {
                        peer_pk: self.current_peer().to_owned(),
                        lens: "length".into(),
                        ..Tetraplet::default()
                    }),
                )));
            }
            Some(Lens::Path(accessors)) => accessors,
        };
        let Some(key) = self.map_key_accessor(&accessors[0])? else {
            return Ok(None);
        };
        let values = m.values_of(&key);
        let whole_lens = Tetraplet {
            lens: lens.map(ToString::to_string).unwrap_or_default(),
            ..(*m.tetraplet).clone()
        };
        if values.is_empty() || accessors.len() == 1 {
            let json = Json::array(values.iter().map(|v| v.json.clone()).collect());
            return Ok(Some(Evaluated::one(Rc::new(json), Rc::new(whole_lens))));
        }
        let Some(element) = self.select_element(&values, &accessors[1])? else {
            return Ok(None);
        };
        let rest = &accessors[2..];
        let Some(json) = self.apply_path(&element.json, rest)? else {
            return Ok(None);
        };
        let mut tetraplet = (*element.tetraplet).clone();
        for accessor in rest {
            tetraplet.lens.push('.');
            match accessor {
                Accessor::Index(i) => tetraplet.lens.push_str(&format!("[{i}]")),
                Accessor::Var(v) => tetraplet.lens.push_str(&format!("[{}]", v.name)),
                Accessor::Field(f) => tetraplet.lens.push_str(f),
            }
        }
        Ok(Some(
            Evaluated::one(json, Rc::new(tetraplet)).literal(element.literal),
        ))
    }

    fn map_key_accessor(&self, accessor: &Accessor<'a>) -> Eval<MapKey> {
        Ok(Some(match accessor {
            Accessor::Field(f) => MapKey::Str((*f).to_owned()),
            Accessor::Index(i) => MapKey::Int(i128::from(*i)),
            Accessor::Var(var) => {
                if self.iterator(var.name).is_some() {
                    return Err(CatchableError::Lens(
                        "canon stream map accessor must not be iterable".into(),
                    ));
                }
                let Some(v) = self.scalar(var.name)? else {
                    return Ok(None);
                };
                match MapKey::of(&v.json) {
                    Some(k) => k,
                    None => {
                        return Err(CatchableError::Lens(format!(
                            "canon stream map accessor `{}` should be either string or number",
                            v.json.text()
                        )));
                    }
                }
            }
        }))
    }

    /// Applies path accessors to a scalar value (errors.md §1.2.1).
    fn apply_path(&self, root: &Rc<Json<'a>>, accessors: &[Accessor<'a>]) -> Eval<Rc<Json<'a>>> {
        let mut current = root.clone();
        for accessor in accessors {
            let field_of_var;
            let (access, step) = match accessor {
                Accessor::Index(i) => (current.index(*i as usize), Step::Index(*i)),
                Accessor::Field(f) => (current.field(f), Step::Field(f)),
                Accessor::Var(var) => {
                    let Some(v) = self.scalar(var.name)? else {
                        return Ok(None);
                    };
                    match v.json.tree() {
                        JValue::String(f) => {
                            field_of_var = f.clone();
                            (current.field(&field_of_var), Step::Field(&field_of_var))
                        }
                        JValue::Number(n) => {
                            let i = to_u32(n)?;
                            (current.index(i as usize), Step::Index(i))
                        }
                        _ => {
                            return Err(CatchableError::Lens(format!(
                                "scalar accessor `{}` should has number or string type",
                                v.json.text()
                            )));
                        }
                    }
                }
            };
            current = match (access, step) {
                (Access::Found(next), _) => next,
                (Access::Missing, Step::Index(i)) => {
                    return Err(CatchableError::Lens(format!(
                        "value '{}' does not contain element for idx = '{i}'",
                        current.text()
                    )));
                }
                (Access::WrongType, Step::Index(i)) => {
                    return Err(CatchableError::Lens(format!(
                        "value '{}' is not an array-type to match array accessor with idx = '{i}'",
                        current.text()
                    )));
                }
                (Access::Missing, Step::Field(f)) => {
                    return Err(CatchableError::Lens(format!(
                        "value '{}' does not contain element with field name = '{f}'",
                        current.text()
                    )));
                }
                (Access::WrongType, Step::Field(f)) => {
                    return Err(CatchableError::Lens(format!(
                        "value '{}' is not an map-type to match field accessor with field_name = '{f}'",
                        current.text()
                    )));
                }
            };
        }
        Ok(Some(current))
    }

    /// A call's peer, service or function: must be a string.
    fn triplet_part(&self, value: &Value<'a>) -> Eval<Cow<'a, str>> {
        // A literal is its own text: no value to make.
        if let Value::String(s) = value {
            return Ok(Some(Cow::Borrowed(s)));
        }
        let Some(v) = self.eval(value)? else {
            return Ok(None);
        };
        match v.json.as_str() {
            Some(s) => Ok(Some(Cow::Owned(s.to_owned()))),
            None => {
                let name = value
                    .var()
                    .map_or_else(|| value.to_string(), |v| v.name.to_owned());
                Err(CatchableError::NonStringTriplet {
                    name,
                    value: v.json.text().into_owned(),
                })
            }
        }
    }

    // ----- call -----

    fn call(&mut self, id: InstrId, call: &Call<'a>) -> Exec {
        let plain = ErrorOrigin {
            peer_in_current: true,
            ..self.plain_origin()
        };
        let mut parts = [Cow::Borrowed(""), Cow::Borrowed(""), Cow::Borrowed("")];
        for (slot, part) in parts
            .iter_mut()
            .zip([&call.peer, &call.service, &call.function])
        {
            match self.triplet_part(part) {
                Ok(Some(s)) => *slot = s,
                Ok(None) => return self.wait(),
                Err(e) => return Err(self.raise(id, e, &plain)),
            }
        }
        let [peer, service_id, function_name] = parts;
        if let Some(out) = &call.output {
            if out.kind == VarKind::Scalar {
                if self.iterator(out.name).is_some() {
                    return Err(Fault::Uncatchable(
                        UncatchableError::IterableShadowing(out.name.to_owned()),
                        id,
                    ));
                }
                if self.scopes.would_shadow(out.name) {
                    return Err(Fault::Uncatchable(
                        UncatchableError::ShadowingNotAllowed(out.name.to_owned()),
                        id,
                    ));
                }
            }
        }
        let tetraplet = Rc::new(Tetraplet {
            peer_pk: peer.clone().into_owned(),
            service_id: service_id.into_owned(),
            function_name: function_name.into_owned(),
            lens: String::new(),
        });
        let origin = ErrorOrigin {
            peer_id: &peer,
            peer_in_current: true,
            tetraplet: Some(tetraplet.clone()),
        };
        let args = match self.eval_args(&call.args) {
            Ok(args) => args,
            Err(e) => return Err(self.raise(id, e, &origin)),
        };
        let merged = self.merger.call().map_err(|c| self.trace_error(id, c))?;
        let current_peer = self.current_peer();
        let mut consumed_state = None;
        if let Some(m) = merged {
            let origin_positions = Origin {
                prev: m.prev_pos,
                current: m.current_pos,
            };
            match m.state {
                CallState::Executed { result, output } => {
                    self.check_recorded(id, &result, args.as_ref(), &tetraplet, Some(output))?;
                    return self.replay_executed(
                        id,
                        call,
                        result,
                        output,
                        m.source,
                        origin_positions,
                    );
                }
                CallState::Failed(result) => {
                    self.check_recorded(id, &result, args.as_ref(), &tetraplet, None)?;
                    let (ret_code, message) =
                        failed_parts(result.value.tree()).ok_or_else(|| {
                            Fault::Uncatchable(
                                UncatchableError::MalformedFailedResult(
                                    result.value.text().into_owned(),
                                ),
                                id,
                            )
                        })?;
                    self.merger
                        .push_with_origin(State::Call(CallState::Failed(result)), origin_positions);
                    self.complete = false;
                    return Err(self.raise(
                        id,
                        CatchableError::LocalService { ret_code, message },
                        &origin,
                    ));
                }
                CallState::Sent {
                    peer: sender,
                    request: Some(request),
                } if *sender == *current_peer => {
                    if let Some(answer) = self.results.get(&request) {
                        self.consumed.insert(request);
                        let Some((args_json, _)) = &args else {
                            return Err(self.trace_error(
                                id,
                                "a result arrived for a call whose arguments are not known here"
                                    .into(),
                            ));
                        };
                        let hash = argument_hash(args_json);
                        return self.process_result(
                            id,
                            call,
                            answer.ret_code,
                            &answer.result,
                            hash,
                            tetraplet,
                            &origin,
                        );
                    }
                    self.merger.push(State::Call(CallState::Sent {
                        peer: sender,
                        request: Some(request),
                    }));
                    self.complete = false;
                    return Ok(());
                }
                state @ CallState::Sent { .. } => {
                    if peer != current_peer {
                        self.merger.push(State::Call(state));
                        self.complete = false;
                        return Ok(());
                    }
                    consumed_state = Some(state);
                }
            }
        }
        if peer != current_peer {
            self.next_peers.insert(peer.into_owned());
            self.merger.push(State::Call(CallState::Sent {
                peer: Rc::from(current_peer),
                request: None,
            }));
            self.complete = false;
            return Ok(());
        }
        let Some((arguments, tetraplets)) = args else {
            if let Some(state) = consumed_state {
                self.merger.push(State::Call(state));
            }
            self.complete = false;
            return Ok(());
        };
        // The request's size is known before its tetraplets are copied: over the
        // host's limit, the invocation fails before it takes the memory. Unbounded (the
        // reference's maxima), nothing is counted.
        let limit = self.params.limits.call_requests_size;
        if limit != u64::MAX {
            let tetraplet_bytes: usize = tetraplets
                .iter()
                .map(|(each, single)| match each {
                    Some(each) => each.iter().map(|t| t.text_bytes()).sum(),
                    None => single.text_bytes(),
                })
                .sum();
            let bytes = (tetraplet.service_id.len()
                + tetraplet.function_name.len()
                + arguments.len()
                + tetraplet_bytes) as u64;
            if bytes > limit.saturating_sub(self.requests_size) {
                return Err(Fault::Uncatchable(
                    UncatchableError::CallRequestsSize { limit },
                    id,
                ));
            }
            self.requests_size += bytes;
        }
        self.last_call_id += 1;
        let request = self.last_call_id;
        self.requests.push(CallRequest {
            id: request,
            service_id: tetraplet.service_id.clone(),
            function_name: tetraplet.function_name.clone(),
            arguments,
            tetraplets: tetraplets
                .into_iter()
                .map(|(each, single)| match each {
                    Some(each) => each.iter().map(|t| (**t).clone()).collect(),
                    None => vec![(*single).clone()],
                })
                .collect(),
        });
        self.merger.push(State::Call(CallState::Sent {
            peer: Rc::from(current_peer),
            request: Some(request),
        }));
        self.complete = false;
        Ok(())
    }

    /// Evaluates call arguments left to right: the first that fails decides
    /// (execution-model.md §5.1 step 3): `Ok(None)` when it is a missing variable, even
    /// if a later argument would raise an error.
    fn eval_args(&self, args: &[Value<'a>]) -> Eval<Arguments> {
        let mut values = Vec::with_capacity(args.len());
        let mut tetraplets = Vec::with_capacity(args.len());
        for arg in args {
            let Some(v) = self.eval(arg)? else {
                return Ok(None);
            };
            values.push(v.json);
            tetraplets.push((v.each, v.single));
        }
        let mut text = Vec::new();
        Json::array(values).write(&mut text);
        // The request holds what the text takes, not the capacity grown to write it.
        text.shrink_to_fit();
        // Only JSON text was written.
        Ok(Some((
            String::from_utf8(text).unwrap_or_default(),
            tetraplets,
        )))
    }

    /// A replayed call must have been made with the arguments and triplet the script
    /// computes now (20017) and written where this call writes (20006). `output` is
    /// `None` for a recorded failure, which has no output to check.
    fn check_recorded(
        &self,
        id: InstrId,
        result: &ServiceResult<'a>,
        args: Option<&Arguments>,
        tetraplet: &Tetraplet,
        output: Option<Output>,
    ) -> Result<(), Fault> {
        if let Some(output) = output {
            let call_output = self.ast.call(id).and_then(|c| c.output.map(|o| o.kind));
            let matches_kind = match output {
                Output::Scalar => call_output == Some(VarKind::Scalar),
                Output::Stream { .. } => call_output == Some(VarKind::Stream),
                Output::Unused => call_output.is_none(),
            };
            if !matches_kind {
                return Err(Fault::Uncatchable(
                    UncatchableError::CallResultKindMismatch(result.value.text().into_owned()),
                    id,
                ));
            }
            if output == Output::Unused {
                // An unused result records only its value.
                return Ok(());
            }
        }
        let Some((args_json, _)) = args else {
            return Err(Fault::Uncatchable(
                UncatchableError::ParametersMismatch {
                    param: "call argument_hash",
                    expected: hex(&result.argument_hash),
                    got: "arguments that cannot be evaluated here".into(),
                },
                id,
            ));
        };
        let hash = argument_hash(args_json);
        if hash != result.argument_hash {
            return Err(Fault::Uncatchable(
                UncatchableError::ParametersMismatch {
                    param: "call argument_hash",
                    expected: hex(&result.argument_hash),
                    got: hex(&hash),
                },
                id,
            ));
        }
        if *result.tetraplet != *tetraplet {
            return Err(Fault::Uncatchable(
                UncatchableError::ParametersMismatch {
                    param: "call tetraplet",
                    expected: format!("{:?}", result.tetraplet),
                    got: format!("{tetraplet:?}"),
                },
                id,
            ));
        }
        Ok(())
    }

    fn replay_executed(
        &mut self,
        id: InstrId,
        call: &Call<'a>,
        result: Rc<ServiceResult<'a>>,
        output: Output,
        source: Source,
        origin: Origin,
    ) -> Exec {
        let pos = self.merger.push_with_origin(
            State::Call(CallState::Executed {
                result: result.clone(),
                output,
            }),
            origin,
        );
        let val = Val::new(result.value.clone(), result.tetraplet.clone());
        match (call.output, output) {
            (Some(out), Output::Scalar) => self.assign_scalar(id, out.name, Variable::Scalar(val)),
            (Some(out), Output::Stream { generation }) => self.append_stream(
                id,
                &out,
                val,
                pos,
                Some(Generation::recorded(source, generation)),
            ),
            _ => Ok(()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn process_result(
        &mut self,
        id: InstrId,
        call: &Call<'a>,
        ret_code: i32,
        text: &'a str,
        argument_hash: [u8; 32],
        tetraplet: Rc<Tetraplet>,
        origin: &ErrorOrigin,
    ) -> Exec {
        let failure = |this: &mut Self, ret_code: i32, message: String| {
            let value = serde_json::json!({"ret_code": ret_code, "message": message});
            let result = Rc::new(ServiceResult::new(
                Rc::new(Json::from(value)),
                argument_hash,
                tetraplet.clone(),
            ));
            this.merger.push(State::Call(CallState::Failed(result)));
            Err(this.raise(
                id,
                CatchableError::LocalService { ret_code, message },
                origin,
            ))
        };
        if ret_code != 0 {
            return failure(self, ret_code, text.to_owned());
        }
        let json = match Json::parse_result(text) {
            Ok(j) => j,
            Err(e) => {
                let message = format!(
                    "call_service result 'ret_code: 0, result: '{text}'' can't be serialized or deserialized with an error: {e}"
                );
                return failure(self, i32::MAX, message);
            }
        };
        let result = Rc::new(ServiceResult::new(
            Rc::new(json),
            argument_hash,
            tetraplet.clone(),
        ));
        let val = Val::new(result.value.clone(), tetraplet);
        match call.output {
            Some(out) if out.kind == VarKind::Scalar => {
                self.merger.push(State::Call(CallState::Executed {
                    result,
                    output: Output::Scalar,
                }));
                self.assign_scalar(id, out.name, Variable::Scalar(val))
            }
            Some(out) => {
                let pos = self.merger.push(State::Call(CallState::Executed {
                    result,
                    output: Output::Stream { generation: 0 },
                }));
                self.append_stream(id, &out, val, pos, None)
            }
            None => {
                self.merger.push(State::Call(CallState::Executed {
                    result,
                    output: Output::Unused,
                }));
                Ok(())
            }
        }
    }

    fn assign_scalar(&mut self, id: InstrId, name: &str, value: Variable<'a>) -> Exec {
        self.scopes
            .assign(name, value)
            .map_err(|AssignError::Shadowing| {
                Fault::Uncatchable(UncatchableError::ShadowingNotAllowed(name.to_owned()), id)
            })
    }

    fn append_stream(
        &mut self,
        id: InstrId,
        var: &Var<'a>,
        val: Val<'a>,
        trace_pos: u32,
        generation: Option<Generation>,
    ) -> Exec {
        let streams = if var.kind == VarKind::StreamMap {
            &mut self.maps
        } else {
            &mut self.streams
        };
        streams
            .get_or_create(var.name, var.pos)
            .append(StreamValue { val, trace_pos }, generation)
            .map_err(|_| Fault::Uncatchable(UncatchableError::StreamSizeLimit, id))
    }

    // ----- ap -----

    fn ap(&mut self, id: InstrId, arg: &Value<'a>, result: &Var<'a>) -> Exec {
        let origin = self.plain_origin();
        let value = match self.eval(arg) {
            Ok(Some(v)) => v,
            Ok(None) => return self.wait(),
            Err(e) => return Err(self.raise(id, e, &origin)),
        };
        let (tetraplet, literal) = self.stored_origin(arg, &value);
        let val = Val {
            json: value.json,
            tetraplet,
            literal,
        };
        if result.kind == VarKind::Scalar {
            if self.iterator(result.name).is_some() {
                return Err(Fault::Uncatchable(
                    UncatchableError::ApToIterator(result.name.to_owned()),
                    id,
                ));
            }
            return self.assign_scalar(id, result.name, Variable::Scalar(val));
        }
        self.append_ap(id, result, val)
    }

    /// The tetraplet of the value `ap` stores, from the value's provenance
    /// (execution-model.md §7.2, last paragraph): a service result keeps the operand's
    /// tetraplet; a canon-map lens keeps the map's canon provenance (service and
    /// function cleared); a literal, error object or `.length` result is stored as a
    /// literal with a tetraplet of its own (verified with the oracle).
    fn stored_origin(&self, operand: &Value<'a>, value: &Evaluated<'a>) -> (Rc<Tetraplet>, bool) {
        let tetraplet = |peer_pk: &str, service_id: &str, lens: &str| {
            Rc::new(Tetraplet {
                peer_pk: peer_pk.to_owned(),
                service_id: service_id.to_owned(),
                function_name: String::new(),
                lens: lens.to_owned(),
            })
        };
        match operand {
            Value::LastError(_) | Value::Error(_) => {
                (tetraplet(&value.single.peer_pk, "", ""), true)
            }
            Value::Var(var, Some(Lens::Length)) => match var.kind {
                VarKind::Scalar if value.literal => (tetraplet("", "", ""), true),
                VarKind::Scalar => (tetraplet("", "", ".length"), true),
                VarKind::Canon => (tetraplet(self.current_peer(), "", ""), true),
                _ => (value.single.clone(), true),
            },
            Value::Var(var, Some(Lens::Path(_))) if var.kind == VarKind::CanonMap => (
                tetraplet(&value.single.peer_pk, "", &value.single.lens),
                false,
            ),
            _ if value.literal => (tetraplet(&value.single.peer_pk, "", ""), true),
            _ => (value.single.clone(), false),
        }
    }

    fn append_ap(&mut self, id: InstrId, target: &Var<'a>, val: Val<'a>) -> Exec {
        let merged = self.merger.ap().map_err(|c| self.trace_error(id, c))?;
        let (generation, origin) = match merged {
            Some(m) => (
                Some(Generation::recorded(m.source, m.state)),
                Origin {
                    prev: m.prev_pos,
                    current: m.current_pos,
                },
            ),
            None => (None, Origin::default()),
        };
        let pos = self
            .merger
            .push_with_origin(State::Ap { generation: 0 }, origin);
        self.append_stream(id, target, val, pos, generation)
    }

    fn ap_map(
        &mut self,
        id: InstrId,
        key: &Value<'a>,
        value_operand: &Value<'a>,
        map: &Var<'a>,
    ) -> Exec {
        let origin = self.plain_origin();
        let value = match self.eval(value_operand) {
            Ok(Some(v)) => v,
            Ok(None) => return self.wait(),
            Err(e) => return Err(self.raise(id, e, &origin)),
        };
        let key = match self.eval(key) {
            Ok(Some(k)) => k,
            Ok(None) => {
                // The reference consumes the ap's state and loses it when the key waits.
                self.merger.ap().map_err(|c| self.trace_error(id, c))?;
                return self.wait();
            }
            Err(e) => return Err(self.raise(id, e, &origin)),
        };
        let key_json = key.json;
        if !MapKey::valid(&key_json) {
            return Err(self.raise(
                id,
                CatchableError::StreamMapKey(map.name.to_owned()),
                &origin,
            ));
        };
        let (tetraplet, literal) = self.stored_origin(value_operand, &value);
        let val = Val {
            // A valid key's text is its `MapKey`'s.
            json: Rc::new(Json::entry(key_json, value.json)),
            tetraplet,
            literal,
        };
        self.append_ap(id, map, val)
    }

    // ----- canon -----

    fn canon(&mut self, id: InstrId, canon: &Canon<'a>) -> Exec {
        let origin = ErrorOrigin {
            peer_in_current: true,
            ..self.plain_origin()
        };
        let state = self.merger.canon().map_err(|c| self.trace_error(id, c))?;
        let peer = match self.triplet_part(&canon.peer) {
            Ok(Some(p)) => p,
            Ok(None) if state.is_none() => return self.wait(),
            Ok(None) => {
                let name = canon
                    .peer
                    .var()
                    .map_or_else(|| canon.peer.to_string(), |v| v.name.to_owned());
                return Err(self.raise(id, CatchableError::VariableNotFound(name), &origin));
            }
            Err(e) => return Err(self.raise(id, e, &origin)),
        };
        let current_peer = self.current_peer();
        match state {
            Some(CanonState::Executed(result)) => {
                let expected = peer_tetraplet(&peer);
                if *result.tetraplet != expected {
                    return Err(Fault::Uncatchable(
                        UncatchableError::ParametersMismatch {
                            param: "canon tetraplet",
                            expected: format!("{:?}", result.tetraplet),
                            got: format!("{expected:?}"),
                        },
                        id,
                    ));
                }
                self.merger
                    .push(State::Canon(CanonState::Executed(result.clone())));
                self.set_canon_target(id, canon, &result)
            }
            Some(state @ CanonState::Sent { .. }) if peer != current_peer => {
                self.merger.push(State::Canon(state));
                self.complete = false;
                Ok(())
            }
            None if peer != current_peer => {
                self.next_peers.insert(peer.into_owned());
                self.merger.push(State::Canon(CanonState::Sent {
                    peer: Rc::from(current_peer),
                }));
                self.complete = false;
                Ok(())
            }
            _ => {
                let result = Rc::new(self.canonicalize(id, canon, &peer)?);
                self.merger
                    .push(State::Canon(CanonState::Executed(result.clone())));
                self.set_canon_target(id, canon, &result)
            }
        }
    }

    fn canonicalize(
        &self,
        id: InstrId,
        canon: &Canon<'a>,
        peer: &str,
    ) -> Result<CanonResult<'a>, Fault> {
        let tetraplet = Rc::new(peer_tetraplet(peer));
        let streams = if canon.source.kind == VarKind::StreamMap {
            &self.maps
        } else {
            &self.streams
        };
        let values: Vec<Val<'a>> = streams
            .get(canon.source.name, canon.source.pos)
            .map(|s| s.values().map(|v| v.val.clone()).collect())
            .unwrap_or_default();
        if canon.target.kind != VarKind::Scalar {
            return Ok(CanonResult::new(tetraplet, values));
        }
        // A map into a scalar: one object, the first value of each key's string form.
        let mut obj = BTreeMap::new();
        for entry in &values {
            let key = match entry.json.field("key") {
                Access::Found(key) => MapKey::of(&key),
                Access::Missing | Access::WrongType => None,
            }
            .ok_or(Fault::Uncatchable(
                UncatchableError::StreamMapKey("unsupported kvpair object or map key type"),
                id,
            ))?;
            obj.entry(key.string_form())
                .or_insert_with(|| CanonMap::value_of(entry));
        }
        Ok(CanonResult::new(
            tetraplet.clone(),
            vec![Val::new(Json::object(obj), tetraplet)],
        ))
    }

    fn set_canon_target(
        &mut self,
        id: InstrId,
        canon: &Canon<'a>,
        result: &CanonResult<'a>,
    ) -> Exec {
        let variable = match canon.target.kind {
            VarKind::Canon => Variable::Canon(Rc::new(CanonStream {
                tetraplet: result.tetraplet.clone(),
                elements: result.elements.clone(),
            })),
            VarKind::CanonMap => Variable::CanonMap(Rc::new(
                CanonMap::new(result.tetraplet.clone(), result.elements.clone())
                    .map_err(|e| Fault::Uncatchable(UncatchableError::StreamMapKey(e), id))?,
            )),
            _ => {
                let element = result
                    .elements
                    .first()
                    .ok_or(Fault::Uncatchable(UncatchableError::CanonMapToScalar, id))?;
                Variable::Scalar(Val::new(element.json.clone(), result.tetraplet.clone()))
            }
        };
        self.assign_scalar(id, canon.target.name, variable)
    }

    // ----- folds -----

    /// The elements a fold over a scalar, canon or canon map visits.
    fn fold_elements(&mut self, fold: &Fold<'a>) -> Eval<Vec<Val<'a>>> {
        let not_array =
            |expression: String, value: &Json<'a>| CatchableError::FoldIteratesOverNonArray {
                expression,
                value: value.text().into_owned(),
            };
        match &fold.iterable {
            Value::EmptyArray => Ok(Some(Vec::new())),
            Value::Var(var, lens) if var.kind == VarKind::Scalar => {
                let Some(v) = self.eval_scalar(var, lens.as_ref())? else {
                    return Ok(None);
                };
                // Without a lens the value and tetraplet are the variable's own.
                let address = (
                    Rc::as_ptr(&v.json) as usize,
                    Rc::as_ptr(&v.single) as usize,
                    v.literal,
                );
                let key = lens.is_none().then_some(address);
                if let Some(Some(Some(folded))) = key.map(|k| self.folded_arrays.get(&k)) {
                    return Ok(Some(folded.elements.clone()));
                }
                let Some(items) = v.json.items() else {
                    let expression = lens
                        .as_ref()
                        .map_or_else(|| var.name.to_owned(), ToString::to_string);
                    return Err(not_array(expression, &v.json));
                };
                let elements = array_elements(items, &v);
                if let Some(key) = key {
                    match self.folded_arrays.entry(key) {
                        Entry::Vacant(first) => {
                            first.insert(None);
                        }
                        Entry::Occupied(mut second) => {
                            second.insert(Some(FoldedArray {
                                elements: elements.clone(),
                                _array: (v.json, v.single),
                            }));
                        }
                    }
                }
                Ok(Some(elements))
            }
            Value::Var(var, None) if var.kind == VarKind::Canon => match self.variable(var.name)? {
                Some(Variable::Canon(c)) => Ok(Some(c.elements.clone())),
                _ => Ok(None),
            },
            Value::Var(var, lens) if var.kind == VarKind::CanonMap => {
                let Some(Variable::CanonMap(m)) = self.variable(var.name)? else {
                    return Ok(None);
                };
                match lens {
                    None => {
                        // One element per key: its last entry, ordered by that entry's position.
                        let mut lasts: Vec<usize> = m
                            .index
                            .values()
                            .filter_map(|positions| positions.last().copied())
                            .collect();
                        lasts.sort_unstable();
                        Ok(Some(
                            lasts.into_iter().map(|i| m.entries[i].clone()).collect(),
                        ))
                    }
                    Some(lens) => {
                        let Some(v) = self.eval_canon_map(&m, Some(lens))? else {
                            return Ok(None);
                        };
                        let Some(items) = v.json.items() else {
                            return Err(not_array(lens.to_string(), &v.json));
                        };
                        Ok(Some(array_elements(items, &v)))
                    }
                }
            }
            _ => Ok(None),
        }
    }

    fn scalar_fold(&mut self, id: InstrId, fold: &Fold<'a>) -> Exec {
        let origin = self.plain_origin();
        let elements = match self.fold_elements(fold) {
            Ok(Some(e)) => e,
            Ok(None) => return self.wait(),
            Err(e) => return Err(self.raise(id, e, &origin)),
        };
        if elements.is_empty() {
            return Ok(());
        }
        self.check_iterator_free(id, fold)?;
        let frame = self.scopes.enter_fold();
        self.folds.push(ActiveFold {
            iterator: fold.iterator.name,
            elements: elements.into_iter().map(|v| (v, 0)).collect(),
            index: 0,
            body: fold.body,
            last: fold.last,
            frame,
            kind: FoldKind::Scalar,
        });
        let result = self.exec(fold.body);
        self.folds.pop();
        self.scopes.leave(None);
        result
    }

    fn check_iterator_free(&self, id: InstrId, fold: &Fold<'a>) -> Exec {
        if self.iterator(fold.iterator.name).is_some() {
            return Err(Fault::Uncatchable(
                UncatchableError::MultipleIterableValues(fold.iterator.name.to_owned()),
                id,
            ));
        }
        Ok(())
    }

    fn next(&mut self, id: InstrId, var: &Var<'a>) -> Exec {
        let Some(at) = self.folds.iter().rposition(|f| f.iterator == var.name) else {
            return Err(Fault::Uncatchable(
                UncatchableError::FoldStateNotFound(var.name.to_owned()),
                id,
            ));
        };
        let fold = &self.folds[at];
        let is_stream = matches!(fold.kind, FoldKind::Stream(_));
        if is_stream {
            let index = fold.index;
            let now = self.merger.result_len();
            self.with_stream_fold(at, |s| {
                if let Some(r) = &mut s.records[index] {
                    if r.before_len.is_none() {
                        r.before_len = Some(now - r.before_begin);
                    }
                }
            });
        }
        let fold = &self.folds[at];
        if fold.index + 1 < fold.elements.len() {
            let running = fold.frame;
            let body = fold.body;
            let index = fold.index + 1;
            self.folds[at].index = index;
            if is_stream {
                self.start_iteration(id, at, index)?;
            }
            let frame = self.scopes.enter_next(running);
            self.folds[at].frame = frame;
            let result = self.exec(body);
            self.scopes.leave(Some(running));
            self.folds[at].frame = running;
            // The iterator goes back to the previous element only when the nested
            // iteration succeeded: after an error the rest of the previous iteration
            // (the other branch of a `par`, the right branch of an `xor`) still sees the
            // element that failed, while its own scalars are visible again (verified
            // with the oracle; fixtures/scenarios/fold/next_error_*).
            if result.is_ok() {
                self.folds[at].index = index - 1;
            }
            if is_stream {
                let now = self.merger.result_len();
                self.with_stream_fold(at, |s| {
                    if let Some(r) = &mut s.records[index] {
                        close_record(r, now);
                    }
                });
                self.open_after(id, at, index - 1)?;
            }
            return result;
        }
        if is_stream {
            let index = fold.index;
            self.open_after(id, at, index)?;
        }
        match self.folds[at].last {
            Some(last) => {
                self.complete = true;
                self.exec(last)
            }
            None => {
                if is_stream {
                    self.complete = false;
                }
                Ok(())
            }
        }
    }

    fn with_stream_fold<R>(
        &mut self,
        at: usize,
        f: impl FnOnce(&mut StreamFold) -> R,
    ) -> Option<R> {
        match &mut self.folds[at].kind {
            FoldKind::Stream(s) => Some(f(s)),
            FoldKind::Scalar => None,
        }
    }

    /// An iteration of a stream fold starts: find its recorded iterations on each side
    /// and point the cursors at their `before` parts.
    fn start_iteration(&mut self, id: InstrId, at: usize, index: usize) -> Exec {
        let value_pos = self.folds[at].elements[index].1;
        let origin = self
            .merger
            .origins
            .get(value_pos as usize)
            .copied()
            .unwrap_or_default();
        let now = self.merger.result_len();
        let mut taken = [None, None];
        if let FoldKind::Stream(s) = &mut self.folds[at].kind {
            for (side, pos) in [origin.prev, origin.current].into_iter().enumerate() {
                taken[side] = pos.and_then(|p| s.lores[side].remove(&p));
            }
            s.taken[index] = taken;
            s.records[index] = Some(RecordBuild {
                value_pos,
                before_begin: now,
                before_len: None,
                after_begin: None,
                after_len: None,
            });
        }
        self.point_cursors(id, taken.map(|t| t.map(|(before, _)| before)))
    }

    /// The iteration `index` continues after its `next`: its `after` part.
    fn open_after(&mut self, id: InstrId, at: usize, index: usize) -> Exec {
        let now = self.merger.result_len();
        let taken = self
            .with_stream_fold(at, |s| {
                if let Some(r) = &mut s.records[index] {
                    if r.before_len.is_none() {
                        r.before_len = Some(now - r.before_begin);
                    }
                    r.after_begin = Some(now);
                    r.after_len = None;
                }
                s.taken[index]
            })
            .unwrap_or_default();
        self.point_cursors(id, taken.map(|t| t.map(|(_, after)| after)))
    }

    /// Points each side's cursor at its recorded part of an iteration; a side without
    /// a record reads nothing (the iteration is new to it).
    fn point_cursors(&mut self, id: InstrId, parts: [Option<Subtrace>; 2]) -> Exec {
        for (part, source) in parts.into_iter().zip([Source::Prev, Source::Current]) {
            match part {
                Some(sub) => self
                    .merger
                    .set_cursor(source, sub)
                    .map_err(|c| self.trace_error(id, c))?,
                None => self.merger.cursor_mut(source).remaining = 0,
            }
        }
        Ok(())
    }

    fn stream_fold(&mut self, id: InstrId, fold: &Fold<'a>) -> Exec {
        let Value::Var(var, _) = &fold.iterable else {
            return Ok(());
        };
        let is_map = var.kind == VarKind::StreamMap;
        let exists = if is_map { &self.maps } else { &self.streams }
            .get(var.name, var.pos)
            .is_some();
        if !exists {
            return self.wait();
        }
        let sides = self.merger.fold().map_err(|c| self.trace_error(id, c))?;
        let mut lores = [BTreeMap::new(), BTreeMap::new()];
        let mut finals = [Cursor::default(); 2];
        for (side, source) in [Source::Prev, Source::Current].into_iter().enumerate() {
            let (lore, total) = match &sides[side] {
                Some((_, records)) => resolve_lore(self.merger.trace(source), records)
                    .map_err(|c| self.trace_error(id, c))?,
                None => (BTreeMap::new(), 0),
            };
            let cursor = *self.merger.cursor_mut(source);
            if total > cursor.remaining {
                return Err(self.trace_error(
                    id,
                    format!(
                        "fold of {total} states exceeds the {} states left",
                        cursor.remaining
                    ),
                ));
            }
            finals[side] = Cursor {
                pos: cursor.pos + total,
                remaining: cursor.remaining - total,
            };
            lores[side] = lore;
        }
        let slot = self.merger.push(State::Fold(Vec::new())) as usize;
        self.check_iterator_free(id, fold)?;
        // The fold runs in rounds (streams-canon-maps.md §2.4). It first opens a new
        // generation, even if the last one is still empty, for what gets appended while
        // it runs. Each round takes the generations it has not seen yet (`Stream::round`,
        // `Seen`) and runs one pass per generation; after the round another generation is
        // opened if the last one was written meanwhile. The fold ends when a round takes
        // nothing. As in the reference, empty generations (left by other folds over the
        // stream, or holes in recorded numbers) make later rounds skip values.
        let mut seen = Seen::default();
        let mut lore: Vec<IterationRecord> = Vec::new();
        let mut complete_any = false;
        let mut outcome = Ok(());
        let mut state = Some(Box::new(StreamFold {
            lores,
            taken: Vec::new(),
            records: Vec::new(),
        }));
        self.fold_stream_mut(var).open_generation();
        'rounds: loop {
            let round = self.fold_stream_mut(var).round(&mut seen);
            if round.is_empty() {
                break;
            }
            for values in round {
                // A pass ended by a swallowed catchable error counts with the flag as
                // it stood at the error (execution-model.md §5.13 step 4).
                match self.stream_pass(id, fold, values, &mut state, &mut lore) {
                    Ok(()) | Err(Fault::Catchable(_)) => complete_any |= self.complete,
                    Err(fault @ Fault::Uncatchable(..)) => {
                        outcome = Err(fault);
                        break 'rounds;
                    }
                }
            }
            self.fold_stream_mut(var).open_generation_if_used();
        }
        self.merger.result[slot] = State::Fold(lore);
        self.merger.prev_cursor = finals[0];
        self.merger.current_cursor = finals[1];
        self.complete = complete_any;
        outcome
    }

    /// The stream (or stream map) a fold iterates, created if needed.
    fn fold_stream_mut(&mut self, var: &Var<'a>) -> &mut Stream<'a> {
        let streams = if var.kind == VarKind::StreamMap {
            &mut self.maps
        } else {
            &mut self.streams
        };
        streams.get_or_create(var.name, var.pos)
    }

    /// One pass of a stream fold: a scalar-like fold over the values of one generation,
    /// whose iteration records are appended to `lore`. Returns the body's result; the
    /// completeness flag tells whether the pass completed.
    fn stream_pass(
        &mut self,
        id: InstrId,
        fold: &Fold<'a>,
        values: Vec<StreamValue<'a>>,
        state: &mut Option<Box<StreamFold>>,
        lore: &mut Vec<IterationRecord>,
    ) -> Exec {
        let n = values.len();
        let mut s = state.take().unwrap_or_else(|| {
            Box::new(StreamFold {
                lores: Default::default(),
                taken: Vec::new(),
                records: Vec::new(),
            })
        });
        s.taken = vec![[None, None]; n];
        s.records = vec![None; n];
        let frame = self.scopes.enter_fold();
        self.folds.push(ActiveFold {
            iterator: fold.iterator.name,
            elements: values.into_iter().map(|v| (v.val, v.trace_pos)).collect(),
            index: 0,
            body: fold.body,
            last: fold.last,
            frame,
            kind: FoldKind::Stream(s),
        });
        let at = self.folds.len() - 1;
        // The passes share one flag: each starts with what the previous one (or the
        // code before the fold) left.
        let result = self
            .start_iteration(id, at, 0)
            .and_then(|()| self.exec(fold.body));
        let now = self.merger.result_len();
        let finished = self.folds.pop();
        self.scopes.leave(None);
        if let Some(ActiveFold {
            kind: FoldKind::Stream(mut s),
            ..
        }) = finished
        {
            for r in s.records.iter_mut().flatten() {
                close_record(r, now);
                lore.push(IterationRecord {
                    value_pos: r.value_pos,
                    before: Subtrace {
                        begin: r.before_begin,
                        len: r.before_len.unwrap_or(0),
                    },
                    after: Subtrace {
                        begin: r.after_begin.unwrap_or(now),
                        len: r.after_len.unwrap_or(0),
                    },
                });
            }
            *state = Some(s);
        }
        result
    }
}

/// The elements of a folded scalar array, and the array and tetraplet they came from.
struct FoldedArray<'a> {
    elements: Vec<Val<'a>>,
    _array: (Rc<Json<'a>>, Rc<Tetraplet>),
}

/// The elements a fold visits in an array value: each item with the array's tetraplet
/// and `.$.[i]` appended to its lens (execution-model.md §7.2).
fn array_elements<'a>(items: Vec<Rc<Json<'a>>>, array: &Evaluated<'a>) -> Vec<Val<'a>> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let base = &array.single.lens;
            let mut lens = String::with_capacity(base.len() + 16);
            lens.push_str(base);
            lens.push_str(".$.[");
            push_decimal(&mut lens, i);
            lens.push(']');
            let tetraplet = Rc::new(Tetraplet {
                lens,
                ..(*array.single).clone()
            });
            Val::new(item, tetraplet).with_literal(array.literal)
        })
        .collect()
}

/// Appends `n` in decimal (without the formatting machinery: this runs per element).
fn push_decimal(out: &mut String, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[start..] {
        out.push(char::from(d));
    }
}

/// Closes whatever is open in a record at position `now`.
fn close_record(r: &mut RecordBuild, now: u32) {
    if r.before_len.is_none() {
        r.before_len = Some(now.saturating_sub(r.before_begin));
        r.after_begin = Some(now);
        r.after_len = Some(0);
    } else if r.after_begin.is_none() {
        r.after_begin = Some(now);
        r.after_len = Some(0);
    } else if r.after_len.is_none() {
        r.after_len = Some(now.saturating_sub(r.after_begin.unwrap_or(now)));
    }
}

/// Resolves a recorded fold lore against its trace (trace-and-merge.md §3.6.1): the
/// widened `before`/`after` parts of each iteration, by value position, and the fold's
/// total size.
fn resolve_lore(trace: &[State], records: &[IterationRecord]) -> Result<(Lore, u32), Conflict> {
    let mut generations = Vec::with_capacity(records.len());
    let mut total: u32 = 0;
    for r in records {
        let generation = match trace.get(r.value_pos as usize) {
            Some(State::Ap { generation }) => *generation,
            Some(State::Call(CallState::Executed {
                output: Output::Stream { generation },
                ..
            })) => *generation,
            Some(other) => {
                return Err(format!(
                    "fold iteration refers to a {} state at {}, not a stream value",
                    other.kind(),
                    r.value_pos
                ));
            }
            None => {
                return Err(format!(
                    "fold iteration refers to position {} beyond the trace",
                    r.value_pos
                ));
            }
        };
        generations.push(generation);
        total = total
            .checked_add(r.before.len)
            .and_then(|t| t.checked_add(r.after.len))
            .ok_or("fold lengths overflow")?;
    }
    let mut out = BTreeMap::new();
    let mut start = 0;
    while start < records.len() {
        let mut end = start + 1;
        while end < records.len() && generations[end] == generations[start] {
            end += 1;
        }
        let run = &records[start..end];
        let mut after_sums = Vec::with_capacity(run.len());
        let mut acc: u32 = 0;
        for r in run {
            acc = acc.saturating_add(r.after.len);
            after_sums.push(acc);
        }
        let last_after = *after_sums.last().unwrap_or(&0);
        let mut before_acc: u32 = 0;
        let mut befores = vec![0; run.len()];
        for (t, r) in run.iter().enumerate().rev() {
            before_acc = before_acc.saturating_add(r.before.len);
            befores[t] = before_acc.saturating_add(last_after);
        }
        for (t, r) in run.iter().enumerate() {
            let before = Subtrace {
                begin: r.before.begin,
                len: befores[t],
            };
            let after = Subtrace {
                begin: r.after.begin,
                len: after_sums[t],
            };
            if out.insert(r.value_pos, (before, after)).is_some() {
                return Err(format!(
                    "two fold iterations for the value at {}",
                    r.value_pos
                ));
            }
        }
        start = end;
    }
    Ok((out, total))
}

fn to_u32(n: &serde_json::Number) -> Result<u32, CatchableError> {
    n.as_u64()
        .and_then(|u| u32::try_from(u).ok())
        .ok_or_else(|| {
            CatchableError::Lens(format!("index accessor `{n} can't be converted to u32`"))
        })
}

/// The `ret_code` and `message` of a recorded failure.
fn failed_parts(value: &JValue) -> Option<(i32, String)> {
    let ret_code = i32::try_from(value.get("ret_code")?.as_i64()?).ok()?;
    let message = value.get("message")?.as_str()?.to_owned();
    Some((ret_code, message))
}

/// Checks that a value thrown by `fail` is an error object (errors.md §1.2.2).
fn check_error_object(value: &JValue) -> Result<(), String> {
    let text = || compact(value);
    let JValue::Object(obj) = value else {
        return Err(format!(
            "scalar should have an object type to be converted into error object, but '{}' doesn't have",
            text()
        ));
    };
    let Some(code) = obj.get("error_code") else {
        return Err(format!(
            "scalar '{}' must have field with name 'error_code'",
            text()
        ));
    };
    let Some(code) = code.as_i64().or_else(|| code.as_u64().map(|_| i64::MAX)) else {
        return Err(format!(
            "error_code of scalar '{}' must have integer type",
            text()
        ));
    };
    if code == 0 {
        return Err("error code must be non-zero, but it is zero".into());
    }
    match obj.get("message") {
        None => Err(format!(
            "scalar '{}' must have field with name 'message'",
            text()
        )),
        Some(JValue::String(_)) => Ok(()),
        Some(_) => Err(format!(
            "message of scalar '{}' must have string type",
            text()
        )),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A lens step, for its error message.
enum Step<'s> {
    Index(u32),
    Field(&'s str),
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimals_are_written_as_format_writes_them() {
        for n in [0, 7, 10, 99, 100, 1_234_567, usize::MAX] {
            let mut out = String::from("x");
            super::push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}"));
        }
    }
}
