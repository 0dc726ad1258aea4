//! The BFD thread keeps time while the rest of the process is busy: with
//! more spinning threads than cores (and the caller's runtime blocked, as
//! a RIB loading a full table would be) two sessions stay Up and the
//! packets keep coming at the negotiated 300 ms less jitter (RFC 5880
//! §6.8.7: 225-300 ms apart). Needs root, iproute2 and nftables; fails
//! loudly without.

mod common;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bfd::{Config, PeerSpec, State};
use common::*;

const WINDOW: Duration = Duration::from_secs(6);
const SPINNERS: usize = 4;

fn nft(ns: &str, script: &str) -> String {
    sh(&["ip", "netns", "exec", ns, "nft", script])
}

/// Packets counted so far by counter `c` in namespace `ns`.
fn counted(ns: &str) -> u64 {
    let out = nft(ns, "list counter inet cnt c");
    out.split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no packet count in {out:?}"))
}

#[test]
fn timers_hold_with_every_core_busy() {
    sh(&["nft", "--version"]);
    let (_guard, a, b) = two_hosts("bfdload");
    nft(&b, "add table inet cnt");
    nft(&b, "add counter inet cnt c");
    nft(
        &b,
        "add chain inet cnt in { type filter hook input priority 0; }",
    );
    nft(&b, "add rule inet cnt in udp dport 3784 counter name c");
    let (bfd_a, mut ch_a) = bfd_in(&a);
    let (bfd_b, mut ch_b) = bfd_in(&b);
    let rt = runtime();
    rt.block_on(async {
        let spec = |peer, dev: &str, local| PeerSpec {
            peer: IpAddr::V6(peer),
            interface: Some(dev.into()),
            local: Some(IpAddr::V6(local)),
            config: Config::default(),
        };
        let t0 = Instant::now();
        bfd_a
            .add(spec(B_LL, "va", A_LL))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        bfd_b
            .add(spec(A_LL, "vb", B_LL))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        wait_state(&mut ch_a, State::Up, t0, Duration::from_secs(10)).await;
        wait_state(&mut ch_b, State::Up, t0, Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    });
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..SPINNERS)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            })
        })
        .collect();
    let before = counted(&b);
    // The caller's thread is blocked too: nothing here drives BFD.
    std::thread::sleep(WINDOW);
    let after = counted(&b);
    stop.store(true, Ordering::Relaxed);
    for s in spinners {
        let _ = s.join();
    }
    let n = after - before;
    eprintln!(
        "{n} packets from A in {WINDOW:?} with {SPINNERS} spinning threads (mean gap {:?})",
        WINDOW / u32::try_from(n.max(1)).unwrap_or(1)
    );
    // No state change on either side during the window.
    assert!(ch_a.try_recv().is_err(), "A changed state under load");
    assert!(ch_b.try_recv().is_err(), "B changed state under load");
    // 6 s / 300 ms = 20, 6 s / 225 ms = 26.7; a packet either side for
    // where the window cuts.
    assert!((19..=28).contains(&n), "{n} packets in {WINDOW:?}");
    bfd_a.stop();
    bfd_b.stop();
}
