//! The control protocol: every request and reply `via6ctl` and via6d
//! exchange, as types both sides share. One JSON object per line; every
//! line carries [`PROTOCOL_VERSION`], and a side that gets another version
//! refuses it with [`ErrorReply::VersionMismatch`] instead of guessing at
//! fields.
//!
//! A request: `{"version":1,"command":"routes","prefix":"10.0.0.0/8"}`.
//! A reply: `{"version":1,"ok":{"type":"routes","data":[...]}}` or
//! `{"version":1,"error":{"kind":"not-announced","prefix":"10.0.0.0/8"}}`.
//! `watch` answers `{"version":1,"ok":{"type":"watching"}}` and then one
//! [`WatchLine`] per event until the client hangs up.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Bumped whenever a request, reply or event changes shape.
pub const PROTOCOL_VERSION: u32 = 1;

/// What a client may ask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Request {
    Neighbors,
    /// RIB paths, optionally one prefix only, at most `limit` of them.
    Routes {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<IpNet>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    Fib,
    /// BFD sessions (RFC 5880): peer, interface, states, diagnostics,
    /// timers, uptime.
    Bfd,
    /// Router id, AS, listener and warnings (forwarding off, ...).
    Status,
    /// Tear the session down (Cease/4, administrative reset) and restart it;
    /// `hard`: as a Hard Reset (RFC 8538), so both sides drop its routes.
    Reset {
        neighbor: IpAddr,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        hard: bool,
    },
    /// Stop for good: Cease (Hard Reset where graceful restart would keep
    /// our routes) to every peer, our kernel routes removed, exit.
    Shutdown,
    /// Ask the peer to resend its routes (RFC 2918 ROUTE-REFRESH).
    Refresh {
        neighbor: IpAddr,
    },
    /// Originate `prefix` until withdrawn, with these RFC 1997
    /// communities (`ASN:VALUE` as 32-bit values).
    Announce {
        prefix: IpNet,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        communities: Vec<u32>,
    },
    /// Stop originating a prefix announced at run time.
    Withdraw {
        prefix: IpNet,
    },
    /// Session and route events, one line each, until the client hangs up.
    Watch,
}

/// A request on the wire: the version, then the request's own fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestLine {
    pub version: u32,
    #[serde(flatten)]
    pub request: Request,
}

/// A reply on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyLine {
    pub version: u32,
    #[serde(flatten)]
    pub body: ReplyBody,
}

/// Exactly one of `ok` or `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplyBody {
    Ok(Response),
    Error(ErrorReply),
}

/// A protocol version as messages name it; a line without one comes from
/// a program older than versions.
pub fn version_name(v: Option<u32>) -> String {
    match v {
        Some(v) => v.to_string(),
        None => "none (older than versioned control)".into(),
    }
}

/// Only the version of a line, read before anything else so that a line
/// of another version is refused by name rather than failing to parse.
#[derive(Debug, Deserialize)]
pub struct VersionProbe {
    pub version: Option<u32>,
}

/// Why the daemon refused a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ErrorReply {
    #[error("via6d speaks control protocol {daemon}, the client {} (use the via6ctl of the same version)", version_name(*client))]
    VersionMismatch { daemon: u32, client: Option<u32> },
    #[error("bad request: {message}")]
    BadRequest { message: String },
    #[error("{prefix} was not announced at run time (prefixes of the configuration's originate: go by editing it and reloading)")]
    NotAnnounced { prefix: IpNet },
    #[error("the FIB is disabled in the configuration")]
    FibDisabled,
    #[error("{message}")]
    Failed { message: String },
}

/// The answer to each request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "kebab-case")]
pub enum Response {
    Neighbors(Vec<NeighborRow>),
    Routes(Vec<RouteRow>),
    Fib(FibReport),
    Bfd(Vec<BfdRow>),
    Status(StatusReport),
    Reset {
        neighbor: IpAddr,
        hard: bool,
    },
    Refresh {
        neighbor: IpAddr,
    },
    Shutdown,
    Announced {
        prefix: IpNet,
        communities: Vec<String>,
        /// It was announced at run time already; its communities changed.
        replaced: bool,
    },
    Withdrawn {
        prefix: IpNet,
    },
    /// Events follow, one [`WatchLine`] per line.
    Watching,
}

/// RFC 4271 §8.2.2 session states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionState {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl std::fmt::Display for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// One neighbour of `via6ctl neighbors`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeighborRow {
    pub peer: u32,
    pub address: IpAddr,
    pub interface: Option<String>,
    /// 0 for `remote-as: external` (AS 0 is never a peer's).
    pub remote_as: u32,
    pub description: Option<String>,
    pub state: SessionState,
    /// Seconds since Established.
    pub uptime: Option<u64>,
    /// IPv4-mapped addresses shown as IPv4 (`192.0.2.1:179`).
    pub local_address: Option<String>,
    pub remote_address: Option<String>,
    pub negotiated: Option<NegotiatedRow>,
    pub counts: CountsRow,
    pub updates_received: u64,
    pub updates_sent: u64,
    pub last_error: Option<String>,
    /// When `last_error` happened, in seconds since the Unix epoch.
    pub last_error_at: Option<u64>,
}

/// Capabilities in force on a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NegotiatedRow {
    pub peer_as: u32,
    pub peer_router_id: Ipv4Addr,
    pub hold_time: u16,
    pub keepalive: u16,
    pub families: Vec<String>,
    /// Families carrying IPv6 next hops both ways (RFC 8950).
    pub extended_next_hop: Vec<String>,
    pub four_octet_as: bool,
    pub extended_message: bool,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    pub graceful_restart: Option<RestartRow>,
}

/// Graceful restart as both OPENs agreed on it (RFC 4724, RFC 9494).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestartRow {
    pub restart_time: u16,
    pub restarting: bool,
    pub notification: bool,
    /// `ipv4-unicast (F)`: the family, F where the peer keeps forwarding.
    pub families: Vec<String>,
    /// `ipv4-unicast 3600s`: long-lived stale time per family.
    pub long_lived: Vec<String>,
}

/// RIB counters of one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CountsRow {
    pub received: u64,
    pub accepted: u64,
    pub advertised: u64,
    pub stale: u64,
    pub stale_for_secs: Option<u64>,
}

/// One path of `via6ctl routes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteRow {
    pub prefix: IpNet,
    /// `None` for a prefix we originate.
    pub peer: Option<u32>,
    pub peer_address: Option<IpAddr>,
    pub next_hop: Option<IpAddr>,
    pub next_hop_link_local: Option<Ipv6Addr>,
    pub gateway: Option<IpAddr>,
    pub ifindex: Option<u32>,
    /// The name of `ifindex` in via6d's network namespace.
    pub interface: Option<String>,
    pub as_path: Vec<u32>,
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    pub best: bool,
    pub multipath: bool,
    pub stale: bool,
    pub long_lived_stale: bool,
    pub not_installed: Option<String>,
    pub not_advertised: Vec<String>,
    /// Announced at run time (`via6ctl announce`).
    #[serde(default)]
    pub runtime: bool,
    /// `ASN:VALUE`.
    #[serde(default)]
    pub communities: Vec<String>,
}

/// `via6ctl fib`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FibReport {
    pub installed: usize,
    pub pending: usize,
    pub link_down: usize,
    pub stale: usize,
    pub initial_sync_done: bool,
    pub source_address_added: bool,
    pub hop_sets: usize,
    pub nexthop_objects: usize,
    pub failed_count: usize,
    pub failed: Vec<FailedRow>,
    pub conflict_count: usize,
    pub conflicts: Vec<ConflictRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedRow {
    pub prefix: IpNet,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictRow {
    pub prefix: IpNet,
    pub existing: String,
}

/// One BFD session of `via6ctl bfd`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BfdRow {
    pub peer: IpAddr,
    pub interface: Option<String>,
    pub state: String,
    pub remote_state: String,
    pub diagnostic: String,
    pub remote_diagnostic: String,
    pub min_tx_ms: u32,
    pub min_rx_ms: u32,
    pub multiplier: u8,
    pub tx_interval_ms: u64,
    pub detection_time_ms: u64,
    pub uptime: Option<u64>,
    pub local_discriminator: u32,
    pub remote_discriminator: u32,
    pub packets_sent: u64,
    pub packets_received: u64,
    /// The source address our packets leave from (the BGP session's
    /// local address once it has one; None: the kernel's choice).
    #[serde(default)]
    pub source_address: Option<IpAddr>,
    /// The family's one source port (RFC 5881 §4: 49152-65535).
    #[serde(default)]
    pub source_port: u16,
}

/// `via6ctl status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub router_id: Ipv4Addr,
    pub asn: u32,
    /// `None`: BGP does not listen (`listen: none`).
    pub listen: Option<std::net::SocketAddr>,
    pub neighbors: usize,
    pub warnings: Vec<String>,
}

/// One line of `via6ctl watch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchLine {
    pub version: u32,
    #[serde(flatten)]
    pub event: WatchEventRow,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum WatchEventRow {
    /// A session changed state.
    Session {
        neighbor: IpAddr,
        interface: Option<String>,
        old: SessionState,
        new: SessionState,
    },
    /// A prefix's route changed.
    Route {
        prefix: IpNet,
        change: bgp::RouteEventKind,
        origin: bgp::RouteOrigin,
        next_hops: Vec<HopRow>,
    },
    /// This watcher fell behind and `missed` events were dropped for it
    /// (the daemon never waits for a watcher).
    Lagged { missed: u64 },
}

/// A next hop as the kernel gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HopRow {
    pub gateway: IpAddr,
    pub interface: Option<String>,
}

#[cfg(test)]
mod tests;
