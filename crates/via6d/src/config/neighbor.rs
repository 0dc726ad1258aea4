//! One `neighbors:` entry as written, and what it becomes for the speaker.

use serde::Deserialize;

use super::values::{
    FamilyName, HoldTime, InterfaceName, InterfacePattern, LongLivedStaleTime, NeighborAddress,
    NextHopForm, Password, RemoteAs, RestartTime,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Neighbor {
    /// The peer's address; or, for interface peering, `interface` or
    /// `interface-pattern` instead (exactly one of the three).
    #[serde(default)]
    pub address: Option<NeighborAddress>,
    /// Interface peering (BGP unnumbered): the peer's link-local address
    /// is learned on this interface from Router Advertisements and
    /// neighbour discovery, and we advertise ourselves there.
    #[serde(default)]
    pub interface: Option<InterfaceName>,
    /// Interface peering on every interface whose name matches (`swp*`,
    /// `*` any run of characters, `?` one).
    #[serde(default)]
    pub interface_pattern: Option<InterfacePattern>,
    pub remote_as: RemoteAs,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default)]
    pub families: Option<Vec<FamilyName>>,
    /// Default: on for IPv6 sessions (RFC 8950).
    #[serde(default)]
    pub extended_next_hop: Option<bool>,
    #[serde(default)]
    pub passive: bool,
    #[serde(default = "default_hold_time")]
    pub hold_time: HoldTime,
    #[serde(default = "default_connect_retry")]
    pub connect_retry: u32,
    #[serde(default)]
    pub import: Option<String>,
    #[serde(default)]
    pub export: Option<String>,
    #[serde(default)]
    pub max_prefix: Option<u32>,
    #[serde(default)]
    pub next_hop_form: NextHopForm,
    /// TCP MD5 signature key (RFC 2385), shared with the peer.
    #[serde(default)]
    pub password: Option<Password>,
    /// GTSM (RFC 5082): only accept the peer's packets at TTL 254 or more.
    #[serde(default)]
    pub ttl_security: bool,
    /// Graceful restart (RFC 4724, RFC 8538): keep a restarting peer's
    /// routes while it comes back, and let peers keep ours while we do.
    #[serde(default = "default_true")]
    pub graceful_restart: bool,
    /// The Restart Time we announce.
    #[serde(default = "default_restart_time")]
    pub restart_time: RestartTime,
    /// Long-lived graceful restart (RFC 9494): seconds a restarting
    /// peer's routes stay, depreferenced, after its restart time; 0 (the
    /// default) is off.
    #[serde(default)]
    pub long_lived_stale_time: LongLivedStaleTime,
    /// BFD (RFC 5880/5881) for this neighbour's sessions.
    #[serde(default)]
    pub bfd: Option<crate::bfd_sessions::BfdSetting>,
}

fn default_true() -> bool {
    true
}
fn default_restart_time() -> RestartTime {
    RestartTime(120)
}
fn default_hold_time() -> HoldTime {
    HoldTime(90)
}
fn default_connect_retry() -> u32 {
    5
}
pub(crate) fn default_port() -> u16 {
    179
}
