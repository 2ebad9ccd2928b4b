//! braid-net over real loopback sockets: particles over TCP and WebSocket, the JS
//! client's frame through a real stream, twenty nodes that find each other through
//! Kademlia, and hostile peers. Every test is bounded in time and uses 127.0.0.1 only.

use std::str::FromStr;
use std::time::Duration;

use braid_net::{NetConfig, NetEvent, Network, NetworkError, NetworkHandle, PeerId};
use braid_wire::{
    NodeKey, Notice, PARTICLE_PROTOCOL, PARTICLE_STREAM_PROTOCOL, Particle, Undeliverable,
    encode_particle_frame,
};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, StreamProtocol, identify, noise, tcp, yamux};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

const NOW: u64 = 1_700_000_000_000;
/// What every test is bounded by.
const TEST_LIMIT: Duration = Duration::from_secs(40);

fn config(seed: u8) -> NetConfig {
    let mut c = NetConfig::new([seed; 32], "test");
    c.listen = vec![
        "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
        "/ip4/127.0.0.1/tcp/0/ws".parse().unwrap(),
    ];
    c.stream_timeout = Duration::from_secs(2);
    c.lookup_timeout = Duration::from_secs(5);
    c
}

struct Node {
    handle: NetworkHandle,
    events: mpsc::Receiver<NetEvent>,
    id: PeerId,
}

async fn start(config: NetConfig) -> Node {
    let (handle, events) = Network::start(config).await.expect("the network starts");
    let id = handle.local_peer_id();
    Node { handle, events, id }
}

impl Node {
    async fn addr(&self, ws: bool) -> Multiaddr {
        let addrs = self.handle.listen_addrs().await.unwrap();
        let addr = addrs
            .into_iter()
            .find(|a| a.to_string().ends_with("/ws") == ws)
            .expect("a listen address of that kind");
        addr.with(libp2p::multiaddr::Protocol::P2p(self.id))
    }

    /// The next particle, skipping other events.
    async fn particle(&mut self) -> (PeerId, Particle) {
        loop {
            match timeout(Duration::from_secs(20), self.events.recv()).await {
                Ok(Some(NetEvent::Particle { from, particle, .. })) => return (from, particle),
                Ok(Some(NetEvent::Rejected { from, reason, .. })) => {
                    eprintln!("refused from {from}: {reason}")
                }
                Ok(Some(_)) => {}
                other => panic!("no particle arrived: {other:?}"),
            }
        }
    }

    /// The next refusal, skipping other events.
    async fn rejection(&mut self) -> String {
        loop {
            match timeout(Duration::from_secs(10), self.events.recv()).await {
                Ok(Some(NetEvent::Rejected { reason, .. })) => return reason,
                Ok(Some(NetEvent::Particle { particle, .. })) => {
                    panic!("a particle was let through: {particle:?}")
                }
                Ok(Some(_)) => {}
                other => panic!("no rejection: {other:?}"),
            }
        }
    }
}

fn particle(seed: u8, id: &str) -> Particle {
    let key = NodeKey::from_secret([seed; 32]);
    let mut p = Particle::new_signed(&key, id.into(), NOW, 60_000, "(null)".into());
    p.data = id.as_bytes().to_vec();
    p
}

fn soon(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

async fn bounded<F: std::future::Future<Output = ()>>(test: F) {
    timeout(TEST_LIMIT, test)
        .await
        .expect("the test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn particles_cross_over_tcp_and_websocket_and_back_to_a_client() {
    bounded(async {
        let mut a = start(config(1)).await;
        let mut b = start(config(2)).await;
        assert_eq!(b.handle.connect(a.addr(false).await).await.unwrap(), a.id);
        let p = particle(2, "over-tcp");
        b.handle.send(a.id, &p, soon(10)).await.unwrap();
        assert_eq!(a.particle().await, (b.id, p));

        // A client: listens nowhere, reaches A over WebSocket, and gets particles back
        // over the connection it made.
        let mut client_config = config(3);
        client_config.listen.clear();
        let mut client = start(client_config).await;
        client.handle.connect(a.addr(true).await).await.unwrap();
        let p = particle(3, "over-ws");
        client.handle.send(a.id, &p, soon(10)).await.unwrap();
        assert_eq!(a.particle().await, (client.id, p));
        let back = particle(1, "back-to-the-client");
        a.handle.send(client.id, &back, soon(10)).await.unwrap();
        assert_eq!(client.particle().await, (a.id, back));
        assert!(a.handle.is_connected(client.id).await.unwrap());
        let _ = &mut b;

        // Notices travel on their own protocol.
        let notice = Notice::Undeliverable(Undeliverable {
            init_peer_id: client.id.to_string(),
            particle_id: "p".into(),
            signature: vec![1; 64],
            from: a.id.to_string(),
            to: b.id.to_string(),
            reason: "test".into(),
        });
        a.handle.send_notice(b.id, &notice, soon(10)).await.unwrap();
        loop {
            match timeout(Duration::from_secs(10), b.events.recv())
                .await
                .unwrap()
            {
                Some(NetEvent::Notice { from, notice: got }) => {
                    assert_eq!((from, got), (a.id, notice));
                    break;
                }
                Some(_) => {}
                None => panic!("the network stopped"),
            }
        }
    })
    .await;
}

/// A bare libp2p peer that speaks identify (announcing the particle protocol when
/// `particle` is set) and opens streams of any protocol to write anything on them.
#[derive(NetworkBehaviour)]
struct RawBehaviour {
    identify: identify::Behaviour,
    stream: libp2p_stream::Behaviour,
}

struct RawPeer {
    control: libp2p_stream::Control,
    closed: mpsc::UnboundedReceiver<PeerId>,
    incoming: Option<libp2p_stream::IncomingStreams>,
}

async fn raw_peer(dial: Multiaddr, particle: bool) -> RawPeer {
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|key| RawBehaviour {
            identify: identify::Behaviour::new(identify::Config::new(
                "ipfs/0.1.0".into(),
                key.public(),
            )),
            stream: libp2p_stream::Behaviour::new(),
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    let mut control = swarm.behaviour().stream.new_control();
    let incoming = particle.then(|| {
        control
            .accept(StreamProtocol::new(PARTICLE_PROTOCOL))
            .unwrap()
    });
    swarm.dial(dial).unwrap();
    let (closed_tx, closed) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            if let SwarmEvent::ConnectionClosed { peer_id, .. } = swarm.select_next_some().await {
                let _ = closed_tx.send(peer_id);
            }
        }
    });
    RawPeer {
        control,
        closed,
        incoming,
    }
}

impl RawPeer {
    async fn open(&mut self, peer: PeerId, protocol: &'static str) -> libp2p::Stream {
        timeout(
            Duration::from_secs(10),
            self.control
                .open_stream(peer, StreamProtocol::new(protocol)),
        )
        .await
        .unwrap()
        .unwrap()
    }

    async fn write(&mut self, peer: PeerId, bytes: &[u8]) -> libp2p::Stream {
        let mut stream = self.open(peer, PARTICLE_PROTOCOL).await;
        stream.write_all(bytes).await.unwrap();
        stream.flush().await.unwrap();
        stream
    }
}

/// One particle exactly as `@fluencelabs/js-client` 0.9.0 sent it.
const JS_CLIENT_FRAME: &[u8] =
    include_bytes!("../../fixtures/interop/js-client-0.9.0-particle-frame.bin");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_js_client_frame_and_a_codec_frame_arrive_through_real_streams() {
    bounded(async {
        let mut a = start(config(11)).await;
        let mut raw = raw_peer(a.addr(false).await, true).await;
        let mut stream = raw.write(a.id, JS_CLIENT_FRAME).await;
        stream.close().await.unwrap();
        let (_, p) = a.particle().await;
        assert_eq!(p.id, "b791d8e3-bd04-4a9e-8577-8c4c6b851464");
        assert_eq!(p.data.len(), 317);
        // The init peer's key comes out of its libp2p peer id, and the signature checks.
        let init = PeerId::from_str(&p.init_peer_id).unwrap();
        let key = libp2p::identity::PublicKey::try_decode_protobuf(init.as_ref().digest())
            .unwrap()
            .try_into_ed25519()
            .unwrap()
            .to_bytes();
        assert!(p.verify(&key));

        let q = particle(12, "codec-frame");
        let mut stream = raw.write(a.id, &encode_particle_frame(&q)).await;
        stream.close().await.unwrap();
        assert_eq!(a.particle().await.1, q);
    })
    .await;
}

/// Sends `count` particles from `from` to `to` and checks that they all arrive.
async fn send_many(from: &Node, to: &mut Node, seed: u8, count: usize) {
    let sent: Vec<Particle> = (0..count)
        .map(|n| particle(seed, &format!("{seed}-{n}")))
        .collect();
    for p in &sent {
        from.handle.send(to.id, p, soon(10)).await.unwrap();
    }
    let mut got = Vec::new();
    while got.len() < count {
        let (sender, p) = to.particle().await;
        assert_eq!(sender, from.id);
        got.push(p);
    }
    got.sort_by(|a, b| a.id.cmp(&b.id));
    let mut sent = sent;
    sent.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(got, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn braid_peers_use_long_lived_streams_and_fall_back_to_the_field_protocol() {
    bounded(async {
        // Two braid peers: many particles each way, over their long-lived streams.
        let mut a = start(config(41)).await;
        let mut b = start(config(42)).await;
        b.handle.connect(a.addr(false).await).await.unwrap();
        send_many(&b, &mut a, 42, 200).await;
        send_many(&a, &mut b, 41, 200).await;

        // A braid peer that offers only the field's protocol still talks to a braid
        // peer both ways.
        let mut field_config = config(43);
        field_config.particle_streams = false;
        let mut field = start(field_config).await;
        field.handle.connect(a.addr(false).await).await.unwrap();
        send_many(&field, &mut a, 43, 20).await;
        send_many(&a, &mut field, 41, 20).await;

        // A bare peer that speaks only /fluence/particle/2.0.0 gets what it gets from
        // Nox: one frame per stream, the field's frame bytes, then the end.
        let mut raw = raw_peer(a.addr(false).await, true).await;
        let mut incoming = raw.incoming.take().unwrap();
        let raw_id = loop {
            // The raw peer's id is the one connected peer that is neither b nor field.
            let peers = a.handle.connected_peers().await.unwrap();
            if let Some(id) = peers.into_iter().find(|p| ![b.id, field.id].contains(p)) {
                break id;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        for n in 0..3 {
            let p = particle(41, &format!("to-raw-{n}"));
            a.handle.send(raw_id, &p, soon(10)).await.unwrap();
            let (from, mut stream) = timeout(Duration::from_secs(10), incoming.next())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(from, a.id);
            let mut bytes = Vec::new();
            timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(bytes, encode_particle_frame(&p));
        }

        // A bare peer that also speaks /braid/particle-stream/1.0.0 gets all the frames
        // one after another on one stream.
        let mut raw = raw_peer(b.addr(false).await, true).await;
        let mut streams = raw
            .control
            .accept(StreamProtocol::new(PARTICLE_STREAM_PROTOCOL))
            .unwrap();
        let raw_id = loop {
            let peers = b.handle.connected_peers().await.unwrap();
            if let Some(id) = peers.into_iter().find(|p| *p != a.id) {
                break id;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let sent: Vec<Particle> = (0..3)
            .map(|n| particle(42, &format!("on-one-stream-{n}")))
            .collect();
        for p in &sent {
            b.handle.send(raw_id, p, soon(10)).await.unwrap();
        }
        let (from, mut stream) = timeout(Duration::from_secs(10), streams.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(from, b.id);
        let expected: Vec<u8> = sent.iter().flat_map(encode_particle_frame).collect();
        let mut bytes = vec![0; expected.len()];
        timeout(Duration::from_secs(10), stream.read_exact(&mut bytes))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bytes, expected);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_lived_stream_may_idle_between_frames_but_not_stall_within_one() {
    bounded(async {
        let mut c = config(44);
        c.stream_timeout = Duration::from_secs(1);
        let mut a = start(c).await;
        let mut raw = raw_peer(a.addr(false).await, true).await;
        let mut stream = raw.open(a.id, PARTICLE_STREAM_PROTOCOL).await;
        let frames: Vec<Particle> = (0..3).map(|n| particle(45, &format!("s-{n}"))).collect();
        let bytes: Vec<u8> = frames.iter().flat_map(encode_particle_frame).collect();
        stream.write_all(&bytes).await.unwrap();
        stream.flush().await.unwrap();
        for p in &frames {
            assert_eq!(&a.particle().await.1, p);
        }
        // Idle for longer than the stream timeout: the stream is still good.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let later = particle(45, "after-a-pause");
        stream
            .write_all(&encode_particle_frame(&later))
            .await
            .unwrap();
        stream.flush().await.unwrap();
        assert_eq!(a.particle().await.1, later);
        // Half a frame, then nothing: refused as stalled once the timeout has passed.
        let half = encode_particle_frame(&particle(45, "half"));
        stream.write_all(&half[..half.len() / 2]).await.unwrap();
        stream.flush().await.unwrap();
        assert!(a.rejection().await.contains("no whole Particle frame"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_oversized_and_stalled_streams_are_refused_and_block_no_one() {
    bounded(async {
        let mut config_a = config(21);
        config_a.stream_timeout = Duration::from_secs(1);
        let mut a = start(config_a).await;
        let b = start(config(22)).await;
        let mut raw = raw_peer(a.addr(false).await, true).await;

        // Garbage after the handshake, on the particle protocol.
        let _s = raw.write(a.id, b"\x05hello").await;
        assert!(a.rejection().await.contains("multicodec"));
        let _s = raw.write(a.id, b"\x07\x81\x04garbage").await;
        assert!(a.rejection().await.contains("malformed"));
        let _s = raw.write(a.id, &[0xff; 12]).await;
        assert!(a.rejection().await.contains("over the limit"));

        // Oversized: a length over the 100 MiB limit, and one no machine could
        // allocate, are refused from the prefix alone.
        let mut prefix = Vec::new();
        braid_wire::encode_varint((100 << 20) + 1, &mut prefix);
        let _s = raw.write(a.id, &prefix).await;
        let reason = a.rejection().await;
        assert!(
            reason.contains("104857601 bytes, over the limit of 104857600"),
            "{reason}"
        );
        prefix.clear();
        braid_wire::encode_varint(1 << 62, &mut prefix);
        let _s = raw.write(a.id, &prefix).await;
        assert!(a.rejection().await.contains("over the limit"));

        // A stalled stream: open, say nothing. Others' particles still arrive at once,
        // and the stalled stream is dropped after the timeout.
        let opened = Instant::now();
        let mut stalled = raw.open(a.id, PARTICLE_PROTOCOL).await;
        let p = particle(22, "past-the-stall");
        b.handle.connect(a.addr(false).await).await.unwrap();
        b.handle.send(a.id, &p, soon(10)).await.unwrap();
        assert_eq!(a.particle().await.1, p);
        assert!(
            opened.elapsed() < Duration::from_secs(1),
            "a stalled stream blocked a send"
        );
        let mut buf = [0u8; 1];
        let read = timeout(Duration::from_secs(5), stalled.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "the stalled stream was not dropped: {read:?}"
        );
        assert!(a.rejection().await.contains("no whole Particle frame"));

        // Still serving: a frame from the same hostile peer goes through.
        let q = particle(23, "after-the-garbage");
        let mut s = raw.write(a.id, &encode_particle_frame(&q)).await;
        s.close().await.unwrap();
        assert_eq!(a.particle().await.1, q);
        let stats = a.handle.stats();
        assert_eq!(
            (stats.rejected, stats.particles_received),
            (6, 2),
            "{stats:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_the_particle_protocol_is_disconnected() {
    bounded(async {
        let a = start(config(31)).await;
        let mut raw = raw_peer(a.addr(false).await, false).await;
        let closed = timeout(Duration::from_secs(10), raw.closed.recv()).await;
        assert_eq!(closed.unwrap(), Some(a.id));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_before_the_handshake_and_a_wrong_identity_fail_cleanly() {
    bounded(async {
        let mut a = start(config(41)).await;
        let b = start(config(42)).await;
        let addr = a.addr(false).await;
        let port = addr
            .iter()
            .find_map(|p| match p {
                libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
                _ => None,
            })
            .unwrap();
        let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        socket.write_all(&[0x13; 4096]).await.unwrap();
        let mut buf = vec![0u8; 1024];
        let closed = timeout(Duration::from_secs(15), async {
            loop {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the node kept a garbage connection open");

        // Dialing A's address as some other peer fails with the identity mismatch.
        let other = braid_net::peer_id_of_secret(&[43; 32]);
        let mut wrong = addr.clone();
        wrong.pop();
        let wrong = wrong.with(libp2p::multiaddr::Protocol::P2p(other));
        let err = b.handle.connect(wrong).await.unwrap_err();
        assert!(matches!(err, NetworkError::Dial { .. }), "{err}");
        assert!(err.to_string().contains(&other.to_string()), "{err}");
        assert!(!b.handle.is_connected(a.id).await.unwrap());

        // A is unharmed.
        b.handle.connect(addr).await.unwrap();
        let p = particle(42, "after");
        b.handle.send(a.id, &p, soon(10)).await.unwrap();
        assert_eq!(a.particle().await.1, p);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_leaves_legitimate_traffic_through() {
    bounded(async {
        let mut config_a = config(51);
        config_a.limits.max_pending_incoming = Some(16);
        config_a.handshake_timeout = Duration::from_secs(2);
        let mut a = start(config_a).await;
        let b = start(config(52)).await;
        let addr = a.addr(false).await;
        b.handle.connect(addr.clone()).await.unwrap();
        let port = addr
            .iter()
            .find_map(|p| match p {
                libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
                _ => None,
            })
            .unwrap();
        let mut flood = Vec::new();
        for _ in 0..200 {
            if let Ok(s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                flood.push(s);
            }
        }
        for i in 0..5 {
            let p = particle(52, &format!("during-the-flood-{i}"));
            b.handle.send(a.id, &p, soon(10)).await.unwrap();
            assert_eq!(a.particle().await.1, p);
        }
        // A newcomer gets in once the silent handshakes time out, within its deadline.
        let c = start(config(53)).await;
        let _ = c.handle.connect(addr.clone()).await;
        let p = particle(53, "newcomer");
        let mut delivered = false;
        for _ in 0..10 {
            if c.handle.connect(addr.clone()).await.is_ok() {
                c.handle.send(a.id, &p, soon(10)).await.unwrap();
                delivered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(delivered, "the newcomer never got in");
        assert_eq!(a.particle().await.1, p);
        drop(flood);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_gets_its_share_of_connections_and_no_more() {
    bounded(async {
        let mut config_a = config(54);
        config_a.limits.max_per_ip = Some(4);
        let mut a = start(config_a).await;
        let addr = a.addr(false).await;
        let port = addr
            .iter()
            .find_map(|p| match p {
                libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
                _ => None,
            })
            .unwrap();
        // 200 silent sockets from 127.0.0.2: four wait in their handshake, the rest are
        // closed at once.
        let mut flood = Vec::new();
        for _ in 0..200 {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            if let Ok(s) = socket.connect(([127, 0, 0, 1], port).into()).await {
                flood.push(s);
            }
        }
        let mut closed = 0;
        for s in &mut flood {
            let mut byte = [0u8; 1];
            if let Ok(Ok(0) | Err(_)) = timeout(Duration::from_millis(200), s.read(&mut byte)).await
            {
                closed += 1;
            }
        }
        assert_eq!(closed, 196, "all but the address's share are closed");
        // Another address gets in at once, while the four still wait.
        let b = start(config(55)).await;
        b.handle.connect(addr.clone()).await.unwrap();
        let p = particle(55, "from-another-address");
        b.handle.send(a.id, &p, soon(10)).await.unwrap();
        assert_eq!(a.particle().await.1, p);
        drop(flood);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_addresses_fall_back_to_a_lookup_and_unreachable_peers_fail_in_time() {
    bounded(async {
        let a = start(config(61)).await;
        let mut b_config = config(62);
        b_config.bootstrap = vec![a.addr(false).await];
        let mut b = start(b_config).await;
        // A port that nobody listens on.
        let closed_port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let closed: Multiaddr = format!("/ip4/127.0.0.1/tcp/{closed_port}").parse().unwrap();
        // C bootstraps from A, and is told B lives at the closed address.
        let mut c_config = config(63);
        c_config.bootstrap = vec![
            a.addr(false).await,
            closed.clone().with(libp2p::multiaddr::Protocol::P2p(b.id)),
        ];
        let c = start(c_config).await;
        // B is known to A (it bootstrapped there); wait until A has B's addresses.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !a.handle.is_connected(b.id).await.unwrap() {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let p = particle(63, "past-a-closed-address");
        c.handle.send(b.id, &p, soon(15)).await.unwrap();
        assert_eq!(b.particle().await, (c.id, p));

        // A peer nobody knows: undeliverable, reported before the deadline passes by much.
        let nobody = braid_net::peer_id_of_secret(&[64; 32]);
        let started = Instant::now();
        let err = c
            .handle
            .send(nobody, &particle(63, "to-nobody"), soon(3))
            .await
            .unwrap_err();
        assert!(matches!(err, NetworkError::Undeliverable { .. }), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_nodes_that_know_one_bootstrap_node_reach_each_other_by_id() {
    bounded(async {
        // Twenty nodes share a test machine's cores: the field's stream timeout (30 s),
        // not the hostile tests' 2 s.
        let mut first = config(100);
        first.listen.truncate(1);
        first.stream_timeout = Duration::from_secs(30);
        let mut nodes = vec![start(first).await];
        let bootstrap = nodes[0].addr(false).await;
        for seed in 101..120u8 {
            let mut c = config(seed);
            c.listen.truncate(1);
            c.stream_timeout = Duration::from_secs(30);
            c.bootstrap = vec![bootstrap.clone()];
            nodes.push(start(c).await);
        }
        let ids: Vec<PeerId> = nodes.iter().map(|n| n.id).collect();
        // Every node sends one particle to every other, by peer id alone.
        let mut sends = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            for (j, &to) in ids.iter().enumerate() {
                if i == j {
                    continue;
                }
                let handle = node.handle.clone();
                let p = particle(100 + i as u8, &format!("{i}->{j}"));
                sends.push(tokio::spawn(async move {
                    handle
                        .send(to, &p, soon(25))
                        .await
                        .map_err(|e| format!("{i}->{j}: {e}"))
                }));
            }
        }
        for send in sends {
            send.await.unwrap().unwrap();
        }
        let mut missing = Vec::new();
        for (j, node) in nodes.iter_mut().enumerate() {
            let mut got = std::collections::BTreeSet::new();
            let wait = Instant::now() + Duration::from_secs(5);
            while got.len() < 19 {
                match tokio::time::timeout_at(wait, node.events.recv()).await {
                    Ok(Some(NetEvent::Particle { particle, .. })) => {
                        assert!(
                            particle.id.ends_with(&format!("->{j}")),
                            "{} at {j}",
                            particle.id
                        );
                        got.insert(particle.id);
                    }
                    Ok(Some(NetEvent::Rejected { from, reason, .. })) => {
                        eprintln!("{j} refused from {from}: {reason}")
                    }
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
            for i in 0..20 {
                if i != j && !got.contains(&format!("{i}->{j}")) {
                    missing.push(format!("{i}->{j}"));
                }
            }
        }
        assert!(missing.is_empty(), "sent but never arrived: {missing:?}");
        // Kademlia's neighborhood of a node's id holds that node.
        let near = nodes[5].handle.neighborhood(ids[7], 3).await.unwrap();
        assert_eq!(near.len(), 3, "{near:?}");
        assert!(near.contains(&ids[7]), "{near:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_client_connection_outlives_libp2p_default_idle_timeout() {
    bounded(async {
        // The field's 180 s on both sides: still connected past rust-libp2p's default
        // of 10 s, and the particle goes back over the connection the client made.
        let a = start(config(71)).await;
        let mut client_config = config(72);
        client_config.listen.clear();
        let mut client = start(client_config).await;
        client.handle.connect(a.addr(true).await).await.unwrap();
        // A short idle timeout is applied: that connection closes on its own.
        let mut short = config(73);
        short.idle_timeout = Duration::from_millis(500);
        let brief = start(short).await;
        brief.handle.connect(a.addr(false).await).await.unwrap();

        tokio::time::sleep(Duration::from_secs(11)).await;
        assert!(a.handle.is_connected(client.id).await.unwrap());
        assert!(!brief.handle.is_connected(a.id).await.unwrap());
        let p = particle(71, "after-eleven-idle-seconds");
        a.handle.send(client.id, &p, soon(5)).await.unwrap();
        assert_eq!(client.particle().await, (a.id, p));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_peer_that_starts_later_is_dialed_again() {
    bounded(async {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut a_config = config(81);
        a_config.listen = vec![format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()];
        let a_id = braid_net::peer_id_of_secret(&a_config.secret);
        let mut b_config = config(82);
        b_config.bootstrap = vec![
            format!("/ip4/127.0.0.1/tcp/{port}/p2p/{a_id}")
                .parse()
                .unwrap(),
        ];
        b_config.bootstrap_redial = Duration::from_millis(200);
        let b = start(b_config).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!b.handle.is_connected(a_id).await.unwrap());
        let mut a = start(a_config).await;
        let p = particle(82, "to-a-late-bootstrap-peer");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !b.handle.is_connected(a_id).await.unwrap() {
            assert!(
                Instant::now() < deadline,
                "the bootstrap peer was not dialed again"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        b.handle.send(a_id, &p, soon(5)).await.unwrap();
        assert_eq!(a.particle().await, (b.id, p));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_flood_is_capped_per_connection() {
    bounded(async {
        let mut config_a = config(91);
        config_a.max_inbound_streams = 4;
        config_a.stream_timeout = Duration::from_secs(3);
        let mut a = start(config_a).await;
        let b = start(config(92)).await;
        let mut raw = raw_peer(a.addr(false).await, true).await;
        // Ten silent streams at once: four are read (and time out), six are dropped.
        let mut silent = Vec::new();
        for _ in 0..10 {
            silent.push(raw.open(a.id, PARTICLE_PROTOCOL).await);
        }
        let mut capped = 0;
        while capped < 6 {
            let reason = a.rejection().await;
            assert!(reason.contains("over 4 inbound streams"), "{reason}");
            capped += 1;
        }
        // Another peer is not held up by them.
        b.handle.connect(a.addr(false).await).await.unwrap();
        let p = particle(92, "past-the-stream-flood");
        b.handle.send(a.id, &p, soon(10)).await.unwrap();
        assert_eq!(a.particle().await, (b.id, p));
        drop(silent);
    })
    .await;
}
