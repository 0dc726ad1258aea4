//! Socket options BGP sessions need beyond plain TCP: TCP MD5 signatures
//! (RFC 2385) and the Generalized TTL Security Mechanism (RFC 5082).
//! Hop limits go through `socket2`; the options it does not name through
//! `nix` with the declarations in `crate::sys`.

use std::io;
use std::mem::offset_of;
use std::net::IpAddr;
use std::os::fd::AsFd;

use nix::sys::socket::setsockopt;
use socket2::SockRef;

use crate::sys::{self, TcpMd5Sig, SOCKADDR_STORAGE_LEN};

pub use crate::sys::MD5_MAX_KEY_LEN;

/// RFC 5082 §3: what we send with, and the least we accept (one hop).
const GTSM_SEND: u8 = 255;
const GTSM_MIN: libc::c_int = 254;

/// Sets (or, with an empty key, removes) the RFC 2385 key for segments
/// to and from `peer` on `socket`. On a listening socket this is what lets
/// the peer's signed SYN in; on a connecting socket it must be set before
/// `connect`. `v6_socket` says whether `socket` is AF_INET6, in which case
/// an IPv4 peer is written as an IPv4-mapped address, as the kernel
/// matches it.
pub fn set_md5_key(
    socket: &impl AsFd,
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
    let mut sig = TcpMd5Sig {
        addr: md5_address(peer, v6_socket),
        flags: 0,
        prefix_len: 0,
        key_len: key.len() as u16,
        ifindex: 0,
        key: [0; MD5_MAX_KEY_LEN],
    };
    if let Some(dst) = sig.key.get_mut(..key.len()) {
        dst.copy_from_slice(key);
    }
    setsockopt(socket, sys::Md5Sig, &sig).map_err(io::Error::from)
}

/// The bytes of the `sockaddr_in` (IPv4 peer on an IPv4 socket) or
/// `sockaddr_in6` (anything on an IPv6 socket, IPv4 as mapped) that
/// `tcp_md5sig` names the peer with; port, flow info and scope stay zero.
fn md5_address(peer: IpAddr, v6_socket: bool) -> [u8; SOCKADDR_STORAGE_LEN] {
    let (family, at, octets) = match (peer, v6_socket) {
        (IpAddr::V4(v4), false) => (
            libc::AF_INET,
            offset_of!(libc::sockaddr_in, sin_addr),
            v4.octets().to_vec(),
        ),
        (peer, _) => {
            let v6 = match peer {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            (
                libc::AF_INET6,
                offset_of!(libc::sockaddr_in6, sin6_addr),
                v6.octets().to_vec(),
            )
        }
    };
    let mut out = [0u8; SOCKADDR_STORAGE_LEN];
    // sin_family and sin6_family both come first, in host byte order.
    let family = (family as libc::sa_family_t).to_ne_bytes();
    if let Some(dst) = out.get_mut(..family.len()) {
        dst.copy_from_slice(&family);
    }
    if let Some(dst) = out.get_mut(at..at + octets.len()) {
        dst.copy_from_slice(&octets);
    }
    out
}

/// RFC 5082 §3: send with TTL (hop limit) 255 and accept only segments that
/// arrived with at least 254, i.e. from a directly connected peer.
pub fn set_gtsm(socket: &impl AsFd, v6_socket: bool) -> io::Result<()> {
    let s = SockRef::from(socket);
    let send = u32::from(GTSM_SEND);
    if v6_socket {
        s.set_unicast_hops_v6(send)?;
        setsockopt(socket, sys::MinHopCount, &GTSM_MIN)?;
        // An IPv4 peer on a dual-stack socket arrives as IPv4.
        let _ = s.set_ttl_v4(send);
        let _ = setsockopt(socket, sys::MinTtl, &GTSM_MIN);
        Ok(())
    } else {
        s.set_ttl_v4(send)?;
        setsockopt(socket, sys::MinTtl, &GTSM_MIN).map_err(io::Error::from)
    }
}

/// Makes a listening socket keep each connection's SYN headers, so the
/// hop limit the peer sent with can be checked after `accept` (GTSM on an
/// accepted socket only guards the segments that come after it is set).
pub fn save_syn(listener: &impl AsFd) -> io::Result<()> {
    setsockopt(listener, sys::SaveSyn, &true).map_err(io::Error::from)
}

/// The TTL / hop limit of the SYN that opened an accepted connection, from
/// the headers [`save_syn`] kept; `None` when none were saved.
pub fn syn_hop_limit(stream: &impl AsFd) -> io::Result<Option<u8>> {
    let mut buf = [0u8; 512];
    let len = sys::saved_syn(stream, &mut buf)?;
    let header = buf.get(..len).unwrap_or_default();
    // IPv4: TTL is octet 8; IPv6: hop limit is octet 7 (RFC 791, RFC 8200).
    Ok(match header.first().map(|b| b >> 4) {
        Some(4) => header.get(8).copied(),
        Some(6) => header.get(7).copied(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::getsockopt;
    use socket2::{Domain, Socket, Type};
    use std::net::{SocketAddr, TcpListener};
    use std::time::Duration;

    /// A SYN the kernel drops leaves the connect waiting; this long is
    /// enough to tell on loopback, where an accepted one takes microseconds.
    const DROPPED_AFTER: Duration = Duration::from_millis(300);
    const ACCEPTED_WITHIN: Duration = Duration::from_secs(5);

    fn listen(at: &str) -> (TcpListener, SocketAddr) {
        let at: SocketAddr = at.parse().expect("address");
        let s = Socket::new(Domain::for_address(at), Type::STREAM, None).expect("socket");
        if at.is_ipv6() {
            // [::] takes IPv4 peers too, as mapped addresses.
            s.set_only_v6(false).expect("dual stack");
        }
        s.bind(&at.into()).expect("bind");
        s.listen(16).expect("listen");
        let l = TcpListener::from(s);
        let addr = l.local_addr().expect("local address");
        (l, addr)
    }

    /// Connects to `to` from a socket `prepare` has set up first.
    fn connect(
        to: SocketAddr,
        wait: Duration,
        prepare: impl FnOnce(&Socket) -> io::Result<()>,
    ) -> io::Result<Socket> {
        let s = Socket::new(Domain::for_address(to), Type::STREAM, None)?;
        prepare(&s)?;
        s.connect_timeout(&to.into(), wait)?;
        Ok(s)
    }

    fn plain(_: &Socket) -> io::Result<()> {
        Ok(())
    }

    fn signed(key: &'static [u8], peer: SocketAddr) -> impl FnOnce(&Socket) -> io::Result<()> {
        move |s| set_md5_key(s, peer.is_ipv6(), peer.ip(), key)
    }

    fn dropped(r: io::Result<Socket>) -> bool {
        matches!(r, Err(e) if e.kind() == io::ErrorKind::TimedOut)
    }

    #[test]
    fn md5_address_is_a_sockaddr_of_the_socket_family() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let family = |a: &[u8]| libc::c_int::from(u16::from_ne_bytes([a[0], a[1]]));
        // sockaddr_in: family, port, then the address at 4.
        let a = md5_address(v4, false);
        assert_eq!(family(&a), libc::AF_INET);
        assert_eq!(a[4..8], [192, 0, 2, 1]);
        assert!(a[2..4].iter().chain(&a[8..]).all(|b| *b == 0));
        // sockaddr_in6: family, port, flow info, then the address at 8.
        let a = md5_address(v4, true);
        assert_eq!(family(&a), libc::AF_INET6);
        assert_eq!(
            a[8..24],
            "::ffff:192.0.2.1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
        );
        assert!(a[2..8].iter().chain(&a[24..]).all(|b| *b == 0));
        let a = md5_address(v6, true);
        assert_eq!(family(&a), libc::AF_INET6);
        assert_eq!(
            a[8..24],
            "2001:db8::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
        );
    }

    #[test]
    fn md5_key_admits_only_signed_syns_and_removing_it_opens_up() {
        let (l, addr) = listen("127.0.0.1:0");
        set_md5_key(&l, false, addr.ip(), b"right").unwrap();
        assert!(
            dropped(connect(addr, DROPPED_AFTER, plain)),
            "unsigned SYN got in"
        );
        assert!(
            dropped(connect(addr, DROPPED_AFTER, signed(b"wrong", addr))),
            "wrongly signed SYN got in"
        );
        connect(addr, ACCEPTED_WITHIN, signed(b"right", addr)).expect("signed connect");
        set_md5_key(&l, false, addr.ip(), &[]).unwrap();
        connect(addr, ACCEPTED_WITHIN, plain).expect("unsigned connect once the key is gone");
        let too_long = [b'x'; MD5_MAX_KEY_LEN + 1];
        assert!(set_md5_key(&l, false, addr.ip(), &too_long).is_err());
    }

    #[test]
    fn md5_key_on_a_dual_stack_listener_for_ipv4_and_ipv6_peers() {
        // An IPv4 peer of an IPv6 socket: the key is for the mapped address.
        let (l, addr) = listen("[::]:0");
        let v4: SocketAddr = format!("127.0.0.1:{}", addr.port()).parse().unwrap();
        set_md5_key(&l, true, v4.ip(), b"k4").unwrap();
        assert!(
            dropped(connect(v4, DROPPED_AFTER, plain)),
            "unsigned IPv4 SYN got in"
        );
        connect(v4, ACCEPTED_WITHIN, signed(b"k4", v4)).expect("signed IPv4 connect");
        let v6: SocketAddr = format!("[::1]:{}", addr.port()).parse().unwrap();
        set_md5_key(&l, true, v6.ip(), b"k6").unwrap();
        assert!(
            dropped(connect(v6, DROPPED_AFTER, plain)),
            "unsigned IPv6 SYN got in"
        );
        connect(v6, ACCEPTED_WITHIN, signed(b"k6", v6)).expect("signed IPv6 connect");
    }

    #[test]
    fn gtsm_options_read_back() {
        let s4 = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        set_gtsm(&s4, false).unwrap();
        assert_eq!(s4.ttl_v4().unwrap(), 255);
        assert_eq!(getsockopt(&s4, sys::MinTtl).unwrap(), 254);
        let s6 = Socket::new(Domain::IPV6, Type::STREAM, None).unwrap();
        set_gtsm(&s6, true).unwrap();
        assert_eq!(s6.unicast_hops_v6().unwrap(), 255);
        assert_eq!(getsockopt(&s6, sys::MinHopCount).unwrap(), 254);
        assert_eq!(s6.ttl_v4().unwrap(), 255);
        assert_eq!(getsockopt(&s6, sys::MinTtl).unwrap(), 254);
        let l = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        assert!(!getsockopt(&l, sys::SaveSyn).unwrap());
        save_syn(&l).unwrap();
        assert!(getsockopt(&l, sys::SaveSyn).unwrap());
    }

    #[test]
    fn gtsm_drops_syns_below_254_and_takes_those_sent_with_255() {
        for at in ["127.0.0.1:0", "[::1]:0"] {
            let (l, addr) = listen(at);
            set_gtsm(&l, addr.is_ipv6()).unwrap();
            save_syn(&l).unwrap();
            // Loopback SYNs leave with the default TTL (64).
            assert!(
                dropped(connect(addr, DROPPED_AFTER, plain)),
                "{at}: TTL 64 got in"
            );
            let v6 = addr.is_ipv6();
            let _client =
                connect(addr, ACCEPTED_WITHIN, |s| set_gtsm(s, v6)).expect("GTSM connect");
            let (accepted, _) = l.accept().unwrap();
            assert_eq!(syn_hop_limit(&accepted).unwrap(), Some(255), "{at}");
        }
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
        // Without save_syn there is nothing to read.
        let (other, _) = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
            l.accept().unwrap()
        };
        assert!(!matches!(syn_hop_limit(&other), Ok(Some(_))));
    }
}
