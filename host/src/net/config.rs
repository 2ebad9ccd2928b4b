//! Settings of the transport ([`NetConfig`]) and of `braid node` ([`NodeSettings`]:
//! a TOML file, overridden by environment variables, overridden by flags).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::NetError;
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

/// The settings of `braid node`. Each source leaves unset what it does not say;
/// [`NodeSettings::over`] layers them: flags over environment over file.
///
/// File (TOML), every key optional:
///
/// ```toml
/// listen = "0.0.0.0:7001"          # BRAID_LISTEN
/// advertise = "node1.example:7001" # BRAID_ADVERTISE
/// key_file = "node.key"            # BRAID_KEY_FILE: 64 hex digits; made if missing
/// data_dir = "data"                # BRAID_DATA_DIR: particle data survives restarts
/// relay = "12D3KooW…"             # BRAID_RELAY
/// backend = "native"               # BRAID_BACKEND: `native` or `wasm` (sandboxed)
/// max_message_bytes = 1048576      # BRAID_MAX_MESSAGE_BYTES
/// idle_timeout_ms = 120000         # BRAID_IDLE_TIMEOUT_MS
/// max_connections = 1024           # BRAID_MAX_CONNECTIONS
/// [peers]                          # BRAID_PEERS="id=addr,id=via:relay"
/// "12D3KooW…" = "10.0.0.2:7001"
/// "12D3KooW…" = "via:12D3KooW…"
/// [[wasm_services]]                # file only: a service as a Wasm module
/// id = "greeter"
/// module = "greeter.wasm"
/// [wasm_services.policy]           # the runner policy; every key optional
/// enabled = true
/// memory_bytes = 67108864
/// fuel = 1000000000
/// timeout_ms = 10000
/// allowed_init_peers = ["12D3KooW…"] # absent: every init peer
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    /// Where to accept connections.
    pub listen: Option<String>,
    /// The address told to peers.
    pub advertise: Option<String>,
    /// The node key's file.
    pub key_file: Option<PathBuf>,
    /// Where particle data is kept.
    pub data_dir: Option<PathBuf>,
    /// The relay peer id.
    pub relay: Option<String>,
    /// The interpreter backend (wired by the node command).
    pub backend: Option<String>,
    /// Largest message, bytes.
    pub max_message_bytes: Option<usize>,
    /// Idle connection timeout, ms.
    pub idle_timeout_ms: Option<u64>,
    /// Most open connections.
    pub max_connections: Option<usize>,
    /// Peer id → `host:port` or `via:<relay peer id>`.
    #[serde(default)]
    pub peers: BTreeMap<String, String>,
    /// Wasm services to load, each with its runner policy (`[[wasm_services]]`; the
    /// file only).
    #[serde(default)]
    pub wasm_services: Vec<crate::WasmServiceConfig>,
}

impl NodeSettings {
    /// Reads a TOML file's text.
    pub fn from_toml(text: &str) -> Result<Self, NetError> {
        toml::from_str(text).map_err(|e| NetError::Config(e.to_string()))
    }

    /// Reads `BRAID_*` variables through `var` (`std::env::var` in the command).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, NetError> {
        let number = |name: &str| -> Result<Option<u64>, NetError> {
            var(name)
                .map(|v| {
                    v.trim()
                        .parse()
                        .map_err(|_| NetError::Config(format!("{name}={v} is not a number")))
                })
                .transpose()
        };
        let mut peers = BTreeMap::new();
        if let Some(list) = var("BRAID_PEERS") {
            for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                let (id, addr) = parse_peer(entry)?;
                peers.insert(id, addr);
            }
        }
        Ok(NodeSettings {
            listen: var("BRAID_LISTEN"),
            advertise: var("BRAID_ADVERTISE"),
            key_file: var("BRAID_KEY_FILE").map(PathBuf::from),
            data_dir: var("BRAID_DATA_DIR").map(PathBuf::from),
            relay: var("BRAID_RELAY"),
            backend: var("BRAID_BACKEND"),
            max_message_bytes: number("BRAID_MAX_MESSAGE_BYTES")?.map(|n| n as usize),
            idle_timeout_ms: number("BRAID_IDLE_TIMEOUT_MS")?,
            max_connections: number("BRAID_MAX_CONNECTIONS")?.map(|n| n as usize),
            peers,
            wasm_services: Vec::new(),
        })
    }

    /// `self` over `lower`: each setting of `self` wins; peer lists merge, `self`'s
    /// entries winning.
    pub fn over(self, lower: NodeSettings) -> NodeSettings {
        let mut peers = lower.peers;
        peers.extend(self.peers);
        NodeSettings {
            listen: self.listen.or(lower.listen),
            advertise: self.advertise.or(lower.advertise),
            key_file: self.key_file.or(lower.key_file),
            data_dir: self.data_dir.or(lower.data_dir),
            relay: self.relay.or(lower.relay),
            backend: self.backend.or(lower.backend),
            max_message_bytes: self.max_message_bytes.or(lower.max_message_bytes),
            idle_timeout_ms: self.idle_timeout_ms.or(lower.idle_timeout_ms),
            max_connections: self.max_connections.or(lower.max_connections),
            peers,
            wasm_services: if self.wasm_services.is_empty() {
                lower.wasm_services
            } else {
                self.wasm_services
            },
        }
    }

    /// The transport settings these give, over [`NetConfig::standard`].
    pub fn net_config(&self) -> NetConfig {
        let mut config = NetConfig::standard();
        config.listen = self.listen.clone();
        config.advertise = self.advertise.clone();
        config.relay = self.relay.clone();
        config.peers = self
            .peers
            .iter()
            .map(|(id, addr)| (id.clone(), Route::parse(addr)))
            .collect();
        if let Some(n) = self.max_message_bytes {
            config.max_message_bytes = n;
        }
        if let Some(ms) = self.idle_timeout_ms {
            config.idle_timeout = Duration::from_millis(ms);
        }
        if let Some(n) = self.max_connections {
            config.max_connections = n;
        }
        config
    }
}

/// Reads `ID=ADDR` (a `--peer` flag or a `BRAID_PEERS` entry).
pub fn parse_peer(entry: &str) -> Result<(String, String), NetError> {
    match entry.split_once('=') {
        Some((id, addr)) if !id.is_empty() && !addr.is_empty() => {
            Ok((id.trim().to_owned(), addr.trim().to_owned()))
        }
        _ => Err(NetError::Config(format!(
            "peer `{entry}`: expected PEER_ID=HOST:PORT or PEER_ID=via:RELAY_ID"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_environment_over_file() {
        let file = NodeSettings::from_toml(
            "listen = \"0.0.0.0:1\"\nrelay = \"braid-r\"\nidle_timeout_ms = 5\n[peers]\n\"braid-a\" = \"h:1\"\n\"braid-b\" = \"h:2\"\n",
        )
        .unwrap();
        let env = NodeSettings::from_env(|name| match name {
            "BRAID_LISTEN" => Some("0.0.0.0:2".into()),
            "BRAID_PEERS" => Some("braid-b=h:3, braid-c=via:braid-r".into()),
            _ => None,
        })
        .unwrap();
        let flags = NodeSettings {
            listen: Some("0.0.0.0:3".into()),
            ..NodeSettings::default()
        };
        let settings = flags.over(env.over(file));
        assert_eq!(settings.listen.as_deref(), Some("0.0.0.0:3"));
        assert_eq!(settings.relay.as_deref(), Some("braid-r"));
        let config = settings.net_config();
        assert_eq!(config.idle_timeout, Duration::from_millis(5));
        assert_eq!(config.peers["braid-a"], Route::Direct("h:1".into()));
        assert_eq!(config.peers["braid-b"], Route::Direct("h:3".into()));
        assert_eq!(config.peers["braid-c"], Route::Via("braid-r".into()));
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(NodeSettings::from_toml("listen = 3").is_err());
        assert!(NodeSettings::from_toml("colour = \"red\"").is_err());
        assert!(
            NodeSettings::from_env(|n| (n == "BRAID_MAX_CONNECTIONS").then(|| "x".into())).is_err()
        );
        assert!(
            NodeSettings::from_env(|n| (n == "BRAID_PEERS").then(|| "nothing".into())).is_err()
        );
    }
}
