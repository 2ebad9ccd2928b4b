//! Nodes on braid-net over real sockets on loopback: the demo's choreography on three
//! nodes and a client, twenty nodes that find each other through Kademlia from one
//! bootstrap node, and a particle that cannot be delivered reported to its waiting
//! initiator.

use std::sync::Arc;
use std::time::{Duration, Instant};

use braid_host::p2p::{Multiaddr, NetConfig, P2pNetwork};
use braid_host::{ExecuteError, Node, NodeConfig, NodeKey};
use serde_json::json;

const DEMO: &str = include_str!("../../fixtures/examples/par_seq_timestamps.air");

fn key(n: u8) -> NodeKey {
    NodeKey::from_secret([n; 32])
}

/// A node of network `braid-test`: listening on a loopback port when `listen`,
/// bootstrapping from `bootstrap`.
async fn start(
    key: &NodeKey,
    listen: bool,
    bootstrap: Vec<Multiaddr>,
) -> (Node, Arc<P2pNetwork>, Option<Multiaddr>) {
    let mut config = NetConfig::new(*key.secret(), "braid-test");
    if listen {
        config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    }
    config.bootstrap = bootstrap;
    let net = P2pNetwork::start(config).await.expect("the network starts");
    let mut node_config = NodeConfig::standard();
    node_config.send_timeout = Duration::from_secs(600);
    let node = Node::builder()
        .key(key.clone())
        .network(net.clone())
        .config(node_config)
        .build()
        .expect("the node starts");
    net.serve(node.inbox(), None);
    let addr = net.listen_addrs().await.unwrap().into_iter().next();
    (node, net, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_and_a_client_run_the_demo() {
    let mut nodes = Vec::new();
    let mut addrs = Vec::new();
    for n in 1..=3 {
        let bootstrap = addrs.first().cloned().into_iter().collect();
        let (node, net, addr) = start(&key(n), true, bootstrap).await;
        addrs.push(addr.unwrap());
        nodes.push((node, net));
    }
    let client_key = key(9);
    let mut config = NetConfig::new(*client_key.secret(), "braid-test");
    config.bootstrap = Vec::new();
    let client_net = P2pNetwork::start(config).await.unwrap();
    let relay = client_net.connect(addrs[0].clone()).await.unwrap();
    assert_eq!(relay.to_string(), key(1).peer_id());
    let client = Node::builder()
        .key(client_key)
        .network(client_net.clone())
        .relay(relay.to_string())
        .build()
        .unwrap();
    client_net.serve(client.inbox(), None);

    let args = (1..=3).map(|n| (format!("relay{n}"), json!(key(n).peer_id())));
    let result = client
        .execute_with_ttl(DEMO, args, Duration::from_secs(20))
        .await;
    assert_eq!(result, Ok(json!("ok")));
    for (node, _) in &nodes {
        assert!(node.stats().calls >= 2, "{:?}", node.stats());
    }
    // The client reached nodes 2 and 3 through its relay only.
    assert_eq!(
        client_net.handle().connected_peers().await.unwrap(),
        vec![relay]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_nodes_find_each_other_through_kademlia() {
    let started = Instant::now();
    let (first, _first_net, first_addr) = start(&key(1), true, Vec::new()).await;
    let bootstrap = vec![first_addr.unwrap()];
    let mut others = Vec::new();
    for n in 2..=20 {
        others.push(start(&key(n), true, bootstrap.clone()).await);
    }
    // A chain through every node, each named by its peer id alone, then back.
    let end = r#"(call %init_peer_id% ("callbackSrv" "response") ["visited"])"#.to_owned();
    let script = (2..=20).rev().fold(end, |rest, n| {
        format!(
            r#"(seq (call "{}" ("op" "noop") []) {rest})"#,
            key(n).peer_id()
        )
    });
    let result = first
        .execute_with_ttl(&script, Vec::<(String, _)>::new(), Duration::from_secs(25))
        .await;
    assert_eq!(result, Ok(json!("visited")));
    for (node, _, _) in &others {
        assert_eq!(node.stats().calls, 1, "{}", node.peer_id());
    }
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_undeliverable_particle_is_reported_to_the_waiting_initiator() {
    let (_relay, _relay_net, relay_addr) = start(&key(1), true, Vec::new()).await;
    let (client, _client_net, _) = start(&key(9), false, Vec::new()).await;
    _client_net.connect(relay_addr.unwrap()).await.unwrap();
    // Nobody runs this key's node: the relay looks for it until it gives up.
    let absent = key(42).peer_id().to_owned();
    let script = format!(
        r#"(seq (call "{}" ("op" "noop") []) (seq (call "{absent}" ("op" "noop") []) (call %init_peer_id% ("callbackSrv" "response") ["reached"])))"#,
        key(1).peer_id()
    );
    let started = Instant::now();
    let result = client
        .execute_with_ttl(&script, Vec::<(String, _)>::new(), Duration::from_secs(6))
        .await;
    match result {
        Err(ExecuteError::Undeliverable { from, to, .. }) => {
            assert_eq!(from, key(1).peer_id());
            assert_eq!(to, absent);
        }
        other => panic!("expected an undeliverable report, got {other:?}"),
    }
    // Reported before the particle's deadline, not by the timeout.
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}
