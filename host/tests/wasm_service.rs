//! Wasm services on a node, and the Wasm interpreter backend on a node: the example
//! service answers scripts; the runner policy refuses what it must with an error the
//! script sees; a trap, running out of memory or fuel, and an endless loop — in a
//! service or in the interpreter module — fail that call or particle alone, and the
//! node answers the next particle normally.

use std::sync::Arc;
use std::time::Duration;

use braid_host::{
    ExecuteError, Fault, Node, RunnerPolicy, WasmBackend, WasmLimits, WasmService,
    WasmServiceConfig,
};
use serde_json::{Value, json};

static EXAMPLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/example_service.wasm"));

/// Calls `service.function(arg)` and returns the result, or the error message the
/// script caught, as compiled Aqua reports it.
fn script(service: &str, function: &str) -> String {
    format!(
        r#"(xor
             (seq
               (call %init_peer_id% ("getDataSrv" "arg") [] arg)
               (seq
                 (call %init_peer_id% ("{service}" "{function}") [arg] r)
                 (call %init_peer_id% ("callbackSrv" "response") [r])))
             (call %init_peer_id% ("errorHandlingSrv" "error") [%last_error%]))"#
    )
}

async fn call(node: &Node, service: &str, function: &str, arg: Value) -> Result<Value, String> {
    match node
        .execute(script(service, function), [("arg", arg)])
        .await
    {
        Ok(value) => Ok(value),
        Err(ExecuteError::Script(error)) => Err(error["message"]
            .as_str()
            .expect("an error object has a message")
            .to_owned()),
        Err(other) => panic!("unexpected end: {other}"),
    }
}

fn service(id: &str, module: &[u8], policy: RunnerPolicy) -> Arc<WasmService> {
    Arc::new(WasmService::from_bytes(id, module, policy).expect("the module loads"))
}

#[tokio::test]
async fn the_example_service_answers_a_script() {
    let node = Node::builder().build().unwrap();
    service("greeter", EXAMPLE, RunnerPolicy::default()).register(&node);
    assert_eq!(
        call(&node, "greeter", "greet", json!("braid")).await,
        Ok(json!("Hello, braid!"))
    );
    assert_eq!(
        call(&node, "greeter", "sum", json!([1, 2, 39])).await,
        Ok(json!(42))
    );
    let err = call(&node, "greeter", "sum", json!("x")).await.unwrap_err();
    assert!(err.contains("sum takes one array of numbers"), "{err}");
}

#[tokio::test]
async fn a_service_is_loaded_from_the_file_its_config_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("greeter.wasm");
    std::fs::write(&path, EXAMPLE).unwrap();
    // Keys left out of the policy take their defaults.
    let config: WasmServiceConfig = serde_json::from_value(json!({
        "id": "greeter",
        "module": path,
        "policy": {"memory_bytes": 16777216, "fuel": 50000000},
    }))
    .expect("the config parses");
    assert_eq!(config.policy.fuel, 50_000_000);
    assert!(config.policy.enabled);
    let node = Node::builder().build().unwrap();
    Arc::new(WasmService::load(&config).unwrap()).register(&node);
    assert_eq!(
        call(&node, "greeter", "greet", json!("file")).await,
        Ok(json!("Hello, file!"))
    );
    let missing = WasmServiceConfig {
        module: dir.path().join("missing.wasm"),
        ..config
    };
    let err = WasmService::load(&missing).unwrap_err().to_string();
    assert!(err.contains("missing.wasm"), "{err}");
}

#[tokio::test]
async fn the_runner_policy_refuses_with_an_error_the_script_sees() {
    let node = Node::builder().build().unwrap();
    let only_others = RunnerPolicy {
        allowed_init_peers: Some(vec!["braid-someone-else".into()]),
        ..RunnerPolicy::default()
    };
    service("private", EXAMPLE, only_others).register(&node);
    let disabled = RunnerPolicy {
        enabled: false,
        ..RunnerPolicy::default()
    };
    service("off", EXAMPLE, disabled).register(&node);
    let allowed = RunnerPolicy {
        allowed_init_peers: Some(vec![node.peer_id().to_owned()]),
        ..RunnerPolicy::default()
    };
    service("mine", EXAMPLE, allowed).register(&node);

    let err = call(&node, "private", "greet", json!("x"))
        .await
        .unwrap_err();
    assert!(err.contains("may not run for init peer"), "{err}");
    let err = call(&node, "off", "greet", json!("x")).await.unwrap_err();
    assert!(
        err.contains("disabled by this node's runner policy"),
        "{err}"
    );
    assert_eq!(
        call(&node, "mine", "greet", json!("me")).await,
        Ok(json!("Hello, me!"))
    );
}

/// A service module whose call runs `body` (WAT instructions ending in an i64).
fn misbehaving(body: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
             (memory (export "memory") 1)
             (func (export "braid_service_alloc") (param i32) (result i32) i32.const 1024)
             (func (export "braid_service_call") (param i32 i32 i32 i32) (result i64)
               {body}))"#
    ))
    .expect("valid WAT")
}

#[tokio::test]
async fn a_misbehaving_service_fails_its_call_and_the_node_goes_on() {
    let node = Node::builder().build().unwrap();
    let small = RunnerPolicy {
        memory_bytes: 1 << 20,
        fuel: 10_000_000,
        timeout_ms: 5_000,
        ..RunnerPolicy::default()
    };
    service("trap", &misbehaving("unreachable"), small.clone()).register(&node);
    service(
        "grow",
        &misbehaving(
            "(loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1)))) unreachable",
        ),
        small.clone(),
    )
    .register(&node);
    service(
        "spin",
        &misbehaving("(loop $l (br $l)) i64.const 0"),
        small.clone(),
    )
    .register(&node);
    let no_fuel_limit = RunnerPolicy {
        fuel: u64::MAX,
        timeout_ms: 100,
        ..small
    };
    service(
        "spin-forever",
        &misbehaving("(loop $l (br $l)) i64.const 0"),
        no_fuel_limit,
    )
    .register(&node);
    service("greeter", EXAMPLE, RunnerPolicy::default()).register(&node);

    for (id, expected) in [
        ("trap", "service trap trapped"),
        (
            "grow",
            "service grow ran out of memory (limit 1048576 bytes)",
        ),
        ("spin", "service spin ran out of fuel (limit 10000000)"),
        (
            "spin-forever",
            "service spin-forever ran past its timeout of 100ms",
        ),
    ] {
        let err = call(&node, id, "f", json!(1)).await.unwrap_err();
        assert!(err.contains(expected), "{id}: {err}");
        // The next particle, to this service and to another, runs normally.
        assert_eq!(
            call(&node, "greeter", "greet", json!(id)).await,
            Ok(json!(format!("Hello, {id}!")))
        );
    }
}

#[test]
fn modules_that_break_the_abi_are_refused_at_load() {
    for (module, expected) in [
        (b"not wasm".to_vec(), "not a Wasm module"),
        (
            wat::parse_str(r#"(module (import "env" "log" (func)))"#).unwrap(),
            "imports env.log",
        ),
        (
            wat::parse_str(r#"(module (memory (export "memory") 1))"#).unwrap(),
            "braid_service_alloc",
        ),
    ] {
        let err = WasmService::from_bytes("s", &module, RunnerPolicy::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{err}");
    }
}

#[tokio::test]
async fn a_node_on_the_wasm_backend_survives_faults_of_the_interpreter_module() {
    let limits = WasmLimits {
        memory_bytes: 256 << 20,
        deadline: Duration::from_millis(300),
    };
    let backend = Arc::new(WasmBackend::new(limits).expect("the module is built"));
    let node = Node::builder().backend(backend.clone()).build().unwrap();
    let add = r#"
      (seq
        (call %init_peer_id% ("getDataSrv" "x") [] x)
        (seq
          (call %init_peer_id% ("math" "add") [x 1] y)
          (call %init_peer_id% ("callbackSrv" "response") [y])))"#;
    assert_eq!(node.execute(add, [("x", json!(1))]).await, Ok(json!(2)));
    // Each run of `add` takes four invokes, the last after the response: inject a
    // fault only once they are all done, so that it hits the next particle.
    for (done, fault) in (1..).zip([Fault::Trap, Fault::OutOfMemory, Fault::EndlessLoop]) {
        settle(&node, 4 * done).await;
        backend.inject_fault(fault);
        let err = node
            .execute(add, [("x", json!(0))])
            .await
            .expect_err("the faulty invoke fails its particle");
        assert!(
            matches!(&err, ExecuteError::Node(m) if m.contains("interpreter module")),
            "{fault:?}: {err}"
        );
        assert_eq!(
            node.execute(add, [("x", json!(41))]).await,
            Ok(json!(42)),
            "after {fault:?}"
        );
    }
    assert_eq!(node.stats().failed_invokes, 3);
}

/// Waits until the node has run `invokes` invocations.
async fn settle(node: &Node, invokes: u64) {
    while node.stats().invokes < invokes {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn the_example_service_and_script_work_together() {
    // fixtures/examples/wasm-service-node.toml names this service and policy (its
    // parsing is tested with the settings of `braid node`, in the cli crate).
    let policy = RunnerPolicy {
        fuel: 100_000_000,
        ..RunnerPolicy::default()
    };
    // The module as the config names it would be built by cargo; use the same bytes.
    let node = Node::builder().build().unwrap();
    service("greeter", EXAMPLE, policy).register(&node);
    let script = include_str!("../../fixtures/examples/greeter_wasm_service.air");
    assert_eq!(
        node.execute(script, [("name", json!("braid"))]).await,
        Ok(json!("Hello, braid!"))
    );
}
