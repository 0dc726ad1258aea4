//! The hostile inputs of `hostile.rs` whose answer lives in the codec,
//! fed to `wire::decode_message` directly: fast, no namespaces, and the
//! place where inputs that once got a wrong answer (or, from fuzzing, a
//! crash) stay pinned. Each case names the RFC rule it checks.
//!
//! Pinned from the hostile suite: an OPEN whose Opt Parm Len runs past
//! the message once got 1/2 instead of 2/0 (RFC 4271 §6.2).

use std::net::{Ipv4Addr, Ipv6Addr};

use rawpeer::build::{self, *};
use rawpeer::{OpenSpec, Result};
use wire::{decode_message, CodecContext, Decoded, Message};

const AS: u32 = 65010;
const ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);

/// An Established RFC 8950 session without extended messages.
fn session() -> CodecContext {
    CodecContext {
        four_octet_as: true,
        extended_message: false,
        extended_next_hop_ipv4: true,
    }
}

fn open_time() -> CodecContext {
    CodecContext::default()
}

/// The NOTIFICATION (code, subcode, data) the decoder asks for.
fn reset(bytes: &[u8], ctx: &CodecContext) -> (u8, u8, Vec<u8>) {
    match decode_message(bytes, ctx) {
        Err(e) => {
            let n = e.notification();
            (n.code, n.subcode, n.data)
        }
        Ok(d) => panic!("expected a session reset, decoded {d:?}"),
    }
}

/// Code and subcode of the reset.
fn cs(bytes: &[u8], ctx: &CodecContext) -> (u8, u8) {
    let (c, s, _) = reset(bytes, ctx);
    (c, s)
}

fn decoded(bytes: &[u8], ctx: &CodecContext) -> Decoded {
    match decode_message(bytes, ctx) {
        Ok(d) => d,
        Err(e) => panic!("expected no reset, got {e} ({:?})", e.notification()),
    }
}

fn p(c: u8) -> (Ipv4Addr, u8) {
    (Ipv4Addr::new(10, 2, c, 0), 24)
}

fn base() -> Result<Vec<u8>> {
    let mut a = build::origin_igp()?;
    a.extend(build::as_path4(&[AS])?);
    Ok(a)
}

fn with_attrs(attrs: &[u8]) -> Result<Vec<u8>> {
    let mut a = attrs.to_vec();
    a.extend(build::mp_reach_v4_ll(LL, &[p(1)])?);
    Ok(build::update(&a))
}

#[test]
fn header_errors_rfc4271_6_1() -> Result<()> {
    let ones = [0xffu8; 16];
    let mut marker = ones;
    marker[3] = 0;
    let ctx = session();
    assert_eq!(
        reset(&build::raw_message(&marker, 19, KEEPALIVE, &[]), &ctx),
        (1, 1, vec![])
    );
    assert_eq!(
        reset(&build::raw_message(&ones, 18, KEEPALIVE, &[]), &ctx),
        (1, 2, vec![0, 18])
    );
    assert_eq!(
        reset(&build::raw_message(&ones, 5000, UPDATE, &[0; 4981]), &ctx),
        (1, 2, vec![0x13, 0x88])
    );
    assert_eq!(
        reset(&build::raw_message(&ones, 22, UPDATE, &[0; 3]), &ctx),
        (1, 2, vec![0, 22])
    );
    assert_eq!(
        reset(&build::raw_message(&ones, 20, KEEPALIVE, &[0]), &ctx),
        (1, 2, vec![0, 20])
    );
    assert_eq!(
        reset(&build::raw_message(&ones, 19, 9, &[]), &ctx),
        (1, 3, vec![9])
    );
    // RFC 8654 §4: 5000 bytes are fine once extended messages are on.
    let big = CodecContext {
        extended_message: true,
        ..ctx
    };
    let long_path: Vec<u32> = (0..10_000).map(|i| 4_200_000_000 + i).collect();
    let m = build::announce_v4(&long_path, LL, &[p(40)], &[])?;
    let d = decoded(&m, &big);
    assert_eq!(d.treat_as_withdraw, None);
    let Message::Update(u) = d.message else {
        panic!("not an UPDATE");
    };
    let asns: usize = u
        .attributes
        .as_path
        .map(|p| {
            p.segments
                .iter()
                .map(|s| match s {
                    wire::AsSegment::Sequence(v) | wire::AsSegment::Set(v) => v.len(),
                    wire::AsSegment::ConfedSequence(v) | wire::AsSegment::ConfedSet(v) => v.len(),
                })
                .sum()
        })
        .unwrap_or(0);
    assert_eq!(asns, 10_000);
    Ok(())
}

#[test]
fn open_errors_rfc4271_6_2() -> Result<()> {
    let ctx = open_time();
    let mut v5 = OpenSpec::new(AS, ID);
    v5.version = 5;
    assert_eq!(reset(&v5.encode(), &ctx), (2, 1, vec![0, 4]));
    let zero = OpenSpec::new(AS, Ipv4Addr::UNSPECIFIED);
    assert_eq!(cs(&zero.encode(), &ctx), (2, 3));
    for hold in [1, 2] {
        assert_eq!(
            reset(&OpenSpec::new(AS, ID).hold(hold).encode(), &ctx),
            (2, 6, vec![])
        );
    }
    // Malformed optional parameters: Unspecific (2/0).
    let mut caps = build::cap_multiprotocol(1, 1);
    caps.extend([65, 8, 0, 0, 0xfe, 0x12]);
    let param = build::capabilities_param(&caps);
    let m = build::open_raw(4, AS as u16, 240, ID, param.len() as u8, &param);
    assert_eq!(cs(&m, &ctx), (2, 0));
    let mut param = vec![2, 30];
    param.extend(build::cap_four_octet_as(AS));
    let m = build::open_raw(4, AS as u16, 240, ID, param.len() as u8, &param);
    assert_eq!(cs(&m, &ctx), (2, 0));
    let param = build::capabilities_param(&build::cap_four_octet_as(AS));
    let m = build::open_raw(4, AS as u16, 240, ID, 40, &param);
    assert_eq!(cs(&m, &ctx), (2, 0));
    // A good OPEN decodes.
    assert!(matches!(
        decoded(&OpenSpec::new(AS, ID).extended_message().encode(), &ctx).message,
        Message::Open(_)
    ));
    Ok(())
}

#[test]
fn update_resets_rfc7606() -> Result<()> {
    let ctx = session();
    // §3 (g): MP_REACH twice.
    let mut a = base()?;
    a.extend(build::mp_reach_v4_ll(LL, &[p(2)])?);
    a.extend(build::mp_reach_v4_ll(LL, &[p(3)])?);
    assert_eq!(cs(&build::update(&a), &ctx), (3, 1));
    // RFC 4271 §6.3: unrecognised well-known attribute, data = it.
    let attr = build::attribute(TRANSITIVE, 100, &[7, 7]);
    let mut a = base()?;
    a.extend(&attr);
    assert_eq!(reset(&with_attrs(&a)?, &ctx), (3, 2, attr));
    // §7.11: next-hop length 7; 32 bytes without capability 5.
    let mut a = base()?;
    a.extend(build::mp_reach_raw(
        1,
        1,
        &[0xfe, 0x80, 0, 0, 0, 0, 2],
        &[24, 10, 3, 3],
    ));
    assert_eq!(cs(&build::update(&a), &ctx), (3, 9));
    let no_enh = CodecContext {
        extended_next_hop_ipv4: false,
        ..ctx
    };
    let m = build::announce_v4(&[AS], LL, &[p(4)], &[])?;
    assert_eq!(cs(&m, &no_enh), (3, 9));
    // §5.3 / RFC 4271 §6.3: classic NLRI that does not parse.
    let mut a = base()?;
    a.extend(build::attribute(TRANSITIVE, NEXT_HOP, &[192, 0, 2, 10]));
    for nlri in [vec![24u8, 10, 3], vec![33, 10, 3, 7, 0, 0]] {
        let m = build::update_raw(&[], &a, &nlri);
        assert_eq!(cs(&m, &ctx), (3, 10), "{nlri:?}");
    }
    // MP_REACH NLRI that does not parse.
    let mut nh = vec![0u8; 16];
    nh.extend(LL.octets());
    for nlri in [vec![24u8, 10, 3], vec![33, 10, 3, 10, 0, 0]] {
        let mut a = base()?;
        a.extend(build::mp_reach_raw(1, 1, &nh, &nlri));
        let m = build::update(&a);
        assert_eq!(cs(&m, &ctx), (3, 9), "{nlri:?}");
    }
    Ok(())
}

#[test]
fn update_treat_as_withdraw_and_discard_rfc7606() -> Result<()> {
    let ctx = session();
    let withdraws = |m: &[u8]| decoded(m, &ctx).treat_as_withdraw.is_some();
    // §4: attribute overrunning the attribute block (MP_REACH first).
    let mut a = build::mp_reach_v4_ll(LL, &[p(0)])?;
    a.extend(base()?);
    a.extend([OPTIONAL, MED, 4, 0, 0]);
    assert!(withdraws(&build::update(&a)));
    // §3 (d): no attributes at all; missing ORIGIN; missing AS_PATH.
    assert!(withdraws(&build::update_raw(
        &[],
        &[],
        &build::prefix_v4(Ipv4Addr::new(10, 2, 1, 0), 24)
    )));
    assert!(withdraws(&with_attrs(&build::as_path4(&[AS])?)?));
    assert!(withdraws(&with_attrs(&build::origin_igp()?)?));
    // §3 (c): well-known flags wrong.
    let mut a = build::attribute(OPTIONAL | TRANSITIVE, ORIGIN, &[0]);
    a.extend(build::as_path4(&[AS])?);
    assert!(withdraws(&with_attrs(&a)?));
    // §7.8 and §7.4.
    for bad in [
        build::attribute(OPTIONAL | TRANSITIVE, COMMUNITIES, &[]),
        build::attribute(OPTIONAL | TRANSITIVE, COMMUNITIES, &[0, 1, 0, 2, 9]),
        build::attribute(OPTIONAL, MED, &[0, 0, 1]),
    ] {
        let mut a = base()?;
        a.extend(&bad);
        assert!(withdraws(&with_attrs(&a)?), "{bad:02x?}");
    }
    // §7.7 and §3 (g): discard, the route stays.
    for extra in [
        build::attribute(OPTIONAL | TRANSITIVE, AGGREGATOR, &[0, 0, 0xfe, 0x12, 1]),
        build::attribute(TRANSITIVE, ORIGIN, &[2]),
    ] {
        let mut a = base()?;
        a.extend(&extra);
        let d = decoded(&with_attrs(&a)?, &ctx);
        assert_eq!(d.treat_as_withdraw, None, "{extra:02x?}");
        assert!(!d.discarded.is_empty(), "{extra:02x?}");
    }
    // RFC 4271 §5: unknown optional transitive (23, 35, 40) kept as is.
    for code in [23u8, 35, 40] {
        let mut a = base()?;
        a.extend(build::attribute(OPTIONAL | TRANSITIVE, code, &[1, 2, 3]));
        let d = decoded(&with_attrs(&a)?, &ctx);
        assert_eq!(d.treat_as_withdraw, None);
        let Message::Update(u) = d.message else {
            panic!("not an UPDATE");
        };
        assert!(u.attributes.unknown.iter().any(|r| r.type_code == code));
    }
    Ok(())
}
