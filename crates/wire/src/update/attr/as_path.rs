//! AS_PATH (RFC 4271 §5.1.2, well-known mandatory) and AS4_PATH (RFC 6793,
//! optional transitive). The segments themselves are read and written by
//! `crate::aspath`.

use crate::aspath;
use crate::error::{AttributeErrorKind as Kind, EncodeError};
use crate::types::{AsPath, PathAttributes};
use crate::CodecContext;

use super::{header, Malformed, AS4_PATH, AS_PATH, OPT_TRANS, WELL_KNOWN};

pub(super) const FLAGS: u8 = WELL_KNOWN;
pub(super) const AS4_FLAGS: u8 = OPT_TRANS;

/// ASNs are 4 octets wide when the session negotiated RFC 6793, else 2.
/// RFC 7606 §7.2: segments that do not parse are treat-as-withdraw.
#[inline]
pub(super) fn decode(value: &[u8], ctx: &CodecContext) -> Result<AsPath, Malformed> {
    aspath::parse(value, ctx.four_octet_as)
        .map_err(|_| Malformed::withdraw(Kind::Value, "RFC 7606 §7.2"))
}

/// RFC 6793 §4.1: a NEW speaker never sends AS4_PATH to a NEW speaker, so
/// one received on a 4-octet session is discarded; RFC 6793 §6: so is a
/// malformed one.
#[inline]
pub(super) fn decode_as4(value: &[u8], ctx: &CodecContext) -> Result<AsPath, Malformed> {
    if ctx.four_octet_as {
        return Err(Malformed::discard(Kind::NotExpected, "RFC 6793 §4.1"));
    }
    aspath::parse(value, true).map_err(|_| Malformed::discard(Kind::Value, "RFC 6793 §6"))
}

#[inline(always)]
pub(super) fn put(out: &mut Vec<u8>, path: Option<&AsPath>, four: bool) -> Result<(), EncodeError> {
    let Some(p) = path else {
        return Ok(());
    };
    let at = header::begin(out);
    aspath::put(out, p, four);
    header::end(out, at, FLAGS, AS_PATH, false)
}

/// RFC 6793 §4.2.2: towards a 2-octet peer, AS4_PATH is the one given or,
/// when the AS_PATH holds a 4-octet ASN, generated from it; towards a
/// 4-octet peer it is never sent (RFC 6793 §4.1).
#[inline(always)]
pub(super) fn put_as4(
    out: &mut Vec<u8>,
    a: &PathAttributes,
    four: bool,
) -> Result<(), EncodeError> {
    if four {
        return Ok(());
    }
    let generated;
    let p = match (&a.as4_path, &a.as_path) {
        (Some(p), _) => p,
        (None, Some(p)) if aspath::needs_as4(p) => {
            generated = aspath::as4_path_for(p);
            &generated
        }
        _ => return Ok(()),
    };
    let at = header::begin(out);
    aspath::put(out, p, true);
    header::end(out, at, AS4_FLAGS, AS4_PATH, false)
}

#[cfg(test)]
mod tests {
    use crate::update::tests::*;

    #[test]
    fn as4_generated_for_two_octet_peers() {
        let mut a = base_attrs();
        a.as_path = Some(AsPath {
            segments: vec![AsSegment::Sequence(vec![200000, 65001])],
        });
        a.next_hop = Some("192.0.2.1".parse().unwrap());
        let u = Update {
            attributes: a,
            nlri: vec![v4("10.1.2.0/24")],
            ..Default::default()
        };
        let out = encode(&u, &OLD);
        let d = decode(&out, &OLD);
        let back = &update_of(&d).attributes;
        let t = AS_TRANS as u32;
        assert_eq!(
            back.as_path.as_ref().unwrap().segments,
            vec![AsSegment::Sequence(vec![t, 65001])]
        );
        let merged = crate::merge_as4_path(
            back.as_path.as_ref().unwrap(),
            back.as4_path.as_ref().unwrap(),
        );
        assert_eq!(
            merged.segments,
            vec![AsSegment::Sequence(vec![200000, 65001])]
        );
        // Between 4-octet speakers AS4_PATH is never sent.
        let mut with_as4 = u.clone();
        with_as4.attributes.as4_path = Some(AsPath::default());
        assert_eq!(encode(&with_as4, &EXT), encode(&u, &EXT));
    }

    #[test]
    fn rfc7606_7_2_as_path() {
        for bad in [
            &[0x40u8, 2, 2, 2, 0][..],
            &[0x40, 2, 4, 9, 1, 0, 1],
            &[0x40, 2, 3, 2, 1, 0],
        ] {
            let b = upd(&[ORIGIN_IGP, bad, NEXT_HOP_1], NLRI_10_1_2);
            assert_eq!(taw(&b, &OLD).rule, "RFC 7606 §7.2");
        }
        // A 4-octet path read by a 2-octet session does not parse either.
        let b = upd(
            &[
                ORIGIN_IGP,
                &[0x40, 2, 7, 2, 1, 0, 0, 0xfd, 0xe9, 0],
                NEXT_HOP_1,
            ],
            NLRI_10_1_2,
        );
        assert_eq!(taw(&b, &EXT).type_code, attr::AS_PATH);
    }

    #[test]
    fn rfc6793_as4_attributes_discard() {
        // Malformed AS4_PATH on a 2-octet session: discarded.
        let b = upd(
            &[
                ORIGIN_IGP,
                AS_PATH_65001_2,
                NEXT_HOP_1,
                &[0xc0, 17, 3, 2, 1, 0],
            ],
            NLRI_10_1_2,
        );
        let d = decode(&b, &OLD);
        assert_eq!(d.discarded[0].rule, "RFC 6793 §6");
        assert_eq!(d.treat_as_withdraw, None);
        // Any AS4_PATH between 4-octet speakers: discarded.
        let d = decode(&with_extra(&[0xc0, 17, 6, 2, 1, 0, 3, 0x0d, 0x40]), &EXT);
        assert_eq!(d.discarded[0].kind, AttributeErrorKind::NotExpected);
        assert_eq!(update_of(&d).attributes.as4_path, None);
        let d = decode(
            &upd(
                &[
                    ORIGIN_IGP,
                    AS_PATH_65001_2,
                    NEXT_HOP_1,
                    &[0xc0, 18, 6, 0, 0, 0, 0, 0, 0],
                ],
                NLRI_10_1_2,
            ),
            &OLD,
        );
        assert_eq!(d.discarded[0].type_code, attr::AS4_AGGREGATOR);
    }

    #[test]
    fn as_path_of_10000_asns_with_extended_messages() {
        let ctx = CodecContext {
            extended_message: true,
            ..EXT
        };
        let asns: Vec<u32> = (0..10_000).map(|i| 4_200_000_000 + i).collect();
        let u = Update {
            attributes: PathAttributes {
                as_path: Some(AsPath {
                    segments: vec![AsSegment::Sequence(asns.clone())],
                }),
                next_hop: Some("192.0.2.1".parse().unwrap()),
                ..base_attrs()
            },
            nlri: vec![v4("10.1.2.0/24")],
            ..Default::default()
        };
        let bytes = encode(&u, &ctx);
        assert!(bytes.len() > 40_000);
        // Too big without RFC 8654.
        let mut out = Vec::new();
        assert!(matches!(
            encode_message(&Message::Update(u.clone()), &EXT, &mut out),
            Err(EncodeError::MessageTooLong { .. })
        ));
        assert!(out.is_empty());
        let d = decode(&bytes, &ctx);
        let back = update_of(&d).attributes.as_path.clone().unwrap();
        assert_eq!(back.length(), 10_000);
        let flat: Vec<u32> = back
            .segments
            .iter()
            .flat_map(|s| match s {
                AsSegment::Sequence(v) => v.clone(),
                _ => panic!("not a sequence"),
            })
            .collect();
        assert_eq!(flat, asns);
        assert!(matches!(
            frame_length(&bytes, &EXT),
            Err(DecodeError::BadLength { .. })
        ));
    }
}
