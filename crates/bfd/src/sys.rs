//! The calls socket2 does not cover, through nix: asking for the
//! received TTL and arrival interface, `recvmsg(2)` with its control
//! messages (RFC 5881 §5 needs the TTL or hop limit of every received
//! packet; a link-local peer is known by its address *and* interface),
//! and `sendmsg(2)` with a packet-info message choosing the interface and
//! source address of each packet, so that one send socket per family
//! serves every session. The crate's one `unsafe` call is here too:
//! registering a socket with tokio.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::sys::socket::{
    recvmsg, sendmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned, MsgFlags,
    SockaddrStorage,
};

/// One received datagram and what the kernel said about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub len: usize,
    pub source: SocketAddr,
    /// IP TTL or IPv6 hop limit, when the kernel reported it.
    pub ttl: Option<u8>,
    /// The interface the packet arrived on (0 when unknown).
    pub ifindex: u32,
}

/// IP_RECVTTL and IP_PKTINFO on an IPv4 socket.
pub fn want_ttl_and_ifindex_v4(fd: BorrowedFd<'_>) -> io::Result<()> {
    setsockopt(&fd, sockopt::Ipv4RecvTtl, &true)?;
    setsockopt(&fd, sockopt::Ipv4PacketInfo, &true)?;
    Ok(())
}

/// IPV6_RECVHOPLIMIT and IPV6_RECVPKTINFO on an IPv6 socket.
pub fn want_hops_and_ifindex_v6(fd: BorrowedFd<'_>) -> io::Result<()> {
    setsockopt(&fd, sockopt::Ipv6RecvHopLimit, &true)?;
    setsockopt(&fd, sockopt::Ipv6RecvPacketInfo, &true)?;
    Ok(())
}

/// `recvmsg(2)` into `buf` on a non-blocking socket.
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Meta> {
    let mut control = nix::cmsg_space!(libc::c_int, libc::in6_pktinfo);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(
        fd.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::MSG_DONTWAIT,
    )?;
    let source = msg
        .address
        .as_ref()
        .and_then(|a| {
            a.as_sockaddr_in6()
                .map(|a| SocketAddr::V6((*a).into()))
                .or_else(|| a.as_sockaddr_in().map(|a| SocketAddr::V4((*a).into())))
        })
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "source of unknown family"))?;
    let mut meta = Meta {
        len: msg.bytes,
        source,
        ttl: None,
        ifindex: 0,
    };
    for c in msg.cmsgs()? {
        match c {
            ControlMessageOwned::Ipv4Ttl(t) => meta.ttl = u8::try_from(t).ok(),
            ControlMessageOwned::Ipv6HopLimit(h) => meta.ttl = u8::try_from(h).ok(),
            ControlMessageOwned::Ipv4PacketInfo(p) => {
                meta.ifindex = u32::try_from(p.ipi_ifindex).unwrap_or(0)
            }
            ControlMessageOwned::Ipv6PacketInfo(p) => meta.ifindex = p.ipi6_ifindex,
            _ => {}
        }
    }
    Ok(meta)
}

/// `sendmsg(2)` of `bytes` to `to`, out of interface `ifindex` (0: as
/// routed) from source address `from` (None: the kernel's choice), on a
/// non-blocking socket of `to`'s family.
pub fn send(
    fd: BorrowedFd<'_>,
    bytes: &[u8],
    to: SocketAddr,
    from: Option<IpAddr>,
    ifindex: u32,
) -> io::Result<usize> {
    let iov = [IoSlice::new(bytes)];
    let dest = SockaddrStorage::from(to);
    let flags = MsgFlags::MSG_DONTWAIT;
    let n = match to {
        SocketAddr::V6(_) => {
            let addr = match from {
                Some(IpAddr::V6(a)) => a.octets(),
                _ => [0; 16],
            };
            let info = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr { s6_addr: addr },
                ipi6_ifindex: ifindex,
            };
            let cmsg = [ControlMessage::Ipv6PacketInfo(&info)];
            sendmsg(fd.as_raw_fd(), &iov, &cmsg, flags, Some(&dest))?
        }
        SocketAddr::V4(_) => {
            let addr = match from {
                Some(IpAddr::V4(a)) => u32::from(a).to_be(),
                _ => 0,
            };
            let info = libc::in_pktinfo {
                ipi_ifindex: libc::c_int::try_from(ifindex).unwrap_or(0),
                ipi_spec_dst: libc::in_addr { s_addr: addr },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            let cmsg = [ControlMessage::Ipv4PacketInfo(&info)];
            sendmsg(fd.as_raw_fd(), &iov, &cmsg, flags, Some(&dest))?
        }
    };
    Ok(n)
}

/// The interface index of `name` (None when it does not exist).
pub fn if_index(name: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(name).ok()
}

/// Whether `ip` needs an interface to mean anything (link-local).
pub fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// Hands a socket to tokio's reactor.
pub fn register(s: socket2::Socket) -> io::Result<tokio::io::unix::AsyncFd<socket2::Socket>> {
    // SAFETY: the AsyncFd owns the socket, so its descriptor stays the
    // same open file for the AsyncFd's whole life.
    unsafe { tokio::io::unix::AsyncFd::register(s) }.map_err(|e| e.into_parts().1)
}
