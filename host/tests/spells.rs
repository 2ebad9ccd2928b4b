//! Spells and workers through a node: the `spell` service and its rights, a spell's
//! store with the spell library's answers and roles, the conventions inside a spell's
//! particle, triggers, and workers as virtual peers with their own spells and aliases.

use std::sync::Arc;
use std::time::Duration;

use braid_host::{MemoryNetwork, Node, NodeKey};
use serde_json::{Value, json};

mod common;
use common::{call, call_on, clock, eventually, install_spell, no_trigger};

/// Where `call` runs: the calling node itself.
const HERE: &str = "%init_peer_id%";

fn once_now() -> Value {
    clock(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spell_service_installs_lists_and_removes_with_the_store() {
    let node = Node::builder().build().unwrap();
    let id = install_spell(
        &node,
        HERE,
        "(null)",
        json!({"a": 1, "name": "x"}),
        no_trigger(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(call(&node, "spell", "list", vec![]).await, Ok(json!([id])));
    // Init data: each field's JSON text.
    assert_eq!(
        call(&node, &id, "get_string", vec![json!("name")]).await,
        Ok(
            json!({"str": "\"x\"", "value": "\"x\"", "success": true, "error": "", "absent": false})
        )
    );
    assert_eq!(
        call(&node, &id, "get_string", vec![json!("missing")])
            .await
            .unwrap()["absent"],
        json!(true)
    );
    // The host writes `h_` and `hw_` keys only (the spell library's roles).
    let refused = call(&node, &id, "set_string", vec![json!("plain"), json!("v")])
        .await
        .unwrap();
    assert_eq!(refused["success"], json!(false));
    assert!(
        refused["error"].as_str().unwrap().contains("role Host"),
        "{refused}"
    );
    for (function, args) in [
        ("set_string", vec![json!("h_s"), json!("v")]),
        ("set_u32", vec![json!("h_n"), json!(7)]),
        ("list_push_string", vec![json!("hw_l"), json!("one")]),
        ("list_push_string", vec![json!("hw_l"), json!("two")]),
        ("push_mailbox", vec![json!("hello")]),
    ] {
        let done = call(&node, &id, function, args).await.unwrap();
        assert_eq!(done["success"], json!(true), "{function}: {done}");
    }
    assert_eq!(
        call(&node, &id, "get_u32", vec![json!("h_n")])
            .await
            .unwrap()["num"],
        json!(7)
    );
    assert_eq!(
        call(&node, &id, "list_get_strings", vec![json!("hw_l")])
            .await
            .unwrap()["strings"],
        json!(["one", "two"])
    );
    assert_eq!(
        call(&node, &id, "list_pop_string", vec![json!("hw_l")])
            .await
            .unwrap()["str"],
        json!("two")
    );
    let mailbox = call(&node, &id, "get_mailbox", vec![]).await.unwrap();
    assert_eq!(mailbox["messages"][0]["message"], json!("hello"));
    assert_eq!(
        mailbox["messages"][0]["init_peer_id"],
        json!(node.peer_id())
    );
    // Only the spell's own particles pop the mailbox or log.
    assert_eq!(
        call(&node, &id, "pop_mailbox", vec![]).await.unwrap()["success"],
        json!(false)
    );
    assert_eq!(
        call(&node, &id, "store_log", vec![json!("x")])
            .await
            .unwrap()["success"],
        json!(false)
    );
    assert_eq!(
        call(&node, &id, "get_script_source_from_env", vec![])
            .await
            .unwrap()["source_code"],
        json!("(null)")
    );
    // Bad input: a clear error, nothing installed.
    let bad = install_spell(&node, HERE, "(seq", json!({}), no_trigger(), None).await;
    assert!(bad.unwrap_err().contains("not valid AIR"));
    let mut ends_first = no_trigger();
    ends_first["clock"] = json!({"start_sec": 10, "end_sec": 5, "period_sec": 1});
    let bad = install_spell(&node, HERE, "(null)", json!({}), ends_first, None).await;
    assert!(
        bad.unwrap_err()
            .contains("end_sec 5 is before its start_sec 10")
    );
    assert_eq!(
        call(&node, "spell", "remove", vec![json!(id.clone())]).await,
        Ok(json!(""))
    );
    assert_eq!(call(&node, "spell", "list", vec![]).await, Ok(json!([])));
    assert!(
        call(&node, &id, "get_string", vec![json!("name")])
            .await
            .unwrap_err()
            .contains("not found")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_host_and_its_owner_install_spells() {
    let net = Arc::new(MemoryNetwork::default());
    let owner_key = NodeKey::from_secret([2; 32]);
    let node = Node::builder()
        .key(NodeKey::from_secret([1; 32]))
        .owner(owner_key.peer_id())
        .network(net.clone())
        .build()
        .unwrap();
    net.attach(&node);
    let owner = Node::builder()
        .key(owner_key)
        .network(net.clone())
        .build()
        .unwrap();
    net.attach(&owner);
    let stranger = Node::builder()
        .key(NodeKey::from_secret([3; 32]))
        .network(net.clone())
        .build()
        .unwrap();
    net.attach(&stranger);
    let args = || vec![json!("(null)"), json!({}), no_trigger(), json!("mine")];
    let refused = call_on(&stranger, node.peer_id(), "spell", "install", args()).await;
    assert!(
        refused
            .unwrap_err()
            .contains("Only the host, its management peer")
    );
    let id = call_on(&owner, node.peer_id(), "spell", "install", args())
        .await
        .unwrap();
    // The alias names it in the host's scope.
    assert_eq!(
        call_on(
            &stranger,
            node.peer_id(),
            "srv",
            "resolve_alias",
            vec![json!("mine")]
        )
        .await,
        Ok(id.clone())
    );
    assert!(
        call_on(&stranger, node.peer_id(), "spell", "remove", vec![id])
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_triggered_spell_reads_its_data_and_writes_its_response() {
    let node = Node::builder().build().unwrap();
    // Compiled Aqua's shape: arguments from getDataSrv, the result to callbackSrv.
    let script = r#"(xor
      (seq
        (seq
          (call %init_peer_id% ("getDataSrv" "spell_id") [] spell_id)
          (call %init_peer_id% ("getDataSrv" "greeting") [] greeting))
        (seq
          (call %init_peer_id% ("op" "concat_strings") [greeting "!"] loud)
          (seq
            (call %init_peer_id% (spell_id "store_log") [loud])
            (call %init_peer_id% ("callbackSrv" "response") [{"said": loud}]))))
      (call %init_peer_id% ("errorHandlingSrv" "error") [:error: 0]))"#;
    // `{"said": loud}` is no AIR: build the object with json.obj instead.
    let script = script.replace(
        r#"(call %init_peer_id% ("callbackSrv" "response") [{"said": loud}])"#,
        r#"(seq (call %init_peer_id% ("json" "obj") ["said" loud] o) (call %init_peer_id% ("callbackSrv" "response") [o]))"#,
    );
    let id = install_spell(
        &node,
        HERE,
        &script,
        json!({"greeting": "hello"}),
        once_now(),
        None,
    )
    .await
    .unwrap();
    let said = eventually(|| {
        let node = node.clone();
        let id = id.clone();
        async move {
            let got = call(&node, &id, "get_string", vec![json!("said")])
                .await
                .ok()?;
            (got["absent"] == json!(false)).then_some(got["str"].clone())
        }
    })
    .await;
    assert_eq!(said, json!("\"hello!\""));
    let logs = call(&node, &id, "get_logs", vec![]).await.unwrap();
    assert_eq!(logs["logs"][0]["message"], json!("hello!"));
    // The trigger event is in the store, as the spell library reads it.
    let trigger = call(&node, &id, "get_string", vec![json!("hw_trigger")])
        .await
        .unwrap();
    let trigger: Value = serde_json::from_str(trigger["str"].as_str().unwrap()).unwrap();
    assert_eq!(trigger["timer"].as_array().unwrap().len(), 1);
}

/// The spell library's own trigger test (fluencelabs/spell,
/// `integration-tests/test_aqua.py`, `store_triggers_script` and
/// `test_triggers_periodic`): the spell's particle reads `getDataSrv.hw_trigger` and
/// keeps it in its list `triggers`; as many events as runs (`hw_counter`), each a
/// timer event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spell_librarys_trigger_script_sees_each_event_once() {
    let node = Node::builder().build().unwrap();
    let script = r#"
    (seq
        (call %init_peer_id% ("getDataSrv" "hw_trigger") [] trigger)
        (seq
            (call %init_peer_id% ("json" "stringify") [trigger] trigger_str)
            (call %init_peer_id% ("spell" "list_push_string") ["triggers" trigger_str])
        )
    )"#;
    let id = install_spell(&node, HERE, script, json!({}), clock(1), None)
        .await
        .unwrap();
    let counter = || async {
        call(&node, &id, "get_u32", vec![json!("hw_counter")])
            .await
            .unwrap()["num"]
            .as_u64()
            .unwrap()
    };
    eventually(|| async { (counter().await >= 2).then_some(()) }).await;
    assert_eq!(
        call(
            &node,
            "spell",
            "update_trigger_config",
            vec![json!(id), no_trigger()]
        )
        .await,
        Ok(json!(""))
    );
    // The runs started before the update end their particles.
    let triggers = eventually(|| async {
        let got = call(&node, &id, "list_get_strings", vec![json!("triggers")])
            .await
            .unwrap();
        let triggers = got["strings"].as_array().unwrap().clone();
        (triggers.len() as u64 == counter().await).then_some(triggers)
    })
    .await;
    for trigger in triggers {
        let trigger: Value = serde_json::from_str(trigger.as_str().unwrap()).unwrap();
        assert_eq!(trigger["peer"], json!([]), "{trigger}");
        assert!(trigger["timer"][0]["timestamp"].as_u64().unwrap() > 1_600_000_000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spell_that_fails_keeps_its_error() {
    let node = Node::builder().build().unwrap();
    let script = r#"(xor
      (call %init_peer_id% ("math" "div") [1 0] r)
      (call %init_peer_id% ("errorHandlingSrv" "error") [:error: 3]))"#;
    let id = install_spell(&node, HERE, script, json!({}), once_now(), None)
        .await
        .unwrap();
    let errors = eventually(|| {
        let node = node.clone();
        let id = id.clone();
        async move {
            let all = call(&node, &id, "get_all_errors", vec![]).await.ok()?;
            let errors = all["particle_errors"].as_array()?.clone();
            (!errors.is_empty()).then_some(errors)
        }
    })
    .await;
    assert_eq!(errors[0]["particle_id"], json!(format!("spell_{id}_1")));
    assert_eq!(errors[0]["errors"][0]["error_idx"], json!(3));
    assert!(
        errors[0]["errors"][0]["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("div")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_is_a_peer_of_its_own_on_the_node() {
    let node = Node::builder().build().unwrap();
    let worker = call(&node, "worker", "create", vec![json!("deal-1"), json!([])])
        .await
        .unwrap();
    let worker = worker.as_str().unwrap().to_owned();
    assert_ne!(worker, node.peer_id());
    assert_eq!(
        call(&node, "worker", "get_worker_id", vec![json!("deal-1")]).await,
        Ok(json!([worker]))
    );
    assert_eq!(
        call(&node, "worker", "get_worker_id", vec![json!("other")]).await,
        Ok(json!([]))
    );
    let again = call(&node, "worker", "create", vec![json!("deal-1"), json!([])]).await;
    assert!(again.unwrap_err().contains("already exists"));
    assert_eq!(
        call(&node, "worker", "get_peer_id", vec![json!(["deal-1"])]).await,
        Ok(json!(worker))
    );
    assert!(
        call(&node, "worker", "get_peer_id", vec![json!([])])
            .await
            .unwrap_err()
            .contains("not found")
    );
    // Without a deal, a worker of the init peer (aqua-lib's `Worker`).
    let own = call(&node, "worker", "create", vec![]).await.unwrap();
    assert_eq!(
        call(&node, "worker", "get_worker_id", vec![]).await,
        Ok(json!([own.clone()]))
    );
    assert_eq!(
        call(&node, "worker", "remove", vec![own]).await,
        Ok(json!(""))
    );

    // A particle sent to the worker runs there, as the worker: its spells, its aliases.
    let id = json!(
        install_spell(
            &node,
            &worker,
            "(null)",
            json!({}),
            no_trigger(),
            Some("worker-spell"),
        )
        .await
        .unwrap()
    );
    assert_eq!(
        call_on(&node, &worker, "spell", "list", vec![]).await,
        Ok(json!([id.clone()]))
    );
    assert_eq!(call(&node, "spell", "list", vec![]).await, Ok(json!([])));
    assert_eq!(
        call_on(
            &node,
            &worker,
            "srv",
            "resolve_alias",
            vec![json!("worker-spell")]
        )
        .await,
        Ok(id.clone())
    );
    assert!(
        call(&node, "srv", "resolve_alias", vec![json!("worker-spell")])
            .await
            .is_err()
    );
    let set = call_on(
        &node,
        &worker,
        "worker-spell",
        "set_string",
        vec![json!("hw_k"), json!("v")],
    )
    .await
    .unwrap();
    assert_eq!(set["success"], json!(true));
    assert_eq!(
        call_on(
            &node,
            &worker,
            "worker-spell",
            "get_string",
            vec![json!("hw_k")]
        )
        .await
        .unwrap()["str"],
        json!("v")
    );
    // The worker signs what it produces with its own key: a particle that went through
    // it comes back with data the node checks.
    let script = format!(
        r#"(seq (call "{worker}" ("op" "identity") ["{worker}"] w) (call %init_peer_id% ("callbackSrv" "response") [w]))"#
    );
    assert_eq!(
        node.execute(script, Vec::<(String, Value)>::new()).await,
        Ok(json!(worker))
    );

    assert_eq!(
        call(&node, "worker", "list", vec![]).await,
        Ok(json!([worker.clone()]))
    );
    assert_eq!(
        call(&node, "worker", "remove", vec![json!(worker.clone())]).await,
        Ok(json!(""))
    );
    assert_eq!(call(&node, "worker", "list", vec![]).await, Ok(json!([])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_spell_runs_as_the_worker() {
    let node = Node::builder().build().unwrap();
    let worker = call(&node, "worker", "create", vec![json!("deal-2"), json!([])])
        .await
        .unwrap();
    let worker = worker.as_str().unwrap().to_owned();
    // %init_peer_id% inside the spell's particle is the worker.
    let script = r#"(seq
      (call %init_peer_id% ("getDataSrv" "spell_id") [] spell_id)
      (call %init_peer_id% (spell_id "set_string") ["who" %init_peer_id%]))"#;
    let id = install_spell(&node, &worker, script, json!({}), once_now(), None)
        .await
        .unwrap();
    let who = eventually(|| {
        let node = node.clone();
        let (worker, id) = (worker.clone(), id.clone());
        async move {
            let got = call_on(&node, &worker, &id, "get_string", vec![json!("who")])
                .await
                .ok()?;
            (got["absent"] == json!(false)).then_some(got["str"].clone())
        }
    })
    .await;
    assert_eq!(who, json!(worker));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_call_in_flight_goes_on_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let key = || NodeKey::from_secret([9; 32]);
    let first = Node::builder()
        .key(key())
        .data_dir(dir.path())
        .build()
        .unwrap();
    let worker = call(&first, "worker", "create", vec![json!("deal-r"), json!([])])
        .await
        .unwrap();
    let worker = worker.as_str().unwrap().to_owned();
    let (called_tx, mut called) = tokio::sync::mpsc::unbounded_channel();
    first.register_service("slow", move |call| {
        let called = called_tx.clone();
        async move {
            let _ = called.send(call.particle.host_id.clone());
            std::future::pending::<()>().await;
            Ok(Value::Null)
        }
    });
    let script = format!(
        r#"(seq (call "{worker}" ("slow" "f") [] x) (call %init_peer_id% ("done" "f") [x]))"#
    );
    let running = {
        let first = first.clone();
        let script = script.clone();
        tokio::spawn(async move {
            first
                .execute_with_ttl(
                    script,
                    Vec::<(String, Value)>::new(),
                    Duration::from_secs(60),
                )
                .await
        })
    };
    // The call runs on the worker (its scope is the worker's peer id).
    assert_eq!(called.recv().await, Some(worker.clone()));
    running.abort();
    drop(first);

    let second = Node::builder()
        .key(key())
        .data_dir(dir.path())
        .build()
        .unwrap();
    second.register_service("slow", |_| async { Ok(json!(42)) });
    let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel();
    second.register_service("done", move |call| {
        let done = done_tx.clone();
        async move {
            let _ = done.send(call.args.clone());
            Ok(Value::Null)
        }
    });
    second.resume();
    let args = tokio::time::timeout(Duration::from_secs(20), done.recv())
        .await
        .expect("the worker's particle went on")
        .unwrap();
    assert_eq!(args, vec![json!(42)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_worker_spell_may_call_the_guarded_builtins_and_others_not() {
    let node = Node::builder().build().unwrap();
    let worker = call(&node, "worker", "create", vec![json!("deal-g"), json!([])])
        .await
        .unwrap();
    let worker = worker.as_str().unwrap().to_owned();
    // `run-console.print` is guarded; the spell then notes that it got past it.
    let script = r#"(xor
      (seq
        (call %init_peer_id% ("run-console" "print") ["from a spell"])
        (seq
          (call %init_peer_id% ("getDataSrv" "spell_id") [] id)
          (call %init_peer_id% (id "set_string") ["printed" "yes"])))
      (call %init_peer_id% ("errorHandlingSrv" "error") [:error: 0]))"#;
    let mut ids = Vec::new();
    for alias in [Some("worker-spell"), None] {
        let id = install_spell(&node, &worker, script, json!({}), once_now(), alias)
            .await
            .unwrap();
        ids.push(id);
    }
    let printed = eventually(|| {
        let (node, worker, id) = (node.clone(), worker.clone(), ids[0].clone());
        async move {
            let got = call_on(&node, &worker, &id, "get_string", vec![json!("printed")])
                .await
                .ok()?;
            (got["absent"] == json!(false)).then_some(got["str"].clone())
        }
    })
    .await;
    assert_eq!(printed, json!("yes"));
    let refused = eventually(|| {
        let (node, worker, id) = (node.clone(), worker.clone(), ids[1].clone());
        async move {
            let all = call_on(&node, &worker, &id, "get_all_errors", vec![])
                .await
                .ok()?;
            all["particle_errors"][0]["errors"][0]["last_error"]["message"]
                .as_str()
                .map(str::to_owned)
        }
    })
    .await;
    assert!(
        refused.contains("only available to the host or worker spells"),
        "{refused}"
    );
}
