//! Services: what a `call` on this node reaches. Consulted in order: the client
//! conventions of particles this node started, the built-ins (`builtins.rs`), the
//! services the embedding program registered (each behind its [`Access`] rule), the
//! services deployed with `srv.create`, then "service not found" in the reference hosts'
//! form. Calls in flight are bounded per init peer ([`Quotas`]).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};

use braid_interpreter::{CallResult, Tetraplet};
use serde_json::Value;

/// A boxed future, as services return them.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What a service answers: a JSON value, or an error.
pub type ServiceResult = Result<Value, ServiceError>;

/// One call a script made on this node.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceCall {
    /// Service id.
    pub service_id: String,
    /// Function name.
    pub function_name: String,
    /// The evaluated arguments.
    pub args: Vec<Value>,
    /// Where each argument came from: one list of tetraplets per argument.
    pub tetraplets: Vec<Vec<Tetraplet>>,
    /// The particle that made the call.
    pub particle: ParticleContext,
}

/// The particle a call belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticleContext {
    /// Particle id.
    pub id: String,
    /// The init peer.
    pub init_peer_id: String,
    /// Creation time, ms since the epoch.
    pub timestamp: u64,
    /// Time to live, ms.
    pub ttl: u32,
    /// The peer id of the node running the call.
    pub host_id: String,
}

/// A service's failure. Its value reaches the script as the error message (as JSON
/// text, so a string arrives quoted, as with the reference hosts).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceError(pub Value);

impl ServiceError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        ServiceError(Value::String(message.into()))
    }
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Value::String(s) => f.write_str(s),
            other => write!(f, "{other}"),
        }
    }
}

impl std::error::Error for ServiceError {}

/// The interpreter's form of a service answer: `ret_code` 0 and the JSON text, or
/// `ret_code` 1 and the JSON text of the error (the reference hosts' mapping).
pub(crate) fn to_call_result(result: &ServiceResult) -> CallResult {
    match result {
        Ok(value) => CallResult::ok(value.to_string()),
        Err(ServiceError(value)) => CallResult::error(1, value.to_string()),
    }
}

/// The reference hosts' answer to a call nobody serves.
pub(crate) fn not_found(service_id: &str, function_name: &str) -> ServiceError {
    ServiceError::new(format!(
        "Service with id '{service_id}' not found (function {function_name})"
    ))
}

/// A registered service: every function of one service id.
pub(crate) type ServiceFn = Arc<dyn Fn(ServiceCall) -> BoxFuture<ServiceResult> + Send + Sync>;

/// A rule of [`Access::Check`]: `Err` answers the call instead of the service.
pub type AccessCheck = Arc<dyn Fn(&ServiceCall) -> Result<(), ServiceError> + Send + Sync>;

/// Who may call a service the embedding program registers.
#[derive(Clone)]
#[non_exhaustive]
pub enum Access {
    /// Every particle.
    Anyone,
    /// Particles started by the node itself or its owner ([`crate::NodeConfig::owner`]),
    /// as Nox's guarded built-ins; others get Nox's refusal.
    HostAndOwner,
    /// Whatever this says: `Err` is the call's answer, and the service is not run.
    Check(AccessCheck),
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Access::Anyone => "Anyone",
            Access::HostAndOwner => "HostAndOwner",
            Access::Check(_) => "Check(..)",
        })
    }
}

impl Access {
    /// Whether `call` may run, on the node `host` owned by `owner`.
    pub(crate) fn allows(
        &self,
        call: &ServiceCall,
        host: &str,
        owner: Option<&str>,
    ) -> Result<(), ServiceError> {
        match self {
            Access::Anyone => Ok(()),
            Access::HostAndOwner => {
                let init = call.particle.init_peer_id.as_str();
                if init == host || owner == Some(init) {
                    Ok(())
                } else {
                    Err(ServiceError::new(crate::builtins::GUARD_MESSAGE))
                }
            }
            Access::Check(check) => check(call),
        }
    }
}

/// The services registered by the embedding program, by service id.
#[derive(Default, Clone)]
pub(crate) struct Registry {
    services: Arc<RwLock<HashMap<String, (ServiceFn, Access)>>>,
}

impl Registry {
    pub(crate) fn register(&self, service_id: String, service: ServiceFn, access: Access) {
        // Invariant: no code panics while holding this lock (insert and clone only).
        self.services
            .write()
            .expect("the registry lock is never poisoned")
            .insert(service_id, (service, access));
    }

    pub(crate) fn remove(&self, service_id: &str) -> bool {
        self.services
            .write()
            .expect("the registry lock is never poisoned")
            .remove(service_id)
            .is_some()
    }

    pub(crate) fn find(&self, service_id: &str) -> Option<(ServiceFn, Access)> {
        self.services
            .read()
            .expect("the registry lock is never poisoned")
            .get(service_id)
            .cloned()
    }
}

/// Boxes an async closure as a registered service.
pub(crate) fn boxed<F, Fut>(f: F) -> ServiceFn
where
    F: Fn(ServiceCall) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ServiceResult> + Send + 'static,
{
    Arc::new(move |call| Box::pin(f(call)))
}

/// Calls in flight per init peer, bounded: one peer's particles cannot take every call
/// slot of the node.
pub(crate) struct Quotas {
    limit: usize,
    in_flight: Mutex<HashMap<String, usize>>,
}

impl Quotas {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Quotas {
            limit: limit.max(1),
            in_flight: Mutex::new(HashMap::new()),
        })
    }

    /// A turn for one more call of `init_peer_id`'s particles, or the error that
    /// answers the call when that peer has `limit` in flight already.
    pub(crate) fn take(self: &Arc<Self>, init_peer_id: &str) -> Result<QuotaTurn, ServiceError> {
        let mut in_flight = self.lock();
        let n = in_flight.entry(init_peer_id.to_owned()).or_default();
        if *n >= self.limit {
            return Err(ServiceError::new(format!(
                "too many calls in flight for init peer {init_peer_id} on this node (at most {}); try again later",
                self.limit
            )));
        }
        *n += 1;
        Ok(QuotaTurn {
            quotas: Arc::clone(self),
            peer: init_peer_id.to_owned(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        // Invariant: nothing panics while holding this lock.
        self.in_flight
            .lock()
            .expect("the quota lock is never poisoned")
    }
}

/// One call's place in its init peer's quota, given back when dropped.
pub(crate) struct QuotaTurn {
    quotas: Arc<Quotas>,
    peer: String,
}

impl Drop for QuotaTurn {
    fn drop(&mut self) {
        let mut in_flight = self.quotas.lock();
        if let Some(n) = in_flight.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                in_flight.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_map_to_call_results_as_in_the_reference() {
        assert_eq!(
            to_call_result(&Ok(json!({"a": 1}))),
            CallResult::ok(r#"{"a":1}"#)
        );
        assert_eq!(
            to_call_result(&Err(not_found("s", "f"))),
            CallResult::error(1, r#""Service with id 's' not found (function f)""#)
        );
    }

    #[test]
    fn quotas_bound_calls_per_init_peer() {
        let quotas = Quotas::new(2);
        let a = quotas.take("a").unwrap();
        let _b = quotas.take("a").unwrap();
        assert!(quotas.take("a").is_err());
        let _other = quotas.take("b").unwrap();
        drop(a);
        assert!(quotas.take("a").is_ok());
    }
}
