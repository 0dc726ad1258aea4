//! Run-time announcements: advertised like configured origination, kept
//! across reconfiguration, and refused withdrawals of what was never
//! announced.

use wire::{CodecContext, MpNextHop, Update};

use super::*;
use crate::config::SpeakerConfig;
use crate::events::{PeerId, RouteEventKind, RouteOrigin, WatchEvent};
use crate::outbound::tests::{announced, sent};
use crate::rib::tests::{attrs, config, ll, ll_nh, mp_update, neighbor, net, session};
use crate::rib::RouteFilter;

/// Peer 0 (fe80::1) sends 10.99.0.0/24 and 10.0.0.0/24; peer 1 (fe80::2)
/// receives. Output so far is taken.
fn two_peers(cfg: SpeakerConfig) -> (Rib, CodecContext) {
    let mut rib = Rib::new(cfg.clone());
    rib.peer_up(session(&cfg, 0, "10.0.0.1"), None);
    let s1 = session(&cfg, 1, "10.0.0.2");
    rib.peer_up(s1.clone(), None);
    rib.update(
        PeerId(0),
        &mp_update(
            attrs(&[65001]),
            ll_nh("fe80::1"),
            &["10.99.0.0/24", "10.0.0.0/24"],
        ),
        false,
    );
    rib.flush_outbound();
    rib.take_peer_output(PeerId(0));
    rib.take_peer_output(PeerId(1));
    rib.take_fib_changes();
    (rib, s1.codec)
}

fn peers() -> SpeakerConfig {
    config(vec![neighbor("fe80::1", 65001), neighbor("fe80::2", 65002)])
}

/// The one UPDATE that announces `prefix` in `ups`.
fn carrying<'a>(ups: &'a [Update], prefix: &str) -> &'a Update {
    ups.iter()
        .find(|u| {
            u.attributes
                .mp_reach
                .as_ref()
                .is_some_and(|m| m.nlri.contains(&net(prefix)))
        })
        .unwrap_or_else(|| panic!("{prefix} not announced in {ups:?}"))
}

#[test]
fn a_runtime_route_goes_out_like_an_originated_one_with_its_communities() {
    let (mut rib, ctx) = two_peers(peers());
    let c = (65000 << 16) | 7;
    assert_eq!(
        rib.announce_runtime(net("10.99.0.0/24"), &[c, c]),
        Announced::New
    );
    // Our route wins over the learned one: the kernel route goes.
    let fib = rib.take_fib_changes();
    assert_eq!(
        fib,
        vec![RouteChange::Remove {
            prefix: net("10.99.0.0/24")
        }]
    );
    rib.flush_outbound();
    let ups = sent(&mut rib, 1, &ctx);
    let u = carrying(&ups, "10.99.0.0/24");
    // Next-hop-self as for `originate:` ([::, our link-local]), origin
    // AS path of ours only, the communities once.
    assert_eq!(
        u.attributes.mp_reach.as_ref().map(|m| m.next_hop),
        Some(MpNextHop::V6Pair(
            std::net::Ipv6Addr::UNSPECIFIED,
            ll("fe80::ff")
        ))
    );
    assert_eq!(u.attributes.communities, vec![c]);
    assert_eq!(
        u.attributes.as_path.as_ref().map(|p| p.segments.clone()),
        Some(vec![wire::AsSegment::Sequence(vec![
            crate::rib::tests::OUR_AS
        ])])
    );
    // Even to the peer the learned path came from (it is ours now).
    let to0 = sent(&mut rib, 0, &ctx);
    assert!(announced(&to0).iter().any(|a| a.0 == net("10.99.0.0/24")));
    // Shown as run-time.
    let rows = rib.routes_filtered(&RouteFilter {
        prefix: Some(net("10.99.0.0/24")),
        ..RouteFilter::default()
    });
    let ours: Vec<_> = rows.iter().filter(|r| r.peer.is_none()).collect();
    assert_eq!(ours.len(), 1);
    assert!(ours[0].runtime);
    assert_eq!(ours[0].communities, vec!["65000:7".to_string()]);

    // Withdrawn: the learned path is back in the kernel and is what the
    // receiving peer gets (its AS path, no communities).
    rib.withdraw_runtime(net("10.99.0.0/24")).unwrap();
    let fib = rib.take_fib_changes();
    assert!(
        matches!(fib.as_slice(), [RouteChange::Install { prefix, .. }] if *prefix == net("10.99.0.0/24")),
        "{fib:?}"
    );
    rib.flush_outbound();
    let ups = sent(&mut rib, 1, &ctx);
    let u = carrying(&ups, "10.99.0.0/24");
    assert!(u.attributes.communities.is_empty());
    assert_eq!(
        u.attributes.as_path.as_ref().map(|p| p.segments.clone()),
        Some(vec![wire::AsSegment::Sequence(vec![
            crate::rib::tests::OUR_AS,
            65001
        ])])
    );
    // ... and the peer it came from is told to forget ours.
    let to0 = sent(&mut rib, 0, &ctx);
    assert!(to0.iter().any(|u| u
        .attributes
        .mp_unreach
        .as_ref()
        .is_some_and(|m| m.withdrawn.contains(&net("10.99.0.0/24")))
        || u.withdrawn.contains(&"10.99.0.0/24".parse().unwrap())));
}

#[test]
fn withdrawing_what_was_never_announced_at_run_time_is_an_error() {
    let mut cfg = peers();
    cfg.originate_v4 = vec!["198.51.100.0/24".parse().unwrap()];
    let (mut rib, _) = two_peers(cfg);
    assert_eq!(
        rib.withdraw_runtime(net("10.99.0.0/24")),
        Err(RuntimeError::NotAnnounced(net("10.99.0.0/24")))
    );
    // A prefix of the configuration's originate: is not a run-time one.
    assert_eq!(
        rib.withdraw_runtime(net("198.51.100.0/24")),
        Err(RuntimeError::NotAnnounced(net("198.51.100.0/24")))
    );
    // Nothing changed for it.
    assert!(rib.is_originated(net("198.51.100.0/24")));
    assert!(rib.take_fib_changes().is_empty());
    // Twice is once too many.
    rib.announce_runtime(net("2001:db8:99::/48"), &[]);
    rib.withdraw_runtime(net("2001:db8:99::/48")).unwrap();
    assert!(rib.withdraw_runtime(net("2001:db8:99::/48")).is_err());
}

#[test]
fn runtime_routes_survive_a_reconfiguration() {
    let (mut rib, ctx) = two_peers(peers());
    rib.announce_runtime(net("10.99.0.0/24"), &[]);
    rib.announce_runtime(net("2001:db8:99::/48"), &[]);
    rib.flush_outbound();
    sent(&mut rib, 1, &ctx);
    rib.take_fib_changes();
    // A reload with a new policy and no originate: at all.
    let mut cfg = peers();
    cfg.max_paths = 4;
    rib.reconfigure(cfg);
    assert!(rib.is_originated(net("10.99.0.0/24")));
    assert!(rib.is_originated(net("2001:db8:99::/48")));
    // The learned 10.99.0.0/24 does not come back into the kernel.
    let fib = rib.take_fib_changes();
    assert!(
        !fib.iter().any(
            |c| matches!(c, RouteChange::Install { prefix, .. } if *prefix == net("10.99.0.0/24"))
        ),
        "{fib:?}"
    );
    // Still announced (the reconfiguration resends what changed; the
    // run-time routes are never withdrawn).
    let ups = sent(&mut rib, 1, &ctx);
    for u in &ups {
        assert!(!u.withdrawn.contains(&"10.99.0.0/24".parse().unwrap()));
        assert!(u.attributes.mp_unreach.is_none(), "{u:?}");
    }
    let ours: Vec<String> = rib
        .routes()
        .into_iter()
        .filter(|r| r.runtime)
        .map(|r| r.prefix)
        .collect();
    assert_eq!(ours, vec!["10.99.0.0/24", "2001:db8:99::/48"]);
}

#[test]
fn runtime_and_configured_origination_of_one_prefix() {
    let mut cfg = peers();
    cfg.originate_v4 = vec!["198.51.100.0/24".parse().unwrap()];
    let (mut rib, ctx) = two_peers(cfg.clone());
    let c = (65000 << 16) | 1;
    // Announced at run time too: one route, with the run-time communities.
    assert_eq!(
        rib.announce_runtime(net("198.51.100.0/24"), &[c]),
        Announced::New
    );
    rib.flush_outbound();
    let ups = sent(&mut rib, 1, &ctx);
    assert_eq!(
        carrying(&ups, "198.51.100.0/24").attributes.communities,
        vec![c]
    );
    let ours = rib.routes_filtered(&RouteFilter {
        prefix: Some(net("198.51.100.0/24")),
        ..RouteFilter::default()
    });
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert!(ours[0].runtime);
    // Removed from the configuration: the run-time one stays.
    let mut without = cfg.clone();
    without.originate_v4.clear();
    rib.reconfigure(without);
    assert!(rib.is_originated(net("198.51.100.0/24")));
    rib.flush_outbound();
    let ups = sent(&mut rib, 1, &ctx);
    assert!(ups.iter().all(|u| u.withdrawn.is_empty()));
    // Back in the configuration, then withdrawn at run time: the
    // configuration's origination stays, sent without the communities.
    rib.reconfigure(cfg);
    sent(&mut rib, 1, &ctx);
    rib.withdraw_runtime(net("198.51.100.0/24")).unwrap();
    assert!(rib.is_originated(net("198.51.100.0/24")));
    rib.flush_outbound();
    let ups = sent(&mut rib, 1, &ctx);
    assert!(carrying(&ups, "198.51.100.0/24")
        .attributes
        .communities
        .is_empty());
}

#[test]
fn no_export_on_a_runtime_route_keeps_it_from_ebgp_peers() {
    let (mut rib, ctx) = two_peers(peers());
    rib.announce_runtime(net("10.98.0.0/24"), &[0xFFFF_FF01]);
    rib.flush_outbound();
    let ups = sent(&mut rib, 1, &ctx);
    assert!(!announced(&ups).iter().any(|a| a.0 == net("10.98.0.0/24")));
}

#[test]
fn watchers_see_runtime_and_learned_route_events() {
    let (mut rib, _) = two_peers(peers());
    let mut rx = rib.watch_sender().subscribe();
    rib.refresh_watching();
    rib.announce_runtime(net("10.99.0.0/24"), &[]);
    rib.withdraw_runtime(net("10.99.0.0/24")).unwrap();
    rib.update(
        PeerId(0),
        &mp_update(attrs(&[65001]), ll_nh("fe80::1"), &["10.7.0.0/24"]),
        false,
    );
    let mut got = Vec::new();
    while let Ok(e) = rx.try_recv() {
        got.push(e);
    }
    let route = |p: &str, change, origin, hops: usize| WatchEvent::Route {
        prefix: net(p),
        change,
        origin,
        next_hops: vec![crate::events::Gateway::on_link("fe80::1".parse().unwrap(), 7); hops],
    };
    assert_eq!(
        got,
        vec![
            route(
                "10.99.0.0/24",
                RouteEventKind::Added,
                RouteOrigin::Runtime,
                0
            ),
            route(
                "10.99.0.0/24",
                RouteEventKind::Removed,
                RouteOrigin::Runtime,
                0
            ),
            route(
                "10.99.0.0/24",
                RouteEventKind::Added,
                RouteOrigin::Learned,
                1
            ),
            route(
                "10.7.0.0/24",
                RouteEventKind::Added,
                RouteOrigin::Learned,
                1
            ),
        ]
    );
}
