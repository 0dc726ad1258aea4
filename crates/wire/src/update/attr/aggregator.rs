//! Aggregation: ATOMIC_AGGREGATE (RFC 4271 §5.1.6, well-known, empty),
//! AGGREGATOR (RFC 4271 §5.1.7, optional transitive) and AS4_AGGREGATOR
//! (RFC 6793, optional transitive).

use std::net::Ipv4Addr;

use crate::aspath;
use crate::error::{AttributeErrorKind as Kind, EncodeError};
use crate::types::{Aggregator, PathAttributes};
use crate::update::decode::{be16, be32};
use crate::CodecContext;

use super::{
    header, Malformed, AGGREGATOR, AS4_AGGREGATOR, ATOMIC_AGGREGATE, OPT_TRANS, WELL_KNOWN,
};

pub(super) const ATOMIC_FLAGS: u8 = WELL_KNOWN;
pub(super) const FLAGS: u8 = OPT_TRANS;
pub(super) const AS4_FLAGS: u8 = OPT_TRANS;

/// RFC 7606 §7.6: a length other than 0 is attribute-discard.
#[inline]
pub(super) fn decode_atomic(value: &[u8]) -> Result<bool, Malformed> {
    if value.is_empty() {
        Ok(true)
    } else {
        Err(Malformed::discard(Kind::Length, "RFC 7606 §7.6"))
    }
}

/// An ASN of `width` octets, then an IPv4 address.
#[inline]
fn parse(value: &[u8], width: usize) -> Option<Aggregator> {
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

/// 8 octets on a 4-octet-AS session, 6 otherwise; RFC 7606 §7.7: any
/// other length is attribute-discard.
#[inline]
pub(super) fn decode(value: &[u8], ctx: &CodecContext) -> Result<Aggregator, Malformed> {
    let parsed = match (ctx.four_octet_as, value.len()) {
        (true, 8) => parse(value, 4),
        (false, 6) => parse(value, 2),
        _ => None,
    };
    parsed.ok_or(Malformed::discard(Kind::Length, "RFC 7606 §7.7"))
}

/// RFC 6793 §4.1: discarded on a 4-octet session, which never gets one;
/// RFC 6793 §6: discarded when it is not 8 octets.
#[inline]
pub(super) fn decode_as4(value: &[u8], ctx: &CodecContext) -> Result<Aggregator, Malformed> {
    if ctx.four_octet_as {
        return Err(Malformed::discard(Kind::NotExpected, "RFC 6793 §4.1"));
    }
    (value.len() == 8)
        .then(|| parse(value, 4))
        .flatten()
        .ok_or(Malformed::discard(Kind::Length, "RFC 6793 §6"))
}

#[inline(always)]
pub(super) fn put_atomic(out: &mut Vec<u8>, atomic: bool) -> Result<(), EncodeError> {
    if !atomic {
        return Ok(());
    }
    header::put_simple(out, ATOMIC_FLAGS, ATOMIC_AGGREGATE, &[])
}

/// Towards a 2-octet peer a 4-octet ASN is written as AS_TRANS
/// (RFC 6793 §4.2.2), the real one going in AS4_AGGREGATOR.
#[inline(always)]
pub(super) fn put(
    out: &mut Vec<u8>,
    agg: Option<&Aggregator>,
    four: bool,
) -> Result<(), EncodeError> {
    let Some(agg) = agg else {
        return Ok(());
    };
    let at = header::begin(out);
    if four {
        out.extend_from_slice(&agg.asn.to_be_bytes());
    } else {
        out.extend_from_slice(&aspath::as2(agg.asn).to_be_bytes());
    }
    out.extend_from_slice(&agg.address.octets());
    header::end(out, at, FLAGS, AGGREGATOR, false)
}

/// RFC 6793 §4.2.2: towards a 2-octet peer, the AS4_AGGREGATOR given or,
/// when the AGGREGATOR's ASN needs 4 octets, one made from it; towards a
/// 4-octet peer never (RFC 6793 §4.1).
#[inline(always)]
pub(super) fn put_as4(
    out: &mut Vec<u8>,
    a: &PathAttributes,
    four: bool,
) -> Result<(), EncodeError> {
    if four {
        return Ok(());
    }
    let agg = a
        .as4_aggregator
        .or(a.aggregator.filter(|g| g.asn > u16::MAX as u32));
    let Some(agg) = agg else {
        return Ok(());
    };
    let at = header::begin(out);
    out.extend_from_slice(&agg.asn.to_be_bytes());
    out.extend_from_slice(&agg.address.octets());
    header::end(out, at, AS4_FLAGS, AS4_AGGREGATOR, false)
}

#[cfg(test)]
mod tests {
    use crate::update::tests::*;

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
}
