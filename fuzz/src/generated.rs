//! Valid multi-peer programs from the generator the merge-law property tests use
//! (`braid_sim::random_runs`), driven by the fuzzer's bytes instead of a random seed.

use braid_interpreter::CallResults;
use braid_sim::random_runs::{RandomScenario, arb_scenario, observe};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::keeps_data;

/// The scenario the generator makes with a ChaCha random stream keyed by the first 32
/// bytes of `bytes` (zero-padded). The bytes are a seed rather than the random stream
/// itself: proptest's pass-through stream can loop forever in this generator.
pub fn scenario_of(bytes: &[u8]) -> Option<RandomScenario> {
    let mut key = [0u8; 32];
    let n = bytes.len().min(32);
    key[..n].copy_from_slice(&bytes[..n]);
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &key);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    Some(arb_scenario().new_tree(&mut runner).ok()?.current())
}

/// A fuzz input for seed number `seed`: for seeding corpora.
pub fn seed_input(seed: u64) -> Vec<u8> {
    let mut key = vec![0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key
}

/// The oracle: the run completes without a panic or driver error; running it again
/// gives the same steps; no step refuses data (every byte of it was made by braid
/// itself, signed by trusted peers); and every step's output is accepted back as its
/// peer's previous data.
pub fn generated_run(bytes: &[u8]) {
    let Some(generated) = scenario_of(bytes) else {
        return;
    };
    let scenario = generated.scenario();
    let first = observe(&scenario).unwrap_or_else(|e| panic!("{e}\n{generated:?}"));
    let second = observe(&scenario).unwrap_or_else(|e| panic!("{e}\n{generated:?}"));
    let outline = |o: &braid_sim::random_runs::Observed| -> Vec<_> {
        o.steps
            .iter()
            .map(|s| (s.peer.clone(), s.ret_code, s.output.clone()))
            .collect()
    };
    assert_eq!(
        outline(&first),
        outline(&second),
        "same scenario, different run\n{generated:?}"
    );
    for step in &first.steps {
        assert!(
            !(1..=10).contains(&step.ret_code),
            "step {} refused braid's own data (code {})\n{generated:?}",
            step.step,
            step.ret_code
        );
        if keeps_data(step.ret_code) {
            continue;
        }
        let params = &first
            .peers
            .iter()
            .find(|p| p.peer == step.peer)
            .expect("every step's peer is listed")
            .params;
        let replay = crate::on_big_stack(|| {
            braid_interpreter::invoke(
                &first.script,
                &step.output,
                &[],
                params,
                &CallResults::new(),
            )
        });
        assert!(
            !(1..=10).contains(&replay.ret_code()),
            "step {}'s output refused as previous data: {}\n{generated:?}",
            step.step,
            replay.error_message()
        );
    }
}
