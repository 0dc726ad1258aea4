//! The kernel interface of `bgp` that neither `socket2` nor `nix` names,
//! in one place: the only module of the crate where `unsafe` is allowed
//! (see the crate README for why each item is here).
//!
//! Socket options the libraries do not define are declared with `nix`'s
//! own `sockopt_impl!`, so the `setsockopt`/`getsockopt` calls and their
//! pointer and length handling are `nix`'s; what is ours is the option's
//! number and, for TCP MD5, the layout of its value. The one raw call is
//! [`saved_syn`].

use std::io;
use std::os::fd::{AsFd, AsRawFd};

use nix::{getsockopt_impl, setsockopt_impl, sockopt_impl};

/// `TCP_MD5SIG_MAXKEYLEN` in linux/tcp.h.
pub const MD5_MAX_KEY_LEN: usize = 80;

/// Size of `struct __kernel_sockaddr_storage` (linux/socket.h).
pub const SOCKADDR_STORAGE_LEN: usize = 128;

/// `struct tcp_md5sig` from linux/tcp.h (not in the libc crate). The
/// address is kept as the bytes of a `sockaddr_in` or `sockaddr_in6`, so
/// the value is plain data built without `unsafe`.
#[repr(C, align(8))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpMd5Sig {
    pub addr: [u8; SOCKADDR_STORAGE_LEN],
    pub flags: u8,
    pub prefix_len: u8,
    pub key_len: u16,
    pub ifindex: libc::c_int,
    pub key: [u8; MD5_MAX_KEY_LEN],
}

sockopt_impl!(
    /// `TCP_MD5SIG` (RFC 2385): set-only; the kernel has no getter.
    Md5Sig,
    SetOnly,
    libc::IPPROTO_TCP,
    libc::TCP_MD5SIG,
    TcpMd5Sig
);

sockopt_impl!(
    /// `IP_MINTTL` (RFC 5082): IPv4 segments with a lower TTL are dropped.
    MinTtl,
    Both,
    libc::IPPROTO_IP,
    libc::IP_MINTTL,
    libc::c_int
);

sockopt_impl!(
    /// `IPV6_MINHOPCOUNT` (RFC 5082): the same for IPv6 hop limits.
    MinHopCount,
    Both,
    libc::IPPROTO_IPV6,
    libc::IPV6_MINHOPCOUNT,
    libc::c_int
);

sockopt_impl!(
    /// `TCP_SAVE_SYN`: a listener keeps each connection's SYN headers.
    SaveSyn,
    Both,
    libc::IPPROTO_TCP,
    libc::TCP_SAVE_SYN,
    bool
);

/// `getsockopt(TCP_SAVED_SYN)`: copies the headers of the SYN that opened
/// `stream` into `buf` and returns their length. A raw call because the
/// length varies: `nix`'s struct getter insists on an exact size, its
/// string getter stops at the first zero byte (which IP headers have).
pub fn saved_syn(stream: &impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    let mut len = libc::socklen_t::try_from(buf.len()).unwrap_or(libc::socklen_t::MAX);
    // SAFETY: `buf` is writable for at least `len` bytes and both live
    // across the call; the kernel writes at most `len` bytes and stores the
    // count it wrote in `len`.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_fd().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_SAVED_SYN,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(len).unwrap_or(0).min(buf.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn md5_struct_matches_the_kernel_abi() {
        // linux/tcp.h: 128 (sockaddr_storage) + 1 + 1 + 2 + 4 + 80.
        assert_eq!(size_of::<TcpMd5Sig>(), 216);
        assert_eq!(offset_of!(TcpMd5Sig, flags), 128);
        assert_eq!(offset_of!(TcpMd5Sig, prefix_len), 129);
        assert_eq!(offset_of!(TcpMd5Sig, key_len), 130);
        assert_eq!(offset_of!(TcpMd5Sig, ifindex), 132);
        assert_eq!(offset_of!(TcpMd5Sig, key), 136);
        assert_eq!(size_of::<libc::sockaddr_storage>(), SOCKADDR_STORAGE_LEN);
    }
}
