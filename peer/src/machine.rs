//! [`ParticleMachine`]: the policy of one particle's life on a peer.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use braid_interpreter::{CallRequest, CallResult, CallResults, Outcome};

use crate::snapshot::Snapshot;

/// How a particle's machine is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineConfig {
    /// When the particle expires, ms since the Unix epoch (its `timestamp + ttl`, plus
    /// whatever clock skew the host allows); `u64::MAX` for never.
    pub deadline_ms: u64,
    /// What goes into one invoke.
    pub batching: Batching,
    /// Whether the host keeps particles on durable storage: then each invoke's effects
    /// wait for its [`Action::Persist`] to be written ([`ParticleMachine::handle_persisted`]);
    /// otherwise no `Persist` is asked for and effects follow the invoke at once.
    pub durable: bool,
}

/// What goes into one invoke, of what has arrived and been answered since the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batching {
    /// The next arrived data and every call result that is ready (as Nox does). Which
    /// results share an invoke then depends on timing, which is visible in stream
    /// generations (execution-model.md §3): the host hands in everything that is ready
    /// before it polls.
    AllReady,
    /// One thing at a time, as the JS client does: the next arrived data alone, else
    /// the ready result with the lowest id.
    OneAtATime,
}

/// The inputs of one invoke (the script and run parameters are the host's).
#[derive(Debug, Clone, PartialEq)]
pub struct InvokeInput {
    /// The particle's data as this peer last stored it.
    pub prev_data: Arc<Vec<u8>>,
    /// The data that arrived, or empty data for an invoke of call results alone.
    pub data: Arc<Vec<u8>>,
    /// The answers to calls this peer made.
    pub call_results: CallResults,
}

/// Something the host must do for a particle.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Run `invoke` on these inputs, then [`ParticleMachine::handle_invoked`] (or
    /// [`ParticleMachine::handle_invoke_failed`] when the backend could not run it).
    Invoke(InvokeInput),
    /// Write this snapshot durably (replacing the particle's last one), then
    /// [`ParticleMachine::handle_persisted`]. Only with [`MachineConfig::durable`].
    Persist(Snapshot),
    /// Perform this service call; its answer comes back through
    /// [`ParticleMachine::handle_call_result`]. The request is shared with the machine
    /// (which keeps it in flight, for snapshots) rather than copied: its arguments may
    /// be big.
    Call(Arc<CallRequest>),
    /// Send the particle with this data to these peers.
    Send {
        /// The peers, sorted, without duplicates.
        peers: Vec<String>,
        /// The data to send.
        data: Arc<Vec<u8>>,
    },
    /// The particle has nothing left to do on this peer (no call in flight, nothing
    /// waiting, and it was never sent anywhere), as of its last invoke.
    Settled(Settled),
    /// The deadline passed: cancel these calls and remove the particle's snapshot. The
    /// machine does nothing more.
    Expire {
        /// The ids of the calls that were in flight.
        cancelled_calls: Vec<u32>,
    },
}

/// How the last invoke of a settled particle ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// 0, or the interpreter's error code.
    pub ret_code: i32,
    /// Empty, or the error's message.
    pub error_message: String,
}

/// What a quiet particle keeps until data arrives again or its deadline passes
/// ([`ParticleMachine::dormant`]): its data, and whether it was sent on (a
/// particle that was never sent settles when nothing is left to do).
#[derive(Debug, Clone, PartialEq)]
pub struct Dormant {
    config: MachineConfig,
    data: Arc<Vec<u8>>,
    sent: bool,
}

impl Dormant {
    /// The particle's data as of its last invoke.
    pub fn data(&self) -> &Arc<Vec<u8>> {
        &self.data
    }

    /// When the particle expires, ms since the epoch.
    pub fn deadline_ms(&self) -> u64 {
        self.config.deadline_ms
    }
}

/// Whether a snapshot was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persisted {
    /// It is on durable storage.
    Durable,
    /// The write failed: the invoke's calls and sends are dropped (the host logs and
    /// counts it).
    Failed,
}

/// The life of one particle on one peer. See the crate documentation.
#[derive(Debug, Clone)]
pub struct ParticleMachine {
    config: MachineConfig,
    /// The data as of the last invoke.
    stored: Arc<Vec<u8>>,
    arrived: VecDeque<Arc<Vec<u8>>>,
    ready: CallResults,
    /// Calls asked for and not answered yet, by id; shared with the [`Action::Call`]s
    /// and snapshots that carry them.
    in_flight: BTreeMap<u32, Arc<CallRequest>>,
    phase: Phase,
    actions: VecDeque<Action>,
    /// Whether the particle was ever sent on from here.
    sent: bool,
}

#[derive(Debug, Clone)]
enum Phase {
    Idle,
    Invoking,
    /// The invoke's snapshot is being written; its effects wait.
    Persisting(Effects),
    /// Expired, or stopped by a failed invoke.
    Over,
}

/// What one invoke asked for, held back until its snapshot is durable.
#[derive(Debug, Clone)]
struct Effects {
    calls: Vec<Arc<CallRequest>>,
    next_peers: Vec<String>,
    ret_code: i32,
    error_message: String,
}

impl ParticleMachine {
    /// A particle this peer has no data of yet.
    pub fn new(config: MachineConfig) -> Self {
        ParticleMachine {
            config,
            stored: Arc::new(Vec::new()),
            arrived: VecDeque::new(),
            ready: CallResults::new(),
            in_flight: BTreeMap::new(),
            phase: Phase::Idle,
            actions: VecDeque::new(),
            sent: false,
        }
    }

    /// A particle this peer persisted before (it restarted): its data, and every call
    /// that was in flight asked for again ([`Action::Call`]), to be answered as usual.
    pub fn restore(config: MachineConfig, snapshot: Snapshot) -> Self {
        let mut machine = ParticleMachine::new(config);
        machine.stored = snapshot.data;
        for call in snapshot.calls {
            machine.in_flight.insert(call.id, Arc::clone(&call));
            machine.actions.push_back(Action::Call(call));
        }
        machine
    }

    /// The particle's data as of the last invoke.
    pub fn stored_data(&self) -> &Arc<Vec<u8>> {
        &self.stored
    }

    /// How many calls are in flight.
    pub fn calls_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The deadline, ms since the Unix epoch.
    pub fn deadline_ms(&self) -> u64 {
        self.config.deadline_ms
    }

    /// Whether the machine is done (expired, or stopped by a failed invoke).
    pub fn is_over(&self) -> bool {
        matches!(self.phase, Phase::Over)
    }

    /// Whether the machine waits for nothing but new data or its deadline: no invoke
    /// or write running, no call in flight, nothing ready, no action to poll.
    pub fn is_quiet(&self) -> bool {
        matches!(self.phase, Phase::Idle)
            && self.actions.is_empty()
            && self.arrived.is_empty()
            && self.ready.is_empty()
            && self.in_flight.is_empty()
    }

    /// The little a quiet machine needs to go on ([`Self::is_quiet`]), so that a host
    /// can drop the machine until data arrives again; `None` when it is not quiet.
    /// [`Self::wake`] gives back a machine that behaves as this one would.
    pub fn dormant(&self) -> Option<Dormant> {
        self.is_quiet().then(|| Dormant {
            config: self.config,
            data: Arc::clone(&self.stored),
            sent: self.sent,
        })
    }

    /// The machine a [`Dormant`] state came from.
    pub fn wake(dormant: Dormant) -> Self {
        let mut machine = ParticleMachine::new(dormant.config);
        machine.stored = dormant.data;
        machine.sent = dormant.sent;
        machine
    }

    /// Data of this particle arrived (from another peer, or from this one).
    pub fn handle_arrival(&mut self, data: Arc<Vec<u8>>) {
        if !self.is_over() {
            self.arrived.push_back(data);
        }
    }

    /// The answer to call `id`. Answers to calls that are not in flight (answered
    /// already, asked for before a restart and answered twice, cancelled) are ignored:
    /// returns whether it was taken.
    pub fn handle_call_result(&mut self, id: u32, result: CallResult) -> bool {
        if self.is_over() || self.in_flight.remove(&id).is_none() {
            return false;
        }
        self.ready.insert(id, result);
        true
    }

    /// The outcome of the invoke asked for last. Ignored unless an invoke runs. Its
    /// calls are asked for by increasing id.
    pub fn handle_invoked(&mut self, mut outcome: Outcome) {
        if !matches!(self.phase, Phase::Invoking) {
            return;
        }
        let (ret_code, error_message) = (outcome.ret_code(), outcome.error_message());
        outcome.call_requests.sort_by_key(|r| r.id);
        // Kept until the deadline when the particle goes quiet: no spare capacity.
        outcome.data.shrink_to_fit();
        self.stored = Arc::new(std::mem::take(&mut outcome.data));
        let calls: Vec<Arc<CallRequest>> = std::mem::take(&mut outcome.call_requests)
            .into_iter()
            .map(Arc::new)
            .collect();
        for call in &calls {
            self.in_flight.insert(call.id, Arc::clone(call));
        }
        let effects = Effects {
            calls,
            next_peers: outcome.next_peers,
            ret_code,
            error_message,
        };
        if self.config.durable {
            self.actions.push_back(Action::Persist(Snapshot {
                data: Arc::clone(&self.stored),
                calls: self.in_flight.values().cloned().collect(),
            }));
            self.phase = Phase::Persisting(effects);
        } else {
            self.release(effects);
        }
    }

    /// The backend could not run the invoke asked for last (a trap, a resource limit
    /// such as the interpreter's on call requests): the particle stops here and lets go
    /// of what it held (calls in flight, data waiting, answers); its persisted snapshot
    /// stays until it expires.
    pub fn handle_invoke_failed(&mut self) {
        if matches!(self.phase, Phase::Invoking) {
            self.phase = Phase::Over;
            self.actions.clear();
            self.arrived.clear();
            self.ready.clear();
            self.in_flight.clear();
        }
    }

    /// Whether the snapshot asked for last was written. Ignored unless one was asked
    /// for.
    pub fn handle_persisted(&mut self, persisted: Persisted) {
        let Phase::Persisting(effects) = std::mem::replace(&mut self.phase, Phase::Idle) else {
            return;
        };
        match persisted {
            Persisted::Durable => self.release(effects),
            Persisted::Failed => {
                for call in &effects.calls {
                    self.in_flight.remove(&call.id);
                }
            }
        }
    }

    /// The clock: at or past the deadline the particle expires ([`Action::Expire`]).
    /// Returns whether it did now.
    pub fn handle_tick(&mut self, now_ms: u64) -> bool {
        if self.is_over() || now_ms < self.config.deadline_ms {
            return false;
        }
        self.phase = Phase::Over;
        self.actions.clear();
        self.arrived.clear();
        self.ready.clear();
        let cancelled_calls = std::mem::take(&mut self.in_flight).into_keys().collect();
        self.actions.push_back(Action::Expire { cancelled_calls });
        true
    }

    /// The next thing to do, if any. An invoke is put together only when asked for, of
    /// everything handed in by then ([`Batching`]).
    pub fn poll_action(&mut self) -> Option<Action> {
        if let Some(action) = self.actions.pop_front() {
            return Some(action);
        }
        if !matches!(self.phase, Phase::Idle) || (self.arrived.is_empty() && self.ready.is_empty())
        {
            return None;
        }
        let (data, call_results) = match self.config.batching {
            Batching::AllReady => (self.arrived.pop_front(), std::mem::take(&mut self.ready)),
            Batching::OneAtATime => match self.arrived.pop_front() {
                Some(data) => (Some(data), CallResults::new()),
                None => (None, self.ready.pop_first().into_iter().collect()),
            },
        };
        self.phase = Phase::Invoking;
        Some(Action::Invoke(InvokeInput {
            prev_data: Arc::clone(&self.stored),
            data: data.unwrap_or_default(),
            call_results,
        }))
    }

    /// Lets an invoke's effects out, then tells whether the particle settled.
    fn release(&mut self, effects: Effects) {
        self.phase = Phase::Idle;
        let Effects {
            calls,
            next_peers,
            ret_code,
            error_message,
        } = effects;
        self.actions.extend(calls.into_iter().map(Action::Call));
        if !next_peers.is_empty() {
            self.sent = true;
            self.actions.push_back(Action::Send {
                peers: next_peers,
                data: Arc::clone(&self.stored),
            });
        }
        if self.in_flight.is_empty()
            && self.arrived.is_empty()
            && self.ready.is_empty()
            && !self.sent
        {
            self.actions.push_back(Action::Settled(Settled {
                ret_code,
                error_message,
            }));
        }
    }
}
