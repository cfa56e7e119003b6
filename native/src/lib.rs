//! bank-clickstream's per-customer state, compiled: the identity of a shard's devices.
//!
//! Plain Rust in [`identity`]; the Python bindings in [`python`] (feature `python`, on in the
//! extension that maturin builds). Read it next to `tests/support/journey_reference.py`, the
//! executable specification it is tested against.

pub mod identity;

#[cfg(feature = "python")]
mod python;
