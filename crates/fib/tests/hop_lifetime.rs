//! Next-hop sets live as long as a route uses them: churn through many
//! next hops leaves neither sets nor kernel nexthop objects behind.
//! Root; each test in its own network namespace.

mod common;

use common::{ll, Ns};
use fib::{Fib, FibChange, NextHopSet};

const ROUTES: usize = 100_000;
const HOPS: u32 = 50;
const CYCLES: u32 = 10;
/// Every seventh route goes over a two-hop set (a nexthop group); 7 is
/// coprime to 50, so the other routes still use all 50 single hops.
const GROUPS: usize = 5;

fn kernel_nexthops(ns: &Ns) -> usize {
    ns.ip("nexthop show").lines().count()
}

/// The sets of one cycle: 50 single hops of its own (nothing is shared
/// with another cycle), and a few groups of two of them.
fn cycle_sets(cycle: u32, ifindex: u32) -> (Vec<NextHopSet>, Vec<NextHopSet>) {
    let hop = |j: u32| ll(&format!("fe80::{:x}:{:x}", cycle + 1, j + 1), ifindex);
    let singles = (0..HOPS).map(|j| vec![hop(j)].into()).collect();
    let groups = (0..GROUPS as u32)
        .map(|g| vec![hop(g * 10), hop(g * 10 + 1)].into())
        .collect();
    (singles, groups)
}

async fn cycle_body(nh: bool) {
    let ns = Ns::with("hopfree", nh);
    let v0 = ns.ifindex("veth0");
    let prefixes = common::real_v4_prefixes(ROUTES);
    assert_eq!(prefixes.len(), ROUTES);
    let fib = Fib::start(ns.config()).await.unwrap();
    fib.initial_sync_done().await;
    let start = fib.status().await;
    let kernel_start = kernel_nexthops(&ns);
    let per_cycle = HOPS as usize + GROUPS;
    for cycle in 0..CYCLES {
        let (singles, groups) = cycle_sets(cycle, v0);
        let hops_of = |i: usize| {
            if i.is_multiple_of(7) {
                groups[(i / 7) % GROUPS].clone()
            } else {
                singles[i % HOPS as usize].clone()
            }
        };
        for (c, chunk) in prefixes.chunks(1000).enumerate() {
            let ch = chunk
                .iter()
                .enumerate()
                .map(|(i, p)| FibChange::Install {
                    prefix: *p,
                    next_hops: hops_of(c * 1000 + i),
                })
                .collect();
            fib.apply(ch).await.unwrap();
        }
        fib.flush().await.unwrap();
        let st = fib.status().await;
        assert_eq!(st.installed, ROUTES, "cycle {cycle}");
        assert_eq!(st.hop_sets, start.hop_sets + per_cycle, "cycle {cycle}");
        if nh {
            assert_eq!(
                kernel_nexthops(&ns),
                kernel_start + per_cycle,
                "cycle {cycle}"
            );
        }
        let gone = prefixes
            .iter()
            .map(|p| FibChange::Remove { prefix: *p })
            .collect();
        fib.apply(gone).await.unwrap();
        fib.flush().await.unwrap();
        let st = fib.status().await;
        assert_eq!(
            (st.installed, st.failed_count, st.pending),
            (0, 0, 0),
            "cycle {cycle}"
        );
        assert_eq!(st.hop_sets, start.hop_sets, "cycle {cycle}: sets freed");
        assert_eq!(
            st.nexthop_objects, start.nexthop_objects,
            "cycle {cycle}: objects forgotten"
        );
        assert_eq!(
            kernel_nexthops(&ns),
            kernel_start,
            "cycle {cycle}: kernel objects deleted"
        );
        assert_eq!(ns.bgp_route_count(), 0, "cycle {cycle}");
    }
    fib.shutdown().await.unwrap();
}

#[tokio::test]
async fn hop_sets_and_nexthop_objects_are_freed_after_churn() {
    cycle_body(true).await
}

#[tokio::test]
async fn hop_sets_are_freed_after_churn_plain() {
    cycle_body(false).await
}

/// A freed ECMP set takes its group, and the member no live set uses,
/// out of the kernel; the member a live route still uses stays, and so
/// does that route. Before the initial sync nothing is deleted (stale
/// routes may use it); the sync collects it.
#[tokio::test]
async fn freed_group_keeps_members_in_use() {
    let ns = Ns::with("hopgrp", true);
    let v0 = ns.ifindex("veth0");
    let (a, b) = (ll("fe80::a", v0), ll("fe80::b", v0));
    let fib = Fib::start(ns.config()).await.unwrap();
    let install = |p: &str, hops: Vec<fib::Gateway>| FibChange::Install {
        prefix: common::net(p),
        next_hops: hops.into(),
    };
    let remove = |p: &str| FibChange::Remove {
        prefix: common::net(p),
    };
    fib.apply(vec![install("198.51.100.0/24", vec![a])])
        .await
        .unwrap();
    fib.flush().await.unwrap();
    fib.apply(vec![remove("198.51.100.0/24")]).await.unwrap();
    fib.flush().await.unwrap();
    assert_eq!(fib.status().await.hop_sets, 0);
    assert_eq!(kernel_nexthops(&ns), 1, "kept until the initial sync");
    fib.initial_sync_done().await;
    assert_eq!(kernel_nexthops(&ns), 0, "collected at the sync");
    fib.apply(vec![
        install("198.51.100.0/24", vec![a, b]),
        install("192.0.2.0/24", vec![a]),
    ])
    .await
    .unwrap();
    fib.flush().await.unwrap();
    assert_eq!(kernel_nexthops(&ns), 3, "{}", ns.ip("nexthop show"));
    fib.apply(vec![remove("198.51.100.0/24")]).await.unwrap();
    fib.flush().await.unwrap();
    let left = ns.ip("nexthop show");
    assert_eq!(left.lines().count(), 1, "{left}");
    assert!(left.contains("fe80::a"), "{left}");
    let st = fib.status().await;
    assert_eq!((st.hop_sets, st.nexthop_objects, st.installed), (1, 1, 1));
    assert_eq!(ns.bgp_route_count(), 1, "{:?}", ns.bgp_routes());
    fib.shutdown().await.unwrap();
    assert_eq!(kernel_nexthops(&ns), 0);
}
