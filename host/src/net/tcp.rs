//! [`TcpNetwork`]: the [`Network`] over Noise-encrypted TCP connections.
//!
//! One connection per peer, opened on first use (or by the peer), used in both
//! directions, and closed when nothing arrives for the idle timeout. A particle sent
//! to a peer is a request its node answers with an `Ack` once its inbox has taken the
//! particle (or refused it). Failures to connect or to get an answer are retried with
//! backoff until the particle's deadline; then, as for refusals and unknown peers, the
//! send fails with the reason: logged, counted as `undeliverable`, and returned to the
//! node, which reports it (and answers a waiting `execute` with it, or, if another peer
//! started the particle, sends that peer an `Undeliverable` notice through
//! [`Network::notify_undeliverable`]).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Deserialize;
use snow::StatelessTransportState;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::time::Instant;

use super::frame::{FrameReader, FrameWriter, ReadLimits};
use super::handshake::{Established, initiate, respond};
use super::{NetConfig, NetError, Route};
use crate::identity::NodeKey;
use crate::network::{Network, SendError};
use crate::node::{Node, WeakNode, now_ms};
use crate::services::BoxFuture;
use braid_wire::{Message, Status, Undeliverable};

/// The built-in services every node answers.
const BUILTIN_SERVICES: &[&str] = &[
    "array",
    "cmp",
    "debug",
    "json",
    "math",
    "op",
    "peer",
    "run-console",
];

/// Counters of the transport.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetStats {
    /// TCP connections accepted.
    pub accepted: u64,
    /// TCP connections dialled.
    pub dialled: u64,
    /// Connections whose handshake succeeded.
    pub established: u64,
    /// Connections closed (or refused), by [`NetError::kind`].
    pub closed: BTreeMap<&'static str, u64>,
    /// Particles a peer took from this node.
    pub particles_sent: u64,
    /// Particles this node took from peers.
    pub particles_received: u64,
    /// Particles forwarded for other peers.
    pub forwarded: u64,
    /// Send attempts retried.
    pub retries: u64,
    /// Particles given up on (the send failed and was reported).
    pub undeliverable: u64,
    /// Undeliverable notices sent to init peers (or passed on for them as a relay).
    pub notices_sent: u64,
    /// Undeliverable notices received that ended a waiting `execute` here.
    pub notices_accepted: u64,
    /// Undeliverable notices received and ignored (no such particle waits here, or a
    /// relayed notice not from the connection's peer).
    pub notices_ignored: u64,
}

/// The network of a node over encrypted TCP. Build with [`TcpNetwork::bind`], give it
/// to [`crate::NodeBuilder::network`], then [`TcpNetwork::serve`] the node.
pub struct TcpNetwork {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TcpNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpNetwork")
            .field("peer_id", &self.inner.key.peer_id())
            .field("local_addr", &self.inner.local_addr)
            .finish_non_exhaustive()
    }
}

struct Inner {
    key: NodeKey,
    config: NetConfig,
    advertise: Option<String>,
    local_addr: Option<SocketAddr>,
    routes: RwLock<HashMap<String, Route>>,
    conns: Mutex<HashMap<String, Arc<Conn>>>,
    dial_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    node: Mutex<Option<WeakNode>>,
    listener: Mutex<Option<TcpListener>>,
    stats: Mutex<NetStats>,
    handshaking: Arc<Semaphore>,
    open: AtomicUsize,
    intake_open: AtomicBool,
    stop: watch::Sender<bool>,
    next_conn: AtomicU64,
    sends_in_flight: AtomicU64,
}

/// How a send attempt failed.
enum Failure {
    /// Worth trying again (no connection, no answer).
    Retry(SendError),
    /// Not worth it (refused, no route).
    Final(SendError),
}

impl TcpNetwork {
    /// Binds the listening address of `config` (if any) for the node of `key`.
    pub async fn bind(key: NodeKey, config: NetConfig) -> Result<Arc<Self>, NetError> {
        let listener = match &config.listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| NetError::Config(format!("cannot listen on {addr}: {e}")))?,
            ),
            None => None,
        };
        let local_addr = listener.as_ref().and_then(|l| l.local_addr().ok());
        let advertise = config
            .advertise
            .clone()
            .or_else(|| local_addr.map(|a| a.to_string()));
        let routes = config
            .peers
            .iter()
            .map(|(id, route)| (id.clone(), route.clone()))
            .collect();
        Ok(Arc::new(TcpNetwork {
            inner: Arc::new(Inner {
                handshaking: Arc::new(Semaphore::new(config.max_handshaking.max(1))),
                key,
                config,
                advertise,
                local_addr,
                routes: RwLock::new(routes),
                conns: Mutex::new(HashMap::new()),
                dial_locks: Mutex::new(HashMap::new()),
                node: Mutex::new(None),
                listener: Mutex::new(listener),
                stats: Mutex::new(NetStats::default()),
                open: AtomicUsize::new(0),
                intake_open: AtomicBool::new(true),
                stop: watch::channel(false).0,
                next_conn: AtomicU64::new(0),
                sends_in_flight: AtomicU64::new(0),
            }),
        }))
    }

    /// The bound address, if the network listens.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.local_addr
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> &str {
        self.inner.key.peer_id()
    }

    /// Hands `node` the particles that arrive (the node must have the same key), starts
    /// accepting connections, and keeps a connection to the relay if there is one.
    pub fn serve(&self, node: &Node) {
        *lock(&self.inner.node) = Some(node.downgrade());
        if let Some(listener) = lock(&self.inner.listener).take() {
            tokio::spawn(accept_loop(Arc::clone(&self.inner), listener));
        }
        if let Some(relay) = self.inner.config.relay.clone() {
            tokio::spawn(keep_relay(Arc::clone(&self.inner), relay));
        }
    }

    /// Adds or replaces a peer's route.
    pub fn add_peer(&self, peer_id: impl Into<String>, route: Route) {
        write(&self.inner.routes).insert(peer_id.into(), route);
    }

    /// Dials `addr`, whoever answers, and returns its peer id (now a known peer).
    pub async fn connect(&self, addr: &str) -> Result<String, NetError> {
        let conn = self.inner.dial(None, addr).await?;
        write(&self.inner.routes).insert(conn.peer.clone(), Route::Direct(addr.to_owned()));
        Ok(conn.peer.clone())
    }

    /// Asks a peer for its [`Status`].
    pub async fn status_of(&self, peer_id: &str) -> Result<Status, NetError> {
        let conn = match self.inner.connection(peer_id, false).await {
            Ok((conn, _)) => conn,
            Err(Failure::Retry(e) | Failure::Final(e)) => return Err(NetError::Io(e.to_string())),
        };
        match conn
            .request(
                |seq| Message::StatusRequest { seq },
                self.inner.config.ack_timeout,
            )
            .await
        {
            Ok(Message::Status { status, .. }) => Ok(status),
            Ok(other) => Err(NetError::Malformed(format!(
                "expected a status, got {other:?}"
            ))),
            Err(Failure::Retry(e) | Failure::Final(e)) => Err(NetError::Io(e.to_string())),
        }
    }

    /// This node's status.
    pub fn status(&self) -> Status {
        self.inner.status()
    }

    /// The transport's counters.
    pub fn stats(&self) -> NetStats {
        lock(&self.inner.stats).clone()
    }

    /// The peers this transport has a route to (for `peer.get_contact`).
    pub(crate) fn routes(&self) -> Vec<(String, Route)> {
        let mut routes: Vec<(String, Route)> = read(&self.inner.routes)
            .iter()
            .map(|(p, r)| (p.clone(), r.clone()))
            .collect();
        routes.sort_by(|a, b| a.0.cmp(&b.0));
        routes
    }

    /// Peers with an open connection, sorted.
    pub fn connected_peers(&self) -> Vec<String> {
        self.inner.connected_peers()
    }

    /// Particles being sent, retries included.
    pub fn sends_in_flight(&self) -> u64 {
        self.inner.sends_in_flight.load(Ordering::Relaxed)
    }

    /// Stops intake: no new connections; particles that arrive are refused (their
    /// senders are told). Sends go on.
    pub fn stop_intake(&self) {
        self.inner.intake_open.store(false, Ordering::Relaxed);
        self.inner.stop.send_replace(true);
    }

    /// Closes every connection.
    pub fn close_all(&self) {
        self.stop_intake();
        let conns: Vec<Arc<Conn>> = lock(&self.inner.conns).drain().map(|(_, c)| c).collect();
        for conn in conns {
            conn.shutdown.send_replace(true);
        }
    }
}

impl Network for TcpNetwork {
    fn info(&self) -> &dyn crate::network_info::NetworkInfo {
        self
    }

    fn send(&self, to: &str, particle: Vec<u8>) -> BoxFuture<Result<(), SendError>> {
        let inner = Arc::clone(&self.inner);
        let to = to.to_owned();
        Box::pin(async move { inner.deliver(&to, particle, true).await })
    }

    fn notify_undeliverable(&self, notice: Undeliverable) -> BoxFuture<Result<(), SendError>> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move { inner.notify(notice, true).await })
    }
}

/// One authenticated connection.
struct Conn {
    id: u64,
    peer: String,
    outbound: mpsc::Sender<Vec<u8>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Message>>>,
    next_seq: AtomicU64,
    closed: AtomicBool,
    shutdown: watch::Sender<bool>,
}

impl Conn {
    async fn post(&self, message: &Message) -> Result<(), NetError> {
        self.outbound
            .send(message.encode())
            .await
            .map_err(|_| NetError::Closed)
    }

    async fn request(
        &self,
        make: impl FnOnce(u64) -> Message,
        timeout: Duration,
    ) -> Result<Message, Failure> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(seq, tx);
        let closed = || {
            Failure::Retry(SendError::Transport(format!(
                "the connection to {} closed",
                self.peer
            )))
        };
        if self.closed.load(Ordering::Relaxed) || self.post(&make(seq)).await.is_err() {
            lock(&self.pending).remove(&seq);
            return Err(closed());
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(closed()),
            Err(_) => {
                lock(&self.pending).remove(&seq);
                Err(Failure::Retry(SendError::Transport(format!(
                    "{} did not answer within {} ms",
                    self.peer,
                    timeout.as_millis()
                ))))
            }
        }
    }

    fn answer(&self, seq: u64, message: Message) {
        match lock(&self.pending).remove(&seq) {
            Some(reply) => {
                let _ = reply.send(message);
            }
            None => tracing::debug!(peer = %self.peer, seq, "an answer nobody waits for"),
        }
    }
}

impl Inner {
    /// Sends a particle, retrying within its ttl; reports what cannot be delivered.
    async fn deliver(
        self: &Arc<Self>,
        to: &str,
        particle: Vec<u8>,
        allow_relay: bool,
    ) -> Result<(), SendError> {
        self.sends_in_flight.fetch_add(1, Ordering::Relaxed);
        let result = self.deliver_with_retries(to, &particle, allow_relay).await;
        self.sends_in_flight.fetch_sub(1, Ordering::Relaxed);
        match &result {
            Ok(()) => self.count(|s| s.particles_sent += 1),
            Err(error) => {
                tracing::warn!(
                    peer = %self.key.peer_id(),
                    to = %to,
                    "particle undeliverable: {error}"
                );
                self.count(|s| s.undeliverable += 1);
            }
        }
        result
    }

    async fn deliver_with_retries(
        self: &Arc<Self>,
        to: &str,
        particle: &[u8],
        allow_relay: bool,
    ) -> Result<(), SendError> {
        let deadline = deadline_of(particle);
        let mut backoff = self.config.backoff_initial;
        loop {
            let error = match self.send_once(to, particle, allow_relay).await {
                Ok(()) => return Ok(()),
                Err(Failure::Final(error)) => return Err(error),
                Err(Failure::Retry(error)) => error,
            };
            if Instant::now() + backoff >= deadline {
                return Err(SendError::Transport(format!(
                    "{error}; gave up at the particle's deadline"
                )));
            }
            tracing::debug!(to = %to, backoff_ms = backoff.as_millis() as u64, "retrying a send: {error}");
            self.count(|s| s.retries += 1);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.config.backoff_max);
        }
    }

    async fn send_once(
        self: &Arc<Self>,
        to: &str,
        particle: &[u8],
        allow_relay: bool,
    ) -> Result<(), Failure> {
        let (conn, via_relay) = self.connection(to, allow_relay).await?;
        let timeout = self.config.ack_timeout;
        let answer = if via_relay {
            // The relay retries within the ttl itself: wait for it as long.
            let wait = deadline_of(particle).saturating_duration_since(Instant::now()) + timeout;
            conn.request(
                |seq| Message::Forward {
                    seq,
                    to: to.to_owned(),
                    particle: particle.to_vec(),
                },
                wait,
            )
            .await?
        } else {
            conn.request(
                |seq| Message::Particle {
                    seq,
                    particle: particle.to_vec(),
                },
                timeout,
            )
            .await?
        };
        match answer {
            Message::Ack { refused: None, .. } => Ok(()),
            Message::Ack {
                refused: Some(why), ..
            } => Err(Failure::Final(SendError::Transport(format!(
                "{} refused the particle: {why}",
                conn.peer
            )))),
            other => Err(Failure::Final(SendError::Transport(format!(
                "{} answered a particle with {other:?}",
                conn.peer
            )))),
        }
    }

    /// The connection that reaches `to`, and whether it goes through a relay.
    async fn connection(
        self: &Arc<Self>,
        to: &str,
        allow_relay: bool,
    ) -> Result<(Arc<Conn>, bool), Failure> {
        if let Some(conn) = lock(&self.conns).get(to) {
            return Ok((Arc::clone(conn), false));
        }
        let route = read(&self.routes).get(to).cloned();
        let relay = match route {
            Some(Route::Direct(addr)) => {
                return self.dial_route(to, &addr).await.map(|c| (c, false));
            }
            Some(Route::Via(relay)) => relay,
            None => match &self.config.relay {
                Some(relay) if allow_relay && relay != to => relay.clone(),
                _ => {
                    return Err(Failure::Final(SendError::Unreachable(to.to_owned())));
                }
            },
        };
        if let Some(conn) = lock(&self.conns).get(&relay) {
            return Ok((Arc::clone(conn), true));
        }
        let relay_route = read(&self.routes).get(&relay).cloned();
        match relay_route {
            Some(Route::Direct(addr)) => self.dial_route(&relay, &addr).await.map(|c| (c, true)),
            _ => Err(Failure::Retry(SendError::Transport(format!(
                "no connection to the relay {relay} of {to}"
            )))),
        }
    }

    async fn dial_route(self: &Arc<Self>, peer: &str, addr: &str) -> Result<Arc<Conn>, Failure> {
        let dial_lock = Arc::clone(lock(&self.dial_locks).entry(peer.to_owned()).or_default());
        let _dialling = dial_lock.lock().await;
        if let Some(conn) = lock(&self.conns).get(peer) {
            return Ok(Arc::clone(conn));
        }
        self.dial(Some(peer), addr).await.map_err(|e| match e {
            NetError::UnexpectedPeer { .. } | NetError::BadIdentity(_) => {
                Failure::Final(SendError::Transport(e.to_string()))
            }
            _ => Failure::Retry(SendError::Transport(format!(
                "cannot reach {peer} at {addr}: {e}"
            ))),
        })
    }

    /// Opens a connection to `addr`; with `expected`, only to that peer.
    async fn dial(
        self: &Arc<Self>,
        expected: Option<&str>,
        addr: &str,
    ) -> Result<Arc<Conn>, NetError> {
        self.count(|s| s.dialled += 1);
        let mut stream =
            tokio::time::timeout(self.config.connect_timeout, TcpStream::connect(addr))
                .await
                .map_err(|_| NetError::Timeout("connect"))??;
        stream.set_nodelay(true)?;
        let established = tokio::time::timeout(
            self.config.handshake_timeout,
            initiate(&mut stream, &self.key, self.advertise.clone()),
        )
        .await
        .map_err(|_| NetError::Timeout("handshake"))
        .and_then(|r| r)
        .and_then(|est| match expected {
            Some(peer) if peer != est.peer_id => Err(NetError::UnexpectedPeer {
                expected: peer.to_owned(),
                actual: est.peer_id,
            }),
            _ => Ok(est),
        });
        match established {
            Ok(est) => Ok(self.start_connection(stream, est)),
            Err(e) => {
                self.closed_before_start(addr, &e);
                Err(e)
            }
        }
    }

    fn closed_before_start(&self, remote: &str, error: &NetError) {
        tracing::warn!(peer = %self.key.peer_id(), remote = %remote, reason = error.kind(), "connection closed: {error}");
        self.count(|s| *s.closed.entry(error.kind()).or_default() += 1);
    }

    /// Registers an authenticated connection and starts its reader and writer.
    fn start_connection(self: &Arc<Self>, stream: TcpStream, est: Established) -> Arc<Conn> {
        let Established {
            noise,
            peer_id,
            listen,
        } = est;
        self.count(|s| s.established += 1);
        self.open.fetch_add(1, Ordering::Relaxed);
        if let Some(listen) = listen {
            write(&self.routes)
                .entry(peer_id.clone())
                .or_insert(Route::Direct(listen));
        }
        let (rd, wr) = stream.into_split();
        let (tx, rx) = mpsc::channel(self.config.send_queue.max(1));
        let conn = Arc::new(Conn {
            id: self.next_conn.fetch_add(1, Ordering::Relaxed),
            peer: peer_id.clone(),
            outbound: tx,
            pending: Mutex::new(HashMap::new()),
            next_seq: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            shutdown: watch::channel(false).0,
        });
        tracing::debug!(peer = %self.key.peer_id(), remote = %peer_id, "connection established");
        if let Some(old) = lock(&self.conns).insert(peer_id, Arc::clone(&conn)) {
            // The newer connection carries new sends; the older one ends when idle.
            tracing::debug!(remote = %old.peer, "a second connection to a peer; the newer is used");
        }
        let noise = Arc::new(noise);
        let writer = tokio::spawn(write_loop(
            Arc::clone(self),
            Arc::clone(&conn),
            rx,
            FrameWriter::new(wr),
            Arc::clone(&noise),
        ));
        tokio::spawn(read_loop(
            Arc::clone(self),
            Arc::clone(&conn),
            FrameReader::new(rd),
            noise,
            writer,
        ));
        conn
    }

    /// Ends a connection: unregisters it, fails its waiting requests, logs the reason.
    fn close(&self, conn: &Conn, reason: &NetError) {
        if conn.closed.swap(true, Ordering::Relaxed) {
            return;
        }
        {
            let mut conns = lock(&self.conns);
            if conns.get(&conn.peer).is_some_and(|c| c.id == conn.id) {
                conns.remove(&conn.peer);
            }
        }
        lock(&conn.pending).clear();
        self.open.fetch_sub(1, Ordering::Relaxed);
        match reason {
            NetError::Closed | NetError::Idle(_) => {
                tracing::debug!(peer = %self.key.peer_id(), remote = %conn.peer, reason = reason.kind(), "connection closed: {reason}");
            }
            _ => {
                tracing::warn!(peer = %self.key.peer_id(), remote = %conn.peer, reason = reason.kind(), "connection closed: {reason}");
            }
        }
        self.count(|s| *s.closed.entry(reason.kind()).or_default() += 1);
    }

    fn count(&self, f: impl FnOnce(&mut NetStats)) {
        f(&mut lock(&self.stats));
    }

    fn node(&self) -> Option<Node> {
        lock(&self.node).as_ref().and_then(WeakNode::upgrade)
    }

    fn connected_peers(&self) -> Vec<String> {
        let mut peers: Vec<String> = lock(&self.conns).keys().cloned().collect();
        peers.sort();
        peers
    }

    fn status(&self) -> Status {
        let node = self.node().map(|n| n.stats()).unwrap_or_default();
        let net = lock(&self.stats).clone();
        let mut counters = BTreeMap::new();
        for (name, value) in [
            ("accepted", node.accepted),
            ("invokes", node.invokes),
            ("failed_invokes", node.failed_invokes),
            ("calls", node.calls),
            ("call_timeouts", node.call_timeouts),
            ("sent", node.sent),
            ("send_failures", node.send_failures),
            ("expired", node.expired),
            ("store_failures", node.store_failures),
            ("net_connections_accepted", net.accepted),
            ("net_connections_dialled", net.dialled),
            ("net_connections_established", net.established),
            ("net_particles_sent", net.particles_sent),
            ("net_particles_received", net.particles_received),
            ("net_forwarded", net.forwarded),
            ("net_retries", net.retries),
            ("net_undeliverable", net.undeliverable),
            ("net_notices_sent", net.notices_sent),
            ("net_notices_accepted", net.notices_accepted),
            ("net_notices_ignored", net.notices_ignored),
        ] {
            counters.insert(name.to_owned(), value);
        }
        for (kind, n) in &node.rejected {
            counters.insert(format!("rejected_{kind}"), *n);
        }
        for (kind, n) in &net.closed {
            counters.insert(format!("net_closed_{kind}"), *n);
        }
        Status {
            peer_id: self.key.peer_id().to_owned(),
            particles_in_flight: node.live_particles,
            connected_peers: self.connected_peers(),
            services: BUILTIN_SERVICES.iter().map(|s| (*s).to_owned()).collect(),
            intake_pressure: node.intake_pressure,
            sends_in_flight: self.sends_in_flight.load(Ordering::Relaxed),
            memory_bytes: resident_memory(),
            counters,
        }
    }

    /// Answers one message from `conn`.
    async fn handle_message(self: &Arc<Self>, conn: &Arc<Conn>, message: Message) {
        match message {
            Message::Particle { seq, particle } => {
                let refused = self.handle_particle(particle).await.err();
                let _ = conn.post(&Message::Ack { seq, refused }).await;
            }
            Message::Forward { seq, to, particle } => {
                if !self.intake_open.load(Ordering::Relaxed) {
                    let refused = Some("the node is shutting down".to_owned());
                    let _ = conn.post(&Message::Ack { seq, refused }).await;
                    return;
                }
                let (inner, conn) = (Arc::clone(self), Arc::clone(conn));
                tokio::spawn(async move {
                    let refused = if to == inner.key.peer_id() {
                        inner.handle_particle(particle).await.err()
                    } else {
                        inner.count(|s| s.forwarded += 1);
                        inner
                            .deliver(&to, particle, false)
                            .await
                            .err()
                            .map(|e| e.to_string())
                    };
                    let _ = conn.post(&Message::Ack { seq, refused }).await;
                });
            }
            Message::StatusRequest { seq } => {
                let status = self.status();
                let _ = conn.post(&Message::Status { seq, status }).await;
            }
            Message::Undeliverable(notice) => self.handle_undeliverable(conn, notice),
            Message::Ack { seq, .. } | Message::Status { seq, .. } => conn.answer(seq, message),
        }
    }

    /// Sends an undeliverable notice to its init peer: on the open connection, else
    /// dialled by its route, else through the relay (`allow_relay`). One attempt.
    async fn notify(
        self: &Arc<Self>,
        notice: Undeliverable,
        allow_relay: bool,
    ) -> Result<(), SendError> {
        let (conn, _) = self
            .connection(&notice.init_peer_id, allow_relay)
            .await
            .map_err(|(Failure::Retry(e) | Failure::Final(e))| e)?;
        conn.post(&Message::Undeliverable(notice))
            .await
            .map_err(|e| SendError::Transport(format!("to {}: {e}", conn.peer)))?;
        self.count(|s| s.notices_sent += 1);
        Ok(())
    }

    /// A notice that a particle could not be delivered: for this node's `execute`, or
    /// to pass on (once, as a relay) when it comes from the peer that gave up.
    fn handle_undeliverable(self: &Arc<Self>, conn: &Conn, notice: Undeliverable) {
        if notice.init_peer_id == self.key.peer_id() {
            let accepted = self
                .node()
                .is_some_and(|node| node.handle_undeliverable(&notice, &conn.peer));
            self.count(|s| match accepted {
                true => s.notices_accepted += 1,
                false => s.notices_ignored += 1,
            });
        } else if notice.from == conn.peer && self.intake_open.load(Ordering::Relaxed) {
            let inner = Arc::clone(self);
            tokio::spawn(async move {
                let (init_peer_id, particle_id) =
                    (notice.init_peer_id.clone(), notice.particle_id.clone());
                if let Err(e) = inner.notify(notice, false).await {
                    tracing::warn!(
                        peer = %inner.key.peer_id(),
                        init_peer_id = %init_peer_id,
                        particle_id = %particle_id,
                        "cannot pass on an undeliverable notice: {e}"
                    );
                }
            });
        } else {
            tracing::info!(
                peer = %self.key.peer_id(),
                remote = %conn.peer,
                from = %notice.from,
                "ignored an undeliverable notice relayed by a peer that did not give up itself"
            );
            self.count(|s| s.notices_ignored += 1);
        }
    }

    async fn handle_particle(&self, particle: Vec<u8>) -> Result<(), String> {
        if !self.intake_open.load(Ordering::Relaxed) {
            return Err("the node is shutting down".to_owned());
        }
        let Some(node) = self.node() else {
            return Err("the node has stopped".to_owned());
        };
        node.inbox()
            .deliver(particle)
            .await
            .map_err(|r| r.to_string())?;
        self.count(|s| s.particles_received += 1);
        Ok(())
    }
}

async fn write_loop(
    inner: Arc<Inner>,
    conn: Arc<Conn>,
    mut outbound: mpsc::Receiver<Vec<u8>>,
    mut writer: FrameWriter<OwnedWriteHalf>,
    noise: Arc<StatelessTransportState>,
) {
    while let Some(message) = outbound.recv().await {
        if let Err(e) = writer.write(&noise, &message).await {
            inner.close(&conn, &e);
            return;
        }
    }
}

async fn read_loop(
    inner: Arc<Inner>,
    conn: Arc<Conn>,
    mut reader: FrameReader<OwnedReadHalf>,
    noise: Arc<StatelessTransportState>,
    writer: tokio::task::JoinHandle<()>,
) {
    let limits = ReadLimits {
        max_message: inner.config.max_message_bytes,
        idle: inner.config.idle_timeout,
        frame: inner.config.frame_timeout,
    };
    let mut shutdown = conn.shutdown.subscribe();
    let reason = loop {
        let read = tokio::select! {
            _ = shutdown.changed() => break NetError::Closed,
            read = reader.read(&noise, limits) => read,
        };
        let message = match read.and_then(|bytes| Message::decode(&bytes)) {
            Ok(message) => message,
            Err(e) => break e,
        };
        inner.handle_message(&conn, message).await;
    };
    inner.close(&conn, &reason);
    writer.abort();
}

async fn accept_loop(inner: Arc<Inner>, listener: TcpListener) {
    let mut stop = inner.stop.subscribe();
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let (mut stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: wait a little rather than spin.
                tracing::warn!(peer = %inner.key.peer_id(), "cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        inner.count(|s| s.accepted += 1);
        let remote = remote.to_string();
        if inner.open.load(Ordering::Relaxed) >= inner.config.max_connections {
            inner.closed_before_start(&remote, &NetError::TooManyConnections("open"));
            continue;
        }
        let Ok(permit) = Arc::clone(&inner.handshaking).try_acquire_owned() else {
            inner.closed_before_start(&remote, &NetError::TooManyConnections("in handshake"));
            continue;
        };
        let inner = Arc::clone(&inner);
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let established = tokio::time::timeout(
                inner.config.handshake_timeout,
                respond(&mut stream, &inner.key, inner.advertise.clone()),
            )
            .await
            .unwrap_or(Err(NetError::Timeout("handshake")));
            drop(permit);
            match established {
                Ok(est) => {
                    inner.start_connection(stream, est);
                }
                Err(e) => inner.closed_before_start(&remote, &e),
            }
        });
    }
}

/// Keeps a connection to the relay open, so that it can forward to this node: dials
/// when there is none, and asks for its status often enough not to be idle.
async fn keep_relay(inner: Arc<Inner>, relay: String) {
    let mut stop = inner.stop.subscribe();
    let mut backoff = inner.config.backoff_initial;
    loop {
        let pause = match inner.connection(&relay, false).await {
            Ok((conn, _)) => {
                backoff = inner.config.backoff_initial;
                let _ = conn
                    .request(
                        |seq| Message::StatusRequest { seq },
                        inner.config.ack_timeout,
                    )
                    .await;
                inner.config.idle_timeout / 3
            }
            Err(Failure::Retry(e) | Failure::Final(e)) => {
                tracing::warn!(peer = %inner.key.peer_id(), relay = %relay, "no connection to the relay: {e}");
                backoff = (backoff * 2).min(inner.config.backoff_max.max(Duration::from_secs(1)));
                backoff
            }
        };
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// When a particle expires, as a tokio instant (now if it cannot be read).
fn deadline_of(particle: &[u8]) -> Instant {
    #[derive(Deserialize)]
    struct Times {
        timestamp: u64,
        ttl: u32,
    }
    // The particle's MessagePack map (`braid_wire::Particle::encode`); the other keys
    // are skipped, not copied.
    let deadline = rmp_serde::from_slice::<Times>(particle)
        .ok()
        .and_then(|t| t.timestamp.checked_add(u64::from(t.ttl)));
    let ahead = deadline.map_or(0, |d| d.saturating_sub(now_ms()));
    Instant::now() + Duration::from_millis(ahead.min(24 * 3600 * 1000))
}

/// The process's resident memory, from `/proc/self/statm` (Linux).
fn resident_memory() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Invariant: no code panics while holding these locks (map operations only).
    m.lock().expect("transport locks are never poisoned")
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().expect("transport locks are never poisoned")
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().expect("transport locks are never poisoned")
}
