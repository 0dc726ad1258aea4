//! Outbound packing: many prefixes sharing one attribute set into as few
//! UPDATEs as the negotiated maximum size allows (RFC 4271 §4.3, §9.2;
//! RFC 8654 for 65535-byte messages).

use crate::error::EncodeError;
use crate::message::{finish_message, msg_type, put_header, CodecContext, HEADER_LEN};
use crate::nlri;
use crate::types::*;
use crate::update::{
    attr, check_next_hop, patch_len16, put_mp_reach_head, put_plain_attrs, FLAG_EXTENDED_LENGTH,
    FLAG_OPTIONAL,
};

/// Withdrawn Routes Length + Total Path Attribute Length.
const UPDATE_FIXED: usize = HEADER_LEN + 4;
/// Extended-length attribute header.
const ATTR_HDR_EXT: usize = 4;

/// Packs announcements sharing one attribute set into as few UPDATEs as
/// `ctx` allows (4096 or 65535 bytes), appended to `out` ready for the
/// socket.
///
/// IPv4 with `NextHop::V4` goes in the classic NLRI field with NEXT_HOP;
/// IPv4 with `NextHop::V6` goes in MP_REACH_NLRI (RFC 8950 §3), refused with
/// [`EncodeError::NoExtendedNextHop`] unless `ctx.extended_next_hop_ipv4`;
/// IPv6 goes in MP_REACH_NLRI (RFC 4760, RFC 2545). `attrs` must not hold
/// mp_reach/mp_unreach/next_hop: they are built here. Returns the number
/// of messages written. On error nothing is appended.
pub fn pack_announcements(
    attrs: &PathAttributes,
    next_hop: NextHop,
    ll_form: LinkLocalForm,
    prefixes: &[IpNet],
    ctx: &CodecContext,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    if attrs.mp_reach.is_some() || attrs.mp_unreach.is_some() || attrs.next_hop.is_some() {
        return Err(EncodeError::ReservedAttribute);
    }
    let start = out.len();
    let res = pack_announcements_inner(attrs, next_hop, ll_form, prefixes, ctx, out);
    if res.is_err() {
        out.truncate(start);
    }
    res
}

fn pack_announcements_inner(
    attrs: &PathAttributes,
    next_hop: NextHop,
    ll_form: LinkLocalForm,
    prefixes: &[IpNet],
    ctx: &CodecContext,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let has_v4 = prefixes.iter().any(|p| matches!(p, IpNet::V4(_)));
    let has_v6 = prefixes.iter().any(|p| matches!(p, IpNet::V6(_)));
    let mut written = 0;
    match next_hop {
        NextHop::V4(nh) => {
            if has_v6 {
                return Err(EncodeError::FamilyMismatch);
            }
            if has_v4 {
                let mut plain = Vec::new();
                put_plain_attrs(&mut plain, attrs, Some(nh), ctx)?;
                written += pack_classic(&plain, prefixes, ctx, out)?;
            }
        }
        NextHop::V6(v6) => {
            if v6.global.is_none() && v6.link_local.is_none() {
                return Err(EncodeError::EmptyNextHop);
            }
            let mp_nh = MpNextHop::from_ipv6(v6, ll_form);
            let mut plain = Vec::new();
            if has_v4 || has_v6 {
                put_plain_attrs(&mut plain, attrs, None, ctx)?;
            }
            if has_v4 {
                check_next_hop(Family::Ipv4Unicast, &mp_nh, ctx)?;
                written += pack_mp(
                    &plain,
                    Family::Ipv4Unicast,
                    Some(&mp_nh),
                    prefixes,
                    ctx,
                    out,
                )?;
            }
            if has_v6 {
                written += pack_mp(
                    &plain,
                    Family::Ipv6Unicast,
                    Some(&mp_nh),
                    prefixes,
                    ctx,
                    out,
                )?;
            }
        }
    }
    Ok(written)
}

/// Every message must have room for the longest prefix of the family, so
/// that each message carries at least one and packing always progresses.
fn room(fixed: usize, family: Family, max: usize) -> Result<(), EncodeError> {
    let longest = match family {
        Family::Ipv4Unicast => 5,
        Family::Ipv6Unicast => 17,
    };
    if fixed + longest > max {
        return Err(EncodeError::AttributesTooLarge { length: fixed, max });
    }
    Ok(())
}

/// Classic IPv4 UPDATEs: attributes (with NEXT_HOP) then NLRI.
fn pack_classic(
    plain: &[u8],
    prefixes: &[IpNet],
    ctx: &CodecContext,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let max = ctx.max_message_len();
    let mut iter = prefixes
        .iter()
        .filter_map(|p| match p {
            IpNet::V4(n) => Some(n),
            IpNet::V6(_) => None,
        })
        .peekable();
    let fixed = UPDATE_FIXED + plain.len();
    room(fixed, Family::Ipv4Unicast, max)?;
    let mut count = 0;
    while iter.peek().is_some() {
        let msg = out.len();
        put_header(out, msg_type::UPDATE);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(plain.len() as u16).to_be_bytes());
        out.extend_from_slice(plain);
        while let Some(n) =
            iter.next_if(|n| out.len() - msg + 1 + (n.prefix_len() as usize).div_ceil(8) <= max)
        {
            nlri::put_v4(out, n);
        }
        finish_message(out, msg, max)?;
        count += 1;
    }
    Ok(count)
}

/// MP_REACH (with `nh`) or MP_UNREACH (without) UPDATEs for one family:
/// the MP attribute first (RFC 7606 §5.1), then `plain`.
fn pack_mp(
    plain: &[u8],
    family: Family,
    nh: Option<&MpNextHop>,
    prefixes: &[IpNet],
    ctx: &CodecContext,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let max = ctx.max_message_len();
    let mut iter = prefixes
        .iter()
        .filter(|p| match family {
            Family::Ipv4Unicast => matches!(p, IpNet::V4(_)),
            Family::Ipv6Unicast => matches!(p, IpNet::V6(_)),
        })
        .peekable();
    let mp_head = 3 + nh.map_or(0, |n| 2 + n.wire_len());
    let fixed = UPDATE_FIXED + ATTR_HDR_EXT + mp_head + plain.len();
    room(fixed, family, max)?;
    let code = if nh.is_some() {
        attr::MP_REACH_NLRI
    } else {
        attr::MP_UNREACH_NLRI
    };
    let mut count = 0;
    while iter.peek().is_some() {
        let msg = out.len();
        put_header(out, msg_type::UPDATE);
        out.extend_from_slice(&[0, 0]);
        let apos = out.len();
        out.extend_from_slice(&[0, 0]);
        let mpos = out.len();
        out.extend_from_slice(&[FLAG_OPTIONAL | FLAG_EXTENDED_LENGTH, code, 0, 0]);
        match nh {
            Some(nh) => put_mp_reach_head(out, family, nh),
            None => {
                out.extend_from_slice(&family.afi().to_be_bytes());
                out.push(family.safi());
            }
        }
        let budget = max - plain.len();
        while let Some(p) = iter.next_if(|p| out.len() - msg + nlri::encoded_len(p) <= budget) {
            nlri::put(out, p);
        }
        patch_len16(out, mpos + 2, "MP attribute")?;
        out.extend_from_slice(plain);
        patch_len16(out, apos, "path attributes")?;
        finish_message(out, msg, max)?;
        count += 1;
    }
    Ok(count)
}

/// Withdrawals: IPv4 in the classic Withdrawn Routes field, IPv6 in
/// MP_UNREACH_NLRI (RFC 4760 §4). Returns the number of messages written.
pub fn pack_withdrawals(
    prefixes: &[IpNet],
    ctx: &CodecContext,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let max = ctx.max_message_len();
    let start = out.len();
    let mut count = 0;
    let mut v4 = prefixes
        .iter()
        .filter_map(|p| match p {
            IpNet::V4(n) => Some(n),
            IpNet::V6(_) => None,
        })
        .peekable();
    while v4.peek().is_some() {
        let msg = out.len();
        put_header(out, msg_type::UPDATE);
        out.extend_from_slice(&[0, 0]);
        // Room for the 2-byte Total Path Attribute Length after the list.
        while let Some(n) =
            v4.next_if(|n| out.len() - msg + 1 + (n.prefix_len() as usize).div_ceil(8) + 2 <= max)
        {
            nlri::put_v4(out, n);
        }
        if let Err(e) = patch_len16(out, msg + HEADER_LEN, "withdrawn routes") {
            out.truncate(start);
            return Err(e);
        }
        out.extend_from_slice(&[0, 0]);
        if let Err(e) = finish_message(out, msg, max) {
            out.truncate(start);
            return Err(e);
        }
        count += 1;
    }
    match pack_mp(&[], Family::Ipv6Unicast, None, prefixes, ctx, out) {
        Ok(n) => Ok(count + n),
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// End-of-RIB marker (RFC 4724 §2): an empty UPDATE for IPv4 unicast, an
/// UPDATE holding only an empty MP_UNREACH_NLRI otherwise (written with a
/// 1-octet length, as BIRD and FRR send it).
pub fn end_of_rib(family: Family, out: &mut Vec<u8>) {
    let msg = out.len();
    put_header(out, msg_type::UPDATE);
    match family {
        Family::Ipv4Unicast => out.extend_from_slice(&[0, 0, 0, 0]),
        Family::Ipv6Unicast => {
            out.extend_from_slice(&[0, 0, 0, 6, FLAG_OPTIONAL, attr::MP_UNREACH_NLRI, 3]);
            out.extend_from_slice(&family.afi().to_be_bytes());
            out.push(family.safi());
        }
    }
    // Cannot fail: at most 29 bytes.
    let _ = finish_message(out, msg, crate::message::MAX_MESSAGE_LEN);
}
