//! Mixed runs against the reference: with `BRAID_ORACLE` set to an `oracle` binary
//! (`../shared/oracle`), every public scenario runs with the odd peers on AquaVM and
//! the even ones on braid, then the other way round, and must give the expected
//! transcript, except for the scenarios braid alone does not pass yet (known gaps).
//! Without `BRAID_ORACLE` the test does nothing. `BRAID_ORACLE_CHECKS=1` says the
//! oracle is the `signatures` build: braid's peers then check signatures too, and
//! `BRAID_MIXED_DIR` (folders separated by `:`, by default `../shared/conformance`'s
//! `scenarios` and `real`) may point to scenarios renamed to real peer ids.
//!
//! `oracle serve` refuses a call result whose text is not JSON, though AquaVM takes
//! it (an error's text is its message; a success that is not JSON is the reference's
//! own error): such scenarios are counted apart and skipped. An `oracle` whose `serve`
//! passes the text on as `oracle run` does runs them too (README, "Mixed runs").

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use braid_sim::{OracleServe, PeerSet, Scenario, check_with, mixed, native_invoke, scenario_files};

fn known_gaps() -> BTreeSet<String> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/conformance/known-gaps.txt");
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn mixed_runs_give_the_expected_transcripts() {
    let Ok(oracle) = std::env::var("BRAID_ORACLE") else {
        eprintln!("BRAID_ORACLE is not set: no mixed runs");
        return;
    };
    let checks = std::env::var("BRAID_ORACLE_CHECKS").is_ok_and(|v| v == "1");
    let dirs: Vec<PathBuf> = match std::env::var_os("BRAID_MIXED_DIR") {
        Some(dirs) => std::env::split_paths(&dirs).collect(),
        None => {
            let public = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance");
            vec![public.join("scenarios"), public.join("real")]
        }
    };
    let serve = OracleServe::spawn(Path::new(&oracle)).expect("the oracle starts");
    let gaps = known_gaps();
    let files = scenario_files(&dirs).expect("scenarios");
    let mut failures = Vec::new();
    for spec in ["odd", "even"] {
        let set: PeerSet = spec.parse().unwrap();
        let (mut passed, mut failed, mut gap, mut unservable) = (0, 0, 0, 0);
        for file in &files {
            let scenario = Scenario::load(file).expect("the scenario loads");
            if gaps.contains(&scenario.name) {
                gap += 1;
                continue;
            }
            let interpreter = mixed(&scenario, &set, &serve, &native_invoke, checks);
            match check_with(&scenario, 3, &interpreter) {
                Ok(d) if d.is_empty() => passed += 1,
                Ok(d) => {
                    failed += 1;
                    failures.push(format!(
                        "{spec} {}: {}",
                        scenario.name,
                        d.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    ));
                }
                // `oracle serve` takes only JSON text as a successful call result: a
                // scenario whose service answers otherwise cannot run on it.
                Err(e) if e.to_string().contains("result is not JSON text") => unservable += 1,
                Err(e) => {
                    failed += 1;
                    failures.push(format!("{spec} {}: {e}", scenario.name));
                }
            }
        }
        eprintln!(
            "--reference-peers {spec}: {passed} passed, {failed} failed, {gap} known gaps \
             and {unservable} with non-JSON results (oracle serve cannot take them) skipped"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
