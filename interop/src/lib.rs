//! Lab runner: network namespaces, veth links, BIRD and via6d processes.
//!
//! A "container" here is a network namespace: no container engine exists
//! on the machines that run this. Each scenario builds a [`Lab`], starts
//! BIRD ([`Bird`]) and via6d ([`Via6d`]) inside its hosts, waits on
//! conditions with deadlines ([`Lab::wait_until`]) and asserts on BIRD's,
//! via6's and the kernel's view. Everything is removed when the lab is
//! dropped, when a scenario fails, and on Ctrl-C.

pub mod bird;
pub mod capture;
pub mod check;
mod cleanup;
pub mod dataplane;
pub mod error;
pub mod evidence;
pub mod exec;
pub mod fabric;
pub mod frr;
pub mod lab;
pub mod pcap;
pub mod topo;
pub mod traffic;
pub mod via6;
pub mod wait;

pub use bird::{Bird, BirdChannel, BirdConfig, BirdPeer};
pub use error::{Error, Result};
pub use frr::{Frr, FrrConfig, FrrPeer, FrrRemoteAs};
pub use lab::{scenario, Daemon, DaemonKind, Host, Lab, Link, LinkEnd};
pub use topo::Pair;
pub use via6::{Via6Config, Via6Neighbor, Via6d};
pub use wait::{holds_for, wait_until};
