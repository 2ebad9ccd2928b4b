//! Intake hardening: particle ids, the ttl cap, shares of particle slots per init peer
//! and per sender, the memory budget of service-call arguments, and refusals told to
//! the sender over libp2p.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use braid_host::p2p::{NetConfig, P2pNetwork};
use braid_host::{ExecuteError, Node, NodeConfig, NodeKey, Particle, Rejection};
use serde_json::json;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn signed(key: &NodeKey, id: &str, ttl: u32) -> Particle {
    Particle::new_signed(key, id.into(), now_ms(), ttl, "(null)".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_ids_and_long_ttls_are_refused_with_their_reason() {
    let node = Node::builder()
        .config(NodeConfig {
            max_ttl: Duration::from_secs(60),
            ..NodeConfig::standard()
        })
        .build()
        .unwrap();
    let inbox = node.inbox();
    let client = NodeKey::from_secret([9; 32]);
    let forged = inbox
        .deliver(signed(&client, "x\n2026-12-07T00:00:00Z INFO forged", 10_000).encode())
        .await
        .unwrap_err();
    assert_eq!(forged.kind(), "bad_id");
    assert!(!forged.to_string().contains('\n'), "{forged}");
    let long = inbox
        .deliver(signed(&client, &"i".repeat(129), 10_000).encode())
        .await
        .unwrap_err();
    assert_eq!(long.kind(), "bad_id");
    let ttl = inbox
        .deliver(signed(&client, "ttl", u32::MAX).encode())
        .await
        .unwrap_err();
    assert_eq!(
        ttl,
        Rejection::TtlTooLong {
            ttl_ms: u32::MAX,
            cap_ms: 60_000
        }
    );
    inbox
        .deliver(signed(&client, "fine", 60_000).encode())
        .await
        .unwrap();
    let stats = node.stats();
    assert_eq!(stats.rejected.get("bad_id"), Some(&2));
    assert_eq!(stats.rejected.get("ttl_too_long"), Some(&1));
    assert_eq!(stats.accepted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_init_peer_and_one_sender_get_their_share_of_slots() {
    let node = Node::builder()
        .config(NodeConfig {
            max_particles: 100,
            max_particles_per_init_peer: 3,
            max_particles_per_sender: 5,
            ..NodeConfig::standard()
        })
        .build()
        .unwrap();
    let inbox = node.inbox();
    let greedy = NodeKey::from_secret([1; 32]);
    let first = signed(&greedy, "g0", 60_000);
    inbox
        .deliver_from(first.clone(), Some("relay"), None)
        .await
        .unwrap();
    for n in 1..3 {
        let p = signed(&greedy, &format!("g{n}"), 60_000);
        inbox.deliver_from(p, Some("relay"), None).await.unwrap();
    }
    // The same particle again is no new particle.
    inbox
        .deliver_from(first, Some("relay"), None)
        .await
        .unwrap();
    let over = inbox
        .deliver_from(signed(&greedy, "g3", 60_000), Some("other"), None)
        .await
        .unwrap_err();
    assert_eq!(over.kind(), "init_peer_share");
    // Fresh keys through one connection: its share ends them.
    for n in 0..2 {
        let fresh = NodeKey::from_secret([10 + n; 32]);
        let p = signed(&fresh, &format!("f{n}"), 60_000);
        inbox.deliver_from(p, Some("relay"), None).await.unwrap();
    }
    let fresh = NodeKey::from_secret([20; 32]);
    let over = inbox
        .deliver_from(signed(&fresh, "f2", 60_000), Some("relay"), None)
        .await
        .unwrap_err();
    assert_eq!(over.kind(), "sender_share");
    // Another sender and another init peer still get in.
    inbox
        .deliver_from(signed(&fresh, "f2", 60_000), Some("someone-else"), None)
        .await
        .unwrap();
    let stats = node.stats();
    assert_eq!(stats.rejected.get("init_peer_share"), Some(&1));
    assert_eq!(stats.rejected.get("sender_share"), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invoke_whose_call_requests_are_over_the_budget_drops_the_particle() {
    let node = Node::builder()
        .config(NodeConfig {
            max_particle_bytes: 64 << 10,
            ..NodeConfig::standard()
        })
        .build()
        .unwrap();
    // Twenty parallel calls, each with a 10 KB argument: the invoke that would ask for
    // them all (200 KB) fails before it does, and the particle is dropped here.
    let mut calls = String::from("(null)");
    for n in 0..20 {
        calls = format!(r#"(par (call %init_peer_id% ("op" "identity") [v] r{n}) {calls})"#);
    }
    let script = format!(
        r#"(seq (call %init_peer_id% ("getDataSrv" "v") [] v)
             (xor {calls} (call %init_peer_id% ("callbackSrv" "response") ["some refused"])))"#
    );
    let big = json!("x".repeat(10_000));
    let answer = node.execute(script, [("v", big)]).await;
    let Err(ExecuteError::Undeliverable { reason, .. }) = &answer else {
        panic!("expected the particle dropped, got {answer:?}");
    };
    assert!(
        reason.contains("call requests of this invocation take more than the limit"),
        "{reason}"
    );
    let stats = node.stats();
    assert_eq!(stats.particles_over_budget, 1, "{stats:?}");
    assert_eq!(stats.calls_over_budget, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_particle_is_told_to_its_sender() {
    let node_key = NodeKey::from_secret([41; 32]);
    let mut config = NetConfig::new(*node_key.secret(), "braid-test");
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    let net = P2pNetwork::start(config).await.unwrap();
    let node = Node::builder()
        .key(node_key.clone())
        .network(net.clone())
        .config(NodeConfig {
            max_ttl: Duration::from_secs(5),
            ..NodeConfig::standard()
        })
        .build()
        .unwrap();
    net.serve(node.inbox(), None);
    let addr = net.listen_addrs().await.unwrap().remove(0);

    let client_key = NodeKey::from_secret([42; 32]);
    let client_net = P2pNetwork::start(NetConfig::new(*client_key.secret(), "braid-test"))
        .await
        .unwrap();
    client_net.connect(addr).await.unwrap();
    let client = Node::builder()
        .key(client_key)
        .network(client_net.clone())
        .build()
        .unwrap();
    client_net.serve(client.inbox(), None);
    let script = format!(
        r#"(seq (call "{}" ("op" "noop") []) (call %init_peer_id% ("callbackSrv" "response") ["ok"]))"#,
        node_key.peer_id()
    );
    let started = Instant::now();
    let answer = client
        .execute_with_ttl(
            script,
            Vec::<(String, serde_json::Value)>::new(),
            Duration::from_secs(30),
        )
        .await;
    match answer {
        Err(ExecuteError::Undeliverable { to, reason, .. }) => {
            assert_eq!(to, node_key.peer_id());
            assert!(
                reason.contains("over this node's cap of 5000 ms"),
                "{reason}"
            );
        }
        other => panic!("{other:?} {:?} {:?}", node.stats(), net.counters()),
    }
    // Told at once, not at the end of the ttl.
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(node.stats().rejected.get("ttl_too_long"), Some(&1));
    assert_eq!(net.counters()["refusals_told"], 1);
    drop(Arc::clone(&client_net));
}
