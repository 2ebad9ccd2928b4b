//! `dist`, `srv` and `stat`: services deployed at run time. A Wasm module added with
//! `dist.add_module` (braid's service ABI, see `wasm_service.rs`) goes into a blueprint
//! (`dist.add_blueprint`); `srv.create` makes a service of a blueprint, callable by its
//! id or by an alias (`srv.add_alias`). Modules, blueprints and services survive a
//! restart through a [`DeployStore`] (files in the node's data dir, each written
//! atomically).
//!
//! Services and aliases belong to a scope (Nox's `PeerScope`): the host's, or a
//! worker's when the call's particle runs as that worker (`host_id`). Each scope
//! creates, lists, resolves, calls and removes its own only: a worker's are out of
//! the host's sight, the host's out of the worker's (Nox's notes say no more of what
//! a worker reaches of the host's; this is the stricter reading), and they go when the
//! worker is removed. Modules and blueprints (`dist`) are the node's, shared by every
//! scope, as in Nox. An alias names one service or spell of its scope.
//!
//! braid differs from Nox where its runtime does: a module is one braid-ABI module (a
//! module built for Nox's Marine runtime is refused, saying so), a blueprint has exactly
//! one module (the ABI has no imports, so there is nothing to link: a blueprint of
//! several is refused with that reason), module hashes are SHA-256 (Nox: blake3), and a
//! module's interface (`srv.get_interface`, `dist.get_module_interface`) is what its
//! optional `braid_service_interface` export says (see `wasm_service.rs`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::pure::{arg_error, optional, string_arg};
use super::{Builtins, functions_of};
use crate::identity::random_uuid;
use crate::services::{ServiceCall, ServiceError, ServiceResult};
use crate::wasm_service::{RunnerPolicy, WasmService};

/// Where deployed modules and the table of blueprints and services are kept.
pub(crate) trait DeployStore: Send + Sync {
    /// The table, if one was saved.
    fn load_table(&self) -> Result<Option<Vec<u8>>, String>;
    /// Replaces the table.
    fn save_table(&self, bytes: &[u8]) -> Result<(), String>;
    /// A module's bytes.
    fn load_module(&self, hash: &str) -> Result<Vec<u8>, String>;
    /// Keeps a module's bytes.
    fn save_module(&self, hash: &str, bytes: &[u8]) -> Result<(), String>;
}

/// Files under `<dir>`: `table.json` and `modules/<hash>.wasm`, each written to a
/// temporary file, synced, renamed over the old one, and the directory synced. Nodes
/// now keep these in their database (`db.rs`); a data dir of an older node is read
/// once and imported.
pub(crate) struct DirDeployStore {
    dir: PathBuf,
}

impl DirDeployStore {
    pub(crate) fn new(dir: PathBuf) -> Self {
        DirDeployStore { dir }
    }

    fn write_atomically(&self, path: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
        use std::io::Write;
        let parent = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp)
            .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| format!("cannot rename {}: {e}", tmp.display()))?;
        if let Ok(dir) = std::fs::File::open(parent) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    fn module_path(&self, hash: &str) -> Result<PathBuf, String> {
        if hash.is_empty() || !hash.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("not a module hash: {hash}"));
        }
        Ok(self.dir.join("modules").join(format!("{hash}.wasm")))
    }
}

impl DeployStore for DirDeployStore {
    fn load_table(&self) -> Result<Option<Vec<u8>>, String> {
        let path = self.dir.join("table.json");
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }
    fn save_table(&self, bytes: &[u8]) -> Result<(), String> {
        self.write_atomically(&self.dir.join("table.json"), bytes)
    }
    fn load_module(&self, hash: &str) -> Result<Vec<u8>, String> {
        let path = self.module_path(hash)?;
        std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    }
    fn save_module(&self, hash: &str, bytes: &[u8]) -> Result<(), String> {
        let path = self.module_path(hash)?;
        self.write_atomically(&path, bytes)
    }
}

/// What is deployed, as saved.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Table {
    version: u32,
    modules: BTreeMap<String, ModuleEntry>,
    blueprints: BTreeMap<String, Blueprint>,
    services: BTreeMap<String, ServiceEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ModuleEntry {
    name: String,
    hash: String,
    config: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Blueprint {
    id: String,
    name: String,
    dependencies: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ServiceEntry {
    id: String,
    blueprint_id: String,
    owner_id: String,
    aliases: Vec<String>,
    /// The worker whose service it is; `None`: the host's. (A table saved before
    /// workers had services has none, and so is all the host's.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    worker: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
struct FunctionStat {
    calls: u64,
    failures: u64,
    total_ms: f64,
}

/// The deployed services of a node.
pub(crate) struct Deploy {
    store: Arc<dyn DeployStore>,
    host: String,
    table: Mutex<Table>,
    running: Mutex<HashMap<String, Arc<WasmService>>>,
    stats: Mutex<HashMap<String, BTreeMap<String, FunctionStat>>>,
    /// The interfaces of modules asked for, by hash (a module's bytes never change).
    interfaces: Mutex<HashMap<String, Value>>,
}

/// The largest module `dist` takes, bytes.
const MAX_MODULE_BYTES: usize = 32 << 20;

impl Deploy {
    /// What `store` holds; a service whose module cannot be loaded is logged and left
    /// out.
    pub(crate) fn open(store: Arc<dyn DeployStore>, host: String) -> Self {
        let table = match store.load_table() {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::error!(
                    "the table of deployed services is unreadable; starting empty: {e}"
                );
                Table::default()
            }),
            Ok(None) => Table::default(),
            Err(e) => {
                tracing::error!("cannot read the deployed services; starting empty: {e}");
                Table::default()
            }
        };
        let deploy = Deploy {
            store,
            host,
            table: Mutex::new(Table::default()),
            running: Mutex::new(HashMap::new()),
            stats: Mutex::new(HashMap::new()),
            interfaces: Mutex::new(HashMap::new()),
        };
        let mut running = HashMap::new();
        for service in table.services.values() {
            match deploy.instantiate(&table, &service.blueprint_id, &service.id) {
                Ok(wasm) => {
                    running.insert(service.id.clone(), Arc::new(wasm));
                }
                Err(e) => tracing::error!(service = %service.id, "cannot restore the service: {e}"),
            }
        }
        *lock(&deploy.running) = running;
        *lock(&deploy.table) = table;
        deploy
    }

    /// The scope a call runs in: `None` for the host, else the worker's peer id.
    fn scope<'a>(&self, call: &'a ServiceCall) -> Option<&'a str> {
        let host_id = call.particle.host_id.as_str();
        (host_id != self.host).then_some(host_id)
    }

    /// The running service of the call's service id, by id or alias in the call's
    /// scope: a worker reaches its own services only, the host its own.
    pub(crate) fn find_for(&self, call: &ServiceCall) -> Option<(String, Arc<WasmService>)> {
        self.find(self.scope(call), &call.service_id)
    }

    /// The running service of this id or alias in `scope`.
    fn find(&self, scope: Option<&str>, id_or_alias: &str) -> Option<(String, Arc<WasmService>)> {
        let id = self.resolve(&lock(&self.table), scope, id_or_alias)?;
        let service = lock(&self.running).get(&id).cloned()?;
        Some((id, service))
    }

    pub(crate) fn record_call(
        &self,
        service_id: &str,
        function: &str,
        result: &ServiceResult,
        took: Duration,
    ) {
        let mut stats = lock(&self.stats);
        let stat = stats
            .entry(service_id.to_owned())
            .or_default()
            .entry(function.to_owned())
            .or_default();
        stat.calls += 1;
        stat.failures += u64::from(result.is_err());
        stat.total_ms += took.as_secs_f64() * 1000.0;
    }

    /// The id of the service of this id or alias in `scope`.
    fn resolve(&self, table: &Table, scope: Option<&str>, id_or_alias: &str) -> Option<String> {
        match table.services.get(id_or_alias) {
            Some(s) if s.worker.as_deref() == scope => Some(s.id.clone()),
            _ => self.alias_of(table, scope, id_or_alias),
        }
    }

    /// Takes `alias` from whichever service of the call's scope has it (a spell was
    /// given it).
    pub(crate) fn release_alias(
        &self,
        call: &ServiceCall,
        alias: &str,
    ) -> Result<(), ServiceError> {
        let scope = self.scope(call);
        let mut table = lock(&self.table);
        let mut changed = false;
        for service in table.services.values_mut() {
            if service.worker.as_deref() == scope && service.aliases.iter().any(|a| a == alias) {
                service.aliases.retain(|a| a != alias);
                changed = true;
            }
        }
        if changed {
            self.save(&table)?;
        }
        Ok(())
    }

    /// Forgets the services of a worker that was removed.
    pub(crate) fn remove_worker(&self, worker: &str) -> Result<(), ServiceError> {
        let mut table = lock(&self.table);
        let gone: Vec<String> = table
            .services
            .values()
            .filter(|s| s.worker.as_deref() == Some(worker))
            .map(|s| s.id.clone())
            .collect();
        if gone.is_empty() {
            return Ok(());
        }
        for id in &gone {
            table.services.remove(id);
        }
        self.save(&table)?;
        let (mut running, mut stats) = (lock(&self.running), lock(&self.stats));
        for id in &gone {
            running.remove(id);
            stats.remove(id);
        }
        Ok(())
    }

    fn save(&self, table: &Table) -> Result<(), ServiceError> {
        let bytes = serde_json::to_vec_pretty(table)
            .map_err(|e| ServiceError::new(format!("cannot encode the deployed services: {e}")))?;
        self.store
            .save_table(&bytes)
            .map_err(|e| ServiceError::new(format!("cannot save the deployed services: {e}")))
    }

    fn instantiate(
        &self,
        table: &Table,
        blueprint_id: &str,
        id: &str,
    ) -> Result<WasmService, ServiceError> {
        let blueprint = table
            .blueprints
            .get(blueprint_id)
            .ok_or_else(|| ServiceError::new(format!("Blueprint '{blueprint_id}' not found")))?;
        let hash = blueprint
            .dependencies
            .first()
            .ok_or_else(|| ServiceError::new("the blueprint has no module"))?;
        let bytes = self
            .store
            .load_module(hash)
            .map_err(|e| ServiceError::new(format!("cannot load module {hash}: {e}")))?;
        WasmService::from_bytes(id, &bytes, RunnerPolicy::default())
            .map_err(|e| ServiceError::new(e.to_string()))
    }

    pub(crate) fn call(&self, b: &Builtins, call: &ServiceCall) -> ServiceResult {
        let args = &call.args;
        let scope = self.scope(call);
        match (call.service_id.as_str(), call.function_name.as_str()) {
            ("dist", "add_module") => {
                b.guard(call)?;
                let bytes = base64_decode(string_arg(args, 0, "module_bytes")?)?;
                let config = module_config(args.get(1))?;
                self.add_module(bytes, config)
            }
            ("dist", "add_module_from_vault") => {
                b.guard(call)?;
                let path = string_arg(args, 0, "module_path")?;
                let bytes = vault_file(b, call, path)?;
                let config = module_config(args.get(1))?;
                self.add_module(bytes, config)
            }
            ("dist", "add_module_bytes_from_vault") => {
                b.guard(call)?;
                let name = string_arg(args, 0, "module_name")?;
                let path = string_arg(args, 1, "module_path")?;
                let bytes = vault_file(b, call, path)?;
                self.add_module(bytes, default_config(name))
            }
            ("dist", "default_module_config") => {
                Ok(default_config(string_arg(args, 0, "module_name")?))
            }
            ("dist", "make_module_config") => make_module_config(args),
            ("dist", "load_module_config") => {
                let path = string_arg(args, 0, "path")?;
                let bytes = vault_file(b, call, path)?;
                let config: Value = serde_json::from_slice(&bytes).map_err(|e| {
                    ServiceError::new(format!("the module config at {path} is not JSON: {e}"))
                })?;
                module_config(Some(&config))
            }
            ("dist", "make_blueprint") => {
                let name = string_arg(args, 0, "name")?;
                let dependencies = strings(args.get(1), "dependencies")?;
                Ok(Value::String(
                    json!({"name": name, "dependencies": dependencies}).to_string(),
                ))
            }
            ("dist", "load_blueprint") => {
                let path = string_arg(args, 0, "path")?;
                let bytes = vault_file(b, call, path)?;
                String::from_utf8(bytes)
                    .map(Value::String)
                    .map_err(|_| ServiceError::new(format!("the blueprint at {path} is not UTF-8")))
            }
            ("dist", "add_blueprint") => {
                b.guard(call)?;
                self.add_blueprint(args.first())
            }
            ("dist", "list_modules") => Ok(json!(
                lock(&self.table).modules.values().collect::<Vec<_>>()
            )),
            ("dist", "get_module_interface") => {
                let hash = string_arg(args, 0, "module_hash")?;
                let hash = strip_hash(hash);
                if let Some(interface) = lock(&self.interfaces).get(hash) {
                    return Ok(interface.clone());
                }
                let name = match lock(&self.table).modules.get(hash) {
                    Some(module) => module.name.clone(),
                    None => {
                        return Err(ServiceError::new(format!(
                            "Module with hash '{hash}' not found"
                        )));
                    }
                };
                let bytes = self
                    .store
                    .load_module(hash)
                    .map_err(|e| ServiceError::new(format!("cannot load module {hash}: {e}")))?;
                let interface = WasmService::from_bytes(&name, &bytes, RunnerPolicy::default())
                    .map_err(|e| ServiceError::new(e.to_string()))?
                    .interface()?;
                lock(&self.interfaces).insert(hash.to_owned(), interface.clone());
                Ok(interface)
            }
            ("dist", "list_blueprints") => Ok(json!(
                lock(&self.table).blueprints.values().collect::<Vec<_>>()
            )),
            ("dist", "get_blueprint") => {
                let id = string_arg(args, 0, "blueprint_id")?;
                lock(&self.table)
                    .blueprints
                    .get(id)
                    .map(|bp| json!(bp))
                    .ok_or_else(|| ServiceError::new(format!("Blueprint '{id}' not found")))
            }
            ("srv", "create") => {
                b.guard(call)?;
                let blueprint_id = string_arg(args, 0, "blueprint_id")?;
                self.create(blueprint_id, &call.particle.init_peer_id, scope)
            }
            ("srv", "list") => {
                // The scope's services, then its spells (services of type spell, as
                // Nox lists them).
                let mut listed: Vec<Value> = lock(&self.table)
                    .services
                    .values()
                    .filter(|s| s.worker.as_deref() == scope)
                    .map(|s| self.service_json(s))
                    .collect();
                listed.extend(b.spells.services(&call.particle.host_id)?);
                Ok(Value::Array(listed))
            }
            ("srv", "info") => {
                let id = string_arg(args, 0, "service_id_or_alias")?;
                let table = lock(&self.table);
                let sid = self
                    .resolve(&table, scope, id)
                    .ok_or_else(|| not_found(id))?;
                Ok(self.service_json(&table.services[&sid]))
            }
            ("srv", "get_interface") => {
                let id = string_arg(args, 0, "service_id")?;
                let (_, service) = self.find(scope, id).ok_or_else(|| not_found(id))?;
                service.interface()
            }
            ("srv", "resolve_alias") => {
                let alias = string_arg(args, 0, "alias")?;
                let table = lock(&self.table);
                self.alias_of(&table, scope, alias)
                    .map(Value::String)
                    .ok_or_else(|| {
                        ServiceError::new(format!("Service with alias '{alias}' is not found"))
                    })
            }
            ("srv", "resolve_alias_opt") => {
                let alias = string_arg(args, 0, "alias")?;
                let table = lock(&self.table);
                Ok(json!(
                    self.alias_of(&table, scope, alias)
                        .into_iter()
                        .collect::<Vec<_>>()
                ))
            }
            ("srv", "add_alias") => {
                b.guard(call)?;
                let alias = string_arg(args, 0, "alias")?;
                let id = string_arg(args, 1, "service_id")?;
                self.add_alias(scope, alias, id)?;
                // It moves from a spell of the scope that had it.
                b.spells
                    .release_alias(&call.particle.host_id, alias, None)?;
                Ok(Value::String(String::new()))
            }
            ("srv", "remove") => {
                b.guard(call)?;
                let id = string_arg(args, 0, "service_id_or_alias")?;
                self.remove(scope, id)
            }
            ("stat", "service_memory") => {
                let id = string_arg(args, 0, "service_id")?;
                let table = lock(&self.table);
                let sid = self
                    .resolve(&table, scope, id)
                    .ok_or_else(|| not_found(id))?;
                let blueprint = table.blueprints.get(&table.services[&sid].blueprint_id);
                let stats: Vec<Value> = blueprint
                    .into_iter()
                    .flat_map(|bp| bp.dependencies.iter())
                    .map(|hash| {
                        let name = table.modules.get(hash).map_or("", |m| m.name.as_str());
                        // A fresh instance runs each call: between calls no memory is held.
                        json!({"name": name, "memory_size": 0})
                    })
                    .collect();
                Ok(Value::Array(stats))
            }
            ("stat", "service_stat") => {
                let id = string_arg(args, 0, "service_id")?;
                let sid = self
                    .resolve(&lock(&self.table), scope, id)
                    .ok_or_else(|| not_found(id))?;
                match lock(&self.stats).get(&sid) {
                    Some(functions) => Ok(json!({
                        "status": true,
                        "error": "",
                        "result": [{"functions": functions}],
                    })),
                    None => Ok(json!({
                        "status": false,
                        "error": format!("No stats were collected for the `{sid}` service"),
                        "result": [],
                    })),
                }
            }
            (service, function) => Err(ServiceError::new(format!(
                "internal error, please report: {service}.{function} is listed but not built"
            ))),
        }
    }

    fn service_json(&self, s: &ServiceEntry) -> Value {
        json!({
            "id": s.id,
            "blueprint_id": s.blueprint_id,
            "service_type": "service",
            "owner_id": s.owner_id,
            "aliases": s.aliases,
            "worker_id": s.worker.as_deref().unwrap_or(&self.host),
        })
    }

    /// The service of this alias in `scope`: aliases are per scope (Nox PR #1449).
    fn alias_of(&self, table: &Table, scope: Option<&str>, alias: &str) -> Option<String> {
        table
            .services
            .values()
            .find(|s| s.worker.as_deref() == scope && s.aliases.iter().any(|a| a == alias))
            .map(|s| s.id.clone())
    }

    fn add_module(&self, bytes: Vec<u8>, config: Value) -> ServiceResult {
        if bytes.len() > MAX_MODULE_BYTES {
            return Err(ServiceError::new(format!(
                "a module of {} bytes; this node takes modules of at most {MAX_MODULE_BYTES}",
                bytes.len()
            )));
        }
        let name = config
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        check_module(&name, &bytes)?;
        let hash: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.store
            .save_module(&hash, &bytes)
            .map_err(|e| ServiceError::new(format!("cannot save the module: {e}")))?;
        let mut table = lock(&self.table);
        table.modules.insert(
            hash.clone(),
            ModuleEntry {
                name,
                hash: hash.clone(),
                config,
            },
        );
        self.save(&table)?;
        Ok(Value::String(hash))
    }

    fn add_blueprint(&self, blueprint: Option<&Value>) -> ServiceResult {
        // Nox's current form is the text `make_blueprint` gives; the older is the record.
        let parsed;
        let blueprint = match blueprint {
            Some(Value::String(text)) => {
                parsed = serde_json::from_str::<Value>(text).map_err(|e| {
                    ServiceError::new(format!(
                        "the blueprint is not one `dist.make_blueprint` made: {e}"
                    ))
                })?;
                &parsed
            }
            Some(v @ Value::Object(_)) => v,
            other => return Err(arg_error("blueprint", "a blueprint", other)),
        };
        let name = blueprint
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| ServiceError::new("the blueprint has no name"))?
            .to_owned();
        let dependencies = strings(blueprint.get("dependencies"), "dependencies")?;
        let mut table = lock(&self.table);
        let mut hashes = Vec::with_capacity(dependencies.len());
        for dependency in &dependencies {
            let hash = if let Some(module_name) = dependency.strip_prefix("name:") {
                table
                    .modules
                    .values()
                    .find(|m| m.name == module_name)
                    .map(|m| m.hash.clone())
            } else {
                let hash = strip_hash(dependency);
                table.modules.contains_key(hash).then(|| hash.to_owned())
            };
            hashes.push(hash.ok_or_else(|| {
                ServiceError::new(format!(
                    "Module '{dependency}' of blueprint '{name}' is not on this node"
                ))
            })?);
        }
        if hashes.len() != 1 {
            return Err(ServiceError::new(format!(
                "blueprint '{name}' has {} modules; a braid service is exactly one module (braid's service ABI has no imports, so modules cannot call each other: link shared code into the module when building it)",
                hashes.len()
            )));
        }
        let id: String = Sha256::digest(json!({"name": name, "dependencies": hashes}).to_string())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        table.blueprints.insert(
            id.clone(),
            Blueprint {
                id: id.clone(),
                name,
                dependencies: hashes,
            },
        );
        self.save(&table)?;
        Ok(Value::String(id))
    }

    fn create(&self, blueprint_id: &str, owner: &str, scope: Option<&str>) -> ServiceResult {
        let id = random_uuid().map_err(|e| ServiceError::new(e.to_string()))?;
        let snapshot = lock(&self.table).clone();
        let wasm = self.instantiate(&snapshot, blueprint_id, &id)?;
        let mut table = lock(&self.table);
        table.services.insert(
            id.clone(),
            ServiceEntry {
                id: id.clone(),
                blueprint_id: blueprint_id.to_owned(),
                owner_id: owner.to_owned(),
                aliases: Vec::new(),
                worker: scope.map(str::to_owned),
            },
        );
        self.save(&table)?;
        lock(&self.running).insert(id.clone(), Arc::new(wasm));
        Ok(Value::String(id))
    }

    fn add_alias(&self, scope: Option<&str>, alias: &str, id: &str) -> ServiceResult {
        if functions_of(alias).is_some() {
            return Err(ServiceError::new(format!(
                "Cannot add alias '{alias}' because there is a service with that name"
            )));
        }
        let mut table = lock(&self.table);
        let sid = self
            .resolve(&table, scope, id)
            .ok_or_else(|| not_found(id))?;
        // The alias moves to this service from whichever of the scope's had it.
        for service in table.services.values_mut() {
            if service.worker.as_deref() == scope {
                service.aliases.retain(|a| a != alias);
            }
        }
        if let Some(service) = table.services.get_mut(&sid) {
            service.aliases.push(alias.to_owned());
        }
        self.save(&table)?;
        Ok(Value::String(String::new()))
    }

    fn remove(&self, scope: Option<&str>, id_or_alias: &str) -> ServiceResult {
        let mut table = lock(&self.table);
        let sid = self
            .resolve(&table, scope, id_or_alias)
            .ok_or_else(|| not_found(id_or_alias))?;
        table.services.remove(&sid);
        self.save(&table)?;
        lock(&self.running).remove(&sid);
        lock(&self.stats).remove(&sid);
        Ok(Value::String(String::new()))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Invariant: nothing panics while holding these locks.
    m.lock().expect("the deployment locks are never poisoned")
}

fn not_found(id: &str) -> ServiceError {
    ServiceError::new(format!("Service with id '{id}' not found"))
}

fn strip_hash(dependency: &str) -> &str {
    dependency.strip_prefix("hash:").unwrap_or(dependency)
}

fn vault_file(b: &Builtins, call: &ServiceCall, path: &str) -> Result<Vec<u8>, ServiceError> {
    b.vault.read(call, path, crate::node::now_ms())
}

fn strings(v: Option<&Value>, name: &str) -> Result<Vec<String>, ServiceError> {
    v.and_then(Value::as_array)
        .and_then(|items| {
            items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| arg_error(name, "an array of strings", v))
}

/// Nox's `NamedModuleConfig` with nothing set but the name.
fn default_config(name: &str) -> Value {
    json!({
        "name": name,
        "load_from": null,
        "file_name": null,
        "config": {"logger_enabled": null, "wasi": null, "mounted_binaries": null, "logging_mask": null},
    })
}

/// A module config argument: an object with a string `name`.
fn module_config(v: Option<&Value>) -> ServiceResult {
    match v {
        Some(config @ Value::Object(o)) if o.get("name").is_some_and(Value::is_string) => {
            Ok(config.clone())
        }
        other => Err(arg_error(
            "config",
            "a module config (an object with a `name`)",
            other,
        )),
    }
}

/// `make_module_config(name, mem_pages_count?, max_heap_size?, logger_enabled?,
/// preopened_files?, envs?, mapped_dirs?, mounted_binaries?, logging_mask?)`: Nox's
/// positions; the unused ones are read and dropped, as Nox does.
fn make_module_config(args: &[Value]) -> ServiceResult {
    let name = string_arg(args, 0, "name")?;
    let table = |i: usize, what: &str| -> Result<Value, ServiceError> {
        match optional(args, i) {
            None => Ok(Value::Null),
            Some(Value::Array(pairs)) => {
                let mut out = serde_json::Map::new();
                for pair in pairs {
                    match pair.as_array().map(Vec::as_slice) {
                        Some([Value::String(k), Value::String(v)]) => {
                            out.insert(k.clone(), Value::String(v.clone()));
                        }
                        _ => return Err(arg_error(what, "pairs of strings", Some(pair))),
                    }
                }
                Ok(Value::Object(out))
            }
            Some(other) => Err(arg_error(what, "pairs of strings", Some(other))),
        }
    };
    let logger_enabled = optional(args, 3).cloned().unwrap_or(Value::Null);
    let envs = table(5, "envs")?;
    let mapped_dirs = table(6, "mapped_dirs")?;
    let mounted_binaries = table(7, "mounted_binaries")?;
    let logging_mask = optional(args, 8).cloned().unwrap_or(Value::Null);
    Ok(json!({
        "name": name,
        "load_from": null,
        "file_name": null,
        "config": {
            "logger_enabled": logger_enabled,
            "wasi": {"envs": envs, "mapped_dirs": mapped_dirs},
            "mounted_binaries": mounted_binaries,
            "logging_mask": logging_mask,
        },
    }))
}

/// Refuses what braid cannot run, saying why: not Wasm, built for Marine, or not of
/// braid's service ABI.
fn check_module(name: &str, bytes: &[u8]) -> Result<(), ServiceError> {
    let e = match WasmService::from_bytes(name, bytes, RunnerPolicy::default()) {
        // A description it gives must be one: better refused now than at every
        // `get_interface`.
        Ok(service) if service.describes_itself() => {
            return service
                .interface()
                .map(drop)
                .map_err(|e| ServiceError::new(format!("module '{name}' cannot run here: {e}")));
        }
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    if let Some(marine) = marine_sign(bytes) {
        return Err(ServiceError::new(format!(
            "module '{name}' is built for Nox's Marine runtime ({marine}); braid runs modules of its own service ABI (exports `memory`, `braid_service_alloc`, `braid_service_call`, imports nothing)"
        )));
    }
    Err(ServiceError::new(format!(
        "module '{name}' cannot run here: {e}"
    )))
}

/// What shows a module is Marine's: its imports (`host`, WASI) or its exports (the
/// Marine ABI's allocator and result functions).
fn marine_sign(bytes: &[u8]) -> Option<String> {
    let engine = wasmtime::Engine::default();
    let module = wasmtime::Module::new(&engine, bytes).ok()?;
    for import in module.imports() {
        if matches!(
            import.module(),
            "host" | "wasi_snapshot_preview1" | "wasi_unstable"
        ) {
            return Some(format!("it imports {}.{}", import.module(), import.name()));
        }
    }
    for export in module.exports() {
        if matches!(
            export.name(),
            "allocate"
                | "release_objects"
                | "get_result_ptr"
                | "get_result_size"
                | "set_result_ptr"
                | "set_result_size"
        ) {
            return Some(format!("it exports Marine's `{}`", export.name()));
        }
    }
    None
}

/// Standard base64 (with or without padding, whitespace ignored); what
/// `dist.add_module` takes.
fn base64_decode(text: &str) -> Result<Vec<u8>, ServiceError> {
    use base64::Engine;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    LENIENT
        .decode(compact)
        .map_err(|e| ServiceError::new(format!("the module is not base64: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workers_services_are_its_own_and_go_with_it() {
        static EXAMPLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/example_service.wasm"));
        let db = Arc::new(crate::db::Db::in_memory().unwrap());
        let store: Arc<dyn DeployStore> = Arc::new(crate::db::DbDeployStore(Arc::clone(&db)));
        let deploy = Deploy::open(Arc::clone(&store), "host".into());
        let hash = deploy
            .add_module(EXAMPLE.to_vec(), default_config("greeter"))
            .unwrap();
        let blueprint = json!({"name": "greeter", "dependencies": [hash]});
        let blueprint = deploy.add_blueprint(Some(&blueprint)).unwrap();
        let blueprint = blueprint.as_str().unwrap();
        let mine = deploy.create(blueprint, "owner", Some("w")).unwrap();
        let hosts = deploy.create(blueprint, "owner", None).unwrap();
        let (mine, hosts) = (mine.as_str().unwrap(), hosts.as_str().unwrap());
        deploy.add_alias(Some("w"), "g", mine).unwrap();
        deploy.add_alias(None, "g", hosts).unwrap();
        // Each scope finds its own, by id or alias, and not the other's.
        assert_eq!(deploy.find(Some("w"), "g").unwrap().0, mine);
        assert_eq!(deploy.find(None, "g").unwrap().0, hosts);
        assert!(deploy.find(None, mine).is_none());
        assert!(deploy.find(Some("w"), hosts).is_none());
        assert!(deploy.find(Some("other"), "g").is_none());
        // Kept across a restart, and gone with the worker (for good).
        let deploy = Deploy::open(Arc::clone(&store), "host".into());
        assert_eq!(deploy.find(Some("w"), "g").unwrap().0, mine);
        deploy.remove_worker("w").unwrap();
        assert!(deploy.find(Some("w"), mine).is_none());
        let deploy = Deploy::open(store, "host".into());
        assert!(deploy.find(Some("w"), mine).is_none());
        assert_eq!(deploy.find(None, "g").unwrap().0, hosts);
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(base64_decode("AGFz").unwrap(), b"\0as");
        assert!(base64_decode("a*b").is_err());
    }

    #[test]
    fn module_configs() {
        let c = make_module_config(&[
            json!("m"),
            json!([]),
            json!([]),
            json!([true]),
            json!([]),
            json!([[["A", "1"]]]),
        ])
        .unwrap();
        assert_eq!(c["name"], "m");
        assert_eq!(c["config"]["logger_enabled"], true);
        assert_eq!(c["config"]["wasi"]["envs"], json!({"A": "1"}));
        assert_eq!(default_config("m")["name"], "m");
        assert!(module_config(Some(&json!({"x": 1}))).is_err());
    }

    #[test]
    fn marine_modules_are_recognised() {
        let marine = wat::parse_str(r#"(module (import "host" "log_utf8_string" (func (param i32 i32 i32 i32))) (memory (export "memory") 1) (func (export "allocate") (param i32) (result i32) i32.const 0))"#).unwrap();
        let e = check_module("m", &marine).unwrap_err().to_string();
        assert!(
            e.contains("Marine") && e.contains("host.log_utf8_string"),
            "{e}"
        );
        let e = check_module("m", b"not wasm").unwrap_err().to_string();
        assert!(e.contains("cannot run here"), "{e}");
    }
}
