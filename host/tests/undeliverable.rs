//! Undeliverable notices between in-memory nodes: a hop that gives up tells the
//! particle's init peer, whose `execute` ends at once; notices for anything else are
//! ignored. (`tcp.rs` has the same over TCP.)

use std::time::Duration;

use braid_host::{ExecuteError, MemoryNetwork, Node, Undeliverable};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_initiator_hears_from_the_hop_that_gave_up() {
    let net = MemoryNetwork::new();
    let [client, relay, peer] =
        [(); 3].map(|()| Node::builder().network(net.clone()).build().unwrap());
    for node in [&client, &relay, &peer] {
        net.attach(node);
    }
    net.detach(peer.peer_id());
    let script = format!(
        r#"(seq (call "{r}" ("op" "noop") [])
             (seq (call "{p}" ("op" "noop") [])
                  (call %init_peer_id% ("callbackSrv" "response") ["never"])))"#,
        r = relay.peer_id(),
        p = peer.peer_id()
    );
    let result = client
        .execute_with_ttl(
            script,
            Vec::<(String, Value)>::new(),
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(
        result,
        Err(ExecuteError::Undeliverable {
            from: relay.peer_id().to_owned(),
            to: peer.peer_id().to_owned(),
            reason: format!("peer {} is unreachable", peer.peer_id()),
        })
    );
    assert_eq!(relay.stats().send_failures, 1);
    assert_eq!(client.stats().send_failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_for_particles_nobody_waits_on_are_ignored() {
    let node = Node::builder().build().unwrap();
    let notice = |init_peer_id: &str| Undeliverable {
        init_peer_id: init_peer_id.to_owned(),
        particle_id: "p-1".into(),
        signature: vec![0; 64],
        from: "braid-somebody".into(),
        to: "braid-nobody".into(),
        reason: "made up".into(),
    };
    assert!(!node.handle_undeliverable(&notice(node.peer_id()), "braid-somebody"));
    assert!(!node.handle_undeliverable(&notice("braid-another"), "braid-somebody"));
}
