//! The deterministic FIFO driver of FORMAT.md §3: a queue of deliveries, each one
//! invoking a peer, answering its calls by the service rules until its chain is over,
//! then sending the data on.
//!
//! Each peer's particle runs on the same [`ParticleMachine`] as a node's: the driver
//! hands it arrivals and the answers of each round and performs what it asks for, so
//! the conformance runs test the policy that runs in production. What is the
//! driver's own is the network of FORMAT.md §3: one FIFO queue, a chain's sends
//! coalesced into one delivery of its final data per next peer, drops and injections.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use braid_interpreter::{CallResult, CallResults, Integrity, KeyPair, Limits, Outcome, RunParams};
use braid_peer::{Action, Batching, MachineConfig, ParticleMachine, Snapshot};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::SimError;
use crate::pending_answers::PendingAnswers;
use crate::scenario::{InjectPrev, Scenario};
use crate::service_rules::{Answer, CallSite, ServiceHost};
use crate::transcript::{
    CallRecord, Cause, End, HostAnswer, PeerSummary, Step, TetrapletRecord, Transcript,
    abbreviate_long_strings, abbreviate_str, sort_call_records,
};

/// The stack of the thread a scenario runs on: the interpreter may recurse deeply.
pub const DRIVER_STACK_BYTES: usize = 256 << 20;

/// Which steps' inputs and output a run keeps in [`Run::records`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepInputs {
    /// None: only the transcript.
    Nothing,
    /// Only this step (1-based), e.g. the measured step of a benchmark.
    Step(usize),
    /// Every step. Data is shared between records, not copied, but a big workload
    /// still keeps every version of its data alive.
    All,
}

impl KeepInputs {
    fn includes(self, step: usize) -> bool {
        match self {
            KeepInputs::Nothing => false,
            KeepInputs::Step(kept) => kept == step,
            KeepInputs::All => true,
        }
    }
}

/// The exact inputs and output of one invoke, enough to repeat it.
#[derive(Debug, Clone)]
pub struct StepRecord {
    /// The 1-based step number.
    pub step: usize,
    /// The invoked peer.
    pub peer: String,
    /// The script.
    pub script: Arc<str>,
    /// `prev_data`.
    pub prev_data: Arc<Vec<u8>>,
    /// `current_data`.
    pub current_data: Arc<Vec<u8>>,
    /// The call results.
    pub call_results: CallResults,
    /// The run parameters.
    pub params: RunParams,
    /// The data the invoke returned.
    pub output: Arc<Vec<u8>>,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Run {
    /// The transcript (FORMAT.md §4).
    pub transcript: Transcript,
    /// The inputs of the steps asked for with [`KeepInputs`], in step order.
    pub records: Vec<StepRecord>,
}

/// Runs a scenario with braid's interpreter on a thread with a
/// [`DRIVER_STACK_BYTES`] stack, keeping the inputs of the steps `keep` selects.
pub fn run(scenario: &Scenario, keep: KeepInputs) -> Result<Run, SimError> {
    run_with(scenario, keep, &native_invoke)
}

/// [`braid_interpreter::invoke`] as an [`Interpreter`].
pub fn native_invoke(
    script: &str,
    prev: &[u8],
    current: &[u8],
    params: &RunParams,
    results: &CallResults,
) -> Result<Outcome, String> {
    Ok(braid_interpreter::invoke(
        script, prev, current, params, results,
    ))
}

/// An interpreter: [`braid_interpreter::invoke`], another backend of it (a host's Wasm
/// module), or a fake in tests. `Err` says why an invoke did not run to its end (a
/// trap, say); the run stops there with [`SimError::Backend`].
pub type Interpreter<'i> =
    dyn Fn(&str, &[u8], &[u8], &RunParams, &CallResults) -> Result<Outcome, String> + Sync + 'i;

/// [`run`] with any interpreter.
pub fn run_with(
    scenario: &Scenario,
    keep: KeepInputs,
    interpreter: &Interpreter<'_>,
) -> Result<Run, SimError> {
    scenario.validate()?;
    let script: Arc<str> = Arc::from(scenario.script()?);
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("braid-sim-driver".into())
            .stack_size(DRIVER_STACK_BYTES)
            .spawn_scoped(scope, || {
                Driver::new(scenario, script, keep, interpreter).run()
            })
            .map_err(|e| SimError::Internal(format!("cannot start the driver thread: {e}")))?;
        handle
            .join()
            .map_err(|payload| SimError::Internal(panic_message(payload.as_ref())))?
    })
}

/// The run parameters of an invoke on `peer` (FORMAT.md §2), with braid's integrity
/// checks on: every scenario peer's key is trusted for its name, so arriving data is
/// verified (signatures, content ids) at every step. The reference's test build
/// neither signs nor checks; braid does both and still matches its transcripts.
pub fn run_params(scenario: &Scenario, peer: &str) -> RunParams {
    params_with(scenario, peer, trusted_keys(scenario))
}

/// Every scenario peer's public key, by name (scenario peers are named, not key ids).
fn trusted_keys(scenario: &Scenario) -> BTreeMap<String, [u8; 32]> {
    scenario
        .peers
        .iter()
        .map(|p| {
            (
                p.clone(),
                braid_interpreter::public_key_of(&scenario.secret_of(p)),
            )
        })
        .collect()
}

fn params_with(
    scenario: &Scenario,
    peer: &str,
    trusted_keys: BTreeMap<String, [u8; 32]>,
) -> RunParams {
    RunParams {
        init_peer_id: scenario.particle.init_peer.clone(),
        current_peer_id: peer.to_owned(),
        timestamp: scenario.particle.timestamp,
        ttl: scenario.particle.ttl,
        particle_id: scenario.particle.id.clone(),
        key: KeyPair::ed25519(&scenario.secret_of(peer)),
        limits: Limits::REFERENCE_MAXIMA,
        integrity: Integrity {
            check: true,
            trusted_keys,
        },
    }
}

/// The public key of a scenario peer's [`peer_key`].
pub fn peer_public_key(peer: &str) -> [u8; 32] {
    braid_interpreter::public_key_of(&Sha256::digest(peer.as_bytes()).into())
}

/// A peer's key: Ed25519 with the SHA-256 of its name as the secret, in format 1
/// (the public key derived once, as a host does).
pub fn peer_key(peer: &str) -> KeyPair {
    KeyPair::ed25519(&Sha256::digest(peer.as_bytes()).into())
}

/// A particle on its way to a peer.
struct Delivery {
    to: String,
    data: Arc<Vec<u8>>,
    /// `None`: the peer's stored data.
    prev: Option<Arc<Vec<u8>>>,
    cause: Cause,
}

/// The state of one run.
struct Driver<'s> {
    scenario: &'s Scenario,
    interpreter: &'s Interpreter<'s>,
    script: Arc<str>,
    keep: KeepInputs,
    empty: Arc<Vec<u8>>,
    /// Each peer's particle.
    machines: BTreeMap<String, ParticleMachine>,
    /// Steps whose data an `inject` entry uses.
    referenced: BTreeSet<usize>,
    /// The data those steps returned.
    outputs: BTreeMap<usize, Arc<Vec<u8>>>,
    services: ServiceHost<'s>,
    queue: VecDeque<Delivery>,
    steps: Vec<Step>,
    summary: BTreeMap<String, PeerSummary>,
    records: Vec<StepRecord>,
    /// Every peer's public key, derived once per run.
    trusted_keys: BTreeMap<String, [u8; 32]>,
    /// Each peer's run parameters (its key derived once), made on its first invoke.
    params: BTreeMap<String, RunParams>,
}

/// How a chain ended.
enum ChainEnd {
    /// No answer is left to give: the data returned last.
    Over(Arc<Vec<u8>>),
    /// `max_steps` was reached.
    StepLimit,
}

/// A scenario peer's particle: no deadline (scenarios have no clock), nothing
/// persisted, and every answer of a round in one invoke (FORMAT.md §3 step 3).
const MACHINE: MachineConfig = MachineConfig {
    deadline_ms: u64::MAX,
    batching: Batching::AllReady,
    durable: false,
};

impl<'s> Driver<'s> {
    fn new(
        scenario: &'s Scenario,
        script: Arc<str>,
        keep: KeepInputs,
        interpreter: &'s Interpreter<'s>,
    ) -> Self {
        let referenced = scenario
            .inject
            .iter()
            .flat_map(|i| {
                let prev = match i.prev {
                    InjectPrev::Step(n) => Some(n),
                    InjectPrev::Stored | InjectPrev::Empty => None,
                };
                i.data_from_step.into_iter().chain(prev)
            })
            .collect();
        Driver {
            scenario,
            interpreter,
            script,
            keep,
            empty: Arc::new(Vec::new()),
            machines: BTreeMap::new(),
            referenced,
            outputs: BTreeMap::new(),
            services: ServiceHost::new(&scenario.services),
            queue: VecDeque::new(),
            steps: Vec::new(),
            summary: BTreeMap::new(),
            records: Vec::new(),
            trusted_keys: trusted_keys(scenario),
            params: BTreeMap::new(),
        }
    }

    fn run(mut self) -> Result<Run, SimError> {
        self.queue.push_back(Delivery {
            to: self.scenario.particle.init_peer.clone(),
            data: self.empty.clone(),
            prev: None,
            cause: Cause::Start,
        });
        let mut end = End::Quiescent;
        while let Some(delivery) = self.queue.pop_front() {
            let peer = delivery.to.clone();
            let first_step = self.steps.len() + 1;
            let mut next_peers = BTreeSet::new();
            let ChainEnd::Over(data) = self.chain(delivery, &mut next_peers)? else {
                end = End::StepLimit;
                break;
            };
            let last_step = self.steps.len();
            self.send(&peer, last_step, &data, &next_peers);
            self.inject(first_step..=last_step)?;
        }
        let peers = self
            .scenario
            .peers
            .iter()
            .map(|p| (p.clone(), self.summary.get(p).cloned().unwrap_or_default()))
            .collect();
        Ok(Run {
            transcript: Transcript {
                steps: self.steps,
                peers,
                end,
            },
            records: self.records,
        })
    }

    /// Steps 2 and 3: hands the data to the receiver's particle and performs what it
    /// asks for, answering its calls by the service rules round by round until no
    /// answer is left to give. Collects the next peers of every invoke into
    /// `next_peers`.
    fn chain(
        &mut self,
        delivery: Delivery,
        next_peers: &mut BTreeSet<String>,
    ) -> Result<ChainEnd, SimError> {
        let peer = delivery.to;
        let params = match self.params.get(&peer) {
            Some(params) => params.clone(),
            None => {
                let params = params_with(self.scenario, &peer, self.trusted_keys.clone());
                self.params.insert(peer.clone(), params.clone());
                params
            }
        };
        let mut machine = match delivery.prev {
            // An injection with its own previous data: the peer as if it had stored it.
            Some(prev) => ParticleMachine::restore(
                MACHINE,
                Snapshot {
                    data: prev,
                    calls: Vec::new(),
                },
            ),
            None => self
                .machines
                .remove(&peer)
                .unwrap_or_else(|| ParticleMachine::new(MACHINE)),
        };
        machine.handle_arrival(delivery.data);
        let mut cause = delivery.cause;
        let mut pending = PendingAnswers::new();
        let mut last = None;
        let end = loop {
            match machine.poll_action() {
                Some(Action::Invoke(input)) => {
                    self.finish_step();
                    if self.steps.len() >= self.scenario.max_steps {
                        break ChainEnd::StepLimit;
                    }
                    let output =
                        self.step(&peer, &params, cause, input, &mut machine, next_peers)?;
                    last = Some(output);
                    cause = Cause::Results;
                }
                Some(Action::Call(request)) => {
                    let step = self.steps.len();
                    let args: Vec<Value> =
                        serde_json::from_str(&request.arguments).map_err(|_| {
                            SimError::BadArguments {
                                step,
                                id: request.id,
                                text: request.arguments.chars().take(200).collect(),
                            }
                        })?;
                    let answer = self.services.answer(CallSite {
                        peer: &peer,
                        service: &request.service_id,
                        function: &request.function_name,
                        args: &args,
                    })?;
                    let summary = self.summary.entry(peer.clone()).or_default();
                    summary.calls += 1;
                    let result = match answer {
                        Answer::Never => {
                            summary.never_answered += 1;
                            HostAnswer::Never
                        }
                        Answer::Given {
                            ret_code,
                            result,
                            delay,
                        } => {
                            let shown = HostAnswer::Given {
                                ret_code,
                                result: abbreviate_str(&result).into_owned(),
                                delay,
                            };
                            pending.push(delay, request.id, CallResult { ret_code, result });
                            shown
                        }
                    };
                    let record = call_record(Arc::unwrap_or_clone(request), args, result);
                    // Invariant: a call follows the invoke (the step) that asked for it.
                    self.steps
                        .last_mut()
                        .expect("a call follows its step")
                        .call_requests
                        .push(record);
                }
                // The chain's sends are coalesced into one delivery of its final data
                // (step 4); the next peers were taken from each invoke's outcome.
                Some(Action::Send { .. } | Action::Settled(_) | Action::Expire { .. }) => {}
                // Invariant: the machine is not durable, so it asks for no snapshot.
                Some(Action::Persist(_)) => unreachable!("a scenario peer persists nothing"),
                None => {
                    self.finish_step();
                    let Some(due) = pending.next_round() else {
                        // Invariant: a delivery is always invoked at least once.
                        break ChainEnd::Over(last.expect("a chain invokes at least once"));
                    };
                    for (id, result) in due {
                        machine.handle_call_result(id, result);
                    }
                }
            }
        };
        self.machines.insert(peer, machine);
        Ok(end)
    }

    /// Runs one invoke the machine asked for and records it as a step; returns its data.
    fn step(
        &mut self,
        peer: &str,
        params: &RunParams,
        cause: Cause,
        input: braid_peer::InvokeInput,
        machine: &mut ParticleMachine,
        next_peers: &mut BTreeSet<String>,
    ) -> Result<Arc<Vec<u8>>, SimError> {
        let step = self.steps.len() + 1;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            (self.interpreter)(
                &self.script,
                &input.prev_data,
                &input.data,
                params,
                &input.call_results,
            )
        }))
        .map_err(|payload| SimError::Panicked {
            step,
            peer: peer.to_owned(),
            message: panic_message(payload.as_ref()),
        })?
        .map_err(|message| SimError::Backend {
            step,
            peer: peer.to_owned(),
            message,
        })?;
        let ret_code = outcome.ret_code();
        let error_message = abbreviate_str(&outcome.error_message()).into_owned();
        let mut step_next = outcome.next_peers.clone();
        step_next.sort();
        step_next.dedup();
        next_peers.extend(step_next.iter().cloned());

        let summary = self.summary.entry(peer.to_owned()).or_default();
        summary.invokes += 1;
        summary.last_ret_code = Some(ret_code);
        if ret_code != 0 {
            summary.failed_invokes += 1;
        }
        self.steps.push(Step {
            step,
            peer: peer.to_owned(),
            cause,
            ret_code,
            error_message,
            next_peers: step_next,
            call_requests: Vec::new(),
        });

        machine.handle_invoked(outcome);
        let output = Arc::clone(machine.stored_data());
        if self.referenced.contains(&step) {
            self.outputs.insert(step, output.clone());
        }
        if self.keep.includes(step) {
            self.records.push(StepRecord {
                step,
                peer: peer.to_owned(),
                script: self.script.clone(),
                prev_data: input.prev_data,
                current_data: input.data,
                call_results: input.call_results,
                params: params.clone(),
                output: output.clone(),
            });
        }
        Ok(output)
    }

    /// Puts the last step's calls in the transcript's order.
    fn finish_step(&mut self) {
        if let Some(step) = self.steps.last_mut() {
            sort_call_records(&mut step.call_requests);
        }
    }

    /// Step 4: queues the chain's final data for each next peer, in sorted order, that
    /// exists and whose delivery is not dropped (step 6).
    fn send(&mut self, from: &str, last_step: usize, data: &Arc<Vec<u8>>, next: &BTreeSet<String>) {
        for to in next {
            let dropped = self
                .scenario
                .drop
                .iter()
                .any(|d| d.from_step == last_step && &d.to == to);
            if self.scenario.peers.contains(to) && !dropped {
                self.queue.push_back(Delivery {
                    to: to.clone(),
                    data: data.clone(),
                    prev: None,
                    cause: Cause::Deliver {
                        from: from.to_owned(),
                        from_step: last_step,
                    },
                });
            }
        }
    }

    /// Step 5: queues at the front, in listed order, the `inject` entries whose
    /// `after_step` is one of `chain`.
    fn inject(&mut self, chain: std::ops::RangeInclusive<usize>) -> Result<(), SimError> {
        let scenario = self.scenario;
        let entries: Vec<_> = scenario
            .inject
            .iter()
            .filter(|i| chain.contains(&i.after_step))
            .collect();
        for entry in entries.into_iter().rev() {
            let data = match entry.data_from_step {
                Some(step) => self.output_of(step)?,
                None => self.empty.clone(),
            };
            let prev = match entry.prev {
                InjectPrev::Stored => None,
                InjectPrev::Empty => Some(self.empty.clone()),
                InjectPrev::Step(step) => Some(self.output_of(step)?),
            };
            self.queue.push_front(Delivery {
                to: entry.to.clone(),
                data,
                prev,
                cause: Cause::Inject {
                    data_from_step: entry.data_from_step,
                    prev: entry.prev,
                },
            });
        }
        Ok(())
    }

    fn output_of(&self, step: usize) -> Result<Arc<Vec<u8>>, SimError> {
        self.outputs
            .get(&step)
            .cloned()
            .ok_or(SimError::InjectTooEarly { step })
    }
}

/// A call as the transcript shows it.
fn call_record(
    request: braid_interpreter::CallRequest,
    args: Vec<Value>,
    result: HostAnswer,
) -> CallRecord {
    CallRecord {
        service: request.service_id,
        function: request.function_name,
        arguments: abbreviate_long_strings(Value::Array(args)),
        tetraplets: request
            .tetraplets
            .into_iter()
            .map(|list| {
                list.into_iter()
                    .map(|t| TetrapletRecord {
                        peer_pk: t.peer_pk,
                        service_id: t.service_id,
                        function_name: t.function_name,
                        lens: t.lens,
                    })
                    .collect()
            })
            .collect(),
        result,
    }
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

#[cfg(test)]
mod tests;
