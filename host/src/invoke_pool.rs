//! The threads that run `invoke`: a fixed number of plain threads with big stacks (the
//! interpreter recurses as deep as a script nests), fed by one bounded queue. Their
//! number bounds how many particles are interpreted at once on a node. Each runs its
//! invocations on the node's [`Backend`], with the node's set of signatures already
//! checked.
//!
//! Invocations that are small and bounded (the native backend, no `fold`, shallow
//! nesting, a few KiB of script, data and results: their work is linear in those
//! bytes and takes well under a millisecond) run on the calling task instead: the
//! hand-off to a pool thread and back cost more CPU than such an invoke.

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
    /// The backend and signatures small invocations run with on the calling task;
    /// `None` when the backend is not the native one.
    inline: Option<(Arc<dyn Backend>, Arc<SignatureSet>)>,
}

/// Script, data and call results of an invocation run on the calling task, at most.
const INLINE_MAX_BYTES: usize = 8 << 10;

/// How deeply the script of an invocation run on the calling task may nest.
const INLINE_MAX_DEPTH: usize = 32;

/// Whether an invocation of `script` with `other_bytes` of data and results is small
/// and bounded enough to run on the calling task: without `fold` (whose iterations
/// multiply the work and nest), nesting at most [`INLINE_MAX_DEPTH`] deep (the task's
/// stack is small), and at most [`INLINE_MAX_BYTES`] in all.
fn runs_inline(script: &str, other_bytes: usize) -> bool {
    if script.len().saturating_add(other_bytes) > INLINE_MAX_BYTES || script.contains("fold") {
        return false;
    }
    let mut depth = 0usize;
    for byte in script.bytes() {
        match byte {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > INLINE_MAX_DEPTH {
                    return false;
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
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
        let inline = (backend.name() == "native").then_some((backend, signatures));
        Ok(Self { queue: tx, inline })
    }

    /// Runs one invocation on a pool thread. Waits for a queue slot when the queue is
    /// full (and says so in the log).
    pub(crate) async fn invoke(&self, job: Job) -> Result<Outcome, HostError> {
        if let Some((backend, signatures)) = &self.inline
            && runs_inline(
                &job.script,
                job.prev_data.len()
                    + job.data.len()
                    + job.results.values().map(|r| r.result.len()).sum::<usize>(),
            )
        {
            return run(&job, backend.as_ref(), signatures).map_err(HostError::Backend);
        }
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
        let _ = reply.send(run(&job, backend, signatures));
    }
}

/// Runs one invocation; a panic of the interpreter is an error, not the thread's end.
fn run(
    job: &Job,
    backend: &dyn Backend,
    signatures: &SignatureSet,
) -> Result<Outcome, BackendError> {
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
    ran.unwrap_or_else(|_| {
        tracing::error!(
            particle_id = job.params.particle_id,
            "the interpreter panicked; please report this script and data"
        );
        Err(BackendError::Panic)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_small_shallow_scripts_without_fold_run_inline() {
        let call = r#"(call %init_peer_id% ("op" "noop") [] r)"#;
        let chain = (0..5).fold(call.to_owned(), |rest, _| format!("(seq {call} {rest})"));
        assert!(runs_inline(&chain, 2000));
        assert!(
            !runs_inline(&chain, INLINE_MAX_BYTES),
            "too many bytes in all"
        );
        let fold = r#"(fold xs x (seq (call "p" ("s" "f") [x]) (next x)))"#;
        assert!(!runs_inline(fold, 0));
        let deep = (0..INLINE_MAX_DEPTH).fold("(null)".to_owned(), |rest, _| {
            format!("(seq (null) {rest})")
        });
        assert!(
            !runs_inline(&deep, 0),
            "nested {} deep",
            INLINE_MAX_DEPTH + 1
        );
    }
}
