//! UPDATE byte vectors in both directions, packing, framing, and the RFC
//! 7606 rules about the attribute list as a whole.
//!
//! The helpers and byte vectors are shared with the tests of each
//! attribute, beside its module in `attr/`.

pub(crate) use std::net::{Ipv4Addr, Ipv6Addr};

pub(crate) use super::{attr, Decoded};
pub(crate) use crate::error::{
    notify, AttributeError, AttributeErrorKind, DecodeError, EncodeError, ErrorAction,
};
pub(crate) use crate::types::*;
pub(crate) use crate::CodecContext;
pub(crate) use crate::{decode_message, encode_message, frame_length};

use super::*;
use crate::{end_of_rib, pack_announcements, pack_withdrawals};

pub(crate) const EXT: CodecContext = CodecContext {
    four_octet_as: true,
    extended_message: false,
    extended_next_hop_ipv4: true,
};
pub(crate) const OLD: CodecContext = CodecContext {
    four_octet_as: false,
    extended_message: false,
    extended_next_hop_ipv4: false,
};

/// Wraps an UPDATE body in a header.
pub(crate) fn msg(body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
    m.push(2);
    m.extend_from_slice(body);
    m
}

/// An UPDATE with no withdrawn routes, the given attributes and NLRI.
pub(crate) fn upd(attrs: &[&[u8]], nlri: &[u8]) -> Vec<u8> {
    let a: Vec<u8> = attrs.concat();
    let mut body = vec![0, 0];
    body.extend_from_slice(&(a.len() as u16).to_be_bytes());
    body.extend_from_slice(&a);
    body.extend_from_slice(nlri);
    msg(&body)
}

pub(crate) fn v4(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}
pub(crate) fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}
pub(crate) fn ll1() -> Ipv6Addr {
    "fe80::1".parse().unwrap()
}

pub(crate) const ORIGIN_IGP: &[u8] = &[0x40, 1, 1, 0];
pub(crate) const AS_PATH_65001_4: &[u8] = &[0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9];
pub(crate) const AS_PATH_65001_2: &[u8] = &[0x40, 2, 4, 2, 1, 0xfd, 0xe9];
pub(crate) const NEXT_HOP_1: &[u8] = &[0x40, 3, 4, 192, 0, 2, 1];
pub(crate) const NLRI_10_1_2: &[u8] = &[24, 10, 1, 2];

/// MP_REACH IPv4 unicast, next hop [::, fe80::1], 10.1.2.0/24 and 172.16.0.0/16.
pub(crate) const MP_REACH_V4_NATIVE: &[u8] = &[
    0x90, 14, 0, 44, 0, 1, 1, 32, //
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //
    0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, //
    0, 24, 10, 1, 2, 16, 172, 16,
];

pub(crate) fn base_attrs() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath {
            segments: vec![AsSegment::Sequence(vec![65001])],
        }),
        ..Default::default()
    }
}

pub(crate) fn decode(bytes: &[u8], ctx: &CodecContext) -> Decoded {
    decode_message(bytes, ctx).unwrap()
}

pub(crate) fn update_of(d: &Decoded) -> &Update {
    match &d.message {
        Message::Update(u) => u,
        m => panic!("not an UPDATE: {m:?}"),
    }
}

pub(crate) fn encode(u: &Update, ctx: &CodecContext) -> Vec<u8> {
    let mut out = Vec::new();
    encode_message(&Message::Update(u.clone()), ctx, &mut out).unwrap();
    out
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

pub(crate) fn decode_all(mut buf: &[u8], ctx: &CodecContext) -> Vec<Update> {
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

pub(crate) fn many_v4(n: u32) -> Vec<IpNet> {
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

pub(crate) fn msg_typed(ty: u8, body: &[u8]) -> Vec<u8> {
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

pub(crate) fn taw(bytes: &[u8], ctx: &CodecContext) -> AttributeError {
    let d = decode(bytes, ctx);
    d.treat_as_withdraw.expect("treat-as-withdraw expected")
}

pub(crate) fn reset(bytes: &[u8], ctx: &CodecContext) -> DecodeError {
    decode_message(bytes, ctx).unwrap_err()
}

/// Classic-NLRI UPDATE with the mandatory attributes plus `extra`.
pub(crate) fn with_extra(extra: &[u8]) -> Vec<u8> {
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
fn nlri_without_any_attribute_is_treat_as_withdraw() {
    let b = upd(&[], NLRI_10_1_2);
    let d = decode(&b, &EXT);
    assert_eq!(
        d.treat_as_withdraw.unwrap().kind,
        AttributeErrorKind::Missing
    );
    assert_eq!(update_of(&d).nlri, vec![v4("10.1.2.0/24")]);
}
