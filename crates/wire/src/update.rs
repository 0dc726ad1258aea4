//! UPDATE messages (RFC 4271 §4.3) with multiprotocol attributes
//! (RFC 4760), RFC 8950 next hops and RFC 7606 error handling.
//!
//! Decoding is a hand-written walk over the slice: it is the hot path
//! (millions of prefixes per second), allocates one `Vec` per NLRI list and
//! per list-valued attribute, and checks every length before reading.
//!
//! `attr/` holds each attribute's decoder and encoder side by side;
//! `decode.rs` walks the message and its attribute list, `encode.rs`
//! writes the message around the attributes.

use crate::error::{AttributeError, ErrorAction};
use crate::types::*;

mod decode;
mod encode;

pub(crate) use attr::{check_next_hop, put_mp_reach_head, put_plain_attrs};
pub(crate) use decode::decode_update;
pub(crate) use encode::{encode_update, patch_len16};

/// Attribute flag bits (RFC 4271 §4.3).
pub const FLAG_OPTIONAL: u8 = 0x80;
pub const FLAG_TRANSITIVE: u8 = 0x40;
pub const FLAG_PARTIAL: u8 = 0x20;
pub const FLAG_EXTENDED_LENGTH: u8 = 0x10;

/// Path attributes: type codes, and each attribute's decoder and encoder.
pub mod attr;

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
