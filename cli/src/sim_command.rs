//! `braid sim`: runs conformance scenarios with braid's interpreter, printing the
//! transcript of one or checking many against their expected transcripts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use braid_host::{Backend, backend_by_name};
use braid_interpreter::{CallResults, Outcome, RunParams};
use braid_sim::{
    Interpreter, KeepInputs, OracleServe, PeerSet, SHOWN_DIFFERENCES, Scenario, check_with, mixed,
    run_with, scenario_files,
};

/// Which peers run where, and whether braid's peers check signatures.
pub(crate) struct Peers {
    /// `--reference-peers`: the peers that run on the reference.
    pub(crate) reference: Option<String>,
    /// `--oracle`: the `oracle` binary.
    pub(crate) oracle: Option<PathBuf>,
    /// `--integrity on`.
    pub(crate) checks: bool,
}

/// The reference's side of a mixed run, when there is one.
struct Reference {
    set: PeerSet,
    serve: OracleServe,
}

impl Peers {
    fn start(&self) -> anyhow::Result<Option<Reference>> {
        let Some(spec) = &self.reference else {
            return Ok(None);
        };
        let set: PeerSet = spec.parse().map_err(anyhow::Error::msg)?;
        let oracle = self
            .oracle
            .as_ref()
            .context("--reference-peers needs --oracle")?;
        let serve = OracleServe::spawn(oracle)?;
        Ok(Some(Reference { set, serve }))
    }
}

/// Runs `f` with the interpreter of `scenario`'s invokes: braid's `backend`, or the
/// mixed one.
fn with_interpreter<T>(
    scenario: &Scenario,
    backend: &dyn Backend,
    reference: Option<&Reference>,
    checks: bool,
    f: impl FnOnce(&Interpreter<'_>) -> T,
) -> T {
    let braid = sim_interpreter(backend);
    let plain = |script: &str,
                 prev: &[u8],
                 current: &[u8],
                 params: &RunParams,
                 results: &CallResults| {
        let mut params = params.clone();
        params.integrity.check = checks;
        braid(script, prev, current, &params, results)
    };
    match reference {
        Some(r) => f(&mixed(scenario, &r.set, &r.serve, &plain, checks)),
        None => f(&plain),
    }
}

/// Prints the transcript of one scenario (pretty JSON), or with `check` runs every
/// scenario under `paths` and prints the failures and a `N passed, M failed` line.
/// `backend` names where `invoke` runs (`native` or `wasm`); `peers` may put some
/// peers on the reference.
pub(crate) fn sim(
    paths: &[PathBuf],
    check: bool,
    backend: &str,
    peers: &Peers,
) -> anyhow::Result<ExitCode> {
    let backend = backend_by_name(backend)?;
    let reference = peers.start()?;
    if check {
        return check_all(paths, backend.as_ref(), reference.as_ref(), peers.checks);
    }
    let [path] = paths else {
        anyhow::bail!("give one scenario to print its transcript, or --check to check many");
    };
    let scenario = Scenario::load(path).with_context(|| format!("{}", path.display()))?;
    let run = with_interpreter(
        &scenario,
        backend.as_ref(),
        reference.as_ref(),
        peers.checks,
        |interpreter| run_with(&scenario, KeepInputs::Nothing, interpreter),
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

fn check_all(
    paths: &[PathBuf],
    backend: &dyn Backend,
    reference: Option<&Reference>,
    checks: bool,
) -> anyhow::Result<ExitCode> {
    let files = scenario_files(paths)?;
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in &files {
        match check_one(file, backend, reference, checks) {
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
fn check_one(
    file: &Path,
    backend: &dyn Backend,
    reference: Option<&Reference>,
    checks: bool,
) -> Result<(), (String, Vec<String>)> {
    let scenario =
        Scenario::load(file).map_err(|e| (file.display().to_string(), vec![e.to_string()]))?;
    let result = with_interpreter(&scenario, backend, reference, checks, |interpreter| {
        check_with(&scenario, SHOWN_DIFFERENCES, interpreter)
    });
    match result {
        Ok(differences) if differences.is_empty() => Ok(()),
        Ok(differences) => Err((
            scenario.name,
            differences.iter().map(ToString::to_string).collect(),
        )),
        Err(e) => Err((scenario.name, vec![e.to_string()])),
    }
}
