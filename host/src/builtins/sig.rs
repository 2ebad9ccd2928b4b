//! `sig`: signatures with the key of the scope the call runs in, as Nox gives them: the
//! node's own key on the host, a worker's key in a particle running as that worker.
//!
//! `sign(data)` answers only particles started by the scope itself (the host, or the
//! worker), or on the host by its owner (the management peer), and signs only bytes
//! that came, whole, from `registry.get_record_bytes` or
//! `registry.get_record_metadata_bytes` on this node (the host or the scope: the
//! argument's tetraplet says so): a key never signs what a script made up. Its answer
//! is Nox's `SignResult` (`{success, error: [message]?, signature: [bytes]?}`).
//! `verify(signature, data)` checks against the scope's key; `get_peer_id` is the
//! scope's id.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde_json::{Value, json};

use super::Builtins;
use super::pure::bytes_arg;
use crate::identity::NodeKey;
use crate::services::{ServiceCall, ServiceError, ServiceResult};

pub(crate) fn call(b: &Builtins, call: &ServiceCall) -> ServiceResult {
    // Particles run only as the host or one of its workers; a worker removed while its
    // particle still runs has no key left to use.
    let key = b.spells.scope_key(call).ok_or_else(|| {
        ServiceError::new(format!(
            "worker {} is gone; its key is no more",
            call.particle.host_id
        ))
    })?;
    match call.function_name.as_str() {
        "sign" => sign(b, &key, call),
        "verify" => {
            let signature = bytes_arg(&call.args, 0, "signature")?;
            let data = bytes_arg(&call.args, 1, "data")?;
            let Ok(signature) = Signature::from_slice(&signature) else {
                return Ok(json!(false));
            };
            let Ok(key) = VerifyingKey::from_bytes(key.public()) else {
                return Err(ServiceError::new(
                    "internal error, please report: the scope's public key is invalid",
                ));
            };
            Ok(json!(key.verify(&data, &signature).is_ok()))
        }
        "get_peer_id" => Ok(json!(key.peer_id())),
        other => Err(ServiceError::new(format!(
            "internal error, please report: sig.{other} is listed but not built"
        ))),
    }
}

fn sign(b: &Builtins, key: &NodeKey, call: &ServiceCall) -> ServiceResult {
    let init = &call.particle.init_peer_id;
    let host = b.key.peer_id();
    let scope = key.peer_id();
    let management = scope == host && b.owner.as_deref() == Some(init.as_str());
    if init != scope && !management {
        return Err(ServiceError::new(format!(
            "peer '{init}' is not allowed to sign data on '{scope}'"
        )));
    }
    let signed = (|| {
        let data = bytes_arg(&call.args, 0, "data")?;
        match call.tetraplets.first().map(Vec::as_slice) {
            Some([t]) => {
                if t.peer_pk != host && t.peer_pk != scope {
                    return Err(ServiceError::new(format!(
                        "data is expected to be produced by service 'registry' on peer '{scope}', was from peer '{}'",
                        t.peer_pk
                    )));
                }
                let duplet = (t.service_id.as_str(), t.function_name.as_str());
                if duplet != ("registry", "get_record_bytes")
                    && duplet != ("registry", "get_record_metadata_bytes")
                {
                    return Err(ServiceError::new(format!(
                        "data is expected to result from a call to 'registry.get_record_bytes' or 'registry.get_record_metadata_bytes', was from '{}.{}'",
                        t.service_id, t.function_name
                    )));
                }
                if !t.lens.is_empty() {
                    return Err(ServiceError::new(
                        "lens for data tetraplet is expected to be empty",
                    ));
                }
            }
            other => {
                return Err(ServiceError::new(format!(
                    "expected tetraplet for a scalar argument, got {} tetraplets",
                    other.map_or(0, <[_]>::len)
                )));
            }
        }
        let key = SigningKey::from_bytes(key.secret());
        Ok(key.sign(&data).to_bytes().to_vec())
    })();
    Ok(match signed {
        Ok(signature) => json!({"success": true, "error": [], "signature": [signature]}),
        Err(ServiceError(message)) => {
            json!({"success": false, "error": [message], "signature": Value::Array(vec![])})
        }
    })
}
