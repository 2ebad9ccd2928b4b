//! The node through its public API: execute, services, intake, expiry, concurrency, and
//! multi-peer choreographies over the in-memory network.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use braid_host::{
    ExecuteError, MemoryNetwork, Node, NodeEvent, NodeKey, Particle, Rejection, ServiceError,
};
use serde_json::{Value, json};

fn no_args() -> [(&'static str, Value); 0] {
    []
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The compiled-Aqua shape: arguments from getDataSrv, the body under an xor whose
/// handler sends the error to errorHandlingSrv.
fn aqua(body: &str) -> String {
    format!(
        r#"(xor
             (seq (call %init_peer_id% ("getDataSrv" "-relay-") [] -relay-) {body})
             (call %init_peer_id% ("errorHandlingSrv" "error") [:error: 0]))"#
    )
}

const ADD_ONE: &str = r#"
  (seq
    (call %init_peer_id% ("getDataSrv" "x") [] x)
    (seq
      (call %init_peer_id% ("math" "add") [x 1] y)
      (call %init_peer_id% ("callbackSrv" "response") [y])))"#;

const ECHO: &str = r#"
  (seq
    (call %init_peer_id% ("getDataSrv" "x") [] x)
    (call %init_peer_id% ("callbackSrv" "response") [x]))"#;

#[tokio::test]
async fn execute_resolves_with_the_response() {
    let node = Node::builder().build().unwrap();
    assert_eq!(
        node.execute(aqua(ADD_ONE), [("x", json!(41))]).await,
        Ok(json!(42))
    );
    let stats = node.stats();
    assert_eq!(stats.accepted, 1);
    assert_eq!(stats.calls, 4, "{stats:?}");
    assert!(stats.rejected.is_empty());
}

#[tokio::test]
async fn response_arity_gives_null_value_or_array() {
    let node = Node::builder().build().unwrap();
    let response =
        |args: &str| format!(r#"(call %init_peer_id% ("callbackSrv" "response") [{args}])"#);
    assert_eq!(node.execute(response(""), no_args()).await, Ok(Value::Null));
    assert_eq!(
        node.execute(response("\"a\""), no_args()).await,
        Ok(json!("a"))
    );
    assert_eq!(
        node.execute(response("\"a\" 1"), no_args()).await,
        Ok(json!(["a", 1]))
    );
}

#[tokio::test]
async fn the_relay_defaults_to_the_node_itself() {
    let node = Node::builder().build().unwrap();
    let script = aqua(r#"(call %init_peer_id% ("callbackSrv" "response") [-relay-])"#);
    assert_eq!(
        node.execute(&script, no_args()).await,
        Ok(json!(node.peer_id()))
    );
    let other = Node::builder().relay("braid-relay").build().unwrap();
    assert_eq!(
        other.execute(&script, no_args()).await,
        Ok(json!("braid-relay"))
    );
}

#[tokio::test]
async fn errors_sent_to_error_handling_srv_reject_execute() {
    let node = Node::builder().build().unwrap();
    let script = aqua(
        r#"(seq (call %init_peer_id% ("math" "div") [1 0] q)
                (call %init_peer_id% ("callbackSrv" "response") [q]))"#,
    );
    let Err(ExecuteError::Script(error)) = node.execute(script, no_args()).await else {
        panic!("expected the script's error");
    };
    assert_eq!(error["error_code"], json!(10000));
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(r#"'"i64 div overflow"'"#), "{message}");
}

#[tokio::test]
async fn unknown_services_fail_in_the_reference_form() {
    let node = Node::builder().build().unwrap();
    let script = aqua(r#"(call %init_peer_id% ("nope" "f") [] x)"#);
    let Err(ExecuteError::Script(error)) = node.execute(script, no_args()).await else {
        panic!("expected the script's error");
    };
    assert_eq!(
        error["message"],
        json!(
            r#"Local service error, ret_code is 1, error message is '"Service with id 'nope' not found (function f)"'"#
        )
    );
    // getDataSrv answers only the execute call's arguments.
    let script = aqua(r#"(call %init_peer_id% ("getDataSrv" "missing") [] x)"#);
    let Err(ExecuteError::Script(error)) = node.execute(script, no_args()).await else {
        panic!("expected the script's error");
    };
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("Service with id 'getDataSrv' not found (function missing)")
    );
}

#[tokio::test]
async fn an_interpreter_error_with_nothing_pending_ends_execute() {
    let node = Node::builder().build().unwrap();
    let result = node.execute("(seq (call", no_args()).await;
    let Err(ExecuteError::Interpreter { code: 1, message }) = result else {
        panic!("expected a parse error, got {result:?}");
    };
    assert!(message.contains("script"), "{message}");
    // A script without a response that finishes on this node resolves with null.
    let quiet = r#"(call %init_peer_id% ("op" "noop") [])"#;
    assert_eq!(node.execute(quiet, no_args()).await, Ok(Value::Null));
}

#[tokio::test]
async fn registered_services_come_after_builtins_and_see_the_call() {
    let node = Node::builder().build().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    node.register_service("greeting", move |call| {
        let log = Arc::clone(&log);
        async move {
            log.lock().unwrap().push(call.clone());
            match (call.function_name.as_str(), call.args.as_slice()) {
                ("hello", [Value::String(name)]) => Ok(json!(format!("Hello, {name}!"))),
                _ => Err(ServiceError::new("no such greeting")),
            }
        }
    });
    // A registered `op` cannot shadow op's built-ins, but serves what they lack.
    node.register_service("op", |call| async move {
        Ok(json!(format!("custom {}", call.function_name)))
    });
    let script = aqua(
        r#"(seq
             (call %init_peer_id% ("getDataSrv" "name") [] name)
             (seq
               (call %init_peer_id% ("greeting" "hello") [name] g)
               (seq
                 (call %init_peer_id% ("op" "identity") [g] same)
                 (seq
                   (call %init_peer_id% ("op" "custom_fn") [] c)
                   (call %init_peer_id% ("callbackSrv" "response") [same c])))))"#,
    );
    let result = node.execute(script, [("name", json!("braid"))]).await;
    assert_eq!(result, Ok(json!(["Hello, braid!", "custom custom_fn"])));
    let calls = seen.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].args, vec![json!("braid")]);
    assert_eq!(calls[0].tetraplets[0][0].service_id, "getDataSrv");
    assert_eq!(calls[0].tetraplets[0][0].function_name, "name");
    assert_eq!(calls[0].particle.init_peer_id, node.peer_id());
    assert_eq!(calls[0].particle.host_id, node.peer_id());

    assert!(node.remove_service("greeting"));
    let script = aqua(r#"(call %init_peer_id% ("greeting" "hello") ["x"] g)"#);
    assert!(matches!(
        node.execute(script, no_args()).await,
        Err(ExecuteError::Script(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_services_time_out_and_the_script_sees_the_error() {
    let node = Node::builder()
        .call_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    node.register_service("slow", |_| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(json!("too late"))
    });
    let script = aqua(
        r#"(seq (call %init_peer_id% ("slow" "f") [] x)
                (call %init_peer_id% ("callbackSrv" "response") [x]))"#,
    );
    let started = std::time::Instant::now();
    let Err(ExecuteError::Script(error)) = node.execute(script, no_args()).await else {
        panic!("expected the timeout to reach the script");
    };
    assert!(started.elapsed() < Duration::from_secs(5));
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("service call slow.f timed out after 100 ms"),
        "{message}"
    );
    assert_eq!(node.stats().call_timeouts, 1);
}

/// Detects that a future was dropped before it finished.
struct DropFlag(Arc<AtomicUsize>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_particle_is_cancelled() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&events);
    let node = Node::builder()
        .config(braid_host::NodeConfig {
            clock_skew_ms: 0,
            ..braid_host::NodeConfig::standard()
        })
        .observer(move |e| log.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let flag = Arc::clone(&dropped);
    node.register_service("never", move |_| {
        let guard = DropFlag(Arc::clone(&flag));
        async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok(Value::Null)
        }
    });
    let script = r#"(par (call %init_peer_id% ("never" "a") [] x) (call %init_peer_id% ("never" "b") [] y))"#;
    let started = std::time::Instant::now();
    let result = node
        .execute_with_ttl(script, no_args(), Duration::from_millis(300))
        .await;
    assert_eq!(result, Err(ExecuteError::Timeout { ttl_ms: 300 }));
    assert!(started.elapsed() < Duration::from_secs(3));
    // Cancellation happens at the deadline; give the aborted tasks a moment to drop.
    for _ in 0..100 {
        if dropped.load(Ordering::SeqCst) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        2,
        "both pending calls were cancelled"
    );
    let stats = node.stats();
    assert_eq!((stats.expired, stats.cancelled_calls), (1, 2), "{stats:?}");
    let events = events.lock().unwrap();
    assert!(events.iter().any(|e| matches!(
        e,
        NodeEvent::Expired {
            cancelled_calls: 2,
            ..
        }
    )));
}

#[tokio::test]
async fn refused_particles_are_counted_and_reported() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&events);
    let node = Node::builder()
        .observer(move |e| log.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    let inbox = node.inbox();
    let client = NodeKey::from_secret([9; 32]);
    let script = r#"(null)"#.to_owned();

    let fresh = Particle::new_signed(&client, "ok".into(), now_ms(), 60_000, script.clone());
    assert_eq!(inbox.deliver(fresh.encode()).await, Ok(()));

    let mut forged = fresh.clone();
    forged.script = r#"(call %init_peer_id% ("op" "noop") [])"#.into();
    assert_eq!(
        inbox.deliver(forged.encode()).await,
        Err(Rejection::BadSignature)
    );

    let old = Particle::new_signed(
        &client,
        "old".into(),
        now_ms() - 120_000,
        60_000,
        script.clone(),
    );
    assert!(matches!(
        inbox.deliver(old.encode()).await,
        Err(Rejection::Expired { .. })
    ));

    assert!(matches!(
        inbox.deliver(b"junk".to_vec()).await,
        Err(Rejection::Malformed(_))
    ));

    let stats = node.stats();
    assert_eq!(stats.accepted, 1);
    let kinds: Vec<_> = stats.rejected.into_iter().collect();
    assert_eq!(
        kinds,
        vec![("bad_signature", 1), ("expired", 1), ("malformed", 1)]
    );
    let reported = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, NodeEvent::Rejected { .. }))
        .count();
    assert_eq!(reported, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_particles_all_complete() {
    let node = Node::builder().build().unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let node = node.clone();
        tasks.spawn(async move {
            let result = node
                .execute_with_ttl(ECHO, [("x", json!(i))], Duration::from_secs(60))
                .await;
            (i, result)
        });
    }
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        let (i, result) = joined.unwrap();
        assert_eq!(result, Ok(json!(i)), "particle {i}");
        done += 1;
    }
    assert_eq!(done, 1000);
    let stats = node.stats();
    assert_eq!(stats.accepted, 1000);
    assert!(stats.rejected.is_empty(), "{stats:?}");
    assert_eq!(stats.calls, 2000);
    assert_eq!(stats.failed_invokes, 0);
}

/// Three nodes on one in-memory network: a client, its relay, and a third peer.
fn three_nodes() -> (Arc<MemoryNetwork>, Node, Node, Node) {
    let net = MemoryNetwork::new();
    let relay = Node::builder().network(net.clone()).build().unwrap();
    let peer = Node::builder().network(net.clone()).build().unwrap();
    let client = Node::builder()
        .network(net.clone())
        .relay(relay.peer_id())
        .build()
        .unwrap();
    for node in [&client, &relay, &peer] {
        net.attach(node);
    }
    (net, client, relay, peer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_run_a_choreography_through_the_relay() {
    let (_net, client, relay, peer) = three_nodes();
    peer.register_service("greeting", |call| async move {
        Ok(json!(format!(
            "hello from {}",
            &call.particle.host_id[..12]
        )))
    });
    // The compiler's shape: out through the relay to the peer, back through the relay.
    let script = aqua(
        r#"(seq
             (call %init_peer_id% ("getDataSrv" "peer") [] peer)
             (seq
               (call -relay- ("op" "noop") [])
               (seq
                 (call peer ("greeting" "hi") [] greeting)
                 (seq
                   (call peer ("peer" "identify") [] info)
                   (seq
                     (call -relay- ("op" "concat_strings") [greeting " via relay"] text)
                     (call %init_peer_id% ("callbackSrv" "response") [text info.$.node_version]))))))"#,
    );
    let result = client
        .execute_with_ttl(
            script,
            [("peer", json!(peer.peer_id()))],
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    let expected = format!("hello from {} via relay", &peer.peer_id()[..12]);
    assert_eq!(result[0], json!(expected));
    assert!(result[1].as_str().unwrap().starts_with("braid-"));
    // The particle went client → relay → peer → relay → client.
    assert_eq!(client.stats().sent, 1);
    assert_eq!(relay.stats().sent, 2);
    assert_eq!(peer.stats().sent, 1);
    for node in [&client, &relay, &peer] {
        assert_eq!(node.stats().failed_invokes, 0, "{:?}", node.stats());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_join_parallel_branches() {
    let (_net, client, relay, peer) = three_nodes();
    // Both branches run in parallel on two peers; the client joins on both values.
    let script = aqua(
        r#"(seq
             (seq
               (call %init_peer_id% ("getDataSrv" "a") [] a)
               (call %init_peer_id% ("getDataSrv" "b") [] b))
             (seq
               (par
                 (call a ("op" "identity") ["from a"] ra)
                 (call b ("math" "mul") [6 7] rb))
               (seq
                 (call %init_peer_id% ("op" "array") [ra rb] both)
                 (call %init_peer_id% ("callbackSrv" "response") [both]))))"#,
    );
    let args = [("a", json!(relay.peer_id())), ("b", json!(peer.peer_id()))];
    let result = client
        .execute_with_ttl(script, args, Duration::from_secs(20))
        .await;
    assert_eq!(result, Ok(json!(["from a", 42])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_peer_is_a_counted_send_failure() {
    let (net, client, relay, _peer) = three_nodes();
    net.detach(relay.peer_id());
    let script = aqua(
        r#"(seq (call -relay- ("op" "noop") [])
                (call %init_peer_id% ("callbackSrv" "response") ["back"]))"#,
    );
    let result = client
        .execute_with_ttl(script, no_args(), Duration::from_millis(500))
        .await;
    assert_eq!(
        result,
        Err(ExecuteError::Undeliverable {
            from: client.peer_id().to_owned(),
            to: relay.peer_id().to_owned(),
            reason: format!("peer {} is unreachable", relay.peer_id()),
        })
    );
    assert_eq!(client.stats().send_failures, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reusing_a_particle_id_cannot_touch_another_particle() {
    // Two particles with one id but different signers are different actors: each runs
    // its own script with its own data.
    let node = Node::builder().build().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    node.register_service("record", move |call| {
        let log = Arc::clone(&log);
        async move {
            log.lock()
                .unwrap()
                .push((call.particle.init_peer_id, call.args));
            Ok(Value::Null)
        }
    });
    for secret in [1u8, 2] {
        let key = NodeKey::from_secret([secret; 32]);
        // The node is not the init peer: address the call to it by id.
        let script = format!(
            r#"(call "{}" ("record" "f") [%init_peer_id%])"#,
            node.peer_id()
        );
        let p = Particle::new_signed(&key, "same-id".into(), now_ms(), 60_000, script);
        node.inbox().deliver(p.encode()).await.unwrap();
    }
    for _ in 0..200 {
        if seen.lock().unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(seen.len(), 2, "both particles ran: {seen:?}");
    for (init, args) in seen {
        assert_eq!(args, vec![json!(init)]);
    }
}

#[tokio::test]
async fn a_particle_seen_before_is_checked_again_when_any_signed_field_differs() {
    // A node remembers the particles whose signature it checked, so that one coming
    // back is not checked twice; a forgery that reuses the id and the signature with
    // another script, timestamp or ttl is still refused.
    let node = Node::builder().build().unwrap();
    let key = NodeKey::from_secret([3; 32]);
    let now = now_ms();
    let genuine = Particle::new_signed(&key, "p".into(), now, 60_000, "(null)".into());
    node.inbox().deliver(genuine.encode()).await.unwrap();
    node.inbox()
        .deliver(genuine.encode())
        .await
        .expect("the same particle again");
    for forged in [
        Particle {
            script: "(seq (null) (null))".into(),
            ..genuine.clone()
        },
        Particle {
            ttl: 50_000,
            ..genuine.clone()
        },
        Particle {
            timestamp: now - 1,
            ..genuine.clone()
        },
    ] {
        let refused = node.inbox().deliver(forged.encode()).await;
        assert!(
            matches!(refused, Err(Rejection::BadSignature)),
            "{refused:?}"
        );
    }
}

/// Waits until `f` holds, for up to 5 s.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_continues_from_its_stored_data() {
    let dir = tempfile::tempdir().unwrap();
    let key = NodeKey::from_secret([5; 32]);
    let client = NodeKey::from_secret([6; 32]);
    let counted = Arc::new(AtomicUsize::new(0));
    let start = |store: Option<&std::path::Path>| {
        let mut builder = Node::builder().key(key.clone());
        if let Some(dir) = store {
            builder = builder.data_dir(dir);
        }
        let node = builder.build().unwrap();
        let counter = Arc::clone(&counted);
        node.register_service("count", move |_| {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            async move { Ok(json!(n)) }
        });
        node
    };
    let script = format!(r#"(call "{}" ("count" "inc") [] n)"#, key.peer_id());
    let particle = Particle::new_signed(&client, "restart".into(), now_ms(), 60_000, script);

    let node = start(Some(dir.path()));
    node.inbox().deliver(particle.encode()).await.unwrap();
    // Two invocations: the arrival (which asks for the call) and the call's result.
    eventually("the call's result to be stored", || {
        node.stats().invokes == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(node);

    // The same particle again after a restart: its call is in the stored data, so it
    // is not made again.
    let node = start(Some(dir.path()));
    node.inbox().deliver(particle.encode()).await.unwrap();
    eventually("the redelivery to run", || node.stats().invokes == 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(counted.load(Ordering::SeqCst), 1);
    assert_eq!(node.stats().calls, 0);
    drop(node);

    // Without the stored data, the call runs again.
    let node = start(None);
    node.inbox().deliver(particle.encode()).await.unwrap();
    eventually("the call to run again", || {
        counted.load(Ordering::SeqCst) == 2
    })
    .await;
}

#[tokio::test]
async fn a_node_removes_data_that_expired_while_it_was_down() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = braid_host::DiskStore::open(dir.path(), 0).unwrap();
    let stale = braid_host::StoreKey {
        particle_id: "gone".into(),
        signature: vec![1; 64],
    };
    braid_host::DataStore::write(&store, &stale, now_ms() - 1, vec![1, 2, 3])
        .await
        .unwrap();
    drop(store);
    let node = Node::builder().data_dir(dir.path()).build().unwrap();
    assert_eq!(node.stats().store_removed_at_start, 1);
    // What is left is the node's database (spells, workers, deployed services).
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["braid.redb"]);
}

#[tokio::test(flavor = "current_thread")]
async fn results_ready_together_go_into_one_invocation() {
    let node = Node::builder().build().unwrap();
    // The three calls finish together: each waits until all three have started.
    let (open, gate) = tokio::sync::watch::channel(0usize);
    let open = Arc::new(open);
    node.register_service("gate", move |call| {
        let (open, mut gate) = (Arc::clone(&open), gate.clone());
        async move {
            open.send_modify(|started| *started += 1);
            gate.wait_for(|started| *started == 3).await.unwrap();
            Ok(json!(call.function_name))
        }
    });
    let script = r#"
      (seq
        (par (call %init_peer_id% ("gate" "a") [] a)
          (par (call %init_peer_id% ("gate" "b") [] b)
               (call %init_peer_id% ("gate" "c") [] c)))
        (call %init_peer_id% ("callbackSrv" "response") [a b c]))"#;
    assert_eq!(
        node.execute(script, no_args()).await,
        Ok(json!(["a", "b", "c"]))
    );
    eventually("the response's result to be fed back", || {
        node.stats().invokes == 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Arrival, the three results at once, the response's result.
    assert_eq!(node.stats().invokes, 3);
}
