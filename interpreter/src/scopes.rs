//! Scalars, canon streams and canon maps with the reference's fold-level scoping
//! (execution-model.md §8.1): a global level assignable once, one level per fold
//! iteration, and only the most recent binding of a name ever considered.

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::value::{CanonMap, CanonStream, Val};

/// What a scalar-like name can hold.
#[derive(Debug, Clone)]
pub(crate) enum Variable<'a> {
    Scalar(Val<'a>),
    Canon(Rc<CanonStream<'a>>),
    CanonMap(Rc<CanonMap<'a>>),
}

#[derive(Debug)]
struct Binding<'a> {
    frame: usize,
    /// `None`: the marker left by `new`.
    value: Option<Variable<'a>>,
}

/// The result of looking a name up.
pub(crate) enum Lookup<'v, 'a> {
    Value(&'v Variable<'a>),
    /// Reset by `new` and not assigned since (error 10009 when read).
    Uninitialized,
    /// Undefined or not visible here: readers wait.
    Missing,
}

/// Why an assignment was refused.
pub(crate) enum AssignError {
    /// A second assignment at the global level (20007).
    Shadowing,
}

#[derive(Debug, Default)]
struct Frame {
    /// Hidden while a later iteration of the same fold runs.
    hidden: bool,
    names: Vec<Rc<str>>,
}

#[derive(Debug)]
pub(crate) struct Scopes<'a> {
    bindings: BTreeMap<Rc<str>, Vec<Binding<'a>>>,
    frames: Vec<Frame>,
}

impl<'a> Scopes<'a> {
    pub(crate) fn new() -> Self {
        Self {
            bindings: BTreeMap::new(),
            frames: vec![Frame::default()],
        }
    }

    fn current(&self) -> usize {
        self.frames.len() - 1
    }

    pub(crate) fn lookup(&self, name: &str) -> Lookup<'_, 'a> {
        let Some(binding) = self.bindings.get(name).and_then(|b| b.last()) else {
            return Lookup::Missing;
        };
        if binding.frame != 0 && self.frames[binding.frame].hidden {
            return Lookup::Missing;
        }
        match &binding.value {
            Some(v) => Lookup::Value(v),
            None => Lookup::Uninitialized,
        }
    }

    /// True if assigning `name` now would be refused (20007), checked before a call
    /// runs.
    pub(crate) fn would_shadow(&self, name: &str) -> bool {
        self.current() == 0
            && self
                .bindings
                .get(name)
                .and_then(|b| b.last())
                .is_some_and(|b| b.value.is_some())
    }

    pub(crate) fn assign(&mut self, name: &str, value: Variable<'a>) -> Result<(), AssignError> {
        let current = self.current();
        let list = self.bindings.entry(Rc::from(name)).or_default();
        match list.last_mut() {
            Some(last) if last.frame == current || (current == 0 && last.value.is_none()) => {
                if current == 0 && last.value.is_some() {
                    return Err(AssignError::Shadowing);
                }
                last.value = Some(value);
            }
            Some(_) if current == 0 => return Err(AssignError::Shadowing),
            _ => {
                list.push(Binding {
                    frame: current,
                    value: Some(value),
                });
                let key = self.bindings.get_key_value(name).map(|(k, _)| k.clone());
                if let Some(key) = key {
                    self.frames[current].names.push(key);
                }
            }
        }
        Ok(())
    }

    /// `new NAME`: hides the name until it is assigned or the scope ends.
    pub(crate) fn push_marker(&mut self, name: &str) {
        let frame = self.current();
        self.bindings
            .entry(Rc::from(name))
            .or_default()
            .push(Binding { frame, value: None });
    }

    /// The end of `new NAME`: drops the marker, or what replaced it.
    pub(crate) fn pop_marker(&mut self, name: &str) -> bool {
        let frame = self.current();
        match self.bindings.get_mut(name) {
            Some(list) if list.last().is_some_and(|b| b.frame == frame) => {
                list.pop();
                true
            }
            _ => false,
        }
    }

    /// A fold's first iteration starts: a new level.
    pub(crate) fn enter_fold(&mut self) -> usize {
        self.frames.push(Frame::default());
        self.current()
    }

    /// `next` starts the following iteration: the running iteration's level is hidden.
    pub(crate) fn enter_next(&mut self, running: usize) -> usize {
        self.frames[running].hidden = true;
        self.frames.push(Frame::default());
        self.current()
    }

    /// Closes the current level; unhides `running` if the level belonged to a `next`.
    pub(crate) fn leave(&mut self, unhide: Option<usize>) {
        let frame = self.frames.pop().unwrap_or_default();
        let index = self.frames.len();
        for name in frame.names {
            if let Some(list) = self.bindings.get_mut(&name) {
                while list.last().is_some_and(|b| b.frame == index) {
                    list.pop();
                }
            }
        }
        if let Some(running) = unhide {
            if let Some(f) = self.frames.get_mut(running) {
                f.hidden = false;
            }
        }
    }
}
