//! Decoding an UPDATE: a hand-written walk over the slice, every length
//! checked before it is read, RFC 7606 outcomes per attribute.

use super::attr::Malformed;
use super::*;
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

/// What decoding an UPDATE's attributes has found so far.
pub(super) struct State {
    pub(super) attrs: PathAttributes,
    /// The first treat-as-withdraw error; any one makes every prefix of
    /// the UPDATE withdrawn (RFC 7606 §2, §3 (h)).
    withdraw: Option<AttributeError>,
    discarded: Vec<AttributeError>,
    /// One bit per type code: seen in this UPDATE.
    seen: [u64; 4],
}

impl State {
    /// Records a malformed attribute handled without a session reset.
    #[inline]
    pub(super) fn note(&mut self, type_code: u8, m: Malformed) {
        match m.action {
            ErrorAction::TreatAsWithdraw => self.withdraw(type_code, m.kind, m.rule),
            _ => self.discard(type_code, m.kind, m.rule),
        }
    }
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
        attr::decode(flags, code, value, raw, ctx, st)?;
    }
    Ok(())
}
