//! Attributes this codec does not interpret (RFC 4271 §5, §6.3): kept as
//! they came and passed on.

use crate::error::{notify, DecodeError, EncodeError};
use crate::types::{PathAttributes, RawAttribute};
use crate::update::decode::update_err;
use crate::update::{FLAG_OPTIONAL, FLAG_PARTIAL, FLAG_TRANSITIVE};

use super::header;

/// An attribute of a type code this codec does not know.
///
/// RFC 4271 §6.3 (unchanged by RFC 7606): an unrecognised well-known
/// attribute resets the session, quoting it. RFC 4271 §5: an unrecognised
/// optional one is kept as it came; its value is not looked at, so a
/// garbled one cannot reset the session.
#[inline]
pub(super) fn decode(
    flags: u8,
    code: u8,
    value: &[u8],
    raw: &[u8],
    a: &mut PathAttributes,
) -> Result<(), DecodeError> {
    if flags & FLAG_OPTIONAL == 0 {
        return Err(update_err(
            notify::UNRECOGNIZED_WELL_KNOWN,
            raw.to_vec(),
            "unrecognized well-known attribute",
            "RFC 4271 §6.3",
        ));
    }
    keep(flags, code, value, a);
    Ok(())
}

/// Keeps an attribute raw, to be written back as it came.
#[inline]
pub(super) fn keep(flags: u8, code: u8, value: &[u8], a: &mut PathAttributes) {
    a.unknown.push(RawAttribute {
        flags,
        type_code: code,
        value: value.to_vec(),
    });
}

/// The kept attributes in ascending type order (RFC 4271 §5 SHOULD),
/// written among the known ones.
pub(super) struct Merge<'a> {
    sorted: Vec<&'a RawAttribute>,
    /// How many of `sorted` are written.
    done: usize,
}

impl<'a> Merge<'a> {
    #[inline]
    pub(super) fn new(unknown: &'a [RawAttribute]) -> Self {
        let mut sorted: Vec<&RawAttribute> = unknown.iter().collect();
        sorted.sort_by_key(|u| u.type_code);
        Merge { sorted, done: 0 }
    }

    /// Writes the kept attributes whose type code is below `code`. Most
    /// attribute sets have none: that check stays inline.
    #[inline(always)]
    pub(super) fn put_below(&mut self, out: &mut Vec<u8>, code: u8) -> Result<(), EncodeError> {
        match self.sorted.get(self.done) {
            Some(u) if u.type_code < code => self.put_while(out, |u| u.type_code < code),
            _ => Ok(()),
        }
    }

    /// Writes the kept attributes not written yet.
    #[inline]
    pub(super) fn put_rest(&mut self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.put_while(out, |_| true)
    }

    #[inline(never)]
    fn put_while(
        &mut self,
        out: &mut Vec<u8>,
        below: impl Fn(&RawAttribute) -> bool,
    ) -> Result<(), EncodeError> {
        while let Some(u) = self.sorted.get(self.done).filter(|u| below(u)) {
            put(out, u)?;
            self.done += 1;
        }
        Ok(())
    }
}

/// RFC 4271 §5: an unrecognised optional transitive attribute is passed on
/// with the Partial bit set; others are written as they came.
#[inline]
pub(super) fn put(out: &mut Vec<u8>, u: &RawAttribute) -> Result<(), EncodeError> {
    let mut flags = u.flags;
    if flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE) == FLAG_OPTIONAL | FLAG_TRANSITIVE {
        flags |= FLAG_PARTIAL;
    }
    let at = header::begin(out);
    out.extend_from_slice(&u.value);
    header::end(out, at, flags, u.type_code, false)
}

#[cfg(test)]
mod tests {
    use super::super::put_plain_attrs;
    use crate::update::tests::*;

    /// The type codes of the attributes written one after another in `b`.
    fn codes_of(mut b: &[u8]) -> Vec<u8> {
        let mut codes = Vec::new();
        while let [flags, code, rest @ ..] = b {
            let (len, hdr) = if flags & 0x10 != 0 {
                (u16::from_be_bytes([rest[0], rest[1]]) as usize, 4)
            } else {
                (rest[0] as usize, 3)
            };
            codes.push(*code);
            b = &b[hdr + len..];
        }
        codes
    }

    #[test]
    fn kept_attributes_are_merged_in_type_order() {
        // As received: out of order, one between the known ones (an
        // MP_REACH_NLRI of a family not carried, 14), one above all.
        let raw = |type_code, value: u8| RawAttribute {
            flags: 0x80,
            type_code,
            value: vec![value],
        };
        let a = PathAttributes {
            origin: Some(Origin::Igp),
            cluster_list: vec![Ipv4Addr::new(10, 0, 0, 3)],
            extended_communities: vec![[0, 2, 0, 1, 0, 0, 0, 7]],
            unknown: vec![raw(99, 1), raw(14, 2), raw(14, 3), raw(12, 4)],
            ..Default::default()
        };
        let mut out = Vec::new();
        put_plain_attrs(&mut out, &a, None, &EXT).unwrap();
        assert_eq!(codes_of(&out), vec![1, 10, 12, 14, 14, 16, 99]);
        // Equal type codes keep the order they came in.
        let at = out.windows(2).position(|w| w == [0x80, 14]).unwrap();
        assert_eq!((out[at + 3], out[at + 7]), (2, 3));
    }

    #[test]
    fn unknown_optional_transitive_gets_partial_bit() {
        let bytes = upd(
            &[
                ORIGIN_IGP,
                AS_PATH_65001_4,
                NEXT_HOP_1,
                &[0xc0, 99, 1, 7],
                &[0x80, 100, 1, 8],
            ],
            NLRI_10_1_2,
        );
        let d = decode(&bytes, &EXT);
        let out = encode(update_of(&d), &EXT);
        let expect = upd(
            &[
                ORIGIN_IGP,
                AS_PATH_65001_4,
                NEXT_HOP_1,
                &[0xe0, 99, 1, 7],
                &[0x80, 100, 1, 8],
            ],
            NLRI_10_1_2,
        );
        assert_eq!(out, expect);
    }

    #[test]
    fn rfc4271_6_3_unrecognized_well_known_resets() {
        let e = reset(&with_extra(&[0x40, 99, 1, 5]), &EXT);
        let n = e.notification();
        assert_eq!((n.code, n.subcode, n.data), (3, 2, vec![0x40, 99, 1, 5]));
    }

    #[test]
    fn malformed_attributes_we_do_not_parse_pass_untouched() {
        // Tunnel Encapsulation (23), OTC (35) and Prefix-SID (40) with garbage
        // values: the incidents of 2023 and 2025. They are not interpreted, so
        // they cannot reset the session; transitive ones travel on with the
        // Partial bit (RFC 4271 §5).
        let b = with_extra(&[
            0xc0, 23, 3, 0xff, 0xff, 0xff, 0xc0, 35, 1, 9, 0xc0, 40, 2, 0xde, 0xad,
        ]);
        let d = decode(&b, &EXT);
        assert_eq!(d.action(), None);
        let u = update_of(&d);
        assert_eq!(
            u.attributes
                .unknown
                .iter()
                .map(|a| a.type_code)
                .collect::<Vec<_>>(),
            vec![23, 35, 40]
        );
        let out = encode(u, &EXT);
        assert_eq!(
            out,
            with_extra(&[0xe0, 23, 3, 0xff, 0xff, 0xff, 0xe0, 35, 1, 9, 0xe0, 40, 2, 0xde, 0xad])
        );
    }
}
