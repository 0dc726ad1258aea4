//! Socket options BGP sessions need beyond plain TCP: TCP MD5 signatures
//! (RFC 2385) and the Generalized TTL Security Mechanism (RFC 5082).

use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

/// `TCP_MD5SIG_MAXKEYLEN` in linux/tcp.h.
pub const MD5_MAX_KEY_LEN: usize = 80;

/// `struct tcp_md5sig` from linux/tcp.h (not in the libc crate).
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefix_len: u8,
    key_len: u16,
    ifindex: libc::c_int,
    key: [u8; MD5_MAX_KEY_LEN],
}

/// Sets (or, with an empty key, removes) the RFC 2385 key for segments
/// to and from `peer` on `socket`. On a listening socket this is what lets
/// the peer's signed SYN in; on a connecting socket it must be set before
/// `connect`. `v6_socket` says whether `socket` is AF_INET6, in which case
/// an IPv4 peer is written as an IPv4-mapped address, as the kernel
/// matches it.
pub fn set_md5_key(
    socket: &impl AsRawFd,
    v6_socket: bool,
    peer: IpAddr,
    key: &[u8],
) -> io::Result<()> {
    if key.len() > MD5_MAX_KEY_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("TCP MD5 key longer than {MD5_MAX_KEY_LEN} bytes"),
        ));
    }
    // SAFETY: an all-zero tcp_md5sig (sockaddr_storage included) is valid.
    let mut sig: TcpMd5Sig = unsafe { std::mem::zeroed() };
    let storage = &mut sig.addr as *mut libc::sockaddr_storage;
    match (peer, v6_socket) {
        (IpAddr::V4(v4), false) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
            unsafe { std::ptr::write(storage.cast::<libc::sockaddr_in>(), sin) };
        }
        (peer, _) => {
            let v6 = match peer {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            // SAFETY: sockaddr_in6 is plain data; zero is a valid value.
            let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: v6.octets(),
            };
            // SAFETY: as above.
            unsafe { std::ptr::write(storage.cast::<libc::sockaddr_in6>(), sin6) };
        }
    }
    sig.key_len = key.len() as u16;
    if let Some(dst) = sig.key.get_mut(..key.len()) {
        dst.copy_from_slice(key);
    }
    setsockopt(socket, libc::IPPROTO_TCP, libc::TCP_MD5SIG, &sig)
}

/// RFC 5082 §3: send with TTL (hop limit) 255 and accept only segments that
/// arrived with at least 254, i.e. from a directly connected peer.
pub fn set_gtsm(socket: &impl AsRawFd, v6_socket: bool) -> io::Result<()> {
    let max: libc::c_int = 255;
    let min: libc::c_int = 254;
    if v6_socket {
        setsockopt(socket, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &max)?;
        setsockopt(socket, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, &min)?;
        // An IPv4 peer on a dual-stack socket arrives as IPv4.
        let _ = setsockopt(socket, libc::IPPROTO_IP, libc::IP_TTL, &max);
        let _ = setsockopt(socket, libc::IPPROTO_IP, libc::IP_MINTTL, &min);
        Ok(())
    } else {
        setsockopt(socket, libc::IPPROTO_IP, libc::IP_TTL, &max)?;
        setsockopt(socket, libc::IPPROTO_IP, libc::IP_MINTTL, &min)
    }
}

/// Makes a listening socket keep each connection's SYN headers, so the
/// hop limit the peer sent with can be checked after `accept` (GTSM on an
/// accepted socket only guards the segments that come after it is set).
pub fn save_syn(listener: &impl AsRawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    setsockopt(listener, libc::IPPROTO_TCP, libc::TCP_SAVE_SYN, &on)
}

/// The TTL / hop limit of the SYN that opened an accepted connection, from
/// the headers [`save_syn`] kept; `None` when none were saved.
pub fn syn_hop_limit(stream: &impl AsRawFd) -> io::Result<Option<u8>> {
    let mut buf = [0u8; 512];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: buf and len describe a writable buffer of len bytes.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_SAVED_SYN,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let header = buf.get(..len as usize).unwrap_or_default();
    // IPv4: TTL is octet 8; IPv6: hop limit is octet 7 (RFC 791, RFC 8200).
    Ok(match header.first().map(|b| b >> 4) {
        Some(4) => header.get(8).copied(),
        Some(6) => header.get(7).copied(),
        _ => None,
    })
}

fn setsockopt<T>(
    socket: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: value points to a live T of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (value as *const T).cast::<libc::c_void>(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    #[test]
    fn md5_struct_matches_the_kernel_abi() {
        // 128 (sockaddr_storage) + 1 + 1 + 2 + 4 + 80.
        assert_eq!(std::mem::size_of::<TcpMd5Sig>(), 216);
    }

    #[test]
    fn md5_and_gtsm_apply_to_real_sockets() {
        let l6 = std::net::TcpListener::bind("[::1]:0").unwrap();
        set_md5_key(&l6, true, "2001:db8::1".parse().unwrap(), b"secret").unwrap();
        set_md5_key(&l6, true, "192.0.2.1".parse().unwrap(), b"secret").unwrap();
        set_gtsm(&l6, true).unwrap();
        let l4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        set_md5_key(&l4, false, "192.0.2.1".parse().unwrap(), b"secret").unwrap();
        set_gtsm(&l4, false).unwrap();
        let too_long = [b'x'; MD5_MAX_KEY_LEN + 1];
        assert!(set_md5_key(&l4, false, "192.0.2.1".parse().unwrap(), &too_long).is_err());
    }

    #[test]
    fn saved_syn_tells_the_hop_limit() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        save_syn(&listener).unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        // Loopback SYNs leave with the default TTL (64).
        let ttl = syn_hop_limit(&accepted).unwrap().expect("a saved SYN");
        assert_eq!(u32::from(ttl), client.ttl().unwrap());
    }

    #[test]
    fn md5_mismatch_blocks_and_match_connects() {
        use std::time::Duration;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        set_md5_key(&listener, false, "127.0.0.1".parse().unwrap(), b"right").unwrap();
        // Unsigned SYNs are dropped by the kernel: the connect times out.
        let plain = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300));
        assert!(plain.is_err(), "an unsigned connection got through");
        // A signed one with the same key is accepted.
        let sock = socket2_like_connect(addr, b"right").expect("signed connect");
        drop(sock);
    }

    /// Connects a blocking socket with an MD5 key set before connect.
    fn socket2_like_connect(addr: SocketAddr, key: &[u8]) -> io::Result<std::net::TcpStream> {
        use std::os::fd::FromRawFd;
        // SAFETY: plain socket(2) call; the fd is owned by the TcpStream below.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh socket we own.
        let stream = unsafe { std::net::TcpStream::from_raw_fd(fd) };
        set_md5_key(&stream, false, addr.ip(), key)?;
        let SocketAddr::V4(v4) = addr else {
            return Err(io::Error::other("v4 only"));
        };
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(v4.ip().octets()),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: sin is a valid sockaddr_in of the size given.
        let rc = unsafe {
            libc::connect(
                fd,
                (&sin as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stream)
    }
}
