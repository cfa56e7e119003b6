//! bank-clickstream's per-customer state, compiled: a shard's dedupe and the identity of its
//! devices.
//!
//! Plain Rust in [`dedupe`] and [`identity`]; the Python bindings in [`python`] (feature `python`, on in the
//! extension that maturin builds). Read it next to `tests/support/journey_reference.py`, the
//! executable specification it is tested against.

pub mod dedupe;
pub mod identity;

#[cfg(feature = "python")]
mod python;
