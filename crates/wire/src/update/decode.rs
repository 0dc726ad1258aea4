//! Decoding an UPDATE: a hand-written walk over the slice, every length
//! checked before it is read, RFC 7606 outcomes per attribute.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;
use crate::aspath;
use crate::error::{notify, AttributeError, AttributeErrorKind as Kind, DecodeError};
use crate::nlri;
use crate::CodecContext;

pub(super) fn update_err(
    subcode: u8,
    data: Vec<u8>,
    reason: &'static str,
    rule: &'static str,
) -> DecodeError {
    DecodeError::Update {
        subcode,
        data,
        reason,
        rule,
        family: None,
    }
}

pub(super) fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

pub(super) fn be32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

pub(super) struct State {
    attrs: PathAttributes,
    withdraw: Option<AttributeError>,
    discarded: Vec<AttributeError>,
    seen: [u64; 4],
}

impl State {
    fn withdraw(&mut self, type_code: u8, kind: Kind, rule: &'static str) {
        if self.withdraw.is_none() {
            self.withdraw = Some(AttributeError {
                type_code,
                kind,
                action: ErrorAction::TreatAsWithdraw,
                rule,
            });
        }
    }
    fn discard(&mut self, type_code: u8, kind: Kind, rule: &'static str) {
        self.discarded.push(AttributeError {
            type_code,
            kind,
            action: ErrorAction::AttributeDiscard,
            rule,
        });
    }
    /// Marks `code` seen; false if it was already.
    fn first_time(&mut self, code: u8) -> bool {
        let (word, bit) = ((code >> 6) as usize, 1u64 << (code & 63));
        match self.seen.get_mut(word) {
            Some(w) if *w & bit == 0 => {
                *w |= bit;
                true
            }
            _ => false,
        }
    }
}

/// Decodes an UPDATE body (the bytes after the 19-byte header).
pub(crate) fn decode_update(body: &[u8], ctx: &CodecContext) -> Result<Decoded, DecodeError> {
    // RFC 4271 §6.3 (unchanged by RFC 7606 §3 (b)): the two length fields
    // must fit the message, else Malformed Attribute List.
    let too_long = || {
        update_err(
            notify::MALFORMED_ATTRIBUTE_LIST,
            Vec::new(),
            "withdrawn routes or path attribute length exceeds the message",
            "RFC 4271 §6.3, RFC 7606 §3 (b)",
        )
    };
    let wlen = be16(body, 0).ok_or_else(too_long)? as usize;
    let withdrawn_bytes = body.get(2..2 + wlen).ok_or_else(too_long)?;
    let alen = be16(body, 2 + wlen).ok_or_else(too_long)? as usize;
    let attr_bytes = body.get(4 + wlen..4 + wlen + alen).ok_or_else(too_long)?;
    let nlri_bytes = body.get(4 + wlen + alen..).unwrap_or(&[]);

    // RFC 7606 §3 (i) and §5.3: Withdrawn Routes and NLRI must parse, or
    // treat-as-withdraw cannot be applied; RFC 4271 §6.3 names the subcode.
    let bad_network = || {
        update_err(
            notify::INVALID_NETWORK_FIELD,
            Vec::new(),
            "prefix list cannot be parsed",
            "RFC 7606 §5.3, RFC 4271 §6.3",
        )
    };
    let withdrawn = nlri::parse_v4(withdrawn_bytes).map_err(|_| bad_network())?;
    let nlri = nlri::parse_v4(nlri_bytes).map_err(|_| bad_network())?;

    let mut st = State {
        attrs: PathAttributes::default(),
        withdraw: None,
        discarded: Vec::new(),
        seen: [0; 4],
    };
    decode_attributes(attr_bytes, ctx, &mut st)?;

    let reach_nlri = !nlri.is_empty()
        || st
            .attrs
            .mp_reach
            .as_ref()
            .is_some_and(|m| !m.nlri.is_empty());
    if reach_nlri {
        // RFC 7606 §3 (d): a missing well-known mandatory attribute is
        // treat-as-withdraw. NEXT_HOP is mandatory only with classic NLRI
        // (RFC 4760 §3, RFC 7606 §3 (d) note).
        for (code, present) in [
            (attr::ORIGIN, st.attrs.origin.is_some()),
            (attr::AS_PATH, st.attrs.as_path.is_some()),
            (
                attr::NEXT_HOP,
                st.attrs.next_hop.is_some() || nlri.is_empty(),
            ),
        ] {
            if !present && st.first_time(code) {
                st.withdraw(code, Kind::Missing, "RFC 7606 §3 (d)");
            }
        }
    }
    // RFC 7606 §5.2: an UPDATE with attributes but no reachable NLRI cannot
    // be shown to have been parsed completely, so any error stronger than
    // attribute-discard resets the session.
    if st.withdraw.is_some() && nlri.is_empty() && st.attrs.mp_reach.is_none() {
        return Err(update_err(
            notify::MALFORMED_ATTRIBUTE_LIST,
            Vec::new(),
            "malformed attribute in an UPDATE without reachable NLRI",
            "RFC 7606 §5.2",
        ));
    }
    Ok(Decoded {
        message: Message::Update(Update {
            withdrawn,
            attributes: st.attrs,
            nlri,
        }),
        treat_as_withdraw: st.withdraw,
        discarded: st.discarded,
    })
}

pub(super) fn decode_attributes(
    mut rest: &[u8],
    ctx: &CodecContext,
    st: &mut State,
) -> Result<(), DecodeError> {
    while !rest.is_empty() {
        let (flags, code) = match rest {
            [f, c, ..] => (*f, *c),
            _ => (0, 0),
        };
        let hdr = if flags & FLAG_EXTENDED_LENGTH != 0 {
            4
        } else {
            3
        };
        let len = if hdr == 4 {
            be16(rest, 2).map(usize::from)
        } else {
            rest.get(2).map(|&b| b as usize)
        };
        let Some((raw, next)) = len.and_then(|len| rest.split_at_checked(hdr + len)) else {
            // RFC 7606 §4: an attribute overrunning the Total Path Attribute
            // Length, or a fragment shorter than a header, is
            // treat-as-withdraw; the NLRI field is still located by the
            // Total Path Attribute Length.
            st.withdraw(0, Kind::Framing, "RFC 7606 §4");
            return Ok(());
        };
        rest = next;
        let value = raw.get(hdr..).unwrap_or(&[]);
        if !st.first_time(code) {
            // RFC 7606 §3 (g): a repeated MP_REACH/MP_UNREACH resets the
            // session; any other repeated attribute is dropped.
            if code == attr::MP_REACH_NLRI || code == attr::MP_UNREACH_NLRI {
                return Err(update_err(
                    notify::MALFORMED_ATTRIBUTE_LIST,
                    Vec::new(),
                    "MP_REACH_NLRI or MP_UNREACH_NLRI appears twice",
                    "RFC 7606 §3 (g)",
                ));
            }
            st.discard(code, Kind::Duplicate, "RFC 7606 §3 (g)");
            continue;
        }
        decode_attribute(flags, code, value, raw, ctx, st)?;
    }
    Ok(())
}

pub(super) fn decode_attribute(
    flags: u8,
    code: u8,
    value: &[u8],
    raw: &[u8],
    ctx: &CodecContext,
    st: &mut State,
) -> Result<(), DecodeError> {
    let Some(expected) = expected_flags(code) else {
        if flags & FLAG_OPTIONAL == 0 {
            // RFC 4271 §6.3 (unchanged by RFC 7606): an unrecognised
            // well-known attribute resets the session.
            return Err(update_err(
                notify::UNRECOGNIZED_WELL_KNOWN,
                raw.to_vec(),
                "unrecognized well-known attribute",
                "RFC 4271 §6.3",
            ));
        }
        // RFC 4271 §5: unrecognised optional attributes are kept as they
        // came; transitive ones are passed on with the Partial bit.
        st.attrs.unknown.push(RawAttribute {
            flags,
            type_code: code,
            value: value.to_vec(),
        });
        return Ok(());
    };
    let flags_ok = flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE) == expected;
    if !flags_ok && code != attr::MP_REACH_NLRI && code != attr::MP_UNREACH_NLRI {
        // RFC 7606 §3 (c): wrong Optional/Transitive bits make the attribute
        // malformed, treat-as-withdraw.
        st.withdraw(code, Kind::Flags, "RFC 7606 §3 (c)");
        return Ok(());
    }
    let a = &mut st.attrs;
    match code {
        attr::ORIGIN => match value {
            [0] => a.origin = Some(Origin::Igp),
            [1] => a.origin = Some(Origin::Egp),
            [2] => a.origin = Some(Origin::Incomplete),
            [_] => st.withdraw(code, Kind::Value, "RFC 7606 §7.1"),
            _ => st.withdraw(code, Kind::Length, "RFC 7606 §7.1"),
        },
        attr::AS_PATH => match aspath::parse(value, ctx.four_octet_as) {
            Ok(p) => a.as_path = Some(p),
            Err(_) => st.withdraw(code, Kind::Value, "RFC 7606 §7.2"),
        },
        attr::NEXT_HOP => match <[u8; 4]>::try_from(value) {
            Ok(b) => a.next_hop = Some(Ipv4Addr::from(b)),
            Err(_) => st.withdraw(code, Kind::Length, "RFC 7606 §7.3"),
        },
        attr::MULTI_EXIT_DISC => match be32(value) {
            Some(v) => a.med = Some(v),
            None => st.withdraw(code, Kind::Length, "RFC 7606 §7.4"),
        },
        attr::LOCAL_PREF => match be32(value) {
            Some(v) => a.local_pref = Some(v),
            None => st.withdraw(code, Kind::Length, "RFC 7606 §7.5"),
        },
        attr::ATOMIC_AGGREGATE => {
            if value.is_empty() {
                a.atomic_aggregate = true;
            } else {
                st.discard(code, Kind::Length, "RFC 7606 §7.6");
            }
        }
        attr::AGGREGATOR => {
            let parsed = match (ctx.four_octet_as, value.len()) {
                (true, 8) => parse_aggregator(value, 4),
                (false, 6) => parse_aggregator(value, 2),
                _ => None,
            };
            match parsed {
                Some(agg) => a.aggregator = Some(agg),
                None => st.discard(code, Kind::Length, "RFC 7606 §7.7"),
            }
        }
        attr::COMMUNITIES => {
            if value.is_empty() || !value.len().is_multiple_of(4) {
                st.withdraw(code, Kind::Length, "RFC 7606 §7.8");
            } else {
                a.communities = value
                    .chunks_exact(4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
            }
        }
        attr::ORIGINATOR_ID => match <[u8; 4]>::try_from(value) {
            Ok(b) => a.originator_id = Some(Ipv4Addr::from(b)),
            Err(_) => st.withdraw(code, Kind::Length, "RFC 7606 §7.9"),
        },
        attr::CLUSTER_LIST => {
            if value.is_empty() || !value.len().is_multiple_of(4) {
                st.withdraw(code, Kind::Length, "RFC 7606 §7.10");
            } else {
                a.cluster_list = value
                    .chunks_exact(4)
                    .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                    .collect();
            }
        }
        attr::MP_REACH_NLRI | attr::MP_UNREACH_NLRI => {
            // A family we do not route is kept as an unknown attribute.
            let known = if code == attr::MP_REACH_NLRI {
                decode_mp_reach(value, raw, ctx)?.map(|m| a.mp_reach = Some(m))
            } else {
                decode_mp_unreach(value, raw)?.map(|m| a.mp_unreach = Some(m))
            };
            if known.is_none() {
                a.unknown.push(RawAttribute {
                    flags,
                    type_code: code,
                    value: value.to_vec(),
                });
            }
            if !flags_ok {
                st.withdraw(code, Kind::Flags, "RFC 7606 §3 (c)");
            }
        }
        attr::EXTENDED_COMMUNITIES => {
            if value.is_empty() || !value.len().is_multiple_of(8) {
                st.withdraw(code, Kind::Length, "RFC 7606 §7.14");
            } else {
                a.extended_communities = value
                    .chunks_exact(8)
                    .map(|c| {
                        let mut v = [0u8; 8];
                        v.copy_from_slice(c);
                        v
                    })
                    .collect();
            }
        }
        attr::AS4_PATH => {
            if ctx.four_octet_as {
                // RFC 6793 §4.1: a NEW speaker never sends AS4_PATH to a NEW
                // speaker; one received is discarded.
                st.discard(code, Kind::NotExpected, "RFC 6793 §4.1");
            } else {
                match aspath::parse(value, true) {
                    Ok(p) => a.as4_path = Some(p),
                    // RFC 6793 §6: a malformed AS4_PATH is discarded.
                    Err(_) => st.discard(code, Kind::Value, "RFC 6793 §6"),
                }
            }
        }
        attr::AS4_AGGREGATOR => {
            if ctx.four_octet_as {
                st.discard(code, Kind::NotExpected, "RFC 6793 §4.1");
            } else {
                match (value.len() == 8)
                    .then(|| parse_aggregator(value, 4))
                    .flatten()
                {
                    Some(agg) => a.as4_aggregator = Some(agg),
                    None => st.discard(code, Kind::Length, "RFC 6793 §6"),
                }
            }
        }
        attr::LARGE_COMMUNITIES => {
            if value.is_empty() || !value.len().is_multiple_of(12) {
                st.withdraw(code, Kind::Length, "RFC 8092 §6");
            } else {
                a.large_communities = value
                    .chunks_exact(12)
                    .map(|c| LargeCommunity {
                        global_admin: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                        local_data_1: u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                        local_data_2: u32::from_be_bytes([c[8], c[9], c[10], c[11]]),
                    })
                    .collect();
            }
        }
        _ => {}
    }
    Ok(())
}

pub(super) fn parse_aggregator(value: &[u8], width: usize) -> Option<Aggregator> {
    let (asn, addr) = value.split_at_checked(width)?;
    let asn = if width == 4 {
        be32(asn)?
    } else {
        be16(asn, 0)? as u32
    };
    Some(Aggregator {
        asn,
        address: Ipv4Addr::from(<[u8; 4]>::try_from(addr).ok()?),
    })
}

/// RFC 4760 §7 / RFC 7606 §7.11: an MP_REACH_NLRI that cannot be parsed
/// resets the session (or disables the family) with UPDATE Message Error /
/// Optional Attribute Error and the attribute as data.
pub(super) fn mp_err(
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

pub(super) fn ipv6_at(b: &[u8], at: usize) -> Option<Ipv6Addr> {
    let bytes: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(bytes))
}

/// `Ok(None)` for an AFI/SAFI this codec does not carry: the attribute is
/// kept raw, the speaker ignores a family it did not negotiate.
pub(super) fn decode_mp_reach(
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
    let next_hop = match (family, nh_len) {
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
    };
    let Some(next_hop) = next_hop else {
        return Err(mp_err(
            raw,
            Some(family),
            "MP_REACH_NLRI next hop length unexpected for the family and negotiated capabilities",
            "RFC 7606 §7.11, RFC 8950 §4",
        ));
    };
    let nlri = match family {
        Family::Ipv4Unicast => nlri::parse_v4_ipnet(nlri_bytes),
        Family::Ipv6Unicast => nlri::parse_v6_ipnet(nlri_bytes),
    }
    .map_err(|_| {
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

pub(super) fn decode_mp_unreach(
    value: &[u8],
    raw: &[u8],
) -> Result<Option<MpUnreach>, DecodeError> {
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
    let withdrawn = match family {
        Family::Ipv4Unicast => nlri::parse_v4_ipnet(rest),
        Family::Ipv6Unicast => nlri::parse_v6_ipnet(rest),
    }
    .map_err(|_| {
        mp_err(
            raw,
            Some(family),
            "MP_UNREACH_NLRI prefixes cannot be parsed",
            "RFC 7606 §5.3, §7.12",
        )
    })?;
    Ok(Some(MpUnreach { family, withdrawn }))
}
