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
    /// TCP MD5 signature key (RFC 2385); never logged or shown.
    pub password: Option<Secret>,
    /// GTSM (RFC 5082): TTL 255 out, at least 254 in.
    pub ttl_security: bool,
    /// Graceful restart (RFC 4724), receiving role.
    pub graceful_restart: crate::graceful::GracefulRestartConfig,
}

/// A secret whose `Debug` does not reveal it, so configs can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// `remote_as` of a neighbour configured `remote-as: external`: any AS
/// other than ours. AS 0 is never a peer's (RFC 7607), so it cannot be
/// mistaken for a configured number. (`remote-as: internal` is simply our
/// own AS.)
pub const REMOTE_AS_EXTERNAL: u32 = 0;

impl NeighborConfig {
    /// Interface peering (BGP unnumbered): no address is configured
    /// (`address` is `::`), the peer's link-local address is learned on
    /// `interface` by IPv6 neighbour discovery (crate `nd`).
    pub fn is_unnumbered(&self) -> bool {
        matches!(self.address, IpAddr::V6(a) if a.is_unspecified()) && self.interface.is_some()
    }

    /// An unnumbered neighbour whose `interface` is a pattern (`swp*`):
    /// one session per matching interface.
    pub fn is_interface_pattern(&self) -> bool {
        self.is_unnumbered()
            && self
                .interface
                .as_deref()
                .is_some_and(|i| i.contains(['*', '?']))
    }

    /// Whether the AS in the peer's OPEN is the one configured (RFC 4271
    /// §6.2: otherwise OPEN error "Bad Peer AS"); `external` accepts any
    /// AS but `local_as`.
    pub fn accepts_peer_as(&self, local_as: u32, peer_as: u32) -> bool {
        if self.remote_as == REMOTE_AS_EXTERNAL {
            peer_as != local_as && peer_as != 0
        } else {
            peer_as == self.remote_as
        }
    }
}

/// Shell-style match of an interface name against a pattern: `*` any run
/// of characters, `?` one character, everything else literal.
pub fn interface_matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len()).any(|i| n.get(i..).is_some_and(|t| go(rest, t))),
            Some((b'?', rest)) => n.split_first().is_some_and(|(_, t)| go(rest, t)),
            Some((c, rest)) => n.split_first().is_some_and(|(d, t)| c == d && go(rest, t)),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// Whether some unnumbered neighbour of `cfg` names interface `ifname`
/// (exactly or by pattern): neighbour discovery runs there.
pub fn wants_interface(cfg: &SpeakerConfig, ifname: &str) -> bool {
    cfg.neighbors.iter().any(|n| {
        n.is_unnumbered()
            && n.interface
                .as_deref()
                .is_some_and(|p| interface_matches(p, ifname))
    })
}

/// The configuration the sessions run with: each unnumbered neighbour
/// becomes one link-local neighbour (`fe80::..%ifname`) per interface on
/// which a peer was found (`found`: interface -> the peer's link-local
/// address, from neighbour discovery); the others stay as they are. An
/// unnumbered neighbour with no peer found yet has no session. An
/// interface named exactly wins over a pattern, an earlier pattern over a
/// later one, and an explicit address neighbour over both.
pub fn expand_unnumbered(
    cfg: &SpeakerConfig,
    found: &BTreeMap<String, std::net::Ipv6Addr>,
) -> SpeakerConfig {
    let mut out = cfg.clone();
    out.neighbors.clear();
    let mut claimed: std::collections::BTreeSet<String> = cfg
        .neighbors
        .iter()
        .filter(|n| n.is_unnumbered() && !n.is_interface_pattern())
        .filter_map(|n| n.interface.clone())
        .collect();
    let explicit: Vec<(IpAddr, Option<String>)> = cfg
        .neighbors
        .iter()
        .filter(|n| !n.is_unnumbered())
        .map(|n| (n.address, n.interface.clone()))
        .collect();
    for n in &cfg.neighbors {
        if !n.is_unnumbered() {
            out.neighbors.push(n.clone());
            continue;
        }
        let pattern = n.interface.as_deref().unwrap_or_default();
        for (ifname, ll) in found {
            let this = if n.is_interface_pattern() {
                interface_matches(pattern, ifname) && claimed.insert(ifname.clone())
            } else {
                ifname == pattern
            };
            let addr = IpAddr::V6(*ll);
            if !this || explicit.contains(&(addr, Some(ifname.clone()))) {
                continue;
            }
            let mut c = n.clone();
            c.address = addr;
            c.interface = Some(ifname.clone());
            // RFC 8950 carries IPv4 over this link-local-only session.
            c.extended_next_hop = true;
            out.neighbors.push(c);
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_patterns() {
        assert!(interface_matches("swp*", "swp1"));
        assert!(interface_matches("swp*", "swp"));
        assert!(interface_matches("swp?", "swp9"));
        assert!(!interface_matches("swp?", "swp10"));
        assert!(interface_matches("*p1", "swp1"));
        assert!(!interface_matches("swp*", "eth0"));
        assert!(interface_matches("eth0", "eth0"));
        assert!(!interface_matches("eth0", "eth00"));
    }

    fn unnumbered(interface: &str, remote_as: u32) -> NeighborConfig {
        NeighborConfig {
            address: IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            interface: Some(interface.into()),
            remote_as,
            port: 179,
            families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
            extended_next_hop: true,
            passive: false,
            hold_time: 9,
            connect_retry: Duration::from_secs(1),
            import: PolicyRef::AcceptAll,
            export: PolicyRef::AcceptAll,
            max_prefix: None,
            link_local_form: LinkLocalForm::Native,
            description: None,
            password: None,
            ttl_security: false,
            graceful_restart: Default::default(),
        }
    }

    #[test]
    fn expansion_makes_one_link_local_neighbour_per_found_peer() {
        let ll = |x: u16| std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, x);
        let mut explicit = unnumbered("swp3", 65009);
        explicit.address = IpAddr::V6(ll(3));
        let cfg = SpeakerConfig {
            router_id: Ipv4Addr::new(10, 0, 0, 1),
            asn: 65001,
            listen: None,
            neighbors: vec![
                unnumbered("swp*", REMOTE_AS_EXTERNAL),
                unnumbered("swp2", 65002),
                explicit,
                unnumbered("eth0", 65005),
            ],
            originate_v4: Vec::new(),
            originate_v6: Vec::new(),
            policies: BTreeMap::new(),
            max_paths: 1,
            multipath_relax: false,
        };
        assert!(wants_interface(&cfg, "swp7"));
        assert!(wants_interface(&cfg, "eth0"));
        assert!(!wants_interface(&cfg, "eth1"));
        let found: BTreeMap<String, std::net::Ipv6Addr> = [
            ("swp1".to_string(), ll(1)),
            ("swp2".to_string(), ll(2)),
            ("swp3".to_string(), ll(3)),
            ("eth1".to_string(), ll(9)),
        ]
        .into_iter()
        .collect();
        let e = expand_unnumbered(&cfg, &found);
        let got: Vec<(String, Option<&str>, u32)> = e
            .neighbors
            .iter()
            .map(|n| (n.address.to_string(), n.interface.as_deref(), n.remote_as))
            .collect();
        assert_eq!(
            got,
            vec![
                // swp* takes swp1 only: swp2 is named exactly, swp3 is
                // configured by address.
                ("fe80::1".to_string(), Some("swp1"), REMOTE_AS_EXTERNAL),
                ("fe80::2".to_string(), Some("swp2"), 65002),
                ("fe80::3".to_string(), Some("swp3"), 65009),
                // eth0: nothing found yet, no session.
            ]
        );
        assert!(e.neighbors.iter().all(|n| !n.is_unnumbered()));
    }

    #[test]
    fn unnumbered_and_remote_as_classes() {
        let n = unnumbered("swp1", REMOTE_AS_EXTERNAL);
        assert!(n.is_unnumbered());
        assert!(!n.is_interface_pattern());
        assert!(n.accepts_peer_as(65001, 65100));
        assert!(
            !n.accepts_peer_as(65001, 65001),
            "external refuses our own AS"
        );
        let p = unnumbered("swp*", 65001);
        assert!(p.is_interface_pattern());
        assert!(p.accepts_peer_as(65001, 65001), "internal is our own AS");
        assert!(!p.accepts_peer_as(65001, 65002));
        let mut a = unnumbered("eth0", 65002);
        a.address = "fe80::1".parse().unwrap_or(a.address);
        assert!(!a.is_unnumbered());
    }
}
