//! The BGP speaker: sessions, negotiation, RIB and best path, policy, and
//! outbound packing.
//!
//! Data flows one way: socket -> decode -> session -> RIB -> (FIB changes,
//! and outbound packing -> socket). One task owns the RIB; sessions and the
//! FIB sync talk to it over bounded channels (see `events`).
//!
//! `unsafe` is denied everywhere but in `sys`, the crate's one module of
//! kernel interfaces the libraries do not cover (see the README).

#![deny(unsafe_code)]

pub mod attrs;
pub mod config;
pub mod events;
pub mod fsm;
pub mod graceful;
pub mod negotiate;
pub mod outbound;
pub mod policy;
pub mod rib;
pub mod session;
pub mod sockopt;
pub mod speaker;
pub mod store;
#[allow(unsafe_code)]
mod sys;

pub use config::*;
pub use events::*;
pub use graceful::{DownKind, GracefulRestartConfig, PeerRestart};
pub use rib::{
    community_string, spawn_rib, Announced, PeerCounts, RibHandle, RouteFilter, RouteStatus,
    RuntimeError,
};
pub use speaker::{BgpError, NeighborStatus, Speaker, SpeakerHandle};
