//! Nodes over real TCP on loopback: three nodes running a compiled Aqua program,
//! relays, undeliverable particles, hostile connections (each closed with its counted
//! reason while the node keeps serving the others). The `braid` commands over TCP are
//! tested in `cli/tests/node_command.rs`.

use std::sync::Arc;
use std::time::Duration;

use braid_host::net::{HandshakePayload, NOISE_PARAMS, NetConfig, PROLOGUE, Route, frame};
use braid_host::{ExecuteError, Node, NodeConfig, NodeKey, TcpNetwork};
use serde_json::{Value, json};
use snow::StatelessTransportState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DEMO: &str = include_str!("../../fixtures/examples/par_seq_timestamps.air");

fn test_config(listen: bool) -> NetConfig {
    let mut config = NetConfig::standard();
    if listen {
        config.listen = Some("127.0.0.1:0".into());
    }
    config.handshake_timeout = Duration::from_millis(500);
    config.frame_timeout = Duration::from_millis(300);
    config.max_message_bytes = 1 << 20;
    config.max_handshaking = 8;
    config.backoff_max = Duration::from_millis(200);
    config
}

fn node_config() -> NodeConfig {
    let mut config = NodeConfig::standard();
    config.invoke_threads = 2;
    config.send_timeout = Duration::from_secs(60);
    config
}

struct Peer {
    key: NodeKey,
    net: Arc<TcpNetwork>,
    node: Node,
}

async fn peer(config: NetConfig) -> Peer {
    peer_with(config, |b| b).await
}

async fn peer_with(
    config: NetConfig,
    build: impl FnOnce(braid_host::NodeBuilder) -> braid_host::NodeBuilder,
) -> Peer {
    let key = NodeKey::generate().unwrap();
    let net = TcpNetwork::bind(key.clone(), config).await.unwrap();
    let builder = Node::builder()
        .key(key.clone())
        .network(net.clone())
        .config(node_config());
    let node = build(builder).build().unwrap();
    net.serve(&node);
    Peer { key, net, node }
}

fn addr(p: &Peer) -> String {
    p.net.local_addr().unwrap().to_string()
}

/// Three listening nodes that know each other's addresses, and a client (not
/// listening) whose relay is the first.
async fn three_nodes_and_a_client() -> (Vec<Peer>, Peer) {
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(peer(test_config(true)).await);
    }
    for a in &nodes {
        for b in &nodes {
            if a.key.peer_id() != b.key.peer_id() {
                a.net.add_peer(b.key.peer_id(), Route::Direct(addr(b)));
            }
        }
    }
    let relay = nodes[0].key.peer_id().to_owned();
    let mut config = test_config(false);
    config.relay = Some(relay.clone());
    config
        .peers
        .insert(relay.clone(), Route::Direct(addr(&nodes[0])));
    let client = peer_with(config, |b| b.relay(relay.clone())).await;
    for node in &nodes[1..] {
        node.net
            .add_peer(client.key.peer_id(), Route::Via(relay.clone()));
    }
    (nodes, client)
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..100 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened: {what}");
}

fn closed(p: &Peer, kind: &str) -> u64 {
    p.net.stats().closed.get(kind).copied().unwrap_or(0)
}

/// Reads until the node closes the connection; fails the test if it stays open.
async fn expect_closed_by_node(stream: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    let result = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(result.is_ok(), "the node kept the connection open");
}

/// The node still serves: a fresh client gets its status.
async fn still_serves(p: &Peer) {
    let client = peer(test_config(false)).await;
    let id = client.net.connect(&addr(p)).await.unwrap();
    assert_eq!(id, p.key.peer_id());
    let status = client.net.status_of(&id).await.unwrap();
    assert_eq!(status.peer_id, p.key.peer_id());
}

async fn write_hs(stream: &mut TcpStream, message: &[u8]) {
    let mut out = (message.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(message);
    stream.write_all(&out).await.unwrap();
}

async fn read_hs(stream: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.unwrap();
    let mut message = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut message).await.unwrap();
    message
}

/// A handshake written by hand (the wire format of `net::frame`), with the payload
/// changed by `tamper`; returns the transport and the two messages this side sent.
async fn raw_handshake(
    stream: &mut TcpStream,
    key: &NodeKey,
    tamper: impl FnOnce(&mut HandshakePayload),
) -> (StatelessTransportState, Vec<u8>, Vec<u8>) {
    let builder = snow::Builder::new(NOISE_PARAMS.parse().unwrap());
    let keys = builder.generate_keypair().unwrap();
    let mut hs = builder
        .local_private_key(&keys.private)
        .unwrap()
        .prologue(PROLOGUE)
        .unwrap()
        .build_initiator()
        .unwrap();
    let mut buf = vec![0u8; 65535];
    let n = hs.write_message(&[], &mut buf).unwrap();
    let first = buf[..n].to_vec();
    write_hs(stream, &first).await;
    let answer = read_hs(stream).await;
    hs.read_message(&answer, &mut buf).unwrap();
    let mut payload = HandshakePayload::new(key, &keys.public, None);
    tamper(&mut payload);
    let n = hs.write_message(&payload.encode(), &mut buf).unwrap();
    let third = buf[..n].to_vec();
    write_hs(stream, &third).await;
    (hs.into_stateless_transport_mode().unwrap(), first, third)
}

fn seal(noise: &StatelessTransportState, nonce: u64, plain: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; plain.len() + frame::TAG_BYTES];
    let n = noise.write_message(nonce, plain, &mut out).unwrap();
    out.truncate(n);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_run_a_compiled_aqua_program_over_tcp() {
    let (nodes, client) = three_nodes_and_a_client().await;
    let args: Vec<(String, Value)> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (format!("relay{}", i + 1), json!(n.key.peer_id())))
        .collect();
    let result = client
        .node
        .execute_with_ttl(DEMO, args, Duration::from_secs(20))
        .await;
    assert_eq!(result, Ok(json!("ok")));
    for node in &nodes {
        // Each node asked its clock twice and computed the length once.
        let stats = node.node.stats();
        assert_eq!(stats.calls, 3, "{}", node.key.peer_id());
        assert!(node.net.stats().particles_received > 0);
    }
    // Nodes 2 and 3 reached the client through node 1.
    assert!(nodes[0].net.stats().forwarded > 0);
    for p in nodes.iter().chain([&client]) {
        assert_eq!(p.net.stats().undeliverable, 0);
        assert_eq!(p.node.stats().send_failures, 0);
    }
    let status = client.net.status_of(nodes[0].key.peer_id()).await.unwrap();
    assert!(
        status
            .connected_peers
            .contains(&client.key.peer_id().to_owned())
    );
    assert!(status.services.contains(&"peer".to_owned()));
    assert!(status.counters["net_particles_sent"] > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_forwards_to_a_node_that_does_not_listen() {
    let relay = peer(test_config(true)).await;
    let mut hidden_config = test_config(false);
    hidden_config.relay = Some(relay.key.peer_id().to_owned());
    hidden_config
        .peers
        .insert(relay.key.peer_id().to_owned(), Route::Direct(addr(&relay)));
    let hidden = peer(hidden_config).await;
    // The hidden node keeps a connection to its relay.
    eventually("the hidden node connects to its relay", || {
        relay
            .net
            .connected_peers()
            .contains(&hidden.key.peer_id().to_owned())
    })
    .await;
    let mut client_config = test_config(false);
    client_config.peers.insert(
        hidden.key.peer_id().to_owned(),
        Route::Via(relay.key.peer_id().to_owned()),
    );
    client_config
        .peers
        .insert(relay.key.peer_id().to_owned(), Route::Direct(addr(&relay)));
    let client = peer(client_config).await;
    hidden.net.add_peer(
        client.key.peer_id(),
        Route::Via(relay.key.peer_id().to_owned()),
    );
    let script = format!(
        r#"(seq (call "{h}" ("op" "identity") ["hidden"] x)
                (call %init_peer_id% ("callbackSrv" "response") [x]))"#,
        h = hidden.key.peer_id()
    );
    let result = client
        .node
        .execute_with_ttl(
            script,
            Vec::<(String, Value)>::new(),
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(result, Ok(json!("hidden")));
    assert_eq!(relay.net.stats().forwarded, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeliverable_particles_are_reported_to_the_waiting_initiator() {
    // A peer with no route: reported at once.
    let client = peer(test_config(false)).await;
    let nowhere = NodeKey::from_secret([9; 32]);
    let script = format!(
        r#"(seq (call "{p}" ("op" "noop") []) (call %init_peer_id% ("callbackSrv" "response") []))"#,
        p = nowhere.peer_id()
    );
    let result = client
        .node
        .execute_with_ttl(
            script.clone(),
            Vec::<(String, Value)>::new(),
            Duration::from_secs(30),
        )
        .await;
    match result {
        Err(ExecuteError::Undeliverable { from, to, reason }) => {
            assert_eq!(from, client.key.peer_id());
            assert_eq!(to, nowhere.peer_id());
            assert!(reason.contains("unreachable"), "{reason}");
        }
        other => panic!("expected a delivery error, got {other:?}"),
    }
    assert_eq!(client.net.stats().undeliverable, 1);
    assert_eq!(client.node.stats().send_failures, 1);

    // A peer whose address refuses connections: retried until the deadline, then
    // reported.
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    client
        .net
        .add_peer(nowhere.peer_id(), Route::Direct(closed_port));
    let result = client
        .node
        .execute_with_ttl(
            script,
            Vec::<(String, Value)>::new(),
            Duration::from_millis(1500),
        )
        .await;
    assert!(
        matches!(&result, Err(ExecuteError::Undeliverable { reason, .. }) if reason.contains("deadline")),
        "{result:?}"
    );
    assert!(client.net.stats().retries > 0);
    assert_eq!(client.net.stats().undeliverable, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hop_that_gives_up_tells_the_initiator_at_once() {
    // client → relay → down: the relay knows where `down` listens, but nothing
    // answers there any more. The relay retries until its send timeout (1 s, far inside
    // the 60 s ttl), gives up, and sends the client a notice on the client's own
    // connection.
    let down = NodeKey::generate().unwrap();
    let down_addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let relay = peer_with(test_config(true), |b| {
        let mut config = node_config();
        config.send_timeout = Duration::from_secs(1);
        b.config(config)
    })
    .await;
    relay.net.add_peer(down.peer_id(), Route::Direct(down_addr));
    let client = peer(test_config(false)).await;
    client
        .net
        .add_peer(relay.key.peer_id(), Route::Direct(addr(&relay)));
    let script = format!(
        r#"(seq (call "{r}" ("op" "noop") [])
             (seq (call "{d}" ("op" "noop") [])
                  (call %init_peer_id% ("callbackSrv" "response") ["never"])))"#,
        r = relay.key.peer_id(),
        d = down.peer_id()
    );
    let result = client
        .node
        .execute_with_ttl(
            script,
            Vec::<(String, Value)>::new(),
            Duration::from_secs(60),
        )
        .await;
    match result {
        Err(ExecuteError::Undeliverable { from, to, reason }) => {
            assert_eq!(from, relay.key.peer_id());
            assert_eq!(to, down.peer_id());
            assert!(reason.contains("timed out after 1000 ms"), "{reason}");
        }
        other => panic!("expected the relay's notice, got {other:?}"),
    }
    assert_eq!(relay.node.stats().send_failures, 1);
    // Both transports count the notice after the fact (the relay once it is queued,
    // the client once the `execute` has its answer).
    eventually("the relay counts its notice", || {
        relay.net.stats().notices_sent == 1
    })
    .await;
    eventually("the client counts the notice", || {
        client.net.stats().notices_accepted == 1
    })
    .await;
    assert_eq!(client.node.stats().send_failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_close_the_connection() {
    let node = peer(test_config(true)).await;
    // Random-looking bytes: whatever they announce, the handshake fails or times out.
    let mut stream = TcpStream::connect(addr(&node)).await.unwrap();
    let garbage: Vec<u8> = (0..1000u32).map(|i| (i * 37 + 11) as u8).collect();
    stream.write_all(&garbage).await.unwrap();
    expect_closed_by_node(&mut stream).await;
    eventually("counted", || {
        closed(&node, "timeout") + closed(&node, "noise") == 1
    })
    .await;
    // A first message that is a key, then a third that is noise.
    let mut stream = TcpStream::connect(addr(&node)).await.unwrap();
    write_hs(&mut stream, &[7u8; 32]).await;
    read_hs(&mut stream).await;
    write_hs(&mut stream, &[5u8; 96]).await;
    expect_closed_by_node(&mut stream).await;
    eventually("counted as noise", || closed(&node, "noise") >= 1).await;
    still_serves(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_the_limit_closes_the_connection() {
    let node = peer(test_config(true)).await;
    let key = NodeKey::generate().unwrap();
    let mut stream = TcpStream::connect(addr(&node)).await.unwrap();
    let (noise, _, _) = raw_handshake(&mut stream, &key, |_| {}).await;
    let header = ((1u32 << 20) + 1).to_be_bytes();
    stream.write_all(&seal(&noise, 0, &header)).await.unwrap();
    expect_closed_by_node(&mut stream).await;
    eventually("counted", || closed(&node, "frame_too_large") == 1).await;
    still_serves(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_identity_signature_closes_the_connection() {
    let node = peer(test_config(true)).await;
    let key = NodeKey::generate().unwrap();
    let other = NodeKey::generate().unwrap();
    // Signed by `key`, claiming to be `other`.
    let mut stream = TcpStream::connect(addr(&node)).await.unwrap();
    raw_handshake(&mut stream, &key, |p| {
        p.peer_id = other.peer_id().to_owned()
    })
    .await;
    expect_closed_by_node(&mut stream).await;
    // A signature over another Noise key.
    let mut stream = TcpStream::connect(addr(&node)).await.unwrap();
    raw_handshake(&mut stream, &key, |p| {
        *p = HandshakePayload::new(&key, &[1; 32], None);
    })
    .await;
    expect_closed_by_node(&mut stream).await;
    eventually("counted", || closed(&node, "bad_identity") == 2).await;
    assert_eq!(node.net.stats().established, 0);
    still_serves(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_handshake_closes_the_connection() {
    let node = peer(test_config(true)).await;
    let key = NodeKey::generate().unwrap();
    let mut stream = TcpStream::connect(addr(&node)).await.unwrap();
    let (_, first, third) = raw_handshake(&mut stream, &key, |_| {}).await;
    eventually("the real handshake succeeds", || {
        node.net.stats().established == 1
    })
    .await;
    // The same two messages again: the node's new ephemeral key makes the third fail.
    let mut replay = TcpStream::connect(addr(&node)).await.unwrap();
    write_hs(&mut replay, &first).await;
    read_hs(&mut replay).await;
    write_hs(&mut replay, &third).await;
    expect_closed_by_node(&mut replay).await;
    eventually("counted", || closed(&node, "noise") == 1).await;
    assert_eq!(node.net.stats().established, 1);
    still_serves(&node).await;
}

/// A connection, after a good handshake, that sent a header announcing 1000 bytes and
/// then only 10 of them.
async fn half_a_frame(node: &Peer) -> TcpStream {
    let key = NodeKey::generate().unwrap();
    let mut stream = TcpStream::connect(addr(node)).await.unwrap();
    let (noise, _, _) = raw_handshake(&mut stream, &key, |_| {}).await;
    stream
        .write_all(&seal(&noise, 0, &1000u32.to_be_bytes()))
        .await
        .unwrap();
    stream.write_all(&[0u8; 10]).await.unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_mid_frame_is_closed() {
    let node = peer(test_config(true)).await;
    let mut stalled = half_a_frame(&node).await;
    expect_closed_by_node(&mut stalled).await;
    eventually("counted", || closed(&node, "timeout") == 1).await;
    // And one that closes mid-frame.
    drop(half_a_frame(&node).await);
    eventually("counted", || closed(&node, "truncated") == 1).await;
    still_serves(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_is_not_msgpack_closes_the_connection() {
    let node = peer(test_config(true)).await;
    let key = NodeKey::generate().unwrap();
    let mut stream = TcpStream::connect(addr(&node)).await.unwrap();
    let (noise, _, _) = raw_handshake(&mut stream, &key, |_| {}).await;
    let body = b"\xc1 not a message";
    stream
        .write_all(&seal(&noise, 0, &(body.len() as u32).to_be_bytes()))
        .await
        .unwrap();
    stream.write_all(&seal(&noise, 1, body)).await.unwrap();
    expect_closed_by_node(&mut stream).await;
    eventually("counted", || closed(&node, "malformed") == 1).await;
    still_serves(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_connections_does_not_stop_the_others() {
    let (nodes, client) = three_nodes_and_a_client().await;
    let target = &nodes[0];
    // Established connections first.
    let args: Vec<(String, Value)> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (format!("relay{}", i + 1), json!(n.key.peer_id())))
        .collect();
    let first = client
        .node
        .execute_with_ttl(DEMO, args.clone(), Duration::from_secs(20))
        .await;
    assert_eq!(first, Ok(json!("ok")));
    // 100 connections that never speak: 8 may wait in their handshake, the rest are
    // closed at once.
    let mut flood = Vec::new();
    for _ in 0..100 {
        flood.push(TcpStream::connect(addr(target)).await.unwrap());
    }
    eventually("the flood is refused", || {
        closed(target, "too_many_connections") >= 90
    })
    .await;
    // Meanwhile the nodes serve the established peers.
    let during = client
        .node
        .execute_with_ttl(DEMO, args, Duration::from_secs(20))
        .await;
    assert_eq!(during, Ok(json!("ok")));
    for stream in &mut flood {
        expect_closed_by_node(stream).await;
    }
    eventually("the silent ones time out", || {
        closed(target, "timeout") >= 8
    })
    .await;
    still_serves(target).await;
}
