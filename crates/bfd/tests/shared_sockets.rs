//! Two sessions between the same two hosts on one link, told apart only
//! by their addresses: A's sessions share one send socket (one source
//! port) and each leaves from the source address it was given, or B,
//! which matches a packet with Your Discriminator 0 by its source
//! address, could not bring its second session Up. Then new timers on a
//! running session are negotiated with a Poll sequence (RFC 5880 §6.8.3)
//! without the session leaving Up. Needs root, iproute2; fails loudly
//! without.

mod common;

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use bfd::{Config, PeerSpec, State};
use common::*;
use tokio::sync::mpsc::UnboundedReceiver;

/// Second addresses on each side.
const A2: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x11);
const B2: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x12);

async fn add(b: &bfd::Bfd, s: PeerSpec) -> bfd::PeerKey {
    b.add(s).await.unwrap_or_else(|e| panic!("add: {e}"))
}

fn spec(peer: Ipv6Addr, dev: &str, local: Ipv6Addr) -> PeerSpec {
    PeerSpec {
        peer: IpAddr::V6(peer),
        interface: Some(dev.into()),
        local: Some(IpAddr::V6(local)),
        config: Config::default(),
    }
}

/// Every state change that arrived so far.
fn drained(rx: &mut UnboundedReceiver<bfd::StateChange>) -> Vec<bfd::StateChange> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

#[test]
fn sessions_share_one_socket_keep_their_source_and_renegotiate_timers_while_up() {
    let (_guard, a, b) = two_hosts("bfds");
    for (ns, dev, addr) in [(&a, "va", A2), (&b, "vb", B2)] {
        let cidr = format!("{addr}/64");
        sh(&["ip", "-n", ns, "addr", "add", &cidr, "dev", dev, "nodad"]);
    }
    let (bfd_a, mut ch_a) = bfd_in(&a);
    let (bfd_b, mut ch_b) = bfd_in(&b);
    let rt = runtime();
    rt.block_on(async {
        let t0 = Instant::now();
        let a1 = add(&bfd_a, spec(B_LL, "va", A_LL)).await;
        add(&bfd_a, spec(B2, "va", A2)).await;
        let b1 = add(&bfd_b, spec(A_LL, "vb", B_LL)).await;
        add(&bfd_b, spec(A2, "vb", B2)).await;
        let limit = Duration::from_secs(10);
        for _ in 0..2 {
            wait_state(&mut ch_a, State::Up, t0, limit).await;
            wait_state(&mut ch_b, State::Up, t0, limit).await;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;

        let list = bfd_a.sessions().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(list.len(), 2);
        assert!(list.iter().all(|s| s.state == State::Up), "{list:?}");
        assert_eq!(list[0].source_port, list[1].source_port, "one send socket");
        assert!((49152..=65535).contains(&list[0].source_port));
        let counters = bfd_b.counters().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(counters.rx_wrong_source, 0, "{counters:?}");
        // (A's first packets may arrive before B has its sessions.)
        let unmatched = counters.rx_no_session;

        // Faster timers on both ends of the first session, while Up.
        let fast = Config {
            desired_min_tx: 100_000,
            required_min_rx: 100_000,
            detect_mult: 3,
        };
        let changed = Instant::now();
        bfd_a
            .update(a1.clone(), fast, Some(IpAddr::V6(A_LL)))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        bfd_b
            .update(b1, fast, Some(IpAddr::V6(B_LL)))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let deadline = changed + Duration::from_secs(3);
        let first = loop {
            let list = bfd_a.sessions().await.unwrap_or_else(|e| panic!("{e}"));
            let first = list.into_iter().find(|s| s.peer == IpAddr::V6(B_LL));
            let first = first.unwrap_or_else(|| panic!("session to B gone"));
            if first.tx_interval == Duration::from_millis(100)
                && first.detection_time == Duration::from_millis(300)
            {
                break first;
            }
            assert!(
                Instant::now() < deadline,
                "timers not in force after 3 s: {first:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        eprintln!("new timers in force after {:?}", changed.elapsed());
        let rx_before = first.rx_packets;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let list = bfd_a.sessions().await.unwrap_or_else(|e| panic!("{e}"));
        let first = list
            .iter()
            .find(|s| s.peer == IpAddr::V6(B_LL))
            .unwrap_or_else(|| panic!("gone"));
        assert_eq!(first.state, State::Up);
        // 100 ms less jitter: at least 7 packets a second from B.
        let rate = first.rx_packets - rx_before;
        assert!(rate >= 7, "{rate} packets from B in 1 s at 100 ms");
        let flaps: Vec<_> = drained(&mut ch_a)
            .into_iter()
            .chain(drained(&mut ch_b))
            .collect();
        assert!(
            flaps.is_empty(),
            "state changed while renegotiating: {flaps:?}"
        );
        let counters = bfd_b.counters().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(counters.rx_no_session, unmatched, "{counters:?}");
        assert_eq!(counters.rx_wrong_source, 0, "{counters:?}");
        let second = list
            .iter()
            .find(|s| s.peer == IpAddr::V6(B2))
            .unwrap_or_else(|| panic!("gone"));
        assert_eq!(
            second.tx_interval,
            Duration::from_millis(300),
            "the other session keeps its timers"
        );
    });
    bfd_a.stop();
    bfd_b.stop();
}
