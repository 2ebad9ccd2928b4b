//! The Wasm backend against the native one, and its containment of faults.
//!
//! - Every conformance scenario (`../shared/conformance/{scenarios,real}`) and braid's
//!   own (`fixtures/scenarios`) gives identical transcripts and byte-identical data at
//!   every step with both backends, and the Wasm run matches the reference's transcript.
//! - A trap, running out of memory and an endless loop in the module fail that invoke
//!   alone: the next one runs normally.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use braid_host::{Backend, BackendError, Fault, NativeBackend, WasmBackend, WasmLimits};
use braid_interpreter::{CallResults, Integrity, Limits, Outcome, RunParams};
use braid_sim::{KeepInputs, Scenario, diff, run_with, scenario_files};

fn shared(folder: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance")
        .join(folder)
}

fn wasm(limits: WasmLimits) -> WasmBackend {
    // A target folder shared with another checkout can hold that checkout's module:
    // comparing it with this checkout's native interpreter tells nothing.
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    assert_eq!(
        std::fs::canonicalize(&here).ok(),
        std::fs::canonicalize(braid_host::WASM_MODULE_SOURCE).ok(),
        "the Wasm module was built from {} (a target folder shared with another checkout); \
         touch host/build.rs or use a target folder of this checkout's own",
        braid_host::WASM_MODULE_SOURCE
    );
    WasmBackend::new(limits).expect("the interpreter module is built with the host")
}

/// Runs `f` on a thread with a stack as big as an invoke thread's.
fn on_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn_scoped(s, f)
            .expect("a thread starts")
            .join()
            .expect("no panic")
    })
}

/// A backend as the scenario driver's interpreter.
fn sim_interpreter(
    backend: &dyn Backend,
) -> impl Fn(&str, &[u8], &[u8], &RunParams, &CallResults) -> Result<Outcome, String> + Sync + '_ {
    move |script, prev, current, params, results| {
        backend
            .invoke(script, prev, current, params, results)
            .map_err(|e| e.to_string())
    }
}

#[test]
fn every_scenario_gives_identical_bytes_with_the_native_and_the_wasm_backend() {
    let native = NativeBackend;
    let wasm = wasm(WasmLimits::default());
    let (native, wasm) = (sim_interpreter(&native), sim_interpreter(&wasm));
    let files = scenario_files(&[
        shared("scenarios"),
        shared("real"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/scenarios"),
    ])
    .expect("the scenario folders are readable");
    assert!(files.len() > 1000, "only {} scenarios found", files.len());
    let gaps = known_gaps();
    let (mut steps, mut failures) = (0usize, Vec::new());
    for file in &files {
        let scenario = Scenario::load(file).expect("scenarios load");
        let a = run_with(&scenario, KeepInputs::All, &native).expect("native run");
        let b = run_with(&scenario, KeepInputs::All, &wasm).expect("wasm run");
        let (ta, tb) = (a.transcript.to_json(), b.transcript.to_json());
        if ta != tb {
            failures.push(format!("{}: transcripts differ", scenario.name));
            continue;
        }
        assert_eq!(a.records.len(), b.records.len());
        for (ra, rb) in a.records.iter().zip(&b.records) {
            steps += 1;
            if ra.output != rb.output {
                failures.push(format!("{}: step {} data differs", scenario.name, ra.step));
            }
        }
        if let Some(expected) = scenario
            .expected
            .as_ref()
            .filter(|_| !gaps.contains(&scenario.name))
        {
            let differences = diff(expected, &tb, &scenario.ignore_args, 3);
            if !differences.is_empty() {
                failures.push(format!(
                    "{}: wasm differs from the reference",
                    scenario.name
                ));
            }
        }
    }
    assert!(steps > 5000, "only {steps} steps compared");
    assert!(
        failures.is_empty(),
        "{} failures: {failures:#?}",
        failures.len()
    );
}

/// The scenarios the interpreter does not pass yet (`fixtures/conformance/known-gaps*.txt`,
/// kept by the conformance test): on them both backends must still agree, byte for
/// byte, but not with the reference.
fn known_gaps() -> std::collections::BTreeSet<String> {
    ["known-gaps.txt", "known-gaps-real.txt"]
        .iter()
        .flat_map(|file| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../fixtures/conformance")
                .join(file);
            let text = std::fs::read_to_string(&path).expect("the known-gaps lists are readable");
            text.lines()
                .map(|line| line.split('#').next().unwrap_or("").trim().to_owned())
                .filter(|name| !name.is_empty())
                .collect::<Vec<_>>()
        })
        .collect()
}

const SCRIPT: &str = r#"(seq (call %init_peer_id% ("s" "f") [1] x) (call "B" ("s" "g") [x]))"#;

/// One invoke of [`SCRIPT`] on a fresh particle.
fn invoke(backend: &dyn Backend) -> Result<braid_interpreter::Outcome, BackendError> {
    let params = RunParams {
        init_peer_id: "A".into(),
        current_peer_id: "A".into(),
        timestamp: 1,
        ttl: 10_000,
        particle_id: "p".into(),
        key: braid_sim::peer_key("A"),
        limits: Limits::REFERENCE_MAXIMA,
        integrity: Integrity {
            check: true,
            trusted_keys: Default::default(),
        },
    };
    backend.invoke(SCRIPT, &[], &[], &params, &Default::default())
}

fn assert_normal(outcome: Result<braid_interpreter::Outcome, BackendError>) {
    let outcome = outcome.expect("the invoke after a fault runs normally");
    assert_eq!(outcome.ret_code(), 0, "{}", outcome.error_message());
    assert_eq!(outcome.call_requests.len(), 1);
    assert_eq!(outcome.call_requests[0].function_name, "f");
}

#[test]
fn a_trap_fails_one_invoke_and_the_next_runs() {
    let backend = wasm(WasmLimits::default());
    on_big_stack(|| {
        backend.inject_fault(Fault::Trap);
        let err = invoke(&backend).expect_err("the fault fails the invoke");
        assert!(matches!(err, BackendError::Trap(_)), "{err}");
        assert_normal(invoke(&backend));
    });
}

#[test]
fn running_out_of_memory_fails_one_invoke_and_the_next_runs() {
    let limits = WasmLimits {
        memory_bytes: 256 << 20,
        ..WasmLimits::default()
    };
    let backend = wasm(limits);
    on_big_stack(|| {
        backend.inject_fault(Fault::OutOfMemory);
        let err = invoke(&backend).expect_err("the fault fails the invoke");
        assert_eq!(
            err,
            BackendError::OutOfMemory {
                limit_bytes: 256 << 20
            }
        );
        assert_normal(invoke(&backend));
    });
}

#[test]
fn an_endless_loop_is_stopped_at_the_deadline_and_the_next_invoke_runs() {
    let limits = WasmLimits {
        deadline: Duration::from_millis(200),
        ..WasmLimits::default()
    };
    let backend = wasm(limits);
    on_big_stack(|| {
        backend.inject_fault(Fault::EndlessLoop);
        let err = invoke(&backend).expect_err("the fault fails the invoke");
        assert_eq!(err, BackendError::Deadline(Duration::from_millis(200)));
        assert_normal(invoke(&backend));
    });
}

#[test]
fn a_module_that_is_not_the_interpreter_is_refused_with_a_reason() {
    let err = WasmBackend::with_module(b"\0asm garbage", WasmLimits::default())
        .expect_err("garbage is not a module");
    assert!(matches!(err, BackendError::Unavailable(_)), "{err}");
    let with_import = wat::parse_str(r#"(module (import "env" "f" (func)))"#).unwrap();
    let err = WasmBackend::with_module(&with_import, WasmLimits::default())
        .expect_err("imports are refused");
    assert!(err.to_string().contains("imports"), "{err}");
    // Exports missing: the invoke fails with an ABI error, not a panic.
    let empty = wat::parse_str("(module (memory (export \"memory\") 1))").unwrap();
    let backend = Arc::new(WasmBackend::with_module(&empty, WasmLimits::default()).unwrap());
    let err = on_big_stack(|| invoke(backend.as_ref())).expect_err("no braid_alloc");
    assert!(matches!(err, BackendError::Abi(_)), "{err}");
}
