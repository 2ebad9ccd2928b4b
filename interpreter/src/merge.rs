//! The merger: reads the states an instruction owns from the previous and the current
//! trace through two cursors, combines them by the rules of trace-and-merge.md §3, and
//! collects the result trace.

use std::rc::Rc;

use crate::trace::{CallState, CanonState, IterationRecord, Output, State, Subtrace};

/// A trace conflict: uncatchable 20000 once the instruction is known.
pub(crate) type Conflict = String;

/// Which input a merged state comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Prev,
    Current,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cursor {
    pub(crate) pos: u32,
    pub(crate) remaining: u32,
}

/// A fold state read from one side: its position and records.
pub(crate) type RecordedFold = (u32, Vec<IterationRecord>);

/// A state read from one side, with its position there.
pub(crate) type Read<'a> = Option<(u32, State<'a>)>;

/// The merged state an instruction gets, and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Merged<T> {
    pub(crate) state: T,
    pub(crate) source: Source,
    pub(crate) prev_pos: Option<u32>,
    pub(crate) current_pos: Option<u32>,
}

/// Where a result-trace Call/Ap state came from, for matching fold iterations.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Origin {
    pub(crate) prev: Option<u32>,
    pub(crate) current: Option<u32>,
}

pub(crate) struct Merger<'a> {
    prev: Rc<Vec<State<'a>>>,
    current: Rc<Vec<State<'a>>>,
    pub(crate) prev_cursor: Cursor,
    pub(crate) current_cursor: Cursor,
    pub(crate) result: Vec<State<'a>>,
    /// For each result position holding a Call or Ap state: its origins.
    pub(crate) origins: Vec<Origin>,
}

/// The saved cursors of a `par` in progress.
pub(crate) struct ParFrame {
    slot: usize,
    sides: [ParSide; 2],
    result_start: usize,
    left_len: u32,
}

#[derive(Clone, Copy, Default)]
struct ParSide {
    after_state: u32,
    remaining: u32,
    left: u32,
    right: u32,
}

impl<'a> Merger<'a> {
    pub(crate) fn new(prev: Vec<State<'a>>, current: Vec<State<'a>>) -> Self {
        let prev_cursor = Cursor {
            pos: 0,
            remaining: len32(&prev),
        };
        let current_cursor = Cursor {
            pos: 0,
            remaining: len32(&current),
        };
        Self {
            prev: Rc::new(prev),
            current: Rc::new(current),
            prev_cursor,
            current_cursor,
            result: Vec::new(),
            origins: Vec::new(),
        }
    }

    pub(crate) fn result_len(&self) -> u32 {
        len32(&self.result)
    }

    fn read_side(trace: &[State<'a>], cursor: &mut Cursor) -> Read<'a> {
        if cursor.remaining == 0 {
            return None;
        }
        let state = trace.get(cursor.pos as usize)?.clone();
        let pos = cursor.pos;
        cursor.pos += 1;
        cursor.remaining -= 1;
        Some((pos, state))
    }

    fn read(&mut self) -> (Read<'a>, Read<'a>) {
        let p = Self::read_side(&self.prev, &mut self.prev_cursor);
        let c = Self::read_side(&self.current, &mut self.current_cursor);
        (p, c)
    }

    /// Appends a state that has no origin to track.
    pub(crate) fn push(&mut self, state: State<'a>) -> u32 {
        let pos = self.result_len();
        self.result.push(state);
        self.origins.push(Origin::default());
        pos
    }

    /// Appends a Call or Ap state and remembers where it came from.
    pub(crate) fn push_with_origin(&mut self, state: State<'a>, origin: Origin) -> u32 {
        let pos = self.result_len();
        self.result.push(state);
        self.origins.push(origin);
        pos
    }

    /// The next call state (trace-and-merge.md §3.2).
    pub(crate) fn call(&mut self) -> Result<Option<Merged<CallState<'a>>>, Conflict> {
        let (p, c) = self.read();
        let p = expect_kind(p, "call", |s| match s {
            State::Call(c) => Some(c),
            _ => None,
        })?;
        let c = expect_kind(c, "call", |s| match s {
            State::Call(c) => Some(c),
            _ => None,
        })?;
        use CallState::{Executed, Failed, Sent};
        let merged = match (p, c) {
            (None, None) => return Ok(None),
            (Some((pp, ps)), None) => merged(ps, Source::Prev, Some(pp), None),
            (None, Some((cp, cs))) => merged(cs, Source::Current, None, Some(cp)),
            (Some((pp, ps)), Some((cp, cs))) => match (&ps, &cs) {
                (Sent { .. }, Sent { .. }) => merged(ps, Source::Prev, Some(pp), Some(cp)),
                (Sent { .. }, _) => merged(cs, Source::Current, None, Some(cp)),
                (_, Sent { .. }) => merged(ps, Source::Prev, Some(pp), None),
                (
                    Executed {
                        result: pr,
                        output: po,
                    },
                    Executed {
                        result: cr,
                        output: co,
                    },
                ) => {
                    let same_kind = std::mem::discriminant(po) == std::mem::discriminant(co);
                    let same_result = if *po == Output::Unused {
                        pr.value == cr.value
                    } else {
                        Rc::ptr_eq(pr, cr) || pr == cr
                    };
                    if !same_kind || !same_result {
                        return Err(format!(
                            "values in call results are not equal: prev {} {}, current {} {}",
                            po.describe(),
                            pr.value.text(),
                            co.describe(),
                            cr.value.text()
                        ));
                    }
                    merged(ps, Source::Prev, Some(pp), Some(cp))
                }
                (Failed(pr), Failed(cr)) => {
                    if pr != cr {
                        return Err(format!(
                            "failed call results are not equal: prev {}, current {}",
                            pr.value.text(),
                            cr.value.text()
                        ));
                    }
                    merged(ps, Source::Prev, Some(pp), Some(cp))
                }
                (Executed { .. }, Failed(_)) | (Failed(_), Executed { .. }) => {
                    return Err(
                        "incompatible call states: executed in one data, failed in the other"
                            .to_owned(),
                    );
                }
            },
        };
        Ok(Some(merged))
    }

    /// The next `Ap` state (§3.4): its generation and source.
    pub(crate) fn ap(&mut self) -> Result<Option<Merged<u32>>, Conflict> {
        let (p, c) = self.read();
        let p = expect_kind(p, "ap", |s| match s {
            State::Ap { generation } => Some(generation),
            _ => None,
        })?;
        let c = expect_kind(c, "ap", |s| match s {
            State::Ap { generation } => Some(generation),
            _ => None,
        })?;
        Ok(match (p, c) {
            (None, None) => None,
            (Some((pp, g)), c) => Some(merged(g, Source::Prev, Some(pp), c.map(|(cp, _)| cp))),
            (None, Some((cp, g))) => Some(merged(g, Source::Current, None, Some(cp))),
        })
    }

    /// The next canon state (§3.5).
    pub(crate) fn canon(&mut self) -> Result<Option<CanonState<'a>>, Conflict> {
        let (p, c) = self.read();
        let p = expect_kind(p, "canon", |s| match s {
            State::Canon(c) => Some(c),
            _ => None,
        })?;
        let c = expect_kind(c, "canon", |s| match s {
            State::Canon(c) => Some(c),
            _ => None,
        })?;
        Ok(match (p, c) {
            (None, None) => None,
            (Some((_, p)), None) => Some(p),
            (None, Some((_, c))) => Some(c),
            (Some((_, p)), Some((_, c))) => match (&p, &c) {
                (CanonState::Sent { .. }, CanonState::Executed(_)) => Some(c),
                (CanonState::Executed(a), CanonState::Executed(b)) => {
                    if !(Rc::ptr_eq(a, b) || a == b) {
                        return Err("canon results are not equal in the two data".to_owned());
                    }
                    Some(p)
                }
                _ => Some(p),
            },
        })
    }

    /// Starts a `par` (§3.3): reads its states and limits each cursor to the left
    /// subtrace.
    pub(crate) fn par_start(&mut self) -> Result<ParFrame, Conflict> {
        let (p, c) = self.read();
        let mut sides = [ParSide::default(); 2];
        for (i, read) in [p, c].into_iter().enumerate() {
            let read = expect_kind(read, "par", |s| match s {
                State::Par { left, right } => Some((left, right)),
                _ => None,
            })?;
            let (trace_len, cursor) = match i {
                0 => (len32(&self.prev), &mut self.prev_cursor),
                _ => (len32(&self.current), &mut self.current_cursor),
            };
            // No state counts as `Par(0, 0)`.
            let (left, right) = read.map_or((0, 0), |(_, lr)| lr);
            let total = left.checked_add(right).ok_or("par lengths overflow")?;
            if total > cursor.remaining || cursor.pos.saturating_add(total) > trace_len {
                return Err(format!(
                    "par subtrace of {left}+{right} states exceeds the {} states left",
                    cursor.remaining
                ));
            }
            sides[i] = ParSide {
                after_state: cursor.pos,
                remaining: cursor.remaining,
                left,
                right,
            };
            cursor.remaining = left;
        }
        let slot = self.result.len();
        self.push(State::Par { left: 0, right: 0 });
        Ok(ParFrame {
            slot,
            sides,
            result_start: slot + 1,
            left_len: 0,
        })
    }

    /// Between the branches: skip unconsumed left states, read the right subtrace.
    pub(crate) fn par_middle(&mut self, frame: &mut ParFrame) {
        frame.left_len = (self.result.len() - frame.result_start) as u32;
        let [p, c] = frame.sides;
        self.prev_cursor = Cursor {
            pos: p.after_state + p.left,
            remaining: p.right,
        };
        self.current_cursor = Cursor {
            pos: c.after_state + c.left,
            remaining: c.right,
        };
    }

    /// After the right branch: restore the enclosing subtrace and fill in the state.
    pub(crate) fn par_end(&mut self, frame: ParFrame) {
        let total = (self.result.len() - frame.result_start) as u32;
        self.result[frame.slot] = State::Par {
            left: frame.left_len,
            right: total - frame.left_len,
        };
        let [p, c] = frame.sides;
        let end = |s: ParSide| Cursor {
            pos: s.after_state + s.left + s.right,
            remaining: s.remaining - s.left - s.right,
        };
        self.prev_cursor = end(p);
        self.current_cursor = end(c);
    }

    /// Reads a fold state from each side.
    pub(crate) fn fold(&mut self) -> Result<[Option<RecordedFold>; 2], Conflict> {
        let (p, c) = self.read();
        let get = |r: Read| {
            expect_kind(r, "fold", |s| match s {
                State::Fold(lore) => Some(lore),
                _ => None,
            })
        };
        Ok([get(p)?, get(c)?])
    }

    pub(crate) fn cursor_mut(&mut self, source: Source) -> &mut Cursor {
        match source {
            Source::Prev => &mut self.prev_cursor,
            Source::Current => &mut self.current_cursor,
        }
    }

    pub(crate) fn trace(&self, source: Source) -> &Rc<Vec<State<'a>>> {
        match source {
            Source::Prev => &self.prev,
            Source::Current => &self.current,
        }
    }

    /// Sets a cursor to a subtrace, checking it lies in the trace.
    pub(crate) fn set_cursor(&mut self, source: Source, sub: Subtrace) -> Result<(), Conflict> {
        let len = len32(self.trace(source));
        if sub.begin.checked_add(sub.len).is_none_or(|end| end > len) {
            return Err(format!(
                "fold subtrace {}+{} lies beyond the trace of {len} states",
                sub.begin, sub.len
            ));
        }
        *self.cursor_mut(source) = Cursor {
            pos: sub.begin,
            remaining: sub.len,
        };
        Ok(())
    }

    pub(crate) fn into_result(self) -> Vec<State<'a>> {
        self.result
    }
}

fn merged<T>(
    state: T,
    source: Source,
    prev_pos: Option<u32>,
    current_pos: Option<u32>,
) -> Merged<T> {
    Merged {
        state,
        source,
        prev_pos,
        current_pos,
    }
}

/// Checks that a read state (if any) is of the expected kind.
fn expect_kind<'a, T>(
    read: Read<'a>,
    expected: &str,
    pick: impl FnOnce(State<'a>) -> Option<T>,
) -> Result<Option<(u32, T)>, Conflict> {
    match read {
        None => Ok(None),
        Some((pos, state)) => {
            let kind = state.kind();
            pick(state).map(|t| Some((pos, t))).ok_or_else(|| {
                format!("expected a {expected} state at position {pos}, found a {kind} state")
            })
        }
    }
}

pub(crate) fn len32<T>(v: &[T]) -> u32 {
    // Data is bounded by the particle size limit (far below 4G states).
    u32::try_from(v.len()).unwrap_or(u32::MAX)
}
