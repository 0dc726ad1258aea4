//! Writing an attribute's header (RFC 4271 §4.3): flags, type code and a
//! 1- or 2-octet length, the latter with the Extended Length bit.

use crate::error::EncodeError;
use crate::update::FLAG_EXTENDED_LENGTH;

/// Starts an attribute: reserves a 4-byte (extended) header.
#[inline]
pub(super) fn begin(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    at
}

/// Finishes an attribute started at `at`: writes its header, using the
/// 1-octet length form unless the value needs 2 octets or `force_ext`.
#[inline]
pub(super) fn end(
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

/// Writes a whole attribute whose value is at hand.
#[inline]
pub(super) fn put_simple(
    out: &mut Vec<u8>,
    flags: u8,
    code: u8,
    value: &[u8],
) -> Result<(), EncodeError> {
    let at = begin(out);
    out.extend_from_slice(value);
    end(out, at, flags, code, false)
}
