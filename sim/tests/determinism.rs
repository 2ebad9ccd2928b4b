//! The interpreter is a pure function: running any scenario twice gives byte-identical
//! data at every step, re-invoking a step on its recorded inputs gives the same bytes,
//! and the data a step returns is accepted back as that peer's previous data.

use std::path::Path;

use braid_sim::{KeepInputs, Scenario, run, scenario_files};

fn is_failure_that_keeps_data(code: i32) -> bool {
    (1..=10).contains(&code) || (20000..30000).contains(&code)
}

fn check_folder(folder: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance")
        .join(folder);
    let files = scenario_files(&[root]).expect("scenario folder is readable");
    assert!(!files.is_empty(), "no scenarios under {folder}");
    for file in &files {
        let scenario = Scenario::load(file).expect("scenario loads");
        let first = run(&scenario, KeepInputs::All).expect("scenario runs");
        let second = run(&scenario, KeepInputs::All).expect("scenario runs");
        assert_eq!(
            first.records.len(),
            second.records.len(),
            "{}",
            scenario.name
        );
        for (a, b) in first.records.iter().zip(&second.records) {
            assert_eq!(
                a.output, b.output,
                "{} step {}: two runs differ",
                scenario.name, a.step
            );
            let again = braid_interpreter::invoke(
                &a.script,
                &a.prev_data,
                &a.current_data,
                &a.params,
                &a.call_results,
            );
            assert_eq!(
                again.data, *a.output,
                "{} step {}: same inputs, other bytes",
                scenario.name, a.step
            );
            let replay = braid_interpreter::invoke(
                &a.script,
                &a.output,
                &[],
                &a.params,
                &Default::default(),
            );
            assert!(
                !is_failure_that_keeps_data(replay.ret_code())
                    || replay.ret_code() == again.ret_code(),
                "{} step {}: own data refused as prev data: {}",
                scenario.name,
                a.step,
                replay.error_message()
            );
        }
    }
    files.len()
}

/// `invoke` recurses as deep as a script nests: give it the stack the driver gives it.
fn on_big_stack(folder: &'static str) -> usize {
    std::thread::Builder::new()
        .stack_size(braid_sim::driver::DRIVER_STACK_BYTES)
        .spawn(move || check_folder(folder))
        .expect("thread starts")
        .join()
        .expect("checks pass")
}

#[test]
fn conformance_scenarios_are_deterministic() {
    assert!(on_big_stack("scenarios") >= 300);
}

#[test]
fn real_programs_are_deterministic() {
    assert!(on_big_stack("real") >= 600);
}
