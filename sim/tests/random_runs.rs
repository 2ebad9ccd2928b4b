//! The generator of random multi-peer runs: its programs parse, its scenarios are valid
//! and run, and the runs it produces are varied enough to test the merge laws with.

use braid_sim::random_runs::program::arb_program;
use braid_sim::random_runs::{arb_scenario, data_view, observe};
use braid_sim::transcript::{Cause, End};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{FileFailurePersistence, TestRunner};

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/random_runs.txt",
        ))),
        ..ProptestConfig::with_cases(512)
    })]

    /// Every generated program passes the parser's static validation.
    #[test]
    fn generated_programs_parse(program in arb_program(4)) {
        let text = program.text();
        if let Err(e) = braid_grammar::parse(&text) {
            return Err(TestCaseError::fail(format!("{}\n{text}", e.render(&text, "generated"))));
        }
    }
}

#[derive(Debug, Default)]
struct Variety {
    runs: usize,
    quiescent: usize,
    peers_invoked: [usize; 5],
    max_steps: usize,
    total_steps: usize,
    results_steps: usize,
    injected_steps: usize,
    failed_steps: usize,
    calls_in_last_data: usize,
    streams: usize,
    canons: usize,
}

/// The generated runs are varied: several peers take part, answers come in several
/// rounds, some deliveries are injected, some invokes fail, data holds calls, stream
/// values and canons.
#[test]
fn generated_runs_are_varied() {
    // A fixed seed: the counts below describe the generator, not one lucky draw.
    let mut runner = TestRunner::deterministic();
    let mut v = Variety::default();
    let strategy = arb_scenario();
    for _ in 0..200 {
        let generated = strategy
            .new_tree(&mut runner)
            .expect("scenarios generate")
            .current();
        let scenario = generated.scenario();
        let observed = observe(&scenario).unwrap_or_else(|e| panic!("{e}\n{generated:?}"));
        v.runs += 1;
        v.quiescent += usize::from(observed.end == End::Quiescent);
        v.peers_invoked[observed.peers.len()] += 1;
        v.max_steps = v.max_steps.max(observed.steps.len());
        v.total_steps += observed.steps.len();
        v.results_steps += observed.steps.iter().filter(|s| s.with_results).count();
        v.injected_steps += observed
            .steps
            .iter()
            .filter(|s| matches!(s.cause, Cause::Inject { .. }))
            .count();
        v.failed_steps += observed.steps.iter().filter(|s| s.ret_code != 0).count();
        for peer in &observed.peers {
            let view = data_view::read(peer.last()).unwrap_or_else(|e| panic!("{e}"));
            v.calls_in_last_data += view
                .trace
                .iter()
                .filter(|s| matches!(s, data_view::StateView::Executed { .. }))
                .count();
            v.streams += view
                .trace
                .iter()
                .filter(|s| {
                    matches!(
                        s,
                        data_view::StateView::Ap { .. }
                            | data_view::StateView::Executed {
                                output: data_view::Output::Stream { .. },
                                ..
                            }
                    )
                })
                .count();
            v.canons += view
                .trace
                .iter()
                .filter(|s| matches!(s, data_view::StateView::Canon(_)))
                .count();
        }
    }
    eprintln!("{v:#?}");
    assert!(v.peers_invoked[2] + v.peers_invoked[3] + v.peers_invoked[4] >= v.runs / 3);
    assert!(v.results_steps >= v.runs);
    assert!(v.failed_steps > 0 && v.injected_steps > 0);
    assert!(v.calls_in_last_data >= v.runs);
    assert!(v.streams > 0 && v.canons > 0);
}
