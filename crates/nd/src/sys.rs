//! The kernel interface of `nd` that neither `socket2` nor `nix` covers, in
//! one place: the only module of the crate where `unsafe` is allowed (see
//! the crate README for why each item is here).
//!
//! `ICMPV6_FILTER` is declared with `nix`'s own `sockopt_impl!`, so its
//! `setsockopt`/`getsockopt` calls are `nix`'s. The two interface ioctls
//! are raw: `nix` only offers macros that generate `unsafe fn`s for them,
//! and `socket2` has none. Handing the socket to tokio's reactor is
//! `unsafe` in tokio itself ([`register`]).

use std::io;
use std::os::fd::{AsFd, AsRawFd};

use nix::{getsockopt_impl, setsockopt_impl, sockopt_impl};
use socket2::Socket;
use tokio::io::unix::AsyncFd;

/// Registers `sock` with the tokio reactor of the calling task.
pub fn register(sock: Socket) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: a `Socket` owns its descriptor: it is open, closed only when
    // the `Socket` drops (with the `AsyncFd`), and `as_raw_fd` always
    // returns that same descriptor. Nothing hands out a `&mut Socket` that
    // could replace it (`NdSocket` keeps the `AsyncFd` private).
    unsafe { AsyncFd::register(sock) }.map_err(|e| e.into_parts().1)
}

/// `ICMPV6_FILTER` (linux/icmpv6.h); not in the libc crate.
const ICMPV6_FILTER: libc::c_int = 1;

sockopt_impl!(
    /// `ICMPV6_FILTER`: a 256-bit mask over ICMPv6 types, one bit per type
    /// (bit `t & 31` of word `t >> 5`); a set bit blocks the type.
    Icmp6Filter,
    Both,
    libc::IPPROTO_ICMPV6,
    ICMPV6_FILTER,
    [u32; 8]
);

/// A `struct ifreq` naming `name`, or `InvalidInput` when the name cannot
/// be one (empty, too long for `IFNAMSIZ` with its NUL, or holding a NUL).
fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not an interface name"),
        ));
    }
    // SAFETY: ifreq is plain data (a name and a union of plain data), for
    // which all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    Ok(req)
}

/// `SIOCGIFFLAGS`: the `IFF_*` flags of interface `name`, asked through
/// `socket` (any socket of the namespace the answer should come from).
pub fn interface_flags(socket: &impl AsFd, name: &str) -> io::Result<libc::c_int> {
    let mut req = ifreq(name)?;
    // SAFETY: `req` is a valid ifreq whose name is NUL-terminated (checked
    // by `ifreq`) and outlives the call; SIOCGIFFLAGS writes only its
    // flags member.
    let rc = unsafe { libc::ioctl(socket.as_fd().as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union; any bit
    // pattern is a valid short.
    Ok(libc::c_int::from(unsafe { req.ifr_ifru.ifru_flags }))
}

/// `SIOCGIFHWADDR`: the hardware type (`ARPHRD_*`) of interface `name` and
/// the first six bytes of its hardware address.
pub fn hardware_address(socket: &impl AsFd, name: &str) -> io::Result<(u16, [u8; 6])> {
    let mut req = ifreq(name)?;
    // SAFETY: as in `interface_flags`; SIOCGIFHWADDR writes only the
    // hwaddr member (a sockaddr).
    let rc = unsafe { libc::ioctl(socket.as_fd().as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFHWADDR filled the hwaddr member of the union, a
    // sockaddr of plain data.
    let hw = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (dst, src) in mac.iter_mut().zip(hw.sa_data.iter()) {
        *dst = *src as u8;
    }
    Ok((hw.sa_family, mac))
}
