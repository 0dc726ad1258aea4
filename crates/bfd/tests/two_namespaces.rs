//! Two [`bfd::Bfd`] instances in two network namespaces joined by a veth
//! with link-local addresses only: they come Up, and when one side's BFD
//! packets are dropped (nftables, carrier still up) the other side goes
//! Down by its detection timer, 900 ms with 300 ms x 3. Needs root,
//! iproute2 and nftables; fails loudly without.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use bfd::{Config, Diag, PeerSpec, State};
use common::*;

const ROUNDS: usize = 5;

fn spec(peer: std::net::Ipv6Addr, dev: &str, local: std::net::Ipv6Addr) -> PeerSpec {
    PeerSpec {
        peer: IpAddr::V6(peer),
        interface: Some(dev.into()),
        local: Some(IpAddr::V6(local)),
        config: Config::default(),
    }
}

fn nft(ns: &str, script: &str) {
    sh(&["ip", "netns", "exec", ns, "nft", script]);
}

#[test]
fn link_local_sessions_come_up_and_detect_a_silent_peer_within_a_second() {
    sh(&["nft", "--version"]);
    let (_guard, a, b) = two_hosts("bfd");
    // Independent of our own receive check: the kernel of each side drops
    // BFD packets not sent with hop limit 255 (RFC 5881 §5).
    for ns in [&a, &b] {
        nft(ns, "add table inet hop");
        nft(
            ns,
            "add chain inet hop in { type filter hook input priority 0; }",
        );
        nft(
            ns,
            "add rule inet hop in udp dport 3784 ip6 hoplimit != 255 drop",
        );
    }
    let (bfd_a, mut ch_a) = bfd_in(&a);
    let (bfd_b, mut ch_b) = bfd_in(&b);
    let rt = runtime();
    rt.block_on(async {
        let t0 = Instant::now();
        bfd_a.add(spec(B_LL, "va", A_LL)).await.unwrap_or_else(|e| panic!("add a: {e}"));
        let key_b = bfd_b
            .add(spec(A_LL, "vb", B_LL))
            .await
            .unwrap_or_else(|e| panic!("add b: {e}"));
        let limit = Duration::from_secs(10);
        let (_, up_a) = wait_state(&mut ch_a, State::Up, t0, limit).await;
        let (_, up_b) = wait_state(&mut ch_b, State::Up, t0, limit).await;
        eprintln!("up after {up_a:?} (A), {up_b:?} (B)");

        // After the Poll sequences both run 300 ms x 3.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let list = bfd_a.sessions().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(list.len(), 1);
        let s = &list[0];
        assert_eq!(s.interface.as_deref(), Some("va"));
        assert_eq!((s.state, s.remote_state), (State::Up, State::Up));
        assert_eq!(s.tx_interval, Duration::from_millis(300));
        assert_eq!(s.detection_time, Duration::from_millis(900));
        assert!(s.uptime.is_some());
        assert!((49152..=65535).contains(&s.source_port), "{}", s.source_port);
        assert!(s.rx_packets > 0 && s.tx_packets > 0);
        assert_eq!(bfd_a.counters().await.map(|c| c.rx_bad_ttl).ok(), Some(0));

        let mut took = Vec::new();
        for round in 0..ROUNDS {
            // B's BFD packets stop leaving B; the link stays up.
            nft(&b, "add table inet bfdtest");
            nft(&b, "add chain inet bfdtest out { type filter hook output priority 0; }");
            let start = Instant::now();
            nft(&b, "add rule inet bfdtest out udp dport 3784 drop");
            let dropped = Instant::now();
            let (down, t) = wait_state(&mut ch_a, State::Down, dropped, Duration::from_secs(5)).await;
            assert_eq!(down.diag, Diag::ControlDetectionTimeExpired, "round {round}");
            // B still hears A, which now says Down: B follows (§6.8.6).
            let (down_b, _) = wait_state(&mut ch_b, State::Down, dropped, Duration::from_secs(3)).await;
            assert_eq!(down_b.diag, Diag::NeighborSignaledSessionDown, "round {round}");
            eprintln!(
                "round {round}: A down {t:?} after the drop rule ({:?} after the nft command started)",
                down.at.saturating_duration_since(start)
            );
            took.push(t);
            nft(&b, "delete table inet bfdtest");
            let back = Instant::now();
            wait_state(&mut ch_a, State::Up, back, limit).await;
            wait_state(&mut ch_b, State::Up, back, limit).await;
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
        // B goes AdminDown: A goes Down knowing it was on purpose, which a
        // BGP session must not take for a failure (RFC 5882 §3.2).
        bfd_b
            .set_admin_down(key_b, true)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (down, _) = wait_state(&mut ch_a, State::Down, Instant::now(), limit).await;
        assert_eq!((down.diag, down.remote), (Diag::NeighborSignaledSessionDown, State::AdminDown));
        took.sort();
        eprintln!("detection: min {:?} median {:?} max {:?}", took[0], took[ROUNDS / 2], took[ROUNDS - 1]);
        for t in &took {
            assert!(*t <= Duration::from_millis(1000), "detection took {t:?}: {took:?}");
            // The last packet got through at most one interval (300 ms)
            // before the drop, so the 900 ms timer cannot run out sooner.
            assert!(*t >= Duration::from_millis(500), "too early, {t:?}: {took:?}");
        }
    });
    bfd_a.stop();
    bfd_b.stop();
}
