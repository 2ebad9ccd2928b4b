//! The settings of `braid node`: a TOML file, overridden by environment variables,
//! overridden by flags. The host library takes the typed [`NetConfig`] they give.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use braid_host::net::{NetConfig, Route};
use serde::Deserialize;

/// Settings that cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SettingsError {
    #[error("the settings file is not valid: {0}")]
    File(#[source] toml::de::Error),
    #[error("{0}")]
    Env(String),
    #[error("{0}")]
    Peer(String),
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
/// relay = "braid-…"                # BRAID_RELAY
/// backend = "native"               # BRAID_BACKEND: `native` or `wasm` (sandboxed)
/// max_message_bytes = 1048576      # BRAID_MAX_MESSAGE_BYTES
/// idle_timeout_ms = 120000         # BRAID_IDLE_TIMEOUT_MS
/// max_connections = 1024           # BRAID_MAX_CONNECTIONS
/// [peers]                          # BRAID_PEERS="id=addr,id=via:relay"
/// "braid-…" = "10.0.0.2:7001"
/// "braid-…" = "via:braid-…"
/// [[wasm_services]]                # file only: a service as a Wasm module
/// id = "greeter"
/// module = "greeter.wasm"
/// [wasm_services.policy]           # the runner policy; every key optional
/// enabled = true
/// memory_bytes = 67108864
/// fuel = 1000000000
/// timeout_ms = 10000
/// allowed_init_peers = ["braid-…"] # absent: every init peer
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeSettings {
    /// Where to accept connections.
    pub(crate) listen: Option<String>,
    /// The address told to peers.
    pub(crate) advertise: Option<String>,
    /// The node key's file.
    pub(crate) key_file: Option<PathBuf>,
    /// Where particle data is kept.
    pub(crate) data_dir: Option<PathBuf>,
    /// The relay peer id.
    pub(crate) relay: Option<String>,
    /// The interpreter backend (wired by the node command).
    pub(crate) backend: Option<String>,
    /// Largest message, bytes.
    pub(crate) max_message_bytes: Option<usize>,
    /// Idle connection timeout, ms.
    pub(crate) idle_timeout_ms: Option<u64>,
    /// Most open connections.
    pub(crate) max_connections: Option<usize>,
    /// Peer id → `host:port` or `via:<relay peer id>`.
    #[serde(default)]
    pub(crate) peers: BTreeMap<String, String>,
    /// Wasm services to load, each with its runner policy (`[[wasm_services]]`; the
    /// file only).
    #[serde(default)]
    pub(crate) wasm_services: Vec<braid_host::WasmServiceConfig>,
}

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
    pub(crate) fn over(self, lower: NodeSettings) -> NodeSettings {
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
    pub(crate) fn net_config(&self) -> NetConfig {
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
pub(crate) fn parse_peer(entry: &str) -> Result<(String, String), SettingsError> {
    match entry.split_once('=') {
        Some((id, addr)) if !id.is_empty() && !addr.is_empty() => {
            Ok((id.trim().to_owned(), addr.trim().to_owned()))
        }
        _ => Err(SettingsError::Peer(format!(
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
        assert!(NodeSettings::from_toml("colour = \"red\"").is_err());
        assert!(
            NodeSettings::from_env(|n| (n == "BRAID_MAX_CONNECTIONS").then(|| "x".into())).is_err()
        );
        assert!(
            NodeSettings::from_env(|n| (n == "BRAID_PEERS").then(|| "nothing".into())).is_err()
        );
    }
}
