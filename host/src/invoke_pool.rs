//! The threads that run `invoke`: a fixed number of plain threads with big stacks (the
//! interpreter recurses as deep as a script nests), fed by one bounded queue. Their
//! number bounds how many particles are interpreted at once on a node. Each runs its
//! invocations on the node's [`Backend`], with the node's set of signatures already
//! checked.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use braid_interpreter::{CallResults, RunParams};
use tokio::sync::{mpsc, oneshot};

use crate::backend::{Backend, BackendError};
use crate::error::HostError;
use crate::signature_cache::SignatureSet;
use braid_interpreter::Outcome;

/// The inputs of one invocation.
pub(crate) struct Job {
    pub(crate) script: Arc<str>,
    pub(crate) prev_data: Arc<Vec<u8>>,
    pub(crate) data: Arc<Vec<u8>>,
    pub(crate) params: RunParams,
    pub(crate) results: CallResults,
}

type Queued = (Job, oneshot::Sender<Result<Outcome, BackendError>>);

/// A handle to the pool; the threads end when the last handle is dropped.
#[derive(Clone)]
pub(crate) struct InvokePool {
    queue: mpsc::Sender<Queued>,
}

impl InvokePool {
    /// Starts `threads` threads with `stack_bytes` of stack each and a queue of
    /// `queue` jobs.
    pub(crate) fn start(
        name: &str,
        threads: usize,
        stack_bytes: usize,
        queue: usize,
        backend: Arc<dyn Backend>,
        signatures: Arc<SignatureSet>,
    ) -> Result<Self, HostError> {
        let (tx, rx) = mpsc::channel::<Queued>(queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            let backend = Arc::clone(&backend);
            let signatures = Arc::clone(&signatures);
            std::thread::Builder::new()
                .name(format!("{name}-invoke-{i}"))
                .stack_size(stack_bytes)
                .spawn(move || work(&rx, backend.as_ref(), &signatures))
                .map_err(|e| HostError::Config(format!("cannot start an invoke thread: {e}")))?;
        }
        Ok(Self { queue: tx })
    }

    /// Runs one invocation on a pool thread. Waits for a queue slot when the queue is
    /// full (and says so in the log).
    pub(crate) async fn invoke(&self, job: Job) -> Result<Outcome, HostError> {
        let (reply, answer) = oneshot::channel();
        match self.queue.try_send((job, reply)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(queued)) => {
                tracing::debug!("invoke queue full; waiting for a slot");
                self.queue
                    .send(queued)
                    .await
                    .map_err(|_| HostError::Stopped)?;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(HostError::Stopped),
        }
        answer
            .await
            .map_err(|_| HostError::Stopped)?
            .map_err(HostError::Backend)
    }
}

fn work(queue: &Mutex<mpsc::Receiver<Queued>>, backend: &dyn Backend, signatures: &SignatureSet) {
    loop {
        let next = {
            // Invariant: the lock is held only around `blocking_recv`, which does not panic
            // on a plain thread.
            let mut rx = queue.lock().expect("the queue lock is never poisoned");
            rx.blocking_recv()
        };
        let Some((job, reply)) = next else { return };
        let ran = catch_unwind(AssertUnwindSafe(|| {
            backend.invoke_with_cache(
                &job.script,
                &job.prev_data,
                &job.data,
                &job.params,
                &job.results,
                signatures,
            )
        }));
        let outcome = ran.unwrap_or_else(|_| {
            tracing::error!(
                particle_id = job.params.particle_id,
                "the interpreter panicked; please report this script and data"
            );
            Err(BackendError::Panic)
        });
        let _ = reply.send(outcome);
    }
}
