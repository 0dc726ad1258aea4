//! RFC 5881 single-hop sockets, one pair per family for every session:
//! a receive socket on port 3784 (§4) and a send socket bound to a source
//! port in 49152-65535 (§4) with TTL / hop limit 255 (§5). Each packet
//! names its own interface and source address (`sys::send`), so a send
//! socket needs no binding to a device.
#![forbid(unsafe_code)]

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsFd;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::sys;

/// RFC 5881 §4: single-hop Control packets go to this port.
pub const CONTROL_PORT: u16 = 3784;
/// RFC 5881 §4: the source port range.
pub const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;
/// RFC 5881 §5: sent with, and required on receipt.
pub const TTL: u8 = 255;

fn udp(domain: Domain) -> io::Result<Socket> {
    let s = Socket::new(
        domain,
        Type::DGRAM.nonblocking().cloexec(),
        Some(Protocol::UDP),
    )?;
    if domain == Domain::IPV6 {
        s.set_only_v6(true)?;
    }
    Ok(s)
}

/// The receive socket of one family on `port`, reporting the TTL (hop
/// limit) and arrival interface of each packet.
pub fn receiver(v6: bool, port: u16) -> io::Result<Socket> {
    let (domain, any) = if v6 {
        (Domain::IPV6, IpAddr::V6(Ipv6Addr::UNSPECIFIED))
    } else {
        (Domain::IPV4, IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    };
    let s = udp(domain)?;
    s.set_reuse_address(true)?;
    if v6 {
        sys::want_hops_and_ifindex_v6(s.as_fd())?;
    } else {
        sys::want_ttl_and_ifindex_v4(s.as_fd())?;
    }
    s.bind(&SockAddr::from(SocketAddr::new(any, port)))?;
    Ok(s)
}

/// Where a session's packets go and come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub peer: IpAddr,
    /// Interface name and index, for link-local peers (and any peer the
    /// config pins to an interface).
    pub interface: Option<(String, u32)>,
    /// Source address; the kernel chooses when absent.
    pub local: Option<IpAddr>,
}

impl Endpoint {
    /// The peer's control port, scoped to the interface.
    pub fn destination(&self) -> SocketAddr {
        match self.peer {
            IpAddr::V6(a) => SocketAddr::V6(SocketAddrV6::new(a, CONTROL_PORT, 0, self.ifindex())),
            IpAddr::V4(a) => SocketAddr::new(IpAddr::V4(a), CONTROL_PORT),
        }
    }

    /// The interface index the session is bound to, 0 when none.
    pub fn ifindex(&self) -> u32 {
        self.interface.as_ref().map_or(0, |i| i.1)
    }

    /// Whether a packet from `source` that arrived on `ifindex` can belong
    /// to this session: single hop means the peer's own address, and for
    /// a session on an interface, that interface (RFC 5881 §3, §4).
    pub fn accepts(&self, source: IpAddr, ifindex: u32) -> bool {
        source == self.peer && (self.ifindex() == 0 || self.ifindex() == ifindex)
    }
}

/// The send socket of one family: bound to the first free source port
/// from `start` on (wrapping within 49152-65535), TTL / hop limit 255.
pub fn sender(v6: bool, start: u16) -> io::Result<(Socket, u16)> {
    let s = udp(if v6 { Domain::IPV6 } else { Domain::IPV4 })?;
    if v6 {
        s.set_unicast_hops_v6(u32::from(TTL))?;
    } else {
        s.set_ttl_v4(u32::from(TTL))?;
    }
    let any = if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    let span = u32::from(SOURCE_PORTS.end() - SOURCE_PORTS.start()) + 1;
    let first =
        u32::from(start.clamp(*SOURCE_PORTS.start(), *SOURCE_PORTS.end()) - SOURCE_PORTS.start());
    let mut last_err = io::Error::from(io::ErrorKind::AddrInUse);
    for i in 0..span {
        let port = SOURCE_PORTS.start() + ((first + i) % span) as u16;
        match s.bind(&SockAddr::from(SocketAddr::new(any, port))) {
            Ok(()) => return Ok((s, port)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_err = e,
            Err(e) => return Err(e),
        }
    }
    Err(last_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(peer: &str, interface: Option<u32>) -> Endpoint {
        Endpoint {
            peer: peer.parse().unwrap_or_else(|e| panic!("{e}")),
            interface: interface.map(|i| (format!("if{i}"), i)),
            local: None,
        }
    }

    #[test]
    fn only_the_peer_on_its_interface_is_accepted() {
        let ll = ep("fe80::1", Some(3));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap_or_else(|e| panic!("{e}"));
        assert!(ll.accepts(ip("fe80::1"), 3));
        assert!(!ll.accepts(ip("fe80::1"), 4), "same address, other link");
        assert!(!ll.accepts(ip("fe80::2"), 3), "other address, same link");
        let global = ep("2001:db8::1", None);
        assert!(global.accepts(ip("2001:db8::1"), 7));
        assert!(!global.accepts(ip("2001:db8::2"), 7));
    }

    #[test]
    fn link_local_destinations_carry_their_interface() {
        let d = ep("fe80::1", Some(3)).destination();
        assert_eq!(d.port(), CONTROL_PORT);
        match d {
            SocketAddr::V6(a) => assert_eq!(a.scope_id(), 3),
            SocketAddr::V4(_) => panic!("{d}"),
        }
    }

    #[test]
    fn the_send_socket_takes_a_port_in_range_and_skips_used_ones() {
        let (a, pa) = sender(true, 65535).unwrap_or_else(|e| panic!("{e}"));
        assert!(SOURCE_PORTS.contains(&pa));
        let (_b, pb) = sender(true, pa).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(pa, pb, "a used port is skipped");
        assert!(SOURCE_PORTS.contains(&pb));
        assert_eq!(a.unicast_hops_v6().unwrap_or_else(|e| panic!("{e}")), 255);
        let (c, pc) = sender(false, 49152).unwrap_or_else(|e| panic!("{e}"));
        assert!(SOURCE_PORTS.contains(&pc));
        assert_eq!(c.ttl_v4().unwrap_or_else(|e| panic!("{e}")), 255);
    }
}
