//! Workers as scopes of their own: the services deployed and the aliases made inside
//! a worker are the worker's (kept across a restart, out of the host's sight), `srv.list`
//! lists a scope's services and spells, `sig` signs with the worker's key, and an
//! inactive worker's spells stand still while it runs only the host's particles.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use braid_host::{MemoryNetwork, Node, NodeKey};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde_json::{Value, json};

static EXAMPLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/example_service.wasm"));

mod common;
use common::{call, call_on, call_script_via_relay, clock, eventually, install_spell, run_call};

fn key(n: u8) -> NodeKey {
    NodeKey::from_secret([n; 32])
}

/// A new worker of `node` for `deal`.
async fn new_worker(node: &Node, deal: &str) -> String {
    let worker = call(node, "worker", "create", vec![json!(deal), json!([])])
        .await
        .unwrap();
    worker.as_str().unwrap().to_owned()
}

/// How many times spell `id` on `worker` was triggered (its `hw_counter`).
async fn runs(node: &Node, worker: &str, id: &str) -> u64 {
    let got = call_on(node, worker, id, "get_u32", vec![json!("hw_counter")])
        .await
        .unwrap();
    got["num"].as_u64().unwrap()
}

/// `srv.add_alias("greeter", id)` on `scope` (a worker, or `%init_peer_id%`: the node).
async fn greeter(node: &Node, scope: &str, id: &Value) -> Result<Value, String> {
    let args = vec![json!("greeter"), id.clone()];
    call_on(node, scope, "srv", "add_alias", args).await
}

/// `srv.resolve_alias("greeter")` on `scope`.
async fn resolved(node: &Node, scope: &str) -> Result<Value, String> {
    call_on(node, scope, "srv", "resolve_alias", vec![json!("greeter")]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_services_and_aliases_are_its_own_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let build = || {
        Node::builder()
            .key(key(21))
            .data_dir(dir.path())
            .build()
            .unwrap()
    };
    let node = build();
    let worker = new_worker(&node, "deal-services").await;
    // Deployed inside the worker: modules and blueprints are the node's, the service
    // and its alias the worker's.
    let module = base64::engine::general_purpose::STANDARD.encode(EXAMPLE);
    let hash = call_on(
        &node,
        &worker,
        "dist",
        "add_module",
        vec![json!(module), json!({"name": "greeter"})],
    )
    .await
    .unwrap();
    let dependency = format!("hash:{}", hash.as_str().unwrap());
    let blueprint = call_on(
        &node,
        &worker,
        "dist",
        "make_blueprint",
        vec![json!("greeter"), json!([dependency])],
    )
    .await
    .unwrap();
    let blueprint_id = call_on(&node, &worker, "dist", "add_blueprint", vec![blueprint])
        .await
        .unwrap();
    let id = call_on(&node, &worker, "srv", "create", vec![blueprint_id.clone()])
        .await
        .unwrap();
    assert_eq!(greeter(&node, &worker, &id).await, Ok(json!("")));
    assert_eq!(
        call_on(&node, &worker, "greeter", "greet", vec![json!("worker")]).await,
        Ok(json!("Hello, worker!"))
    );
    assert_eq!(resolved(&node, &worker).await, Ok(id.clone()));
    // The host sees neither the alias nor the service.
    assert_eq!(
        call(&node, "srv", "resolve_alias_opt", vec![json!("greeter")]).await,
        Ok(json!([]))
    );
    for service in ["greeter", id.as_str().unwrap()] {
        let e = call(&node, service, "greet", vec![json!("host")])
            .await
            .unwrap_err();
        assert!(e.contains("not found"), "{service}: {e}");
    }
    // `srv.list` lists a scope's services and spells (services of type spell).
    let spell = install_spell(
        &node,
        &worker,
        "(null)",
        json!({}),
        clock(0),
        Some("worker-spell"),
    )
    .await
    .unwrap();
    let listed = call_on(&node, &worker, "srv", "list", vec![])
        .await
        .unwrap();
    assert_eq!(
        listed,
        json!([
            {"id": id, "blueprint_id": blueprint_id,
             "service_type": "service", "owner_id": node.peer_id(), "aliases": ["greeter"], "worker_id": worker},
            {"id": spell, "blueprint_id": "spell", "service_type": "spell",
             "owner_id": node.peer_id(), "aliases": ["worker-spell"], "worker_id": worker},
        ])
    );
    assert_eq!(call(&node, "srv", "list", vec![]).await, Ok(json!([])));
    // An alias names one service or spell of the scope: given to the other, it moves.
    assert_eq!(greeter(&node, &worker, &json!(spell)).await, Ok(json!("")));
    assert_eq!(resolved(&node, &worker).await, Ok(json!(spell)));
    assert_eq!(greeter(&node, &worker, &id).await, Ok(json!("")));
    assert_eq!(resolved(&node, &worker).await, Ok(id.clone()));
    let info = call_on(&node, &worker, "srv", "info", vec![json!(spell)]).await;
    assert_eq!(info.unwrap()["aliases"], json!([]));
    drop(node);

    // Restarted on the same data dir: the worker's service answers by its alias again.
    let node = build();
    assert_eq!(
        call_on(&node, &worker, "greeter", "greet", vec![json!("again")]).await,
        Ok(json!("Hello, again!"))
    );
    assert_eq!(
        call(&node, "srv", "resolve_alias_opt", vec![json!("greeter")]).await,
        Ok(json!([]))
    );
    // The host's own alias of the same name is another service's, in its own scope.
    let host_id = call(&node, "srv", "create", vec![blueprint_id])
        .await
        .unwrap();
    assert_ne!(host_id, id);
    assert_eq!(
        greeter(&node, "%init_peer_id%", &host_id).await,
        Ok(json!(""))
    );
    assert_eq!(
        call(&node, "srv", "resolve_alias", vec![json!("greeter")]).await,
        Ok(host_id)
    );
    assert_eq!(resolved(&node, &worker).await, Ok(id));
    // Removed, the worker takes its services with it: the host's stays.
    assert_eq!(
        call(&node, "worker", "remove", vec![json!(worker)]).await,
        Ok(json!(""))
    );
    let listed = call(&node, "srv", "list", vec![]).await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sig_in_a_worker_uses_the_workers_key() {
    let node = Node::builder().key(key(22)).build().unwrap();
    node.register_service("registry", |_| async { Ok(json!([1, 2, 3])) });
    let worker = new_worker(&node, "deal-sig").await;
    // A particle of the worker's own (its spell's) signs a record with its key.
    let script = r#"
      (seq
        (call %init_peer_id% ("registry" "get_record_bytes") [] data)
        (seq
          (call %init_peer_id% ("sig" "sign") [data] signed)
          (seq
            (call %init_peer_id% ("sig" "get_peer_id") [] me)
            (seq
              (call %init_peer_id% ("json" "obj") ["signed" signed "me" me] response)
              (call %init_peer_id% ("callbackSrv" "response") [response])))))"#;
    let spell = install_spell(&node, &worker, script, json!({}), clock(0), None)
        .await
        .unwrap();
    let signed: Value = eventually(|| {
        let (node, worker, spell) = (&node, &worker, &spell);
        async move {
            let got = call_on(node, worker, spell, "get_string", vec![json!("signed")])
                .await
                .unwrap();
            (got["absent"] == false)
                .then(|| serde_json::from_str(got["str"].as_str().unwrap()).unwrap())
        }
    })
    .await;
    assert_eq!(signed["success"], true, "{signed}");
    let signature: Vec<u8> = serde_json::from_value(signed["signature"][0].clone()).unwrap();
    let me = call_on(&node, &worker, &spell, "get_string", vec![json!("me")])
        .await
        .unwrap();
    assert_eq!(me["str"], json!(json!(worker).to_string()));
    // The worker's public key is in its peer id (an identity multihash of the
    // protobuf-encoded key: the last 32 bytes).
    let id_bytes = bs58::decode(&worker).into_vec().unwrap();
    let public: [u8; 32] = id_bytes[id_bytes.len() - 32..].try_into().unwrap();
    let public = VerifyingKey::from_bytes(&public).unwrap();
    let signature = Signature::from_slice(&signature).unwrap();
    public.verify(&[1, 2, 3], &signature).unwrap();
    // `verify` checks against the scope's key: the worker's, not the host's.
    let args = || vec![json!(signature.to_bytes().to_vec()), json!([1, 2, 3])];
    assert_eq!(
        call_on(&node, &worker, "sig", "verify", args()).await,
        Ok(json!(true))
    );
    assert_eq!(call(&node, "sig", "verify", args()).await, Ok(json!(false)));
    assert_eq!(
        call_on(&node, &worker, "sig", "get_peer_id", vec![]).await,
        Ok(json!(worker))
    );
    // The host's particle does not sign with the worker's key.
    let e = call_on(&node, &worker, "sig", "sign", vec![json!([1, 2, 3])])
        .await
        .unwrap_err();
    assert!(e.contains("is not allowed to sign data on"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inactive_workers_spells_stand_still_and_it_runs_the_hosts_particles_only() {
    let dir = tempfile::tempdir().unwrap();
    let net = Arc::new(MemoryNetwork::default());
    let build = || {
        let node = Node::builder()
            .key(key(23))
            .data_dir(dir.path())
            .network(net.clone())
            .build()
            .unwrap();
        net.attach(&node);
        node
    };
    let node = build();
    let stranger = Node::builder()
        .key(key(24))
        .relay(node.peer_id())
        .default_ttl(Duration::from_secs(1))
        .network(net.clone())
        .build()
        .unwrap();
    net.attach(&stranger);
    let worker = new_worker(&node, "deal-active").await;
    // The stranger reaches the worker through the node that hosts it.
    let ask = || {
        run_call(
            &stranger,
            call_script_via_relay(&worker, "sig", "get_peer_id", 0),
            vec![],
        )
    };
    assert_eq!(ask().await, Ok(json!(worker)));
    assert_eq!(
        call(&node, "worker", "is_active", vec![json!(worker)]).await,
        Ok(json!(true))
    );
    // Only the host (or its management peer) switches a worker.
    let e = run_call(
        &stranger,
        call_script_via_relay(node.peer_id(), "worker", "deactivate", 1),
        vec![json!(worker)],
    )
    .await
    .unwrap_err();
    assert!(e.contains("Only the host and its management peer"), "{e}");
    let spell = install_spell(&node, &worker, "(null)", json!({}), clock(1), None)
        .await
        .unwrap();
    eventually(|| {
        let (node, worker, spell) = (&node, &worker, &spell);
        async move { (runs(node, worker, spell).await >= 1).then_some(()) }
    })
    .await;
    assert_eq!(
        call(&node, "worker", "deactivate", vec![json!(worker)]).await,
        Ok(json!(""))
    );
    assert_eq!(
        call(&node, "worker", "is_active", vec![json!(worker)]).await,
        Ok(json!(false))
    );
    // A stranger's particle to the inactive worker is dropped (it ends at its ttl);
    // the host's runs.
    let e = ask().await.unwrap_err();
    assert!(e.contains("the particle ended"), "{e}");
    let stopped = runs(&node, &worker, &spell).await;
    drop(node);

    // Restarted: still inactive, and its 1-second spell does not fire.
    let node = build();
    assert_eq!(
        call(&node, "worker", "is_active", vec![json!(worker)]).await,
        Ok(json!(false))
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(runs(&node, &worker, &spell).await, stopped);
    // Activated, it fires again and takes everyone's particles.
    assert_eq!(
        call(&node, "worker", "activate", vec![json!(worker)]).await,
        Ok(json!(""))
    );
    eventually(|| {
        let (node, worker, spell) = (&node, &worker, &spell);
        async move { (runs(node, worker, spell).await > stopped).then_some(()) }
    })
    .await;
    assert_eq!(ask().await, Ok(json!(worker)));
}
