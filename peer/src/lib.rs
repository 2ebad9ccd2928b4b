//! The life of one particle on one peer, as a pure state machine.
//!
//! A host (the tokio node, the conformance simulator) owns one [`ParticleMachine`] per
//! live particle and drives it: it hands in what happened (`handle_*`: data arrived, a
//! call answered, an invoke or a write finished, the clock moved) and performs what the
//! machine asks for, polled one [`Action`] at a time (quinn-proto's style). The machine
//! owns the policy; the host owns the effects:
//!
//! ```text
//!   handle_arrival ─┐                      ┌─► Invoke ──► handle_invoked
//! handle_call_result┼─► what is ready ─────┤
//!      handle_tick ─┘   (Batching)         └─► Persist ─► handle_persisted ─► Call…, Send,
//!                                                                            Settled
//! ```
//!
//! - **One invoke at a time.** While an invoke runs, arrivals and results wait; when it
//!   ends, what is ready goes into the next one ([`Batching`]).
//! - **Persist before effects.** Each invoke's data and the calls then in flight are
//!   handed out as a [`Snapshot`] to persist; the invoke's calls and sends are released
//!   only once the host says the snapshot is durable. A failed write drops that invoke's
//!   effects (its calls are not in flight).
//! - **Recovery.** [`ParticleMachine::restore`] starts from a persisted snapshot and asks
//!   again for every call that was in flight, so a peer that restarts (after a crash or
//!   a clean stop) finishes the particle. A call is therefore performed *at least* once:
//!   a service that is not idempotent may see a call twice.
//! - **Dormancy.** A machine with nothing to do until data arrives again
//!   ([`ParticleMachine::is_quiet`]) can be reduced to a [`Dormant`] state (its data
//!   and whether it was sent on) and woken from it unchanged, so a host need not keep a
//!   whole actor per particle until its deadline.
//! - **Expiry.** At its deadline (given at creation, compared with the `now` of
//!   [`ParticleMachine::handle_tick`]) the particle asks to be forgotten: its calls are
//!   cancelled and its stored snapshot removed.
//!
//! It never awaits, reads a clock, touches the disk or draws random numbers: time comes
//! in as an argument, and what to store goes out as bytes.
//!
//! ```
//! use braid_peer::{Action, Batching, MachineConfig, ParticleMachine};
//! use std::sync::Arc;
//!
//! let config = MachineConfig { deadline_ms: 10_000, batching: Batching::AllReady, durable: false };
//! let mut m = ParticleMachine::new(config);
//! m.handle_arrival(Arc::new(vec![]));
//! let Some(Action::Invoke(input)) = m.poll_action() else { unreachable!() };
//! assert!(input.call_results.is_empty());
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod machine;
mod snapshot;

pub use machine::{
    Action, Batching, Dormant, InvokeInput, MachineConfig, ParticleMachine, Persisted, Settled,
};
pub use snapshot::{Snapshot, SnapshotError};
