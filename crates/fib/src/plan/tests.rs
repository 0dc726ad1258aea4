//! The planner without a kernel: recorded event sequences in, the
//! operations it decides out.

use std::collections::{HashMap, HashSet};

use ipnet::IpNet;

use super::*;
use crate::nl::{KernelRoute, RouteOp, RouteParams, RTN_UNICAST};
use crate::{FibChange, Gateway, NextHopSet};

const PARAMS: RouteParams = RouteParams {
    table: 254,
    protocol: 186,
    metric: 20,
    prefsrc: None,
};
const STATIC: u8 = 4;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn hop(gw: &str, ix: u32) -> Gateway {
    Gateway::on_link(gw.parse().unwrap(), ix)
}

fn install(p: &str, hops: &[Gateway]) -> FibChange {
    let next_hops: NextHopSet = hops.into();
    FibChange::Install {
        prefix: net(p),
        next_hops,
    }
}

fn remove(p: &str) -> FibChange {
    FibChange::Remove { prefix: net(p) }
}

fn kroute(p: &str, protocol: u8, hops: &[Gateway]) -> KernelRoute {
    KernelRoute {
        prefix: net(p),
        table: 254,
        protocol,
        rtype: RTN_UNICAST,
        metric: 20,
        prefsrc: None,
        hops: hops.to_vec(),
        nh_id: None,
    }
}

/// The kernel's refusal as it reads back (the text is only shown).
fn refusal(text: &str) -> Failure {
    Failure::Kernel(crate::nl::Refusal {
        errno: 0,
        ext: Some(text.into()),
    })
}

fn no_objects(_: u32) -> Option<Vec<Gateway>> {
    None
}

fn planner() -> Planner {
    Planner::new(PARAMS, None, HashSet::new())
}

/// Plan every dirty prefix as the executor does, the kernel accepting
/// all; sorted by prefix.
fn run(p: &mut Planner) -> Vec<Planned> {
    let mut out = Vec::new();
    loop {
        let dirty = p.take_dirty();
        if dirty.is_empty() {
            break;
        }
        out.extend(dirty.into_iter().filter_map(|x| p.plan(x)));
    }
    p.sweep();
    out.sort_by_key(|o| o.prefix);
    out
}

fn ops(planned: &[Planned]) -> Vec<(IpNet, RouteOp)> {
    planned.iter().map(|o| (o.prefix, o.op)).collect()
}

/// The per-prefix state stays small (a million of them per table).
#[test]
fn route_state_is_compact() {
    assert!(std::mem::size_of::<Route>() <= 20);
    assert!(std::mem::size_of::<(IpNet, Route)>() <= 40);
    // With the 5-byte IPv4 key of `RouteMap`, a table slot of 16 bytes.
    assert_eq!(std::mem::size_of::<Route>(), 11);
    assert_eq!(std::mem::align_of::<Route>(), 1);
}

/// Start with routes of ours in the kernel: the same hops are adopted
/// without a write, other hops replaced in place, the unwanted one
/// removed only once synced.
#[test]
fn start_adopts_replaces_and_removes_after_sync() {
    let (h1, h2) = (hop("fe80::1", 2), hop("fe80::2", 2));
    let mut p = planner();
    let found = vec![
        kroute("10.0.0.0/24", PARAMS.protocol, &[h1]),
        kroute("10.0.1.0/24", PARAMS.protocol, &[h1]),
        kroute("10.0.2.0/24", PARAMS.protocol, &[h1]),
    ];
    p.load_stale(found, &no_objects);
    assert_eq!(p.status().stale, 3);
    p.apply(vec![
        install("10.0.0.0/24", &[h1]),
        install("10.0.1.0/24", &[h2]),
    ]);
    let done = run(&mut p);
    assert_eq!(ops(&done), vec![(net("10.0.1.0/24"), RouteOp::Replace)]);
    let st = p.status();
    assert_eq!(
        (st.installed, st.stale, st.initial_sync_done),
        (2, 1, false)
    );
    assert!(run(&mut p).is_empty(), "stale routes wait for the sync");
    assert!(p.sync_done().is_empty());
    assert_eq!(
        ops(&run(&mut p)),
        vec![(net("10.0.2.0/24"), RouteOp::Delete)]
    );
    let st = p.status();
    assert_eq!((st.installed, st.stale, st.hop_sets), (2, 0, 2));
}

/// Routes at another metric are handed back for deletion at sync, once.
#[test]
fn other_metric_routes_go_at_sync() {
    let mut p = planner();
    let mut r = kroute("10.0.0.0/24", PARAMS.protocol, &[hop("fe80::1", 2)]);
    r.metric = 99;
    p.load_stale(vec![r], &no_objects);
    assert_eq!(p.status().stale, 0);
    assert_eq!(p.sync_done(), vec![(net("10.0.0.0/24"), 99)]);
    assert!(p.sync_done().is_empty());
}

/// Link down: routes whose every hop is on it are gone (link_down), an
/// ECMP route with a hop elsewhere stays, a new route on it waits; link
/// up writes the waiting ones.
#[test]
fn link_down_and_up() {
    let (a, b) = (hop("fe80::1", 2), hop("fe80::2", 3));
    let mut p = planner();
    p.apply(vec![
        install("10.0.0.0/24", &[a]),
        install("10.0.1.0/24", &[a, b]),
        install("10.0.2.0/24", &[b]),
    ]);
    assert_eq!(run(&mut p).len(), 3);
    assert_eq!(p.link_state(2, false), Some(LinkChange::Down));
    assert_eq!(p.link_state(2, false), None, "already down");
    let st = p.status();
    assert_eq!((st.installed, st.link_down), (2, 1));
    p.apply(vec![install("10.0.3.0/24", &[a])]);
    assert!(run(&mut p).is_empty());
    assert_eq!(p.status().link_down, 2);
    assert_eq!(p.link_state(2, true), Some(LinkChange::Up));
    assert_eq!(
        ops(&run(&mut p)),
        vec![
            (net("10.0.0.0/24"), RouteOp::Create),
            (net("10.0.3.0/24"), RouteOp::Create)
        ]
    );
    let st = p.status();
    assert_eq!((st.installed, st.link_down), (4, 0));
}

/// A foreign route in the way: the create is refused (EEXIST), what is
/// there reported, retried as a create only; never replaced or deleted.
#[test]
fn foreign_route_in_the_way_is_reported_never_overwritten() {
    let h = hop("fe80::1", 2);
    let mut p = planner();
    p.apply(vec![install("10.0.0.0/24", &[h])]);
    let done = run(&mut p);
    assert_eq!(ops(&done), vec![(net("10.0.0.0/24"), RouteOp::Create)]);
    let why = refusal("File exists");
    assert!(!p.failed(&done[0], why, libc::EEXIST));
    let wanted = p.take_to_describe();
    assert_eq!(wanted, HashSet::from([net("10.0.0.0/24")]));
    let theirs = kroute("10.0.0.0/24", STATIC, &[hop("fe80::9", 2)]);
    p.conflicts_found(wanted, HashMap::from([(net("10.0.0.0/24"), vec![theirs])]));
    let st = p.status();
    assert_eq!((st.installed, st.conflict_count), (0, 1));
    assert_eq!(
        st.conflicts[0].existing,
        "proto 4 metric 20 via fe80::9 dev 2"
    );
    assert!(run(&mut p).is_empty());
    p.retry();
    assert_eq!(
        ops(&run(&mut p)),
        vec![(net("10.0.0.0/24"), RouteOp::Create)]
    );
    assert!(!p.failed(&done[0], refusal("x"), libc::EEXIST));
    p.apply(vec![remove("10.0.0.0/24")]);
    assert!(run(&mut p).is_empty(), "no delete for a route not ours");
    assert_eq!(p.status().conflict_count, 0);
}

/// Someone replaces our route with theirs: a conflict, left alone; our
/// route deleted by someone: written again.
#[test]
fn route_events_replace_and_delete() {
    let h = hop("fe80::1", 2);
    let mut p = planner();
    p.apply(vec![
        install("10.0.0.0/24", &[h]),
        install("10.0.1.0/24", &[h]),
    ]);
    assert_eq!(run(&mut p).len(), 2);
    p.route_event(true, &kroute("10.0.0.0/24", STATIC, &[h]));
    p.route_event(false, &kroute("10.0.1.0/24", PARAMS.protocol, &[h]));
    // Events at another metric or of our own writes change nothing.
    let mut other = kroute("10.0.1.0/24", STATIC, &[h]);
    other.metric = 5;
    p.route_event(true, &other);
    p.route_event(true, &kroute("10.0.1.0/24", PARAMS.protocol, &[h]));
    assert_eq!(
        ops(&run(&mut p)),
        vec![(net("10.0.1.0/24"), RouteOp::Create)]
    );
    let st = p.status();
    assert_eq!((st.installed, st.conflict_count), (1, 1));
    p.apply(vec![remove("10.0.0.0/24")]);
    assert!(run(&mut p).is_empty(), "theirs now: never deleted");
}

/// A route of our protocol in the way (made behind our back) is adopted
/// and replaced.
#[test]
fn our_protocol_in_the_way_is_adopted() {
    let h = hop("fe80::1", 2);
    let mut p = planner();
    p.apply(vec![install("10.0.0.0/24", &[h])]);
    let done = run(&mut p);
    p.failed(&done[0], refusal("File exists"), libc::EEXIST);
    let wanted = p.take_to_describe();
    let ours = kroute("10.0.0.0/24", PARAMS.protocol, &[h]);
    p.conflicts_found(wanted, HashMap::from([(net("10.0.0.0/24"), vec![ours])]));
    assert_eq!(
        ops(&run(&mut p)),
        vec![(net("10.0.0.0/24"), RouteOp::Replace)]
    );
    assert_eq!(p.status().conflict_count, 0);
}

/// Routes the planner refuses itself: no operation, a typed reason.
#[test]
fn refused_before_the_kernel() {
    let mut p = Planner::new(PARAMS, Some(1), HashSet::new());
    p.apply(vec![
        install("10.0.0.0/24", &[hop("fe80::1", 2)]),
        install("10.0.1.0/24", &[hop("fe80::1", 2)]),
        install("2001:db8::/32", &[hop("192.0.2.1", 2)]),
    ]);
    assert_eq!(run(&mut p).len(), 1);
    let st = p.status();
    let errors: Vec<&str> = st.failed.iter().map(|f| f.error.as_str()).collect();
    assert_eq!(st.failed_count, 2);
    assert!(errors.contains(&"max-routes 1 reached"), "{errors:?}");
    assert!(
        errors.contains(&"IPv6 prefix with IPv4 gateway 192.0.2.1 is not supported"),
        "{errors:?}"
    );
}

/// Audit: a route of ours gone from the kernel is written again; one of
/// our protocol we did not know of is stale until synced.
#[test]
fn audit_repairs() {
    let h = hop("fe80::1", 2);
    let mut p = planner();
    p.apply(vec![
        install("10.0.0.0/24", &[h]),
        install("10.0.1.0/24", &[h]),
    ]);
    run(&mut p);
    let found = vec![
        kroute("10.0.0.0/24", PARAMS.protocol, &[h]),
        kroute("10.0.9.0/24", PARAMS.protocol, &[h]),
        kroute("10.0.8.0/24", STATIC, &[h]),
    ];
    p.audit(found, &no_objects);
    assert_eq!(
        ops(&run(&mut p)),
        vec![(net("10.0.1.0/24"), RouteOp::Create)]
    );
    assert_eq!(p.status().stale, 1);
    p.sync_done();
    assert_eq!(
        ops(&run(&mut p)),
        vec![(net("10.0.9.0/24"), RouteOp::Delete)]
    );
}

/// A refused delete restores the route with the set it had, even though
/// the set was released when the delete was planned.
#[test]
fn refused_delete_keeps_its_hop_set() {
    let h = hop("fe80::1", 2);
    let mut p = planner();
    p.apply(vec![install("10.0.0.0/24", &[h])]);
    run(&mut p);
    p.apply(vec![remove("10.0.0.0/24")]);
    let dirty = p.take_dirty();
    let del = p.plan(dirty[0]).unwrap();
    assert_eq!(del.op, RouteOp::Delete);
    p.failed(&del, refusal("Operation not permitted"), libc::EPERM);
    assert!(p.sweep().sets.is_empty(), "the restored route holds it");
    let st = p.status();
    assert_eq!((st.hop_sets, st.failed_count), (1, 1));
    // Already gone counts as deleted.
    p.apply(vec![remove("10.0.0.0/24")]);
    let dirty = p.take_dirty();
    let del = p.plan(dirty[0]).unwrap();
    p.failed(&del, refusal("No such process"), libc::ESRCH);
    assert_eq!(p.sweep().hops, vec![h]);
    assert_eq!(p.status().hop_sets, 0);
}

/// Churn through next hops: sets live only while a route uses them.
#[test]
fn hop_sets_are_freed_with_their_routes() {
    let mut p = planner();
    for round in 0..3u32 {
        let changes = (0..100u32)
            .map(|i| {
                let gw = format!("fe80::{}:{}", round + 1, i % 5 + 1);
                install(&format!("10.{round}.{i}.0/24"), &[hop(&gw, 2)])
            })
            .collect();
        p.apply(changes);
        assert_eq!(run(&mut p).len(), 100);
        assert_eq!(p.status().hop_sets, 5);
        let gone = (0..100u32)
            .map(|i| remove(&format!("10.{round}.{i}.0/24")))
            .collect();
        p.apply(gone);
        assert_eq!(run(&mut p).len(), 100);
        assert_eq!(p.status().hop_sets, 0, "round {round}");
    }
    assert_eq!(p.hopsets.slots(), 0);
}

/// The source address went: the kernel flushed our IPv4 routes only.
#[test]
fn source_address_lost_rewrites_ipv4() {
    let h = hop("fe80::1", 2);
    let mut p = planner();
    p.apply(vec![
        install("10.0.0.0/24", &[h]),
        install("2001:db8::/32", &[h]),
    ]);
    run(&mut p);
    p.source_lost();
    assert_eq!(
        ops(&run(&mut p)),
        vec![(net("10.0.0.0/24"), RouteOp::Create)]
    );
}

/// Our nexthop object was deleted: the routes through it are written
/// again, others stay.
#[test]
fn nexthop_object_gone_rewrites_its_routes() {
    let (a, b) = (hop("fe80::1", 2), hop("fe80::2", 2));
    let mut p = planner();
    p.apply(vec![
        install("10.0.0.0/24", &[a]),
        install("10.0.1.0/24", &[b]),
    ]);
    run(&mut p);
    p.set_gone(&[a]);
    assert_eq!(
        ops(&run(&mut p)),
        vec![(net("10.0.0.0/24"), RouteOp::Create)]
    );
}

/// A stale route through one of our nexthop objects is adopted as that
/// object's hops; one through somebody else's object is replaced.
#[test]
fn stale_routes_through_objects() {
    let h = hop("fe80::1", 2);
    let objects = |id: u32| (id == 7).then(|| vec![h]);
    let mut ours = kroute("10.0.0.0/24", PARAMS.protocol, &[]);
    ours.nh_id = Some(7);
    let mut theirs = kroute("10.0.1.0/24", PARAMS.protocol, &[]);
    theirs.nh_id = Some(8);
    let mut p = planner();
    p.load_stale(vec![ours, theirs], &objects);
    p.apply(vec![
        install("10.0.0.0/24", &[h]),
        install("10.0.1.0/24", &[h]),
    ]);
    assert_eq!(
        ops(&run(&mut p)),
        vec![(net("10.0.1.0/24"), RouteOp::Replace)]
    );
}
