//! Path attributes (RFC 4271 §4.3, §5): their type codes, the flags each
//! must carry, and the two dispatches by type code. Each attribute, or
//! small family of attributes, has a module holding its decoder (with the
//! RFC 7606 outcome of each way it can be malformed) beside its encoder.

use std::net::Ipv4Addr;

use super::decode::State;
use super::{FLAG_OPTIONAL, FLAG_TRANSITIVE};
use crate::error::{AttributeErrorKind as Kind, DecodeError, EncodeError, ErrorAction};
use crate::types::PathAttributes;
use crate::CodecContext;

// Release builds split modules across codegen units, so the small
// decoders and writers below are marked `#[inline]`: splitting attributes
// into modules costs no call per attribute on the hot paths
// (`benches/decode.rs`, and `crates/feeder/benches/encode.rs` for packing).
mod aggregator;
mod as_path;
mod communities;
mod header;
mod med_local_pref;
mod mp;
mod next_hop;
mod origin;
mod reflection;
mod unknown;

pub(crate) use mp::{check_next_hop, put_mp_reach, put_mp_reach_head, put_mp_unreach};

pub const ORIGIN: u8 = 1;
pub const AS_PATH: u8 = 2;
pub const NEXT_HOP: u8 = 3;
pub const MULTI_EXIT_DISC: u8 = 4;
pub const LOCAL_PREF: u8 = 5;
pub const ATOMIC_AGGREGATE: u8 = 6;
pub const AGGREGATOR: u8 = 7;
pub const COMMUNITIES: u8 = 8;
pub const ORIGINATOR_ID: u8 = 9;
pub const CLUSTER_LIST: u8 = 10;
pub const MP_REACH_NLRI: u8 = 14;
pub const MP_UNREACH_NLRI: u8 = 15;
pub const EXTENDED_COMMUNITIES: u8 = 16;
pub const AS4_PATH: u8 = 17;
pub const AS4_AGGREGATOR: u8 = 18;
pub const LARGE_COMMUNITIES: u8 = 32;

/// Optional and Transitive bits of a well-known attribute (RFC 4271 §5).
const WELL_KNOWN: u8 = FLAG_TRANSITIVE;
/// Optional transitive (RFC 4271 §5).
const OPT_TRANS: u8 = FLAG_OPTIONAL | FLAG_TRANSITIVE;
/// Optional non-transitive (RFC 4271 §5).
const OPT_NON_TRANS: u8 = FLAG_OPTIONAL;

/// The Optional and Transitive bits each known attribute must carry, as
/// its module defines them. `None` for attributes this codec does not
/// interpret.
#[inline]
fn expected_flags(code: u8) -> Option<u8> {
    Some(match code {
        ORIGIN => origin::FLAGS,
        AS_PATH => as_path::FLAGS,
        NEXT_HOP => next_hop::FLAGS,
        MULTI_EXIT_DISC => med_local_pref::MED_FLAGS,
        LOCAL_PREF => med_local_pref::LOCAL_PREF_FLAGS,
        ATOMIC_AGGREGATE => aggregator::ATOMIC_FLAGS,
        AGGREGATOR => aggregator::FLAGS,
        COMMUNITIES | EXTENDED_COMMUNITIES | LARGE_COMMUNITIES => communities::FLAGS,
        ORIGINATOR_ID | CLUSTER_LIST => reflection::FLAGS,
        MP_REACH_NLRI | MP_UNREACH_NLRI => mp::FLAGS,
        AS4_PATH => as_path::AS4_FLAGS,
        AS4_AGGREGATOR => aggregator::AS4_FLAGS,
        _ => return None,
    })
}

/// How a malformed attribute is handled when it does not reset the
/// session: one of the RFC 7606 §2 approaches and the rule behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Malformed {
    pub(super) kind: Kind,
    pub(super) action: ErrorAction,
    pub(super) rule: &'static str,
}

impl Malformed {
    /// RFC 7606 §2 treat-as-withdraw.
    #[inline]
    const fn withdraw(kind: Kind, rule: &'static str) -> Self {
        Malformed {
            kind,
            action: ErrorAction::TreatAsWithdraw,
            rule,
        }
    }

    /// RFC 7606 §2 attribute-discard.
    #[inline]
    const fn discard(kind: Kind, rule: &'static str) -> Self {
        Malformed {
            kind,
            action: ErrorAction::AttributeDiscard,
            rule,
        }
    }
}

/// Decodes one attribute, seen for the first time in its UPDATE, into
/// `st`. `value` is its value, `raw` the whole attribute (the data of a
/// NOTIFICATION that quotes it).
#[inline]
pub(super) fn decode(
    flags: u8,
    code: u8,
    value: &[u8],
    raw: &[u8],
    ctx: &CodecContext,
    st: &mut State,
) -> Result<(), DecodeError> {
    let Some(expected) = expected_flags(code) else {
        return unknown::decode(flags, code, value, raw, &mut st.attrs);
    };
    let flags_ok = flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE) == expected;
    let mp = code == MP_REACH_NLRI || code == MP_UNREACH_NLRI;
    if mp {
        // The MP attributes are parsed even with wrong flags: an error in
        // them resets the session, which outranks treat-as-withdraw.
        mp::decode(flags, code, value, raw, ctx, &mut st.attrs)?;
    }
    if !flags_ok {
        // RFC 7606 §3 (c): wrong Optional/Transitive bits make the
        // attribute malformed, treat-as-withdraw.
        st.note(code, Malformed::withdraw(Kind::Flags, "RFC 7606 §3 (c)"));
    } else if !mp {
        if let Err(m) = decode_known(code, value, ctx, &mut st.attrs) {
            st.note(code, m);
        }
    }
    Ok(())
}

/// The value of a known attribute other than MP_REACH/MP_UNREACH, with
/// the right flags, into `a`.
#[inline]
fn decode_known(
    code: u8,
    value: &[u8],
    ctx: &CodecContext,
    a: &mut PathAttributes,
) -> Result<(), Malformed> {
    match code {
        ORIGIN => a.origin = Some(origin::decode(value)?),
        AS_PATH => a.as_path = Some(as_path::decode(value, ctx)?),
        NEXT_HOP => a.next_hop = Some(next_hop::decode(value)?),
        MULTI_EXIT_DISC => a.med = Some(med_local_pref::decode_med(value)?),
        LOCAL_PREF => a.local_pref = Some(med_local_pref::decode_local_pref(value)?),
        ATOMIC_AGGREGATE => a.atomic_aggregate = aggregator::decode_atomic(value)?,
        AGGREGATOR => a.aggregator = Some(aggregator::decode(value, ctx)?),
        COMMUNITIES => a.communities = communities::decode_standard(value)?,
        ORIGINATOR_ID => a.originator_id = Some(reflection::decode_originator_id(value)?),
        CLUSTER_LIST => a.cluster_list = reflection::decode_cluster_list(value)?,
        EXTENDED_COMMUNITIES => a.extended_communities = communities::decode_extended(value)?,
        AS4_PATH => a.as4_path = Some(as_path::decode_as4(value, ctx)?),
        AS4_AGGREGATOR => a.as4_aggregator = Some(aggregator::decode_as4(value, ctx)?),
        LARGE_COMMUNITIES => a.large_communities = communities::decode_large(value)?,
        _ => {}
    }
    Ok(())
}

/// Writes the path attributes other than MP_REACH/MP_UNREACH in ascending
/// type order (RFC 4271 §5 SHOULD), unknown ones merged in by type code.
/// `next_hop` overrides `a.next_hop` (used by packing). Each writer skips
/// an attribute `a` does not hold.
#[inline]
pub(crate) fn put_plain_attrs(
    out: &mut Vec<u8>,
    a: &PathAttributes,
    next_hop: Option<Ipv4Addr>,
    ctx: &CodecContext,
) -> Result<(), EncodeError> {
    let four = ctx.four_octet_as;
    let mut unknown = unknown::Merge::new(&a.unknown);
    unknown.put_below(out, ORIGIN)?;
    origin::put(out, a.origin)?;
    unknown.put_below(out, AS_PATH)?;
    as_path::put(out, a.as_path.as_ref(), four)?;
    unknown.put_below(out, NEXT_HOP)?;
    next_hop::put(out, next_hop.or(a.next_hop))?;
    unknown.put_below(out, MULTI_EXIT_DISC)?;
    med_local_pref::put_med(out, a.med)?;
    unknown.put_below(out, LOCAL_PREF)?;
    med_local_pref::put_local_pref(out, a.local_pref)?;
    unknown.put_below(out, ATOMIC_AGGREGATE)?;
    aggregator::put_atomic(out, a.atomic_aggregate)?;
    unknown.put_below(out, AGGREGATOR)?;
    aggregator::put(out, a.aggregator.as_ref(), four)?;
    unknown.put_below(out, COMMUNITIES)?;
    communities::put_standard(out, &a.communities)?;
    unknown.put_below(out, ORIGINATOR_ID)?;
    reflection::put_originator_id(out, a.originator_id)?;
    unknown.put_below(out, CLUSTER_LIST)?;
    reflection::put_cluster_list(out, &a.cluster_list)?;
    unknown.put_below(out, EXTENDED_COMMUNITIES)?;
    communities::put_extended(out, &a.extended_communities)?;
    unknown.put_below(out, AS4_PATH)?;
    as_path::put_as4(out, a, four)?;
    unknown.put_below(out, AS4_AGGREGATOR)?;
    aggregator::put_as4(out, a, four)?;
    unknown.put_below(out, LARGE_COMMUNITIES)?;
    communities::put_large(out, &a.large_communities)?;
    unknown.put_rest(out)
}
