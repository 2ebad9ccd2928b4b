//! [`Snapshot`]: what a peer persists of a particle so that it can finish it after a
//! restart — its data and the calls then in flight — and its byte form.

use std::sync::Arc;

use braid_interpreter::{CallRequest, Tetraplet};
use serde::{Deserialize, Serialize};

/// The version of [`Snapshot::encode`]'s format.
const FORMAT: u32 = 1;

/// A particle's state on a peer after an invoke: enough to go on after a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The particle's data as of the invoke.
    pub data: Arc<Vec<u8>>,
    /// The calls in flight after it, by increasing id: asked for again on restore.
    /// Shared with the machine that keeps them in flight.
    pub calls: Vec<Arc<CallRequest>>,
}

/// Bytes that are not a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Not the MessagePack layout of a snapshot.
    #[error("not a particle snapshot: {0}")]
    Malformed(String),
    /// A snapshot of another format version.
    #[error("particle snapshot of format {found}; this peer reads format {FORMAT}")]
    Version {
        /// The version found.
        found: u32,
    },
}

/// The wire layout: `[format, data, [[id, service, function, arguments, tetraplets]…]]`.
#[derive(Serialize, Deserialize)]
struct Layout<'a, C> {
    format: u32,
    #[serde(with = "serde_bytes")]
    data: &'a [u8],
    calls: Vec<C>,
}

type TetrapletLayout = (String, String, String, String);

#[derive(Deserialize)]
struct CallLayout(u32, String, String, String, Vec<Vec<TetrapletLayout>>);

/// [`CallLayout`] borrowed from the requests: encoding copies no arguments.
#[derive(Serialize)]
struct CallLayoutRef<'a>(
    u32,
    &'a str,
    &'a str,
    &'a str,
    Vec<Vec<(&'a str, &'a str, &'a str, &'a str)>>,
);

impl Snapshot {
    /// The byte form (MessagePack, versioned).
    pub fn encode(&self) -> Vec<u8> {
        let layout = Layout {
            format: FORMAT,
            data: &self.data,
            calls: self
                .calls
                .iter()
                .map(|c| {
                    CallLayoutRef(
                        c.id,
                        &c.service_id,
                        &c.function_name,
                        &c.arguments,
                        c.tetraplets
                            .iter()
                            .map(|arg| {
                                arg.iter()
                                    .map(|t| {
                                        (
                                            t.peer_pk.as_str(),
                                            t.service_id.as_str(),
                                            t.function_name.as_str(),
                                            t.lens.as_str(),
                                        )
                                    })
                                    .collect()
                            })
                            .collect(),
                    )
                })
                .collect(),
        };
        // Invariant: a struct of integers, bytes and strings always serializes.
        rmp_serde::to_vec(&layout).expect("a snapshot serializes")
    }

    /// Reads [`Snapshot::encode`]'s form.
    pub fn decode(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
        let layout: Layout<'_, CallLayout> =
            rmp_serde::from_slice(bytes).map_err(|e| SnapshotError::Malformed(e.to_string()))?;
        if layout.format != FORMAT {
            return Err(SnapshotError::Version {
                found: layout.format,
            });
        }
        Ok(Snapshot {
            data: Arc::new(layout.data.to_vec()),
            calls: layout
                .calls
                .into_iter()
                .map(
                    |CallLayout(id, service_id, function_name, arguments, tetraplets)| {
                        Arc::new(CallRequest {
                            id,
                            service_id,
                            function_name,
                            arguments,
                            tetraplets: tetraplets
                                .into_iter()
                                .map(|arg| {
                                    arg.into_iter()
                                        .map(|(peer_pk, service_id, function_name, lens)| {
                                            Tetraplet {
                                                peer_pk,
                                                service_id,
                                                function_name,
                                                lens,
                                            }
                                        })
                                        .collect()
                                })
                                .collect(),
                        })
                    },
                )
                .collect(),
        })
    }
}
