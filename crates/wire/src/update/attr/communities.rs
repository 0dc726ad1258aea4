//! The community attributes, all optional transitive lists of fixed-size
//! entries: COMMUNITIES (RFC 1997, 4 octets each), EXTENDED_COMMUNITIES
//! (RFC 4360, 8 octets) and LARGE_COMMUNITY (RFC 8092, 12 octets).

use crate::error::{AttributeErrorKind as Kind, EncodeError};
use crate::types::LargeCommunity;

use super::{header, Malformed, COMMUNITIES, EXTENDED_COMMUNITIES, LARGE_COMMUNITIES, OPT_TRANS};

pub(super) const FLAGS: u8 = OPT_TRANS;

/// The value split into `size`-octet entries, or treat-as-withdraw under
/// `rule` when it is empty or not a multiple of `size` (RFC 7606 §7.8,
/// §7.14, RFC 8092 §6 all say so).
#[inline]
fn entries<'a>(
    value: &'a [u8],
    size: usize,
    rule: &'static str,
) -> Result<std::slice::ChunksExact<'a, u8>, Malformed> {
    if value.is_empty() || !value.len().is_multiple_of(size) {
        return Err(Malformed::withdraw(Kind::Length, rule));
    }
    Ok(value.chunks_exact(size))
}

/// RFC 7606 §7.8.
#[inline]
pub(super) fn decode_standard(value: &[u8]) -> Result<Vec<u32>, Malformed> {
    Ok(entries(value, 4, "RFC 7606 §7.8")?
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// RFC 7606 §7.14.
#[inline]
pub(super) fn decode_extended(value: &[u8]) -> Result<Vec<[u8; 8]>, Malformed> {
    Ok(entries(value, 8, "RFC 7606 §7.14")?
        .map(|c| {
            let mut v = [0u8; 8];
            v.copy_from_slice(c);
            v
        })
        .collect())
}

/// RFC 8092 §6.
#[inline]
pub(super) fn decode_large(value: &[u8]) -> Result<Vec<LargeCommunity>, Malformed> {
    Ok(entries(value, 12, "RFC 8092 §6")?
        .map(|c| LargeCommunity {
            global_admin: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
            local_data_1: u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
            local_data_2: u32::from_be_bytes([c[8], c[9], c[10], c[11]]),
        })
        .collect())
}

/// An empty list is never written: it would be malformed.
#[inline(always)]
pub(super) fn put_standard(out: &mut Vec<u8>, list: &[u32]) -> Result<(), EncodeError> {
    if list.is_empty() {
        return Ok(());
    }
    let at = header::begin(out);
    for c in list {
        out.extend_from_slice(&c.to_be_bytes());
    }
    header::end(out, at, FLAGS, COMMUNITIES, false)
}

#[inline(always)]
pub(super) fn put_extended(out: &mut Vec<u8>, list: &[[u8; 8]]) -> Result<(), EncodeError> {
    if list.is_empty() {
        return Ok(());
    }
    let at = header::begin(out);
    for c in list {
        out.extend_from_slice(c);
    }
    header::end(out, at, FLAGS, EXTENDED_COMMUNITIES, false)
}

#[inline(always)]
pub(super) fn put_large(out: &mut Vec<u8>, list: &[LargeCommunity]) -> Result<(), EncodeError> {
    if list.is_empty() {
        return Ok(());
    }
    let at = header::begin(out);
    for c in list {
        out.extend_from_slice(&c.global_admin.to_be_bytes());
        out.extend_from_slice(&c.local_data_1.to_be_bytes());
        out.extend_from_slice(&c.local_data_2.to_be_bytes());
    }
    header::end(out, at, FLAGS, LARGE_COMMUNITIES, false)
}

#[cfg(test)]
mod tests {
    use crate::update::tests::*;

    #[test]
    fn rfc7606_7_8_communities() {
        assert_eq!(
            taw(&with_extra(&[0xc0, 8, 3, 0, 0, 1]), &EXT).rule,
            "RFC 7606 §7.8"
        );
        assert_eq!(taw(&with_extra(&[0xc0, 8, 0]), &EXT).rule, "RFC 7606 §7.8");
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
}
