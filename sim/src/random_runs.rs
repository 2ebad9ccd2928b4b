//! Random multi-peer runs for property tests and fuzzing: proptest strategies for
//! scenarios (a small program from [`program`], 2–4 peers, random service behaviours,
//! start peer, extra and lost deliveries), running them with every step kept, and
//! [`data_view`], a structural reading of braid's data for comparing traces.
//!
//! ```
//! use braid_sim::random_runs::{arb_scenario, observe};
//! use proptest::strategy::{Strategy, ValueTree};
//! use proptest::test_runner::TestRunner;
//!
//! let mut runner = TestRunner::deterministic();
//! let generated = arb_scenario().new_tree(&mut runner).unwrap().current();
//! let observed = observe(&generated.scenario()).unwrap();
//! assert!(!observed.steps.is_empty());
//! ```
//!
//! Variety of delivery comes from what the FIFO driver lets a scenario choose (FORMAT.md
//! §1, §3): which peer starts, `inject` entries (a peer receives another step's data
//! again, late, or is woken with empty data), `drop` entries (a delivery is lost),
//! `delay` replies (answers arrive in later re-invokes, so a chain batches them
//! differently) and `sequence` replies (one service answers differently each time).
//! Injected deliveries always merge into the receiver's stored data: a peer never forgets
//! what it did, so every run is one consistent history (trace-and-merge.md §5).

pub mod data_view;
pub mod program;

use std::sync::Arc;

use braid_interpreter::RunParams;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::driver::{KeepInputs, run, run_params};
use crate::error::SimError;
use crate::scenario::Scenario;
use crate::transcript::{Cause, End};
use program::{PEER_NAMES, Program, arb_program};

/// The values services answer with: numbers, words, lists of peer names (to fold over
/// and call), a list of numbers, objects whose field `k` names a peer or holds a list,
/// a list of such objects, an empty list and a boolean. No string of digits: map keys
/// come from these values, and a canon map with both key `1` and key `"1"` is not
/// deterministic in the reference.
const VALUES: [&str; 12] = [
    "1",
    "\"x\"",
    "[\"A\",\"B\"]",
    "[\"B\",\"C\"]",
    "[\"C\",\"D\",\"A\"]",
    "[1,2,3]",
    "{\"k\":\"A\"}",
    "\"B\"",
    "{\"k\":[\"B\",\"A\"]}",
    "[{\"k\":\"C\"},{\"k\":\"A\"}]",
    "[]",
    "true",
];

/// The highest step number `inject` and `drop` entries name.
const MAX_ENTRY_STEP: usize = 10;

/// A generated scenario. Its `Debug` form is the scenario's JSON, ready to be saved as a
/// fixture.
#[derive(Clone)]
pub struct RandomScenario {
    program: Program,
    /// How many of `PEER_NAMES` exist: 2–4.
    peers: usize,
    init: usize,
    /// The answer of service `list`, used by folds: lists of peers or numbers.
    list: ReplySpec,
    rules: Vec<RuleSpec>,
    default: ReplySpec,
    inject: Vec<InjectSpec>,
    drop: Vec<DropSpec>,
}

#[derive(Debug, Clone)]
struct RuleSpec {
    peer: Option<usize>,
    service: Option<u8>,
    reply: ReplySpec,
}

#[derive(Debug, Clone)]
enum ReplySpec {
    Ok(usize),
    Error(u8),
    Echo,
    Delay(u8, usize),
    Sequence(Vec<ReplySpec>),
    Never,
    /// A success whose text is not JSON (a failure with ret code 2147483647).
    NotJson,
}

#[derive(Debug, Clone)]
struct InjectSpec {
    after_step: usize,
    to: usize,
    /// `data_from_step` = `after_step - back`; empty data when `None`.
    back: Option<usize>,
}

#[derive(Debug, Clone)]
struct DropSpec {
    from_step: usize,
    to: usize,
}

/// Scenarios whose programs have at most `depth + 1` levels of generated instructions
/// ([`program::arb_program`]).
pub fn arb_scenario_with_depth(depth: u32) -> impl Strategy<Value = RandomScenario> {
    let plain = || {
        prop_oneof![
            4 => (0..VALUES.len()).prop_map(ReplySpec::Ok),
            1 => (1u8..4).prop_map(ReplySpec::Error),
            2 => Just(ReplySpec::Echo),
            2 => (1u8..3, 0..VALUES.len()).prop_map(|(r, v)| ReplySpec::Delay(r, v)),
            1 => Just(ReplySpec::NotJson),
        ]
    };
    let reply = prop_oneof![
        8 => plain(),
        2 => proptest::collection::vec(plain(), 2..4).prop_map(ReplySpec::Sequence),
        1 => Just(ReplySpec::Never),
    ];
    let rule = (
        proptest::option::of(0..PEER_NAMES.len()),
        proptest::option::of(0u8..3),
        reply,
    )
        .prop_map(|(peer, service, reply)| RuleSpec {
            peer,
            service,
            reply,
        });
    let list_value = || prop_oneof![Just(2usize), Just(3), Just(4), Just(5), Just(9), Just(10)];
    let list_plain = || {
        prop_oneof![
            3 => list_value().prop_map(ReplySpec::Ok),
            1 => (1u8..3, list_value()).prop_map(|(r, v)| ReplySpec::Delay(r, v)),
        ]
    };
    let list = prop_oneof![
        3 => list_plain(),
        1 => proptest::collection::vec(list_plain(), 2..4).prop_map(ReplySpec::Sequence),
    ];
    let default = prop_oneof![
        3 => (0..VALUES.len()).prop_map(ReplySpec::Ok),
        1 => Just(ReplySpec::Echo),
    ];
    let inject = (
        1..=MAX_ENTRY_STEP,
        0..PEER_NAMES.len(),
        proptest::option::weighted(0.8, 0..4usize),
    )
        .prop_map(|(after_step, to, back)| InjectSpec {
            after_step,
            to,
            back,
        });
    let drop = (1..=MAX_ENTRY_STEP, 0..PEER_NAMES.len())
        .prop_map(|(from_step, to)| DropSpec { from_step, to });
    (
        arb_program(depth),
        2..=PEER_NAMES.len(),
        0..PEER_NAMES.len(),
        list,
        proptest::collection::vec(rule, 0..5),
        default,
        proptest::collection::vec(inject, 0..4),
        proptest::collection::vec(drop, 0..3),
    )
        .prop_map(
            |(program, peers, init, list, rules, default, inject, drop)| RandomScenario {
                program,
                peers,
                init: init % peers,
                list,
                rules,
                default,
                inject,
                drop,
            },
        )
}

/// Scenarios of the default size: programs of at most five levels of generated
/// instructions.
pub fn arb_scenario() -> impl Strategy<Value = RandomScenario> {
    arb_scenario_with_depth(4)
}

/// [`arb_scenario`] with replay-stable programs ([`Program::replay_stable`]): the
/// scenarios of the merge-law tests.
pub fn arb_scenario_for_laws() -> impl Strategy<Value = RandomScenario> {
    arb_scenario().prop_map(|mut s| {
        s.program = s.program.replay_stable();
        s
    })
}

impl RandomScenario {
    /// The script.
    pub fn script(&self) -> String {
        self.program.text_for(self.peers)
    }

    /// The peers that exist, init peer included.
    pub fn peers(&self) -> &[&'static str] {
        &PEER_NAMES[..self.peers]
    }

    /// The scenario as FORMAT.md §1 JSON, named `name`.
    pub fn to_json_named(&self, name: &str, description: &str) -> Value {
        let peer = |n: usize| PEER_NAMES[n % self.peers];
        // The service `err` takes error objects (whose messages are compared nowhere)
        // and answers without echoing them.
        let err_rule = json!({"service": "err", "result": {"ok": 1}});
        let list_rule = json!({"service": "list", "result": self.list.to_json()});
        let rules: Vec<Value> = [err_rule, list_rule]
            .into_iter()
            .chain(self.rules.iter().map(|r| {
                let mut rule = serde_json::Map::new();
                if let Some(p) = r.peer {
                    rule.insert("peer".into(), json!(PEER_NAMES[p]));
                }
                if let Some(s) = r.service {
                    rule.insert("service".into(), json!(format!("s{s}")));
                }
                rule.insert("result".into(), r.reply.to_json());
                Value::Object(rule)
            }))
            .collect();
        let inject: Vec<Value> = self
            .inject
            .iter()
            .map(|i| {
                let mut entry = json!({"after_step": i.after_step, "to": peer(i.to)});
                if let Some(back) = i.back {
                    entry["data_from_step"] = json!(i.after_step.saturating_sub(back).max(1));
                }
                entry
            })
            .collect();
        let drop: Vec<Value> = self
            .drop
            .iter()
            .map(|d| json!({"from_step": d.from_step, "to": peer(d.to)}))
            .collect();
        let mut scenario = json!({
            "name": name,
            "description": description,
            "source": "new",
            "air": self.script(),
            "particle": {
                "id": "particle-random",
                "init_peer": PEER_NAMES[self.init],
                "timestamp": 1_700_000_000_000u64,
                "ttl": 120_000
            },
            "peers": self.peers(),
            "services": {"rules": rules, "default": self.default.to_json()},
            "max_steps": 80
        });
        if !inject.is_empty() {
            scenario["inject"] = Value::Array(inject);
        }
        if !drop.is_empty() {
            scenario["drop"] = Value::Array(drop);
        }
        scenario
    }

    /// The scenario as FORMAT.md §1 JSON.
    pub fn to_json(&self) -> Value {
        self.to_json_named("random/run", "a generated multi-peer run")
    }

    /// The scenario.
    pub fn scenario(&self) -> Scenario {
        // The JSON is built from typed parts that always satisfy FORMAT.md §1.
        Scenario::from_json(&self.to_json().to_string()).expect("generated scenarios are valid")
    }
}

impl std::fmt::Debug for RandomScenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = serde_json::to_string_pretty(&self.to_json()).map_err(|_| std::fmt::Error)?;
        f.write_str(&text)
    }
}

impl ReplySpec {
    fn to_json(&self) -> Value {
        let value = |v: usize| -> Value {
            // The table holds JSON literals.
            serde_json::from_str(VALUES[v]).expect("VALUES are JSON")
        };
        match self {
            ReplySpec::Ok(v) => json!({"ok": value(*v)}),
            ReplySpec::Error(code) => {
                json!({"error": {"code": code, "message": format!("error {code}")}})
            }
            ReplySpec::Echo => json!({"echo": "first"}),
            ReplySpec::Delay(rounds, v) => {
                json!({"delay": {"rounds": rounds, "result": {"ok": value(*v)}}})
            }
            ReplySpec::Sequence(entries) => {
                json!({"sequence": entries.iter().map(ReplySpec::to_json).collect::<Vec<_>>()})
            }
            ReplySpec::Never => json!({"none": true}),
            ReplySpec::NotJson => json!({"raw": {"ret_code": 0, "result": "not json"}}),
        }
    }
}

/// What one run of a scenario left behind, per step and per peer.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The script.
    pub script: Arc<str>,
    /// Every step, in order.
    pub steps: Vec<ObservedStep>,
    /// The peers that were invoked at least once, in `peers` order.
    pub peers: Vec<PeerData>,
    /// Why the run stopped.
    pub end: End,
}

impl Observed {
    /// Every distinct non-empty data of the run (inputs and outputs), in first-seen order.
    pub fn all_data(&self) -> Vec<Arc<Vec<u8>>> {
        let mut all: Vec<Arc<Vec<u8>>> = Vec::new();
        for step in &self.steps {
            for data in [&step.prev_data, &step.current_data, &step.output] {
                if !data.is_empty() && !all.iter().any(|d| d == data) {
                    all.push(data.clone());
                }
            }
        }
        all
    }
}

/// One invoke of a run.
#[derive(Debug, Clone)]
pub struct ObservedStep {
    /// The 1-based step number.
    pub step: usize,
    /// The invoked peer.
    pub peer: String,
    /// Why it was invoked.
    pub cause: Cause,
    /// The interpreter's return code.
    pub ret_code: i32,
    /// Whether call results were passed in.
    pub with_results: bool,
    /// `prev_data`.
    pub prev_data: Arc<Vec<u8>>,
    /// `current_data`.
    pub current_data: Arc<Vec<u8>>,
    /// The data the step returned.
    pub output: Arc<Vec<u8>>,
}

/// One peer's view of a run.
#[derive(Debug, Clone)]
pub struct PeerData {
    /// The peer.
    pub peer: String,
    /// The run parameters of its invokes.
    pub params: RunParams,
    /// The data it stored after each of its steps, in step order: the last one is its
    /// final state.
    pub stored: Vec<Arc<Vec<u8>>>,
    /// The non-empty data it received, in step order.
    pub received: Vec<Arc<Vec<u8>>>,
}

impl PeerData {
    /// Its final stored data.
    pub fn last(&self) -> &Arc<Vec<u8>> {
        // A peer is listed only once it has a step.
        self.stored.last().expect("a listed peer has run")
    }

    /// Everything it stored or received, distinct, in first-seen order.
    pub fn known(&self) -> Vec<Arc<Vec<u8>>> {
        let mut known: Vec<Arc<Vec<u8>>> = Vec::new();
        for data in self.stored.iter().chain(&self.received) {
            if !data.is_empty() && !known.iter().any(|k| k == data) {
                known.push(data.clone());
            }
        }
        known
    }
}

/// Runs a scenario with every step kept.
pub fn observe(scenario: &Scenario) -> Result<Observed, SimError> {
    let run = run(scenario, KeepInputs::All)?;
    let script: Arc<str> = Arc::from(scenario.script()?);
    let steps: Vec<ObservedStep> = run
        .records
        .iter()
        .zip(&run.transcript.steps)
        .map(|(record, step)| ObservedStep {
            step: record.step,
            peer: record.peer.clone(),
            cause: step.cause.clone(),
            ret_code: step.ret_code,
            with_results: !record.call_results.is_empty(),
            prev_data: record.prev_data.clone(),
            current_data: record.current_data.clone(),
            output: record.output.clone(),
        })
        .collect();
    let peers = scenario
        .peers
        .iter()
        .filter(|p| steps.iter().any(|s| &s.peer == *p))
        .map(|p| PeerData {
            peer: p.clone(),
            params: run_params(scenario, p),
            stored: steps
                .iter()
                .filter(|s| &s.peer == p)
                .map(|s| s.output.clone())
                .collect(),
            received: steps
                .iter()
                .filter(|s| &s.peer == p && !s.current_data.is_empty())
                .map(|s| s.current_data.clone())
                .collect(),
        })
        .collect();
    Ok(Observed {
        script,
        steps,
        peers,
        end: run.transcript.end,
    })
}
