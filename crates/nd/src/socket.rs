//! A raw ICMPv6 socket bound to one interface, set up as RFC 4861 wants
//! neighbour discovery sent and received: hop limit 255 out (§6.1), the
//! hop limit of every received packet in hand (§6.1.1, §6.1.2), only
//! types 133 to 136 let in.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::packet;
use crate::NdError;

/// `ICMP6_FILTER` (linux/icmpv6.h): a 256-bit mask, a set bit blocks the
/// type.
const ICMP6_FILTER: libc::c_int = 1;
/// `SIOCGIFHWADDR` (linux/sockios.h).
const SIOCGIFHWADDR: libc::c_ulong = 0x8927;
/// `SIOCGIFFLAGS` (linux/sockios.h).
const SIOCGIFFLAGS: libc::c_ulong = 0x8913;

/// `struct ifreq` as far as `SIOCGIFHWADDR` needs it.
#[repr(C)]
struct IfReqHw {
    name: [libc::c_char; libc::IFNAMSIZ],
    hwaddr: libc::sockaddr,
    _pad: [u8; 8],
}

/// ff02::1, all nodes (RFC 4291 §2.7.1).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// ff02::2, all routers.
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// One received message: its ICMPv6 bytes, source and IP hop limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub bytes: Vec<u8>,
    pub source: Ipv6Addr,
    pub hop_limit: Option<u8>,
}

/// The socket.
#[derive(Debug)]
pub struct NdSocket {
    fd: AsyncFd<OwnedFd>,
    ifindex: u32,
    ifname: String,
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn set_int(fd: &OwnedFd, level: libc::c_int, opt: libc::c_int, v: libc::c_int) -> io::Result<()> {
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

/// The index of interface `name` (0 when it does not exist).
pub fn if_index(name: &str) -> u32 {
    let Ok(c) = std::ffi::CString::new(name) else {
        return 0;
    };
    // SAFETY: `c` is a valid NUL-terminated string for the call.
    unsafe { libc::if_nametoindex(c.as_ptr()) }
}

fn sockaddr(addr: Ipv6Addr, scope: u32) -> libc::sockaddr_in6 {
    // SAFETY: sockaddr_in6 is plain data; all-zero is a valid value.
    let mut sa: libc::sockaddr_in6 = unsafe { zeroed() };
    sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sa.sin6_addr.s6_addr = addr.octets();
    sa.sin6_scope_id = scope;
    sa
}

impl NdSocket {
    /// Opens the socket on `ifname`. Needs CAP_NET_RAW.
    pub fn open(ifname: &str) -> Result<NdSocket, NdError> {
        let ifindex = if_index(ifname);
        if ifindex == 0 || ifname.len() >= libc::IFNAMSIZ {
            return Err(NdError::NoInterface(ifname.to_string()));
        }
        let sys = |what: &'static str| {
            let name = ifname.to_string();
            move |source| NdError::Socket {
                ifname: name,
                what,
                source,
            }
        };
        // SAFETY: socket(2) has no memory preconditions.
        let raw = check(unsafe {
            libc::socket(
                libc::AF_INET6,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::IPPROTO_ICMPV6,
            )
        })
        .map_err(sys("socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6)"))?;
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the name bytes live across the call, length passed.
        check(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                ifname.as_ptr().cast(),
                ifname.len() as libc::socklen_t,
            )
        })
        .map_err(sys("SO_BINDTODEVICE"))?;
        // RFC 4861 §6.1.2, §7.1: sent with hop limit 255 so receivers know
        // it was not forwarded.
        for opt in [libc::IPV6_MULTICAST_HOPS, libc::IPV6_UNICAST_HOPS] {
            set_int(&fd, libc::IPPROTO_IPV6, opt, 255).map_err(sys("hop limit 255"))?;
        }
        set_int(
            &fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_MULTICAST_IF,
            ifindex as i32,
        )
        .map_err(sys("IPV6_MULTICAST_IF"))?;
        // Our own multicast RAs are no news.
        set_int(&fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, 0)
            .map_err(sys("IPV6_MULTICAST_LOOP"))?;
        set_int(&fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)
            .map_err(sys("IPV6_RECVHOPLIMIT"))?;
        let mut filter = [u32::MAX; 8];
        for t in [
            packet::ROUTER_SOLICITATION,
            packet::ROUTER_ADVERTISEMENT,
            packet::NEIGHBOR_SOLICITATION,
            packet::NEIGHBOR_ADVERTISEMENT,
        ] {
            if let Some(w) = filter.get_mut(usize::from(t >> 5)) {
                *w &= !(1u32 << (t & 31));
            }
        }
        // SAFETY: `filter` lives across the call, size passed.
        check(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_ICMPV6,
                ICMP6_FILTER,
                filter.as_ptr().cast(),
                size_of::<[u32; 8]>() as libc::socklen_t,
            )
        })
        .map_err(sys("ICMP6_FILTER"))?;
        // Router Solicitations go to all-routers (RFC 4861 §6.3.7). A
        // forwarding interface has joined already; EADDRINUSE then.
        let mreq = libc::ipv6_mreq {
            ipv6mr_multiaddr: libc::in6_addr {
                s6_addr: ALL_ROUTERS.octets(),
            },
            ipv6mr_interface: ifindex,
        };
        // SAFETY: `mreq` lives across the call, size passed.
        let joined = check(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_IPV6,
                libc::IPV6_ADD_MEMBERSHIP,
                (&mreq as *const libc::ipv6_mreq).cast(),
                size_of::<libc::ipv6_mreq>() as libc::socklen_t,
            )
        });
        if let Err(e) = joined {
            if e.raw_os_error() != Some(libc::EADDRINUSE) {
                return Err(sys("join ff02::2")(e));
            }
        }
        // SAFETY: `fd` is an open socket owned by the AsyncFd from here on,
        // so it stays the same descriptor for the AsyncFd's whole life.
        let fd = unsafe { AsyncFd::register(fd) }
            .map_err(|e| sys("register with tokio")(e.into_parts().1))?;
        Ok(NdSocket {
            fd,
            ifindex,
            ifname: ifname.to_string(),
        })
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The interface's Ethernet address, if it has one (for the
    /// source link-layer address option, RFC 4861 §4.6.1).
    pub fn mac(&self) -> Option<packet::Mac> {
        // SAFETY: IfReqHw is plain data; all-zero is valid.
        let mut req: IfReqHw = unsafe { zeroed() };
        for (d, s) in req.name.iter_mut().zip(self.ifname.bytes()) {
            *d = s as libc::c_char;
        }
        // SAFETY: `req` is a properly sized ifreq for SIOCGIFHWADDR.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), SIOCGIFHWADDR, &mut req) };
        if r < 0 || req.hwaddr.sa_family != libc::ARPHRD_ETHER {
            return None;
        }
        let mut mac = [0u8; 6];
        for (d, s) in mac.iter_mut().zip(req.hwaddr.sa_data.iter()) {
            *d = *s as u8;
        }
        (mac != [0; 6]).then_some(mac)
    }

    /// Whether the interface is up with carrier (`IFF_UP` and
    /// `IFF_RUNNING`); `None` when it cannot be read (gone).
    pub fn link_running(&self) -> Option<bool> {
        // SAFETY: IfReqHw is plain data; all-zero is valid. Its layout
        // starts like `struct ifreq`, whose union holds the flags (a short)
        // where `hwaddr` begins.
        let mut req: IfReqHw = unsafe { zeroed() };
        for (d, s) in req.name.iter_mut().zip(self.ifname.bytes()) {
            *d = s as libc::c_char;
        }
        // SAFETY: `req` is a properly sized ifreq for SIOCGIFFLAGS.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), SIOCGIFFLAGS, &mut req) };
        if r < 0 {
            return None;
        }
        let flags = req.hwaddr.sa_family as libc::c_int;
        Some(flags & libc::IFF_UP != 0 && flags & libc::IFF_RUNNING != 0)
    }

    /// Sends `bytes` to `dst` on the interface.
    pub async fn send_to(&self, bytes: &[u8], dst: Ipv6Addr) -> io::Result<()> {
        let sa = sockaddr(dst, self.ifindex);
        self.fd
            .async_io(Interest::WRITABLE, |fd| {
                // SAFETY: `bytes` and `sa` live across the call; sizes passed.
                let r = unsafe {
                    libc::sendto(
                        fd.as_raw_fd(),
                        bytes.as_ptr().cast(),
                        bytes.len(),
                        0,
                        (&sa as *const libc::sockaddr_in6).cast(),
                        size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                    )
                };
                if r < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            })
            .await
    }

    /// Receives one message with its source and hop limit.
    pub async fn recv(&self) -> io::Result<Received> {
        self.fd
            .async_io(Interest::READABLE, |fd| {
                let mut buf = vec![0u8; 1500];
                // SAFETY: plain data; all-zero is valid.
                let mut src: libc::sockaddr_in6 = unsafe { zeroed() };
                let mut ctrl = [0u64; 16];
                let mut iov = libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: buf.len(),
                };
                // SAFETY: plain data; all-zero is valid.
                let mut msg: libc::msghdr = unsafe { zeroed() };
                msg.msg_name = (&mut src as *mut libc::sockaddr_in6).cast();
                msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
                msg.msg_iov = &mut iov;
                msg.msg_iovlen = 1;
                msg.msg_control = ctrl.as_mut_ptr().cast();
                msg.msg_controllen = size_of::<[u64; 16]>();
                // SAFETY: every buffer `msg` points to outlives the call and
                // its length is given.
                let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, 0) };
                if n < 0 {
                    return Err(io::Error::last_os_error());
                }
                buf.truncate(usize::try_from(n).unwrap_or(0));
                let mut hop_limit = None;
                // SAFETY: the CMSG macros walk the control buffer the
                // kernel filled, bounded by msg_controllen.
                unsafe {
                    let mut c = libc::CMSG_FIRSTHDR(&msg);
                    while !c.is_null() {
                        if (*c).cmsg_level == libc::IPPROTO_IPV6
                            && (*c).cmsg_type == libc::IPV6_HOPLIMIT
                        {
                            let v =
                                std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                            hop_limit = u8::try_from(v).ok();
                        }
                        c = libc::CMSG_NXTHDR(&msg, c);
                    }
                }
                Ok(Received {
                    bytes: buf,
                    source: Ipv6Addr::from(src.sin6_addr.s6_addr),
                    hop_limit,
                })
            })
            .await
    }
}

/// The IPv6 addresses on interface `ifname` (to ignore our own packets).
pub fn interface_addresses(ifname: &str) -> Vec<Ipv6Addr> {
    crate::addrs::interface_addresses()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.name == ifname)
        .filter_map(|a| match a.addr {
            std::net::IpAddr::V6(v6) => Some(v6),
            std::net::IpAddr::V4(_) => None,
        })
        .collect()
}
