//! Interpreter backends: where `invoke` runs. [`NativeBackend`] calls the interpreter
//! in the host process; [`WasmBackend`] runs braid's interpreter compiled to
//! `wasm32-unknown-unknown` (the `braid-wasm` crate, built by `host/build.rs`) under
//! wasmtime, sandboxed and metered: each invoke gets a fresh instance (from a pooled
//! slot, its memory reset copy-on-write), a memory limit and a deadline, so that a
//! trap, running out of memory or an endless loop fails that invoke alone and never
//! the next one.
//!
//! Both give the same [`Outcome`] for the same inputs, byte for byte (the
//! conformance tests check every scenario with both).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use braid_interpreter::{CallResults, LimitFlags, Outcome, RunParams, SignatureCache};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Memory, Module,
    PoolingAllocationConfig, ResourceLimiter, Store, Trap, TypedFunc,
};

/// Runs invocations.
pub trait Backend: Send + Sync + 'static {
    /// A short name for logs and reports (`native`, `wasm`).
    fn name(&self) -> &'static str;

    /// Runs one invocation. An `Err` means the invocation did not run to its end (the
    /// sandbox stopped it); the interpreter's own errors are in the outcome.
    fn invoke(
        &self,
        script: &str,
        prev_data: &[u8],
        data: &[u8],
        params: &RunParams,
        results: &CallResults,
    ) -> Result<Outcome, BackendError>;

    /// [`Self::invoke`] with the node's set of signatures already checked, which a
    /// backend may use to skip verifying them again (the outcome is the same). The
    /// default ignores it.
    fn invoke_with_cache(
        &self,
        script: &str,
        prev_data: &[u8],
        data: &[u8],
        params: &RunParams,
        results: &CallResults,
        signatures: &dyn SignatureCache,
    ) -> Result<Outcome, BackendError> {
        let _ = signatures;
        self.invoke(script, prev_data, data, params, results)
    }
}

/// Why a backend could not run an invocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The Wasm module was not built or cannot be compiled.
    #[error("the interpreter's Wasm module is unavailable: {0}")]
    Unavailable(String),
    /// The module trapped.
    #[error("the interpreter module trapped: {0}")]
    Trap(String),
    /// The module needed more memory than its limit.
    #[error("the interpreter module ran out of memory (limit {limit_bytes} bytes)")]
    OutOfMemory {
        /// The limit.
        limit_bytes: usize,
    },
    /// The module ran past its deadline.
    #[error("the interpreter module ran past its deadline of {0:?}")]
    Deadline(Duration),
    /// The module broke the ABI (a bad pointer, undecodable output).
    #[error("the interpreter module broke its ABI: {0}")]
    Abi(String),
    /// The native interpreter panicked (a bug; the log has the details).
    #[error("the interpreter panicked")]
    Panic,
}

/// The interpreter in this process.
#[derive(Debug, Default, Clone, Copy)]
pub struct NativeBackend;

impl Backend for NativeBackend {
    fn name(&self) -> &'static str {
        "native"
    }

    fn invoke(
        &self,
        script: &str,
        prev_data: &[u8],
        data: &[u8],
        params: &RunParams,
        results: &CallResults,
    ) -> Result<Outcome, BackendError> {
        Ok(braid_interpreter::invoke(
            script, prev_data, data, params, results,
        ))
    }

    fn invoke_with_cache(
        &self,
        script: &str,
        prev_data: &[u8],
        data: &[u8],
        params: &RunParams,
        results: &CallResults,
        signatures: &dyn SignatureCache,
    ) -> Result<Outcome, BackendError> {
        Ok(braid_interpreter::invoke_with_cache(
            script, prev_data, data, params, results, signatures,
        ))
    }
}

/// The limits of one invocation in the Wasm backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WasmLimits {
    /// The most linear memory the module may grow to, in bytes (at most 4 GiB).
    pub memory_bytes: usize,
    /// Wall time after which the invocation is interrupted (measured in epochs of
    /// [`EPOCH_TICK`], so it ends up to one tick later).
    pub deadline: Duration,
}

impl Default for WasmLimits {
    /// 2 GiB and 60 s: room for the reference's largest particles (64 MiB of data,
    /// several copies while merging) and a generous time for the slowest scripts.
    fn default() -> Self {
        Self {
            memory_bytes: 2 << 30,
            deadline: Duration::from_secs(60),
        }
    }
}

/// How often the epoch advances: the granularity of Wasm deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The deepest Wasm call stack, in bytes. The interpreter recurses as deep as a
/// script nests. Invoke the Wasm backend on a thread with a bigger stack than this: the
/// node's invoke threads and the scenario driver's thread have 256 MiB.
const MAX_WASM_STACK: usize = 192 << 20;

/// A misbehaviour the next invoke of a [`WasmBackend`] performs instead of its work,
/// through the module's `braid_test_fault` hook: for tests of containment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Execute `unreachable`.
    Trap = 1,
    /// Allocate until memory runs out.
    OutOfMemory = 2,
    /// Loop forever.
    EndlessLoop = 3,
}

/// The interpreter as a Wasm module under wasmtime.
pub struct WasmBackend {
    engine: Engine,
    pre: InstancePre<Limiter>,
    limits: WasmLimits,
    /// The fault to inject into the next invoke (0: none).
    fault: AtomicU32,
}

impl std::fmt::Debug for WasmBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmBackend")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The checkout whose sources the module built with the host was built from (a target
/// folder shared by several checkouts can hold another one's module; tests check it).
#[doc(hidden)]
pub const WASM_MODULE_SOURCE: &str = env!("BRAID_WASM_MODULE_SOURCE");

/// The interpreter module built with the host (see `host/build.rs`).
static MODULE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/braid_interpreter.wasm"));

impl WasmBackend {
    /// The backend with the module built with the host.
    pub fn new(limits: WasmLimits) -> Result<Self, BackendError> {
        if MODULE.is_empty() {
            return Err(BackendError::Unavailable(
                env!("BRAID_WASM_MODULE_STATUS").to_owned(),
            ));
        }
        Self::with_module(MODULE, limits)
    }

    /// The backend with another build of the module (same ABI, see `braid-wasm`).
    pub fn with_module(module: &[u8], limits: WasmLimits) -> Result<Self, BackendError> {
        let engine = shared_engine(limits.memory_bytes)?;
        let module = Module::new(&engine, module)
            .map_err(|e| BackendError::Unavailable(format!("cannot compile the module: {e}")))?;
        if module.imports().len() != 0 {
            return Err(BackendError::Unavailable(
                "the module has imports; braid's interpreter module has none".to_owned(),
            ));
        }
        let pre = Linker::new(&engine)
            .instantiate_pre(&module)
            .map_err(|e| BackendError::Unavailable(format!("cannot link the module: {e}")))?;
        Ok(Self {
            engine,
            pre,
            limits,
            fault: AtomicU32::new(0),
        })
    }

    /// The limits of each invoke.
    pub fn limits(&self) -> WasmLimits {
        self.limits
    }

    /// Makes the next invoke misbehave as `fault` instead of running (a test hook:
    /// the invoke after it runs normally).
    pub fn inject_fault(&self, fault: Fault) {
        self.fault.store(fault as u32, Ordering::SeqCst);
    }

    fn run(&self, input: &[u8]) -> Result<Vec<u8>, BackendError> {
        let mut store = Store::new(&self.engine, Limiter::new(self.limits.memory_bytes));
        store.limiter(|limiter| limiter);
        let ticks = self.limits.deadline.as_millis() / EPOCH_TICK.as_millis() + 1;
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        store.epoch_deadline_trap();
        let ran = (|| {
            let instance = self.pre.instantiate(&mut store)?;
            let fault = self.fault.swap(0, Ordering::SeqCst);
            if fault != 0 {
                let hook: TypedFunc<u32, ()> =
                    instance.get_typed_func(&mut store, "braid_test_fault")?;
                hook.call(&mut store, fault)?;
            }
            let memory = instance
                .get_memory(&mut store, "memory")
                .ok_or_else(|| wasmtime::format_err!("the module exports no memory"))?;
            let alloc: TypedFunc<u32, u32> = instance.get_typed_func(&mut store, "braid_alloc")?;
            let invoke: TypedFunc<(u32, u32), u64> =
                instance.get_typed_func(&mut store, "braid_invoke")?;
            let (ptr, len) = put(&mut store, memory, &alloc, input)?;
            let packed = invoke.call(&mut store, (ptr, len))?;
            take(&store, memory, packed)
        })();
        ran.map_err(|e| self.classify(&e, store.data().refused()))
    }

    fn classify(&self, error: &wasmtime::Error, refused_memory: bool) -> BackendError {
        if refused_memory {
            return BackendError::OutOfMemory {
                limit_bytes: self.limits.memory_bytes,
            };
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => BackendError::Deadline(self.limits.deadline),
            Some(trap) => BackendError::Trap(trap.to_string()),
            None => BackendError::Abi(format!("{error:#}")),
        }
    }
}

impl Backend for WasmBackend {
    fn name(&self) -> &'static str {
        "wasm"
    }

    fn invoke(
        &self,
        script: &str,
        prev_data: &[u8],
        data: &[u8],
        params: &RunParams,
        results: &CallResults,
    ) -> Result<Outcome, BackendError> {
        let input = braid_wasm::encode_input(script, prev_data, data, params, results);
        let bytes = self.run(&input)?;
        let mut output = braid_wasm::Output::decode(&bytes)
            .map_err(|e| BackendError::Abi(format!("the output does not decode: {e}")))?;
        let call_requests = output.take_call_requests();
        let (air_size, particle_size, call_result_size) = output.limits_exceeded;
        Ok(Outcome::reported(
            output.data,
            call_requests,
            output.next_peers,
            output.ret_code,
            output.error_message,
            LimitFlags {
                air_size,
                particle_size,
                call_result_size,
            },
        ))
    }
}

/// Copies `bytes` into a buffer the module reserves with `alloc`; returns where.
pub(crate) fn put<T: 'static>(
    store: &mut Store<T>,
    memory: Memory,
    alloc: &TypedFunc<u32, u32>,
    bytes: &[u8],
) -> wasmtime::Result<(u32, u32)> {
    let len =
        u32::try_from(bytes.len()).map_err(|_| wasmtime::format_err!("the input is over 4 GiB"))?;
    let ptr = alloc.call(&mut *store, len)?;
    memory.write(&mut *store, ptr as usize, bytes)?;
    Ok((ptr, len))
}

/// The bytes a module returned as `(ptr << 32) | len`.
pub(crate) fn take<T: 'static>(
    store: &Store<T>,
    memory: Memory,
    packed: u64,
) -> wasmtime::Result<Vec<u8>> {
    let (ptr, len) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
    Ok(memory
        .data(store)
        .get(ptr..ptr + len)
        .ok_or_else(|| wasmtime::format_err!("the module's answer lies outside its memory"))?
        .to_vec())
}

/// Counts memory growth against the limit and remembers a refusal, which tells an
/// out-of-memory trap from others.
pub(crate) struct Limiter {
    limit: usize,
    refused: bool,
}

impl Limiter {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            refused: false,
        }
    }

    /// Whether a memory growth was refused.
    pub(crate) fn refused(&self) -> bool {
        self.refused
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.limit;
        self.refused |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 16)
    }
}

/// One engine per memory limit, shared by every backend of that limit in the process,
/// with a thread advancing its epoch every [`EPOCH_TICK`] while it lives.
fn shared_engine(memory_bytes: usize) -> Result<Engine, BackendError> {
    static ENGINES: OnceLock<std::sync::Mutex<Vec<(usize, Engine)>>> = OnceLock::new();
    let engines = ENGINES.get_or_init(Default::default);
    // Invariant: nothing panics while the lock is held (lookups and a push).
    let mut engines = engines.lock().expect("the engine table is never poisoned");
    if let Some((_, engine)) = engines.iter().find(|(m, _)| *m == memory_bytes) {
        return Ok(engine.clone());
    }
    let engine = new_engine(memory_bytes)?;
    start_epoch_ticker(&engine)?;
    engines.push((memory_bytes, engine.clone()));
    Ok(engine)
}

/// Starts a thread that advances `engine`'s epoch every [`EPOCH_TICK`] while the engine
/// lives.
pub(crate) fn start_epoch_ticker(engine: &Engine) -> Result<(), BackendError> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("braid-wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map(drop)
        .map_err(|e| BackendError::Unavailable(format!("cannot start the epoch thread: {e}")))
}

fn new_engine(memory_bytes: usize) -> Result<Engine, BackendError> {
    let slots = u32::try_from(std::thread::available_parallelism().map_or(4, usize::from) * 4)
        .unwrap_or(64);
    let mut pooling = PoolingAllocationConfig::new();
    pooling
        .total_memories(slots)
        .total_tables(slots)
        .total_core_instances(slots)
        .max_memory_size(memory_bytes);
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        // Not used (no async execution), but wasmtime wants it at least as big.
        .async_stack_size(MAX_WASM_STACK + (16 << 20))
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    Engine::new(&config)
        .or_else(|_| {
            // No room for the pool's reservations (a small address-space limit): fall
            // back to allocating each instance on demand.
            config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
            Engine::new(&config)
        })
        .map_err(|e| BackendError::Unavailable(format!("cannot configure wasmtime: {e}")))
}

/// An `Arc` of a backend, chosen by name: `native` or `wasm` (default limits).
pub fn backend_by_name(name: &str) -> Result<Arc<dyn Backend>, BackendError> {
    match name {
        "native" => Ok(Arc::new(NativeBackend)),
        "wasm" => Ok(Arc::new(WasmBackend::new(WasmLimits::default())?)),
        other => Err(BackendError::Unavailable(format!(
            "unknown backend `{other}` (native or wasm)"
        ))),
    }
}
