//! RFC 5881 §5: a Control packet whose TTL or hop limit is not 255 may
//! have come from off the link and is dropped; the same packet with 255
//! is taken. Both families, over a veth between two namespaces. Needs
//! root and iproute2; fails loudly without.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use bfd::{Config, ControlPacket, Diag, PeerSpec, SessionInfo, State};
use common::*;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

const A4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// A Down packet from a peer that has not heard from us yet.
fn hello(my_discr: u32) -> [u8; 24] {
    ControlPacket {
        diag: Diag::None,
        state: State::Down,
        poll: false,
        final_: false,
        cpi: false,
        demand: false,
        detect_mult: 3,
        my_discr,
        your_discr: 0,
        desired_min_tx: 1_000_000,
        required_min_rx: 300_000,
        required_min_echo_rx: 0,
    }
    .encode()
}

/// Sends `bytes` from namespace `ns` out of `vb` with `ttl`.
fn send_from(ns: &str, to: SocketAddr, ttl: u32, bytes: [u8; 24]) {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // setns(2) affects only this thread.
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("setns: {e}"));
        let domain = if to.is_ipv6() {
            Domain::IPV6
        } else {
            Domain::IPV4
        };
        let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
            .unwrap_or_else(|e| panic!("socket: {e}"));
        s.bind_device(Some(b"vb"))
            .unwrap_or_else(|e| panic!("bind vb: {e}"));
        let set = if to.is_ipv6() {
            s.set_unicast_hops_v6(ttl)
        } else {
            s.set_ttl_v4(ttl)
        };
        set.unwrap_or_else(|e| panic!("ttl: {e}"));
        s.send_to(&bytes, &SockAddr::from(to))
            .unwrap_or_else(|e| panic!("send to {to}: {e}"));
    })
    .join()
    .unwrap_or_else(|_| panic!("sending thread panicked"));
}

fn find(list: &[SessionInfo], peer: IpAddr) -> SessionInfo {
    list.iter()
        .find(|s| s.peer == peer)
        .cloned()
        .unwrap_or_else(|| panic!("no session for {peer} in {list:?}"))
}

#[test]
fn only_ttl_255_is_accepted_for_both_families() {
    let (_guard, a, b) = two_hosts("bfdttl");
    sh(&["ip", "-n", &a, "addr", "add", "192.0.2.1/24", "dev", "va"]);
    sh(&["ip", "-n", &b, "addr", "add", "192.0.2.2/24", "dev", "vb"]);
    let (bfd_a, _changes) = bfd_in(&a);
    let rt = runtime();
    rt.block_on(async {
        let cases = [
            (
                IpAddr::V6(B_LL),
                SocketAddr::V6(SocketAddrV6::new(A_LL, 3784, 0, 0)),
                0x61,
            ),
            (IpAddr::V4(B4), SocketAddr::new(IpAddr::V4(A4), 3784), 0x41),
        ];
        for (n, (peer, to, discr)) in cases.into_iter().enumerate() {
            let local = if peer.is_ipv6() {
                IpAddr::V6(A_LL)
            } else {
                IpAddr::V4(A4)
            };
            let spec = PeerSpec {
                peer,
                interface: Some("va".into()),
                local: Some(local),
                config: Config::default(),
            };
            bfd_a
                .add(spec)
                .await
                .unwrap_or_else(|e| panic!("add {peer}: {e}"));
            // A link-local destination needs B's interface as its scope.
            let to = match to {
                SocketAddr::V6(v) => {
                    let idx = sh(&["ip", "-n", &b, "-o", "link", "show", "vb"]);
                    let idx: u32 = idx
                        .split(':')
                        .next()
                        .and_then(|s| s.trim().parse().ok())
                        .unwrap_or(0);
                    SocketAddr::V6(SocketAddrV6::new(*v.ip(), 3784, 0, idx))
                }
                v4 => v4,
            };
            send_from(&b, to, 64, hello(discr));
            tokio::time::sleep(Duration::from_millis(300)).await;
            let c = bfd_a.counters().await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                c.rx_bad_ttl,
                n as u64 + 1,
                "{peer}: TTL 64 must be counted as refused"
            );
            let s = find(
                &bfd_a.sessions().await.unwrap_or_else(|e| panic!("{e}")),
                peer,
            );
            assert_eq!(
                (s.state, s.remote_discr),
                (State::Down, 0),
                "{peer}: TTL 64 taken"
            );

            send_from(&b, to, 255, hello(discr));
            tokio::time::sleep(Duration::from_millis(300)).await;
            let s = find(
                &bfd_a.sessions().await.unwrap_or_else(|e| panic!("{e}")),
                peer,
            );
            assert_eq!(
                (s.state, s.remote_discr),
                (State::Init, discr),
                "{peer}: TTL 255 refused"
            );
            let c = bfd_a.counters().await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(c.rx_bad_ttl, n as u64 + 1);
        }
    });
    bfd_a.stop();
}
