//! UPDATE messages (RFC 4271 §4.3) with multiprotocol attributes
//! (RFC 4760), RFC 8950 next hops and RFC 7606 error handling.
//!
//! Decoding is a hand-written walk over the slice: it is the hot path
//! (millions of prefixes per second), allocates one `Vec` per NLRI list and
//! per list-valued attribute, and checks every length before reading.

use crate::error::{AttributeError, ErrorAction};
use crate::types::*;

mod decode;
mod encode;

pub(crate) use decode::*;
pub(crate) use encode::*;

/// Attribute flag bits (RFC 4271 §4.3).
pub const FLAG_OPTIONAL: u8 = 0x80;
pub const FLAG_TRANSITIVE: u8 = 0x40;
pub const FLAG_PARTIAL: u8 = 0x20;
pub const FLAG_EXTENDED_LENGTH: u8 = 0x10;

/// Attribute type codes.
pub mod attr {
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
}

/// The Optional and Transitive bits each known attribute must carry
/// (RFC 4271 §5, RFC 4760 §3-4, RFC 1997, RFC 4360, RFC 6793, RFC 8092,
/// RFC 4456). `None` for attributes this codec does not interpret.
fn expected_flags(code: u8) -> Option<u8> {
    use attr::*;
    const WELL_KNOWN: u8 = FLAG_TRANSITIVE;
    const OPT_TRANS: u8 = FLAG_OPTIONAL | FLAG_TRANSITIVE;
    const OPT_NON_TRANS: u8 = FLAG_OPTIONAL;
    match code {
        ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE => Some(WELL_KNOWN),
        MULTI_EXIT_DISC | ORIGINATOR_ID | CLUSTER_LIST | MP_REACH_NLRI | MP_UNREACH_NLRI => {
            Some(OPT_NON_TRANS)
        }
        AGGREGATOR | COMMUNITIES | EXTENDED_COMMUNITIES | AS4_PATH | AS4_AGGREGATOR
        | LARGE_COMMUNITIES => Some(OPT_TRANS),
        _ => None,
    }
}

/// A decoded message with the RFC 7606 outcomes that did not reset the
/// session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub message: Message,
    /// RFC 7606 treat-as-withdraw: every prefix in this UPDATE (classic
    /// NLRI and MP_REACH NLRI) must be handled as withdrawn.
    pub treat_as_withdraw: Option<AttributeError>,
    /// RFC 7606 attribute-discard: attributes dropped from the message.
    pub discarded: Vec<AttributeError>,
}

impl Decoded {
    /// The strongest RFC 7606 action this message asks for (RFC 7606 §3
    /// (h)), `None` when it decoded cleanly.
    pub fn action(&self) -> Option<ErrorAction> {
        if self.treat_as_withdraw.is_some() {
            Some(ErrorAction::TreatAsWithdraw)
        } else if !self.discarded.is_empty() {
            Some(ErrorAction::AttributeDiscard)
        } else {
            None
        }
    }
}

/// RFC 4724 §2: End-of-RIB is an UPDATE with nothing in it for IPv4
/// unicast, or one holding only an empty MP_UNREACH_NLRI for other families.
pub fn is_end_of_rib(update: &Update) -> Option<Family> {
    if !update.withdrawn.is_empty() || !update.nlri.is_empty() {
        return None;
    }
    let a = &update.attributes;
    match &a.mp_unreach {
        None if *a == PathAttributes::default() => Some(Family::Ipv4Unicast),
        Some(m) if m.withdrawn.is_empty() => {
            let only = PathAttributes {
                mp_unreach: Some(m.clone()),
                ..PathAttributes::default()
            };
            (*a == only).then_some(m.family)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
