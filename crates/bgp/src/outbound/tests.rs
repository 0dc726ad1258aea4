//! Outbound tests: what a peer is sent, decoded back from the bytes.

use std::net::{Ipv4Addr, Ipv6Addr};

use wire::{CodecContext, Family, LinkLocalForm, Message, MpNextHop, Update};

use super::*;
use crate::config::{
    Policy, PolicyAction, PolicyMatch, PolicyRef, PolicySet, PolicyTerm, PrefixMatch,
};
use crate::events::{PeerId, PeerOutput};
use crate::rib::tests::{attrs, config, ll, ll_nh, mp_update, neighbor, net, session, OUR_AS};
use crate::rib::Rib;

/// Every UPDATE in the peer's queued output.
pub(crate) fn sent(rib: &mut Rib, peer: u32, ctx: &CodecContext) -> Vec<Update> {
    let mut out = Vec::new();
    for o in rib.take_peer_output(PeerId(peer)) {
        let PeerOutput::Messages(bytes) = o else {
            panic!("unexpected close");
        };
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let n = wire::frame_length(rest, ctx)
                .expect("valid header")
                .expect("whole message");
            let (msg, tail) = rest.split_at(n);
            match wire::decode_message(msg, ctx).expect("decodes").message {
                Message::Update(u) => out.push(u),
                other => panic!("unexpected {other:?}"),
            }
            rest = tail;
        }
    }
    out
}

pub(crate) fn announced(updates: &[Update]) -> Vec<(IpNet, Option<MpNextHop>, Option<Ipv4Addr>)> {
    let mut v = Vec::new();
    for u in updates {
        for p in &u.nlri {
            v.push((IpNet::V4(*p), None, u.attributes.next_hop));
        }
        if let Some(mp) = &u.attributes.mp_reach {
            for p in &mp.nlri {
                v.push((*p, Some(mp.next_hop), None));
            }
        }
    }
    v
}

fn eors(updates: &[Update]) -> Vec<Family> {
    updates.iter().filter_map(wire::is_end_of_rib).collect()
}

/// Peer 0 (eBGP 65001, link-local) sends 10.0.0.0/24; peer 1 is set up
/// by `tweak` and receives.
fn two_peers(
    tweak: impl Fn(&mut EstablishedSession, &mut crate::config::NeighborConfig),
) -> (Rib, EstablishedSession) {
    let mut cfg = config(vec![neighbor("fe80::1", 65001), neighbor("fe80::2", 65002)]);
    let mut s1 = session(&cfg, 1, "10.0.0.2");
    tweak(&mut s1, &mut cfg.neighbors[1]);
    let mut rib = Rib::new(cfg.clone());
    rib.peer_up(session(&cfg, 0, "10.0.0.1"), None);
    rib.peer_up(s1.clone(), None);
    rib.take_peer_output(PeerId(0));
    rib.take_peer_output(PeerId(1));
    let mut a = attrs(&[65001, 65100]);
    a.local_pref = Some(555);
    a.med = Some(9);
    rib.update(
        PeerId(0),
        &mp_update(a, ll_nh("fe80::1"), &["10.0.0.0/24"]),
        false,
    );
    rib.flush_outbound();
    (rib, s1)
}

#[test]
fn link_local_session_sends_native_form_with_prepend_and_no_local_pref() {
    let (mut rib, s) = two_peers(|_, _| {});
    let ups = sent(&mut rib, 1, &s.codec);
    assert_eq!(ups.len(), 1);
    let a = &ups[0].attributes;
    assert_eq!(
        announced(&ups),
        vec![(
            net("10.0.0.0/24"),
            Some(MpNextHop::V6Pair(Ipv6Addr::UNSPECIFIED, ll("fe80::ff"))),
            None
        )]
    );
    assert_eq!(
        a.as_path.as_ref().map(|p| p.segments.clone()),
        Some(vec![wire::AsSegment::Sequence(vec![OUR_AS, 65001, 65100])])
    );
    assert_eq!(a.local_pref, None);
    assert_eq!(a.med, None, "MED does not cross to another AS");
    assert_eq!(rib.peer_counts(PeerId(1)).advertised, 1);
    // Never back to the peer it came from.
    assert!(sent(&mut rib, 0, &s.codec).is_empty());
    assert_eq!(rib.peer_counts(PeerId(0)).advertised, 0);
}

#[test]
fn global_session_sends_global_and_link_local() {
    let (mut rib, s) = two_peers(|s, _| {
        s.local_global_v6 = Some(ll("2001:db8::ff"));
    });
    assert_eq!(
        announced(&sent(&mut rib, 1, &s.codec)),
        vec![(
            net("10.0.0.0/24"),
            Some(MpNextHop::V6Pair(ll("2001:db8::ff"), ll("fe80::ff"))),
            None
        )]
    );
}

#[test]
fn single_and_double_link_local_forms() {
    for (form, want) in [
        (LinkLocalForm::Single, MpNextHop::V6(ll("fe80::ff"))),
        (
            LinkLocalForm::Double,
            MpNextHop::V6Pair(ll("fe80::ff"), ll("fe80::ff")),
        ),
    ] {
        let (mut rib, s) = two_peers(|_, n| n.link_local_form = form);
        assert_eq!(
            announced(&sent(&mut rib, 1, &s.codec)),
            vec![(net("10.0.0.0/24"), Some(want), None)]
        );
    }
}

#[test]
fn without_extended_next_hop_ipv4_next_hop_or_nothing() {
    // No capability 5 but an IPv4 address: classic NEXT_HOP.
    let (mut rib, s) = two_peers(|s, _| {
        s.codec.extended_next_hop_ipv4 = false;
        s.local_ipv4 = Some("192.0.2.9".parse().unwrap());
    });
    assert_eq!(
        announced(&sent(&mut rib, 1, &s.codec)),
        vec![(net("10.0.0.0/24"), None, Some("192.0.2.9".parse().unwrap()))]
    );
    // Neither: not sent, and the reason is visible.
    let (mut rib, s) = two_peers(|s, _| s.codec.extended_next_hop_ipv4 = false);
    assert!(sent(&mut rib, 1, &s.codec).is_empty());
    let routes = rib.routes();
    let r = routes.iter().find(|r| r.best).expect("a best route");
    assert_eq!(
        r.not_advertised,
        vec![format!("fe80::2: {}", NotSent::NoIpv4NextHop.as_str())]
    );
}

#[test]
fn ibgp_split_horizon_and_local_pref_kept_for_ibgp() {
    let mut cfg = config(vec![
        neighbor("fe80::1", OUR_AS),
        neighbor("fe80::2", OUR_AS),
        neighbor("fe80::3", 65003),
    ]);
    cfg.neighbors[2].export = PolicyRef::AcceptAll;
    let mut rib = Rib::new(cfg.clone());
    for i in 0..3 {
        rib.peer_up(session(&cfg, i, &format!("10.0.0.{}", i + 1)), None);
        rib.take_peer_output(PeerId(i));
    }
    let mut a = attrs(&[65100]);
    a.local_pref = Some(150);
    rib.update(
        PeerId(0),
        &mp_update(a, ll_nh("fe80::1"), &["10.0.0.0/24"]),
        false,
    );
    // eBGP peer 2 sends another prefix; iBGP peer 1 gets it with
    // LOCAL_PREF and no prepend.
    rib.update(
        PeerId(2),
        &mp_update(attrs(&[65003]), ll_nh("fe80::3"), &["10.3.0.0/16"]),
        false,
    );
    rib.flush_outbound();
    let ctx = session(&cfg, 1, "10.0.0.2").codec;
    let to1 = sent(&mut rib, 1, &ctx);
    assert_eq!(announced(&to1).len(), 1);
    assert_eq!(announced(&to1)[0].0, net("10.3.0.0/16"));
    assert_eq!(to1[0].attributes.local_pref, Some(100));
    assert_eq!(
        to1[0].attributes.as_path.as_ref().map(|p| p.segments.len()),
        Some(1)
    );
    // The eBGP peer gets the iBGP-learned one, prepended.
    let to2 = sent(&mut rib, 2, &ctx);
    assert_eq!(
        announced(&to2).iter().map(|a| a.0).collect::<Vec<_>>(),
        vec![net("10.0.0.0/24")]
    );
}

#[test]
fn initial_dump_with_originated_prefixes_then_end_of_rib_and_withdrawals() {
    let mut cfg = config(vec![neighbor("fe80::1", 65001), neighbor("fe80::2", 65002)]);
    cfg.originate_v4 = vec!["198.51.100.0/24".parse().unwrap()];
    cfg.originate_v6 = vec!["2001:db8:100::/48".parse().unwrap()];
    let mut rib = Rib::new(cfg.clone());
    rib.peer_up(session(&cfg, 0, "10.0.0.1"), None);
    rib.update(
        PeerId(0),
        &mp_update(attrs(&[65001]), ll_nh("fe80::1"), &["10.0.0.0/24"]),
        false,
    );
    let s1 = session(&cfg, 1, "10.0.0.2");
    rib.peer_up(s1.clone(), None);
    let ups = sent(&mut rib, 1, &s1.codec);
    let mut got: Vec<IpNet> = announced(&ups).iter().map(|a| a.0).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            net("10.0.0.0/24"),
            net("198.51.100.0/24"),
            net("2001:db8:100::/48")
        ]
    );
    assert_eq!(eors(&ups), vec![Family::Ipv4Unicast, Family::Ipv6Unicast]);
    // The originated IPv6 prefix carries our link-local next hop.
    let v6 = announced(&ups)
        .into_iter()
        .find(|a| a.0 == net("2001:db8:100::/48"))
        .unwrap();
    assert_eq!(
        v6.1,
        Some(MpNextHop::V6Pair(Ipv6Addr::UNSPECIFIED, ll("fe80::ff")))
    );
    // Origin: our AS only.
    let orig = ups
        .iter()
        .find(|u| {
            u.attributes
                .mp_reach
                .as_ref()
                .is_some_and(|m| m.nlri.contains(&net("198.51.100.0/24")))
        })
        .unwrap();
    assert_eq!(
        orig.attributes.as_path.as_ref().map(|p| p.segments.clone()),
        Some(vec![wire::AsSegment::Sequence(vec![OUR_AS])])
    );

    // The learned route goes away: peer 1 gets a withdrawal.
    rib.peer_down(PeerId(0));
    rib.flush_outbound();
    let ups = sent(&mut rib, 1, &s1.codec);
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].withdrawn, vec!["10.0.0.0/24".parse().unwrap()]);
    assert_eq!(rib.peer_counts(PeerId(1)).advertised, 2);

    // Route refresh: everything for the family again, no End-of-RIB.
    rib.route_refresh(PeerId(1), Family::Ipv4Unicast);
    let ups = sent(&mut rib, 1, &s1.codec);
    assert_eq!(
        announced(&ups).iter().map(|a| a.0).collect::<Vec<_>>(),
        vec![net("198.51.100.0/24")]
    );
    assert!(eors(&ups).is_empty());
}

#[test]
fn export_policies() {
    // `originated` passes only ours; default on eBGP passes nothing.
    for (export, want) in [
        (PolicyRef::Originated, vec![net("198.51.100.0/24")]),
        (PolicyRef::Default, vec![]),
        (PolicyRef::DenyAll, vec![]),
    ] {
        let mut cfg = config(vec![neighbor("fe80::1", 65001), neighbor("fe80::2", 65002)]);
        cfg.originate_v4 = vec!["198.51.100.0/24".parse().unwrap()];
        cfg.neighbors[1].export = export.clone();
        let mut rib = Rib::new(cfg.clone());
        rib.peer_up(session(&cfg, 0, "10.0.0.1"), None);
        rib.update(
            PeerId(0),
            &mp_update(attrs(&[65001]), ll_nh("fe80::1"), &["10.0.0.0/24"]),
            false,
        );
        let s1 = session(&cfg, 1, "10.0.0.2");
        rib.peer_up(s1.clone(), None);
        let got: Vec<IpNet> = announced(&sent(&mut rib, 1, &s1.codec))
            .iter()
            .map(|a| a.0)
            .collect();
        assert_eq!(got, want, "{export:?}");
    }
    // A named policy sets MED and a community, for a /24 in 10/8 only.
    let mut cfg = config(vec![neighbor("fe80::1", 65001), neighbor("fe80::2", 65002)]);
    cfg.policies.insert(
        "out".into(),
        Policy {
            terms: vec![PolicyTerm {
                matches: PolicyMatch {
                    prefixes: vec![PrefixMatch {
                        prefix: net("10.0.0.0/8"),
                        ge: Some(24),
                        le: Some(24),
                    }],
                    ..Default::default()
                },
                action: PolicyAction::Accept,
                set: PolicySet {
                    local_pref: None,
                    med: Some(42),
                    add_communities: vec![0x0001_0002],
                },
            }],
        },
    );
    cfg.neighbors[1].export = PolicyRef::Named("out".into());
    let mut rib = Rib::new(cfg.clone());
    rib.peer_up(session(&cfg, 0, "10.0.0.1"), None);
    rib.update(
        PeerId(0),
        &mp_update(
            attrs(&[65001]),
            ll_nh("fe80::1"),
            &["10.0.0.0/24", "10.1.0.0/16"],
        ),
        false,
    );
    let s1 = session(&cfg, 1, "10.0.0.2");
    rib.peer_up(s1.clone(), None);
    let ups = sent(&mut rib, 1, &s1.codec);
    assert_eq!(
        announced(&ups).iter().map(|a| a.0).collect::<Vec<_>>(),
        vec![net("10.0.0.0/24")]
    );
    assert_eq!(ups[0].attributes.med, Some(42));
    assert_eq!(ups[0].attributes.communities, vec![0x0001_0002]);
}

#[test]
fn prefixes_sharing_attributes_share_an_update() {
    let (mut rib, s) = two_peers(|_, _| {});
    rib.take_peer_output(PeerId(1));
    let many: Vec<String> = (0..50).map(|i| format!("10.{}.0.0/16", i + 1)).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    rib.update(
        PeerId(0),
        &mp_update(attrs(&[65001, 7]), ll_nh("fe80::1"), &refs),
        false,
    );
    rib.update(
        PeerId(0),
        &mp_update(attrs(&[65001, 8]), ll_nh("fe80::1"), &["172.16.0.0/12"]),
        false,
    );
    rib.flush_outbound();
    let ups = sent(&mut rib, 1, &s.codec);
    assert_eq!(ups.len(), 2);
    assert_eq!(announced(&ups).len(), 51);
}

#[test]
fn enhanced_route_refresh_frames_the_resend() {
    let mut cfg = config(vec![neighbor("fe80::2", 65002)]);
    cfg.originate_v4 = vec!["198.51.100.0/24".parse().unwrap()];
    let mut rib = Rib::new(cfg.clone());
    let mut s = session(&cfg, 0, "10.0.0.2");
    s.enhanced_route_refresh = true;
    rib.peer_up(s.clone(), None);
    rib.take_peer_output(PeerId(0));
    rib.route_refresh(PeerId(0), Family::Ipv4Unicast);
    let mut kinds = Vec::new();
    for o in rib.take_peer_output(PeerId(0)) {
        let PeerOutput::Messages(bytes) = o else {
            panic!("unexpected close");
        };
        let mut rest = bytes.as_slice();
        while let Ok(Some(n)) = wire::frame_length(rest, &s.codec) {
            let (msg, tail) = rest.split_at(n);
            kinds.push(
                match wire::decode_message(msg, &s.codec)
                    .expect("decodes")
                    .message
                {
                    Message::RouteRefresh(r) => format!("rr{}", r.subtype),
                    Message::Update(_) => "update".to_string(),
                    other => format!("{other:?}"),
                },
            );
            rest = tail;
        }
    }
    assert_eq!(kinds, vec!["rr1", "update", "rr2"]);
}

#[test]
fn initial_dump_goes_out_in_steps_then_end_of_rib() {
    let (mut rib, s) = two_peers(|_, _| {});
    let many: Vec<String> = (0..40_000)
        .map(|i| format!("11.{}.{}.0/24", i / 256, i % 256))
        .collect();
    for (k, chunk) in many.chunks(4).enumerate() {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let u = mp_update(attrs(&[65001, k as u32 % 50]), ll_nh("fe80::1"), &refs);
        rib.update(PeerId(0), &u, false);
    }
    rib.flush_outbound();
    rib.take_peer_output(PeerId(1));
    // The same peer again: a new session, a new dump.
    let cfg = rib.config().clone();
    let mut s2 = session(&cfg, 1, "10.0.0.2");
    s2.codec = s.codec;
    rib.peer_up(s2, None);
    let mut total = 0;
    let mut steps = 0;
    let mut eor = Vec::new();
    loop {
        let ups = sent(&mut rib, 1, &s.codec);
        assert!(eor.is_empty(), "nothing after End-of-RIB");
        total += announced(&ups).len();
        eor.extend(eors(&ups));
        steps += 1;
        if !eor.is_empty() {
            break;
        }
        assert!(steps < 100, "dump does not finish");
        rib.pump_dumps();
    }
    assert!(steps > 1, "a 40k-prefix dump takes more than one step");
    assert_eq!(total, 40_001);
    assert_eq!(eor, vec![Family::Ipv4Unicast, Family::Ipv6Unicast]);
    assert_eq!(rib.peer_counts(PeerId(1)).advertised, 40_001);
}

#[test]
fn no_export_no_advertise_and_peer_as_in_path_are_not_sent() {
    let (mut rib, s) = two_peers(|_, _| {});
    rib.take_peer_output(PeerId(1));
    let mut no_export = attrs(&[65001]);
    no_export.communities = vec![0xFFFF_FF01];
    rib.update(
        PeerId(0),
        &mp_update(no_export, ll_nh("fe80::1"), &["10.1.0.0/16"]),
        false,
    );
    let mut no_adv = attrs(&[65001]);
    no_adv.communities = vec![0xFFFF_FF02];
    rib.update(
        PeerId(0),
        &mp_update(no_adv, ll_nh("fe80::1"), &["10.2.0.0/16"]),
        false,
    );
    // Peer 1 is AS 65002: a path through it is not sent back.
    rib.update(
        PeerId(0),
        &mp_update(
            attrs(&[65001, 65002, 7]),
            ll_nh("fe80::1"),
            &["10.3.0.0/16"],
        ),
        false,
    );
    rib.update(
        PeerId(0),
        &mp_update(attrs(&[65001, 8]), ll_nh("fe80::1"), &["10.4.0.0/16"]),
        false,
    );
    rib.flush_outbound();
    let got: Vec<IpNet> = announced(&sent(&mut rib, 1, &s.codec))
        .iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(got, vec![net("10.4.0.0/16")]);
}

/// Restarting with our routes kept (RFC 4724 §4.1): no peer hears from us
/// until every peer sent End-of-RIB; then each gets the whole table and
/// our End-of-RIB.
#[test]
fn after_a_restart_nothing_is_advertised_until_every_end_of_rib() {
    let mut cfg = config(vec![neighbor("fe80::1", 65001), neighbor("fe80::2", 65002)]);
    for n in &mut cfg.neighbors {
        n.graceful_restart.keeps_forwarding = true;
        n.graceful_restart.restarting = true;
    }
    cfg.originate_v4 = vec!["198.51.100.0/24".parse().unwrap()];
    let mut rib = Rib::new(cfg.clone());
    let s0 = session(&cfg, 0, "10.0.0.1");
    let s1 = session(&cfg, 1, "10.0.0.2");
    rib.peer_up(s0.clone(), None);
    rib.peer_up(s1.clone(), None);
    rib.update(
        PeerId(0),
        &mp_update(attrs(&[65001]), ll_nh("fe80::1"), &["10.0.0.0/24"]),
        false,
    );
    let mut eor6 = Update::default();
    eor6.attributes.mp_unreach = Some(wire::MpUnreach {
        family: Family::Ipv6Unicast,
        withdrawn: vec![],
    });
    let both = |rib: &mut Rib| {
        let mut got = (Vec::new(), Vec::new());
        for _ in 0..100 {
            let more = rib.pump_dumps();
            rib.flush_outbound();
            got.0.extend(sent(rib, 0, &s0.codec));
            got.1.extend(sent(rib, 1, &s1.codec));
            if !more {
                break;
            }
        }
        got
    };
    let (to0, to1) = both(&mut rib);
    assert!(to0.is_empty() && to1.is_empty(), "{to0:?} {to1:?}");
    rib.update(PeerId(0), &Update::default(), false);
    rib.update(PeerId(0), &eor6, false);
    rib.update(PeerId(1), &Update::default(), false);
    assert!(!rib.take_initial_tables_in(false), "peer 1 owes IPv6");
    assert!(both(&mut rib).1.is_empty());
    rib.update(PeerId(1), &eor6, false);
    assert!(rib.take_initial_tables_in(false));
    let (to0, to1) = both(&mut rib);
    let mut got: Vec<IpNet> = announced(&to1).into_iter().map(|a| a.0).collect();
    got.sort();
    assert_eq!(got, [net("10.0.0.0/24"), net("198.51.100.0/24")]);
    assert_eq!(eors(&to1), [Family::Ipv4Unicast, Family::Ipv6Unicast]);
    assert_eq!(eors(&to0), [Family::Ipv4Unicast, Family::Ipv6Unicast]);
}

/// A peer's graceful restart for IPv4 with F, and `long_lived` (family,
/// long-lived stale time) where it negotiated long-lived graceful restart.
fn gr(long_lived: Vec<(Family, u32)>) -> crate::graceful::PeerRestart {
    crate::graceful::PeerRestart {
        restart_time: 120,
        restarting: false,
        notification: true,
        families: vec![(Family::Ipv4Unicast, true)],
        long_lived,
    }
}

/// Three peers up, their first output taken: peer 0 with `gr0`, peer 1
/// (on interface 8) with long-lived graceful restart, peer 2 with plain
/// graceful restart only.
fn three_peers(gr0: Option<crate::graceful::PeerRestart>) -> (Rib, [EstablishedSession; 3]) {
    let cfg = config(vec![
        neighbor("fe80::1", 65001),
        neighbor("fe80::2", 65002),
        neighbor("fe80::3", 65003),
    ]);
    let mut s0 = session(&cfg, 0, "10.0.0.1");
    s0.graceful_restart = gr0;
    let mut s1 = session(&cfg, 1, "10.0.0.2");
    s1.ifindex = Some(8);
    s1.graceful_restart = Some(gr(vec![(Family::Ipv4Unicast, 3600)]));
    let mut s2 = session(&cfg, 2, "10.0.0.3");
    s2.graceful_restart = Some(gr(vec![]));
    let mut rib = Rib::new(cfg);
    for s in [&s0, &s1, &s2] {
        rib.peer_up(s.clone(), None);
    }
    for p in 0..3 {
        rib.take_peer_output(PeerId(p));
    }
    (rib, [s0, s1, s2])
}

/// RFC 9494 §4.3: a long-lived stale route goes to a peer that negotiated
/// long-lived graceful restart carrying LLGR_STALE, and is withdrawn from
/// one that did not.
#[test]
fn long_lived_stale_routes_go_only_to_peers_that_know_them() {
    use crate::graceful::{DownKind, LLGR_STALE};
    use std::time::{Duration, Instant};
    let (mut rib, [_, s1, s2]) = three_peers(Some(gr(vec![(Family::Ipv4Unicast, 3600)])));
    rib.update(
        PeerId(0),
        &mp_update(attrs(&[65001]), ll_nh("fe80::1"), &["10.0.0.0/24"]),
        false,
    );
    rib.flush_outbound();
    assert_eq!(announced(&sent(&mut rib, 1, &s1.codec)).len(), 1);
    assert_eq!(announced(&sent(&mut rib, 2, &s2.codec)).len(), 1);
    let now = Instant::now();
    rib.session_down(
        PeerId(0),
        DownKind::Graceful {
            families: vec![Family::Ipv4Unicast],
            restart_time: Duration::from_secs(120),
            long_lived: vec![(Family::Ipv4Unicast, Duration::from_secs(3600))],
        },
        now,
    );
    rib.flush_outbound();
    assert!(
        sent(&mut rib, 1, &s1.codec).is_empty(),
        "plain stale: nothing new"
    );
    rib.expire_stale(now + Duration::from_secs(120));
    rib.flush_outbound();
    let to1 = sent(&mut rib, 1, &s1.codec);
    assert_eq!(announced(&to1).len(), 1, "{to1:?}");
    assert!(to1
        .iter()
        .any(|u| u.attributes.communities.contains(&LLGR_STALE)));
    let to2 = sent(&mut rib, 2, &s2.codec);
    let withdrawn: Vec<IpNet> = to2
        .iter()
        .flat_map(|u| {
            let classic = u.withdrawn.iter().map(|p| IpNet::V4(*p));
            let mp = u
                .attributes
                .mp_unreach
                .iter()
                .flat_map(|m| m.withdrawn.clone());
            classic.chain(mp).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(withdrawn, [net("10.0.0.0/24")], "{to2:?}");
    assert!(announced(&to2).is_empty());
}

/// RFC 9494 §4.3 for a path that arrives marked LLGR_STALE (a helper
/// passing on its own long-lived stale route): it loses to any path
/// without the mark, and goes on only to peers that negotiated long-lived
/// graceful restart.
#[test]
fn received_llgr_stale_paths_lose_and_reach_only_peers_that_know_them() {
    use crate::graceful::LLGR_STALE;
    let (mut rib, [_, s1, s2]) = three_peers(None);
    let mut marked = attrs(&[65001]);
    marked.communities = vec![LLGR_STALE];
    rib.update(
        PeerId(0),
        &mp_update(marked, ll_nh("fe80::1"), &["10.0.0.0/24", "10.0.5.0/24"]),
        false,
    );
    rib.update(
        PeerId(1),
        &mp_update(attrs(&[65002, 65009]), ll_nh("fe80::2"), &["10.0.0.0/24"]),
        false,
    );
    let best: Vec<String> = rib
        .routes_filtered(&crate::rib::RouteFilter::default())
        .iter()
        .filter(|r| r.best)
        .map(|r| {
            format!(
                "{} {}",
                r.prefix,
                r.peer_address.unwrap_or(Ipv6Addr::UNSPECIFIED.into())
            )
        })
        .collect();
    assert!(
        best.contains(&"10.0.0.0/24 fe80::2".to_string()),
        "the longer unmarked path wins: {best:?}"
    );
    let shown = rib.routes_filtered(&crate::rib::RouteFilter::default());
    assert!(
        shown
            .iter()
            .filter(|r| r.prefix == "10.0.5.0/24")
            .all(|r| r.long_lived_stale),
        "{shown:?}"
    );
    rib.flush_outbound();
    let to1 = sent(&mut rib, 1, &s1.codec);
    let to1_marked: Vec<IpNet> = announced(&to1).into_iter().map(|a| a.0).collect();
    assert_eq!(to1_marked, [net("10.0.5.0/24")], "{to1:?}");
    assert!(to1
        .iter()
        .all(|u| u.attributes.communities.contains(&LLGR_STALE)));
    let to2: Vec<IpNet> = announced(&sent(&mut rib, 2, &s2.codec))
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(to2, [net("10.0.0.0/24")], "only the unmarked best");
}
