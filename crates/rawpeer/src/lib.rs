//! A raw BGP test peer for the hostile-input suites of `tests/` and the
//! interop scenarios of `interop/`.
//!
//! It speaks just enough BGP on a TCP socket to reach Established
//! ([`RawPeer`], [`OpenSpec`]), then sends whatever bytes a test builds
//! ([`build`]): well-formed messages come from `wire`'s encoder, broken
//! ones are built by hand. What the other side answers is decoded with
//! `wire`. Connections start inside a network namespace
//! ([`connect_in_netns`]).

pub mod build;
pub mod error;
mod netns;
mod peer;

pub use error::{Error, Result};
pub use netns::connect_in_netns;
pub use peer::{Incoming, OpenSpec, RawPeer};

#[cfg(test)]
mod tests;
