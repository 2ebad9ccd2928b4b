//! Inputs for the benchmarks, loaded from fixtures and ../shared/bench.
