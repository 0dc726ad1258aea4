//! Root tests against the real kernel, each in its own network namespace.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::{ll, net, wait_for, Ns, RouteMonitor};
use fib::{Fib, FibChange, FibConfig, Gateway};

fn install(prefix: &str, hops: Vec<Gateway>) -> FibChange {
    FibChange::Install {
        prefix: net(prefix),
        next_hops: hops.into(),
    }
}

fn remove(prefix: &str) -> FibChange {
    FibChange::Remove {
        prefix: net(prefix),
    }
}

async fn install_replace_remove_body(nh: bool) {
    let ns = Ns::with("irr", nh);
    ns.ip("addr add 10.9.0.1/24 dev veth0");
    let v0 = ns.ifindex("veth0");
    let fib = Fib::start(ns.config()).await.unwrap();
    fib.apply(vec![
        install("198.51.100.0/24", vec![ll("fe80::1", v0)]),
        install("2001:db8:1::/48", vec![ll("fe80::1", v0)]),
        install("203.0.113.0/24", vec![ll("10.9.0.2", v0)]),
    ])
    .await
    .unwrap();
    fib.flush().await.unwrap();
    let r = ns.route("-4 route show");
    assert!(
        r.contains("198.51.100.0/24 via inet6 fe80::1 dev veth0 proto bgp metric 20"),
        "{r}"
    );
    assert!(
        r.contains("203.0.113.0/24 via 10.9.0.2 dev veth0 proto bgp metric 20"),
        "{r}"
    );
    let r6 = ns.route("-6 route show");
    assert!(
        r6.contains("2001:db8:1::/48 via fe80::1 dev veth0 proto bgp metric 20"),
        "{r6}"
    );
    assert_eq!(fib.status().await.installed, 3);

    // Replace: one route, new gateway.
    fib.apply(vec![install("198.51.100.0/24", vec![ll("fe80::2", v0)])])
        .await
        .unwrap();
    fib.flush().await.unwrap();
    let r = ns.route("-4 route show 198.51.100.0/24");
    assert_eq!(r.lines().count(), 1, "{r}");
    assert!(r.contains("via inet6 fe80::2 dev veth0"), "{r}");

    fib.apply(vec![
        remove("198.51.100.0/24"),
        remove("2001:db8:1::/48"),
        remove("203.0.113.0/24"),
    ])
    .await
    .unwrap();
    fib.flush().await.unwrap();
    assert_eq!(ns.bgp_route_count(), 0, "{:?}", ns.bgp_routes());
    let st = fib.status().await;
    assert_eq!(st.installed, 0);
    assert_eq!(st.failed_count, 0, "{:?}", st.failed);
    fib.shutdown().await.unwrap();
}

/// Changes to one prefix inside one apply coalesce: only the last counts.
async fn coalesces_per_prefix_body(nh: bool) {
    let ns = Ns::with("coal", nh);
    let v0 = ns.ifindex("veth0");
    let fib = Fib::start(ns.config()).await.unwrap();
    fib.apply(vec![
        install("198.51.100.0/24", vec![ll("fe80::1", v0)]),
        remove("198.51.100.0/24"),
        install("198.51.100.0/24", vec![ll("fe80::3", v0)]),
        install("192.0.2.0/24", vec![ll("fe80::1", v0)]),
        remove("192.0.2.0/24"),
    ])
    .await
    .unwrap();
    fib.flush().await.unwrap();
    let r = ns.bgp_routes();
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].contains("198.51.100.0/24 via inet6 fe80::3"), "{r:?}");
    fib.shutdown().await.unwrap();
    assert_eq!(ns.bgp_route_count(), 0);
}

async fn ecmp_multipath_body(nh: bool) {
    let ns = Ns::with("ecmp", nh);
    ns.ip("link add veth2 type veth peer name veth3");
    ns.ip("link set veth2 up");
    ns.ip("link set veth3 up");
    let (v0, v2) = (ns.ifindex("veth0"), ns.ifindex("veth2"));
    let fib = Fib::start(ns.config()).await.unwrap();
    fib.apply(vec![
        install(
            "198.51.100.0/24",
            vec![ll("fe80::1", v0), ll("fe80::2", v2)],
        ),
        install(
            "2001:db8:2::/48",
            vec![ll("fe80::1", v0), ll("fe80::2", v2)],
        ),
    ])
    .await
    .unwrap();
    fib.flush().await.unwrap();
    let r = ns.route("-4 route show 198.51.100.0/24");
    assert!(r.contains("proto bgp"), "{r}");
    assert!(r.contains("nexthop via inet6 fe80::1 dev veth0"), "{r}");
    assert!(r.contains("nexthop via inet6 fe80::2 dev veth2"), "{r}");
    let r6 = ns.route("-6 route show 2001:db8:2::/48");
    assert!(r6.contains("nexthop via fe80::1 dev veth0"), "{r6}");
    assert!(r6.contains("nexthop via fe80::2 dev veth2"), "{r6}");
    // Shrink to one hop: replaced in place.
    fib.apply(vec![install("198.51.100.0/24", vec![ll("fe80::2", v2)])])
        .await
        .unwrap();
    fib.flush().await.unwrap();
    let r = ns.route("-4 route show 198.51.100.0/24");
    assert_eq!(r.lines().count(), 1, "{r}");
    assert!(r.contains("via inet6 fe80::2 dev veth2"), "{r}");
    fib.shutdown().await.unwrap();
    assert_eq!(ns.bgp_route_count(), 0);
}

async fn prefsrc_and_lo_address_lifecycle_body(nh: bool) {
    let ns = Ns::with("src", nh);
    let v0 = ns.ifindex("veth0");
    let src = Ipv4Addr::new(192, 0, 2, 77);
    let cfg = FibConfig {
        source_address: Some(src),
        ..ns.config()
    };
    let fib = Fib::start(cfg.clone()).await.unwrap();
    let lo = ns.ip("-4 addr show dev lo");
    assert!(
        lo.contains("192.0.2.77/32") && lo.contains("lo:via6"),
        "{lo}"
    );
    assert!(fib.status().await.source_address_added);
    fib.apply(vec![install("198.51.100.0/24", vec![ll("fe80::1", v0)])])
        .await
        .unwrap();
    fib.flush().await.unwrap();
    let r = ns.route("-4 route show proto bgp");
    assert!(r.contains("src 192.0.2.77"), "{r}");
    fib.shutdown().await.unwrap();
    assert!(!ns.ip("-4 addr show dev lo").contains("192.0.2.77"));

    // Present already (on veth0): not added, so not removed.
    ns.ip("addr add 192.0.2.77/32 dev veth0");
    let fib = Fib::start(cfg).await.unwrap();
    assert!(!fib.status().await.source_address_added);
    assert!(!ns.ip("-4 addr show dev lo").contains("192.0.2.77"));
    fib.shutdown().await.unwrap();
    assert!(ns.ip("-4 addr show dev veth0").contains("192.0.2.77/32"));
}

/// Removing the source address flushes prefsrc routes in the kernel; the
/// FIB puts the address back and reinstalls them.
async fn source_address_removed_is_restored_body(nh: bool) {
    let ns = Ns::with("srcdel", nh);
    let v0 = ns.ifindex("veth0");
    let cfg = FibConfig {
        source_address: Some(Ipv4Addr::new(192, 0, 2, 78)),
        ..ns.config()
    };
    let fib = Fib::start(cfg).await.unwrap();
    fib.apply(vec![install("198.51.100.0/24", vec![ll("fe80::1", v0)])])
        .await
        .unwrap();
    fib.flush().await.unwrap();
    ns.ip("addr del 192.0.2.78/32 dev lo");
    assert!(wait_for(5, || ns.bgp_route_count() == 1
        && ns.ip("-4 addr show dev lo").contains("192.0.2.78/32")));
    fib.shutdown().await.unwrap();
    assert_eq!(ns.bgp_route_count(), 0);
}

async fn foreign_route_is_never_touched_body(nh: bool) {
    let ns = Ns::with("foreign", nh);
    ns.ip("addr add 10.9.0.1/24 dev veth0");
    let v0 = ns.ifindex("veth0");
    ns.ip("route add 198.51.100.0/24 via 10.9.0.2 proto static metric 20");
    let fib = Fib::start(ns.config()).await.unwrap();
    fib.apply(vec![
        install("198.51.100.0/24", vec![ll("fe80::1", v0)]),
        install("192.0.2.0/24", vec![ll("fe80::1", v0)]),
    ])
    .await
    .unwrap();
    fib.flush().await.unwrap();
    let st = fib.status().await;
    assert_eq!(st.conflict_count, 1, "{st:?}");
    assert_eq!(st.conflicts[0].prefix, net("198.51.100.0/24"));
    assert!(st.conflicts[0].existing.contains("proto 4"), "{st:?}");
    assert!(st.conflicts[0].existing.contains("via 10.9.0.2"), "{st:?}");
    assert_eq!(st.installed, 1);
    let stat = ns.route("-4 route show 198.51.100.0/24");
    assert_eq!(
        stat.trim(),
        "198.51.100.0/24 via 10.9.0.2 dev veth0 proto static metric 20"
    );
    // Withdraw and shutdown leave it alone too.
    fib.apply(vec![remove("198.51.100.0/24")]).await.unwrap();
    fib.flush().await.unwrap();
    fib.shutdown().await.unwrap();
    let stat = ns.route("-4 route show 198.51.100.0/24");
    assert_eq!(
        stat.trim(),
        "198.51.100.0/24 via 10.9.0.2 dev veth0 proto static metric 20"
    );
    assert_eq!(ns.bgp_route_count(), 0);
}

/// An unreachable gateway fails that route only, with the kernel's reason.
async fn per_route_errors_body(nh: bool) {
    let ns = Ns::with("err", nh);
    let v0 = ns.ifindex("veth0");
    let fib = Fib::start(ns.config()).await.unwrap();
    fib.apply(vec![
        install("198.51.100.0/24", vec![ll("fe80::1", v0)]),
        install(
            "192.0.2.0/24",
            vec![Gateway::new("10.99.0.1".parse().unwrap(), None).unwrap()],
        ),
        install("203.0.113.0/24", vec![ll("fe80::1", v0)]),
        install("2001:db8::/32", vec![ll("192.0.2.1", v0)]),
        // No such interface.
        install("100.64.0.0/10", vec![ll("fe80::1", 9999)]),
    ])
    .await
    .unwrap();
    fib.flush().await.unwrap();
    let st = fib.status().await;
    assert_eq!(st.installed, 2, "{st:?}");
    assert_eq!(st.failed_count, 3, "{st:?}");
    let f: Vec<_> = st.failed.iter().map(|f| f.prefix).collect();
    assert!(f.contains(&net("192.0.2.0/24")));
    assert!(f.contains(&net("2001:db8::/32")));
    assert!(f.contains(&net("100.64.0.0/10")));
    assert!(st.failed.iter().all(|f| !f.error.is_empty()), "{st:?}");
    assert_eq!(ns.bgp_route_count(), 2);
    let json = serde_json::to_string(&st).unwrap();
    assert!(json.contains("192.0.2.0/24"), "{json}");
    fib.shutdown().await.unwrap();
}

/// Start, install, crash (drop without shutdown), start again: no
/// duplicates, unchanged routes untouched, stale routes only removed after
/// initial_sync_done.
async fn restart_reconcile_body(nh: bool) {
    let ns = Ns::with("restart", nh);
    let v0 = ns.ifindex("veth0");
    ns.ip("-6 addr add 2001:db8:ff::1/64 dev veth0 nodad");
    // A global gateway without interface: the kernel resolves one.
    let global = Gateway::new("2001:db8:ff::2".parse().unwrap(), None).unwrap();
    let cfg = FibConfig {
        stale_timeout: Duration::from_secs(3600),
        ..ns.config()
    };
    let fib = Fib::start(cfg.clone()).await.unwrap();
    fib.apply(vec![
        install("198.51.100.0/24", vec![ll("fe80::1", v0)]),
        install("192.0.2.0/24", vec![ll("fe80::1", v0)]),
        install("203.0.113.0/24", vec![ll("fe80::1", v0)]),
        install("2001:db8:5::/48", vec![ll("fe80::1", v0)]),
        install("203.0.113.128/25", vec![global]),
    ])
    .await
    .unwrap();
    fib.flush().await.unwrap();
    drop(fib);
    assert!(wait_for(5, || ns.bgp_route_count() == 5));

    // Watch for route writes during the restart.
    let mon = RouteMonitor::start(&ns);

    let fib = Fib::start(cfg).await.unwrap();
    assert_eq!(fib.status().await.stale, 5);
    fib.apply(vec![
        install("198.51.100.0/24", vec![ll("fe80::1", v0)]), // unchanged
        install("192.0.2.0/24", vec![ll("fe80::9", v0)]),    // new hop
        install("2001:db8:5::/48", vec![ll("fe80::1", v0)]), // unchanged
        install("203.0.113.128/25", vec![global]),           // unchanged
    ])
    .await
    .unwrap();
    fib.flush().await.unwrap();
    let r = ns.bgp_routes();
    assert_eq!(r.len(), 5, "no duplicates, stale kept: {r:?}");
    assert!(
        r.iter()
            .any(|l| l.contains("192.0.2.0/24 via inet6 fe80::9")),
        "{r:?}"
    );
    let st = fib.status().await;
    assert_eq!((st.installed, st.stale), (4, 1), "{st:?}");

    fib.initial_sync_done().await;
    let r = ns.bgp_routes();
    assert_eq!(r.len(), 4, "{r:?}");
    assert!(!r.iter().any(|l| l.contains("203.0.113.0/24")), "{r:?}");

    let log = mon.finish().join("\n");
    assert!(
        !log.contains("198.51.100.0/24"),
        "unchanged route was rewritten: {log}"
    );
    assert!(
        !log.contains("2001:db8:5::/48"),
        "unchanged route was rewritten: {log}"
    );
    assert!(
        !log.contains("203.0.113.128/25"),
        "unchanged route was rewritten: {log}"
    );
    assert!(log.contains("192.0.2.0/24"), "{log}");
    assert!(log.contains("Deleted 203.0.113.0/24"), "{log}");
    fib.shutdown().await.unwrap();
    assert_eq!(ns.bgp_route_count(), 0);
}

async fn stale_timeout_removes_by_itself_body(nh: bool) {
    let ns = Ns::with("stalet", nh);
    let v0 = ns.ifindex("veth0");
    let fib = Fib::start(ns.config()).await.unwrap();
    fib.apply(vec![install("198.51.100.0/24", vec![ll("fe80::1", v0)])])
        .await
        .unwrap();
    fib.flush().await.unwrap();
    drop(fib);
    let fib = Fib::start(FibConfig {
        stale_timeout: Duration::from_millis(500),
        ..ns.config()
    })
    .await
    .unwrap();
    assert_eq!(ns.bgp_route_count(), 1);
    assert!(wait_for(5, || ns.bgp_route_count() == 0));
    assert!(fib.status().await.initial_sync_done);
    fib.shutdown().await.unwrap();
}

async fn interface_down_up_body(nh: bool) {
    let ns = Ns::with("link", nh);
    ns.ip("link add veth2 type veth peer name veth3");
    ns.ip("link set veth2 up");
    ns.ip("link set veth3 up");
    let (v0, v2) = (ns.ifindex("veth0"), ns.ifindex("veth2"));
    let fib = Fib::start(ns.config()).await.unwrap();
    fib.apply(vec![
        install("198.51.100.0/24", vec![ll("fe80::1", v0)]),
        install("2001:db8:7::/48", vec![ll("fe80::1", v0)]),
        install("192.0.2.0/24", vec![ll("fe80::1", v2)]),
    ])
    .await
    .unwrap();
    fib.flush().await.unwrap();
    assert_eq!(ns.bgp_route_count(), 3);
    ns.ip("link set veth0 down");
    assert!(
        wait_for(5, || ns.bgp_route_count() == 1),
        "{:?}",
        ns.bgp_routes()
    );
    let st = fib.status().await;
    assert_eq!(st.link_down, 2, "{st:?}");
    assert_eq!(st.installed, 1, "{st:?}");
    // Wanted while down: held back, not failed.
    fib.apply(vec![install("203.0.113.0/24", vec![ll("fe80::1", v0)])])
        .await
        .unwrap();
    fib.flush().await.unwrap();
    assert_eq!(fib.status().await.link_down, 3);
    ns.ip("link set veth0 up");
    assert!(
        wait_for(5, || ns.bgp_route_count() == 4),
        "{:?}",
        ns.bgp_routes()
    );
    let st = fib.status().await;
    assert_eq!(
        (st.installed, st.link_down, st.failed_count),
        (4, 0, 0),
        "{st:?}"
    );
    fib.shutdown().await.unwrap();
    assert_eq!(ns.bgp_route_count(), 0);
}

/// 100,000 real prefixes in, half out, the rest out: the kernel table is
/// exactly what is wanted at every step.
async fn hundred_thousand_cycle_body(nh: bool) {
    let ns = Ns::with("100k", nh);
    let v0 = ns.ifindex("veth0");
    let prefixes = common::real_v4_prefixes(100_000);
    assert_eq!(prefixes.len(), 100_000);
    let fib = Fib::start(ns.config()).await.unwrap();
    let hop: fib::NextHopSet = vec![ll("fe80::1", v0)].into();
    for chunk in prefixes.chunks(1000) {
        let ch = chunk
            .iter()
            .map(|p| FibChange::Install {
                prefix: *p,
                next_hops: hop.clone(),
            })
            .collect();
        fib.apply(ch).await.unwrap();
    }
    fib.flush().await.unwrap();
    assert_eq!(ns.bgp_route_count(), 100_000);
    assert_eq!(fib.status().await.installed, 100_000);
    let (gone, kept) = prefixes.split_at(50_000);
    fib.apply(
        gone.iter()
            .map(|p| FibChange::Remove { prefix: *p })
            .collect(),
    )
    .await
    .unwrap();
    fib.flush().await.unwrap();
    let left = ns.route("-4 route show proto bgp");
    assert_eq!(left.lines().count(), 50_000);
    let first_kept = kept[0].to_string();
    assert!(left
        .lines()
        .any(|l| l.starts_with(&format!("{first_kept} "))));
    fib.apply(
        kept.iter()
            .map(|p| FibChange::Remove { prefix: *p })
            .collect(),
    )
    .await
    .unwrap();
    fib.flush().await.unwrap();
    assert_eq!(ns.bgp_route_count(), 0);
    let st = fib.status().await;
    assert_eq!((st.installed, st.failed_count, st.pending), (0, 0, 0));
    fib.shutdown().await.unwrap();
}

/// Carrier loss (the peer end goes down): plain routes stay (linkdown),
/// nexthop objects are flushed by the kernel; either way everything is
/// back once the carrier returns.
async fn carrier_loss_body(nh: bool) {
    let ns = Ns::with("carrier", nh);
    let v0 = ns.ifindex("veth0");
    let fib = Fib::start(ns.config()).await.unwrap();
    fib.apply(vec![
        install("198.51.100.0/24", vec![ll("fe80::1", v0)]),
        install("2001:db8:8::/48", vec![ll("fe80::1", v0)]),
    ])
    .await
    .unwrap();
    fib.flush().await.unwrap();
    let mon = RouteMonitor::start(&ns);
    ns.ip("link set veth1 down");
    if nh {
        assert!(
            wait_for(5, || ns.bgp_route_count() == 0),
            "{:?}",
            ns.bgp_routes()
        );
        assert!(wait_for(5, || futures_lite_status(&fib).link_down == 2));
    } else {
        // Without nexthop objects the kernel keeps the routes (flagged
        // `linkdown`) and so must the FIB: no deletion, not even one
        // followed by a re-add, from the carrier loss on.
        assert!(
            wait_for(30, || ns
                .bgp_routes()
                .iter()
                .all(|l| l.contains("linkdown"))),
            "the kernel never flagged the routes linkdown: {:?}",
            ns.bgp_routes()
        );
        // Doing nothing has no completion to wait for: the FIB gets this
        // long after the kernel acted to do something wrong.
        std::thread::sleep(Duration::from_secs(1));
        let events = mon.finish();
        assert!(
            !events
                .iter()
                .any(|l| l.starts_with("Deleted") && l.contains("proto bgp")),
            "routes deleted on carrier loss: {events:?}"
        );
        assert_eq!(ns.bgp_route_count(), 2, "{:?}", ns.bgp_routes());
        let st = futures_lite_status(&fib);
        assert_eq!((st.installed, st.link_down), (2, 0), "{st:?}");
    }
    ns.ip("link set veth1 up");
    assert!(
        wait_for(5, || ns.bgp_route_count() == 2),
        "{:?}",
        ns.bgp_routes()
    );
    assert!(wait_for(5, || {
        let st = futures_lite_status(&fib);
        st.installed == 2 && st.link_down == 0
    }));
    fib.shutdown().await.unwrap();
    assert_eq!(ns.bgp_route_count(), 0);
}

/// The periodic audit puts back a route of ours deleted by hand, and
/// removes (once synced) a route of our protocol we never installed.
async fn audit_repairs_body(nh: bool) {
    let ns = Ns::with("audit", nh);
    let v0 = ns.ifindex("veth0");
    let fib = Fib::start(FibConfig {
        audit_interval: Some(Duration::from_millis(300)),
        ..ns.config()
    })
    .await
    .unwrap();
    fib.apply(vec![
        install("198.51.100.0/24", vec![ll("fe80::1", v0)]),
        install("2001:db8:9::/48", vec![ll("fe80::1", v0)]),
    ])
    .await
    .unwrap();
    fib.flush().await.unwrap();
    fib.initial_sync_done().await;
    ns.ip("route del 198.51.100.0/24 proto bgp metric 20");
    ns.ip("-6 route del 2001:db8:9::/48 proto bgp metric 20");
    ns.ip("route add 203.0.113.0/24 via inet6 fe80::1 dev veth0 proto bgp metric 20");
    assert!(
        wait_for(5, || {
            let r = ns.bgp_routes();
            r.len() == 2 && !r.iter().any(|l| l.contains("203.0.113.0"))
        }),
        "{:?}",
        ns.bgp_routes()
    );
    assert_eq!(futures_lite_status(&fib).installed, 2);
    fib.shutdown().await.unwrap();
    assert_eq!(ns.bgp_route_count(), 0);
}

/// Graceful restart: keep_on_exit leaves routes (and the source address
/// they need) in place, and the next start adopts them without a write.
async fn keep_on_exit_body(nh: bool) {
    let ns = Ns::with("keep", nh);
    let v0 = ns.ifindex("veth0");
    let cfg = FibConfig {
        keep_on_exit: true,
        source_address: Some(Ipv4Addr::new(192, 0, 2, 79)),
        ..ns.config()
    };
    let fib = Fib::start(cfg.clone()).await.unwrap();
    fib.apply(vec![install("198.51.100.0/24", vec![ll("fe80::1", v0)])])
        .await
        .unwrap();
    fib.flush().await.unwrap();
    fib.shutdown().await.unwrap();
    let before = ns.route("-4 route show proto bgp");
    assert_eq!(before.lines().count(), 1, "{before}");
    assert!(ns.ip("-4 addr show dev lo").contains("192.0.2.79/32"));
    let fib = Fib::start(FibConfig {
        keep_on_exit: false,
        ..cfg
    })
    .await
    .unwrap();
    assert_eq!(fib.status().await.stale, 1);
    fib.apply(vec![install("198.51.100.0/24", vec![ll("fe80::1", v0)])])
        .await
        .unwrap();
    fib.flush().await.unwrap();
    let st = fib.status().await;
    assert_eq!((st.installed, st.stale), (1, 0), "{st:?}");
    assert_eq!(ns.route("-4 route show proto bgp"), before);
    // The address carries our label, so this run knows it may remove it.
    assert!(st.source_address_added, "{st:?}");
    fib.shutdown().await.unwrap();
    assert_eq!(ns.bgp_route_count(), 0);
    assert!(!ns.ip("-4 addr show dev lo").contains("192.0.2.79"));
}

/// max_routes caps what goes into the kernel; the rest is reported.
async fn max_routes_body(nh: bool) {
    let ns = Ns::with("max", nh);
    let v0 = ns.ifindex("veth0");
    let fib = Fib::start(FibConfig {
        max_routes: Some(2),
        ..ns.config()
    })
    .await
    .unwrap();
    fib.apply(vec![
        install("198.51.100.0/24", vec![ll("fe80::1", v0)]),
        install("192.0.2.0/24", vec![ll("fe80::1", v0)]),
        install("203.0.113.0/24", vec![ll("fe80::1", v0)]),
    ])
    .await
    .unwrap();
    fib.flush().await.unwrap();
    assert_eq!(ns.bgp_route_count(), 2);
    let st = fib.status().await;
    assert_eq!((st.installed, st.failed_count), (2, 1), "{st:?}");
    assert!(st.failed[0].error.contains("max-routes 2"), "{st:?}");
    fib.shutdown().await.unwrap();
}

/// ECMP over two links: one link down leaves the route on the other hop,
/// and both hops are back once it returns.
async fn ecmp_link_down_up_body(nh: bool) {
    let ns = Ns::with("ecmplink", nh);
    ns.ip("link add veth2 type veth peer name veth3");
    ns.ip("link set veth2 up");
    ns.ip("link set veth3 up");
    let (v0, v2) = (ns.ifindex("veth0"), ns.ifindex("veth2"));
    let fib = Fib::start(ns.config()).await.unwrap();
    let hops = vec![ll("fe80::1", v0), ll("fe80::2", v2)];
    fib.apply(vec![
        install("198.51.100.0/24", hops.clone()),
        install("192.0.2.0/24", hops.clone()),
    ])
    .await
    .unwrap();
    fib.flush().await.unwrap();
    if nh {
        let nhs = ns.ip("nexthop show");
        assert!(nhs.contains("group"), "{nhs}");
    }
    ns.ip("link set veth0 down");
    assert!(
        wait_for(5, || {
            let r = ns.route("-4 route show 198.51.100.0/24");
            r.contains("fe80::2 dev veth2") && (!r.contains("veth0") || r.contains("dead"))
        }),
        "{}",
        ns.route("-4 route show 198.51.100.0/24")
    );
    ns.ip("link set veth0 up");
    assert!(
        wait_for(5, || {
            let r = ns.route("-4 route show 198.51.100.0/24");
            r.contains("fe80::1 dev veth0")
                && r.contains("fe80::2 dev veth2")
                && !r.contains("dead")
        }),
        "{}",
        ns.route("-4 route show 198.51.100.0/24")
    );
    let st = futures_lite_status(&fib);
    assert_eq!(
        (st.installed, st.link_down, st.failed_count),
        (2, 0, 0),
        "{st:?}"
    );
    // Restart adopts the ECMP routes without rewriting them.
    let before = ns.ip("-4 route show proto bgp");
    drop(fib);
    let fib = Fib::start(ns.config()).await.unwrap();
    fib.apply(vec![
        install("198.51.100.0/24", hops.clone()),
        install("192.0.2.0/24", hops),
    ])
    .await
    .unwrap();
    fib.flush().await.unwrap();
    assert_eq!(ns.ip("-4 route show proto bgp"), before);
    let st = fib.status().await;
    assert_eq!((st.installed, st.stale), (2, 0), "{st:?}");
    fib.shutdown().await.unwrap();
    assert_eq!(ns.bgp_route_count(), 0);
    if nh {
        assert_eq!(ns.ip("nexthop show").trim(), "");
    }
}

/// Someone replaces our route with their own (same key): it is theirs
/// from then on, reported, and never overwritten or deleted by us.
async fn foreign_replace_is_respected_body(nh: bool) {
    let ns = Ns::with("frepl", nh);
    ns.ip("addr add 10.9.0.1/24 dev veth0");
    let v0 = ns.ifindex("veth0");
    let fib = Fib::start(ns.config()).await.unwrap();
    fib.apply(vec![install("198.51.100.0/24", vec![ll("fe80::1", v0)])])
        .await
        .unwrap();
    fib.flush().await.unwrap();
    ns.ip("route replace 198.51.100.0/24 via 10.9.0.2 proto static metric 20");
    assert!(
        wait_for(5, || futures_lite_status(&fib).conflict_count == 1),
        "{:?}",
        futures_lite_status(&fib)
    );
    // A new next hop from BGP must not overwrite it; a withdraw must not
    // delete it.
    fib.apply(vec![install("198.51.100.0/24", vec![ll("fe80::2", v0)])])
        .await
        .unwrap();
    fib.flush().await.unwrap();
    let want = "198.51.100.0/24 via 10.9.0.2 dev veth0 proto static metric 20";
    assert_eq!(ns.ip("-4 route show 198.51.100.0/24").trim(), want);
    fib.apply(vec![remove("198.51.100.0/24")]).await.unwrap();
    fib.flush().await.unwrap();
    fib.shutdown().await.unwrap();
    assert_eq!(ns.ip("-4 route show 198.51.100.0/24").trim(), want);
}

/// A route of our protocol that appeared after our start dump blocks our
/// exclusive create; being ours, it is adopted and rewritten, not reported.
async fn adopts_late_route_of_our_protocol_body(nh: bool) {
    let ns = Ns::with("late", nh);
    let v0 = ns.ifindex("veth0");
    let fib = Fib::start(ns.config()).await.unwrap();
    ns.ip("route add 198.51.100.0/24 via inet6 fe80::9 dev veth0 proto bgp metric 20");
    fib.apply(vec![install("198.51.100.0/24", vec![ll("fe80::1", v0)])])
        .await
        .unwrap();
    fib.flush().await.unwrap();
    let r = ns.route("-4 route show proto bgp");
    assert_eq!(r.lines().count(), 1, "{r}");
    assert!(r.contains("via inet6 fe80::1 dev veth0"), "{r}");
    let st = fib.status().await;
    assert_eq!((st.installed, st.conflict_count), (1, 0), "{st:?}");
    fib.shutdown().await.unwrap();
    assert_eq!(ns.bgp_route_count(), 0);
}

/// Status from sync code inside `wait_for` (the FIB runs on its own thread).
fn futures_lite_status(fib: &Fib) -> fib::FibStatus {
    let fib = fib.clone();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .map(|rt| rt.block_on(fib.status()))
            .unwrap_or_default()
    })
    .join()
    .unwrap_or_default()
}

/// Our nexthop objects avoid ids held by others, carry our protocol, are
/// reused across a restart and removed at shutdown; a foreign one is kept.
#[tokio::test]
async fn nexthop_objects_lifecycle() {
    let ns = Ns::with("nhobj", true);
    let v0 = ns.ifindex("veth0");
    // Takes the first id we would pick.
    let first = 186_001u32;
    ns.ip(&format!("nexthop add id {first} via fe80::5 dev veth0"));
    let fib = Fib::start(ns.config()).await.unwrap();
    fib.apply(vec![
        install("198.51.100.0/24", vec![ll("fe80::1", v0)]),
        install("192.0.2.0/24", vec![ll("fe80::1", v0)]),
    ])
    .await
    .unwrap();
    fib.flush().await.unwrap();
    let nhs = ns.ip("nexthop show");
    assert_eq!(nhs.lines().count(), 2, "{nhs}");
    let ours = nhs
        .lines()
        .find(|l| l.contains("fe80::1"))
        .unwrap()
        .to_owned();
    assert!(ours.contains("proto bgp"), "{ours}");
    assert!(!ours.starts_with(&format!("id {first} ")), "{ours}");
    let r = ns.ip("-4 route show 198.51.100.0/24");
    assert!(r.contains("nhid"), "{r}");
    drop(fib);
    // Restart: same object adopted, routes untouched, nothing new made.
    let fib = Fib::start(ns.config()).await.unwrap();
    fib.apply(vec![
        install("198.51.100.0/24", vec![ll("fe80::1", v0)]),
        install("192.0.2.0/24", vec![ll("fe80::1", v0)]),
    ])
    .await
    .unwrap();
    fib.flush().await.unwrap();
    assert_eq!(ns.ip("nexthop show"), nhs);
    assert_eq!(ns.ip("-4 route show 198.51.100.0/24"), r);
    // Someone deletes our object (and so our routes): both come back.
    let our_id = ours.split_whitespace().nth(1).unwrap().to_owned();
    ns.ip(&format!("nexthop del id {our_id}"));
    assert!(
        wait_for(5, || ns.bgp_route_count() == 2),
        "{:?}",
        ns.bgp_routes()
    );
    assert_eq!(futures_lite_status(&fib).installed, 2);
    drop(fib);
    // Restart with a new gateway: the old object goes once synced.
    let fib = Fib::start(ns.config()).await.unwrap();
    fib.apply(vec![install("198.51.100.0/24", vec![ll("fe80::7", v0)])])
        .await
        .unwrap();
    fib.flush().await.unwrap();
    assert_eq!(ns.ip("nexthop show").lines().count(), 3);
    fib.initial_sync_done().await;
    let now = ns.ip("nexthop show");
    assert_eq!(now.lines().count(), 2, "{now}");
    assert!(now.contains("fe80::7") && now.contains("fe80::5"), "{now}");
    assert_eq!(ns.bgp_route_count(), 1, "{:?}", ns.bgp_routes());
    fib.shutdown().await.unwrap();
    let left = ns.ip("nexthop show");
    assert_eq!(left.lines().count(), 1, "{left}");
    assert!(left.contains("fe80::5"), "{left}");
    assert_eq!(ns.bgp_route_count(), 0);
}

/// Every behaviour, with plain routes and with nexthop objects.
macro_rules! both_modes {
    ($($body:ident => $plain:ident, $nh:ident;)*) => {$(
        #[tokio::test]
        async fn $plain() {
            $body(false).await
        }
        #[tokio::test]
        async fn $nh() {
            $body(true).await
        }
    )*};
}

both_modes! {
    adopts_late_route_of_our_protocol_body => adopts_late_route_of_our_protocol, adopts_late_route_of_our_protocol_nh;
    foreign_replace_is_respected_body => foreign_replace_is_respected, foreign_replace_is_respected_nh;
    ecmp_link_down_up_body => ecmp_link_down_up, ecmp_link_down_up_nh;
    keep_on_exit_body => keep_on_exit, keep_on_exit_nh;
    max_routes_body => max_routes, max_routes_nh;
    audit_repairs_body => audit_repairs, audit_repairs_nh;
    carrier_loss_body => carrier_loss, carrier_loss_nh;
    install_replace_remove_body => install_replace_remove, install_replace_remove_nh;
    coalesces_per_prefix_body => coalesces_per_prefix, coalesces_per_prefix_nh;
    ecmp_multipath_body => ecmp_multipath, ecmp_multipath_nh;
    prefsrc_and_lo_address_lifecycle_body => prefsrc_and_lo_address_lifecycle, prefsrc_and_lo_address_lifecycle_nh;
    source_address_removed_is_restored_body => source_address_removed_is_restored, source_address_removed_is_restored_nh;
    foreign_route_is_never_touched_body => foreign_route_is_never_touched, foreign_route_is_never_touched_nh;
    per_route_errors_body => per_route_errors, per_route_errors_nh;
    restart_reconcile_body => restart_reconcile, restart_reconcile_nh;
    stale_timeout_removes_by_itself_body => stale_timeout_removes_by_itself, stale_timeout_removes_by_itself_nh;
    interface_down_up_body => interface_down_up, interface_down_up_nh;
    hundred_thousand_cycle_body => hundred_thousand_cycle, hundred_thousand_cycle_nh;
}
