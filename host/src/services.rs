//! Services: what a `call` on this node reaches. Consulted in order: the built-ins
//! (`builtins.rs`, and the client conventions of particles this node started), the
//! services the embedding program registered, then "service not found" in the reference
//! hosts' form.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

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

/// The services registered by the embedding program, by service id.
#[derive(Default, Clone)]
pub(crate) struct Registry {
    services: Arc<RwLock<HashMap<String, ServiceFn>>>,
}

impl Registry {
    pub(crate) fn register(&self, service_id: String, service: ServiceFn) {
        // Invariant: no code panics while holding this lock (insert and clone only).
        self.services
            .write()
            .expect("the registry lock is never poisoned")
            .insert(service_id, service);
    }

    pub(crate) fn remove(&self, service_id: &str) -> bool {
        self.services
            .write()
            .expect("the registry lock is never poisoned")
            .remove(service_id)
            .is_some()
    }

    pub(crate) fn find(&self, service_id: &str) -> Option<ServiceFn> {
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
}
