//! The calls socket2 does not cover, and the only `unsafe` of the
//! crate: asking for the received TTL and arrival interface,
//! `recvmsg(2)` with its control messages (RFC 5881 §5 needs the TTL or
//! hop limit of every received packet; a link-local peer is known by its
//! address *and* interface), and `sendmsg(2)` with a packet-info message
//! choosing the interface and source address of each packet, so that one
//! send socket per family serves every session.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};

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

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn set_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    opt: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `v` lives across the call and its size is passed.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (&v as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// IP_RECVTTL and IP_PKTINFO on an IPv4 socket.
pub fn want_ttl_and_ifindex_v4(fd: BorrowedFd<'_>) -> io::Result<()> {
    set_int(fd, libc::IPPROTO_IP, libc::IP_RECVTTL, 1)?;
    set_int(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)
}

/// IPV6_RECVHOPLIMIT and IPV6_RECVPKTINFO on an IPv6 socket.
pub fn want_hops_and_ifindex_v6(fd: BorrowedFd<'_>) -> io::Result<()> {
    set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)?;
    set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)
}

/// `recvmsg(2)` into `buf` on a non-blocking socket.
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Meta> {
    // SAFETY: all-zero is a valid sockaddr_storage and msghdr.
    let mut addr: libc::sockaddr_storage = unsafe { zeroed() };
    let mut control = [0u64; 32];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut addr as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 32]>() as _;
    // SAFETY: every pointer in `msg` points to a live buffer of the size
    // given, for the duration of the call.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let source = sockaddr(&addr)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "source of unknown family"))?;
    let mut meta = Meta {
        len: n as usize,
        source,
        ttl: None,
        ifindex: 0,
    };
    // SAFETY: the CMSG_* walk stays inside `control`, whose length the
    // kernel set in msg_controllen; each data read is bounds-checked
    // against cmsg_len first.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            let room = ((*c).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::IPPROTO_IP, libc::IP_TTL) | (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT)
                    if room >= size_of::<libc::c_int>() =>
                {
                    let v = std::ptr::read_unaligned(data.cast::<libc::c_int>());
                    meta.ttl = u8::try_from(v).ok();
                }
                (libc::IPPROTO_IP, libc::IP_PKTINFO) if room >= size_of::<libc::in_pktinfo>() => {
                    let p = std::ptr::read_unaligned(data.cast::<libc::in_pktinfo>());
                    meta.ifindex = u32::try_from(p.ipi_ifindex).unwrap_or(0);
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO)
                    if room >= size_of::<libc::in6_pktinfo>() =>
                {
                    let p = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                    meta.ifindex = p.ipi6_ifindex;
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(&msg, c);
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
    let name = socket2::SockAddr::from(to);
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr().cast_mut().cast(),
        iov_len: bytes.len(),
    };
    // SAFETY: all-zero is a valid msghdr.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = name.as_ptr().cast_mut().cast();
    msg.msg_namelen = name.len();
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    let (level, kind, len) = match to {
        SocketAddr::V6(_) => (
            libc::IPPROTO_IPV6,
            libc::IPV6_PKTINFO,
            size_of::<libc::in6_pktinfo>(),
        ),
        SocketAddr::V4(_) => (
            libc::IPPROTO_IP,
            libc::IP_PKTINFO,
            size_of::<libc::in_pktinfo>(),
        ),
    };
    // SAFETY: CMSG_SPACE of a packet-info struct (at most 28 bytes) fits
    // the 64 bytes of `control`; the header and data written below stay
    // inside it, and the data is written unaligned.
    unsafe {
        msg.msg_controllen = libc::CMSG_SPACE(len as u32) as _;
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() {
            return Err(io::Error::other("no room for a control message"));
        }
        (*c).cmsg_level = level;
        (*c).cmsg_type = kind;
        (*c).cmsg_len = libc::CMSG_LEN(len as u32) as _;
        let data = libc::CMSG_DATA(c);
        match to {
            SocketAddr::V6(_) => {
                let addr = match from {
                    Some(IpAddr::V6(a)) => a.octets(),
                    _ => [0; 16],
                };
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr { s6_addr: addr },
                    ipi6_ifindex: ifindex,
                };
                std::ptr::write_unaligned(data.cast::<libc::in6_pktinfo>(), info);
            }
            SocketAddr::V4(_) => {
                let addr = match from {
                    Some(IpAddr::V4(a)) => u32::from(a).to_be(),
                    _ => 0,
                };
                let info = libc::in_pktinfo {
                    ipi_ifindex: ifindex as libc::c_int,
                    ipi_spec_dst: libc::in_addr { s_addr: addr },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                std::ptr::write_unaligned(data.cast::<libc::in_pktinfo>(), info);
            }
        }
    }
    // SAFETY: every pointer in `msg` points to a live buffer of the size
    // given, for the duration of the call; the kernel only reads them.
    let n = unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

fn sockaddr(a: &libc::sockaddr_storage) -> Option<SocketAddr> {
    let p: *const libc::sockaddr_storage = a;
    match i32::from(a.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, and
            // sockaddr_storage is large and aligned enough for it.
            let s = unsafe { &*p.cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(s.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(s.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let s = unsafe { &*p.cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(s.sin6_addr.s6_addr),
                u16::from_be(s.sin6_port),
                s.sin6_flowinfo,
                s.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// The interface index of `name` (None when it does not exist).
pub fn if_index(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
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
