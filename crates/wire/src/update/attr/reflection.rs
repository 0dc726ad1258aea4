//! Route reflection (RFC 4456 §8): ORIGINATOR_ID and CLUSTER_LIST, both
//! optional non-transitive.

use std::net::Ipv4Addr;

use crate::error::{AttributeErrorKind as Kind, EncodeError};

use super::{header, Malformed, CLUSTER_LIST, OPT_NON_TRANS, ORIGINATOR_ID};

pub(super) const FLAGS: u8 = OPT_NON_TRANS;

/// RFC 7606 §7.9: a length other than 4 is treat-as-withdraw.
#[inline]
pub(super) fn decode_originator_id(value: &[u8]) -> Result<Ipv4Addr, Malformed> {
    <[u8; 4]>::try_from(value)
        .map(Ipv4Addr::from)
        .map_err(|_| Malformed::withdraw(Kind::Length, "RFC 7606 §7.9"))
}

/// RFC 7606 §7.10: a length of zero or not a multiple of 4 is
/// treat-as-withdraw.
#[inline]
pub(super) fn decode_cluster_list(value: &[u8]) -> Result<Vec<Ipv4Addr>, Malformed> {
    if value.is_empty() || !value.len().is_multiple_of(4) {
        return Err(Malformed::withdraw(Kind::Length, "RFC 7606 §7.10"));
    }
    Ok(value
        .chunks_exact(4)
        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
        .collect())
}

#[inline(always)]
pub(super) fn put_originator_id(
    out: &mut Vec<u8>,
    id: Option<Ipv4Addr>,
) -> Result<(), EncodeError> {
    match id {
        Some(id) => header::put_simple(out, FLAGS, ORIGINATOR_ID, &id.octets()),
        None => Ok(()),
    }
}

/// An empty list is not written: it would be malformed (RFC 7606 §7.10).
#[inline(always)]
pub(super) fn put_cluster_list(out: &mut Vec<u8>, list: &[Ipv4Addr]) -> Result<(), EncodeError> {
    if list.is_empty() {
        return Ok(());
    }
    let at = header::begin(out);
    for c in list {
        out.extend_from_slice(&c.octets());
    }
    header::end(out, at, FLAGS, CLUSTER_LIST, false)
}

#[cfg(test)]
mod tests {
    use crate::update::tests::*;

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
}
