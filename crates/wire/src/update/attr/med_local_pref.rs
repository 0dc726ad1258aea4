//! MULTI_EXIT_DISC (RFC 4271 §5.1.4, optional non-transitive) and
//! LOCAL_PREF (RFC 4271 §5.1.5, well-known): each a 4-octet number.

use crate::error::{AttributeErrorKind as Kind, EncodeError};
use crate::update::decode::be32;

use super::{header, Malformed, LOCAL_PREF, MULTI_EXIT_DISC, OPT_NON_TRANS, WELL_KNOWN};

pub(super) const MED_FLAGS: u8 = OPT_NON_TRANS;
pub(super) const LOCAL_PREF_FLAGS: u8 = WELL_KNOWN;

/// RFC 7606 §7.4: a length other than 4 is treat-as-withdraw.
#[inline]
pub(super) fn decode_med(value: &[u8]) -> Result<u32, Malformed> {
    be32(value).ok_or(Malformed::withdraw(Kind::Length, "RFC 7606 §7.4"))
}

/// RFC 7606 §7.5: a length other than 4 is treat-as-withdraw.
#[inline]
pub(super) fn decode_local_pref(value: &[u8]) -> Result<u32, Malformed> {
    be32(value).ok_or(Malformed::withdraw(Kind::Length, "RFC 7606 §7.5"))
}

#[inline(always)]
pub(super) fn put_med(out: &mut Vec<u8>, med: Option<u32>) -> Result<(), EncodeError> {
    match med {
        Some(v) => header::put_simple(out, MED_FLAGS, MULTI_EXIT_DISC, &v.to_be_bytes()),
        None => Ok(()),
    }
}

#[inline(always)]
pub(super) fn put_local_pref(out: &mut Vec<u8>, pref: Option<u32>) -> Result<(), EncodeError> {
    match pref {
        Some(v) => header::put_simple(out, LOCAL_PREF_FLAGS, LOCAL_PREF, &v.to_be_bytes()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::update::tests::*;

    #[test]
    fn rfc7606_7_4_med() {
        assert_eq!(
            taw(&with_extra(&[0x80, 4, 3, 0, 0, 1]), &EXT).rule,
            "RFC 7606 §7.4"
        );
    }

    #[test]
    fn rfc7606_7_5_local_pref() {
        assert_eq!(
            taw(&with_extra(&[0x40, 5, 2, 0, 1]), &EXT).rule,
            "RFC 7606 §7.5"
        );
    }
}
