//! UPDATE byte vectors in both directions and one test per RFC 7606 rule.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;
use crate::error::{notify, DecodeError, EncodeError};
use crate::CodecContext;
use crate::{
    decode_message, encode_message, end_of_rib, frame_length, pack_announcements, pack_withdrawals,
    AttributeErrorKind,
};

const EXT: CodecContext = CodecContext {
    four_octet_as: true,
    extended_message: false,
    extended_next_hop_ipv4: true,
};
const OLD: CodecContext = CodecContext {
    four_octet_as: false,
    extended_message: false,
    extended_next_hop_ipv4: false,
};

/// Wraps an UPDATE body in a header.
fn msg(body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
    m.push(2);
    m.extend_from_slice(body);
    m
}

/// An UPDATE with no withdrawn routes, the given attributes and NLRI.
fn upd(attrs: &[&[u8]], nlri: &[u8]) -> Vec<u8> {
    let a: Vec<u8> = attrs.concat();
    let mut body = vec![0, 0];
    body.extend_from_slice(&(a.len() as u16).to_be_bytes());
    body.extend_from_slice(&a);
    body.extend_from_slice(nlri);
    msg(&body)
}

fn v4(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}
fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}
fn ll1() -> Ipv6Addr {
    "fe80::1".parse().unwrap()
}

const ORIGIN_IGP: &[u8] = &[0x40, 1, 1, 0];
const AS_PATH_65001_4: &[u8] = &[0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9];
const AS_PATH_65001_2: &[u8] = &[0x40, 2, 4, 2, 1, 0xfd, 0xe9];
const NEXT_HOP_1: &[u8] = &[0x40, 3, 4, 192, 0, 2, 1];
const NLRI_10_1_2: &[u8] = &[24, 10, 1, 2];

/// MP_REACH IPv4 unicast, next hop [::, fe80::1], 10.1.2.0/24 and 172.16.0.0/16.
const MP_REACH_V4_NATIVE: &[u8] = &[
    0x90, 14, 0, 44, 0, 1, 1, 32, //
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //
    0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, //
    0, 24, 10, 1, 2, 16, 172, 16,
];

fn base_attrs() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath {
            segments: vec![AsSegment::Sequence(vec![65001])],
        }),
        ..Default::default()
    }
}

fn decode(bytes: &[u8], ctx: &CodecContext) -> Decoded {
    decode_message(bytes, ctx).unwrap()
}

fn update_of(d: &Decoded) -> &Update {
    match &d.message {
        Message::Update(u) => u,
        m => panic!("not an UPDATE: {m:?}"),
    }
}

fn encode(u: &Update, ctx: &CodecContext) -> Vec<u8> {
    let mut out = Vec::new();
    encode_message(&Message::Update(u.clone()), ctx, &mut out).unwrap();
    out
}

#[test]
fn mp_reach_ipv4_with_link_local_next_hop_both_ways() {
    let bytes = upd(&[MP_REACH_V4_NATIVE, ORIGIN_IGP, AS_PATH_65001_4], &[]);
    let value = Update {
        attributes: PathAttributes {
            mp_reach: Some(MpReach {
                family: Family::Ipv4Unicast,
                next_hop: MpNextHop::V6Pair(Ipv6Addr::UNSPECIFIED, ll1()),
                nlri: vec![net("10.1.2.0/24"), net("172.16.0.0/16")],
            }),
            ..base_attrs()
        },
        ..Default::default()
    };
    let d = decode(&bytes, &EXT);
    assert_eq!(update_of(&d), &value);
    assert_eq!(d.treat_as_withdraw, None);
    assert!(d.discarded.is_empty());
    assert_eq!(encode(&value, &EXT), bytes);
    let nh = value
        .attributes
        .mp_reach
        .as_ref()
        .unwrap()
        .next_hop
        .normalize();
    assert_eq!(
        nh,
        NextHop::V6(Ipv6NextHop {
            global: None,
            link_local: Some(ll1())
        })
    );
}

#[test]
fn all_three_link_local_only_shapes_decode() {
    let ll = ll1().octets();
    let shapes: [(u8, Vec<u8>); 3] = [
        (32, [[0u8; 16], ll].concat()),
        (16, ll.to_vec()),
        (32, [ll, ll].concat()),
    ];
    for (len, nh) in shapes {
        let mut mp = vec![0x90, 14, 0, 0, 0, 1, 1, len];
        mp.extend_from_slice(&nh);
        mp.extend_from_slice(&[0, 24, 10, 1, 2]);
        let vlen = (mp.len() - 4) as u16;
        mp[2..4].copy_from_slice(&vlen.to_be_bytes());
        let d = decode(&upd(&[&mp, ORIGIN_IGP, AS_PATH_65001_4], &[]), &EXT);
        let m = update_of(&d).attributes.mp_reach.clone().unwrap();
        assert_eq!(
            m.next_hop.normalize(),
            NextHop::V6(Ipv6NextHop {
                global: None,
                link_local: Some(ll1())
            })
        );
        assert_eq!(m.nlri, vec![net("10.1.2.0/24")]);
    }
}

#[test]
fn mp_reach_ipv4_with_4_byte_next_hop() {
    let mp = [0x90, 14, 0, 13, 0, 1, 1, 4, 192, 0, 2, 9, 0, 24, 10, 1, 2];
    let bytes = upd(&[&mp, ORIGIN_IGP, AS_PATH_65001_2], &[]);
    // Valid with or without extended next hop.
    let d = decode(&bytes, &OLD);
    let m = update_of(&d).attributes.mp_reach.clone().unwrap();
    assert_eq!(m.next_hop, MpNextHop::V4("192.0.2.9".parse().unwrap()));
    assert_eq!(encode(update_of(&d), &OLD), bytes);
}

#[test]
fn mp_reach_ipv6_global_and_link_local_both_ways() {
    let g: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let mut mp = vec![0x90, 14, 0, 45, 0, 2, 1, 32];
    mp.extend_from_slice(&g.octets());
    mp.extend_from_slice(&ll1().octets());
    mp.extend_from_slice(&[0, 48, 0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00, 0]);
    let bytes = upd(&[&mp, ORIGIN_IGP, AS_PATH_65001_2], &[]);
    let d = decode(&bytes, &OLD);
    let value = Update {
        attributes: PathAttributes {
            mp_reach: Some(MpReach {
                family: Family::Ipv6Unicast,
                next_hop: MpNextHop::V6Pair(g, ll1()),
                nlri: vec![net("2001:db8:100::/48"), net("::/0")],
            }),
            ..base_attrs()
        },
        ..Default::default()
    };
    assert_eq!(update_of(&d), &value);
    assert_eq!(encode(&value, &OLD), bytes);
}

#[test]
fn classic_update_with_all_known_attributes_both_ways() {
    let attrs: Vec<&[u8]> = vec![
        ORIGIN_IGP,
        AS_PATH_65001_2,
        NEXT_HOP_1,
        &[0x80, 4, 4, 0, 0, 0, 10],                              // MED 10
        &[0x40, 5, 4, 0, 0, 0, 100],                             // LOCAL_PREF 100
        &[0x40, 6, 0],                                           // ATOMIC_AGGREGATE
        &[0xc0, 7, 6, 0xfd, 0xe9, 10, 0, 0, 1],                  // AGGREGATOR 65001 10.0.0.1
        &[0xc0, 8, 8, 0xfd, 0xe9, 0, 1, 0xff, 0xff, 0xff, 0x01], // COMMUNITIES
        &[0x80, 9, 4, 10, 0, 0, 2],                              // ORIGINATOR_ID
        &[0x80, 10, 8, 10, 0, 0, 3, 10, 0, 0, 4],                // CLUSTER_LIST
        &[0xc0, 16, 8, 0, 2, 0xfd, 0xe9, 0, 0, 0, 7],            // EXTENDED COMMUNITIES
        &[0xc0, 17, 6, 2, 1, 0, 3, 0x0d, 0x40],                  // AS4_PATH 200000
        &[0xc0, 18, 8, 0, 3, 0x0d, 0x40, 10, 0, 0, 1],           // AS4_AGGREGATOR
        &[0xc0, 32, 12, 0, 0, 0xfd, 0xe9, 0, 0, 0, 1, 0, 0, 0, 2], // LARGE
        &[0xe0, 99, 2, 0xab, 0xcd], // unknown, optional transitive, Partial
    ];
    let mut body = vec![0, 5, 16, 192, 168, 8, 10];
    let a = attrs.concat();
    body.extend_from_slice(&(a.len() as u16).to_be_bytes());
    body.extend_from_slice(&a);
    body.extend_from_slice(NLRI_10_1_2);
    let bytes = msg(&body);
    let value = Update {
        withdrawn: vec![v4("192.168.0.0/16"), v4("10.0.0.0/8")],
        attributes: PathAttributes {
            next_hop: Some("192.0.2.1".parse().unwrap()),
            med: Some(10),
            local_pref: Some(100),
            atomic_aggregate: true,
            aggregator: Some(Aggregator {
                asn: 65001,
                address: "10.0.0.1".parse().unwrap(),
            }),
            communities: vec![0xfde9_0001, 0xffff_ff01],
            originator_id: Some("10.0.0.2".parse().unwrap()),
            cluster_list: vec!["10.0.0.3".parse().unwrap(), "10.0.0.4".parse().unwrap()],
            extended_communities: vec![[0, 2, 0xfd, 0xe9, 0, 0, 0, 7]],
            as4_path: Some(AsPath {
                segments: vec![AsSegment::Sequence(vec![200000])],
            }),
            as4_aggregator: Some(Aggregator {
                asn: 200000,
                address: "10.0.0.1".parse().unwrap(),
            }),
            large_communities: vec![LargeCommunity {
                global_admin: 65001,
                local_data_1: 1,
                local_data_2: 2,
            }],
            unknown: vec![RawAttribute {
                flags: 0xe0,
                type_code: 99,
                value: vec![0xab, 0xcd],
            }],
            ..base_attrs()
        },
        nlri: vec![v4("10.1.2.0/24")],
    };
    let d = decode(&bytes, &OLD);
    assert_eq!(update_of(&d), &value);
    assert_eq!(d.treat_as_withdraw, None);
    assert_eq!(encode(&value, &OLD), bytes);
}

#[test]
fn unknown_optional_transitive_gets_partial_bit() {
    let bytes = upd(
        &[
            ORIGIN_IGP,
            AS_PATH_65001_4,
            NEXT_HOP_1,
            &[0xc0, 99, 1, 7],
            &[0x80, 100, 1, 8],
        ],
        NLRI_10_1_2,
    );
    let d = decode(&bytes, &EXT);
    let out = encode(update_of(&d), &EXT);
    let expect = upd(
        &[
            ORIGIN_IGP,
            AS_PATH_65001_4,
            NEXT_HOP_1,
            &[0xe0, 99, 1, 7],
            &[0x80, 100, 1, 8],
        ],
        NLRI_10_1_2,
    );
    assert_eq!(out, expect);
}

#[test]
fn as4_generated_for_two_octet_peers() {
    let mut a = base_attrs();
    a.as_path = Some(AsPath {
        segments: vec![AsSegment::Sequence(vec![200000, 65001])],
    });
    a.next_hop = Some("192.0.2.1".parse().unwrap());
    let u = Update {
        attributes: a,
        nlri: vec![v4("10.1.2.0/24")],
        ..Default::default()
    };
    let out = encode(&u, &OLD);
    let d = decode(&out, &OLD);
    let back = &update_of(&d).attributes;
    let t = AS_TRANS as u32;
    assert_eq!(
        back.as_path.as_ref().unwrap().segments,
        vec![AsSegment::Sequence(vec![t, 65001])]
    );
    let merged = crate::merge_as4_path(
        back.as_path.as_ref().unwrap(),
        back.as4_path.as_ref().unwrap(),
    );
    assert_eq!(
        merged.segments,
        vec![AsSegment::Sequence(vec![200000, 65001])]
    );
    // Between 4-octet speakers AS4_PATH is never sent.
    let mut with_as4 = u.clone();
    with_as4.attributes.as4_path = Some(AsPath::default());
    assert_eq!(encode(&with_as4, &EXT), encode(&u, &EXT));
}

#[test]
fn end_of_rib_both_families() {
    let mut out = Vec::new();
    end_of_rib(Family::Ipv4Unicast, &mut out);
    assert_eq!(out, msg(&[0, 0, 0, 0]));
    let d = decode(&out, &OLD);
    assert_eq!(is_end_of_rib(update_of(&d)), Some(Family::Ipv4Unicast));
    out.clear();
    end_of_rib(Family::Ipv6Unicast, &mut out);
    assert_eq!(out, msg(&[0, 0, 0, 6, 0x80, 15, 3, 0, 2, 1]));
    let d = decode(&out, &OLD);
    assert_eq!(is_end_of_rib(update_of(&d)), Some(Family::Ipv6Unicast));
    // Not EoR: a withdrawal, an MP_UNREACH for an unknown family.
    let d = decode(&msg(&[0, 4, 24, 10, 1, 2, 0, 0]), &OLD);
    assert_eq!(is_end_of_rib(update_of(&d)), None);
    let d = decode(&msg(&[0, 0, 0, 6, 0x80, 15, 3, 0, 1, 128]), &OLD);
    assert_eq!(is_end_of_rib(update_of(&d)), None);
}

// ------------------------------------------------------------ packing

fn decode_all(mut buf: &[u8], ctx: &CodecContext) -> Vec<Update> {
    let mut out = Vec::new();
    while let Some(n) = frame_length(buf, ctx).unwrap() {
        let (one, rest) = buf.split_at(n);
        assert!(n <= ctx.max_message_len());
        out.push(update_of(&decode(one, ctx)).clone());
        buf = rest;
    }
    assert!(buf.is_empty());
    out
}

fn many_v4(n: u32) -> Vec<IpNet> {
    (0..n)
        .map(|i| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap()))
        .collect()
}

#[test]
fn pack_ipv4_via_ipv6_fills_messages() {
    let prefixes = many_v4(3000);
    let nh = NextHop::V6(Ipv6NextHop {
        global: None,
        link_local: Some(ll1()),
    });
    for (ctx, expect_msgs) in [
        (EXT, 3),
        (
            CodecContext {
                extended_message: true,
                ..EXT
            },
            1,
        ),
    ] {
        let mut out = Vec::new();
        let n = pack_announcements(
            &base_attrs(),
            nh,
            LinkLocalForm::Native,
            &prefixes,
            &ctx,
            &mut out,
        )
        .unwrap();
        assert_eq!(n, expect_msgs);
        let ups = decode_all(&out, &ctx);
        assert_eq!(ups.len(), n);
        let mut got = Vec::new();
        for u in &ups {
            let m = u.attributes.mp_reach.as_ref().unwrap();
            assert_eq!(m.next_hop, MpNextHop::V6Pair(Ipv6Addr::UNSPECIFIED, ll1()));
            assert_eq!(u.attributes.origin, Some(Origin::Igp));
            got.extend_from_slice(&m.nlri);
        }
        assert_eq!(got, prefixes);
    }
    // 4096 / 4 bytes per prefix: the first message must be nearly full.
    let mut out = Vec::new();
    pack_announcements(
        &base_attrs(),
        nh,
        LinkLocalForm::Native,
        &prefixes,
        &EXT,
        &mut out,
    )
    .unwrap();
    let first = frame_length(&out, &EXT).unwrap().unwrap();
    assert!(first > 4096 - 4, "first message only {first} bytes");
}

#[test]
fn pack_refuses_ipv6_next_hop_without_capability() {
    let nh = NextHop::V6(Ipv6NextHop {
        global: None,
        link_local: Some(ll1()),
    });
    let mut out = vec![1, 2, 3];
    let r = pack_announcements(
        &base_attrs(),
        nh,
        LinkLocalForm::Native,
        &many_v4(2),
        &OLD,
        &mut out,
    );
    assert_eq!(r, Err(EncodeError::NoExtendedNextHop));
    assert_eq!(out, [1, 2, 3]);
    let mut a = base_attrs();
    a.next_hop = Some("192.0.2.1".parse().unwrap());
    let r = pack_announcements(&a, nh, LinkLocalForm::Native, &many_v4(2), &EXT, &mut out);
    assert_eq!(r, Err(EncodeError::ReservedAttribute));
}

#[test]
fn pack_classic_ipv4_and_ipv6() {
    let nh = NextHop::V4("192.0.2.1".parse().unwrap());
    let prefixes = many_v4(2000);
    let mut out = Vec::new();
    let n = pack_announcements(
        &base_attrs(),
        nh,
        LinkLocalForm::Native,
        &prefixes,
        &OLD,
        &mut out,
    )
    .unwrap();
    assert_eq!(n, 2);
    let ups = decode_all(&out, &OLD);
    assert!(ups
        .iter()
        .all(|u| u.attributes.next_hop == Some("192.0.2.1".parse().unwrap())));
    let got: Vec<IpNet> = ups
        .iter()
        .flat_map(|u| u.nlri.iter().map(|n| IpNet::V4(*n)))
        .collect();
    assert_eq!(got, prefixes);

    let v6: Vec<IpNet> = vec![net("2001:db8:1::/48"), net("2001:db8:2::/48")];
    let g: Ipv6Addr = "2001:db8::2".parse().unwrap();
    let nh6 = NextHop::V6(Ipv6NextHop {
        global: Some(g),
        link_local: Some(ll1()),
    });
    out.clear();
    assert_eq!(
        pack_announcements(
            &base_attrs(),
            nh6,
            LinkLocalForm::Native,
            &v6,
            &OLD,
            &mut out
        ),
        Ok(1)
    );
    let m = decode_all(&out, &OLD)[0]
        .attributes
        .mp_reach
        .clone()
        .unwrap();
    assert_eq!(
        (m.family, m.next_hop, m.nlri),
        (Family::Ipv6Unicast, MpNextHop::V6Pair(g, ll1()), v6.clone())
    );
    out.clear();
    assert_eq!(
        pack_announcements(
            &base_attrs(),
            nh,
            LinkLocalForm::Native,
            &v6,
            &OLD,
            &mut out
        ),
        Err(EncodeError::FamilyMismatch)
    );
}

#[test]
fn pack_withdrawals_both_families() {
    let mut prefixes = many_v4(1500);
    prefixes.push(net("2001:db8:1::/48"));
    let mut out = Vec::new();
    let n = pack_withdrawals(&prefixes, &OLD, &mut out).unwrap();
    assert_eq!(n, 3);
    let ups = decode_all(&out, &OLD);
    let got_v4: Vec<IpNet> = ups
        .iter()
        .flat_map(|u| u.withdrawn.iter().map(|n| IpNet::V4(*n)))
        .collect();
    assert_eq!(got_v4[..], prefixes[..1500]);
    let un = ups[2].attributes.mp_unreach.clone().unwrap();
    assert_eq!(un.withdrawn, vec![net("2001:db8:1::/48")]);
    assert_eq!(pack_withdrawals(&[], &OLD, &mut out), Ok(0));
}

#[test]
fn pack_attributes_too_large() {
    let mut a = base_attrs();
    a.communities = vec![1; 1100];
    let nh = NextHop::V4("192.0.2.1".parse().unwrap());
    let r = pack_announcements(
        &a,
        nh,
        LinkLocalForm::Native,
        &many_v4(1),
        &OLD,
        &mut Vec::new(),
    );
    assert!(matches!(r, Err(EncodeError::AttributesTooLarge { .. })));
}

// ------------------------------------------------------------ framing

#[test]
fn frame_length_cases() {
    let ctx = CodecContext::default();
    let ka = msg_typed(4, &[]);
    assert_eq!(frame_length(&ka[..10], &ctx), Ok(None));
    assert_eq!(frame_length(&ka, &ctx), Ok(Some(19)));
    let u = upd(&[], &[]);
    assert_eq!(frame_length(&u[..20], &ctx), Ok(None));
    let mut bad = ka.clone();
    bad[3] = 0;
    assert_eq!(frame_length(&bad, &ctx), Err(DecodeError::BadMarker));
    assert_eq!(
        DecodeError::BadMarker.notification(),
        Notification {
            code: 1,
            subcode: 1,
            data: vec![]
        }
    );
    let mut bad = ka.clone();
    bad[18] = 9;
    assert_eq!(
        frame_length(&bad, &ctx).unwrap_err().notification().data,
        vec![9]
    );
    // KEEPALIVE must be exactly 19 bytes.
    let mut bad = ka.clone();
    bad[17] = 20;
    assert_eq!(
        frame_length(&bad, &ctx),
        Err(DecodeError::BadLength { length: 20 })
    );
    // 5000-byte UPDATE: only with extended messages (RFC 8654).
    let mut big = ka.clone();
    big[16..19].copy_from_slice(&[0x13, 0x88, 2]);
    assert_eq!(
        frame_length(&big, &ctx),
        Err(DecodeError::BadLength { length: 5000 })
    );
    let ext = CodecContext {
        extended_message: true,
        ..ctx
    };
    assert_eq!(frame_length(&big, &ext), Ok(None));
    // ...but never for OPEN.
    big[18] = 1;
    assert_eq!(
        frame_length(&big, &ext),
        Err(DecodeError::BadLength { length: 5000 })
    );
    let n = DecodeError::BadLength { length: 5000 }.notification();
    assert_eq!((n.code, n.subcode, n.data), (1, 2, vec![0x13, 0x88]));
}

fn msg_typed(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = msg(body);
    m[18] = ty;
    m
}

#[test]
fn keepalive_notification_route_refresh_both_ways() {
    let ctx = CodecContext::default();
    let cases = [
        (msg_typed(4, &[]), Message::Keepalive),
        (
            msg_typed(3, &[6, 2, b'b', b'y', b'e']),
            Message::Notification(Notification {
                code: 6,
                subcode: 2,
                data: b"bye".to_vec(),
            }),
        ),
        (
            msg_typed(5, &[0, 1, 0, 1]),
            Message::RouteRefresh(RouteRefresh {
                afi: 1,
                subtype: 0,
                safi: 1,
            }),
        ),
        (
            msg_typed(5, &[0, 2, 1, 1]),
            Message::RouteRefresh(RouteRefresh {
                afi: 2,
                subtype: 1,
                safi: 1,
            }),
        ),
    ];
    for (bytes, value) in cases {
        assert_eq!(decode(&bytes, &ctx).message, value);
        let mut out = Vec::new();
        encode_message(&value, &ctx, &mut out).unwrap();
        assert_eq!(out, bytes);
    }
    // RFC 7313 §5: BoRR with extra bytes.
    let bad = msg_typed(5, &[0, 2, 1, 1, 0]);
    let n = decode_message(&bad, &ctx).unwrap_err().notification();
    assert_eq!((n.code, n.subcode, n.data), (7, 1, bad.clone()));
    // A frame shorter than its header says.
    let u = upd(&[], &[]);
    assert!(matches!(
        decode_message(&u[..21], &ctx),
        Err(DecodeError::FrameMismatch { .. })
    ));
}

// ------------------------------------------------------------ RFC 7606

fn taw(bytes: &[u8], ctx: &CodecContext) -> AttributeError {
    let d = decode(bytes, ctx);
    d.treat_as_withdraw.expect("treat-as-withdraw expected")
}

fn reset(bytes: &[u8], ctx: &CodecContext) -> DecodeError {
    decode_message(bytes, ctx).unwrap_err()
}

/// Classic-NLRI UPDATE with the mandatory attributes plus `extra`.
fn with_extra(extra: &[u8]) -> Vec<u8> {
    upd(
        &[ORIGIN_IGP, AS_PATH_65001_4, NEXT_HOP_1, extra],
        NLRI_10_1_2,
    )
}

#[test]
fn rfc7606_3b_length_fields_too_large_reset() {
    let e = reset(&msg(&[0, 9, 24, 10, 1, 2, 0, 0]), &EXT);
    assert_eq!((e.notification().code, e.notification().subcode), (3, 1));
    let e = reset(&msg(&[0, 0, 0, 9, 0x40, 1, 1, 0]), &EXT);
    assert_eq!(e.notification().subcode, 1);
}

#[test]
fn rfc7606_3c_flags_conflict_is_treat_as_withdraw() {
    // ORIGIN sent as optional.
    let b = upd(
        &[&[0xc0, 1, 1, 0], AS_PATH_65001_4, NEXT_HOP_1],
        NLRI_10_1_2,
    );
    let e = taw(&b, &EXT);
    assert_eq!(
        (e.type_code, e.kind, e.rule),
        (1, AttributeErrorKind::Flags, "RFC 7606 §3 (c)")
    );
}

#[test]
fn rfc7606_3d_missing_mandatory_is_treat_as_withdraw() {
    let b = upd(&[ORIGIN_IGP, NEXT_HOP_1], NLRI_10_1_2);
    let e = taw(&b, &EXT);
    assert_eq!(
        (e.type_code, e.kind),
        (attr::AS_PATH, AttributeErrorKind::Missing)
    );
    // NEXT_HOP is not needed when the NLRI travel in MP_REACH.
    let d = decode(
        &upd(&[MP_REACH_V4_NATIVE, ORIGIN_IGP, AS_PATH_65001_4], &[]),
        &EXT,
    );
    assert_eq!(d.treat_as_withdraw, None);
    // ...but is with classic NLRI.
    let e = taw(&upd(&[ORIGIN_IGP, AS_PATH_65001_4], NLRI_10_1_2), &EXT);
    assert_eq!(e.type_code, attr::NEXT_HOP);
}

#[test]
fn rfc7606_3g_duplicates() {
    let d = decode(
        &with_extra(&[0x80, 4, 4, 0, 0, 0, 1, 0x80, 4, 4, 0, 0, 0, 2]),
        &EXT,
    );
    assert_eq!(update_of(&d).attributes.med, Some(1));
    assert_eq!(d.discarded[0].kind, AttributeErrorKind::Duplicate);
    assert_eq!(d.treat_as_withdraw, None);
    let e = reset(
        &upd(
            &[
                MP_REACH_V4_NATIVE,
                MP_REACH_V4_NATIVE,
                ORIGIN_IGP,
                AS_PATH_65001_4,
            ],
            &[],
        ),
        &EXT,
    );
    assert_eq!(e.notification().subcode, notify::MALFORMED_ATTRIBUTE_LIST);
}

#[test]
fn rfc7606_4_attribute_overrun_is_treat_as_withdraw() {
    // Last attribute claims 9 bytes, 1 is there.
    let e = taw(&with_extra(&[0xc0, 8, 9, 0]), &EXT);
    assert_eq!(e.kind, AttributeErrorKind::Framing);
    // Two trailing bytes: shorter than any header.
    let e = taw(&with_extra(&[0xc0, 8]), &EXT);
    assert_eq!(e.rule, "RFC 7606 §4");
    // The NLRI are still found through the Total Path Attribute Length.
    let d = decode(&with_extra(&[0xc0, 8]), &EXT);
    assert_eq!(update_of(&d).nlri, vec![v4("10.1.2.0/24")]);
}

#[test]
fn rfc7606_5_2_error_without_reachable_nlri_resets() {
    let e = reset(&upd(&[&[0x40, 1, 1, 7], AS_PATH_65001_4], &[]), &EXT);
    assert_eq!(e.notification().subcode, notify::MALFORMED_ATTRIBUTE_LIST);
    // Attribute discard alone does not.
    assert!(decode_message(&upd(&[ORIGIN_IGP, &[0x40, 6, 1, 0]], &[]), &EXT).is_ok());
}

#[test]
fn rfc7606_5_3_bad_nlri_resets() {
    let e = reset(
        &upd(
            &[ORIGIN_IGP, AS_PATH_65001_4, NEXT_HOP_1],
            &[33, 1, 2, 3, 4, 5],
        ),
        &EXT,
    );
    assert_eq!(e.notification().subcode, notify::INVALID_NETWORK_FIELD);
    let e = reset(
        &upd(&[ORIGIN_IGP, AS_PATH_65001_4, NEXT_HOP_1], &[24, 10, 1]),
        &EXT,
    );
    assert_eq!(e.notification().subcode, notify::INVALID_NETWORK_FIELD);
    // Withdrawn routes are checked the same way (RFC 7606 §3 (i)).
    let e = reset(&msg(&[0, 2, 40, 1, 0, 0]), &EXT);
    assert_eq!(e.notification().subcode, notify::INVALID_NETWORK_FIELD);
}

#[test]
fn rfc7606_7_1_origin() {
    assert_eq!(
        taw(
            &upd(
                &[&[0x40, 1, 1, 3], AS_PATH_65001_4, NEXT_HOP_1],
                NLRI_10_1_2
            ),
            &EXT
        )
        .rule,
        "RFC 7606 §7.1"
    );
    assert_eq!(
        taw(
            &upd(
                &[&[0x40, 1, 2, 0, 0], AS_PATH_65001_4, NEXT_HOP_1],
                NLRI_10_1_2
            ),
            &EXT
        )
        .kind,
        AttributeErrorKind::Length
    );
}

#[test]
fn rfc7606_7_2_as_path() {
    for bad in [
        &[0x40u8, 2, 2, 2, 0][..],
        &[0x40, 2, 4, 9, 1, 0, 1],
        &[0x40, 2, 3, 2, 1, 0],
    ] {
        let b = upd(&[ORIGIN_IGP, bad, NEXT_HOP_1], NLRI_10_1_2);
        assert_eq!(taw(&b, &OLD).rule, "RFC 7606 §7.2");
    }
    // A 4-octet path read by a 2-octet session does not parse either.
    let b = upd(
        &[
            ORIGIN_IGP,
            &[0x40, 2, 7, 2, 1, 0, 0, 0xfd, 0xe9, 0],
            NEXT_HOP_1,
        ],
        NLRI_10_1_2,
    );
    assert_eq!(taw(&b, &EXT).type_code, attr::AS_PATH);
}

#[test]
fn rfc7606_7_3_next_hop() {
    let b = upd(
        &[ORIGIN_IGP, AS_PATH_65001_4, &[0x40, 3, 5, 1, 2, 3, 4, 5]],
        NLRI_10_1_2,
    );
    assert_eq!(taw(&b, &EXT).rule, "RFC 7606 §7.3");
}

#[test]
fn rfc7606_7_4_med() {
    assert_eq!(
        taw(&with_extra(&[0x80, 4, 3, 0, 0, 1]), &EXT).rule,
        "RFC 7606 §7.4"
    );
}

#[test]
fn rfc7606_7_5_local_pref() {
    assert_eq!(
        taw(&with_extra(&[0x40, 5, 2, 0, 1]), &EXT).rule,
        "RFC 7606 §7.5"
    );
}

#[test]
fn rfc7606_7_6_atomic_aggregate_discard() {
    let d = decode(&with_extra(&[0x40, 6, 1, 0]), &EXT);
    assert_eq!(d.treat_as_withdraw, None);
    assert_eq!(d.discarded[0].action, ErrorAction::AttributeDiscard);
    assert_eq!(d.discarded[0].rule, "RFC 7606 §7.6");
    assert!(!update_of(&d).attributes.atomic_aggregate);
}

#[test]
fn rfc7606_7_7_aggregator_discard() {
    // 6 bytes on a 4-octet session.
    let d = decode(&with_extra(&[0xc0, 7, 6, 0xfd, 0xe9, 10, 0, 0, 1]), &EXT);
    assert_eq!(d.discarded[0].rule, "RFC 7606 §7.7");
    assert_eq!(update_of(&d).attributes.aggregator, None);
    assert_eq!(d.treat_as_withdraw, None);
}

#[test]
fn rfc7606_7_8_communities() {
    assert_eq!(
        taw(&with_extra(&[0xc0, 8, 3, 0, 0, 1]), &EXT).rule,
        "RFC 7606 §7.8"
    );
    assert_eq!(taw(&with_extra(&[0xc0, 8, 0]), &EXT).rule, "RFC 7606 §7.8");
}

#[test]
fn rfc7606_7_9_originator_id() {
    assert_eq!(
        taw(&with_extra(&[0x80, 9, 3, 1, 2, 3]), &EXT).rule,
        "RFC 7606 §7.9"
    );
}

#[test]
fn rfc7606_7_10_cluster_list() {
    assert_eq!(
        taw(&with_extra(&[0x80, 10, 5, 1, 2, 3, 4, 5]), &EXT).rule,
        "RFC 7606 §7.10"
    );
}

#[test]
fn rfc7606_7_11_mp_reach_next_hop_length_resets_or_disables() {
    // A 32-byte next hop for IPv4 without RFC 8950 negotiated.
    let b = upd(&[MP_REACH_V4_NATIVE, ORIGIN_IGP, AS_PATH_65001_4], &[]);
    let e = reset(
        &b,
        &CodecContext {
            extended_next_hop_ipv4: false,
            ..EXT
        },
    );
    let n = e.notification();
    assert_eq!((n.code, n.subcode), (3, notify::OPTIONAL_ATTRIBUTE));
    assert_eq!(n.data, MP_REACH_V4_NATIVE);
    assert_eq!(e.afi_safi_disable(), Some(Family::Ipv4Unicast));
    // A 12-byte next hop is wrong for any family.
    let mp = [
        0x90, 14, 0, 21, 0, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 24, 10, 1, 2,
    ];
    assert!(decode_message(&upd(&[&mp, ORIGIN_IGP, AS_PATH_65001_4], &[]), &EXT).is_err());
    // Truncated: next hop length runs past the attribute.
    let mp = [0x90, 14, 0, 6, 0, 1, 1, 32, 0, 0];
    assert!(decode_message(&upd(&[&mp, ORIGIN_IGP, AS_PATH_65001_4], &[]), &EXT).is_err());
    // Bad prefix inside MP_REACH.
    let mp = [0x90, 14, 0, 10, 0, 1, 1, 4, 1, 2, 3, 4, 0, 40];
    let e = reset(&upd(&[&mp, ORIGIN_IGP, AS_PATH_65001_4], &[]), &EXT);
    assert_eq!(e.afi_safi_disable(), Some(Family::Ipv4Unicast));
}

#[test]
fn rfc7606_7_12_mp_unreach() {
    let e = reset(&upd(&[&[0x90, 15, 0, 4, 0, 2, 1, 129]], &[]), &EXT);
    assert_eq!(e.notification().subcode, notify::OPTIONAL_ATTRIBUTE);
    assert_eq!(e.afi_safi_disable(), Some(Family::Ipv6Unicast));
    let e = reset(&upd(&[&[0x90, 15, 0, 2, 0, 2]], &[]), &EXT);
    assert_eq!(e.afi_safi_disable(), None);
}

#[test]
fn rfc7606_7_14_extended_communities() {
    assert_eq!(
        taw(&with_extra(&[0xc0, 16, 4, 0, 2, 0, 1]), &EXT).rule,
        "RFC 7606 §7.14"
    );
}

#[test]
fn rfc8092_6_large_communities() {
    assert_eq!(
        taw(&with_extra(&[0xc0, 32, 4, 0, 0, 0, 1]), &EXT).rule,
        "RFC 8092 §6"
    );
}

#[test]
fn rfc6793_as4_attributes_discard() {
    // Malformed AS4_PATH on a 2-octet session: discarded.
    let b = upd(
        &[
            ORIGIN_IGP,
            AS_PATH_65001_2,
            NEXT_HOP_1,
            &[0xc0, 17, 3, 2, 1, 0],
        ],
        NLRI_10_1_2,
    );
    let d = decode(&b, &OLD);
    assert_eq!(d.discarded[0].rule, "RFC 6793 §6");
    assert_eq!(d.treat_as_withdraw, None);
    // Any AS4_PATH between 4-octet speakers: discarded.
    let d = decode(&with_extra(&[0xc0, 17, 6, 2, 1, 0, 3, 0x0d, 0x40]), &EXT);
    assert_eq!(d.discarded[0].kind, AttributeErrorKind::NotExpected);
    assert_eq!(update_of(&d).attributes.as4_path, None);
    let d = decode(
        &upd(
            &[
                ORIGIN_IGP,
                AS_PATH_65001_2,
                NEXT_HOP_1,
                &[0xc0, 18, 6, 0, 0, 0, 0, 0, 0],
            ],
            NLRI_10_1_2,
        ),
        &OLD,
    );
    assert_eq!(d.discarded[0].type_code, attr::AS4_AGGREGATOR);
}

#[test]
fn rfc4271_6_3_unrecognized_well_known_resets() {
    let e = reset(&with_extra(&[0x40, 99, 1, 5]), &EXT);
    let n = e.notification();
    assert_eq!((n.code, n.subcode, n.data), (3, 2, vec![0x40, 99, 1, 5]));
}

#[test]
fn unknown_afi_safi_is_kept_raw() {
    // MP_REACH for VPNv4 (1/128): not ours, kept byte-exact, no error.
    let mp = [0x90, 14, 0, 5, 0, 1, 128, 0, 0];
    let d = decode(&upd(&[&mp, ORIGIN_IGP, AS_PATH_65001_4], &[]), &EXT);
    let u = update_of(&d);
    assert_eq!(u.attributes.mp_reach, None);
    assert_eq!(u.attributes.unknown[0].type_code, 14);
}

#[test]
fn decoded_and_error_actions() {
    let d = decode(&with_extra(&[0x40, 6, 1, 0]), &EXT);
    assert_eq!(d.action(), Some(ErrorAction::AttributeDiscard));
    let d = decode(&with_extra(&[0x80, 4, 3, 0, 0, 1, 0x40, 6, 1, 0]), &EXT);
    assert_eq!(d.action(), Some(ErrorAction::TreatAsWithdraw));
    assert_eq!(decode(&with_extra(&[]), &EXT).action(), None);
    let b = upd(&[MP_REACH_V4_NATIVE, ORIGIN_IGP, AS_PATH_65001_4], &[]);
    assert_eq!(reset(&b, &OLD).action(), ErrorAction::AfiSafiDisable);
    assert_eq!(
        reset(&with_extra(&[0x40, 99, 0]), &EXT).action(),
        ErrorAction::SessionReset
    );
}

#[test]
fn error_action_strength_order() {
    assert!(ErrorAction::SessionReset > ErrorAction::AfiSafiDisable);
    assert!(ErrorAction::AfiSafiDisable > ErrorAction::TreatAsWithdraw);
    assert!(ErrorAction::TreatAsWithdraw > ErrorAction::AttributeDiscard);
}

#[test]
fn as_path_of_10000_asns_with_extended_messages() {
    let ctx = CodecContext {
        extended_message: true,
        ..EXT
    };
    let asns: Vec<u32> = (0..10_000).map(|i| 4_200_000_000 + i).collect();
    let u = Update {
        attributes: PathAttributes {
            as_path: Some(AsPath {
                segments: vec![AsSegment::Sequence(asns.clone())],
            }),
            next_hop: Some("192.0.2.1".parse().unwrap()),
            ..base_attrs()
        },
        nlri: vec![v4("10.1.2.0/24")],
        ..Default::default()
    };
    let bytes = encode(&u, &ctx);
    assert!(bytes.len() > 40_000);
    // Too big without RFC 8654.
    let mut out = Vec::new();
    assert!(matches!(
        encode_message(&Message::Update(u.clone()), &EXT, &mut out),
        Err(EncodeError::MessageTooLong { .. })
    ));
    assert!(out.is_empty());
    let d = decode(&bytes, &ctx);
    let back = update_of(&d).attributes.as_path.clone().unwrap();
    assert_eq!(back.length(), 10_000);
    let flat: Vec<u32> = back
        .segments
        .iter()
        .flat_map(|s| match s {
            AsSegment::Sequence(v) => v.clone(),
            _ => panic!("not a sequence"),
        })
        .collect();
    assert_eq!(flat, asns);
    assert!(matches!(
        frame_length(&bytes, &EXT),
        Err(DecodeError::BadLength { .. })
    ));
}

#[test]
fn malformed_attributes_we_do_not_parse_pass_untouched() {
    // Tunnel Encapsulation (23), OTC (35) and Prefix-SID (40) with garbage
    // values: the incidents of 2023 and 2025. They are not interpreted, so
    // they cannot reset the session; transitive ones travel on with the
    // Partial bit (RFC 4271 §5).
    let b = with_extra(&[
        0xc0, 23, 3, 0xff, 0xff, 0xff, 0xc0, 35, 1, 9, 0xc0, 40, 2, 0xde, 0xad,
    ]);
    let d = decode(&b, &EXT);
    assert_eq!(d.action(), None);
    let u = update_of(&d);
    assert_eq!(
        u.attributes
            .unknown
            .iter()
            .map(|a| a.type_code)
            .collect::<Vec<_>>(),
        vec![23, 35, 40]
    );
    let out = encode(u, &EXT);
    assert_eq!(
        out,
        with_extra(&[0xe0, 23, 3, 0xff, 0xff, 0xff, 0xe0, 35, 1, 9, 0xe0, 40, 2, 0xde, 0xad])
    );
}

#[test]
fn nlri_without_any_attribute_is_treat_as_withdraw() {
    let b = upd(&[], NLRI_10_1_2);
    let d = decode(&b, &EXT);
    assert_eq!(
        d.treat_as_withdraw.unwrap().kind,
        AttributeErrorKind::Missing
    );
    assert_eq!(update_of(&d).nlri, vec![v4("10.1.2.0/24")]);
}
