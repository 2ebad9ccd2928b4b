//! `braid sim`: runs conformance scenarios with braid's interpreter, printing the
//! transcript of one or checking many against their expected transcripts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use braid_host::{Backend, backend_by_name};
use braid_interpreter::{CallResults, Outcome, RunParams};
use braid_sim::{KeepInputs, SHOWN_DIFFERENCES, Scenario, check_with, run_with, scenario_files};

/// Prints the transcript of one scenario (pretty JSON), or with `check` runs every
/// scenario under `paths` and prints the failures and a `N passed, M failed` line.
/// `backend` names where `invoke` runs (`native` or `wasm`).
pub(crate) fn sim(paths: &[PathBuf], check: bool, backend: &str) -> anyhow::Result<ExitCode> {
    let backend = backend_by_name(backend)?;
    if check {
        return check_all(paths, backend.as_ref());
    }
    let [path] = paths else {
        anyhow::bail!("give one scenario to print its transcript, or --check to check many");
    };
    let scenario = Scenario::load(path).with_context(|| format!("{}", path.display()))?;
    let run = run_with(
        &scenario,
        KeepInputs::Nothing,
        &sim_interpreter(backend.as_ref()),
    )
    .with_context(|| scenario.name.clone())?;
    println!("{}", serde_json::to_string_pretty(&run.transcript)?);
    Ok(ExitCode::SUCCESS)
}

/// `backend` as the scenario driver's interpreter ([`braid_sim::run_with`]).
pub(crate) fn sim_interpreter(
    backend: &dyn Backend,
) -> impl Fn(&str, &[u8], &[u8], &RunParams, &CallResults) -> Result<Outcome, String> + Sync + '_ {
    move |script, prev, current, params, results| {
        backend
            .invoke(script, prev, current, params, results)
            .map_err(|e| e.to_string())
    }
}

fn check_all(paths: &[PathBuf], backend: &dyn Backend) -> anyhow::Result<ExitCode> {
    let files = scenario_files(paths)?;
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in &files {
        match check_one(file, backend) {
            Ok(()) => passed += 1,
            Err((name, lines)) => {
                failed += 1;
                println!("FAIL {name}");
                for line in lines {
                    println!("  {line}");
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `Err` holds the scenario's name (its path if it cannot be read) and what to print.
fn check_one(file: &Path, backend: &dyn Backend) -> Result<(), (String, Vec<String>)> {
    let scenario =
        Scenario::load(file).map_err(|e| (file.display().to_string(), vec![e.to_string()]))?;
    match check_with(&scenario, SHOWN_DIFFERENCES, &sim_interpreter(backend)) {
        Ok(differences) if differences.is_empty() => Ok(()),
        Ok(differences) => Err((
            scenario.name,
            differences.iter().map(ToString::to_string).collect(),
        )),
        Err(e) => Err((scenario.name, vec![e.to_string()])),
    }
}
