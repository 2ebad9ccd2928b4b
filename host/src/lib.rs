//! The braid host.
