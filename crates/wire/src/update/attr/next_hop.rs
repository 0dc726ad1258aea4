//! NEXT_HOP (RFC 4271 §4.3, §5.1.3): well-known, an IPv4 address; needed
//! only with classic NLRI (RFC 4760 §3). Next hops in MP_REACH_NLRI are in
//! `mp.rs`.

use std::net::Ipv4Addr;

use crate::error::{AttributeErrorKind as Kind, EncodeError};

use super::{header, Malformed, NEXT_HOP, WELL_KNOWN};

pub(super) const FLAGS: u8 = WELL_KNOWN;

/// RFC 7606 §7.3: a length other than 4 is treat-as-withdraw.
#[inline]
pub(super) fn decode(value: &[u8]) -> Result<Ipv4Addr, Malformed> {
    <[u8; 4]>::try_from(value)
        .map(Ipv4Addr::from)
        .map_err(|_| Malformed::withdraw(Kind::Length, "RFC 7606 §7.3"))
}

#[inline(always)]
pub(super) fn put(out: &mut Vec<u8>, next_hop: Option<Ipv4Addr>) -> Result<(), EncodeError> {
    match next_hop {
        Some(nh) => header::put_simple(out, FLAGS, NEXT_HOP, &nh.octets()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::update::tests::*;

    #[test]
    fn rfc7606_7_3_next_hop() {
        let b = upd(
            &[ORIGIN_IGP, AS_PATH_65001_4, &[0x40, 3, 5, 1, 2, 3, 4, 5]],
            NLRI_10_1_2,
        );
        assert_eq!(taw(&b, &EXT).rule, "RFC 7606 §7.3");
    }
}
