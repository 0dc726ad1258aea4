//! ORIGIN (RFC 4271 §4.3, §5.1.1): well-known mandatory, one octet.

use crate::error::{AttributeErrorKind as Kind, EncodeError};
use crate::types::Origin;

use super::{header, Malformed, ORIGIN, WELL_KNOWN};

pub(super) const FLAGS: u8 = WELL_KNOWN;

/// RFC 7606 §7.1: a length other than one, or a value other than IGP, EGP
/// or INCOMPLETE, is treat-as-withdraw.
#[inline]
pub(super) fn decode(value: &[u8]) -> Result<Origin, Malformed> {
    match value {
        [0] => Ok(Origin::Igp),
        [1] => Ok(Origin::Egp),
        [2] => Ok(Origin::Incomplete),
        [_] => Err(Malformed::withdraw(Kind::Value, "RFC 7606 §7.1")),
        _ => Err(Malformed::withdraw(Kind::Length, "RFC 7606 §7.1")),
    }
}

#[inline(always)]
pub(super) fn put(out: &mut Vec<u8>, origin: Option<Origin>) -> Result<(), EncodeError> {
    match origin {
        Some(o) => header::put_simple(out, FLAGS, ORIGIN, &[o as u8]),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::update::tests::*;

    #[test]
    fn rfc7606_7_1_origin() {
        assert_eq!(
            taw(
                &upd(
                    &[&[0x40, 1, 1, 3], AS_PATH_65001_4, NEXT_HOP_1],
                    NLRI_10_1_2
                ),
                &EXT
            )
            .rule,
            "RFC 7606 §7.1"
        );
        assert_eq!(
            taw(
                &upd(
                    &[&[0x40, 1, 2, 0, 0], AS_PATH_65001_4, NEXT_HOP_1],
                    NLRI_10_1_2
                ),
                &EXT
            )
            .kind,
            AttributeErrorKind::Length
        );
    }
}
