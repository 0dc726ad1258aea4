//! Real messages from a BIRD 2.0.12 <-> BIRD 2.0.12 session.
//!
//! How they were captured: `tests/capture/capture-bird.sh` puts two BIRD
//! instances in two network namespaces joined by a veth pair that has only
//! the link-local addresses fe80::a and fe80::b (no global address, no
//! automatic link-local). Side A (AS 4200000001) and side B (AS 65002)
//! both run `extended next hop on;` in the `ipv4 { }` channel, so IPv4
//! routes travel in MP_REACH_NLRI with the 32-byte `[::, LL]` next hop.
//! tcpdump records the session on A's interface; A then withdraws two
//! IPv4 and one IPv6 prefix and shuts the session down (Cease).
//! `tests/capture/pcap-to-hex.py` turns the capture into
//! `tests/data/bird-enh.hex`, one `dir hex` line per BGP message.
//! `tests/data/bird-enh-global.hex` is the same session run with
//! `capture-bird.sh OUT global`: the link also has 2001:db8:ff::a/b and
//! the peers use them, so next hops are `[global, link-local]`.

use std::net::Ipv6Addr;

use wire::*;

/// What both sides negotiated: 4-octet AS and extended next hop for IPv4
/// unicast; BIRD 2.0.12 does not offer extended messages by default.
const SESSION: CodecContext = CodecContext {
    four_octet_as: true,
    extended_message: false,
    extended_next_hop_ipv4: true,
};

fn vectors() -> Vec<(String, Vec<u8>)> {
    parse(include_str!("data/bird-enh.hex"))
}

fn parse(text: &str) -> Vec<(String, Vec<u8>)> {
    text.lines()
        .map(|l| {
            let (dir, hex) = l.split_once(' ').expect("dir hex");
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect();
            (dir.to_string(), bytes)
        })
        .collect()
}

fn ctx_for(bytes: &[u8]) -> CodecContext {
    // OPEN is decoded before anything is negotiated.
    if bytes[18] == 1 {
        CodecContext::default()
    } else {
        SESSION
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn every_message_decodes_cleanly_and_reencodes_byte_exact() {
    let v = vectors();
    assert_eq!(v.len(), 16);
    let g = parse(include_str!("data/bird-enh-global.hex"));
    assert_eq!(g.len(), 16);
    for (dir, bytes) in v.iter().chain(&g) {
        let ctx = ctx_for(bytes);
        assert_eq!(frame_length(bytes, &ctx), Ok(Some(bytes.len())), "{dir}");
        let d = decode_message(bytes, &ctx).unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert_eq!(d.treat_as_withdraw, None, "{dir}");
        assert!(d.discarded.is_empty(), "{dir}");
        let mut out = Vec::new();
        encode_message(&d.message, &ctx, &mut out).unwrap();
        assert_eq!(&out, bytes, "{dir}: {:?}", d.message);
    }
}

#[test]
fn bird_open_capabilities() {
    let v = vectors();
    let (_, bytes) = v.iter().find(|(d, b)| d == "a>b" && b[18] == 1).unwrap();
    let Message::Open(o) = decode_message(bytes, &CodecContext::default())
        .unwrap()
        .message
    else {
        panic!("not an OPEN");
    };
    assert_eq!(o.my_as, AS_TRANS);
    assert_eq!(o.asn(), 4200000001);
    assert_eq!(o.hold_time, 240);
    assert_eq!(o.multiprotocol().collect::<Vec<_>>(), vec![(1, 1), (2, 1)]);
    let enh: Vec<_> = o.extended_next_hop().collect();
    assert_eq!(
        enh,
        vec![ExtendedNextHopEntry {
            afi: 1,
            safi: 1,
            next_hop_afi: 2
        }]
    );
    assert!(o.capabilities.contains(&Capability::RouteRefresh));
    assert!(o.capabilities.contains(&Capability::EnhancedRouteRefresh));
    assert!(o
        .capabilities
        .contains(&Capability::LongLivedGracefulRestart(vec![])));
    assert!(o
        .capabilities
        .iter()
        .any(|c| matches!(c, Capability::GracefulRestart(g) if g.restart_time == 120)));
}

#[test]
fn bird_ipv4_via_link_local_update() {
    let v = vectors();
    let ll: Ipv6Addr = "fe80::a".parse().unwrap();
    let updates: Vec<Update> = v
        .iter()
        .filter(|(d, b)| d == "a>b" && b[18] == 2)
        .map(
            |(_, b)| match decode_message(b, &SESSION).unwrap().message {
                Message::Update(u) => u,
                _ => unreachable!(),
            },
        )
        .collect();
    let first = updates[0].attributes.mp_reach.as_ref().unwrap();
    assert_eq!(first.family, Family::Ipv4Unicast);
    // BIRD's native link-local-only form.
    assert_eq!(first.next_hop, MpNextHop::V6Pair(Ipv6Addr::UNSPECIFIED, ll));
    assert_eq!(
        first.next_hop.normalize(),
        NextHop::V6(Ipv6NextHop {
            global: None,
            link_local: Some(ll)
        })
    );
    let mut v4: Vec<IpNet> = updates
        .iter()
        .filter_map(|u| u.attributes.mp_reach.as_ref())
        .filter(|m| m.family == Family::Ipv4Unicast)
        .flat_map(|m| m.nlri.clone())
        .collect();
    v4.sort();
    let mut expect: Vec<IpNet> = [
        "198.51.100.0/24",
        "203.0.113.0/25",
        "203.0.113.128/26",
        "10.20.0.0/16",
        "100.64.1.0/24",
        "192.0.2.64/27",
        "192.0.2.96/27",
    ]
    .iter()
    .map(|s| net(s))
    .collect();
    expect.sort();
    assert_eq!(v4, expect);
    let a = &updates[0].attributes;
    assert_eq!(a.origin, Some(Origin::Igp));
    assert_eq!(
        a.as_path.as_ref().unwrap().segments,
        vec![AsSegment::Sequence(vec![4200000001])]
    );
    assert_eq!(a.communities, vec![(65001 << 16) | 100]);
    assert_eq!(
        a.large_communities,
        vec![LargeCommunity {
            global_admin: 4200000001,
            local_data_1: 1,
            local_data_2: 2
        }]
    );
    // The route with bgp_med = 50 travels in its own UPDATE.
    assert!(updates.iter().any(|u| u.attributes.med == Some(50)));
    // IPv6 routes: same [::, LL] shape.
    let v6 = updates
        .iter()
        .filter_map(|u| u.attributes.mp_reach.as_ref())
        .find(|m| m.family == Family::Ipv6Unicast)
        .unwrap();
    assert_eq!(v6.next_hop, MpNextHop::V6Pair(Ipv6Addr::UNSPECIFIED, ll));
    // End-of-RIB for both families.
    let eors: Vec<_> = updates.iter().filter_map(is_end_of_rib).collect();
    assert_eq!(eors, vec![Family::Ipv4Unicast, Family::Ipv6Unicast]);
    // Withdrawals: BIRD puts IPv4 ones in MP_UNREACH_NLRI too.
    let mut withdrawn: Vec<IpNet> = updates
        .iter()
        .filter_map(|u| u.attributes.mp_unreach.as_ref())
        .flat_map(|m| m.withdrawn.clone())
        .collect();
    withdrawn.sort();
    assert_eq!(
        withdrawn,
        vec![
            net("192.0.2.64/27"),
            net("192.0.2.96/27"),
            net("2001:db8:300::/48")
        ]
    );
}

#[test]
fn bird_cease_and_bird_expects_our_packing() {
    let v = vectors();
    let (_, bytes) = v.iter().find(|(_, b)| b[18] == 3).unwrap();
    let Message::Notification(n) = decode_message(bytes, &SESSION).unwrap().message else {
        panic!("not a NOTIFICATION");
    };
    assert_eq!((n.code, n.subcode), (6, 2));

    // Packing the same announcement gives BIRD's bytes exactly.
    let (_, bird) = v
        .iter()
        .find(|(d, b)| d == "b>a" && b[18] == 2 && b.len() > 23 && b[23] == 0x90 && b[28] == 1)
        .unwrap();
    let Message::Update(u) = decode_message(bird, &SESSION).unwrap().message else {
        panic!("not an UPDATE");
    };
    let mut attrs = u.attributes.clone();
    let mp = attrs.mp_reach.take().unwrap();
    let mut out = Vec::new();
    let n = pack_announcements(
        &attrs,
        mp.next_hop.normalize(),
        LinkLocalForm::Native,
        &mp.nlri,
        &SESSION,
        &mut out,
    )
    .unwrap();
    assert_eq!(n, 1);
    assert_eq!(&out, bird);
    let mut eor = Vec::new();
    end_of_rib(Family::Ipv6Unicast, &mut eor);
    assert!(v.iter().any(|(_, b)| *b == eor));
}

#[test]
fn bird_global_session_sends_global_and_link_local() {
    let v = parse(include_str!("data/bird-enh-global.hex"));
    let g: Ipv6Addr = "2001:db8:ff::a".parse().unwrap();
    let ll: Ipv6Addr = "fe80::a".parse().unwrap();
    let reach: Vec<MpReach> = v
        .iter()
        .filter(|(d, b)| d == "a>b" && b[18] == 2)
        .filter_map(
            |(_, b)| match decode_message(b, &SESSION).unwrap().message {
                Message::Update(u) => u.attributes.mp_reach,
                _ => None,
            },
        )
        .collect();
    assert!(reach.iter().any(|m| m.family == Family::Ipv4Unicast));
    for m in &reach {
        assert_eq!(m.next_hop, MpNextHop::V6Pair(g, ll));
        assert_eq!(
            m.next_hop.normalize(),
            NextHop::V6(Ipv6NextHop {
                global: Some(g),
                link_local: Some(ll)
            })
        );
        assert_eq!(
            MpNextHop::from_ipv6(
                Ipv6NextHop {
                    global: Some(g),
                    link_local: Some(ll)
                },
                LinkLocalForm::Native
            ),
            m.next_hop
        );
    }
}
