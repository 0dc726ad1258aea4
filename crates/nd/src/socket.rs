//! A raw ICMPv6 socket bound to one interface, set up as RFC 4861 wants
//! neighbour discovery sent and received: hop limit 255 out (§6.1), the
//! hop limit of every received packet in hand (§6.1.1, §6.1.2), only
//! types 133 to 136 let in.

use std::io;
use std::io::IoSliceMut;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::sys::socket::{recvmsg, setsockopt, ControlMessageOwned, MsgFlags, SockaddrIn6};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::packet;
use crate::sys;
use crate::NdError;

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
    fd: AsyncFd<Socket>,
    ifindex: u32,
    ifname: String,
}

/// The index of interface `name` (0 when it does not exist).
pub fn if_index(name: &str) -> u32 {
    crate::addrs::if_index(name).unwrap_or(0)
}

/// The ICMPv6 filter that lets in only neighbour discovery (types 133 to
/// 136).
fn nd_only_filter() -> [u32; 8] {
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
    filter
}

impl NdSocket {
    /// Opens the socket on `ifname`. Needs CAP_NET_RAW.
    pub fn open(ifname: &str) -> Result<NdSocket, NdError> {
        let ifindex = if_index(ifname);
        if ifindex == 0 || ifname.len() >= libc::IFNAMSIZ {
            return Err(NdError::NoInterface(ifname.to_string()));
        }
        let fail = |what: &'static str| {
            let name = ifname.to_string();
            move |source| NdError::Socket {
                ifname: name,
                what,
                source,
            }
        };
        let sock = Socket::new(
            Domain::IPV6,
            Type::RAW.nonblocking().cloexec(),
            Some(Protocol::ICMPV6),
        )
        .map_err(fail("socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6)"))?;
        sock.bind_device(Some(ifname.as_bytes()))
            .map_err(fail("SO_BINDTODEVICE"))?;
        // RFC 4861 §6.1.2, §7.1: sent with hop limit 255 so receivers know
        // it was not forwarded.
        sock.set_multicast_hops_v6(255)
            .and_then(|()| sock.set_unicast_hops_v6(255))
            .map_err(fail("hop limit 255"))?;
        sock.set_multicast_if_v6(ifindex)
            .map_err(fail("IPV6_MULTICAST_IF"))?;
        // Our own multicast RAs are no news.
        sock.set_multicast_loop_v6(false)
            .map_err(fail("IPV6_MULTICAST_LOOP"))?;
        sock.set_recv_hoplimit_v6(true)
            .map_err(fail("IPV6_RECVHOPLIMIT"))?;
        setsockopt(&sock, sys::Icmp6Filter, &nd_only_filter())
            .map_err(|e| fail("ICMP6_FILTER")(e.into()))?;
        // Router Solicitations go to all-routers (RFC 4861 §6.3.7). A
        // forwarding interface has joined already; EADDRINUSE then.
        if let Err(e) = sock.join_multicast_v6(&ALL_ROUTERS, ifindex) {
            if e.raw_os_error() != Some(libc::EADDRINUSE) {
                return Err(fail("join ff02::2")(e));
            }
        }
        let fd = sys::register(sock).map_err(fail("register with tokio"))?;
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
        match sys::hardware_address(self.fd.get_ref(), &self.ifname) {
            Ok((kind, mac)) if kind == libc::ARPHRD_ETHER && mac != [0; 6] => Some(mac),
            _ => None,
        }
    }

    /// Whether the interface is up with carrier (`IFF_UP` and
    /// `IFF_RUNNING`); `None` when it cannot be read (gone).
    pub fn link_running(&self) -> Option<bool> {
        let flags = sys::interface_flags(self.fd.get_ref(), &self.ifname).ok()?;
        Some(flags & libc::IFF_UP != 0 && flags & libc::IFF_RUNNING != 0)
    }

    /// Sends `bytes` to `dst` on the interface.
    pub async fn send_to(&self, bytes: &[u8], dst: Ipv6Addr) -> io::Result<()> {
        let to = SockAddr::from(SocketAddrV6::new(dst, 0, 0, self.ifindex));
        self.fd
            .async_io(Interest::WRITABLE, |sock| {
                sock.send_to(bytes, &to).map(|_| ())
            })
            .await
    }

    /// Receives one message with its source and hop limit.
    pub async fn recv(&self) -> io::Result<Received> {
        self.fd
            .async_io(Interest::READABLE, |sock| {
                let mut buf = vec![0u8; 1500];
                let mut ctrl = nix::cmsg_space!(libc::c_int);
                let (n, source, hop_limit) = {
                    let mut iov = [IoSliceMut::new(&mut buf)];
                    let msg = recvmsg::<SockaddrIn6>(
                        sock.as_raw_fd(),
                        &mut iov,
                        Some(&mut ctrl),
                        MsgFlags::empty(),
                    )?;
                    let hop_limit = msg.cmsgs()?.find_map(|c| match c {
                        ControlMessageOwned::Ipv6HopLimit(h) => u8::try_from(h).ok(),
                        _ => None,
                    });
                    let source = msg.address.map_or(Ipv6Addr::UNSPECIFIED, |a| a.ip());
                    (msg.bytes, source, hop_limit)
                };
                buf.truncate(n);
                Ok(Received {
                    bytes: buf,
                    source,
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

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sched::CloneFlags;
    use nix::sys::socket::getsockopt;
    use std::process::Command;
    use std::time::Duration;

    /// Runs `f` on a thread of its own in a network namespace of its own
    /// (gone with the thread), with `lo` up: nothing the test opens or
    /// sends is seen outside it.
    fn in_private_netns(f: impl FnOnce() + Send + 'static) {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root (CAP_NET_RAW and a network namespace of its own)"
        );
        let t = std::thread::spawn(move || {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
            ip(&["link", "set", "lo", "up"]);
            f();
        });
        if let Err(panic) = t.join() {
            std::panic::resume_unwind(panic);
        }
    }

    /// `ip ARGS...` in the calling thread's network namespace (a child
    /// process starts in the namespace of the thread that forks it).
    fn ip(args: &[&str]) {
        let out = Command::new("ip").args(args).output().expect("run ip");
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn options_read_back_and_link_state_follows_the_interface() {
        in_private_netns(|| {
            ip(&[
                "link",
                "add",
                "sko0",
                "address",
                "02:00:00:00:5c:01",
                "type",
                "veth",
                "peer",
                "name",
                "sko1",
            ]);
            let rt = runtime();
            let _guard = rt.enter();
            let s = NdSocket::open("sko0").expect("open on sko0");
            let sock = s.fd.get_ref();
            assert_eq!(sock.device().unwrap().as_deref(), Some(&b"sko0"[..]));
            assert_eq!(sock.multicast_hops_v6().unwrap(), 255);
            assert_eq!(sock.unicast_hops_v6().unwrap(), 255);
            assert_eq!(sock.multicast_if_v6().unwrap(), s.ifindex());
            assert!(!sock.multicast_loop_v6().unwrap());
            assert!(sock.recv_hoplimit_v6().unwrap());
            // Types 133 to 136 are bits 5 to 8 of word 4; all else blocked.
            let mut want = [u32::MAX; 8];
            want[4] = 0xFFFF_FE1F;
            assert_eq!(getsockopt(sock, sys::Icmp6Filter).unwrap(), want);
            assert_eq!(s.mac(), Some([0x02, 0, 0, 0, 0x5c, 0x01]));
            assert_eq!(s.link_running(), Some(false));
            assert!(!crate::interfaces::link_is_up("sko0"));
            // Up is not enough: running needs carrier, the peer end up.
            ip(&["link", "set", "sko0", "up"]);
            assert_eq!(s.link_running(), Some(false));
            assert!(!crate::interfaces::link_is_up("sko0"));
            ip(&["link", "set", "sko1", "up"]);
            // The kernel's link watch sets the operational state a little
            // later.
            let deadline = std::time::Instant::now() + Duration::from_secs(3);
            while s.link_running() != Some(true) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            assert_eq!(s.link_running(), Some(true));
            assert!(crate::interfaces::link_is_up("sko0"));
            ip(&["link", "del", "sko0"]);
            assert_eq!(s.link_running(), None);
            assert!(!crate::interfaces::link_is_up("sko0"));
            let lo = NdSocket::open("lo").expect("open on lo");
            assert_eq!(lo.mac(), None, "loopback has no Ethernet address");
        });
    }

    #[test]
    fn nd_messages_arrive_with_source_and_hop_limit_and_others_are_filtered() {
        in_private_netns(|| {
            let rt = runtime();
            rt.block_on(async {
                let s = NdSocket::open("lo").expect("open on lo");
                // An echo request (type 128) first: the filter keeps it out.
                s.send_to(&[128, 0, 0, 0, 0, 1, 0, 1], Ipv6Addr::LOCALHOST)
                    .await
                    .expect("send echo request");
                let rs = packet::NdMessage::RouterSolicitation { source_ll: None }.encode();
                s.send_to(&rs, Ipv6Addr::LOCALHOST).await.expect("send RS");
                let got = tokio::time::timeout(Duration::from_secs(2), s.recv())
                    .await
                    .expect("nothing received")
                    .expect("recv");
                // The kernel filled in the checksum.
                assert_eq!(
                    packet::NdMessage::decode(&got.bytes),
                    Ok(packet::NdMessage::RouterSolicitation { source_ll: None })
                );
                assert_eq!(got.source, Ipv6Addr::LOCALHOST);
                assert_eq!(got.hop_limit, Some(255));
                let more = tokio::time::timeout(Duration::from_millis(200), s.recv()).await;
                assert!(more.is_err(), "the filter let something else in: {more:?}");
            });
        });
    }
}
