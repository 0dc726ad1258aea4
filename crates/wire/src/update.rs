//! UPDATE messages (RFC 4271 §4.3) with multiprotocol attributes
//! (RFC 4760), RFC 8950 next hops and RFC 7606 error handling.
//!
//! Decoding is a hand-written walk over the slice: it is the hot path
//! (millions of prefixes per second), allocates one `Vec` per NLRI list and
//! per list-valued attribute, and checks every length before reading.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::aspath;
use crate::error::{
    notify, AttributeError, AttributeErrorKind as Kind, DecodeError, EncodeError, ErrorAction,
};
use crate::nlri;
use crate::types::*;
use crate::CodecContext;

/// Attribute flag bits (RFC 4271 §4.3).
pub const FLAG_OPTIONAL: u8 = 0x80;
pub const FLAG_TRANSITIVE: u8 = 0x40;
pub const FLAG_PARTIAL: u8 = 0x20;
pub const FLAG_EXTENDED_LENGTH: u8 = 0x10;

/// Attribute type codes.
pub mod attr {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const LARGE_COMMUNITIES: u8 = 32;
}

/// The Optional and Transitive bits each known attribute must carry
/// (RFC 4271 §5, RFC 4760 §3-4, RFC 1997, RFC 4360, RFC 6793, RFC 8092,
/// RFC 4456). `None` for attributes this codec does not interpret.
fn expected_flags(code: u8) -> Option<u8> {
    use attr::*;
    const WELL_KNOWN: u8 = FLAG_TRANSITIVE;
    const OPT_TRANS: u8 = FLAG_OPTIONAL | FLAG_TRANSITIVE;
    const OPT_NON_TRANS: u8 = FLAG_OPTIONAL;
    match code {
        ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE => Some(WELL_KNOWN),
        MULTI_EXIT_DISC | ORIGINATOR_ID | CLUSTER_LIST | MP_REACH_NLRI | MP_UNREACH_NLRI => {
            Some(OPT_NON_TRANS)
        }
        AGGREGATOR | COMMUNITIES | EXTENDED_COMMUNITIES | AS4_PATH | AS4_AGGREGATOR
        | LARGE_COMMUNITIES => Some(OPT_TRANS),
        _ => None,
    }
}

/// A decoded message with the RFC 7606 outcomes that did not reset the
/// session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub message: Message,
    /// RFC 7606 treat-as-withdraw: every prefix in this UPDATE (classic
    /// NLRI and MP_REACH NLRI) must be handled as withdrawn.
    pub treat_as_withdraw: Option<AttributeError>,
    /// RFC 7606 attribute-discard: attributes dropped from the message.
    pub discarded: Vec<AttributeError>,
}

impl Decoded {
    /// The strongest RFC 7606 action this message asks for (RFC 7606 §3
    /// (h)), `None` when it decoded cleanly.
    pub fn action(&self) -> Option<ErrorAction> {
        if self.treat_as_withdraw.is_some() {
            Some(ErrorAction::TreatAsWithdraw)
        } else if !self.discarded.is_empty() {
            Some(ErrorAction::AttributeDiscard)
        } else {
            None
        }
    }
}

fn update_err(subcode: u8, data: Vec<u8>, reason: &'static str, rule: &'static str) -> DecodeError {
    DecodeError::Update {
        subcode,
        data,
        reason,
        rule,
        family: None,
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

struct State {
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

fn decode_attributes(
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

fn decode_attribute(
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

fn parse_aggregator(value: &[u8], width: usize) -> Option<Aggregator> {
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

fn ipv6_at(b: &[u8], at: usize) -> Option<Ipv6Addr> {
    let bytes: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(bytes))
}

/// `Ok(None)` for an AFI/SAFI this codec does not carry: the attribute is
/// kept raw, the speaker ignores a family it did not negotiate.
fn decode_mp_reach(
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

fn decode_mp_unreach(value: &[u8], raw: &[u8]) -> Result<Option<MpUnreach>, DecodeError> {
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

// ---------------------------------------------------------------- encoding

/// Whether MP_REACH_NLRI / MP_UNREACH_NLRI are always written with a
/// 2-octet length, as BIRD and FRR do, so their size can grow while
/// prefixes are packed without moving bytes.
const MP_ALWAYS_EXTENDED: bool = true;

/// Starts an attribute: reserves a 4-byte (extended) header.
fn begin_attr(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    at
}

/// Finishes an attribute started at `at`: writes its header, using the
/// 1-octet length form unless the value needs 2 octets or `force_ext`.
fn end_attr(
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

fn put_simple(out: &mut Vec<u8>, flags: u8, code: u8, value: &[u8]) -> Result<(), EncodeError> {
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
fn put_unknown(out: &mut Vec<u8>, u: &RawAttribute) -> Result<(), EncodeError> {
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

/// RFC 4724 §2: End-of-RIB is an UPDATE with nothing in it for IPv4
/// unicast, or one holding only an empty MP_UNREACH_NLRI for other families.
pub fn is_end_of_rib(update: &Update) -> Option<Family> {
    if !update.withdrawn.is_empty() || !update.nlri.is_empty() {
        return None;
    }
    let a = &update.attributes;
    match &a.mp_unreach {
        None if *a == PathAttributes::default() => Some(Family::Ipv4Unicast),
        Some(m) if m.withdrawn.is_empty() => {
            let only = PathAttributes {
                mp_unreach: Some(m.clone()),
                ..PathAttributes::default()
            };
            (*a == only).then_some(m.family)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
