//! Inputs for the benchmarks, loaded from fixtures and ../shared/bench (the `shared`
//! folder beside the repository root).
#![warn(missing_docs)]

use std::path::{Path, PathBuf};

/// The `shared` folder beside the repository root.
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

/// The script of the bench scenario `shared/bench/<name>.json`: its `air`, or the script
/// its `air_generator` describes (generated here, outside any timed loop).
///
/// # Panics
///
/// If the scenario cannot be read or has no usable script: a benchmark without its input
/// has nothing to measure.
pub fn bench_script(name: &str) -> String {
    let path = shared_dir().join("bench").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let scenario: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    braid_sim::generate::scenario_air(&scenario)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The measured step of the bench scenario `shared/bench/<name>.json` (its `bench.step`):
/// the exact inputs `invoke` gets there, from a replay by braid-sim's driver. The
/// replay is checked against the scenario's `expected` transcript, so a benchmark never
/// measures a step that differs from the reference.
///
/// # Panics
///
/// If the scenario cannot be loaded or replayed, has no `bench` section, differs from
/// its `expected` transcript, or never reaches its step.
pub fn bench_step(name: &str) -> braid_sim::StepRecord {
    let path = shared_dir().join("bench").join(format!("{name}.json"));
    let scenario =
        braid_sim::Scenario::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let step = scenario
        .bench
        .as_ref()
        .unwrap_or_else(|| panic!("{} has no bench section", path.display()))
        .step;
    let run = braid_sim::run(&scenario, braid_sim::KeepInputs::Step(step))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if let Some(expected) = &scenario.expected {
        let differences = braid_sim::diff(
            expected,
            &run.transcript.to_json(),
            &scenario.ignore_args,
            braid_sim::SHOWN_DIFFERENCES,
        );
        assert!(
            differences.is_empty(),
            "{}: the replay differs from expected: {differences:?}",
            path.display()
        );
    }
    run.records
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{}: step {step} never ran", path.display()))
}

/// A script of the AIR corpus, `shared/corpus/air/<relative>`.
///
/// # Panics
///
/// If the file cannot be read.
pub fn corpus_script(relative: &str) -> String {
    let path = shared_dir().join("corpus/air").join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}
