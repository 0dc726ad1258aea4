//! Encoding an UPDATE: the two prefix lists around the attributes, which
//! `attr` writes.

use super::attr::{put_mp_reach, put_mp_unreach, put_plain_attrs};
use super::*;
use crate::error::EncodeError;
use crate::nlri;
use crate::CodecContext;

/// Encodes an UPDATE body (after the header).
pub(crate) fn encode_update(
    u: &Update,
    ctx: &CodecContext,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let wpos = out.len();
    out.extend_from_slice(&[0, 0]);
    for n in &u.withdrawn {
        nlri::put_v4(out, n);
    }
    patch_len16(out, wpos, "withdrawn routes")?;
    let apos = out.len();
    out.extend_from_slice(&[0, 0]);
    // RFC 7606 §5.1: MP_REACH_NLRI / MP_UNREACH_NLRI go first.
    if let Some(m) = &u.attributes.mp_reach {
        put_mp_reach(out, m, ctx)?;
    }
    if let Some(m) = &u.attributes.mp_unreach {
        put_mp_unreach(out, m)?;
    }
    put_plain_attrs(out, &u.attributes, None, ctx)?;
    patch_len16(out, apos, "path attributes")?;
    for n in &u.nlri {
        nlri::put_v4(out, n);
    }
    Ok(())
}

/// Writes the length of the field that starts after the 2 bytes at `pos`.
pub(crate) fn patch_len16(
    out: &mut [u8],
    pos: usize,
    what: &'static str,
) -> Result<(), EncodeError> {
    let len = out.len().saturating_sub(pos + 2);
    let v = u16::try_from(len).map_err(|_| EncodeError::FieldTooLong { what, length: len })?;
    if let Some(f) = out.get_mut(pos..pos + 2) {
        f.copy_from_slice(&v.to_be_bytes());
    }
    Ok(())
}
