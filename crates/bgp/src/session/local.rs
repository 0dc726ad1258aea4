//! Local addresses a session needs for the next hops it sends: our
//! link-local, global IPv6 and IPv4 addresses on the session's interface.
//! The address list comes from `nd::addrs` (getifaddrs(3)) and link state
//! from `nd::interfaces`; netlink belongs to `crates/fib`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub use nd::addrs::{if_index, interface_addresses, IfAddr};
pub use nd::interfaces::link_is_up;

/// Unwraps an IPv4-mapped IPv6 address (a dual-stack listener's view of
/// an IPv4 peer) to the IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// What a session knows about its own end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LocalFacts {
    pub ifindex: Option<u32>,
    pub link_local: Option<Ipv6Addr>,
    pub global_v6: Option<Ipv6Addr>,
    pub ipv4: Option<Ipv4Addr>,
}

/// Works out our next-hop addresses from the connected socket's local
/// address and the interface list. A link-local session is link-local
/// only: no global IPv6 (so next hops go as `[::, LL]`).
pub fn local_facts(local: SocketAddr, scope: Option<u32>, addrs: &[IfAddr]) -> LocalFacts {
    let ip = canonical(local.ip());
    let ifindex = scope.filter(|s| *s != 0).or_else(|| {
        addrs
            .iter()
            .find(|a| canonical(a.addr) == ip && a.index != 0)
            .map(|a| a.index)
    });
    let on_if = |pred: &dyn Fn(&IpAddr) -> bool| -> Option<IpAddr> {
        let ix = ifindex?;
        addrs
            .iter()
            .find(|a| a.index == ix && pred(&a.addr))
            .map(|a| a.addr)
    };
    let v6 = |a: Option<IpAddr>| match a {
        Some(IpAddr::V6(v)) => Some(v),
        _ => None,
    };
    let global6 = |a: &IpAddr| matches!(a, IpAddr::V6(v) if !v.is_unicast_link_local() && !v.is_loopback() && !v.is_unspecified());
    let mut facts = LocalFacts {
        ifindex,
        ..LocalFacts::default()
    };
    match ip {
        IpAddr::V6(v) if v.is_unicast_link_local() => {
            facts.link_local = Some(v);
        }
        IpAddr::V6(v) => {
            facts.global_v6 = Some(v);
            facts.link_local = v6(on_if(
                &|a| matches!(a, IpAddr::V6(x) if x.is_unicast_link_local()),
            ));
        }
        IpAddr::V4(v) => {
            facts.ipv4 = Some(v);
            facts.link_local = v6(on_if(
                &|a| matches!(a, IpAddr::V6(x) if x.is_unicast_link_local()),
            ));
            facts.global_v6 = v6(on_if(&global6));
        }
    }
    if facts.ipv4.is_none() {
        facts.ipv4 = match on_if(&|a| a.is_ipv4()) {
            Some(IpAddr::V4(v)) => Some(v),
            _ => None,
        };
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(name: &str, index: u32, addr: &str) -> IfAddr {
        IfAddr {
            name: name.into(),
            index,
            addr: addr.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        }
    }

    fn table() -> Vec<IfAddr> {
        vec![
            a("lo", 1, "127.0.0.1"),
            a("lo", 1, "::1"),
            a("eth0", 2, "10.0.8.42"),
            a("eth0", 2, "2001:db8::2"),
            a("eth0", 2, "fe80::2"),
            a("eth1", 3, "fe80::3"),
        ]
    }

    #[test]
    fn link_local_session_is_link_local_only() {
        let f = local_facts("[fe80::3]:179".parse().unwrap(), Some(3), &table());
        assert_eq!(f.ifindex, Some(3));
        assert_eq!(f.link_local, Some("fe80::3".parse().unwrap()));
        assert_eq!(f.global_v6, None);
        assert_eq!(f.ipv4, None);
    }

    #[test]
    fn global_session_finds_link_local_and_ipv4_on_its_interface() {
        let f = local_facts("[2001:db8::2]:40000".parse().unwrap(), None, &table());
        assert_eq!(f.ifindex, Some(2));
        assert_eq!(f.global_v6, Some("2001:db8::2".parse().unwrap()));
        assert_eq!(f.link_local, Some("fe80::2".parse().unwrap()));
        assert_eq!(f.ipv4, Some("10.0.8.42".parse().unwrap()));
    }

    #[test]
    fn ipv4_session_and_mapped_addresses() {
        let f = local_facts("[::ffff:10.0.8.42]:179".parse().unwrap(), None, &table());
        assert_eq!(f.ipv4, Some("10.0.8.42".parse().unwrap()));
        assert_eq!(f.global_v6, Some("2001:db8::2".parse().unwrap()));
        assert_eq!(f.link_local, Some("fe80::2".parse().unwrap()));
    }

    #[test]
    fn link_state_from_interface_flags() {
        assert!(link_is_up("lo"));
        assert!(!link_is_up("no-such-if0"));
        assert!(!link_is_up("bad\0name"));
        assert!(!link_is_up("a-name-longer-than-ifnamsiz"));
        assert!(!link_is_up(""));
    }

    #[test]
    fn real_interfaces_have_loopback() {
        let all = interface_addresses().unwrap_or_default();
        assert!(all
            .iter()
            .any(|x| x.addr == IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(if_index("lo"), Some(1));
        assert_eq!(if_index("no-such-if0"), None);
        assert_eq!(if_index("bad\0name"), None);
    }
}
