//! Speaker configuration as the daemon hands it over (already validated;
//! the YAML parsing lives in `via6d`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use wire::{Family, LinkLocalForm};

#[derive(Debug, Clone, PartialEq)]
pub struct SpeakerConfig {
    pub router_id: Ipv4Addr,
    pub asn: u32,
    /// Where to accept sessions; `None` = do not listen (active only).
    pub listen: Option<std::net::SocketAddr>,
    pub neighbors: Vec<NeighborConfig>,
    pub originate_v4: Vec<Ipv4Net>,
    pub originate_v6: Vec<Ipv6Net>,
    pub policies: BTreeMap<String, Policy>,
    /// ECMP: how many equal paths go to the FIB as one route (1 = no ECMP).
    pub max_paths: usize,
    /// Allow multipath across different neighbouring ASes (fabrics).
    pub multipath_relax: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NeighborConfig {
    pub address: IpAddr,
    /// Interface for a link-local address (`fe80::1%eth0`): its scope.
    pub interface: Option<String>,
    pub remote_as: u32,
    /// TCP port of the peer (179 unless a lab says otherwise).
    pub port: u16,
    pub families: Vec<Family>,
    /// Offer RFC 8950 extended next hop for IPv4 unicast.
    pub extended_next_hop: bool,
    pub passive: bool,
    /// Proposed hold time in seconds (0 or >= 3, RFC 4271 §4.2).
    pub hold_time: u16,
    pub connect_retry: Duration,
    pub import: PolicyRef,
    pub export: PolicyRef,
    /// Cease/1 (RFC 4486) above this many accepted prefixes.
    pub max_prefix: Option<u32>,
    /// How to lay out a link-local-only IPv6 next hop we send.
    pub link_local_form: LinkLocalForm,
    pub description: Option<String>,
}

/// Which policy applies to a neighbour in one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyRef {
    /// Not configured: eBGP denies (RFC 8212), iBGP accepts.
    Default,
    AcceptAll,
    DenyAll,
    /// Export only what we originate.
    Originated,
    Named(String),
}

/// A named policy: terms evaluated in order; the first whose match holds
/// decides. No term matched = deny.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Policy {
    pub terms: Vec<PolicyTerm>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyTerm {
    pub matches: PolicyMatch,
    pub action: PolicyAction,
    pub set: PolicySet,
}

/// All present conditions must hold; an empty match matches everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyMatch {
    pub prefixes: Vec<PrefixMatch>,
    pub as_path_contains: Option<u32>,
    pub community: Option<u32>,
}

/// `prefix` exactly, or with a length range `ge..=le` inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixMatch {
    pub prefix: IpNet,
    pub ge: Option<u8>,
    pub le: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PolicyAction {
    #[default]
    Accept,
    Reject,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicySet {
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    pub add_communities: Vec<u32>,
}
