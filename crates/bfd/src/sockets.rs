//! RFC 5881 single-hop sockets: one receive socket per family on port
//! 3784 (§4), and one send socket per session bound to its own source
//! port in 49152-65535 (§4), both with TTL / hop limit 255 (§5).
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
    pub local: Option<IpAddr>,
}

impl Endpoint {
    /// The peer's control port, scoped to the interface.
    pub fn destination(&self) -> SocketAddr {
        match self.peer {
            IpAddr::V6(a) => {
                let scope = self.interface.as_ref().map_or(0, |i| i.1);
                SocketAddr::V6(SocketAddrV6::new(a, CONTROL_PORT, 0, scope))
            }
            IpAddr::V4(a) => SocketAddr::new(IpAddr::V4(a), CONTROL_PORT),
        }
    }
}

/// A send socket for one session: bound to the interface and local
/// address if given, to the first free source port from `start` on
/// (wrapping within 49152-65535), TTL / hop limit 255.
pub fn sender(ep: &Endpoint, start: u16) -> io::Result<(Socket, u16)> {
    let v6 = ep.peer.is_ipv6();
    let s = udp(if v6 { Domain::IPV6 } else { Domain::IPV4 })?;
    if let Some((name, _)) = &ep.interface {
        s.bind_device(Some(name.as_bytes()))?;
    }
    if v6 {
        s.set_unicast_hops_v6(u32::from(TTL))?;
    } else {
        s.set_ttl_v4(u32::from(TTL))?;
    }
    let local = ep.local.unwrap_or(if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    });
    let span = u32::from(SOURCE_PORTS.end() - SOURCE_PORTS.start()) + 1;
    let first =
        u32::from(start.clamp(*SOURCE_PORTS.start(), *SOURCE_PORTS.end()) - SOURCE_PORTS.start());
    let mut last_err = io::Error::from(io::ErrorKind::AddrInUse);
    for i in 0..span {
        let port = SOURCE_PORTS.start() + ((first + i) % span) as u16;
        let addr = match local {
            IpAddr::V6(a) => {
                let scope = ep.interface.as_ref().map_or(0, |i| i.1);
                SocketAddr::V6(SocketAddrV6::new(a, port, 0, scope))
            }
            IpAddr::V4(a) => SocketAddr::new(IpAddr::V4(a), port),
        };
        match s.bind(&SockAddr::from(addr)) {
            Ok(()) => return Ok((s, port)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_err = e,
            Err(e) => return Err(e),
        }
    }
    Err(last_err)
}
