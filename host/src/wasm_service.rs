//! Services that come as Wasm modules, loaded at run time and run under wasmtime with
//! the limits a [`RunnerPolicy`] sets: whether the service may run at all, for which
//! init peers, with how much memory and fuel. Every call gets a fresh instance, so a
//! trap, running out of memory or fuel, or an endless loop fails that call alone (with
//! an error result the script can catch) and never the next.
//!
//! # The service ABI
//!
//! A service module has no imports and exports:
//!
//! - `memory`;
//! - `braid_service_alloc(len: u32) -> u32`: reserve `len` bytes for the host to write;
//! - `braid_service_call(name_ptr, name_len, args_ptr, args_len: u32) -> u64`: call the
//!   function named by the UTF-8 text at `name_ptr` with the JSON array of arguments at
//!   `args_ptr`; return `(ptr << 32) | len` of a JSON answer: `{"ok": value}` or
//!   `{"error": value}`.
//!
//! and, optionally, describes its functions:
//!
//! - `braid_service_interface() -> u64`: `(ptr << 32) | len` of a JSON text in the
//!   shape of Nox's (and aqua-lib's) `Interface`: `{"function_signatures": [{"name":
//!   "greet", "arguments": [["name", "string"]], "output_types": ["string"]}],
//!   "record_types": [{"name": "Point", "id": 0, "fields": [["x", "i32"]]}]}`, types
//!   in Aqua's notation (`string`, `u32`, `[]string`, `?u8`, a record's name).
//!
//! `srv.get_interface` and `dist.get_module_interface` answer what it says (read once
//! per loaded module, under the runner policy); a module without it answers them with
//! an error saying so, since nothing else in the ABI tells a module's functions.
//!
//! The instance is dropped after each call, so nothing needs freeing. The crate
//! `services/example` is an example service written in Rust.
//!
//! A service is one module: the ABI has no imports, so modules cannot call each
//! other, and a blueprint of several modules is refused (`dist.add_blueprint`) rather
//! than run as something it is not; code shared by services is linked when the module
//! is built (a Rust crate is a dependency of the service's crate).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wasmtime::{
    Config, Engine, Instance, InstancePre, Linker, Memory, Module, Store, Trap, TypedFunc,
};

use crate::backend::{EPOCH_TICK, Limiter, put, start_epoch_ticker, take};
use crate::error::HostError;
use crate::node::Node;
use crate::services::{ServiceCall, ServiceError, ServiceResult};

/// A Wasm service in a node's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmServiceConfig {
    /// The service id scripts call it by.
    pub id: String,
    /// The module file.
    pub module: PathBuf,
    /// What it may do.
    #[serde(default)]
    pub policy: RunnerPolicy,
}

/// Whether, and how, a node runs a Wasm service.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunnerPolicy {
    /// Whether it runs at all; a disabled service answers every call with an error.
    pub enabled: bool,
    /// The most linear memory an instance may have, bytes.
    pub memory_bytes: usize,
    /// Fuel per call: roughly the number of Wasm instructions it may execute.
    pub fuel: u64,
    /// Wall time per call, ms (the fuel limit usually comes first).
    pub timeout_ms: u64,
    /// The init peers whose particles may call it; absent: every peer.
    pub allowed_init_peers: Option<Vec<String>>,
}

impl Default for RunnerPolicy {
    /// Enabled for everyone, 64 MiB, a billion units of fuel, 10 s.
    fn default() -> Self {
        Self {
            enabled: true,
            memory_bytes: 64 << 20,
            fuel: 1_000_000_000,
            timeout_ms: 10_000,
            allowed_init_peers: None,
        }
    }
}

/// The optional export that describes a module's functions.
const INTERFACE_EXPORT: &str = "braid_service_interface";

/// A compiled Wasm service with its policy.
pub struct WasmService {
    id: String,
    engine: Engine,
    pre: InstancePre<Limiter>,
    policy: RunnerPolicy,
    /// Whether it exports [`INTERFACE_EXPORT`].
    describes_itself: bool,
    /// Its interface, once asked for.
    interface: OnceLock<Result<Value, ServiceError>>,
}

/// A module's interface: Nox's `Interface` (aqua-lib's `builtin.aqua`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Interface {
    function_signatures: Vec<FunctionSignature>,
    #[serde(default)]
    record_types: Vec<RecordType>,
}

/// One function: its name, its arguments as `[name, type]`, its result types.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionSignature {
    name: String,
    arguments: Vec<(String, String)>,
    output_types: Vec<String>,
}

/// A record type the functions use: fields as `[name, type]`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordType {
    name: String,
    id: u64,
    fields: Vec<(String, String)>,
}

/// The largest interface description read, bytes.
const MAX_INTERFACE_BYTES: usize = 1 << 20;

impl std::fmt::Debug for WasmService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmService")
            .field("id", &self.id)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl WasmService {
    /// Reads and compiles the module named in `config`.
    pub fn load(config: &WasmServiceConfig) -> Result<Self, HostError> {
        let bytes = std::fs::read(&config.module).map_err(|e| {
            HostError::Config(format!(
                "service {}: cannot read {}: {e}",
                config.id,
                config.module.display()
            ))
        })?;
        Self::from_bytes(&config.id, &bytes, config.policy.clone())
    }

    /// Compiles a module given as bytes (binary Wasm).
    pub fn from_bytes(id: &str, module: &[u8], policy: RunnerPolicy) -> Result<Self, HostError> {
        let bad = |what: String| HostError::Config(format!("service {id}: {what}"));
        let engine = service_engine().map_err(|e| bad(e.clone()))?;
        let module =
            Module::new(&engine, module).map_err(|e| bad(format!("not a Wasm module: {e}")))?;
        if let Some(import) = module.imports().next() {
            return Err(bad(format!(
                "imports {}.{}; services may import nothing",
                import.module(),
                import.name()
            )));
        }
        for (name, what) in [
            ("memory", "a memory"),
            ("braid_service_alloc", "a function"),
            ("braid_service_call", "a function"),
        ] {
            if module.get_export(name).is_none() {
                return Err(bad(format!("does not export {what} `{name}`")));
            }
        }
        let describes_itself = match module.get_export(INTERFACE_EXPORT) {
            None => false,
            Some(wasmtime::ExternType::Func(f))
                if f.params().len() == 0
                    && matches!(
                        f.results().collect::<Vec<_>>().as_slice(),
                        [wasmtime::ValType::I64]
                    ) =>
            {
                true
            }
            Some(_) => {
                return Err(bad(format!(
                    "exports `{INTERFACE_EXPORT}`, but not as a function () -> i64"
                )));
            }
        };
        let pre = Linker::new(&engine)
            .instantiate_pre(&module)
            .map_err(|e| bad(format!("cannot link: {e}")))?;
        Ok(Self {
            id: id.to_owned(),
            engine,
            pre,
            policy,
            describes_itself,
            interface: OnceLock::new(),
        })
    }

    /// Whether the module describes its functions (exports `braid_service_interface`).
    pub(crate) fn describes_itself(&self) -> bool {
        self.describes_itself
    }

    /// What the module says of its functions, in Nox's `Interface` shape (blocking: the
    /// first time, it runs the module's `braid_service_interface` under the policy).
    pub(crate) fn interface(&self) -> Result<Value, ServiceError> {
        self.interface.get_or_init(|| self.read_interface()).clone()
    }

    fn read_interface(&self) -> Result<Value, ServiceError> {
        let id = &self.id;
        if !self.describes_itself {
            return Err(ServiceError::new(format!(
                "service {id} does not describe its functions (its module exports no `{INTERFACE_EXPORT}`)"
            )));
        }
        let text = self.sandboxed(|store, instance, memory| {
            let describe: TypedFunc<(), u64> =
                instance.get_typed_func(&mut *store, INTERFACE_EXPORT)?;
            let packed = describe.call(&mut *store, ())?;
            if (packed & 0xffff_ffff) as usize > MAX_INTERFACE_BYTES {
                wasmtime::bail!("its interface is over {MAX_INTERFACE_BYTES} bytes");
            }
            take(store, memory, packed)
        })?;
        let interface: Interface = serde_json::from_slice(&text).map_err(|e| {
            ServiceError::new(format!(
                "service {id}: `{INTERFACE_EXPORT}` gave no interface ({{\"function_signatures\": [{{\"name\", \"arguments\", \"output_types\"}}], \"record_types\": [...]}}): {e}"
            ))
        })?;
        serde_json::to_value(&interface)
            .map_err(|e| ServiceError::new(format!("service {id}: {e}")))
    }

    /// The service id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Registers the service on `node` under its id; calls run on tokio's blocking
    /// threads.
    pub fn register(self: Arc<Self>, node: &Node) {
        let id = self.id.clone();
        node.register_service(id, move |call| {
            let service = Arc::clone(&self);
            async move {
                tokio::task::spawn_blocking(move || service.call(&call))
                    .await
                    .unwrap_or_else(|e| {
                        Err(ServiceError::new(format!("the service call failed: {e}")))
                    })
            }
        });
    }

    /// Runs one call under the policy (blocking).
    pub fn call(&self, call: &ServiceCall) -> ServiceResult {
        let id = &self.id;
        if !self.policy.enabled {
            return Err(ServiceError::new(format!(
                "service {id} is disabled by this node's runner policy"
            )));
        }
        if let Some(allowed) = &self.policy.allowed_init_peers {
            let init = &call.particle.init_peer_id;
            if !allowed.iter().any(|p| p == init) {
                return Err(ServiceError::new(format!(
                    "service {id} may not run for init peer {init} (runner policy)"
                )));
            }
        }
        let args = Value::Array(call.args.clone()).to_string();
        let answer = self.run(&call.function_name, args.as_bytes())?;
        let answer: Value = serde_json::from_slice(&answer).map_err(|e| {
            ServiceError::new(format!(
                "service {id} answered something that is not JSON: {e}"
            ))
        })?;
        match answer {
            Value::Object(mut o) if o.len() == 1 && o.contains_key("ok") => {
                Ok(o.remove("ok").unwrap_or_default())
            }
            Value::Object(mut o) if o.len() == 1 && o.contains_key("error") => {
                Err(ServiceError(o.remove("error").unwrap_or_default()))
            }
            _ => Err(ServiceError::new(format!(
                "service {id} answered neither {{\"ok\": …}} nor {{\"error\": …}}"
            ))),
        }
    }

    fn run(&self, function: &str, args: &[u8]) -> Result<Vec<u8>, ServiceError> {
        self.sandboxed(|store, instance, memory| {
            let alloc: TypedFunc<u32, u32> =
                instance.get_typed_func(&mut *store, "braid_service_alloc")?;
            let call: TypedFunc<(u32, u32, u32, u32), u64> =
                instance.get_typed_func(&mut *store, "braid_service_call")?;
            let (name_ptr, name_len) = put(store, memory, &alloc, function.as_bytes())?;
            let (args_ptr, args_len) = put(store, memory, &alloc, args)?;
            let packed = call.call(&mut *store, (name_ptr, name_len, args_ptr, args_len))?;
            take(store, memory, packed)
        })
    }

    /// Runs `body` on a fresh instance under the policy's memory, fuel and time.
    fn sandboxed(
        &self,
        body: impl FnOnce(&mut Store<Limiter>, &Instance, Memory) -> wasmtime::Result<Vec<u8>>,
    ) -> Result<Vec<u8>, ServiceError> {
        let policy = &self.policy;
        let mut store = Store::new(&self.engine, Limiter::new(policy.memory_bytes));
        store.limiter(|limiter| limiter);
        let ticks = policy.timeout_ms / EPOCH_TICK.as_millis() as u64 + 1;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        let ran = store.set_fuel(policy.fuel).and_then(|()| {
            let instance = self.pre.instantiate(&mut store)?;
            let memory = instance
                .get_memory(&mut store, "memory")
                .ok_or_else(|| wasmtime::format_err!("`memory` is not a memory"))?;
            body(&mut store, &instance, memory)
        });
        ran.map_err(|e| {
            let id = &self.id;
            if store.data().refused() {
                return ServiceError::new(format!(
                    "service {id} ran out of memory (limit {} bytes)",
                    policy.memory_bytes
                ));
            }
            ServiceError::new(match e.downcast_ref::<Trap>() {
                Some(Trap::OutOfFuel) => {
                    format!("service {id} ran out of fuel (limit {})", policy.fuel)
                }
                Some(Trap::Interrupt) => format!(
                    "service {id} ran past its timeout of {:?}",
                    Duration::from_millis(policy.timeout_ms)
                ),
                Some(trap) => format!("service {id} trapped: {trap}"),
                None => format!("service {id} failed: {e:#}"),
            })
        })
    }
}

/// The engine of every Wasm service in the process: fuel and epochs on.
fn service_engine() -> Result<Engine, String> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = Config::new();
            config.consume_fuel(true).epoch_interruption(true);
            let engine =
                Engine::new(&config).map_err(|e| format!("cannot configure wasmtime: {e}"))?;
            start_epoch_ticker(&engine).map_err(|e| e.to_string())?;
            Ok(engine)
        })
        .clone()
}
