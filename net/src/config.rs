//! What a network is started with: its key, addresses, bootstrap peers, protocol names,
//! timeouts and limits.

use std::time::Duration;

use braid_wire::DEFAULT_MAX_FRAME_BYTES;
use libp2p::Multiaddr;

/// Settings of one node's network.
#[derive(Clone)]
pub struct NetConfig {
    /// The node's Ed25519 secret key (32 bytes); its libp2p peer id follows from it
    /// ([`crate::peer_id_of_secret`]).
    pub secret: [u8; 32],
    /// Addresses to listen on, e.g. `/ip4/0.0.0.0/tcp/977` and `/ip4/0.0.0.0/tcp/999/ws`
    /// (Nox's defaults); port 0 picks a free port, which [`crate::NetworkHandle::listen_addrs`]
    /// then reports.
    pub listen: Vec<Multiaddr>,
    /// Addresses under which others reach this node, announced through identify.
    pub external: Vec<Multiaddr>,
    /// Peers to join the network through, each ending in `/p2p/<peer id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// The Kademlia protocol name: `/fluence/kad/<network>/1.0.0`.
    pub kad_protocol: String,
    /// How long a connection without streams stays open. The JS client never
    /// reconnects, so this must outlast the particles sent to clients (Nox: 180 s;
    /// rust-libp2p's default of 10 s is too short).
    pub idle_timeout: Duration,
    /// Largest particle frame read, counted after the length prefix.
    pub max_frame_bytes: usize,
    /// How long an inbound stream may take to deliver its frame (a stalled stream is
    /// dropped after it), and an outbound one to take it.
    pub stream_timeout: Duration,
    /// How long a new connection may take to finish Noise and yamux.
    pub handshake_timeout: Duration,
    /// How long a Kademlia query may run.
    pub lookup_timeout: Duration,
    /// How often bootstrap peers this node is not connected to are dialed again (a
    /// bootstrap peer that restarts, or that started after this node, is found again).
    pub bootstrap_redial: Duration,
    /// Inbound particle and notice streams read at once on one connection.
    pub max_inbound_streams: usize,
    /// Streams open at once on one connection (yamux's limit, every protocol).
    pub max_streams_per_connection: usize,
    /// Bytes all unfinished inbound frames may hold at once, beyond 64 KiB each: a
    /// frame that would take more is refused (`read_budget`), and what a stream held is
    /// given back when it ends.
    pub max_buffered_bytes: usize,
    /// Connection limits.
    pub limits: ConnectionLimits,
    /// Events buffered for the node. When the buffer is full the network waits for the
    /// node to take one, and reads nothing meanwhile (back-pressure, never loss).
    pub event_buffer: usize,
    /// Carry particles to braid peers on one long-lived stream per connection and
    /// direction (`/braid/particle-stream/1.0.0`, offered first, the field's protocol
    /// the fallback). Off, this node speaks only the field's one frame per stream, as
    /// Nox and the JS client do (for tests of the fallback).
    pub particle_streams: bool,
}

/// Connection limits; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Established connections in all.
    pub max_established: Option<u32>,
    /// Established connections to one peer.
    pub max_established_per_peer: Option<u32>,
    /// Inbound connections still in their handshake.
    pub max_pending_incoming: Option<u32>,
    /// Outbound connections still in their handshake.
    pub max_pending_outgoing: Option<u32>,
    /// Inbound connections from one IP address, in their handshake or established:
    /// one host cannot take every handshake slot or connection however many keys it
    /// makes.
    pub max_per_ip: Option<u32>,
}

impl ConnectionLimits {
    /// The defaults: 1,024 connections, 4 per peer, 32 inbound per IP address, 128
    /// handshakes each way.
    pub const DEFAULT: ConnectionLimits = ConnectionLimits {
        max_established: Some(1024),
        max_established_per_peer: Some(4),
        max_pending_incoming: Some(128),
        max_pending_outgoing: Some(128),
        max_per_ip: Some(32),
    };
}

impl NetConfig {
    /// The protocol version identify announces, which Nox requires.
    pub const PROTOCOL_VERSION: &'static str = "/fluence/particle/2.0.0";

    /// A node of network `network` (the Kademlia protocol is
    /// `/fluence/kad/<network>/1.0.0`) with key `secret`, listening nowhere and
    /// bootstrapping from no one, with the field's timeouts and limits.
    pub fn new(secret: [u8; 32], network: &str) -> Self {
        NetConfig {
            secret,
            listen: Vec::new(),
            external: Vec::new(),
            bootstrap: Vec::new(),
            kad_protocol: format!("/fluence/kad/{network}/1.0.0"),
            idle_timeout: Duration::from_secs(180),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            stream_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            lookup_timeout: Duration::from_secs(10),
            bootstrap_redial: Duration::from_secs(15),
            // The JS client opens a stream per particle, so an app that starts 100
            // calls at once opens 100 streams at once (it allows itself 1,024);
            // rust-libp2p negotiates at most 128 inbound streams at once per connection.
            max_inbound_streams: 128,
            // Above the particle streams read at once, room for notices, identify,
            // ping and Kademlia in both directions.
            max_streams_per_connection: 256,
            max_buffered_bytes: 256 << 20,
            limits: ConnectionLimits::DEFAULT,
            event_buffer: 1024,
            particle_streams: true,
        }
    }
}

impl std::fmt::Debug for NetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret key.
        f.debug_struct("NetConfig")
            .field("peer_id", &crate::peer_id_of_secret(&self.secret))
            .field("listen", &self.listen)
            .field("external", &self.external)
            .field("bootstrap", &self.bootstrap)
            .field("kad_protocol", &self.kad_protocol)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("stream_timeout", &self.stream_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("lookup_timeout", &self.lookup_timeout)
            .field("bootstrap_redial", &self.bootstrap_redial)
            .field("max_inbound_streams", &self.max_inbound_streams)
            .field(
                "max_streams_per_connection",
                &self.max_streams_per_connection,
            )
            .field("max_buffered_bytes", &self.max_buffered_bytes)
            .field("limits", &self.limits)
            .field("event_buffer", &self.event_buffer)
            .field("particle_streams", &self.particle_streams)
            .finish_non_exhaustive()
    }
}
