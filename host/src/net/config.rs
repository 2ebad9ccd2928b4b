//! Settings of the transport ([`NetConfig`]); `braid node` reads them from a file,
//! the environment and flags (the cli crate).

use std::collections::BTreeMap;
use std::time::Duration;

use braid_wire::IntakeLimits;

/// How to reach a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Dial this address (`host:port`).
    Direct(String),
    /// Through this relay peer (which forwards for a peer without a public address).
    Via(String),
}

impl Route {
    /// Reads `host:port`, or `via:<relay peer id>`.
    pub fn parse(text: &str) -> Self {
        match text.strip_prefix("via:") {
            Some(relay) => Route::Via(relay.to_owned()),
            None => Route::Direct(text.to_owned()),
        }
    }
}

/// The transport's settings. [`NetConfig::standard`] gives the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// Where to accept connections (`host:port`; port 0: any free port). `None`: this
    /// node only dials (a client, or a node behind a relay).
    pub listen: Option<String>,
    /// The address told to peers in the handshake; default: the bound address.
    pub advertise: Option<String>,
    /// Known peers and how to reach them. Handshakes add what they learn.
    pub peers: BTreeMap<String, Route>,
    /// The peer that forwards for this node's unknown destinations, and keeps a
    /// connection open so that it can forward to this node.
    pub relay: Option<String>,
    /// Largest message, bytes (a particle and its envelope).
    pub max_message_bytes: usize,
    /// Time for a whole handshake.
    pub handshake_timeout: Duration,
    /// Time for each piece of a started frame to arrive.
    pub frame_timeout: Duration,
    /// A connection with nothing arriving for this long is closed.
    pub idle_timeout: Duration,
    /// Time for a peer to answer a request.
    pub ack_timeout: Duration,
    /// Time to open a TCP connection.
    pub connect_timeout: Duration,
    /// Accepted connections still in their handshake; more are closed at once.
    pub max_handshaking: usize,
    /// Open connections; more are closed at once.
    pub max_connections: usize,
    /// Messages waiting to be written on one connection.
    pub send_queue: usize,
    /// First wait before retrying a send; doubles up to `backoff_max`.
    pub backoff_initial: Duration,
    /// Longest wait between retries.
    pub backoff_max: Duration,
}

impl NetConfig {
    /// Defaults: no listening address, messages up to the particle limit plus 1 KiB,
    /// 5 s handshakes and connects, 10 s per frame piece and per answer, 120 s idle
    /// connections, 64 connections in handshake, 1024 open, retries from 50 ms to 2 s.
    pub fn standard() -> Self {
        NetConfig {
            listen: None,
            advertise: None,
            peers: BTreeMap::new(),
            relay: None,
            max_message_bytes: IntakeLimits::REFERENCE.wire + 1024,
            handshake_timeout: Duration::from_secs(5),
            frame_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            ack_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            max_handshaking: 64,
            max_connections: 1024,
            send_queue: 1024,
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
        }
    }
}
