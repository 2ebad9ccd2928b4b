//! `ExplainError`: why a particle's life cannot be explained.

/// Why a particle's life cannot be explained.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExplainError {
    /// The scenario could not be run.
    #[error("cannot run the scenario: {0}")]
    Sim(#[from] braid_sim::SimError),
    /// The script does not parse.
    #[error("the script does not parse:\n{0}")]
    Parse(String),
    /// There is nothing to explain.
    #[error("no invocation to explain")]
    Empty,
    /// The steps do not belong to one particle.
    #[error("the invocations belong to {0} particles ({1}); choose one")]
    ManyParticles(usize, String),
    /// A step number out of range.
    #[error("there is no step {step}; the particle has {steps} steps")]
    NoSuchStep {
        /// The step asked for.
        step: usize,
        /// How many there are.
        steps: usize,
    },
}
