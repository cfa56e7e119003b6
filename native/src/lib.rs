//! bank-clickstream's per-customer state, compiled: a shard's dedupe and the identity of its
//! devices, and a journeys shard's sessions and figures.
//!
//! Plain Rust in [`dedupe`], [`identity`], [`event`], [`journeys`], [`tally`] and [`figures`];
//! the Python bindings in `python` (feature `python`, on in the extension that maturin builds).
//! Read it next to `tests/support/journey_reference.py`, the executable specification it is
//! tested against.

pub mod dedupe;
pub mod event;
pub mod figures;
pub mod identity;
pub mod journeys;
pub mod tally;

#[cfg(feature = "python")]
mod python;
