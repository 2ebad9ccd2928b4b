//! The node's libp2p transport: drives a `braid-net` network for one node.
//!
//! [`P2pNetwork`] implements [`Network`]: a particle goes to a peer id through
//! braid-net (dialing, or looking the peer up through Kademlia, and retrying until the
//! particle's deadline, less a margin for the undeliverable notice to reach the init
//! peer in time); one for this node's own id goes back into its inbox. Once the
//! node is built, [`P2pNetwork::serve`] starts the task that hands what arrives to the
//! node through its [`Inbox`]: particles (which the inbox checks: sizes, signature,
//! expiry), undeliverable notices ([`Inbox::handle_undeliverable`]) and status
//! requests (answered with a [`Status`] notice). The transport holds only the inbox,
//! never the node, so nothing circles: dropping the node drops the network.
//!
//! Status requests (`{kind: "status_request"}` on `/braid/notice/1.0.0`) are answered
//! to the node's owner only when one is set ([`P2pNetwork::serve`]'s `owner`), to
//! everyone otherwise. A request is not a particle: it is counted as a notice, and the
//! asker's connection is left out of the answer's `connected_peers`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use braid_net::{NetEvent, NetworkHandle};
use braid_wire::{Notice, Refused, Undeliverable};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::HostError;
use crate::network::{Network, SendError};
use crate::network_info::{Contact, NetworkInfo};
use crate::node::Inbox;
use crate::services::BoxFuture;

pub use braid_net::{ConnectionLimits, Multiaddr, NetConfig, NetStats, PeerId, peer_id_of_secret};
pub use braid_wire::Status;

/// How long a notice (undeliverable, status) may take to reach its peer.
const NOTICE_DEADLINE: Duration = Duration::from_secs(10);

/// The most time a send gives up before its particle's deadline ([`give_up_at`]).
const NOTICE_MARGIN: Duration = Duration::from_secs(1);

/// Refusal notices under way at once ([`Server::tell_refused`]).
const MAX_REFUSAL_NOTICES: usize = 64;

/// How long a refusal notice may take.
const REFUSAL_NOTICE_DEADLINE: Duration = Duration::from_secs(2);

/// Most peers listed in a status answer (a notice is at most 64 KiB); the count of all
/// is in its counters.
const MAX_LISTED_PEERS: usize = 256;

/// A node's libp2p network.
pub struct P2pNetwork {
    handle: NetworkHandle,
    local: String,
    events: Mutex<Option<mpsc::Receiver<NetEvent>>>,
    inbox: OnceLock<Inbox>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
    counters: Arc<Counters>,
    view: Arc<Mutex<View>>,
}

/// What the built-ins ask of the network without waiting ([`NetworkInfo`]'s quick
/// questions): kept up to date by the serving task from braid-net's events.
#[derive(Debug, Default)]
struct View {
    listen: Vec<String>,
    external: Vec<String>,
    connected: BTreeSet<String>,
}

impl View {
    /// Asks braid-net for the node's addresses again.
    async fn refresh(view: &Mutex<View>, handle: &NetworkHandle) {
        let local = handle.local_peer_id();
        let with_id = |addrs: Vec<Multiaddr>| -> Vec<String> {
            addrs
                .into_iter()
                .map(|a| a.with_p2p(local).unwrap_or_else(|a| a).to_string())
                .collect()
        };
        let listen = with_id(handle.listen_addrs().await.unwrap_or_default());
        let external = with_id(handle.external_addrs().await.unwrap_or_default());
        let mut view = lock(view);
        view.listen = listen;
        view.external = external;
    }
}

/// What the serving task counts beyond braid-net's own counters.
#[derive(Debug, Default)]
struct Counters {
    /// Inbound streams braid-net refused.
    net_rejected: AtomicU64,
    /// Status requests from peers other than the owner, not answered.
    status_refused: AtomicU64,
    /// Status requests answered.
    status_answered: AtomicU64,
    /// Particle sends under way (attempts and the waits between them).
    sends_in_flight: AtomicU64,
    /// Refusal notices sent to the peers particles came from.
    refusals_told: AtomicU64,
    /// Refusals not told because [`MAX_REFUSAL_NOTICES`] were under way.
    refusals_untold: AtomicU64,
}

impl P2pNetwork {
    /// Starts the network (listening on `config.listen`, dialing the bootstrap peers)
    /// on the current tokio runtime. Nothing is taken in until [`Self::serve`].
    pub async fn start(config: NetConfig) -> Result<Arc<Self>, HostError> {
        let (handle, events) = braid_net::Network::start(config).await?;
        Ok(Arc::new(P2pNetwork {
            local: handle.local_peer_id().to_string(),
            handle,
            events: Mutex::new(Some(events)),
            inbox: OnceLock::new(),
            task: Mutex::new(None),
            counters: Arc::default(),
            view: Arc::default(),
        }))
    }

    /// Hands what arrives to the node behind `inbox` (a second call does nothing).
    /// With `owner`, status requests of other peers are refused (not answered).
    pub fn serve(&self, inbox: Inbox, owner: Option<PeerId>) {
        let Some(events) = lock(&self.events).take() else {
            return;
        };
        let _ = self.inbox.set(inbox.clone());
        let server = Server {
            inbox,
            handle: self.handle.clone(),
            owner,
            counters: Arc::clone(&self.counters),
            view: Arc::clone(&self.view),
            refusals: Arc::new(tokio::sync::Semaphore::new(MAX_REFUSAL_NOTICES)),
        };
        let task = tokio::spawn(server.run(events));
        *lock(&self.task) = Some(task.abort_handle());
    }

    /// braid-net's handle: addresses, connections, lookups, counters.
    pub fn handle(&self) -> &NetworkHandle {
        &self.handle
    }

    /// Dials `addr` (ending in `/p2p/<peer id>` to insist on that peer); resolves with
    /// the peer's id once connected.
    pub async fn connect(&self, addr: Multiaddr) -> Result<PeerId, HostError> {
        Ok(self.handle.connect(addr).await?)
    }

    /// The addresses this node listens on, each ending in `/p2p/<its peer id>`.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, HostError> {
        let local: PeerId = self.handle.local_peer_id();
        Ok(self
            .handle
            .listen_addrs()
            .await?
            .into_iter()
            .map(|a| a.with_p2p(local).unwrap_or_else(|a| a))
            .collect())
    }

    /// braid-net's counters, with the serving task's.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        net_counters(&self.handle.stats(), &self.counters)
    }
}

impl Drop for P2pNetwork {
    fn drop(&mut self) {
        // The task holds a handle of the network: stop it, so the network stops too.
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

impl Network for P2pNetwork {
    fn info(&self) -> &dyn NetworkInfo {
        self
    }

    fn send(
        &self,
        to: &str,
        particle: Vec<u8>,
        deadline_ms: u64,
    ) -> BoxFuture<Result<(), SendError>> {
        if to == self.local {
            let inbox = self.inbox.get().cloned();
            return Box::pin(async move {
                let inbox = inbox.ok_or_else(|| {
                    SendError::Transport("the node does not take particles yet".into())
                })?;
                inbox.deliver(particle).await.map_err(SendError::Refused)
            });
        }
        let handle = self.handle.clone();
        let counters = Arc::clone(&self.counters);
        let to = to.to_owned();
        Box::pin(async move {
            let peer: PeerId = to.parse().map_err(|_| SendError::Unreachable(to.clone()))?;
            let _in_flight = InFlight::start(&counters);
            handle
                .send_encoded(peer, &particle, give_up_at(deadline_ms))
                .await
                .map_err(|e| SendError::Transport(e.to_string()))
        })
    }

    fn notify_undeliverable(&self, notice: Undeliverable) -> BoxFuture<Result<(), SendError>> {
        let handle = self.handle.clone();
        Box::pin(async move {
            let peer: PeerId = notice
                .init_peer_id
                .parse()
                .map_err(|_| SendError::Unreachable(notice.init_peer_id.clone()))?;
            handle
                .send_notice(
                    peer,
                    &Notice::Undeliverable(notice),
                    Instant::now() + NOTICE_DEADLINE,
                )
                .await
                .map_err(|e| SendError::Transport(e.to_string()))
        })
    }
}

/// The transport's answers for the built-ins `peer` and `kad`: addresses and
/// connections as of the last events, dials and Kademlia lookups through braid-net.
impl NetworkInfo for P2pNetwork {
    fn listen_addresses(&self) -> Vec<String> {
        lock(&self.view).listen.clone()
    }

    fn external_addresses(&self) -> Vec<String> {
        lock(&self.view).external.clone()
    }

    fn is_connected(&self, peer_id: &str) -> bool {
        lock(&self.view).connected.contains(peer_id)
    }

    fn connect(&self, peer_id: &str, addresses: Vec<String>) -> BoxFuture<bool> {
        let handle = self.handle.clone();
        let peer_id = peer_id.to_owned();
        Box::pin(async move {
            let Ok(peer) = peer_id.parse::<PeerId>() else {
                return false;
            };
            for address in addresses {
                if let Ok(address) = address.parse::<Multiaddr>() {
                    let address = address.with_p2p(peer).unwrap_or_else(|a| a);
                    if handle.connect(address).await.is_ok() {
                        return true;
                    }
                }
            }
            handle.is_connected(peer).await.unwrap_or(false)
        })
    }

    fn contact(&self, peer_id: &str) -> BoxFuture<Option<Contact>> {
        let contact = self.is_connected(peer_id).then(|| Contact {
            peer_id: peer_id.to_owned(),
            addresses: Vec::new(),
        });
        Box::pin(async move { contact })
    }

    fn neighborhood(&self, key: Vec<u8>, count: usize) -> BoxFuture<Vec<String>> {
        let handle = self.handle.clone();
        Box::pin(async move {
            handle
                .neighborhood_of_key(key, count)
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|p| p.to_string())
                .collect()
        })
    }
}

/// One send under way in [`Counters::sends_in_flight`], until dropped.
struct InFlight<'a>(&'a Counters);

impl<'a> InFlight<'a> {
    fn start(counters: &'a Counters) -> Self {
        counters.sends_in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(counters)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.sends_in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The task that takes braid-net's events to the node.
struct Server {
    inbox: Inbox,
    handle: NetworkHandle,
    owner: Option<PeerId>,
    counters: Arc<Counters>,
    view: Arc<Mutex<View>>,
    /// Refusal notices under way.
    refusals: Arc<tokio::sync::Semaphore>,
}

impl Server {
    async fn run(self, mut events: mpsc::Receiver<NetEvent>) {
        View::refresh(&self.view, &self.handle).await;
        while let Some(event) = events.recv().await {
            match event {
                NetEvent::Particle { from, ip, particle } => {
                    // Refusals are logged and counted by the inbox, and told to the
                    // sender on the notice protocol (which peers that do not speak it
                    // refuse: that costs one failed stream).
                    let (init_peer_id, particle_id, signature) = (
                        particle.init_peer_id.clone(),
                        if crate::intake::check_id(&particle.id).is_ok() {
                            particle.id.clone()
                        } else {
                            crate::intake::escape_id(&particle.id)
                        },
                        particle.signature.clone(),
                    );
                    // The sender's share, and its address's: connections per
                    // address are bounded, peer ids are not.
                    let sender = from.to_string();
                    let address = ip.map(|ip| ip.to_string());
                    let delivered = self
                        .inbox
                        .deliver_from(particle, Some(&sender), address.as_deref())
                        .await;
                    match delivered {
                        Ok(()) => {}
                        Err(braid_wire::Rejection::Stopped) => return, // the node has stopped
                        Err(reason) => self.tell_refused(
                            from,
                            Refused {
                                init_peer_id,
                                particle_id,
                                signature,
                                rejection: reason.kind().to_owned(),
                                reason: reason.to_string(),
                            },
                        ),
                    }
                }
                NetEvent::Notice { from, notice } => self.handle_notice(from, notice),
                NetEvent::Rejected { from, kind, reason } => {
                    self.counters.net_rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(peer = %self.inbox.peer_id(), %from, kind, "refused a stream: {reason}");
                }
                NetEvent::ConnectionEstablished {
                    peer,
                    addr,
                    inbound,
                } => {
                    tracing::debug!(%peer, %addr, inbound, "connection established");
                    if lock(&self.view).connected.insert(peer.to_string()) {
                        self.inbox.handle_connection(&peer.to_string(), true);
                    }
                    View::refresh(&self.view, &self.handle).await;
                }
                NetEvent::ConnectionClosed { peer, remaining } => {
                    tracing::debug!(%peer, remaining, "connection closed");
                    if remaining == 0 && lock(&self.view).connected.remove(&peer.to_string()) {
                        self.inbox.handle_connection(&peer.to_string(), false);
                    }
                }
                _ => {}
            }
        }
    }

    /// Sends a [`Refused`] notice to the peer a particle came from, unless
    /// [`MAX_REFUSAL_NOTICES`] are under way already (a flood of refused particles gets
    /// some answered, and costs the node no more).
    fn tell_refused(&self, to: PeerId, refused: Refused) {
        let Ok(permit) = Arc::clone(&self.refusals).try_acquire_owned() else {
            self.counters
                .refusals_untold
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.counters.refusals_told.fetch_add(1, Ordering::Relaxed);
        let handle = self.handle.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let deadline = Instant::now() + REFUSAL_NOTICE_DEADLINE;
            if let Err(e) = handle
                .send_notice(to, &Notice::Refused(refused), deadline)
                .await
            {
                tracing::debug!(%to, "cannot tell a sender its particle was refused: {e}");
            }
        });
    }

    fn handle_notice(&self, from: PeerId, notice: Notice) {
        match notice {
            Notice::Refused(refused) => {
                self.inbox.handle_refused(&refused, &from.to_string());
            }
            Notice::Undeliverable(notice) => {
                self.inbox.handle_undeliverable(&notice, &from.to_string());
            }
            Notice::StatusRequest => {
                if self.owner.is_some_and(|owner| owner != from) {
                    self.counters.status_refused.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(peer = %self.inbox.peer_id(), %from, "refused a status request: not the owner");
                    return;
                }
                self.counters
                    .status_answered
                    .fetch_add(1, Ordering::Relaxed);
                let (inbox, handle, counters) = (
                    self.inbox.clone(),
                    self.handle.clone(),
                    Arc::clone(&self.counters),
                );
                tokio::spawn(async move {
                    let status = status(&inbox, &handle, &counters, from).await;
                    let deadline = Instant::now() + NOTICE_DEADLINE;
                    if let Err(e) = handle
                        .send_notice(from, &Notice::Status(status), deadline)
                        .await
                    {
                        tracing::warn!(%from, "cannot answer a status request: {e}");
                    }
                });
            }
            other => {
                tracing::info!(peer = %self.inbox.peer_id(), %from, "ignored a notice: {other:?}");
            }
        }
    }
}

/// The node's status, as `asker` is told it (its own connection left out).
async fn status(
    inbox: &Inbox,
    handle: &NetworkHandle,
    counters: &Counters,
    asker: PeerId,
) -> Status {
    let node = inbox.stats();
    let mut peers: Vec<String> = handle
        .connected_peers()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|p| *p != asker)
        .map(|p| p.to_string())
        .collect();
    peers.sort();
    let mut all = net_counters(&handle.stats(), counters);
    all.insert("connected_peers".into(), peers.len() as u64);
    peers.truncate(MAX_LISTED_PEERS);
    for (name, value) in [
        ("accepted", node.accepted),
        ("invokes", node.invokes),
        ("failed_invokes", node.failed_invokes),
        ("calls", node.calls),
        ("call_timeouts", node.call_timeouts),
        ("sent", node.sent),
        ("send_failures", node.send_failures),
        ("expired", node.expired),
        ("cancelled_calls", node.cancelled_calls),
        ("store_failures", node.store_failures),
        ("live_particles", node.live_particles),
    ] {
        all.insert(name.to_owned(), value);
    }
    for (kind, n) in &node.rejected {
        all.insert(format!("rejected_{kind}"), *n);
    }
    Status {
        peer_id: inbox.peer_id().to_owned(),
        particles_in_flight: node.working_particles,
        connected_peers: peers,
        services: crate::builtins::BUILTIN_SERVICES
            .iter()
            .map(|(s, _)| (*s).to_owned())
            .collect(),
        intake_pressure: node.intake_pressure,
        sends_in_flight: counters.sends_in_flight.load(Ordering::Relaxed),
        memory_bytes: resident_memory(),
        counters: all,
    }
}

fn net_counters(stats: &NetStats, counters: &Counters) -> BTreeMap<String, u64> {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    BTreeMap::from([
        (
            "net_connections_established".to_owned(),
            stats.connections_established,
        ),
        (
            "net_connections_closed".to_owned(),
            stats.connections_closed,
        ),
        (
            "net_particles_received".to_owned(),
            stats.particles_received,
        ),
        ("net_notices_received".to_owned(), stats.notices_received),
        ("net_rejected".to_owned(), stats.rejected),
        ("net_sent".to_owned(), stats.sent),
        ("net_retries".to_owned(), stats.retries),
        ("net_undeliverable".to_owned(), stats.undeliverable),
        ("net_lookups".to_owned(), stats.lookups),
        ("status_answered".to_owned(), get(&counters.status_answered)),
        ("status_refused".to_owned(), get(&counters.status_refused)),
        ("refusals_told".to_owned(), get(&counters.refusals_told)),
        ("refusals_untold".to_owned(), get(&counters.refusals_untold)),
    ])
}

/// Asks the node at `addr` for its status, as the peer of `secret` (the node answers
/// only its owner when it has one). A peer of its own: it does not listen, and stops
/// when this returns.
pub async fn request_status(
    secret: [u8; 32],
    addr: Multiaddr,
    timeout: Duration,
) -> Result<Status, HostError> {
    let (handle, mut events) = braid_net::Network::start(NetConfig::new(secret, "braid")).await?;
    let deadline = Instant::now() + timeout;
    let node = tokio::time::timeout_at(deadline, handle.connect(addr.clone()))
        .await
        .map_err(|_| HostError::Config(format!("no connection to {addr} within {timeout:?}")))??;
    handle
        .send_notice(node, &Notice::StatusRequest, deadline)
        .await?;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(NetEvent::Notice {
                from,
                notice: Notice::Status(status),
            })) if from == node => {
                return Ok(status);
            }
            Ok(Some(_)) => {}
            Ok(None) => return Err(HostError::Stopped),
            Err(_) => {
                return Err(HostError::Config(format!(
                    "{node} sent no status within {timeout:?} (does it answer only its owner?)"
                )));
            }
        }
    }
}

/// When to stop retrying a particle whose deadline is `deadline_ms` (Unix ms): a
/// quarter of its remaining time, at most [`NOTICE_MARGIN`], before it, so that the
/// undeliverable notice can still reach its init peer while that one waits (at most a
/// day ahead).
fn give_up_at(deadline_ms: u64) -> Instant {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let left = deadline_ms.saturating_sub(now).min(24 * 3600 * 1000);
    let margin = (left / 4).min(NOTICE_MARGIN.as_millis() as u64);
    Instant::now() + Duration::from_millis(left - margin)
}

/// The process's resident memory, from `/proc/self/statm` (Linux).
fn resident_memory() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Invariant: no code panics while holding these locks (an `Option` take or set).
    m.lock().expect("p2p locks are never poisoned")
}
