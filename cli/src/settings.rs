//! The settings of `braid node`: a TOML file, overridden by environment variables,
//! overridden by flags. The host library takes the typed [`NetConfig`] (braid-net's) they
//! give.

use std::path::PathBuf;
use std::time::Duration;

use braid_host::p2p::{Multiaddr, NetConfig, PeerId};
use serde::Deserialize;

/// Settings that cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SettingsError {
    #[error("the settings file is not valid: {0}")]
    File(#[source] toml::de::Error),
    #[error("{0}")]
    Env(String),
    #[error("{0}")]
    Addr(String),
}

/// The settings of `braid node`. Each source leaves unset what it does not say;
/// [`NodeSettings::over`] layers them: flags over environment over file.
///
/// File (TOML), every key optional:
///
/// ```toml
/// listen = ["/ip4/0.0.0.0/tcp/7001", "/ip4/0.0.0.0/tcp/7002/ws"] # BRAID_LISTEN (comma-separated)
/// external = ["/dns4/node1.example/tcp/7001"] # BRAID_EXTERNAL: announced through identify
/// bootstrap = ["/ip4/10.0.0.2/tcp/7001/p2p/12D3KooW…"] # BRAID_BOOTSTRAP
/// network = "braid"                # BRAID_NETWORK: Kademlia protocol /fluence/kad/<network>/1.0.0
/// key_file = "node.key"            # BRAID_KEY_FILE: 64 hex digits; made if missing
/// data_dir = "data"                # BRAID_DATA_DIR: particle data survives restarts
/// relay = "12D3KooW…"              # BRAID_RELAY: what getDataSrv.-relay- answers
/// owner = "12D3KooW…"              # BRAID_OWNER: may call the guarded built-ins; the only peer `braid status` answers
/// backend = "native"               # BRAID_BACKEND: `native` or `wasm` (sandboxed)
/// max_frame_bytes = 104857600      # BRAID_MAX_FRAME_BYTES: largest particle frame read
/// idle_timeout_ms = 180000         # BRAID_IDLE_TIMEOUT_MS
/// max_connections = 1024           # BRAID_MAX_CONNECTIONS
/// max_connections_per_peer = 4     # BRAID_MAX_CONNECTIONS_PER_PEER
/// max_connections_per_ip = 32      # BRAID_MAX_CONNECTIONS_PER_IP: inbound, handshakes included
/// max_ttl_ms = 600000              # BRAID_MAX_TTL_MS: particles with a longer ttl are refused
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
pub(crate) struct NodeSettings {
    /// Multiaddrs to listen on.
    pub(crate) listen: Option<Vec<String>>,
    /// Multiaddrs announced to peers.
    pub(crate) external: Option<Vec<String>>,
    /// Multiaddrs (each with `/p2p/<peer id>`) of the peers to join through.
    pub(crate) bootstrap: Option<Vec<String>>,
    /// The Kademlia network name.
    pub(crate) network: Option<String>,
    /// The node key's file.
    pub(crate) key_file: Option<PathBuf>,
    /// Where particle data is kept.
    pub(crate) data_dir: Option<PathBuf>,
    /// The relay peer id.
    pub(crate) relay: Option<String>,
    /// The peer whose status requests alone are answered.
    pub(crate) owner: Option<String>,
    /// The interpreter backend (wired by the node command).
    pub(crate) backend: Option<String>,
    /// Largest particle frame, bytes.
    pub(crate) max_frame_bytes: Option<usize>,
    /// Idle connection timeout, ms.
    pub(crate) idle_timeout_ms: Option<u64>,
    /// Most open connections.
    pub(crate) max_connections: Option<u32>,
    /// Most open connections to one peer.
    pub(crate) max_connections_per_peer: Option<u32>,
    /// Most inbound connections from one IP address.
    pub(crate) max_connections_per_ip: Option<u32>,
    /// The longest ttl of a particle let in, ms.
    pub(crate) max_ttl_ms: Option<u64>,
    /// Wasm services to load, each with its runner policy (`[[wasm_services]]`; the
    /// file only).
    #[serde(default)]
    pub(crate) wasm_services: Vec<braid_host::WasmServiceConfig>,
}

/// The listen addresses when none is set: TCP on 7001 and WebSocket on 7002.
pub(crate) const DEFAULT_LISTEN: [&str; 2] = ["/ip4/0.0.0.0/tcp/7001", "/ip4/0.0.0.0/tcp/7002/ws"];

/// The Kademlia network name when none is set.
pub(crate) const DEFAULT_NETWORK: &str = "braid";

impl NodeSettings {
    /// Reads a TOML file's text.
    pub(crate) fn from_toml(text: &str) -> Result<Self, SettingsError> {
        toml::from_str(text).map_err(SettingsError::File)
    }

    /// Reads `BRAID_*` variables through `var` (`std::env::var` in the command).
    pub(crate) fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let number = |name: &str| -> Result<Option<u64>, SettingsError> {
            var(name)
                .map(|v| {
                    v.trim()
                        .parse()
                        .map_err(|_| SettingsError::Env(format!("{name}={v} is not a number")))
                })
                .transpose()
        };
        let small = |name: &str| -> Result<Option<u32>, SettingsError> {
            number(name)?
                .map(|n| {
                    u32::try_from(n)
                        .map_err(|_| SettingsError::Env(format!("{name}={n} is too large")))
                })
                .transpose()
        };
        let list = |name: &str| {
            var(name).map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
        };
        Ok(NodeSettings {
            listen: list("BRAID_LISTEN"),
            external: list("BRAID_EXTERNAL"),
            bootstrap: list("BRAID_BOOTSTRAP"),
            network: var("BRAID_NETWORK"),
            key_file: var("BRAID_KEY_FILE").map(PathBuf::from),
            data_dir: var("BRAID_DATA_DIR").map(PathBuf::from),
            relay: var("BRAID_RELAY"),
            owner: var("BRAID_OWNER"),
            backend: var("BRAID_BACKEND"),
            max_frame_bytes: number("BRAID_MAX_FRAME_BYTES")?.map(|n| n as usize),
            idle_timeout_ms: number("BRAID_IDLE_TIMEOUT_MS")?,
            max_connections: small("BRAID_MAX_CONNECTIONS")?,
            max_connections_per_peer: small("BRAID_MAX_CONNECTIONS_PER_PEER")?,
            max_connections_per_ip: small("BRAID_MAX_CONNECTIONS_PER_IP")?,
            max_ttl_ms: number("BRAID_MAX_TTL_MS")?,
            wasm_services: Vec::new(),
        })
    }

    /// `self` over `lower`: each setting of `self` wins (a list as a whole).
    pub(crate) fn over(self, lower: NodeSettings) -> NodeSettings {
        NodeSettings {
            listen: self.listen.or(lower.listen),
            external: self.external.or(lower.external),
            bootstrap: self.bootstrap.or(lower.bootstrap),
            network: self.network.or(lower.network),
            key_file: self.key_file.or(lower.key_file),
            data_dir: self.data_dir.or(lower.data_dir),
            relay: self.relay.or(lower.relay),
            owner: self.owner.or(lower.owner),
            backend: self.backend.or(lower.backend),
            max_frame_bytes: self.max_frame_bytes.or(lower.max_frame_bytes),
            idle_timeout_ms: self.idle_timeout_ms.or(lower.idle_timeout_ms),
            max_connections: self.max_connections.or(lower.max_connections),
            max_connections_per_peer: self
                .max_connections_per_peer
                .or(lower.max_connections_per_peer),
            max_connections_per_ip: self.max_connections_per_ip.or(lower.max_connections_per_ip),
            max_ttl_ms: self.max_ttl_ms.or(lower.max_ttl_ms),
            wasm_services: if self.wasm_services.is_empty() {
                lower.wasm_services
            } else {
                self.wasm_services
            },
        }
    }

    /// The network settings these give for the key `secret`, over
    /// [`NetConfig::new`]'s defaults.
    pub(crate) fn net_config(&self, secret: [u8; 32]) -> Result<NetConfig, SettingsError> {
        let mut config = NetConfig::new(secret, self.network.as_deref().unwrap_or(DEFAULT_NETWORK));
        let addrs = |what: &str, list: &[String]| -> Result<Vec<Multiaddr>, SettingsError> {
            list.iter()
                .map(|a| {
                    a.parse().map_err(|e| {
                        SettingsError::Addr(format!("{what} `{a}` is not a multiaddr: {e}"))
                    })
                })
                .collect()
        };
        config.listen = match &self.listen {
            Some(list) => addrs("listen", list)?,
            None => addrs("listen", &DEFAULT_LISTEN.map(str::to_owned))?,
        };
        config.external = addrs("external", self.external.as_deref().unwrap_or_default())?;
        config.bootstrap = addrs("bootstrap", self.bootstrap.as_deref().unwrap_or_default())?;
        if let Some(n) = self.max_frame_bytes {
            config.max_frame_bytes = n;
        }
        if let Some(ms) = self.idle_timeout_ms {
            config.idle_timeout = Duration::from_millis(ms);
        }
        if let Some(n) = self.max_connections {
            config.limits.max_established = Some(n);
        }
        if let Some(n) = self.max_connections_per_peer {
            config.limits.max_established_per_peer = Some(n);
        }
        if let Some(n) = self.max_connections_per_ip {
            config.limits.max_per_ip = Some(n);
        }
        Ok(config)
    }

    /// The owner's peer id, if one is set.
    pub(crate) fn owner(&self) -> Result<Option<PeerId>, SettingsError> {
        self.owner
            .as_deref()
            .map(|o| {
                o.parse()
                    .map_err(|e| SettingsError::Addr(format!("owner `{o}` is not a peer id: {e}")))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_environment_over_file() {
        let file = NodeSettings::from_toml(
            "listen = [\"/ip4/0.0.0.0/tcp/1\"]\nrelay = \"r\"\nidle_timeout_ms = 5\nbootstrap = [\"/ip4/10.0.0.1/tcp/2\"]\nmax_connections = 9\n",
        )
        .unwrap();
        let env = NodeSettings::from_env(|name| match name {
            "BRAID_LISTEN" => Some("/ip4/0.0.0.0/tcp/2, /ip4/0.0.0.0/tcp/3/ws".into()),
            "BRAID_NETWORK" => Some("testnet".into()),
            _ => None,
        })
        .unwrap();
        let flags = NodeSettings {
            listen: Some(vec!["/ip4/127.0.0.1/tcp/0".into()]),
            ..NodeSettings::default()
        };
        let settings = flags.over(env.over(file));
        assert_eq!(settings.relay.as_deref(), Some("r"));
        let config = settings.net_config([1; 32]).unwrap();
        assert_eq!(
            config.listen,
            vec!["/ip4/127.0.0.1/tcp/0".parse::<Multiaddr>().unwrap()]
        );
        assert_eq!(
            config.bootstrap,
            vec!["/ip4/10.0.0.1/tcp/2".parse::<Multiaddr>().unwrap()]
        );
        assert_eq!(config.kad_protocol, "/fluence/kad/testnet/1.0.0");
        assert_eq!(config.idle_timeout, Duration::from_millis(5));
        assert_eq!(config.limits.max_established, Some(9));
    }

    #[test]
    fn defaults_listen_on_tcp_and_websocket() {
        let config = NodeSettings::default().net_config([1; 32]).unwrap();
        let listen: Vec<String> = config.listen.iter().map(ToString::to_string).collect();
        assert_eq!(listen, DEFAULT_LISTEN);
        assert_eq!(config.kad_protocol, "/fluence/kad/braid/1.0.0");
        assert_eq!(config.idle_timeout, Duration::from_secs(180));
    }

    #[test]
    fn the_example_wasm_service_config_parses() {
        let settings = NodeSettings::from_toml(include_str!(
            "../../fixtures/examples/wasm-service-node.toml"
        ))
        .expect("the example config parses");
        assert_eq!(settings.backend.as_deref(), Some("wasm"));
        let [config] = settings.wasm_services.as_slice() else {
            panic!("one service: {:?}", settings.wasm_services);
        };
        assert_eq!(
            (config.id.as_str(), config.policy.fuel),
            ("greeter", 100_000_000)
        );
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(NodeSettings::from_toml("listen = 3").is_err());
        assert!(NodeSettings::from_toml("listen = \"/ip4/0.0.0.0/tcp/1\"").is_err());
        let bad = NodeSettings::from_toml("bootstrap = [\"10.0.0.1:7001\"]").unwrap();
        assert!(bad.net_config([1; 32]).is_err());
        let owner = NodeSettings::from_toml("owner = \"braid-x\"").unwrap();
        assert!(owner.owner().is_err());
        assert!(NodeSettings::from_toml("colour = \"red\"").is_err());
        assert!(
            NodeSettings::from_env(|n| (n == "BRAID_MAX_CONNECTIONS").then(|| "x".into())).is_err()
        );
    }
}
