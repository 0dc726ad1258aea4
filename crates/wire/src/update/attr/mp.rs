//! MP_REACH_NLRI and MP_UNREACH_NLRI (RFC 4760 §3, §4), optional
//! non-transitive, with the next hops of RFC 2545 (IPv6) and RFC 8950
//! (IPv6 next hops for IPv4 NLRI). Unlike the other attributes, an error
//! in them resets the session or disables the family (RFC 7606 §7.11,
//! §7.12), never less: the prefixes they carry cannot be trusted to be
//! located.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::{notify, DecodeError, EncodeError};
use crate::nlri;
use crate::types::{Family, IpNet, MpNextHop, MpReach, MpUnreach, PathAttributes};
use crate::CodecContext;

use super::{header, unknown, MP_REACH_NLRI, MP_UNREACH_NLRI, OPT_NON_TRANS};

pub(super) const FLAGS: u8 = OPT_NON_TRANS;

/// Whether MP_REACH_NLRI / MP_UNREACH_NLRI are always written with a
/// 2-octet length, as BIRD and FRR do, so their size can grow while
/// prefixes are packed without moving bytes.
const ALWAYS_EXTENDED: bool = true;

/// Decodes MP_REACH_NLRI or MP_UNREACH_NLRI (`code`) into `a`. A family
/// this codec does not carry is kept as an unknown attribute: the speaker
/// ignores a family it did not negotiate.
#[inline]
pub(super) fn decode(
    flags: u8,
    code: u8,
    value: &[u8],
    raw: &[u8],
    ctx: &CodecContext,
    a: &mut PathAttributes,
) -> Result<(), DecodeError> {
    let known = if code == MP_REACH_NLRI {
        decode_reach(value, raw, ctx)?.map(|m| a.mp_reach = Some(m))
    } else {
        decode_unreach(value, raw)?.map(|m| a.mp_unreach = Some(m))
    };
    if known.is_none() {
        unknown::keep(flags, code, value, a);
    }
    Ok(())
}

/// RFC 4760 §7 / RFC 7606 §7.11: an MP attribute that cannot be parsed
/// resets the session (or disables the family) with UPDATE Message Error /
/// Optional Attribute Error and the attribute as data.
#[cold]
fn mp_err(
    raw: &[u8],
    family: Option<Family>,
    reason: &'static str,
    rule: &'static str,
) -> DecodeError {
    DecodeError::Update {
        subcode: notify::OPTIONAL_ATTRIBUTE,
        data: raw.to_vec(),
        reason,
        rule,
        family,
    }
}

#[inline]
fn ipv6_at(b: &[u8], at: usize) -> Option<Ipv6Addr> {
    let bytes: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(bytes))
}

/// `Ok(None)` for an AFI/SAFI this codec does not carry.
#[inline]
fn decode_reach(
    value: &[u8],
    raw: &[u8],
    ctx: &CodecContext,
) -> Result<Option<MpReach>, DecodeError> {
    let (afi, safi, nh_len) = match value {
        [a0, a1, s, n, ..] => (u16::from_be_bytes([*a0, *a1]), *s, *n as usize),
        _ => {
            return Err(mp_err(
                raw,
                None,
                "MP_REACH_NLRI too short",
                "RFC 7606 §7.11",
            ))
        }
    };
    let Some(family) = Family::from_afi_safi(afi, safi) else {
        return Ok(None);
    };
    // Next hop, then one reserved octet (RFC 4760 §3), then the NLRI.
    let nh = value.get(4..4 + nh_len);
    let nlri_bytes = value.get(4 + nh_len + 1..);
    let (Some(nh), Some(nlri_bytes)) = (nh, nlri_bytes) else {
        return Err(mp_err(
            raw,
            Some(family),
            "MP_REACH_NLRI next hop overruns the attribute",
            "RFC 7606 §7.11",
        ));
    };
    let Some(next_hop) = next_hop_of(family, nh, ctx) else {
        return Err(mp_err(
            raw,
            Some(family),
            "MP_REACH_NLRI next hop length unexpected for the family and negotiated capabilities",
            "RFC 7606 §7.11, RFC 8950 §4",
        ));
    };
    let nlri = prefixes_of(family, nlri_bytes).map_err(|_| {
        mp_err(
            raw,
            Some(family),
            "MP_REACH_NLRI prefixes cannot be parsed",
            "RFC 7606 §5.3, §7.11",
        )
    })?;
    Ok(Some(MpReach {
        family,
        next_hop,
        nlri,
    }))
}

/// The next hop field `nh` of an MP_REACH_NLRI for `family`, `None` when
/// its length is not one the family and the session allow.
#[inline]
fn next_hop_of(family: Family, nh: &[u8], ctx: &CodecContext) -> Option<MpNextHop> {
    match (family, nh.len()) {
        (Family::Ipv4Unicast, 4) => nh
            .try_into()
            .ok()
            .map(|b: [u8; 4]| MpNextHop::V4(Ipv4Addr::from(b))),
        // RFC 8950 §3: 16 or 32 bytes carry IPv6 next hops for IPv4 NLRI,
        // but only after the capability was exchanged (RFC 8950 §4).
        // Without it the length is "inconsistent with that which was
        // expected", which RFC 7606 §7.11 answers with session reset or
        // AFI/SAFI disable: the NLRI cannot be trusted to be located.
        (Family::Ipv4Unicast, 16) if ctx.extended_next_hop_ipv4 => {
            ipv6_at(nh, 0).map(MpNextHop::V6)
        }
        (Family::Ipv4Unicast, 32) if ctx.extended_next_hop_ipv4 => ipv6_at(nh, 0)
            .zip(ipv6_at(nh, 16))
            .map(|(a, b)| MpNextHop::V6Pair(a, b)),
        // RFC 2545 §3: 16 = global (or link-local alone), 32 = global + LL.
        (Family::Ipv6Unicast, 16) => ipv6_at(nh, 0).map(MpNextHop::V6),
        (Family::Ipv6Unicast, 32) => ipv6_at(nh, 0)
            .zip(ipv6_at(nh, 16))
            .map(|(a, b)| MpNextHop::V6Pair(a, b)),
        _ => None,
    }
}

#[inline]
fn prefixes_of(family: Family, bytes: &[u8]) -> Result<Vec<IpNet>, nlri::BadNlri> {
    match family {
        Family::Ipv4Unicast => nlri::parse_v4_ipnet(bytes),
        Family::Ipv6Unicast => nlri::parse_v6_ipnet(bytes),
    }
}

/// `Ok(None)` for an AFI/SAFI this codec does not carry. RFC 7606 §7.12:
/// one too short for AFI and SAFI, or whose prefixes do not parse, resets
/// the session (or disables the family).
#[inline]
fn decode_unreach(value: &[u8], raw: &[u8]) -> Result<Option<MpUnreach>, DecodeError> {
    let (afi, safi, rest) = match value {
        [a0, a1, s, rest @ ..] => (u16::from_be_bytes([*a0, *a1]), *s, rest),
        _ => {
            return Err(mp_err(
                raw,
                None,
                "MP_UNREACH_NLRI too short",
                "RFC 7606 §7.12",
            ))
        }
    };
    let Some(family) = Family::from_afi_safi(afi, safi) else {
        return Ok(None);
    };
    let withdrawn = prefixes_of(family, rest).map_err(|_| {
        mp_err(
            raw,
            Some(family),
            "MP_UNREACH_NLRI prefixes cannot be parsed",
            "RFC 7606 §5.3, §7.12",
        )
    })?;
    Ok(Some(MpUnreach { family, withdrawn }))
}

/// Writes an MP_REACH_NLRI with the given prefixes.
#[inline]
pub(crate) fn put_mp_reach(
    out: &mut Vec<u8>,
    m: &MpReach,
    ctx: &CodecContext,
) -> Result<(), EncodeError> {
    check_next_hop(m.family, &m.next_hop, ctx)?;
    let at = header::begin(out);
    put_mp_reach_head(out, m.family, &m.next_hop);
    for net in &m.nlri {
        put_prefix_of(out, m.family, net)?;
    }
    header::end(out, at, FLAGS, MP_REACH_NLRI, ALWAYS_EXTENDED)
}

/// AFI, SAFI, the next hop and the reserved octet (RFC 4760 §3): what
/// comes before the prefixes.
#[inline]
pub(crate) fn put_mp_reach_head(out: &mut Vec<u8>, family: Family, nh: &MpNextHop) {
    out.extend_from_slice(&family.afi().to_be_bytes());
    out.push(family.safi());
    out.push(nh.wire_len() as u8);
    nh.put(out);
    out.push(0);
}

#[inline]
fn put_prefix_of(out: &mut Vec<u8>, family: Family, net: &IpNet) -> Result<(), EncodeError> {
    match (family, net) {
        (Family::Ipv4Unicast, IpNet::V4(n)) => nlri::put_v4(out, n),
        (Family::Ipv6Unicast, IpNet::V6(n)) => nlri::put_v6(out, n),
        _ => return Err(EncodeError::FamilyMismatch),
    }
    Ok(())
}

/// RFC 8950 §4: never an IPv6 next hop for IPv4 NLRI unless negotiated;
/// RFC 2545 §3: IPv6 NLRI need an IPv6 next hop.
#[inline]
pub(crate) fn check_next_hop(
    family: Family,
    nh: &MpNextHop,
    ctx: &CodecContext,
) -> Result<(), EncodeError> {
    match (family, nh) {
        (Family::Ipv4Unicast, MpNextHop::V4(_)) => Ok(()),
        (Family::Ipv4Unicast, _) if ctx.extended_next_hop_ipv4 => Ok(()),
        (Family::Ipv4Unicast, _) => Err(EncodeError::NoExtendedNextHop),
        (Family::Ipv6Unicast, MpNextHop::V4(_)) => Err(EncodeError::FamilyMismatch),
        (Family::Ipv6Unicast, _) => Ok(()),
    }
}

#[inline]
pub(crate) fn put_mp_unreach(out: &mut Vec<u8>, m: &MpUnreach) -> Result<(), EncodeError> {
    let at = header::begin(out);
    out.extend_from_slice(&m.family.afi().to_be_bytes());
    out.push(m.family.safi());
    for net in &m.withdrawn {
        put_prefix_of(out, m.family, net)?;
    }
    // An empty MP_UNREACH is an End-of-RIB marker, which BIRD and FRR
    // write with the 1-octet length; keep that shape so it round-trips.
    let force_ext = ALWAYS_EXTENDED && !m.withdrawn.is_empty();
    header::end(out, at, FLAGS, MP_UNREACH_NLRI, force_ext)
}

#[cfg(test)]
mod tests {
    use crate::update::tests::*;

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
    fn unknown_afi_safi_is_kept_raw() {
        // MP_REACH for VPNv4 (1/128): not ours, kept byte-exact, no error.
        let mp = [0x90, 14, 0, 5, 0, 1, 128, 0, 0];
        let d = decode(&upd(&[&mp, ORIGIN_IGP, AS_PATH_65001_4], &[]), &EXT);
        let u = update_of(&d);
        assert_eq!(u.attributes.mp_reach, None);
        assert_eq!(u.attributes.unknown[0].type_code, 14);
    }
}
