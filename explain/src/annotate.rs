//! What one step did to each instruction: the execution log turned into a tree of
//! instruction runs, each run described by the trace states it left (read from the
//! step's output data), its iterations, branches and errors, and every instruction the
//! step did not reach with the reason why.

use std::collections::{BTreeMap, BTreeSet};

use braid_grammar::{Ast, InstrId, InstrKind, Location, Value};
use braid_interpreter::{DataView, ExecEvent, FaultView, StateView, TracePoint};
use serde_json::Value as JValue;

use crate::life::{Cause, Step};

/// One instruction as a line of the displayed script.
#[derive(Debug, Clone)]
pub struct ScriptLine {
    /// The instruction.
    pub instr: InstrId,
    /// Its nesting depth.
    pub depth: usize,
    /// Its text (a composite instruction: its head, e.g. `(fold $s x`).
    pub text: String,
    /// Where it starts in the script.
    pub location: Location,
}

/// The script, one instruction per line, in script order.
pub fn script_lines(ast: &Ast<'_>) -> Vec<ScriptLine> {
    enum Item {
        Open(InstrId, usize),
        Close,
    }
    let source = ast.source();
    // Lines come in script order: locations are counted on from the previous one.
    let (mut counted, mut location) = (0usize, Location { line: 1, column: 1 });
    let mut locate = |offset: usize| {
        let offset = offset.clamp(counted, source.len());
        for c in source.get(counted..offset).unwrap_or("").chars() {
            if c == '\n' {
                location.line += 1;
                location.column = 1;
            } else {
                location.column += 1;
            }
        }
        counted = offset;
        location
    };
    let mut lines: Vec<ScriptLine> = Vec::new();
    let mut stack = vec![Item::Open(ast.root(), 0)];
    while let Some(item) = stack.pop() {
        let (id, depth) = match item {
            Item::Open(id, depth) => (id, depth),
            Item::Close => {
                if let Some(last) = lines.last_mut() {
                    last.text.push(')');
                }
                continue;
            }
        };
        let instr = ast.instr(id);
        let children: Vec<InstrId> = instr.kind.children().collect();
        let (start, end) = (instr.span.start as usize, instr.span.end as usize);
        let text = match children.first() {
            None => source.get(start..end).unwrap_or(""),
            Some(first) => source
                .get(start..ast.instr(*first).span.start as usize)
                .unwrap_or("")
                .trim_end(),
        };
        lines.push(ScriptLine {
            instr: id,
            depth,
            text: one_line(text),
            location: locate(start),
        });
        if !children.is_empty() {
            stack.push(Item::Close);
            for child in children.into_iter().rev() {
                stack.push(Item::Open(child, depth + 1));
            }
        }
    }
    lines
}

/// Whitespace runs that span lines become one space.
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    for c in text.chars() {
        if c.is_whitespace() {
            run.push(c);
            continue;
        }
        if !run.is_empty() {
            out.push_str(if run.contains('\n') { " " } else { &run });
            run.clear();
        }
        out.push(c);
    }
    out
}

/// An error and where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultAt {
    /// The instruction that raised it.
    pub instr: InstrId,
    /// Its place in the script.
    pub location: Location,
    /// The error.
    pub fault: FaultView,
    /// For an uncatchable error: the peer whose data the interpreter read and found
    /// incompatible with this peer's, when the data came from another peer.
    pub disagreeing_peer: Option<String>,
}

/// What a step did, instruction by instruction.
#[derive(Debug, Clone, Default)]
pub struct StepNotes {
    /// Notes per instruction, in execution order.
    pub notes: BTreeMap<InstrId, Vec<String>>,
    /// Instructions that recorded a new or changed trace state in this step.
    pub created: BTreeSet<InstrId>,
    /// Instructions whose state this peer learned in this step from the arriving data
    /// (its stored data did not have it).
    pub learned: BTreeSet<InstrId>,
    /// Instructions that ran in this step.
    pub reached: BTreeSet<InstrId>,
    /// Where the step's errors were raised: each catchable error that reached an `xor`
    /// or the top, and the uncatchable error that stopped it.
    pub faults: Vec<FaultAt>,
}

impl StepNotes {
    /// The uncatchable error that stopped the step.
    pub fn uncatchable(&self) -> Option<&FaultAt> {
        self.faults.iter().find(|f| !f.fault.catchable)
    }
}

/// One run of an instruction.
struct Run {
    instr: InstrId,
    enter: TracePoint,
    leave: TracePoint,
    complete: bool,
    fault: Option<FaultView>,
    iteration: Option<(usize, JValue)>,
    /// The run (this one or an ancestor) whose iteration this run belongs to.
    in_iteration: Option<usize>,
    children: Vec<usize>,
}

/// The runs of a log, as a forest in execution order.
fn runs(log: &[ExecEvent]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    for event in log {
        match event {
            ExecEvent::Enter {
                instr,
                at,
                iteration,
            } => {
                let index = runs.len();
                let mut in_iteration = iteration.is_some().then_some(index);
                if let Some(&parent) = open.last() {
                    runs[parent].children.push(index);
                    in_iteration = in_iteration.or(runs[parent].in_iteration);
                }
                runs.push(Run {
                    instr: *instr,
                    enter: *at,
                    leave: *at,
                    complete: true,
                    fault: None,
                    iteration: iteration.clone(),
                    in_iteration,
                    children: Vec::new(),
                });
                open.push(index);
            }
            ExecEvent::Leave {
                at,
                complete,
                fault,
                ..
            } => {
                if let Some(index) = open.pop() {
                    let run = &mut runs[index];
                    run.leave = *at;
                    run.complete = *complete;
                    run.fault = fault.clone();
                }
            }
            _ => {}
        }
    }
    runs
}

/// Annotates every instruction with what `step` did to it.
pub fn annotate(ast: &Ast<'_>, step: &Step) -> StepNotes {
    let runs = runs(&step.log);
    let uncatchable = runs
        .iter()
        .position(|r| r.fault.as_ref().is_some_and(|f| !f.catchable));
    // After an uncatchable error the output is the unchanged previous data: the
    // positions of the log refer to a trace that was thrown away.
    let output = if uncatchable.is_some() {
        None
    } else {
        step.output_view()
    };
    let ctx = Context {
        ast,
        step,
        runs: &runs,
        output,
        iterators: ast
            .iter()
            .filter_map(|(_, i)| match &i.kind {
                InstrKind::Fold(f) => Some((f.body, f.iterator.name)),
                _ => None,
            })
            .collect(),
        parents: parents(ast),
        failed: runs
            .iter()
            .filter(|r| r.fault.is_some())
            .map(|r| r.instr)
            .collect(),
    };
    let mut notes = StepNotes::default();
    for (index, run) in runs.iter().enumerate() {
        notes.reached.insert(run.instr);
        if let Some(text) = ctx.describe(index) {
            notes.notes.entry(run.instr).or_default().push(text);
        }
        match ctx.novelty(index) {
            Some(Novelty::Created) => {
                notes.created.insert(run.instr);
            }
            Some(Novelty::Learned) => {
                notes.learned.insert(run.instr);
            }
            None => {}
        }
        if let Some(fault) = &run.fault {
            let own = !run
                .children
                .iter()
                .any(|&c| runs[c].fault.as_ref() == Some(fault));
            if own {
                let instr = ast.instr(run.instr);
                let disagreeing_peer = (!fault.catchable)
                    .then(|| match &step.cause {
                        Cause::Data { from, .. } => Some(from.clone()),
                        _ => None,
                    })
                    .flatten();
                notes.faults.push(FaultAt {
                    instr: run.instr,
                    location: Location::of(ast.source(), instr.span.start),
                    fault: fault.clone(),
                    disagreeing_peer,
                });
            }
        }
    }
    for (instr, _) in ast.iter() {
        if !notes.reached.contains(&instr) {
            let why = ctx.why_not_reached(instr, &notes, uncatchable.is_some());
            notes.notes.entry(instr).or_default().push(why);
        }
    }
    for list in notes.notes.values_mut() {
        *list = collapse(std::mem::take(list));
    }
    notes
}

/// Identical notes once, with a count; at most [`SHOWN_NOTES`] kinds.
fn collapse(list: Vec<String>) -> Vec<String> {
    let mut counted: Vec<(String, usize)> = Vec::new();
    for note in list {
        match counted.iter_mut().find(|(n, _)| *n == note) {
            Some((_, count)) => *count += 1,
            None => counted.push((note, 1)),
        }
    }
    let hidden = counted.len().saturating_sub(SHOWN_NOTES);
    let mut out: Vec<String> = counted
        .into_iter()
        .take(SHOWN_NOTES)
        .map(|(n, count)| {
            if count > 1 {
                format!("{n} (×{count})")
            } else {
                n
            }
        })
        .collect();
    if hidden > 0 {
        out.push(format!("… {hidden} more"));
    }
    out
}

/// How many different notes an instruction shows.
pub(crate) const SHOWN_NOTES: usize = 6;

struct Context<'c, 'a: 'c> {
    ast: &'c Ast<'a>,
    step: &'c Step,
    runs: &'c [Run],
    output: Option<&'c DataView>,
    /// Fold bodies and their iterators.
    iterators: BTreeMap<InstrId, &'a str>,
    /// Each instruction's parent.
    parents: BTreeMap<InstrId, InstrId>,
    /// Instructions with a run that failed.
    failed: BTreeSet<InstrId>,
}

impl Context<'_, '_> {
    /// The trace positions a run pushed itself (not its children): the gaps between
    /// its children's ranges, which follow one another.
    fn own_positions(&self, index: usize) -> Vec<u32> {
        let run = &self.runs[index];
        let mut own = Vec::new();
        let mut at = run.enter.result;
        for &c in &run.children {
            let child = &self.runs[c];
            own.extend(at..child.enter.result.max(at));
            at = at.max(child.leave.result);
        }
        own.extend(at..run.leave.result.max(at));
        own
    }

    /// The states a run left in the output; when the output was thrown away (after an
    /// uncatchable error), the states a call, ap or canon read from the inputs.
    fn own_states(&self, index: usize) -> Vec<(Pos, &StateView)> {
        let Some(output) = self.output else {
            let run = &self.runs[index];
            let leaf = matches!(
                self.ast.instr(run.instr).kind,
                InstrKind::Call(_) | InstrKind::Ap(_) | InstrKind::ApMap(_) | InstrKind::Canon(_)
            );
            if !leaf {
                return Vec::new();
            }
            let current = read(
                self.step.current_view(),
                run.enter.current,
                run.leave.current,
            )
            .map(|s| (Pos::Current(run.enter.current), s));
            let prev = read(self.step.prev_view(), run.enter.prev, run.leave.prev)
                .map(|s| (Pos::Prev(run.enter.prev), s));
            return current.or(prev).into_iter().collect();
        };
        self.own_positions(index)
            .into_iter()
            .filter_map(|p| Some((Pos::Output(p), output.states.get(p as usize)?)))
            .collect()
    }

    /// What a call, ap or canon's state is to this step: `Some(Novelty::Created)` when
    /// neither input had it at the place it read, `Some(Novelty::Learned)` when the
    /// arriving data brought it (the peer's stored data did not have it).
    fn novelty(&self, index: usize) -> Option<Novelty> {
        let run = &self.runs[index];
        let leaf = matches!(
            self.ast.instr(run.instr).kind,
            InstrKind::Call(_) | InstrKind::Ap(_) | InstrKind::ApMap(_) | InstrKind::Canon(_)
        );
        if !leaf || self.output.is_none() {
            return None;
        }
        let states = self.own_states(index);
        let (_, state) = states.first()?;
        let prev = read(self.step.prev_view(), run.enter.prev, run.leave.prev);
        let current = read(
            self.step.current_view(),
            run.enter.current,
            run.leave.current,
        );
        let in_prev = prev.is_some_and(|s| same(s, state));
        let in_current = current.is_some_and(|s| same(s, state));
        match (in_prev, in_current) {
            (false, false) => Some(Novelty::Created),
            (false, true) => Some(Novelty::Learned),
            _ => None,
        }
    }

    fn describe(&self, index: usize) -> Option<String> {
        let run = &self.runs[index];
        let instr = self.ast.instr(run.instr);
        let states = self.own_states(index);
        let mut text = match &instr.kind {
            InstrKind::Call(_) => {
                let call = self.ast.call(run.instr).expect("a call");
                let mut parts: Vec<String> = states
                    .iter()
                    .map(|(pos, s)| describe_call_state(*pos, s, &call.peer, &self.step.peer))
                    .collect();
                if states.is_empty() && !run.complete && run.fault.is_none() {
                    let mut vars = vec![&call.peer, &call.service, &call.function];
                    vars.extend(call.args.iter());
                    parts.push(waiting_on(&vars));
                }
                (!parts.is_empty()).then(|| parts.join("; "))
            }
            InstrKind::Ap(ap) => Some(match states.first() {
                Some((pos, StateView::Ap { generation })) => {
                    format!(
                        "{pos} appended to {}, generation {generation}",
                        ap.result.name
                    )
                }
                _ if !run.complete && run.fault.is_none() => waiting_on(&[&ap.arg]),
                _ if run.fault.is_none() => format!("set {}", ap.result.name),
                _ => return self.fault_note(index),
            }),
            InstrKind::ApMap(ap) => Some(match states.first() {
                Some((pos, StateView::Ap { generation })) => {
                    format!("{pos} appended to {}, generation {generation}", ap.map.name)
                }
                _ if !run.complete && run.fault.is_none() => waiting_on(&[&ap.key, &ap.value]),
                _ => return self.fault_note(index),
            }),
            InstrKind::Canon(canon) => match states.first() {
                Some((pos, StateView::CanonExecuted { peer, elements })) => Some(format!(
                    "{pos} {} = {} ({} elements, on {})",
                    canon.target.name,
                    short_json(&JValue::Array(elements.clone())),
                    elements.len(),
                    short_peer(peer)
                )),
                Some((pos, StateView::CanonSent { peer })) => Some(format!(
                    "{pos} sent by {} to the canon peer {}; waits for it",
                    short_peer(peer),
                    target_name(&canon.peer)
                )),
                _ if !run.complete && run.fault.is_none() => Some(waiting_on(&[&canon.peer])),
                _ => None,
            },
            InstrKind::Fold(fold) => {
                let values: Vec<&JValue> = self
                    .descendants(index)
                    .filter(|&d| self.runs[d].instr == fold.body)
                    .filter_map(|d| self.runs[d].iteration.as_ref().map(|(_, v)| v))
                    .collect();
                let recorded = states.iter().find_map(|(pos, s)| match s {
                    StateView::Fold(iterations) => Some((pos, iterations.len())),
                    _ => None,
                });
                let mut text = match values.len() {
                    0 if !run.complete && run.fault.is_none() && run.children.is_empty() => {
                        waiting_on(&[&fold.iterable])
                    }
                    0 => "no iteration".to_owned(),
                    n => format!(
                        "{n} iteration{}: {} = {}",
                        if n == 1 { "" } else { "s" },
                        fold.iterator.name,
                        short_list(&values)
                    ),
                };
                if let Some((pos, n)) = recorded {
                    text.push_str(&format!(" ({n} recorded at {pos})"));
                }
                Some(text)
            }
            InstrKind::Par(..) => {
                let status: Vec<String> = run.children.iter().map(|&c| self.status(c)).collect();
                Some(match status.as_slice() {
                    [left, right] => format!("left {left}, right {right}"),
                    [left] => format!("left {left}"),
                    _ => return None,
                })
            }
            InstrKind::Xor(..) => match run.children.as_slice() {
                [left, right] => Some(format!(
                    "left failed ({}) → right ran, {}",
                    self.runs[*left]
                        .fault
                        .as_ref()
                        .map_or_else(String::new, |f| format!("error {}", f.code)),
                    self.status(*right)
                )),
                [left] => Some(format!("left {}", self.status(*left))),
                _ => None,
            },
            InstrKind::Match(m) | InstrKind::Mismatch(m) => {
                let is_match = matches!(instr.kind, InstrKind::Match(_));
                if !run.children.is_empty() {
                    Some(
                        if is_match {
                            "equal → body ran"
                        } else {
                            "different → body ran"
                        }
                        .to_owned(),
                    )
                } else if run.fault.is_some() {
                    Some(
                        if is_match {
                            "values differ"
                        } else {
                            "values are equal"
                        }
                        .to_owned(),
                    )
                } else if !run.complete {
                    Some(waiting_on(&[&m.left, &m.right]))
                } else {
                    None
                }
            }
            InstrKind::Never => Some("never completes".to_owned()),
            InstrKind::Next(_) if !self.runs[index].children.is_empty() => {
                Some("next iteration".to_owned())
            }
            InstrKind::Next(_) => Some("last iteration".to_owned()),
            _ => None,
        };
        if let Some(fault) = self.fault_note(index) {
            text = Some(match text {
                Some(t) => format!("{t}; {fault}"),
                None => fault,
            });
        }
        let iteration = self.runs[index].in_iteration.and_then(|i| {
            let run = &self.runs[i];
            let (n, value) = run.iteration.as_ref()?;
            let iterator = self.iterators.get(&run.instr)?;
            Some(format!("{iterator} = {} (#{}): ", short_json(value), n + 1))
        });
        text.map(|t| match (&iteration, &instr.kind) {
            (
                Some(prefix),
                InstrKind::Call(_)
                | InstrKind::Ap(_)
                | InstrKind::ApMap(_)
                | InstrKind::Canon(_)
                | InstrKind::Fail(_)
                | InstrKind::Match(_)
                | InstrKind::Mismatch(_),
            ) => format!("{prefix}{t}"),
            _ => t,
        })
    }

    /// The error a run raised itself (not one passed up from a child).
    fn fault_note(&self, index: usize) -> Option<String> {
        let run = &self.runs[index];
        let fault = run.fault.as_ref()?;
        if run
            .children
            .iter()
            .any(|&c| self.runs[c].fault.as_ref() == Some(fault))
        {
            return None;
        }
        Some(if fault.catchable {
            format!("error {}: {}", fault.code, short_text(&fault.message))
        } else {
            format!(
                "UNCATCHABLE error {}: {}",
                fault.code,
                short_text(&fault.message)
            )
        })
    }

    fn status(&self, index: usize) -> String {
        let run = &self.runs[index];
        match &run.fault {
            Some(f) => format!("failed (error {})", f.code),
            None if run.complete => "completed".to_owned(),
            None => "waits".to_owned(),
        }
    }

    fn descendants(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        let mut stack: Vec<usize> = self.runs[index].children.clone();
        std::iter::from_fn(move || {
            let next = stack.pop()?;
            stack.extend(self.runs[next].children.iter().copied());
            Some(next)
        })
    }

    fn why_not_reached(&self, instr: InstrId, notes: &StepNotes, stopped: bool) -> String {
        if self.step.log.is_empty() {
            return "not run: the invocation stopped before execution".to_owned();
        }
        if stopped {
            return "not reached: execution stopped at the uncatchable error".to_owned();
        }
        let mut child = instr;
        while let Some(&parent) = self.parents.get(&child) {
            if notes.reached.contains(&parent) {
                let reason = match &self.ast.instr(parent).kind {
                    InstrKind::Seq(first, _) if *first != child => {
                        if self.failed.contains(first) {
                            "the first part of its seq failed"
                        } else {
                            "the first part of its seq has not completed"
                        }
                    }
                    InstrKind::Xor(..) => "the left branch of its xor did not fail",
                    InstrKind::Match(_) => "the values did not match",
                    InstrKind::Mismatch(_) => "the values were equal",
                    InstrKind::Fold(f) if f.body == child => "nothing to iterate",
                    InstrKind::Fold(_) => "the fold's iterations did not all end",
                    _ => "execution did not get there",
                };
                return format!("not reached: {reason}");
            }
            child = parent;
        }
        "not reached".to_owned()
    }
}

fn parents(ast: &Ast<'_>) -> BTreeMap<InstrId, InstrId> {
    ast.iter()
        .flat_map(|(id, instr)| instr.kind.children().map(move |c| (c, id)))
        .collect()
}

fn describe_call_state(pos: Pos, state: &StateView, target: &Value<'_>, current: &str) -> String {
    match state {
        StateView::CallExecuted {
            tetraplet,
            value,
            stream_generation,
        } => {
            let output = match stream_generation {
                Some(Some(g)) => format!(" → stream, generation {g}"),
                _ => String::new(),
            };
            format!(
                "{pos} {} ran {}: {}{output}",
                short_peer(&tetraplet[0]),
                service(&tetraplet[1], &tetraplet[2]),
                short_json(value)
            )
        }
        StateView::CallFailed { tetraplet, value } => format!(
            "{pos} {} ran {} and it FAILED: {}",
            short_peer(&tetraplet[0]),
            service(&tetraplet[1], &tetraplet[2]),
            short_json(value)
        ),
        StateView::CallSent {
            peer,
            request: Some(id),
        } => {
            let whose = if peer == current {
                ""
            } else {
                " (of that peer)"
            };
            format!(
                "{pos} waits for the result of call request #{id} on {}{whose}",
                short_peer(peer)
            )
        }
        StateView::CallSent {
            peer,
            request: None,
        } => format!(
            "{pos} sent by {} to {}; waits for that peer",
            short_peer(peer),
            target_name(target)
        ),
        other => format!("{pos} unexpected state {other:?}"),
    }
}

/// A call's service and function as the script writes them: `("svc" "fn")`.
pub(crate) fn service(service: &str, function: &str) -> String {
    format!("({service:?} {function:?})")
}

fn target_name(peer: &Value<'_>) -> String {
    match peer {
        Value::String(s) => short_peer(s),
        Value::InitPeerId => "the init peer".to_owned(),
        Value::Var(var, _) => format!("the peer in {}", var.name),
        other => other.to_string(),
    }
}

fn waiting_on(values: &[&Value<'_>]) -> String {
    let mut names: Vec<&str> = values
        .iter()
        .filter_map(|v| v.var())
        .map(|v| v.name)
        .collect();
    names.dedup();
    if names.is_empty() {
        return "waits".to_owned();
    }
    format!(
        "waits for a variable: one of {} is not set yet",
        names.join(", ")
    )
}

/// Whether two states record the same thing (generations may be renumbered).
fn same(a: &StateView, b: &StateView) -> bool {
    match (a, b) {
        (StateView::Ap { .. }, StateView::Ap { .. }) => true,
        (
            StateView::CallExecuted {
                tetraplet: t1,
                value: v1,
                ..
            },
            StateView::CallExecuted {
                tetraplet: t2,
                value: v2,
                ..
            },
        ) => t1 == t2 && v1 == v2,
        _ => a == b,
    }
}

/// What a state is to a step.
enum Novelty {
    /// Recorded by this step.
    Created,
    /// Brought by the arriving data.
    Learned,
}

/// The state a leaf read from an input, if its cursor moved by one.
fn read(view: Option<&DataView>, before: u32, after: u32) -> Option<&StateView> {
    (after == before + 1)
        .then(|| view?.states.get(before as usize))
        .flatten()
}

/// Where a shown state is: in the output trace, or in an input's.
#[derive(Clone, Copy)]
enum Pos {
    Output(u32),
    Prev(u32),
    Current(u32),
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pos::Output(p) => write!(f, "[{p}]"),
            Pos::Prev(p) => write!(f, "[prev {p}]"),
            Pos::Current(p) => write!(f, "[current {p}]"),
        }
    }
}

/// A peer id for display: libp2p ids shortened to their distinguishing end (they all
/// begin `12D3KooW`), other names as they are.
pub fn short_peer(peer: &str) -> String {
    match peer.strip_prefix("12D3KooW") {
        Some(rest) if rest.len() > 8 && rest.is_ascii() => {
            format!("12D3…{}", &rest[rest.len() - 6..])
        }
        _ => peer.to_owned(),
    }
}

/// Compact JSON, at most [`SHORT`] characters.
pub(crate) fn short_json(value: &JValue) -> String {
    short_text(&value.to_string())
}

fn short_list(values: &[&JValue]) -> String {
    let items: Vec<String> = values.iter().take(8).map(|v| short_json(v)).collect();
    let more = if values.len() > 8 {
        format!(", … {} more", values.len() - 8)
    } else {
        String::new()
    };
    short_text(&format!("{}{more}", items.join(", ")))
}

/// Longest shown value, in characters.
pub(crate) const SHORT: usize = 60;

/// `text` cut at [`SHORT`] characters.
pub(crate) fn short_text(text: &str) -> String {
    if text.chars().count() <= SHORT {
        return text.to_owned();
    }
    let cut: String = text.chars().take(SHORT - 1).collect();
    format!("{cut}…")
}
