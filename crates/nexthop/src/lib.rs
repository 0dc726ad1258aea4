//! The gateway of a kernel route, one type from the RIB to the kernel
//! writer.
//!
//! The RIB decides where a path leads, and the FIB writes it to the
//! kernel; both hold the same [`Gateway`] values and share the same
//! [`NextHopSet`] allocations, so a set crosses from one to the other
//! without a copy and the FIB recognises a repeated set by its pointer.
//!
//! Invariant: a link-local IPv6 gateway always has an interface. The
//! kernel would accept one without and pick no link, so [`Gateway::new`]
//! refuses it and no other way of building a gateway exists.
//! IPv4 link-local gateways (169.254.0.0/16) need no interface: the
//! kernel resolves them like any other IPv4 gateway.

#![forbid(unsafe_code)]

use std::cmp::Ordering;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// Why an address and an interface do not make a gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The kernel would take it without one and pick no link.
    #[error("link-local gateway {0} needs an interface")]
    LinkLocalWithoutInterface(Ipv6Addr),
}

/// A gateway of a kernel route: an address and the interface it is
/// reached over. An IPv6 gateway of an IPv4 route is sent as `RTA_VIA`.
///
/// Ordered as the pair (address, interface), IPv4 addresses first: sets
/// of gateways are kept sorted in that order. Equality and hashing are
/// derived from the representation, which agrees with that pair: an
/// address has exactly one kind ([`Gateway::new`] picks it).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Gateway(Repr);

/// The kinds of gateway; private so that a link-local gateway without an
/// interface cannot be written down.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Repr {
    V4 {
        addr: Ipv4Addr,
        ifindex: Option<u32>,
    },
    /// Not link-local: the kernel resolves it, an interface only pins it.
    V6 {
        addr: Ipv6Addr,
        ifindex: Option<u32>,
    },
    V6LinkLocal {
        addr: Ipv6Addr,
        ifindex: u32,
    },
}

impl Gateway {
    /// A gateway reached over `ifindex`, or wherever the kernel resolves
    /// it when `None`; a link-local IPv6 address (`fe80::/10`) needs an
    /// interface.
    pub fn new(addr: IpAddr, ifindex: Option<u32>) -> Result<Gateway, GatewayError> {
        let repr = match addr {
            IpAddr::V4(addr) => Repr::V4 { addr, ifindex },
            IpAddr::V6(addr) if addr.is_unicast_link_local() => match ifindex {
                Some(ifindex) => Repr::V6LinkLocal { addr, ifindex },
                None => return Err(GatewayError::LinkLocalWithoutInterface(addr)),
            },
            IpAddr::V6(addr) => Repr::V6 { addr, ifindex },
        };
        Ok(Gateway(repr))
    }

    /// A gateway on interface `ifindex`: with an interface any address
    /// is one, so this cannot fail.
    pub fn on_link(addr: IpAddr, ifindex: u32) -> Gateway {
        Gateway(match addr {
            IpAddr::V4(addr) => Repr::V4 {
                addr,
                ifindex: Some(ifindex),
            },
            IpAddr::V6(addr) if addr.is_unicast_link_local() => Repr::V6LinkLocal { addr, ifindex },
            IpAddr::V6(addr) => Repr::V6 {
                addr,
                ifindex: Some(ifindex),
            },
        })
    }

    /// The gateway's address.
    pub fn ip(&self) -> IpAddr {
        match self.0 {
            Repr::V4 { addr, .. } => IpAddr::V4(addr),
            Repr::V6 { addr, .. } | Repr::V6LinkLocal { addr, .. } => IpAddr::V6(addr),
        }
    }

    /// The output interface; always `Some` for a link-local gateway.
    pub fn ifindex(&self) -> Option<u32> {
        match self.0 {
            Repr::V4 { ifindex, .. } | Repr::V6 { ifindex, .. } => ifindex,
            Repr::V6LinkLocal { ifindex, .. } => Some(ifindex),
        }
    }

    /// An IPv6 link-local gateway (usable only on its interface).
    pub fn is_link_local(&self) -> bool {
        matches!(self.0, Repr::V6LinkLocal { .. })
    }

    /// The pair that orders gateways.
    fn key(&self) -> (IpAddr, Option<u32>) {
        (self.ip(), self.ifindex())
    }
}

impl PartialOrd for Gateway {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Gateway {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl fmt::Debug for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gateway")
            .field("gateway", &self.ip())
            .field("ifindex", &self.ifindex())
            .finish()
    }
}

/// As `ip route` writes it: `fe80::1 dev 3`, `192.0.2.1`.
impl fmt::Display for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.ip())?;
        if let Some(ix) = self.ifindex() {
            write!(f, " dev {ix}")?;
        }
        Ok(())
    }
}

/// `{"gateway": ADDRESS, "ifindex": N or null}`, the shape the separate
/// RIB and FIB next-hop types had.
impl serde::Serialize for Gateway {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Gateway", 2)?;
        st.serialize_field("gateway", &self.ip())?;
        st.serialize_field("ifindex", &self.ifindex())?;
        st.end()
    }
}

/// The next hops of one route, sorted and without duplicates; more than
/// one is an ECMP route. Shared: a full table has a handful of distinct
/// sets, so the routes of one set point at one allocation, from the RIB
/// (which interns them) to the FIB (which recognises a repeated set by
/// its pointer).
pub type NextHopSet = Arc<[Gateway]>;

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn link_local_needs_an_interface() {
        assert_eq!(
            Gateway::new(ip("fe80::1"), None),
            Err(GatewayError::LinkLocalWithoutInterface(
                "fe80::1".parse().unwrap()
            ))
        );
        assert_eq!(
            Gateway::new(ip("fe80::1"), None).unwrap_err().to_string(),
            "link-local gateway fe80::1 needs an interface"
        );
        // fe80::/10, not only fe80::/64.
        assert!(Gateway::new(ip("febf::1"), None).is_err());
        let g = Gateway::new(ip("fe80::1"), Some(3)).unwrap();
        assert!(g.is_link_local());
        assert_eq!((g.ip(), g.ifindex()), (ip("fe80::1"), Some(3)));
        assert_eq!(Gateway::on_link(ip("fe80::1"), 3), g);
    }

    /// Only IPv6 link-local needs an interface: global IPv6, IPv4 and
    /// IPv4 link-local (169.254/16) gateways are resolved by the kernel.
    #[test]
    fn other_gateways_need_none() {
        for a in ["2001:db8::1", "fec0::1", "192.0.2.1", "169.254.0.1"] {
            let g = Gateway::new(ip(a), None).unwrap();
            assert_eq!((g.ip(), g.ifindex()), (ip(a), None));
            assert!(!g.is_link_local());
            let g = Gateway::new(ip(a), Some(2)).unwrap();
            assert_eq!(g.ifindex(), Some(2));
            assert_eq!(Gateway::on_link(ip(a), 2), g);
        }
    }

    /// Sets are sorted by (address, interface), IPv4 first, as the pair
    /// (`IpAddr`, `Option<u32>`) sorts, whatever kind of gateway.
    #[test]
    fn order_is_address_then_interface() {
        let g = |a: &str, ix: Option<u32>| Gateway::new(ip(a), ix).unwrap();
        let mut v = vec![
            g("fec0::1", None),
            g("fe80::1", Some(2)),
            g("fe80::1", Some(1)),
            g("2001:db8::1", Some(1)),
            g("2001:db8::1", None),
            g("192.0.2.1", None),
            g("fe80::1", Some(1)),
        ];
        v.sort();
        v.dedup();
        let keys: Vec<(IpAddr, Option<u32>)> = v.iter().map(|x| (x.ip(), x.ifindex())).collect();
        let mut want = keys.clone();
        want.sort();
        assert_eq!(keys, want);
        assert_eq!(v.len(), 6);
        assert_eq!(v[0].ip(), ip("192.0.2.1"));
        assert_eq!(v[5].ip(), ip("fec0::1"), "fec0:: sorts after fe80::");
    }

    /// Equality (derived) agrees with the order (by hand) whichever
    /// constructor made a gateway.
    #[test]
    fn equality_agrees_with_order() {
        use std::collections::HashSet;
        let a = Gateway::new(ip("fe80::1"), Some(1)).unwrap();
        let b = Gateway::on_link(ip("fe80::1"), 1);
        let c = Gateway::new(ip("2001:db8::1"), Some(1)).unwrap();
        let d = Gateway::on_link(ip("2001:db8::1"), 1);
        let e = Gateway::new(ip("2001:db8::1"), None).unwrap();
        for (x, y) in [(a, b), (c, d), (a, c), (c, e), (d, e)] {
            assert_eq!(x == y, x.cmp(&y) == Ordering::Equal, "{x:?} {y:?}");
        }
        let set: HashSet<Gateway> = [a, b, c, d, e].into_iter().collect();
        assert_eq!(set.len(), 3);
    }

    #[test]
    fn display_and_json() {
        let ll = Gateway::new(ip("fe80::1"), Some(3)).unwrap();
        let v4 = Gateway::new(ip("192.0.2.1"), None).unwrap();
        assert_eq!(ll.to_string(), "fe80::1 dev 3");
        assert_eq!(v4.to_string(), "192.0.2.1");
        assert_eq!(
            serde_json::to_string(&ll).unwrap(),
            r#"{"gateway":"fe80::1","ifindex":3}"#
        );
        assert_eq!(
            serde_json::to_string(&v4).unwrap(),
            r#"{"gateway":"192.0.2.1","ifindex":null}"#
        );
    }
}
