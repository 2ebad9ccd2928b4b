//! A particle's life: its invocations in order, each re-run with the interpreter's
//! execution log (`invoke_inspected`), from a simulated scenario or from recorded
//! invocations of real nodes.

use std::collections::BTreeSet;

use braid_interpreter::{
    CallRequest, CallResult, CallResults, DataView, ExecEvent, RunParams, decode_for_inspection,
    invoke_inspected,
};
use braid_sim::driver::DRIVER_STACK_BYTES;
use braid_sim::transcript::Cause as SimCause;
use braid_sim::{KeepInputs, Scenario};

use crate::error::ExplainError;

/// The exact inputs of one invocation.
#[derive(Debug, Clone)]
pub struct StepInput {
    /// The script.
    pub script: String,
    /// The data the peer had stored.
    pub prev_data: Vec<u8>,
    /// The data that arrived (empty: none).
    pub data: Vec<u8>,
    /// The run parameters; `current_peer_id` is the invoked peer.
    pub params: RunParams,
    /// The call results given.
    pub call_results: CallResults,
}

/// Why a peer was invoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The particle starts on its init peer.
    Start,
    /// Data sent by `from` at the end of step `step` (`None`: the sender is unknown).
    Data {
        /// The sender.
        from: String,
        /// The sender's step, if known.
        step: Option<usize>,
    },
    /// Data that arrived from outside the recorded steps.
    Arrived,
    /// The results of this peer's call requests.
    Results,
    /// Data injected by the scenario (a replayed or re-delivered message).
    Injected {
        /// The step whose data was delivered.
        data_from_step: Option<usize>,
    },
}

/// One invocation, re-run with its execution log.
#[derive(Debug, Clone)]
pub struct Step {
    /// 1-based number in the life.
    pub number: usize,
    /// The invoked peer.
    pub peer: String,
    /// Why it was invoked.
    pub cause: Cause,
    /// Its inputs.
    pub input: StepInput,
    /// The call results it got, by id.
    pub answers: Vec<(u32, CallResult)>,
    /// The call requests it made.
    pub requests: Vec<CallRequest>,
    /// Where it sent the data.
    pub next_peers: Vec<String>,
    /// 0 or the error code.
    pub ret_code: i32,
    /// The error message.
    pub error_message: String,
    /// The execution log.
    pub log: Vec<ExecEvent>,
    /// The returned data.
    pub output: Vec<u8>,
    /// The decoded inputs and output (`None` when they do not decode).
    pub views: [Option<DataView>; 3],
}

impl Step {
    /// The decoded `prev_data`.
    pub fn prev_view(&self) -> Option<&DataView> {
        self.views[0].as_ref()
    }

    /// The decoded arrived data.
    pub fn current_view(&self) -> Option<&DataView> {
        self.views[1].as_ref()
    }

    /// The decoded output.
    pub fn output_view(&self) -> Option<&DataView> {
        self.views[2].as_ref()
    }
}

/// A particle's life.
#[derive(Debug, Clone)]
pub struct Life {
    /// What it is (the scenario's name, the particle id).
    pub title: String,
    /// The script.
    pub script: String,
    /// The init peer.
    pub init_peer: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

impl Life {
    /// Runs a scenario with the simulator and re-runs each of its invocations.
    pub fn of_scenario(scenario: &Scenario) -> Result<Life, ExplainError> {
        let run = braid_sim::run(scenario, KeepInputs::All)?;
        let script = scenario.script()?;
        let inputs = run
            .records
            .iter()
            .zip(&run.transcript.steps)
            .map(|(r, s)| {
                let cause = match &s.cause {
                    SimCause::Start => Cause::Start,
                    SimCause::Deliver { from, from_step } => Cause::Data {
                        from: from.clone(),
                        step: Some(*from_step),
                    },
                    SimCause::Results => Cause::Results,
                    SimCause::Inject { data_from_step, .. } => Cause::Injected {
                        data_from_step: *data_from_step,
                    },
                };
                let input = StepInput {
                    script: r.script.to_string(),
                    prev_data: r.prev_data.to_vec(),
                    data: r.current_data.to_vec(),
                    params: r.params.clone(),
                    call_results: r.call_results.clone(),
                };
                (input, cause)
            })
            .collect();
        let init_peer = scenario.particle.init_peer.clone();
        Life::build(scenario.name.clone(), script, init_peer, inputs)
    }

    /// Orders recorded invocations of one particle (each peer's in its own order) by
    /// causality: a step whose data arrived from another peer comes after the step that
    /// returned exactly those bytes and named it as a next peer.
    pub fn of_records(per_peer: Vec<Vec<StepInput>>) -> Result<Life, ExplainError> {
        let particles: BTreeSet<&str> = per_peer
            .iter()
            .flatten()
            .map(|i| i.params.particle_id.as_str())
            .collect();
        if particles.len() > 1 {
            let list: Vec<&str> = particles.into_iter().collect();
            return Err(ExplainError::ManyParticles(list.len(), list.join(", ")));
        }
        let first = per_peer
            .iter()
            .flatten()
            .next()
            .ok_or(ExplainError::Empty)?;
        let (title, script, init_peer) = (
            format!("particle {}", first.params.particle_id),
            first.script.clone(),
            first.params.init_peer_id.clone(),
        );
        // Every record's output, to find who sent what.
        let outputs: Vec<Vec<(Vec<u8>, Vec<String>)>> = on_big_stack(|| {
            per_peer
                .iter()
                .map(|steps| {
                    steps
                        .iter()
                        .map(|i| {
                            let out = braid_interpreter::invoke(
                                &i.script,
                                &i.prev_data,
                                &i.data,
                                &i.params,
                                &i.call_results,
                            );
                            (out.data, out.next_peers)
                        })
                        .collect()
                })
                .collect()
        });
        let mut next = vec![0usize; per_peer.len()];
        let mut placed: Vec<(usize, usize)> = Vec::new();
        let total: usize = per_peer.iter().map(Vec::len).sum();
        let mut ordered = Vec::with_capacity(total);
        while ordered.len() < total {
            // The first peer (in the given order) whose next step can go now; when none
            // can (a cycle in the evidence), the first peer with steps left.
            let ready = (0..per_peer.len())
                .filter(|&p| next[p] < per_peer[p].len())
                .find(|&p| {
                    let input = &per_peer[p][next[p]];
                    let senders = senders_of(input, &per_peer, &outputs);
                    senders.is_empty() || senders.iter().any(|s| placed.contains(s))
                })
                .or_else(|| (0..per_peer.len()).find(|&p| next[p] < per_peer[p].len()));
            let Some(p) = ready else { break };
            let input = &per_peer[p][next[p]];
            let cause = if !input.data.is_empty() {
                let senders = senders_of(input, &per_peer, &outputs);
                match senders.iter().rev().find(|s| placed.contains(s)) {
                    Some(&(sp, ss)) => Cause::Data {
                        from: per_peer[sp][ss].params.current_peer_id.clone(),
                        step: placed.iter().position(|x| *x == (sp, ss)).map(|i| i + 1),
                    },
                    None => Cause::Arrived,
                }
            } else if !input.call_results.is_empty() {
                Cause::Results
            } else {
                Cause::Start
            };
            ordered.push((input.clone(), cause));
            placed.push((p, next[p]));
            next[p] += 1;
        }
        Life::build(title, script, init_peer, ordered)
    }

    /// One invocation alone: data seen through the eyes of a peer that takes no part
    /// (`observer`), so the interpreter replays what the data records and executes
    /// nothing new. `params` gives the particle (init peer, timestamp, ttl, id).
    pub fn of_data(script: &str, data: &[u8], params: &RunParams, observer: &str) -> Life {
        let mut params = params.clone();
        params.current_peer_id = observer.to_owned();
        params.integrity.check = false;
        let input = StepInput {
            script: script.to_owned(),
            prev_data: data.to_vec(),
            data: Vec::new(),
            params: params.clone(),
            call_results: CallResults::new(),
        };
        let title = format!("data of particle {}", params.particle_id);
        // `build` fails only without steps.
        Life::build(
            title,
            script.to_owned(),
            params.init_peer_id.clone(),
            vec![(input, Cause::Arrived)],
        )
        .expect("one step")
    }

    fn build(
        title: String,
        script: String,
        init_peer: String,
        inputs: Vec<(StepInput, Cause)>,
    ) -> Result<Life, ExplainError> {
        if inputs.is_empty() {
            return Err(ExplainError::Empty);
        }
        let steps = on_big_stack(|| {
            inputs
                .into_iter()
                .enumerate()
                .map(|(i, (input, cause))| inspect(i + 1, input, cause))
                .collect()
        });
        Ok(Life {
            title,
            script,
            init_peer,
            steps,
        })
    }

    /// The peers shown as lanes: every invoked peer and every peer data was sent to,
    /// in order of first appearance.
    pub fn lanes(&self) -> Vec<String> {
        let mut lanes: Vec<String> = Vec::new();
        let mut add = |p: &str| {
            if !lanes.iter().any(|l| l == p) {
                lanes.push(p.to_owned());
            }
        };
        for step in &self.steps {
            add(&step.peer);
            for p in &step.next_peers {
                add(p);
            }
        }
        lanes
    }
}

/// The steps (peer index, step index) whose output is exactly `input.data`, those that
/// named its peer as a next peer first.
fn senders_of(
    input: &StepInput,
    per_peer: &[Vec<StepInput>],
    outputs: &[Vec<(Vec<u8>, Vec<String>)>],
) -> Vec<(usize, usize)> {
    if input.data.is_empty() {
        return Vec::new();
    }
    let me = &input.params.current_peer_id;
    let mut found: Vec<(usize, usize)> = Vec::new();
    for (p, steps) in outputs.iter().enumerate() {
        if per_peer[p]
            .first()
            .is_some_and(|s| &s.params.current_peer_id == me)
        {
            continue;
        }
        for (s, (data, next)) in steps.iter().enumerate() {
            if *data == input.data && next.contains(me) {
                found.push((p, s));
            }
        }
    }
    found
}

fn inspect(number: usize, input: StepInput, cause: Cause) -> Step {
    let (outcome, log) = invoke_inspected(
        &input.script,
        &input.prev_data,
        &input.data,
        &input.params,
        &input.call_results,
    );
    let view = |bytes: &[u8]| decode_for_inspection(bytes).ok();
    let views = [
        view(&input.prev_data),
        view(&input.data),
        view(&outcome.data),
    ];
    Step {
        number,
        peer: input.params.current_peer_id.clone(),
        cause,
        answers: input
            .call_results
            .iter()
            .map(|(id, r)| (*id, r.clone()))
            .collect(),
        requests: outcome.call_requests.clone(),
        next_peers: outcome.next_peers.clone(),
        ret_code: outcome.ret_code(),
        error_message: outcome.error_message(),
        log,
        output: outcome.data,
        views,
        input,
    }
}

/// Runs `f` on a thread with the simulator's big stack: the interpreter recurses as
/// deep as the script nests.
fn on_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("braid-explain".into())
            .stack_size(DRIVER_STACK_BYTES)
            .spawn_scoped(scope, f)
            // Spawning fails only when the OS cannot make a thread; a panic of the
            // interpreter is a bug to surface as it is.
            .expect("cannot start a thread")
            .join()
            .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
    })
}
