//! Encoding an UPDATE and the attribute writers the outbound packer
//! shares.

use std::net::Ipv4Addr;

use super::*;
use crate::aspath;
use crate::error::EncodeError;
use crate::nlri;
use crate::CodecContext;

/// Whether MP_REACH_NLRI / MP_UNREACH_NLRI are always written with a
/// 2-octet length, as BIRD and FRR do, so their size can grow while
/// prefixes are packed without moving bytes.
pub(super) const MP_ALWAYS_EXTENDED: bool = true;

/// Starts an attribute: reserves a 4-byte (extended) header.
pub(super) fn begin_attr(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    at
}

/// Finishes an attribute started at `at`: writes its header, using the
/// 1-octet length form unless the value needs 2 octets or `force_ext`.
pub(super) fn end_attr(
    out: &mut Vec<u8>,
    at: usize,
    flags: u8,
    code: u8,
    force_ext: bool,
) -> Result<(), EncodeError> {
    let len = out.len() - at - 4;
    let len16 = u16::try_from(len).map_err(|_| EncodeError::FieldTooLong {
        what: "path attribute",
        length: len,
    })?;
    if len > 255 || force_ext || flags & FLAG_EXTENDED_LENGTH != 0 {
        let hdr = [
            flags | FLAG_EXTENDED_LENGTH,
            code,
            (len16 >> 8) as u8,
            len16 as u8,
        ];
        if let Some(h) = out.get_mut(at..at + 4) {
            h.copy_from_slice(&hdr);
        }
    } else {
        out.copy_within(at + 4.., at + 3);
        out.truncate(out.len() - 1);
        if let Some(h) = out.get_mut(at..at + 3) {
            h.copy_from_slice(&[flags & !FLAG_EXTENDED_LENGTH, code, len as u8]);
        }
    }
    Ok(())
}

pub(super) fn put_simple(
    out: &mut Vec<u8>,
    flags: u8,
    code: u8,
    value: &[u8],
) -> Result<(), EncodeError> {
    let at = begin_attr(out);
    out.extend_from_slice(value);
    end_attr(out, at, flags, code, false)
}

/// Writes an MP_REACH_NLRI with the given prefixes.
pub(crate) fn put_mp_reach(
    out: &mut Vec<u8>,
    m: &MpReach,
    ctx: &CodecContext,
) -> Result<(), EncodeError> {
    check_next_hop(m.family, &m.next_hop, ctx)?;
    let at = begin_attr(out);
    put_mp_reach_head(out, m.family, &m.next_hop);
    for net in &m.nlri {
        put_prefix_of(out, m.family, net)?;
    }
    end_attr(
        out,
        at,
        FLAG_OPTIONAL,
        attr::MP_REACH_NLRI,
        MP_ALWAYS_EXTENDED,
    )
}

pub(crate) fn put_mp_reach_head(out: &mut Vec<u8>, family: Family, nh: &MpNextHop) {
    out.extend_from_slice(&family.afi().to_be_bytes());
    out.push(family.safi());
    out.push(nh.wire_len() as u8);
    nh.put(out);
    out.push(0);
}

pub(crate) fn put_prefix_of(
    out: &mut Vec<u8>,
    family: Family,
    net: &IpNet,
) -> Result<(), EncodeError> {
    match (family, net) {
        (Family::Ipv4Unicast, IpNet::V4(n)) => nlri::put_v4(out, n),
        (Family::Ipv6Unicast, IpNet::V6(n)) => nlri::put_v6(out, n),
        _ => return Err(EncodeError::FamilyMismatch),
    }
    Ok(())
}

/// RFC 8950 §4: never an IPv6 next hop for IPv4 NLRI unless negotiated;
/// RFC 2545 §3: IPv6 NLRI need an IPv6 next hop.
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

pub(crate) fn put_mp_unreach(out: &mut Vec<u8>, m: &MpUnreach) -> Result<(), EncodeError> {
    let at = begin_attr(out);
    out.extend_from_slice(&m.family.afi().to_be_bytes());
    out.push(m.family.safi());
    for net in &m.withdrawn {
        put_prefix_of(out, m.family, net)?;
    }
    end_attr(
        out,
        at,
        FLAG_OPTIONAL,
        attr::MP_UNREACH_NLRI,
        // An empty MP_UNREACH is an End-of-RIB marker, which BIRD and FRR
        // write with the 1-octet length; keep that shape so it round-trips.
        MP_ALWAYS_EXTENDED && !m.withdrawn.is_empty(),
    )
}

/// Writes the path attributes other than MP_REACH/MP_UNREACH in ascending
/// type order, unknown ones merged in by type code. `next_hop` overrides
/// `a.next_hop` (used by packing).
///
/// RFC 6793 §4.2.2: towards a 2-octet peer, AS4_PATH/AS4_AGGREGATOR are
/// generated when the path or aggregator holds a 4-octet ASN and none was
/// given; towards a 4-octet peer they are never sent (RFC 6793 §4.1).
pub(crate) fn put_plain_attrs(
    out: &mut Vec<u8>,
    a: &PathAttributes,
    next_hop: Option<Ipv4Addr>,
    ctx: &CodecContext,
) -> Result<(), EncodeError> {
    use attr::*;
    const WK: u8 = FLAG_TRANSITIVE;
    const OT: u8 = FLAG_OPTIONAL | FLAG_TRANSITIVE;
    const ON: u8 = FLAG_OPTIONAL;
    let four = ctx.four_octet_as;

    let mut unknown_order: Vec<usize> = (0..a.unknown.len()).collect();
    unknown_order.sort_by_key(|&i| a.unknown.get(i).map_or(0, |u| u.type_code));
    let mut unknown = unknown_order
        .into_iter()
        .filter_map(|i| a.unknown.get(i))
        .peekable();

    const ORDER: [u8; 15] = [
        ORIGIN,
        AS_PATH,
        NEXT_HOP,
        MULTI_EXIT_DISC,
        LOCAL_PREF,
        ATOMIC_AGGREGATE,
        AGGREGATOR,
        COMMUNITIES,
        ORIGINATOR_ID,
        CLUSTER_LIST,
        EXTENDED_COMMUNITIES,
        AS4_PATH,
        AS4_AGGREGATOR,
        LARGE_COMMUNITIES,
        u8::MAX,
    ];
    for code in ORDER {
        while let Some(u) = unknown.next_if(|u| u.type_code < code || code == u8::MAX) {
            put_unknown(out, u)?;
        }
        match code {
            ORIGIN => {
                if let Some(o) = a.origin {
                    put_simple(out, WK, code, &[o as u8])?;
                }
            }
            AS_PATH => {
                if let Some(p) = &a.as_path {
                    let at = begin_attr(out);
                    aspath::put(out, p, four);
                    end_attr(out, at, WK, code, false)?;
                }
            }
            NEXT_HOP => {
                if let Some(nh) = next_hop.or(a.next_hop) {
                    put_simple(out, WK, code, &nh.octets())?;
                }
            }
            MULTI_EXIT_DISC => {
                if let Some(v) = a.med {
                    put_simple(out, ON, code, &v.to_be_bytes())?;
                }
            }
            LOCAL_PREF => {
                if let Some(v) = a.local_pref {
                    put_simple(out, WK, code, &v.to_be_bytes())?;
                }
            }
            ATOMIC_AGGREGATE if a.atomic_aggregate => {
                put_simple(out, WK, code, &[])?;
            }
            AGGREGATOR => {
                if let Some(agg) = &a.aggregator {
                    let at = begin_attr(out);
                    if four {
                        out.extend_from_slice(&agg.asn.to_be_bytes());
                    } else {
                        out.extend_from_slice(&aspath::as2(agg.asn).to_be_bytes());
                    }
                    out.extend_from_slice(&agg.address.octets());
                    end_attr(out, at, OT, code, false)?;
                }
            }
            COMMUNITIES if !a.communities.is_empty() => {
                let at = begin_attr(out);
                for c in &a.communities {
                    out.extend_from_slice(&c.to_be_bytes());
                }
                end_attr(out, at, OT, code, false)?;
            }
            ORIGINATOR_ID => {
                if let Some(id) = a.originator_id {
                    put_simple(out, ON, code, &id.octets())?;
                }
            }
            CLUSTER_LIST if !a.cluster_list.is_empty() => {
                let at = begin_attr(out);
                for c in &a.cluster_list {
                    out.extend_from_slice(&c.octets());
                }
                end_attr(out, at, ON, code, false)?;
            }
            EXTENDED_COMMUNITIES if !a.extended_communities.is_empty() => {
                let at = begin_attr(out);
                for c in &a.extended_communities {
                    out.extend_from_slice(c);
                }
                end_attr(out, at, OT, code, false)?;
            }
            AS4_PATH if !four => {
                let generated;
                let p = match (&a.as4_path, &a.as_path) {
                    (Some(p), _) => Some(p),
                    (None, Some(p)) if aspath::needs_as4(p) => {
                        generated = aspath::as4_path_for(p);
                        Some(&generated)
                    }
                    _ => None,
                };
                if let Some(p) = p {
                    let at = begin_attr(out);
                    aspath::put(out, p, true);
                    end_attr(out, at, OT, code, false)?;
                }
            }
            AS4_AGGREGATOR if !four => {
                let agg = a
                    .as4_aggregator
                    .or(a.aggregator.filter(|g| g.asn > u16::MAX as u32));
                if let Some(agg) = agg {
                    let at = begin_attr(out);
                    out.extend_from_slice(&agg.asn.to_be_bytes());
                    out.extend_from_slice(&agg.address.octets());
                    end_attr(out, at, OT, code, false)?;
                }
            }
            LARGE_COMMUNITIES if !a.large_communities.is_empty() => {
                let at = begin_attr(out);
                for c in &a.large_communities {
                    out.extend_from_slice(&c.global_admin.to_be_bytes());
                    out.extend_from_slice(&c.local_data_1.to_be_bytes());
                    out.extend_from_slice(&c.local_data_2.to_be_bytes());
                }
                end_attr(out, at, OT, code, false)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// RFC 4271 §5: an unrecognised optional transitive attribute is passed on
/// with the Partial bit set; others are written as they came.
pub(super) fn put_unknown(out: &mut Vec<u8>, u: &RawAttribute) -> Result<(), EncodeError> {
    let mut flags = u.flags;
    if flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE) == FLAG_OPTIONAL | FLAG_TRANSITIVE {
        flags |= FLAG_PARTIAL;
    }
    let at = begin_attr(out);
    out.extend_from_slice(&u.value);
    end_attr(out, at, flags, u.type_code, false)
}

/// Encodes an UPDATE body (after the header).
pub(crate) fn encode_update(
    u: &Update,
    ctx: &CodecContext,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let wpos = out.len();
    out.extend_from_slice(&[0, 0]);
    for n in &u.withdrawn {
        nlri::put_v4(out, n);
    }
    patch_len16(out, wpos, "withdrawn routes")?;
    let apos = out.len();
    out.extend_from_slice(&[0, 0]);
    // RFC 7606 §5.1: MP_REACH_NLRI / MP_UNREACH_NLRI go first.
    if let Some(m) = &u.attributes.mp_reach {
        put_mp_reach(out, m, ctx)?;
    }
    if let Some(m) = &u.attributes.mp_unreach {
        put_mp_unreach(out, m)?;
    }
    put_plain_attrs(out, &u.attributes, None, ctx)?;
    patch_len16(out, apos, "path attributes")?;
    for n in &u.nlri {
        nlri::put_v4(out, n);
    }
    Ok(())
}

/// Writes the length of the field that starts after the 2 bytes at `pos`.
pub(crate) fn patch_len16(
    out: &mut [u8],
    pos: usize,
    what: &'static str,
) -> Result<(), EncodeError> {
    let len = out.len().saturating_sub(pos + 2);
    let v = u16::try_from(len).map_err(|_| EncodeError::FieldTooLong { what, length: len })?;
    if let Some(f) = out.get_mut(pos..pos + 2) {
        f.copy_from_slice(&v.to_be_bytes());
    }
    Ok(())
}
