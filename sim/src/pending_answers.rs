//! Answers the host has decided but not yet given back (FORMAT.md §3 step 3): due ones
//! go into the next results invoke; delayed ones wait for their round, and when only
//! delayed ones remain the host skips ahead to the earliest.

use braid_interpreter::{CallResult, CallResults};

/// The answers of one chain not yet given back.
#[derive(Debug, Clone, Default)]
pub struct PendingAnswers {
    /// (re-invokes still to wait, call id, answer).
    waiting: Vec<(u32, u32, CallResult)>,
}

impl PendingAnswers {
    /// Nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the answer to call `id`, to be given `delay` re-invokes later than the next.
    pub fn push(&mut self, delay: u32, id: u32, answer: CallResult) {
        self.waiting.push((delay, id, answer));
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// The call results of the next results invoke: every answer due now or, when only
    /// delayed ones are pending, the earliest of them (skipping ahead). The others get
    /// one round closer. `None` when nothing is pending: the chain is over.
    pub fn next_round(&mut self) -> Option<CallResults> {
        let wait = self.waiting.iter().map(|w| w.0).min()?;
        let mut due = CallResults::new();
        self.waiting.retain_mut(|(rounds, id, answer)| {
            *rounds -= wait;
            if *rounds == 0 {
                due.insert(
                    *id,
                    std::mem::replace(answer, CallResult::ok(String::new())),
                );
                false
            } else {
                // This results invoke is one of the rounds they wait.
                *rounds -= 1;
                true
            }
        });
        Some(due)
    }
}
