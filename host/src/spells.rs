//! Spells: AIR scripts installed on a node (or on one of its workers) that run on
//! their own schedule, with a key-value store that outlives every run, as Nox's spells
//! and the spell library (`fluencelabs/spell`) define them.
//!
//! - The `spell` service: `install(script, init_data, trigger_config, alias?)`,
//!   `remove`, `list`, `update_trigger_config`. On the host only the host and its owner
//!   (management peer) may install; on a worker also the worker itself and its creator.
//! - Each spell is also a service, called by its id or its alias in its scope (the
//!   host's or a worker's peer id): the spell library's `Spell` functions (strings, u32,
//!   lists, logs, mailbox, errors, script, trigger config, location). Writes follow
//!   the library's roles: the spell's own particles write any key, the host `h_`/`hw_`
//!   keys, the worker `w_`/`hw_` keys, nobody else anything.
//! - A trigger (`scheduler.rs`) starts a particle of the spell's script: id
//!   `spell_<spell id>_<counter>`, init peer the scope (host or worker), signed with
//!   its key, ttl 120 s. Inside it `getDataSrv.spell_id` is the spell's id,
//!   `getDataSrv.-relay-` the host, any other `getDataSrv.<name>` the store's value of
//!   `<name>` (JSON-decoded), `callbackSrv.response(obj)` writes the object's fields
//!   into the store and `errorHandlingSrv.error(e, i)` keeps the error.
//!
//! A deactivated worker's spells are unsubscribed, and subscribed again when it is
//! activated (`workers.rs`).
//!
//! Records, stores and counters live in the node's database (`db.rs`): a node killed at
//! any moment restarts with every spell and value that was committed, and subscribes
//! its spells again.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use crate::db::{Db, Table};
use crate::identity::{NodeKey, random_uuid};
use crate::scheduler::{Scheduler, TriggerConfig, TriggerEvent};
use crate::services::{ServiceCall, ServiceError, ServiceResult};
use crate::workers::Workers;
use braid_wire::Particle;

/// The ttl of the particles triggers start (Nox's `max_spell_particle_ttl`), ms.
pub(crate) const SPELL_PARTICLE_TTL_MS: u32 = 120_000;
/// Log lines a spell keeps (the oldest go).
const MAX_LOGS: usize = 500;
/// Mailbox messages a spell keeps (the oldest go).
const MAX_MAILBOX: usize = 50;
/// Particles whose errors a spell keeps (the oldest go).
const MAX_ERROR_PARTICLES: usize = 50;
/// The largest script a spell takes, bytes.
const MAX_SCRIPT_BYTES: usize = 1 << 20;
/// The largest value a spell's store takes, bytes.
const MAX_VALUE_BYTES: usize = 1 << 20;
/// The largest log line, mailbox message or error a spell keeps, bytes (as JSON).
const MAX_ENTRY_BYTES: usize = 16 << 10;

/// The functions of the `spell` service itself; others, inside a spell's particle, are
/// the spell's own.
const MANAGEMENT: &[&str] = &["install", "remove", "list", "update_trigger_config"];

/// The key of a spell's store holding its latest trigger event: the JSON text of the
/// spell library's `TriggerEvent` (`{timer: ?TimerTrigger, peer: ?PeerTrigger}`). The
/// library reads it with `Spell.get_string("hw_trigger")` and
/// `TriggerEventJson.parse` (its `integration-tests/aqua/lib.aqua`), and a spell's
/// particle with `getDataSrv.hw_trigger` (its `integration-tests/test_aqua.py`,
/// `store_triggers_script`). The host keeps no list of past events: a list
/// `triggers` is what such a script keeps for itself, so the host writing one too
/// would count every event twice.
const LATEST_TRIGGER: &str = "hw_trigger";
/// The key of a spell's store counting the particles its triggers started, as the
/// spell library reads it (`Spell.get_u32("hw_counter")`, its `get_counter`; after one
/// run it is 1, and it equals the number of events a script kept). Each run adds one
/// and names its particle with the new value; init data may set where it starts.
const COUNTER: &str = "hw_counter";

// Keys of the store the spell library keeps apart from the user's.
const LOGS: &str = "\u{1}logs";
const RELAY: &str = "\u{1}relay";
const MAILBOX: &str = "\u{1}mailbox";
const ERRORS: &str = "\u{1}errors";

/// A spell as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SpellRecord {
    id: String,
    /// The peer it runs as: the host or a worker.
    scope: String,
    /// The init peer of the particle that installed it.
    creator: String,
    script: String,
    config: TriggerConfig,
    alias: Option<String>,
}

/// A value of a spell's store.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Stored {
    Str(String),
    U32(u32),
    List(Vec<String>),
    /// The library's own records (logs, mailbox, errors).
    Json(Value),
}

impl Stored {
    fn decode(bytes: &[u8]) -> Result<Stored, ServiceError> {
        serde_json::from_slice(bytes)
            .map_err(|e| ServiceError::new(format!("a stored value is unreadable: {e}")))
    }
    fn encode(&self) -> Vec<u8> {
        // Invariant: these values are plain JSON (strings, numbers, JSON values).
        serde_json::to_vec(self).expect("a stored value encodes")
    }
}

/// The spells of a node and their schedule.
pub(crate) struct Spells {
    db: Arc<Db>,
    host_key: NodeKey,
    owner: Option<String>,
    workers: Arc<Workers>,
    scheduler: Mutex<Scheduler>,
    /// Wakes the driver when the schedule changed.
    wake: Notify,
    /// Every spell's id → its scope and alias, so that telling whether a call is for
    /// a spell reads no database.
    index: Mutex<std::collections::HashMap<String, (String, Option<String>)>>,
}

/// The role of a caller of a spell's store (the spell library's roles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A particle of this spell itself.
    Spell,
    Host,
    Worker,
}

impl Spells {
    /// The spells `db` holds, subscribed again at `now_ms` (a one-shot timer that ran
    /// already does not run again).
    pub(crate) fn open(
        db: Arc<Db>,
        host_key: NodeKey,
        owner: Option<String>,
        workers: Arc<Workers>,
        now_ms: u64,
    ) -> Self {
        let spells = Spells {
            db,
            host_key,
            owner,
            workers,
            scheduler: Mutex::new(Scheduler::default()),
            wake: Notify::new(),
            index: Mutex::default(),
        };
        let mut subscribed = 0usize;
        for record in spells.records() {
            spells.indexed(&record);
            // An inactive worker's spells wait for it to be activated.
            let active = record.scope == spells.host()
                || spells.workers.get(&record.scope).is_some_and(|w| w.active);
            subscribed += usize::from(spells.resubscribe(&record, active, now_ms));
        }
        if subscribed > 0 {
            tracing::info!(subscribed, "spells subscribed again");
        }
        spells
    }

    /// Subscribes a spell again at `now_ms` (`on`), or unsubscribes it; whether it is
    /// subscribed.
    fn resubscribe(&self, record: &SpellRecord, on: bool, now_ms: u64) -> bool {
        if !on {
            self.lock().unsubscribe(&record.id);
            return false;
        }
        let has_run = self.db.counter(&record.id).unwrap_or(0) > 0;
        match self
            .lock()
            .subscribe(&record.id, &record.config, now_ms, has_run)
        {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(spell = %record.id, "cannot subscribe the spell again: {e}");
                false
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Scheduler> {
        // Invariant: nothing panics while holding this lock.
        self.scheduler
            .lock()
            .expect("the scheduler lock is never poisoned")
    }

    fn lock_index(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (String, Option<String>)>>
    {
        // Invariant: nothing panics while holding this lock.
        self.index
            .lock()
            .expect("the spell index lock is never poisoned")
    }

    fn indexed(&self, record: &SpellRecord) {
        self.lock_index().insert(
            record.id.clone(),
            (record.scope.clone(), record.alias.clone()),
        );
    }

    /// The id of the spell of this id or alias in `scope`, from the index.
    fn lookup(&self, scope: &str, id_or_alias: &str) -> Option<String> {
        let index = self.lock_index();
        if index.get(id_or_alias).is_some_and(|(s, _)| s == scope) {
            return Some(id_or_alias.to_owned());
        }
        index
            .iter()
            .find(|(_, (s, alias))| s == scope && alias.as_deref() == Some(id_or_alias))
            .map(|(id, _)| id.clone())
    }

    /// [`Spells::lookup`] in the call's scope, where inside a spell's particle `spell`
    /// and `self` name that spell (as in Nox).
    fn lookup_for(&self, call: &ServiceCall, name: &str) -> Option<String> {
        if matches!(name, "spell" | "self") {
            if let Some(id) = self.particle_spell(call) {
                return Some(id);
            }
        }
        self.lookup(&call.particle.host_id, name)
    }

    /// Whether the call comes from a particle of a worker's `worker-spell` (Nox lets
    /// those call the guarded built-ins, as the host and its owner).
    pub(crate) fn is_worker_spell(&self, call: &ServiceCall) -> bool {
        let Some(id) = self.particle_spell(call) else {
            return false;
        };
        let on_worker = self.lock_index().get(&id).is_some_and(|(scope, alias)| {
            *scope == call.particle.init_peer_id && alias.as_deref() == Some("worker-spell")
        });
        on_worker && self.workers.contains(&call.particle.init_peer_id)
    }

    fn host(&self) -> &str {
        self.host_key.peer_id()
    }

    /// Every spell record (unreadable ones logged and left out).
    fn records(&self) -> Vec<SpellRecord> {
        match self.db.all(Table::Spells) {
            Ok(all) => all
                .into_iter()
                .filter_map(|(id, bytes)| match serde_json::from_slice(&bytes) {
                    Ok(record) => Some(record),
                    Err(e) => {
                        tracing::error!(spell = %id, "a spell's record is unreadable: {e}");
                        None
                    }
                })
                .collect(),
            Err(e) => {
                tracing::error!("cannot read the spells: {e}");
                Vec::new()
            }
        }
    }

    fn record(&self, id: &str) -> Result<Option<SpellRecord>, ServiceError> {
        match self.db.get(Table::Spells, id).map_err(db_error)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| ServiceError::new(format!("spell {id}'s record is unreadable: {e}"))),
            None => Ok(None),
        }
    }

    /// The spell of this id or alias in `scope`.
    fn find(&self, scope: &str, id_or_alias: &str) -> Result<Option<SpellRecord>, ServiceError> {
        match self.lookup(scope, id_or_alias) {
            Some(id) => self.record(&id),
            None => Ok(None),
        }
    }

    /// Whether a call is for the spells: the `spell` and `worker` services, a spell's
    /// own service (by id or alias in the call's scope), the conventions of a spell's
    /// particle, or `srv`'s alias functions for a spell's alias. Cheap: no database
    /// read but for aliases and spell ids.
    pub(crate) fn serves(&self, call: &ServiceCall) -> bool {
        let service = call.service_id.as_str();
        match service {
            "spell" | "worker" => true,
            "getDataSrv" | "callbackSrv" | "errorHandlingSrv" => {
                self.particle_spell(call).is_some()
            }
            "srv" => {
                matches!(
                    call.function_name.as_str(),
                    "resolve_alias" | "resolve_alias_opt" | "info" | "remove" | "get_interface"
                ) && matches!(call.args.first(), Some(Value::String(a)) if self.lookup_for(call, a).is_some())
                    || call.function_name == "add_alias"
                        && matches!(call.args.get(1), Some(Value::String(id)) if self.lookup_for(call, id).is_some())
            }
            _ if crate::builtins::functions_of(service).is_some() => false,
            _ => self.lookup_for(call, service).is_some(),
        }
    }

    /// Answers a call [`Spells::serves`] (on a blocking thread: it reads and writes the
    /// database).
    pub(crate) fn call(&self, call: &ServiceCall, now_ms: u64) -> ServiceResult {
        match call.service_id.as_str() {
            "spell" if !MANAGEMENT.contains(&call.function_name.as_str()) => {
                // Inside a spell's particle, `spell` is the spell itself (as `self`).
                let record = self
                    .particle_spell(call)
                    .and_then(|id| self.record(&id).ok().flatten())
                    .ok_or_else(|| {
                        ServiceError::new(format!(
                            "the node's service spell has no function {}",
                            call.function_name
                        ))
                    })?;
                self.store_call(&record, call, now_ms)
            }
            "spell" => self.spell_service(call, now_ms),
            "worker" if call.function_name == "remove" => {
                let answer = self.workers.call(call, now_ms)?;
                // A worker's spells go with it.
                if let Some(Value::String(worker)) = call.args.first() {
                    for record in self.records() {
                        if record.scope == *worker {
                            self.db.remove_spell(&record.id).map_err(db_error)?;
                            self.lock_index().remove(&record.id);
                            self.lock().unsubscribe(&record.id);
                        }
                    }
                    self.wake.notify_one();
                }
                Ok(answer)
            }
            "worker" if matches!(call.function_name.as_str(), "activate" | "deactivate") => {
                let answer = self.workers.call(call, now_ms)?;
                // An inactive worker's spells do not fire; activated, they are
                // subscribed again from now (a one-shot timer that ran does not).
                if let Some(Value::String(worker)) = call.args.first() {
                    let active = call.function_name == "activate";
                    for record in self.records() {
                        if record.scope == *worker {
                            self.resubscribe(&record, active, now_ms);
                        }
                    }
                    self.wake.notify_one();
                }
                Ok(answer)
            }
            "worker" => self.workers.call(call, now_ms),
            "getDataSrv" | "callbackSrv" | "errorHandlingSrv" => {
                let record = self
                    .particle_spell(call)
                    .and_then(|id| self.record(&id).ok().flatten())
                    .ok_or_else(|| ServiceError::new("the spell of this particle is gone"))?;
                self.convention(&record, call, now_ms)
            }
            "srv" => self.srv(call),
            service => {
                let found = match self.lookup_for(call, service) {
                    Some(id) => self.record(&id)?,
                    None => None,
                };
                let record = found
                    .ok_or_else(|| crate::services::not_found(service, &call.function_name))?;
                self.store_call(&record, call, now_ms)
            }
        }
    }

    /// The spell whose particle made the call: id `spell_<id>_<n>`, started by the
    /// scope the call runs in.
    fn particle_spell(&self, call: &ServiceCall) -> Option<String> {
        let particle = &call.particle;
        let (id, counter) = particle.id.strip_prefix("spell_")?.rsplit_once('_')?;
        counter.parse::<u64>().ok()?;
        (particle.init_peer_id == particle.host_id).then(|| id.to_owned())
    }

    // ---- the `spell` service ------------------------------------------------------

    fn may_manage(&self, call: &ServiceCall) -> Result<(), ServiceError> {
        let init = call.particle.init_peer_id.as_str();
        let scope = call.particle.host_id.as_str();
        if init == self.host() || self.owner.as_deref() == Some(init) {
            return Ok(());
        }
        if scope != self.host() {
            if init == scope {
                return Ok(());
            }
            if self.workers.get(scope).is_some_and(|w| w.creator == init) {
                return Ok(());
            }
        }
        Err(ServiceError::new(
            "Only the host, its management peer, the worker or its creator may manage spells here",
        ))
    }

    fn spell_service(&self, call: &ServiceCall, now_ms: u64) -> ServiceResult {
        let scope = call.particle.host_id.as_str();
        let args = &call.args;
        match call.function_name.as_str() {
            "install" => {
                self.may_manage(call)?;
                let script = string(args, 0, "script")?;
                let config = trigger_config(args.get(2))?;
                let alias = match args.get(3) {
                    None | Some(Value::Null) => None,
                    Some(Value::String(a)) => Some(a.clone()),
                    Some(Value::Array(items)) if items.is_empty() => None,
                    Some(Value::Array(items)) if items.len() == 1 => match &items[0] {
                        Value::String(a) => Some(a.clone()),
                        _ => return Err(ServiceError::new("the alias must be a string")),
                    },
                    Some(_) => {
                        return Err(ServiceError::new(
                            "the alias must be a string or an option of one",
                        ));
                    }
                };
                self.install(
                    scope,
                    &call.particle.init_peer_id,
                    script,
                    args.get(1),
                    config,
                    alias,
                    now_ms,
                )
                .map(Value::String)
            }
            "remove" => {
                self.may_manage(call)?;
                let id = string(args, 0, "spell_id")?;
                let record = self
                    .find(scope, id)?
                    .ok_or_else(|| ServiceError::new(format!("Spell {id} not found")))?;
                self.db.remove_spell(&record.id).map_err(db_error)?;
                self.lock_index().remove(&record.id);
                self.lock().unsubscribe(&record.id);
                self.wake.notify_one();
                tracing::info!(spell = %record.id, scope, "spell removed");
                Ok(Value::String(String::new()))
            }
            "list" => Ok(json!(
                self.records()
                    .into_iter()
                    .filter(|r| r.scope == scope)
                    .map(|r| r.id)
                    .collect::<Vec<_>>()
            )),
            "update_trigger_config" => {
                self.may_manage(call)?;
                let id = string(args, 0, "spell_id")?;
                let config = trigger_config(args.get(1))?;
                let record = self
                    .find(scope, id)?
                    .ok_or_else(|| ServiceError::new(format!("Spell {id} not found")))?;
                self.set_config(record, config, now_ms)?;
                Ok(Value::String(String::new()))
            }
            other => Err(ServiceError::new(format!(
                "the node's service spell has no function {other}"
            ))),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn install(
        &self,
        scope: &str,
        creator: &str,
        script: &str,
        init_data: Option<&Value>,
        config: TriggerConfig,
        alias: Option<String>,
        now_ms: u64,
    ) -> Result<String, ServiceError> {
        if script.len() > MAX_SCRIPT_BYTES {
            return Err(ServiceError::new(format!(
                "a script of {} bytes; a spell takes at most {MAX_SCRIPT_BYTES}",
                script.len()
            )));
        }
        braid_grammar::parse(script)
            .map_err(|e| ServiceError::new(format!("the spell's script is not valid AIR: {e}")))?;
        config
            .check()
            .map_err(|e| ServiceError::new(e.to_string()))?;
        if let Some(alias) = &alias {
            check_alias(alias)?;
        }
        let values = json_fields(init_data)?;
        let id = random_uuid().map_err(|e| ServiceError::new(e.to_string()))?;
        // The alias moves to the new spell, as `srv.add_alias` moves one.
        if let Some(alias) = &alias {
            self.release_alias(scope, alias, None)?;
        }
        let record = SpellRecord {
            id: id.clone(),
            scope: scope.to_owned(),
            creator: creator.to_owned(),
            script: script.to_owned(),
            config: config.clone(),
            alias,
        };
        let bytes = serde_json::to_vec(&record)
            .map_err(|e| ServiceError::new(format!("cannot encode the spell: {e}")))?;
        self.db.add_spell(&id, &bytes, &values).map_err(db_error)?;
        self.indexed(&record);
        self.lock()
            .subscribe(&id, &config, now_ms, false)
            .map_err(|e| ServiceError::new(e.to_string()))?;
        self.wake.notify_one();
        tracing::info!(spell = %id, scope, creator, "spell installed");
        Ok(id)
    }

    /// Takes `alias` from whichever spell of `scope` has it (but `keep`): an alias names
    /// one service or spell of a scope, and moves to the one it is given to last.
    pub(crate) fn release_alias(
        &self,
        scope: &str,
        alias: &str,
        keep: Option<&str>,
    ) -> Result<(), ServiceError> {
        let holders: Vec<String> = self
            .lock_index()
            .iter()
            .filter(|(id, (s, a))| {
                s == scope && a.as_deref() == Some(alias) && Some(id.as_str()) != keep
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in holders {
            if let Some(mut other) = self.record(&id)? {
                other.alias = None;
                self.save(&other)?;
                self.indexed(&other);
            }
        }
        Ok(())
    }

    fn save(&self, record: &SpellRecord) -> Result<(), ServiceError> {
        let bytes = serde_json::to_vec(record)
            .map_err(|e| ServiceError::new(format!("cannot encode the spell: {e}")))?;
        self.db
            .put(Table::Spells, &record.id, &bytes)
            .map_err(db_error)
    }

    fn set_config(
        &self,
        mut record: SpellRecord,
        config: TriggerConfig,
        now_ms: u64,
    ) -> Result<(), ServiceError> {
        config
            .check()
            .map_err(|e| ServiceError::new(e.to_string()))?;
        record.config = config.clone();
        self.save(&record)?;
        self.lock()
            .subscribe(&record.id, &config, now_ms, false)
            .map_err(|e| ServiceError::new(e.to_string()))?;
        self.wake.notify_one();
        Ok(())
    }

    fn srv(&self, call: &ServiceCall) -> ServiceResult {
        if call.function_name == "add_alias" {
            // An alias for a spell, in the call's scope (it moves from whatever had it).
            self.may_manage(call)?;
            let alias = string(&call.args, 0, "alias")?;
            let id = string(&call.args, 1, "service_id")?;
            check_alias(alias)?;
            let scope = call.particle.host_id.as_str();
            let mut record = self
                .lookup_for(call, id)
                .map(|id| self.record(&id))
                .transpose()?
                .flatten()
                .ok_or_else(|| ServiceError::new(format!("Service with id '{id}' not found")))?;
            self.release_alias(scope, alias, Some(&record.id))?;
            record.alias = Some(alias.to_owned());
            self.save(&record)?;
            self.indexed(&record);
            return Ok(Value::String(String::new()));
        }
        let alias = string(&call.args, 0, "alias")?;
        let found = match self.lookup_for(call, alias) {
            Some(id) => self.record(&id)?,
            None => None,
        };
        let record = found.ok_or_else(|| {
            ServiceError::new(format!("Service with alias '{alias}' is not found"))
        })?;
        match call.function_name.as_str() {
            "resolve_alias" => Ok(Value::String(record.id)),
            "resolve_alias_opt" => Ok(json!([record.id])),
            "info" => Ok(service_info(&record)),
            "get_interface" => Ok(json!({
                "blueprint_id": "spell",
                "service_id": record.id,
                "interface": {"function_signatures": [], "record_types": []},
            })),
            // "remove"
            _ => Err(ServiceError::new(format!(
                "cannot remove spell {} with srv.remove; use spell.remove",
                record.id
            ))),
        }
    }

    /// The spells of `scope` as `srv.list` lists them: services of type spell.
    pub(crate) fn services(&self, scope: &str) -> Result<Vec<Value>, ServiceError> {
        let mut ids: Vec<String> = self
            .lock_index()
            .iter()
            .filter(|(_, (s, _))| s == scope)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        let mut infos = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(record) = self.record(&id)? {
                infos.push(service_info(&record));
            }
        }
        Ok(infos)
    }

    /// The key of the scope a call runs in: the host's, or its worker's.
    pub(crate) fn scope_key(&self, call: &ServiceCall) -> Option<NodeKey> {
        let scope = call.particle.host_id.as_str();
        if scope == self.host() {
            Some(self.host_key.clone())
        } else {
            self.workers.get(scope).map(|w| w.key)
        }
    }

    // ---- the spell's particle conventions ---------------------------------------

    fn convention(&self, record: &SpellRecord, call: &ServiceCall, now_ms: u64) -> ServiceResult {
        match (call.service_id.as_str(), call.function_name.as_str()) {
            ("getDataSrv", "spell_id") => Ok(Value::String(record.id.clone())),
            ("getDataSrv", "-relay-") => Ok(Value::String(self.host().to_owned())),
            ("getDataSrv", name) => match self.get(&record.id, name)? {
                Some(Stored::Str(text)) => serde_json::from_str(&text).map_err(|e| {
                    ServiceError::new(format!(
                        "the spell's value of {name} is not JSON ({e}): {text}"
                    ))
                }),
                Some(Stored::U32(n)) => Ok(json!(n)),
                Some(Stored::List(items)) => Ok(json!(items)),
                Some(Stored::Json(_)) | None => Err(ServiceError::new(format!(
                    "the spell's store has no value of {name}"
                ))),
            },
            ("callbackSrv", "response") => {
                // An object's fields go into the store; any other answer has no
                // fields to keep, and is dropped.
                let values = match call.args.as_slice() {
                    [one @ Value::Object(_)] => json_fields(Some(one))?,
                    _ => {
                        tracing::debug!(particle_id = %call.particle.id, "a spell's response other than an object is not kept");
                        Vec::new()
                    }
                };
                let entries: Vec<(&str, Option<&[u8]>)> = values
                    .iter()
                    .map(|(k, v)| (k.as_str(), Some(v.as_slice())))
                    .collect();
                self.db.store_put(&record.id, &entries).map_err(db_error)?;
                Ok(Value::Object(Map::new()))
            }
            ("errorHandlingSrv", "error") => {
                let error = call.args.first().cloned().unwrap_or(Value::Null);
                let index = call.args.get(1).and_then(Value::as_u64).unwrap_or(0);
                self.store_error(&record.id, &call.particle.id, error, index, now_ms)?;
                Ok(Value::Object(Map::new()))
            }
            (service, function) => Err(crate::services::not_found(service, function)),
        }
    }

    // ---- the spell's store --------------------------------------------------------

    fn get(&self, spell: &str, key: &str) -> Result<Option<Stored>, ServiceError> {
        self.db
            .store_get(spell, key)
            .map_err(db_error)?
            .map(|bytes| Stored::decode(&bytes))
            .transpose()
    }

    /// The caller's role for the spell `record` (the spell library's `authenticate`).
    fn role(&self, record: &SpellRecord, call: &ServiceCall) -> Option<Role> {
        let init = call.particle.init_peer_id.as_str();
        if self.particle_spell(call).as_deref() == Some(record.id.as_str()) && init == record.scope
        {
            Some(Role::Spell)
        } else if init == self.host() {
            Some(Role::Host)
        } else if init == record.scope {
            Some(Role::Worker)
        } else {
            None
        }
    }

    fn may_write(&self, record: &SpellRecord, call: &ServiceCall, key: &str) -> Result<(), String> {
        match self.role(record, call) {
            Some(Role::Spell) => Ok(()),
            Some(role) => {
                let allowed = key.starts_with("hw_")
                    || (role == Role::Host && key.starts_with("h_"))
                    || (role == Role::Worker && key.starts_with("w_"));
                if allowed {
                    Ok(())
                } else {
                    Err(format!(
                        "writing to the `{key}` is forbidden for the callers with the role {role:?}"
                    ))
                }
            }
            None => Err(format!(
                "writing to the `{key}` is forbidden for any outside caller"
            )),
        }
    }

    fn store_call(&self, record: &SpellRecord, call: &ServiceCall, now_ms: u64) -> ServiceResult {
        let spell = record.id.as_str();
        let args = &call.args;
        let is_spell = self.role(record, call) == Some(Role::Spell);
        // Each function answers in the spell library's shapes: failures are
        // `success: false` with the error, not service errors.
        Ok(match call.function_name.as_str() {
            "get_string" | "list_pop_string" => {
                let key = string(args, 0, "key")?;
                let popped = if call.function_name == "list_pop_string" {
                    if let Err(e) = self.may_write(record, call, key) {
                        return Ok(string_value("", false, &e));
                    }
                    self.db
                        .store_update(spell, key, |old| {
                            let mut items = match old.map(Stored::decode).transpose()? {
                                Some(Stored::List(items)) => items,
                                None => Vec::new(),
                                Some(_) => {
                                    return Err(ServiceError::new(format!("{key} is not a list")));
                                }
                            };
                            let last = items.pop();
                            let new = (!items.is_empty()).then(|| Stored::List(items).encode());
                            Ok((new, last))
                        })
                        .map_err(db_error)?
                } else {
                    match self.get(spell, key)? {
                        Some(Stored::Str(s)) => Ok(Some(s)),
                        Some(Stored::U32(n)) => Ok(Some(n.to_string())),
                        None => Ok(None),
                        Some(_) => Err(ServiceError::new(format!("{key} is not a string"))),
                    }
                };
                match popped {
                    Ok(Some(s)) => string_value(&s, true, ""),
                    Ok(None) => {
                        json!({"str": "", "value": "", "success": true, "error": "", "absent": true})
                    }
                    Err(e) => string_value("", false, &e.to_string()),
                }
            }
            "set_string" => {
                let key = string(args, 0, "key")?;
                let value = string(args, 1, "value")?;
                self.write(record, call, key, Some(Stored::Str(value.to_owned())))?
            }
            "get_u32" => {
                let key = string(args, 0, "key")?;
                let not_u32 = || u32_value(0, false, &format!("{key} is not a u32"), false);
                match self.get(spell, key)? {
                    Some(Stored::U32(n)) => u32_value(n, true, "", false),
                    Some(Stored::Str(s)) => match s.parse::<u32>() {
                        Ok(n) => u32_value(n, true, "", false),
                        Err(_) => not_u32(),
                    },
                    None => u32_value(0, true, "", true),
                    Some(_) => not_u32(),
                }
            }
            "set_u32" => {
                let key = string(args, 0, "key")?;
                let value = args
                    .get(1)
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| ServiceError::new("set_u32 takes a key and a u32"))?;
                self.write(record, call, key, Some(Stored::U32(value)))?
            }
            "remove_key" => {
                let key = string(args, 0, "key")?;
                self.write(record, call, key, None)?
            }
            "exists" => {
                let key = string(args, 0, "key")?;
                let flag = self.get(spell, key)?.is_some();
                json!({"flag": flag, "success": true, "error": ""})
            }
            "list_push_string" => {
                let key = string(args, 0, "key")?;
                let value = string(args, 1, "value")?.to_owned();
                if let Err(e) = self.may_write(record, call, key) {
                    return Ok(unit(Err(e)));
                }
                unit(self.update_list(spell, key, |items| items.push(value)))
            }
            "list_remove_value" => {
                let key = string(args, 0, "key")?;
                let value = string(args, 1, "value")?.to_owned();
                if let Err(e) = self.may_write(record, call, key) {
                    return Ok(unit(Err(e)));
                }
                unit(self.update_list(spell, key, |items| items.retain(|v| *v != value)))
            }
            "list_get_strings" => {
                let key = string(args, 0, "key")?;
                match self.get(spell, key)? {
                    Some(Stored::List(items)) => strings_value(&items, None),
                    None => strings_value(&[], None),
                    Some(_) => strings_value(&[], Some(format!("{key} is not a list"))),
                }
            }
            "set_json_fields" => {
                let text = string(args, 0, "json")?;
                let parsed: Value = serde_json::from_str(text).map_err(|e| {
                    ServiceError::new(format!("set_json_fields takes a JSON object: {e}"))
                })?;
                let values = json_fields(Some(&parsed))?;
                for (key, _) in &values {
                    if let Err(e) = self.may_write(record, call, key) {
                        return Ok(unit(Err(e)));
                    }
                }
                let entries: Vec<(&str, Option<&[u8]>)> = values
                    .iter()
                    .map(|(k, v)| (k.as_str(), Some(v.as_slice())))
                    .collect();
                self.db.store_put(spell, &entries).map_err(db_error)?;
                unit(Ok(()))
            }
            "store_log" => {
                if !is_spell {
                    return Ok(unit(Err(
                        "store_log can be called only by the associated spell script".into(),
                    )));
                }
                let message = string(args, 0, "log")?.to_owned();
                unit(self.append(
                    spell,
                    LOGS,
                    MAX_LOGS,
                    json!({"timestamp": now_ms / 1000, "message": message}),
                ))
            }
            "get_logs" => {
                let logs = self.records_of(spell, LOGS)?;
                json!({"logs": logs, "success": true, "error": ""})
            }
            "push_mailbox" => {
                let message = string(args, 0, "message")?.to_owned();
                let entry = json!({
                    "init_peer_id": call.particle.init_peer_id,
                    "timestamp": now_ms / 1000,
                    "message": message,
                });
                unit(self.append(spell, MAILBOX, MAX_MAILBOX, entry))
            }
            "get_mailbox" => {
                let mut messages = self.records_of(spell, MAILBOX)?;
                messages.reverse(); // newest first, as the library
                json!({"messages": messages, "success": true, "error": ""})
            }
            "pop_mailbox" => {
                if !is_spell {
                    return Ok(json!({"message": [], "success": false, "absent": false,
                        "error": "pop_mailbox can be called only by the associated spell script"}));
                }
                let popped = self
                    .db
                    .store_update(spell, MAILBOX, |old| {
                        let mut items = json_list(old)?;
                        let last = items.pop();
                        Ok::<_, ServiceError>((
                            Some(Stored::Json(Value::Array(items)).encode()),
                            last,
                        ))
                    })
                    .map_err(db_error)??;
                match popped {
                    Some(m) => {
                        json!({"message": [m], "success": true, "absent": false, "error": ""})
                    }
                    None => json!({"message": [], "success": true, "absent": true, "error": ""}),
                }
            }
            "store_error" => {
                if !is_spell {
                    return Ok(unit(Err(
                        "store_error can be called only by the associated spell script".into(),
                    )));
                }
                let error = args.first().cloned().unwrap_or(Value::Null);
                let index = args.get(1).and_then(Value::as_u64).unwrap_or(0);
                unit(
                    self.store_error(spell, &call.particle.id, error, index, now_ms)
                        .map_err(|e| e.to_string()),
                )
            }
            "get_errors" => {
                let particle_id = string(args, 0, "particle_id")?;
                let errors = self.records_of(spell, ERRORS)?;
                Value::Array(
                    errors
                        .into_iter()
                        .filter(|e| e["particle_id"] == particle_id)
                        .flat_map(|e| e["errors"].as_array().cloned().unwrap_or_default())
                        .collect(),
                )
            }
            "get_all_errors" => {
                let errors = self.records_of(spell, ERRORS)?;
                json!({"particle_errors": errors, "success": true, "error": ""})
            }
            "get_script_source_from_env" | "get_script_source_from_file" | "get_script" => {
                json!({"source_code": record.script, "success": true, "error": ""})
            }
            "set_script_source_to_file" | "set_script" => {
                if !(is_spell || self.may_manage(call).is_ok()) {
                    return Ok(unit(Err(
                        "only the spell, the host or its owner may change the script".into(),
                    )));
                }
                let script = string(args, 0, "script")?;
                if let Err(e) = braid_grammar::parse(script) {
                    return Ok(unit(Err(format!("the script is not valid AIR: {e}"))));
                }
                let mut updated = record.clone();
                updated.script = script.to_owned();
                self.save(&updated)?;
                unit(Ok(()))
            }
            "get_trigger_config" => {
                json!({"config": record.config, "success": true, "error": ""})
            }
            "set_trigger_config" => {
                if !(is_spell || self.may_manage(call).is_ok()) {
                    return Ok(unit(Err(
                        "only the spell, the host or its owner may change the trigger config"
                            .into(),
                    )));
                }
                let config = trigger_config(args.first())?;
                unit(
                    self.set_config(record.clone(), config, now_ms)
                        .map_err(|e| e.to_string()),
                )
            }
            "get_location" => {
                let relay = match self.get(spell, RELAY)? {
                    Some(Stored::Str(relay)) => relay,
                    _ => self.host().to_owned(),
                };
                json!({
                    "relay": relay,
                    "host": record.scope,
                    "service_id": record.id,
                    "success": true,
                    "error": "",
                })
            }
            "set_relay_peer_id" => {
                if !(is_spell || self.may_manage(call).is_ok()) {
                    return Ok(unit(Err(
                        "only the spell, the host or its owner may set the relay".into(),
                    )));
                }
                let relay = string(args, 0, "relay_peer_id")?;
                self.db
                    .store_put(
                        spell,
                        &[(RELAY, Some(&Stored::Str(relay.to_owned()).encode()))],
                    )
                    .map_err(db_error)?;
                unit(Ok(()))
            }
            "script_cid" => json!({
                "v1_str": script_cid(&record.script),
                "success": true,
                "error": "",
            }),
            other => {
                return Err(ServiceError::new(format!(
                    "the spell {spell} has no function {other}"
                )));
            }
        })
    }

    /// Writes (or with `None` removes) a key, if the caller may.
    fn write(
        &self,
        record: &SpellRecord,
        call: &ServiceCall,
        key: &str,
        value: Option<Stored>,
    ) -> Result<Value, ServiceError> {
        if let Err(e) = self.may_write(record, call, key) {
            return Ok(unit(Err(e)));
        }
        if key.starts_with('\u{1}') {
            return Ok(unit(Err(format!("the key `{key}` is reserved"))));
        }
        let bytes = value.map(|v| v.encode());
        if bytes.as_ref().is_some_and(|b| b.len() > MAX_VALUE_BYTES) {
            return Ok(unit(Err(format!(
                "a value of over {MAX_VALUE_BYTES} bytes; a spell's store takes values up to that"
            ))));
        }
        self.db
            .store_put(&record.id, &[(key, bytes.as_deref())])
            .map_err(db_error)?;
        Ok(unit(Ok(())))
    }

    fn update_list(
        &self,
        spell: &str,
        key: &str,
        f: impl FnOnce(&mut Vec<String>),
    ) -> Result<(), String> {
        self.db
            .store_update(spell, key, |old| {
                let mut items = match old
                    .map(Stored::decode)
                    .transpose()
                    .map_err(|e| e.to_string())?
                {
                    Some(Stored::List(items)) => items,
                    None => Vec::new(),
                    Some(_) => return Err(format!("{key} is not a list")),
                };
                f(&mut items);
                let new = (!items.is_empty()).then(|| Stored::List(items).encode());
                if new.as_ref().is_some_and(|b| b.len() > MAX_VALUE_BYTES) {
                    return Err(format!(
                        "the list {key} would be over {MAX_VALUE_BYTES} bytes; a spell's store takes values up to that"
                    ));
                }
                Ok((new, ()))
            })
            .map_err(|e| e.to_string())?
    }

    /// Appends to one of the library's own lists, keeping its last `max` entries (each
    /// at most [`MAX_ENTRY_BYTES`]).
    fn append(&self, spell: &str, key: &str, max: usize, entry: Value) -> Result<(), String> {
        let size = entry.to_string().len();
        if size > MAX_ENTRY_BYTES {
            return Err(format!(
                "an entry of {size} bytes; a spell keeps log lines, messages and errors of at most {MAX_ENTRY_BYTES}"
            ));
        }
        self.db
            .store_update(spell, key, |old| {
                let mut items = json_list(old).map_err(|e| e.to_string())?;
                items.push(entry);
                if items.len() > max {
                    items.drain(..items.len() - max);
                }
                Ok((Some(Stored::Json(Value::Array(items)).encode()), ()))
            })
            .map_err(|e| e.to_string())?
    }

    fn records_of(&self, spell: &str, key: &str) -> Result<Vec<Value>, ServiceError> {
        let bytes = self.db.store_get(spell, key).map_err(db_error)?;
        json_list(bytes.as_deref())
    }

    fn store_error(
        &self,
        spell: &str,
        particle_id: &str,
        error: Value,
        index: u64,
        _now_ms: u64,
    ) -> Result<(), ServiceError> {
        let entry = json!({"last_error": error, "error_idx": index});
        let size = entry.to_string().len();
        if size > MAX_ENTRY_BYTES {
            return Err(ServiceError::new(format!(
                "an error of {size} bytes; a spell keeps errors of at most {MAX_ENTRY_BYTES}"
            )));
        }
        self.db
            .store_update(spell, ERRORS, |old| {
                let mut items = json_list(old)?;
                match items.iter_mut().find(|p| p["particle_id"] == particle_id) {
                    Some(p) => {
                        if let Some(errors) = p["errors"].as_array_mut() {
                            errors.push(entry);
                            if errors.len() > MAX_ERROR_PARTICLES {
                                errors.remove(0);
                            }
                        }
                    }
                    None => items.push(json!({"particle_id": particle_id, "errors": [entry]})),
                }
                if items.len() > MAX_ERROR_PARTICLES {
                    items.drain(..items.len() - MAX_ERROR_PARTICLES);
                }
                Ok::<_, ServiceError>((Some(Stored::Json(Value::Array(items)).encode()), ()))
            })
            .map_err(db_error)?
    }

    // ---- triggers -----------------------------------------------------------------

    /// When the next timer is due (ms).
    pub(crate) fn next_due(&self) -> Option<u64> {
        self.lock().next_due()
    }

    /// The particles of the spells due at `now_ms` (each counted durably, its trigger
    /// event written to its store), with the scope each runs in.
    pub(crate) fn fire(&self, now_ms: u64) -> Vec<(Particle, String)> {
        let due = self.lock().fire(now_ms);
        due.iter()
            .filter_map(|id| self.start(id, &TriggerEvent::Timer { at_ms: now_ms }, now_ms))
            .collect()
    }

    /// The particles of the spells that run when `peer` connects or disconnects.
    pub(crate) fn connection(
        &self,
        peer: &str,
        connected: bool,
        now_ms: u64,
    ) -> Vec<(Particle, String)> {
        let ids = self.lock().connection(connected);
        let event = TriggerEvent::Connection {
            peer_id: peer.to_owned(),
            connected,
        };
        ids.iter()
            .filter_map(|id| self.start(id, &event, now_ms))
            .collect()
    }

    /// A run of spell `id`: its counter goes up (durably) and names the particle.
    fn start(&self, id: &str, event: &TriggerEvent, now_ms: u64) -> Option<(Particle, String)> {
        let record = match self.record(id) {
            Ok(Some(record)) => record,
            Ok(None) => {
                self.lock_index().remove(id);
                self.lock().unsubscribe(id);
                return None;
            }
            Err(e) => {
                tracing::error!(spell = %id, "cannot run the spell: {e}");
                return None;
            }
        };
        let key = if record.scope == self.host() {
            self.host_key.clone()
        } else {
            match self.workers.get(&record.scope) {
                Some(worker) if !worker.active => {
                    tracing::debug!(spell = %id, worker = %record.scope, "the spell's worker is inactive; the spell does not run");
                    return None;
                }
                Some(worker) => worker.key,
                None => {
                    tracing::warn!(spell = %id, worker = %record.scope, "the spell's worker is gone; the spell does not run again");
                    self.lock().unsubscribe(id);
                    return None;
                }
            }
        };
        // The event, as `hw_trigger` (see [`LATEST_TRIGGER`]).
        let latest = Stored::Str(event.to_json().to_string()).encode();
        let counted = self
            .db
            .store_put(id, &[(LATEST_TRIGGER, Some(&latest))])
            .and_then(|()| {
                self.db.store_update(id, COUNTER, |old| {
                    let n = match old.map(Stored::decode).transpose() {
                        Ok(Some(Stored::U32(n))) => n,
                        Ok(Some(Stored::Str(text))) => text.parse().unwrap_or(0),
                        _ => 0,
                    };
                    let next = n.saturating_add(1);
                    Ok::<_, ()>((Some(Stored::U32(next).encode()), next))
                })
            })
            // The node's own count of runs tells a restarted node whether a one-shot
            // timer ran already.
            .and_then(|next| self.db.next_counter(id).map(|_| next));
        let counter = match counted {
            Ok(Ok(counter)) => counter,
            Ok(Err(())) => return None,
            Err(e) => {
                tracing::error!(spell = %id, "cannot count the spell's run; it does not run: {e}");
                return None;
            }
        };
        let particle = Particle::new_signed(
            &key,
            format!("spell_{id}_{counter}"),
            now_ms,
            SPELL_PARTICLE_TTL_MS,
            record.script,
        );
        tracing::debug!(spell = %id, counter, "spell triggered");
        Some((particle, record.scope))
    }

    /// Resolves when the schedule may have changed.
    pub(crate) async fn changed(&self) {
        self.wake.notified().await;
    }
}

/// A spell as `srv.info` and `srv.list` show it: Nox's `ServiceInfo` of a service of
/// type spell.
fn service_info(record: &SpellRecord) -> Value {
    json!({
        "id": record.id,
        "blueprint_id": "spell",
        "service_type": "spell",
        "owner_id": record.creator,
        "aliases": record.alias.iter().collect::<Vec<_>>(),
        "worker_id": record.scope,
    })
}

/// The script's CIDv1 as IPFS gives a small file added with raw leaves: codec raw
/// (0x55), multihash SHA-256, in base32 (`bafkrei…`).
fn script_cid(script: &str) -> String {
    use sha2::Digest;
    let mut bytes = vec![0x01, 0x55, 0x12, 0x20];
    bytes.extend_from_slice(&sha2::Sha256::digest(script.as_bytes()));
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::from("b");
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Whether an alias may name a spell: not empty, not a built-in's name.
fn check_alias(alias: &str) -> Result<(), ServiceError> {
    if alias.is_empty() {
        return Err(ServiceError::new("an alias cannot be empty"));
    }
    if crate::builtins::functions_of(alias).is_some()
        || matches!(
            alias,
            "spell" | "worker" | "getDataSrv" | "callbackSrv" | "errorHandlingSrv"
        )
    {
        return Err(ServiceError::new(format!(
            "the alias {alias} is the name of a built-in service"
        )));
    }
    Ok(())
}

fn db_error(e: crate::db::DbError) -> ServiceError {
    ServiceError::new(e.to_string())
}

fn string<'a>(args: &'a [Value], index: usize, name: &str) -> Result<&'a str, ServiceError> {
    match args.get(index) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(ServiceError::new(format!(
            "argument {index} ({name}) must be a string, not {other}"
        ))),
        None => Err(ServiceError::new(format!(
            "argument {index} ({name}) is missing"
        ))),
    }
}

fn trigger_config(arg: Option<&Value>) -> Result<TriggerConfig, ServiceError> {
    let arg = arg.ok_or_else(|| ServiceError::new("the trigger config is missing"))?;
    serde_json::from_value(arg.clone())
        .map_err(|e| ServiceError::new(format!("not a trigger config ({e}): {arg}")))
}

/// The fields of a JSON object as store values (each the JSON text of its value), as
/// the library's `set_json_fields`; `null`, `""` and `[]` are no fields.
fn json_fields(value: Option<&Value>) -> Result<Vec<(String, Vec<u8>)>, ServiceError> {
    let object = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => return Ok(Vec::new()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(map)) => map,
            _ => return Err(ServiceError::new("the init data must be a JSON object")),
        },
        Some(Value::Array(items)) if items.is_empty() => return Ok(Vec::new()),
        Some(Value::Array(items)) if items.len() == 1 => return json_fields(items.first()),
        Some(Value::Object(map)) => map.clone(),
        Some(other) => {
            return Err(ServiceError::new(format!(
                "the data must be a JSON object, not {other}"
            )));
        }
    };
    let mut out = Vec::with_capacity(object.len());
    for (key, value) in object {
        if key.starts_with('\u{1}') {
            return Err(ServiceError::new(format!("the key `{key}` is reserved")));
        }
        out.push((key, Stored::Str(value.to_string()).encode()));
    }
    Ok(out)
}

fn json_list(bytes: Option<&[u8]>) -> Result<Vec<Value>, ServiceError> {
    match bytes.map(Stored::decode).transpose()? {
        Some(Stored::Json(Value::Array(items))) => Ok(items),
        None => Ok(Vec::new()),
        Some(_) => Err(ServiceError::new(
            "a record list of the spell is unreadable",
        )),
    }
}

fn unit(result: Result<(), String>) -> Value {
    match result {
        Ok(()) => json!({"success": true, "error": ""}),
        Err(e) => json!({"success": false, "error": e}),
    }
}

// The spell library names the value `str`, `num` and `strings` in its newest Aqua
// declarations and `value` in those the corpus's compiled code uses (0.7.6): the
// answers carry both.
fn string_value(s: &str, success: bool, error: &str) -> Value {
    json!({"str": s, "value": s, "success": success, "error": error, "absent": false})
}

fn u32_value(n: u32, success: bool, error: &str, absent: bool) -> Value {
    json!({"num": n, "value": n, "success": success, "error": error, "absent": absent})
}

fn strings_value(items: &[String], error: Option<String>) -> Value {
    json!({"strings": items, "value": items, "success": error.is_none(),
           "error": error.unwrap_or_default()})
}

/// Drives the triggers: runs the due spells at each timer and whenever the schedule
/// changes, handing each particle to `admit` with the scope it runs in.
pub(crate) async fn drive<F, Fut>(spells: Arc<Spells>, admit: F)
where
    F: Fn(Particle, String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        let now = crate::node::now_ms();
        let worker = Arc::clone(&spells);
        let due = tokio::task::spawn_blocking(move || worker.fire(now))
            .await
            .unwrap_or_default();
        for (particle, scope) in due {
            admit(particle, scope).await;
        }
        let changed = spells.changed();
        match spells.next_due() {
            Some(at) => {
                let wait =
                    std::time::Duration::from_millis(at.saturating_sub(crate::node::now_ms()));
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = changed => {}
                }
            }
            None => changed.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_cids_are_ipfs_raw_cids() {
        // The CID IPFS gives the empty file (raw leaves).
        assert_eq!(
            script_cid(""),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
    }

    #[test]
    fn init_data_fields_are_json_texts_and_reserved_keys_are_refused() {
        let fields = json_fields(Some(&json!({"a": 1, "b": "x"}))).unwrap();
        let decoded: Vec<(String, Stored)> = fields
            .into_iter()
            .map(|(k, v)| (k, Stored::decode(&v).unwrap()))
            .collect();
        assert!(matches!(&decoded[0], (k, Stored::Str(v)) if k == "a" && v == "1"));
        assert!(matches!(&decoded[1], (k, Stored::Str(v)) if k == "b" && v == "\"x\""));
        assert!(json_fields(Some(&json!("{\"c\": true}"))).unwrap().len() == 1);
        assert!(json_fields(Some(&json!(3))).is_err());
        assert!(json_fields(Some(&json!({"\u{1}logs": 1}))).is_err());
    }
}
