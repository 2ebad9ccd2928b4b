//! The network's loop: one task owns the libp2p swarm (TCP and WebSocket, Noise,
//! yamux; identify, ping, Kademlia, connection limits, the particle and notice
//! protocols) and serves the [`NetworkHandle`]s' commands.
//!
//! Sending: a handle's `send` makes attempts until the deadline, with backoff between
//! them. An attempt writes the frame on a new stream of a connection to the peer; with
//! no connection it dials the peer at the addresses Kademlia's routing table holds, and
//! when there are none, or they fail, looks the peer up by its id (a Kademlia query for
//! the closest peers to it) and dials what the query found.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use braid_wire::{Notice, PARTICLE_PROTOCOL, Particle, frame_of_encoded};
use futures::StreamExt;
use libp2p::kad::store::MemoryStore;
use libp2p::kad::{self, GetClosestPeersError, QueryId, QueryResult};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError, NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, connection_limits, identify, identity, noise, ping,
    tcp, yamux,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::config::NetConfig;
use crate::error::NetworkError;
use crate::protocol::{self, Failure, Kind, Outbound, ProtocolConfig};

/// What the network tells the node.
#[derive(Debug)]
#[non_exhaustive]
pub enum NetEvent {
    /// A particle arrived on the particle protocol. Only its format is checked: the
    /// node runs the intake checks (sizes, signature, expiry; `braid_wire::check_*`).
    Particle {
        /// The peer whose connection it came over.
        from: PeerId,
        /// The remote IP address of that connection, when it has one.
        ip: Option<std::net::IpAddr>,
        /// The particle.
        particle: Particle,
    },
    /// A braid notice arrived.
    Notice {
        /// The peer it came from.
        from: PeerId,
        /// The notice.
        notice: Notice,
    },
    /// An inbound stream was refused (malformed or oversized frame, a stream that
    /// stalled, too many streams at once).
    Rejected {
        /// The peer.
        from: PeerId,
        /// A short stable name for counters: `too_large`, `malformed` (as
        /// `braid_wire::Rejection::kind`), `io`, `stalled`, `too_many_streams`.
        kind: &'static str,
        /// Why, in words.
        reason: String,
    },
    /// A connection to a peer was established.
    ConnectionEstablished {
        /// The peer.
        peer: PeerId,
        /// The address of the peer on this connection.
        addr: Multiaddr,
        /// Whether the peer dialed this node.
        inbound: bool,
    },
    /// A connection to a peer closed.
    ConnectionClosed {
        /// The peer.
        peer: PeerId,
        /// Connections to the peer that remain open.
        remaining: u32,
    },
}

/// What the network has done so far ([`NetworkHandle::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetStats {
    /// Connections established, both ways.
    pub connections_established: u64,
    /// Connections closed.
    pub connections_closed: u64,
    /// Particles received (format checked).
    pub particles_received: u64,
    /// Notices received.
    pub notices_received: u64,
    /// Inbound streams refused ([`NetEvent::Rejected`]).
    pub rejected: u64,
    /// Particles and notices delivered (written to a stream of the peer).
    pub sent: u64,
    /// Attempts that failed and were made again.
    pub retries: u64,
    /// Particles and notices given up on ([`NetworkError::Undeliverable`]).
    pub undeliverable: u64,
    /// Kademlia lookups of a peer to deliver to.
    pub lookups: u64,
}

/// The counters behind [`NetStats`], shared by the loop and the handles.
#[derive(Debug, Default)]
struct Counters {
    connections_established: AtomicU64,
    connections_closed: AtomicU64,
    particles_received: AtomicU64,
    notices_received: AtomicU64,
    rejected: AtomicU64,
    sent: AtomicU64,
    retries: AtomicU64,
    undeliverable: AtomicU64,
    lookups: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> NetStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NetStats {
            connections_established: get(&self.connections_established),
            connections_closed: get(&self.connections_closed),
            particles_received: get(&self.particles_received),
            notices_received: get(&self.notices_received),
            rejected: get(&self.rejected),
            sent: get(&self.sent),
            retries: get(&self.retries),
            undeliverable: get(&self.undeliverable),
            lookups: get(&self.lookups),
        }
    }
}

/// The libp2p peer id (`12D3KooW...`) of an Ed25519 secret key.
pub fn peer_id_of_secret(secret: &[u8; 32]) -> PeerId {
    keypair_of(secret).public().to_peer_id()
}

fn keypair_of(secret: &[u8; 32]) -> identity::Keypair {
    let mut bytes = *secret;
    // Invariant: every 32-byte string is an Ed25519 secret key.
    identity::Keypair::ed25519_from_bytes(&mut bytes).expect("32 bytes are an ed25519 secret")
}

/// The network: started once per node.
pub struct Network;

impl Network {
    /// Builds the swarm, listens on the configured addresses (waiting until each has
    /// reported its address), dials the bootstrap peers and spawns the loop on the
    /// current tokio runtime. The loop runs until every handle is dropped.
    pub async fn start(
        config: NetConfig,
    ) -> Result<(NetworkHandle, mpsc::Receiver<NetEvent>), NetworkError> {
        let mut swarm = build_swarm(&config).await?;
        let local_peer_id = *swarm.local_peer_id();
        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|source| NetworkError::Listen {
                    addr: addr.clone(),
                    source,
                })?;
        }
        let mut pending = config.listen.len();
        let listening = async {
            while pending > 0 {
                match swarm.select_next_some().await {
                    SwarmEvent::NewListenAddr { address, .. } => {
                        tracing::info!(%address, "listening");
                        pending -= 1;
                    }
                    SwarmEvent::ListenerError { error, .. } => {
                        return Err(NetworkError::Transport(error.to_string()));
                    }
                    SwarmEvent::ListenerClosed {
                        addresses, reason, ..
                    } => {
                        return Err(NetworkError::Transport(format!(
                            "listener on {addresses:?} closed: {reason:?}"
                        )));
                    }
                    _ => {}
                }
            }
            Ok(())
        };
        tokio::time::timeout(Duration::from_secs(10), listening)
            .await
            .map_err(|_| NetworkError::Transport("the listeners did not start in 10 s".into()))??;
        for addr in &config.external {
            swarm.add_external_address(addr.clone());
        }
        let mut bootstrap = Vec::new();
        for addr in &config.bootstrap {
            let Some(Protocol::P2p(peer)) = addr.iter().last() else {
                return Err(NetworkError::Config(format!(
                    "bootstrap address {addr} does not end in /p2p/<peer id>"
                )));
            };
            let mut plain = addr.clone();
            plain.pop();
            swarm.behaviour_mut().kad.add_address(&peer, plain.clone());
            bootstrap.push((peer, plain));
        }
        let (commands, command_rx) = mpsc::channel(256);
        let (events, event_rx) = mpsc::channel(config.event_buffer.max(1));
        let counters = Arc::new(Counters::default());
        let state = Loop {
            counters: counters.clone(),
            swarm,
            commands: command_rx,
            events,
            kad_protocol: StreamProtocol::try_from_owned(config.kad_protocol.clone())
                .map_err(|e| NetworkError::Config(format!("kad protocol: {e}")))?,
            bootstrap,
            bootstrap_redial: config.bootstrap_redial.max(Duration::from_millis(10)),
            next_id: 0,
            attempts: HashMap::new(),
            waiting: HashMap::new(),
            queries: HashMap::new(),
            connects: HashMap::new(),
        };
        tokio::spawn(state.run());
        Ok((
            NetworkHandle {
                commands,
                local_peer_id,
                counters,
            },
            event_rx,
        ))
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: connection_limits::Behaviour,
    ip_limits: crate::ip_limits::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    kad: kad::Behaviour<MemoryStore>,
    particles: protocol::Behaviour,
}

async fn build_swarm(config: &NetConfig) -> Result<Swarm<Behaviour>, NetworkError> {
    let keypair = keypair_of(&config.secret);
    let local = keypair.public().to_peer_id();
    let kad_protocol = StreamProtocol::try_from_owned(config.kad_protocol.clone())
        .map_err(|e| NetworkError::Config(format!("kad protocol: {e}")))?;
    let l = config.limits;
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established(l.max_established)
        .with_max_established_per_peer(l.max_established_per_peer)
        .with_max_pending_incoming(l.max_pending_incoming)
        .with_max_pending_outgoing(l.max_pending_outgoing);
    let protocol_config = ProtocolConfig {
        max_frame_bytes: config.max_frame_bytes,
        stream_timeout: config.stream_timeout,
        max_inbound_streams: config.max_inbound_streams.max(1),
        buffered: std::sync::Arc::new(protocol::ReadBudget::new(config.max_buffered_bytes)),
        particle_streams: config.particle_streams,
    };
    let mut kad_config = kad::Config::new(kad_protocol);
    kad_config.set_query_timeout(config.lookup_timeout);
    // Kademlia's traffic stays small: messages of at most 16 KiB, and a record store
    // (which braid does not use, but peers may write to) of bounded size.
    kad_config.set_max_packet_size(16 << 10);
    let kad_store = kad::store::MemoryStoreConfig {
        max_records: 256,
        max_value_bytes: 4 << 10,
        max_providers_per_key: 16,
        max_provided_keys: 256,
    };
    let mut yamux_config = yamux::Config::default();
    yamux_config.set_max_num_streams(config.max_streams_per_connection.max(1));
    let muxer = move || yamux_config.clone();
    let transport = |e: &dyn std::fmt::Display| NetworkError::Transport(e.to_string());
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            muxer.clone(),
        )
        .map_err(|e| transport(&e))?
        .with_dns()
        .map_err(|e| transport(&e))?
        .with_websocket(noise::Config::new, muxer)
        .await
        .map_err(|e| transport(&e))?
        .with_behaviour(|key| {
            let store = MemoryStore::with_config(local, kad_store);
            let mut kad = kad::Behaviour::with_config(local, store, kad_config);
            kad.set_mode(Some(kad::Mode::Server));
            Behaviour {
                limits: connection_limits::Behaviour::new(limits),
                ip_limits: crate::ip_limits::Behaviour::new(l.max_per_ip),
                identify: identify::Behaviour::new(
                    identify::Config::new(NetConfig::PROTOCOL_VERSION.into(), key.public())
                        .with_agent_version(format!("braid/{}", env!("CARGO_PKG_VERSION"))),
                ),
                ping: ping::Behaviour::new(ping::Config::new()),
                kad,
                particles: protocol::Behaviour::new(protocol_config),
            }
        })
        .map_err(|e| transport(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
        .with_connection_timeout(config.handshake_timeout)
        .build();
    Ok(swarm)
}

/// A handle on a running network; cheap to clone. The network stops when the last
/// handle is dropped.
#[derive(Clone)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
    local_peer_id: PeerId,
    counters: Arc<Counters>,
}

type Reply<T> = oneshot::Sender<T>;

enum Command {
    Attempt {
        peer: PeerId,
        kind: Kind,
        frame: Arc<Vec<u8>>,
        reply: Reply<Result<(), Failure>>,
    },
    Connect {
        addr: Multiaddr,
        reply: Reply<Result<PeerId, NetworkError>>,
    },
    Neighborhood {
        key: Vec<u8>,
        count: NonZeroUsize,
        reply: Reply<Result<Vec<PeerId>, NetworkError>>,
    },
    ListenAddrs(Reply<Vec<Multiaddr>>),
    ExternalAddrs(Reply<Vec<Multiaddr>>),
    ConnectedPeers(Reply<Vec<PeerId>>),
}

/// The first wait between attempts; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

impl NetworkHandle {
    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// The counters so far.
    pub fn stats(&self) -> NetStats {
        self.counters.snapshot()
    }

    /// Sends `particle` to `peer` on the particle protocol; resolves once the frame was
    /// written to a stream of a connection to the peer and the stream closed, or with
    /// [`NetworkError::Undeliverable`] once `deadline` has passed (or at once, when the
    /// peer does not speak the protocol).
    pub async fn send(
        &self,
        peer: PeerId,
        particle: &Particle,
        deadline: Instant,
    ) -> Result<(), NetworkError> {
        self.send_encoded(peer, &particle.encode(), deadline).await
    }

    /// [`Self::send`] for a particle already encoded ([`Particle::encode`]).
    pub async fn send_encoded(
        &self,
        peer: PeerId,
        encoded: &[u8],
        deadline: Instant,
    ) -> Result<(), NetworkError> {
        let frame = Arc::new(frame_of_encoded(encoded));
        self.deliver(peer, Kind::Particle, frame, deadline).await
    }

    /// Sends a braid notice to `peer` (`/braid/notice/1.0.0`); as [`Self::send`].
    pub async fn send_notice(
        &self,
        peer: PeerId,
        notice: &Notice,
        deadline: Instant,
    ) -> Result<(), NetworkError> {
        let frame = Arc::new(notice.encode_frame());
        self.deliver(peer, Kind::Notice, frame, deadline).await
    }

    async fn deliver(
        &self,
        peer: PeerId,
        kind: Kind,
        frame: Arc<Vec<u8>>,
        deadline: Instant,
    ) -> Result<(), NetworkError> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempts = 0;
        let reason = loop {
            attempts += 1;
            let (reply, answer) = oneshot::channel();
            let command = Command::Attempt {
                peer,
                kind,
                frame: frame.clone(),
                reply,
            };
            self.commands
                .send(command)
                .await
                .map_err(|_| NetworkError::Stopped)?;
            let failure = match tokio::time::timeout_at(deadline, answer).await {
                Ok(Ok(Ok(()))) => {
                    self.counters.sent.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Ok(Ok(Err(failure))) => failure,
                Ok(Err(_)) => return Err(NetworkError::Stopped),
                Err(_) => break "the deadline passed during an attempt".to_owned(),
            };
            tracing::debug!(%peer, attempts, reason = %failure.reason, "send attempt failed");
            if !failure.retry || Instant::now() + backoff >= deadline {
                break failure.reason;
            }
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        };
        tracing::info!(%peer, attempts, %reason, "undeliverable");
        self.counters.undeliverable.fetch_add(1, Ordering::Relaxed);
        Err(NetworkError::Undeliverable {
            peer,
            attempts,
            reason,
        })
    }

    /// Dials `addr`; with a `/p2p/<peer id>` ending, only that peer is accepted.
    /// Resolves with the peer's id once connected (at once if it already is).
    pub async fn connect(&self, addr: Multiaddr) -> Result<PeerId, NetworkError> {
        self.ask(|reply| Command::Connect { addr, reply }).await?
    }

    /// Up to `count` (at most 20) peers closest to `peer` in the Kademlia space, by a
    /// query; `peer` itself among them when it is reachable. This node is never in it.
    pub async fn neighborhood(
        &self,
        peer: PeerId,
        count: usize,
    ) -> Result<Vec<PeerId>, NetworkError> {
        self.neighborhood_of_key(peer.to_bytes(), count).await
    }

    /// [`Self::neighborhood`] of any key: its place in the Kademlia space is the SHA-256
    /// of `key` (for a peer id, of its bytes).
    pub async fn neighborhood_of_key(
        &self,
        key: Vec<u8>,
        count: usize,
    ) -> Result<Vec<PeerId>, NetworkError> {
        let Some(count) = NonZeroUsize::new(count) else {
            return Ok(Vec::new());
        };
        self.ask(|reply| Command::Neighborhood { key, count, reply })
            .await?
    }

    /// The addresses this node listens on.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetworkError> {
        self.ask(Command::ListenAddrs).await
    }

    /// The addresses this node announces as its external ones.
    pub async fn external_addrs(&self) -> Result<Vec<Multiaddr>, NetworkError> {
        self.ask(Command::ExternalAddrs).await
    }

    /// The peers with an open connection.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, NetworkError> {
        self.ask(Command::ConnectedPeers).await
    }

    /// Whether a connection to `peer` is open.
    pub async fn is_connected(&self, peer: PeerId) -> Result<bool, NetworkError> {
        Ok(self.connected_peers().await?.contains(&peer))
    }

    async fn ask<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, NetworkError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| NetworkError::Stopped)?;
        answer.await.map_err(|_| NetworkError::Stopped)
    }
}

/// Attempts waiting for a connection to their peer.
struct Waiting {
    attempts: Vec<(Outbound, Reply<Result<(), Failure>>)>,
    stage: Stage,
}

/// How far the search for a waiting peer has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Dialing the addresses the routing table holds.
    Dialing,
    /// A Kademlia query for the peer runs (its own dials may fail; they are no verdict).
    LookingUp,
    /// Dialing the addresses the query found: a failure now is final for this batch.
    DialingFound,
}

enum Query {
    /// Looking for a peer to deliver to.
    Route(PeerId),
    /// A neighborhood asked for.
    Neighborhood {
        count: usize,
        reply: Reply<Result<Vec<PeerId>, NetworkError>>,
    },
}

struct Loop {
    swarm: Swarm<Behaviour>,
    counters: Arc<Counters>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetEvent>,
    kad_protocol: StreamProtocol,
    /// Bootstrap peers and their addresses.
    bootstrap: Vec<(PeerId, Multiaddr)>,
    bootstrap_redial: Duration,
    next_id: u64,
    /// Attempts handed to the particle behaviour, by id.
    attempts: HashMap<u64, Reply<Result<(), Failure>>>,
    waiting: HashMap<PeerId, Waiting>,
    queries: HashMap<QueryId, Query>,
    connects: HashMap<ConnectionId, (Multiaddr, Reply<Result<PeerId, NetworkError>>)>,
}

impl Loop {
    async fn run(mut self) {
        // The first tick is at once: it dials the bootstrap peers.
        let mut redial = tokio::time::interval(self.bootstrap_redial);
        redial.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.handle_command(command),
                    None => break,
                },
                event = self.swarm.select_next_some() => self.handle_swarm_event(event).await,
                _ = redial.tick(), if !self.bootstrap.is_empty() => self.dial_bootstrap(),
            }
        }
        tracing::debug!("network loop stopped: every handle was dropped");
    }

    /// Dials the bootstrap peers this node is not connected to.
    fn dial_bootstrap(&mut self) {
        for (peer, addr) in self.bootstrap.clone() {
            if self.swarm.is_connected(&peer) {
                continue;
            }
            let opts = DialOpts::peer_id(peer)
                .addresses(vec![addr.clone()])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(e) = self.swarm.dial(opts) {
                tracing::debug!(%peer, %addr, error = %e, "dialing a bootstrap peer failed");
            }
        }
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Attempt {
                peer,
                kind,
                frame,
                reply,
            } => {
                self.next_id += 1;
                let outbound = Outbound {
                    id: self.next_id,
                    kind,
                    frame,
                };
                self.attempt(peer, outbound, reply);
            }
            Command::Connect { addr, reply } => self.connect(addr, reply),
            Command::Neighborhood { key, count, reply } => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_n_closest_peers(key, count);
                self.queries.insert(
                    id,
                    Query::Neighborhood {
                        count: count.get(),
                        reply,
                    },
                );
            }
            Command::ListenAddrs(reply) => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::ExternalAddrs(reply) => {
                let _ = reply.send(self.swarm.external_addresses().cloned().collect());
            }
            Command::ConnectedPeers(reply) => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
        }
    }

    fn attempt(&mut self, peer: PeerId, outbound: Outbound, reply: Reply<Result<(), Failure>>) {
        if peer == *self.swarm.local_peer_id() {
            let _ = reply.send(Err(Failure {
                reason: "a node does not send to itself over the network".into(),
                retry: false,
            }));
            return;
        }
        if self.swarm.is_connected(&peer) {
            self.hand_over(peer, outbound, reply);
            return;
        }
        let first = !self.waiting.contains_key(&peer);
        self.waiting
            .entry(peer)
            .or_insert_with(|| Waiting {
                attempts: Vec::new(),
                stage: Stage::Dialing,
            })
            .attempts
            .push((outbound, reply));
        if first {
            self.dial(peer);
        }
    }

    fn hand_over(&mut self, peer: PeerId, outbound: Outbound, reply: Reply<Result<(), Failure>>) {
        let id = outbound.id;
        match self.swarm.behaviour_mut().particles.send(peer, outbound) {
            Ok(()) => {
                self.attempts.insert(id, reply);
            }
            Err(_) => {
                let _ = reply.send(Err(Failure::retry("no connection to the peer")));
            }
        }
    }

    /// Dials `peer` at the addresses the behaviours know; with none, looks it up.
    fn dial(&mut self, peer: PeerId) {
        let opts = DialOpts::peer_id(peer)
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        match self.swarm.dial(opts) {
            Ok(()) | Err(DialError::DialPeerConditionFalse(_)) => {}
            Err(DialError::NoAddresses) => self.look_up(peer),
            Err(e) => self.fail_waiting(peer, &format!("dialing failed: {e}")),
        }
    }

    fn look_up(&mut self, peer: PeerId) {
        if let Some(waiting) = self.waiting.get_mut(&peer) {
            waiting.stage = Stage::LookingUp;
        }
        tracing::debug!(%peer, "looking the peer up");
        self.counters.lookups.fetch_add(1, Ordering::Relaxed);
        let id = self.swarm.behaviour_mut().kad.get_closest_peers(peer);
        self.queries.insert(id, Query::Route(peer));
    }

    fn fail_waiting(&mut self, peer: PeerId, reason: &str) {
        for (_, reply) in self
            .waiting
            .remove(&peer)
            .map(|w| w.attempts)
            .unwrap_or_default()
        {
            let _ = reply.send(Err(Failure::retry(reason)));
        }
    }

    fn flush_waiting(&mut self, peer: PeerId) {
        for (outbound, reply) in self
            .waiting
            .remove(&peer)
            .map(|w| w.attempts)
            .unwrap_or_default()
        {
            self.hand_over(peer, outbound, reply);
        }
    }

    fn connect(&mut self, addr: Multiaddr, reply: Reply<Result<PeerId, NetworkError>>) {
        let opts = match addr.iter().last() {
            Some(Protocol::P2p(peer)) => {
                if self.swarm.is_connected(&peer) {
                    let _ = reply.send(Ok(peer));
                    return;
                }
                DialOpts::peer_id(peer)
                    .addresses(vec![addr.clone()])
                    .condition(PeerCondition::Always)
                    .build()
            }
            _ => DialOpts::unknown_peer_id().address(addr.clone()).build(),
        };
        let connection = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                self.connects.insert(connection, (addr, reply));
            }
            Err(e) => {
                let _ = reply.send(Err(NetworkError::Dial {
                    addr,
                    reason: e.to_string(),
                }));
            }
        }
    }

    async fn emit(&mut self, event: NetEvent) {
        // A node that dropped its receiver no longer wants events.
        let _ = self.events.send(event).await;
    }

    async fn handle_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                tracing::debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connected");
                self.counters
                    .connections_established
                    .fetch_add(1, Ordering::Relaxed);
                if let Some((_, reply)) = self.connects.remove(&connection_id) {
                    let _ = reply.send(Ok(peer_id));
                }
                if self.bootstrap.iter().any(|(p, _)| *p == peer_id) {
                    // Joining (again): fill the routing table around this node's id.
                    let _ = self.swarm.behaviour_mut().kad.bootstrap();
                }
                self.flush_waiting(peer_id);
                self.emit(NetEvent::ConnectionEstablished {
                    peer: peer_id,
                    addr: endpoint.get_remote_address().clone(),
                    inbound: endpoint.is_listener(),
                })
                .await;
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                tracing::debug!(peer = %peer_id, ?cause, "connection closed");
                self.counters
                    .connections_closed
                    .fetch_add(1, Ordering::Relaxed);
                self.emit(NetEvent::ConnectionClosed {
                    peer: peer_id,
                    remaining: num_established,
                })
                .await;
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                tracing::debug!(peer = ?peer_id, %error, "dial failed");
                if let Some((addr, reply)) = self.connects.remove(&connection_id) {
                    let _ = reply.send(Err(NetworkError::Dial {
                        addr,
                        reason: error.to_string(),
                    }));
                }
                if let Some(peer) = peer_id {
                    self.handle_dial_failure(peer, &error);
                }
            }
            SwarmEvent::Behaviour(event) => self.handle_behaviour_event(event).await,
            _ => {}
        }
    }

    fn handle_dial_failure(&mut self, peer: PeerId, error: &DialError) {
        if self.swarm.is_connected(&peer) {
            return;
        }
        let Some(waiting) = self.waiting.get(&peer) else {
            return;
        };
        match waiting.stage {
            Stage::Dialing => {
                // Every address the routing table held failed: forget them, or the
                // query would try them again and never take the ones it learns.
                self.swarm.behaviour_mut().kad.remove_peer(&peer);
                self.look_up(peer);
            }
            Stage::LookingUp => {}
            Stage::DialingFound => self.fail_waiting(peer, &format!("dialing failed: {error}")),
        }
    }

    async fn handle_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Particles(event) => self.handle_particle_event(event).await,
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                let particle = StreamProtocol::new(PARTICLE_PROTOCOL);
                if !info.protocols.contains(&particle) {
                    tracing::info!(peer = %peer_id, "the peer does not speak the particle protocol; disconnecting");
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                if info.protocols.contains(&self.kad_protocol) {
                    for addr in info.listen_addrs {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                    }
                }
            }
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result: QueryResult::GetClosestPeers(result),
                step,
                ..
            }) => {
                if !step.last {
                    return;
                }
                let Some(query) = self.queries.remove(&id) else {
                    return;
                };
                let (peers, error) = match result {
                    Ok(ok) => (ok.peers, None),
                    Err(GetClosestPeersError::Timeout { peers, .. }) => {
                        (peers, Some("the query timed out"))
                    }
                };
                match query {
                    Query::Neighborhood { count, reply } => {
                        let found: Vec<PeerId> =
                            peers.into_iter().map(|p| p.peer_id).take(count).collect();
                        let answer = match error {
                            Some(e) if found.is_empty() => Err(NetworkError::Lookup(e.into())),
                            _ => Ok(found),
                        };
                        let _ = reply.send(answer);
                    }
                    Query::Route(peer) => {
                        if self.swarm.is_connected(&peer) {
                            self.flush_waiting(peer);
                            return;
                        }
                        let Some(waiting) = self.waiting.get_mut(&peer) else {
                            return;
                        };
                        waiting.stage = Stage::DialingFound;
                        match peers.into_iter().find(|p| p.peer_id == peer) {
                            Some(info) if !info.addrs.is_empty() => {
                                for addr in &info.addrs {
                                    self.swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
                                }
                                let opts = DialOpts::peer_id(peer)
                                    .addresses(info.addrs)
                                    .condition(PeerCondition::DisconnectedAndNotDialing)
                                    .build();
                                match self.swarm.dial(opts) {
                                    Ok(()) => {}
                                    // Dialing already (kad's own dial): its outcome decides.
                                    Err(DialError::DialPeerConditionFalse(_)) => {}
                                    Err(e) => {
                                        self.fail_waiting(peer, &format!("dialing failed: {e}"))
                                    }
                                }
                            }
                            _ => self.fail_waiting(
                                peer,
                                &format!(
                                    "no address known, and a Kademlia lookup did not find the peer{}",
                                    error.map(|e| format!(" ({e})")).unwrap_or_default()
                                ),
                            ),
                        }
                    }
                }
            }
            _ => {}
        }
    }

    async fn handle_particle_event(&mut self, event: protocol::Event) {
        match event {
            protocol::Event::Particle { from, ip, particle } => {
                self.counters
                    .particles_received
                    .fetch_add(1, Ordering::Relaxed);
                self.emit(NetEvent::Particle { from, ip, particle }).await;
            }
            protocol::Event::Notice { from, notice } => {
                self.counters
                    .notices_received
                    .fetch_add(1, Ordering::Relaxed);
                self.emit(NetEvent::Notice { from, notice }).await;
            }
            protocol::Event::Rejected { from, kind, reason } => {
                tracing::info!(peer = %from, kind, %reason, "inbound stream refused");
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                self.emit(NetEvent::Rejected { from, kind, reason }).await;
            }
            protocol::Event::Sent { id, result } => {
                if let Some(reply) = self.attempts.remove(&id) {
                    let _ = reply.send(result);
                }
            }
        }
    }
}
