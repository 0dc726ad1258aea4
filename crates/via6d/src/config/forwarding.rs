//! A router that drops what it routes: the kernel forwards between
//! interfaces only with `net.ipv4.ip_forward` /
//! `net.ipv6.conf.all.forwarding` on, and via6d installs routes either way.
//!
//! The rule, per family: warn when forwarding for it is off in via6d's own
//! network namespace and traffic is bound to cross this host, that is
//! when two or more neighbours carry the family (an `interface-pattern`
//! counts as two), or when one of them gets routes re-advertised (an
//! export other than `deny-all` and `originated`, or the iBGP default).

use std::path::Path;

/// IP forwarding as the kernel reports it; `None` when it cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Forwarding {
    pub ipv4: Option<bool>,
    pub ipv6: Option<bool>,
}

impl Forwarding {
    /// Reads both switches from `/proc/sys` (this network namespace).
    pub fn read() -> Self {
        Self::read_from(Path::new("/proc/sys/net"))
    }

    fn read_from(base: &Path) -> Self {
        let flag = |rel: &str| {
            std::fs::read_to_string(base.join(rel))
                .ok()
                .map(|s| s.trim() != "0")
        };
        Forwarding {
            ipv4: flag("ipv4/ip_forward"),
            ipv6: flag("ipv6/conf/all/forwarding"),
        }
    }
}

/// What the rule above finds for `speaker` with `forwarding` as given.
pub fn forwarding_warnings(speaker: &bgp::SpeakerConfig, forwarding: Forwarding) -> Vec<String> {
    let mut out = Vec::new();
    let families = [
        (
            wire::Family::Ipv4Unicast,
            forwarding.ipv4,
            "IPv4",
            "net.ipv4.ip_forward",
        ),
        (
            wire::Family::Ipv6Unicast,
            forwarding.ipv6,
            "IPv6",
            "net.ipv6.conf.all.forwarding",
        ),
    ];
    for (family, on, name, sysctl) in families {
        if on != Some(false) {
            continue;
        }
        let carriers: Vec<&bgp::NeighborConfig> = speaker
            .neighbors
            .iter()
            .filter(|n| n.families.contains(&family))
            .collect();
        let sessions: usize = carriers
            .iter()
            .map(|n| if n.is_interface_pattern() { 2 } else { 1 })
            .sum();
        let readvertised = carriers.iter().any(|n| readvertises(speaker.asn, n));
        let why = if sessions >= 2 {
            format!("{sessions} neighbors carry {name} routes")
        } else if readvertised {
            format!("{name} routes are re-advertised to a neighbor")
        } else {
            continue;
        };
        out.push(format!(
            "{name} forwarding is off ({sysctl}=0) but {why}: traffic through this host is dropped; sysctl -w {sysctl}=1"
        ));
    }
    out
}

/// Whether `n` may be sent routes learned from other neighbours.
fn readvertises(asn: u32, n: &bgp::NeighborConfig) -> bool {
    match &n.export {
        bgp::PolicyRef::DenyAll | bgp::PolicyRef::Originated => false,
        bgp::PolicyRef::AcceptAll | bgp::PolicyRef::Named(_) => true,
        // RFC 8212: eBGP exports nothing without a policy; iBGP does.
        bgp::PolicyRef::Default => n.remote_as == asn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speaker(text: &str) -> bgp::SpeakerConfig {
        super::super::parse(Path::new("t.yaml"), text)
            .unwrap_or_else(|e| panic!("{e}"))
            .speaker
    }

    const OFF: Forwarding = Forwarding {
        ipv4: Some(false),
        ipv6: Some(false),
    };

    const HOST: &str = "router-id: 192.0.2.10\nasn: 65010\nneighbors:\n  - address: fe80::1%eth0\n    remote-as: 65000\n    export: originated\n";

    #[test]
    fn a_host_with_one_upstream_needs_no_forwarding() {
        assert!(forwarding_warnings(&speaker(HOST), OFF).is_empty());
    }

    #[test]
    fn two_neighbors_without_forwarding_warn_per_family() {
        let two = format!(
            "{HOST}  - address: fe80::2%eth1\n    remote-as: 65001\n    families: [ipv4-unicast]\n"
        );
        let w = forwarding_warnings(&speaker(&two), OFF);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("IPv4 forwarding is off (net.ipv4.ip_forward=0) but 2 neighbors"),
            "{w:?}"
        );
        let on = Forwarding {
            ipv4: Some(true),
            ipv6: Some(false),
        };
        assert!(forwarding_warnings(&speaker(&two), on).is_empty());
    }

    #[test]
    fn readvertising_or_a_pattern_warns() {
        let w = forwarding_warnings(&speaker(&HOST.replace("originated", "accept-all")), OFF);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[1].starts_with("IPv6 forwarding is off"), "{w:?}");
        assert!(w[1].contains("re-advertised"), "{w:?}");
        let pattern = "router-id: 192.0.2.10\nasn: 65010\nneighbors:\n  - interface-pattern: \"swp*\"\n    remote-as: external\n";
        assert_eq!(forwarding_warnings(&speaker(pattern), OFF).len(), 2);
        let ibgp = HOST
            .replace("    export: originated\n", "")
            .replace("65000", "65010");
        assert_eq!(forwarding_warnings(&speaker(&ibgp), OFF).len(), 2);
    }

    #[test]
    fn switches_are_read_from_proc() {
        let dir = std::env::temp_dir().join(format!("via6-fwd-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("ipv4")).unwrap();
        std::fs::create_dir_all(dir.join("ipv6/conf/all")).unwrap();
        std::fs::write(dir.join("ipv4/ip_forward"), "0\n").unwrap();
        std::fs::write(dir.join("ipv6/conf/all/forwarding"), "1\n").unwrap();
        let f = Forwarding::read_from(&dir);
        assert_eq!((f.ipv4, f.ipv6), (Some(false), Some(true)));
        std::fs::remove_file(dir.join("ipv6/conf/all/forwarding")).unwrap();
        assert_eq!(Forwarding::read_from(&dir).ipv6, None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
