//! When spells run: the trigger configs of Nox's spells (`clock {start_sec, end_sec,
//! period_sec}`, `connections {connect, disconnect}`) as a pure, deterministic state
//! machine. The clock is an input: [`Scheduler::next_due`] says when to look again and
//! [`Scheduler::fire`] which spells are due at a given time; connection events come in
//! through [`Scheduler::connection`]. The node's timer and network drive it
//! (`spells.rs`); tests drive it with numbers.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A spell's trigger config, in the spell library's shape (`TriggerConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TriggerConfig {
    #[serde(default)]
    pub(crate) clock: ClockConfig,
    #[serde(default)]
    pub(crate) connections: ConnectionsConfig,
    #[serde(default)]
    pub(crate) blockchain: BlockchainConfig,
}

/// `start_sec` 0: no timer; `end_sec` 0: forever; `period_sec` 0: once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ClockConfig {
    #[serde(default)]
    pub(crate) start_sec: u32,
    #[serde(default)]
    pub(crate) end_sec: u32,
    #[serde(default)]
    pub(crate) period_sec: u32,
}

/// Runs when a peer connects to the node, or disconnects from it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ConnectionsConfig {
    #[serde(default)]
    pub(crate) connect: bool,
    #[serde(default)]
    pub(crate) disconnect: bool,
}

/// Blocks of a chain: braid has no chain listener, so only zeros are accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BlockchainConfig {
    #[serde(default)]
    pub(crate) start_block: u32,
    #[serde(default)]
    pub(crate) end_block: u32,
}

/// The longest period Nox accepts: 100 years.
pub(crate) const MAX_PERIOD_SEC: u32 = 100 * 365 * 24 * 3600;

/// A trigger config this node cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("the trigger config's period_sec is {0}; at most {MAX_PERIOD_SEC} (100 years)")]
    PeriodTooLong(u32),
    #[error("the trigger config's end_sec {end} is before its start_sec {start}")]
    EndBeforeStart { start: u32, end: u32 },
    #[error(
        "blockchain triggers are not supported by this node (start_block and end_block must be 0)"
    )]
    Blockchain,
}

impl TriggerConfig {
    /// Whether this node can run it.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let clock = self.clock;
        if clock.period_sec > MAX_PERIOD_SEC {
            return Err(ConfigError::PeriodTooLong(clock.period_sec));
        }
        if clock.end_sec != 0 && clock.end_sec < clock.start_sec {
            return Err(ConfigError::EndBeforeStart {
                start: clock.start_sec,
                end: clock.end_sec,
            });
        }
        if self.blockchain != BlockchainConfig::default() {
            return Err(ConfigError::Blockchain);
        }
        Ok(())
    }
}

/// What started a run, as a spell reads it from its store (`trigger`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TriggerEvent {
    /// The clock, at this time (ms).
    Timer { at_ms: u64 },
    /// A peer connected (`true`) or disconnected.
    Connection { peer_id: String, connected: bool },
}

impl TriggerEvent {
    /// The spell library's `TriggerEvent` JSON: `{timer: ?{timestamp}, peer: ?{peer_id,
    /// connected}}`, options as arrays (timestamp in seconds).
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            TriggerEvent::Timer { at_ms } => serde_json::json!({
                "timer": [{"timestamp": at_ms / 1000}],
                "peer": [],
            }),
            TriggerEvent::Connection { peer_id, connected } => serde_json::json!({
                "timer": [],
                "peer": [{"peer_id": peer_id, "connected": connected}],
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Timer {
    next_ms: u64,
    /// 0: once.
    period_ms: u64,
    /// 0: forever.
    end_ms: u64,
}

/// The subscriptions of every spell of a node.
#[derive(Debug, Default)]
pub(crate) struct Scheduler {
    timers: BTreeMap<String, Timer>,
    on_connect: BTreeSet<String>,
    on_disconnect: BTreeSet<String>,
}

impl Scheduler {
    /// Subscribes spell `id` with `config` at `now_ms`, replacing what it had.
    /// `has_run`: the spell ran before (a node restarting): a one-shot timer does not
    /// run again. A start in the past is now; a timer past its end is left out.
    pub(crate) fn subscribe(
        &mut self,
        id: &str,
        config: &TriggerConfig,
        now_ms: u64,
        has_run: bool,
    ) -> Result<(), ConfigError> {
        config.check()?;
        self.unsubscribe(id);
        let clock = config.clock;
        if clock.start_sec != 0 && !(has_run && clock.period_sec == 0) {
            let timer = Timer {
                next_ms: (u64::from(clock.start_sec) * 1000).max(now_ms),
                period_ms: u64::from(clock.period_sec) * 1000,
                end_ms: u64::from(clock.end_sec) * 1000,
            };
            if timer.end_ms == 0 || timer.next_ms <= timer.end_ms {
                self.timers.insert(id.to_owned(), timer);
            }
        }
        if config.connections.connect {
            self.on_connect.insert(id.to_owned());
        }
        if config.connections.disconnect {
            self.on_disconnect.insert(id.to_owned());
        }
        Ok(())
    }

    /// Forgets spell `id`.
    pub(crate) fn unsubscribe(&mut self, id: &str) {
        self.timers.remove(id);
        self.on_connect.remove(id);
        self.on_disconnect.remove(id);
    }

    /// When the next timer is due (ms), if any.
    pub(crate) fn next_due(&self) -> Option<u64> {
        self.timers.values().map(|t| t.next_ms).min()
    }

    /// The spells whose timers are due at `now_ms`, in id order; each runs once however
    /// many of its periods passed, and is scheduled for its next period after `now_ms`
    /// (or forgotten: once, or past its end).
    pub(crate) fn fire(&mut self, now_ms: u64) -> Vec<String> {
        let due: Vec<String> = self
            .timers
            .iter()
            .filter(|(_, t)| t.next_ms <= now_ms)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &due {
            let Some(timer) = self.timers.get_mut(id) else {
                continue;
            };
            if timer.period_ms == 0 {
                self.timers.remove(id);
                continue;
            }
            let missed = (now_ms - timer.next_ms) / timer.period_ms;
            timer.next_ms += (missed + 1) * timer.period_ms;
            if timer.end_ms != 0 && timer.next_ms > timer.end_ms {
                self.timers.remove(id);
            }
        }
        due
    }

    /// The spells to run because a peer connected (`true`) or disconnected.
    pub(crate) fn connection(&self, connected: bool) -> Vec<String> {
        let set = if connected {
            &self.on_connect
        } else {
            &self.on_disconnect
        };
        set.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spell library's `TriggerEvent` (fluencelabs/spell, `src/aqua/spell/trigger.aqua`:
    /// `TimerTrigger {timestamp: u64}`, `PeerTrigger {peer_id, connected}`, each an
    /// option), as its `integration-tests/test_aqua.py` reads it: `len(trigger["timer"])
    /// == 1` and `trigger["peer"]` empty for a timer, the other way round for a
    /// connection.
    #[test]
    fn trigger_events_have_the_spell_librarys_shape() {
        assert_eq!(
            TriggerEvent::Timer {
                at_ms: 1_700_000_000_999
            }
            .to_json(),
            serde_json::json!({"timer": [{"timestamp": 1_700_000_000u64}], "peer": []})
        );
        assert_eq!(
            TriggerEvent::Connection {
                peer_id: "12D3KooW".into(),
                connected: false
            }
            .to_json(),
            serde_json::json!({"timer": [], "peer": [{"peer_id": "12D3KooW", "connected": false}]})
        );
    }

    fn clock(start_sec: u32, end_sec: u32, period_sec: u32) -> TriggerConfig {
        TriggerConfig {
            clock: ClockConfig {
                start_sec,
                end_sec,
                period_sec,
            },
            ..TriggerConfig::default()
        }
    }

    #[test]
    fn a_periodic_timer_fires_once_per_period_from_its_start() {
        let mut s = Scheduler::default();
        s.subscribe("a", &clock(100, 0, 2), 50_000, false).unwrap();
        assert_eq!(s.next_due(), Some(100_000));
        assert!(s.fire(99_999).is_empty());
        assert_eq!(s.fire(100_000), vec!["a"]);
        assert_eq!(s.next_due(), Some(102_000));
        assert!(s.fire(101_000).is_empty());
        // Late by three periods: one run, the next on the grid after now.
        assert_eq!(s.fire(108_500), vec!["a"]);
        assert_eq!(s.next_due(), Some(110_000));
    }

    #[test]
    fn a_start_in_the_past_is_now_and_the_end_stops_it() {
        let mut s = Scheduler::default();
        s.subscribe("a", &clock(1, 20, 5), 10_000, false).unwrap();
        assert_eq!(s.next_due(), Some(10_000));
        assert_eq!(s.fire(10_000), vec!["a"]);
        assert_eq!(s.fire(15_000), vec!["a"]);
        assert_eq!(s.fire(20_000), vec!["a"]);
        assert_eq!(s.next_due(), None);
        // Subscribed after its end: nothing.
        s.subscribe("b", &clock(1, 20, 5), 30_000, false).unwrap();
        assert_eq!(s.next_due(), None);
    }

    #[test]
    fn a_one_shot_fires_once_and_not_again_after_a_restart() {
        let mut s = Scheduler::default();
        s.subscribe("a", &clock(5, 0, 0), 0, false).unwrap();
        assert_eq!(s.fire(5_000), vec!["a"]);
        assert_eq!(s.next_due(), None);
        s.subscribe("a", &clock(5, 0, 0), 9_000, true).unwrap();
        assert_eq!(s.next_due(), None);
        // A spell that never ran fires at once after a restart.
        s.subscribe("b", &clock(5, 0, 0), 9_000, false).unwrap();
        assert_eq!(s.fire(9_000), vec!["b"]);
    }

    #[test]
    fn no_start_no_timer_and_connections_are_separate() {
        let mut s = Scheduler::default();
        let mut config = clock(0, 0, 10);
        config.connections.connect = true;
        s.subscribe("a", &config, 0, false).unwrap();
        assert_eq!(s.next_due(), None);
        assert_eq!(s.connection(true), vec!["a"]);
        assert!(s.connection(false).is_empty());
        s.unsubscribe("a");
        assert!(s.connection(true).is_empty());
    }

    #[test]
    fn bad_configs_are_refused() {
        let mut s = Scheduler::default();
        assert_eq!(
            s.subscribe("a", &clock(10, 5, 1), 0, false),
            Err(ConfigError::EndBeforeStart { start: 10, end: 5 })
        );
        assert_eq!(
            s.subscribe("a", &clock(1, 0, MAX_PERIOD_SEC + 1), 0, false),
            Err(ConfigError::PeriodTooLong(MAX_PERIOD_SEC + 1))
        );
        let mut chain = clock(1, 0, 1);
        chain.blockchain.start_block = 3;
        assert_eq!(
            s.subscribe("a", &chain, 0, false),
            Err(ConfigError::Blockchain)
        );
        assert_eq!(s.next_due(), None);
    }

    #[test]
    fn several_spells_fire_in_id_order() {
        let mut s = Scheduler::default();
        s.subscribe("b", &clock(1, 0, 1), 0, false).unwrap();
        s.subscribe("a", &clock(1, 0, 3), 0, false).unwrap();
        assert_eq!(s.fire(1_000), vec!["a", "b"]);
        assert_eq!(s.fire(2_000), vec!["b"]);
        assert_eq!(s.fire(4_000), vec!["a", "b"]);
    }
}
