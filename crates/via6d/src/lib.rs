//! via6d: the daemon's configuration, wiring, control socket and metrics.

#![forbid(unsafe_code)]

pub mod bfd_sessions;
pub mod config;
pub mod control;
pub mod daemon;
pub mod metrics;
